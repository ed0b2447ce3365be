//! `idshare bench webhooks`: how fast webhook deliveries follow the events that cause them.
//!
//! The server runs in this process (SQLite in a temporary directory, or the `--database-url`
//! database) with private webhook targets allowed, no effective rate limit, and the default
//! workers (2 job workers, 4 webhook workers unless `--webhook-workers` says otherwise). A
//! receiver on loopback answers every POST with `200` at once, stamps its arrival, and checks its
//! `Persona-Signature` with [`idshare_domain::webhook_signature::verify`] after answering.
//!
//! Setup (not measured): an organization with a sandbox key created in the store, a template
//! and W webhooks subscribed to `inquiry.created` and `inquiry.updated`, each with its own path
//! on the receiver. Then N inquiries are created through the public API, `concurrency` at a
//! time, and each is updated U times right after its creation (one call after the other): each
//! call writes one event, and with it (same transaction) one delivery per webhook. The run ends
//! when every expected delivery has arrived, or when none arrived for [`STALL`]. Deliveries of
//! one inquiry to one webhook must arrive in event order: the run counts those that did not.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use futures::{StreamExt, stream};
use idshare_domain::webhook_signature::{DEFAULT_TOLERANCE_SECONDS, verify};
use idshare_server::{
    app,
    config::{Config, Secret},
    state::AppState,
};
use idshare_store::Store;
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use tokio::net::TcpListener;

use crate::{
    bench_common::{
        Api, CEILING_WRITES, id_of, millis, org_with_key, peak_rss_kib, quantile, storage_ceiling,
        template_body,
    },
    loopback_receiver,
};

const WEBHOOKS: &str = "/api/v1/webhooks";
/// The event of an inquiry created, and the webhooks subscribe to it.
const CREATED: &str = "inquiry.created";
/// The event of an inquiry updated (its note), and the webhooks subscribe to it.
const UPDATED: &str = "inquiry.updated";
/// Stop waiting when no delivery arrived for this long (a failed attempt is retried after
/// about 30 s, so one retry still shows).
const STALL: Duration = Duration::from_secs(60);

/// One request that reached the receiver.
struct Arrival {
    /// The webhook's index (from the path `/hook/<index>`), if the path named one.
    hook: Option<usize>,
    /// The event's id (`data.id`).
    event_id: Option<String>,
    /// The event's name.
    event_name: Option<String>,
    /// The id of the object the event is about (the inquiry).
    object_id: Option<String>,
    /// The event's `created-at`.
    created_at: Option<OffsetDateTime>,
    /// The event's `sequence`.
    sequence: Option<i64>,
    /// When the whole request had been read.
    at: OffsetDateTime,
    /// Whether `Persona-Signature` verified with the webhook's secret.
    valid: bool,
}

#[derive(Default)]
struct ReceiverState {
    /// The secret of each webhook, by index.
    secrets: Mutex<Vec<String>>,
    arrivals: Mutex<Vec<Arrival>>,
    /// Requests answered (kept apart from `arrivals` to wait without taking the lock).
    count: AtomicUsize,
}

impl ReceiverState {
    /// Parses and verifies a request that was already answered, and keeps it.
    fn record(&self, path: &str, signature: &str, body: &[u8], at: OffsetDateTime) {
        let hook: Option<usize> = path
            .strip_prefix("/hook/")
            .and_then(|index| index.parse().ok());
        let secret = hook.and_then(|i| self.secrets.lock().expect("lock").get(i).cloned());
        let valid = secret.is_some_and(|secret| {
            verify(
                signature,
                &secret,
                body,
                at.unix_timestamp(),
                DEFAULT_TOLERANCE_SECONDS,
            )
            .is_ok()
        });
        let doc: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = |pointer: &str| doc.pointer(pointer).and_then(Value::as_str);
        let arrival = Arrival {
            hook,
            event_id: text("/data/id").map(str::to_owned),
            event_name: text("/data/attributes/name").map(str::to_owned),
            object_id: text("/data/relationships/object/data/id").map(str::to_owned),
            created_at: text("/data/attributes/created-at")
                .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok()),
            sequence: doc
                .pointer("/data/attributes/sequence")
                .and_then(Value::as_i64),
            at,
            valid,
        };
        self.arrivals.lock().expect("lock").push(arrival);
        self.count.fetch_add(1, Ordering::SeqCst);
    }
}

/// The loopback receiver, recording into a fresh [`ReceiverState`].
async fn start_receiver() -> Result<(String, Arc<ReceiverState>)> {
    let state = Arc::new(ReceiverState::default());
    let recording = state.clone();
    let base = loopback_receiver::start(move |r| {
        recording.record(&r.path, &r.signature, &r.body, r.at);
    })
    .await?;
    Ok((base, state))
}

/// `later - earlier`, zero when negative.
fn between(earlier: OffsetDateTime, later: OffsetDateTime) -> Duration {
    Duration::try_from(later - earlier).unwrap_or(Duration::ZERO)
}

/// How many of a webhook's deliveries have `status` (through the Deliveries API).
async fn count_deliveries(api: &Api, key: &str, webhook: &str, status: &str) -> Result<usize> {
    let mut count = 0;
    let mut after: Option<String> = None;
    loop {
        let mut path =
            format!("{WEBHOOKS}/{webhook}/deliveries?filter[status]={status}&page[size]=100");
        if let Some(a) = &after {
            path.push_str(&format!("&page[after]={a}"));
        }
        let doc = api.expect(key, &path, None, StatusCode::OK).await?;
        let items = doc["data"].as_array().cloned().unwrap_or_default();
        count += items.len();
        match (items.len(), items.last().and_then(|i| i["id"].as_str())) {
            (100, Some(last)) => after = Some(last.to_owned()),
            _ => return Ok(count),
        }
    }
}

/// Deliveries that arrived after a delivery of a later event (higher sequence) of the same
/// object to the same webhook, and how many (webhook, object) pairs got any delivery.
fn out_of_order(firsts: &HashMap<(usize, &str), &Arrival>) -> (usize, usize) {
    let mut by_object: HashMap<(usize, &str), Vec<&Arrival>> = HashMap::new();
    for (&(hook, _), arrival) in firsts {
        if let Some(object) = arrival.object_id.as_deref() {
            by_object.entry((hook, object)).or_default().push(arrival);
        }
    }
    let mut late = 0;
    for arrivals in by_object.values_mut() {
        arrivals.sort_by_key(|a| a.at);
        let mut newest = i64::MIN;
        for arrival in arrivals.iter() {
            let sequence = arrival.sequence.unwrap_or(i64::MIN);
            if sequence < newest {
                late += 1;
            }
            newest = newest.max(sequence);
        }
    }
    (late, by_object.len())
}

/// Changes an inquiry's note (one `inquiry.updated` event).
async fn update(api: &Api, key: &str, inquiry: &str, n: usize) -> Result<()> {
    let response = api
        .client
        .patch(format!("{}/api/v1/inquiries/{inquiry}", api.base))
        .bearer_auth(key)
        .json(&json!({"data": {"attributes": {"note": format!("update {n}")}}}))
        .send()
        .await?;
    ensure!(
        response.status() == StatusCode::OK,
        "updating {inquiry} answered {}",
        response.status()
    );
    Ok(())
}

/// Runs the benchmark and prints the figures.
pub async fn run(
    events: usize,
    updates: usize,
    webhooks: usize,
    concurrency: usize,
    webhook_workers: Option<u32>,
    database_url: Option<String>,
) -> Result<()> {
    ensure!(events > 0, "--events must be at least 1");
    ensure!(webhooks > 0, "--webhooks must be at least 1");
    ensure!(concurrency > 0, "--concurrency must be at least 1");
    idshare_service::install_tls_provider();
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().to_path_buf();
    let database_url = database_url.unwrap_or_else(|| Store::sqlite_url(&data_dir));
    let (receiver_base, receiver) = start_receiver().await?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let defaults = Config::default();
    let config = Config {
        data_dir: data_dir.clone(),
        database_url: Some(Secret::new(database_url)),
        listen: listener.local_addr()?,
        public_url: Some(address.clone()),
        rate_limit_per_minute: 100_000_000,
        allow_private_webhook_targets: true,
        webhook_workers: webhook_workers.unwrap_or(defaults.webhook_workers),
        ..defaults
    };
    let (workers, webhook_workers) = (config.workers, config.webhook_workers);
    let store = app::open_store(&config).await?;
    let backend = store.backend();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(store.clone(), config);
    let server = tokio::spawn(app::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let api = Arc::new(Api {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency.max(8))
            .build()?,
        base: address,
    });

    // ---- Setup (not measured).
    let (_, key) = org_with_key(&store, "Bench webhooks").await?;
    let template = api
        .create(
            &key,
            "/api/v1/inquiry-templates",
            &template_body(&["email-address", "name-first", "name-last"]),
        )
        .await?;
    let mut webhook_ids = Vec::with_capacity(webhooks);
    for i in 0..webhooks {
        let doc = api
            .expect(
                &key,
                WEBHOOKS,
                Some(&json!({"data": {"attributes": {
                    "name": format!("bench {i}"),
                    "url": format!("{receiver_base}/hook/{i}"),
                    "enabled-events": [CREATED, UPDATED]}}})),
                StatusCode::CREATED,
            )
            .await?;
        let secret = doc["data"]["attributes"]["secrets"][0]["value"]
            .as_str()
            .with_context(|| format!("no secret in {doc}"))?
            .to_owned();
        receiver.secrets.lock().expect("lock").push(secret);
        webhook_ids.push(id_of(&doc)?);
    }
    let written = events * (1 + updates);
    let expected = webhooks * written;
    println!(
        "webhooks benchmark: {backend:?}, server in-process ({workers} job workers, \
         {webhook_workers} webhook workers), {written} events ({events} inquiries created, \
         {concurrency} at a time, each updated {updates} times after: {CREATED} and {UPDATED}), \
         {webhooks} webhook(s) on a loopback receiver: {expected} deliveries expected"
    );

    // ---- Events, through the public API.
    let first_call = Instant::now();
    let calls: Vec<(String, OffsetDateTime)> = stream::iter(0..events)
        .map(|i| {
            let (api, key, template) = (api.clone(), key.clone(), template.clone());
            async move {
                let body = json!({"data": {"attributes": {"inquiry-template-id": template,
                    "fields": {"email-address": format!("person{i}@example.com"),
                        "name-first": "Ada", "name-last": format!("Lovelace{i}")}}}});
                let sent = OffsetDateTime::now_utc();
                let id = api.create(&key, "/api/v1/inquiries", &body).await?;
                for n in 0..updates {
                    update(&api, &key, &id, n).await?;
                }
                anyhow::Ok((id, sent))
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let calls_took = first_call.elapsed();
    let last_answer = OffsetDateTime::now_utc();
    let sent_at: HashMap<String, OffsetDateTime> = calls.into_iter().collect();

    // ---- Wait for the deliveries.
    let mut seen = receiver.count.load(Ordering::SeqCst);
    let mut progress = Instant::now();
    loop {
        let now = receiver.count.load(Ordering::SeqCst);
        if now != seen {
            seen = now;
            progress = Instant::now();
        }
        // Duplicates are counted too, so check for distinct deliveries only when enough came.
        if now >= expected {
            let arrivals = receiver.arrivals.lock().expect("lock");
            let distinct = arrivals
                .iter()
                .map(|a| (a.hook, a.event_id.as_deref()))
                .collect::<HashSet<_>>()
                .len();
            if distinct >= expected {
                break;
            }
        }
        if progress.elapsed() > STALL {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let arrivals = std::mem::take(&mut *receiver.arrivals.lock().expect("lock"));

    // ---- What the server says about them. An attempt is recorded after the receiver answered,
    // so the last few may still show `pending` for a moment.
    let settle = Instant::now() + Duration::from_secs(5);
    let (pending, failed) = loop {
        let mut pending = 0;
        let mut failed = 0;
        for webhook in &webhook_ids {
            pending += count_deliveries(&api, &key, webhook, "pending").await?;
            failed += count_deliveries(&api, &key, webhook, "failed").await?;
        }
        if pending == 0 || Instant::now() > settle {
            break (pending, failed);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // ---- Storage ceiling on the same database, through the same store.
    let (ceiling, ceiling_time) = storage_ceiling(&store).await?;

    // ---- Figures.
    let total = arrivals.len();
    let valid = arrivals.iter().filter(|a| a.valid).count();
    let mut firsts: HashMap<(usize, &str), &Arrival> = HashMap::new();
    let mut strays = 0;
    for arrival in &arrivals {
        match (arrival.hook, arrival.event_id.as_deref()) {
            (Some(hook), Some(event))
                if hook < webhooks
                    && matches!(arrival.event_name.as_deref(), Some(CREATED | UPDATED))
                    && arrival
                        .object_id
                        .as_ref()
                        .is_some_and(|id| sent_at.contains_key(id)) =>
            {
                firsts
                    .entry((hook, event))
                    .and_modify(|first| {
                        if arrival.at < first.at {
                            *first = arrival;
                        }
                    })
                    .or_insert(arrival);
            }
            _ => strays += 1,
        }
    }
    let received = firsts.len();
    let duplicates = total - strays - received;
    let first_event = firsts
        .values()
        .filter_map(|a| a.created_at)
        .min()
        .context("no delivery arrived")?;
    let first_arrival = firsts.values().map(|a| a.at).min().unwrap_or(first_event);
    let last_arrival = firsts.values().map(|a| a.at).max().unwrap_or(first_event);
    let mut from_event: Vec<Duration> = firsts
        .values()
        .filter_map(|a| a.created_at.map(|c| between(c, a.at)))
        .collect();
    let mut from_call: Vec<Duration> = firsts
        .values()
        .filter(|a| a.event_name.as_deref() == Some(CREATED))
        .filter_map(|a| {
            let sent = sent_at.get(a.object_id.as_deref()?)?;
            Some(between(*sent, a.at))
        })
        .collect();
    from_event.sort();
    from_call.sort();
    let written_rate = written as f64 / calls_took.as_secs_f64().max(1e-9);
    let (late, objects) = out_of_order(&firsts);
    let span = between(first_event, last_arrival);
    // Deliveries still to come once the producers had stopped, and how fast they came.
    let after_writes = firsts.values().filter(|a| a.at > last_answer).count();
    let drain = between(last_answer, last_arrival);
    let delivery_rate = received as f64 / span.as_secs_f64().max(1e-9);

    println!(
        "events: {written} written in {:.2} s = {written_rate:.1} events/s (API side: first \
         create call sent → last answered)",
        calls_took.as_secs_f64()
    );
    println!(
        "order: {late} deliveries out of order per object (arrived after a later event of the \
         same inquiry on the same webhook; 0 expected), across {objects} (webhook, inquiry) pairs"
    );
    println!(
        "deliveries: {received} of {expected} received, {duplicates} duplicates, {strays} \
         other requests; signatures valid: {valid} of {total} (webhook_signature::verify, \
         {DEFAULT_TOLERANCE_SECONDS} s tolerance)"
    );
    println!(
        "deliveries API afterwards: {pending} pending, {failed} failed across {webhooks} \
         webhook(s)"
    );
    println!(
        "throughput: {delivery_rate:.1} deliveries/s ({received} from the first event's \
         created-at to the last delivery received, {:.2} s); the first delivery arrived {:.2} s \
         after the first event was written, the last {:.2} s after the last create call was \
         answered",
        span.as_secs_f64(),
        between(first_event, first_arrival).as_secs_f64(),
        between(last_answer, last_arrival).as_secs_f64()
    );
    println!(
        "while events were written: {} deliveries received ({:.1}/s); after the last create call \
         was answered: {after_writes} left, received in {:.2} s = {:.1} deliveries/s",
        received - after_writes,
        (received - after_writes) as f64 / calls_took.as_secs_f64().max(1e-9),
        drain.as_secs_f64(),
        after_writes as f64 / drain.as_secs_f64().max(1e-9),
    );
    for (what, sorted) in [
        ("event created-at → received", &from_event),
        ("create call sent → inquiry.created received", &from_call),
    ] {
        println!(
            "latency, {what}: min {:.1} ms, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, \
             max {:.1} ms",
            millis(quantile(sorted, 0.0)),
            millis(quantile(sorted, 0.50)),
            millis(quantile(sorted, 0.90)),
            millis(quantile(sorted, 0.99)),
            millis(quantile(sorted, 1.0)),
        );
    }
    println!(
        "ratio: deliveries/s ÷ events written/s = {:.3}",
        delivery_rate / written_rate.max(1e-9)
    );
    println!(
        "storage ceiling: {ceiling:.1} single-row write transactions/s ({CEILING_WRITES} \
         sequential INSERT + COMMIT through the same store, {:.2} s); deliveries/s ÷ ceiling = \
         {:.4}",
        ceiling_time.as_secs_f64(),
        delivery_rate / ceiling
    );
    match peak_rss_kib() {
        Some(kib) => println!(
            "peak RSS (VmHWM, whole process: server, receiver and client): {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }

    let _ = stop.send(());
    server.await??;
    if received < expected {
        bail!(
            "only {received} of {expected} deliveries arrived (none for {} s)",
            STALL.as_secs()
        );
    }
    if late > 0 {
        bail!("{late} deliveries arrived after a later event of the same inquiry");
    }
    Ok(())
}
