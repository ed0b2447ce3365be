//! `idshare bench redeem`: share-token redemption latency and throughput, next to the storage
//! ceiling (single-row write transactions per second) measured in the same run on the same
//! database.
//!
//! Without `--url` the server runs in this process (SQLite in a temporary directory, or the
//! `--database-url` database), with 2 workers and no effective rate limit. With `--url` the
//! server is elsewhere and `--database-url` must name its database: the two organizations and
//! their API keys are created directly in the store (setup is not what is measured).
//!
//! Everything else goes through the public API: a source template with an email-address
//! verification, N source inquiries submitted and completed, a connection activated by the
//! destination, N share tokens, and a destination template. Then the N tokens are redeemed
//! (`inquiry-template-id`), `concurrency` calls in flight; one poller lists the destination's
//! `redeemed` tokens every 20 ms (a handful of requests, not one per token) and stamps each
//! token the first time it shows up.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Result, bail, ensure};
use futures::{StreamExt, stream};
use idshare_server::{
    app,
    config::{Config, Secret},
    state::AppState,
};
use idshare_store::{MasterKeySource, Store};
use reqwest::StatusCode;
use serde_json::json;

use crate::bench_common::{
    Api, CEILING_WRITES, millis, org_with_key, peak_rss_kib, quantile, storage_ceiling,
    template_body,
};

const TOKENS: &str = "/api/v1/connect/share-tokens";
/// How often the poller lists the redeemed tokens.
const POLL: Duration = Duration::from_millis(20);
/// Give up waiting for a pipeline after this long.
const PATIENCE: Duration = Duration::from_secs(600);

/// Runs the benchmark and prints the figures.
pub async fn run(
    tokens: usize,
    concurrency: usize,
    database_url: Option<String>,
    url: Option<String>,
) -> Result<()> {
    ensure!(tokens > 0, "--tokens must be at least 1");
    ensure!(concurrency > 0, "--concurrency must be at least 1");
    idshare_service::install_tls_provider();
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().to_path_buf();
    let database_url = match (&url, database_url) {
        (_, Some(db)) => db,
        (None, None) => Store::sqlite_url(&data_dir),
        (Some(_), None) => bail!("--url needs --database-url (the database of that server)"),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let config = Config {
        data_dir: data_dir.clone(),
        database_url: Some(Secret::new(database_url.clone())),
        listen: listener.local_addr()?,
        public_url: Some(address.clone()),
        workers: 2,
        rate_limit_per_minute: 100_000_000,
        ..Config::default()
    };
    let store = match &url {
        // The other server seals; this process only adds organizations and keys, which needs
        // no master key (and must not create one for that database).
        Some(_) => Store::open(
            &database_url,
            false,
            MasterKeySource::NotNeeded,
            config.database_timeout(),
        )
        .await
        .map_err(app::open_error)?,
        None => app::open_store(&config).await?,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (base, server) = match &url {
        Some(url) => {
            drop(listener);
            (url.trim_end_matches('/').to_owned(), None)
        }
        None => {
            let state = AppState::new(store.clone(), config);
            let server = tokio::spawn(app::serve(listener, state, async {
                let _ = stopped.await;
            }));
            (address, Some(server))
        }
    };
    let backend = store.backend();
    let api = Arc::new(Api {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency.max(8))
            .build()?,
        base,
    });

    // ---- Setup (not measured as such).
    let setup_started = Instant::now();
    let (_, s) = org_with_key(&store, "Bench source").await?;
    let (d_org, d) = org_with_key(&store, "Bench destination").await?;
    let source_template = api
        .create(
            &s,
            "/api/v1/inquiry-templates",
            &template_body(&["email-address", "name-first", "name-last"]),
        )
        .await?;
    let sources: Vec<String> = stream::iter(0..tokens)
        .map(|i| {
            let (api, s, template) = (api.clone(), s.clone(), source_template.clone());
            async move {
                let body = json!({"data": {"attributes": {"inquiry-template-id": template,
                    "fields": {"email-address": format!("person{i}@example.com"),
                        "name-first": "Ada", "name-last": format!("Lovelace{i}")}}}});
                let id = api.create(&s, "/api/v1/inquiries", &body).await?;
                api.expect(
                    &s,
                    &format!("/api/v1/inquiries/{id}/submit"),
                    Some(&json!({})),
                    StatusCode::ACCEPTED,
                )
                .await?;
                let path = format!("/api/v1/inquiries/{id}");
                let deadline = Instant::now() + PATIENCE;
                loop {
                    let doc = api.expect(&s, &path, None, StatusCode::OK).await?;
                    match doc["data"]["attributes"]["status"].as_str() {
                        Some("completed" | "approved") => break,
                        Some("failed" | "declined" | "expired") => {
                            bail!("source inquiry {id} ended {doc}")
                        }
                        _ if Instant::now() > deadline => bail!("{id} never completed"),
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
                anyhow::Ok(id)
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let connection = api
        .create(
            &s,
            "/api/v1/connect/connections",
            &json!({"data": {"attributes": {"destination-organization-id": d_org}}}),
        )
        .await?;
    api.expect(
        &d,
        &format!("/api/v1/connect/connections/{connection}/activate"),
        Some(&json!({})),
        StatusCode::OK,
    )
    .await?;
    let token_ids: Vec<String> = stream::iter(sources)
        .map(|source| {
            let (api, s, connection) = (api.clone(), s.clone(), connection.clone());
            async move {
                api.create(
                    &s,
                    TOKENS,
                    &json!({"data": {"attributes": {"connection-id": connection,
                        "source-id": source}}}),
                )
                .await
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let destination_template = api
        .create(
            &d,
            "/api/v1/inquiry-templates",
            &template_body(&["email-address", "name-first"]),
        )
        .await?;
    let setup = setup_started.elapsed();
    println!(
        "redeem benchmark: {backend:?}, server {}, {tokens} tokens, {concurrency} redeem calls in flight",
        if url.is_some() {
            "at --url"
        } else {
            "in-process (2 workers)"
        }
    );
    println!(
        "setup: {tokens} source inquiries completed (email-address verification), \
         {} share tokens created, in {:.2} s",
        token_ids.len(),
        setup.as_secs_f64()
    );

    // ---- Redemption.
    let observed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(false);
    let poller = {
        let (api, d, observed) = (api.clone(), d.clone(), observed.clone());
        tokio::spawn(async move {
            let mut requests = 0usize;
            loop {
                let mut after: Option<String> = None;
                loop {
                    let mut path = format!("{TOKENS}?filter[status]=redeemed&page[size]=100");
                    if let Some(a) = &after {
                        path.push_str(&format!("&page[after]={a}"));
                    }
                    let doc = api.expect(&d, &path, None, StatusCode::OK).await?;
                    requests += 1;
                    let now = Instant::now();
                    let items = doc["data"].as_array().cloned().unwrap_or_default();
                    {
                        let mut seen = observed.lock().expect("lock");
                        for item in &items {
                            if let Some(id) = item["id"].as_str() {
                                seen.entry(id.to_owned()).or_insert(now);
                            }
                        }
                    }
                    match (items.len(), items.last().and_then(|i| i["id"].as_str())) {
                        (100, Some(last)) => after = Some(last.to_owned()),
                        _ => break,
                    }
                }
                if observed.lock().expect("lock").len() >= tokens {
                    return anyhow::Ok(requests);
                }
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = done_rx.changed() => return anyhow::Ok(requests),
                }
            }
        })
    };
    let body = json!({"data": {"attributes": {"inquiry-template-id": destination_template}}});
    let first_redeem = Instant::now();
    let calls: Vec<(String, Instant, Duration)> = stream::iter(token_ids.clone())
        .map(|token| {
            let (api, d, body) = (api.clone(), d.clone(), body.clone());
            async move {
                let sent = Instant::now();
                api.expect(
                    &d,
                    &format!("{TOKENS}/{token}/redeem"),
                    Some(&body),
                    StatusCode::OK,
                )
                .await?;
                anyhow::Ok((token, sent, sent.elapsed()))
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let calls_done = first_redeem.elapsed();
    let deadline = Instant::now() + PATIENCE;
    while observed.lock().expect("lock").len() < tokens {
        if poller.is_finished() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = done_tx.send(true);
    let poll_requests = poller.await??;
    let observed = observed.lock().expect("lock").clone();
    ensure!(
        observed.len() >= tokens,
        "only {} of {tokens} tokens reached `redeemed`",
        observed.len()
    );
    let mut call_latency: Vec<Duration> = calls.iter().map(|c| c.2).collect();
    let mut end_to_end: Vec<Duration> = calls
        .iter()
        .map(|(token, sent, _)| observed[token].saturating_duration_since(*sent))
        .collect();
    let last_redeemed = observed.values().max().copied().unwrap_or(first_redeem);
    let span = last_redeemed.saturating_duration_since(first_redeem);
    call_latency.sort();
    end_to_end.sort();
    let rate = tokens as f64 / span.as_secs_f64().max(1e-9);

    // ---- Storage ceiling: sequential single-row write transactions through the same Store.
    let (ceiling, ceiling_time) = storage_ceiling(&store).await?;

    println!(
        "redeem calls: all {tokens} answered 200 in {:.2} s; latency p50 {:.1} ms, p99 {:.1} ms",
        calls_done.as_secs_f64(),
        millis(quantile(&call_latency, 0.50)),
        millis(quantile(&call_latency, 0.99)),
    );
    println!(
        "end to end (redeem call sent → token seen `redeemed`, polled every {} ms, \
         {poll_requests} list requests): p50 {:.1} ms, p99 {:.1} ms",
        POLL.as_millis(),
        millis(quantile(&end_to_end, 0.50)),
        millis(quantile(&end_to_end, 0.99)),
    );
    println!(
        "throughput: {rate:.1} redemptions/s ({tokens} from the first redeem call to the last \
         token redeemed, {:.2} s)",
        span.as_secs_f64()
    );
    println!(
        "storage ceiling: {ceiling:.1} single-row write transactions/s \
         ({CEILING_WRITES} sequential INSERT + COMMIT through the same store, {:.2} s)",
        ceiling_time.as_secs_f64()
    );
    println!(
        "ratio: redemptions/s ÷ ceiling = {:.4} (the ceiling is {:.1}× the redemption rate)",
        rate / ceiling,
        ceiling / rate.max(1e-9)
    );
    match peak_rss_kib() {
        Some(kib) => println!(
            "peak RSS (VmHWM, whole process{}): {:.1} MiB",
            if url.is_some() {
                ", client only"
            } else {
                ", server included"
            },
            kib as f64 / 1024.0
        ),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }

    let _ = stop.send(());
    if let Some(server) = server {
        server.await??;
    } else {
        store.close().await;
    }
    Ok(())
}
