//! The dashboard's Settings through HTTP, as a browser without JavaScript uses them: Webhooks,
//! API keys and the Audit log — with bad input, hostile text, roles, and other organizations'
//! and environments' objects.

use idshare_domain::{environment::Environment, id::OrgId, permission::Permission};
use idshare_store::{Cursor, Scope, api_keys, audit, users::Role};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    browser::{Browser, Page},
    dashboard::{add_user, csrf, signed_in, text_of},
    helpers::{Backend, TestApp, expect_status, spawn_app, spawn_app_with},
    webhooks::{Receiver, verify_with},
};

const WEBHOOKS: &str = "/dashboard/webhooks";
const API_KEYS: &str = "/dashboard/api-keys";
const AUDIT: &str = "/dashboard/audit";
/// What `<script>alert(1)</script>` looks like once escaped.
const ESCAPED_SCRIPT: &str = "&#60;script&#62;alert(1)&#60;/script&#62;";

/// The page has no markup that came from the input: its only scripts are the vendored htmx and
/// the local-time script.
fn assert_no_script(page: &Page) {
    let scripts = page.body.matches("<script").count();
    let ours = ["htmx.min.js", "local-time.js"]
        .iter()
        .map(|file| {
            page.body
                .matches(&format!(
                    "<script src=\"/dashboard/static/{file}\" defer></script>"
                ))
                .count()
        })
        .sum::<usize>();
    assert_eq!(scripts, ours, "{}", page.body);
}

async fn switch(browser: &mut Browser, environment: &str) {
    let token = csrf(browser).await;
    let page = browser
        .submit(
            "/dashboard/environment",
            &[("csrf", &token), ("environment", environment)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

/// The webhooks of a tenant's key, through the API.
async fn api_webhooks(app: &TestApp, key: &str) -> Vec<Value> {
    expect_status(app.get(key, "/api/v1/webhooks").await, StatusCode::OK).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// The path of the first Redeliver form on the page.
fn redeliver_path(page: &Page) -> Option<String> {
    let marker = "action=\"/dashboard/webhooks/";
    page.body.match_indices(marker).find_map(|(at, _)| {
        let rest = &page.body[at + "action=\"".len()..];
        let path = &rest[..rest.find('"')?];
        path.ends_with("/redeliver").then(|| path.to_owned())
    })
}

/// The status shown in a delivery's (or any object's) row.
fn row_status(page: &Page, id: &str) -> String {
    let row = page
        .body
        .find(&format!("<tr id=\"{id}\">"))
        .unwrap_or_else(|| panic!("a row for {id}: {}", page.body));
    let rest = &page.body[row..];
    let marker = "class=\"status status-";
    let start = rest.find(marker).unwrap() + marker.len();
    rest[start..start + rest[start..].find('"').unwrap()].to_owned()
}

async fn webhooks_are_managed_in_the_dashboard(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Acme Bank").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &t.org_id, "ops@acme.example", Role::Admin).await;
    add_user(&app, &t.org_id, "review@acme.example", Role::Reviewer).await;
    add_user(&app, &t.org_id, "auditor@acme.example", Role::Viewer).await;
    add_user(&app, &c.org_id, "eve@stranger.example", Role::Admin).await;
    let receiver = Receiver::start().await;

    let mut admin = signed_in(&app, "ops@acme.example").await;
    let empty = admin.get(WEBHOOKS).await;
    assert_eq!(empty.status, StatusCode::OK);
    empty.assert_html();
    assert!(empty.body.contains("No webhooks here yet."));
    assert!(empty.body.contains("aria-current=\"page\">Webhooks<"));
    let token = empty.csrf();

    // Bad input: each reason next to its field, the input kept (escaped), nothing created.
    let refused = admin
        .submit(
            WEBHOOKS,
            &[
                ("csrf", &token),
                ("name", "<script>alert(1)</script>"),
                ("url", "not a url <script>alert(1)</script>"),
                (
                    "enabled_events",
                    "inquiry.created\n<script>alert(1)</script>",
                ),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_no_script(&refused);
    assert!(text_of(&refused, "url-error").contains("not an absolute URL"));
    let events_error = text_of(&refused, "events-error");
    assert!(
        events_error.contains("is not an event name"),
        "{events_error}"
    );
    assert!(
        refused.body.contains(&format!(
            "name=\"name\" maxlength=\"200\" value=\"{ESCAPED_SCRIPT}\""
        )),
        "the name kept, escaped: {}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains(&format!("inquiry.created\n{ESCAPED_SCRIPT}</textarea>")),
        "{}",
        refused.body
    );
    let unknown = admin
        .submit(
            WEBHOOKS,
            &[
                ("csrf", &token),
                ("url", &receiver.url),
                ("enabled_events", "inquiry.created, inquiry.nonsense"),
            ],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text_of(&unknown, "events-error").contains("`inquiry.nonsense` is not an event name"));
    assert!(
        !unknown.body.contains("id=\"url-error\""),
        "the URL was fine"
    );
    let blank = admin
        .submit(
            WEBHOOKS,
            &[("csrf", &token), ("url", " "), ("enabled_events", " , ")],
        )
        .await;
    assert_eq!(blank.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text_of(&blank, "url-error").contains("Enter the URL"));
    assert!(text_of(&blank, "events-error").contains("at least one event"));
    assert!(
        api_webhooks(&app, &t.sandbox).await.is_empty(),
        "nothing created"
    );

    // Created: the secret is shown on the answer, and only there.
    let created = admin
        .submit(
            WEBHOOKS,
            &[
                ("csrf", &token),
                ("name", "CRM <script>alert(1)</script>"),
                ("url", &receiver.url),
                ("enabled_events", "inquiry.created\r\ninquiry.completed"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_no_script(&created);
    assert!(created.body.contains(&format!("CRM {ESCAPED_SCRIPT}")));
    let webhook = text_of(&created, "webhook-id");
    assert!(webhook.starts_with("wbh_"), "{webhook}");
    let secret = text_of(&created, "webhook-secret");
    assert!(secret.starts_with("wbhsec_"), "{secret}");
    assert!(created.body.contains("shown only this once"));
    assert_eq!(text_of(&created, "webhook-status"), "enabled");
    let path = format!("{WEBHOOKS}/{webhook}");
    let page = admin.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains(&secret),
        "the secret is not shown again"
    );
    assert!(!page.body.contains("id=\"webhook-secret\""));
    assert_eq!(text_of(&page, "webhook-url"), receiver.url);
    assert!(page.body.contains("<code>inquiry.completed</code>"));
    assert!(page.body.contains("No deliveries yet."));
    let list = admin.get(WEBHOOKS).await;
    assert_eq!(row_status(&list, &webhook), "enabled");
    assert!(list.body.contains(&receiver.url));
    assert!(list.body.contains("inquiry.created, inquiry.completed"));
    assert!(!list.body.contains(&secret));
    let listed = api_webhooks(&app, &t.sandbox).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], webhook.as_str());

    // A delivery: signed with the secret shown, listed with its attempt, and redelivered.
    let template = app.create_template(&t.sandbox).await;
    app.create_inquiry(&t.sandbox, &template, json!({"name-first": "Ada"}))
        .await;
    app.drain().await;
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert!(verify_with(&app, &got[0], &secret));
    let page = admin.get(&path).await;
    let redeliver = redeliver_path(&page).expect("a Redeliver button");
    let delivery = redeliver.split('/').nth(5).unwrap().to_owned();
    assert!(delivery.starts_with("wbhd_"), "{delivery}");
    assert_eq!(row_status(&page, &delivery), "delivered");
    assert!(page.body.contains("<code>inquiry.created</code>"));
    assert!(
        page.body.contains("<strong>200</strong>"),
        "the last status code"
    );
    let again = admin.submit(&redeliver, &[("csrf", &token)]).await;
    assert_eq!(
        again.location.as_deref(),
        Some(path.as_str()),
        "{}",
        again.body
    );
    let pending = admin.get(&path).await;
    assert_eq!(row_status(&pending, &delivery), "pending");
    assert!(redeliver_path(&pending).is_none(), "not while pending");
    let twice = admin.submit(&redeliver, &[("csrf", &token)]).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert!(
        text_of(&twice, "webhook-error").contains("already pending"),
        "{}",
        twice.body
    );
    assert_eq!(app.drain().await, 1);
    assert_eq!(receiver.received().len(), 2);
    receiver.answer(500);
    let failing = admin.submit(&redeliver, &[("csrf", &token)]).await;
    assert_eq!(failing.status, StatusCode::SEE_OTHER);
    app.drain().await;
    let page = admin.get(&path).await;
    assert!(page.body.contains("<strong>500</strong>"), "{}", page.body);
    assert!(page.body.contains("the receiver answered 500"));
    receiver.answer(200);

    // Rotation: a bad overlap is refused next to its field and changes nothing.
    for (overlap, reason) in [
        ("soon", "whole number of seconds"),
        ("<script>alert(1)</script>", "whole number of seconds"),
        ("99999999", "604800"),
    ] {
        let bad = admin
            .submit(
                &format!("{path}/rotate-secret"),
                &[("csrf", &token), ("overlap_seconds", overlap)],
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_no_script(&bad);
        assert!(
            text_of(&bad, "overlap-error").contains(reason),
            "{}",
            bad.body
        );
        assert!(!bad.body.contains("id=\"webhook-secret\""));
        assert!(
            !bad.body.contains("Previous secret signs until"),
            "not rotated"
        );
    }
    let rotated = admin
        .submit(
            &format!("{path}/rotate-secret"),
            &[("csrf", &token), ("overlap_seconds", "3600")],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new_secret = text_of(&rotated, "webhook-secret");
    assert!(new_secret.starts_with("wbhsec_"));
    assert_ne!(new_secret, secret);
    assert!(rotated.body.contains("The previous secret keeps signing"));
    let page = admin.get(&path).await;
    assert!(!page.body.contains(&new_secret));
    assert!(page.body.contains("Previous secret signs until"));

    // A viewer and a reviewer read, without buttons, and are refused if they try.
    let mut viewer = signed_in(&app, "auditor@acme.example").await;
    let seen = viewer.get(&path).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert_eq!(text_of(&seen, "webhook-status"), "enabled");
    assert!(!seen.body.contains(">Disable<"));
    assert!(!seen.body.contains("Rotate the signing secret"));
    assert!(redeliver_path(&seen).is_none());
    assert!(!viewer.get(WEBHOOKS).await.body.contains("Create a webhook"));
    let denied = viewer
        .submit(&format!("{path}/disable"), &[("csrf", &seen.csrf())])
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let denied = viewer
        .submit(
            WEBHOOKS,
            &[
                ("csrf", &seen.csrf()),
                ("url", &receiver.url),
                ("enabled_events", "*"),
            ],
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let mut reviewer = signed_in(&app, "review@acme.example").await;
    let review_csrf = csrf(&mut reviewer).await;
    for action in ["rotate-secret", "archive"] {
        let denied = reviewer
            .submit(&format!("{path}/{action}"), &[("csrf", &review_csrf)])
            .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
    }
    let denied = reviewer.submit(&redeliver, &[("csrf", &review_csrf)]).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let page = admin.get(&path).await;
    assert_eq!(text_of(&page, "webhook-status"), "enabled");
    assert_eq!(
        api_webhooks(&app, &t.sandbox).await.len(),
        1,
        "none created"
    );
    assert_eq!(app.drain().await, 0, "nothing redelivered");

    // Another organization and the other environment find nothing, and learn nothing.
    let mut stranger = signed_in(&app, "eve@stranger.example").await;
    let foreign = stranger.get(&path).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert!(!foreign.body.contains(&receiver.url));
    let stranger_list = stranger.get(WEBHOOKS).await;
    assert!(!stranger_list.body.contains(&webhook));
    assert!(!stranger_list.body.contains(&receiver.url));
    let stranger_csrf = csrf(&mut stranger).await;
    for target in [
        format!("{path}/disable"),
        format!("{path}/rotate-secret"),
        redeliver.clone(),
    ] {
        let attempt = stranger.submit(&target, &[("csrf", &stranger_csrf)]).await;
        assert_eq!(attempt.status, StatusCode::NOT_FOUND, "{target}");
        assert!(!attempt.body.contains(&receiver.url));
        assert!(!attempt.body.contains("wbhsec_"));
    }
    switch(&mut admin, "production").await;
    let elsewhere = admin.get(&path).await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
    assert!(!elsewhere.body.contains(&receiver.url));
    assert!(!admin.get(WEBHOOKS).await.body.contains(&webhook));
    let attempt = admin
        .submit(&format!("{path}/disable"), &[("csrf", &token)])
        .await;
    assert_eq!(attempt.status, StatusCode::NOT_FOUND);
    switch(&mut admin, "sandbox").await;
    assert_eq!(
        text_of(&admin.get(&path).await, "webhook-status"),
        "enabled",
        "nobody changed it"
    );

    // Disabled: only Enable and Archive remain; a redelivery from an old page is refused.
    let disabled = admin
        .submit(&format!("{path}/disable"), &[("csrf", &token)])
        .await;
    assert_eq!(disabled.location.as_deref(), Some(path.as_str()));
    let page = admin.get(&path).await;
    assert_eq!(text_of(&page, "webhook-status"), "disabled");
    assert!(page.body.contains(">Enable<"));
    assert!(page.body.contains(">Archive…<"));
    assert!(!page.body.contains(">Disable<"));
    assert!(redeliver_path(&page).is_none());
    let stale = admin.submit(&redeliver, &[("csrf", &token)]).await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(text_of(&stale, "webhook-error").contains("only by an enabled webhook"));
    let twice = admin
        .submit(&format!("{path}/disable"), &[("csrf", &token)])
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert!(text_of(&twice, "webhook-error").contains("Cannot disable"));
    let unknown_action = admin
        .submit(&format!("{path}/explode"), &[("csrf", &token)])
        .await;
    assert_eq!(unknown_action.status, StatusCode::NOT_FOUND);

    // Archived: no action and no rotation any more.
    let archived = admin
        .submit(
            &format!("{path}/archive"),
            &[("csrf", &token), ("confirm", "yes")],
        )
        .await;
    assert_eq!(archived.status, StatusCode::SEE_OTHER);
    let page = admin.get(&path).await;
    assert_eq!(text_of(&page, "webhook-status"), "archived");
    assert!(!page.body.contains(">Enable<"));
    assert!(!page.body.contains("Rotate the signing secret"));
    let late = admin
        .submit(&format!("{path}/rotate-secret"), &[("csrf", &token)])
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert!(text_of(&late, "webhook-error").contains("no secret to rotate"));

    // What the admin did is in the audit log.
    let mut tx = app.store.begin_read().await.unwrap();
    let entries = audit::list(
        &mut tx,
        &Scope::new(t.org_id.clone(), Environment::Sandbox),
        Some(&webhook),
        None,
        Cursor::Start,
        100,
    )
    .await
    .unwrap()
    .unwrap();
    drop(tx);
    let actions: Vec<&str> = entries.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "webhook.archived",
            "webhook.disabled",
            "webhook.secret-rotated",
            "webhook.created"
        ]
    );
}

async fn webhooks_to_private_addresses_are_refused_in_the_dashboard(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.allow_private_webhook_targets = false;
    })
    .await;
    let t = app.tenant("Acme Bank").await;
    add_user(&app, &t.org_id, "ops@acme.example", Role::Admin).await;
    let mut admin = signed_in(&app, "ops@acme.example").await;
    let token = csrf(&mut admin).await;
    let refused = admin
        .submit(
            WEBHOOKS,
            &[
                ("csrf", &token),
                ("url", "http://127.0.0.1:9/hook"),
                ("enabled_events", "*"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        text_of(&refused, "url-error").contains("may not be sent to loopback addresses"),
        "{}",
        refused.body
    );
    assert!(!refused.body.contains("id=\"events-error\""));
    assert!(
        refused.body.contains("value=\"http://127.0.0.1:9/hook\""),
        "kept"
    );
    assert!(api_webhooks(&app, &t.sandbox).await.is_empty());
}

/// The keys of a scope, newest first, straight from the store.
async fn keys_of(app: &TestApp, org: &OrgId, environment: Environment) -> Vec<api_keys::ApiKey> {
    let mut tx = app.store.begin_read().await.unwrap();
    let page = api_keys::list(
        &mut tx,
        &Scope::new(org.clone(), environment),
        Cursor::Start,
        100,
    )
    .await
    .unwrap()
    .unwrap();
    page.items
}

async fn api_keys_are_created_and_revoked_in_the_dashboard(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Acme Bank").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &t.org_id, "ops@acme.example", Role::Admin).await;
    add_user(&app, &t.org_id, "review@acme.example", Role::Reviewer).await;
    add_user(&app, &t.org_id, "auditor@acme.example", Role::Viewer).await;
    add_user(&app, &c.org_id, "eve@stranger.example", Role::Admin).await;
    let sandbox_keys = keys_of(&app, &t.org_id, Environment::Sandbox).await;
    assert_eq!(
        sandbox_keys.len(),
        1,
        "the store lists the scope's keys only"
    );
    let production_key = keys_of(&app, &t.org_id, Environment::Production).await[0]
        .id
        .to_string();
    let stranger_key = keys_of(&app, &c.org_id, Environment::Sandbox).await[0]
        .id
        .to_string();

    let mut admin = signed_in(&app, "ops@acme.example").await;
    let list = admin.get(API_KEYS).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    list.assert_html();
    let existing = sandbox_keys[0].id.to_string();
    assert!(list.body.contains(&existing));
    assert!(
        !list.body.contains(&production_key),
        "the other environment's"
    );
    assert!(!list.body.contains(&stranger_key), "another organization's");
    let all = Permission::ALL.len();
    assert!(list.body.contains(&format!("all ({all})")));
    assert_eq!(
        list.body
            .matches("type=\"checkbox\" name=\"permissions\"")
            .count(),
        all,
        "every permission"
    );
    assert_eq!(list.body.matches(" checked>").count(), all, "all checked");
    let token = list.csrf();

    // Bad input: reasons next to the fields, the name kept (escaped), no key made.
    let refused = admin
        .submit(API_KEYS, &[("csrf", &token), ("name", "  ")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text_of(&refused, "name-error").contains("Give the key a name"));
    assert!(text_of(&refused, "permissions-error").contains("at least one permission"));
    assert_eq!(refused.body.matches(" checked>").count(), 0, "as sent");
    let tampered = admin
        .submit(
            API_KEYS,
            &[
                ("csrf", &token),
                ("name", "<script>alert(1)</script>"),
                ("permissions", "inquiry.read"),
                ("permissions", "<script>alert(1)</script>"),
            ],
        )
        .await;
    assert_eq!(tampered.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_no_script(&tampered);
    assert!(text_of(&tampered, "permissions-error").contains("is not a permission"));
    assert!(
        tampered
            .body
            .contains(&format!("value=\"{ESCAPED_SCRIPT}\""))
    );
    let long = "n".repeat(201);
    let too_long = admin
        .submit(
            API_KEYS,
            &[
                ("csrf", &token),
                ("name", &long),
                ("permissions", "inquiry.read"),
            ],
        )
        .await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text_of(&too_long, "name-error").contains("At most 200"));
    assert_eq!(
        keys_of(&app, &t.org_id, Environment::Sandbox).await.len(),
        1
    );

    // Created: the secret once, on the answer; it works with the permissions chosen.
    let created = admin
        .submit(
            API_KEYS,
            &[
                ("csrf", &token),
                ("name", "CRM <script>alert(1)</script>"),
                ("permissions", "inquiry.read"),
                ("permissions", "inquiry-template.read"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_no_script(&created);
    let key = text_of(&created, "created-key");
    let secret = text_of(&created, "api-key-secret");
    assert!(key.starts_with("api_"), "{key}");
    assert!(secret.starts_with("idsk_sandbox_"), "{secret}");
    assert!(created.body.contains(&format!("CRM {ESCAPED_SCRIPT}")));
    assert!(created.body.contains("inquiry.read, inquiry-template.read"));
    expect_status(app.get(&secret, "/api/v1/inquiries").await, StatusCode::OK).await;
    let forbidden = app
        .post(
            &secret,
            "/api/v1/inquiry-templates",
            &json!({"data": {"attributes": {"name": "x"}}}),
        )
        .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let list = admin.get(API_KEYS).await;
    assert!(list.body.contains(&key));
    assert!(!list.body.contains(&secret), "never shown again");
    assert!(!list.body.contains("id=\"api-key-secret\""));
    let keys = keys_of(&app, &t.org_id, Environment::Sandbox).await;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].id.as_str(), key, "newest first");
    assert_eq!(keys[0].name, "CRM <script>alert(1)</script>");

    // Reviewers and viewers get the 403 page, and change nothing.
    for email in ["review@acme.example", "auditor@acme.example"] {
        let mut other = signed_in(&app, email).await;
        let page = other.get(API_KEYS).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(page.body.contains("Not allowed"));
        assert!(!page.body.contains(&key));
        let confirm = other.get(&format!("{API_KEYS}/{key}/revoke")).await;
        assert_eq!(confirm.status, StatusCode::FORBIDDEN);
        let their_csrf = csrf(&mut other).await;
        let denied = other
            .submit(
                API_KEYS,
                &[
                    ("csrf", &their_csrf),
                    ("name", "sneaky"),
                    ("permissions", "inquiry.read"),
                ],
            )
            .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        assert!(!denied.body.contains("idsk_"));
        let denied = other
            .submit(
                &format!("{API_KEYS}/{key}/revoke"),
                &[("csrf", &their_csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
    }
    // The navigation offers each role only the settings it may open.
    for (email, keys, log) in [
        ("ops@acme.example", true, true),
        ("review@acme.example", false, true),
        ("auditor@acme.example", false, false),
    ] {
        let page = signed_in(&app, email)
            .await
            .get("/dashboard/inquiries")
            .await;
        assert!(
            page.body.contains("href=\"/dashboard/webhooks\""),
            "{email}"
        );
        assert_eq!(
            page.body.contains("href=\"/dashboard/api-keys\""),
            keys,
            "{email}"
        );
        assert_eq!(
            page.body.contains("href=\"/dashboard/audit\""),
            log,
            "{email}"
        );
    }
    assert_eq!(
        keys_of(&app, &t.org_id, Environment::Sandbox).await.len(),
        2
    );
    expect_status(app.get(&secret, "/api/v1/inquiries").await, StatusCode::OK).await;

    // Another organization and the other environment: the 404 page, nothing leaked.
    let mut stranger = signed_in(&app, "eve@stranger.example").await;
    let foreign = stranger.get(&format!("{API_KEYS}/{key}/revoke")).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert!(!foreign.body.contains(&key));
    assert!(!foreign.body.contains("CRM"));
    let stranger_list = stranger.get(API_KEYS).await;
    assert!(stranger_list.body.contains(&stranger_key));
    assert!(!stranger_list.body.contains(&key));
    let attempt = stranger
        .submit(
            &format!("{API_KEYS}/{key}/revoke"),
            &[("csrf", &stranger_list.csrf()), ("confirm", "yes")],
        )
        .await;
    assert_eq!(attempt.status, StatusCode::NOT_FOUND);
    assert!(!attempt.body.contains(&key));
    switch(&mut admin, "production").await;
    let production = admin.get(API_KEYS).await;
    assert!(production.body.contains(&production_key));
    assert!(!production.body.contains(&key));
    let elsewhere = admin.get(&format!("{API_KEYS}/{key}/revoke")).await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
    assert!(!elsewhere.body.contains(&key));
    let attempt = admin
        .submit(
            &format!("{API_KEYS}/{key}/revoke"),
            &[("csrf", &token), ("confirm", "yes")],
        )
        .await;
    assert_eq!(attempt.status, StatusCode::NOT_FOUND);
    let made = admin
        .submit(
            API_KEYS,
            &[
                ("csrf", &token),
                ("name", "batch"),
                ("permissions", "event.read"),
            ],
        )
        .await;
    assert!(text_of(&made, "api-key-secret").starts_with("idsk_production_"));
    switch(&mut admin, "sandbox").await;
    expect_status(app.get(&secret, "/api/v1/inquiries").await, StatusCode::OK).await;

    // Revoking asks first; without the confirmation nothing changes.
    let list = admin.get(API_KEYS).await;
    let confirm_link = format!("href=\"{API_KEYS}/{key}/revoke\"");
    assert!(list.body.contains(&confirm_link));
    let confirm = admin.get(&format!("{API_KEYS}/{key}/revoke")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Revoke this key"));
    assert!(confirm.body.contains(&format!("CRM {ESCAPED_SCRIPT}")));
    let unconfirmed = admin
        .submit(&format!("{API_KEYS}/{key}/revoke"), &[("csrf", &token)])
        .await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text_of(&unconfirmed, "revoke-error").contains("nothing was changed"));
    expect_status(app.get(&secret, "/api/v1/inquiries").await, StatusCode::OK).await;
    let revoked = admin
        .submit(
            &format!("{API_KEYS}/{key}/revoke"),
            &[("csrf", &token), ("confirm", "yes")],
        )
        .await;
    assert_eq!(
        revoked.location.as_deref(),
        Some(API_KEYS),
        "{}",
        revoked.body
    );
    assert_eq!(
        app.get(&secret, "/api/v1/inquiries").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let list = admin.get(API_KEYS).await;
    assert!(!list.body.contains(&confirm_link), "no second revocation");
    let twice = admin
        .submit(
            &format!("{API_KEYS}/{key}/revoke"),
            &[("csrf", &token), ("confirm", "yes")],
        )
        .await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text_of(&twice, "revoke-error").contains("already revoked"));
    assert!(
        keys_of(&app, &t.org_id, Environment::Sandbox).await[0]
            .revoked_at
            .is_some()
    );
    expect_status(
        app.get(&t.sandbox, "/api/v1/inquiries").await,
        StatusCode::OK,
    )
    .await;

    // Both are in the audit log, once each.
    let mut tx = app.store.begin_read().await.unwrap();
    let entries = audit::list(
        &mut tx,
        &Scope::new(t.org_id.clone(), Environment::Sandbox),
        Some(&key),
        None,
        Cursor::Start,
        100,
    )
    .await
    .unwrap()
    .unwrap();
    drop(tx);
    let actions: Vec<&str> = entries.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["api-key.revoked", "api-key.created"]);

    // The store pages the keys newest first.
    let mut tx = app.store.begin_read().await.unwrap();
    let scope = Scope::new(t.org_id.clone(), Environment::Sandbox);
    let first = api_keys::list(&mut tx, &scope, Cursor::Start, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.items[0].id.as_str(), key);
    assert!(first.has_older);
    let second = api_keys::list(&mut tx, &scope, Cursor::After(&key), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.items[0].id.as_str(), existing);
    assert!(!second.has_older);
    let foreign_cursor = api_keys::list(&mut tx, &scope, Cursor::After(&stranger_key), 1)
        .await
        .unwrap();
    assert!(foreign_cursor.is_none(), "a cursor of another scope");
}

/// The rows of an audit page.
/// The rows of an audit log page, sign-ins left out (every user here signs in; `sign_in.rs`
/// tests those entries).
fn audit_rows(page: &Page) -> usize {
    page.body
        .split("<tr>\n      <td><time datetime=")
        .skip(1)
        .filter(|row| !row[..row.find("</tr>").unwrap_or(row.len())].contains("user.signed-in"))
        .count()
}

async fn the_audit_log_is_read_in_the_dashboard(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Acme Bank").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &t.org_id, "ops@acme.example", Role::Admin).await;
    add_user(&app, &t.org_id, "review@acme.example", Role::Reviewer).await;
    add_user(&app, &t.org_id, "auditor@acme.example", Role::Viewer).await;
    add_user(&app, &c.org_id, "eve@stranger.example", Role::Admin).await;
    let template = app.create_template(&t.sandbox).await;
    let inquiry = app
        .create_inquiry(&t.sandbox, &template, json!({"name-first": "Ada"}))
        .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Entries: the admin makes a key, the reviewer opens the inquiry, the stranger makes a
    // key in its organization, the admin makes one in production.
    let mut admin = signed_in(&app, "ops@acme.example").await;
    let token = csrf(&mut admin).await;
    let made = admin
        .submit(
            API_KEYS,
            &[
                ("csrf", &token),
                ("name", "crm"),
                ("permissions", "inquiry.read"),
            ],
        )
        .await;
    let key = text_of(&made, "created-key");
    let mut reviewer = signed_in(&app, "review@acme.example").await;
    let viewed = reviewer
        .get(&format!("/dashboard/inquiries/{inquiry}"))
        .await;
    assert_eq!(viewed.status, StatusCode::OK);
    let mut stranger = signed_in(&app, "eve@stranger.example").await;
    let stranger_csrf = csrf(&mut stranger).await;
    let made = stranger
        .submit(
            API_KEYS,
            &[
                ("csrf", &stranger_csrf),
                ("name", "theirs"),
                ("permissions", "inquiry.read"),
            ],
        )
        .await;
    let stranger_key = text_of(&made, "created-key");
    switch(&mut admin, "production").await;
    let made = admin
        .submit(
            API_KEYS,
            &[
                ("csrf", &token),
                ("name", "prod"),
                ("permissions", "inquiry.read"),
            ],
        )
        .await;
    let production_key = text_of(&made, "created-key");
    switch(&mut admin, "sandbox").await;

    // The reviewer reads the log: newest first, with emails, confined to the organization and
    // the environment.
    let log = reviewer.get(AUDIT).await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.body);
    log.assert_html();
    assert!(log.body.contains("aria-current=\"page\">Audit log<"));
    // The template made through the API (by its key) is there too.
    assert_eq!(audit_rows(&log), 3, "{}", log.body);
    assert!(log.body.contains("inquiry-template.created"));
    let viewed_at = log.body.find("inquiry.viewed").expect("the view");
    let created_at = log.body.find("api-key.created").expect("the key");
    assert!(viewed_at < created_at, "newest first");
    assert!(log.body.contains("<td>review@acme.example</td>"));
    assert!(log.body.contains("<td>ops@acme.example</td>"));
    assert!(log.body.contains(&format!(
        "<a href=\"/dashboard/inquiries/{inquiry}\"><code>{inquiry}</code></a>"
    )));
    assert!(log.body.contains(&key));
    assert!(!log.body.contains(&stranger_key), "another organization's");
    assert!(!log.body.contains("eve@stranger.example"));
    assert!(
        !log.body.contains(&production_key),
        "the other environment's"
    );

    // Filters: by object, by user.
    let by_object = reviewer.get(&format!("{AUDIT}?object={inquiry}")).await;
    assert_eq!(audit_rows(&by_object), 1);
    assert!(by_object.body.contains("inquiry.viewed"));
    let by_user = reviewer
        .get(&format!("{AUDIT}?user=OPS%40acme.example"))
        .await;
    assert_eq!(by_user.status, StatusCode::OK);
    assert_eq!(audit_rows(&by_user), 1);
    assert!(by_user.body.contains("api-key.created"));
    assert!(!by_user.body.contains("inquiry.viewed"));
    let both = reviewer
        .get(&format!("{AUDIT}?object={inquiry}&user=ops%40acme.example"))
        .await;
    assert_eq!(audit_rows(&both), 0);
    assert!(both.body.contains("No entries match."));

    // Bad filters: the reason next to the field, escaped, and no entry shown.
    let script = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    let bad_object = reviewer.get(&format!("{AUDIT}?object={script}")).await;
    assert_eq!(bad_object.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_no_script(&bad_object);
    assert!(text_of(&bad_object, "object-error").contains("only letters, digits"));
    assert!(
        bad_object
            .body
            .contains(&format!("value=\"{ESCAPED_SCRIPT}\""))
    );
    assert_eq!(audit_rows(&bad_object), 0);
    for user in [script, "eve%40stranger.example", "nobody%40acme.example"] {
        let bad_user = reviewer.get(&format!("{AUDIT}?user={user}")).await;
        assert_eq!(bad_user.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_no_script(&bad_user);
        assert!(text_of(&bad_user, "user-error").contains("No user of your organization"));
        assert_eq!(audit_rows(&bad_user), 0);
        assert!(!bad_user.body.contains(&stranger_key));
    }

    // A viewer may not read it.
    let mut viewer = signed_in(&app, "auditor@acme.example").await;
    let denied = viewer.get(AUDIT).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(!denied.body.contains(&inquiry));

    // The stranger sees only its own organization's entries; the admin in production only
    // that environment's.
    let theirs = stranger.get(AUDIT).await;
    assert_eq!(audit_rows(&theirs), 1);
    assert!(theirs.body.contains(&stranger_key));
    assert!(!theirs.body.contains(&inquiry));
    assert!(!theirs.body.contains("ops@acme.example"));
    switch(&mut admin, "production").await;
    let production = admin.get(AUDIT).await;
    assert_eq!(audit_rows(&production), 1);
    assert!(production.body.contains(&production_key));
    assert!(!production.body.contains(&inquiry));
    let foreign_cursor = admin
        .get(&format!("{AUDIT}?after=aud_1111111111111111111111"))
        .await;
    assert_eq!(foreign_cursor.status, StatusCode::NOT_FOUND);
    switch(&mut admin, "sandbox").await;

    // Many entries come a page at a time, the filters kept on the next page.
    let scope = Scope::new(t.org_id.clone(), Environment::Sandbox);
    let reviewer_id = {
        let mut tx = app.store.begin_read().await.unwrap();
        idshare_store::users::list_in_org(&mut tx, &t.org_id)
            .await
            .unwrap()
            .into_iter()
            .find(|u| u.email == "review@acme.example")
            .unwrap()
            .id
    };
    let mut tx = app.store.begin_write().await.unwrap();
    let start = app.state.now();
    for i in 0..55 {
        audit::record(
            &mut tx,
            &scope,
            &reviewer_id,
            "inquiry.viewed",
            ("inquiry", &inquiry),
            start + time::Duration::milliseconds(i),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let first = admin
        .get(&format!("{AUDIT}?user=review%40acme.example"))
        .await;
    assert_eq!(audit_rows(&first), 50);
    let marker = "<a href=\"";
    let next_start = first
        .body
        .rfind("\">Older entries</a>")
        .expect("a next page");
    let next_link = &first.body
        [first.body[..next_start].rfind(marker).unwrap() + marker.len()..next_start]
        .replace("&#38;", "&");
    assert!(
        next_link.contains("user=review%40acme.example"),
        "{next_link}"
    );
    let second = admin.get(next_link).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(audit_rows(&second), 6, "the 55 and the view");
    assert!(!second.body.contains("api-key.created"), "still filtered");
    assert!(!second.body.contains("Older entries"));
}

backend_tests!(
    webhooks_are_managed_in_the_dashboard,
    webhooks_to_private_addresses_are_refused_in_the_dashboard,
    api_keys_are_created_and_revoked_in_the_dashboard,
    the_audit_log_is_read_in_the_dashboard,
);
