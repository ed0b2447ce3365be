//! A reviewer's day in Chromium: the overview before and after there is data (charts drawn at
//! their own size, labels at the page's font size), people by name on the list (initials for
//! a viewer), a decision with its comment on the inquiry's page, and times rewritten into the
//! browser's locale by the local-time script.

use idshare_store::users::Role;
use reqwest::StatusCode;
use serde_json::json;

use super::{Chrome, sign_out};
use crate::{
    dashboard::{PASSWORD, add_user, connect_setup, id_of},
    dashboard_review::completed_inquiries,
    helpers::{Backend, expect_status, spawn_app},
};

const OVERVIEW: &str = "/dashboard/overview";
const INQUIRIES: &str = "/dashboard/inquiries";

/// Signs in through the form and waits for the overview.
async fn sign_in_to_overview(chrome: &Chrome, email: &str) {
    chrome.goto("/dashboard").await;
    chrome.wait_for_text("h1", "Sign in to idshare").await;
    chrome.fill("email", email).await;
    chrome.fill("password", PASSWORD).await;
    chrome.click_button("Sign in").await;
    chrome.wait_for_text("h1", "Overview").await;
}

/// Waits until the local-time script has rewritten the page's times.
async fn wait_for_local_times(chrome: &Chrome) {
    let start = std::time::Instant::now();
    while chrome.count("time[data-localized]").await != chrome.count("time").await {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "the local-time script did not run"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn a_reviewer_works_through_the_queue_in_the_browser(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let partner = app.tenant("Fintech").await;
    add_user(&app, &t.org_id, "review@bank.example", Role::Reviewer).await;
    add_user(&app, &t.org_id, "auditor@bank.example", Role::Viewer).await;
    let chrome = Chrome::start(&app).await;

    // Nothing yet: the overview says so instead of drawing empty charts.
    sign_in_to_overview(&chrome, "review@bank.example").await;
    assert_eq!(chrome.count(".no-data").await, 4);
    assert_eq!(chrome.count("svg.chart").await, 0);
    assert_eq!(chrome.text("#review-queue .number").await, "0");
    assert_eq!(chrome.text("#approval-rate .number").await, "—");
    chrome.screenshot("overview-empty").await;

    // Inquiries to review, and a share token so that Connect has data too.
    let (_, ids) = completed_inquiries(
        &app,
        &t,
        &[("Jane", "Doe"), ("Omar", "Haddad"), ("Li", "Wei")],
    )
    .await;
    let (connection, source, _) = connect_setup(&app, &t, &partner).await;
    id_of(
        &expect_status(
            app.post(
                &t.sandbox,
                "/api/v1/connect/share-tokens",
                &json!({"data": {"attributes": {"connection-id": connection, "source-id": source}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    );

    // The list names people and templates; the id is there too, smaller.
    chrome.goto(INQUIRIES).await;
    chrome.wait_for_text("h1", "Inquiries").await;
    let people = chrome.texts("table a.person").await;
    for name in ["Jane Doe", "Omar Haddad", "Li Wei", "Ada Lovelace"] {
        assert!(people.iter().any(|p| p == name), "{name} in {people:?}");
    }
    assert!(
        chrome
            .texts("table a.template")
            .await
            .iter()
            .any(|t| t == "Retail onboarding")
    );
    assert_eq!(
        chrome.text(&format!("tr[id=\"{}\"] code.id", ids[0])).await,
        ids[0]
    );
    wait_for_local_times(&chrome).await;

    // Times in the browser's locale (en-US here): the exact time on hover as Intl formats it,
    // "now" rather than the server's "just now".
    let hover = chrome.attrs("table time", "title").await;
    let expected = chrome
        .execute(
            "return Array.from(document.querySelectorAll('table time')).map(t => \
             new Intl.DateTimeFormat(undefined, {dateStyle: 'full', timeStyle: 'long'})\
             .format(new Date(t.dateTime)));",
        )
        .await;
    let expected: Vec<String> = serde_json::from_value(expected).expect("strings");
    assert_eq!(hover, expected);
    assert!(
        hover
            .iter()
            .all(|h| !h.ends_with(" UTC") || h.contains(',')),
        "rewritten from the server's form: {hover:?}"
    );
    let weekdays = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    assert!(
        hover
            .iter()
            .all(|h| weekdays.iter().any(|d| h.starts_with(d))),
        "{hover:?}"
    );
    let texts = chrome.texts("table time").await;
    assert!(
        texts.iter().all(|t| t == "now" || t.ends_with(" ago")),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t == "now"), "{texts:?}");

    // Jane's page: the reviewer approves with a comment, and the decision block says who,
    // when and why.
    chrome.goto(&format!("{INQUIRIES}/{}", ids[0])).await;
    chrome.wait_for_text("#person", "Jane Doe").await;
    assert_eq!(chrome.count("#decision").await, 0);
    chrome
        .fill("comment", "Passport seen on a video call")
        .await;
    chrome.click_button("Approve").await;
    // A decision is final: the confirmation page asks first, keeping the comment.
    chrome
        .wait_for_text("#confirm h1", &format!("Approve inquiry {}?", ids[0]))
        .await;
    chrome.click_button("Approve this inquiry").await;
    chrome.wait_for_text("#inquiry-status", "approved").await;
    assert_eq!(chrome.text("#decision-what").await, "Approved");
    assert_eq!(chrome.text("#decision-by").await, "review@bank.example");
    assert_eq!(
        chrome.text("#decision-comment").await,
        "Passport seen on a video call"
    );
    wait_for_local_times(&chrome).await;
    assert_eq!(chrome.text("#decision-at time").await, "now");
    chrome.screenshot("inquiry-decision").await;

    // Omar's is declined, Li's waits for review.
    for (id, action) in [(&ids[1], "Decline"), (&ids[2], "Mark for review")] {
        chrome.goto(&format!("{INQUIRIES}/{id}")).await;
        chrome.wait_for_text("h1 .status", "completed").await;
        chrome.click_button(action).await;
        if action == "Decline" {
            chrome.click_button("Decline this inquiry").await;
        }
        chrome
            .wait_for_text("#decision-by", "review@bank.example")
            .await;
    }

    // The overview now: the queue (linked to the filtered list), the rate, the statuses, and
    // charts drawn at their own size with labels at the page's font size.
    chrome.goto(OVERVIEW).await;
    chrome.wait_for_text("h1", "Overview").await;
    assert_eq!(chrome.text("#review-queue .number").await, "1");
    assert_eq!(chrome.text("#approval-rate .number").await, "50 %");
    assert_eq!(chrome.count("#inquiries-by-status tbody tr").await, 8);
    assert_eq!(chrome.count("#tokens-chart svg.chart").await, 1);
    let sizes = chrome
        .execute(
            "const chart = document.querySelector('#tokens-chart svg.chart'); \
             return [chart.getBoundingClientRect().width, \
                     getComputedStyle(chart.querySelector('text')).fontSize, \
                     getComputedStyle(document.querySelector('ul.legend')).fontSize, \
                     getComputedStyle(document.querySelector('table')).fontSize];",
        )
        .await;
    assert_eq!(sizes[0], 500, "not scaled: {sizes}");
    assert_eq!(sizes[1], "14px", "{sizes}");
    assert_eq!(sizes[1], sizes[2], "axis labels and legend alike: {sizes}");
    chrome.screenshot("overview-review").await;
    chrome.click("#review-queue a").await;
    chrome.wait_for_text("h1", "Inquiries").await;
    assert_eq!(
        chrome.path().await,
        "/dashboard/inquiries?status=needs_review"
    );
    assert_eq!(chrome.texts("table a.person").await, ["Li Wei"]);
    sign_out(&chrome).await;

    // A viewer sees initials, and who decided, but no comment.
    sign_in_to_overview(&chrome, "auditor@bank.example").await;
    chrome.goto(INQUIRIES).await;
    chrome.wait_for_text("h1", "Inquiries").await;
    let masked = chrome.texts("table a.person").await;
    assert!(masked.iter().any(|p| p == "J••• D•••"), "{masked:?}");
    assert!(!chrome.source().await.contains("Jane"));
    chrome.goto(&format!("{INQUIRIES}/{}", ids[0])).await;
    chrome.wait_for_text("#person", "J••• D•••").await;
    assert_eq!(chrome.text("#decision-by").await, "review@bank.example");
    assert_eq!(
        chrome.text("#decision-comment").await,
        "Not shown to your role."
    );
}

backend_tests!(a_reviewer_works_through_the_queue_in_the_browser);
