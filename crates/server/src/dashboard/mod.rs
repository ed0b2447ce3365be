//! The web dashboard under `/dashboard`: server-rendered pages (askama, escaped by default)
//! that need no JavaScript. Users sign in with email and password; the session lives in the
//! database (any node serves it) behind an HttpOnly cookie; every form carries a CSRF token;
//! every page checks the role and is confined to the user's organization and the environment
//! chosen in the header.

mod account;
mod api_keys;
mod audit;
mod connections;
mod definitions;
mod inquiries;
mod moment;
mod overview;
mod people;
mod share_tokens;
mod sign_in;
mod svg;
mod webhooks;

use askama::Template;
use axum::{
    Form, Router,
    body::{Body, to_bytes},
    extract::{FromRequestParts, Request, State},
    http::{StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use idshare_domain::{
    environment::Environment,
    id::RequestId,
    text::{describe, refused_control},
};
use idshare_store::{
    Cursor, Page, Scope,
    dashboard_sessions::{self, DashboardSession},
    users::Role,
};
use serde::Deserialize;
pub use sign_in::LoginLimiter;

use crate::{
    http::{
        error::{ApiError, status_of},
        middleware::CurrentRequestId,
    },
    state::AppState,
    web,
};
use idshare_service::{ServiceError, audit::Actor};
pub(crate) use moment::Moment;

const COOKIE: &str = "idshare_dashboard";
/// The cookie that carries a [`Notice`] from an action to the page it redirects to.
const NOTICE_COOKIE: &str = "idshare_notice";
const CSRF_PURPOSE: &str = "dashboard-csrf";
const STYLESHEET: &str = include_str!("../../templates/dashboard/dashboard.css");
/// htmx 2 (0BSD licence, `templates/dashboard/vendor/`): progressive enhancement only — every
/// page works without it.
const HTMX: &str = include_str!("../../templates/dashboard/vendor/htmx.min.js");
/// Rewrites times into the viewer's locale; pages read well without it.
const LOCAL_TIME: &str = include_str!("../../templates/dashboard/local-time.js");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { web::see_other("/dashboard", None) }))
        .route("/dashboard", get(home))
        .route("/dashboard/sign-out", post(sign_out))
        .route("/dashboard/environment", post(switch_environment))
        .route("/dashboard/static/dashboard.css", get(stylesheet))
        .route(
            "/dashboard/static/htmx.min.js",
            get(|| async { web::asset("text/javascript; charset=utf-8", HTMX) }),
        )
        .route(
            "/dashboard/static/local-time.js",
            get(|| async { web::asset("text/javascript; charset=utf-8", LOCAL_TIME) }),
        )
        .merge(share_tokens::routes())
        .merge(connections::routes())
        .merge(inquiries::routes())
        .merge(overview::routes())
        .merge(definitions::routes())
        .merge(webhooks::routes())
        .merge(api_keys::routes())
        .merge(audit::routes())
        .merge(people::routes())
        .merge(account::routes())
        .route("/dashboard/{*rest}", get(not_found_page))
        .layer(middleware::from_fn_with_state(
            FormLimit(FORM_BODY_LIMIT),
            checked_form,
        ))
        .layer(middleware::from_fn(notice_shown))
        // The sign-in form has a smaller limit of its own, checked before anything reads it.
        .merge(sign_in::routes())
}

/// The largest form the dashboard reads (a template or workflow definition pasted in a form).
const FORM_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The size limit of the forms of the routes a [`checked_form`] layer guards.
#[derive(Debug, Clone, Copy)]
struct FormLimit(usize);

/// Reads a posted form (URL-encoded) before its handler does: too large is a 413 page, and a
/// field holding a control character ([`idshare_domain::text`]) a 400 page naming the field;
/// either way nothing is changed.
async fn checked_form(
    State(FormLimit(limit)): State<FormLimit>,
    req: Request,
    next: Next,
) -> Response {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, limit).await else {
        return message(
            StatusCode::PAYLOAD_TOO_LARGE,
            "This form is too large",
            &["Nothing was changed. Go back, shorten what you entered and try again."],
        );
    };
    for (name, value) in url::form_urlencoded::parse(&bytes) {
        let field = refused_control(&name).map(|c| (c, "A field's name".to_owned()));
        let found =
            field.or_else(|| refused_control(&value).map(|c| (c, format!("The field `{name}`"))));
        if let Some((c, what)) = found {
            let details = format!(
                "{what} contains a control character ({}), which is not accepted. Nothing was \
                 changed: go back, retype it and try again.",
                describe(c)
            );
            return message(
                StatusCode::BAD_REQUEST,
                "This form could not be accepted",
                &[&details],
            );
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

async fn stylesheet() -> Response {
    web::stylesheet(STYLESHEET)
}

/// The signed-in user of a request, with what every page header shows.
#[derive(Debug, Clone)]
pub struct Signed {
    pub session: DashboardSession,
    pub csrf: String,
    /// The request being served, for the audit log.
    pub request_id: Option<RequestId>,
    /// The notice of the action that led here, shown on this page only.
    pub notice: Option<Notice>,
}

impl Signed {
    /// The user as the audit log records it, in this request.
    pub fn actor(&self) -> Actor {
        Actor::user(self.session.user.id.clone(), self.request_id.clone())
    }

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

    /// Whether pages show this user end users' personal data. Viewers read the dashboard to
    /// follow the work, not people: they see names masked (`J••• D•••`) and no field values
    /// or files; admins and reviewers, who decide, see everything.
    pub fn sees_personal_data(&self) -> bool {
        self.role() != Role::Viewer
    }

    /// A person's name as this user may see it.
    pub fn person_name(&self, name: String) -> String {
        if self.sees_personal_data() {
            name
        } else {
            idshare_domain::names::mask(&name)
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
            notice: self.notice.map(Notice::text),
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
    /// "Share token expired" and the like, after an action.
    pub notice: Option<&'static str>,
}

/// The live session of the request's cookie, whatever step of signing in it is at.
async fn live_session(parts: &Parts, state: &AppState) -> Result<Signed, PageError> {
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
    let request_id = parts
        .extensions
        .get::<CurrentRequestId>()
        .map(|r| r.0.clone());
    let notice = web::cookie(&parts.headers, NOTICE_COOKIE).and_then(Notice::from_key);
    Ok(Signed {
        session,
        csrf,
        request_id,
        notice,
    })
}

/// A signed-in user: a session that still awaits its second factor (or its user's enrolment)
/// is sent to that step and opens nothing else.
impl FromRequestParts<AppState> for Signed {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let signed = live_session(parts, state).await?;
        if signed.session.awaiting.is_some() {
            return Err(PageError::SecondFactor);
        }
        Ok(signed)
    }
}

/// A session past its password, which may still await its second factor or its user's
/// enrolment (the pages of those steps).
#[derive(Debug, Clone)]
pub struct Pending(pub Signed);

impl FromRequestParts<AppState> for Pending {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        live_session(parts, state).await.map(Pending)
    }
}

/// The "Newer" and "Older" links of a page of a newest-first list (`paging.html`).
#[derive(Debug, Default)]
pub struct Paging {
    pub newer: Option<String>,
    pub older: Option<String>,
    /// What the list holds, for the links' text: "Older inquiries".
    pub noun: &'static str,
}

impl Paging {
    /// The links of `page`: the list's `path` with its non-empty `filters`, and `before` its
    /// first row or `after` its last, by `id`.
    pub fn new<T>(
        path: &str,
        filters: &[(&str, &str)],
        page: &Page<T>,
        id: impl Fn(&T) -> String,
        noun: &'static str,
    ) -> Self {
        let link = |key: &str, row: &T| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in filters.iter().filter(|(_, v)| !v.is_empty()) {
                query.append_pair(name, value);
            }
            query.append_pair(key, &id(row));
            format!("{path}?{}", query.finish())
        };
        Self {
            newer: page
                .items
                .first()
                .filter(|_| page.has_newer)
                .map(|row| link("before", row)),
            older: page
                .items
                .last()
                .filter(|_| page.has_older)
                .map(|row| link("after", row)),
            noun,
        }
    }
}

/// The position a list's query asks for: `before` a row (the newer ones) or `after` it (the
/// older ones), else the newest.
pub fn cursor<'a>(before: &'a str, after: &'a str) -> Cursor<'a> {
    match (before.trim(), after.trim()) {
        ("", "") => Cursor::Start,
        (before, "") => Cursor::Before(before),
        (_, after) => Cursor::After(after),
    }
}

/// Why a page cannot be shown; each is a clear page, never an error dump.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in, or the session ended: to the sign-in page.
    SignIn,
    /// Signed in with the password; the second factor (or enrolment) is still to come.
    SecondFactor,
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
            PageError::SecondFactor => web::see_other(sign_in::TWO_FACTOR_PATH, None),
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

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// A form of an irreversible action: it acts only with `confirm=yes`, which its confirmation
/// page sends.
#[derive(Debug, Deserialize)]
struct ConfirmedForm {
    csrf: String,
    #[serde(default)]
    confirm: String,
}

impl ConfirmedForm {
    fn confirmed(&self) -> bool {
        self.confirm == "yes"
    }
}

/// What a successful action says on the page it leads to (post-redirect-get), once. A closed
/// list: the cookie that carries one names it by key, so a forged cookie can only make a page
/// say one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    ShareTokenCreated,
    ShareTokenExpired,
    RedemptionStarted,
    InquiryApproved,
    InquiryDeclined,
    InquiryMarkedForReview,
    InquiryExpired,
    InquiryRedacted,
    ReportDismissed,
    ConnectionRequested,
    ConnectionActivated,
    ConnectionDeactivated,
    ConnectionReactivated,
    WebhookEnabled,
    WebhookDisabled,
    WebhookArchived,
    DeliveryRedelivered,
    ApiKeyRevoked,
    TemplateCreated,
    TemplateVersionSaved,
    TemplatePublished,
    RetentionSaved,
    WorkflowCreated,
    WorkflowVersionSaved,
    WorkflowPublished,
    WorkflowEnabled,
    WorkflowDisabled,
}

impl Notice {
    const ALL: [Self; 27] = [
        Self::ShareTokenCreated,
        Self::ShareTokenExpired,
        Self::RedemptionStarted,
        Self::InquiryApproved,
        Self::InquiryDeclined,
        Self::InquiryMarkedForReview,
        Self::InquiryExpired,
        Self::InquiryRedacted,
        Self::ReportDismissed,
        Self::ConnectionRequested,
        Self::ConnectionActivated,
        Self::ConnectionDeactivated,
        Self::ConnectionReactivated,
        Self::WebhookEnabled,
        Self::WebhookDisabled,
        Self::WebhookArchived,
        Self::DeliveryRedelivered,
        Self::ApiKeyRevoked,
        Self::TemplateCreated,
        Self::TemplateVersionSaved,
        Self::TemplatePublished,
        Self::RetentionSaved,
        Self::WorkflowCreated,
        Self::WorkflowVersionSaved,
        Self::WorkflowPublished,
        Self::WorkflowEnabled,
        Self::WorkflowDisabled,
    ];

    fn key(self) -> &'static str {
        match self {
            Self::ShareTokenCreated => "share-token-created",
            Self::ShareTokenExpired => "share-token-expired",
            Self::RedemptionStarted => "redemption-started",
            Self::InquiryApproved => "inquiry-approved",
            Self::InquiryDeclined => "inquiry-declined",
            Self::InquiryMarkedForReview => "inquiry-marked-for-review",
            Self::InquiryExpired => "inquiry-expired",
            Self::InquiryRedacted => "inquiry-redacted",
            Self::ReportDismissed => "report-dismissed",
            Self::ConnectionRequested => "connection-requested",
            Self::ConnectionActivated => "connection-activated",
            Self::ConnectionDeactivated => "connection-deactivated",
            Self::ConnectionReactivated => "connection-reactivated",
            Self::WebhookEnabled => "webhook-enabled",
            Self::WebhookDisabled => "webhook-disabled",
            Self::WebhookArchived => "webhook-archived",
            Self::DeliveryRedelivered => "delivery-redelivered",
            Self::ApiKeyRevoked => "api-key-revoked",
            Self::TemplateCreated => "template-created",
            Self::TemplateVersionSaved => "template-version-saved",
            Self::TemplatePublished => "template-published",
            Self::RetentionSaved => "retention-saved",
            Self::WorkflowCreated => "workflow-created",
            Self::WorkflowVersionSaved => "workflow-version-saved",
            Self::WorkflowPublished => "workflow-published",
            Self::WorkflowEnabled => "workflow-enabled",
            Self::WorkflowDisabled => "workflow-disabled",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Self::ShareTokenCreated => "Share token created.",
            Self::ShareTokenExpired => "Share token expired.",
            Self::RedemptionStarted => "Redemption started.",
            Self::InquiryApproved => "Inquiry approved.",
            Self::InquiryDeclined => "Inquiry declined.",
            Self::InquiryMarkedForReview => "Inquiry marked for review.",
            Self::InquiryExpired => "Inquiry expired.",
            Self::InquiryRedacted => "Inquiry redacted.",
            Self::ReportDismissed => "Report dismissed.",
            Self::ConnectionRequested => "Connection requested.",
            Self::ConnectionActivated => "Connection activated.",
            Self::ConnectionDeactivated => "Connection deactivated.",
            Self::ConnectionReactivated => "Connection reactivated.",
            Self::WebhookEnabled => "Webhook enabled.",
            Self::WebhookDisabled => "Webhook disabled.",
            Self::WebhookArchived => "Webhook archived.",
            Self::DeliveryRedelivered => "Delivery queued to be sent again.",
            Self::ApiKeyRevoked => "API key revoked.",
            Self::TemplateCreated => "Template created.",
            Self::TemplateVersionSaved => "Template version saved.",
            Self::TemplatePublished => "Template version published.",
            Self::RetentionSaved => "Retention policy saved.",
            Self::WorkflowCreated => "Workflow created.",
            Self::WorkflowVersionSaved => "Workflow version saved.",
            Self::WorkflowPublished => "Workflow published.",
            Self::WorkflowEnabled => "Workflow enabled.",
            Self::WorkflowDisabled => "Workflow disabled.",
        }
    }

    fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.key() == key)
    }
}

/// The redirect after a successful action, carrying its notice to the page it leads to.
fn done(state: &AppState, location: &str, notice: Notice) -> Response {
    let cookie = web::set_cookie(state, NOTICE_COOKIE, notice.key(), "/dashboard", 60);
    web::see_other(location, Some(cookie))
}

/// Forgets a notice once a page showed it: a reload or the next page does not repeat it.
async fn notice_shown(req: Request, next: Next) -> Response {
    let carried = web::cookie(req.headers(), NOTICE_COOKIE).is_some();
    let mut response = next.run(req).await;
    if carried && !response.status().is_redirection() {
        // Deleting needs no Secure flag: a cookie is replaced by name, domain and path.
        let forget =
            format!("{NOTICE_COOKIE}=; HttpOnly; SameSite=Lax; Path=/dashboard; Max-Age=0");
        if let Ok(value) = header::HeaderValue::from_str(&forget) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The page that asks before an irreversible action: the action's form again, with
/// `confirm=yes`. Works without JavaScript; nothing changes until it is sent.
#[derive(Debug, Template)]
#[template(path = "dashboard/confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    question: String,
    consequence: String,
    action: String,
    /// The other fields of the action's form, sent again as they were.
    fields: Vec<(String, String)>,
    button: &'static str,
    cancel: String,
}

/// What a confirmation page asks.
pub(crate) struct Confirmation<'a> {
    pub question: String,
    pub consequence: &'a str,
    /// The form's target, which acts once confirmed.
    pub action: String,
    pub fields: Vec<(&'a str, String)>,
    pub button: &'static str,
    /// Where "Cancel" leads: the object's page.
    pub cancel: String,
    pub section: &'static str,
}

fn confirmation(signed: &Signed, asked: Confirmation<'_>) -> Response {
    let page = ConfirmPage {
        chrome: signed.chrome(asked.section),
        question: asked.question,
        consequence: asked.consequence.to_owned(),
        action: asked.action,
        fields: asked
            .fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
        button: asked.button,
        cancel: asked.cancel,
    };
    web::html(StatusCode::OK, page.render())
}

/// Signs out, also a session still awaiting its second factor.
async fn sign_out(
    State(state): State<AppState>,
    Pending(signed): Pending,
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

#[cfg(test)]
mod tests {
    use super::Notice;

    #[test]
    fn every_notice_is_found_by_its_own_key_only() {
        for notice in Notice::ALL {
            assert_eq!(Notice::from_key(notice.key()), Some(notice));
            assert!(notice.text().ends_with('.'), "{notice:?}");
        }
        assert_eq!(Notice::from_key("<script>"), None);
        assert_eq!(Notice::from_key(""), None);
    }
}
