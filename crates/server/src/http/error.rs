//! The API's one error type, mapped to HTTP in one place: the services' [`ServiceError`] and the
//! store's [`StoreError`] become answers here. 5xx bodies say nothing internal; the cause is
//! logged with the request id.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use idshare_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

use idshare_service::error::{NOT_FOUND_DETAILS, Problem, ServiceError};

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

impl ErrorSource {
    pub fn pointer(pointer: impl Into<String>) -> Self {
        Self {
            pointer: Some(pointer.into()),
            parameter: None,
        }
    }

    pub fn parameter(name: impl Into<String>) -> Self {
        Self {
            pointer: None,
            parameter: Some(name.into()),
        }
    }

    /// Where most use cases' inputs are sent: `data.attributes` (`""`: the attributes as a
    /// whole).
    pub fn attribute(input: &str) -> Self {
        Self::pointer(below("/data/attributes", input))
    }

    /// An input sent in the document's `meta`.
    pub fn meta(input: &str) -> Self {
        Self::pointer(below("/meta", input))
    }
}

fn below(base: &str, input: &str) -> String {
    if input.is_empty() {
        base.to_owned()
    } else {
        format!("{base}/{input}")
    }
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
    pub fn pointer(self, pointer: impl Into<String>) -> Self {
        self.with_source(Some(ErrorSource::pointer(pointer)))
    }

    /// Points the (first) error at a query parameter.
    pub fn parameter(self, parameter: impl Into<String>) -> Self {
        self.with_source(Some(ErrorSource::parameter(parameter)))
    }

    fn with_source(mut self, source: Option<ErrorSource>) -> Self {
        if let Some(e) = self.errors.first_mut() {
            e.source = source;
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
        Self::new(StatusCode::NOT_FOUND, "Record not found", NOT_FOUND_DETAILS)
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

/// The status of a service's refusal, for the API and the pages alike; a failure is a 500 (the
/// API answers a failure of the store as `From<StoreError>` says).
pub fn status_of(e: &ServiceError) -> StatusCode {
    match e {
        ServiceError::NotFound { .. } => StatusCode::NOT_FOUND,
        ServiceError::Forbidden { .. } => StatusCode::FORBIDDEN,
        ServiceError::Malformed { .. } => StatusCode::BAD_REQUEST,
        ServiceError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ServiceError::Conflict { .. } => StatusCode::CONFLICT,
        ServiceError::Gone { .. } => StatusCode::GONE,
        ServiceError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        ServiceError::Upstream { .. } => StatusCode::BAD_GATEWAY,
        ServiceError::Unavailable(_) | ServiceError::Later { .. } | ServiceError::Internal(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

impl ApiError {
    /// The answer to a service error, its inputs placed in the request by `locate` (most use
    /// cases: [`ErrorSource::attribute`], which `From<ServiceError>` uses).
    pub fn from_service(e: ServiceError, locate: impl Fn(&str) -> ErrorSource) -> Self {
        let status = status_of(&e);
        let at = |input: Option<String>| input.as_deref().map(&locate);
        match e {
            ServiceError::NotFound { input } => Self::not_found().with_source(at(input)),
            ServiceError::Forbidden { details, input } => {
                Self::forbidden(details).with_source(at(input))
            }
            ServiceError::Malformed { details, input } => {
                Self::bad_request(details).with_source(at(input))
            }
            ServiceError::Invalid(problems) => Self::with_errors(
                status,
                problems
                    .into_iter()
                    .map(|p: Problem| ErrorObject {
                        title: p.title.to_owned(),
                        details: p.details,
                        source: at(p.input),
                    })
                    .collect(),
            ),
            ServiceError::Conflict { title, details }
            | ServiceError::Gone { title, details }
            | ServiceError::Upstream { title, details, .. } => Self::new(status, title, details),
            ServiceError::RateLimited {
                details,
                retry_after_seconds,
            } => {
                let mut e = Self::new(status, "Rate limit exceeded", details);
                e.retry_after = Some(retry_after_seconds);
                e
            }
            ServiceError::Unavailable(store) => Self::from(store),
            ServiceError::Later { cause, .. } => Self::internal(cause),
            ServiceError::Internal(cause) => match cause.downcast::<StoreError>() {
                Ok(store) => Self::from(store),
                Err(cause) => Self::internal(cause),
            },
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self::from_service(e, ErrorSource::attribute)
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
            crate::http::jsonapi::json_response_body(&ErrorDocument {
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
