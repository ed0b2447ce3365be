//! Inquiry templates: validation, versions, publishing, and version locking.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, expect_error, expect_status, spawn_app, standard_template};

async fn creates_lists_and_retrieves_templates(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let created = expect_status(
        app.post(key, "/api/v1/inquiry-templates", &json!({"data": {"type": "inquiry-template", "attributes": standard_template("Retail KYC")}})).await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["data"]["id"].as_str().unwrap();
    assert!(id.starts_with("itmpl_"));
    let attributes = &created["data"]["attributes"];
    assert_eq!(attributes["name"], "Retail KYC");
    assert_eq!(attributes["field-schemas"][0]["key"], "name-first");
    assert_eq!(
        attributes["expiration"]["inquiry-seconds"], 86400,
        "defaults are filled in"
    );
    let version_id = created["data"]["relationships"]["latest-published-version"]["data"]["id"]
        .as_str()
        .unwrap();

    let fetched = expect_status(
        app.get(
            key,
            &format!("/api/v1/inquiry-templates/{id}?include=latest-published-version"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(fetched["data"]["attributes"], *attributes);
    assert_eq!(fetched["included"][0]["id"], version_id);
    assert_eq!(fetched["included"][0]["attributes"]["status"], "published");
    assert_eq!(fetched["included"][0]["attributes"]["version-number"], 1);

    assert_eq!(
        app.list_ids(key, "/api/v1/inquiry-templates").await,
        vec![id.to_owned()]
    );
    expect_error(
        app.get(key, "/api/v1/inquiry-templates/itmpl_nope").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

async fn invalid_definitions_are_refused_with_pointers(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let cases = [
        (
            json!({"name": "T", "field-schemas": [{"key": "a", "type": "string"}, {"key": "a", "type": "date"}]}),
            "/data/attributes/field-schemas/1/key",
        ),
        (
            json!({"name": "T", "field-schemas": [{"key": "tier", "type": "choices"}]}),
            "/data/attributes/field-schemas/0",
        ),
        (
            json!({"name": "T", "field-schemas": [{"key": "Bad Key", "type": "string"}]}),
            "/data/attributes/field-schemas/0/key",
        ),
        (
            json!({"name": "T", "field-schemas": [{"key": "a", "type": "colour"}]}),
            "/data/attributes/field-schemas/0/type",
        ),
        (
            json!({"name": "T", "field-schemas": [], "verifications": [{"type": "telepathy"}]}),
            "/data/attributes/verifications/0/type",
        ),
        (
            json!({"name": "T", "field-schemas": [], "verifications": [{"type": "government-id", "config": {"minimum-age": 18, "favourite": 1}}]}),
            "/data/attributes/verifications/0/config/favourite",
        ),
        (
            json!({"name": "T", "field-schemas": [], "expiration": {"inquiry-seconds": 1}}),
            "/data/attributes/expiration/inquiry-seconds",
        ),
        (
            json!({"name": "", "field-schemas": []}),
            "/data/attributes/name",
        ),
        (json!({"name": "T"}), "/data/attributes"),
        (
            json!({"name": "T", "field-schemas": [], "colour": "red"}),
            "/data/attributes/colour",
        ),
    ];
    for (attributes, pointer) in cases {
        let response = app
            .post(
                key,
                "/api/v1/inquiry-templates",
                &json!({"data": {"attributes": attributes}}),
            )
            .await;
        let status = response.status();
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{attributes}: {status}"
        );
        let error = expect_error(response, status).await;
        let actual = error["source"]["pointer"].as_str().unwrap_or_default();
        assert!(
            actual.starts_with(pointer),
            "{attributes}: pointer {actual}, expected {pointer}"
        );
    }
    assert!(
        app.list_ids(key, "/api/v1/inquiry-templates")
            .await
            .is_empty(),
        "nothing was created"
    );
}

async fn versions_are_immutable_and_inquiries_lock_theirs(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let before = app
        .create_inquiry(key, &template, json!({"name-first": "Ada"}))
        .await;
    let v1 = before["data"]["relationships"]["inquiry-template-version"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let v2_definition = json!({"field-schemas": [{"key": "name-first", "type": "string"}, {"key": "nickname", "type": "string"}]});
    let v2 = expect_status(
        app.post(
            key,
            &format!("/api/v1/inquiry-templates/{template}/versions"),
            &json!({"data": {"attributes": v2_definition}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let v2_id = v2["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v2["data"]["attributes"]["status"], "draft");
    assert_eq!(v2["data"]["attributes"]["version-number"], 2);

    // A draft does not change what new inquiries use, and cannot be used directly.
    let still_v1 = app.create_inquiry(key, &template, json!({})).await;
    assert_eq!(
        still_v1["data"]["relationships"]["inquiry-template-version"]["data"]["id"],
        v1.as_str()
    );
    let pinned_draft = app
        .post(
            key,
            "/api/v1/inquiries",
            &json!({"data": {"attributes": {"inquiry-template-version-id": v2_id}}}),
        )
        .await;
    expect_error(pinned_draft, StatusCode::UNPROCESSABLE_ENTITY).await;

    let published = expect_status(
        app.post(
            key,
            &format!("/api/v1/inquiry-template-versions/{v2_id}/publish"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(published["data"]["attributes"]["status"], "published");
    expect_error(
        app.post(
            key,
            &format!("/api/v1/inquiry-template-versions/{v2_id}/publish"),
            &json!({}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let old = expect_status(
        app.get(key, &format!("/api/v1/inquiry-template-versions/{v1}"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(old["data"]["attributes"]["status"], "superseded");

    let after = app
        .create_inquiry(key, &template, json!({"nickname": "Countess"}))
        .await;
    assert_eq!(
        after["data"]["relationships"]["inquiry-template-version"]["data"]["id"],
        v2_id.as_str()
    );
    assert_eq!(
        after["data"]["attributes"]["fields"]["nickname"]["value"],
        "Countess"
    );

    // The earlier inquiry keeps its version: `nickname` is not one of its fields.
    let before_id = before["data"]["id"].as_str().unwrap();
    let refused = app
        .patch(
            key,
            &format!("/api/v1/inquiries/{before_id}"),
            &json!({"data": {"attributes": {"fields": {"nickname": "x"}}}}),
        )
        .await;
    expect_error(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    // …and pinning the old version still works.
    let pinned = expect_status(
        app.post(
            key,
            "/api/v1/inquiries",
            &json!({"data": {"attributes": {"inquiry-template-version-id": v1}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert!(
        pinned["data"]["attributes"]["fields"]
            .get("nickname")
            .is_none()
    );

    let versions = app
        .list_ids(
            key,
            &format!("/api/v1/inquiry-template-versions?filter[inquiry-template-id]={template}"),
        )
        .await;
    assert_eq!(versions, vec![v2_id, v1]);
    expect_error(
        app.get(key, "/api/v1/inquiry-template-versions").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

backend_tests!(
    creates_lists_and_retrieves_templates,
    invalid_definitions_are_refused_with_pointers,
    versions_are_immutable_and_inquiries_lock_theirs,
);
