//! What the server-rendered pages (the hosted flow and the dashboard) share: HTML responses
//! with strict security headers, redirects, and cookies.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use askama::Template;
use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};

use crate::state::AppState;

/// The headers of every page: no caching (pages hold personal data), no referrer (some URLs
/// hold tokens), no framing, and a policy that allows only this site's stylesheet, scripts and
/// images.
pub fn security_headers(headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, "cache-control", "no-store");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "x-frame-options", "DENY");
    set(headers, "x-content-type-options", "nosniff");
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
}

/// An HTML page; a template that fails to render becomes a plain 500 page (and a log line).
pub fn html(status: StatusCode, rendered: askama::Result<String>) -> Response {
    let (status, body) = match rendered {
        Ok(body) => (status, body),
        Err(e) => {
            tracing::error!(error = ?e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <title>Something went wrong</title></head><body><main><h1>Something went \
                 wrong</h1><p>Please try again in a moment.</p></main></body></html>"
                    .to_owned(),
            )
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    security_headers(headers);
    response
}

#[derive(Debug, Template)]
#[template(path = "refused.html")]
struct RefusedPage<'a> {
    title: &'a str,
    details: &'a str,
}

/// A page for a request refused before any part of the site looked at it (it fits the
/// dashboard and the hosted flow alike).
pub fn refused_page(status: StatusCode, title: &str, details: &str) -> Response {
    html(status, RefusedPage { title, details }.render())
}

/// The address the request came from (the TCP peer), as [`crate::app::serve`] records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // A router served without connection info (none in this server) counts as one client.
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| {
                info.0.ip().to_canonical()
            });
        Ok(Self(ip))
    }
}

/// A 303 to `location` (a path of this site), optionally setting a cookie.
pub fn see_other(location: &str, cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, location);
    }
    if let Some(cookie) = cookie
        && let Ok(value) = HeaderValue::from_str(&cookie)
    {
        headers.insert(header::SET_COOKIE, value);
    }
    security_headers(headers);
    response
}

/// A `text/css` response (the pages' stylesheets are compiled into the binary).
pub fn stylesheet(css: &'static str) -> Response {
    asset("text/css; charset=utf-8", css)
}

/// A static file compiled into the binary, cached for an hour.
pub fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, confined to `path`, and `Secure` when the
/// server's public URL is https. `max_age` 0 deletes the cookie.
pub fn set_cookie(state: &AppState, name: &str, value: &str, path: &str, max_age: i64) -> String {
    let secure = if state.config().public_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; HttpOnly; SameSite=Lax; Path={path}; Max-Age={max_age}{secure}")
}
