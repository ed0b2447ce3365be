//! The dashboard as a reviewer reads it, through HTTP without JavaScript: people, templates and
//! partners by name (people masked for viewers), times as `<time>` with the exact time on hover,
//! an inquiry's decision with who made it, when and the comment (sealed at rest), and the
//! overview's review queue, approval rate and inquiries by status. Another organization and
//! the other environment find nothing.

use idshare_domain::inquiry::InquiryStatus;
use idshare_store::users::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    at_rest::{contains, stored_bytes},
    browser::{Browser, Page},
    dashboard::{add_user, connect_setup, csrf, id_of, signed_in, text_of},
    helpers::{Backend, Tenant, TestApp, expect_status, spawn_app},
    inquiries::force_status,
};

const INQUIRIES: &str = "/dashboard/inquiries";
const OVERVIEW: &str = "/dashboard/overview";
const CONNECTIONS: &str = "/dashboard/connect/connections";
const COMMENT: &str = "Passport seen on a video call";

/// A template named "Retail onboarding" and one completed inquiry of it per (first, last) name.
pub(crate) async fn completed_inquiries(
    app: &TestApp,
    t: &Tenant,
    names: &[(&str, &str)],
) -> (String, Vec<String>) {
    let template = id_of(
        &expect_status(
            app.post(
                &t.sandbox,
                "/api/v1/inquiry-templates",
                &json!({"data": {"attributes": {"name": "Retail onboarding", "field-schemas": [
                    {"key": "name-first", "type": "string"},
                    {"key": "name-last", "type": "string"}]}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    );
    let mut ids = vec![];
    for (first, last) in names {
        let id = id_of(
            &app.create_inquiry(
                &t.sandbox,
                &template,
                json!({"name-first": first, "name-last": last}),
            )
            .await,
        );
        force_status(app, &t.org_id, &id, InquiryStatus::Completed).await;
        ids.push(id);
    }
    (template, ids)
}

/// Posts a decision (`approve`, `decline`, `mark-for-review`) from the inquiry's page.
pub(crate) async fn decide(browser: &mut Browser, inquiry: &str, action: &str, comment: &str) {
    let path = format!("{INQUIRIES}/{inquiry}");
    let page = browser.get(&path).await;
    let decided = browser
        .submit(
            &format!("{path}/{action}"),
            &[
                ("csrf", &page.csrf()),
                ("comment", comment),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(
        decided.location.as_deref(),
        Some(path.as_str()),
        "{}",
        decided.body
    );
}

async fn switch_to_production(browser: &mut Browser) {
    let token = csrf(browser).await;
    let switched = browser
        .submit(
            "/dashboard/environment",
            &[("csrf", &token), ("environment", "production")],
        )
        .await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
}

/// A `<time>` element: machine-readable, the exact UTC time on hover, relative text.
fn assert_times(page: &Page) {
    assert!(page.body.contains("<time datetime=\"20"), "{}", page.body);
    assert!(
        page.body
            .contains(" UTC\" class=\"relative\">just now</time>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<script src=\"/dashboard/static/local-time.js\" defer></script>")
    );
}

async fn people_are_named_and_masked_for_viewers(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &t.org_id, "ops@bank.example", Role::Admin).await;
    add_user(&app, &t.org_id, "review@bank.example", Role::Reviewer).await;
    add_user(&app, &t.org_id, "auditor@bank.example", Role::Viewer).await;
    add_user(&app, &c.org_id, "eve@stranger.example", Role::Admin).await;
    let (template, ids) =
        completed_inquiries(&app, &t, &[("Jane", "Doe"), ("Zoë", "Ørsted")]).await;
    let (jane, zoe) = (&ids[0], &ids[1]);

    // The admin's list: people and templates by name, ids beside them, times with the exact
    // time on hover.
    let mut admin = signed_in(&app, "ops@bank.example").await;
    let list = admin.get(INQUIRIES).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains(">Jane Doe</a>"), "{}", list.body);
    assert!(list.body.contains(">Zoë Ørsted</a>"), "{}", list.body);
    assert!(
        list.body
            .contains(&format!("<code class=\"id\">{jane}</code>"))
    );
    assert!(list.body.contains(&format!(
        "<a href=\"/dashboard/templates/{template}\" class=\"template\">Retail onboarding</a>"
    )));
    assert_times(&list);

    // The viewer sees initials only, in the list and on the page, and no field value.
    let mut viewer = signed_in(&app, "auditor@bank.example").await;
    let list = viewer.get(INQUIRIES).await;
    assert!(list.body.contains(">J••• D•••</a>"), "{}", list.body);
    assert!(list.body.contains(">Z••• Ø•••</a>"), "{}", list.body);
    for name in ["Jane", "Doe", "Zoë", "Ørsted"] {
        assert!(!list.body.contains(name), "{name} in {}", list.body);
    }
    let page = viewer.get(&format!("{INQUIRIES}/{jane}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(text_of(&page, "person"), "J••• D•••");
    assert!(
        !page.body.contains("Jane") && !page.body.contains("Doe"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Field values and files are not shown to your role.")
    );
    assert!(page.body.contains(">Retail onboarding</a>"));

    // The reviewer decides with a comment: the page says what, who, when and why.
    let mut reviewer = signed_in(&app, "review@bank.example").await;
    let page = reviewer.get(&format!("{INQUIRIES}/{jane}")).await;
    assert_eq!(text_of(&page, "person"), "Jane Doe");
    assert!(!page.body.contains("id=\"decision\""), "no decision yet");
    decide(&mut reviewer, jane, "approve", COMMENT).await;
    let page = reviewer.get(&format!("{INQUIRIES}/{jane}")).await;
    assert_eq!(text_of(&page, "decision-what"), "Approved");
    assert_eq!(text_of(&page, "decision-by"), "review@bank.example");
    assert_eq!(text_of(&page, "decision-comment"), COMMENT);
    assert!(
        page.body
            .contains("<dd id=\"decision-at\"><time datetime=\"20"),
        "{}",
        page.body
    );
    assert_times(&page);
    // A later decision replaces the shown one (the audit log keeps both).
    decide(&mut reviewer, zoe, "mark-for-review", "").await;
    decide(&mut reviewer, zoe, "decline", "").await;
    let page = admin.get(&format!("{INQUIRIES}/{zoe}")).await;
    assert_eq!(text_of(&page, "decision-what"), "Declined");
    assert_eq!(text_of(&page, "decision-comment"), "");
    assert!(
        page.body
            .contains("<dd id=\"decision-comment\"><span class=\"empty\">None.</span>")
    );

    // The viewer sees who decided, not the comment (it may name the person); it is sealed at rest.
    let page = viewer.get(&format!("{INQUIRIES}/{jane}")).await;
    assert_eq!(text_of(&page, "decision-by"), "review@bank.example");
    assert!(!page.body.contains(COMMENT));
    assert!(page.body.contains("Not shown to your role."));
    assert!(
        !contains(&stored_bytes(&app).await, COMMENT),
        "the comment is sealed"
    );

    // A decision made through the API names the key that made it (the audit log has it).
    let api_decided = &completed_inquiries(&app, &t, &[("Ada", "Byron")]).await.1[0];
    expect_status(
        app.post(
            &t.sandbox,
            &format!("/api/v1/inquiries/{api_decided}/approve"),
            &json!({"meta": {"comment": "batch approval"}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let page = admin.get(&format!("{INQUIRIES}/{api_decided}")).await;
    assert_eq!(text_of(&page, "decision-what"), "Approved");
    assert_eq!(text_of(&page, "decision-by"), "API key “test”");
    assert_eq!(text_of(&page, "decision-comment"), "batch approval");

    // Another organization, and the other environment, find neither the pages nor the names.
    let mut stranger = signed_in(&app, "eve@stranger.example").await;
    let foreign = stranger.get(&format!("{INQUIRIES}/{jane}")).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let foreign_list = stranger.get(INQUIRIES).await;
    for leak in ["Jane", "J•••", jane.as_str(), "Retail onboarding"] {
        assert!(!foreign_list.body.contains(leak), "{leak}");
    }
    switch_to_production(&mut admin).await;
    let elsewhere = admin.get(&format!("{INQUIRIES}/{jane}")).await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
    assert!(!admin.get(INQUIRIES).await.body.contains("Jane"));
}

async fn partners_are_named_in_connect(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.tenant("Acme Bank").await;
    let d = app.tenant("Globex").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &s.org_id, "ops@acme.example", Role::Admin).await;
    add_user(&app, &d.org_id, "auditor@globex.example", Role::Viewer).await;
    add_user(&app, &c.org_id, "eve@stranger.example", Role::Admin).await;
    let (connection, source, _) = connect_setup(&app, &s, &d).await;
    let token = id_of(
        &expect_status(
            app.post(
                &s.sandbox,
                "/api/v1/connect/share-tokens",
                &json!({"data": {"attributes": {"connection-id": connection, "source-id": source}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    );

    // The source sees its partner by name, the source inquiry by its person's name.
    let mut source_admin = signed_in(&app, "ops@acme.example").await;
    let list = source_admin.get(CONNECTIONS).await;
    assert!(
        list.body.contains("<span class=\"partner\">Globex</span>"),
        "{}",
        list.body
    );
    let page = source_admin
        .get(&format!("{CONNECTIONS}/{connection}"))
        .await;
    assert_eq!(text_of(&page, "partner"), "Globex ");
    let tokens = source_admin.get("/dashboard/connect/share-tokens").await;
    assert!(
        tokens
            .body
            .contains("<span class=\"partner\">Globex</span>"),
        "{}",
        tokens.body
    );
    assert!(
        tokens
            .body
            .contains("<span class=\"person\">Ada Lovelace</span>"),
        "the source inquiry's person: {}",
        tokens.body
    );
    assert!(
        tokens.body.contains(&format!(
            "<option value=\"{connection}\">Globex ({connection})</option>"
        )),
        "{}",
        tokens.body
    );
    let page = source_admin
        .get(&format!("/dashboard/connect/share-tokens/{token}"))
        .await;
    assert_eq!(text_of(&page, "partner"), "Globex");
    assert!(
        page.body
            .contains("<span class=\"person\">Ada Lovelace</span>"),
        "{}",
        page.body
    );
    assert_times(&page);

    // The destination, a viewer, sees the source by name.
    let mut viewer = signed_in(&app, "auditor@globex.example").await;
    let list = viewer.get(CONNECTIONS).await;
    assert!(
        list.body
            .contains("<span class=\"partner\">Acme Bank</span>"),
        "{}",
        list.body
    );
    let page = viewer
        .get(&format!("/dashboard/connect/share-tokens/{token}"))
        .await;
    assert_eq!(text_of(&page, "partner"), "Acme Bank");
    assert!(
        !page.body.contains("Ada Lovelace"),
        "not the source's inquiry"
    );

    // An organization without a connection learns neither name nor connection.
    let mut stranger = signed_in(&app, "eve@stranger.example").await;
    for path in [CONNECTIONS, "/dashboard/connect/share-tokens"] {
        let page = stranger.get(path).await;
        assert!(!page.body.contains("Globex") && !page.body.contains("Acme Bank"));
    }
    let foreign = stranger.get(&format!("{CONNECTIONS}/{connection}")).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
}

/// The number a figure of the overview shows.
fn figure(page: &Page, id: &str) -> String {
    let start = page
        .body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in {}", page.body));
    let marker = "<span class=\"number\">";
    let from = start + page.body[start..].find(marker).unwrap() + marker.len();
    let to = from + page.body[from..].find('<').unwrap();
    page.body[from..to].to_owned()
}

async fn the_overview_shows_the_review_queue_and_the_approval_rate(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &t.org_id, "review@bank.example", Role::Reviewer).await;
    add_user(&app, &t.org_id, "auditor@bank.example", Role::Viewer).await;
    add_user(&app, &c.org_id, "eve@stranger.example", Role::Admin).await;

    // Nothing yet: every part says so.
    let mut reviewer = signed_in(&app, "review@bank.example").await;
    let empty = reviewer.get(OVERVIEW).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(figure(&empty, "review-queue"), "0");
    assert_eq!(figure(&empty, "approval-rate"), "—");
    assert_eq!(
        empty
            .body
            .matches("<p class=\"no-data\">No data yet</p>")
            .count(),
        4,
        "inquiries by status and the three charts: {}",
        empty.body
    );
    assert!(!empty.body.contains("<svg"), "no empty chart");

    // Four inquiries: one approved, one declined, one waiting for review, one completed.
    let (_, ids) = completed_inquiries(
        &app,
        &t,
        &[("Ann", "A"), ("Bob", "B"), ("Cy", "C"), ("Di", "D")],
    )
    .await;
    decide(&mut reviewer, &ids[0], "approve", "").await;
    decide(&mut reviewer, &ids[1], "decline", "").await;
    decide(&mut reviewer, &ids[2], "mark-for-review", "").await;
    let page = reviewer.get(OVERVIEW).await;
    assert_eq!(figure(&page, "review-queue"), "1");
    assert!(
        page.body.contains(
            "<a href=\"/dashboard/inquiries?status=needs_review\">1 inquiry needs review</a>"
        ),
        "{}",
        page.body
    );
    assert_eq!(figure(&page, "approval-rate"), "50 %");
    assert!(
        page.body
            .contains("1 approved of 2 decided in the last 14 days.")
    );
    for (status, count) in [
        ("completed", 1),
        ("needs_review", 1),
        ("approved", 1),
        ("declined", 1),
        ("pending", 0),
    ] {
        assert!(
            page.body.contains(&format!(
                "<td><a href=\"/dashboard/inquiries?status={status}\"><span class=\"status \
                 status-{status}\">{status}</span></a></td>\n        <td class=\"count\">{count}</td>"
            )),
            "{status}: {}",
            page.body
        );
    }
    // The queue's link lists exactly the inquiry waiting for review.
    let queue = reviewer
        .get("/dashboard/inquiries?status=needs_review")
        .await;
    assert!(queue.body.contains(&ids[2]));
    for other in [&ids[0], &ids[1], &ids[3]] {
        assert!(!queue.body.contains(other.as_str()));
    }

    // The viewer sees the same figures; another organization and the other environment none.
    let mut viewer = signed_in(&app, "auditor@bank.example").await;
    assert_eq!(figure(&viewer.get(OVERVIEW).await, "review-queue"), "1");
    switch_to_production(&mut viewer).await;
    let production = viewer.get(OVERVIEW).await;
    assert_eq!(figure(&production, "review-queue"), "0");
    assert_eq!(figure(&production, "approval-rate"), "—");
    let mut stranger = signed_in(&app, "eve@stranger.example").await;
    let foreign = stranger.get(OVERVIEW).await;
    assert_eq!(figure(&foreign, "review-queue"), "0");
    assert_eq!(foreign.body.matches("No data yet</p>").count(), 4);
}

backend_tests!(
    people_are_named_and_masked_for_viewers,
    partners_are_named_in_connect,
    the_overview_shows_the_review_queue_and_the_approval_rate,
);
