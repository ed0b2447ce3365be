//! Settings > API keys: the organization's keys in this environment, creating one (its secret
//! shown once, on the answer, and never again), and revoking one after a confirmation. For
//! admins only; creating and revoking are written to the audit log.

use std::collections::BTreeSet;

use askama::Template;
use axum::{
    Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
    routing::get,
};
use idshare_domain::{
    id::ApiKeyId,
    permission::{Permission, PermissionSet},
};
use idshare_store::{
    Cursor,
    api_keys::{self, ApiKey},
    audit,
    users::Role,
};
use serde::Deserialize;

use super::{Chrome, Moment, PageError, Signed};
use crate::{state::AppState, web};

const PATH: &str = "/dashboard/api-keys";
/// Who may see, create and revoke API keys.
const ADMINS: &[Role] = &[Role::Admin];
const PAGE_SIZE: u32 = 50;
const MAX_NAME_CHARS: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new().route(PATH, get(list).post(create)).route(
        "/dashboard/api-keys/{id}/revoke",
        get(confirm_revoke).post(revoke),
    )
}

#[derive(Debug)]
struct KeyView {
    id: String,
    name: String,
    permissions: String,
    created_at: Moment,
    revoked_at: Option<Moment>,
}

impl KeyView {
    fn new(key: &ApiKey, now: time::OffsetDateTime) -> Self {
        let permissions = if key.permissions == PermissionSet::all() {
            format!("all ({})", Permission::ALL.len())
        } else if key.permissions == PermissionSet::default() {
            "none".to_owned()
        } else {
            key.permissions
                .iter()
                .map(Permission::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        Self {
            id: key.id.to_string(),
            name: key.name.clone(),
            permissions,
            created_at: Moment::new(key.created_at, now),
            revoked_at: key.revoked_at.map(|t| Moment::new(t, now)),
        }
    }
}

#[derive(Debug)]
struct PermissionChoice {
    value: &'static str,
    checked: bool,
}

/// A key just created, with its secret: on the answer to the creation only.
#[derive(Debug)]
struct Created {
    key: KeyView,
    secret: String,
}

/// The confirmation asked before revoking a key.
#[derive(Debug)]
struct Confirm {
    key: KeyView,
    error: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/api_keys.html")]
struct ListPage {
    chrome: Chrome,
    keys: Vec<KeyView>,
    paging: super::Paging,
    created: Option<Created>,
    confirm: Option<Confirm>,
    name: String,
    name_error: Option<String>,
    permissions: Vec<PermissionChoice>,
    permissions_error: Option<String>,
}

/// The create form as sent (or blank, all permissions checked).
#[derive(Debug)]
struct CreateForm {
    name: String,
    permissions: BTreeSet<String>,
    name_error: Option<String>,
    permissions_error: Option<String>,
}

impl Default for CreateForm {
    fn default() -> Self {
        Self {
            name: String::new(),
            permissions: Permission::ALL
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            name_error: None,
            permissions_error: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    before: String,
    #[serde(default)]
    after: String,
}

async fn list_page(
    state: &AppState,
    signed: &Signed,
    cursor: Cursor<'_>,
    form: CreateForm,
    created: Option<Created>,
    confirm: Option<Confirm>,
) -> Result<ListPage, PageError> {
    let mut tx = state.store().begin_read().await?;
    let page = api_keys::list(&mut tx, &signed.scope(), cursor, PAGE_SIZE)
        .await?
        .ok_or(PageError::NotFound)?;
    drop(tx);
    let paging = super::Paging::new(PATH, &[], &page, |k| k.id.to_string(), "keys");
    Ok(ListPage {
        chrome: signed.chrome("api-keys"),
        keys: page
            .items
            .iter()
            .map(|k| KeyView::new(k, state.now()))
            .collect(),
        paging,
        created,
        confirm,
        permissions: Permission::ALL
            .iter()
            .map(|p| PermissionChoice {
                value: p.as_str(),
                checked: form.permissions.contains(p.as_str()),
            })
            .collect(),
        name: form.name,
        name_error: form.name_error,
        permissions_error: form.permissions_error,
    })
}

async fn list(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    signed.require(ADMINS)?;
    let page = list_page(
        &state,
        &signed,
        super::cursor(&query.before, &query.after),
        CreateForm::default(),
        None,
        None,
    )
    .await?;
    Ok(web::html(StatusCode::OK, page.render()))
}

/// Creates a key and answers with the list and the secret, which is never shown again. The
/// form is read by hand: its permission checkboxes repeat one name.
async fn create(
    State(state): State<AppState>,
    signed: Signed,
    body: Bytes,
) -> Result<Response, PageError> {
    let mut csrf = String::new();
    let mut form = CreateForm {
        permissions: BTreeSet::new(),
        ..CreateForm::default()
    };
    for (key, value) in url::form_urlencoded::parse(&body) {
        match key.as_ref() {
            "csrf" => csrf = value.into_owned(),
            "name" => form.name = value.into_owned(),
            "permissions" => {
                form.permissions.insert(value.into_owned());
            }
            _ => {}
        }
    }
    signed.check_csrf(&state, &csrf)?;
    signed.require(ADMINS)?;

    let name = form.name.trim().to_owned();
    if name.is_empty() {
        form.name_error = Some("Give the key a name, such as the app that uses it.".to_owned());
    } else if name.chars().count() > MAX_NAME_CHARS {
        form.name_error = Some(format!("At most {MAX_NAME_CHARS} characters."));
    }
    let mut permissions = PermissionSet::default();
    match PermissionSet::parse_list(
        &form
            .permissions
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(","),
    ) {
        Ok(set) if set == PermissionSet::default() => {
            form.permissions_error = Some("Choose at least one permission.".to_owned());
        }
        Ok(set) => permissions = set,
        Err(e) => form.permissions_error = Some(e.to_string()),
    }
    if form.name_error.is_some() || form.permissions_error.is_some() {
        let page = list_page(&state, &signed, Cursor::Start, form, None, None).await?;
        return Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()));
    }

    let scope = signed.scope();
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let (key, secret) = api_keys::create(&mut tx, &scope, &name, &permissions, now).await?;
    audit::record_by(
        &mut tx,
        &scope,
        &signed.actor(),
        "api-key.created",
        ("api-key", key.id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    let created = Created {
        key: KeyView::new(&key, state.now()),
        secret,
    };
    let page = list_page(
        &state,
        &signed,
        Cursor::Start,
        CreateForm::default(),
        Some(created),
        None,
    )
    .await?;
    Ok(web::html(StatusCode::OK, page.render()))
}

/// A key of the user's organization and environment, or the 404 page.
async fn key_in_scope(state: &AppState, signed: &Signed, id: &str) -> Result<ApiKey, PageError> {
    let id = ApiKeyId::parse(id).map_err(|_| PageError::NotFound)?;
    let mut tx = state.store().begin_read().await?;
    api_keys::get(&mut tx, &signed.scope(), &id)
        .await?
        .ok_or(PageError::NotFound)
}

/// Asks whether to revoke the key.
async fn confirm_revoke(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    signed.require(ADMINS)?;
    let key = key_in_scope(&state, &signed, &id).await?;
    let confirm = Confirm {
        key: KeyView::new(&key, state.now()),
        error: None,
    };
    let page = list_page(
        &state,
        &signed,
        Cursor::Start,
        CreateForm::default(),
        None,
        Some(confirm),
    )
    .await?;
    Ok(web::html(StatusCode::OK, page.render()))
}

#[derive(Debug, Deserialize)]
struct RevokeForm {
    csrf: String,
    #[serde(default)]
    confirm: String,
}

/// Revokes the key once confirmed: requests with it are refused from then on.
async fn revoke(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<RevokeForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(ADMINS)?;
    let key = key_in_scope(&state, &signed, &id).await?;
    let refusal = if form.confirm != "yes" {
        Some("Confirm that the key is to be revoked; nothing was changed.")
    } else if key.revoked_at.is_some() {
        Some("This key is already revoked.")
    } else {
        let scope = signed.scope();
        let now = state.now();
        let mut tx = state.store().begin_write().await?;
        let revoked = api_keys::revoke(&mut tx, &key.id, now).await?;
        if revoked {
            audit::record_by(
                &mut tx,
                &scope,
                &signed.actor(),
                "api-key.revoked",
                ("api-key", key.id.as_str()),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        (!revoked).then_some("This key is already revoked.")
    };
    match refusal {
        None => Ok(super::done(&state, PATH, super::Notice::ApiKeyRevoked)),
        Some(error) => {
            let key = key_in_scope(&state, &signed, &id).await?;
            let confirm = Confirm {
                key: KeyView::new(&key, state.now()),
                error: Some(error.to_owned()),
            };
            let page = list_page(
                &state,
                &signed,
                Cursor::Start,
                CreateForm::default(),
                None,
                Some(confirm),
            )
            .await?;
            Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
        }
    }
}
