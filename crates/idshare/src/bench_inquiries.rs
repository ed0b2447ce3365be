//! `idshare bench inquiries`: inquiry create and submit latency, throughput and cost (server
//! CPU, SQL statements and transactions per inquiry), next to the storage ceiling measured in
//! the same run on the same database.
//!
//! The server runs in this process ([`LocalServer`]). An organization with a sandbox key is
//! created in the store; from the load thread ([`on_load_thread`]), through the public API: a
//! template with three string fields and a required email-address verification, then N
//! inquiries created (fields filled in) and submitted: in a burst (all created with
//! `concurrency` calls in flight, then all submitted likewise), or one at a time (each created,
//! submitted, and its pipeline finished with the server's store idle before the next). An
//! observer with a store of its own reads each inquiry until its submission is processed.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use futures::{StreamExt, stream};
use idshare_domain::{
    environment::Environment,
    id::{InquiryId, OrgId},
};
use idshare_server::{app, config::Config};
use idshare_store::{Scope, Store, inquiries};
use reqwest::StatusCode;
use serde_json::json;

use crate::bench_common::{
    Api, BURST_POLL, BURST_QUIET, CEILING_WRITES, Cost, LocalServer, Meter, Observer, QUIET, id_of,
    on_load_thread, org_with_key, peak_rss_kib, per_lookup, quantiles, storage_ceiling,
    template_body,
};

const INQUIRIES: &str = "/api/v1/inquiries";

/// What to run.
pub struct Options {
    pub inquiries: usize,
    pub concurrency: usize,
    /// Create and submit one inquiry at a time instead of in bursts.
    pub one_at_a_time: bool,
    pub database_url: Option<String>,
}

/// Runs the benchmark and prints the figures.
pub async fn run(options: Options) -> Result<()> {
    let Options {
        inquiries: count,
        concurrency,
        one_at_a_time,
        database_url,
    } = options;
    ensure!(count > 0, "--inquiries must be at least 1");
    ensure!(concurrency > 0, "--concurrency must be at least 1");
    let server = LocalServer::start(database_url).await?;
    let backend = server.store.backend();
    let (org, key) = org_with_key(&server.store, "Bench inquiries").await?;
    let plan = Plan {
        base: server.base.clone(),
        key,
        scope: Scope::new(OrgId::parse(&org)?, Environment::Sandbox),
        count,
        concurrency,
        one_at_a_time,
        config: server.config.clone(),
        server: server.store.clone(),
    };
    let outcome = on_load_thread(move || load(plan)).await?;
    let (ceiling, ceiling_time) = storage_ceiling(&server.store).await?;

    let mode = if one_at_a_time {
        "one at a time (each created, submitted, and its pipeline finished with the server's \
         store idle for 20 ms, before the next)"
            .to_owned()
    } else {
        format!("bursts: all created, then all submitted, {concurrency} calls in flight")
    };
    println!(
        "inquiries benchmark: {backend:?}, server in-process (2 workers), {count} inquiries \
         (3 fields, a required email-address verification), {mode}"
    );
    println!("create calls (sent → 201): {}", quantiles(&outcome.create));
    println!("submit calls (sent → 202): {}", quantiles(&outcome.submit));
    println!(
        "end to end (submit call sent → submission seen processed by the observer{}): {}",
        if one_at_a_time {
            ", which looks after every commit of the server"
        } else {
            ", in the order sent, at most every 5 ms"
        },
        quantiles(&outcome.end_to_end)
    );
    let rates = outcome.spans.map(|(create_span, submit_span)| {
        let creates = count as f64 / create_span.as_secs_f64().max(1e-9);
        let processed = count as f64 / submit_span.as_secs_f64().max(1e-9);
        println!(
            "throughput: {creates:.1} creates/s (first create call sent → last answered, \
             {:.2} s); {processed:.1} submissions processed/s (first submit call sent → last \
             seen processed, {:.2} s)",
            create_span.as_secs_f64(),
            submit_span.as_secs_f64()
        );
        (creates, processed)
    });
    println!(
        "cost per inquiry, all its work included (until the server's store was idle for {} ms):",
        if one_at_a_time {
            QUIET.as_millis()
        } else {
            BURST_QUIET.as_millis()
        }
    );
    outcome
        .create_cost
        .plus(outcome.submit_cost)
        .print("  ", "inquiry", count);
    println!("  of which the create call:");
    outcome.create_cost.print("    ", "inquiry", count);
    println!("  and the submission (the submit call and the pipeline job):");
    outcome.submit_cost.print("    ", "inquiry", count);
    if let Some(call) = &outcome.submit_call_cost {
        println!("    of which the submit call (until its answer arrived):");
        call.print("      ", "inquiry", count);
    }
    println!(
        "storage ceiling: {ceiling:.1} single-row write transactions/s \
         ({CEILING_WRITES} sequential INSERT + COMMIT through the same store, {:.2} s)",
        ceiling_time.as_secs_f64()
    );
    if let Some((creates, processed)) = rates {
        println!(
            "ratio to the ceiling: creates/s {:.4}, submissions processed/s {:.4}",
            creates / ceiling,
            processed / ceiling
        );
    }
    if let Some(kib) = peak_rss_kib() {
        println!(
            "peak RSS (VmHWM, whole process, server included): {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
    server.stop().await
}

/// What the load thread does.
struct Plan {
    base: String,
    key: String,
    scope: Scope,
    count: usize,
    concurrency: usize,
    one_at_a_time: bool,
    /// For the observer's store (it reads sealed inquiries: it needs the master key).
    config: Config,
    /// The server's store, read only for its counters.
    server: Store,
}

/// What the load thread measured (latencies sorted).
struct Outcome {
    create: Vec<Duration>,
    submit: Vec<Duration>,
    end_to_end: Vec<Duration>,
    /// In bursts: first create call sent → last answered, and first submit call sent → last
    /// submission seen processed.
    spans: Option<(Duration, Duration)>,
    create_cost: Cost,
    /// The submit calls and the pipeline jobs.
    submit_cost: Cost,
    /// One at a time: the submit calls alone.
    submit_call_cost: Option<Cost>,
}

async fn load(plan: Plan) -> Result<Outcome> {
    let api = Arc::new(Api {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(plan.concurrency.max(8))
            .build()?,
        base: plan.base.clone(),
    });
    let template = api
        .create(
            &plan.key,
            "/api/v1/inquiry-templates",
            &template_body(&["email-address", "name-first", "name-last"]),
        )
        .await?;
    let observer_store = app::open_store(&plan.config).await?;
    let create = |i: usize| {
        let (api, key, template) = (api.clone(), plan.key.clone(), template.clone());
        async move {
            let body = json!({"data": {"attributes": {"inquiry-template-id": template,
                "fields": {"email-address": format!("person{i}@example.com"),
                    "name-first": "Ada", "name-last": format!("Lovelace{i}")}}}});
            let sent = Instant::now();
            let doc = api
                .expect(&key, INQUIRIES, Some(&body), StatusCode::CREATED)
                .await?;
            let took = sent.elapsed();
            anyhow::Ok((InquiryId::parse(&id_of(&doc)?)?, took))
        }
    };
    let submit = |id: InquiryId| {
        let (api, key) = (api.clone(), plan.key.clone());
        async move {
            let sent = Instant::now();
            api.expect(
                &key,
                &format!("{INQUIRIES}/{id}/submit"),
                Some(&json!({})),
                StatusCode::ACCEPTED,
            )
            .await?;
            anyhow::Ok((id, sent, sent.elapsed()))
        }
    };
    let processed = |id: &InquiryId| {
        let (store, scope, id) = (&observer_store, &plan.scope, id.clone());
        async move { Ok(read_inquiry(store, scope, &id).await?.processed_submission >= 1) }
    };
    let server = Some(&plan.server);

    let mut created = Vec::with_capacity(plan.count);
    let mut submitted = Vec::with_capacity(plan.count);
    let mut seen = Vec::with_capacity(plan.count);
    let (create_span, submit_started, create_cost, submit_cost, submit_call_cost, lookups);
    if plan.one_at_a_time {
        let mut observer = Observer::new(server, Duration::ZERO);
        let (mut creating, mut calling, mut processing) =
            (Cost::default(), Cost::default(), Cost::default());
        let first = Instant::now();
        for i in 0..plan.count {
            let meter = Meter::start(server);
            let (id, took) = create(i).await?;
            creating = creating.plus(meter.stop());
            created.push((id.clone(), took));
            let meter = Meter::start(server);
            submitted.push(submit(id.clone()).await?);
            calling = calling.plus(meter.stop());
            let meter = Meter::start(server);
            seen.push(observer.until(|| processed(&id)).await?);
            observer.quiet(QUIET).await;
            processing = processing.plus(meter.stop());
        }
        create_span = None;
        submit_started = first;
        create_cost = creating;
        submit_cost = calling.plus(processing);
        submit_call_cost = Some(calling);
        lookups = observer.lookups;
    } else {
        let meter = Meter::start(server);
        let first = Instant::now();
        created = stream::iter(0..plan.count)
            .map(create)
            .buffer_unordered(plan.concurrency)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
        create_span = Some(first.elapsed());
        Observer::new(server, BURST_POLL).quiet(BURST_QUIET).await;
        create_cost = meter.stop();

        let meter = Meter::start(server);
        let mut observer = Observer::new(server, BURST_POLL);
        submit_started = Instant::now();
        let ids: Vec<InquiryId> = created.iter().map(|c| c.0.clone()).collect();
        let calls = stream::iter(ids.clone())
            .map(submit)
            .buffer_unordered(plan.concurrency)
            .collect::<Vec<_>>();
        let observed = async {
            let mut seen = Vec::with_capacity(ids.len());
            for id in &ids {
                seen.push(observer.until(|| processed(id)).await?);
            }
            anyhow::Ok(seen)
        };
        let (calls, observed) = tokio::join!(calls, observed);
        submitted = calls.into_iter().collect::<Result<_>>()?;
        seen = observed?;
        observer.quiet(BURST_QUIET).await;
        submit_cost = meter.stop();
        submit_call_cost = None;
        lookups = observer.lookups;
    }

    // Every inquiry read once more: what one observer lookup costs outside the load thread.
    let meter = Meter::start(server);
    for (id, _) in &created {
        read_inquiry(&observer_store, &plan.scope, id).await?;
    }
    let each = per_lookup(&meter.stop(), created.len());
    observer_store.close().await;

    let seen_at: HashMap<&InquiryId, Instant> = created.iter().map(|c| &c.0).zip(seen).collect();
    let last_seen = seen_at.values().max().copied().unwrap_or(submit_started);
    let mut end_to_end: Vec<Duration> = submitted
        .iter()
        .map(|(id, sent, _)| seen_at[id].saturating_duration_since(*sent))
        .collect();
    let mut create: Vec<Duration> = created.iter().map(|c| c.1).collect();
    let mut submit: Vec<Duration> = submitted.iter().map(|s| s.2).collect();
    create.sort();
    submit.sort();
    end_to_end.sort();
    Ok(Outcome {
        create,
        submit,
        end_to_end,
        spans: create_span.map(|c| (c, last_seen.saturating_duration_since(submit_started))),
        create_cost,
        submit_cost: submit_cost.less_observer(lookups, each),
        submit_call_cost,
    })
}

async fn read_inquiry(store: &Store, scope: &Scope, id: &InquiryId) -> Result<inquiries::Inquiry> {
    let mut tx = store.begin_read().await?;
    inquiries::get(&mut tx, store.crypto(), scope, id)
        .await?
        .with_context(|| format!("inquiry {id} is not there"))
}
