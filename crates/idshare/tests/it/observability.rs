//! What an operator watches: `/metrics` (off unless configured, behind its token, in the
//! Prometheus text format, moving after a redemption, no tenant data in it), the metrics
//! listener of its own, and the request log line (every request, nothing personal).

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use idshare_server::config::Secret;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{
        Backend, TestApp, create_postgres_database, expect_status, spawn_app, spawn_app_with,
    },
    webhooks::{Receiver, create_webhook},
};

const METRICS_TOKEN: &str = "metrics-test-token-7f3a";
const EMAIL: &str = "ada.lovelace@example.com";
const LAST_NAME: &str = "Lovelace";

/// Samples of one exposition, by series (`name{label="value",…}`, labels sorted).
type Samples = BTreeMap<String, f64>;

/// Parses the Prometheus text exposition format strictly: every line is a `# HELP`, a
/// `# TYPE` with a known type, or a sample `name{labels} value` whose name and labels are
/// well-formed and whose value is a number; a family's `TYPE` comes before its samples and only
/// once. Panics on anything else.
fn parse_exposition(text: &str) -> Samples {
    fn is_name(name: &str, colons: bool) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':'))
    }
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Samples::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (keyword, name) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            assert!(is_name(name, true), "metric name in {line:?}");
            match keyword {
                "HELP" => {}
                "TYPE" => {
                    let kind = parts.next().unwrap_or("");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "type in {line:?}"
                    );
                    assert!(
                        typed.insert(name.to_owned(), kind.to_owned()).is_none(),
                        "TYPE of {name} given twice"
                    );
                }
                _ => panic!("unknown comment line {line:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, vec![]),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line:?}"));
                (name, parse_labels(body, line))
            }
        };
        assert!(is_name(name, true), "metric name in {line:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| typed.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            typed.contains_key(family),
            "sample before its TYPE: {line:?}"
        );
        let mut labels = labels;
        labels.sort();
        let key = if labels.is_empty() {
            name.to_owned()
        } else {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            format!("{name}{{{}}}", labels.join(","))
        };
        assert!(
            samples.insert(key, value).is_none(),
            "series twice: {line:?}"
        );
    }
    samples
}

/// `k="v",k2="v2"` with `\\`, `\"` and `\n` escapes.
fn parse_labels(body: &str, line: &str) -> Vec<(String, String)> {
    let mut labels = vec![];
    let mut rest = body;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("{line:?}"));
        assert!(
            name.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "label name {name:?} in {line:?}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => panic!("bad escape {other:?} in {line:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {line:?}"),
            }
        };
        labels.push((name.to_owned(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    labels
}

/// The sum of the samples named `name` whose labels include every pair of `labels`.
fn total(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            let bare = series.split('{').next().unwrap();
            bare == name
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| v)
        .sum()
}

async fn scrape(app: &TestApp) -> (String, Samples) {
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let samples = parse_exposition(&text);
    (text, samples)
}

fn id_of(doc: &Value) -> String {
    doc["data"]["id"].as_str().unwrap().to_owned()
}

async fn email_template(app: &TestApp, key: &str) -> String {
    id_of(
        &expect_status(
            app.post(
                key,
                "/api/v1/inquiry-templates",
                &json!({"data": {"attributes": {"name": "T", "field-schemas": [
                    {"key": "email-address", "type": "string"},
                    {"key": "name-last", "type": "string"}],
                    "verifications": [{"type": "email-address", "required": true,
                        "reuse": {"max-age-days": 30}}]}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    )
}

async fn metrics_are_protected_and_move_after_a_redemption(backend: Backend) {
    // Off unless configured: no `/metrics` at all.
    let plain = spawn_app(backend).await;
    let off = plain
        .client
        .get(plain.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), StatusCode::NOT_FOUND);
    drop(plain);

    let app = spawn_app_with(backend, |config| {
        config.metrics_token = Some(Secret::new(METRICS_TOKEN));
    })
    .await;
    let s = app.tenant("Source").await;
    let d = app.tenant("Destination").await;
    // No token, a wrong one, and an API key (of either environment): 401, nothing shown.
    for token in [
        None,
        Some("wrong"),
        Some(d.sandbox.as_str()),
        Some(d.production.as_str()),
    ] {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(refused.headers()["www-authenticate"], "Bearer");
        assert!(!refused.text().await.unwrap().contains("idshare_"));
    }

    // A completed source inquiry, an active connection, a token; the destination has a
    // webhook on loopback for the redemption's event.
    let t = email_template(&app, &s.sandbox).await;
    let source = id_of(
        &app.create_inquiry(
            &s.sandbox,
            &t,
            json!({"email-address": EMAIL, "name-last": LAST_NAME}),
        )
        .await,
    );
    expect_status(
        app.post(
            &s.sandbox,
            &format!("/api/v1/inquiries/{source}/submit"),
            &json!({}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.drain().await;
    let connection = id_of(
        &expect_status(
            app.post(
                &s.sandbox,
                "/api/v1/connect/connections",
                &json!({"data": {"attributes": {"destination-organization-id": d.org_id.as_str()}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    );
    expect_status(
        app.post(
            &d.sandbox,
            &format!("/api/v1/connect/connections/{connection}/activate"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let token = id_of(
        &expect_status(
            app.post(
                &s.sandbox,
                "/api/v1/connect/share-tokens",
                &json!({"data": {"attributes": {"connection-id": connection, "source-id": source}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    );
    let receiver = Receiver::start().await;
    create_webhook(
        &app,
        &d.sandbox,
        json!({"url": receiver.url, "enabled-events": ["connect/share-token.inbound-redeemed"]}),
    )
    .await;
    let dt = email_template(&app, &d.sandbox).await;
    let destination = id_of(&app.create_inquiry(&d.sandbox, &dt, json!({})).await);

    let (_, before) = scrape(&app).await;
    let redeem_route = [("route", "/api/v1/connect/share-tokens/{id}/redeem")];
    expect_status(
        app.post(
            &d.sandbox,
            &format!("/api/v1/connect/share-tokens/{token}/redeem"),
            &json!({"data": {"attributes": {"destination-id": destination}}}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;

    // Read at scrape time: the redemption waits in the queue.
    let (_, queued) = scrape(&app).await;
    let waiting = [
        ("queue", "default"),
        ("kind", "share-token-redemption"),
        ("status", "queued"),
    ];
    assert_eq!(total(&queued, "idshare_jobs", &waiting), 1.0, "{queued:#?}");
    assert!(
        total(
            &queued,
            "idshare_job_oldest_due_age_seconds",
            &[("queue", "default")]
        ) >= 0.0
    );
    assert!(queued.contains_key("idshare_job_oldest_due_age_seconds{queue=\"default\"}"));
    assert_eq!(queued["idshare_job_queue_stats_up"], 1.0);
    assert!(queued["idshare_db_pool_max_connections"] >= 1.0);
    assert!(queued.contains_key("idshare_db_pool_connections{state=\"in_use\"}"));

    app.drain().await;
    assert_eq!(receiver.received().len(), 1);
    let (text, after) = scrape(&app).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        total(&after, name, labels) - total(&before, name, labels)
    };
    assert!(
        moved("idshare_http_request_duration_seconds_count", &redeem_route) >= 1.0,
        "{text}"
    );
    assert!(
        moved(
            "idshare_http_request_duration_seconds_bucket",
            &[
                ("route", "/api/v1/connect/share-tokens/{id}/redeem"),
                ("le", "+Inf"),
                ("status", "202"),
                ("method", "POST")
            ]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        moved(
            "idshare_redemption_duration_seconds_count",
            &[("outcome", "redeemed")]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        moved(
            "idshare_job_run_duration_seconds_count",
            &[("kind", "share-token-redemption"), ("outcome", "done")]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        moved(
            "idshare_webhook_delivery_duration_seconds_count",
            &[("outcome", "delivered")]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        moved(
            "idshare_pipeline_decisions_total",
            &[("status", "completed")]
        ) >= 1.0,
        "{text}"
    );
    assert_eq!(total(&after, "idshare_jobs", &waiting), 0.0, "{text}");

    // Nothing of a tenant: no organization, no id, no personal data, no raw path.
    for secret in [
        s.org_id.as_str(),
        d.org_id.as_str(),
        &token,
        &source,
        &destination,
        &connection,
        EMAIL,
        LAST_NAME,
    ] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
}

/// Reads the server's stderr (JSON log lines) into a shared list as they come.
fn collect_lines(stderr: std::process::ChildStderr) -> Arc<Mutex<Vec<Value>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let collected = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let log: Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("JSON log line: {line}"));
            collected.lock().unwrap().push(log);
        }
    });
    lines
}

/// Waits for the log line with `message`; returns its field `field`.
fn logged(lines: &Mutex<Vec<Value>>, message: &str, field: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(log) = lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l["fields"]["message"] == message)
        {
            return log["fields"][field].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no {message:?} log line");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `request` log lines of the request with `id`.
fn request_lines(lines: &Mutex<Vec<Value>>, id: &str) -> Vec<Value> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l["fields"]["message"] == "request" && l["fields"]["request_id"] == id)
        .cloned()
        .collect()
}

async fn serve_logs_each_request_and_serves_metrics_on_their_own_listener(backend: Backend) {
    idshare_service::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, format!("{METRICS_TOKEN}\n")).unwrap();
    let mut storage = vec![
        "--data-dir".to_owned(),
        dir.path().join("data").display().to_string(),
    ];
    if backend == Backend::Postgres {
        storage.extend([
            "--database-url".to_owned(),
            create_postgres_database().await.0,
        ]);
    }
    let mut process = Command::new(env!("CARGO_BIN_EXE_idshare"))
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0", "--metrics-token-file"])
        .arg(&token_file)
        .args(&storage)
        .env_remove("IDSHARE_DATABASE_URL")
        .env_remove("IDSHARE_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = collect_lines(process.stderr.take().unwrap());
    let main = logged(&lines, "idshare is serving", "address");
    let metrics = logged(
        &lines,
        "metrics are served on their own listener",
        "address",
    );
    let client = reqwest::Client::new();

    // Both listeners ask for the token; the metrics listener serves nothing else.
    for address in [&main, &metrics] {
        let url = format!("http://{address}/metrics");
        let refused = client.get(&url).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{url}");
        let served = client
            .get(&url)
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(served.status(), StatusCode::OK, "{url}");
        parse_exposition(&served.text().await.unwrap());
    }
    let other = client
        .get(format!("http://{metrics}/api/v1/inquiries"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    // Personal data in the query and the body, a one-time link token in the path: the log
    // line names the route, never them.
    let link_token = "flowlinktoken-do-not-log-9c1e";
    let requests = [
        client.get(format!(
            "http://{main}/api/v1/inquiries?filter[email-address]={EMAIL}"
        )),
        client
            .post(format!("http://{main}/api/v1/inquiries"))
            .bearer_auth("idsk_sandbox_not-a-key")
            .json(&json!({"data": {"attributes": {"fields": {"name-last": LAST_NAME}}}})),
        client.get(format!("http://{main}/flow/link/{link_token}")),
        client.get(format!("http://{main}/no/such/{LAST_NAME}")),
    ];
    let mut seen = vec![];
    for request in requests {
        let response = request.send().await.unwrap();
        let id = response.headers()["request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        seen.push((id, response.status().as_u16()));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen
        .iter()
        .any(|(id, _)| request_lines(&lines, id).is_empty())
    {
        assert!(Instant::now() < deadline, "a request was not logged");
        std::thread::sleep(Duration::from_millis(50));
    }
    let routes: Vec<String> = seen
        .iter()
        .map(|(id, status)| {
            let logged = request_lines(&lines, id);
            assert_eq!(logged.len(), 1, "one line per request: {logged:?}");
            let fields = &logged[0]["fields"];
            assert_eq!(logged[0]["level"], "INFO");
            assert_eq!(fields["status"], *status, "{fields}");
            assert!(fields["latency_ms"].as_f64().unwrap() >= 0.0, "{fields}");
            assert!(fields["method"].is_string(), "{fields}");
            fields["route"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        routes,
        [
            "/api/v1/inquiries",
            "/api/v1/inquiries",
            "/flow/link/{token}",
            "unmatched"
        ]
    );
    let _ = process.kill();
    let _ = process.wait();
    let logged: String = lines
        .lock()
        .unwrap()
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    for secret in [
        EMAIL,
        "ada.lovelace",
        LAST_NAME,
        link_token,
        METRICS_TOKEN,
        "not-a-key",
    ] {
        assert!(!logged.contains(secret), "{secret} was logged:\n{logged}");
    }
}

/// Runs an `idshare` command to completion; returns its standard output, trimmed.
fn idshare_output(args: &[&str], storage: &[String]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_idshare"))
        .args(args)
        .args(storage)
        .env_remove("IDSHARE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// An OTLP/HTTP receiver on loopback: keeps the spans of every `POST /v1/traces`.
async fn otlp_receiver() -> (
    String,
    Arc<Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>,
) {
    use axum::{Router, body::Bytes, extract::State, routing::post};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    type Spans = Arc<Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>;
    async fn receive(State(spans): State<Spans>, body: Bytes) -> Vec<u8> {
        let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
        let mut kept = spans.lock().unwrap();
        for resource in request.resource_spans {
            for scope in resource.scope_spans {
                kept.extend(scope.spans);
            }
        }
        vec![]
    }
    let spans = Spans::default();
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), spans)
}

fn attribute<'a>(
    span: &'a opentelemetry_proto::tonic::trace::v1::Span,
    key: &str,
) -> Option<&'a str> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            Any::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

/// A JSON:API call of the test against a running binary; asserts the status.
async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
    status: StatusCode,
) -> Value {
    let mut request = client.request(method, &url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let got = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "{url}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Polls `url` until `pointer` reads `expected`.
async fn wait_for(client: &reqwest::Client, url: String, key: &str, pointer: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let doc = call(
            client,
            reqwest::Method::GET,
            url.clone(),
            key,
            None,
            StatusCode::OK,
        )
        .await;
        if doc.pointer(pointer).and_then(Value::as_str) == Some(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url}: {pointer} never became {expected}: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn one_trace_follows_a_redemption_through_its_job(backend: Backend) {
    use reqwest::Method;
    idshare_service::install_tls_provider();
    let (collector, spans) = otlp_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let mut storage = vec!["--data-dir".to_owned(), dir.path().display().to_string()];
    if backend == Backend::Postgres {
        storage.extend([
            "--database-url".to_owned(),
            create_postgres_database().await.0,
        ]);
    }
    idshare_output(&["migrate"], &storage);
    let mut keys = vec![];
    for name in ["Source", "Destination"] {
        let org = idshare_output(&["admin", "org", "create", "--name", name], &storage);
        let key = idshare_output(
            &[
                "admin",
                "api-key",
                "create",
                "--org",
                &org,
                "--environment",
                "sandbox",
            ],
            &storage,
        );
        keys.push((org, key));
    }
    let [(_, s), (d_org, d)] = <[(String, String); 2]>::try_from(keys).unwrap();
    let mut process = Command::new(env!("CARGO_BIN_EXE_idshare"))
        .args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--otlp-endpoint",
        ])
        .arg(&collector)
        .args(&storage)
        .env_remove("IDSHARE_DATABASE_URL")
        .env_remove("IDSHARE_LOG")
        // Batches leave every 100 ms instead of every 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = collect_lines(process.stderr.take().unwrap());
    let base = format!("http://{}", logged(&lines, "idshare is serving", "address"));
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{base}{path}");
    let template = json!({"data": {"attributes": {"name": "T", "field-schemas": [
        {"key": "email-address", "type": "string"}],
        "verifications": [{"type": "email-address", "required": true,
            "reuse": {"max-age-days": 30}}]}}});
    let created = |doc: Value| doc["data"]["id"].as_str().unwrap().to_owned();
    let t = created(
        call(
            &client,
            Method::POST,
            url("/api/v1/inquiry-templates"),
            &s,
            Some(template.clone()),
            StatusCode::CREATED,
        )
        .await,
    );
    let source = created(
        call(
            &client,
            Method::POST,
            url("/api/v1/inquiries"),
            &s,
            Some(json!({"data": {"attributes": {"inquiry-template-id": t, "fields": {"email-address": EMAIL}}}})),
            StatusCode::CREATED,
        )
        .await,
    );
    call(
        &client,
        Method::POST,
        url(&format!("/api/v1/inquiries/{source}/submit")),
        &s,
        Some(json!({})),
        StatusCode::ACCEPTED,
    )
    .await;
    wait_for(
        &client,
        url(&format!("/api/v1/inquiries/{source}")),
        &s,
        "/data/attributes/status",
        "completed",
    )
    .await;
    let connection = created(
        call(
            &client,
            Method::POST,
            url("/api/v1/connect/connections"),
            &s,
            Some(json!({"data": {"attributes": {"destination-organization-id": d_org}}})),
            StatusCode::CREATED,
        )
        .await,
    );
    call(
        &client,
        Method::POST,
        url(&format!(
            "/api/v1/connect/connections/{connection}/activate"
        )),
        &d,
        Some(json!({})),
        StatusCode::OK,
    )
    .await;
    let token = created(
        call(
            &client,
            Method::POST,
            url("/api/v1/connect/share-tokens"),
            &s,
            Some(
                json!({"data": {"attributes": {"connection-id": connection, "source-id": source}}}),
            ),
            StatusCode::CREATED,
        )
        .await,
    );
    let dt = created(
        call(
            &client,
            Method::POST,
            url("/api/v1/inquiry-templates"),
            &d,
            Some(template),
            StatusCode::CREATED,
        )
        .await,
    );
    let destination = created(
        call(
            &client,
            Method::POST,
            url("/api/v1/inquiries"),
            &d,
            Some(json!({"data": {"attributes": {"inquiry-template-id": dt}}})),
            StatusCode::CREATED,
        )
        .await,
    );
    call(
        &client,
        Method::POST,
        url(&format!("/api/v1/connect/share-tokens/{token}/redeem")),
        &d,
        Some(json!({"data": {"attributes": {"destination-id": destination}}})),
        StatusCode::ACCEPTED,
    )
    .await;
    wait_for(
        &client,
        url(&format!("/api/v1/connect/share-tokens/{token}")),
        &d,
        "/data/attributes/status",
        "redeemed",
    )
    .await;

    // The redeem call's span and the redemption job's span arrive, in one trace.
    let redeem_route = "/api/v1/connect/share-tokens/{id}/redeem";
    let deadline = Instant::now() + Duration::from_secs(30);
    let (request, job) = loop {
        {
            let spans = spans.lock().unwrap();
            let request = spans
                .iter()
                .find(|s| s.name == "request" && attribute(s, "route") == Some(redeem_route));
            let job = spans.iter().find(|s| {
                s.name == "job" && attribute(s, "kind") == Some("share-token-redemption")
            });
            if let (Some(request), Some(job)) = (request, job) {
                break (request.clone(), job.clone());
            }
        }
        assert!(
            Instant::now() < deadline,
            "the spans were not exported: {:?}",
            spans
                .lock()
                .unwrap()
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job.trace_id, request.trace_id, "one trace");
    assert_eq!(request.trace_id.len(), 16);
    let trace: Vec<_> = spans
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.trace_id == request.trace_id)
        .cloned()
        .collect();
    assert!(
        trace.iter().any(|s| s.span_id == job.parent_span_id),
        "the job's parent is a span of the redeem call"
    );
    // The source's submission is another trace, with its pipeline job.
    let other = spans
        .lock()
        .unwrap()
        .iter()
        .find(|s| s.name == "job" && attribute(s, "kind") == Some("inquiry-pipeline"))
        .cloned()
        .expect("the pipeline job's span");
    assert_ne!(other.trace_id, request.trace_id);
    let _ = process.kill();
    let _ = process.wait();
}

backend_tests!(
    metrics_are_protected_and_move_after_a_redemption,
    serve_logs_each_request_and_serves_metrics_on_their_own_listener,
    one_trace_follows_a_redemption_through_its_job,
);
