//! `Idempotency-Key` on POST: the first answer (status and body) is stored per caller and key
//! and replayed; the same key with other parameters is refused; a second request arriving while
//! the first runs is told so (409) instead of running twice. Authentication and rate limiting
//! run before this layer, so 401 and 429 are never stored. 5xx answers release the key, so a
//! retry after a transient failure runs again.

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use idshare_store::idempotency::{self, Claim};
use sha2::{Digest, Sha256};
use time::Duration;

use crate::{app::AppState, auth::Caller, error::ApiError};

const MAX_KEY_LENGTH: usize = 255;
/// Stored answers are small JSON documents; anything larger is not worth replaying.
const MAX_STORED_RESPONSE: usize = 4 * 1024 * 1024;

pub async fn idempotent(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match run(&state, req, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn run(state: &AppState, req: Request, next: Next) -> Result<Response, Response> {
    let Some(key) = req.headers().get("idempotency-key") else {
        return Ok(next.run(req).await);
    };
    if req.method() != Method::POST {
        return Ok(next.run(req).await);
    }
    let key = key
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LENGTH)
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "`Idempotency-Key` must be 1 to {MAX_KEY_LENGTH} visible ASCII characters."
            ))
            .into_response()
        })?;
    let caller = req
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| ApiError::unauthorized("Must be authenticated.").into_response())?;

    let (parts, body) = req.into_parts();
    let is_upload = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"));
    let limit = if is_upload {
        state.config().upload_body_limit_bytes
    } else {
        state.config().body_limit_bytes
    };
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::payload_too_large(limit).into_response())?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(b"\n");
    hasher.update(parts.uri.to_string());
    hasher.update(b"\n");
    hasher.update(&bytes);
    let request_hash = hasher.finalize().to_vec();

    let caller_id = caller.api_key_id.as_str();
    let now = state.now();
    let retention = Duration::seconds(
        i64::try_from(state.config().idempotency_retention_seconds).unwrap_or(i64::MAX),
    );
    let claim = idempotency::claim(
        state.store(),
        caller_id,
        &key,
        &request_hash,
        now,
        now - retention,
    )
    .await
    .map_err(|e| ApiError::from(e).into_response())?;
    match claim {
        Claim::Fresh => {}
        Claim::Replay { status, body } => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let headers = response.headers_mut();
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(response);
        }
        Claim::InProgress => {
            return Err(ApiError::conflict(
                "Request in progress",
                "A request with this Idempotency-Key is still being processed; retry shortly.",
            )
            .into_response());
        }
        Claim::Mismatch => {
            return Err(ApiError::unprocessable(
                "Idempotency key reused",
                "This Idempotency-Key was already used with different parameters. Use a new key for a new request.",
            )
            .pointer("/")
            .into_response());
        }
    }

    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = response.status();
    if status.is_server_error() {
        release(state, caller_id, &key).await;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let Ok(body) = to_bytes(body, MAX_STORED_RESPONSE).await else {
        release(state, caller_id, &key).await;
        return Err(
            ApiError::internal(anyhow::anyhow!("response too large to store")).into_response(),
        );
    };
    let object_id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.pointer("/data/id")
                .and_then(|id| id.as_str())
                .map(str::to_owned)
        });
    if let Err(e) = idempotency::complete(
        state.store(),
        caller_id,
        &key,
        status.as_u16(),
        &body,
        object_id.as_deref(),
    )
    .await
    {
        tracing::error!(error = ?e, "could not store the idempotent response");
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

async fn release(state: &AppState, caller_id: &str, key: &str) {
    if let Err(e) = idempotency::release(state.store(), caller_id, key).await {
        tracing::error!(error = ?e, "could not release an idempotency key");
    }
}
