//! Workflows: definitions validated on save, runs started by events, step records, signed
//! HTTPS requests, and Connect run end to end by two organizations' workflows alone.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use idshare_domain::webhook_signature::{DEFAULT_TOLERANCE_SECONDS, verify};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    at_rest::{contains, stored_bytes},
    helpers::{Backend, TestApp, expect_error, expect_status, spawn_app},
    webhooks::{Receiver, create_webhook, verify_with},
};

const WORKFLOWS: &str = "/api/v1/workflows";
const RUNS: &str = "/api/v1/workflow-runs";

fn id_of(doc: &Value) -> String {
    doc["data"]["id"].as_str().unwrap().to_owned()
}

/// Creates and publishes a workflow; returns its id and signing secret.
async fn published_workflow(app: &TestApp, key: &str, definition: Value) -> (String, String) {
    let created = expect_status(
        app.post(
            key,
            WORKFLOWS,
            &json!({"data": {"attributes": {"name": "W", "definition": definition}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = id_of(&created);
    expect_status(
        app.post(key, &format!("{WORKFLOWS}/{id}/publish"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let secret = created["data"]["attributes"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, secret)
}

async fn runs_of(app: &TestApp, key: &str, workflow: &str) -> Vec<Value> {
    let list = expect_status(
        app.get(
            key,
            &format!("{RUNS}?filter[workflow-id]={workflow}&page[size]=100"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    list["data"].as_array().unwrap().clone()
}

async fn event_names(app: &TestApp, key: &str, object: &str) -> Vec<String> {
    let list = expect_status(
        app.get(key, &format!("/api/v1/events?filter[object-id]={object}"))
            .await,
        StatusCode::OK,
    )
    .await;
    let mut names: Vec<String> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attributes"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn template_of(app: &TestApp, key: &str, attributes: Value) -> String {
    id_of(
        &expect_status(
            app.post(
                key,
                "/api/v1/inquiry-templates",
                &json!({"data": {"attributes": attributes}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    )
}

fn tag_definition(template: &str) -> Value {
    json!({
        "trigger": {"event": "inquiry.created",
                    "condition": format!("object.relationships['inquiry-template'].data.id == '{template}'")},
        "steps": [
            {"id": "tag", "action": "add-tag", "with": {"tag": "auto"}},
            {"id": "route", "branches": [
                {"condition": "object.attributes.fields['name-first'].value == 'Ada'",
                 "steps": [{"id": "ada", "action": "add-tag", "with": {"tag": "ada"}}]},
                {"steps": [{"id": "other", "action": "add-tag", "with": {"tag": "other"}}]}
            ]}
        ]
    })
}

async fn workflow_management_and_validation(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;

    // Every problem reported at once, each pointing into the definition; nothing created.
    let e = expect_status(
        app.post(
            key,
            WORKFLOWS,
            &json!({"data": {"attributes": {"name": " ", "definition": {
                "trigger": {"event": "inquiry.exploded"},
                "steps": [{"id": "a", "action": "fly"},
                          {"id": "b", "action": "add-tag", "with": {"tag": "x"}, "condition": "object.("}]}}}}),
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
    for expected in [
        "/data/attributes/name",
        "/data/attributes/definition/trigger/event",
        "/data/attributes/definition/steps/0/action",
        "/data/attributes/definition/steps/1/condition",
    ] {
        assert!(pointers.contains(&expected), "{expected} in {pointers:?}");
    }
    expect_error(
        app.post(
            key,
            WORKFLOWS,
            &json!({"data": {"attributes": {"name": "W"}}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(app.list_ids(key, WORKFLOWS).await.is_empty());

    let template = app.create_template(key).await;
    let created = expect_status(
        app.post(
            key,
            WORKFLOWS,
            &json!({"data": {"attributes": {"name": "Tagger", "definition": tag_definition(&template)}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = id_of(&created);
    let attributes = &created["data"]["attributes"];
    assert_eq!(attributes["status"], "enabled");
    assert_eq!(attributes["latest-version"], 1);
    assert!(attributes["published-version"].is_null());
    assert!(
        attributes["secret"]
            .as_str()
            .unwrap()
            .starts_with("wflsec_")
    );
    let shown = expect_status(
        app.get(key, &format!("{WORKFLOWS}/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert!(shown["data"]["attributes"].get("secret").is_none());

    // A draft runs nothing.
    app.create_inquiry(
        key,
        &template,
        json!({"name-first": "Ada", "name-last": "L"}),
    )
    .await;
    app.drain().await;
    assert!(runs_of(&app, key, &id).await.is_empty());

    let path = |action: &str| format!("{WORKFLOWS}/{id}/{action}");
    let published = expect_status(
        app.post(key, &path("publish"), &json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(published["data"]["attributes"]["published-version"], 1);
    assert_eq!(
        published["data"]["attributes"]["trigger-event"],
        "inquiry.created"
    );
    expect_error(
        app.post(key, &path("publish"), &json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;
    let version = expect_status(
        app.post(
            key,
            &path("versions"),
            &json!({"data": {"attributes": {"definition": {"trigger": {"event": "inquiry.completed"},
                "steps": [{"id": "ok", "action": "approve-inquiry"}]}}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(version["data"]["attributes"]["number"], 2);
    assert_eq!(version["data"]["attributes"]["status"], "draft");
    let versions = expect_status(app.get(key, &path("versions")).await, StatusCode::OK).await;
    let statuses: Vec<&str> = versions["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["attributes"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["draft", "published"]);
    expect_status(
        app.post(key, &path("publish"), &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let versions = expect_status(app.get(key, &path("versions")).await, StatusCode::OK).await;
    assert_eq!(
        versions["data"][1]["attributes"]["status"], "superseded",
        "{versions}"
    );

    expect_error(
        app.post(key, &path("enable"), &json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;
    let disabled = expect_status(
        app.post(key, &path("disable"), &json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(disabled["data"]["attributes"]["status"], "disabled");
    expect_error(
        app.get(key, &format!("{RUNS}?filter[status]=paused")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

async fn runs_follow_triggers_conditions_and_branches(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;
    let template = app.create_template(key).await;
    let other_template = app.create_template(key).await;
    let (tagger, _) = published_workflow(&app, key, tag_definition(&template)).await;

    let ada = id_of(
        &app.create_inquiry(
            key,
            &template,
            json!({"name-first": "Ada", "name-last": "L"}),
        )
        .await,
    );
    let bob = id_of(
        &app.create_inquiry(
            key,
            &template,
            json!({"name-first": "Bob", "name-last": "B"}),
        )
        .await,
    );
    // Another template: the trigger condition is false, no run.
    app.create_inquiry(
        key,
        &other_template,
        json!({"name-first": "Cy", "name-last": "C"}),
    )
    .await;
    app.drain().await;
    app.drain().await;

    let runs = runs_of(&app, key, &tagger).await;
    assert_eq!(runs.len(), 2, "one run per matching event, never more");
    for run in &runs {
        assert_eq!(run["attributes"]["status"], "completed", "{run}");
        assert!(run["attributes"]["completed-at"].is_string());
        let steps = run["attributes"]["steps"].as_array().unwrap();
        assert_eq!(steps[0]["id"], "tag");
        assert_eq!(steps[0]["action"], "add-tag");
        assert_eq!(steps[0]["input"], json!({"tag": "auto"}));
        assert_eq!(steps[0]["status"], "completed");
        assert_eq!(steps[1]["id"], "route");
        let run_id = run["id"].as_str().unwrap();
        assert_eq!(
            event_names(&app, key, run_id).await,
            ["workflow-run.completed", "workflow-run.created"]
        );
    }
    let tags = |inquiry: String| {
        let app = &app;
        async move {
            expect_status(
                app.get(key, &format!("/api/v1/inquiries/{inquiry}")).await,
                StatusCode::OK,
            )
            .await["data"]["attributes"]["tags"]
                .clone()
        }
    };
    assert_eq!(tags(ada).await, json!(["auto", "ada"]));
    assert_eq!(tags(bob).await, json!(["auto", "other"]));

    // A step that cannot be done ends the run `errored`, with the reason.
    let (approver, _) = published_workflow(
        &app,
        key,
        json!({"trigger": {"event": "inquiry.created"},
               "steps": [{"id": "approve", "action": "approve-inquiry", "with": {"comment": "auto"}},
                         {"id": "after", "action": "add-tag", "with": {"tag": "never"}}]}),
    )
    .await;
    app.create_inquiry(
        key,
        &other_template,
        json!({"name-first": "Di", "name-last": "D"}),
    )
    .await;
    app.drain().await;
    let runs = runs_of(&app, key, &approver).await;
    assert_eq!(runs.len(), 1);
    let run = &runs[0]["attributes"];
    assert_eq!(run["status"], "errored", "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("step `approve`"),
        "{run}"
    );
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "no step after the one that errored");
    assert_eq!(steps[0]["status"], "errored");
    assert_eq!(
        event_names(&app, key, runs[0]["id"].as_str().unwrap()).await,
        ["workflow-run.created", "workflow-run.errored"]
    );
}

async fn https_requests_are_signed_and_retried(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;
    let receiver = Receiver::start().await;
    let template = app.create_template(key).await;
    let (workflow, secret) = published_workflow(
        &app,
        key,
        json!({"trigger": {"event": "inquiry.created"},
               "steps": [{"id": "notify", "action": "make-https-request",
                          "with": {"url": receiver.url, "max-attempts": 2}}]}),
    )
    .await;
    let inquiry = id_of(
        &app.create_inquiry(
            key,
            &template,
            json!({"name-first": "Ada", "name-last": "L"}),
        )
        .await,
    );
    app.drain().await;
    let sent = receiver.received();
    assert_eq!(sent.len(), 1);
    assert!(verify_with(&app, &sent[0], &secret));
    let body = sent[0].json();
    assert_eq!(body["data"]["attributes"]["name"], "inquiry.created");
    assert_eq!(
        body["data"]["attributes"]["payload"]["data"]["id"],
        inquiry.as_str()
    );
    let run = &runs_of(&app, key, &workflow).await[0]["attributes"];
    assert_eq!(run["status"], "completed");
    assert_eq!(run["steps"][0]["output"]["status-code"], 200);

    // A failing receiver: retried once (max-attempts 2), then the run errors.
    receiver.answer(503);
    app.create_inquiry(
        key,
        &template,
        json!({"name-first": "Bo", "name-last": "B"}),
    )
    .await;
    app.drain().await;
    let run = runs_of(&app, key, &workflow).await[0].clone();
    assert_eq!(run["attributes"]["status"], "in_progress", "{run}");
    assert_eq!(run["attributes"]["steps"][0]["status"], "pending");
    assert_eq!(app.drain().await, 0, "the retry waits for its time");
    app.state.advance_clock(time::Duration::hours(1));
    app.drain().await;
    let run = runs_of(&app, key, &workflow).await[0].clone();
    assert_eq!(run["attributes"]["status"], "errored", "{run}");
    assert_eq!(run["attributes"]["steps"][0]["attempts"], 2);
    assert_eq!(receiver.received().len(), 3);
    let last = receiver.received()[2].clone();
    assert!(
        verify(
            last.header("Persona-Signature"),
            &secret,
            &last.body,
            app.state.now().unix_timestamp(),
            DEFAULT_TOLERANCE_SECONDS
        )
        .is_ok()
    );
}

/// A workflow that triggers itself (each run creates an inquiry, whose creation starts the
/// next run) stops after a bounded chain, with the stop recorded.
async fn workflows_that_trigger_themselves_stop(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;
    let template = app.create_template(key).await;
    let (workflow, _) = published_workflow(
        &app,
        key,
        json!({"trigger": {"event": "inquiry.created"},
               "steps": [{"id": "again", "action": "create-inquiry",
                          "with": {"inquiry-template-id": template}}]}),
    )
    .await;
    app.create_inquiry(
        key,
        &template,
        json!({"name-first": "Ada", "name-last": "L"}),
    )
    .await;
    app.drain().await;
    let runs = runs_of(&app, key, &workflow).await;
    let statuses: Vec<&str> = runs
        .iter()
        .map(|r| r["attributes"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "errored",
            "completed",
            "completed",
            "completed",
            "completed",
            "completed"
        ],
        "newest first: five runs, then the stop"
    );
    let stop = runs[0]["attributes"]["error"].as_str().unwrap();
    assert!(stop.contains("cannot loop"), "{stop}");
    assert_eq!(app.list_ids(key, "/api/v1/inquiries").await.len(), 6);
}

/// Events a receiver got, deduplicated by event id: (sequence, name, id), in sequence order.
fn received_events(receiver: &Receiver) -> Vec<(i64, String, String)> {
    let mut seen = HashSet::new();
    let mut events: Vec<(i64, String, String)> = receiver
        .received()
        .iter()
        .map(|r| r.json())
        .filter(|e| seen.insert(e["data"]["id"].as_str().unwrap().to_owned()))
        .map(|e| {
            (
                e["data"]["attributes"]["sequence"].as_i64().unwrap(),
                e["data"]["attributes"]["name"].as_str().unwrap().to_owned(),
                e["data"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    events.sort();
    events
}

/// Every event of the organization, oldest first, as the Events API lists them.
async fn all_events(app: &TestApp, key: &str) -> Vec<(i64, String, String)> {
    let mut events = vec![];
    let mut path = "/api/v1/events?page[size]=100".to_owned();
    loop {
        let page = expect_status(app.get(key, &path).await, StatusCode::OK).await;
        for e in page["data"].as_array().unwrap() {
            events.push((
                e["attributes"]["sequence"].as_i64().unwrap(),
                e["attributes"]["name"].as_str().unwrap().to_owned(),
                e["id"].as_str().unwrap().to_owned(),
            ));
        }
        match page["links"]["next"].as_str() {
            Some(next) => path = next.to_owned(),
            None => break,
        }
    }
    events.sort();
    events
}

/// Connect with no code: the source's workflow shares completed inquiries, the destination's
/// redeems what arrives and approves what completes. One API call from the source's end user
/// flow (create and submit an inquiry) drives everything else.
async fn connect_runs_itself_with_workflows(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.tenant("Source").await;
    let d = app.tenant("Destination").await;
    let s_receiver = Receiver::start().await;
    let d_receiver = Receiver::start().await;
    let (_, s_secret) = create_webhook(
        &app,
        &s.sandbox,
        json!({"url": s_receiver.url, "enabled-events": ["*"]}),
    )
    .await;
    let (_, d_secret) = create_webhook(
        &app,
        &d.sandbox,
        json!({"url": d_receiver.url, "enabled-events": ["*"]}),
    )
    .await;

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
    let x = template_of(
        &app,
        &s.sandbox,
        json!({"name": "X", "field-schemas": [
            {"key": "name-first", "type": "string", "config": {"required": true}},
            {"key": "name-last", "type": "string", "config": {"required": true}},
            {"key": "email-address", "type": "string", "config": {"required": true}}],
          "verifications": [{"type": "email-address", "required": true}]}),
    )
    .await;
    let y = template_of(
        &app,
        &d.sandbox,
        json!({"name": "Y", "field-schemas": [
            {"key": "name-first", "type": "string", "config": {"required": true}},
            {"key": "name-last", "type": "string", "config": {"required": true}},
            {"key": "email-address", "type": "string"}],
          "verifications": [{"type": "email-address", "required": true, "reuse": {"max-age-days": 30}}],
          "reports": [{"type": "watchlist", "on-match": "needs_review"}]}),
    )
    .await;
    let template_is =
        |id: &str| format!("object.relationships['inquiry-template'].data.id == '{id}'");
    published_workflow(
        &app,
        &s.sandbox,
        json!({"trigger": {"event": "inquiry.completed", "condition": template_is(&x)},
               "steps": [{"id": "share", "action": "create-share-token",
                          "with": {"connection-id": connection}}]}),
    )
    .await;
    published_workflow(
        &app,
        &d.sandbox,
        json!({"trigger": {"event": "connect/share-token.inbound-created"},
               "steps": [{"id": "redeem", "action": "redeem-share-token",
                          "with": {"inquiry-template-id": y}}]}),
    )
    .await;
    // A watchlist match sends the inquiry to review instead of `completed`: every completed
    // inquiry of Y had no match.
    published_workflow(
        &app,
        &d.sandbox,
        json!({"trigger": {"event": "inquiry.completed", "condition": template_is(&y)},
               "steps": [{"id": "approve", "action": "approve-inquiry",
                          "with": {"comment": "verified by a partner, no watchlist match"}}]}),
    )
    .await;

    // The end user completes an inquiry at the source; no further call.
    let source = id_of(
        &app.create_inquiry(
            &s.sandbox,
            &x,
            json!({"name-first": "Ada", "name-last": "Lovelace", "email-address": "ada@example.com"}),
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

    let inquiries = app.list_ids(&d.sandbox, "/api/v1/inquiries").await;
    assert_eq!(inquiries.len(), 1, "one destination inquiry");
    let destination = expect_status(
        app.get(&d.sandbox, &format!("/api/v1/inquiries/{}", inquiries[0]))
            .await,
        StatusCode::OK,
    )
    .await;
    let attributes = &destination["data"]["attributes"];
    assert_eq!(attributes["status"], "approved", "{destination}");
    assert_eq!(attributes["fields"]["name-first"]["value"], "Ada");
    assert_eq!(
        attributes["fields"]["email-address"]["value"],
        "ada@example.com"
    );
    assert_eq!(
        attributes["field-provenance"]["name-first"]["source-inquiry"],
        source.as_str()
    );
    for (key, runs) in [(&s.sandbox, 1), (&d.sandbox, 2)] {
        let list = expect_status(app.get(key, RUNS).await, StatusCode::OK).await;
        let statuses: Vec<&str> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["attributes"]["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, vec!["completed"; runs], "{list}");
    }

    // Each organization's receiver got every one of its events exactly once (after dedupe by
    // event id), signed, and can put them in order by `sequence`.
    for (key, receiver, secret) in [
        (&s.sandbox, &s_receiver, &s_secret),
        (&d.sandbox, &d_receiver, &d_secret),
    ] {
        for delivery in receiver.received() {
            assert!(verify_with(&app, &delivery, secret));
        }
        let received = received_events(receiver);
        assert_eq!(received, all_events(&app, key).await);
        let sequences: HashSet<i64> = received.iter().map(|e| e.0).collect();
        assert_eq!(sequences.len(), received.len(), "sequences are unique");
    }
    let names = |events: Vec<(i64, String, String)>| {
        let mut counts = BTreeMap::<String, usize>::new();
        for (_, name, _) in events {
            *counts.entry(name).or_default() += 1;
        }
        counts
    };
    let s_names = names(received_events(&s_receiver));
    let d_names = names(received_events(&d_receiver));
    for expected in [
        "inquiry.completed",
        "connect/share-token.outbound-created",
        "connect/share-token.outbound-redeemed",
        "workflow-run.completed",
    ] {
        assert_eq!(s_names.get(expected), Some(&1), "{expected}: {s_names:?}");
    }
    for expected in [
        "connect/share-token.inbound-created",
        "connect/share-token.inbound-redeemed",
        "inquiry.completed",
        "inquiry.approved",
    ] {
        assert_eq!(d_names.get(expected), Some(&1), "{expected}: {d_names:?}");
    }
    assert_eq!(d_names.get("workflow-run.completed"), Some(&2));
}

/// `levels` comprehensions `all`, each over a literal list of `items` zeros, nested: `items`
/// to the power `levels` iterations.
fn nested_all(levels: usize, items: usize) -> String {
    let list = format!("[{}]", vec!["0"; items].join(","));
    (0..levels).rev().fold("true".to_owned(), |inner, level| {
        format!("{list}.all(v{level}, {inner})")
    })
}

/// A condition that makes the interpreter loop for minutes is stopped at its budget, off the
/// event's transaction and off the runtime's threads: the tenant who wrote it stalls no one
/// else, and its run says why it ended. Conditions whose loops nest deeper than the limits
/// allow are refused on save.
async fn conditions_cannot_stall_other_tenants(backend: Backend) {
    let app = spawn_app(backend).await;
    let attacker = app.tenant("Attacker").await;
    let bystander = app.tenant("Bystander").await;
    let a_key = &attacker.sandbox;
    let b_key = &bystander.sandbox;

    // The most expensive condition the limits accept: 256³ = 16.7 million iterations, minutes
    // of work unchecked.
    let (workflow, _) = published_workflow(
        &app,
        a_key,
        json!({"trigger": {"event": "inquiry.created", "condition": nested_all(3, 256)},
               "steps": [{"id": "tag", "action": "add-tag", "with": {"tag": "never"}}]}),
    )
    .await;
    let a_template = app.create_template(a_key).await;
    let b_template = app.create_template(b_key).await;

    // The attacker fires it twice at once and the jobs run, while the bystander keeps writing.
    let attacking = AtomicBool::new(true);
    let attack = async {
        let fire = || {
            app.request(Method::POST, a_key, "/api/v1/inquiries")
                .json(
                    &json!({"data": {"attributes": {"inquiry-template-id": a_template,
                    "fields": {"name-first": "A", "name-last": "A"}}}}),
                )
                .send()
        };
        let (first, second) = tokio::join!(fire(), fire());
        app.drain().await;
        attacking.store(false, Ordering::SeqCst);
        (first.map(|r| r.status()), second.map(|r| r.status()))
    };
    let write = async {
        let mut outcomes = vec![];
        while attacking.load(Ordering::SeqCst) || outcomes.len() < 5 {
            // A write waits for no other tenant: the bound is far above a write's own time and
            // far below the minutes the condition would take unchecked.
            let outcome = app
                .request(Method::POST, b_key, "/api/v1/inquiries")
                .timeout(std::time::Duration::from_secs(10))
                .json(
                    &json!({"data": {"attributes": {"inquiry-template-id": b_template,
                    "fields": {"name-first": "B", "name-last": "B"}}}}),
                )
                .send()
                .await
                .map(|r| r.status());
            outcomes.push(outcome.map_err(|e| {
                if e.is_timeout() {
                    "no answer within 10 s".to_owned()
                } else {
                    e.to_string()
                }
            }));
        }
        outcomes
    };
    let ((first, second), written) = tokio::join!(attack, write);
    for outcome in &written {
        assert_eq!(
            outcome.as_ref().ok(),
            Some(&StatusCode::CREATED),
            "every write of the other tenant succeeds: {written:?}"
        );
    }
    assert_eq!(first.ok(), Some(StatusCode::CREATED));
    assert_eq!(second.ok(), Some(StatusCode::CREATED));
    assert_eq!(
        app.list_ids(b_key, "/api/v1/inquiries").await.len(),
        written.len()
    );

    let runs = runs_of(&app, a_key, &workflow).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in &runs {
        let run = &run["attributes"];
        assert_eq!(run["status"], "errored", "{run}");
        let error = run["error"].as_str().unwrap();
        assert!(
            error.starts_with("trigger condition: the condition exceeded its budget: more than "),
            "{error}"
        );
        assert_eq!(run["steps"], json!([]), "no step ran");
    }
    for inquiry in app.list_ids(a_key, "/api/v1/inquiries").await {
        let shown = expect_status(
            app.get(a_key, &format!("/api/v1/inquiries/{inquiry}"))
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(shown["data"]["attributes"]["tags"], json!([]));
    }

    // The condition of the report (five levels of 35 items: 52 million iterations) is refused
    // wherever it is written, with a pointer to it.
    let report = nested_all(5, 35);
    let refused = expect_status(
        app.post(
            a_key,
            WORKFLOWS,
            &json!({"data": {"attributes": {"name": "W", "definition": {
            "trigger": {"event": "inquiry.created", "condition": report},
            "steps": [
                {"id": "tag", "action": "add-tag", "with": {"tag": "x"}, "condition": report},
                {"id": "route", "branches": [{"condition": report, "steps": []}]}
            ]}}}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let problems: Vec<(&str, &str)> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["source"]["pointer"].as_str().unwrap(),
                e["details"].as_str().unwrap(),
            )
        })
        .collect();
    let pointers: Vec<&str> = problems.iter().map(|(pointer, _)| *pointer).collect();
    assert_eq!(
        pointers,
        [
            "/data/attributes/definition/trigger/condition",
            "/data/attributes/definition/steps/0/condition",
            "/data/attributes/definition/steps/1/branches/0/condition",
        ]
    );
    for (_, detail) in &problems {
        assert!(
            detail.contains("nest at most 3 deep") && detail.contains("this one nests 5 deep"),
            "{detail}"
        );
    }
    let too_long = format!("0 in [{}]", vec!["0"; 257].join(","));
    let refused = expect_status(
        app.post(
            a_key,
            WORKFLOWS,
            &json!({"data": {"attributes": {"name": "W", "definition": {
                "trigger": {"event": "inquiry.created", "condition": too_long},
                "steps": [{"id": "tag", "action": "add-tag", "with": {"tag": "x"}}]}}}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        refused["errors"][0]["details"]
            .as_str()
            .unwrap()
            .contains("holds at most 256 items; this one has 257"),
        "{refused}"
    );
    assert_eq!(app.list_ids(a_key, WORKFLOWS).await, [workflow]);
}

const CANARY: &str = "Zebulonia";

/// Conditions that fail on a personal value (a name used as a number, as a key) leave no trace
/// of it: not in the runs' reasons or step records, not in the `workflow-run.*` events or their
/// webhook deliveries, not anywhere in the database; and after the inquiry is redacted nothing
/// about it can be read.
async fn condition_errors_carry_no_personal_value(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;
    let receiver = Receiver::start().await;
    create_webhook(
        &app,
        key,
        json!({"url": receiver.url, "enabled-events": ["workflow-run.created",
            "workflow-run.completed", "workflow-run.errored"]}),
    )
    .await;
    let template = app.create_template(key).await;
    let first = "object.attributes.fields['name-first'].value";
    let last = "object.attributes.fields['name-last'].value";
    let (in_trigger, _) = published_workflow(
        &app,
        key,
        json!({"trigger": {"event": "inquiry.created", "condition": format!("{first} + 1 == 2")},
               "steps": [{"id": "tag", "action": "add-tag", "with": {"tag": "x"}}]}),
    )
    .await;
    let (in_branch, _) = published_workflow(
        &app,
        key,
        json!({"trigger": {"event": "inquiry.created"},
               "steps": [{"id": "route", "branches": [
                   {"condition": format!("{{'x': 1}}[{first}] == 1"), "steps": []}]}]}),
    )
    .await;
    let (in_step, _) = published_workflow(
        &app,
        key,
        json!({"trigger": {"event": "inquiry.created"},
               "steps": [{"id": "tag", "action": "add-tag", "with": {"tag": "x"},
                          "condition": format!("{last} / 2 == 1")}]}),
    )
    .await;
    let inquiry = id_of(
        &app.create_inquiry(
            key,
            &template,
            json!({"name-first": CANARY, "name-last": CANARY}),
        )
        .await,
    );
    app.drain().await;

    let mut run_ids = vec![];
    for (workflow, expected) in [
        (
            &in_trigger,
            "trigger condition: the condition could not be evaluated: `+` cannot be applied to \
             (string, int) (line 1, column 46)",
        ),
        (
            &in_branch,
            // The key looked up is the name: not shown, and either index may have missed.
            "step `route`: branch condition: the condition could not be evaluated: no such key \
             (line 1, column 9; line 1, column 34)",
        ),
        (
            &in_step,
            "step `tag`: step condition: the condition could not be evaluated: `/` cannot be \
             applied to (string, int) (line 1, column 45)",
        ),
    ] {
        let runs = runs_of(&app, key, workflow).await;
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        assert_eq!(run["attributes"]["status"], "errored", "{run}");
        assert_eq!(run["attributes"]["error"], expected);
        assert!(!run.to_string().contains(CANARY), "{run}");
        run_ids.push(run["id"].as_str().unwrap().to_owned());
    }

    // The runs' own events, as the Events API serves them and as the webhook received them.
    let mut run_events = 0;
    for run in &run_ids {
        let events = expect_status(
            app.get(key, &format!("/api/v1/events?filter[object-id]={run}"))
                .await,
            StatusCode::OK,
        )
        .await;
        run_events += events["data"].as_array().unwrap().len();
        assert!(!events.to_string().contains(CANARY), "{events}");
    }
    assert_eq!(
        run_events, 5,
        "three created, two errored (the trigger's never started)"
    );
    let delivered = receiver.received();
    assert!(delivered.len() >= run_events, "{}", delivered.len());
    for delivery in &delivered {
        let body = String::from_utf8_lossy(&delivery.body);
        assert!(body.contains("workflow-run."), "{body}");
        assert!(!body.contains(CANARY), "{body}");
    }
    // Nowhere in the database in plaintext (the inquiry's own data is sealed).
    assert!(!contains(&stored_bytes(&app).await, CANARY));

    // Redacted: nothing about the inquiry is readable any more, runs and events included.
    expect_status(
        app.delete(key, &format!("/api/v1/inquiries/{inquiry}"))
            .await,
        StatusCode::OK,
    )
    .await;
    for path in [
        format!("/api/v1/inquiries/{inquiry}"),
        "/api/v1/events?page[size]=100".to_owned(),
        format!("{RUNS}?page[size]=100"),
    ] {
        let shown = expect_status(app.get(key, &path).await, StatusCode::OK).await;
        assert!(!shown.to_string().contains(CANARY), "{path}: {shown}");
    }
    assert!(!contains(&stored_bytes(&app).await, CANARY));
}

backend_tests!(
    workflow_management_and_validation,
    conditions_cannot_stall_other_tenants,
    condition_errors_carry_no_personal_value,
    runs_follow_triggers_conditions_and_branches,
    https_requests_are_signed_and_retried,
    connect_runs_itself_with_workflows,
    workflows_that_trigger_themselves_stop,
);
