//! The dashboard for reviewers in Chromium at 1280 px: the webhook deliveries table fits and a
//! delivery's page shows what was sent and the answer; a share token is previewed and redeemed
//! with a field mapping; expiring a token asks first and says when it is done; the inquiries
//! list pages older and newer, and is searched by name.

use idshare_store::users::Role;
use reqwest::StatusCode;
use serde_json::json;

use super::{Chrome, sign_in};
use crate::{
    dashboard::{TOKENS, add_user, connect_setup, id_of},
    helpers::{Backend, expect_status, spawn_app_with},
    webhooks::Receiver,
};

/// Whether the page scrolls sideways (what does not fit the window).
async fn overflows(chrome: &Chrome) -> bool {
    chrome
        .execute("return document.documentElement.scrollWidth > window.innerWidth;")
        .await
        == json!(true)
}

async fn a_delivery_is_read_and_the_deliveries_table_fits(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.workers = 0).await;
    let t = app.tenant("Acme Bank").await;
    add_user(&app, &t.org_id, "ops@acme.example", Role::Admin).await;
    let receiver = Receiver::start().await;
    receiver.answer_body("{\"received\": true}");
    let chrome = Chrome::start(&app).await;
    sign_in(&chrome, "ops@acme.example").await;
    chrome.goto("/dashboard/webhooks").await;
    chrome.fill("name", "Compliance archive").await;
    chrome.fill("url", &receiver.url).await;
    chrome.fill("enabled_events", "inquiry.created").await;
    chrome.click_button("Create webhook").await;
    chrome.wait_for_text("#webhook-status", "enabled").await;
    let webhook = chrome.text("#webhook-id").await;
    let webhook_path = format!("/dashboard/webhooks/{webhook}");
    let template = app.create_template(&t.sandbox).await;
    for name in ["Ada", "Grace", "Katherine"] {
        app.create_inquiry(&t.sandbox, &template, json!({"name-first": name}))
            .await;
    }
    app.drain().await;
    chrome.goto(&webhook_path).await;
    chrome.wait_for_text("#webhook-status", "enabled").await;
    assert_eq!(chrome.count("table.deliveries tbody tr").await, 3);
    assert!(
        !overflows(&chrome).await,
        "the deliveries table fits at 1280 px"
    );
    let wrap_overflows = chrome
        .execute(
            "const w = document.querySelector('table.deliveries').parentElement; \
             return w.scrollWidth > w.clientWidth;",
        )
        .await;
    assert_eq!(
        wrap_overflows,
        json!(false),
        "no sideways scrolling in the table"
    );
    chrome
        .execute("document.querySelector('h2 + .table-wrap').scrollIntoView();")
        .await;
    chrome.screenshot("webhook").await;

    chrome
        .click("table.deliveries tbody tr:first-child td.actions a")
        .await;
    chrome.wait_for_text("#delivery-status", "delivered").await;
    assert!(
        chrome
            .path()
            .await
            .starts_with(&format!("{webhook_path}/deliveries/wbhd_"))
    );
    let payload = chrome.text("#delivery-payload").await;
    assert!(payload.contains("\"inquiry.created\""), "{payload}");
    assert!(payload.contains("Katherine"), "the newest first: {payload}");
    assert_eq!(chrome.count("#attempts tbody tr").await, 1);
    assert_eq!(chrome.text("#attempts tbody td strong").await, "200");
    assert_eq!(
        chrome.text("#attempts pre.excerpt").await,
        "{\"received\": true}"
    );
    assert!(
        !overflows(&chrome).await,
        "the delivery's page fits at 1280 px"
    );
    chrome.screenshot("webhook-delivery").await;
}

async fn a_token_is_redeemed_with_a_mapping_and_expired_after_confirming(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.workers = 0).await;
    let s = app.tenant("Acme Bank").await;
    let d = app.tenant("Globex").await;
    add_user(&app, &s.org_id, "ops@acme.example", Role::Admin).await;
    add_user(&app, &d.org_id, "ops@globex.example", Role::Admin).await;
    let (connection, inquiry, _) = connect_setup(&app, &s, &d).await;
    let template = id_of(
        &expect_status(
            app.post(
                &d.sandbox,
                "/api/v1/inquiry-templates",
                &json!({"data": {"attributes": {"name": "Brokerage", "field-schemas": [
                    {"key": "given-name", "type": "string"},
                    {"key": "email-address", "type": "string"}]}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    );
    let new_token = || async {
        id_of(
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
        )
    };
    let redeemed = new_token().await;
    let chrome = Chrome::start(&app).await;
    sign_in(&chrome, "ops@globex.example").await;

    // Choose the template, map the partner's `name-first` to `given-name`, preview, redeem.
    chrome.goto(&format!("{TOKENS}/{redeemed}")).await;
    chrome.wait_for_text("#token-status", "created").await;
    chrome.select("template", &template).await;
    chrome.click_button("Preview").await;
    chrome
        .wait_for_text("#field-mappings legend", "Field mappings (optional)")
        .await;
    chrome.fill("source-1", "name-first").await;
    chrome.select("destination-1", "given-name").await;
    chrome.click_button("Preview").await;
    chrome
        .wait_for_text(
            "#redeem-mappings",
            "With 1 field mapping: name-first → given-name.",
        )
        .await;
    assert_eq!(chrome.value("source-1").await, "name-first");
    chrome.screenshot("share-token-mappings").await;
    chrome.click_button("Redeem").await;
    chrome.wait_for_text("#notice", "Redemption started.").await;
    app.drain().await;
    chrome.goto(&format!("{TOKENS}/{redeemed}")).await;
    chrome.wait_for_text("#token-status", "redeemed").await;
    assert_eq!(chrome.count("#notice").await, 0, "the notice is shown once");
    let destination_inquiry = chrome.text("#destination-inquiry").await;
    let copied = expect_status(
        app.get(
            &d.sandbox,
            &format!("/api/v1/inquiries/{destination_inquiry}"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        copied["data"]["attributes"]["fields"]["given-name"]["value"],
        "Ada"
    );

    // The source expires another token: asked first, cancelled, then confirmed.
    let expired = new_token().await;
    super::sign_out(&chrome).await;
    sign_in(&chrome, "ops@acme.example").await;
    let token_path = format!("{TOKENS}/{expired}");
    chrome.goto(&token_path).await;
    chrome.wait_for_text("#token-status", "created").await;
    chrome.click_button("Expire this token").await;
    chrome
        .wait_for_text("#confirm h1", &format!("Expire share token {expired}?"))
        .await;
    chrome.screenshot("confirmation").await;
    chrome.click("#confirm a").await;
    chrome.wait_for_text("#token-status", "created").await;
    assert_eq!(chrome.path().await, token_path);
    chrome.click_button("Expire this token").await;
    chrome
        .wait_for_text("#confirm h1", &format!("Expire share token {expired}?"))
        .await;
    chrome.click_button("Expire this token").await;
    chrome
        .wait_for_text("#notice", "Share token expired.")
        .await;
    assert_eq!(chrome.text("#token-status").await, "expired");
}

async fn the_inquiries_list_pages_older_and_newer(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.workers = 0).await;
    let t = app.tenant("Acme Bank").await;
    add_user(&app, &t.org_id, "ops@acme.example", Role::Admin).await;
    let template = app.create_template(&t.sandbox).await;
    let mut created = vec![];
    for i in 0..27 {
        let inquiry = app
            .create_inquiry(
                &t.sandbox,
                &template,
                json!({"name-first": format!("N{i}")}),
            )
            .await;
        created.push(id_of(&inquiry));
    }
    let chrome = Chrome::start(&app).await;
    sign_in(&chrome, "ops@acme.example").await;
    chrome.goto("/dashboard/inquiries").await;
    chrome.wait_for_text("h1", "Inquiries").await;
    assert_eq!(chrome.count("tbody tr").await, 25);
    assert_eq!(chrome.count("a[rel=prev]").await, 0);
    chrome.click("a[rel=next]").await;
    chrome
        .wait_for_text("a[rel=prev]", "← Newer inquiries")
        .await;
    assert_eq!(chrome.count("tbody tr").await, 2);
    assert_eq!(chrome.count("a[rel=next]").await, 0);
    let oldest = chrome
        .attrs("tbody tr a[href^='/dashboard/inquiries/']", "href")
        .await;
    assert_eq!(
        oldest,
        vec![
            format!("/dashboard/inquiries/{}", created[1]),
            format!("/dashboard/inquiries/{}", created[0]),
        ]
    );
    chrome.screenshot("inquiries-older").await;
    chrome.click("a[rel=prev]").await;
    chrome
        .wait_for_text("a[rel=next]", "Older inquiries →")
        .await;
    assert_eq!(chrome.count("tbody tr").await, 25);
    assert_eq!(chrome.count("a[rel=prev]").await, 0);
    assert_eq!(
        chrome.attrs("tbody tr:first-child a.person", "href").await,
        vec![format!("/dashboard/inquiries/{}", created[26])]
    );

    // The search finds one by its name, whatever its case.
    chrome.fill("q", "n13").await;
    chrome.click_button("Filter").await;
    chrome
        .wait_for_text("tbody tr td:nth-child(2)", "created")
        .await;
    assert_eq!(
        chrome
            .attrs("tbody tr a[href^='/dashboard/inquiries/']", "href")
            .await,
        vec![format!("/dashboard/inquiries/{}", created[13])]
    );
    assert_eq!(chrome.value("q").await, "n13");
    chrome.screenshot("inquiries-search").await;
}

backend_tests!(
    a_delivery_is_read_and_the_deliveries_table_fits,
    a_token_is_redeemed_with_a_mapping_and_expired_after_confirming,
    the_inquiries_list_pages_older_and_newer,
);
