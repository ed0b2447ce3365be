//! The web dashboard under `/dashboard`: server-rendered pages (askama, escaped by default)
//! that need no JavaScript. Users sign in with email and password; the session lives in the
//! database (any node serves it) behind an HttpOnly cookie; every form carries a CSRF token;
//! every page checks the role and is confined to the user's organization and the environment
//! chosen in the header.

mod api_keys;
mod audit;
mod connections;
mod definitions;
mod inquiries;
mod overview;
mod share_tokens;
mod svg;
mod webhooks;

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration as StdDuration, Instant},
};

use askama::Template;
use axum::{
    Form, Router,
    extract::{FromRequestParts, State},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use idshare_domain::environment::Environment;
use idshare_store::{
    Scope,
    dashboard_sessions::{self, ABSOLUTE_LIMIT, DashboardSession},
    users::{self, Role},
};
use serde::Deserialize;

use crate::{
    app::AppState,
    error::{ApiError, status_of},
    service::ServiceError,
    web,
};

const COOKIE: &str = "idshare_dashboard";
const CSRF_PURPOSE: &str = "dashboard-csrf";
const STYLESHEET: &str = include_str!("../../templates/dashboard/dashboard.css");
/// htmx 2 (0BSD licence, `templates/dashboard/vendor/`): progressive enhancement only — every
/// page works without it.
const HTMX: &str = include_str!("../../templates/dashboard/vendor/htmx.min.js");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { web::see_other("/dashboard", None) }))
        .route("/dashboard", get(home))
        .route("/dashboard/sign-in", get(sign_in_page).post(sign_in))
        .route("/dashboard/sign-out", post(sign_out))
        .route("/dashboard/environment", post(switch_environment))
        .route("/dashboard/static/dashboard.css", get(stylesheet))
        .route(
            "/dashboard/static/htmx.min.js",
            get(|| async { web::asset("text/javascript; charset=utf-8", HTMX) }),
        )
        .merge(share_tokens::routes())
        .merge(connections::routes())
        .merge(inquiries::routes())
        .merge(overview::routes())
        .merge(definitions::routes())
        .merge(webhooks::routes())
        .merge(api_keys::routes())
        .merge(audit::routes())
        .route("/dashboard/{*rest}", get(not_found_page))
}

async fn stylesheet() -> Response {
    web::stylesheet(STYLESHEET)
}

/// Failed sign-ins allowed per email address in [`LOGIN_WINDOW`]; then the address is refused
/// until the window has passed (counted per server process).
const LOGIN_FAILURES: usize = 5;
const LOGIN_WINDOW: StdDuration = StdDuration::from_secs(15 * 60);

/// Recent failed sign-ins by email address.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    fn locked(&self, email: &str) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let recent = failures.entry(email.to_owned()).or_default();
        recent.retain(|at| at.elapsed() < LOGIN_WINDOW);
        recent.len() >= LOGIN_FAILURES
    }

    fn failed(&self, email: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures
            .entry(email.to_owned())
            .or_default()
            .push(Instant::now());
    }

    fn succeeded(&self, email: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(email);
    }
}

/// The signed-in user of a request, with what every page header shows.
#[derive(Debug, Clone)]
pub struct Signed {
    pub session: DashboardSession,
    pub csrf: String,
}

impl Signed {
    pub fn scope(&self) -> Scope {
        Scope::new(self.session.user.org_id.clone(), self.session.environment)
    }

    pub fn role(&self) -> Role {
        self.session.user.role
    }

    /// Refuses (403) a user whose role is not among `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<(), PageError> {
        if allowed.contains(&self.role()) {
            Ok(())
        } else {
            Err(PageError::Forbidden)
        }
    }

    /// Refuses (403) a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, state: &AppState, token: &str) -> Result<(), PageError> {
        let valid = hex::decode(token.trim()).is_ok_and(|tag| {
            state
                .store()
                .crypto()
                .verify(CSRF_PURPOSE, self.session.id.as_str().as_bytes(), &tag)
        });
        if valid {
            Ok(())
        } else {
            Err(PageError::BadForm)
        }
    }

    pub fn chrome(&self, section: &'static str) -> Chrome {
        Chrome {
            email: self.session.user.email.clone(),
            role: self.role().as_str(),
            organization: self.session.user.org_id.to_string(),
            environment: self.session.environment.as_str(),
            csrf: self.csrf.clone(),
            section,
        }
    }
}

/// What the header of every signed-in page shows.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub email: String,
    pub role: &'static str,
    pub organization: String,
    pub environment: &'static str,
    pub csrf: String,
    /// The navigation entry of the page.
    pub section: &'static str,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let token = web::cookie(&parts.headers, COOKIE).ok_or(PageError::SignIn)?;
        let mut tx = state.store().begin_write().await?;
        let session = dashboard_sessions::touch(&mut tx, token, state.now())
            .await?
            .ok_or(PageError::SignIn)?;
        tx.commit().await?;
        let csrf = hex::encode(
            state
                .store()
                .crypto()
                .sign(CSRF_PURPOSE, session.id.as_str().as_bytes()),
        );
        Ok(Self { session, csrf })
    }
}

/// Why a page cannot be shown; each is a clear page, never an error dump.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in, or the session ended: to the sign-in page.
    SignIn,
    Forbidden,
    NotFound,
    /// A form without a valid CSRF token.
    BadForm,
    /// A service refused (the page says why) or failed (the page says nothing internal).
    Service(ServiceError),
}

impl From<idshare_store::StoreError> for PageError {
    fn from(e: idshare_store::StoreError) -> Self {
        PageError::from(ServiceError::from(e))
    }
}

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound { .. } => PageError::NotFound,
            e => PageError::Service(e),
        }
    }
}

/// Whether a page can show why a service refused: anything but "not found" (a page of its own)
/// and a failure (which says nothing internal).
pub(crate) fn explainable(e: &ServiceError) -> bool {
    !e.is_failure() && !matches!(e, ServiceError::NotFound { .. })
}

#[derive(Debug, Template)]
#[template(path = "dashboard/message.html")]
struct MessagePage {
    title: &'static str,
    paragraphs: Vec<String>,
}

fn message(status: StatusCode, title: &'static str, paragraphs: &[&str]) -> Response {
    let page = MessagePage {
        title,
        paragraphs: paragraphs.iter().map(|p| (*p).to_owned()).collect(),
    };
    web::html(status, page.render())
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn => web::see_other("/dashboard/sign-in", None),
            PageError::Forbidden => message(
                StatusCode::FORBIDDEN,
                "Not allowed",
                &["Your role does not allow this. Ask an administrator of your organization."],
            ),
            PageError::NotFound => not_found(),
            PageError::BadForm => message(
                StatusCode::FORBIDDEN,
                "This form could not be accepted",
                &[
                    "It was sent from an old or another page. Go back, reload the page and try again.",
                ],
            ),
            PageError::Service(e) if e.is_failure() => {
                // The API's answer logs the cause and tells an unavailable database (503, with
                // Retry-After) from a failure; the page says nothing internal.
                let answer = ApiError::from(e).into_response();
                let title = if answer.status() == StatusCode::SERVICE_UNAVAILABLE {
                    "Temporarily unavailable"
                } else {
                    "Something went wrong"
                };
                let mut page = message(answer.status(), title, &["Please try again in a moment."]);
                if let Some(retry_after) = answer.headers().get("retry-after") {
                    page.headers_mut()
                        .insert("retry-after", retry_after.clone());
                }
                page
            }
            PageError::Service(e) => {
                let page = MessagePage {
                    title: "That did not work",
                    paragraphs: e.reasons().iter().map(|r| r.details.to_owned()).collect(),
                };
                web::html(status_of(&e), page.render())
            }
        }
    }
}

fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Page not found",
        &["There is nothing here, or it belongs to another organization or environment."],
    )
}

async fn not_found_page() -> Response {
    not_found()
}

/// The dashboard's home: the overview.
async fn home(_signed: Signed) -> Response {
    web::see_other("/dashboard/overview", None)
}

#[derive(Debug, Template)]
#[template(path = "dashboard/sign_in.html")]
struct SignInPage {
    email: String,
    error: Option<&'static str>,
    csrf: String,
}

/// The cookie that ties the sign-in form to the browser it was sent to, so that another site
/// cannot sign a visitor in to an account of its choosing (login CSRF).
const SIGN_IN_COOKIE: &str = "idshare_sign_in";
const SIGN_IN_PURPOSE: &str = "dashboard-sign-in";

fn sign_in_csrf(state: &AppState, nonce: &str) -> String {
    hex::encode(
        state
            .store()
            .crypto()
            .sign(SIGN_IN_PURPOSE, nonce.as_bytes()),
    )
}

/// The sign-in page, with a fresh form nonce in its own cookie.
async fn sign_in_page(State(state): State<AppState>) -> Response {
    let nonce = idshare_store::random_secret("signin");
    let page = SignInPage {
        email: String::new(),
        error: None,
        csrf: sign_in_csrf(&state, &nonce),
    };
    let mut response = web::html(StatusCode::OK, page.render());
    let cookie = web::set_cookie(&state, SIGN_IN_COOKIE, &nonce, "/dashboard", 3600);
    if let Ok(value) = axum::http::HeaderValue::from_str(&cookie) {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, value);
    }
    response
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf: String,
    email: String,
    password: String,
}

/// Signs in with email and password. Wrong credentials and unknown emails get the same answer;
/// after [`LOGIN_FAILURES`] failures an address is refused for a while.
async fn sign_in(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let Some(nonce) = web::cookie(&headers, SIGN_IN_COOKIE).map(str::to_owned) else {
        return PageError::BadForm.into_response();
    };
    let valid = hex::decode(form.csrf.trim()).is_ok_and(|tag| {
        state
            .store()
            .crypto()
            .verify(SIGN_IN_PURPOSE, nonce.as_bytes(), &tag)
    });
    if !valid {
        return PageError::BadForm.into_response();
    }
    let email = form.email.trim().to_lowercase();
    let refuse = |status: StatusCode, error: &'static str| {
        let page = SignInPage {
            email: email.clone(),
            error: Some(error),
            csrf: sign_in_csrf(&state, &nonce),
        };
        web::html(status, page.render())
    };
    if state.login_limiter().locked(&email) {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed attempts for this address. Wait 15 minutes and try again.",
        );
    }
    let result = async {
        let mut tx = state.store().begin_write().await?;
        let Some(user) = users::authenticate(&mut tx, &email, &form.password).await? else {
            return Ok(None);
        };
        let created =
            dashboard_sessions::create(&mut tx, &user, Environment::Sandbox, state.now()).await?;
        tx.commit().await?;
        Ok::<_, idshare_store::StoreError>(Some(created))
    }
    .await;
    match result {
        Ok(Some((_, token))) => {
            state.login_limiter().succeeded(&email);
            let cookie = web::set_cookie(
                &state,
                COOKIE,
                &token,
                "/dashboard",
                ABSOLUTE_LIMIT.whole_seconds(),
            );
            web::see_other("/dashboard", Some(cookie))
        }
        Ok(None) => {
            state.login_limiter().failed(&email);
            refuse(
                StatusCode::UNAUTHORIZED,
                "The email address or the password is not right.",
            )
        }
        Err(e) => PageError::from(e).into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn sign_out(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    let mut tx = state.store().begin_write().await?;
    dashboard_sessions::sign_out(&mut tx, &signed.session.id, state.now()).await?;
    tx.commit().await?;
    let cookie = web::set_cookie(&state, COOKIE, "", "/dashboard", 0);
    Ok(web::see_other("/dashboard/sign-in", Some(cookie)))
}

#[derive(Debug, Deserialize)]
struct EnvironmentForm {
    csrf: String,
    environment: String,
    /// The page to come back to (a dashboard path).
    back: Option<String>,
}

async fn switch_environment(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<EnvironmentForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    let environment: Environment = form.environment.parse().map_err(|_| PageError::BadForm)?;
    let mut tx = state.store().begin_write().await?;
    dashboard_sessions::set_environment(&mut tx, &signed.session.id, environment).await?;
    tx.commit().await?;
    // Back to the section the user was on, without an object id (objects belong to one
    // environment: `/dashboard/inquiries/inq_…` becomes `/dashboard/inquiries`).
    let back = form
        .back
        .filter(|b| b.starts_with("/dashboard/") && !b.contains("//"))
        .map(|b| {
            b.split(['?', '#'])
                .next()
                .unwrap_or_default()
                .split('/')
                .take_while(|segment| !segment.contains('_'))
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_else(|| "/dashboard".to_owned());
    Ok(web::see_other(&back, None))
}
