//! HTTP handlers, one module per resource. Handlers parse, check permissions, call a service,
//! and render; they hold no business rules.

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

use axum::{extract::FromRequestParts, http::request::Parts};
use idshare_domain::permission::Permission;

use crate::http::{auth::Caller, error::ApiError};

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
