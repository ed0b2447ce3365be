//! Events: one per state change, written with it, ordered by a per-organization sequence.

use std::{collections::HashMap, time::Duration};

use idshare_domain::{environment::Environment, id::EventId};
use idshare_store::{Scope, events};
use rand::RngExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, expect_error, expect_status, spawn_app, spawn_app_with};

fn names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attributes"]["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn every_change_writes_one_event_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let created = app
        .create_inquiry(key, &template, json!({"name-first": "Ada"}))
        .await;
    let id = created["data"]["id"].as_str().unwrap();
    let path = format!("/api/v1/inquiries/{id}");
    expect_status(
        app.patch(key, &path, &json!({"data": {"attributes": {"note": "n"}}}))
            .await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.patch(
            key,
            &path,
            &json!({"data": {"attributes": {"tags": ["t"]}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.patch(
            key,
            &path,
            &json!({"data": {"attributes": {"tags": ["t"]}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.post(key, &format!("{path}/expire"), &json!({})).await,
        StatusCode::OK,
    )
    .await;
    // A refused transition writes nothing.
    expect_error(
        app.post(key, &format!("{path}/approve"), &json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;

    let list = expect_status(
        app.get(
            key,
            &format!("/api/v1/events?filter[object-id]={id}&page[size]=100"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        names(&list),
        vec![
            "inquiry.expired",
            "inquiry.updated-tags",
            "inquiry.updated",
            "inquiry.created"
        ],
        "one event per change, unchanged tags write none"
    );
    let sequences: Vec<i64> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attributes"]["sequence"].as_i64().unwrap())
        .collect();
    assert!(
        sequences.windows(2).all(|w| w[0] > w[1]),
        "newest first by sequence: {sequences:?}"
    );

    // The payload is the object as the API rendered it at the time.
    let expired = &list["data"][0];
    assert_eq!(
        expired["attributes"]["payload"]["data"]["attributes"]["status"],
        "expired"
    );
    assert_eq!(
        list["data"][3]["attributes"]["payload"]["data"]["attributes"]["status"],
        "created"
    );
    assert_eq!(
        expired["relationships"]["object"]["data"],
        json!({"type": "inquiry", "id": id})
    );

    let event_id = expired["id"].as_str().unwrap();
    assert!(event_id.starts_with("evt_"));
    let one = expect_status(
        app.get(key, &format!("/api/v1/events/{event_id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(one["data"], *expired);
    expect_error(
        app.get(key, "/api/v1/events/evt_AAAAAAAAAAAAAAAAAAAAAAAA")
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    let templates = expect_status(
        app.get(key, "/api/v1/events?filter[name]=inquiry-template.created")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(templates["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        templates["data"][0]["attributes"]["payload"]["data"]["id"],
        template.as_str()
    );
}

async fn template_versions_write_their_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let version = expect_status(
        app.post(
            key,
            &format!("/api/v1/inquiry-templates/{template}/versions"),
            &json!({"data": {"attributes": {"field-schemas": []}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let version_id = version["data"]["id"].as_str().unwrap();
    expect_status(
        app.post(
            key,
            &format!("/api/v1/inquiry-template-versions/{version_id}/publish"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let list = expect_status(app.get(key, "/api/v1/events").await, StatusCode::OK).await;
    assert_eq!(
        names(&list),
        vec![
            "inquiry-template-version.published",
            "inquiry-template-version.created",
            "inquiry-template.created"
        ]
    );
}

/// Begins a write transaction and records one event in it, as a change would.
async fn record_in_open_transaction(
    app: &TestApp,
    scope: &Scope,
    label: &str,
) -> (idshare_store::Tx, EventId) {
    let mut tx = app.store.begin_write().await.unwrap();
    let id = events::record(
        &mut tx,
        app.store.crypto(),
        scope,
        events::NewEvent {
            name: "inquiry-template.created",
            object_type: "inquiry-template",
            object_id: label,
            payload: &json!({"label": label}),
            sealed_by: None,
        },
        app.state.now(),
    )
    .await
    .unwrap();
    (tx, id)
}

/// A consumer reading the feed forward: each call asks for what is newer than the last event
/// it saw (`page[before]`, following `links.prev`), like a poller would.
struct ForwardReader {
    cursor: String,
    seen: Vec<(String, i64)>,
}

impl ForwardReader {
    async fn read(&mut self, app: &TestApp, key: &str) {
        loop {
            let page = expect_status(
                app.get(
                    key,
                    &format!("/api/v1/events?page[size]=7&page[before]={}", self.cursor),
                )
                .await,
                StatusCode::OK,
            )
            .await;
            let items = page["data"].as_array().unwrap();
            // Newest first: the oldest new event is last.
            for item in items.iter().rev() {
                self.seen.push((
                    item["id"].as_str().unwrap().to_owned(),
                    item["attributes"]["sequence"].as_i64().unwrap(),
                ));
            }
            match items.first() {
                Some(newest) => self.cursor = newest["id"].as_str().unwrap().to_owned(),
                None => return,
            }
        }
    }

    fn ids(&self) -> Vec<&str> {
        self.seen.iter().map(|(id, _)| id.as_str()).collect()
    }
}

/// A transaction that began earlier and commits later than others: a reader that paged past
/// the others' events before it committed still gets its event, once, in sequence order.
/// PostgreSQL only: on SQLite a write transaction holds the single write lock, so no other
/// writer commits while it is open.
async fn a_late_commit_is_not_skipped_by_a_forward_reader(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let scope = Scope::new(tenant.org_id.clone(), Environment::Sandbox);
    let template = app.create_template(key).await;
    let start = app.list_ids(key, "/api/v1/events").await;
    let mut reader = ForwardReader {
        cursor: start[0].clone(),
        seen: vec![],
    };

    let (held, late) = record_in_open_transaction(&app, &scope, "late").await;
    let mut others = vec![];
    for name in ["Ada", "Grace", "Edsger"] {
        let created = app
            .create_inquiry(key, &template, json!({"name-first": name}))
            .await;
        others.push(created["data"]["id"].as_str().unwrap().to_owned());
    }
    reader.read(&app, key).await;
    assert!(
        reader.seen.is_empty(),
        "nothing is served past a transaction still running: {:?}",
        reader.seen
    );
    held.commit().await.unwrap();
    reader.read(&app, key).await;
    let seen = reader.ids();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(
        seen[0],
        late.as_str(),
        "the earlier transaction comes first"
    );
    assert!(reader.seen.windows(2).all(|w| w[0].1 < w[1].1));
    let all = app.list_ids(key, "/api/v1/events?page[size]=100").await;
    assert_eq!(all.len(), start.len() + 4);
}

/// Many writers whose transactions stay open a random while, and a reader paging forward all
/// along: it sees every event exactly once, in increasing sequence.
async fn a_forward_reader_sees_every_event_once_under_concurrent_writers(backend: Backend) {
    const WRITERS: usize = 12;
    const EVENTS_PER_WRITER: usize = 15;
    // The reader polls every few milliseconds for as long as the writers take, which on a
    // loaded machine is well over the default request limit.
    let app = std::sync::Arc::new(
        spawn_app_with(backend, |config| config.rate_limit_per_minute = 1_000_000).await,
    );
    let tenant = app.tenant("Acme").await;
    let key = tenant.sandbox.clone();
    let scope = Scope::new(tenant.org_id.clone(), Environment::Sandbox);
    app.create_template(&key).await;
    let start = app.list_ids(&key, "/api/v1/events").await;
    let mut reader = ForwardReader {
        cursor: start[0].clone(),
        seen: vec![],
    };

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (app, scope) = (app.clone(), scope.clone());
            tokio::spawn(async move {
                let mut written = vec![];
                for n in 0..EVENTS_PER_WRITER {
                    let (tx, id) =
                        record_in_open_transaction(&app, &scope, &format!("w{w}-{n}")).await;
                    let hold = rand::rng().random_range(0..15);
                    tokio::time::sleep(Duration::from_millis(hold)).await;
                    tx.commit().await.unwrap();
                    written.push(id.to_string());
                }
                written
            })
        })
        .collect();
    while !writers.iter().all(|w| w.is_finished()) {
        reader.read(&app, &key).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let mut written = vec![];
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    reader.read(&app, &key).await;

    let mut times_seen: HashMap<&str, usize> = HashMap::new();
    for id in reader.ids() {
        *times_seen.entry(id).or_default() += 1;
    }
    assert!(
        times_seen.values().all(|&n| n == 1),
        "an event served twice"
    );
    let missed: Vec<&String> = written
        .iter()
        .filter(|id| !times_seen.contains_key(id.as_str()))
        .collect();
    assert!(
        missed.is_empty(),
        "the reader missed {} of {} events",
        missed.len(),
        written.len()
    );
    assert_eq!(reader.seen.len(), WRITERS * EVENTS_PER_WRITER);
    assert!(
        reader.seen.windows(2).all(|w| w[0].1 < w[1].1),
        "in increasing sequence"
    );
}

/// Events a transaction records one at a time and in batches are numbered in the order it
/// wrote them: on PostgreSQL, consecutive ranks from the start of the transaction's range.
async fn a_batch_is_numbered_after_the_events_its_transaction_wrote_before(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let scope = Scope::new(tenant.org_id.clone(), Environment::Sandbox);
    let crypto = app.store.crypto();
    let now = app.state.now();
    let payload = json!({});
    let event = |label| events::NewEvent {
        name: "inquiry-template.created",
        object_type: "inquiry-template",
        object_id: label,
        payload: &payload,
        sealed_by: None,
    };
    let mut tx = app.store.begin_write().await.unwrap();
    let mut ids = vec![
        events::record(&mut tx, crypto, &scope, event("a"), now)
            .await
            .unwrap(),
    ];
    let batch = [(scope.clone(), event("b")), (scope.clone(), event("c"))];
    ids.extend(
        events::record_batch(&mut tx, crypto, None, &batch, now)
            .await
            .unwrap(),
    );
    ids.extend(
        events::record_batch(&mut tx, crypto, None, &[(scope.clone(), event("d"))], now)
            .await
            .unwrap(),
    );
    ids.push(
        events::record(&mut tx, crypto, &scope, event("e"), now)
            .await
            .unwrap(),
    );
    let mut seqs = vec![];
    for id in &ids {
        let stored = events::get(&mut tx, crypto, &scope, id).await.unwrap();
        seqs.push(stored.unwrap().seq);
    }
    tx.commit().await.unwrap();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    if backend == Backend::Postgres {
        let first = seqs[0];
        assert_eq!(first % events::PER_TRANSACTION, 0, "{seqs:?}");
        assert_eq!(seqs, (first..first + 5).collect::<Vec<_>>());
    }
}

backend_tests!(
    every_change_writes_one_event_in_order,
    template_versions_write_their_events,
    a_forward_reader_sees_every_event_once_under_concurrent_writers,
    a_batch_is_numbered_after_the_events_its_transaction_wrote_before
);

mod late_commit {
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::a_late_commit_is_not_skipped_by_a_forward_reader(Backend::Postgres).await
    }
}
