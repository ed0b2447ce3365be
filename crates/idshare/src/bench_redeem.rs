//! `idshare bench redeem`: share-token redemption latency, throughput and cost, next to the
//! storage ceiling (single-row write transactions per second) measured in the same run on the
//! same database.
//!
//! Without `--url` the server runs in this process (SQLite in a temporary directory, or the
//! `--database-url` database), with 2 workers and no effective rate limit. With `--url` the
//! server is elsewhere and `--database-url` must name its database: the two organizations and
//! their API keys are created directly in the store (setup is not what is measured), and the
//! server's CPU time and statements cannot be measured.
//!
//! Everything else goes through the public API, from the load thread
//! ([`crate::bench_common::on_load_thread`]): a source template with an email-address verification, N
//! source inquiries submitted and completed, a connection activated by the destination, N share
//! tokens, and a destination template. Then the N tokens are redeemed (`inquiry-template-id`):
//! in a burst, `concurrency` calls in flight, or one at a time (each redemption finished and the
//! server's store idle before the next call). An observer with a store of its own reads the
//! tokens to see them `redeemed`; the phase ends when all are and the server's store has been
//! idle a while (the jobs' completions and the workers' last claims included).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use futures::{StreamExt, stream};
use idshare_domain::{
    environment::Environment,
    id::{OrgId, ShareTokenId},
    share_token::ShareTokenStatus,
};
use idshare_server::{app, config::Config};
use idshare_store::{MasterKeySource, Scope, Store, share_tokens};
use reqwest::StatusCode;
use serde_json::json;

use crate::bench_common::{
    Api, BURST_POLL, BURST_QUIET, CEILING_WRITES, Cost, Goal, LocalServer, Meter, Observer, QUIET,
    between, millis, on_load_thread, org_with_key, peak_rss_kib, per_lookup, print_goals, quantile,
    quantiles, storage_ceiling, template_body,
};

const TOKENS: &str = "/api/v1/connect/share-tokens";
/// Give up waiting for a source inquiry after this long.
const PATIENCE: Duration = Duration::from_secs(600);

/// What to run.
pub struct Options {
    pub tokens: usize,
    pub concurrency: usize,
    /// Redeem one token at a time instead of in a burst.
    pub one_at_a_time: bool,
    pub database_url: Option<String>,
    pub url: Option<String>,
}

/// Runs the benchmark and prints the figures.
pub async fn run(options: Options) -> Result<()> {
    let Options {
        tokens,
        concurrency,
        one_at_a_time,
        database_url,
        url,
    } = options;
    ensure!(tokens > 0, "--tokens must be at least 1");
    ensure!(concurrency > 0, "--concurrency must be at least 1");
    idshare_service::install_tls_provider();
    let (store, base, database_url, server) = match (&url, database_url) {
        (Some(url), Some(database_url)) => {
            // The other server seals; this process only adds organizations and keys, which
            // needs no master key (and must not create one for that database).
            let store = Store::open(
                &database_url,
                false,
                MasterKeySource::NotNeeded,
                Config::default().database_timeout(),
            )
            .await
            .map_err(app::open_error)?;
            let base = url.trim_end_matches('/').to_owned();
            (store, base, database_url, None)
        }
        (Some(_), None) => bail!("--url needs --database-url (the database of that server)"),
        (None, database_url) => {
            let server = LocalServer::start(database_url).await?;
            let database_url = server.config.database_url();
            (
                server.store.clone(),
                server.base.clone(),
                database_url,
                Some(server),
            )
        }
    };
    let backend = store.backend();

    // Organizations and keys in the store, on this runtime (the store's connections belong
    // to it); everything else on the load thread.
    let (_, source_key) = org_with_key(&store, "Bench source").await?;
    let (destination_org, destination_key) = org_with_key(&store, "Bench destination").await?;
    let plan = Plan {
        base,
        source_key,
        destination_key,
        destination: Scope::new(OrgId::parse(&destination_org)?, Environment::Sandbox),
        tokens,
        concurrency,
        one_at_a_time,
        database_url,
        server: url.is_none().then(|| store.clone()),
    };
    let outcome = on_load_thread(move || load(plan)).await?;

    // ---- Storage ceiling: sequential single-row write transactions through the same Store.
    let (ceiling, ceiling_time) = storage_ceiling(&store).await?;

    let mode = if one_at_a_time {
        "one at a time (each redemption finished, and the server's store idle for 20 ms, \
         before the next call)"
            .to_owned()
    } else {
        format!("burst: {concurrency} redeem calls in flight")
    };
    println!(
        "redeem benchmark: {backend:?}, server {}, {tokens} tokens, {mode}",
        if url.is_some() {
            "at --url"
        } else {
            "in-process (2 workers)"
        }
    );
    println!(
        "setup: {tokens} source inquiries completed (email-address verification), {tokens} \
         share tokens created, in {:.2} s",
        outcome.setup.as_secs_f64()
    );
    println!(
        "redeem calls (sent → 202 pending): {}",
        quantiles(&outcome.call_latency)
    );
    println!(
        "end to end (redeem call sent → token seen `redeemed` by the observer{}): {}",
        if one_at_a_time {
            ", which looks after every commit of the server"
        } else {
            ", in the order sent, at most every 5 ms"
        },
        quantiles(&outcome.end_to_end)
    );
    println!(
        "server (the token's pending_at → redeemed_at, the server's clock): {}",
        quantiles(&outcome.server_latency)
    );
    let rate = outcome.span.map(|span| {
        let rate = tokens as f64 / span.as_secs_f64().max(1e-9);
        println!(
            "throughput: {rate:.1} redemptions/s ({tokens} from the first redeem call to the \
             last token seen redeemed, {:.2} s)",
            span.as_secs_f64()
        );
        rate
    });
    println!(
        "cost per redemption, all its work included (the call, the job, the workers' claims, \
         until the server's store was idle for {} ms):",
        if one_at_a_time {
            QUIET.as_millis()
        } else {
            BURST_QUIET.as_millis()
        }
    );
    outcome.cost.print("  ", "redemption", tokens);
    if let Some((call, job)) = &outcome.split {
        println!("  of which the redeem call (until its answer arrived):");
        call.print("    ", "redemption", tokens);
        println!("  and the rest (the job and the workers, after the answer):");
        job.print("    ", "redemption", tokens);
    }
    println!(
        "storage ceiling: {ceiling:.1} single-row write transactions/s \
         ({CEILING_WRITES} sequential INSERT + COMMIT through the same store, {:.2} s)",
        ceiling_time.as_secs_f64()
    );
    if let Some(rate) = rate {
        println!(
            "ratio: redemptions/s ÷ ceiling = {:.4} (the ceiling is {:.1}× the redemption rate)",
            rate / ceiling,
            ceiling / rate.max(1e-9)
        );
    }
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
    let counts = outcome.cost.counts_per(tokens);
    let mut goals = Vec::new();
    if one_at_a_time {
        let (what, target) = match backend {
            idshare_store::Backend::Sqlite => {
                ("one redemption alone: end-to-end p50 (ms, SQLite)", 5.0)
            }
            idshare_store::Backend::Postgres => (
                "one redemption alone: end-to-end p50 (ms, PostgreSQL)",
                10.0,
            ),
        };
        goals.push(Goal {
            what,
            target,
            measured: Some(millis(quantile(&outcome.end_to_end, 0.5))),
            at_least: false,
        });
    } else {
        goals.push(Goal {
            what: "burst throughput ÷ storage ceiling",
            target: 1.0 / 3.0,
            measured: rate.map(|rate| rate / ceiling),
            at_least: true,
        });
    }
    goals.extend([
        Goal {
            what: "server CPU per redemption (ms)",
            target: 1.0,
            measured: outcome.cost.cpu_ms_per(tokens),
            at_least: false,
        },
        Goal {
            what: "SQL statements per redemption",
            target: 15.0,
            measured: counts.map(|c| c[0]),
            at_least: false,
        },
        Goal {
            what: "write transactions per redemption",
            target: 3.0,
            measured: counts.map(|c| c[1]),
            at_least: false,
        },
    ]);
    print_goals(&goals);

    match server {
        Some(server) => server.stop().await,
        None => {
            store.close().await;
            Ok(())
        }
    }
}

/// What the load thread does.
struct Plan {
    base: String,
    source_key: String,
    destination_key: String,
    destination: Scope,
    tokens: usize,
    concurrency: usize,
    one_at_a_time: bool,
    database_url: String,
    /// The server's store when it runs in this process (read only for its counters).
    server: Option<Store>,
}

/// What the load thread measured.
struct Outcome {
    setup: Duration,
    /// Sorted, like the other latencies.
    call_latency: Vec<Duration>,
    end_to_end: Vec<Duration>,
    server_latency: Vec<Duration>,
    /// In a burst: first redeem call sent → last token seen redeemed.
    span: Option<Duration>,
    cost: Cost,
    /// One at a time: the cost of the redeem calls, and of the rest.
    split: Option<(Cost, Cost)>,
}

async fn load(plan: Plan) -> Result<Outcome> {
    let api = Arc::new(Api {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(plan.concurrency.max(8))
            .build()?,
        base: plan.base.clone(),
    });
    let setup_started = Instant::now();
    let token_ids = setup(&api, &plan).await?;
    let destination_template = api
        .create(
            &plan.destination_key,
            "/api/v1/inquiry-templates",
            &template_body(&["email-address", "name-first"]),
        )
        .await?;
    let setup = setup_started.elapsed();
    let observer_store = Store::open(
        &plan.database_url,
        false,
        MasterKeySource::NotNeeded,
        Duration::from_secs(30),
    )
    .await?;
    let body = json!({"data": {"attributes": {"inquiry-template-id": destination_template}}});
    let redeem = |token: ShareTokenId| {
        let (api, key, body) = (api.clone(), plan.destination_key.clone(), body.clone());
        async move {
            let sent = Instant::now();
            api.expect(
                &key,
                &format!("{TOKENS}/{token}/redeem"),
                Some(&body),
                StatusCode::ACCEPTED,
            )
            .await?;
            anyhow::Ok((token, sent, sent.elapsed()))
        }
    };
    let redeemed = |id: &ShareTokenId| {
        let (store, scope, id) = (&observer_store, &plan.destination, id.clone());
        async move {
            let token = read_token(store, scope, &id).await?;
            match token.status {
                ShareTokenStatus::Redeemed => Ok(true),
                ShareTokenStatus::Failed | ShareTokenStatus::Expired => {
                    bail!("token {id} ended {}", token.status.as_str())
                }
                _ => Ok(false),
            }
        }
    };
    let server = plan.server.as_ref();

    let first_sent = Instant::now();
    let (calls, seen, cost, split, lookups) = if plan.one_at_a_time {
        let mut observer = Observer::new(server, Duration::ZERO);
        let (mut calls, mut seen) = (Vec::new(), Vec::new());
        let (mut call_cost, mut job_cost) = (Cost::default(), Cost::default());
        for id in &token_ids {
            let meter = Meter::start(server);
            calls.push(redeem(id.clone()).await?);
            call_cost = call_cost.plus(meter.stop());
            let meter = Meter::start(server);
            seen.push(observer.until(|| redeemed(id)).await?);
            observer.quiet(QUIET).await;
            job_cost = job_cost.plus(meter.stop());
        }
        let total = call_cost.plus(job_cost);
        (
            calls,
            seen,
            total,
            Some((call_cost, job_cost)),
            observer.lookups,
        )
    } else {
        let meter = Meter::start(server);
        let mut observer = Observer::new(server, BURST_POLL);
        let calls = stream::iter(token_ids.clone())
            .map(redeem)
            .buffer_unordered(plan.concurrency)
            .collect::<Vec<_>>();
        let observed = async {
            let mut seen = Vec::with_capacity(token_ids.len());
            for id in &token_ids {
                seen.push(observer.until(|| redeemed(id)).await?);
            }
            anyhow::Ok(seen)
        };
        let (calls, seen) = tokio::join!(calls, observed);
        let calls = calls.into_iter().collect::<Result<Vec<_>>>()?;
        let seen = seen?;
        observer.quiet(BURST_QUIET).await;
        (calls, seen, meter.stop(), None, observer.lookups)
    };

    // Every token read once more, for the server's timestamps: the observer's lookups on
    // their own, which measures what one costs outside the load thread.
    let meter = Meter::start(server);
    let mut server_latency = Vec::with_capacity(token_ids.len());
    for id in &token_ids {
        let token = read_token(&observer_store, &plan.destination, id).await?;
        let (Some(pending), Some(redeemed)) = (token.pending_at, token.redeemed_at) else {
            bail!("token {id} has no pending_at or redeemed_at");
        };
        server_latency.push(between(pending, redeemed));
    }
    let each = per_lookup(&meter.stop(), token_ids.len());
    observer_store.close().await;

    let seen_at: HashMap<&ShareTokenId, Instant> = token_ids.iter().zip(seen).collect();
    let mut call_latency: Vec<Duration> = calls.iter().map(|c| c.2).collect();
    let mut end_to_end: Vec<Duration> = calls
        .iter()
        .map(|(token, sent, _)| seen_at[token].saturating_duration_since(*sent))
        .collect();
    let last_seen = seen_at.values().max().copied().unwrap_or(first_sent);
    call_latency.sort();
    end_to_end.sort();
    server_latency.sort();
    // One at a time, every lookup falls in the part after the call's answer.
    let split = split.map(|(call, job): (Cost, Cost)| (call, job.less_observer(lookups, each)));
    Ok(Outcome {
        setup,
        call_latency,
        end_to_end,
        server_latency,
        span: (!plan.one_at_a_time).then(|| last_seen.saturating_duration_since(first_sent)),
        cost: cost.less_observer(lookups, each),
        split,
    })
}

async fn read_token(
    store: &Store,
    scope: &Scope,
    id: &ShareTokenId,
) -> Result<share_tokens::ShareToken> {
    let mut tx = store.begin_read().await?;
    share_tokens::get(&mut tx, scope, id)
        .await?
        .with_context(|| format!("token {id} is not there"))
}

/// The source template, N source inquiries submitted and completed, the connection activated
/// by the destination, and N share tokens: their ids.
async fn setup(api: &Arc<Api>, plan: &Plan) -> Result<Vec<ShareTokenId>> {
    let s = &plan.source_key;
    let source_template = api
        .create(
            s,
            "/api/v1/inquiry-templates",
            &template_body(&["email-address", "name-first", "name-last"]),
        )
        .await?;
    let sources: Vec<String> = stream::iter(0..plan.tokens)
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
        .buffer_unordered(plan.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let d_org = plan.destination.org_id.to_string();
    let connection = api
        .create(
            s,
            "/api/v1/connect/connections",
            &json!({"data": {"attributes": {"destination-organization-id": d_org}}}),
        )
        .await?;
    api.expect(
        &plan.destination_key,
        &format!("/api/v1/connect/connections/{connection}/activate"),
        Some(&json!({})),
        StatusCode::OK,
    )
    .await?;
    stream::iter(sources)
        .map(|source| {
            let (api, s, connection) = (api.clone(), s.clone(), connection.clone());
            async move {
                let id = api
                    .create(
                        &s,
                        TOKENS,
                        &json!({"data": {"attributes": {"connection-id": connection,
                            "source-id": source}}}),
                    )
                    .await?;
                Ok(ShareTokenId::parse(&id)?)
            }
        })
        .buffer_unordered(plan.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}
