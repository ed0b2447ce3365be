//! `Idempotency-Key` on POST: the first answer (status and body) is stored per caller and key
//! and replayed; the same key with other parameters is refused; a second request arriving while
//! the first runs is told so (409) instead of running twice. Authentication and rate limiting
//! run before this layer, so 401 and 429 are never stored. 5xx answers release the key, so a
//! retry after a transient failure runs again; so do 429 answers of a handler's own limit
//! (a share token's peeks and previews), which hold only until the limit allows again.
//!
//! The claim on a key is leased, and renewed by a heartbeat while the request runs: when the
//! node dies mid-request, a retry takes the key over within a lease. The change the request
//! commits waits (parked by the store) and commits together with its stored answer: a change
//! is never committed without its answer, and an answer that cannot be stored undoes the
//! change (see `idshare_store::idempotency`).

use std::{collections::BTreeSet, convert::Infallible};

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, Uri},
    middleware::Next,
    response::{IntoResponse, Response},
};
use idshare_store::idempotency::{self, Answer, Claim, Finished, Held};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::Duration;

use crate::{
    http::{auth::Caller, error::ApiError},
    state::AppState,
};

const MAX_KEY_LENGTH: usize = 255;
/// Stored answers are small JSON documents; anything larger is not worth replaying.
const MAX_STORED_RESPONSE: usize = 4 * 1024 * 1024;

pub async fn idempotent(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match run(&state, req, next).await {
        Ok(response) | Err(response) => response,
    }
}

fn in_progress() -> Response {
    ApiError::conflict(
        "Request in progress",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
    )
    .into_response()
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

    let now = state.now();
    let retention = Duration::seconds(
        i64::try_from(state.config().idempotency_retention_seconds).unwrap_or(i64::MAX),
    );
    let claim = idempotency::claim(
        state.store(),
        caller.api_key_id.as_str(),
        &key,
        &request_hash,
        now,
        now - retention,
        lease(state),
    )
    .await
    .map_err(|e| ApiError::from(e).into_response())?;
    let held = match claim {
        Claim::Fresh(held) => held,
        Claim::Replay { status, body } => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let headers = response.headers_mut();
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(response);
        }
        Claim::InProgress => return Err(in_progress()),
        Claim::Mismatch => {
            return Err(ApiError::unprocessable(
                "Idempotency key reused",
                "This Idempotency-Key was already used with different parameters. Use a new key for a new request.",
            )
            .pointer("/")
            .into_response());
        }
    };

    let uri = parts.uri.clone();
    let request = async {
        let response = held
            .run(next.run(Request::from_parts(parts, Body::from(bytes))))
            .await;
        test_pause(
            state.config().idempotency_test_pause_before_commit_ms,
            "before",
        )
        .await;
        response
    };
    // The heartbeat lives exactly as long as the request: dropped with it, it stops renewing.
    let response = tokio::select! {
        response = request => response,
        never = heartbeat(state, &held) => match never {},
    };

    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        if let Err(e) = idempotency::release(state.store(), &held).await {
            tracing::error!(error = ?e, "could not release an idempotency key");
        }
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let Ok(body) = to_bytes(body, MAX_STORED_RESPONSE).await else {
        if let Err(e) = idempotency::discard(state.store(), &held).await {
            tracing::error!(error = ?e, "could not release an idempotency key");
        }
        return Err(
            ApiError::internal(anyhow::anyhow!("response too large to store")).into_response(),
        );
    };
    let wrote = held.wrote();
    let inquiry_ids = concerned_inquiries(&uri, &body);
    let answer = Answer {
        status: status.as_u16(),
        body: &body,
        inquiry_ids: &inquiry_ids,
    };
    match idempotency::finish(state.store(), &held, answer).await {
        Ok(Finished::Stored | Finished::Withheld) => {}
        // The retry that took the key over answers; this request's change was not committed.
        Ok(Finished::TakenOver) if wrote => return Err(in_progress()),
        Ok(Finished::TakenOver) => {}
        Err(e) if wrote => {
            // Nothing was committed: the change and its answer fail together.
            if let Err(e) = idempotency::release(state.store(), &held).await {
                tracing::error!(error = ?e, "could not release an idempotency key");
            }
            return Err(ApiError::from(e).into_response());
        }
        // The request changed nothing: its answer holds even though it is not stored (a retry
        // runs again once the lease ran out).
        Err(e) => tracing::error!(error = ?e, "could not store the idempotent response"),
    }
    test_pause(
        state.config().idempotency_test_pause_after_commit_ms,
        "after",
    )
    .await;
    Ok(Response::from_parts(parts, Body::from(body)))
}

fn lease(state: &AppState) -> Duration {
    Duration::seconds(i64::from(state.config().idempotency_lease_seconds.get()))
}

/// Renews the claim's lease every third of a lease while the request runs.
async fn heartbeat(state: &AppState, held: &Held) -> Infallible {
    let every: Duration = lease(state) / 3;
    loop {
        tokio::time::sleep(every.unsigned_abs()).await;
        match idempotency::renew(state.store(), held, state.now() + lease(state)).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("an idempotency key was taken over while its request ran"),
            Err(e) => tracing::warn!(error = ?e, "could not renew an idempotency key's lease"),
        }
    }
}

/// The test hook of `idempotency_test_pause_*_commit_ms`; the log line tells a test that the
/// request is paused.
async fn test_pause(ms: u64, when: &'static str) {
    if ms > 0 {
        tracing::warn!(
            when,
            ms,
            "test pause of an idempotent request around its commit"
        );
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// The inquiries an answer concerns: the one in the path (`/api/v1/inquiries/{id}/…`) and every
/// inquiry the document names (the resource itself, relationships, included resources).
fn concerned_inquiries(uri: &Uri, body: &[u8]) -> Vec<String> {
    let mut ids = BTreeSet::new();
    if let Some(id) = uri
        .path()
        .strip_prefix("/api/v1/inquiries/")
        .and_then(|rest| rest.split('/').next())
        .filter(|id| id.starts_with("inq_"))
    {
        ids.insert(id.to_owned());
    }
    if let Ok(document) = serde_json::from_slice::<Value>(body) {
        named_inquiries(&document, &mut ids);
    }
    ids.into_iter().collect()
}

fn named_inquiries(value: &Value, ids: &mut BTreeSet<String>) {
    match value {
        Value::Object(object) => {
            if object.get("type").and_then(Value::as_str) == Some("inquiry")
                && let Some(id) = object.get("id").and_then(Value::as_str)
            {
                ids.insert(id.to_owned());
            }
            object.values().for_each(|v| named_inquiries(v, ids));
        }
        Value::Array(items) => items.iter().for_each(|v| named_inquiries(v, ids)),
        _ => {}
    }
}
