//! Connection alignment (DESIGN §2.5): for a source template and a destination template, the
//! requirements of the destination that the source template never collects — what a redemption
//! from an inquiry of the source template would always leave missing (stuck), whatever the end
//! user entered. Computed from the two definitions alone: no inquiry, no personal data.

use crate::{
    requirements::{self, GOVERNMENT_ID, PROOF_OF_ADDRESS, Requirement, RequirementKind},
    template::{TemplateDefinition, VerificationType},
    verification::FileKind,
};

/// Whether the source template collects what `requirement` asks for: the same field; the
/// government-ID details and photos when it has a government-id verification; the proof of
/// address and its file when it has a document verification; the selfie when it has a selfie
/// verification. Confirmations are never copied, so never collected for the destination.
fn collects(source: &TemplateDefinition, requirement: &Requirement) -> bool {
    let has = |kind: VerificationType| {
        source
            .verifications
            .iter()
            .any(|v| v.verification_type == kind)
    };
    let key = requirement.key.as_str();
    match requirement.kind {
        RequirementKind::Field => source.field_schemas.iter().any(|s| s.key.as_str() == key),
        RequirementKind::Document => match key {
            GOVERNMENT_ID => has(VerificationType::GovernmentId),
            PROOF_OF_ADDRESS => has(VerificationType::Document),
            _ => false,
        },
        RequirementKind::File => match key.parse::<FileKind>() {
            Ok(FileKind::GovernmentIdFront | FileKind::GovernmentIdBack) => {
                has(VerificationType::GovernmentId)
            }
            Ok(FileKind::Selfie) => has(VerificationType::Selfie),
            Ok(FileKind::ProofOfAddress) => has(VerificationType::Document),
            Err(_) => false,
        },
        RequirementKind::Confirmation => false,
    }
}

/// The destination's requirements the source template never collects, in requirement order.
pub fn never_collected(
    source: &TemplateDefinition,
    destination: &TemplateDefinition,
) -> Vec<Requirement> {
    requirements::requirements(destination)
        .into_iter()
        .filter(|r| !collects(source, r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(value: serde_json::Value) -> TemplateDefinition {
        TemplateDefinition::parse(&value).expect("valid template")
    }

    fn keys(list: &[Requirement]) -> Vec<String> {
        list.iter()
            .map(|r| format!("{}:{}", r.kind, r.key))
            .collect()
    }

    #[test]
    fn what_the_source_never_collects_is_listed() {
        let source = def(json!({
            "field-schemas": [
                {"key": "name-first", "type": "string"},
                {"key": "email-address", "type": "string"}
            ],
            "verifications": [{"type": "email-address", "required": true}]
        }));
        let destination = def(json!({
            "field-schemas": [
                {"key": "name-first", "type": "string", "config": {"required": true}},
                {"key": "address-street-1", "type": "string"},
                {"key": "address-city", "type": "string"},
                {"key": "address-postal-code", "type": "string"},
                {"key": "address-country-code", "type": "string"},
                {"key": "email-address", "type": "string"}
            ],
            "verifications": [
                {"type": "email-address", "required": true, "config": {"confirmation": true}},
                {"type": "document", "required": true}
            ]
        }));
        assert_eq!(
            keys(&never_collected(&source, &destination)),
            [
                "confirmation:email-address",
                "document:proof-of-address",
                "file:proof-of-address",
                "field:address-street-1",
                "field:address-city",
                "field:address-postal-code",
                "field:address-country-code",
            ]
        );
    }

    #[test]
    fn a_template_collects_everything_it_requires() {
        let template = def(json!({
            "field-schemas": [
                {"key": "name-first", "type": "string", "config": {"required": true}},
                {"key": "name-last", "type": "string", "config": {"required": true}},
                {"key": "birthdate", "type": "date"}
            ],
            "verifications": [
                {"type": "government-id", "required": true},
                {"type": "selfie", "required": true}
            ],
            "reports": [{"type": "watchlist"}]
        }));
        assert!(never_collected(&template, &template).is_empty());
    }
}
