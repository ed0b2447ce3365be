//! Settings > Audit log: who of the organization (a user, an API key, or the server itself)
//! looked at or acted on what in this environment, newest first, filtered by object id and by
//! user, and exported as CSV with the same filters. For admins and reviewers.

use std::collections::HashMap;

use askama::Template;
use axum::{
    Router,
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use idshare_service::audit::{self as service, Principal};
use idshare_store::{
    Cursor, api_keys,
    audit::AuditFilter,
    users::{self, Role, User},
};
use serde::Deserialize;

use super::{Chrome, Moment, PageError, Signed};
use crate::{state::AppState, web};

const PATH: &str = "/dashboard/audit";
const CSV_PATH: &str = "/dashboard/audit.csv";
/// Who may read the audit log.
const READERS: &[Role] = &[Role::Admin, Role::Reviewer];
const PAGE_SIZE: u32 = 50;
/// The longest object id the filter accepts (ids are far shorter).
const MAX_OBJECT_ID_CHARS: usize = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(list))
        .route(CSV_PATH, get(export))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    object: String,
    /// A user's email address.
    #[serde(default)]
    user: String,
    #[serde(default)]
    after: String,
}

#[derive(Debug)]
struct Row {
    created_at: Moment,
    /// The user's email, the API key's name, or "System".
    actor: String,
    action: String,
    object_type: String,
    object_id: String,
    /// Where a sign-in came from.
    client_address: Option<String>,
    request_id: Option<String>,
    /// The object's dashboard page, where there is one the user may open.
    link: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/audit.html")]
struct AuditPage {
    chrome: Chrome,
    rows: Vec<Row>,
    query: ListQuery,
    emails: Vec<String>,
    object_error: Option<String>,
    user_error: Option<String>,
    next: Option<String>,
    /// The CSV export of the entries the filters select.
    export: String,
}

fn link(object_type: &str, object_id: &str) -> Option<String> {
    match object_type {
        "inquiry" => Some(format!("/dashboard/inquiries/{object_id}")),
        "webhook" => Some(format!("/dashboard/webhooks/{object_id}")),
        "share-token" => Some(format!("/dashboard/connect/share-tokens/{object_id}")),
        _ => None,
    }
}

/// The filters as read from the query: the filter, or why a field is refused.
struct Filters {
    filter: AuditFilter,
    object_error: Option<String>,
    user_error: Option<String>,
}

fn filters(query: &ListQuery, people: &[User]) -> Filters {
    let object = query.object.trim();
    let object_error = (object.chars().count() > MAX_OBJECT_ID_CHARS
        || !object
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then(|| "An object id has only letters, digits, _ and -, such as inq_… or whk_….".to_owned());
    let email = query.user.trim().to_lowercase();
    let (user_id, user_error) = if email.is_empty() {
        (None, None)
    } else {
        match people.iter().find(|u| u.email == email) {
            Some(user) => (Some(user.id.to_string()), None),
            None => (
                None,
                Some("No user of your organization has this email address.".to_owned()),
            ),
        }
    };
    Filters {
        filter: AuditFilter {
            object_id: (!object.is_empty()).then(|| object.to_owned()),
            actor_id: user_id,
            ..AuditFilter::default()
        },
        object_error,
        user_error,
    }
}

fn query_string(object: &str, user: &str, after: Option<&str>) -> String {
    let mut encoded = url::form_urlencoded::Serializer::new(String::new());
    encoded.append_pair("object", object);
    encoded.append_pair("user", user);
    if let Some(after) = after {
        encoded.append_pair("after", after);
    }
    encoded.finish()
}

async fn list(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    signed.require(READERS)?;
    let scope = signed.scope();
    let mut tx = state.store().begin_read().await?;
    let people = users::list_in_org(&mut tx, &signed.session.user.org_id).await?;
    drop(tx);
    let emails: HashMap<&str, &str> = people
        .iter()
        .map(|u| (u.id.as_str(), u.email.as_str()))
        .collect();
    let Filters {
        filter,
        object_error,
        user_error,
    } = filters(&query, &people);
    let object = query.object.trim();
    let email = query.user.trim().to_lowercase();

    let (rows, next) = if object_error.is_some() || user_error.is_some() {
        (vec![], None)
    } else {
        let cursor = match query.after.as_str() {
            "" => Cursor::Start,
            after => Cursor::After(after),
        };
        let page = service::list(&state, &scope, &filter, cursor, PAGE_SIZE)
            .await?
            .ok_or(PageError::NotFound)?;
        let next = page.has_older.then(|| {
            let last = page
                .items
                .last()
                .map(|e| e.id.to_string())
                .unwrap_or_default();
            format!("{PATH}?{}", query_string(object, &email, Some(&last)))
        });
        // API keys by name: the keys of this scope that appear on the page.
        let mut key_names: HashMap<String, String> = HashMap::new();
        let mut tx = state.store().begin_read().await?;
        for entry in &page.items {
            if let Principal::ApiKey(id) = &entry.actor
                && !key_names.contains_key(id.as_str())
                && let Some(key) = api_keys::get(&mut tx, &scope, id).await?
            {
                key_names.insert(id.to_string(), key.name);
            }
        }
        drop(tx);
        let rows = page
            .items
            .iter()
            .map(|e| Row {
                created_at: Moment::new(e.created_at, state.now()),
                actor: match &e.actor {
                    Principal::User(id) => emails
                        .get(id.as_str())
                        .map_or_else(|| id.to_string(), |email| (*email).to_owned()),
                    Principal::ApiKey(id) => key_names.get(id.as_str()).map_or_else(
                        || format!("API key {id}"),
                        |name| format!("API key “{name}”"),
                    ),
                    Principal::System => "System".to_owned(),
                },
                action: e.action.clone(),
                object_type: e.object_type.clone(),
                object_id: e.object_id.clone(),
                client_address: e.client_address.clone(),
                request_id: e.request_id.as_ref().map(ToString::to_string),
                link: link(&e.object_type, &e.object_id),
            })
            .collect();
        (rows, next)
    };
    let status = if object_error.is_some() || user_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = AuditPage {
        chrome: signed.chrome("audit"),
        rows,
        emails: people.iter().map(|u| u.email.clone()).collect(),
        export: format!("{CSV_PATH}?{}", query_string(object, &email, None)),
        query,
        object_error,
        user_error,
        next,
    };
    Ok(web::html(status, page.render()))
}

/// The entries the page's filters select, as a CSV file (the API's export).
async fn export(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    signed.require(READERS)?;
    let mut tx = state.store().begin_read().await?;
    let people = users::list_in_org(&mut tx, &signed.session.user.org_id).await?;
    drop(tx);
    let Filters {
        filter,
        object_error,
        user_error,
    } = filters(&query, &people);
    if let Some(error) = object_error.or(user_error) {
        return Ok(web::refused_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "This export could not be made",
            &error,
        ));
    }
    let (csv, truncated) = service::export_csv(&state, &signed.scope(), &filter).await?;
    let mut response = (StatusCode::OK, csv).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"audit-entries.csv\""),
    );
    if truncated {
        headers.insert("idshare-truncated", HeaderValue::from_static("true"));
    }
    Ok(response)
}
