//! The end user's hosted flow, driven as a browser would: links exchanged for a cookie, HTML
//! forms posted as multipart with their CSRF token, redirects followed by hand.

use idshare_domain::{environment::Environment, id::InquiryId};
use idshare_store::{
    Scope,
    sessions::{self, SessionKind},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::{
    browser::{Browser, Form, Page},
    helpers::{Backend, TestApp, expect_status, spawn_app},
};

/// A tiny but well-formed-looking PNG (the signature is what the server checks).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";
/// A Windows executable, whatever its name says.
const EXE: &[u8] = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0 this program cannot be run";

/// Name, birthdate and a selfie (checked by the sandbox provider).
async fn selfie_template(app: &TestApp, key: &str) -> String {
    let attributes = json!({
        "name": "Selfie KYC",
        "field-schemas": [
            {"key": "name-first", "type": "string", "config": {"required": true}},
            {"key": "name-last", "type": "string", "config": {"required": true}},
            {"key": "birthdate", "type": "date", "config": {"required": true}}
        ],
        "verifications": [{"type": "selfie", "required": true}]
    });
    let response = app
        .post(
            key,
            "/api/v1/inquiry-templates",
            &json!({"data": {"attributes": attributes}}),
        )
        .await;
    let body = expect_status(response, StatusCode::CREATED).await;
    body["data"]["id"].as_str().unwrap().to_owned()
}

/// An inquiry with its one-time link.
async fn inquiry_with_link(
    app: &TestApp,
    key: &str,
    template: &str,
    fields: Value,
) -> (String, String) {
    let created = app.create_inquiry(key, template, fields).await;
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let response = app
        .post(
            key,
            &format!("/api/v1/inquiries/{id}/generate-one-time-link"),
            &json!({}),
        )
        .await;
    let body = expect_status(response, StatusCode::OK).await;
    let link = body["meta"]["one-time-link"].as_str().unwrap().to_owned();
    assert!(link.contains("/flow/link/"), "{link}");
    (id, link)
}

async fn inquiry(app: &TestApp, key: &str, id: &str) -> Value {
    expect_status(
        app.get(key, &format!("/api/v1/inquiries/{id}")).await,
        StatusCode::OK,
    )
    .await["data"]
        .clone()
}

async fn file_count(app: &TestApp, key: &str, id: &str) -> usize {
    expect_status(
        app.get(key, &format!("/api/v1/inquiries/{id}/files")).await,
        StatusCode::OK,
    )
    .await["data"]
        .as_array()
        .unwrap()
        .len()
}

/// The text of the page's `<p class="error" id="{id}-error">`, if any.
fn error_of(page: &Page, input_id: &str) -> Option<String> {
    let marker = format!("id=\"{input_id}-error\">");
    let start = page.body.find(&marker)? + marker.len();
    let end = page.body[start..].find("</p>")?;
    Some(page.body[start..start + end].to_owned())
}

async fn completes_an_inquiry_through_the_hosted_flow(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = selfie_template(&app, key).await;
    let (id, link) = inquiry_with_link(
        &app,
        key,
        &template,
        json!({"name-first": "Ada", "name-last": "Lovelace"}),
    )
    .await;

    let mut browser = Browser::new(&app);
    browser.open(&link).await;
    let form = browser.get("/flow/inquiry").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    form.assert_html();
    let body = &form.body;
    assert!(
        body.contains("name=\"field.birthdate\"") && body.contains("type=\"date\""),
        "asks for the birthdate as a date: {body}"
    );
    assert!(body.contains("<label for=\"field-birthdate\">"), "{body}");
    assert!(
        body.contains(
            "type=\"file\" id=\"file-selfie\" name=\"file.selfie\" accept=\"image/jpeg,image/png\""
        ),
        "asks for a selfie: {body}"
    );
    assert!(body.contains("<label for=\"file-selfie\">"), "{body}");
    assert!(body.contains("enctype=\"multipart/form-data\""), "{body}");
    assert!(
        !body.contains("field.name-first") && !body.contains("field.name-last"),
        "only the missing requirements are asked for: {body}"
    );
    assert!(!body.contains("<script"), "no JavaScript: {body}");
    let csrf = form.csrf();
    assert!(csrf.len() >= 32, "{csrf}");

    // Without the CSRF token: refused, nothing saved.
    let refused = browser
        .post(Form::default().text("field.birthdate", "1990-05-17").file(
            "file.selfie",
            "me.png",
            "image/png",
            PNG,
        ))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    refused.assert_html();
    let forged = browser
        .post(
            Form::default()
                .text("csrf", &"ab".repeat(32))
                .text("field.birthdate", "1990-05-17"),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let data = inquiry(&app, key, &id).await;
    assert_eq!(
        data["attributes"]["fields"]["birthdate"]["value"],
        Value::Null
    );
    assert_eq!(file_count(&app, key, &id).await, 0);

    // An impossible date: the form again, the message next to the field, nothing saved (not
    // even the valid selfie sent with it).
    let invalid = browser
        .post(
            Form::default()
                .text("csrf", &csrf)
                .text("field.birthdate", "1990-02-30")
                .file("file.selfie", "me.png", "image/png", PNG),
        )
        .await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        invalid.body
    );
    invalid.assert_html();
    let message = error_of(&invalid, "field-birthdate").expect("an error next to the birthdate");
    assert!(message.contains("date"), "{message}");
    assert!(
        invalid
            .body
            .contains("aria-describedby=\"field-birthdate-hint field-birthdate-error\""),
        "{}",
        invalid.body
    );
    assert!(
        invalid.body.contains("value=\"1990-02-30\""),
        "keeps what was entered"
    );
    assert!(
        invalid.body.contains("href=\"#field-birthdate\""),
        "summary links to it"
    );
    let data = inquiry(&app, key, &id).await;
    assert_eq!(
        data["attributes"]["fields"]["birthdate"]["value"],
        Value::Null
    );
    assert_eq!(data["attributes"]["status"], "created");
    assert_eq!(file_count(&app, key, &id).await, 0);

    // Valid: saved, submitted, and the browser is sent to the checking page.
    let saved = browser
        .post(
            Form::default()
                .text("csrf", &invalid.csrf())
                .text("field.birthdate", "1990-05-17")
                .file("file.selfie", "me.png", "image/png", PNG),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(saved.location.as_deref(), Some("/flow/inquiry"));
    let data = inquiry(&app, key, &id).await;
    assert_eq!(data["attributes"]["status"], "pending");
    assert_eq!(
        data["attributes"]["fields"]["birthdate"]["value"],
        "1990-05-17"
    );
    assert_eq!(
        data["attributes"]["fields"]["name-first"]["value"], "Ada",
        "the prefilled fields are untouched"
    );
    assert_eq!(file_count(&app, key, &id).await, 1);

    let checking = browser.get("/flow/inquiry").await;
    assert_eq!(checking.status, StatusCode::OK);
    assert!(
        checking.body.contains("checking your information"),
        "{}",
        checking.body
    );
    assert!(
        checking
            .body
            .contains("<meta http-equiv=\"refresh\" content=\"2\">"),
        "{}",
        checking.body
    );
    // A second submission while the first is processed changes nothing.
    let again = browser.post(Form::default().text("csrf", &csrf)).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);

    // The server's own workers may run the job first; drain runs whatever is left.
    app.drain().await;
    for _ in 0..100 {
        if inquiry(&app, key, &id).await["attributes"]["status"] != "pending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let outcome = browser.get("/flow/inquiry").await;
    assert_eq!(outcome.status, StatusCode::OK);
    outcome.assert_html();
    assert!(
        outcome.body.contains("You&#39;re verified"),
        "{}",
        outcome.body
    );
    let data = inquiry(&app, key, &id).await;
    assert_eq!(data["attributes"]["status"], "completed");

    // The link was single use.
    let mut other = Browser::new(&app);
    let reused = other.get(&link).await;
    assert_eq!(reused.status, StatusCode::GONE, "{}", reused.body);
    reused.assert_html();
    assert!(reused.body.contains("already been used"), "{}", reused.body);
    assert!(reused.set_cookie.is_none());
}

async fn used_unknown_and_expired_links_get_clear_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = selfie_template(&app, key).await;
    let (id, link) = inquiry_with_link(&app, key, &template, json!({})).await;

    let mut browser = Browser::new(&app);
    browser.open(&link).await;
    let reused = Browser::new(&app).get(&link).await;
    assert_eq!(reused.status, StatusCode::GONE);
    reused.assert_html();
    assert!(!reused.body.trim_start().starts_with('{'), "not JSON");
    assert!(reused.body.contains("already been used"), "{}", reused.body);

    let unknown = Browser::new(&app)
        .get("/flow/link/3yQ9bW1xv5m8n2JkLpRsTuVwXyZaBcDeFgHiJkLmNoP")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    unknown.assert_html();
    assert!(unknown.body.contains("isn&#39;t valid"), "{}", unknown.body);
    let garbage = Browser::new(&app).get("/flow/link/%3Cscript%3E").await;
    assert_eq!(garbage.status, StatusCode::NOT_FOUND);
    assert!(!garbage.body.contains("<script>"));

    // A session token is not a one-time link, and vice versa.
    let resumed = expect_status(
        app.post(key, &format!("/api/v1/inquiries/{id}/resume"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let session_token = resumed["meta"]["session-token"].as_str().unwrap();
    let flow_url = resumed["meta"]["flow-url"].as_str().unwrap();
    assert_eq!(
        Browser::new(&app)
            .get(&format!("/flow/link/{session_token}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // The session URL is reusable until it expires.
    for _ in 0..2 {
        let mut browser = Browser::new(&app);
        browser.open(flow_url).await;
        assert_eq!(browser.get("/flow/inquiry").await.status, StatusCode::OK);
    }

    // An expired link (made directly in the store: a test cannot wait for one).
    let scope = Scope::new(tenant.org_id.clone(), Environment::Sandbox);
    let now = OffsetDateTime::now_utc();
    let mut tx = app.store.begin_write().await.unwrap();
    let (_, expired_token) = sessions::create(
        &mut tx,
        &scope,
        &InquiryId::parse(&id).unwrap(),
        SessionKind::OneTimeLink,
        now - Duration::minutes(1),
        now - Duration::minutes(2),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let expired = Browser::new(&app)
        .get(&format!("/flow/link/{expired_token}"))
        .await;
    assert_eq!(expired.status, StatusCode::GONE, "{}", expired.body);
    expired.assert_html();
    assert!(expired.body.contains("expired"), "{}", expired.body);
    assert!(expired.set_cookie.is_none());

    // An expired inquiry ends its links and sessions.
    expect_status(
        app.post(key, &format!("/api/v1/inquiries/{id}/expire"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let ended = browser.get("/flow/inquiry").await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED, "{}", ended.body);
    ended.assert_html();
    assert!(ended.body.contains("new link"), "{}", ended.body);

    // Unknown flow pages are HTML too; the stylesheet is served locally.
    let missing = Browser::new(&app).get("/flow/nowhere").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    missing.assert_html();
    let css = Browser::new(&app).get("/flow/static/flow.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.content_type.starts_with("text/css"));
}

async fn refuses_an_executable_renamed_png(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = selfie_template(&app, key).await;
    let (id, link) = inquiry_with_link(
        &app,
        key,
        &template,
        json!({"name-first": "Ada", "name-last": "Lovelace"}),
    )
    .await;
    let mut browser = Browser::new(&app);
    browser.open(&link).await;
    let csrf = browser.get("/flow/inquiry").await.csrf();

    let refused = browser
        .post(
            Form::default()
                .text("csrf", &csrf)
                .text("field.birthdate", "1990-05-17")
                .file("file.selfie", "selfie.png", "image/png", EXE),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    refused.assert_html();
    let message = error_of(&refused, "file-selfie").expect("an error next to the file input");
    assert!(message.contains("not a JPEG or PNG image"), "{message}");
    assert!(
        refused.body.contains("value=\"1990-05-17\""),
        "the other values are kept"
    );
    let data = inquiry(&app, key, &id).await;
    assert_eq!(
        data["attributes"]["fields"]["birthdate"]["value"],
        Value::Null
    );
    assert_eq!(data["attributes"]["status"], "created");
    assert_eq!(file_count(&app, key, &id).await, 0);

    // An empty file input is skipped, not an error; a chosen zero-byte file is one.
    let partial = browser
        .post(
            Form::default()
                .text("csrf", &csrf)
                .text("field.birthdate", "1990-05-17")
                .file("file.selfie", "", "application/octet-stream", b""),
        )
        .await;
    assert_eq!(partial.status, StatusCode::SEE_OTHER, "{}", partial.body);
    let data = inquiry(&app, key, &id).await;
    assert_eq!(
        data["attributes"]["fields"]["birthdate"]["value"],
        "1990-05-17"
    );
    assert_eq!(
        data["attributes"]["status"], "created",
        "still missing the selfie"
    );
    let form = browser.get("/flow/inquiry").await;
    assert!(!form.body.contains("field.birthdate"), "{}", form.body);
    assert!(form.body.contains("file.selfie"), "{}", form.body);
    let empty = browser
        .post(Form::default().text("csrf", &csrf).file(
            "file.selfie",
            "empty.png",
            "image/png",
            b"",
        ))
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_of(&empty, "file-selfie").unwrap().contains("empty"));
    assert_eq!(file_count(&app, key, &id).await, 0);
}

async fn a_cookie_is_bound_to_its_inquiry(backend: Backend) {
    let app = spawn_app(backend).await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let acme_template = selfie_template(&app, &acme.sandbox).await;
    let globex_template = selfie_template(&app, &globex.sandbox).await;
    let (acme_id, acme_link) = inquiry_with_link(
        &app,
        &acme.sandbox,
        &acme_template,
        json!({"name-first": "Ada", "name-last": "Lovelace"}),
    )
    .await;
    let (globex_id, globex_link) =
        inquiry_with_link(&app, &globex.sandbox, &globex_template, json!({})).await;

    let mut acme_browser = Browser::new(&app);
    acme_browser.open(&acme_link).await;
    let acme_csrf = acme_browser.get("/flow/inquiry").await.csrf();
    let mut globex_browser = Browser::new(&app);
    globex_browser.open(&globex_link).await;
    let globex_page = globex_browser.get("/flow/inquiry").await;
    assert!(
        globex_page.body.contains("field.name-first"),
        "Globex's cookie shows Globex's inquiry (name missing), not Acme's"
    );

    // Acme's form token does not work with Globex's cookie.
    let crossed = globex_browser
        .post(
            Form::default()
                .text("csrf", &acme_csrf)
                .text("field.birthdate", "1990-05-17"),
        )
        .await;
    assert_eq!(crossed.status, StatusCode::FORBIDDEN);
    // With its own token, Globex's cookie writes to Globex's inquiry only.
    let written = globex_browser
        .post(
            Form::default()
                .text("csrf", &globex_page.csrf())
                .text("field.birthdate", "1985-01-02"),
        )
        .await;
    assert_eq!(written.status, StatusCode::SEE_OTHER, "{}", written.body);
    let globex_data = inquiry(&app, &globex.sandbox, &globex_id).await;
    assert_eq!(
        globex_data["attributes"]["fields"]["birthdate"]["value"],
        "1985-01-02"
    );
    let acme_data = inquiry(&app, &acme.sandbox, &acme_id).await;
    assert_eq!(
        acme_data["attributes"]["fields"]["birthdate"]["value"],
        Value::Null
    );
    // Neither organization's API sees the other's inquiry.
    let response = app
        .get(&globex.sandbox, &format!("/api/v1/inquiries/{acme_id}"))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // No cookie, a garbage cookie, a forged one, or a link token used as a cookie: 401 pages.
    let mut stranger = Browser::new(&app);
    let page = stranger.get("/flow/inquiry").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    page.assert_html();
    for cookie in [
        "idshare_flow=garbage",
        "idshare_flow=3yQ9bW1xv5m8n2JkLpRsTuVwXyZaBcDeFgHiJkLmNoP",
        "idshare_flow=<script>",
        "other=1; idshare_flow=",
    ] {
        stranger.cookie = Some(cookie.to_owned());
        let page = stranger.get("/flow/inquiry").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{cookie}");
        page.assert_html();
        let post = stranger
            .post(
                Form::default()
                    .text("csrf", &acme_csrf)
                    .text("field.birthdate", "1990-05-17"),
            )
            .await;
        assert_eq!(post.status, StatusCode::UNAUTHORIZED, "{cookie}");
    }
    let link_token = acme_link.rsplit('/').next().unwrap();
    stranger.cookie = Some(format!("idshare_flow={link_token}"));
    assert_eq!(
        stranger.get("/flow/inquiry").await.status,
        StatusCode::UNAUTHORIZED,
        "a link's token is not a browser credential"
    );
    let acme_data = inquiry(&app, &acme.sandbox, &acme_id).await;
    assert_eq!(
        acme_data["attributes"]["fields"]["birthdate"]["value"],
        Value::Null
    );
}

async fn entered_text_comes_back_escaped(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = selfie_template(&app, key).await;
    let (id, link) = inquiry_with_link(&app, key, &template, json!({"name-first": "Ada"})).await;
    let mut browser = Browser::new(&app);
    browser.open(&link).await;
    let csrf = browser.get("/flow/inquiry").await.csrf();
    let page = browser
        .post(
            Form::default()
                .text("csrf", &csrf)
                .text("field.name-last", "<script>alert(1)</script>\" onfocus=\"x")
                .text("field.birthdate", "2999-01-01"),
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert!(
        error_of(&page, "field-birthdate")
            .unwrap()
            .contains("must not be in the future")
    );
    assert!(
        !page.body.contains("<script>alert(1)</script>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("\" onfocus=\"x"), "{}", page.body);
    assert!(
        page.body
            .contains("value=\"&#60;script&#62;alert(1)&#60;/script&#62;&#34; onfocus=&#34;x\""),
        "{}",
        page.body
    );
    let data = inquiry(&app, key, &id).await;
    assert_eq!(
        data["attributes"]["fields"]["name-last"]["value"],
        Value::Null
    );
}

async fn asks_for_identity_documents_with_their_own_inputs(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let attributes = json!({
        "name": "Documents",
        "field-schemas": [
            {"key": "name-first", "type": "string", "config": {"required": true}},
            {"key": "name-last", "type": "string", "config": {"required": true}},
            {"key": "tier", "type": "choices", "config": {"required": true, "options": ["basic", "premium"]}},
            {"key": "address-street-1", "type": "string"},
            {"key": "address-city", "type": "string"},
            {"key": "address-postal-code", "type": "string"},
            {"key": "address-country-code", "type": "string"}
        ],
        "verifications": [
            {"type": "government-id", "required": true},
            {"type": "document", "required": true}
        ]
    });
    let created = expect_status(
        app.post(
            key,
            "/api/v1/inquiry-templates",
            &json!({"data": {"attributes": attributes}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let template = created["data"]["id"].as_str().unwrap();
    let (id, link) = inquiry_with_link(
        &app,
        key,
        template,
        json!({"name-first": "Ada", "name-last": "Lovelace", "address-street-1": "1 Main St",
            "address-city": "Springfield", "address-postal-code": "12345", "address-country-code": "US"}),
    )
    .await;
    let mut browser = Browser::new(&app);
    browser.open(&link).await;
    let form = browser.get("/flow/inquiry").await;
    assert_eq!(form.status, StatusCode::OK);
    let body = &form.body;
    for expected in [
        "<select id=\"field-tier\" name=\"field.tier\"",
        "<option value=\"premium\">premium</option>",
        "<legend>Your government ID</legend>",
        "<select id=\"gid-id-class\" name=\"gid.id-class\"",
        "<option value=\"visa\">Visa</option>",
        "name=\"gid.issuing-country\"",
        "name=\"gid.document-number\"",
        "type=\"date\" id=\"gid-expiration-date\"",
        "<textarea id=\"gid-mrz\" name=\"gid.mrz\"",
        "name=\"file.government-id-front\" accept=\"image/jpeg,image/png\"",
        "name=\"file.government-id-back\"",
        "<legend>Proof of address</legend>",
        "<select id=\"poa-document-kind\" name=\"poa.document-kind\"",
        "<option value=\"lease-agreement\">Lease agreement</option>",
        "type=\"date\" id=\"poa-issue-date\"",
        "name=\"poa.address-postal-code\"",
        "name=\"file.proof-of-address\" accept=\"image/jpeg,image/png,application/pdf\"",
    ] {
        assert!(body.contains(expected), "{expected} in {body}");
    }
    let csrf = form.csrf();

    // A parse error in the document (an impossible expiration date) refuses the whole form.
    let today = OffsetDateTime::now_utc().date();
    let issued = today.to_string();
    let refused = browser
        .post(
            Form::default()
                .text("csrf", &csrf)
                .text("field.tier", "premium")
                .text("gid.id-class", "dl")
                .text("gid.issuing-country", "US")
                .text("gid.document-number", "D1234567")
                .text("gid.expiration-date", "2031-13-01")
                .text("poa.document-kind", "utility-bill")
                .text("poa.issue-date", &issued)
                .text("poa.address-street-1", "1 Main St")
                .text("poa.address-city", "Springfield")
                .text("poa.address-postal-code", "12345")
                .text("poa.address-country-code", "USA")
                .file("file.government-id-front", "front.png", "image/png", PNG),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        error_of(&refused, "gid-expiration-date")
            .unwrap()
            .contains("real date")
    );
    assert!(
        error_of(&refused, "poa-address-country-code")
            .unwrap()
            .contains("two-letter")
    );
    assert!(
        refused.body.contains("<option value=\"dl\" selected>"),
        "keeps the choice"
    );
    let data = inquiry(&app, key, &id).await;
    assert_eq!(data["attributes"]["fields"]["tier"]["value"], Value::Null);
    assert_eq!(file_count(&app, key, &id).await, 0);

    // Valid: saved; a driver's license has a back, which is asked for next.
    let saved = browser
        .post(
            Form::default()
                .text("csrf", &csrf)
                .text("field.tier", "premium")
                .text("gid.id-class", "dl")
                .text("gid.issuing-country", "us")
                .text("gid.document-number", "D1234567")
                .text("gid.expiration-date", "2031-12-01")
                .text("poa.document-kind", "utility-bill")
                .text("poa.issue-date", &issued)
                .text("poa.address-street-1", "1 Main St")
                .text("poa.address-city", "Springfield")
                .text("poa.address-postal-code", "12345")
                .text("poa.address-country-code", "US")
                .file("file.government-id-front", "front.png", "image/png", PNG)
                .file(
                    "file.government-id-back",
                    "",
                    "application/octet-stream",
                    b"",
                )
                .file(
                    "file.proof-of-address",
                    "bill.pdf",
                    "application/pdf",
                    b"%PDF-1.7\n%%EOF\n",
                ),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let data = inquiry(&app, key, &id).await;
    assert_eq!(data["attributes"]["fields"]["tier"]["value"], "premium");
    assert_eq!(
        data["attributes"]["status"], "created",
        "the back is still missing"
    );
    assert_eq!(file_count(&app, key, &id).await, 2);
    let next = browser.get("/flow/inquiry").await;
    assert!(
        next.body.contains("name=\"file.government-id-back\""),
        "{}",
        next.body
    );
    assert!(!next.body.contains("gid.id-class"), "{}", next.body);
    assert!(!next.body.contains("poa.document-kind"), "{}", next.body);
    assert!(!next.body.contains("field.tier"), "{}", next.body);
}

backend_tests!(
    completes_an_inquiry_through_the_hosted_flow,
    used_unknown_and_expired_links_get_clear_pages,
    refuses_an_executable_renamed_png,
    a_cookie_is_bound_to_its_inquiry,
    entered_text_comes_back_escaped,
    asks_for_identity_documents_with_their_own_inputs,
);
