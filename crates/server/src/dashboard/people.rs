//! Settings > People, for admins: the organization's users with their role, status, two-factor
//! and last sign-in; inviting, changing roles, disabling and enabling, removing, resetting
//! passwords, a user's sessions, and requiring two-factor authentication. idshare sends no
//! mail: invitations and resets show a one-time set-password link to hand over. Also the page
//! that link opens, outside the signed-in area.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, State, rejection::FormRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use idshare_domain::{
    id::{DashboardSessionId, UserId},
    people::UserStatus,
    time_format::format_timestamp,
};
use idshare_service::{
    ServiceError,
    people::{self, Actor},
};
use idshare_store::{
    dashboard_sessions::SessionSummary,
    orgs,
    set_password_links::{self, LinkState},
    users::{self, Role, User},
};
use serde::Deserialize;

use super::{Chrome, PageError, Signed, explainable};
use crate::{http::error::status_of, state::AppState, web};

const PATH: &str = "/dashboard/people";
/// Who may manage people.
const ADMINS: &[Role] = &[Role::Admin];
const ROLES: [&str; 3] = ["admin", "reviewer", "viewer"];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(list).post(invite))
        .route("/dashboard/people/two-factor", post(require_two_factor))
        .route("/dashboard/people/{id}/{action}", get(confirm).post(act))
        .route(
            "/dashboard/set-password/{token}",
            get(set_password_page).post(set_password),
        )
}

#[derive(Debug)]
struct PersonView {
    id: String,
    email: String,
    role: &'static str,
    status: &'static str,
    two_factor: bool,
    last_signed_in_at: Option<String>,
    is_me: bool,
}

impl PersonView {
    fn new(user: &User, me: &User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.clone(),
            role: user.role.as_str(),
            status: user.status.as_str(),
            two_factor: user.two_factor,
            last_signed_in_at: user.last_signed_in_at.map(format_timestamp),
            is_me: user.id == me.id,
        }
    }
}

#[derive(Debug)]
pub(super) struct SessionView {
    pub(super) id: String,
    pub(super) created_at: String,
    pub(super) last_seen_at: String,
    pub(super) client_address: String,
    pub(super) user_agent: String,
}

impl SessionView {
    pub(super) fn new(session: &SessionSummary) -> Self {
        Self {
            id: session.id.to_string(),
            created_at: format_timestamp(session.created_at),
            last_seen_at: format_timestamp(session.last_seen_at),
            client_address: session.client_address.clone().unwrap_or_else(|| "—".into()),
            user_agent: session.user_agent.clone().unwrap_or_else(|| "—".into()),
        }
    }
}

/// An action asked for, shown before it is done.
#[derive(Debug)]
struct Confirm {
    person: PersonView,
    action: &'static str,
    question: &'static str,
    consequence: &'static str,
    button: &'static str,
}

/// A user's sessions, shown on the page.
#[derive(Debug)]
struct Sessions {
    person: PersonView,
    sessions: Vec<SessionView>,
}

#[derive(Debug, Default)]
struct Extras {
    notice: Option<String>,
    error: Option<String>,
    /// A set-password link just made (an invitation or a reset), shown this once.
    link: Option<String>,
    confirm: Option<Confirm>,
    sessions: Option<Sessions>,
    invite_email: String,
    invite_role: String,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/people.html")]
struct ListPage {
    chrome: Chrome,
    people: Vec<PersonView>,
    roles: [&'static str; 3],
    two_factor_required: bool,
    extras: Extras,
}

async fn render(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    extras: Extras,
) -> Result<Response, PageError> {
    let me = &signed.session.user;
    let mut tx = state.store().begin_read().await?;
    let people = users::list_people(&mut tx, &me.org_id).await?;
    let two_factor_required = orgs::two_factor_required(&mut tx, &me.org_id)
        .await?
        .is_some();
    drop(tx);
    let page = ListPage {
        chrome: signed.chrome("people"),
        people: people.iter().map(|u| PersonView::new(u, me)).collect(),
        roles: ROLES,
        two_factor_required,
        extras,
    };
    Ok(web::html(status, page.render()))
}

/// The page again with why a change was refused; a failure is the error page.
async fn refused(
    state: &AppState,
    signed: &Signed,
    e: ServiceError,
    extras: Extras,
) -> Result<Response, PageError> {
    if !explainable(&e) {
        return Err(e.into());
    }
    let error = e
        .reasons()
        .iter()
        .map(|r| r.details)
        .collect::<Vec<_>>()
        .join(" ");
    let extras = Extras {
        error: Some(error),
        ..extras
    };
    render(state, signed, status_of(&e), extras).await
}

async fn list(State(state): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    signed.require(ADMINS)?;
    render(&state, &signed, StatusCode::OK, Extras::default()).await
}

fn link_url(state: &AppState, token: &str) -> String {
    format!(
        "{}{}",
        state.config().public_url(),
        set_password_links::path(token)
    )
}

#[derive(Debug, Deserialize)]
struct InviteForm {
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

async fn invite(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<InviteForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(ADMINS)?;
    let me = &signed.session.user;
    let retry = Extras {
        invite_email: form.email.clone(),
        invite_role: form.role.clone(),
        ..Extras::default()
    };
    let Ok(role) = form.role.parse::<Role>() else {
        let e = ServiceError::invalid("Invalid role", "Choose admin, reviewer or viewer.");
        return refused(&state, &signed, e, retry).await;
    };
    match people::invite(
        state.store(),
        Actor::Admin(me),
        &me.org_id,
        &form.email,
        role,
        state.now(),
    )
    .await
    {
        Ok((user, token)) => {
            let extras = Extras {
                notice: Some(format!(
                    "{} is invited as {}. Give them the link below: it sets their password.",
                    user.email,
                    role.as_str()
                )),
                link: Some(link_url(&state, &token)),
                ..Extras::default()
            };
            render(&state, &signed, StatusCode::OK, extras).await
        }
        Err(e) => refused(&state, &signed, e, retry).await,
    }
}

#[derive(Debug, Deserialize)]
struct RequireForm {
    csrf: String,
    #[serde(default)]
    required: String,
}

async fn require_two_factor(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<RequireForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(ADMINS)?;
    let required = form.required == "yes";
    match people::require_two_factor(state.store(), &signed.session.user, required, state.now())
        .await
    {
        Ok(()) => {
            let notice = if required {
                "Two-factor authentication is now required: users without it set it up right \
                 after their password."
            } else {
                "Two-factor authentication is no longer required."
            };
            let extras = Extras {
                notice: Some(notice.to_owned()),
                ..Extras::default()
            };
            render(&state, &signed, StatusCode::OK, extras).await
        }
        Err(e) => refused(&state, &signed, e, Extras::default()).await,
    }
}

/// A user of the admin's organization, or the 404 page (another organization's too).
async fn person(state: &AppState, signed: &Signed, id: &str) -> Result<User, PageError> {
    let id = UserId::parse(id).map_err(|_| PageError::NotFound)?;
    let mut tx = state.store().begin_read().await?;
    users::get_in_org(&mut tx, &signed.session.user.org_id, &id, false)
        .await?
        .ok_or(PageError::NotFound)
}

/// The confirmation an irreversible action asks for, by its path segment.
fn confirmation(action: &str) -> Option<(&'static str, &'static str, &'static str, &'static str)> {
    Some(match action {
        "disable" => (
            "disable",
            "Disable this user?",
            "Their sessions end at once and they cannot sign in until an administrator enables \
             them again.",
            "Disable",
        ),
        "remove" => (
            "remove",
            "Remove this user?",
            "They cannot sign in again and their address cannot be used for another user. Their \
             entries in the audit log stay. This cannot be undone.",
            "Remove",
        ),
        "reset-password" => (
            "reset-password",
            "Reset this user's password?",
            "Their password and two-factor authentication stop working and their sessions end \
             at once; you get a one-time link, valid 72 hours, that lets them set a new \
             password.",
            "Reset password",
        ),
        "revoke-sessions" => (
            "revoke-sessions",
            "Sign this user out everywhere?",
            "Every session of theirs ends at once; they can sign in again.",
            "Revoke all sessions",
        ),
        _ => return None,
    })
}

/// A user's sessions, or the confirmation an action asks for.
async fn confirm(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, action)): Path<(String, String)>,
) -> Result<Response, PageError> {
    signed.require(ADMINS)?;
    let user = person(&state, &signed, &id).await?;
    let me = &signed.session.user;
    let extras = if action == "sessions" {
        let (_, sessions) =
            people::sessions_of(state.store(), &me.org_id, &user.id, state.now()).await?;
        Extras {
            sessions: Some(Sessions {
                person: PersonView::new(&user, me),
                sessions: sessions.iter().map(SessionView::new).collect(),
            }),
            ..Extras::default()
        }
    } else {
        let (action, question, consequence, button) =
            confirmation(&action).ok_or(PageError::NotFound)?;
        Extras {
            confirm: Some(Confirm {
                person: PersonView::new(&user, me),
                action,
                question,
                consequence,
                button,
            }),
            ..Extras::default()
        }
    };
    render(&state, &signed, StatusCode::OK, extras).await
}

#[derive(Debug, Deserialize)]
struct ActionForm {
    csrf: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    role: String,
    /// One session to end (revoke-sessions); all when absent.
    #[serde(default)]
    session: String,
}

/// Does an action on a user: `role`, `enable`, and after a confirmation `disable`, `remove`,
/// `reset-password`, `revoke-sessions`.
async fn act(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, action)): Path<(String, String)>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Ok(Form(form)) = form else {
        return Err(PageError::BadForm);
    };
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(ADMINS)?;
    let user = person(&state, &signed, &id).await?;
    let me = &signed.session.user;
    let actor = Actor::Admin(me);
    let (store, org, now) = (state.store(), &me.org_id, state.now());
    if confirmation(&action).is_some() && form.confirm != "yes" {
        let e = ServiceError::invalid(
            "Not confirmed",
            "Confirm the action first; nothing was changed.",
        );
        return refused(&state, &signed, e, Extras::default()).await;
    }
    let done: Result<Extras, ServiceError> = match action.as_str() {
        "role" => match form.role.parse::<Role>() {
            Ok(role) => people::set_role(store, actor, org, &user.id, role, now)
                .await
                .map(|u| notice(format!("{} is now {}.", u.email, role.as_str()))),
            Err(_) => Err(ServiceError::invalid(
                "Invalid role",
                "Choose admin, reviewer or viewer.",
            )),
        },
        "enable" => people::enable(store, actor, org, &user.id, now)
            .await
            .map(|u| notice(format!("{} is enabled and can sign in again.", u.email))),
        "disable" => people::disable(store, actor, org, &user.id, now)
            .await
            .map(|u| {
                notice(format!(
                    "{} is disabled; their sessions have ended.",
                    u.email
                ))
            }),
        "remove" => people::remove(store, actor, org, &user.id, now)
            .await
            .map(|u| notice(format!("{} is removed.", u.email))),
        "reset-password" => people::reset_password(store, actor, org, &user.id, now)
            .await
            .map(|(u, token)| Extras {
                link: Some(link_url(&state, &token)),
                ..notice(format!(
                    "{}'s password is reset and their sessions have ended. Give them the link \
                     below: it sets a new password.",
                    u.email
                ))
            }),
        "revoke-sessions" => {
            let session = match form.session.as_str() {
                "" => None,
                s => Some(DashboardSessionId::parse(s).map_err(|_| PageError::NotFound)?),
            };
            people::revoke_sessions(store, actor, org, &user.id, session.as_ref(), now)
                .await
                .map(|ended| notice(format!("{ended} session(s) of {} ended.", user.email)))
        }
        _ => return Err(PageError::NotFound),
    };
    match done {
        Ok(extras) => render(&state, &signed, StatusCode::OK, extras).await,
        Err(e) => refused(&state, &signed, e, Extras::default()).await,
    }
}

fn notice(text: String) -> Extras {
    Extras {
        notice: Some(text),
        ..Extras::default()
    }
}

#[derive(Debug, Template)]
#[template(path = "dashboard/set_password.html")]
struct SetPasswordPage {
    path: String,
    email: String,
    invited: bool,
    error: Option<String>,
}

/// Why a link cannot be used, as a page of its own.
fn unusable(state: &LinkState) -> Response {
    let (status, title, text) = match state {
        LinkState::Used => (
            StatusCode::GONE,
            "This link has been used",
            "Each link sets a password once. Sign in with the password you chose, or ask an \
             administrator of your organization for a new link.",
        ),
        LinkState::Expired => (
            StatusCode::GONE,
            "This link has expired",
            "Links last 72 hours, and a newer link replaces an older one. Ask an administrator \
             of your organization for a new link.",
        ),
        LinkState::Unknown | LinkState::Usable { .. } => (
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "Check that the whole link was copied, or ask an administrator of your organization \
             for a new one.",
        ),
    };
    super::message(status, title, &[text])
}

/// The form of a usable link, with `error` (a refused password), or why the link is unusable.
async fn set_password_form(
    state: &AppState,
    token: &str,
    error: Option<String>,
) -> Result<Response, PageError> {
    let link = people::link_state(state.store(), token, state.now()).await?;
    let LinkState::Usable { user_id, .. } = &link else {
        return Ok(unusable(&link));
    };
    let mut tx = state.store().begin_read().await?;
    let credentials = users::credentials_by_id(&mut tx, user_id).await?;
    drop(tx);
    let Some(user) = credentials.map(|c| c.user) else {
        return Ok(unusable(&LinkState::Unknown));
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = SetPasswordPage {
        path: set_password_links::path(token),
        email: user.email.clone(),
        invited: user.status == UserStatus::Invited,
        error,
    };
    Ok(web::html(status, page.render()))
}

async fn set_password_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    set_password_form(&state, &token, None).await
}

#[derive(Debug, Deserialize)]
struct SetPasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default, rename = "password-again")]
    password_again: String,
}

/// Sets the password and uses the link up, then sends to the sign-in page.
async fn set_password(
    State(state): State<AppState>,
    Path(token): Path<String>,
    form: Result<Form<SetPasswordForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Ok(Form(form)) = form else {
        return Err(PageError::BadForm);
    };
    match people::set_password_with_link(
        state.store(),
        &token,
        &form.password,
        &form.password_again,
        state.now(),
    )
    .await
    {
        Ok(_) => Ok(web::see_other("/dashboard/sign-in", None)),
        Err(e @ ServiceError::Invalid(_)) => {
            set_password_form(&state, &token, Some(e.to_string())).await
        }
        Err(ServiceError::Gone { .. } | ServiceError::NotFound { .. }) => {
            let link = people::link_state(state.store(), &token, state.now()).await?;
            Ok(unusable(match link {
                // Usable yet refused: its user was disabled meanwhile.
                LinkState::Usable { .. } => &LinkState::Expired,
                ref other => other,
            }))
        }
        Err(e) => Ok(PageError::from(e).into_response()),
    }
}
