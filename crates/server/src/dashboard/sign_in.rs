//! Signing in with email and password, and what keeps it from slowing the server or locking
//! people out (docs/operations.md, "Sign-in protection"):
//!
//! - The password is checked in the blocking thread pool, a few at a time (the rest wait
//!   briefly, holding no database connection, then get a "try again" page), and never inside a
//!   transaction.
//! - Failures slow down three subjects, each with its own [`Backoff`]: the account (counted in
//!   the database, so every node and the `admin user unlock` command see it), the client
//!   address, and a browser the account trusts because it signed in there before (both in this
//!   process's memory, bounded). An account's lock applies only to browsers it does not trust,
//!   so a stranger's guesses cannot lock its owner out.
//! - Every checked password of a known account is written to the audit log with the client
//!   address; unknown email addresses write nothing.

use std::{collections::HashMap, net::IpAddr, sync::Mutex, time::Duration as StdDuration};

use askama::Template;
use axum::{
    Form, Router,
    extract::{DefaultBodyLimit, Extension, State, rejection::FormRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::get,
};
use idshare_domain::people::UserStatus;
use idshare_domain::{
    environment::Environment,
    sign_in::{ACCOUNT, Backoff, CLIENT_ADDRESS, MAX_EMAIL_CHARS, TRUSTED_BROWSER},
};
use idshare_service::{ServiceError, people};
use idshare_store::{
    StoreError,
    audit::{self, SignIn},
    dashboard_sessions::{self, ABSOLUTE_LIMIT, Awaiting, Client},
    users::{self, Credentials},
};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};
use tokio::sync::Semaphore;

use super::{COOKIE, FormLimit, PageError, Pending, Signed, checked_form, explainable};
use crate::{
    http::middleware::CurrentRequestId,
    state::AppState,
    web::{self, ClientAddress},
};

/// A sign-in form is two short fields and a token; anything larger is refused unread.
const SIGN_IN_BODY_LIMIT: usize = 16 * 1024;
/// How long a sign-in waits for its turn to have its password checked.
const VERIFICATION_WAIT: StdDuration = StdDuration::from_secs(5);
/// Subjects (client addresses, trusted browsers) whose failures are remembered at most.
const SUBJECT_CAPACITY: usize = 10_000;

/// The cookie that ties the sign-in form to the browser it was sent to, so that another site
/// cannot sign a visitor in to an account of its choosing (login CSRF).
const SIGN_IN_COOKIE: &str = "idshare_sign_in";
const SIGN_IN_PURPOSE: &str = "dashboard-sign-in";
/// The cookie that marks a browser as one its account signed in with (signed, per account).
const TRUST_COOKIE: &str = "idshare_trusted_browser";
const TRUST_PURPOSE: &str = "dashboard-trusted-browser";
const TRUST_LIFETIME: Duration = Duration::days(90);
const PATH: &str = "/dashboard/sign-in";

/// The step after the password: a code of the user's authenticator, or enrolment.
pub(super) const TWO_FACTOR_PATH: &str = "/dashboard/two-factor";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(sign_in_page).post(sign_in))
        .route(TWO_FACTOR_PATH, get(two_factor_page).post(two_factor))
        .layer(middleware::from_fn_with_state(
            FormLimit(SIGN_IN_BODY_LIMIT),
            checked_form,
        ))
        .layer(DefaultBodyLimit::max(SIGN_IN_BODY_LIMIT))
}

/// Who failed: failures slow down each subject by its own [`Backoff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Subject {
    /// An IPv4 address, or the /64 network of an IPv6 address (one host's usual share).
    ClientAddress(IpAddr),
    /// A browser an account trusts, by the signature of its trust cookie.
    TrustedBrowser([u8; 32]),
}

impl Subject {
    fn client_address(ip: IpAddr) -> Self {
        Self::ClientAddress(match ip {
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
            v4 => v4,
        })
    }

    fn backoff(&self) -> &'static Backoff {
        match self {
            Subject::ClientAddress(_) => &CLIENT_ADDRESS,
            Subject::TrustedBrowser(_) => &TRUSTED_BROWSER,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: OffsetDateTime,
}

/// This process's memory of failed sign-ins by client address and trusted browser (a fixed
/// size per entry, at most [`SUBJECT_CAPACITY`] entries, each forgotten after its backoff's
/// `forget_after`), and the turns at checking passwords.
#[derive(Debug)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<Subject, Failures>>,
    capacity: usize,
    verifications: Semaphore,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        // Half the cores: password checks never take the whole machine from the API.
        let turns = std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2));
        Self::new(SUBJECT_CAPACITY, turns)
    }
}

impl LoginLimiter {
    fn new(capacity: usize, turns: usize) -> Self {
        Self {
            failures: Mutex::default(),
            capacity,
            verifications: Semaphore::new(turns),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Subject, Failures>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long `subject` must still wait at `now` (looking adds nothing).
    fn wait(&self, subject: &Subject, now: OffsetDateTime) -> Option<Duration> {
        let failures = *self.entries().get(subject)?;
        subject
            .backoff()
            .wait(failures.count, Some(failures.last), now)
    }

    /// Counts a failure of `subject`. When the memory is full, forgotten entries go first, then
    /// the one that failed longest ago: memory stays bounded whatever the number of addresses.
    fn failed(&self, subject: Subject, now: OffsetDateTime) {
        let mut entries = self.entries();
        if !entries.contains_key(&subject) && entries.len() >= self.capacity {
            entries.retain(|s, f| !s.backoff().forgotten(f.last, now));
            if entries.len() >= self.capacity
                && let Some(oldest) = entries.iter().min_by_key(|(_, f)| f.last).map(|(s, _)| *s)
            {
                entries.remove(&oldest);
            }
        }
        let previous = entries.get(&subject).copied();
        let count = subject.backoff().after_failure(
            previous.map_or(0, |f| f.count),
            previous.map(|f| f.last),
            now,
        );
        entries.insert(subject, Failures { count, last: now });
    }

    fn succeeded(&self, subject: &Subject) {
        self.entries().remove(subject);
    }
}

#[derive(Debug, Template)]
#[template(path = "dashboard/sign_in.html")]
struct SignInPage {
    email: String,
    error: Option<String>,
    csrf: String,
}

fn sign_in_csrf(state: &AppState, nonce: &str) -> String {
    hex::encode(
        state
            .store()
            .crypto()
            .sign(SIGN_IN_PURPOSE, nonce.as_bytes()),
    )
}

fn append_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
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
    append_cookie(
        &mut response,
        &web::set_cookie(&state, SIGN_IN_COOKIE, &nonce, "/dashboard", 3600),
    );
    response
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// A browser's claim to be trusted by the account `user_id`.
#[derive(Debug)]
struct Trust {
    user_id: String,
    tag: [u8; 32],
}

fn trust_cookie(state: &AppState, user_id: &str, now: OffsetDateTime) -> String {
    let claim = format!("{user_id}.{}", now.unix_timestamp());
    let tag = state.store().crypto().sign(TRUST_PURPOSE, claim.as_bytes());
    let value = format!("{claim}.{}", hex::encode(tag));
    web::set_cookie(
        state,
        TRUST_COOKIE,
        &value,
        PATH,
        TRUST_LIFETIME.whole_seconds(),
    )
}

/// The trust the browser's cookie carries, when its signature holds and it has not expired.
fn trust_of(state: &AppState, headers: &HeaderMap, now: OffsetDateTime) -> Option<Trust> {
    let value = web::cookie(headers, TRUST_COOKIE)?;
    let (claim, tag) = value.rsplit_once('.')?;
    let (user_id, issued) = claim.split_once('.')?;
    let issued = OffsetDateTime::from_unix_timestamp(issued.parse().ok()?).ok()?;
    let tag: [u8; 32] = hex::decode(tag).ok()?.try_into().ok()?;
    let fresh = issued <= now && now - issued < TRUST_LIFETIME;
    (fresh
        && state
            .store()
            .crypto()
            .verify(TRUST_PURPOSE, claim.as_bytes(), &tag))
    .then(|| Trust {
        user_id: user_id.to_owned(),
        tag,
    })
}

fn minutes(wait: Duration) -> String {
    match (wait.whole_seconds() + 59) / 60 {
        1 => "1 minute".to_owned(),
        n => format!("{n} minutes"),
    }
}

/// Signs in with email and password. Wrong credentials and unknown emails get the same answer;
/// repeated failures make the account, the client address or the browser wait.
async fn sign_in(
    State(state): State<AppState>,
    ClientAddress(ip): ClientAddress,
    request_id: Option<Extension<CurrentRequestId>>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let request_id = request_id.map(|Extension(CurrentRequestId(id))| id);
    let Ok(Form(form)) = form else {
        return PageError::BadForm.into_response();
    };
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
    let too_long = form.email.trim().chars().count() > MAX_EMAIL_CHARS;
    let email = if too_long {
        String::new()
    } else {
        form.email.trim().to_lowercase()
    };
    let refuse = |status: StatusCode, error: String| {
        let page = SignInPage {
            email: email.clone(),
            error: Some(error),
            csrf: sign_in_csrf(&state, &nonce),
        };
        web::html(status, page.render())
    };
    let too_many = |wait: Duration, error: String| {
        let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, error);
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(wait.whole_seconds().max(1)),
        );
        response
    };
    if too_long {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("An email address has at most {MAX_EMAIL_CHARS} characters."),
        );
    }

    let limiter = state.login_limiter();
    let address = Subject::client_address(ip);
    let trust = trust_of(&state, &headers, state.now());
    // A browser no account trusts is turned away at once while its address must wait.
    if trust.is_none()
        && let Some(wait) = limiter.wait(&address, state.now())
    {
        return too_many(wait, address_message(wait));
    }
    // Wait for a turn holding nothing but the request; nothing is read before it.
    let turn = tokio::time::timeout(VERIFICATION_WAIT, limiter.verifications.acquire()).await;
    let Ok(Ok(turn)) = turn else {
        let mut response = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "Many sign-ins are being checked right now. Try again in a few seconds.".to_owned(),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    };
    let credentials = match read_credentials(&state, &email).await {
        Ok(credentials) => credentials,
        Err(e) => return PageError::from(e).into_response(),
    };
    let trusted = trust.filter(|t| {
        credentials
            .as_ref()
            .is_some_and(|c| c.user.id.as_str() == t.user_id)
    });
    let subject = trusted
        .as_ref()
        .map_or(address, |t| Subject::TrustedBrowser(t.tag));
    if let Some(wait) = limiter.wait(&subject, state.now()) {
        let message = match subject {
            Subject::ClientAddress(_) => address_message(wait),
            Subject::TrustedBrowser(_) => format!(
                "Too many failed attempts from this browser. Try again in {}.",
                minutes(wait)
            ),
        };
        return too_many(wait, message);
    }
    if trusted.is_none()
        && let Some(c) = &credentials
        && let Some(wait) = ACCOUNT.wait(c.failed_sign_ins, c.last_failed_sign_in_at, state.now())
    {
        tracing::info!(client = %ip, user = %c.user.id, "sign-in refused: the account must wait");
        return too_many(
            wait,
            format!(
                "Too many failed attempts for this account. Try again in {}, sign in from a \
                 browser you have signed in with before, or ask an administrator to unlock \
                 the account.",
                minutes(wait)
            ),
        );
    }

    let checked = credentials.clone();
    let verified = tokio::task::spawn_blocking(move || {
        users::verify_password(checked.as_ref(), &form.password)
    })
    .await
    .unwrap_or(false);
    drop(turn);

    let now = state.now();
    let client = ip.to_string();
    match credentials {
        Some(c) if verified && c.user.status == UserStatus::Disabled => {
            tracing::info!(client = %ip, user = %c.user.id, "sign-in refused: the user is disabled");
            refuse(
                StatusCode::FORBIDDEN,
                "This account is disabled. Ask an administrator of your organization.".to_owned(),
            )
        }
        Some(c) if verified => {
            // With two-factor on, the session opens nothing until a code is given; the sign-in
            // is recorded, and failures forgotten, then.
            let awaiting_code = c.user.two_factor;
            let from = Client {
                address: client.clone(),
                user_agent: user_agent(&headers),
            };
            let created = async {
                let mut tx = state.store().begin_write().await?;
                // The owner signing in from a trusted browser does not end a stranger's wait.
                if trusted.is_none() && !awaiting_code {
                    users::clear_failed_sign_ins(&mut tx, &c.user.email).await?;
                }
                let created = dashboard_sessions::create(
                    &mut tx,
                    &c.user,
                    Environment::Sandbox,
                    &from,
                    awaiting_code,
                    now,
                )
                .await?;
                if !awaiting_code {
                    users::signed_in(&mut tx, &c.user.id, now).await?;
                    let (user, outcome) = (&c.user, SignIn::Succeeded);
                    let request = request_id.as_ref();
                    audit::record_sign_in(&mut tx, user, outcome, &client, request, now).await?;
                }
                tx.commit().await?;
                Ok::<_, StoreError>(created)
            }
            .await;
            let (_, token) = match created {
                Ok(created) => created,
                Err(e) => return PageError::from(e).into_response(),
            };
            // Only the subject that signed in is cleared: a trusted browser's success says nothing
            // of the others failing at its address. The browser is trusted for the password it
            // gave; a code's failures count against the account whatever the browser.
            limiter.succeeded(&subject);
            let session = web::set_cookie(
                &state,
                COOKIE,
                &token,
                "/dashboard",
                ABSOLUTE_LIMIT.whole_seconds(),
            );
            let next = if awaiting_code {
                TWO_FACTOR_PATH
            } else {
                "/dashboard"
            };
            let mut response = web::see_other(next, Some(session));
            append_cookie(
                &mut response,
                &trust_cookie(&state, c.user.id.as_str(), now),
            );
            response
        }
        credentials => {
            limiter.failed(subject, now);
            if let Some(c) = credentials {
                let recorded = async {
                    let mut tx = state.store().begin_write().await?;
                    if trusted.is_none() {
                        let failures = users::record_failed_sign_in(
                            &mut tx,
                            &c.user.id,
                            now - ACCOUNT.forget_after,
                            now,
                        )
                        .await?;
                        if ACCOUNT.delay(failures) > Duration::ZERO {
                            tracing::warn!(client = %ip, user = %c.user.id, failures, "an account must wait after failed sign-ins");
                        }
                    }
                    let (user, outcome) = (&c.user, SignIn::Failed);
                    let request = request_id.as_ref();
                    audit::record_sign_in(&mut tx, user, outcome, &client, request, now)
                        .await?;
                    tx.commit().await
                }
                .await;
                if let Err(e) = recorded {
                    return PageError::from(e).into_response();
                }
            } else {
                // No account, so no organization's audit log: a log line, never a row.
                tracing::info!(client = %ip, "sign-in with an unknown email address");
            }
            refuse(
                StatusCode::UNAUTHORIZED,
                "The email address or the password is not right.".to_owned(),
            )
        }
    }
}

fn address_message(wait: Duration) -> String {
    format!(
        "Too many failed attempts from your network address. Try again in {}.",
        minutes(wait)
    )
}

async fn read_credentials(
    state: &AppState,
    email: &str,
) -> Result<Option<Credentials>, StoreError> {
    let mut tx = state.store().begin_read().await?;
    let credentials = users::credentials(&mut tx, email).await?;
    tx.commit().await?;
    Ok(credentials)
}

/// The browser's own description, cut short (the user's list of sessions shows it).
fn user_agent(headers: &HeaderMap) -> Option<String> {
    let agent = headers.get(header::USER_AGENT)?.to_str().ok()?.trim();
    (!agent.is_empty()).then(|| agent.chars().take(200).collect())
}

#[derive(Debug, Template)]
#[template(path = "dashboard/two_factor.html")]
struct TwoFactorPage {
    csrf: String,
    email: String,
    /// Set up (with its secret) rather than a code of a sign-in.
    enrolment: Option<people::Enrolment>,
    /// The organization requires it (enrolment before anything else).
    required: bool,
    error: Option<String>,
}

async fn two_factor_form(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let user = &signed.session.user;
    let enrolment = match signed.session.awaiting {
        Some(Awaiting::Code) => None,
        _ if user.two_factor => return Ok(web::see_other("/dashboard/account", None)),
        _ => Some(people::enrolment(state.store(), user).await?),
    };
    let page = TwoFactorPage {
        csrf: signed.csrf.clone(),
        email: user.email.clone(),
        enrolment,
        required: signed.session.awaiting == Some(Awaiting::Enrolment),
        error,
    };
    Ok(web::html(status, page.render()))
}

/// The code form of a sign-in awaiting one, or the set-up of two-factor authentication.
async fn two_factor_page(
    State(state): State<AppState>,
    Pending(signed): Pending,
) -> Result<Response, PageError> {
    two_factor_form(&state, &signed, StatusCode::OK, None).await
}

#[derive(Debug, Deserialize)]
struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// Checks a code: the second step of a sign-in (under the same limits as passwords), or the
/// confirmation of an enrolment.
async fn two_factor(
    State(state): State<AppState>,
    ClientAddress(ip): ClientAddress,
    Pending(signed): Pending,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Ok(Form(form)) = form else {
        return Err(PageError::BadForm);
    };
    signed.check_csrf(&state, &form.csrf)?;
    let user = &signed.session.user;
    let now = state.now();
    if signed.session.awaiting != Some(Awaiting::Code) {
        return match people::confirm_enrolment(state.store(), user, &form.code, now).await {
            Ok(()) => Ok(web::see_other("/dashboard/account", None)),
            Err(e) if explainable(&e) => {
                let status = crate::http::error::status_of(&e);
                two_factor_form(&state, &signed, status, Some(e.to_string())).await
            }
            Err(e) => Err(e.into()),
        };
    }

    let limiter = state.login_limiter();
    let address = Subject::client_address(ip);
    let too_many = |wait: Duration, message: String| {
        let page = TwoFactorPage {
            csrf: signed.csrf.clone(),
            email: user.email.clone(),
            enrolment: None,
            required: false,
            error: Some(message),
        };
        let mut response = web::html(StatusCode::TOO_MANY_REQUESTS, page.render());
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(wait.whole_seconds().max(1)),
        );
        Ok(response)
    };
    if let Some(wait) = limiter.wait(&address, now) {
        return too_many(wait, address_message(wait));
    }
    let mut tx = state.store().begin_write().await?;
    let Some(credentials) = users::credentials_by_id(&mut tx, &user.id).await? else {
        return Err(PageError::SignIn);
    };
    if let Some(wait) = ACCOUNT.wait(
        credentials.failed_sign_ins,
        credentials.last_failed_sign_in_at,
        now,
    ) {
        drop(tx);
        return too_many(
            wait,
            format!(
                "Too many failed attempts for this account. Try again in {}.",
                minutes(wait)
            ),
        );
    }
    let crypto = state.store().crypto();
    let accepted = people::accept_code(&mut tx, crypto, user, &form.code, now).await?;
    let client = ip.to_string();
    if accepted {
        users::clear_failed_sign_ins(&mut tx, &user.email).await?;
        dashboard_sessions::code_accepted(&mut tx, &signed.session.id).await?;
        users::signed_in(&mut tx, &user.id, now).await?;
        let request = signed.request_id.as_ref();
        audit::record_sign_in(&mut tx, user, SignIn::Succeeded, &client, request, now).await?;
        tx.commit().await?;
        limiter.succeeded(&address);
        return Ok(web::see_other("/dashboard", None));
    }
    users::record_failed_sign_in(&mut tx, &user.id, now - ACCOUNT.forget_after, now).await?;
    let request = signed.request_id.as_ref();
    audit::record_sign_in(&mut tx, user, SignIn::Failed, &client, request, now).await?;
    tx.commit().await?;
    limiter.failed(address, now);
    tracing::info!(client = %ip, user = %user.id, "a wrong or replayed two-factor code");
    let error = ServiceError::invalid(
        "Wrong code",
        "This code is not right, or was used already. Type the current code of your \
         authenticator app.",
    );
    two_factor_form(
        &state,
        &signed,
        StatusCode::UNAUTHORIZED,
        Some(error.to_string()),
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const AT: OffsetDateTime = time::macros::datetime!(2026-01-01 12:00 UTC);

    fn address(n: u32) -> Subject {
        Subject::client_address(IpAddr::V4(Ipv4Addr::from(n)))
    }

    #[test]
    fn the_memory_holds_at_most_its_capacity_and_evicts_the_oldest() {
        let limiter = LoginLimiter::new(3, 1);
        for n in 0..10 {
            limiter.failed(address(n), AT + Duration::seconds(i64::from(n)));
        }
        assert_eq!(limiter.entries().len(), 3);
        // The three latest remain; the earlier ones made room.
        let kept: Vec<_> = (0..10)
            .filter(|&n| limiter.entries().contains_key(&address(n)))
            .collect();
        assert_eq!(kept, [7, 8, 9]);
    }

    #[test]
    fn looking_adds_nothing_and_success_forgets() {
        let limiter = LoginLimiter::new(10, 1);
        assert_eq!(limiter.wait(&address(1), AT), None);
        assert!(limiter.entries().is_empty());
        limiter.failed(address(1), AT);
        limiter.succeeded(&address(1));
        assert!(limiter.entries().is_empty());
    }

    #[test]
    fn failures_beyond_the_free_ones_make_the_address_wait_until_forgotten() {
        let limiter = LoginLimiter::new(10, 1);
        let free = CLIENT_ADDRESS.free_failures;
        for _ in 1..free {
            limiter.failed(address(1), AT);
        }
        assert_eq!(limiter.wait(&address(1), AT), None);
        limiter.failed(address(1), AT);
        assert_eq!(
            limiter.wait(&address(1), AT),
            Some(CLIENT_ADDRESS.first_delay)
        );
        assert_eq!(
            limiter.wait(&address(2), AT),
            None,
            "another address is not affected"
        );
        // Expired entries make room before any live one is evicted.
        let later = AT + CLIENT_ADDRESS.forget_after;
        assert_eq!(limiter.wait(&address(1), later), None);
        let small = LoginLimiter::new(2, 1);
        small.failed(address(1), AT);
        small.failed(address(2), later - Duration::minutes(1));
        small.failed(address(3), later);
        assert!(!small.entries().contains_key(&address(1)));
        assert!(small.entries().contains_key(&address(2)));
    }

    #[test]
    fn an_ipv6_network_counts_as_one_address() {
        let host = |last: u16| {
            Subject::client_address(IpAddr::V6(Ipv6Addr::new(
                0x2001, 0xdb8, 1, 2, 0, 0, 0, last,
            )))
        };
        assert_eq!(host(1), host(0xffff));
        assert_ne!(
            host(1),
            Subject::client_address(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1)))
        );
    }
}
