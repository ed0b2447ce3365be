//! Connect connections: the status machine from both ends, events to both organizations,
//! refusals that change nothing, isolation from third organizations and the other environment,
//! and lists in both directions.

use idshare_domain::environment::Environment;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, expect_error, expect_status, spawn_app};

const CONNECTIONS: &str = "/api/v1/connect/connections";

fn create_body(destination: &str) -> Value {
    json!({"data": {"attributes": {"destination-organization-id": destination}}})
}

/// Creates a connection from `key`'s organization to `destination`; returns the document.
async fn connect(app: &TestApp, key: &str, destination: &str) -> Value {
    expect_status(
        app.post(key, CONNECTIONS, &create_body(destination)).await,
        StatusCode::CREATED,
    )
    .await
}

async fn action(app: &TestApp, key: &str, id: &str, verb: &str) -> reqwest::Response {
    app.post(key, &format!("{CONNECTIONS}/{id}/{verb}"), &json!({}))
        .await
}

/// Applies an action that must succeed; returns the resource.
async fn act_ok(app: &TestApp, key: &str, id: &str, verb: &str) -> Value {
    expect_status(action(app, key, id, verb).await, StatusCode::OK).await["data"].clone()
}

/// `(name, direction in the payload)` of the events about `object`, newest first.
async fn events_about(app: &TestApp, key: &str, object: &str) -> Vec<(String, String)> {
    let body = expect_status(
        app.get(
            key,
            &format!("/api/v1/events?filter[object-id]={object}&page[size]=100"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let attributes = &e["attributes"];
            assert_eq!(
                e["relationships"]["object"]["data"]["type"],
                "connect/connection"
            );
            assert_eq!(attributes["payload"]["data"]["id"], object);
            (
                attributes["name"].as_str().unwrap().to_owned(),
                attributes["payload"]["data"]["attributes"]["direction"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

fn named(names: &[&str], direction: &str) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| (format!("connect/connection.{n}"), direction.to_owned()))
        .collect()
}

async fn lifecycle_from_both_sides_with_events_to_both(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.tenant("Source").await;
    let b = app.tenant("Destination").await;

    let created = connect(&app, &a.sandbox, b.org_id.as_str()).await;
    let data = &created["data"];
    let id = data["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cxn_"), "{id}");
    assert_eq!(data["type"], "connect/connection");
    let attributes = &data["attributes"];
    assert_eq!(attributes["status"], "pending");
    assert_eq!(attributes["source-organization-id"], a.org_id.as_str());
    assert_eq!(attributes["destination-organization-id"], b.org_id.as_str());
    assert_eq!(attributes["direction"], "outbound");
    assert!(attributes["created-at"].is_string());
    assert_eq!(attributes["created-at"], attributes["updated-at"]);
    assert_eq!(attributes["activated-at"], Value::Null);
    assert_eq!(attributes["deactivated-at"], Value::Null);
    let creator = &data["relationships"]["creator"]["data"];
    assert_eq!(creator["type"], "api-key");
    assert!(creator["id"].as_str().unwrap().starts_with("api_"));

    // Both ends retrieve it, each from its own side.
    let path = format!("{CONNECTIONS}/{id}");
    let as_source = expect_status(app.get(&a.sandbox, &path).await, StatusCode::OK).await;
    assert_eq!(as_source["data"], *data);
    let as_destination = expect_status(app.get(&b.sandbox, &path).await, StatusCode::OK).await;
    assert_eq!(as_destination["data"]["attributes"]["direction"], "inbound");
    assert_eq!(
        as_destination["data"]["relationships"],
        data["relationships"]
    );

    // The destination activates.
    let active = act_ok(&app, &b.sandbox, &id, "activate").await;
    assert_eq!(active["attributes"]["status"], "active");
    assert_eq!(active["attributes"]["direction"], "inbound");
    assert!(active["attributes"]["activated-at"].is_string());
    // The destination deactivates.
    let inactive = act_ok(&app, &b.sandbox, &id, "deactivate").await;
    assert_eq!(inactive["attributes"]["status"], "inactive");
    assert!(inactive["attributes"]["deactivated-at"].is_string());
    // The source reactivates: back to pending, for the destination to accept again.
    let pending = act_ok(&app, &a.sandbox, &id, "reactivate").await;
    assert_eq!(pending["attributes"]["status"], "pending");
    assert_eq!(pending["attributes"]["direction"], "outbound");
    let active = act_ok(&app, &b.sandbox, &id, "activate").await;
    assert_eq!(active["attributes"]["status"], "active");
    // The source deactivates too.
    let inactive = act_ok(&app, &a.sandbox, &id, "deactivate").await;
    assert_eq!(inactive["attributes"]["status"], "inactive");
    // And a pending connection can be deactivated (by the source here).
    act_ok(&app, &a.sandbox, &id, "reactivate").await;
    let inactive = act_ok(&app, &a.sandbox, &id, "deactivate").await;
    assert_eq!(inactive["attributes"]["status"], "inactive");
    let fetched = expect_status(app.get(&b.sandbox, &path).await, StatusCode::OK).await;
    assert_eq!(fetched["data"]["attributes"]["status"], "inactive");

    // Every change is an event in both organizations, each payload from that org's side.
    let history = [
        "deactivated",
        "reactivated",
        "deactivated",
        "activated",
        "reactivated",
        "deactivated",
        "activated",
        "created",
    ];
    assert_eq!(
        events_about(&app, &a.sandbox, &id).await,
        named(&history, "outbound")
    );
    assert_eq!(
        events_about(&app, &b.sandbox, &id).await,
        named(&history, "inbound")
    );
    // Nothing in the other environment.
    for key in [&a.production, &b.production] {
        assert!(app.list_ids(key, "/api/v1/events").await.is_empty());
    }
}

/// What both ends see: compared before and after refused requests.
#[derive(Debug, PartialEq)]
struct Seen {
    connection: Value,
    source_list: Vec<String>,
    destination_list: Vec<String>,
    source_events: Vec<String>,
    destination_events: Vec<String>,
}

async fn seen(app: &TestApp, source: &str, destination: &str, id: &str) -> Seen {
    let connection = expect_status(
        app.get(source, &format!("{CONNECTIONS}/{id}")).await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    Seen {
        connection,
        source_list: app.list_ids(source, CONNECTIONS).await,
        destination_list: app.list_ids(destination, CONNECTIONS).await,
        source_events: app.list_ids(source, "/api/v1/events").await,
        destination_events: app.list_ids(destination, "/api/v1/events").await,
    }
}

async fn refusals_are_clear_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.tenant("Source").await;
    let b = app.tenant("Destination").await;
    let id = connect(&app, &a.sandbox, b.org_id.as_str()).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = seen(&app, &a.sandbox, &b.sandbox, &id).await;

    // Wrong side: 403, naming who may do it.
    let error = expect_error(
        action(&app, &a.sandbox, &id, "activate").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        error["details"],
        "Only the destination organization of a connection can activate it; yours is its source."
    );
    let error = expect_error(
        action(&app, &b.sandbox, &id, "reactivate").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        error["details"],
        "Only the source organization of a connection can reactivate it; yours is its destination."
    );
    // Wrong status: 409, naming the current status.
    let error = expect_error(
        action(&app, &a.sandbox, &id, "reactivate").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        error["details"],
        "Cannot reactivate a connection whose status is `pending`."
    );

    // Unknown or malformed destination: 422 pointing at the attribute.
    for destination in ["org_123456789ABCDEFGHJKLMNPQ", "nope", ""] {
        let error = expect_error(
            app.post(&a.sandbox, CONNECTIONS, &create_body(destination))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(
            error["source"]["pointer"], "/data/attributes/destination-organization-id",
            "{destination}"
        );
        let details = error["details"].as_str().unwrap();
        assert!(
            details.starts_with(&format!("No organization `{destination}` exists")),
            "{details}"
        );
    }
    // A second live connection to the same organization: 409.
    let error = expect_error(
        app.post(&a.sandbox, CONNECTIONS, &create_body(b.org_id.as_str()))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    let details = error["details"].as_str().unwrap();
    assert!(
        details.starts_with("A connection to this organization already exists"),
        "{details}"
    );
    assert!(
        details.contains(&id) && details.contains("reactivated"),
        "{details}"
    );

    // Malformed bodies: 400 with a pointer.
    for (body, pointer) in [
        // A missing member is pointed at through the object that lacks it.
        (json!({}), "/"),
        (json!({"data": {}}), "/data"),
        (json!({"data": {"attributes": {}}}), "/data/attributes"),
        (
            json!({"data": {"attributes": {"destination-organization-id": 7}}}),
            "/data/attributes/destination-organization-id",
        ),
        (
            json!({"data": {"attributes": {"destination-organization-id": b.org_id.as_str(), "name": "x"}}}),
            "/data/attributes/name",
        ),
        (
            json!({"data": {"attributes": {"destination-organization-id": b.org_id.as_str()}}, "extra": 1}),
            "/extra",
        ),
    ] {
        let error = expect_error(
            app.post(&a.sandbox, CONNECTIONS, &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(error["source"]["pointer"], pointer, "{body}");
        assert!(
            error["details"]
                .as_str()
                .unwrap()
                .starts_with(&format!("Invalid value at `{pointer}`")),
            "{error}"
        );
    }
    let error = expect_error(
        app.post(
            &b.sandbox,
            &format!("{CONNECTIONS}/{id}/activate"),
            &json!({"meta": {"comment": "hi"}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["source"]["pointer"], "/meta/comment");
    let response = app
        .request(reqwest::Method::POST, &a.sandbox, CONNECTIONS)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST).await;

    // Missing permission: 403 naming it, for every endpoint, even on the right side.
    let reader = app
        .create_key(&a.org_id, Environment::Sandbox, Some("inquiry.read"))
        .await;
    let connect_reader = app
        .create_key(&b.org_id, Environment::Sandbox, Some("connect.read"))
        .await;
    for (key, method, path, permission) in [
        (&reader, "GET", CONNECTIONS.to_owned(), "connect.read"),
        (
            &reader,
            "GET",
            format!("{CONNECTIONS}/{id}"),
            "connect.read",
        ),
        (&reader, "POST", CONNECTIONS.to_owned(), "connect.write"),
        (
            &reader,
            "POST",
            format!("{CONNECTIONS}/{id}/deactivate"),
            "connect.write",
        ),
        (
            &reader,
            "POST",
            format!("{CONNECTIONS}/{id}/reactivate"),
            "connect.write",
        ),
        (
            &connect_reader,
            "POST",
            format!("{CONNECTIONS}/{id}/activate"),
            "connect.write",
        ),
        (
            &connect_reader,
            "POST",
            format!("{CONNECTIONS}/{id}/deactivate"),
            "connect.write",
        ),
        (
            &connect_reader,
            "POST",
            CONNECTIONS.to_owned(),
            "connect.write",
        ),
    ] {
        let response = match method {
            "GET" => app.get(key, &path).await,
            _ => app.post(key, &path, &create_body(a.org_id.as_str())).await,
        };
        let error = expect_error(response, StatusCode::FORBIDDEN).await;
        assert!(
            error["details"]
                .as_str()
                .unwrap()
                .contains(&format!("`{permission}`")),
            "{method} {path}: {error}"
        );
    }
    // connect.read is enough to look.
    expect_status(
        app.get(&connect_reader, &format!("{CONNECTIONS}/{id}"))
            .await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(
        seen(&app, &a.sandbox, &b.sandbox, &id).await,
        before,
        "refusals changed nothing"
    );

    // The status refusals further along the machine.
    act_ok(&app, &b.sandbox, &id, "activate").await;
    let before = seen(&app, &a.sandbox, &b.sandbox, &id).await;
    for (key, verb, status, details) in [
        (
            &b.sandbox,
            "activate",
            StatusCode::CONFLICT,
            "Cannot activate a connection whose status is `active`.",
        ),
        (
            &a.sandbox,
            "reactivate",
            StatusCode::CONFLICT,
            "Cannot reactivate a connection whose status is `active`.",
        ),
        (
            &a.sandbox,
            "activate",
            StatusCode::FORBIDDEN,
            "Only the destination organization of a connection can activate it; yours is its source.",
        ),
    ] {
        let error = expect_error(action(&app, key, &id, verb).await, status).await;
        assert_eq!(error["details"], details, "{verb}");
    }
    assert_eq!(seen(&app, &a.sandbox, &b.sandbox, &id).await, before);

    act_ok(&app, &a.sandbox, &id, "deactivate").await;
    let before = seen(&app, &a.sandbox, &b.sandbox, &id).await;
    for (key, verb, status, details) in [
        (
            &b.sandbox,
            "deactivate",
            StatusCode::CONFLICT,
            "Cannot deactivate a connection whose status is `inactive`.",
        ),
        (
            &a.sandbox,
            "deactivate",
            StatusCode::CONFLICT,
            "Cannot deactivate a connection whose status is `inactive`.",
        ),
        (
            &b.sandbox,
            "activate",
            StatusCode::CONFLICT,
            "Cannot activate a connection whose status is `inactive`.",
        ),
        (
            &b.sandbox,
            "reactivate",
            StatusCode::FORBIDDEN,
            "Only the source organization of a connection can reactivate it; yours is its destination.",
        ),
    ] {
        let error = expect_error(action(&app, key, &id, verb).await, status).await;
        assert_eq!(error["details"], details, "{verb}");
    }
    assert_eq!(seen(&app, &a.sandbox, &b.sandbox, &id).await, before);
}

async fn one_live_connection_per_pair_and_environment(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.tenant("Source").await;
    let b = app.tenant("Destination").await;
    let first = connect(&app, &a.sandbox, b.org_id.as_str()).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The other direction and the other environment are other connections.
    let reverse = connect(&app, &b.sandbox, a.org_id.as_str()).await;
    assert_eq!(reverse["data"]["attributes"]["direction"], "outbound");
    connect(&app, &a.production, b.org_id.as_str()).await;
    // Still one live connection A → B in sandbox, whether pending or active.
    act_ok(&app, &b.sandbox, &first, "activate").await;
    expect_error(
        app.post(&a.sandbox, CONNECTIONS, &create_body(b.org_id.as_str()))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    // Once it is inactive, a new one may be created…
    act_ok(&app, &b.sandbox, &first, "deactivate").await;
    let second = connect(&app, &a.sandbox, b.org_id.as_str()).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);
    // …and then the old one cannot come back while the new one is live.
    let error = expect_error(
        action(&app, &a.sandbox, &first, "reactivate").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        error["details"].as_str().unwrap().contains(&second),
        "{error}"
    );
    let fetched = expect_status(
        app.get(&a.sandbox, &format!("{CONNECTIONS}/{first}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(fetched["data"]["attributes"]["status"], "inactive");
    // Never deleted: both stay listed.
    let ids = app
        .list_ids(
            &a.sandbox,
            &format!(
                "{CONNECTIONS}?filter[destination-organization-id]={}",
                b.org_id
            ),
        )
        .await;
    assert_eq!(ids, vec![second.clone(), first.clone()]);

    // Concurrent creates: exactly one wins.
    let c = app.tenant("Contended").await;
    let attempts = (0..12).map(|_| {
        let app = &app;
        let key = a.sandbox.clone();
        let destination = c.org_id.to_string();
        async move {
            app.post(&key, CONNECTIONS, &create_body(&destination))
                .await
                .status()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let to_c = app
        .list_ids(
            &c.sandbox,
            &format!("{CONNECTIONS}?filter[direction]=inbound"),
        )
        .await;
    assert_eq!(to_c.len(), 1);
    assert_eq!(
        events_about(&app, &c.sandbox, &to_c[0]).await,
        named(&["created"], "inbound"),
        "one connection, one event"
    );
}

async fn an_organization_may_connect_to_itself(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.tenant("Solo").await;
    let created = connect(&app, &a.sandbox, a.org_id.as_str()).await;
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["data"]["attributes"]["direction"], "outbound");
    // It holds both ends, so it may take every action.
    act_ok(&app, &a.sandbox, &id, "activate").await;
    act_ok(&app, &a.sandbox, &id, "deactivate").await;
    let pending = act_ok(&app, &a.sandbox, &id, "reactivate").await;
    assert_eq!(pending["attributes"]["status"], "pending");
    // Listed once, in both directions; each event recorded once.
    for filter in [
        "",
        "?filter[direction]=outbound",
        "?filter[direction]=inbound",
    ] {
        assert_eq!(
            app.list_ids(&a.sandbox, &format!("{CONNECTIONS}{filter}"))
                .await,
            vec![id.clone()],
            "{filter}"
        );
    }
    assert_eq!(
        events_about(&app, &a.sandbox, &id).await,
        named(
            &["reactivated", "deactivated", "activated", "created"],
            "outbound"
        )
    );
}

async fn strangers_and_the_other_environment_get_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.tenant("Source").await;
    let b = app.tenant("Destination").await;
    let c = app.tenant("Stranger").await;
    // C has a connection of its own, so its lists are not empty by construction.
    let own = connect(&app, &c.sandbox, c.org_id.as_str()).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = connect(&app, &a.sandbox, b.org_id.as_str()).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = seen(&app, &a.sandbox, &b.sandbox, &id).await;

    let callers = [
        ("a third organization", &c.sandbox),
        ("the source's production key", &a.production),
        ("the destination's production key", &b.production),
    ];
    for (who, key) in callers {
        let get = app.get(key, &format!("{CONNECTIONS}/{id}")).await;
        let error = expect_error(get, StatusCode::NOT_FOUND).await;
        assert_eq!(error["title"], "Record not found", "{who}");
        for verb in ["activate", "deactivate", "reactivate"] {
            let response = action(&app, key, &id, verb).await;
            let status = response.status();
            let text = response.text().await.unwrap();
            assert_eq!(status, StatusCode::NOT_FOUND, "{verb} as {who}: {text}");
            assert!(!text.contains(&id), "{verb} as {who}: {text}");
        }
        let list = app.list_ids(key, CONNECTIONS).await;
        assert!(!list.contains(&id), "{who}: {list:?}");
        // Naming A's connection as a cursor is a bad cursor, not a glimpse of it.
        for parameter in ["page[after]", "page[before]"] {
            let error = expect_error(
                app.get(key, &format!("{CONNECTIONS}?{parameter}={id}"))
                    .await,
                StatusCode::BAD_REQUEST,
            )
            .await;
            assert_eq!(error["source"]["parameter"], parameter);
        }
        let filtered = expect_status(
            app.get(
                key,
                &format!(
                    "{CONNECTIONS}?filter[destination-organization-id]={}",
                    b.org_id
                ),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(filtered["data"], json!([]), "{who}");
    }
    assert_eq!(app.list_ids(&c.sandbox, CONNECTIONS).await, vec![own]);
    // Unknown and malformed ids are the same 404.
    for unknown in [
        "cxn_123456789ABCDEFGHJKLMNPQ",
        "nope",
        "inq_123456789ABCDEFGHJKLMNPQ",
    ] {
        expect_error(
            app.get(&a.sandbox, &format!("{CONNECTIONS}/{unknown}"))
                .await,
            StatusCode::NOT_FOUND,
        )
        .await;
        expect_error(
            action(&app, &b.sandbox, unknown, "activate").await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    assert_eq!(seen(&app, &a.sandbox, &b.sandbox, &id).await, before);
    for key in [&c.sandbox, &a.production, &b.production] {
        let events = expect_status(
            app.get(key, &format!("/api/v1/events?filter[object-id]={id}"))
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(events["data"], json!([]));
    }
}

async fn lists_show_both_directions_with_filters_and_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.tenant("Hub").await;
    let b = app.tenant("B").await;
    let c = app.tenant("C").await;
    let d = app.tenant("D").await;
    let id = |doc: Value| doc["data"]["id"].as_str().unwrap().to_owned();
    // Oldest first: A → B, B → A, A → C, D → A, A → D, and C → B (not A's).
    let a_b = id(connect(&app, &a.sandbox, b.org_id.as_str()).await);
    let b_a = id(connect(&app, &b.sandbox, a.org_id.as_str()).await);
    let a_c = id(connect(&app, &a.sandbox, c.org_id.as_str()).await);
    let d_a = id(connect(&app, &d.sandbox, a.org_id.as_str()).await);
    let a_d = id(connect(&app, &a.sandbox, d.org_id.as_str()).await);
    let c_b = id(connect(&app, &c.sandbox, b.org_id.as_str()).await);
    act_ok(&app, &b.sandbox, &a_b, "activate").await;
    act_ok(&app, &a.sandbox, &d_a, "activate").await;
    act_ok(&app, &c.sandbox, &a_c, "deactivate").await;

    let newest_first = vec![
        a_d.clone(),
        d_a.clone(),
        a_c.clone(),
        b_a.clone(),
        a_b.clone(),
    ];
    let all = expect_status(
        app.get(&a.sandbox, &format!("{CONNECTIONS}?page[size]=100"))
            .await,
        StatusCode::OK,
    )
    .await;
    let listed: Vec<(String, String)> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["attributes"]["direction"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let direction = |id: &String| {
        if [&a_b, &a_c, &a_d].contains(&id) {
            "outbound"
        } else {
            "inbound"
        }
    };
    assert_eq!(
        listed,
        newest_first
            .iter()
            .map(|i| (i.clone(), direction(i).to_owned()))
            .collect::<Vec<_>>()
    );
    assert_eq!(all["links"], json!({"prev": null, "next": null}));

    // B sees only its own: C → B and B → A and A → B, with its own directions.
    let b_list = expect_status(app.get(&b.sandbox, CONNECTIONS).await, StatusCode::OK).await;
    let b_seen: Vec<(&str, &str)> = b_list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap(),
                r["attributes"]["direction"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        b_seen,
        vec![
            (c_b.as_str(), "inbound"),
            (b_a.as_str(), "outbound"),
            (a_b.as_str(), "inbound")
        ]
    );

    // Filters, alone and together, keep newest-first order.
    let list = |query: String| {
        let app = &app;
        let key = a.sandbox.clone();
        async move { app.list_ids(&key, &format!("{CONNECTIONS}?{query}")).await }
    };
    assert_eq!(
        list("filter[direction]=outbound".into()).await,
        vec![a_d.clone(), a_c.clone(), a_b.clone()]
    );
    assert_eq!(
        list("filter[direction]=inbound".into()).await,
        vec![d_a.clone(), b_a.clone()]
    );
    assert_eq!(
        list("filter[status]=active".into()).await,
        vec![d_a.clone(), a_b.clone()]
    );
    assert_eq!(
        list("filter[status]=inactive".into()).await,
        vec![a_c.clone()]
    );
    assert_eq!(
        list("filter[status]=pending".into()).await,
        vec![a_d.clone(), b_a.clone()]
    );
    assert_eq!(
        list(format!("filter[destination-organization-id]={}", a.org_id)).await,
        vec![d_a.clone(), b_a.clone()]
    );
    assert_eq!(
        list(format!("filter[destination-organization-id]={}", d.org_id)).await,
        vec![a_d.clone()]
    );
    assert_eq!(
        list(format!(
            "filter[status]=active&filter[direction]=outbound&filter[destination-organization-id]={}",
            b.org_id
        ))
        .await,
        vec![a_b.clone()]
    );
    assert!(
        list(format!(
            "filter[direction]=inbound&filter[destination-organization-id]={}",
            b.org_id
        ))
        .await
        .is_empty()
    );

    // Pages of two, forwards through `links.next` and back through `links.prev`.
    assert_eq!(list("page[size]=2".into()).await, newest_first);
    let first = expect_status(
        app.get(&a.sandbox, &format!("{CONNECTIONS}?page[size]=2"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(first["links"]["prev"], Value::Null);
    let next = first["links"]["next"].as_str().unwrap().to_owned();
    let second = expect_status(app.get(&a.sandbox, &next).await, StatusCode::OK).await;
    let ids = |page: &Value| {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&second), newest_first[2..4].to_vec());
    let prev = second["links"]["prev"].as_str().unwrap().to_owned();
    let back = expect_status(app.get(&a.sandbox, &prev).await, StatusCode::OK).await;
    assert_eq!(ids(&back), newest_first[0..2].to_vec());
    // Filters survive in the links.
    let filtered = expect_status(
        app.get(
            &a.sandbox,
            &format!("{CONNECTIONS}?filter[direction]=outbound&page[size]=1"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let next = filtered["links"]["next"].as_str().unwrap();
    assert!(next.contains("filter%5Bdirection%5D=outbound"), "{next}");
    // Sparse fieldsets.
    let sparse = expect_status(
        app.get(
            &a.sandbox,
            &format!("{CONNECTIONS}/{a_b}?fields[connect/connection]=status,direction"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        sparse["data"]["attributes"],
        json!({"status": "active", "direction": "outbound"})
    );

    // Bad filters and cursors are 400s naming the parameter.
    for (query, parameter) in [
        ("filter[status]=open", "filter[status]"),
        ("filter[direction]=sideways", "filter[direction]"),
        (
            "filter[destination-organization-id]=acme",
            "filter[destination-organization-id]",
        ),
        (
            "filter[source-organization-id]=x",
            "filter[source-organization-id]",
        ),
        ("page[after]=cxn_123456789ABCDEFGHJKLMNPQ", "page[after]"),
        ("page[size]=0", "page[size]"),
    ] {
        let error = expect_error(
            app.get(&a.sandbox, &format!("{CONNECTIONS}?{query}")).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(error["source"]["parameter"], parameter, "{query}");
    }
    // C → B is B's and C's business only: not a cursor for A.
    expect_error(
        app.get(&a.sandbox, &format!("{CONNECTIONS}?page[after]={c_b}"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

backend_tests!(
    lifecycle_from_both_sides_with_events_to_both,
    refusals_are_clear_and_change_nothing,
    one_live_connection_per_pair_and_environment,
    an_organization_may_connect_to_itself,
    strangers_and_the_other_environment_get_404,
    lists_show_both_directions_with_filters_and_pages,
);
