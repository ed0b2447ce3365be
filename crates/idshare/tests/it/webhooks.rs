//! Webhooks: management, and real deliveries to a receiver on loopback that checks every
//! signature with the domain's verifier.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU16, AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use idshare_domain::webhook_signature::{DEFAULT_TOLERANCE_SECONDS, verify};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, expect_error, expect_status, spawn_app, spawn_app_with};

const WEBHOOKS: &str = "/api/v1/webhooks";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }
}

#[derive(Debug, Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// The status to answer with (0: 200).
    status: AtomicU16,
    /// How long to wait before answering, in milliseconds.
    delay_ms: AtomicU64,
    /// Answer `302 Found` with this `Location` instead.
    redirect_to: Mutex<Option<String>>,
    /// Answer `500` to this many more deliveries of the events about an object, by object id.
    failing_objects: Mutex<HashMap<String, u32>>,
    /// The body of the answers (none when empty).
    body: Mutex<String>,
}

/// An HTTP receiver on loopback that records every request.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{address}/hook"),
            state,
        }
    }

    pub fn answer(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// Answers with `body` from now on.
    pub fn answer_body(&self, body: &str) {
        *self.state.body.lock().unwrap() = body.to_owned();
    }

    fn redirect_to(&self, location: &str) {
        *self.state.redirect_to.lock().unwrap() = Some(location.to_owned());
    }

    fn hang_for(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Answers `500` to the next `times` deliveries about `object_id`.
    fn fail_object(&self, object_id: &str, times: u32) {
        self.state
            .failing_objects
            .lock()
            .unwrap()
            .insert(object_id.to_owned(), times);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let object = serde_json::from_slice::<Value>(&body).ok().and_then(|doc| {
        doc.pointer("/data/relationships/object/data/id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    state
        .received
        .lock()
        .unwrap()
        .push(Received { headers, body });
    let failing =
        object.is_some_and(
            |id| match state.failing_objects.lock().unwrap().get_mut(&id) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    true
                }
                _ => false,
            },
        );
    if failing {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let redirect = state.redirect_to.lock().unwrap().clone();
    if let Some(location) = redirect {
        return (
            StatusCode::FOUND,
            [(axum::http::header::LOCATION, location)],
        )
            .into_response();
    }
    let status = match state.status.load(Ordering::SeqCst) {
        0 => StatusCode::OK,
        code => StatusCode::from_u16(code).unwrap(),
    };
    let body = state.body.lock().unwrap().clone();
    (status, body).into_response()
}

/// Checks a delivery's signature against `secret` at the server's current time.
pub fn verify_with(app: &TestApp, received: &Received, secret: &str) -> bool {
    verify(
        received.header("Persona-Signature"),
        secret,
        &received.body,
        app.state.now().unix_timestamp(),
        DEFAULT_TOLERANCE_SECONDS,
    )
    .is_ok()
}

/// Creates a webhook; returns its id and secret.
pub async fn create_webhook(app: &TestApp, key: &str, attributes: Value) -> (String, String) {
    let created = expect_status(
        app.post(key, WEBHOOKS, &json!({"data": {"attributes": attributes}}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let secrets = created["data"]["attributes"]["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 1, "{created}");
    assert!(secrets[0]["expires-at"].is_null());
    (
        created["data"]["id"].as_str().unwrap().to_owned(),
        secrets[0]["value"].as_str().unwrap().to_owned(),
    )
}

async fn deliveries(app: &TestApp, key: &str, webhook: &str) -> Vec<Value> {
    let list = expect_status(
        app.get(
            key,
            &format!("{WEBHOOKS}/{webhook}/deliveries?page[size]=100"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    list["data"].as_array().unwrap().clone()
}

async fn webhook_management_and_validation(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;
    let (id, secret) = create_webhook(
        &app,
        key,
        json!({"url": "https://hooks.example.invalid/idshare", "enabled-events": ["inquiry.completed"],
               "name": "Compliance"}),
    )
    .await;
    assert!(secret.starts_with("wbhsec_"));
    let path = format!("{WEBHOOKS}/{id}");
    let shown = expect_status(app.get(key, &path).await, StatusCode::OK).await;
    let attributes = &shown["data"]["attributes"];
    assert_eq!(attributes["status"], "enabled");
    assert_eq!(attributes["api-key-inflection"], "kebab");
    assert!(
        attributes.get("secrets").is_none(),
        "secrets only at creation: {shown}"
    );
    assert!(!shown.to_string().contains(&secret));

    // Every bad attribute reported at once, each with its pointer; nothing created.
    let e = expect_status(
        app.post(
            key,
            WEBHOOKS,
            &json!({"data": {"attributes": {"url": "ftp://x", "enabled-events": ["inquiry.completed", "nope"],
                    "api-key-inflection": "pascal", "api-attributes-blocklist": [""]}}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let pointers: Vec<&str> = e["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"]["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        pointers,
        [
            "/data/attributes/url",
            "/data/attributes/enabled-events/1",
            "/data/attributes/api-key-inflection",
            "/data/attributes/api-attributes-blocklist/0"
        ],
        "{e}"
    );
    let e = expect_error(
        app.post(
            key,
            WEBHOOKS,
            &json!({"data": {"attributes": {"enabled-events": ["*"]}}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(e["source"]["pointer"], "/data/attributes/url");
    expect_error(
        app.post(
            key,
            WEBHOOKS,
            &json!({"data": {"attributes": {"url": "https://a.example", "enabled-events": ["*"], "colour": 1}}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(app.list_ids(key, WEBHOOKS).await, [id.as_str()]);

    // Update: given attributes only; null clears.
    let updated = expect_status(
        app.patch(
            key,
            &path,
            &json!({"data": {"attributes": {"name": null, "enabled-events": ["*"],
                    "api-key-inflection": "camel", "api-attributes-blocklist": ["name-last"]}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let attributes = &updated["data"]["attributes"];
    assert!(attributes["name"].is_null());
    assert_eq!(attributes["url"], "https://hooks.example.invalid/idshare");
    assert_eq!(attributes["enabled-events"], json!(["*"]));
    assert_eq!(attributes["api-key-inflection"], "camel");

    // Status changes.
    let act = |action: &'static str| {
        let app = &app;
        let path = format!("{path}/{action}");
        async move { app.post(key, &path, &json!({})).await }
    };
    expect_error(act("enable").await, StatusCode::CONFLICT).await;
    let disabled = expect_status(act("disable").await, StatusCode::OK).await;
    assert_eq!(disabled["data"]["attributes"]["status"], "disabled");
    let listed = expect_status(
        app.get(key, &format!("{WEBHOOKS}?filter[status]=disabled"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    expect_error(
        app.get(key, &format!("{WEBHOOKS}?filter[status]=paused"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_status(act("enable").await, StatusCode::OK).await;

    // Rotation: both secrets shown, the old one with its expiry.
    let e = expect_error(
        app.post(
            key,
            &format!("{path}/rotate-secret"),
            &json!({"meta": {"expires-in-seconds": 999_999_999}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(e["source"]["pointer"], "/meta/expires-in-seconds");
    let rotated = expect_status(
        app.post(
            key,
            &format!("{path}/rotate-secret"),
            &json!({"meta": {"expires-in-seconds": 7200}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let secrets = rotated["data"]["attributes"]["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2);
    assert_ne!(secrets[0]["value"], secret.as_str());
    assert_eq!(secrets[1]["value"], secret.as_str());
    assert!(secrets[1]["expires-at"].is_string());

    let archived = expect_status(act("archive").await, StatusCode::OK).await;
    assert_eq!(archived["data"]["attributes"]["status"], "archived");
    assert!(archived["data"]["attributes"]["archived-at"].is_string());
    for action in ["enable", "disable", "archive"] {
        let e = expect_error(act(action).await, StatusCode::CONFLICT).await;
        assert!(e.to_string().contains("`archived`"), "{e}");
    }
    expect_error(
        app.patch(key, &path, &json!({"data": {"attributes": {"name": "x"}}}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
}

async fn private_targets_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.allow_private_webhook_targets = false;
    })
    .await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0x7f.1/hook",
        // Teredo, and IPv4 internal addresses reached through 6to4, NAT64 and ISATAP.
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
        "http://[2002:c0a8:1::1]/hook",
        "http://[64:ff9b::a00:1]/hook",
        "http://[64:ff9b:1::a00:1]/hook",
        "http://[2a00:1450:4001::5efe:a9fe:a9fe]/latest/meta-data",
    ] {
        let e = expect_error(
            app.post(
                key,
                WEBHOOKS,
                &json!({"data": {"attributes": {"url": url, "enabled-events": ["*"]}}}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(e["source"]["pointer"], "/data/attributes/url", "{url}: {e}");
        if url.contains("2001:0:") {
            assert!(
                e["details"].as_str().unwrap().contains("teredo addresses"),
                "{e}"
            );
        }
    }
    // A host name is checked where it leads, at every attempt: `localhost` is loopback.
    let receiver = Receiver::start().await;
    let port = receiver.url.rsplit(':').next().unwrap();
    let (webhook, _) = create_webhook(
        &app,
        key,
        json!({"url": format!("http://localhost:{port}"), "enabled-events": ["*"]}),
    )
    .await;
    app.create_template(key).await;
    app.drain().await;
    assert!(receiver.received().is_empty(), "nothing reached loopback");
    let list = deliveries(&app, key, &webhook).await;
    assert!(!list.is_empty());
    let error = list[0]["attributes"]["last-error"].as_str().unwrap();
    assert!(
        error.contains("addresses webhooks may not reach"),
        "{error}"
    );
}

async fn deliveries_are_signed_retried_and_redelivered(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;
    let receiver = Receiver::start().await;
    let (webhook, secret) = create_webhook(
        &app,
        key,
        json!({"url": receiver.url, "enabled-events": ["inquiry.created", "inquiry.updated"]}),
    )
    .await;
    let template = app.create_template(key).await;
    let inquiry = app
        .create_inquiry(
            key,
            &template,
            json!({"name-first": "Ada", "name-last": "Lovelace"}),
        )
        .await;
    let inquiry = inquiry["data"]["id"].as_str().unwrap().to_owned();
    app.drain().await;

    // One delivery per subscribed event (the template's events are not subscribed).
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let delivery = &got[0];
    assert!(verify_with(&app, delivery, &secret));
    assert!(!verify_with(&app, delivery, "wbhsec_wrong"));
    assert_eq!(
        delivery.header("content-type"),
        "application/json; charset=utf-8"
    );
    assert_eq!(delivery.header("Persona-Webhook-Attempts-Made"), "1");
    assert_eq!(delivery.header("Persona-Webhook-Attempts-Left"), "7");
    let body = delivery.json();
    assert_eq!(body["data"]["type"], "event");
    assert!(body["data"]["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(body["data"]["attributes"]["name"], "inquiry.created");
    assert_eq!(
        body["data"]["attributes"]["payload"]["data"]["id"],
        inquiry.as_str()
    );
    assert_eq!(
        body["data"]["attributes"]["payload"]["data"]["attributes"]["fields"]["name-first"]["value"],
        "Ada"
    );
    // The same event as the Events API serves it.
    let event = expect_status(
        app.get(
            key,
            &format!("/api/v1/events/{}", body["data"]["id"].as_str().unwrap()),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(event["data"], body["data"]);
    let list = deliveries(&app, key, &webhook).await;
    assert_eq!(list[0]["attributes"]["status"], "delivered");
    assert_eq!(list[0]["attributes"]["last-status-code"], 200);

    // A receiver answering 500: eight attempts on the backoff schedule, then `failed`.
    receiver.answer(500);
    expect_status(
        app.patch(
            key,
            &format!("/api/v1/inquiries/{inquiry}"),
            &json!({"data": {"attributes": {"note": "changed"}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    app.drain().await;
    let failing = deliveries(&app, key, &webhook).await[0].clone();
    let failing_id = failing["id"].as_str().unwrap().to_owned();
    assert_eq!(failing["attributes"]["status"], "pending", "{failing}");
    assert_eq!(failing["attributes"]["attempts-made"], 1);
    assert_eq!(failing["attributes"]["last-status-code"], 500);
    assert!(failing["attributes"]["next-attempt-at"].is_string());
    for _ in 1..8 {
        // Nothing is due before the retry time.
        assert_eq!(app.drain().await, 0);
        app.state.advance_clock(time::Duration::hours(8));
        assert_eq!(app.drain().await, 1);
        // Each attempt is signed afresh, with its own timestamp.
        assert!(verify_with(
            &app,
            receiver.received().last().unwrap(),
            &secret
        ));
    }
    let failed = expect_status(
        app.get(
            key,
            &format!("{WEBHOOKS}/{webhook}/deliveries/{failing_id}"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(failed["data"]["attributes"]["status"], "failed", "{failed}");
    assert_eq!(failed["data"]["attributes"]["attempts-made"], 8);
    let attempts: Vec<Received> = receiver.received()[1..].to_vec();
    assert_eq!(attempts.len(), 8);
    for (n, attempt) in attempts.iter().enumerate() {
        assert_eq!(
            attempt.header("Persona-Webhook-Attempts-Made"),
            (n + 1).to_string()
        );
        assert_eq!(
            attempt.header("Persona-Webhook-Attempts-Left"),
            (7 - n).to_string()
        );
        assert_eq!(
            attempt.header("Persona-Webhook-First-Attempted-At"),
            attempts[0].header("Persona-Webhook-First-Attempted-At")
        );
        assert_eq!(
            attempt.json()["data"]["id"],
            attempts[0].json()["data"]["id"]
        );
    }
    assert_eq!(app.drain().await, 0, "no ninth attempt");

    // Redelivery: a new series; a pending delivery cannot be redelivered twice.
    receiver.answer(204);
    let redeliver = format!("{WEBHOOKS}/{webhook}/deliveries/{failing_id}/redeliver");
    let again = expect_status(app.post(key, &redeliver, &json!({})).await, StatusCode::OK).await;
    assert_eq!(again["data"]["attributes"]["status"], "pending");
    expect_error(
        app.post(key, &redeliver, &json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(app.drain().await, 1);
    let delivered = deliveries(&app, key, &webhook).await[0].clone();
    assert_eq!(delivered["attributes"]["status"], "delivered");
    assert_eq!(delivered["attributes"]["attempts-made"], 9);
    assert_eq!(delivered["attributes"]["last-status-code"], 204);
}

async fn rotation_signs_with_both_secrets_until_the_old_expires(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;
    let receiver = Receiver::start().await;
    let (webhook, old) = create_webhook(
        &app,
        key,
        json!({"url": receiver.url, "enabled-events": ["inquiry-template.created"]}),
    )
    .await;
    let rotated = expect_status(
        app.post(
            key,
            &format!("{WEBHOOKS}/{webhook}/rotate-secret"),
            &json!({"meta": {"expires-in-seconds": 3600}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let new = rotated["data"]["attributes"]["secrets"][0]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_template(key).await;
    app.drain().await;
    let during = receiver.received()[0].clone();
    assert_eq!(
        during.header("Persona-Signature").split(' ').count(),
        2,
        "two t=…,v1=… pairs during the overlap"
    );
    assert!(verify_with(&app, &during, &old));
    assert!(verify_with(&app, &during, &new));

    app.state.advance_clock(time::Duration::seconds(3601));
    app.create_template(key).await;
    app.drain().await;
    let after = receiver.received()[1].clone();
    assert_eq!(after.header("Persona-Signature").split(' ').count(), 1);
    assert!(verify_with(&app, &after, &new));
    assert!(!verify_with(&app, &after, &old));
}

async fn payloads_follow_inflection_and_blocklist(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;
    let receiver = Receiver::start().await;
    create_webhook(
        &app,
        key,
        json!({"url": receiver.url, "enabled-events": ["inquiry.created"],
               "api-key-inflection": "snake", "api-attributes-blocklist": ["name-last"]}),
    )
    .await;
    let template = app.create_template(key).await;
    app.create_inquiry(
        key,
        &template,
        json!({"name-first": "Ada", "name-last": "Lovelace"}),
    )
    .await;
    app.drain().await;
    let body = receiver.received()[0].json();
    let attributes = &body["data"]["attributes"];
    assert!(attributes["created_at"].is_string(), "{body}");
    let fields = &attributes["payload"]["data"]["attributes"]["fields"];
    assert_eq!(fields["name_first"]["value"], "Ada");
    assert!(fields.get("name_last").is_none(), "{body}");
    assert!(!body.to_string().contains("Lovelace"));
}

async fn bad_receivers_are_recorded_and_block_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;
    let hanging = Receiver::start().await;
    hanging.hang_for(Duration::from_secs(20));
    let good = Receiver::start().await;
    // Accepts the connection and closes it without answering.
    let closing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closing_url = format!("http://{}/hook", closing.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = closing.accept().await {
            drop(socket);
        }
    });
    // Answers 302 to another receiver, which must never be reached.
    let redirecting = Receiver::start().await;
    let elsewhere = Receiver::start().await;
    redirecting.redirect_to(&elsewhere.url);
    let events = json!(["inquiry-template.created"]);
    let (redirecting_id, _) = create_webhook(
        &app,
        key,
        json!({"url": redirecting.url, "enabled-events": events}),
    )
    .await;
    let (hanging_id, _) = create_webhook(
        &app,
        key,
        json!({"url": hanging.url, "enabled-events": events}),
    )
    .await;
    let (closing_id, _) = create_webhook(
        &app,
        key,
        json!({"url": closing_url, "enabled-events": events}),
    )
    .await;
    let (good_id, _) = create_webhook(
        &app,
        key,
        json!({"url": good.url, "enabled-events": events}),
    )
    .await;
    let (disabled_id, _) = create_webhook(
        &app,
        key,
        json!({"url": good.url, "enabled-events": events}),
    )
    .await;
    expect_status(
        app.post(
            key,
            &format!("{WEBHOOKS}/{disabled_id}/disable"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    app.create_template(key).await;
    app.drain().await;
    assert_eq!(
        good.received().len(),
        1,
        "the disabled webhook sent nothing"
    );
    let last_error = |id: String| {
        let app = &app;
        async move {
            let list = deliveries(app, key, &id).await;
            assert_eq!(list[0]["attributes"]["status"], "pending");
            list[0]["attributes"]["last-error"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let timeout = last_error(hanging_id).await;
    assert!(timeout.contains("no answer within 5 seconds"), "{timeout}");
    let closed = last_error(closing_id).await;
    assert!(!closed.is_empty());
    let redirected = last_error(redirecting_id).await;
    assert!(redirected.contains("302"), "{redirected}");
    assert_eq!(redirecting.received().len(), 1);
    assert!(
        elsewhere.received().is_empty(),
        "redirects are not followed"
    );
    assert_eq!(
        deliveries(&app, key, &good_id).await[0]["attributes"]["status"],
        "delivered"
    );
    assert!(deliveries(&app, key, &disabled_id).await.is_empty());
}

/// Disabling a webhook ends its pending deliveries at once (failed, with the reason); a
/// delivery whose job dies on its last lease ends failed too: none stays pending forever.
async fn no_delivery_stays_pending(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;
    let receiver = Receiver::start().await;
    receiver.answer(500);
    let (webhook, _) = create_webhook(
        &app,
        key,
        json!({"url": receiver.url, "enabled-events": ["inquiry-template.created"]}),
    )
    .await;
    app.create_template(key).await;
    app.drain().await;
    assert_eq!(
        deliveries(&app, key, &webhook).await[0]["attributes"]["status"],
        "pending"
    );
    expect_status(
        app.post(key, &format!("{WEBHOOKS}/{webhook}/disable"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let ended = deliveries(&app, key, &webhook).await[0].clone();
    assert_eq!(ended["attributes"]["status"], "failed");
    assert_eq!(
        ended["attributes"]["last-error"],
        "not sent: the webhook was disabled"
    );

    // A worker that dies holding the last attempt: the reaper gives the delivery up.
    expect_status(
        app.post(key, &format!("{WEBHOOKS}/{webhook}/enable"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    app.create_template(key).await;
    let store = app.state.store();
    for _ in 0..8 {
        let claimed = idshare_store::jobs::claim_batch(
            store,
            "doomed",
            Some("webhooks"),
            1,
            app.state.now(),
            time::Duration::ZERO,
        )
        .await
        .unwrap();
        assert_eq!(claimed.len(), 1);
        app.state.advance_clock(time::Duration::seconds(1));
        idshare_service::worker::reap(&app.state).await;
    }
    let list = deliveries(&app, key, &webhook).await;
    let given_up = &list[0]["attributes"];
    assert_eq!(given_up["status"], "failed", "{given_up}");
    assert!(
        given_up["last-error"]
            .as_str()
            .unwrap()
            .contains("given up"),
        "{given_up}"
    );
    assert!(
        receiver.received().len() <= 2,
        "the doomed worker sent nothing"
    );
}

/// Two nodes on one database. Each caches what an event of an organization sets in motion, and
/// reads it again when the organization's configuration generation moved: a webhook created,
/// or disabled, on one node is used, or no longer used, by the very next event on the other.
async fn a_webhook_changed_on_one_node_is_used_by_the_next_event_on_another(backend: Backend) {
    let first = spawn_app(backend).await;
    let (database_url, key_file) = (
        first.database_url.clone(),
        first.data_dir.join("master.key"),
    );
    let second = spawn_app_with(backend, move |config| {
        config.database_url = Some(idshare_server::config::Secret::new(database_url));
        config.master_key_file = Some(key_file);
    })
    .await;
    let t = first.tenant("Bank").await;
    let key = &t.sandbox;
    let template = first.create_template(key).await;
    let create_on_second = || second.create_inquiry(key, &template, json!({}));
    // The second node has read (and cached) the organization's reactions: none.
    create_on_second().await;

    let (webhook, _) = create_webhook(
        &first,
        key,
        json!({"url": "https://hooks.example.invalid/idshare", "enabled-events": ["inquiry.created"]}),
    )
    .await;
    create_on_second().await;
    assert_eq!(deliveries(&first, key, &webhook).await.len(), 1);
    create_on_second().await;
    assert_eq!(deliveries(&first, key, &webhook).await.len(), 2);

    expect_status(
        first
            .post(key, &format!("{WEBHOOKS}/{webhook}/disable"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    create_on_second().await;
    assert_eq!(
        deliveries(&first, key, &webhook).await.len(),
        2,
        "a disabled webhook gets no delivery"
    );
}

/// The events (`object id`, `event name`, answered with success) the receiver got, in order.
fn arrivals(receiver: &Receiver) -> Vec<(String, String)> {
    receiver
        .received()
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["data"]["relationships"]["object"]["data"]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                body["data"]["attributes"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

async fn note(app: &TestApp, key: &str, inquiry: &str, note: &str) {
    expect_status(
        app.patch(
            key,
            &format!("/api/v1/inquiries/{inquiry}"),
            &json!({"data": {"attributes": {"note": note}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
}

/// The receiver fails the first delivery of an object twice: the object's next event waits
/// for it (pending, no next attempt) and arrives after it; another object's event is not held
/// up meanwhile.
async fn deliveries_of_one_object_arrive_in_event_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;
    let receiver = Receiver::start().await;
    let (webhook, _) = create_webhook(
        &app,
        key,
        json!({"url": receiver.url, "enabled-events": ["inquiry.created", "inquiry.updated"]}),
    )
    .await;
    let template = app.create_template(key).await;
    let first = app
        .create_inquiry(key, &template, json!({"name-first": "Ada"}))
        .await;
    let first = first["data"]["id"].as_str().unwrap().to_owned();
    receiver.fail_object(&first, 2);
    app.drain().await;
    note(&app, key, &first, "second event").await;
    let other = app
        .create_inquiry(key, &template, json!({"name-first": "Grace"}))
        .await;
    let other = other["data"]["id"].as_str().unwrap().to_owned();
    app.drain().await;

    let created = |id: &str| (id.to_owned(), "inquiry.created".to_owned());
    let updated = |id: &str| (id.to_owned(), "inquiry.updated".to_owned());
    assert_eq!(
        arrivals(&receiver),
        [created(&first), created(&other)],
        "the other object's event is not held up; the failing object's next one waits"
    );
    let list = deliveries(&app, key, &webhook).await;
    let waiting = list
        .iter()
        .find(|d| d["attributes"]["event-name"] == "inquiry.updated")
        .unwrap();
    assert_eq!(waiting["attributes"]["status"], "pending", "{waiting}");
    assert!(
        waiting["attributes"]["next-attempt-at"].is_null(),
        "{waiting}"
    );
    assert_eq!(waiting["attributes"]["attempts-made"], 0);

    // The second attempt fails too (its retry is due within the wait), the third succeeds.
    app.state.advance_clock(time::Duration::minutes(1));
    app.drain().await;
    assert_eq!(arrivals(&receiver).len(), 3, "{:?}", arrivals(&receiver));
    app.state.advance_clock(time::Duration::minutes(3));
    app.drain().await;
    assert_eq!(
        arrivals(&receiver),
        [
            created(&first),
            created(&other),
            created(&first),
            created(&first),
            updated(&first)
        ]
    );
    let list = deliveries(&app, key, &webhook).await;
    assert!(
        list.iter()
            .all(|d| d["attributes"]["status"] == "delivered"),
        "{list:?}"
    );
}

/// A delivery that keeps failing holds the next one of its object for at most ten minutes:
/// when its next retry would come later than that, it ends failed (saying why) and the next
/// one goes.
async fn a_failing_delivery_gives_way_after_the_order_wait(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;
    let receiver = Receiver::start().await;
    let (webhook, _) = create_webhook(
        &app,
        key,
        json!({"url": receiver.url, "enabled-events": ["inquiry.created", "inquiry.updated"]}),
    )
    .await;
    let template = app.create_template(key).await;
    let inquiry = app
        .create_inquiry(key, &template, json!({"name-first": "Ada"}))
        .await;
    let inquiry = inquiry["data"]["id"].as_str().unwrap().to_owned();
    receiver.fail_object(&inquiry, u32::MAX);
    app.drain().await;
    note(&app, key, &inquiry, "second event").await;
    app.drain().await;
    // Retries 30 s and 2 min 30 s after the first attempt, the next one 8 min later: beyond
    // ten minutes of waiting for the second event.
    app.state.advance_clock(time::Duration::minutes(1));
    app.drain().await;
    assert_eq!(receiver.received().len(), 2);
    app.state.advance_clock(time::Duration::minutes(3));
    app.drain().await;
    let names: Vec<String> = arrivals(&receiver).into_iter().map(|(_, n)| n).collect();
    assert_eq!(
        names,
        [
            "inquiry.created",
            "inquiry.created",
            "inquiry.created",
            "inquiry.updated"
        ]
    );
    let list = deliveries(&app, key, &webhook).await;
    let given_way = list
        .iter()
        .find(|d| d["attributes"]["event-name"] == "inquiry.created")
        .unwrap();
    assert_eq!(given_way["attributes"]["status"], "failed", "{given_way}");
    assert_eq!(given_way["attributes"]["attempts-made"], 3);
    let error = given_way["attributes"]["last-error"].as_str().unwrap();
    assert!(
        error.starts_with("the receiver answered 500") && error.contains("not retried"),
        "{error}"
    );
    let next = list
        .iter()
        .find(|d| d["attributes"]["event-name"] == "inquiry.updated")
        .unwrap();
    // It failed too (the receiver fails the object), and retries on its own schedule.
    assert_eq!(next["attributes"]["status"], "pending", "{next}");
    assert_eq!(next["attributes"]["attempts-made"], 1);
}

/// A new event of an object whose delivery waits for a retry due more than ten minutes away
/// does not wait for it: that delivery ends failed at once and the new one is sent.
async fn a_new_event_does_not_wait_for_a_distant_retry(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;
    let receiver = Receiver::start().await;
    let (webhook, _) = create_webhook(
        &app,
        key,
        json!({"url": receiver.url, "enabled-events": ["inquiry.created", "inquiry.updated"]}),
    )
    .await;
    let template = app.create_template(key).await;
    let inquiry = app
        .create_inquiry(key, &template, json!({"name-first": "Ada"}))
        .await;
    let inquiry = inquiry["data"]["id"].as_str().unwrap().to_owned();
    receiver.fail_object(&inquiry, 4);
    app.drain().await;
    // Attempts 2, 3 and 4; the fifth is due about 32 minutes after the fourth.
    for minutes in [1, 3, 10] {
        app.state.advance_clock(time::Duration::minutes(minutes));
        app.drain().await;
    }
    assert_eq!(receiver.received().len(), 4);
    note(&app, key, &inquiry, "second event").await;
    let list = deliveries(&app, key, &webhook).await;
    let given_way = list
        .iter()
        .find(|d| d["attributes"]["event-name"] == "inquiry.created")
        .unwrap();
    assert_eq!(given_way["attributes"]["status"], "failed", "{given_way}");
    assert_eq!(given_way["attributes"]["attempts-made"], 4);
    assert!(
        given_way["attributes"]["last-error"]
            .as_str()
            .unwrap()
            .contains("not retried"),
        "{given_way}"
    );
    app.drain().await;
    let names: Vec<String> = arrivals(&receiver).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names.last().map(String::as_str), Some("inquiry.updated"));
    assert_eq!(
        deliveries(&app, key, &webhook).await[0]["attributes"]["status"],
        "delivered"
    );

    // A redelivery of the earlier event goes first: a new event of the object waits for it.
    let redeliver = format!(
        "{WEBHOOKS}/{webhook}/deliveries/{}/redeliver",
        given_way["id"].as_str().unwrap()
    );
    expect_status(app.post(key, &redeliver, &json!({})).await, StatusCode::OK).await;
    note(&app, key, &inquiry, "third event").await;
    app.drain().await;
    let names: Vec<String> = arrivals(&receiver).into_iter().map(|(_, n)| n).collect();
    assert_eq!(
        names[names.len() - 2..],
        ["inquiry.created", "inquiry.updated"]
    );
}

backend_tests!(
    a_webhook_changed_on_one_node_is_used_by_the_next_event_on_another,
    deliveries_of_one_object_arrive_in_event_order,
    a_failing_delivery_gives_way_after_the_order_wait,
    a_new_event_does_not_wait_for_a_distant_retry,
    webhook_management_and_validation,
    private_targets_are_refused,
    deliveries_are_signed_retried_and_redelivered,
    rotation_signs_with_both_secrets_until_the_old_expires,
    payloads_follow_inflection_and_blocklist,
    bad_receivers_are_recorded_and_block_nothing,
    no_delivery_stays_pending,
);
