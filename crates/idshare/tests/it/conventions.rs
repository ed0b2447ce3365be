//! The API conventions every endpoint shares: authentication, errors, request ids, inflection,
//! pagination, filters, sparse fieldsets, includes, body limits and rate limits.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    browser::{Browser, Form},
    helpers::{Backend, expect_error, expect_status, spawn_app, spawn_app_with},
};

async fn health_and_request_ids(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let response = app
        .client
        .get(app.url("/api/v1/nowhere"))
        .send()
        .await
        .unwrap();
    let id = response.headers()["request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("req_"), "{id}");
    expect_error(response, StatusCode::NOT_FOUND).await;

    let first = app
        .client
        .get(app.url("/api/v1/inquiries"))
        .send()
        .await
        .unwrap();
    let second = app
        .client
        .get(app.url("/api/v1/inquiries"))
        .send()
        .await
        .unwrap();
    assert_ne!(
        first.headers()["request-id"],
        second.headers()["request-id"]
    );
}

async fn authentication_is_required(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let none = app
        .client
        .get(app.url("/api/v1/inquiries"))
        .send()
        .await
        .unwrap();
    let error = expect_error(none, StatusCode::UNAUTHORIZED).await;
    assert!(
        error["details"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );

    let bad = app.get("idsk_sandbox_not-a-key", "/api/v1/inquiries").await;
    assert_eq!(
        expect_error(bad, StatusCode::UNAUTHORIZED).await["details"],
        "Token is invalid."
    );

    let basic = app
        .client
        .get(app.url("/api/v1/inquiries"))
        .header("authorization", format!("Basic {}", tenant.sandbox))
        .send()
        .await
        .unwrap();
    expect_error(basic, StatusCode::UNAUTHORIZED).await;
}

async fn body_errors_point_at_their_place_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;

    let malformed = app
        .request(Method::POST, key, "/api/v1/inquiries")
        .header("content-type", "application/json")
        .body("{\"data\": {")
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_error(malformed, StatusCode::BAD_REQUEST).await["title"],
        "Malformed JSON"
    );

    let cases = [
        (
            json!({"data": {"attributes": {"inquiry-template-id": template, "color": "red"}}}),
            "/data/attributes/color",
        ),
        (
            json!({"data": {"attributes": {"inquiry-template-id": 42}}}),
            "/data/attributes/inquiry-template-id",
        ),
        (
            json!({"data": {"attributes": {"inquiry-template-id": template, "tags": "vip"}}}),
            "/data/attributes/tags",
        ),
        (
            json!({"data": {"attributes": {"inquiry-template-id": template}}, "extra": true}),
            "/extra",
        ),
        (
            json!({"data": {"attributes": {"inquiry-template-id": template, "fields": {"score": "high"}}}}),
            "/data/attributes/fields/score",
        ),
        (
            json!({"data": {"attributes": {"inquiry-template-id": template, "fields": {"birthdate": "1990-02-31"}}}}),
            "/data/attributes/fields/birthdate",
        ),
        (
            json!({"data": {"attributes": {"inquiry-template-id": template, "fields": {"favourite-colour": "red"}}}}),
            "/data/attributes/fields/favourite-colour",
        ),
        (
            json!({"data": {"attributes": {"inquiry-template-id": template}}, "meta": {"expiration-after-create-interval-seconds": 5}}),
            "/meta/expiration-after-create-interval-seconds",
        ),
    ];
    for (body, pointer) in cases {
        let response = app.post(key, "/api/v1/inquiries", &body).await;
        let status = response.status();
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {status}"
        );
        let error = expect_error(response, status).await;
        assert_eq!(error["source"]["pointer"], pointer, "{body}: {error}");
    }

    let text = app
        .request(Method::POST, key, "/api/v1/inquiries")
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    expect_error(text, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    let huge = json!({"data": {"attributes": {"inquiry-template-id": template, "note": "x".repeat(1_100_000)}}});
    // A client of its own, so a connection the server closes early is not reused afterwards.
    let response = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .post(app.url("/api/v1/inquiries"))
        .bearer_auth(key)
        .json(&huge)
        .send()
        .await;
    if let Ok(response) = response {
        expect_error(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    }

    assert!(
        app.list_ids(key, "/api/v1/inquiries").await.is_empty(),
        "no refused request created anything"
    );
}

async fn key_inflection_applies_to_requests_and_responses(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let camel_request = json!({"data": {"attributes": {"inquiryTemplateId": template, "referenceId": "u-1",
        "fields": {"nameFirst": "Ada"}}}});
    let created = expect_status(
        app.post(key, "/api/v1/inquiries", &camel_request).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created["data"]["attributes"]["reference-id"], "u-1");
    assert_eq!(
        created["data"]["attributes"]["fields"]["name-first"]["value"],
        "Ada"
    );
    let id = created["data"]["id"].as_str().unwrap();

    for (inflection, reference_key, name_key) in [
        ("camel", "referenceId", "nameFirst"),
        ("snake", "reference_id", "name_first"),
    ] {
        let response = app
            .request(Method::GET, key, &format!("/api/v1/inquiries/{id}"))
            .header("key-inflection", inflection)
            .send()
            .await
            .unwrap();
        let body = expect_status(response, StatusCode::OK).await;
        assert_eq!(
            body["data"]["attributes"][reference_key], "u-1",
            "{inflection}"
        );
        assert_eq!(
            body["data"]["attributes"]["fields"][name_key]["value"], "Ada",
            "{inflection}"
        );
    }
    let bad = app
        .request(Method::GET, key, "/api/v1/inquiries")
        .header("key-inflection", "shouty")
        .send()
        .await
        .unwrap();
    expect_error(bad, StatusCode::BAD_REQUEST).await;
}

async fn pagination_walks_every_object_once_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let mut created = vec![];
    for i in 0..23 {
        let body = app
            .create_inquiry(key, &template, json!({"name-first": format!("P{i}")}))
            .await;
        created.push(body["data"]["id"].as_str().unwrap().to_owned());
    }
    created.reverse();

    let first = expect_status(app.get(key, "/api/v1/inquiries").await, StatusCode::OK).await;
    assert_eq!(
        first["data"].as_array().unwrap().len(),
        10,
        "default page size"
    );
    assert!(first["links"]["prev"].is_null());

    let walked = app.list_ids(key, "/api/v1/inquiries?page[size]=7").await;
    assert_eq!(walked, created, "every inquiry once, newest first");

    // Walk back with `prev` from the last page.
    let last = expect_status(
        app.get(
            key,
            &format!("/api/v1/inquiries?page[after]={}&page[size]=5", created[19]),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let last_ids: Vec<&str> = last["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        last_ids,
        created[20..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(last["links"]["next"].is_null());
    let prev = last["links"]["prev"].as_str().unwrap();
    let previous = expect_status(app.get(key, prev).await, StatusCode::OK).await;
    let previous_ids: Vec<&str> = previous["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        previous_ids,
        created[15..20]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );

    for bad in [
        "page[size]=0",
        "page[size]=101",
        "page[size]=ten",
        "page[after]=inq_doesnotexist000000000000",
        "page[colour]=red",
        "sort=name",
    ] {
        let error = expect_error(
            app.get(key, &format!("/api/v1/inquiries?{bad}")).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(error["source"]["parameter"].is_string(), "{bad}: {error}");
    }
}

async fn filters_fields_and_includes(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let other = app.create_template(key).await;
    let a = app
        .create_inquiry(key, &template, json!({"name-first": "A"}))
        .await;
    let a_id = a["data"]["id"].as_str().unwrap();
    let b = expect_status(
        app.post(key, "/api/v1/inquiries", &json!({"data": {"attributes": {"inquiry-template-id": other, "reference-id": "user-7"}}})).await,
        StatusCode::CREATED,
    )
    .await;
    let b_id = b["data"]["id"].as_str().unwrap();
    expect_status(
        app.post(key, &format!("/api/v1/inquiries/{a_id}/expire"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;

    let ids = |body: Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let by = |query: String| {
        let app = &app;
        async move {
            ids(expect_status(
                app.get(key, &format!("/api/v1/inquiries?{query}")).await,
                StatusCode::OK,
            )
            .await)
        }
    };
    assert_eq!(by("filter[status]=expired".into()).await, vec![a_id]);
    assert_eq!(by("filter[status]=created".into()).await, vec![b_id]);
    assert_eq!(by("filter[reference-id]=user-7".into()).await, vec![b_id]);
    assert_eq!(
        by(format!("filter[inquiry-template-id]={other}")).await,
        vec![b_id]
    );
    assert_eq!(
        by("filter[created-at-start]=2000-01-01&filter[created-at-end]=2999-01-01".into())
            .await
            .len(),
        2
    );
    assert!(
        by("filter[created-at-end]=2000-01-01".into())
            .await
            .is_empty()
    );
    expect_error(
        app.get(key, "/api/v1/inquiries?filter[status]=happy").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_error(
        app.get(key, "/api/v1/inquiries?filter[created-at-start]=yesterday")
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    let sparse = expect_status(
        app.get(
            key,
            &format!("/api/v1/inquiries/{a_id}?fields[inquiry]=status,reference-id"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let attributes = sparse["data"]["attributes"].as_object().unwrap();
    assert_eq!(
        attributes.keys().collect::<Vec<_>>(),
        vec!["status", "reference-id"]
    );

    let included = expect_status(
        app.get(
            key,
            &format!("/api/v1/inquiries/{a_id}?include=inquiry-template,inquiry-template-version"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let kinds: Vec<&str> = included["included"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["inquiry-template", "inquiry-template-version"]);
    assert_eq!(included["included"][0]["id"], template.as_str());
    expect_error(
        app.get(key, &format!("/api/v1/inquiries/{a_id}?include=account"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

async fn rate_limit_is_per_environment(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.rate_limit_per_minute = 3).await;
    crate::helpers::at_the_start_of_a_rate_window().await;
    let tenant = app.tenant("Acme").await;
    let mut last = None;
    for _ in 0..3 {
        let response = app.get(&tenant.sandbox, "/api/v1/inquiries").await;
        assert_eq!(response.status(), StatusCode::OK);
        last = Some(
            response.headers()["ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(last.as_deref(), Some("0"));
    let limited = app.get(&tenant.sandbox, "/api/v1/inquiries").await;
    assert_eq!(limited.headers()["ratelimit-limit"], "3");
    assert!(limited.headers().contains_key("ratelimit-reset"));
    assert!(limited.headers().contains_key("retry-after"));
    expect_error(limited, StatusCode::TOO_MANY_REQUESTS).await;
    // The other environment of the same organization has its own budget.
    assert_eq!(
        app.get(&tenant.production, "/api/v1/inquiries")
            .await
            .status(),
        StatusCode::OK
    );
}

async fn control_characters_are_refused_with_a_pointer_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let created = app
        .create_inquiry(key, &template, json!({"name-first": "Ada"}))
        .await;
    let id = created["data"]["id"].as_str().unwrap();

    // In a string value (a field, the reference id), and in a member name: 400 pointing at it.
    for (attributes, pointer) in [
        (
            json!({"inquiry-template-id": template, "reference-id": "user\u{0}7"}),
            "/data/attributes/reference-id",
        ),
        (
            json!({"inquiry-template-id": template, "fields": {"name-first": "Ada\u{0}"}}),
            "/data/attributes/fields/name-first",
        ),
        (
            json!({"inquiry-template-id": template, "fields": {"name\u{0}first": "Ada"}}),
            "/data/attributes/fields",
        ),
        (
            json!({"inquiry-template-id": template, "tags": ["vip", "a\u{1b}[31m"]}),
            "/data/attributes/tags/1",
        ),
    ] {
        let response = app
            .post(
                key,
                "/api/v1/inquiries",
                &json!({"data": {"attributes": attributes}}),
            )
            .await;
        let error = expect_error(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(error["source"]["pointer"], pointer, "{error}");
        assert!(
            error["details"]
                .as_str()
                .unwrap()
                .contains("control character (U+00"),
            "{error}"
        );
    }
    let update = |note: &str| json!({"data": {"attributes": {"note": note}}});
    let error = expect_error(
        app.patch(
            key,
            &format!("/api/v1/inquiries/{id}"),
            &update("call back\u{7}"),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["source"]["pointer"], "/data/attributes/note");
    // In a query parameter: 400 naming it.
    let error = expect_error(
        app.get(key, "/api/v1/inquiries?filter[reference-id]=user%007")
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        error["source"]["parameter"], "filter[reference-id]",
        "{error}"
    );
    // Nothing was created or changed.
    assert_eq!(app.list_ids(key, "/api/v1/inquiries").await, vec![id]);
    let inquiry = expect_status(
        app.get(key, &format!("/api/v1/inquiries/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(inquiry["data"]["attributes"]["note"], Value::Null);
    assert_eq!(
        inquiry["data"]["attributes"]["fields"]["name-first"]["value"],
        "Ada"
    );

    // Tabs and line breaks are text, not control.
    let note = "call back\r\n\tafter 5";
    let updated = expect_status(
        app.patch(key, &format!("/api/v1/inquiries/{id}"), &update(note))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["data"]["attributes"]["note"], note);
}

async fn control_characters_in_pages_and_forms_get_a_clear_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let created = app.create_inquiry(key, &template, json!({})).await;
    let id = created["data"]["id"].as_str().unwrap();

    // A page's query string (the dashboard's filters, before any sign-in check).
    let page = Browser::new(&app)
        .get("/dashboard/inquiries?status=%00")
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    page.assert_html();
    assert!(
        page.body
            .contains("The query parameter `status` contains a control character (U+0000)"),
        "{}",
        page.body
    );

    // The hosted flow's form: a page, and nothing is saved.
    let link = expect_status(
        app.post(
            key,
            &format!("/api/v1/inquiries/{id}/generate-one-time-link"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await["meta"]["one-time-link"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut browser = Browser::new(&app);
    browser.open(&link).await;
    let csrf = browser.get("/flow/inquiry").await.csrf();
    let refused = browser
        .post(
            Form::default()
                .text("csrf", &csrf)
                .text("field.name-first", "Ada\u{0}")
                .text("field.name-last", "Lovelace"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    refused.assert_html();
    assert!(
        refused.body.contains("invisible characters"),
        "{}",
        refused.body
    );
    let inquiry = expect_status(
        app.get(key, &format!("/api/v1/inquiries/{id}")).await,
        StatusCode::OK,
    )
    .await;
    for field in ["name-first", "name-last"] {
        assert_eq!(
            inquiry["data"]["attributes"]["fields"][field]["value"],
            Value::Null
        );
    }
}

async fn api_answers_are_never_cached(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let reader = app
        .create_key(
            &tenant.org_id,
            idshare_domain::environment::Environment::Sandbox,
            Some("event.read"),
        )
        .await;
    let responses = [
        app.get(key, "/api/v1/inquiries").await,
        app.post(
            key,
            "/api/v1/inquiry-templates",
            &json!({"data": {"attributes": crate::helpers::standard_template("KYC")}}),
        )
        .await,
        app.client
            .get(app.url("/api/v1/inquiries"))
            .send()
            .await
            .unwrap(),
        app.get(&reader, "/api/v1/inquiries").await,
        app.get(key, "/api/v1/inquiries/inq_AAAAAAAAAAAAAAAAAAAAAAAA")
            .await,
        app.get(key, "/api/v1/inquiries?sort=x").await,
        app.get(key, "/api/v1/nowhere").await,
    ];
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses, [200, 201, 401, 403, 404, 400, 404]);
    for response in responses {
        assert_eq!(
            response
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{} {}",
            response.status(),
            response.url()
        );
    }
}

async fn includes_need_the_permission_of_the_included_type(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let template = app.create_template(&tenant.sandbox).await;
    let inquiry = app
        .create_inquiry(&tenant.sandbox, &template, json!({}))
        .await;
    let id = inquiry["data"]["id"].as_str().unwrap();
    let sandbox = idshare_domain::environment::Environment::Sandbox;
    let inquiries_only = app
        .create_key(&tenant.org_id, sandbox, Some("inquiry.read"))
        .await;
    let both = app
        .create_key(
            &tenant.org_id,
            sandbox,
            Some("inquiry.read,inquiry-template.read"),
        )
        .await;

    for include in [
        "inquiry-template",
        "inquiryTemplateVersion",
        "inquiry-template-version,inquiry-template",
    ] {
        let path = format!("/api/v1/inquiries/{id}?include={include}");
        let error =
            expect_error(app.get(&inquiries_only, &path).await, StatusCode::FORBIDDEN).await;
        assert_eq!(error["source"]["parameter"], "include", "{error}");
        assert!(
            error["details"]
                .as_str()
                .unwrap()
                .contains("`inquiry-template.read`"),
            "{error}"
        );
    }
    // The inquiry itself needs nothing more; with both permissions the template comes along.
    let alone = expect_status(
        app.get(&inquiries_only, &format!("/api/v1/inquiries/{id}"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(alone["included"], json!([]));
    let included = expect_status(
        app.get(
            &both,
            &format!("/api/v1/inquiries/{id}?include=inquiry-template,inquiry-template-version"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let types: Vec<&str> = included["included"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["inquiry-template", "inquiry-template-version"]);
}

backend_tests!(
    health_and_request_ids,
    authentication_is_required,
    body_errors_point_at_their_place_and_change_nothing,
    key_inflection_applies_to_requests_and_responses,
    pagination_walks_every_object_once_newest_first,
    filters_fields_and_includes,
    rate_limit_is_per_environment,
    control_characters_are_refused_with_a_pointer_and_change_nothing,
    control_characters_in_pages_and_forms_get_a_clear_page,
    api_answers_are_never_cached,
    includes_need_the_permission_of_the_included_type,
);
