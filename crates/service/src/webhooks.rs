//! Webhooks: managing them, and sending their deliveries (the `webhook-delivery` job).
//!
//! A delivery is one POST of the event envelope, signed with every live secret of the webhook
//! (`Persona-Signature`), answered with any 2xx within [`DELIVERY_TIMEOUT`]; otherwise it is
//! retried on the schedule of [`next_attempt_delay`] until [`MAX_ATTEMPTS`], then `failed`
//! (and can be redelivered). Deliveries of one object to one webhook go in event order: each
//! waits for the one before to end, for at most
//! [`ORDER_WAIT`](idshare_domain::webhook::ORDER_WAIT) (`store::webhooks`). Targets
//! are checked against SSRF at every attempt: an IP host here, every resolved address in
//! [`GuardedResolver`].

use std::{net::SocketAddr, sync::Arc};

use idshare_domain::{
    id::{WebhookDeliveryId, WebhookId},
    inflection::{Inflection, kebab_to, transform_keys},
    webhook::{
        AttributesBlocklist, DELIVERY_TIMEOUT, EnabledEvents, MAX_ATTEMPTS, WebhookAction,
        WebhookStatus, WebhookUrl, forbidden_target, gives_way, next_attempt_delay,
        parse_webhook_url, transition,
    },
    webhook_signature::{HEADER_NAME, signature_header},
};
use idshare_store::{
    Scope, audit,
    events::{self, Event},
    jobs::Job,
    webhooks::{self, Attempt, Delivery, Webhook},
};
use time::Duration;

use super::{Problem, ServiceError};
use crate::{ServiceContext, audit::Actor, jobs::JobKind, render};

const MAX_NAME_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 2000;
/// How long the previous secret keeps signing after a rotation when the caller does not say:
/// 24 hours, time for receivers to switch.
const DEFAULT_ROTATION_OVERLAP_SECONDS: i64 = 24 * 3600;
/// The longest overlap a rotation may ask for: 7 days.
const MAX_ROTATION_OVERLAP_SECONDS: i64 = 7 * 24 * 3600;
/// How long the current secret keeps signing after a rotation, as an input of
/// [`rotate_secret`].
pub const ROTATION_OVERLAP_INPUT: &str = "expires-in-seconds";

/// The client for webhook deliveries and workflow HTTPS requests: no redirects (a 3xx is a
/// failed attempt, so a receiver cannot bounce a delivery to another host), no proxy from the
/// environment, and unless `allow_private` every host name resolved through
/// [`GuardedResolver`].
pub fn client(allow_private: bool) -> reqwest::Client {
    crate::install_tls_provider();
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(DELIVERY_TIMEOUT)
        .timeout(DELIVERY_TIMEOUT)
        .user_agent(concat!("idshare-webhooks/", env!("CARGO_PKG_VERSION")));
    let builder = if allow_private {
        builder
    } else {
        builder.dns_resolver(Arc::new(GuardedResolver))
    };
    builder.build().unwrap_or_default()
}

/// Resolves host names and keeps only public addresses, so a host name cannot lead a request
/// to an internal service (checked at connection time, so DNS changes after the webhook was
/// saved do not help either).
#[derive(Debug)]
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| forbidden_target(a.ip()).is_none())
                .collect();
            if allowed.is_empty() {
                let reasons: Vec<&str> = resolved
                    .iter()
                    .filter_map(|a| forbidden_target(a.ip()))
                    .collect();
                return Err(format!(
                    "`{host}` resolves only to addresses webhooks may not reach ({})",
                    reasons.join(", ")
                )
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Why `url` may not be requested, for an IP-address host (host names are checked when they
/// resolve).
pub fn refused_target(state: &ServiceContext, url: &WebhookUrl) -> Option<&'static str> {
    if state.config().allow_private_webhook_targets {
        return None;
    }
    url.host_ip().and_then(forbidden_target)
}

fn invalid(input: &str, details: impl Into<String>) -> Problem {
    Problem::new("Invalid webhook", details).at(input)
}

/// The problems of a list input, each at its place in the list.
fn pointed(errors: Vec<idshare_domain::PointedError>, input: &str) -> Vec<Problem> {
    errors
        .into_iter()
        .map(|e| invalid(&format!("{input}{}", e.pointer), e.message))
        .collect()
}

/// Webhook settings as given on create (all) or update (those present).
#[derive(Debug, Default)]
pub struct Settings {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub url: Option<String>,
    pub enabled_events: Option<Vec<String>>,
    pub api_key_inflection: Option<String>,
    pub api_attributes_blocklist: Option<Vec<String>>,
    /// `idshare` or `persona` (an extension): the shape of the deliveries' bodies.
    pub idshare_shape: Option<String>,
}

/// The shapes a webhook's deliveries can take (`idshare-shape`).
const SHAPES: &[&str] = &["idshare", "persona"];

/// Checks `settings` and applies them to `webhook`, reporting every bad attribute.
fn apply(
    state: &ServiceContext,
    webhook: &mut Webhook,
    settings: Settings,
) -> Result<(), ServiceError> {
    let mut problems: Vec<Problem> = Vec::new();
    let text = |value: Option<String>, max: usize, input: &str| match value {
        Some(s) if s.chars().count() > max => {
            Err(invalid(input, format!("At most {max} characters.")))
        }
        Some(s) if s.trim().is_empty() => Ok(None),
        other => Ok(other),
    };
    if let Some(name) = settings.name {
        match text(name, MAX_NAME_CHARS, "name") {
            Ok(name) => webhook.name = name,
            Err(e) => problems.push(e),
        }
    }
    if let Some(description) = settings.description {
        match text(description, MAX_DESCRIPTION_CHARS, "description") {
            Ok(description) => webhook.description = description,
            Err(e) => problems.push(e),
        }
    }
    if let Some(url) = settings.url {
        match parse_webhook_url(url.trim()) {
            Ok(url) => match refused_target(state, &url) {
                Some(reason) => problems.push(invalid(
                    "url",
                    format!(
                        "Webhooks may not be sent to {reason} addresses; use a public address \
                         (operators can allow private targets with `allow_private_webhook_targets`)."
                    ),
                )),
                None => webhook.url = url.to_string(),
            },
            Err(e) => problems.push(invalid("url", e.to_string())),
        }
    }
    if let Some(events) = settings.enabled_events {
        match EnabledEvents::parse(&events) {
            Ok(_) => webhook.enabled_events = events,
            Err(e) => problems.extend(pointed(e, "enabled-events")),
        }
    }
    if let Some(inflection) = settings.api_key_inflection {
        match inflection.parse::<Inflection>() {
            Ok(inflection) => webhook.api_key_inflection = inflection,
            Err(e) => problems.push(invalid("api-key-inflection", e.to_string())),
        }
    }
    if let Some(blocklist) = settings.api_attributes_blocklist {
        match AttributesBlocklist::parse(&blocklist) {
            Ok(_) => webhook.api_attributes_blocklist = blocklist,
            Err(e) => problems.extend(pointed(e, "api-attributes-blocklist")),
        }
    }
    if let Some(shape) = settings.idshare_shape {
        if SHAPES.contains(&shape.as_str()) {
            webhook.shape = shape;
        } else {
            problems.push(invalid("idshare-shape", "Must be `idshare` or `persona`."));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Invalid(problems))
    }
}

/// Creates an enabled webhook with a fresh secret.
pub async fn create(
    state: &ServiceContext,
    scope: &Scope,
    settings: Settings,
    actor: &Actor,
) -> Result<Webhook, ServiceError> {
    let missing = |name: &str| ServiceError::malformed(format!("`{name}` is required.")).at(name);
    if settings.url.is_none() {
        return Err(missing("url"));
    }
    if settings.enabled_events.is_none() {
        return Err(missing("enabled-events"));
    }
    let now = state.now();
    let mut webhook = Webhook {
        id: WebhookId::generate(),
        scope: scope.clone(),
        name: None,
        description: None,
        url: String::new(),
        status: WebhookStatus::Enabled.to_string(),
        enabled_events: vec![],
        api_attributes_blocklist: vec![],
        api_key_inflection: Inflection::Kebab,
        shape: SHAPES[0].to_owned(),
        secret: webhooks::generate_secret(),
        previous_secret: None,
        created_at: now,
        updated_at: now,
        archived_at: None,
    };
    apply(state, &mut webhook, settings)?;
    let mut tx = state.store().begin_write().await?;
    webhooks::insert(&mut tx, state.store().crypto(), &webhook).await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        "webhook.created",
        object(&webhook),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(webhook)
}

pub async fn get(
    state: &ServiceContext,
    scope: &Scope,
    id: &WebhookId,
) -> Result<Webhook, ServiceError> {
    let mut tx = state.store().begin_read().await?;
    webhooks::get(&mut tx, state.store().crypto(), scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)
}

fn status_of(webhook: &Webhook) -> Result<WebhookStatus, ServiceError> {
    webhook
        .status
        .parse()
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("webhook {}: {e}", webhook.id)))
}

/// Changes settings; an archived webhook cannot change.
pub async fn update(
    state: &ServiceContext,
    scope: &Scope,
    id: &WebhookId,
    settings: Settings,
    actor: &Actor,
) -> Result<Webhook, ServiceError> {
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    let mut webhook = webhooks::get_for_update(&mut tx, crypto, scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    if status_of(&webhook)? == WebhookStatus::Archived {
        return Err(ServiceError::conflict(
            "Webhook archived",
            "An archived webhook cannot be changed; create a new one.",
        ));
    }
    apply(state, &mut webhook, settings)?;
    webhook.updated_at = state.now();
    webhooks::save(&mut tx, crypto, &webhook).await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        "webhook.updated",
        object(&webhook),
        webhook.updated_at,
    )
    .await?;
    tx.commit().await?;
    Ok(webhook)
}

/// A webhook as the audit log names it.
fn object(webhook: &Webhook) -> (&'static str, &str) {
    ("webhook", webhook.id.as_str())
}

/// Enables, disables or archives a webhook.
pub async fn act(
    state: &ServiceContext,
    scope: &Scope,
    id: &WebhookId,
    action: WebhookAction,
    actor: &Actor,
) -> Result<Webhook, ServiceError> {
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    let mut webhook = webhooks::get_for_update(&mut tx, crypto, scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    let from = status_of(&webhook)?;
    let to = transition(from, action).ok_or_else(|| {
        ServiceError::conflict(
            "Invalid status change",
            format!("Cannot {action} a webhook whose status is `{from}`."),
        )
    })?;
    let now = state.now();
    webhook.status = to.to_string();
    webhook.updated_at = now;
    if to == WebhookStatus::Archived {
        webhook.archived_at = Some(now);
    }
    webhooks::save(&mut tx, crypto, &webhook).await?;
    if to != WebhookStatus::Enabled {
        let reason = format!("not sent: the webhook was {to}");
        webhooks::abandon_pending(&mut tx, &webhook.id, &reason, now).await?;
    }
    let name = format!("webhook.{to}");
    audit::record_by(&mut tx, scope, actor, &name, object(&webhook), now).await?;
    tx.commit().await?;
    Ok(webhook)
}

/// Replaces the secret; the old one keeps signing for `overlap_seconds` (default 24 h).
pub async fn rotate_secret(
    state: &ServiceContext,
    scope: &Scope,
    id: &WebhookId,
    overlap_seconds: Option<i64>,
    actor: &Actor,
) -> Result<Webhook, ServiceError> {
    let overlap = overlap_seconds.unwrap_or(DEFAULT_ROTATION_OVERLAP_SECONDS);
    if !(0..=MAX_ROTATION_OVERLAP_SECONDS).contains(&overlap) {
        return Err(ServiceError::invalid(
            "Invalid expiry",
            format!(
                "`expires-in-seconds` is how long the current secret keeps signing: 0 to \
                 {MAX_ROTATION_OVERLAP_SECONDS} (7 days)."
            ),
        )
        .at(ROTATION_OVERLAP_INPUT));
    }
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    let mut webhook = webhooks::get_for_update(&mut tx, crypto, scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    if status_of(&webhook)? == WebhookStatus::Archived {
        return Err(ServiceError::conflict(
            "Webhook archived",
            "An archived webhook has no secret to rotate.",
        ));
    }
    let now = state.now();
    let previous = std::mem::replace(&mut webhook.secret, webhooks::generate_secret());
    webhook.previous_secret = (overlap > 0).then(|| (previous, now + Duration::seconds(overlap)));
    webhook.updated_at = now;
    webhooks::save(&mut tx, crypto, &webhook).await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        "webhook.secret-rotated",
        object(&webhook),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(webhook)
}

/// Sends a delivery again: back to `pending` with a new series of attempts.
pub async fn redeliver(
    state: &ServiceContext,
    scope: &Scope,
    webhook_id: &WebhookId,
    id: &WebhookDeliveryId,
    actor: &Actor,
) -> Result<Delivery, ServiceError> {
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    let webhook = webhooks::get(&mut tx, crypto, scope, webhook_id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    let mut delivery = webhooks::get_delivery(&mut tx, scope, webhook_id, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    if status_of(&webhook)? != WebhookStatus::Enabled {
        return Err(ServiceError::conflict(
            "Webhook not enabled",
            format!(
                "Deliveries are sent only by an enabled webhook; this one is `{}`.",
                webhook.status
            ),
        ));
    }
    let now = state.now();
    if !webhooks::reopen(&mut tx, id, now).await? {
        return Err(ServiceError::conflict(
            "Delivery pending",
            "This delivery is already pending: it will be attempted again on its own.",
        ));
    }
    let job = JobKind::WebhookDelivery {
        delivery_id: id.to_string(),
    };
    crate::jobs::enqueue(state, &mut tx, &job, None).await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        "webhook-delivery.redelivered",
        ("webhook-delivery", id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    delivery.status = "pending".to_owned();
    delivery.next_attempt_at = Some(now);
    delivery.updated_at = now;
    Ok(delivery)
}

/// The body of a delivery: the event as `GET /api/v1/events/{id}` returns it, with the
/// webhook's attribute blocklist applied to the payload, its shape (`persona`: without
/// idshare's extensions) and its key inflection to every key.
pub fn envelope(event: &Event, webhook: &Webhook) -> Result<Vec<u8>, ServiceError> {
    let mut data = serde_json::to_value(render::event(event)).map_err(|e| {
        ServiceError::internal(anyhow::Error::new(e).context(format!("event {}", event.id)))
    })?;
    if let Some(payload) = data.pointer_mut("/attributes/payload")
        && let Ok(blocklist) = AttributesBlocklist::parse(&webhook.api_attributes_blocklist)
    {
        blocklist.apply(payload);
    }
    let mut body = serde_json::json!({ "data": data });
    if webhook.shape == "persona" {
        crate::jsonapi::persona_exact(&mut body, 200);
    }
    if webhook.api_key_inflection != Inflection::Kebab {
        let inflection = webhook.api_key_inflection;
        body = transform_keys(body, &|key| kebab_to(key, inflection));
    }
    serde_json::to_vec(&body).map_err(ServiceError::internal)
}

/// How much of a receiver's answer is kept, for the delivery's page.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;

/// The start of a receiver's answer as text: at most [`RESPONSE_EXCERPT_BYTES`] (the rest is
/// not downloaded), control characters other than line breaks and tabs left out, `…` when cut.
async fn answer_excerpt(mut response: reqwest::Response) -> Option<String> {
    let mut bytes = Vec::new();
    while bytes.len() <= RESPONSE_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            // What arrived before the receiver stopped (or timed out) is what it answered.
            Ok(None) | Err(_) => break,
        }
    }
    let cut = bytes.len() > RESPONSE_EXCERPT_BYTES;
    bytes.truncate(RESPONSE_EXCERPT_BYTES);
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    text.retain(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'));
    if cut {
        text.push('…');
    }
    (!text.is_empty()).then_some(text)
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!(
            "no answer within {} seconds",
            DELIVERY_TIMEOUT.as_secs_f32()
        );
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// One attempt of a delivery (the job). A failed attempt is recorded and retried on the
/// webhook schedule; after the last one the delivery is `failed` and the job is done. A
/// delivery whose object has an earlier delivery pending waits for it instead (sent nothing);
/// one that ends starts the next of its object.
pub async fn deliver(
    state: &ServiceContext,
    delivery_id: &str,
    job: &Job,
) -> Result<(), ServiceError> {
    let id = WebhookDeliveryId::parse(delivery_id).map_err(ServiceError::internal)?;
    let mut tx = state.store().begin_read().await?;
    let Some(delivery) = webhooks::get_delivery_any(&mut tx, &id).await? else {
        return Err(ServiceError::internal(anyhow::anyhow!(
            "delivery {id} does not exist"
        )));
    };
    if delivery.status != "pending" {
        return Ok(());
    }
    if webhooks::earlier_pending(&mut tx, &delivery).await? {
        drop(tx);
        let mut write = state.store().begin_write().await?;
        if webhooks::wait_for_earlier(&mut write, &delivery).await? {
            write.commit().await?;
            return Ok(());
        }
        // The earlier one ended meanwhile.
        drop(write);
        tx = state.store().begin_read().await?;
    }
    send(state, tx, delivery, job).await
}

/// Sends `delivery` (read in `tx`) and records the attempt.
async fn send(
    state: &ServiceContext,
    mut tx: idshare_store::Tx,
    delivery: Delivery,
    job: &Job,
) -> Result<(), ServiceError> {
    let id = delivery.id.clone();
    let crypto = state.store().crypto();
    let webhook = webhooks::get(&mut tx, crypto, &delivery.scope, &delivery.webhook_id)
        .await?
        .ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!("webhook {} vanished", delivery.webhook_id))
        })?;
    let event = events::get(&mut tx, crypto, &delivery.scope, &delivery.event_id)
        .await?
        .ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!("event {} vanished", delivery.event_id))
        })?;
    drop(tx);
    let now = state.now();
    if webhook.status != WebhookStatus::Enabled.as_str() {
        let mut tx = state.store().begin_write().await?;
        let reason = format!("not sent: the webhook was {}", webhook.status);
        webhooks::abandon(&mut tx, &id, &reason, now).await?;
        tx.commit().await?;
        return Ok(());
    }

    let body = envelope(&event, &webhook)?;
    let timestamp = now.unix_timestamp();
    let first_attempted_at = delivery.first_attempted_at.unwrap_or(now);
    let url = parse_webhook_url(&webhook.url).map_err(ServiceError::internal)?;
    let started = std::time::Instant::now();
    let (outcome, response_excerpt): (Result<u16, (Option<u16>, String)>, _) =
        match refused_target(state, &url) {
            Some(reason) => (Err((None, format!("not sent: {reason} address"))), None),
            None => {
                let response = state
                    .webhook_http()
                    .post(url.as_str())
                    .header("Content-Type", "application/json; charset=utf-8")
                    .header(
                        HEADER_NAME,
                        signature_header(&webhook.signing_secrets(now), timestamp, &body),
                    )
                    .header(
                        "Persona-Webhook-Attempts-Made",
                        (delivery.attempts_made + 1).to_string(),
                    )
                    .header(
                        "Persona-Webhook-Attempts-Left",
                        job.max_attempts.saturating_sub(job.attempts).to_string(),
                    )
                    .header(
                        "Persona-Webhook-First-Attempted-At",
                        first_attempted_at.unix_timestamp().to_string(),
                    )
                    .body(body)
                    .send()
                    .await;
                match response {
                    Ok(r) => {
                        let status = r.status();
                        let excerpt = answer_excerpt(r).await;
                        let outcome = if status.is_success() {
                            Ok(status.as_u16())
                        } else {
                            Err((
                                Some(status.as_u16()),
                                format!("the receiver answered {status}"),
                            ))
                        };
                        (outcome, excerpt)
                    }
                    Err(e) => (Err((None, describe(&e))), None),
                }
            }
        };
    let latency = started.elapsed();
    let at = state.now();
    // Locked, so that a later delivery of the object created meanwhile is seen here, or sees
    // this attempt's outcome.
    let mut tx = state.store().begin_write().await?;
    let Some(delivery) = webhooks::get_delivery_for_update(&mut tx, &id).await? else {
        return Ok(());
    };
    let attempt = match outcome {
        Ok(code) => Attempt {
            at,
            latency,
            status_code: Some(code),
            error: None,
            response_excerpt,
            outcome: "delivered",
            next_attempt_at: None,
        },
        Err((code, mut error)) => {
            let delay = (job.attempts < job.max_attempts.min(MAX_ATTEMPTS))
                .then(|| next_attempt_delay(job.attempts, rand::random::<f64>()))
                .flatten()
                .and_then(|d| Duration::try_from(d).ok());
            let mut next = delay.map(|d| at + d);
            if let Some(retry_at) = next
                && let Some(since) = webhooks::next_waiting_since(&mut tx, &delivery).await?
                && gives_way(retry_at, since)
            {
                error = format!("{error}; {}", webhooks::gave_way_reason());
                next = None;
            }
            Attempt {
                at,
                latency,
                status_code: code,
                error: Some(error),
                response_excerpt,
                outcome: if next.is_some() { "pending" } else { "failed" },
                next_attempt_at: next,
            }
        }
    };
    let took = started.elapsed();
    let recorded = webhooks::record_attempt(&mut tx, &id, &attempt).await?;
    if recorded && attempt.next_attempt_at.is_none() {
        start_next(state, &mut tx, &delivery).await?;
    }
    tx.commit().await?;
    if recorded {
        let outcome = match attempt.outcome {
            "pending" => "retry",
            other => other,
        };
        crate::telemetry::webhook_attempted(outcome, took);
    }
    match (recorded, attempt.next_attempt_at) {
        (true, Some(at)) => Err(ServiceError::Later {
            at,
            cause: anyhow::anyhow!(
                "webhook delivery {id}: {}",
                attempt.error.unwrap_or_default()
            ),
        }),
        _ => Ok(()),
    }
}

/// After `delivery` ended: starts the next delivery of its object to its webhook, if one
/// waits for it, with its job.
async fn start_next(
    state: &ServiceContext,
    tx: &mut idshare_store::Tx,
    delivery: &Delivery,
) -> Result<(), ServiceError> {
    let next =
        webhooks::start_next(tx, &delivery.webhook_id, &delivery.object_id, state.now()).await?;
    if let Some(next) = next {
        let job = JobKind::WebhookDelivery {
            delivery_id: next.to_string(),
        };
        crate::jobs::enqueue(state, tx, &job, None).await?;
    }
    Ok(())
}

/// Called when a delivery job is given up (its lease kept running out): the delivery is
/// `failed`, visible, and can be redelivered; the next one of its object goes.
pub async fn give_up(state: &ServiceContext, delivery_id: &str) -> Result<(), ServiceError> {
    let id = WebhookDeliveryId::parse(delivery_id).map_err(ServiceError::internal)?;
    let mut tx = state.store().begin_write().await?;
    let ended = webhooks::abandon(
        &mut tx,
        &id,
        "given up after repeated internal errors",
        state.now(),
    )
    .await?;
    if ended && let Some(delivery) = webhooks::get_delivery_any(&mut tx, &id).await? {
        start_next(state, &mut tx, &delivery).await?;
    }
    tx.commit().await?;
    Ok(())
}
