//! The verification pipeline through the public API alone: identity documents, uploads,
//! submission, the job, verifications, reports, the decision, and what stays missing.

use idshare_domain::{environment::Environment, mrz::check_digit, screening::ListFormat};
use reqwest::{StatusCode, multipart};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Tenant, TestApp, expect_error, expect_status, spawn_app, spawn_app_with,
};

/// A PNG header and a few bytes: enough for the content sniffer.
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRsample-image";
pub const PDF: &[u8] = b"%PDF-1.7\nsample proof of address";

/// The two lines of a TD3 (passport) MRZ with correct check digits.
pub fn passport_mrz(
    surname: &str,
    given: &str,
    number: &str,
    birth: &str,
    expiry: &str,
) -> Vec<String> {
    let names = format!("{surname}<<{}", given.replace(' ', "<"));
    let line1 = format!("P<GBR{names:<<39}");
    let number = format!("{number:<<9}");
    let optional = "<".repeat(14);
    let n = check_digit(&number);
    let b = check_digit(birth);
    let e = check_digit(expiry);
    let o = check_digit(&optional);
    let composite = check_digit(&format!("{number}{n}{birth}{b}{expiry}{e}{optional}{o}"));
    let line2 = format!("{number}{n}GBR{birth}{b}F{expiry}{e}{optional}{o}{composite}");
    vec![line1, line2]
}

/// Every verification type and a watchlist report; the sample lists are imported.
fn full_template() -> Value {
    json!({"data": {"attributes": {
        "name": "Full KYC",
        "field-schemas": [
            {"key": "name-first", "type": "string", "config": {"required": true}},
            {"key": "name-last", "type": "string", "config": {"required": true}},
            {"key": "birthdate", "type": "date", "config": {"required": true}},
            {"key": "address-street-1", "type": "string"},
            {"key": "address-city", "type": "string"},
            {"key": "address-postal-code", "type": "string"},
            {"key": "address-country-code", "type": "string"},
            {"key": "email-address", "type": "string"},
            {"key": "phone-number", "type": "string"}
        ],
        "verifications": [
            {"type": "government-id", "config": {"require-mrz": true, "minimum-age": 18, "allowed-countries": ["GB"]}},
            {"type": "selfie"},
            {"type": "document", "config": {"max-age-days": 90}},
            {"type": "phone-number"},
            {"type": "email-address"}
        ],
        "reports": [{"type": "watchlist", "on-match": "needs_review"}]
    }}})
}

pub async fn import_sample_lists(app: &TestApp) {
    for (list, file) in [
        ("sample-watchlist", "sample-watchlist.csv"),
        ("sample-pep", "sample-pep.csv"),
    ] {
        let path = format!("{}/../../data/lists/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        let parsed = idshare_domain::screening::parse_list(
            ListFormat::OpensanctionsCsv,
            text.as_bytes(),
            list,
        )
        .unwrap();
        let rows: Vec<(String, String)> = parsed
            .entries
            .iter()
            .map(|e| (e.entity_id.clone(), serde_json::to_string(e).unwrap()))
            .collect();
        idshare_store::lists::replace(
            &app.store,
            list,
            &rows,
            time::OffsetDateTime::now_utc(),
            |_| {},
        )
        .await
        .unwrap();
    }
}

async fn create(app: &TestApp, key: &str, body: &Value) -> String {
    let created = expect_status(
        app.post(key, "/api/v1/inquiry-templates", body).await,
        StatusCode::CREATED,
    )
    .await;
    created["data"]["id"].as_str().unwrap().to_owned()
}

fn today_offset(days: i64) -> time::Date {
    time::OffsetDateTime::now_utc().date() + time::Duration::days(days)
}

fn yymmdd(d: time::Date) -> String {
    format!(
        "{:02}{:02}{:02}",
        d.year() % 100,
        u8::from(d.month()),
        d.day()
    )
}

/// Fills an inquiry with everything `full_template` needs, as an SDK would.
async fn fill_inquiry(
    app: &TestApp,
    key: &str,
    inquiry: &str,
    first: &str,
    last: &str,
    mrz: Vec<String>,
) {
    let expiry = today_offset(3 * 365);
    let government_id = json!({"data": {"type": "document/government-id", "attributes": {
        "id-class": "pp", "issuing-country": "GB", "document-number": "123456789",
        "name-first": first, "name-last": last, "birthdate": "1985-03-14",
        "expiration-date": idshare_domain::time_format::format_date(expiry), "mrz": mrz
    }}});
    expect_status(
        app.post(
            key,
            &format!("/api/v1/inquiries/{inquiry}/documents"),
            &government_id,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let address = json!({"data": {"type": "document/proof-of-address", "attributes": {
        "document-kind": "utility-bill", "issue-date": idshare_domain::time_format::format_date(today_offset(-20)),
        "address-street-1": "12 High Street", "address-city": "London", "address-postal-code": "SW1A 1AA",
        "address-country-code": "GB"
    }}});
    expect_status(
        app.post(
            key,
            &format!("/api/v1/inquiries/{inquiry}/documents"),
            &address,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    for (kind, bytes) in [
        ("government-id-front", PNG),
        ("selfie", PNG),
        ("proof-of-address", PDF),
    ] {
        upload(app, key, inquiry, kind, bytes).await;
    }
}

pub async fn upload(
    app: &TestApp,
    key: &str,
    inquiry: &str,
    kind: &'static str,
    bytes: &[u8],
) -> Value {
    let response = upload_raw(app, key, inquiry, kind, bytes).await;
    expect_status(response, StatusCode::CREATED).await
}

async fn upload_raw(
    app: &TestApp,
    key: &str,
    inquiry: &str,
    kind: &'static str,
    bytes: &[u8],
) -> reqwest::Response {
    let form = multipart::Form::new().text("kind", kind).part(
        "file",
        multipart::Part::bytes(bytes.to_vec())
            .file_name("upload.png")
            .mime_str("image/png")
            .unwrap(),
    );
    app.client
        .post(app.url(&format!("/api/v1/inquiries/{inquiry}/files")))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

fn person_fields(first: &str, last: &str) -> Value {
    json!({"name-first": first, "name-last": last, "birthdate": "1985-03-14",
        "address-street-1": "12 High St.", "address-city": "london", "address-postal-code": "SW1A1AA",
        "address-country-code": "GB", "email-address": "ada@example.com", "phone-number": "+447400123456"})
}

async fn submit_and_run(app: &TestApp, key: &str, inquiry: &str) -> Value {
    let submitted = expect_status(
        app.post(
            key,
            &format!("/api/v1/inquiries/{inquiry}/submit"),
            &json!({}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(submitted["data"]["attributes"]["status"], "pending");
    assert!(app.drain().await >= 1, "the pipeline job ran");
    expect_status(
        app.get(key, &format!("/api/v1/inquiries/{inquiry}")).await,
        StatusCode::OK,
    )
    .await
}

async fn verifications(app: &TestApp, key: &str, inquiry: &str) -> Vec<Value> {
    let list = expect_status(
        app.get(
            key,
            &format!("/api/v1/verifications?filter[inquiry-id]={inquiry}"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    list["data"].as_array().unwrap().clone()
}

async fn setup(app: &TestApp) -> (Tenant, String) {
    import_sample_lists(app).await;
    let tenant = app.tenant("Bank").await;
    let template = create(app, &tenant.sandbox, &full_template()).await;
    (tenant, template)
}

async fn a_complete_inquiry_passes_every_check(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tenant, template) = setup(&app).await;
    let key = &tenant.sandbox;
    let inquiry = app
        .create_inquiry(key, &template, person_fields("Ada", "Lovelace"))
        .await;
    let id = inquiry["data"]["id"].as_str().unwrap();
    let missing = inquiry["data"]["attributes"]["missing-requirements"]
        .as_array()
        .unwrap()
        .clone();
    let keys: Vec<&str> = missing.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert!(
        keys.contains(&"government-id")
            && keys.contains(&"selfie")
            && keys.contains(&"proof-of-address"),
        "{keys:?}"
    );

    let mrz = passport_mrz(
        "LOVELACE",
        "ADA",
        "123456789",
        "850314",
        &yymmdd(today_offset(3 * 365)),
    );
    fill_inquiry(&app, key, id, "Ada", "Lovelace", mrz).await;
    let before = expect_status(
        app.get(key, &format!("/api/v1/inquiries/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        before["data"]["attributes"]["missing-requirements"],
        json!([])
    );

    let done = submit_and_run(&app, key, id).await;
    assert_eq!(done["data"]["attributes"]["status"], "completed", "{done}");
    assert!(done["data"]["attributes"]["completed-at"].is_string());

    let checks = verifications(&app, key, id).await;
    let mut types: Vec<&str> = checks
        .iter()
        .map(|v| v["attributes"]["verification-type"].as_str().unwrap())
        .collect();
    types.sort_unstable();
    assert_eq!(
        types,
        vec![
            "document",
            "email-address",
            "government-id",
            "phone-number",
            "selfie"
        ]
    );
    for verification in &checks {
        assert_eq!(
            verification["attributes"]["status"], "passed",
            "{verification}"
        );
    }
    let government = checks
        .iter()
        .find(|v| v["type"] == "verification/government-id")
        .unwrap();
    let names: Vec<&str> = government["attributes"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"id_mrz_check_digits") && names.contains(&"id_inquiry_name_comparison"),
        "{names:?}"
    );
    let one = expect_status(
        app.get(
            key,
            &format!(
                "/api/v1/verifications/{}",
                government["id"].as_str().unwrap()
            ),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(one["data"]["id"], government["id"]);

    let reports = expect_status(
        app.get(key, &format!("/api/v1/reports?filter[inquiry-id]={id}"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(reports["data"][0]["attributes"]["status"], "ready");
    assert_eq!(reports["data"][0]["attributes"]["has-match"], false);

    let events = expect_status(
        app.get(key, "/api/v1/events?page[size]=100").await,
        StatusCode::OK,
    )
    .await;
    let names: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attributes"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "verification.passed")
            .count(),
        5
    );
    assert_eq!(
        names.iter().filter(|n| **n == "inquiry.completed").count(),
        1
    );
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "report/watchlist.ready")
            .count(),
        1
    );
    assert!(names.contains(&"inquiry.started"));
}

async fn a_corrupted_mrz_fails_the_inquiry(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tenant, template) = setup(&app).await;
    let key = &tenant.sandbox;
    let inquiry = app
        .create_inquiry(key, &template, person_fields("Ada", "Lovelace"))
        .await;
    let id = inquiry["data"]["id"].as_str().unwrap();
    let mut mrz = passport_mrz(
        "LOVELACE",
        "ADA",
        "123456789",
        "850314",
        &yymmdd(today_offset(3 * 365)),
    );
    // One digit of the birth date changes; its check digit no longer holds.
    mrz[1] = mrz[1].replacen("850314", "850315", 1);
    fill_inquiry(&app, key, id, "Ada", "Lovelace", mrz).await;
    let done = submit_and_run(&app, key, id).await;
    assert_eq!(done["data"]["attributes"]["status"], "failed", "{done}");
    let checks = verifications(&app, key, id).await;
    let government = checks
        .iter()
        .find(|v| v["type"] == "verification/government-id")
        .unwrap();
    assert_eq!(government["attributes"]["status"], "failed");
    let digits = government["attributes"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "id_mrz_check_digits")
        .unwrap();
    assert_eq!(digits["status"], "failed");
}

/// Issue 10: no check digit covers the nationality of a TD3 zone, so `WTO` there (not an ICAO
/// 9303 code) left every digit valid and the inquiry completed.
async fn an_mrz_with_a_malformed_field_fails_the_inquiry(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tenant, template) = setup(&app).await;
    let key = &tenant.sandbox;
    let inquiry = app
        .create_inquiry(key, &template, person_fields("Ada", "Lovelace"))
        .await;
    let id = inquiry["data"]["id"].as_str().unwrap();
    let mut mrz = passport_mrz(
        "LOVELACE",
        "ADA",
        "123456789",
        "850314",
        &yymmdd(today_offset(3 * 365)),
    );
    mrz[1].replace_range(10..13, "WTO");
    fill_inquiry(&app, key, id, "Ada", "Lovelace", mrz).await;
    let done = submit_and_run(&app, key, id).await;
    assert_eq!(done["data"]["attributes"]["status"], "failed", "{done}");
    let checks = verifications(&app, key, id).await;
    let government = checks
        .iter()
        .find(|v| v["type"] == "verification/government-id")
        .unwrap();
    let status = |name: &str| {
        government["attributes"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["status"].clone())
    };
    assert_eq!(status("id_mrz_check_digits"), Some(json!("passed")));
    assert_eq!(
        status("id_mrz_field_formats"),
        Some(json!("failed")),
        "{government}"
    );
}

async fn missing_inputs_leave_the_inquiry_pending_with_what_is_missing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tenant, template) = setup(&app).await;
    let key = &tenant.sandbox;
    let inquiry = app
        .create_inquiry(key, &template, person_fields("Ada", "Lovelace"))
        .await;
    let id = inquiry["data"]["id"].as_str().unwrap();
    upload(&app, key, id, "selfie", PNG).await;
    let stuck = submit_and_run(&app, key, id).await;
    assert_eq!(
        stuck["data"]["attributes"]["status"], "pending",
        "stuck, not failed"
    );
    let missing: Vec<(String, String)> = stuck["data"]["attributes"]["missing-requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("document", "government-id"),
        ("file", "government-id-front"),
        ("document", "proof-of-address"),
        ("file", "proof-of-address"),
    ] {
        assert!(
            missing.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {missing:?}"
        );
    }
    assert!(
        !missing.iter().any(|(_, k)| k == "selfie"),
        "the selfie was supplied"
    );
    // What could run, ran.
    let checks = verifications(&app, key, id).await;
    assert!(checks.iter().any(|v| v["type"] == "verification/selfie"));
    assert!(
        !checks
            .iter()
            .any(|v| v["type"] == "verification/government-id")
    );
}

async fn watchlist_matches_go_to_review_and_can_be_dismissed(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tenant, _) = setup(&app).await;
    let key = &tenant.sandbox;
    let template = create(&app, key, &json!({"data": {"attributes": {"name": "Screen only",
        "field-schemas": [{"key": "name-first", "type": "string"}, {"key": "name-last", "type": "string"}],
        "reports": [{"type": "watchlist", "on-match": "needs_review", "config": {"lists": ["sample-watchlist"]}}]}}})).await;
    // The fourth person of the shipped sample list.
    let inquiry = app
        .create_inquiry(
            key,
            &template,
            json!({"name-first": "Claire", "name-last": "Richman"}),
        )
        .await;
    let id = inquiry["data"]["id"].as_str().unwrap();
    let done = submit_and_run(&app, key, id).await;
    assert_eq!(
        done["data"]["attributes"]["status"], "needs_review",
        "{done}"
    );
    let reports = expect_status(
        app.get(key, &format!("/api/v1/reports?filter[inquiry-id]={id}"))
            .await,
        StatusCode::OK,
    )
    .await;
    let report = &reports["data"][0];
    assert_eq!(report["attributes"]["has-match"], true);
    let matched = &report["attributes"]["matches"][0];
    assert_eq!(matched["name"], "Claire Richmann");
    assert!(matched["score"].as_f64().unwrap() >= 0.85);
    let report_id = report["id"].as_str().unwrap();

    let unknown = app
        .post(
            key,
            &format!("/api/v1/reports/{report_id}/dismiss"),
            &json!({"data": {"attributes": {"reason": "x", "entity-id": "nobody"}}}),
        )
        .await;
    expect_error(unknown, StatusCode::UNPROCESSABLE_ENTITY).await;
    let dismissed = expect_status(
        app.post(
            key,
            &format!("/api/v1/reports/{report_id}/dismiss"),
            &json!({"data": {"attributes": {"reason": "Different birth year and country"}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(dismissed["data"]["attributes"]["has-match"], false);
    assert_eq!(
        dismissed["data"]["attributes"]["dismissed"][0]["reason"],
        "Different birth year and country"
    );
    let events = expect_status(
        app.get(
            key,
            "/api/v1/events?filter[name]=report/watchlist.dismissed",
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    let matched_events = expect_status(
        app.get(key, "/api/v1/events?filter[name]=report/watchlist.matched")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(matched_events["data"].as_array().unwrap().len(), 1);
}

async fn a_submission_is_processed_exactly_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tenant, _) = setup(&app).await;
    let key = &tenant.sandbox;
    let template = create(
        &app,
        key,
        &json!({"data": {"attributes": {"name": "Email",
        "field-schemas": [{"key": "email-address", "type": "string"}],
        "verifications": [{"type": "email-address"}]}}}),
    )
    .await;
    let inquiry = app
        .create_inquiry(key, &template, json!({"email-address": "ada@example.com"}))
        .await;
    let id = inquiry["data"]["id"].as_str().unwrap();
    expect_status(
        app.post(key, &format!("/api/v1/inquiries/{id}/submit"), &json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let again = expect_error(
        app.post(key, &format!("/api/v1/inquiries/{id}/submit"), &json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(again["title"], "Already submitted");
    // The job runs, and a crashed-and-retried run of the same submission changes nothing.
    app.drain().await;
    idshare_service::pipeline::run(&app.state, tenant.org_id.as_str(), "sandbox", id, 1)
        .await
        .unwrap();
    let checks = verifications(&app, key, id).await;
    assert_eq!(checks.len(), 1);
    let events = expect_status(
        app.get(key, "/api/v1/events?page[size]=100").await,
        StatusCode::OK,
    )
    .await;
    let names: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attributes"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.iter().filter(|n| **n == "inquiry.completed").count(),
        1
    );
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "verification.passed")
            .count(),
        1
    );
    // A finished inquiry cannot be submitted again.
    expect_error(
        app.post(key, &format!("/api/v1/inquiries/{id}/submit"), &json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
}

async fn uploads_are_sniffed_limited_and_downloaded_by_signed_url(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.upload_body_limit_bytes = 64 * 1024).await;
    let tenant = app.tenant("Bank").await;
    let other = app.tenant("Other").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let inquiry = app.create_inquiry(key, &template, json!({})).await;
    let id = inquiry["data"]["id"].as_str().unwrap();

    let exe = upload_raw(&app, key, id, "selfie", b"MZ\x90\x00 a windows program").await;
    let error = expect_error(exe, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error["title"], "Unsupported file type");
    expect_error(
        upload_raw(&app, key, id, "selfie", b"").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    expect_error(
        upload_raw(&app, key, id, "selfie", PDF).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    expect_error(
        upload_raw(&app, key, id, "passport-photo", PNG).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let mut big = PNG.to_vec();
    big.resize(200 * 1024, 0);
    let form = multipart::Form::new().text("kind", "selfie").part(
        "file",
        multipart::Part::bytes(big)
            .file_name("big.png")
            .mime_str("image/png")
            .unwrap(),
    );
    // A client of its own: the server may close this connection mid-upload, and it must not
    // go back into the shared pool for the next request to trip over.
    let oversized = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .post(app.url(&format!("/api/v1/inquiries/{id}/files")))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await;
    // The server answers 413 as soon as the limit is crossed; it may close the connection
    // before the client has finished sending, which the client sees as a broken pipe.
    if let Ok(response) = oversized {
        expect_error(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    }
    let files = expect_status(
        app.get(key, &format!("/api/v1/inquiries/{id}/files")).await,
        StatusCode::OK,
    )
    .await;
    assert!(
        files["data"].as_array().unwrap().is_empty(),
        "refused uploads stored nothing"
    );

    let stored = upload(&app, key, id, "selfie", PNG).await;
    assert_eq!(stored["data"]["attributes"]["content-type"], "image/png");
    let url = stored["data"]["attributes"]["download-url"]
        .as_str()
        .unwrap()
        .to_owned();
    let download = app.client.get(&url).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.headers()["content-type"], "image/png");
    assert_eq!(download.bytes().await.unwrap().as_ref(), PNG);

    let tampered = url.replace("signature=", "signature=00");
    assert_eq!(
        app.client.get(&tampered).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let other_org = url.replace(tenant.org_id.as_str(), other.org_id.as_str());
    assert_eq!(
        app.client.get(&other_org).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    expect_error(
        app.get(&other.sandbox, &format!("/api/v1/inquiries/{id}/files"))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_error(
        upload_raw(&app, &other.sandbox, id, "selfie", PNG).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Redaction removes the files with the rest of the personal data.
    expect_status(
        app.delete(key, &format!("/api/v1/inquiries/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        app.client.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

async fn production_without_a_provider_goes_to_review(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Bank").await;
    let key = &tenant.production;
    let template = create(&app, key, &json!({"data": {"attributes": {"name": "Selfie",
        "field-schemas": [], "verifications": [{"type": "selfie", "config": {"provider": "sandbox"}}]}}})).await;
    let inquiry = app.create_inquiry(key, &template, json!({})).await;
    let id = inquiry["data"]["id"].as_str().unwrap();
    upload(&app, key, id, "selfie", PNG).await;
    let done = submit_and_run(&app, key, id).await;
    assert_eq!(
        done["data"]["attributes"]["status"], "needs_review",
        "never a fake pass"
    );
    let checks = verifications(&app, key, id).await;
    assert_eq!(checks[0]["attributes"]["status"], "submitted");
    assert_eq!(
        checks[0]["attributes"]["checks"][0]["status"],
        "not_applicable"
    );

    // In the sandbox the simulation decides, driven by the documented magic value.
    let sandbox = &tenant.sandbox;
    let template = create(
        &app,
        sandbox,
        &json!({"data": {"attributes": {"name": "Selfie",
        "field-schemas": [], "verifications": [{"type": "selfie"}]}}}),
    )
    .await;
    let inquiry = app.create_inquiry(sandbox, &template, json!({})).await;
    let id = inquiry["data"]["id"].as_str().unwrap();
    let mut no_match = PNG.to_vec();
    no_match.extend_from_slice(idshare_service::providers::SANDBOX_SELFIE_NO_MATCH);
    upload(&app, sandbox, id, "selfie", &no_match).await;
    let done = submit_and_run(&app, sandbox, id).await;
    assert_eq!(done["data"]["attributes"]["status"], "failed");
}

async fn expired_inquiries_are_expired_by_the_job_and_can_be_resumed(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Bank").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let inquiry = app
        .create_inquiry(key, &template, json!({"name-first": "Ada"}))
        .await;
    let id = inquiry["data"]["id"].as_str().unwrap();
    let untouched = app.create_inquiry(key, &template, json!({})).await;

    // Move the first inquiry's expiry into the past, as time passing would.
    let scope = idshare_store::Scope::new(tenant.org_id.clone(), Environment::Sandbox);
    let inquiry_id = idshare_domain::id::InquiryId::parse(id).unwrap();
    let mut tx = app.store.begin_write().await.unwrap();
    let mut stored =
        idshare_store::inquiries::get_for_update(&mut tx, app.store.crypto(), &scope, &inquiry_id)
            .await
            .unwrap()
            .unwrap();
    stored.expires_at = Some(time::OffsetDateTime::now_utc() - time::Duration::minutes(1));
    idshare_store::inquiries::save(&mut tx, app.store.crypto(), &scope, &stored)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let expired = idshare_service::inquiries::expire_due(&app.state)
        .await
        .unwrap();
    assert_eq!(expired, 1);
    let fetched = expect_status(
        app.get(key, &format!("/api/v1/inquiries/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(fetched["data"]["attributes"]["status"], "expired");
    let other = expect_status(
        app.get(
            key,
            &format!(
                "/api/v1/inquiries/{}",
                untouched["data"]["id"].as_str().unwrap()
            ),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(other["data"]["attributes"]["status"], "created");

    let resumed = expect_status(
        app.post(key, &format!("/api/v1/inquiries/{id}/resume"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(resumed["data"]["attributes"]["status"], "pending");
    assert!(resumed["meta"]["session-token"].as_str().unwrap().len() > 20);
    let link = expect_status(
        app.post(
            key,
            &format!("/api/v1/inquiries/{id}/generate-one-time-link"),
            &json!({"meta": {"expires-in-seconds": 600}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        link["meta"]["one-time-link"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/flow/link/", app.address))
    );
    expect_error(
        app.post(
            key,
            &format!("/api/v1/inquiries/{id}/generate-one-time-link"),
            &json!({"meta": {"expires-in-seconds": 5}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
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
    assert_eq!(names[..2], ["inquiry.resumed", "inquiry.expired"]);
}

/// A face-comparison and identity-records service on loopback, speaking docs/providers.md.
async fn spawn_provider() -> String {
    use axum::{Json, Router, routing::post};
    let app = Router::new()
        .route(
            "/selfie",
            post(|Json(body): Json<Value>| async move {
                let has_images = body["selfie"].is_string() && body["id-front"].is_string();
                Json(json!({"match": has_images, "score": 0.93}))
            }),
        )
        .route(
            "/database",
            post(|Json(body): Json<Value>| async move {
                Json(json!({"found": true, "name-first": body["name-first"], "name-last": body["name-last"]}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

async fn http_providers_decide_in_production(backend: Backend) {
    let provider = spawn_provider().await;
    let app = spawn_app_with(backend, |config| {
        config.selfie_provider_url = Some(format!("{provider}/selfie"));
        config.database_provider_url = Some(format!("{provider}/database"));
    })
    .await;
    let tenant = app.tenant("Bank").await;
    let key = &tenant.production;
    let template = create(&app, key, &json!({"data": {"attributes": {"name": "Remote checks",
        "field-schemas": [{"key": "name-first", "type": "string"}, {"key": "name-last", "type": "string"},
                          {"key": "birthdate", "type": "date"}],
        "verifications": [{"type": "selfie", "config": {"provider": "http"}},
                          {"type": "database", "config": {"provider": "http"}}]}}})).await;
    let inquiry = app
        .create_inquiry(
            key,
            &template,
            json!({"name-first": "Ada", "name-last": "Lovelace", "birthdate": "1985-03-14"}),
        )
        .await;
    let id = inquiry["data"]["id"].as_str().unwrap();
    upload(&app, key, id, "selfie", PNG).await;
    upload(&app, key, id, "government-id-front", PNG).await;
    let done = submit_and_run(&app, key, id).await;
    assert_eq!(done["data"]["attributes"]["status"], "completed", "{done}");
    for verification in verifications(&app, key, id).await {
        assert_eq!(
            verification["attributes"]["status"], "passed",
            "{verification}"
        );
        assert_eq!(
            verification["attributes"]["checks"][0]["metadata"]["provider"],
            "http"
        );
    }
}

backend_tests!(
    http_providers_decide_in_production,
    a_complete_inquiry_passes_every_check,
    a_corrupted_mrz_fails_the_inquiry,
    an_mrz_with_a_malformed_field_fails_the_inquiry,
    missing_inputs_leave_the_inquiry_pending_with_what_is_missing,
    watchlist_matches_go_to_review_and_can_be_dismissed,
    a_submission_is_processed_exactly_once,
    uploads_are_sniffed_limited_and_downloaded_by_signed_url,
    production_without_a_provider_goes_to_review,
    expired_inquiries_are_expired_by_the_job_and_can_be_resumed,
);
