//! What a redemption copies from the source inquiry, written once: its field values, its
//! identity documents with the files that go with them ([`EVIDENCE`]), its verifications and
//! its reports ([`SourceData`]). A template copy ([`hydrated`]) takes the part of it the
//! destination template asks for; a clone ([`super::clone`]) takes all of it. Both only
//! compute, in memory, the [`Work`] that the job's write transaction writes.

use std::collections::BTreeMap;

use idshare_domain::{
    inquiry::{InquiryAction, InquiryStatus, transition},
    preview,
    template::VerificationType,
    time_format::format_timestamp,
    verification::{FileKind, Subject},
};
use idshare_store::{
    DataKey, Scope, Tx, checks, documents, files,
    inquiries::{Inquiry, Provenance},
    share_tokens::ShareToken,
};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::{FieldMapping, inquiry_announcement, job::Work, mapping_table};
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

/// Everything copied from the source, read (and decrypted) in the job's read transaction.
pub(super) struct SourceData {
    pub inquiry: Inquiry,
    /// Its documents; those of [`EVIDENCE`] are copied.
    pub documents: documents::Documents,
    /// The latest file of each kind, with its bytes.
    pub files: BTreeMap<&'static str, (FileKind, String, Vec<u8>)>,
    pub verifications: Vec<checks::StoredVerification>,
    /// Read for a clone only.
    pub reports: Vec<checks::StoredReport>,
}

/// Reads the source's documents, files, verifications (and reports, for a clone) with its
/// already unwrapped data `key`, in the job's read transaction.
pub(super) async fn load_source(
    tx: &mut Tx,
    scope: &Scope,
    inquiry: Inquiry,
    key: &DataKey,
    with_reports: bool,
) -> Result<SourceData, ServiceError> {
    let id = &inquiry.id;
    let documents = documents::all(tx, key, scope, id).await?;
    let mut copied = BTreeMap::new();
    for (stored, bytes) in files::all_with_content(tx, key, scope, id).await? {
        // Oldest first: the latest of each kind wins.
        copied.insert(
            stored.kind.as_str(),
            (stored.kind, stored.content_type, bytes),
        );
    }
    let verifications = checks::verifications_keyed(tx, key, scope, id).await?;
    let reports = if with_reports {
        checks::reports_keyed(tx, key, scope, id).await?
    } else {
        vec![]
    };
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

/// Adds a copy of an identity document of [`EVIDENCE`] the source holds to `work`; returns it
/// (as stored, JSON) when there was one.
pub(super) fn copy_document(
    work: &mut Work,
    source: &SourceData,
    kind: &'static str,
) -> Option<Vec<u8>> {
    let document = source.documents.raw(kind)?.to_vec();
    work.documents.push((kind, document.clone()));
    Some(document)
}

/// Adds a copy of a source file to `work`, with its id chosen now (a reused verification's
/// basis names it) and its provenance.
pub(super) fn copy_file(
    work: &mut Work,
    token: &ShareToken,
    (kind, content_type, bytes): &(FileKind, String, Vec<u8>),
    now: OffsetDateTime,
    now_text: &str,
) -> Result<(), ServiceError> {
    let file = files::prepare(&work.inquiry.id, *kind, content_type, bytes.len(), now)?;
    work.files.push((file, bytes.clone()));
    work.inquiry.data.provenance.insert(
        format!("file:{}", kind.as_str()),
        provenance(token, None, now_text),
    );
    Ok(())
}

/// A hydration, computed in memory from the job's read transaction (which it ends): copies
/// what the destination template declares (fields after the mappings; documents and files its
/// verifications need), reuses the passed verifications it allows to, submits the inquiry
/// (pending, one more submission, which the reused verifications belong to), and evaluates
/// that submission as the write will leave it. With nothing to copy (a copy committed by an
/// older version), only the evaluation.
#[allow(clippy::too_many_arguments)]
pub(super) async fn hydrated(
    state: &ServiceContext,
    mut tx: Tx,
    token: &ShareToken,
    scope: &Scope,
    key: &DataKey,
    destination: &Inquiry,
    source: Option<&SourceData>,
    mappings: &[FieldMapping],
) -> Result<Work, ServiceError> {
    let now = state.now();
    let now_text = format_timestamp(now);
    let id = &destination.id;
    let definition = crate::inquiries::definition_for(&mut tx, scope, destination)
        .await?
        .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("inquiry {id} has no template")))?;
    let mut work = Work::none(destination.clone());
    if let Some(source) = source {
        // Fields: only those the destination declares, and only values its schema accepts.
        for copied in preview::copied_fields(
            &definition,
            &source.inquiry.data.fields,
            &mapping_table(mappings),
            now.date(),
        ) {
            work.inquiry.data.provenance.insert(
                copied.key.clone(),
                provenance(token, copied.mapped_from.as_deref(), &now_text),
            );
            work.inquiry.data.fields.insert(copied.key, copied.value);
        }
    }
    // What the destination holds, as the rules will see it after the copy.
    let mut held_documents = documents::all(&mut tx, key, scope, id).await?;
    let face_comparison = definition
        .verifications
        .iter()
        .any(|c| c.verification_type == VerificationType::Selfie);
    let stored_files = if face_comparison {
        files::all_with_content(&mut tx, key, scope, id).await?
    } else {
        files::for_inquiry(&mut tx, scope, id)
            .await?
            .into_iter()
            .map(|file| (file, vec![]))
            .collect()
    };
    let confirmed = crate::confirmations::confirmed_keys(&mut tx, state, &work.inquiry).await?;
    let mut recorded = checks::verifications_keyed(&mut tx, key, scope, id).await?;
    drop(tx);
    if let Some(source) = source {
        // Documents and files: only those the destination's verifications need.
        for config in &definition.verifications {
            for evidence in EVIDENCE
                .iter()
                .filter(|e| e.verification == config.verification_type)
            {
                if let Some(kind) = evidence.document
                    && let Some(document) = copy_document(&mut work, source, kind)
                {
                    held_documents.insert(kind, document);
                    work.inquiry.data.provenance.insert(
                        format!("document:{kind}"),
                        provenance(token, None, &now_text),
                    );
                }
                for kind in evidence.files {
                    if work
                        .inquiry
                        .data
                        .provenance
                        .contains_key(&format!("file:{}", kind.as_str()))
                    {
                        continue;
                    }
                    if let Some(file) = source.files.get(kind.as_str()) {
                        copy_file(&mut work, token, file, now, &now_text)?;
                    }
                }
            }
        }
    }
    let subject = Subject {
        fields: work.inquiry.data.fields.clone(),
        government_id: held_documents.get("government-id")?,
        proof_of_address: held_documents.get("proof-of-address")?,
        files: stored_files
            .iter()
            .chain(&work.files)
            .map(|(f, _)| f.as_ref())
            .collect(),
        confirmed,
    };
    if let Some(source) = source {
        // Submit: pending, one more submission, which the reused verifications belong to.
        let inquiry = &mut work.inquiry;
        if inquiry.status == InquiryStatus::Created {
            inquiry.status =
                transition(inquiry.status, InquiryAction::Start).map_err(ServiceError::internal)?;
            inquiry.started_at = Some(now);
        }
        inquiry.submissions += 1;
        inquiry.updated_at = now;
        let submission = inquiry.submissions;
        // What the reused verifications vouch for: they keep counting for later submissions
        // only while these inputs are unchanged.
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
                json!(preview::reuse_basis(config.verification_type, &subject));
            let reused = checks::prepare_verification(
                checks::NewVerification {
                    inquiry_id: id,
                    verification_type: &passed.verification_type,
                    submission,
                    status: "passed",
                    required: config.required,
                    result: &result,
                },
                now,
            );
            recorded.push(reused.clone());
            work.verifications.push(reused);
        }
        let inquiry = &work.inquiry;
        if inquiry.started_at == Some(now) && submission == 1 {
            work.announced.push(inquiry_announcement(
                scope,
                InquiryAction::Start.event_name(),
                inquiry,
                Some(&definition),
            ));
        }
    }
    // Run what was not reused, on the inquiry as the write will leave it.
    let submission = work.inquiry.submissions;
    if pipeline::needs_processing(&work.inquiry, submission) {
        let images = face_comparison.then(|| {
            let latest = |kind: FileKind| {
                work.files
                    .iter()
                    .chain(stored_files.iter().rev())
                    .find(|(file, _)| file.kind == kind)
                    .map(|(_, bytes)| bytes.clone())
            };
            pipeline::Images {
                selfie: latest(FileKind::Selfie),
                id_front: latest(FileKind::GovernmentIdFront),
            }
        });
        let loaded = pipeline::Loaded {
            definition,
            subject,
            recorded,
            images,
        };
        let evaluation = pipeline::evaluate_loaded(state, scope, id, loaded, submission).await?;
        work.evaluation = Some((submission, evaluation));
    }
    Ok(work)
}

/// Adds `key: value` to a result's `attributes`.
pub(super) fn mark(result: &mut Value, key: &str, value: &str) {
    if !result.get("attributes").is_some_and(Value::is_object) {
        result["attributes"] = json!({});
    }
    result["attributes"][key] = json!(value);
}
