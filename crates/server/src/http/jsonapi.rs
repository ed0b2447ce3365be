//! The JSON:API envelope: request bodies parsed once into typed documents (with key inflection
//! normalized and errors pointing into the body), and resources rendered for responses.

use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, Request, rejection::BytesRejection},
    http::{StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use idshare_domain::{
    inflection::{key_to_kebab, transform_keys},
    text::{describe, refused_control},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

pub use idshare_service::jsonapi::ResourceObject;

use crate::{
    http::{error::ApiError, query::Fieldsets},
    state::AppState,
};

/// A JSON response body (used for every API answer, errors included).
pub fn json_response_body<T: Serialize>(value: &T) -> Json<&T> {
    Json(value)
}

/// A request body parsed into `T`. Keys may be kebab-, camel- or snake-case.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| match rejection {
                BytesRejection::FailedToBufferBody(_) if rejection.status().as_u16() == 413 => {
                    ApiError::payload_too_large(state.config().body_limit_bytes)
                }
                other => ApiError::bad_request(format!("Could not read the request body: {other}")),
            })?;
        if !bytes.is_empty() && !content_type.as_deref().is_some_and(is_json) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
                "Send the body as JSON with `Content-Type: application/json`.",
            ));
        }
        parse_body(&bytes).map(JsonBody)
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.eq_ignore_ascii_case("application/vnd.api+json")
}

/// Parses a JSON body (an empty body counts as `{}`) into `T`, pointing errors at their place.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "Malformed JSON",
                format!("The request body is not valid JSON: {e}."),
            )
        })?
    };
    let value = whole_numbers_as_integers(transform_keys(value, &key_to_kebab));
    if let Some((pointer, details)) = control_character_in(&value, &mut String::new()) {
        return Err(ApiError::bad_request(details).pointer(pointer));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut pointer: String = e
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
                serde_path_to_error::Segment::Unknown => None,
            })
            .map(|s| format!("/{s}"))
            .collect();
        let message = e.inner().to_string();
        if let Some(field) = unknown_field_name(&message)
            && !pointer.ends_with(&format!("/{field}"))
        {
            pointer.push('/');
            pointer.push_str(field);
        }
        let pointer = if pointer.is_empty() {
            "/".to_owned()
        } else {
            pointer
        };
        ApiError::bad_request(format!("Invalid value at `{pointer}`: {message}.")).pointer(pointer)
    })
}

/// `7200.0` is the integer 7200 to JSON Schema (and to JavaScript, which may send it so): a
/// number without a fraction, within the range of `i64`, is read as that integer wherever an
/// integer is expected.
fn whole_numbers_as_integers(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => {
            let float = n.as_f64().unwrap_or(f64::NAN);
            // `i64::MAX as f64` rounds up to 2^63, which no i64 holds: the bound is exclusive.
            let whole = float.fract() == 0.0 && float >= i64::MIN as f64 && float < i64::MAX as f64;
            if whole {
                Value::from(float as i64)
            } else {
                Value::Number(n)
            }
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, whole_numbers_as_integers(v)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(whole_numbers_as_integers).collect())
        }
        other => other,
    }
}

/// The place of the first string value or member name holding a refused control character
/// ([`idshare_domain::text`]), and why; `at` is the pointer of `value`. A member name is never
/// repeated in the answer: the pointer names the object that holds it.
fn control_character_in(value: &Value, at: &mut String) -> Option<(String, String)> {
    let refused = |c: char| {
        format!(
            "a control character ({}), which is not accepted",
            describe(c)
        )
    };
    let place = |at: &str| {
        if at.is_empty() {
            "/".to_owned()
        } else {
            at.to_owned()
        }
    };
    match value {
        Value::String(s) => refused_control(s).map(|c| {
            (
                place(at),
                format!("The value at `{}` contains {}.", place(at), refused(c)),
            )
        }),
        Value::Array(items) => items.iter().enumerate().find_map(|(index, item)| {
            let len = at.len();
            at.push_str(&format!("/{index}"));
            let found = control_character_in(item, at);
            at.truncate(len);
            found
        }),
        Value::Object(members) => members.iter().find_map(|(key, member)| {
            if let Some(c) = refused_control(key) {
                let details = format!(
                    "A member name in the object at `{}` contains {}.",
                    place(at),
                    refused(c)
                );
                return Some((place(at), details));
            }
            let len = at.len();
            at.push('/');
            at.push_str(&key.replace('~', "~0").replace('/', "~1"));
            let found = control_character_in(member, at);
            at.truncate(len);
            found
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

fn unknown_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// `{data: {type?, attributes}, meta?}` — the shape of every create/update request.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Document<A, M = EmptyMeta> {
    pub data: DataObject<A>,
    #[serde(default)]
    pub meta: M,
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataObject<A> {
    /// Accepted for JSON:API compatibility; the path already names the type.
    #[serde(rename = "type", default)]
    _kind: Option<String>,
    pub attributes: A,
}

/// A request whose body may carry only `meta` (the action endpoints).
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetaOnly<M: Default> {
    #[serde(default)]
    pub meta: M,
}

#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyMeta {}

/// `{data, included}` for one resource.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SingleDocument<A> {
    pub data: ResourceObject<A>,
    /// Related resources asked for with `include`.
    #[schema(value_type = Vec<Object>)]
    pub included: Vec<Value>,
}

/// `{data, links}` for a page of resources, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListDocument<A> {
    pub data: Vec<ResourceObject<A>>,
    pub links: Links,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Links {
    /// Relative URL of the newer page, or null.
    pub prev: Option<String>,
    /// Relative URL of the older page, or null.
    pub next: Option<String>,
}

/// A JSON:API answer: the document, with `fields[type]` applied to every resource in it.
#[derive(Debug)]
pub struct ApiJson(pub StatusCode, pub Value);

impl ApiJson {
    pub fn new<T: Serialize>(
        status: StatusCode,
        document: &T,
        fields: &Fieldsets,
    ) -> Result<Self, ApiError> {
        let mut value = serde_json::to_value(document).map_err(ApiError::internal)?;
        if !fields.is_empty() {
            for key in ["data", "included"] {
                match value.get_mut(key) {
                    Some(Value::Array(items)) => items.iter_mut().for_each(|r| sparse(r, fields)),
                    Some(resource @ Value::Object(_)) => sparse(resource, fields),
                    _ => {}
                }
            }
        }
        Ok(Self(status, value))
    }
}

fn sparse(resource: &mut Value, fields: &Fieldsets) {
    let Some(kind) = resource.get("type").and_then(Value::as_str) else {
        return;
    };
    let Some(keep) = fields.get(kind).cloned() else {
        return;
    };
    if let Some(Value::Object(attributes)) = resource.get_mut("attributes") {
        attributes.retain(|k, _| keep.iter().any(|f| f == k));
    }
}

impl IntoResponse for ApiJson {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Seconds {
        seconds: i64,
        ratio: Option<f64>,
    }

    #[test]
    fn a_whole_number_written_with_a_fraction_is_an_integer() {
        let read: Seconds = parse_body(br#"{"seconds": 7200.0, "ratio": 0.5}"#).unwrap();
        assert_eq!(read.seconds, 7200);
        assert_eq!(read.ratio, Some(0.5));
        let err = parse_body::<Seconds>(br#"{"seconds": 7200.5}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        // Beyond i64: still refused, never wrapped.
        assert!(parse_body::<Seconds>(br#"{"seconds": 1e19}"#).is_err());
        assert_eq!(
            whole_numbers_as_integers(json!([{"n": -3.0}, 1.25])),
            json!([{"n": -3}, 1.25])
        );
    }
}
