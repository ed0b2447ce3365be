//! `/api/v1/inquiries/{id}/confirmations`: confirming an inquiry's phone number or email
//! address with a code sent to it.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use idshare_domain::{id::InquiryId, time_format::format_timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Auth, InquiryWrite, parse_id};
use crate::{
    http::{
        error::{ApiResult, ErrorDocument},
        jsonapi::{ApiJson, Document, JsonBody, ResourceObject, SingleDocument},
        query::Fieldsets,
    },
    state::AppState,
};
use idshare_service::confirmations::{self as service, ConfirmableField, ConfirmationView};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_code))
        .routes(routes!(verify_code))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RequestCodeAttributes {
    /// `phone-number` (sent by SMS) or `email-address`.
    #[schema(pattern = "^(phone-number|email-address)$")]
    pub field: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct VerifyCodeAttributes {
    /// `phone-number` or `email-address`.
    #[schema(pattern = "^(phone-number|email-address)$")]
    pub field: String,
    /// The 6 digits sent (spaces and hyphens are ignored).
    pub code: String,
}

/// A field's confirmation (`type` `confirmation`, id `<inquiry id>:<field>`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ConfirmationAttributes {
    pub field: &'static str,
    /// Where the code went, masked: `+1******2671`, `a***@example.com`.
    pub destination: String,
    /// `pending`, `confirmed`, `locked` (no attempts left) or `expired`.
    pub status: &'static str,
    pub sent_at: String,
    pub expires_at: String,
    pub attempts_remaining: u32,
    pub confirmed_at: Option<String>,
}

fn resource(view: &ConfirmationView) -> ResourceObject<ConfirmationAttributes> {
    ResourceObject::new(
        "confirmation",
        format!("{}:{}", view.inquiry_id, view.field.key()),
        ConfirmationAttributes {
            field: view.field.key(),
            destination: view.destination.clone(),
            status: view.status.as_str(),
            sent_at: format_timestamp(view.sent_at),
            expires_at: format_timestamp(view.expires_at),
            attempts_remaining: view.attempts_remaining,
            confirmed_at: view.confirmed_at.map(format_timestamp),
        },
    )
    .relationship("inquiry", Some(("inquiry", view.inquiry_id.as_str())))
}

fn respond(status: StatusCode, view: &ConfirmationView) -> ApiResult<ApiJson> {
    let document = SingleDocument {
        data: resource(view),
        included: vec![],
    };
    ApiJson::new(status, &document, &Fieldsets::default())
}

/// Send a confirmation code to the inquiry's current phone number (SMS) or email address. Only
/// a salted hash of the code is kept; it expires after 10 minutes and allows 5 attempts. At
/// most one code per field every 30 seconds.
#[utoipa::path(
    post, path = "/api/v1/inquiries/{id}/confirmations", tag = "Inquiries",
    params(("id" = String, Path, description = "inq_…")),
    request_body = Document<RequestCodeAttributes>,
    responses(
        (status = 202, body = SingleDocument<ConfirmationAttributes>, description = "the code was sent"),
        (status = 400, body = ErrorDocument), (status = 404, body = ErrorDocument),
        (status = 409, body = ErrorDocument, description = "already confirmed, a code was sent less than 30 s ago, or the inquiry is finished or redacted"),
        (status = 422, body = ErrorDocument, description = "unknown field, field not set or not valid"),
        (status = 502, body = ErrorDocument, description = "the code could not be delivered"),
    ),
    security(("bearer" = []))
)]
async fn request_code(
    State(state): State<AppState>,
    Auth(caller, _): Auth<InquiryWrite>,
    Path(id): Path<String>,
    JsonBody(doc): JsonBody<Document<RequestCodeAttributes>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, InquiryId::parse)?;
    let field = ConfirmableField::parse(&doc.data.attributes.field)?;
    let view = service::request(&state, &caller.scope, &id, field).await?;
    respond(StatusCode::ACCEPTED, &view)
}

/// Check a confirmation code. Each try counts; after 5 wrong ones the code is locked and a new
/// one must be requested. The right code confirms the field (for its current value: changing
/// the field later undoes it) and records an `inquiry.field-confirmed` event.
#[utoipa::path(
    post, path = "/api/v1/inquiries/{id}/confirmations/verify", tag = "Inquiries",
    params(("id" = String, Path, description = "inq_…")),
    request_body = Document<VerifyCodeAttributes>,
    responses(
        (status = 200, body = SingleDocument<ConfirmationAttributes>, description = "confirmed"),
        (status = 400, body = ErrorDocument), (status = 404, body = ErrorDocument),
        (status = 409, body = ErrorDocument, description = "already confirmed (with another code)"),
        (status = 422, body = ErrorDocument, description = "wrong code (details say how many attempts remain), locked, expired, no code sent, field changed"),
    ),
    security(("bearer" = []))
)]
async fn verify_code(
    State(state): State<AppState>,
    Auth(caller, _): Auth<InquiryWrite>,
    Path(id): Path<String>,
    JsonBody(doc): JsonBody<Document<VerifyCodeAttributes>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, InquiryId::parse)?;
    let attributes = doc.data.attributes;
    let field = ConfirmableField::parse(&attributes.field)?;
    let view = service::verify(&state, &caller.scope, &id, field, &attributes.code).await?;
    respond(StatusCode::OK, &view)
}
