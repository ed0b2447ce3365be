//! Files and identity documents of an inquiry: `/api/v1/inquiries/{id}/files`,
//! `/api/v1/inquiries/{id}/documents`, and the signed download URL `/files/{id}`.

use axum::{
    extract::{
        DefaultBodyLimit, Extension, FromRequest, Multipart, Path, Query, Request, State,
        multipart::MultipartError,
    },
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use idshare_domain::{
    id::InquiryId,
    verification::{AddressDocument, FileKind, GovernmentIdDocument},
};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Auth, FileRead, FileWrite, InquiryWrite, parse_id};
use crate::{
    http::{
        error::{ApiError, ApiResult, ErrorDocument, ErrorSource},
        jsonapi::{ApiJson, JsonBody, ResourceObject, SingleDocument},
        middleware::CurrentRequestId,
        query::QueryParams,
    },
    state::AppState,
};
use idshare_service::{
    audit::{Actor, Principal},
    files::{self as service, NewDocument},
    render::{self, FileAttributes, InquiryAttributes},
};

pub fn routes(upload_limit: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_file, list_files))
        .layer(DefaultBodyLimit::max(upload_limit))
        .merge(OpenApiRouter::new().routes(routes!(add_document)))
}

fn multipart_error(e: MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large(limit)
    } else {
        ApiError::bad_request(format!("Malformed multipart body: {}.", e.body_text()))
    }
}

/// Upload a file (multipart form: `kind` and `file`). The content type is read from the bytes;
/// JPEG, PNG and (for proof of address) PDF are accepted.
#[utoipa::path(
    post, path = "/api/v1/inquiries/{id}/files", tag = "Files",
    params(("id" = String, Path, description = "inq_…")),
    request_body(content_type = "multipart/form-data", description = "`kind`: government-id-front | government-id-back | selfie | proof-of-address; `file`: the bytes"),
    responses(
        (status = 201, body = SingleDocument<FileAttributes>),
        (status = 400, body = ErrorDocument), (status = 404, body = ErrorDocument),
        (status = 413, body = ErrorDocument), (status = 422, body = ErrorDocument),
    ),
    security(("bearer" = []))
)]
async fn upload_file(
    State(state): State<AppState>,
    Auth(caller, _): Auth<FileWrite>,
    Path(id): Path<String>,
    request: Request,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, InquiryId::parse)?;
    // Another organization's inquiry is a 404 before any of the body is read.
    service::ensure_inquiry(&state, &caller.scope, &id).await?;
    let limit = state.config().upload_body_limit_bytes;
    let mut multipart = Multipart::from_request(request, &state)
        .await
        .map_err(|rejection| {
            ApiError::bad_request(format!(
                "Send the file as multipart/form-data: {}.",
                rejection.body_text()
            ))
        })?;
    let mut kind = None;
    let mut bytes = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limit))?
    {
        match field.name() {
            Some("kind") => kind = Some(field.text().await.map_err(|e| multipart_error(e, limit))?),
            Some("file") => {
                bytes = Some(field.bytes().await.map_err(|e| multipart_error(e, limit))?)
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "Unknown form field `{}`: send `kind` and `file`.",
                    other.unwrap_or_default()
                ))
                .pointer(format!("/{}", other.unwrap_or_default())));
            }
        }
    }
    let kind: FileKind = kind
        .ok_or_else(|| {
            ApiError::bad_request("The form field `kind` is required.").pointer("/kind")
        })?
        .trim()
        .parse()
        .map_err(|e: idshare_domain::UnknownValueError| {
            ApiError::bad_request(e.to_string()).pointer("/kind")
        })?;
    let bytes = bytes.ok_or_else(|| {
        ApiError::bad_request("The form field `file` is required.").pointer("/file")
    })?;
    // The inputs of an upload are the form's fields.
    let file = service::upload(&state, &caller.scope, &id, kind, &bytes)
        .await
        .map_err(|e| {
            ApiError::from_service(e, |input| ErrorSource::pointer(format!("/{input}")))
        })?;
    let (url, expires_at) = service::download_url(&state, &caller.scope, &file.id);
    let document = SingleDocument {
        data: render::file(&file, url, expires_at),
        included: vec![],
    };
    ApiJson::new(StatusCode::CREATED, &document, &Default::default())
}

/// The files of an inquiry, with short-lived download URLs.
#[utoipa::path(
    get, path = "/api/v1/inquiries/{id}/files", tag = "Files",
    params(("id" = String, Path, description = "inq_…")),
    responses((status = 200, body = crate::http::jsonapi::ListDocument<FileAttributes>), (status = 404, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn list_files(
    State(state): State<AppState>,
    Auth(caller, _): Auth<FileRead>,
    Path(id): Path<String>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, InquiryId::parse)?;
    let data: Vec<ResourceObject<FileAttributes>> =
        service::list(&state, &caller.scope, &id).await?;
    let document = crate::http::jsonapi::ListDocument {
        data,
        links: crate::http::jsonapi::Links {
            prev: None,
            next: None,
        },
    };
    ApiJson::new(StatusCode::OK, &document, &Default::default())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentRequest {
    pub data: DocumentData,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentData {
    /// `document/government-id` or `document/proof-of-address`.
    #[serde(rename = "type")]
    #[schema(pattern = "^document/(government-id|proof-of-address)$")]
    pub kind: String,
    /// Government ID: `id-class, issuing-country, document-number, name-first, name-last,
    /// birthdate, expiration-date, mrz: [lines]`. Proof of address: `document-kind, issue-date,
    /// address-street-1, address-street-2?, address-city, address-subdivision?,
    /// address-postal-code, address-country-code`.
    #[schema(value_type = Object)]
    pub attributes: Value,
}

fn parse_attributes<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path: String = e.path().iter().map(|s| format!("/{s}")).collect();
        let message = e.inner().to_string();
        let field = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
            .map(|f| format!("/{f}"))
            .filter(|f| !path.ends_with(f.as_str()))
            .unwrap_or_default();
        let pointer = format!("/data/attributes{path}{field}");
        ApiError::bad_request(format!("Invalid value at `{pointer}`: {message}.")).pointer(pointer)
    })
}

/// Add (or replace) the identity document read from the end user's ID or proof of address.
#[utoipa::path(
    post, path = "/api/v1/inquiries/{id}/documents", tag = "Files",
    params(("id" = String, Path, description = "inq_…")),
    request_body = DocumentRequest,
    responses(
        (status = 201, body = SingleDocument<InquiryAttributes>, description = "the inquiry, with its missing requirements updated"),
        (status = 400, body = ErrorDocument), (status = 404, body = ErrorDocument), (status = 422, body = ErrorDocument),
    ),
    security(("bearer" = []))
)]
async fn add_document(
    State(state): State<AppState>,
    Auth(caller, _): Auth<InquiryWrite>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<DocumentRequest>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, InquiryId::parse)?;
    let data = request.data;
    let document = match data.kind.as_str() {
        "document/government-id" => {
            NewDocument::GovernmentId(parse_attributes::<GovernmentIdDocument>(data.attributes)?)
        }
        "document/proof-of-address" => {
            NewDocument::ProofOfAddress(parse_attributes::<AddressDocument>(data.attributes)?)
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "Unknown document type `{other}`: use document/government-id or document/proof-of-address."
            ))
            .pointer("/data/type"));
        }
    };
    let view = service::add_document(&state, &caller.scope, &id, document).await?;
    let document = SingleDocument {
        data: view.resource(),
        included: vec![],
    };
    ApiJson::new(
        StatusCode::CREATED,
        &document,
        &QueryParams::default().fields,
    )
}

#[derive(Debug, Deserialize)]
pub struct DownloadParams {
    org: String,
    environment: String,
    expires: i64,
    signature: String,
}

/// `GET /files/{id}?org&environment&expires&signature`: a signed, short-lived download link.
/// Any flaw in the link answers 404; an expired one 410.
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request_id: Option<Extension<CurrentRequestId>>,
    params: Result<Query<DownloadParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // The link is the credential: no user or key downloads, the system serves it.
    let actor = Actor {
        principal: Principal::System,
        request_id: request_id.map(|Extension(CurrentRequestId(id))| id),
    };
    // A link missing a part is as unknown as a link with a wrong part.
    let Ok(Query(params)) = params else {
        return ApiError::not_found().into_response();
    };
    match service::download(
        &state,
        &id,
        &params.org,
        &params.environment,
        params.expires,
        &params.signature,
        &actor,
    )
    .await
    {
        Ok((file, bytes)) => {
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&file.content_type) {
                headers.insert(header::CONTENT_TYPE, value);
            }
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            );
            headers.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment"),
            );
            response
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
