//! Connect > Share Tokens in Chromium: the source creates a token, the destination previews and
//! redeems it and watches the page follow the redemption; a viewer cannot redeem; another
//! organization finds nothing.

use idshare_store::users::Role;
use reqwest::StatusCode;
use serde_json::json;

use super::{Chrome, sign_in, sign_out, wait_until_completed};
use crate::{
    dashboard::{PASSWORD, TOKENS, add_user, connect_setup, id_of},
    helpers::{Backend, expect_status, spawn_app_with},
};

async fn share_token_redeemed_in_the_browser(backend: Backend) {
    // Real background workers: the redemption runs as it does in production, and the token's
    // page (meta refresh while `pending`) follows it on its own.
    let app = spawn_app_with(backend, |c| c.workers = 1).await;
    let s = app.tenant("Acme Bank").await;
    let d = app.tenant("Globex").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &s.org_id, "ops@acme.example", Role::Admin).await;
    add_user(&app, &d.org_id, "ops@globex.example", Role::Admin).await;
    add_user(&app, &d.org_id, "auditor@globex.example", Role::Viewer).await;
    add_user(&app, &c.org_id, "eve@stranger.example", Role::Admin).await;
    let (connection, inquiry, template) = connect_setup(&app, &s, &d).await;
    wait_until_completed(&app, &s.sandbox, &inquiry).await;

    let chrome = Chrome::start(&app).await;

    // The source signs in and creates a token for the connection and its inquiry.
    chrome.goto("/dashboard").await;
    chrome.wait_for_text("h1", "Sign in to idshare").await;
    chrome.fill("email", "ops@acme.example").await;
    chrome.screenshot("sign-in").await;
    chrome.fill("password", PASSWORD).await;
    chrome.click_button("Sign in").await;
    chrome.wait_for_text("h1", "Overview").await;
    chrome.goto(TOKENS).await;
    chrome.wait_for_text("h1", "Share Tokens").await;
    assert_eq!(
        chrome.text(".account span").await,
        "ops@acme.example · admin"
    );
    chrome.select("connection_id", &connection).await;
    chrome.fill("inquiry_id", &inquiry).await;
    chrome.click_button("Create").await;
    chrome.wait_for_text("#token-status", "created").await;
    let share_token = chrome.text("h1 code").await;
    assert!(share_token.starts_with("cnst_"), "{share_token}");
    let token_path = format!("{TOKENS}/{share_token}");
    assert_eq!(chrome.path().await, token_path);
    assert_eq!(chrome.text(".facts dd:nth-of-type(2)").await, "outbound");

    // The list shows it, linked.
    chrome.click("a[aria-current=page]").await;
    chrome.wait_for_text("h1", "Share Tokens").await;
    assert_eq!(
        chrome
            .text(&format!("table a[href=\"{token_path}\"]"))
            .await,
        share_token
    );
    chrome.screenshot("share-tokens").await;
    sign_out(&chrome).await;

    // The destination pastes the token, previews with its template and redeems.
    sign_in(&chrome, "ops@globex.example").await;
    chrome.fill("token", &share_token).await;
    chrome.click_button("Open").await;
    chrome.wait_for_text("#token-status", "created").await;
    assert_eq!(chrome.path().await, token_path);
    chrome.select("template", &template).await;
    chrome.click_button("Preview").await;
    chrome
        .wait_for_text("#preview .outcome", "will-complete")
        .await;
    assert_eq!(
        chrome.path().await,
        format!("{token_path}?template={template}")
    );
    assert!(
        !chrome.source().await.contains("ada@example.com"),
        "a preview shows no value"
    );
    chrome.click_button("Redeem").await;
    // `pending` until a worker has run the redemption, and the page reloads itself meanwhile
    // (unless the worker was quicker than the redirect).
    let first = chrome.source().await;
    if first.contains("id=\"token-status\">pending<") {
        assert!(first.contains("http-equiv=\"refresh\""), "{first}");
    }
    chrome.wait_for_text("#token-status", "redeemed").await;
    assert_eq!(chrome.path().await, token_path);
    assert_eq!(
        chrome.count("meta[http-equiv=refresh]").await,
        0,
        "a finished token's page stops reloading"
    );
    let destination_inquiry = chrome.text("#destination-inquiry").await;
    assert!(
        destination_inquiry.starts_with("inq_"),
        "{destination_inquiry}"
    );
    assert_eq!(chrome.button_count("Redeem").await, 0);
    chrome.screenshot("share-token-redeemed").await;
    // The destination inquiry's page: the copied data, where it came from, the reused check.
    chrome.click("#destination-inquiry").await;
    chrome.wait_for_text("#inquiry-status", "completed").await;
    let inquiry_page = chrome.source().await;
    assert!(inquiry_page.contains("ada@example.com"));
    assert!(
        inquiry_page.contains(&format!("copied from {inquiry} through")),
        "provenance shown"
    );
    assert!(inquiry_page.contains("reused from ver_"));
    chrome.screenshot("inquiry").await;
    chrome.goto("/dashboard/overview").await;
    chrome.wait_for_text("h1", "Overview").await;
    assert_eq!(chrome.count("svg.chart").await, 3);
    chrome.screenshot("overview").await;
    let copied = expect_status(
        app.get(
            &d.sandbox,
            &format!("/api/v1/inquiries/{destination_inquiry}"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(copied["data"]["attributes"]["status"], "completed");
    assert_eq!(
        copied["data"]["attributes"]["fields"]["name-first"]["value"],
        "Ada"
    );
    sign_out(&chrome).await;

    // A viewer of the destination previews a second token but gets no Redeem button.
    let second = id_of(
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
    sign_in(&chrome, "auditor@globex.example").await;
    chrome.goto(&format!("{TOKENS}/{second}")).await;
    chrome.wait_for_text("#token-status", "created").await;
    chrome.select("template", &template).await;
    chrome.click_button("Preview").await;
    chrome
        .wait_for_text("#preview .outcome", "will-complete")
        .await;
    assert_eq!(chrome.button_count("Redeem").await, 0);
    assert_eq!(
        chrome.text("#preview > p.empty").await,
        "Your role cannot redeem share tokens."
    );
    sign_out(&chrome).await;

    // Another organization's user finds nothing at the token's address.
    sign_in(&chrome, "eve@stranger.example").await;
    chrome.goto(&token_path).await;
    chrome.wait_for_text("h1", "Page not found").await;
    assert!(!chrome.source().await.contains(&inquiry));
    assert!(!chrome.source().await.contains(&destination_inquiry));
}

/// With JavaScript, a pending token's page follows the redemption without reloading: htmx
/// fetches the status panel every second and swaps it in (without JavaScript the page reloads
/// itself instead).
async fn a_pending_token_is_followed_without_reloading(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.workers = 0).await;
    let s = app.tenant("Acme Bank").await;
    let d = app.tenant("Globex").await;
    add_user(&app, &d.org_id, "ops@globex.example", Role::Admin).await;
    let (connection, inquiry, template) = connect_setup(&app, &s, &d).await;
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
    expect_status(
        app.post(
            &d.sandbox,
            &format!("/api/v1/connect/share-tokens/{token}/redeem"),
            &json!({"data": {"attributes": {"inquiry-template-id": template}}}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;

    let chrome = Chrome::start(&app).await;
    sign_in(&chrome, "ops@globex.example").await;
    chrome.goto(&format!("{TOKENS}/{token}")).await;
    chrome.wait_for_text("#token-status", "pending").await;
    assert_eq!(
        chrome.count("meta[http-equiv=refresh]").await,
        0,
        "with JavaScript the refresh is only a <noscript> fallback"
    );
    // A mark in the page's JavaScript state survives only if the page is not reloaded.
    chrome.execute("window.idshareMark = 42;").await;
    app.drain().await;
    chrome.wait_for_text("#token-status", "redeemed").await;
    assert_eq!(
        chrome.execute("return window.idshareMark;").await,
        json!(42)
    );
    assert!(
        chrome
            .text("#destination-inquiry")
            .await
            .starts_with("inq_")
    );
}

backend_tests!(
    share_token_redeemed_in_the_browser,
    a_pending_token_is_followed_without_reloading,
);
