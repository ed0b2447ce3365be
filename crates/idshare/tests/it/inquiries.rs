//! Inquiries: creation with typed fields, updates, the status machine, and redaction.

use idshare_domain::{
    environment::Environment,
    id::{InquiryId, OrgId},
    inquiry::InquiryStatus,
};
use idshare_store::{Scope, inquiries};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestApp, expect_error, expect_status, spawn_app};

/// Puts an inquiry in `status` directly in the store: the verification pipeline that completes
/// inquiries arrives with a later milestone, and the decisions below need a finished inquiry.
pub(crate) async fn force_status(app: &TestApp, org: &OrgId, id: &str, status: InquiryStatus) {
    let scope = Scope::new(org.clone(), Environment::Sandbox);
    let id = InquiryId::parse(id).unwrap();
    let mut tx = app.store.begin_write().await.unwrap();
    let mut inquiry = inquiries::get_for_update(&mut tx, app.store.crypto(), &scope, &id)
        .await
        .unwrap()
        .unwrap();
    inquiry.status = status;
    inquiries::save(&mut tx, app.store.crypto(), &scope, &inquiry)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn creates_inquiries_with_typed_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let body = json!({"data": {"attributes": {
        "inquiry-template-id": template,
        "reference-id": "customer-42",
        "note": "VIP onboarding",
        "tags": ["vip", "vip", "eu"],
        "fields": {"name-first": "  Ada ", "birthdate": "1990-12-10", "address-country-code": "gb",
                    "tier": "premium", "score": 87.5, "email-address": "ada@example.com"}
    }}, "meta": {"expiration-after-create-interval-seconds": 3600}});
    let created = expect_status(
        app.post(key, "/api/v1/inquiries", &body).await,
        StatusCode::CREATED,
    )
    .await;
    let data = &created["data"];
    assert!(data["id"].as_str().unwrap().starts_with("inq_"));
    assert_eq!(data["type"], "inquiry");
    let attributes = &data["attributes"];
    assert_eq!(attributes["status"], "created");
    assert_eq!(attributes["reference-id"], "customer-42");
    assert_eq!(attributes["note"], "VIP onboarding");
    assert_eq!(attributes["tags"], json!(["vip", "eu"]));
    let fields = &attributes["fields"];
    assert_eq!(
        fields["name-first"],
        json!({"type": "string", "value": "Ada"})
    );
    assert_eq!(
        fields["birthdate"],
        json!({"type": "date", "value": "1990-12-10"})
    );
    assert_eq!(fields["address-country-code"]["value"], "GB");
    assert_eq!(
        fields["tier"],
        json!({"type": "choices", "value": "premium"})
    );
    assert_eq!(fields["score"], json!({"type": "number", "value": 87.5}));
    assert_eq!(
        fields["name-last"],
        json!({"type": "string", "value": null}),
        "every template field is listed"
    );
    let created_at = time::OffsetDateTime::parse(
        attributes["created-at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires_at = time::OffsetDateTime::parse(
        attributes["expires-at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((expires_at - created_at).whole_seconds(), 3600);

    let fetched = expect_status(
        app.get(
            key,
            &format!("/api/v1/inquiries/{}", data["id"].as_str().unwrap()),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(fetched["data"], *data);
}

async fn invalid_inquiries_are_refused_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let attempts = [
        (
            json!({"inquiry-template-id": "itmpl_AAAAAAAAAAAAAAAAAAAAAAAA"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"inquiry-template-id": "not-an-id"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({}), StatusCode::BAD_REQUEST),
        (
            json!({"inquiry-template-id": template, "inquiry-template-version-id": "itmplv_AAAAAAAAAAAAAAAAAAAAAAAA"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"inquiry-template-id": template, "fields": {"tier": "gold"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"inquiry-template-id": template, "fields": {"score": 101}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"inquiry-template-id": template, "fields": {"birthdate": "2999-01-01"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"inquiry-template-id": template, "fields": {"email-address": "not-an-email"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"inquiry-template-id": template, "tags": [""]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"inquiry-template-id": template, "reference-id": "r".repeat(300)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (attributes, status) in attempts {
        let response = app
            .post(
                key,
                "/api/v1/inquiries",
                &json!({"data": {"attributes": attributes}}),
            )
            .await;
        expect_error(response, status).await;
    }
    // Several invalid fields are all reported at once.
    let response = app
        .post(key, "/api/v1/inquiries", &json!({"data": {"attributes": {"inquiry-template-id": template, "fields": {"tier": "gold", "score": -1}}}}))
        .await;
    let body = expect_status(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 2, "{body}");
    assert!(app.list_ids(key, "/api/v1/inquiries").await.is_empty());
    let events = expect_status(
        app.get(key, "/api/v1/events?filter[name]=inquiry.created")
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        events["data"].as_array().unwrap().is_empty(),
        "no event for a refused request"
    );
}

async fn updates_fields_note_and_tags(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let created = app
        .create_inquiry(
            key,
            &template,
            json!({"name-first": "Ada", "tier": "basic"}),
        )
        .await;
    let id = created["data"]["id"].as_str().unwrap();
    let path = format!("/api/v1/inquiries/{id}");

    let updated = expect_status(
        app.patch(key, &path, &json!({"data": {"attributes": {"fields": {"name-last": "Lovelace", "tier": null}, "note": "checked", "tags": ["a"]}}})).await,
        StatusCode::OK,
    )
    .await;
    let attributes = &updated["data"]["attributes"];
    assert_eq!(attributes["fields"]["name-first"]["value"], "Ada");
    assert_eq!(attributes["fields"]["name-last"]["value"], "Lovelace");
    assert!(
        attributes["fields"]["tier"]["value"].is_null(),
        "null clears a field"
    );
    assert_eq!(attributes["note"], "checked");
    assert_eq!(attributes["tags"], json!(["a"]));

    let cleared = expect_status(
        app.patch(key, &path, &json!({"data": {"attributes": {"note": null}}}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(cleared["data"]["attributes"]["note"].is_null());
    assert_eq!(
        cleared["data"]["attributes"]["fields"]["name-last"]["value"],
        "Lovelace"
    );

    let refused = app
        .patch(
            key,
            &path,
            &json!({"data": {"attributes": {"fields": {"tier": "gold"}}}}),
        )
        .await;
    let error = expect_error(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error["source"]["pointer"], "/data/attributes/fields/tier");
    let unchanged = expect_status(app.get(key, &path).await, StatusCode::OK).await;
    assert_eq!(
        unchanged["data"]["attributes"],
        cleared["data"]["attributes"]
    );

    force_status(&app, &tenant.org_id, id, InquiryStatus::Completed).await;
    let finished = app
        .patch(
            key,
            &path,
            &json!({"data": {"attributes": {"fields": {"name-first": "Eve"}}}}),
        )
        .await;
    let error = expect_error(finished, StatusCode::CONFLICT).await;
    assert!(
        error["details"].as_str().unwrap().contains("`completed`"),
        "{error}"
    );
    let tagged = expect_status(
        app.patch(
            key,
            &path,
            &json!({"data": {"attributes": {"tags": ["reviewed"]}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(tagged["data"]["attributes"]["tags"], json!(["reviewed"]));
}

async fn status_actions_follow_the_state_machine(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let id_of = |v: serde_json::Value| v["data"]["id"].as_str().unwrap().to_owned();
    let act = |id: String, action: &'static str| {
        let app = &app;
        async move {
            app.post(
                key,
                &format!("/api/v1/inquiries/{id}/{action}"),
                &json!({"meta": {"comment": "looks fine"}}),
            )
            .await
        }
    };

    // A created inquiry cannot be decided; the error names the status.
    let created = id_of(app.create_inquiry(key, &template, json!({})).await);
    for action in ["approve", "decline", "mark-for-review"] {
        let error = expect_error(act(created.clone(), action).await, StatusCode::CONFLICT).await;
        assert!(
            error["details"].as_str().unwrap().contains("`created`"),
            "{action}: {error}"
        );
    }
    let expired = expect_status(
        app.post(
            key,
            &format!("/api/v1/inquiries/{created}/expire"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(expired["data"]["attributes"]["status"], "expired");
    assert!(expired["data"]["attributes"]["expired-at"].is_string());
    expect_error(
        app.post(
            key,
            &format!("/api/v1/inquiries/{created}/expire"),
            &json!({}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;

    // completed → needs_review → approved, then nothing more.
    let reviewed = id_of(app.create_inquiry(key, &template, json!({})).await);
    force_status(&app, &tenant.org_id, &reviewed, InquiryStatus::Completed).await;
    let marked = expect_status(
        act(reviewed.clone(), "mark-for-review").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(marked["data"]["attributes"]["status"], "needs_review");
    assert!(marked["data"]["attributes"]["marked-for-review-at"].is_string());
    let approved = expect_status(act(reviewed.clone(), "approve").await, StatusCode::OK).await;
    assert_eq!(approved["data"]["attributes"]["status"], "approved");
    assert_eq!(
        approved["data"]["attributes"]["reviewer-comment"],
        "looks fine"
    );
    assert!(approved["data"]["attributes"]["decisioned-at"].is_string());
    for action in ["approve", "decline", "mark-for-review"] {
        expect_error(act(reviewed.clone(), action).await, StatusCode::CONFLICT).await;
    }
    let expire = app
        .post(
            key,
            &format!("/api/v1/inquiries/{reviewed}/expire"),
            &json!({}),
        )
        .await;
    expect_error(expire, StatusCode::CONFLICT).await;

    // failed → declined.
    let failed = id_of(app.create_inquiry(key, &template, json!({})).await);
    force_status(&app, &tenant.org_id, &failed, InquiryStatus::Failed).await;
    let declined = expect_status(act(failed.clone(), "decline").await, StatusCode::OK).await;
    assert_eq!(declined["data"]["attributes"]["status"], "declined");

    // Unknown ids and unknown meta are refused.
    expect_error(
        act("inq_AAAAAAAAAAAAAAAAAAAAAAAA".into(), "approve").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let bad_meta = app
        .post(
            key,
            &format!("/api/v1/inquiries/{failed}/approve"),
            &json!({"meta": {"mood": "good"}}),
        )
        .await;
    expect_error(bad_meta, StatusCode::BAD_REQUEST).await;
}

async fn redaction_erases_personal_data_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let created = app
        .create_inquiry(
            key,
            &template,
            json!({"name-first": "Ada", "name-last": "Lovelace"}),
        )
        .await;
    let id = created["data"]["id"].as_str().unwrap();
    let path = format!("/api/v1/inquiries/{id}");
    let redacted = expect_status(app.delete(key, &path).await, StatusCode::OK).await;
    let attributes = &redacted["data"]["attributes"];
    assert!(attributes["redacted-at"].is_string());
    assert_eq!(attributes["status"], "created", "redaction is not a status");
    assert!(attributes["fields"]["name-first"]["value"].is_null());
    assert!(attributes["fields"]["name-last"]["value"].is_null());

    let fetched = expect_status(app.get(key, &path).await, StatusCode::OK).await;
    assert!(fetched["data"]["attributes"]["fields"]["name-first"]["value"].is_null());
    let again = expect_error(app.delete(key, &path).await, StatusCode::CONFLICT).await;
    assert_eq!(again["title"], "Inquiry already redacted");
    expect_error(
        app.patch(key, &path, &json!({"data": {"attributes": {"note": "x"}}}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;

    // The creation event's payload was sealed under the shredded key: it is gone too.
    let events = expect_status(
        app.get(key, &format!("/api/v1/events?filter[object-id]={id}"))
            .await,
        StatusCode::OK,
    )
    .await;
    let names: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attributes"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["inquiry.redacted", "inquiry.created"]);
    assert_eq!(
        events["data"][1]["attributes"]["payload"],
        json!({"data": {"type": "inquiry", "id": id}})
    );
    assert!(
        events["data"][0]["attributes"]["payload"]["data"]["attributes"]["redacted-at"].is_string()
    );
}

backend_tests!(
    creates_inquiries_with_typed_fields,
    invalid_inquiries_are_refused_and_change_nothing,
    updates_fields_note_and_tags,
    status_actions_follow_the_state_machine,
    redaction_erases_personal_data_once,
);
