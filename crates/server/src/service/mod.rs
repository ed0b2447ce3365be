//! Use cases: each opens one transaction, applies the domain rules, writes the change with its
//! events, and commits. Handlers parse and render; services decide.

pub mod confirmations;
pub mod connections;
pub mod events;
pub mod files;
pub mod inquiries;
pub mod pipeline;
pub mod providers;
pub mod redemption;
pub mod reports;
pub mod screening;
pub mod share_tokens;
pub mod templates;
pub mod webhooks;
pub mod workflows;

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

use crate::error::{ApiError, ErrorObject, ErrorSource};

/// Template validation errors as one 422 answer pointing into `data.attributes`.
pub(crate) fn template_errors(errors: Vec<TemplateError>) -> ApiError {
    ApiError::with_errors(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        errors
            .into_iter()
            .map(|e| ErrorObject {
                title: "Invalid template".to_owned(),
                details: format!("{}: {}", e.pointer, e.message),
                source: Some(ErrorSource {
                    pointer: Some(format!("/data/attributes{}", e.pointer)),
                    parameter: None,
                }),
            })
            .collect(),
    )
}
