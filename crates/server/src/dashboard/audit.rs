//! Settings > Audit log: who of the organization looked at or acted on what in this
//! environment, newest first, filtered by object id and by user. For admins and reviewers.

use std::collections::HashMap;

use askama::Template;
use axum::{
    Router,
    extract::{Query, State},
    http::StatusCode,
    response::Response,
    routing::get,
};
use idshare_store::{
    Cursor, audit,
    users::{self, Role},
};
use serde::Deserialize;

use super::{Chrome, Moment, PageError, Signed};
use crate::{state::AppState, web};

const PATH: &str = "/dashboard/audit";
/// Who may read the audit log.
const READERS: &[Role] = &[Role::Admin, Role::Reviewer];
const PAGE_SIZE: u32 = 50;
/// The longest object id the filter accepts (ids are far shorter).
const MAX_OBJECT_ID_CHARS: usize = 100;

pub fn routes() -> Router<AppState> {
    Router::new().route(PATH, get(list))
}

/// Writes that the signed-in user did `action` on an object, in the environment of the page.
pub(super) async fn record(
    state: &AppState,
    signed: &Signed,
    action: &str,
    object: (&str, &str),
) -> Result<(), PageError> {
    let mut tx = state.store().begin_write().await?;
    audit::record(
        &mut tx,
        &signed.scope(),
        &signed.session.user.id,
        action,
        object,
        state.now(),
    )
    .await?;
    tx.commit().await?;
    Ok(())
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
    email: String,
    action: String,
    object_type: String,
    object_id: String,
    /// Where a sign-in came from.
    client_address: Option<String>,
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
}

fn link(object_type: &str, object_id: &str) -> Option<String> {
    match object_type {
        "inquiry" => Some(format!("/dashboard/inquiries/{object_id}")),
        "webhook" => Some(format!("/dashboard/webhooks/{object_id}")),
        _ => None,
    }
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
    let emails: HashMap<&str, &str> = people
        .iter()
        .map(|u| (u.id.as_str(), u.email.as_str()))
        .collect();

    let object = query.object.trim();
    let object_error = (object.chars().count() > MAX_OBJECT_ID_CHARS
        || !object
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then(|| "An object id has only letters, digits, _ and -, such as inq_… or whk_….".to_owned());
    let email = query.user.trim().to_lowercase();
    let user_id = if email.is_empty() {
        Ok(None)
    } else {
        people
            .iter()
            .find(|u| u.email == email)
            .map(|u| Some(u.id.as_str()))
            .ok_or_else(|| "No user of your organization has this email address.".to_owned())
    };
    let (user_id, user_error) = match user_id {
        Ok(id) => (id, None),
        Err(e) => (None, Some(e)),
    };

    let (rows, next) = if object_error.is_some() || user_error.is_some() {
        (vec![], None)
    } else {
        let cursor = match query.after.as_str() {
            "" => Cursor::Start,
            after => Cursor::After(after),
        };
        let page = audit::list(
            &mut tx,
            &scope,
            (!object.is_empty()).then_some(object),
            user_id,
            cursor,
            PAGE_SIZE,
        )
        .await?
        .ok_or(PageError::NotFound)?;
        let next = page.has_older.then(|| {
            let last = page
                .items
                .last()
                .map(|e| e.id.to_string())
                .unwrap_or_default();
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("object", object)
                .append_pair("user", &email)
                .append_pair("after", &last)
                .finish();
            format!("{PATH}?{encoded}")
        });
        let rows = page
            .items
            .iter()
            .map(|e| Row {
                created_at: Moment::new(e.created_at, state.now()),
                email: emails
                    .get(e.user_id.as_str())
                    .map_or_else(|| e.user_id.to_string(), |email| (*email).to_owned()),
                action: e.action.clone(),
                object_type: e.object_type.clone(),
                object_id: e.object_id.clone(),
                client_address: e.client_address.clone(),
                link: link(&e.object_type, &e.object_id),
            })
            .collect();
        (rows, next)
    };
    drop(tx);
    let status = if object_error.is_some() || user_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = AuditPage {
        chrome: signed.chrome("audit"),
        rows,
        emails: people.iter().map(|u| u.email.clone()).collect(),
        query,
        object_error,
        user_error,
        next,
    };
    Ok(web::html(status, page.render()))
}
