//! What a redemption copies from the source inquiry, written once: its field values, its
//! identity documents with the files that go with them ([`EVIDENCE`]), its verifications and
//! its reports ([`SourceData`]). A template copy ([`template`]) takes the part of it the
//! destination template asks for; a clone ([`super::clone`]) takes all of it.

use std::collections::BTreeMap;

use idshare_domain::{
    id::InquiryId,
    inquiry::{InquiryAction, InquiryStatus, transition},
    preview,
    share_token::ShareTokenStatus,
    template::VerificationType,
    time_format::format_timestamp,
    verification::{FileKind, VerificationStatus},
};
use idshare_store::{
    Scope, Tx, checks, documents, files,
    inquiries::{self, Inquiry, Provenance},
    share_tokens::{self, ShareToken},
};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::{FieldMapping, emit_inquiry, hydratable, mapping_table};
use crate::{ServiceContext, ServiceError, pipeline};

/// An identity document an inquiry may hold (its kind in the store), the verification type
/// that reads it, and the files that go with it. A selfie is files without a document.
pub(super) struct Evidence {
    pub document: Option<&'static str>,
    pub verification: VerificationType,
    pub files: &'static [FileKind],
}

/// Every identity document and file kind a redemption copies.
pub(super) const EVIDENCE: [Evidence; 3] = [
    Evidence {
        document: Some("government-id"),
        verification: VerificationType::GovernmentId,
        files: &[FileKind::GovernmentIdFront, FileKind::GovernmentIdBack],
    },
    Evidence {
        document: Some("proof-of-address"),
        verification: VerificationType::Document,
        files: &[FileKind::ProofOfAddress],
    },
    Evidence {
        document: None,
        verification: VerificationType::Selfie,
        files: &[FileKind::Selfie],
    },
];

/// Everything copied from the source, read (and decrypted) in one read transaction.
pub(super) struct SourceData {
    pub inquiry: Inquiry,
    /// The identity documents of [`EVIDENCE`] the source holds, by kind, as stored.
    pub documents: BTreeMap<&'static str, Value>,
    /// The latest file of each kind, with its bytes.
    pub files: BTreeMap<&'static str, (FileKind, String, Vec<u8>)>,
    pub verifications: Vec<checks::StoredVerification>,
    pub reports: Vec<checks::StoredReport>,
}

pub(super) async fn load_source(
    state: &ServiceContext,
    scope: &Scope,
    inquiry: Inquiry,
) -> Result<SourceData, ServiceError> {
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_read().await?;
    let id = &inquiry.id;
    let mut documents = BTreeMap::new();
    for kind in EVIDENCE.iter().filter_map(|e| e.document) {
        if let Some((_, document)) = documents::get(&mut tx, crypto, scope, id, kind).await? {
            documents.insert(kind, document);
        }
    }
    let mut copied = BTreeMap::new();
    for file in files::for_inquiry(&mut tx, scope, id).await? {
        if let Some((stored, bytes)) = files::content(&mut tx, crypto, scope, &file.id).await? {
            // Oldest first: the latest of each kind wins.
            copied.insert(
                stored.kind.as_str(),
                (stored.kind, stored.content_type, bytes),
            );
        }
    }
    let verifications = checks::verifications_of(&mut tx, crypto, scope, id).await?;
    let reports = checks::reports_of(&mut tx, crypto, scope, id).await?;
    Ok(SourceData {
        inquiry,
        documents,
        files: copied,
        verifications,
        reports,
    })
}

pub(super) fn provenance(token: &ShareToken, source_field: Option<&str>, now: &str) -> Provenance {
    Provenance {
        share_token: token.id.to_string(),
        source_inquiry: token.source_inquiry_id.to_string(),
        source_field: source_field.map(str::to_owned),
        copied_at: now.to_owned(),
    }
}

/// Writes a copied identity document.
pub(super) async fn copy_document(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    inquiry: &Inquiry,
    kind: &str,
    document: &Value,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    documents::upsert(
        tx,
        state.store().crypto(),
        scope,
        &inquiry.id,
        kind,
        document,
        now,
    )
    .await?;
    Ok(())
}

/// Writes a copied file and its provenance.
pub(super) async fn copy_file(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    inquiry: &mut Inquiry,
    token: &ShareToken,
    (kind, content_type, bytes): &(FileKind, String, Vec<u8>),
    now_text: &str,
) -> Result<(), ServiceError> {
    files::create(
        tx,
        state.store().crypto(),
        scope,
        &inquiry.id,
        files::NewFile {
            kind: *kind,
            content_type,
            bytes,
        },
        state.now(),
    )
    .await?;
    inquiry.data.provenance.insert(
        format!("file:{}", kind.as_str()),
        provenance(token, None, now_text),
    );
    Ok(())
}

/// Hydrate, first transaction: copies what the destination template declares (fields after
/// the mappings; documents and files its verifications need), copies passed verifications it
/// allows to reuse, and submits the inquiry (pending, one more submission). Returns false when
/// the destination can no longer be hydrated.
pub(super) async fn template(
    state: &ServiceContext,
    token: &ShareToken,
    scope: &Scope,
    destination_id: &InquiryId,
    source: &SourceData,
    mappings: &[FieldMapping],
) -> Result<bool, ServiceError> {
    let now = state.now();
    let now_text = format_timestamp(now);
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    match share_tokens::get_any_for_update(&mut tx, &token.id).await? {
        Some(t) if t.status == ShareTokenStatus::Pending => {}
        _ => return Ok(true),
    }
    let Some(mut inquiry) =
        inquiries::get_for_update(&mut tx, crypto, scope, destination_id).await?
    else {
        return Ok(false);
    };
    if inquiry.data.hydrated_by.as_deref() == Some(token.id.as_str()) {
        return Ok(true);
    }
    if !hydratable(&inquiry) {
        return Ok(false);
    }
    let definition = crate::inquiries::definition_for(&mut tx, scope, &inquiry)
        .await?
        .ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!("inquiry {destination_id} has no template"))
        })?;
    // Fields: only those the destination declares, and only values its schema accepts.
    for copied in preview::copied_fields(
        &definition,
        &source.inquiry.data.fields,
        &mapping_table(mappings),
        now.date(),
    ) {
        inquiry.data.provenance.insert(
            copied.key.clone(),
            provenance(token, copied.mapped_from.as_deref(), &now_text),
        );
        inquiry.data.fields.insert(copied.key, copied.value);
    }
    // Documents and files: only those the destination's verifications need.
    for config in &definition.verifications {
        for evidence in EVIDENCE
            .iter()
            .filter(|e| e.verification == config.verification_type)
        {
            if let Some(kind) = evidence.document
                && let Some(document) = source.documents.get(kind)
            {
                copy_document(state, &mut tx, scope, &inquiry, kind, document, now).await?;
                inquiry.data.provenance.insert(
                    format!("document:{kind}"),
                    provenance(token, None, &now_text),
                );
            }
            for kind in evidence.files {
                let key = format!("file:{}", kind.as_str());
                if inquiry.data.provenance.contains_key(&key) {
                    continue;
                }
                if let Some(file) = source.files.get(kind.as_str()) {
                    copy_file(state, &mut tx, scope, &mut inquiry, token, file, &now_text).await?;
                }
            }
        }
    }
    // Submit: pending, one more submission, which the reused verifications belong to.
    if inquiry.status == InquiryStatus::Created {
        inquiry.status =
            transition(inquiry.status, InquiryAction::Start).map_err(ServiceError::internal)?;
        inquiry.started_at = Some(now);
    }
    inquiry.submissions += 1;
    let submission = inquiry.submissions;
    inquiry.data.hydrated_by = Some(token.id.to_string());
    inquiry.updated_at = now;
    inquiries::save(&mut tx, crypto, scope, &inquiry).await?;
    // What the reused verifications vouch for: they keep counting for later submissions only
    // while these inputs are unchanged.
    let copied = pipeline::load_subject(&mut tx, state, scope, &inquiry).await?;
    for config in &definition.verifications {
        let Some(reuse) = config.reuse else {
            continue;
        };
        let window = now - Duration::days(i64::from(reuse.max_age_days));
        let Some(passed) = source
            .verifications
            .iter()
            .filter(|v| {
                v.verification_type == config.verification_type.as_str()
                    && v.status == "passed"
                    && v.completed_at.is_some_and(|at| at >= window)
            })
            .max_by_key(|v| v.completed_at)
        else {
            continue;
        };
        let mut result = passed
            .result
            .clone()
            .unwrap_or_else(|| json!({"checks": [], "attributes": {}}));
        mark(&mut result, "reused-from", passed.id.as_str());
        result[pipeline::REUSED_BASIS] =
            json!(preview::reuse_basis(config.verification_type, &copied));
        if let Some(recorded) = checks::record_verification(
            &mut tx,
            crypto,
            scope,
            checks::NewVerification {
                inquiry_id: &inquiry.id,
                verification_type: &passed.verification_type,
                submission,
                status: "passed",
                required: config.required,
                result: &result,
            },
            now,
        )
        .await?
        {
            // A verification that comes to count in this inquiry is announced like one that
            // ran; `details.reused-from` tells them apart.
            pipeline::record_verification_event(
                state,
                &mut tx,
                scope,
                VerificationStatus::Passed,
                &recorded,
            )
            .await?;
        }
    }
    if inquiry.started_at == Some(now) && submission == 1 {
        emit_inquiry(
            state,
            &mut tx,
            scope,
            InquiryAction::Start.event_name(),
            &inquiry,
            &[],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Adds `key: value` to a result's `attributes`.
pub(super) fn mark(result: &mut Value, key: &str, value: &str) {
    if !result.get("attributes").is_some_and(Value::is_object) {
        result["attributes"] = json!({});
    }
    result["attributes"][key] = json!(value);
}
