//! The people who use the dashboard: inviting, changing roles, disabling, enabling, removing,
//! password resets through one-time links, changing one's own password, sessions, and TOTP
//! two-factor authentication (RFC 6238). The dashboard and the operator's command line both come
//! here; the guard rails are the domain's ([`idshare_domain::people`]).
//!
//! Every change by a dashboard user writes its audit entry in the same transaction (in both
//! environments' logs: users belong to both). Passwords are hashed before any transaction.

use idshare_domain::{
    id::{DashboardSessionId, OrgId, UserId},
    people::{
        AdminChange, Target, UserStatus, admin_change_refusal, parse_email, password_problem,
    },
};
use idshare_store::{
    Crypto, Store, Tx, audit, dashboard_sessions, orgs,
    set_password_links::{self, LinkState},
    users::{self, Role, User},
};
use time::OffsetDateTime;
use totp_rs::{Algorithm, Builder, Totp};

use crate::ServiceError;

/// Who makes a change: an administrator in the dashboard (written to the audit log), or the
/// operator at the command line (who has no user to name in it).
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    Admin(&'a User),
    Operator,
}

impl Actor<'_> {
    fn user(&self) -> Option<&User> {
        match self {
            Actor::Admin(user) => Some(user),
            Actor::Operator => None,
        }
    }
}

async fn audited(
    tx: &mut Tx,
    actor: Actor<'_>,
    org_id: &OrgId,
    action: &str,
    object: (&str, &str),
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    if let Some(user) = actor.user() {
        audit::record_in_org(tx, org_id, &user.id, action, object, now).await?;
    }
    Ok(())
}

fn refused(details: impl Into<String>) -> ServiceError {
    ServiceError::conflict("Refused", details)
}

/// The user `id` of `org_id` (not removed), locked for the change; "not found" otherwise, also
/// for another organization's user.
async fn target(tx: &mut Tx, org_id: &OrgId, id: &UserId) -> Result<User, ServiceError> {
    users::get_in_org(tx, org_id, id, true)
        .await?
        .ok_or_else(ServiceError::not_found)
}

/// Refuses a change that would lock the actor out or leave no active administrator.
async fn guard(
    tx: &mut Tx,
    actor: Actor<'_>,
    user: &User,
    change: AdminChange,
) -> Result<(), ServiceError> {
    let active_admins = users::lock_and_count_active_admins(tx, &user.org_id).await?;
    let target = Target {
        is_self: actor.user().is_some_and(|a| a.id == user.id),
        is_active_admin: user.role == Role::Admin && user.status == UserStatus::Active,
        active_admins,
    };
    match admin_change_refusal(change, target) {
        Some(reason) => Err(refused(reason)),
        None => Ok(()),
    }
}

/// Invites `email` with `role` into `org_id`; returns the user and the token of its
/// set-password link (shown once).
pub async fn invite(
    store: &Store,
    actor: Actor<'_>,
    org_id: &OrgId,
    email: &str,
    role: Role,
    now: OffsetDateTime,
) -> Result<(User, String), ServiceError> {
    let email =
        parse_email(email).map_err(|e| ServiceError::invalid("Invalid email", e).at("email"))?;
    let mut tx = store.begin_write().await?;
    if orgs::get(&mut tx, org_id).await?.is_none() {
        return Err(ServiceError::not_found());
    }
    if users::email_taken(&mut tx, &email).await? {
        return Err(ServiceError::invalid(
            "Email in use",
            "A user with this email address exists already (in this or another organization, \
             or removed): use another address.",
        )
        .at("email"));
    }
    let user = users::invite(&mut tx, org_id, &email, role, now).await?;
    let token = set_password_links::create(&mut tx, &user.id, now).await?;
    audited(
        &mut tx,
        actor,
        org_id,
        "user.invited",
        ("user", user.id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((user, token))
}

pub async fn set_role(
    store: &Store,
    actor: Actor<'_>,
    org_id: &OrgId,
    id: &UserId,
    role: Role,
    now: OffsetDateTime,
) -> Result<User, ServiceError> {
    let mut tx = store.begin_write().await?;
    let user = target(&mut tx, org_id, id).await?;
    if user.role == role {
        return Ok(user);
    }
    if role != Role::Admin {
        guard(&mut tx, actor, &user, AdminChange::Demote).await?;
    }
    users::set_role(&mut tx, &user.id, role).await?;
    audited(
        &mut tx,
        actor,
        org_id,
        "user.role-changed",
        ("user", id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(User { role, ..user })
}

/// Disables the user: its sessions and set-password links end at once.
pub async fn disable(
    store: &Store,
    actor: Actor<'_>,
    org_id: &OrgId,
    id: &UserId,
    now: OffsetDateTime,
) -> Result<User, ServiceError> {
    let mut tx = store.begin_write().await?;
    let user = target(&mut tx, org_id, id).await?;
    if user.status == UserStatus::Disabled {
        return Err(refused("This user is disabled already."));
    }
    guard(&mut tx, actor, &user, AdminChange::Disable).await?;
    users::set_disabled(&mut tx, &user.id, Some(now)).await?;
    dashboard_sessions::revoke_all(&mut tx, &user.id, None, now).await?;
    set_password_links::retire(&mut tx, &user.id, now).await?;
    audited(
        &mut tx,
        actor,
        org_id,
        "user.disabled",
        ("user", id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

pub async fn enable(
    store: &Store,
    actor: Actor<'_>,
    org_id: &OrgId,
    id: &UserId,
    now: OffsetDateTime,
) -> Result<User, ServiceError> {
    let mut tx = store.begin_write().await?;
    let user = target(&mut tx, org_id, id).await?;
    if user.status != UserStatus::Disabled {
        return Err(refused("This user is not disabled."));
    }
    users::set_disabled(&mut tx, &user.id, None).await?;
    audited(
        &mut tx,
        actor,
        org_id,
        "user.enabled",
        ("user", id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Removes the user: it cannot sign in again; its audit entries stay.
pub async fn remove(
    store: &Store,
    actor: Actor<'_>,
    org_id: &OrgId,
    id: &UserId,
    now: OffsetDateTime,
) -> Result<User, ServiceError> {
    let mut tx = store.begin_write().await?;
    let user = target(&mut tx, org_id, id).await?;
    guard(&mut tx, actor, &user, AdminChange::Remove).await?;
    users::remove(&mut tx, &user.id, now).await?;
    dashboard_sessions::revoke_all(&mut tx, &user.id, None, now).await?;
    set_password_links::retire(&mut tx, &user.id, now).await?;
    audited(
        &mut tx,
        actor,
        org_id,
        "user.removed",
        ("user", id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Resets the user's password: the old one and the second factor stop working, its sessions
/// end, and the returned token opens a set-password link (shown once).
pub async fn reset_password(
    store: &Store,
    actor: Actor<'_>,
    org_id: &OrgId,
    id: &UserId,
    now: OffsetDateTime,
) -> Result<(User, String), ServiceError> {
    let mut tx = store.begin_write().await?;
    let user = target(&mut tx, org_id, id).await?;
    if user.status == UserStatus::Disabled {
        return Err(refused("This user is disabled: enable it first."));
    }
    users::clear_credentials(&mut tx, &user.id).await?;
    dashboard_sessions::revoke_all(&mut tx, &user.id, None, now).await?;
    let token = set_password_links::create(&mut tx, &user.id, now).await?;
    audited(
        &mut tx,
        actor,
        org_id,
        "user.password-reset",
        ("user", id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((user, token))
}

/// The user's live sessions (an administrator looking at one of its organization's users).
pub async fn sessions_of(
    store: &Store,
    org_id: &OrgId,
    id: &UserId,
    now: OffsetDateTime,
) -> Result<(User, Vec<dashboard_sessions::SessionSummary>), ServiceError> {
    let mut tx = store.begin_read().await?;
    let user = users::get_in_org(&mut tx, org_id, id, false)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    let sessions = dashboard_sessions::list_for_user(&mut tx, &user.id, now).await?;
    Ok((user, sessions))
}

/// Ends the user's sessions (all, or the one `session`); how many ended.
pub async fn revoke_sessions(
    store: &Store,
    actor: Actor<'_>,
    org_id: &OrgId,
    id: &UserId,
    session: Option<&DashboardSessionId>,
    now: OffsetDateTime,
) -> Result<u64, ServiceError> {
    let mut tx = store.begin_write().await?;
    let user = target(&mut tx, org_id, id).await?;
    let ended = match session {
        Some(session) => {
            if !dashboard_sessions::revoke(&mut tx, &user.id, session, now).await? {
                return Err(ServiceError::not_found());
            }
            audited(
                &mut tx,
                actor,
                org_id,
                "session.revoked",
                ("dashboard-session", session.as_str()),
                now,
            )
            .await?;
            1
        }
        None => {
            let ended = dashboard_sessions::revoke_all(&mut tx, &user.id, None, now).await?;
            audited(
                &mut tx,
                actor,
                org_id,
                "session.revoked",
                ("user", id.as_str()),
                now,
            )
            .await?;
            ended
        }
    };
    tx.commit().await?;
    Ok(ended)
}

/// A user ending one of its own sessions.
pub async fn revoke_own_session(
    store: &Store,
    user: &User,
    session: &DashboardSessionId,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    revoke_sessions(
        store,
        Actor::Admin(user),
        &user.org_id,
        &user.id,
        Some(session),
        now,
    )
    .await
    .map(|_| ())
}

/// What a set-password link's page shows.
pub async fn link_state(
    store: &Store,
    token: &str,
    now: OffsetDateTime,
) -> Result<LinkState, ServiceError> {
    let mut tx = store.begin_read().await?;
    Ok(set_password_links::find(&mut tx, token, now, false).await?)
}

fn link_refusal(state: &LinkState) -> ServiceError {
    match state {
        LinkState::Used => ServiceError::Gone {
            title: "Link used",
            details: "This link has been used already: each link sets a password once. Sign in, \
                      or ask an administrator for a new link."
                .into(),
        },
        LinkState::Expired => ServiceError::Gone {
            title: "Link expired",
            details: "This link has expired (links last 72 hours) or was replaced by a newer \
                      one. Ask an administrator for a new link."
                .into(),
        },
        LinkState::Unknown | LinkState::Usable { .. } => ServiceError::not_found(),
    }
}

fn checked_password(new: &str, again: &str) -> Result<(), ServiceError> {
    if let Some(problem) = password_problem(new) {
        return Err(ServiceError::invalid("Invalid password", problem).at("password"));
    }
    if new != again {
        return Err(ServiceError::invalid(
            "Passwords differ",
            "The two passwords differ: type the same new password twice.",
        )
        .at("password-again"));
    }
    Ok(())
}

/// Sets the password of the link's user and uses the link up; returns the user.
pub async fn set_password_with_link(
    store: &Store,
    token: &str,
    password: &str,
    again: &str,
    now: OffsetDateTime,
) -> Result<User, ServiceError> {
    // Before hashing: an unusable link is told as such whatever the password.
    let state = link_state(store, token, now).await?;
    if !matches!(state, LinkState::Usable { .. }) {
        return Err(link_refusal(&state));
    }
    checked_password(password, again)?;
    let hash = users::hash_password(password.to_owned()).await?;
    let mut tx = store.begin_write().await?;
    let state = set_password_links::find(&mut tx, token, now, true).await?;
    let LinkState::Usable { id, user_id } = state else {
        return Err(link_refusal(&state));
    };
    let Some(credentials) = users::credentials_by_id(&mut tx, &user_id).await? else {
        return Err(ServiceError::not_found());
    };
    let user = credentials.user;
    if user.status == UserStatus::Disabled
        || !set_password_links::consume(&mut tx, &id, now).await?
    {
        return Err(link_refusal(&LinkState::Expired));
    }
    users::set_password(&mut tx, &user.id, &hash, now).await?;
    audit::record_in_org(
        &mut tx,
        &user.org_id,
        &user.id,
        "user.password-changed",
        ("user", user.id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// A user changing its own password (the current one checked): its other sessions end.
pub async fn change_password(
    store: &Store,
    user: &User,
    session: &DashboardSessionId,
    current: &str,
    new: &str,
    again: &str,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    checked_password(new, again)?;
    let mut tx = store.begin_read().await?;
    let credentials = users::credentials_by_id(&mut tx, &user.id).await?;
    drop(tx);
    let current = current.to_owned();
    let matches =
        tokio::task::spawn_blocking(move || users::verify_password(credentials.as_ref(), &current))
            .await
            .unwrap_or(false);
    if !matches {
        return Err(ServiceError::invalid(
            "Wrong password",
            "The current password is not right; nothing was changed.",
        )
        .at("current"));
    }
    let hash = users::hash_password(new.to_owned()).await?;
    let mut tx = store.begin_write().await?;
    users::set_password(&mut tx, &user.id, &hash, now).await?;
    dashboard_sessions::revoke_all(&mut tx, &user.id, Some(session), now).await?;
    audit::record_in_org(
        &mut tx,
        &user.org_id,
        &user.id,
        "user.password-changed",
        ("user", user.id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Requires two-factor authentication of every user of the organization, or no longer. An
/// administrator without it turns it on for themself first, or would be shut out at once.
pub async fn require_two_factor(
    store: &Store,
    admin: &User,
    required: bool,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    if required && !admin.two_factor {
        return Err(refused(
            "Turn on two-factor authentication for your own account first (Account page).",
        ));
    }
    let mut tx = store.begin_write().await?;
    orgs::set_two_factor_required(&mut tx, &admin.org_id, required.then_some(now)).await?;
    let action = if required {
        "organization.two-factor-required"
    } else {
        "organization.two-factor-not-required"
    };
    audit::record_in_org(
        &mut tx,
        &admin.org_id,
        &admin.id,
        action,
        ("organization", admin.org_id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What enrolling in two-factor authentication shows: the secret to type in, the otpauth URI
/// an authenticator app reads, and the URI as a QR code (SVG).
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub secret: String,
    pub uri: String,
    pub qr_svg: String,
}

/// The issuer authenticator apps show beside the account.
const ISSUER: &str = "idshare";
/// RFC 6238's defaults, which every authenticator app reads: SHA-1, 6 digits, 30 s steps; a
/// code of the step before or after is accepted too (clocks drift).
fn totp(secret: Vec<u8>, email: &str) -> Result<Totp, ServiceError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_secret(secret)
        .with_account_name(email)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("TOTP: {e}")))
}

fn open_secret(crypto: &Crypto, user: &UserId, sealed: &[u8]) -> Result<Vec<u8>, ServiceError> {
    Ok(crypto.open_system(sealed, &users::totp_context(user.as_str()))?)
}

/// Starts (or shows again) the enrolment of `user`: a secret kept sealed until a code confirms
/// it. Refused when two-factor is on already.
pub async fn enrolment(store: &Store, user: &User) -> Result<Enrolment, ServiceError> {
    let crypto = store.crypto();
    let mut tx = store.begin_write().await?;
    let state = users::totp_state(&mut tx, &user.id).await?;
    let secret = match state {
        Some(state) if state.enabled => {
            return Err(refused("Two-factor authentication is on already."));
        }
        Some(state) => open_secret(crypto, &user.id, &state.sealed_secret)?,
        None => {
            let mut secret = vec![0u8; 20];
            rand::fill(&mut secret[..]);
            let sealed = crypto.seal_system(&secret, &users::totp_context(user.id.as_str()))?;
            users::set_pending_totp(&mut tx, &user.id, &sealed).await?;
            secret
        }
    };
    tx.commit().await?;
    let totp = totp(secret, &user.email)?;
    let uri = totp
        .to_url()
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("TOTP URI: {e}")))?;
    let qr_svg = qrcode::QrCode::new(uri.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build()
        })
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("QR code: {e}")))?;
    // Only the element: the page embeds it.
    let qr_svg = qr_svg
        .find("<svg")
        .map_or(qr_svg.clone(), |at| qr_svg[at..].to_owned());
    Ok(Enrolment {
        secret: totp.secret().to_base32(),
        uri,
        qr_svg,
    })
}

/// Whether `code` is a valid code of `user`'s secret at `now`, used for the first time (a code
/// of a step already used, or an earlier one, is a replay). The step is used up in `tx`, which
/// a sign-in also records its outcome in.
pub async fn accept_code(
    tx: &mut Tx,
    crypto: &Crypto,
    user: &User,
    code: &str,
    now: OffsetDateTime,
) -> Result<bool, ServiceError> {
    let Some(state) = users::totp_state(tx, &user.id).await? else {
        return Ok(false);
    };
    let secret = open_secret(crypto, &user.id, &state.sealed_secret)?;
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let Ok(time) = u64::try_from(now.unix_timestamp()) else {
        return Ok(false);
    };
    let Some(counter) = totp(secret, &user.email)?.check(&code, time) else {
        return Ok(false);
    };
    Ok(users::use_totp_step(tx, &user.id, counter).await?)
}

fn wrong_code() -> ServiceError {
    ServiceError::invalid(
        "Wrong code",
        "This code is not right, or was used already. Type the current code of your \
         authenticator app.",
    )
    .at("code")
}

/// Turns two-factor authentication on once a code of the enrolment's secret is given.
pub async fn confirm_enrolment(
    store: &Store,
    user: &User,
    code: &str,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let crypto = store.crypto();
    let mut tx = store.begin_write().await?;
    match users::totp_state(&mut tx, &user.id).await? {
        Some(state) if state.enabled => {
            return Err(refused("Two-factor authentication is on already."));
        }
        None => return Err(refused("Start the set-up again: no secret is waiting.")),
        Some(_) => {}
    }
    if !accept_code(&mut tx, crypto, user, code, now).await? {
        return Err(wrong_code());
    }
    users::enable_totp(&mut tx, &user.id, now).await?;
    audit::record_in_org(
        &mut tx,
        &user.org_id,
        &user.id,
        "user.two-factor-enabled",
        ("user", user.id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Turns two-factor authentication off, with a current code. Refused while the organization
/// requires it.
pub async fn turn_off_two_factor(
    store: &Store,
    user: &User,
    code: &str,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let crypto = store.crypto();
    let mut tx = store.begin_write().await?;
    if orgs::two_factor_required(&mut tx, &user.org_id)
        .await?
        .is_some()
    {
        return Err(refused(
            "Your organization requires two-factor authentication: it stays on.",
        ));
    }
    if !user.two_factor {
        return Err(refused("Two-factor authentication is off already."));
    }
    if !accept_code(&mut tx, crypto, user, code, now).await? {
        return Err(wrong_code());
    }
    users::disable_totp(&mut tx, &user.id).await?;
    audit::record_in_org(
        &mut tx,
        &user.org_id,
        &user.id,
        "user.two-factor-disabled",
        ("user", user.id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
