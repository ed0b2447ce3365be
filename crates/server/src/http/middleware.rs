//! Cross-cutting HTTP layers: request ids, the request log line and latency metric, control
//! characters refused in URLs, no caching of API answers, and response key inflection.

use std::time::Instant;

use axum::{
    body::{Body, to_bytes},
    extract::{MatchedPath, Request},
    http::{
        HeaderValue, Method, StatusCode, Uri,
        header::{CACHE_CONTROL, CONTENT_TYPE},
    },
    middleware::Next,
    response::{IntoResponse, Response},
};
use idshare_domain::{
    id::RequestId,
    inflection::{Inflection, kebab_to, transform_keys},
    text::{describe, refused_control},
};

use crate::{http::error::ApiError, web};

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

/// The route a request matched, as its template (`/api/v1/inquiries/{id}`), `unmatched` for
/// none: what logs and metrics name a request by, never its path (ids, one-time link tokens)
/// nor its query (names, emails in filters).
pub fn route_of(req: &Request) -> &str {
    req.extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
}

/// The method as a metric label: the methods the server answers, `other` for the rest (a
/// client must not be able to invent new series).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// One log line at INFO per request (method, matched route, status, latency, request id;
/// nothing from the path, the query, the headers or the body) and the request-latency
/// histogram. Latency runs to the answer's head (a streamed body is not waited for).
pub async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = route_of(&req).to_owned();
    let request_id = req
        .extensions()
        .get::<CurrentRequestId>()
        .map(|r| r.0.to_string())
        .unwrap_or_default();
    let response = next.run(req).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    metrics::histogram!(
        crate::metrics::HTTP_REQUEST_SECONDS,
        "method" => method,
        "route" => route.clone(),
        "status" => status.to_string()
    )
    .record(took);
    tracing::info!(
        method,
        route,
        status,
        latency_ms = took.as_secs_f64() * 1000.0,
        request_id,
        "request"
    );
    response
}

/// Refuses (400, before anything else reads the request) a URL whose path or query parameters
/// hold a control character ([`idshare_domain::text`]): the API answers a JSON:API error
/// naming the parameter, other paths a page.
pub async fn refuse_control_characters(req: Request, next: Next) -> Response {
    let Some((parameter, details)) = control_character_in(req.uri()) else {
        return next.run(req).await;
    };
    if req.uri().path().starts_with("/api/") {
        let error = ApiError::bad_request(details);
        return match parameter {
            Some(parameter) => error.parameter(parameter),
            None => error,
        }
        .into_response();
    }
    web::refused_page(
        StatusCode::BAD_REQUEST,
        "This address could not be read",
        &details,
    )
}

/// The query parameter (when one can be named) holding a refused control character, and why.
fn control_character_in(uri: &Uri) -> Option<(Option<String>, String)> {
    let refused = |c: char| {
        format!(
            "a control character ({}), which is not accepted",
            describe(c)
        )
    };
    let path = percent_encoding::percent_decode_str(uri.path()).decode_utf8_lossy();
    if let Some(c) = refused_control(&path) {
        return Some((None, format!("The URL path contains {}.", refused(c))));
    }
    let query = uri.query().unwrap_or_default();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if let Some(c) = refused_control(&name) {
            return Some((
                None,
                format!("A query parameter's name contains {}.", refused(c)),
            ));
        }
        if let Some(c) = refused_control(&value) {
            let details = format!("The query parameter `{name}` contains {}.", refused(c));
            return Some((Some(name.into_owned()), details));
        }
    }
    None
}

/// Marks every answer under `/api/` (errors included) `Cache-Control: no-store`: they hold
/// personal data and secrets, and no cache between client and server may keep them.
pub async fn no_store_for_api(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut response = next.run(req).await;
    if api {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
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
