//! Events: one per state change, written with it, ordered by a per-organization sequence.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, expect_error, expect_status, spawn_app};

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
        StatusCode::UNPROCESSABLE_ENTITY,
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

backend_tests!(
    every_change_writes_one_event_in_order,
    template_versions_write_their_events
);
