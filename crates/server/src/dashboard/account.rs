//! Settings > Account, for every signed-in user: changing one's password (the other sessions
//! end), two-factor authentication (set up on the two-factor page; turned off with a code), and
//! one's sessions, each revocable.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, State, rejection::FormRejection},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use idshare_domain::id::DashboardSessionId;
use idshare_service::{ServiceError, people};
use idshare_store::{dashboard_sessions, orgs};
use serde::Deserialize;

use super::{Chrome, PageError, Signed, explainable, people::SessionView};
use crate::{http::error::status_of, state::AppState, web};

const PATH: &str = "/dashboard/account";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(show))
        .route("/dashboard/account/password", post(change_password))
        .route("/dashboard/account/two-factor/off", post(two_factor_off))
        .route(
            "/dashboard/account/sessions/{id}/revoke",
            post(revoke_session),
        )
}

#[derive(Debug, Template)]
#[template(path = "dashboard/account.html")]
struct AccountPage {
    chrome: Chrome,
    two_factor: bool,
    two_factor_required: bool,
    sessions: Vec<SessionView>,
    this_session: String,
    notice: Option<String>,
    error: Option<String>,
}

async fn render(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let user = &signed.session.user;
    let mut tx = state.store().begin_read().await?;
    let sessions = dashboard_sessions::list_for_user(&mut tx, &user.id, state.now()).await?;
    let two_factor_required = orgs::two_factor_required(&mut tx, &user.org_id)
        .await?
        .is_some();
    let two_factor = idshare_store::users::totp_state(&mut tx, &user.id)
        .await?
        .is_some_and(|t| t.enabled);
    drop(tx);
    let page = AccountPage {
        chrome: signed.chrome("account"),
        two_factor,
        two_factor_required,
        sessions: sessions.iter().map(SessionView::new).collect(),
        this_session: signed.session.id.to_string(),
        notice,
        error,
    };
    Ok(web::html(status, page.render()))
}

/// The page after a change: its notice, or why it was refused.
async fn outcome(
    state: &AppState,
    signed: &Signed,
    done: Result<String, ServiceError>,
) -> Result<Response, PageError> {
    match done {
        Ok(notice) => render(state, signed, StatusCode::OK, Some(notice), None).await,
        Err(e) if explainable(&e) => {
            render(state, signed, status_of(&e), None, Some(e.to_string())).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn show(State(state): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    render(&state, &signed, StatusCode::OK, None, None).await
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default, rename = "password-again")]
    password_again: String,
}

async fn change_password(
    State(state): State<AppState>,
    signed: Signed,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Ok(Form(form)) = form else {
        return Err(PageError::BadForm);
    };
    signed.check_csrf(&state, &form.csrf)?;
    let done = people::change_password(
        state.store(),
        &signed.session.user,
        &signed.session.id,
        &form.current,
        &form.password,
        &form.password_again,
        state.now(),
    )
    .await
    .map(|()| "Your password is changed; your other sessions have ended.".to_owned());
    outcome(&state, &signed, done).await
}

#[derive(Debug, Deserialize)]
struct CodeForm {
    csrf: String,
    #[serde(default)]
    code: String,
}

async fn two_factor_off(
    State(state): State<AppState>,
    signed: Signed,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Ok(Form(form)) = form else {
        return Err(PageError::BadForm);
    };
    signed.check_csrf(&state, &form.csrf)?;
    let done =
        people::turn_off_two_factor(state.store(), &signed.session.user, &form.code, state.now())
            .await
            .map(|()| "Two-factor authentication is off.".to_owned());
    outcome(&state, &signed, done).await
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// Ends one of the user's own sessions (this one too: it is signed out).
async fn revoke_session(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    let id = DashboardSessionId::parse(&id).map_err(|_| PageError::NotFound)?;
    people::revoke_own_session(state.store(), &signed.session.user, &id, state.now()).await?;
    if id == signed.session.id {
        return Ok(web::see_other("/dashboard/sign-in", None));
    }
    outcome(&state, &signed, Ok("The session has ended.".to_owned())).await
}
