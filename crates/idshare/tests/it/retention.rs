//! Retention: a template's period and the organization's default, set in the dashboard by an
//! admin (bad input refused, other roles, organizations and environments kept out), shown on
//! the template and inquiry pages, and housekeeping redacting ended inquiries once their period
//! has run out — not before, and not inquiries still in use.

use idshare_domain::{environment::Environment, id::InquiryTemplateId};
use idshare_store::{Cursor, Scope, audit, users::Role};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    browser::Browser,
    dashboard::{add_user, csrf, signed_in, text_of},
    helpers::{Backend, TestApp, expect_status, spawn_app},
};

async fn set_retention(browser: &mut Browser, path: &str, days: &str) -> crate::browser::Page {
    let token = csrf(browser).await;
    browser
        .submit(path, &[("csrf", &token), ("days", days)])
        .await
}

async fn redact_overdue(app: &TestApp) -> usize {
    idshare_service::retention::redact_overdue(&app.state)
        .await
        .unwrap()
}

async fn inquiry(app: &TestApp, key: &str, id: &str) -> serde_json::Value {
    expect_status(
        app.get(key, &format!("/api/v1/inquiries/{id}")).await,
        StatusCode::OK,
    )
    .await
}

/// An inquiry of `template` that ended (expired) now.
async fn ended_inquiry(app: &TestApp, key: &str, template: &str) -> String {
    let created = app
        .create_inquiry(
            key,
            template,
            json!({"name-first": "Ada", "name-last": "Lovelace"}),
        )
        .await;
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let expired = app
        .post(key, &format!("/api/v1/inquiries/{id}/expire"), &json!({}))
        .await;
    expect_status(expired, StatusCode::OK).await;
    id
}

async fn retention_is_set_in_the_dashboard_and_redacts_ended_inquiries(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    add_user(&app, &t.org_id, "admin@bank.example", Role::Admin).await;
    add_user(&app, &t.org_id, "viewer@bank.example", Role::Viewer).await;
    let own = app.create_template(&t.sandbox).await;
    let defaulted = app.create_template(&t.sandbox).await;
    let mut admin = signed_in(&app, "admin@bank.example").await;

    // Nothing set: data is kept, and the pages say so.
    let page = admin.get("/dashboard/templates").await;
    assert!(page.body.contains("No default"), "{}", page.body);
    let page = admin.get(&format!("/dashboard/templates/{own}")).await;
    assert!(
        page.body
            .contains("keep their data until someone redacts them")
    );

    // Bad input is refused with the reason next to the field, and changes nothing.
    for bad in ["0", "abc", "36501", "-3"] {
        let page = set_retention(&mut admin, "/dashboard/templates/default-retention", bad).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(
            text_of(&page, "retention-error").contains("whole number of days from 1 to 36500"),
            "{}",
            page.body
        );
        let path = format!("/dashboard/templates/{own}/retention");
        let page = set_retention(&mut admin, &path, bad).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(page.body.contains("aria-invalid=\"true\""));
    }
    let page = admin.get("/dashboard/templates").await;
    assert!(page.body.contains("No default"), "unchanged: {}", page.body);

    // The admin sets a default of 30 days and 7 days on one template.
    let page = set_retention(&mut admin, "/dashboard/templates/default-retention", "30").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = set_retention(
        &mut admin,
        &format!("/dashboard/templates/{own}/retention"),
        " 7 ",
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = admin.get(&format!("/dashboard/templates/{own}")).await;
    assert!(
        page.body
            .contains("redacted automatically 7 days after they end.")
    );
    let page = admin
        .get(&format!("/dashboard/templates/{defaulted}"))
        .await;
    assert!(page.body.contains(
        "redacted automatically 30 days after they end (the organization&#39;s default)"
    ));

    // A viewer may not change it; another organization's or environment's template is not found.
    let mut viewer = signed_in(&app, "viewer@bank.example").await;
    let page = set_retention(&mut viewer, "/dashboard/templates/default-retention", "1").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    let other = app.tenant("Other").await;
    let theirs = app.create_template(&other.sandbox).await;
    let production = app.create_template(&t.production).await;
    for template in [&theirs, &production] {
        let path = format!("/dashboard/templates/{template}/retention");
        let page = set_retention(&mut admin, &path, "1").await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{template}");
    }
    let mut tx = app.store.begin_read().await.unwrap();
    let untouched = idshare_store::retention::of_template(
        &mut tx,
        &Scope::new(other.org_id.clone(), Environment::Sandbox),
        &InquiryTemplateId::parse(&theirs).unwrap(),
    )
    .await
    .unwrap();
    drop(tx);
    assert!(
        matches!(untouched, Some((None, None))),
        "the other organization's settings are untouched: {untouched:?}"
    );

    // Ended inquiries are scheduled; one still in use is not.
    let short = ended_inquiry(&app, &t.sandbox, &own).await;
    let long = ended_inquiry(&app, &t.sandbox, &defaulted).await;
    let open = app
        .create_inquiry(&t.sandbox, &own, json!({"name-first": "Grace"}))
        .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = admin.get(&format!("/dashboard/inquiries/{short}")).await;
    assert!(
        text_of(&page, "scheduled-redaction").contains("7 days after it ended"),
        "{}",
        page.body
    );
    let page = admin.get(&format!("/dashboard/inquiries/{open}")).await;
    assert!(!page.body.contains("scheduled-redaction"));

    assert_eq!(redact_overdue(&app).await, 0, "nothing is due yet");
    app.state.advance_clock(time::Duration::days(8));
    assert_eq!(redact_overdue(&app).await, 1);
    let redacted = inquiry(&app, &t.sandbox, &short).await;
    assert!(redacted["data"]["attributes"]["redacted-at"].is_string());
    assert_eq!(
        redacted["data"]["attributes"]["fields"]["name-first"]["value"],
        json!(null)
    );
    for kept in [&long, &open] {
        let body = inquiry(&app, &t.sandbox, kept).await;
        assert!(
            body["data"]["attributes"]["redacted-at"].is_null(),
            "{kept}"
        );
    }
    let events = expect_status(
        app.get(
            &t.sandbox,
            &format!("/api/v1/events?filter[object-id]={short}&filter[name]=inquiry.redacted"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1, "{events}");

    app.state.advance_clock(time::Duration::days(23));
    assert_eq!(
        redact_overdue(&app).await,
        1,
        "the default's 30 days are over"
    );
    let body = inquiry(&app, &t.sandbox, &long).await;
    assert!(body["data"]["attributes"]["redacted-at"].is_string());
    let body = inquiry(&app, &t.sandbox, &open).await;
    assert!(
        body["data"]["attributes"]["redacted-at"].is_null(),
        "still in use"
    );
    assert_eq!(redact_overdue(&app).await, 0);

    // Every change is in the audit log, with who made it.
    let mut tx = app.store.begin_read().await.unwrap();
    let entries = audit::list(
        &mut tx,
        &Scope::new(t.org_id.clone(), Environment::Sandbox),
        None,
        None,
        Cursor::Start,
        100,
    )
    .await
    .unwrap()
    .unwrap();
    drop(tx);
    let changes: Vec<(&str, &str)> = entries
        .items
        .iter()
        .filter(|e| e.action.ends_with("retention-changed"))
        .map(|e| (e.action.as_str(), e.object_id.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            ("inquiry-template.retention-changed", own.as_str()),
            ("organization.retention-changed", t.org_id.as_str()),
        ]
    );
}

backend_tests!(retention_is_set_in_the_dashboard_and_redacts_ended_inquiries,);
