//! Settings > Webhooks: the list, creating one (its signing secret shown once), and one
//! webhook's page — its settings, enabling, disabling and archiving, rotating the secret (the
//! new one shown once), and its deliveries with redelivery. Admins write; everyone reads.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use idshare_domain::{
    id::{WebhookDeliveryId, WebhookId},
    webhook::{SUBSCRIBABLE_EVENTS, WebhookAction, WebhookStatus, transition},
    webhook_signature::HEADER_NAME,
};
use idshare_store::{
    Cursor, events,
    users::Role,
    webhooks::{self as store, Delivery, Webhook},
};
use serde::Deserialize;

use super::{Chrome, Confirmation, Moment, Notice, PageError, Signed};
use crate::{http::error::status_of, state::AppState, web};
use idshare_service::{
    ServiceError,
    webhooks::{self as service, Settings},
};

const PATH: &str = "/dashboard/webhooks";
/// Who may create and change webhooks.
const WRITERS: &[Role] = &[Role::Admin];
const PAGE_SIZE: u32 = 25;
/// What the rotation form proposes: the previous secret keeps signing for 24 hours.
const DEFAULT_OVERLAP_SECONDS: &str = "86400";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(list).post(create))
        .route("/dashboard/webhooks/{id}", get(show))
        .route(
            "/dashboard/webhooks/{id}/rotate-secret",
            post(rotate_secret),
        )
        .route(
            "/dashboard/webhooks/{id}/deliveries/{delivery}",
            get(show_delivery),
        )
        .route(
            "/dashboard/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(redeliver),
        )
        .route("/dashboard/webhooks/{id}/{action}", post(act))
}

/// A service refusal sorted by the form field it is about.
#[derive(Debug, Default)]
struct FieldErrors {
    name: Option<String>,
    url: Option<String>,
    events: Option<String>,
    /// Anything not about one of the fields above.
    other: Option<String>,
}

impl FieldErrors {
    fn sort(e: &ServiceError) -> Self {
        let mut sorted = Self::default();
        for reason in e.reasons() {
            let about = |name: &str| {
                reason
                    .input
                    .is_some_and(|input| input == name || input.starts_with(&format!("{name}/")))
            };
            let slot = if about("url") {
                &mut sorted.url
            } else if about("enabled-events") {
                &mut sorted.events
            } else if about("name") {
                &mut sorted.name
            } else {
                &mut sorted.other
            };
            match slot {
                Some(text) => {
                    text.push(' ');
                    text.push_str(reason.details);
                }
                None => *slot = Some(reason.details.to_owned()),
            }
        }
        sorted
    }

    fn any(&self) -> bool {
        self.name.is_some() || self.url.is_some() || self.events.is_some() || self.other.is_some()
    }
}

#[derive(Debug)]
struct Row {
    id: String,
    status: String,
    name: Option<String>,
    url: String,
    events: String,
    created_at: Moment,
}

impl Row {
    fn new(webhook: &Webhook, now: time::OffsetDateTime) -> Self {
        Self {
            id: webhook.id.to_string(),
            status: webhook.status.clone(),
            name: webhook.name.clone(),
            url: webhook.url.clone(),
            events: webhook.enabled_events.join(", "),
            created_at: Moment::new(webhook.created_at, now),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    enabled_events: String,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/webhooks.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    paging: super::Paging,
    can_write: bool,
    form: CreateForm,
    errors: FieldErrors,
    subscribable: String,
}

/// A list's position: `before` a row (newer ones) or `after` it (older ones).
#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    #[serde(default)]
    before: String,
    #[serde(default)]
    after: String,
}

impl PageQuery {
    fn cursor(&self) -> Cursor<'_> {
        super::cursor(&self.before, &self.after)
    }
}

async fn list_page(
    state: &AppState,
    signed: &Signed,
    cursor: Cursor<'_>,
    form: CreateForm,
    errors: FieldErrors,
) -> Result<ListPage, PageError> {
    let mut tx = state.store().begin_read().await?;
    let page = store::list(
        &mut tx,
        state.store().crypto(),
        &signed.scope(),
        None,
        cursor,
        PAGE_SIZE,
    )
    .await?
    .ok_or(PageError::NotFound)?;
    drop(tx);
    let paging = super::Paging::new(PATH, &[], &page, |w| w.id.to_string(), "webhooks");
    Ok(ListPage {
        chrome: signed.chrome("webhooks"),
        rows: page
            .items
            .iter()
            .map(|w| Row::new(w, state.now()))
            .collect(),
        paging,
        can_write: WRITERS.contains(&signed.role()),
        form,
        errors,
        subscribable: SUBSCRIBABLE_EVENTS.join(", "),
    })
}

async fn list(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let page = list_page(
        &state,
        &signed,
        query.cursor(),
        CreateForm::default(),
        FieldErrors::default(),
    )
    .await?;
    Ok(web::html(StatusCode::OK, page.render()))
}

/// The enabled events as typed: separated by commas or line breaks.
fn event_list(raw: &str) -> Vec<String> {
    raw.split([',', '\n', '\r'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Creates an enabled webhook and answers with its page showing the secret, this once. A
/// refusal shows the list again with each reason next to its field.
async fn create(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(WRITERS)?;
    let mut errors = FieldErrors::default();
    if form.url.trim().is_empty() {
        errors.url = Some("Enter the URL the events are sent to.".to_owned());
    }
    let events = event_list(&form.enabled_events);
    if events.is_empty() {
        errors.events = Some("List at least one event name, or * for every event.".to_owned());
    }
    let created = if errors.any() {
        None
    } else {
        let settings = Settings {
            name: Some(Some(form.name.trim().to_owned())),
            url: Some(form.url.trim().to_owned()),
            enabled_events: Some(events),
            ..Settings::default()
        };
        match service::create(&state, &signed.scope(), settings, &signed.actor()).await {
            Ok(webhook) => Some(webhook),
            Err(e) if !e.is_failure() => {
                errors = FieldErrors::sort(&e);
                None
            }
            Err(e) => return Err(e.into()),
        }
    };
    let Some(webhook) = created else {
        let page = list_page(&state, &signed, Cursor::Start, form, errors).await?;
        return Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()));
    };
    let page = webhook_page(
        &state,
        &signed,
        &webhook.id,
        Cursor::Start,
        Shown {
            secret: Some(webhook.secret.clone()),
            ..Shown::default()
        },
    )
    .await?;
    Ok(web::html(StatusCode::OK, page.render()))
}

#[derive(Debug)]
struct DeliveryView {
    id: String,
    status: String,
    event_id: String,
    event_name: String,
    attempts: u32,
    last_status_code: Option<u16>,
    last_error: Option<String>,
    created_at: Moment,
    last_attempted_at: Option<Moment>,
    next_attempt_at: Option<Moment>,
    delivered_at: Option<Moment>,
    can_redeliver: bool,
}

impl DeliveryView {
    fn new(delivery: &Delivery, can_redeliver: bool, now: time::OffsetDateTime) -> Self {
        let moment = |t| Moment::new(t, now);
        Self {
            id: delivery.id.to_string(),
            status: delivery.status.clone(),
            event_id: delivery.event_id.to_string(),
            event_name: delivery.event_name.clone(),
            attempts: delivery.attempts_made,
            last_status_code: delivery.last_status_code,
            last_error: delivery.last_error.clone(),
            created_at: moment(delivery.created_at),
            last_attempted_at: delivery.last_attempted_at.map(moment),
            next_attempt_at: delivery
                .next_attempt_at
                .filter(|_| delivery.status == "pending")
                .map(moment),
            delivered_at: delivery.delivered_at.map(moment),
            can_redeliver: can_redeliver
                && matches!(delivery.status.as_str(), "delivered" | "failed"),
        }
    }
}

/// What a webhook's page shows besides the webhook: a secret just made, a refusal, the
/// rotation form as sent.
#[derive(Debug, Default)]
struct Shown {
    secret: Option<String>,
    /// The secret was just rotated (the page says how long the previous one keeps signing).
    rotated: bool,
    error: Option<String>,
    overlap: Option<String>,
    overlap_error: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/webhook.html")]
struct WebhookPage {
    chrome: Chrome,
    id: String,
    status: String,
    name: Option<String>,
    description: Option<String>,
    url: String,
    events: Vec<String>,
    inflection: &'static str,
    blocklist: Vec<String>,
    created_at: Moment,
    updated_at: Moment,
    archived_at: Option<Moment>,
    previous_secret_until: Option<Moment>,
    actions: Vec<(&'static str, &'static str)>,
    can_rotate: bool,
    deliveries: Vec<DeliveryView>,
    paging: super::Paging,
    shown: Shown,
}

async fn webhook_page(
    state: &AppState,
    signed: &Signed,
    id: &WebhookId,
    cursor: Cursor<'_>,
    mut shown: Shown,
) -> Result<WebhookPage, PageError> {
    let scope = signed.scope();
    let mut tx = state.store().begin_read().await?;
    let webhook = store::get(&mut tx, state.store().crypto(), &scope, id)
        .await?
        .ok_or(PageError::NotFound)?;
    let deliveries = store::list_deliveries(&mut tx, &scope, id, None, cursor, PAGE_SIZE)
        .await?
        .ok_or(PageError::NotFound)?;
    drop(tx);
    let status: Option<WebhookStatus> = webhook.status.parse().ok();
    let can_write = WRITERS.contains(&signed.role());
    let actions = match status {
        Some(status) if can_write => WebhookAction::ALL
            .iter()
            .filter(|action| transition(status, **action).is_some())
            .map(|action| match action {
                WebhookAction::Enable => ("enable", "Enable"),
                WebhookAction::Disable => ("disable", "Disable"),
                WebhookAction::Archive => ("archive", "Archive…"),
            })
            .collect(),
        _ => vec![],
    };
    let enabled = status == Some(WebhookStatus::Enabled);
    let paging = super::Paging::new(
        &format!("{PATH}/{id}"),
        &[],
        &deliveries,
        |d| d.id.to_string(),
        "deliveries",
    );
    if shown.overlap.is_none() {
        shown.overlap = Some(DEFAULT_OVERLAP_SECONDS.to_owned());
    }
    let now = state.now();
    Ok(WebhookPage {
        chrome: signed.chrome("webhooks"),
        id: webhook.id.to_string(),
        status: webhook.status.clone(),
        name: webhook.name.clone(),
        description: webhook.description.clone(),
        url: webhook.url.clone(),
        events: webhook.enabled_events.clone(),
        inflection: webhook.api_key_inflection.as_str(),
        blocklist: webhook.api_attributes_blocklist.clone(),
        created_at: Moment::new(webhook.created_at, now),
        updated_at: Moment::new(webhook.updated_at, now),
        archived_at: webhook.archived_at.map(|t| Moment::new(t, now)),
        previous_secret_until: webhook
            .previous_secret
            .as_ref()
            .filter(|(_, until)| *until > now)
            .map(|(_, until)| Moment::new(*until, now)),
        actions,
        can_rotate: can_write && status != Some(WebhookStatus::Archived),
        deliveries: deliveries
            .items
            .iter()
            .map(|d| DeliveryView::new(d, can_write && enabled, now))
            .collect(),
        paging,
        shown,
    })
}

async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let id = WebhookId::parse(&id).map_err(|_| PageError::NotFound)?;
    let page = webhook_page(&state, &signed, &id, query.cursor(), Shown::default()).await?;
    Ok(web::html(StatusCode::OK, page.render()))
}

/// The webhook's page again with a refusal (its status code), or a 404 for what is not there.
async fn refused(
    state: &AppState,
    signed: &Signed,
    id: &WebhookId,
    e: ServiceError,
) -> Result<Response, PageError> {
    if !super::explainable(&e) {
        return Err(e.into());
    }
    let shown = Shown {
        error: Some(e.to_string()),
        ..Shown::default()
    };
    let page = webhook_page(state, signed, id, Cursor::Start, shown).await?;
    Ok(web::html(status_of(&e), page.render()))
}

/// Enables or disables a webhook, or archives it once confirmed (archiving cannot be undone).
async fn act(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<super::ConfirmedForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(WRITERS)?;
    let id = WebhookId::parse(&id).map_err(|_| PageError::NotFound)?;
    let action: WebhookAction = action.parse().map_err(|_| PageError::NotFound)?;
    if action == WebhookAction::Archive && !form.confirmed() {
        // Asked only about a webhook of this organization and environment (404 otherwise).
        let mut tx = state.store().begin_read().await?;
        store::get(&mut tx, state.store().crypto(), &signed.scope(), &id)
            .await?
            .ok_or(PageError::NotFound)?;
        drop(tx);
        return Ok(super::confirmation(
            &signed,
            Confirmation {
                question: format!("Archive webhook {id}?"),
                consequence: "It sends nothing from then on, its pending deliveries fail, and it \
                              cannot be enabled again. This cannot be undone.",
                action: format!("{PATH}/{id}/archive"),
                fields: vec![],
                button: "Archive this webhook",
                cancel: format!("{PATH}/{id}"),
                section: "webhooks",
            },
        ));
    }
    match service::act(&state, &signed.scope(), &id, action, &signed.actor()).await {
        Ok(_) => {
            let notice = match action {
                WebhookAction::Enable => Notice::WebhookEnabled,
                WebhookAction::Disable => Notice::WebhookDisabled,
                WebhookAction::Archive => Notice::WebhookArchived,
            };
            Ok(super::done(&state, &format!("{PATH}/{id}"), notice))
        }
        Err(e) => refused(&state, &signed, &id, e).await,
    }
}

#[derive(Debug, Deserialize)]
struct RotateForm {
    csrf: String,
    #[serde(default)]
    overlap_seconds: String,
}

/// Replaces the signing secret and shows the new one, this once.
async fn rotate_secret(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<RotateForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(WRITERS)?;
    let id = WebhookId::parse(&id).map_err(|_| PageError::NotFound)?;
    let raw = form.overlap_seconds.trim();
    let result = match raw.parse::<i64>() {
        _ if raw.is_empty() => rotate(&state, &signed, &id, None).await,
        Ok(overlap) => rotate(&state, &signed, &id, Some(overlap)).await,
        Err(_) => Err(RotateRefusal::Overlap(
            "The overlap is a whole number of seconds, for example 86400 for 24 hours.".to_owned(),
        )),
    };
    match result {
        Ok(webhook) => {
            let shown = Shown {
                secret: Some(webhook.secret.clone()),
                rotated: true,
                ..Shown::default()
            };
            let page = webhook_page(&state, &signed, &id, Cursor::Start, shown).await?;
            Ok(web::html(StatusCode::OK, page.render()))
        }
        Err(RotateRefusal::Overlap(message)) => {
            let shown = Shown {
                overlap: Some(form.overlap_seconds.clone()),
                overlap_error: Some(message),
                ..Shown::default()
            };
            let page = webhook_page(&state, &signed, &id, Cursor::Start, shown).await?;
            Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
        }
        Err(RotateRefusal::Other(e)) => refused(&state, &signed, &id, e).await,
    }
}

enum RotateRefusal {
    /// What is wrong with the overlap, shown next to its field.
    Overlap(String),
    Other(ServiceError),
}

async fn rotate(
    state: &AppState,
    signed: &Signed,
    id: &WebhookId,
    overlap: Option<i64>,
) -> Result<Webhook, RotateRefusal> {
    service::rotate_secret(state, &signed.scope(), id, overlap, &signed.actor())
        .await
        .map_err(|e| {
            let about_overlap = e
                .reasons()
                .iter()
                .any(|r| r.input == Some(service::ROTATION_OVERLAP_INPUT));
            if about_overlap {
                RotateRefusal::Overlap(e.to_string())
            } else {
                RotateRefusal::Other(e)
            }
        })
}

/// Sends a delivered or failed delivery again; a refusal (already pending: 409; the webhook
/// not enabled: 422) is shown on the webhook's page.
async fn redeliver(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, delivery)): Path<(String, String)>,
    Form(form): Form<super::CsrfForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(WRITERS)?;
    let id = WebhookId::parse(&id).map_err(|_| PageError::NotFound)?;
    let delivery = WebhookDeliveryId::parse(&delivery).map_err(|_| PageError::NotFound)?;
    match service::redeliver(&state, &signed.scope(), &id, &delivery, &signed.actor()).await {
        Ok(_) => Ok(super::done(
            &state,
            &format!("{PATH}/{id}"),
            Notice::DeliveryRedelivered,
        )),
        Err(e) => refused(&state, &signed, &id, e).await,
    }
}

#[derive(Debug)]
struct AttemptView {
    number: u32,
    at: Moment,
    latency_ms: u128,
    status_code: Option<u16>,
    error: Option<String>,
    response_excerpt: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/webhook_delivery.html")]
struct DeliveryPage {
    chrome: Chrome,
    webhook_id: String,
    url: String,
    delivery: DeliveryView,
    signature_header: &'static str,
    /// The body as the webhook's settings shape it now, pretty-printed; `None` once the
    /// event's object was redacted.
    payload: Option<String>,
    attempts: Vec<AttemptView>,
    excerpt_bytes: usize,
}

/// One delivery: the request (body and headers that matter — never the secret) and every
/// attempt with the receiver's answer. Showing the body reveals personal data: written to the
/// audit log.
async fn show_delivery(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let id = WebhookId::parse(&id).map_err(|_| PageError::NotFound)?;
    let delivery_id = WebhookDeliveryId::parse(&delivery).map_err(|_| PageError::NotFound)?;
    let scope = signed.scope();
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_read().await?;
    let webhook = store::get(&mut tx, crypto, &scope, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let delivery = store::get_delivery(&mut tx, &scope, &id, &delivery_id)
        .await?
        .ok_or(PageError::NotFound)?;
    let event = events::get(&mut tx, crypto, &scope, &delivery.event_id).await?;
    let attempts = store::attempts(&mut tx, &delivery_id).await?;
    drop(tx);
    let payload = match event.filter(|e| e.payload.is_some()) {
        Some(event) => {
            let body = service::envelope(&event, &webhook)?;
            let value: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| PageError::Service(ServiceError::internal(e)))?;
            Some(
                serde_json::to_string_pretty(&value)
                    .map_err(|e| PageError::Service(ServiceError::internal(e)))?,
            )
        }
        None => None,
    };
    idshare_service::audit::record_view(
        &state,
        &scope,
        &signed.actor(),
        "webhook-delivery.viewed",
        ("webhook-delivery", delivery_id.as_str()),
    )
    .await?;
    let can_redeliver =
        WRITERS.contains(&signed.role()) && webhook.status == WebhookStatus::Enabled.as_str();
    let page = DeliveryPage {
        chrome: signed.chrome("webhooks"),
        webhook_id: webhook.id.to_string(),
        url: webhook.url.clone(),
        delivery: DeliveryView::new(&delivery, can_redeliver, state.now()),
        signature_header: HEADER_NAME,
        payload,
        attempts: attempts
            .into_iter()
            .map(|a| AttemptView {
                number: a.number,
                at: Moment::new(a.at, state.now()),
                latency_ms: a.latency.as_millis(),
                status_code: a.status_code,
                error: a.error,
                response_excerpt: a.response_excerpt,
            })
            .collect(),
        excerpt_bytes: service::RESPONSE_EXCERPT_BYTES,
    };
    Ok(web::html(StatusCode::OK, page.render()))
}
