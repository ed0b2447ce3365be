//! HTTP handlers, one module per resource. Handlers parse, check permissions, call a service,
//! and render; they hold no business rules.

pub mod audit_entries;
pub mod checks;
pub mod confirmations;
pub mod connections;
pub mod events;
pub mod files;
pub mod inquiries;
pub mod inquiry_templates;
pub mod share_tokens;
pub mod webhooks;
pub mod workflows;

use std::marker::PhantomData;

use axum::{
    body::{Body, to_bytes},
    extract::{FromRequestParts, Request},
    http::{header::CONTENT_TYPE, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use idshare_domain::permission::Permission;
use idshare_service::jsonapi::{SHAPE_HEADER, persona_exact};

use crate::http::{auth::Caller, error::ApiError};

/// Answers in exactly Persona's shape when the request says `Idshare-Shape: persona` (no
/// idshare extension member, errors as Persona's schema has them); `idshare` (the default)
/// keeps the extensions. Runs outside authentication, so that its refusals are shaped too.
pub async fn shape(req: Request, next: Next) -> Response {
    let exact = match req.headers().get(SHAPE_HEADER).map(|v| v.to_str()) {
        None => false,
        Some(Ok(v)) if v.eq_ignore_ascii_case("persona") => true,
        Some(Ok(v)) if v.eq_ignore_ascii_case("idshare") => false,
        Some(_) => {
            return ApiError::bad_request("`Idshare-Shape` must be `persona` or `idshare`.")
                .into_response();
        }
    };
    let response = next.run(req).await;
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !exact || !is_json {
        return response;
    }
    let status = response.status().as_u16();
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return ApiError::internal(anyhow::anyhow!("could not buffer the response"))
            .into_response();
    };
    let Ok(mut document) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    persona_exact(&mut document, status);
    let body = serde_json::to_vec(&document).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove("content-length");
    Response::from_parts(parts, Body::from(body))
}

/// A permission an endpoint requires, as a type so the check runs before the body is parsed.
pub trait Needs {
    const PERMISSION: Permission;
}

macro_rules! needs {
    ($($name:ident => $permission:ident),+ $(,)?) => {
        $(
            #[derive(Debug)]
            pub struct $name;
            impl Needs for $name {
                const PERMISSION: Permission = Permission::$permission;
            }
        )+
    };
}

needs! {
    InquiryRead => InquiryRead,
    InquiryWrite => InquiryWrite,
    TemplateRead => InquiryTemplateRead,
    TemplateWrite => InquiryTemplateWrite,
    EventRead => EventRead,
    FileRead => FileRead,
    FileWrite => FileWrite,
    VerificationRead => VerificationRead,
    ReportRead => ReportRead,
    ReportWrite => ReportWrite,
    ConnectRead => ConnectRead,
    ConnectWrite => ConnectWrite,
    WebhookRead => WebhookRead,
    WebhookWrite => WebhookWrite,
    WorkflowRead => WorkflowRead,
    WorkflowWrite => WorkflowWrite,
    AuditRead => AuditRead,
}

/// The authenticated caller, once it has been checked for `P`'s permission.
#[derive(Debug)]
pub struct Auth<P>(pub Caller, PhantomData<P>);

impl<S: Send + Sync, P: Needs> FromRequestParts<S> for Auth<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(P::PERMISSION)?;
        Ok(Self(caller, PhantomData))
    }
}

/// Parses a path id; a malformed id is answered exactly like an unknown one.
pub fn parse_id<T>(
    raw: &str,
    parse: impl Fn(&str) -> Result<T, idshare_domain::id::IdError>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|_| ApiError::not_found())
}
