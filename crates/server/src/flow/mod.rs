//! The end user's hosted flow (`/flow/…`): server-rendered pages, no JavaScript.
//!
//! A one-time link (`/flow/link/{token}`, single use) or a session token
//! (`/flow/session/{token}`, reusable until it expires) is exchanged for a browser credential
//! held in the `idshare_flow` cookie (HttpOnly, SameSite=Lax, Path=/flow), and the browser is
//! sent to `/flow/inquiry`. That page shows the inquiry's state: a form asking only for the
//! missing requirements, a "checking" page while a submission is processed (it reloads itself),
//! or the outcome. The form is CSRF-protected by a token signed over the browser credential's
//! id. Everything the form sends is validated before anything is saved; when nothing is
//! missing any more the inquiry is submitted to the pipeline.

mod form;
mod pages;

use axum::{
    Extension, Router,
    extract::{DefaultBodyLimit, Multipart, Path, State, multipart::MultipartRejection},
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::get,
};
use idshare_domain::{inquiry::InquiryStatus, text::refused_control};
use idshare_store::{
    StoreError, inquiries,
    sessions::{self, InquirySession, SessionKind},
};
use time::Duration;

use self::{
    form::{Entered, Errors, Plan, Upload},
    pages::{FormPage, MessagePage, SummaryError},
};
use crate::{
    http::{error::status_of, middleware::CurrentRequestId},
    state::AppState,
};
use idshare_service::{
    self as service, ServiceError,
    files::NewDocument,
    inquiries::{InquiryView, UpdateInquiry},
};

/// The cookie that holds the browser credential.
const COOKIE: &str = "idshare_flow";
/// How long a browser credential lasts.
const BROWSER_SESSION_LIFETIME: Duration = Duration::hours(1);
/// The purpose the CSRF token is signed for.
const CSRF_PURPOSE: &str = "flow-csrf";
/// The most files one form can carry (front, back, selfie, proof of address).
const MAX_FILES_PER_FORM: usize = 4;

const STYLESHEET: &str = include_str!("../../templates/flow/flow.css");

/// The flow's routes. Merged into the application router (outside the API's authentication).
pub fn routes(state: &AppState) -> Router<AppState> {
    let config = state.config();
    let body_limit = config
        .upload_body_limit_bytes
        .saturating_mul(MAX_FILES_PER_FORM)
        .saturating_add(config.body_limit_bytes);
    Router::new()
        .route("/flow/link/{token}", get(open_link))
        .route("/flow/session/{token}", get(open_session))
        .route(
            "/flow/inquiry",
            get(show)
                .post(save)
                .layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/flow/static/flow.css", get(stylesheet))
        .route("/flow", get(unknown_page))
        .route("/flow/{*rest}", get(unknown_page))
}

type RequestId = Option<Extension<CurrentRequestId>>;

/// Why the flow cannot go on; each is a clear page, never an error dump.
#[derive(Debug)]
enum Refusal {
    UnknownLink,
    ExpiredLink,
    UsedLink,
    InquiryExpired,
    Unavailable,
    NoSession,
    BadCsrf,
    BadForm,
    /// A text value (or file name) with a control character ([`idshare_domain::text`]).
    ControlCharacter,
    TooLarge(usize),
    NotFound,
    /// The database cannot take the request now (unreachable, or busy beyond its timeout).
    Busy,
    /// A service's refusal that the form cannot place next to an input.
    Service(ServiceError),
    Internal(Box<dyn std::fmt::Debug + Send + Sync>),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "the hosted flow found the database unavailable");
            Self::Busy
        } else {
            Self::Internal(Box::new(e))
        }
    }
}

impl From<ServiceError> for Refusal {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound { .. } => Self::NotFound,
            ServiceError::Unavailable(e) => e.into(),
            e if e.is_failure() => Self::Internal(Box::new(e)),
            e => Self::Service(e),
        }
    }
}

const ASK_AGAIN: &str =
    "Please ask the organization that asked you to verify your identity for a new link.";

impl Refusal {
    fn page(self, request_id: &RequestId) -> Response {
        let (status, mut page) = match self {
            Self::UnknownLink => (
                StatusCode::NOT_FOUND,
                MessagePage::new(
                    "problem",
                    "This link isn't valid",
                    &[
                        "Check that you opened the whole link, exactly as you received it.",
                        ASK_AGAIN,
                    ],
                ),
            ),
            Self::ExpiredLink => (
                StatusCode::GONE,
                MessagePage::new(
                    "problem",
                    "This link has expired",
                    &[
                        "For your security, verification links only work for a limited time.",
                        ASK_AGAIN,
                    ],
                ),
            ),
            Self::UsedLink => (
                StatusCode::GONE,
                MessagePage::new(
                    "problem",
                    "This link has already been used",
                    &[
                        "For your security, each link opens the verification only once.",
                        ASK_AGAIN,
                    ],
                ),
            ),
            Self::InquiryExpired => (
                StatusCode::GONE,
                MessagePage::new(
                    "problem",
                    "This verification has expired",
                    &["It was not completed in time.", ASK_AGAIN],
                ),
            ),
            Self::Unavailable => (
                StatusCode::GONE,
                MessagePage::new(
                    "problem",
                    "This verification is no longer available",
                    &["Its information has been deleted.", ASK_AGAIN],
                ),
            ),
            Self::NoSession => (
                StatusCode::UNAUTHORIZED,
                MessagePage::new(
                    "problem",
                    "Your session has ended",
                    &[
                        "For your security, a verification session only lasts a limited time, \
                         and only in the browser where the link was opened.",
                        ASK_AGAIN,
                    ],
                ),
            ),
            Self::BadCsrf => (
                StatusCode::FORBIDDEN,
                MessagePage::new(
                    "problem",
                    "This form could not be accepted",
                    &[
                        "For your security, the form must be sent from the verification page \
                         itself. Nothing was saved.",
                        "Go back to the verification page, reload it, and try again.",
                    ],
                ),
            ),
            Self::BadForm => (
                StatusCode::BAD_REQUEST,
                MessagePage::new(
                    "problem",
                    "This form could not be read",
                    &["Nothing was saved. Go back to the verification page and try again."],
                ),
            ),
            Self::ControlCharacter => (
                StatusCode::BAD_REQUEST,
                MessagePage::new(
                    "problem",
                    "Something you entered contains invisible characters",
                    &[
                        "Control characters cannot be accepted. Nothing was saved.",
                        "Go back, type the values again rather than pasting them, and try again.",
                    ],
                ),
            ),
            Self::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                MessagePage {
                    paragraphs: vec![
                        format!(
                            "Each file can be at most {} MB. Nothing was saved.",
                            limit / (1024 * 1024)
                        ),
                        "Go back, choose smaller photos or scans, and try again.".to_owned(),
                    ],
                    ..MessagePage::new("problem", "Your files are too large", &[])
                },
            ),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                MessagePage::new(
                    "problem",
                    "This verification could not be found",
                    &[ASK_AGAIN],
                ),
            ),
            Self::Service(e) => {
                let details = e.reasons().iter().map(|r| r.details.to_owned()).collect();
                (
                    status_of(&e),
                    MessagePage {
                        paragraphs: details,
                        ..MessagePage::new("problem", "This can't be done right now", &[])
                    },
                )
            }
            Self::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                MessagePage::new(
                    "problem",
                    "We're busy right now",
                    &["Nothing you entered is lost. Please try again in a few seconds."],
                ),
            ),
            Self::Internal(cause) => {
                tracing::error!(error = ?cause, "the hosted flow failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    MessagePage::new(
                        "problem",
                        "Something went wrong on our side",
                        &[
                            "Nothing you entered is lost. Please try again in a moment.",
                            "If it keeps happening, contact the organization that asked you to \
                             verify your identity and quote the reference below.",
                        ],
                    ),
                )
            }
        };
        if status.is_server_error() {
            page.request_id = request_id
                .as_ref()
                .map(|Extension(CurrentRequestId(id))| id.to_string());
        }
        page.respond(status)
    }
}

async fn stylesheet() -> Response {
    crate::web::stylesheet(STYLESHEET)
}

async fn unknown_page() -> Response {
    MessagePage::new(
        "problem",
        "Page not found",
        &[
            "There is no such page. Open the link you were sent again.",
            ASK_AGAIN,
        ],
    )
    .respond(StatusCode::NOT_FOUND)
}

async fn open_link(
    State(state): State<AppState>,
    Path(token): Path<String>,
    id: RequestId,
) -> Response {
    exchange(&state, &token, SessionKind::OneTimeLink)
        .await
        .unwrap_or_else(|refusal| refusal.page(&id))
}

async fn open_session(
    State(state): State<AppState>,
    Path(token): Path<String>,
    id: RequestId,
) -> Response {
    exchange(&state, &token, SessionKind::Session)
        .await
        .unwrap_or_else(|refusal| refusal.page(&id))
}

/// Whether a token has the shape of ours (base58, bounded): anything else is unknown without a
/// database look-up.
fn plausible_token(token: &str) -> bool {
    (20..=64).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Exchanges a link or session token for a browser credential in a cookie.
async fn exchange(state: &AppState, token: &str, kind: SessionKind) -> Result<Response, Refusal> {
    if !plausible_token(token) {
        return Err(Refusal::UnknownLink);
    }
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let credential = sessions::find(&mut tx, token)
        .await?
        .filter(|c| c.kind == kind)
        .ok_or(Refusal::UnknownLink)?;
    if kind == SessionKind::OneTimeLink && credential.used_at.is_some() {
        return Err(Refusal::UsedLink);
    }
    if credential.expires_at <= now {
        return Err(Refusal::ExpiredLink);
    }
    let inquiry = inquiries::get(
        &mut tx,
        state.store().crypto(),
        &credential.scope,
        &credential.inquiry_id,
    )
    .await?
    .ok_or(Refusal::UnknownLink)?;
    if inquiry.redacted_at.is_some() {
        return Err(Refusal::Unavailable);
    }
    match inquiry.status {
        InquiryStatus::Created | InquiryStatus::Pending => {}
        InquiryStatus::Expired => return Err(Refusal::InquiryExpired),
        // Finished: the outcome is all there is to see; the link stays as it is.
        finished => return Ok(outcome_page(finished)),
    }
    if kind == SessionKind::OneTimeLink
        && !sessions::mark_used(&mut tx, &credential.id, now).await?
    {
        return Err(Refusal::UsedLink);
    }
    let (_, browser_token) = sessions::create(
        &mut tx,
        &credential.scope,
        &credential.inquiry_id,
        SessionKind::Browser,
        now + BROWSER_SESSION_LIFETIME,
        now,
    )
    .await?;
    tx.commit().await?;
    let cookie = crate::web::set_cookie(
        state,
        COOKIE,
        &browser_token,
        "/flow",
        BROWSER_SESSION_LIFETIME.whole_seconds(),
    );
    Ok(crate::web::see_other("/flow/inquiry", Some(cookie)))
}

/// The browser credential named by the cookie: it must exist, be a browser credential and be
/// unexpired.
async fn browser_session(state: &AppState, headers: &HeaderMap) -> Result<InquirySession, Refusal> {
    let token = crate::web::cookie(headers, COOKIE)
        .filter(|token| plausible_token(token))
        .ok_or(Refusal::NoSession)?;
    let mut tx = state.store().begin_read().await?;
    let session = sessions::find(&mut tx, token)
        .await?
        .filter(|s| s.kind == SessionKind::Browser && s.expires_at > state.now())
        .ok_or(Refusal::NoSession)?;
    Ok(session)
}

fn csrf_token(state: &AppState, session: &InquirySession) -> String {
    hex::encode(
        state
            .store()
            .crypto()
            .sign(CSRF_PURPOSE, session.id.as_str().as_bytes()),
    )
}

fn csrf_valid(state: &AppState, session: &InquirySession, token: &str) -> bool {
    hex::decode(token.trim()).is_ok_and(|tag| {
        state
            .store()
            .crypto()
            .verify(CSRF_PURPOSE, session.id.as_str().as_bytes(), &tag)
    })
}

async fn show(State(state): State<AppState>, headers: HeaderMap, id: RequestId) -> Response {
    let result = async {
        let session = browser_session(&state, &headers).await?;
        let view = service::inquiries::get(&state, &session.scope, &session.inquiry_id).await?;
        Ok::<_, Refusal>(render(
            &state,
            &session,
            &view,
            &Entered::default(),
            &Errors::new(),
            vec![],
        ))
    }
    .await;
    result.unwrap_or_else(|refusal| refusal.page(&id))
}

fn outcome_page(status: InquiryStatus) -> Response {
    let page = match status {
        InquiryStatus::Completed | InquiryStatus::Approved => MessagePage::new(
            "success",
            "You're verified",
            &[
                "Thank you. Your identity has been verified.",
                "You can close this page.",
            ],
        ),
        InquiryStatus::Failed | InquiryStatus::Declined => MessagePage::new(
            "failure",
            "We couldn't verify you",
            &[
                "The information you provided could not be verified.",
                "The organization that asked you to verify your identity will tell you what to \
                 do next. You can close this page.",
            ],
        ),
        InquiryStatus::NeedsReview => MessagePage::new(
            "info",
            "We're reviewing your information",
            &[
                "A person needs to look at what you provided. You don't need to do anything \
                 more; you will hear from the organization that asked you to verify your \
                 identity.",
                "You can close this page.",
            ],
        ),
        InquiryStatus::Expired => {
            return Refusal::InquiryExpired.page(&None);
        }
        InquiryStatus::Created | InquiryStatus::Pending => MessagePage::new(
            "info",
            "Verification in progress",
            &["Open the link you were sent to continue."],
        ),
    };
    page.respond(StatusCode::OK)
}

/// The page for the inquiry's current state; the form carries `entered` and `errors` (and
/// `general` errors that belong to no input).
fn render(
    state: &AppState,
    session: &InquirySession,
    view: &InquiryView,
    entered: &Entered,
    errors: &Errors,
    general: Vec<String>,
) -> Response {
    let inquiry = &view.inquiry;
    if inquiry.redacted_at.is_some() {
        return Refusal::Unavailable.page(&None);
    }
    if !inquiry.status.accepts_field_updates() {
        return outcome_page(inquiry.status);
    }
    if inquiry.submissions > inquiry.processed_submission {
        let mut page = MessagePage::new(
            "info",
            "We're checking your information",
            &["This usually takes a few seconds. Please keep this page open."],
        );
        page.refresh = true;
        return page.respond(StatusCode::OK);
    }
    let Some(definition) = &view.definition else {
        return MessagePage::new(
            "info",
            "Nothing to complete",
            &["There is nothing for you to provide here."],
        )
        .respond(StatusCode::OK);
    };
    let plan = Plan::new(definition, &view.missing);
    let groups = form::groups(&plan, entered, errors);
    let mut summary: Vec<SummaryError> = general
        .into_iter()
        .map(|message| SummaryError {
            target: None,
            message,
        })
        .collect();
    for group in &groups {
        for input in &group.inputs {
            if let Some(message) = &input.error {
                summary.push(SummaryError {
                    target: Some(input.id.clone()),
                    message: message.clone(),
                });
            }
        }
    }
    let status = if summary.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let (title, intro, show_form) = if plan.has_inputs() {
        (
            "Complete your verification",
            vec![
                "We need the following information to verify your identity. We only ask for \
                 what is still missing."
                    .to_owned(),
            ],
            true,
        )
    } else if view.missing.is_empty() {
        (
            "Ready to submit",
            vec![
                "We have everything we need. Submit your information to have it checked."
                    .to_owned(),
            ],
            true,
        )
    } else {
        (
            "Almost there",
            vec!["The remaining steps can't be completed on this page yet.".to_owned()],
            false,
        )
    };
    FormPage {
        title: if status == StatusCode::OK {
            title.to_owned()
        } else {
            format!("Error: {title}")
        },
        heading: title.to_owned(),
        intro,
        errors: summary,
        notices: plan.notices.clone(),
        show_form,
        csrf: csrf_token(state, session),
        groups,
        submit_label: "Submit",
    }
    .respond(status)
}

/// Reads the multipart form: text values and files by field name.
async fn read_form(mut multipart: Multipart, limit: usize) -> Result<Entered, Refusal> {
    let mut entered = Entered::default();
    let fail = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refusal::TooLarge(limit)
        } else {
            Refusal::BadForm
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(fail)? {
        let name = field.name().unwrap_or_default().to_owned();
        match field.file_name().map(str::to_owned) {
            Some(filename) => {
                if refused_control(&filename).is_some() {
                    return Err(Refusal::ControlCharacter);
                }
                let bytes = field.bytes().await.map_err(fail)?;
                entered.files.insert(name, Upload { filename, bytes });
            }
            None => {
                let text = field.text().await.map_err(fail)?;
                if refused_control(&name).is_some() || refused_control(&text).is_some() {
                    return Err(Refusal::ControlCharacter);
                }
                entered.texts.entry(name).or_default().push(text);
            }
        }
    }
    Ok(entered)
}

async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: RequestId,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    save_form(&state, &headers, multipart)
        .await
        .unwrap_or_else(|refusal| refusal.page(&id))
}

async fn save_form(
    state: &AppState,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Refusal> {
    let session = browser_session(state, headers).await?;
    let file_limit = state.config().upload_body_limit_bytes;
    let entered = read_form(multipart.map_err(|_| Refusal::BadForm)?, file_limit).await?;
    let csrf = entered
        .texts
        .get("csrf")
        .and_then(|v| v.first())
        .ok_or(Refusal::BadCsrf)?;
    if !csrf_valid(state, &session, csrf) {
        return Err(Refusal::BadCsrf);
    }
    let (scope, id) = (&session.scope, &session.inquiry_id);
    let view = service::inquiries::get(state, scope, id).await?;
    let inquiry = &view.inquiry;
    let open = inquiry.redacted_at.is_none()
        && inquiry.status.accepts_field_updates()
        && inquiry.submissions <= inquiry.processed_submission;
    let Some(definition) = view.definition.as_ref().filter(|_| open) else {
        // Nothing can be entered now; the page says why.
        return Ok(crate::web::see_other("/flow/inquiry", None));
    };
    let plan = Plan::new(definition, &view.missing);
    let collected = match form::collect(&plan, definition, &entered, state.now().date(), file_limit)
    {
        Ok(collected) => collected,
        Err(errors) => return Ok(render(state, &session, &view, &entered, &errors, vec![])),
    };

    // Everything is valid: save fields first, then documents, then files, stopping at the first
    // refusal (which the form then shows).
    let mut failure: Option<(ServiceError, Option<String>)> = None;
    if !collected.fields.is_empty() {
        let update = UpdateInquiry {
            fields: Some(collected.fields),
            ..UpdateInquiry::default()
        };
        if let Err(e) = service::inquiries::update(state, scope, id, update).await {
            failure = Some((e, None));
        }
    }
    let documents = collected
        .government_id
        .map(NewDocument::GovernmentId)
        .into_iter()
        .chain(collected.proof_of_address.map(NewDocument::ProofOfAddress));
    for document in documents {
        if failure.is_some() {
            break;
        }
        if let Err(e) = service::files::add_document(state, scope, id, document).await {
            failure = Some((e, None));
        }
    }
    for (kind, bytes) in &collected.files {
        if failure.is_some() {
            break;
        }
        if let Err(e) = service::files::upload(state, scope, id, *kind, bytes).await {
            failure = Some((e, Some(form::file_name(*kind))));
        }
    }
    if let Some((error, file_input)) = failure {
        return refused(state, &session, &entered, error, file_input).await;
    }

    let view = service::inquiries::get(state, scope, id).await?;
    if view.missing.is_empty() && view.inquiry.status.accepts_field_updates() {
        match service::inquiries::submit(state, scope, id).await {
            Ok(_) => {}
            // Submitted meanwhile (another tab), or no longer submittable: the page shows why.
            Err(e) if !e.is_failure() => {
                tracing::info!(error = %e, "the flow's submission was refused");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(crate::web::see_other("/flow/inquiry", None))
}

/// A service refused part of a valid-looking form: show the form again with its messages next
/// to the inputs they concern.
async fn refused(
    state: &AppState,
    session: &InquirySession,
    entered: &Entered,
    error: ServiceError,
    file_input: Option<String>,
) -> Result<Response, Refusal> {
    if error.is_failure() || matches!(error, ServiceError::NotFound { .. }) {
        return Err(error.into());
    }
    let mut errors = Errors::new();
    let mut general = vec![];
    for reason in error.reasons() {
        let input = match reason.input {
            Some(input) if input.starts_with("fields/") => {
                Some(form::field_name(input.trim_start_matches("fields/")))
            }
            Some(service::files::FILE_INPUT) => file_input.clone(),
            _ => None,
        };
        match input {
            Some(name) => {
                errors
                    .entry(name)
                    .or_insert_with(|| reason.details.to_owned());
            }
            None => general.push(reason.details.to_owned()),
        }
    }
    let view = service::inquiries::get(state, &session.scope, &session.inquiry_id).await?;
    let mut response = render(state, session, &view, entered, &errors, general);
    if response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_for_shape_first() {
        assert!(plausible_token(
            "3yQ9bW1xv5m8n2JkLpRsTuVwXyZaBcDeFgHiJkLmNoP"
        ));
        assert!(!plausible_token(""));
        assert!(!plausible_token("short"));
        assert!(!plausible_token("not a token; with spaces and symbols <>"));
        assert!(!plausible_token(&"a".repeat(65)));
    }

    #[test]
    fn the_stylesheet_is_embedded() {
        assert!(STYLESHEET.contains("body"));
        assert!(!STYLESHEET.contains("http"), "no external resources");
    }
}
