//! The API's one error type, mapped to HTTP in one place. 5xx bodies say nothing internal; the
//! cause is logged with the request id.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use idshare_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Where in the request an error points.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ErrorSource {
    /// JSON pointer into the request body, e.g. `/data/attributes/fields/birthdate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Query parameter name, e.g. `page[size]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

/// One JSON:API error object.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorObject {
    pub title: String,
    pub details: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<ErrorSource>,
}

/// `{"errors": [...]}`
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDocument {
    pub errors: Vec<ErrorObject>,
}

#[derive(Debug, thiserror::Error)]
#[error("{status}: {}", errors.first().map(|e| e.title.as_str()).unwrap_or_default())]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<ErrorObject>,
    /// The internal cause of a 5xx, for the log only.
    internal: Option<anyhow::Error>,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, title: &str, details: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![ErrorObject {
                title: title.to_owned(),
                details: details.into(),
                source: None,
            }],
            internal: None,
            retry_after: None,
        }
    }

    pub fn with_errors(status: StatusCode, errors: Vec<ErrorObject>) -> Self {
        Self {
            status,
            errors,
            internal: None,
            retry_after: None,
        }
    }

    /// Every error's details, in one line (for a person reading a page).
    pub fn details(&self) -> String {
        self.errors
            .iter()
            .map(|e| e.details.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Points the (first) error at a place in the request body.
    pub fn pointer(mut self, pointer: impl Into<String>) -> Self {
        if let Some(e) = self.errors.first_mut() {
            e.source = Some(ErrorSource {
                pointer: Some(pointer.into()),
                parameter: None,
            });
        }
        self
    }

    /// Points the (first) error at a query parameter.
    pub fn parameter(mut self, parameter: impl Into<String>) -> Self {
        if let Some(e) = self.errors.first_mut() {
            e.source = Some(ErrorSource {
                pointer: None,
                parameter: Some(parameter.into()),
            });
        }
        self
    }

    pub fn bad_request(details: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad request", details)
    }

    pub fn unauthorized(details: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", details)
    }

    pub fn forbidden(details: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", details)
    }

    /// The one answer for an object that does not exist *or belongs to someone else*.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Record not found",
            "No object with this id exists in this organization and environment.",
        )
    }

    pub fn conflict(title: &str, details: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, title, details)
    }

    pub fn unprocessable(title: &str, details: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, title, details)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
            format!("The request body exceeds the limit of {limit} bytes."),
        )
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit exceeded",
            format!("Too many requests for this environment; retry in {retry_after} s."),
        );
        e.retry_after = Some(retry_after);
        e
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error",
            "Something went wrong on our side. Quote the Request-Id header when reporting it.",
        );
        e.internal = Some(cause.into());
        e
    }
}

/// How long a client is told to wait when the database is unavailable.
const DATABASE_RETRY_AFTER_SECONDS: u64 = 5;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            let mut error = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service unavailable",
                format!("The database is unavailable. Retry in {DATABASE_RETRY_AFTER_SECONDS} s."),
            );
            error.internal = Some(e.into());
            error.retry_after = Some(DATABASE_RETRY_AFTER_SECONDS);
            error
        } else {
            Self::internal(e)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self.internal {
            Some(cause) if self.status == StatusCode::SERVICE_UNAVAILABLE => {
                tracing::warn!(error = ?cause, "request refused: the database is unavailable");
            }
            Some(cause) => tracing::error!(error = ?cause, "request failed"),
            None => {}
        }
        let mut response = (
            self.status,
            crate::jsonapi::json_response_body(&ErrorDocument {
                errors: self.errors,
            }),
        )
            .into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = seconds.to_string().parse()
        {
            response.headers_mut().insert("retry-after", value);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
