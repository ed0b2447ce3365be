//! Connect redemption (DESIGN §2.2–2.3): the destination's `redeem` call ([`request`]), which
//! only moves the token to `pending` and enqueues the work, and the redemption job ([`job`]),
//! which copies what the destination template asks for ([`copy`]; or everything, for a clone:
//! [`clone`]), reuses passed verifications, runs the rest through the pipeline, and marks the
//! token `redeemed`. What a redemption can copy is written once, in [`copy`].
//!
//! The job reads once and writes once. One read transaction loads the token, the connection,
//! the source (its data, documents, files, verifications; reports for a clone) and the
//! destination (what its rules look at, its verifications), each inquiry's data key unwrapped
//! once; the template definition comes from the store's cache. The copy and the pipeline's
//! evaluation are then computed in memory on the destination as the write will leave it
//! (provider calls happen there, outside any transaction). One write transaction then moves
//! the token `pending` → `redeemed` under its row lock (a token no longer `pending` stops the
//! job: another run finished it), writes the copy and the results with multi-row inserts,
//! saves the destination only if it did not change since it was read (otherwise nothing is
//! written and the job reads again), records every event with its webhook deliveries and
//! workflow runs, and completes the job itself in the queue. A crash before that commit leaves
//! nothing and the job still claimed: once its lease runs out it is retried and redoes
//! everything; after it, the job is done. A failure (the token `failed`) is written the same
//! way, with the job's completion.
//!
//! Versions before this one committed the copy first, marked by `hydrated_by` in the sealed
//! data: a database upgraded between the two commits holds a destination with that marker and
//! its token still `pending`, which the job finishes without copying again.

mod clone;
mod copy;
mod job;
mod request;

use std::collections::BTreeMap;

use idshare_domain::inquiry::InquiryStatus;
use idshare_store::{Scope, Tx, events, inquiries::Inquiry};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use job::{Batched, give_up, run, run_batch};
pub use request::redeem;

use crate::{ServiceContext, ServiceError, events::Announcement, render};

/// `meta.field-mappings[]`: a source field copied under another name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FieldMapping {
    pub source_field_name: String,
    pub destination_field_name: String,
}

/// The input that holds the field mappings; its problems are at paths below it.
pub const FIELD_MAPPINGS_INPUT: &str = "field-mappings";

/// Parses the field mappings: an array of objects with two non-empty strings, no destination
/// named twice.
pub fn parse_mappings(raw: Option<&Value>) -> Result<Vec<FieldMapping>, ServiceError> {
    const AT: &str = FIELD_MAPPINGS_INPUT;
    let Some(raw) = raw else {
        return Ok(vec![]);
    };
    let Some(items) = raw.as_array() else {
        return Err(ServiceError::malformed(
            "`field-mappings` must be an array of {source-field-name, destination-field-name}.",
        )
        .at(AT));
    };
    let mut mappings: Vec<FieldMapping> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let text = |name: &str| -> Result<String, ServiceError> {
            match item.get(name).and_then(Value::as_str).map(str::trim) {
                Some(s) if !s.is_empty() => Ok(s.to_owned()),
                _ => Err(
                    ServiceError::malformed(format!("`{name}` must be a non-empty string."))
                        .at(format!("{AT}/{i}/{name}")),
                ),
            }
        };
        let Some(object) = item.as_object() else {
            return Err(ServiceError::malformed(
                "Each field mapping is an object {source-field-name, destination-field-name}.",
            )
            .at(format!("{AT}/{i}")));
        };
        if let Some(unknown) = object
            .keys()
            .find(|k| *k != "source-field-name" && *k != "destination-field-name")
        {
            return Err(ServiceError::malformed(format!(
                "Unknown member `{}` in a field mapping.",
                unknown.chars().take(64).collect::<String>()
            ))
            .at(format!("{AT}/{i}")));
        }
        let mapping = FieldMapping {
            source_field_name: text("source-field-name")?,
            destination_field_name: text("destination-field-name")?,
        };
        if mappings
            .iter()
            .any(|m| m.destination_field_name == mapping.destination_field_name)
        {
            return Err(ServiceError::malformed(format!(
                "`{}` is the destination of more than one field mapping.",
                mapping.destination_field_name
            ))
            .at(format!("{AT}/{i}/destination-field-name")));
        }
        mappings.push(mapping);
    }
    Ok(mappings)
}

/// What the destination asked for.
#[derive(Debug)]
pub struct Redeem {
    pub destination_id: Option<String>,
    pub inquiry_template_id: Option<String>,
    pub field_mappings: Vec<FieldMapping>,
}

/// The mappings as a table from destination field to source field.
pub fn mapping_table(mappings: &[FieldMapping]) -> BTreeMap<String, String> {
    mappings
        .iter()
        .map(|m| {
            (
                m.destination_field_name.clone(),
                m.source_field_name.clone(),
            )
        })
        .collect()
}

/// Whether data may still be copied into an inquiry: created (or pending with nothing
/// submitted), not redacted, with a template.
fn hydratable(inquiry: &Inquiry) -> bool {
    inquiry.redacted_at.is_none()
        && inquiry.template_version_id.is_some()
        && (inquiry.status == InquiryStatus::Created
            || (inquiry.status == InquiryStatus::Pending && inquiry.submissions == 0))
}

/// An inquiry event, sealed under the inquiry's key.
async fn emit_inquiry(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    name: &str,
    inquiry: &Inquiry,
    missing: &[idshare_domain::requirements::Requirement],
) -> Result<(), idshare_store::StoreError> {
    let definition = crate::inquiries::definition_for(tx, scope, inquiry)
        .await
        .ok()
        .flatten();
    let payload = render::payload(&render::inquiry(
        inquiry,
        definition.as_deref(),
        missing,
        None,
    ));
    crate::events::record(
        state,
        tx,
        scope,
        events::NewEvent {
            name,
            object_type: "inquiry",
            object_id: inquiry.id.as_str(),
            payload: &payload,
            sealed_by: Some(inquiry.id.as_str()),
        },
    )
    .await?;
    Ok(())
}

/// An inquiry event for [`crate::events::record_batch`], sealed under the inquiry's key.
fn inquiry_announcement(
    scope: &Scope,
    name: &str,
    inquiry: &Inquiry,
    definition: Option<&idshare_domain::template::TemplateDefinition>,
) -> Announcement {
    crate::pipeline::announcement(
        scope,
        name,
        "inquiry",
        inquiry.id.as_str(),
        &inquiry.id,
        render::payload(&render::inquiry(inquiry, definition, &[], None)),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn mappings_are_checked() {
        assert_eq!(parse_mappings(None).unwrap(), vec![]);
        let ok = json!([{"source-field-name": "a", "destination-field-name": "b"}]);
        assert_eq!(parse_mappings(Some(&ok)).unwrap().len(), 1);
        for bad in [
            json!({}),
            json!(["x"]),
            json!([{"source-field-name": "", "destination-field-name": "b"}]),
            json!([{"source-field-name": "a"}]),
            json!([{"source-field-name": "a", "destination-field-name": "b", "x": 1}]),
            json!([{"source-field-name": "a", "destination-field-name": "b"},
                   {"source-field-name": "c", "destination-field-name": "b"}]),
        ] {
            let e = parse_mappings(Some(&bad)).unwrap_err();
            assert!(matches!(e, ServiceError::Malformed { .. }), "{bad}");
        }
    }
}
