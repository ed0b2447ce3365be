//! Connect in Chromium beyond share tokens: a connection made by the source and accepted by the
//! destination, with the template alignment on its page; a redemption stuck on a missing proof
//! of address, finished by the end user in the hosted flow through a one-time link; and another
//! organization's inquiry, which is not found.

use idshare_store::users::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Chrome, sign_in, sign_out, wait_until_completed};
use crate::{
    dashboard::{add_user, connect_setup, id_of},
    helpers::{Backend, TestApp, expect_status, spawn_app, spawn_app_with},
};

const CONNECTIONS: &str = "/dashboard/connect/connections";
const INQUIRIES: &str = "/dashboard/inquiries";
const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n";

/// Creates an inquiry template through the API; returns its id.
async fn template(app: &TestApp, key: &str, attributes: Value) -> String {
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

async fn connection_made_and_accepted_in_the_browser(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.tenant("Acme Bank").await;
    let d = app.tenant("Globex").await;
    add_user(&app, &s.org_id, "ops@acme.example", Role::Admin).await;
    add_user(&app, &d.org_id, "ops@globex.example", Role::Admin).await;
    // The templates the alignment compares, made beforehand through the API.
    let onboarding = template(
        &app,
        &s.sandbox,
        json!({"name": "Onboarding", "field-schemas": [{"key": "name-first", "type": "string"}]}),
    )
    .await;
    let brokerage = template(
        &app,
        &d.sandbox,
        json!({"name": "Brokerage", "field-schemas": [
            {"key": "name-first", "type": "string", "config": {"required": true}},
            {"key": "address-street-1", "type": "string"}, {"key": "address-city", "type": "string"},
            {"key": "address-postal-code", "type": "string"}, {"key": "address-country-code", "type": "string"}],
          "verifications": [{"type": "document", "required": true}]}),
    )
    .await;

    let chrome = Chrome::start(&app).await;

    // The source opens Connect > Connections and connects to the destination's organization.
    sign_in(&chrome, "ops@acme.example").await;
    chrome
        .click(&format!("nav a[href=\"{CONNECTIONS}\"]"))
        .await;
    chrome.wait_for_text("h1", "Connections").await;
    assert_eq!(
        chrome.text("main > p.empty").await,
        "No connections here yet."
    );
    chrome
        .fill("destination_organization_id", d.org_id.as_str())
        .await;
    chrome.click_button("Create connection").await;
    chrome
        .wait_for_text("tbody td:nth-child(3)", "pending")
        .await;
    assert_eq!(chrome.path().await, CONNECTIONS);
    let rows = chrome.attrs("tbody tr", "id").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let connection = rows[0].clone();
    assert!(connection.starts_with("cxn_"), "{connection}");
    let row = format!("tr[id=\"{connection}\"]");
    assert_eq!(
        chrome.text(&format!("{row} td:nth-child(2)")).await,
        "outbound"
    );
    // The partner by name, its id beneath.
    assert_eq!(
        chrome.text(&format!("{row} td:nth-child(4)")).await,
        format!("Globex\n{}", d.org_id)
    );
    assert_eq!(
        chrome.button_count("Accept").await,
        0,
        "not the source's to accept"
    );
    sign_out(&chrome).await;

    // The destination sees it inbound and pending, and accepts it.
    sign_in(&chrome, "ops@globex.example").await;
    chrome
        .click(&format!("nav a[href=\"{CONNECTIONS}\"]"))
        .await;
    chrome.wait_for_text("h1", "Connections").await;
    chrome.select("direction", "inbound").await;
    chrome.click_button("Filter").await;
    chrome
        .wait_for_text(&format!("{row} td:nth-child(3)"), "pending")
        .await;
    assert_eq!(
        chrome.path().await,
        format!("{CONNECTIONS}?direction=inbound")
    );
    assert_eq!(
        chrome.text(&format!("{row} td:nth-child(2)")).await,
        "inbound"
    );
    assert_eq!(
        chrome.text(&format!("{row} td:nth-child(4)")).await,
        format!("Acme Bank\n{}", s.org_id)
    );
    chrome.click_button("Accept").await;
    chrome
        .wait_for_text(&format!("{row} td:nth-child(3)"), "active")
        .await;
    assert_eq!(chrome.button_count("Accept").await, 0);

    // The connection's page: the template alignment of a source and a destination template.
    chrome
        .click(&format!("{row} a[href=\"{CONNECTIONS}/{connection}\"]"))
        .await;
    chrome.wait_for_text("#connection-status", "active").await;
    assert_eq!(chrome.path().await, format!("{CONNECTIONS}/{connection}"));
    assert_eq!(chrome.count("#alignment").await, 0, "nothing compared yet");
    chrome.select("source_template", &onboarding).await;
    chrome.select("destination_template", &brokerage).await;
    chrome.click_button("Compare").await;
    chrome
        .wait_for_text("#alignment > p", "Never collected by the source (6):")
        .await;
    assert_eq!(
        chrome.path().await,
        format!(
            "{CONNECTIONS}/{connection}?source_template={onboarding}&destination_template={brokerage}"
        )
    );
    let never = chrome.texts("#alignment li").await;
    assert_eq!(never.len(), 6, "{never:?}");
    assert!(
        never
            .iter()
            .any(|l| l.starts_with("Proof of address details")),
        "{never:?}"
    );
    assert!(
        !never.iter().any(|l| l.starts_with("First name")),
        "the source collects the first name: {never:?}"
    );
    // The choices stay selected on the result.
    assert_eq!(chrome.value("source_template").await, onboarding);
    assert_eq!(chrome.value("destination_template").await, brokerage);
}

async fn stuck_redemption_finished_by_the_end_user_in_the_browser(backend: Backend) {
    // Real background workers: the redemption and the end user's submission run as in
    // production, and the pages that wait for them reload themselves.
    let app = spawn_app_with(backend, |c| c.workers = 1).await;
    let s = app.tenant("Acme Bank").await;
    let d = app.tenant("Globex").await;
    add_user(&app, &d.org_id, "ops@globex.example", Role::Admin).await;
    let (connection, inquiry, _) = connect_setup(&app, &s, &d).await;
    wait_until_completed(&app, &s.sandbox, &inquiry).await;
    // The destination's template also wants an address and a proof-of-address document, which
    // the source never collected: a redemption into it gets stuck.
    let stuck_template = template(
        &app,
        &d.sandbox,
        json!({"name": "Brokerage with address", "field-schemas": [
            {"key": "email-address", "type": "string"}, {"key": "name-first", "type": "string"},
            {"key": "address-street-1", "type": "string"}, {"key": "address-city", "type": "string"},
            {"key": "address-postal-code", "type": "string"}, {"key": "address-country-code", "type": "string"}],
          "verifications": [{"type": "email-address", "required": true},
                            {"type": "document", "required": true}]}),
    )
    .await;
    let token = id_of(
        &expect_status(
            app.post(
                &s.sandbox,
                "/api/v1/connect/share-tokens",
                &json!({"data": {"attributes": {"connection-id": connection, "source-id": inquiry}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    );

    // The destination redeems the token into that template from Connect > Share Tokens.
    let chrome = Chrome::start(&app).await;
    sign_in(&chrome, "ops@globex.example").await;
    chrome.fill("token", &token).await;
    chrome.click_button("Open").await;
    chrome.wait_for_text("#token-status", "created").await;
    chrome.select("template", &stuck_template).await;
    chrome.click_button("Preview").await;
    chrome
        .wait_for_text("#preview .outcome", "will-be-stuck")
        .await;
    chrome.click_button("Redeem").await;
    chrome.wait_for_text("#token-status", "redeemed").await;
    let destination = chrome.text("#destination-inquiry").await;
    assert!(destination.starts_with("inq_"), "{destination}");
    let inquiry_path = format!("{INQUIRIES}/{destination}");

    // Its inquiry waits for the end user: pending, with what is missing listed.
    chrome.click("#destination-inquiry").await;
    chrome.wait_for_text("#inquiry-status", "pending").await;
    assert_eq!(chrome.path().await, inquiry_path);
    let missing = chrome
        .texts(".columns section:nth-of-type(2) > ul:not(.files) > li")
        .await;
    assert!(!missing.is_empty(), "the missing requirements are listed");
    assert!(
        missing.iter().any(|m| m.contains("roof of address")),
        "{missing:?}"
    );
    assert!(
        !missing
            .iter()
            .any(|m| m.starts_with("First name") || m.starts_with("Email")),
        "copied, so not missing: {missing:?}"
    );
    let page = chrome.source().await;
    assert!(page.contains("ada@example.com"), "the copied email shown");
    assert!(page.contains(&format!("copied from {inquiry} through")));
    chrome.screenshot("stuck-inquiry").await;

    // A one-time link for the end user, shown once.
    chrome
        .click_button("Create a one-time link for the end user")
        .await;
    chrome.wait_for_text("#inquiry-status", "pending").await;
    let link = chrome.text("#one-time-link").await;
    // `spawn_app` makes the server's own address its public URL: the link opens as it is.
    let link_path = link
        .strip_prefix(&app.address)
        .unwrap_or_else(|| panic!("{link} is on {}", app.address))
        .to_owned();
    assert!(link_path.starts_with("/flow/link/"), "{link}");

    // The end user, in a browser of their own, opens the link and is asked only what is
    // missing: the address and the proof of address, not the copied name and email.
    let user = Chrome::start(&app).await;
    user.goto(&link_path).await;
    user.wait_for_text("h1", "Complete your verification").await;
    assert_eq!(user.path().await, "/flow/inquiry");
    let mut inputs = user
        .attrs(
            "form input:not([type=hidden]), form select, form textarea",
            "name",
        )
        .await;
    inputs.sort();
    assert_eq!(
        inputs,
        [
            "field.address-city",
            "field.address-country-code",
            "field.address-postal-code",
            "field.address-street-1",
            "file.proof-of-address",
            "poa.address-city",
            "poa.address-country-code",
            "poa.address-postal-code",
            "poa.address-street-1",
            "poa.address-street-2",
            "poa.address-subdivision",
            "poa.document-kind",
            "poa.issue-date",
        ]
    );
    user.screenshot("hosted-flow").await;
    let flow_page = user.source().await;
    assert!(
        !flow_page.contains("ada@example.com"),
        "no copied value shown"
    );
    for (name, value) in [
        ("field.address-street-1", "1 Main St"),
        ("field.address-city", "Springfield"),
        ("field.address-postal-code", "12345"),
        ("field.address-country-code", "US"),
        ("poa.address-street-1", "1 Main St"),
        ("poa.address-city", "Springfield"),
        ("poa.address-postal-code", "12345"),
        ("poa.address-country-code", "US"),
    ] {
        user.fill(name, value).await;
    }
    user.select("poa.document-kind", "utility-bill").await;
    // Yesterday, in the en-US format a date input takes from the keyboard (month, day, year);
    // never in the future, whatever the browser's time zone.
    let issued = time::OffsetDateTime::now_utc()
        .date()
        .previous_day()
        .unwrap();
    user.fill(
        "poa.issue-date",
        &format!(
            "{:02}{:02}{}",
            u8::from(issued.month()),
            issued.day(),
            issued.year()
        ),
    )
    .await;
    assert_eq!(user.value("poa.issue-date").await, issued.to_string());
    let files = tempfile::tempdir().expect("temp dir");
    let bill = files.path().join("bill.pdf");
    std::fs::write(&bill, PDF).expect("write the PDF");
    user.upload("file.proof-of-address", &bill).await;
    assert!(
        user.value("file.proof-of-address")
            .await
            .ends_with("bill.pdf"),
        "the file is chosen"
    );
    user.click_button("Submit").await;
    // "We're checking your information" (reloading itself) until a worker has run the
    // pipeline, then the outcome.
    user.wait_for_text("h1", "You're verified").await;
    assert_eq!(user.path().await, "/flow/inquiry");

    // The destination's inquiry page now shows it completed, with the address the user gave.
    chrome.goto(&inquiry_path).await;
    chrome.wait_for_text("#inquiry-status", "completed").await;
    let done = chrome.source().await;
    assert!(done.contains("Springfield"));
    assert!(done.contains("ada@example.com"));
    assert_eq!(chrome.count("#one-time-link").await, 0, "shown only once");
    let attributes = expect_status(
        app.get(&d.sandbox, &format!("/api/v1/inquiries/{destination}"))
            .await,
        StatusCode::OK,
    )
    .await["data"]["attributes"]
        .clone();
    assert_eq!(attributes["status"], "completed", "{attributes}");
    assert_eq!(attributes["fields"]["address-city"]["value"], "Springfield");
    assert_eq!(attributes["fields"]["name-first"]["value"], "Ada");
}

async fn another_organizations_inquiry_is_not_found_in_the_browser(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.tenant("Acme Bank").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &s.org_id, "ops@acme.example", Role::Admin).await;
    add_user(&app, &c.org_id, "eve@stranger.example", Role::Admin).await;
    let onboarding = template(
        &app,
        &s.sandbox,
        json!({"name": "Onboarding", "field-schemas": [
            {"key": "name-first", "type": "string"}, {"key": "name-last", "type": "string"},
            {"key": "email-address", "type": "string"}]}),
    )
    .await;
    let inquiry = id_of(
        &app.create_inquiry(
            &s.sandbox,
            &onboarding,
            json!({"name-first": "Ada", "name-last": "Lovelace", "email-address": "ada@example.com"}),
        )
        .await,
    );
    let inquiry_path = format!("{INQUIRIES}/{inquiry}");

    let chrome = Chrome::start(&app).await;
    // Its own organization sees it.
    sign_in(&chrome, "ops@acme.example").await;
    chrome.goto(&inquiry_path).await;
    chrome.wait_for_text("#inquiry-status", "created").await;
    assert!(chrome.source().await.contains("Lovelace"));
    sign_out(&chrome).await;

    // Another organization's admin gets the 404 page, and nothing of the inquiry.
    sign_in(&chrome, "eve@stranger.example").await;
    chrome.goto(&inquiry_path).await;
    chrome.wait_for_text("h1", "Page not found").await;
    assert_eq!(chrome.path().await, inquiry_path);
    let page = chrome.source().await;
    for leak in [
        inquiry.as_str(),
        "Ada",
        "Lovelace",
        "ada@example.com",
        "Onboarding",
        s.org_id.as_str(),
    ] {
        assert!(!page.contains(leak), "{leak} leaked: {page}");
    }
    assert_eq!(chrome.count("#inquiry-status").await, 0);
    // Nor does its list of inquiries show it. (The 404 page is a bare message, without the
    // dashboard's header.)
    assert_eq!(chrome.count("nav").await, 0);
    chrome.goto(INQUIRIES).await;
    chrome.wait_for_text("h1", "Inquiries").await;
    assert!(!chrome.source().await.contains(&inquiry));
}

backend_tests!(
    connection_made_and_accepted_in_the_browser,
    stuck_redemption_finished_by_the_end_user_in_the_browser,
    another_organizations_inquiry_is_not_found_in_the_browser,
);
