//! Cross-cutting HTTP layers: request ids and response key inflection.

use axum::{
    body::{Body, to_bytes},
    extract::Request,
    http::{HeaderValue, header::CONTENT_TYPE},
    middleware::Next,
    response::{IntoResponse, Response},
};
use idshare_domain::{
    id::RequestId,
    inflection::{Inflection, kebab_to, transform_keys},
};

use crate::error::ApiError;

/// The id of the request being served, also sent back as `Request-Id`.
#[derive(Debug, Clone)]
pub struct CurrentRequestId(pub RequestId);

/// Gives every request a `req_…` id (in extensions, the log span and the response header).
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = RequestId::generate();
    req.extensions_mut().insert(CurrentRequestId(id.clone()));
    let mut response = next.run(req).await;
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert("request-id", value);
    }
    response
}

/// Rewrites JSON response keys to the casing asked for with `Key-Inflection` (default kebab).
pub async fn key_inflection(req: Request, next: Next) -> Response {
    let inflection = match req.headers().get("key-inflection").map(HeaderValue::to_str) {
        None => Inflection::Kebab,
        Some(Ok(value)) => match value.parse::<Inflection>() {
            Ok(inflection) => inflection,
            Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
        },
        Some(Err(_)) => {
            return ApiError::bad_request("`Key-Inflection` must be kebab, camel or snake.")
                .into_response();
        }
    };
    let response = next.run(req).await;
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if inflection == Inflection::Kebab || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return ApiError::internal(anyhow::anyhow!("could not buffer the response"))
            .into_response();
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let inflected = transform_keys(value, &|key| kebab_to(key, inflection));
    let body = serde_json::to_vec(&inflected).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove("content-length");
    Response::from_parts(parts, Body::from(body))
}
