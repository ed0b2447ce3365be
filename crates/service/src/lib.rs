//! Use cases: each opens one transaction, applies the domain rules, writes the change with its
//! events, and commits. Handlers parse and render; services decide, and say what went wrong with
//! a [`ServiceError`], which knows nothing of HTTP. Every use case takes a [`ServiceContext`]
//! (or the narrower thing it needs), never the HTTP server's state: this crate does not depend on
//! the web framework, and the server depends on it.

pub mod audit;
pub mod confirmations;
pub mod connections;
pub mod context;
pub mod error;
pub mod events;
pub mod files;
pub mod inquiries;
pub mod jobs;
pub mod jsonapi;
pub mod people;
pub mod pipeline;
pub mod providers;
pub mod redemption;
pub mod render;
pub mod reports;
pub mod retention;
pub mod screening;
pub mod sender;
pub mod share_tokens;
pub mod telemetry;
pub mod templates;
pub mod webhooks;
pub mod worker;
pub mod workflows;

pub use context::{ServiceConfig, ServiceContext, install_tls_provider};
pub use error::{Problem, ServiceError};
use idshare_domain::{
    id::{ApiKeyId, UserId, WorkflowId},
    template::TemplateError,
};

/// Who makes a change that records its creator: an API key, a dashboard user, or a workflow
/// acting for its organization.
#[derive(Debug, Clone, Copy)]
pub enum Creator<'a> {
    ApiKey(&'a ApiKeyId),
    User(&'a UserId),
    Workflow(&'a WorkflowId),
}

impl Creator<'_> {
    /// The JSON:API type of the `creator` relationship.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ApiKey(_) => "api-key",
            Self::User(_) => "user",
            Self::Workflow(_) => "workflow",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Self::ApiKey(id) => id.as_str(),
            Self::User(id) => id.as_str(),
            Self::Workflow(id) => id.as_str(),
        }
    }
}

/// Template validation errors, each at its place in the definition (whose members are the
/// template's own inputs).
pub(crate) fn template_errors(errors: Vec<TemplateError>) -> ServiceError {
    ServiceError::Invalid(
        errors
            .into_iter()
            .map(|e| {
                Problem::new("Invalid template", format!("{}: {}", e.pointer, e.message))
                    .at(relative(&e.pointer))
            })
            .collect(),
    )
}

/// A JSON pointer into an input as a path below it: `/steps/0` is `steps/0`, and the empty
/// pointer the input itself.
pub(crate) fn relative(pointer: &str) -> &str {
    pointer.strip_prefix('/').unwrap_or(pointer)
}
