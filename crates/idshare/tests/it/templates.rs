//! Inquiry templates: validation, versions, publishing, and version locking.

use reqwest::StatusCode;
use serde_json::{Value, json};

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
        StatusCode::CONFLICT,
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

/// `n` options of `chars` characters each.
fn options(n: usize, chars: usize) -> Vec<String> {
    (0..n).map(|i| format!("{i:0chars$}")).collect()
}

/// Issue 10: 50,000 options were accepted, and every inquiry read and write parsed them again
/// (quadratically) inside the write transaction. Each cap is now a 422 pointing at what is over
/// it, for templates and for versions, and nothing is created.
async fn templates_over_a_cap_are_refused_and_create_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let fields = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"key": format!("f-{i}"), "type": "string"}))
            .collect()
    };
    // Each definition, and the errors it gets: (pointer, what the details say).
    let cases = [
        (
            // The template: over the size and over the options.
            json!({"field-schemas": [{"key": "plan", "type": "multi_choices",
                                      "config": {"options": options(50_000, 5)}}]}),
            vec![
                ("/data/attributes/field-schemas", "at most 256 KiB"),
                (
                    "/data/attributes/field-schemas/0/config/options",
                    "at most 1000 options; this one has 50000",
                ),
            ],
        ),
        (
            json!({"field-schemas": [{"key": "a", "type": "string"},
                                     {"key": "plan", "type": "choices",
                                      "config": {"options": options(1_001, 3)}}]}),
            vec![(
                "/data/attributes/field-schemas/1/config/options",
                "at most 1000 options",
            )],
        ),
        (
            json!({"field-schemas": fields(201)}),
            vec![("/data/attributes/field-schemas", "at most 200 fields")],
        ),
        (
            json!({"field-schemas": [{"key": "plan", "type": "choices",
                                      "config": {"options": ["a", "b".repeat(201)]}}]}),
            vec![(
                "/data/attributes/field-schemas/0/config/options/1",
                "at most 200 characters",
            )],
        ),
        (
            // Within every count, over the size (and under the 1 MiB body limit).
            json!({"field-schemas": [
                {"key": "a", "type": "choices", "config": {"options": options(1_000, 200)}},
                {"key": "b", "type": "choices", "config": {"options": options(1_000, 200)}}
            ]}),
            vec![("/data/attributes/field-schemas", "at most 256 KiB")],
        ),
    ];
    let refused = |response: reqwest::Response| async {
        let body = expect_status(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["source"]["pointer"].as_str().unwrap().to_owned(),
                    e["details"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    let template = app.create_template(key).await;
    for (definition, expected) in cases {
        let mut attributes = definition.clone();
        attributes["name"] = json!("Big");
        let created = refused(
            app.post(
                key,
                "/api/v1/inquiry-templates",
                &json!({"data": {"attributes": attributes}}),
            )
            .await,
        )
        .await;
        let versioned = refused(
            app.post(
                key,
                &format!("/api/v1/inquiry-templates/{template}/versions"),
                &json!({"data": {"attributes": definition}}),
            )
            .await,
        )
        .await;
        for errors in [created, versioned] {
            assert_eq!(errors.len(), expected.len(), "{errors:?}");
            for ((pointer, details), (expected_pointer, says)) in errors.iter().zip(&expected) {
                assert_eq!(pointer, expected_pointer, "{errors:?}");
                assert!(details.contains(says), "{errors:?}");
            }
        }
    }
    assert_eq!(
        app.list_ids(key, "/api/v1/inquiry-templates").await,
        std::slice::from_ref(&template),
        "no template was created"
    );
    assert_eq!(
        app.list_ids(
            key,
            &format!("/api/v1/inquiry-template-versions?filter[inquiry-template-id]={template}")
        )
        .await
        .len(),
        1,
        "no version was created"
    );
    let events = expect_status(app.get(key, "/api/v1/events").await, StatusCode::OK).await;
    let names: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attributes"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["inquiry-template.created"], "no other event");
}

/// A template at the caps (200 fields, about 200 KiB, one field with 1,000 options) is read on
/// every inquiry write and read of its organization. Many of those, each choosing among the
/// options 100,000 times, run while another organization creates inquiries: every request of
/// both succeeds. (Before the fix, each such write compared every item with every option inside
/// the write transaction.)
async fn a_large_template_does_not_stall_another_organizations_writes(backend: Backend) {
    let app = spawn_app(backend).await;
    let big = app.tenant("Big").await;
    let other = app.tenant("Other").await;
    let mut schemas: Vec<Value> = (0..199)
        .map(|i| json!({"key": format!("f-{i}"), "type": "string", "label": format!("{i:0900}")}))
        .collect();
    let offered = options(1_000, 5);
    schemas.push(json!({"key": "plan", "type": "multi_choices", "config": {"options": offered}}));
    let created = expect_status(
        app.post(
            &big.sandbox,
            "/api/v1/inquiry-templates",
            &json!({"data": {"attributes": {"name": "Large", "field-schemas": schemas}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let large = created["data"]["id"].as_str().unwrap().to_owned();
    let small = app.create_template(&other.sandbox).await;
    // Every option, a hundred times over: about 800 KB of JSON per request.
    let chosen: Vec<&String> = offered.iter().cycle().take(100_000).collect();

    let big_writes = (0..6).map(|_| async {
        let response = app
            .post(
                &big.sandbox,
                "/api/v1/inquiries",
                &json!({"data": {"attributes": {"inquiry-template-id": large,
                                                "fields": {"plan": chosen}}}}),
            )
            .await;
        let inquiry = expect_status(response, StatusCode::CREATED).await;
        let id = inquiry["data"]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            inquiry["data"]["attributes"]["fields"]["plan"]["value"]
                .as_array()
                .unwrap()
                .len(),
            1_000
        );
        let response = app
            .patch(
                &big.sandbox,
                &format!("/api/v1/inquiries/{id}"),
                &json!({"data": {"attributes": {"fields": {"plan": chosen, "f-0": "x"}}}}),
            )
            .await;
        expect_status(response, StatusCode::OK).await;
        let response = app
            .get(&big.sandbox, &format!("/api/v1/inquiries/{id}"))
            .await;
        expect_status(response, StatusCode::OK).await;
    });
    let other_writes = async {
        let mut statuses = vec![];
        for i in 0..20 {
            let response = app
                .post(
                    &other.sandbox,
                    "/api/v1/inquiries",
                    &json!({"data": {"attributes": {"inquiry-template-id": small,
                                                    "fields": {"name-first": format!("Ada {i}")}}}}),
                )
                .await;
            statuses.push(response.status());
        }
        statuses
    };
    let (_, statuses) = tokio::join!(futures::future::join_all(big_writes), other_writes);
    assert!(
        statuses.iter().all(|s| *s == StatusCode::CREATED),
        "{statuses:?}"
    );
    assert_eq!(
        app.list_ids(&other.sandbox, "/api/v1/inquiries")
            .await
            .len(),
        20
    );
}

backend_tests!(
    templates_over_a_cap_are_refused_and_create_nothing,
    a_large_template_does_not_stall_another_organizations_writes,
    creates_lists_and_retrieves_templates,
    invalid_definitions_are_refused_with_pointers,
    versions_are_immutable_and_inquiries_lock_theirs,
);
