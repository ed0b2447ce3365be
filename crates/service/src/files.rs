//! Uploads (sniffed, size-limited, sealed), identity documents, and signed download URLs.

use idshare_domain::{
    event::names,
    files::{allowed, sniff},
    id::{FileId, InquiryId},
    verification::{AddressDocument, FileKind, GovernmentIdDocument},
};
use idshare_store::{
    Scope, documents, events,
    files::{self, StoredFile},
    inquiries,
};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::ServiceError;
use crate::{ServiceContext, inquiries::InquiryView, render};

/// How long a download URL stays valid.
pub const DOWNLOAD_URL_LIFETIME: Duration = Duration::minutes(15);
const SIGNING_PURPOSE: &str = "file-download";
/// The upload's content, as an input of [`upload`].
pub const FILE_INPUT: &str = "file";

/// A new identity document for an inquiry.
#[derive(Debug)]
pub enum NewDocument {
    GovernmentId(GovernmentIdDocument),
    ProofOfAddress(AddressDocument),
}

impl NewDocument {
    fn kind(&self) -> &'static str {
        match self {
            NewDocument::GovernmentId(_) => "government-id",
            NewDocument::ProofOfAddress(_) => "proof-of-address",
        }
    }
}

/// Locks an inquiry that may still receive data.
async fn writable(
    state: &ServiceContext,
    tx: &mut idshare_store::Tx,
    scope: &Scope,
    id: &InquiryId,
) -> Result<inquiries::Inquiry, ServiceError> {
    let inquiry = inquiries::get_for_update(tx, state.store().crypto(), scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    if inquiry.redacted_at.is_some() {
        return Err(ServiceError::conflict(
            "Inquiry redacted",
            "A redacted inquiry takes no new data.",
        ));
    }
    if !inquiry.status.accepts_field_updates() {
        return Err(ServiceError::conflict(
            "Inquiry finished",
            format!(
                "Files and documents can only be added while the inquiry is `created` or `pending`; its status is `{}`.",
                inquiry.status
            ),
        ));
    }
    Ok(inquiry)
}

pub async fn upload(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryId,
    kind: FileKind,
    bytes: &[u8],
) -> Result<StoredFile, ServiceError> {
    if bytes.is_empty() {
        return Err(
            ServiceError::invalid("Empty file", "The uploaded file is empty.").at(FILE_INPUT),
        );
    }
    let content_type = sniff(bytes).ok_or_else(|| {
        ServiceError::invalid(
            "Unsupported file type",
            "Upload a JPEG or PNG image, or a PDF document (the type is read from the file's content, not its name).",
        )
        .at(FILE_INPUT)
    })?;
    if !allowed(kind, content_type) {
        return Err(ServiceError::invalid(
            "Unsupported file type",
            format!("A `{kind}` file must be an image; this one is {content_type}."),
        )
        .at(FILE_INPUT));
    }
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    writable(state, &mut tx, scope, id).await?;
    let file = files::create(
        &mut tx,
        state.store().crypto(),
        scope,
        id,
        files::NewFile {
            kind,
            content_type,
            bytes,
        },
        now,
    )
    .await?;
    let payload = json!({ "data": { "type": "file", "id": file.id.as_str(),
        "attributes": { "kind": kind.as_str(), "content-type": content_type, "size": file.size } } });
    record(
        state,
        &mut tx,
        scope,
        names::FILE_CREATED,
        "file",
        file.id.as_str(),
        id,
        &payload,
    )
    .await?;
    tx.commit().await?;
    Ok(file)
}

pub async fn add_document(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryId,
    document: NewDocument,
) -> Result<InquiryView, ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let inquiry = writable(state, &mut tx, scope, id).await?;
    let crypto = state.store().crypto();
    let kind = document.kind();
    let document_id = match &document {
        NewDocument::GovernmentId(d) => {
            documents::upsert(&mut tx, crypto, scope, id, kind, d, now).await?
        }
        NewDocument::ProofOfAddress(d) => {
            documents::upsert(&mut tx, crypto, scope, id, kind, d, now).await?
        }
    };
    let payload =
        json!({ "data": { "type": format!("document/{kind}"), "id": document_id.as_str() } });
    record(
        state,
        &mut tx,
        scope,
        names::DOCUMENT_CREATED,
        "document",
        document_id.as_str(),
        id,
        &payload,
    )
    .await?;
    let definition = crate::inquiries::definition_for(&mut tx, scope, &inquiry).await?;
    let view = InquiryView::load(state, &mut tx, scope, inquiry, definition).await?;
    tx.commit().await?;
    Ok(view)
}

#[allow(clippy::too_many_arguments)]
async fn record(
    state: &ServiceContext,
    tx: &mut idshare_store::Tx,
    scope: &Scope,
    name: &str,
    object_type: &str,
    object_id: &str,
    inquiry_id: &InquiryId,
    payload: &serde_json::Value,
) -> Result<(), ServiceError> {
    crate::events::record(
        state,
        tx,
        scope,
        events::NewEvent {
            name,
            object_type,
            object_id,
            payload,
            sealed_by: Some(inquiry_id.as_str()),
        },
    )
    .await?;
    Ok(())
}

fn signed_message(file: &FileId, scope: &Scope, expires: i64) -> String {
    format!("{file}|{}|{}|{expires}", scope.org_id, scope.environment)
}

/// A download URL for `file`, valid for [`DOWNLOAD_URL_LIFETIME`].
pub fn download_url(
    state: &ServiceContext,
    scope: &Scope,
    file: &FileId,
) -> (String, OffsetDateTime) {
    let expires_at = state.now() + DOWNLOAD_URL_LIFETIME;
    let expires = expires_at.unix_timestamp();
    let signature = hex::encode(state.store().crypto().sign(
        SIGNING_PURPOSE,
        signed_message(file, scope, expires).as_bytes(),
    ));
    let url = format!(
        "{}/files/{file}?org={}&environment={}&expires={expires}&signature={signature}",
        state.config().public_url,
        scope.org_id,
        scope.environment,
    );
    (url, expires_at)
}

/// The content of a file named by a signed URL; any flaw in the URL is a 404. The download is
/// in the audit log, by `actor`: the link is the credential, so the system, in the request.
pub async fn download(
    state: &ServiceContext,
    file: &str,
    org: &str,
    environment: &str,
    expires: i64,
    signature: &str,
    actor: &crate::audit::Actor,
) -> Result<(StoredFile, Vec<u8>), ServiceError> {
    let file = FileId::parse(file).map_err(|_| ServiceError::not_found())?;
    let scope = Scope::new(
        idshare_domain::id::OrgId::parse(org).map_err(|_| ServiceError::not_found())?,
        environment.parse().map_err(|_| ServiceError::not_found())?,
    );
    let tag = hex::decode(signature).map_err(|_| ServiceError::not_found())?;
    let message = signed_message(&file, &scope, expires);
    if !state
        .store()
        .crypto()
        .verify(SIGNING_PURPOSE, message.as_bytes(), &tag)
    {
        return Err(ServiceError::not_found());
    }
    if state.now().unix_timestamp() > expires {
        return Err(ServiceError::Gone {
            title: "Link expired",
            details:
                "This download link has expired; fetch the file resource again for a fresh one."
                    .to_owned(),
        });
    }
    let mut tx = state.store().begin_read().await?;
    let content = files::content(&mut tx, state.store().crypto(), &scope, &file)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    drop(tx);
    crate::audit::record_view(
        state,
        &scope,
        actor,
        "file.downloaded",
        ("file", file.as_str()),
    )
    .await?;
    Ok(content)
}

/// 404 unless the inquiry exists in the caller's scope.
pub async fn ensure_inquiry(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryId,
) -> Result<(), ServiceError> {
    let mut tx = state.store().begin_read().await?;
    inquiries::get(&mut tx, state.store().crypto(), scope, id)
        .await?
        .map(|_| ())
        .ok_or_else(ServiceError::not_found)
}

/// The file resources of an inquiry, with fresh download URLs.
pub async fn list(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryId,
) -> Result<Vec<crate::jsonapi::ResourceObject<render::FileAttributes>>, ServiceError> {
    let mut tx = state.store().begin_read().await?;
    inquiries::get(&mut tx, state.store().crypto(), scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    Ok(files::for_inquiry(&mut tx, scope, id)
        .await?
        .iter()
        .map(|f| {
            let (url, expires_at) = download_url(state, scope, &f.id);
            render::file(f, url, expires_at)
        })
        .collect())
}
