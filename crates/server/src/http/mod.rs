//! The HTTP edge of the API: authentication, idempotency, the JSON:API envelope and its
//! extractors, query parsing, rate limits, middleware, the OpenAPI document, and `ApiError`
//! with the mapping of a [`idshare_service::ServiceError`] to an HTTP answer. The front ends
//! (`api/`, `dashboard/`, `flow/`) are built on it; services know nothing of it.

pub mod auth;
pub mod error;
pub mod idempotency;
pub mod jsonapi;
pub mod middleware;
pub mod openapi;
pub mod query;
pub mod ratelimit;
