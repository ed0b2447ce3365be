//! Confirming an inquiry's `phone-number` or `email-address` with a code: a code is sent to the
//! field's current value through the configured [`crate::sender::CodeSender`], only its salted
//! hash is stored (with a 10-minute expiry and 5 attempts), and the right code records the
//! confirmation with an `inquiry.field-confirmed` event in the same transaction.
//!
//! A confirmation holds for the value the code was sent to (kept sealed under the inquiry's
//! data key): once the field changes, [`confirmed_keys`] no longer lists it, and a new code must
//! be requested.

use idshare_domain::{
    id::InquiryId,
    verification::{
        email,
        phone::{self, CodeAttempts, CodeChallenge, CodeCheck},
    },
};
use idshare_store::{
    Scope, StoreError, Tx, confirmations, events,
    inquiries::{self, Inquiry},
};
use time::{Duration, OffsetDateTime};

use super::ServiceError;
use crate::{
    ServiceContext,
    inquiries::{InquiryView, definition_for},
    render,
    sender::{Channel, CodeMessage, mask},
};

/// How long a sent code can be used.
pub const CODE_LIFETIME: Duration = Duration::minutes(10);
/// The shortest time between two codes for the same field of an inquiry.
pub const RESEND_INTERVAL: Duration = Duration::seconds(30);
/// The event recorded when a field is confirmed; its payload is the inquiry.
pub const FIELD_CONFIRMED: &str = idshare_domain::event::names::INQUIRY_FIELD_CONFIRMED;

const FIELD_INPUT: &str = "field";
const CODE_INPUT: &str = "code";

/// A field that can be confirmed by code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmableField {
    PhoneNumber,
    EmailAddress,
}

impl ConfirmableField {
    pub fn parse(raw: &str) -> Result<Self, ServiceError> {
        match raw {
            phone::FIELD_KEY => Ok(Self::PhoneNumber),
            email::FIELD_KEY => Ok(Self::EmailAddress),
            other => Err(ServiceError::invalid(
                "Invalid attribute",
                format!(
                    "`field` must be `{}` or `{}`, not `{other}`.",
                    phone::FIELD_KEY,
                    email::FIELD_KEY
                ),
            )
            .at(FIELD_INPUT)),
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Self::PhoneNumber => phone::FIELD_KEY,
            Self::EmailAddress => email::FIELD_KEY,
        }
    }

    fn channel(self) -> Channel {
        match self {
            Self::PhoneNumber => Channel::Sms,
            Self::EmailAddress => Channel::Email,
        }
    }

    /// The field's current value in the form codes are sent to (E.164, normalized address), or
    /// why there is none: not set, or not valid.
    fn current_value(self, inquiry: &Inquiry) -> Result<String, String> {
        let text = |key: &str| match inquiry.data.fields.get(key) {
            Some(idshare_domain::field::FieldValue::String(s)) => Some(s.trim()),
            _ => None,
        };
        let key = self.key();
        let raw = text(key)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("The inquiry has no `{key}`; set it before confirming it."))?;
        match self {
            Self::PhoneNumber => phone::parse_e164(raw, text("address-country-code")),
            Self::EmailAddress => email::normalize(raw),
        }
        .map_err(|message| format!("The inquiry's `{key}` {message}."))
    }
}

/// Where a confirmation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmationStatus {
    /// A code was sent and can still be tried.
    Pending,
    Confirmed,
    /// No attempts are left; a new code must be requested.
    Locked,
    /// The code expired; a new one must be requested.
    Expired,
}

impl ConfirmationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Locked => "locked",
            Self::Expired => "expired",
        }
    }
}

/// One field's confirmation, as the API shows it (never the code, nor the full destination).
#[derive(Debug, Clone)]
pub struct ConfirmationView {
    pub inquiry_id: InquiryId,
    pub field: ConfirmableField,
    /// The destination, masked: `+1******2671`, `a***@example.com`.
    pub destination: String,
    pub status: ConfirmationStatus,
    pub expires_at: OffsetDateTime,
    pub attempts_remaining: u32,
    pub sent_at: OffsetDateTime,
    pub confirmed_at: Option<OffsetDateTime>,
}

impl ConfirmationView {
    fn new(
        inquiry_id: &InquiryId,
        field: ConfirmableField,
        value: &str,
        stored: &confirmations::Confirmation,
        now: OffsetDateTime,
    ) -> Self {
        let attempts = attempts(stored);
        let status = if stored.confirmed_at.is_some() {
            ConfirmationStatus::Confirmed
        } else if now >= stored.expires_at {
            ConfirmationStatus::Expired
        } else if attempts.exhausted() {
            ConfirmationStatus::Locked
        } else {
            ConfirmationStatus::Pending
        };
        Self {
            inquiry_id: inquiry_id.clone(),
            field,
            destination: mask(value),
            status,
            expires_at: stored.expires_at,
            attempts_remaining: attempts.remaining(),
            sent_at: stored.created_at,
            confirmed_at: stored.confirmed_at,
        }
    }
}

fn attempts(stored: &confirmations::Confirmation) -> CodeAttempts {
    CodeAttempts {
        used: stored.attempts,
        ..CodeAttempts::default()
    }
}

/// Locks the inquiry and checks that its data can still be confirmed.
async fn lock_open_inquiry(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    id: &InquiryId,
) -> Result<Inquiry, ServiceError> {
    let inquiry = inquiries::get_for_update(tx, state.store().crypto(), scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    if inquiry.redacted_at.is_some() {
        return Err(ServiceError::conflict(
            "Inquiry redacted",
            "This inquiry was redacted; its data can no longer be confirmed.",
        ));
    }
    if !inquiry.status.accepts_field_updates() {
        return Err(ServiceError::conflict(
            "Inquiry finished",
            format!(
                "Fields can only be confirmed while the inquiry is `created` or `pending`; its status is `{}`.",
                inquiry.status
            ),
        ));
    }
    Ok(inquiry)
}

fn no_value(message: String) -> ServiceError {
    ServiceError::invalid("Invalid field", message).at(FIELD_INPUT)
}

/// Sends a new code for `field` to its current value. At most one code per field every
/// [`RESEND_INTERVAL`]; a field already confirmed for its current value needs none.
pub async fn request(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryId,
    field: ConfirmableField,
) -> Result<ConfirmationView, ServiceError> {
    let now = state.now();
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    let inquiry = lock_open_inquiry(state, &mut tx, scope, id).await?;
    let value = field.current_value(&inquiry).map_err(no_value)?;
    if let Some(existing) = confirmations::get(&mut tx, crypto, id, field.key()).await? {
        if existing.confirmed_at.is_some() && existing.value.as_deref() == Some(value.as_str()) {
            return Err(ServiceError::conflict(
                "Already confirmed",
                format!("The inquiry's `{}` is already confirmed.", field.key()),
            ));
        }
        let next = existing.created_at + RESEND_INTERVAL;
        if now < next {
            let wait = (next - now).whole_seconds().max(1);
            return Err(ServiceError::conflict(
                "Code sent recently",
                format!(
                    "A code for `{}` was sent less than {} seconds ago; try again in {wait} seconds.",
                    field.key(),
                    RESEND_INTERVAL.whole_seconds()
                ),
            ));
        }
    }
    let (code, challenge) = CodeChallenge::generate(now + CODE_LIFETIME);
    confirmations::start(
        &mut tx,
        crypto,
        id,
        field.key(),
        confirmations::NewCode {
            code_hash: &challenge.hash,
            code_salt: &challenge.salt,
            value: &value,
            expires_at: challenge.expires_at,
        },
        now,
    )
    .await?;
    tx.commit_now().await?;

    // Sent after the commit (at once, even in an idempotent request): a slow gateway must not
    // hold the write transaction. A code that could not be delivered is withdrawn, so asking
    // again is not refused as too soon.
    let sent = state
        .code_sender()
        .send(CodeMessage {
            channel: field.channel(),
            to: value.clone(),
            code,
            environment: scope.environment,
        })
        .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, field = field.key(), to = mask(&value), "confirmation code not sent");
        let mut tx = state.store().begin_write().await?;
        confirmations::discard(&mut tx, id, field.key(), &challenge.hash).await?;
        tx.commit().await?;
        return Err(ServiceError::Upstream {
            title: "Code not sent",
            details: "The confirmation code could not be delivered; try again later.".to_owned(),
            cause: e.into(),
        });
    }
    let stored = confirmations::Confirmation {
        code_hash: challenge.hash,
        code_salt: challenge.salt,
        value: Some(value.clone()),
        attempts: 0,
        expires_at: challenge.expires_at,
        confirmed_at: None,
        created_at: now,
    };
    Ok(ConfirmationView::new(id, field, &value, &stored, now))
}

/// Tries `code` against the field's current code. Every comparison counts as an attempt; the
/// right one records the confirmation and an `inquiry.field-confirmed` event.
pub async fn verify(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryId,
    field: ConfirmableField,
    code: &str,
) -> Result<ConfirmationView, ServiceError> {
    let normalized = phone::normalize_code(code);
    if normalized.len() != phone::CODE_DIGITS || !normalized.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ServiceError::invalid(
            "Invalid attribute",
            format!(
                "`code` must be the {} digits that were sent.",
                phone::CODE_DIGITS
            ),
        )
        .at(CODE_INPUT));
    }
    let now = state.now();
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    let inquiry = lock_open_inquiry(state, &mut tx, scope, id).await?;
    let value = field.current_value(&inquiry).map_err(no_value)?;
    let stored = confirmations::get(&mut tx, crypto, id, field.key())
        .await?
        .ok_or_else(|| {
            ServiceError::invalid(
                "No code sent",
                format!(
                    "No code was sent for `{}`; request one with POST /api/v1/inquiries/{id}/confirmations.",
                    field.key()
                ),
            )
            .at(FIELD_INPUT)
        })?;
    if stored.value.as_deref() != Some(value.as_str()) {
        return Err(ServiceError::invalid(
            "Field changed",
            format!(
                "The inquiry's `{}` changed since the code was sent; request a new code.",
                field.key()
            ),
        )
        .at(FIELD_INPUT));
    }
    if stored.confirmed_at.is_some() {
        // A repeated request with the right code answers the same; nothing is counted.
        let mut unused = CodeAttempts::default();
        let check = phone::check_code(
            &normalized,
            &stored.code_hash,
            &stored.code_salt,
            &mut unused,
        );
        if check == CodeCheck::Confirmed {
            return Ok(ConfirmationView::new(id, field, &value, &stored, now));
        }
        return Err(ServiceError::conflict(
            "Already confirmed",
            format!("The inquiry's `{}` is already confirmed.", field.key()),
        ));
    }
    let mut challenge = CodeChallenge {
        hash: stored.code_hash.clone(),
        salt: stored.code_salt.clone(),
        expires_at: stored.expires_at,
        attempts: attempts(&stored),
    };
    match challenge.check(&normalized, now) {
        CodeCheck::Expired => Err(ServiceError::invalid(
            "Code expired",
            "The code expired; request a new code.",
        )
        .at(CODE_INPUT)),
        CodeCheck::Locked => Err(ServiceError::invalid(
            "Code locked",
            format!(
                "The code is locked after {} wrong attempts; request a new code.",
                challenge.attempts.max
            ),
        )
        .at(CODE_INPUT)),
        CodeCheck::Wrong { remaining } => {
            confirmations::record_attempt(&mut tx, id, field.key(), false, now).await?;
            tx.commit().await?;
            let details = match remaining {
                0 => "The code is wrong; no attempts remain: request a new code.".to_owned(),
                1 => "The code is wrong; 1 attempt remains.".to_owned(),
                n => format!("The code is wrong; {n} attempts remain."),
            };
            Err(ServiceError::invalid("Wrong code", details).at(CODE_INPUT))
        }
        CodeCheck::Confirmed => {
            confirmations::record_attempt(&mut tx, id, field.key(), true, now).await?;
            let mut inquiry = inquiry;
            inquiry.updated_at = now;
            inquiries::save(&mut tx, crypto, scope, &inquiry).await?;
            let definition = definition_for(&mut tx, scope, &inquiry).await?;
            let view = InquiryView::load(state, &mut tx, scope, inquiry, definition).await?;
            record(state, &mut tx, scope, &view).await?;
            let confirmed = confirmations::Confirmation {
                attempts: challenge.attempts.used,
                confirmed_at: Some(now),
                ..stored
            };
            tx.commit().await?;
            Ok(ConfirmationView::new(id, field, &value, &confirmed, now))
        }
    }
}

/// Records the `inquiry.field-confirmed` event, its payload sealed under the inquiry's data key
/// (as every inquiry event of an unredacted inquiry).
async fn record(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    view: &InquiryView,
) -> Result<(), ServiceError> {
    let payload = render::payload(&view.resource());
    let id = view.inquiry.id.as_str();
    crate::events::record(
        state,
        tx,
        scope,
        events::NewEvent {
            name: FIELD_CONFIRMED,
            object_type: "inquiry",
            object_id: id,
            payload: &payload,
            sealed_by: Some(id),
        },
    )
    .await?;
    Ok(())
}

/// The field keys of `inquiry` confirmed by code *for their current value*: a confirmation
/// stops counting once the field changes (a reformatted value that normalizes the same still
/// counts). This is what `Subject.confirmed` should hold.
pub async fn confirmed_keys(
    tx: &mut Tx,
    state: &ServiceContext,
    inquiry: &Inquiry,
) -> Result<Vec<String>, StoreError> {
    let confirmed =
        confirmations::confirmed_values(tx, state.store().crypto(), &inquiry.id).await?;
    Ok(confirmed
        .into_iter()
        .filter(|(key, confirmation)| {
            let Ok(field) = ConfirmableField::parse(key) else {
                return false;
            };
            let current = field.current_value(inquiry).ok();
            current.is_some() && confirmation.value == current
        })
        .map(|(key, _)| key)
        .collect())
}
