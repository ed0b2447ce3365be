//! The dashboard through HTTP, as a browser without JavaScript uses it: sign-in, sessions,
//! CSRF, roles, environments, and Connect > Share Tokens.

use idshare_domain::id::OrgId;
use idshare_store::users::{self, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    browser::{Browser, Page},
    helpers::{Backend, Tenant, TestApp, expect_status, spawn_app},
};

pub(crate) const PASSWORD: &str = "correct horse battery staple";
pub(crate) const TOKENS: &str = "/dashboard/connect/share-tokens";

pub(crate) async fn add_user(app: &TestApp, org: &OrgId, email: &str, role: Role) {
    let password = users::hash_password(PASSWORD.to_owned()).await.unwrap();
    let mut tx = app.store.begin_write().await.unwrap();
    users::create(&mut tx, org, email, &password, role, app.state.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Opens the sign-in page (which sets the form's cookie) and submits it.
pub(crate) async fn sign_in_attempt(browser: &mut Browser, email: &str, password: &str) -> Page {
    let form = browser.get("/dashboard/sign-in").await;
    let csrf = form.csrf();
    browser
        .submit(
            "/dashboard/sign-in",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
}

pub(crate) async fn signed_in(app: &TestApp, email: &str) -> Browser {
    let mut browser = Browser::new(app);
    let page = sign_in_attempt(&mut browser, email, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    browser
}

/// The CSRF token of a signed-in page (every page has the header's forms).
pub(crate) async fn csrf(browser: &mut Browser) -> String {
    let page = browser.get(TOKENS).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.csrf()
}

async fn sign_in_sessions_and_csrf(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    add_user(&app, &t.org_id, "Ada@Bank.example", Role::Admin).await;
    let mut browser = Browser::new(&app);

    // Signed out: `/` and every page lead to the sign-in page.
    let root = browser.get("/").await;
    assert_eq!(root.location.as_deref(), Some("/dashboard"));
    let page = browser.get(TOKENS).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location.as_deref(), Some("/dashboard/sign-in"));
    let form = browser.get("/dashboard/sign-in").await;
    form.assert_html();
    assert!(form.body.contains("type=\"password\""));
    // A sign-in form posted from elsewhere (no form cookie or token) is refused: login CSRF.
    let forged = Browser::new(&app)
        .submit(
            "/dashboard/sign-in",
            &[("email", "ada@bank.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.set_cookie.is_none());

    // A wrong password and an unknown address get the same answer.
    let wrong = sign_in_attempt(&mut browser, "ada@bank.example", "guess").await;
    let unknown = sign_in_attempt(&mut browser, "eve@bank.example", PASSWORD).await;
    for page in [&wrong, &unknown] {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(
            page.body
                .contains("The email address or the password is not right.")
        );
        assert!(page.set_cookie.is_none());
    }

    // Signing in (the address in any case) sets a confined cookie.
    let signed = sign_in_attempt(&mut browser, "ADA@bank.example", PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let cookie = signed.set_cookie.expect("a session cookie");
    for attribute in [
        "idshare_dashboard=",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/dashboard",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let home = browser.get("/dashboard").await;
    assert_eq!(home.location.as_deref(), Some("/dashboard/overview"));
    let list = browser.get(TOKENS).await;
    list.assert_html();
    assert!(list.body.contains("ada@bank.example · admin"));
    assert!(list.body.contains("Sandbox: test data only."));
    assert_eq!(
        list.body.matches("content-security-policy").count(),
        0,
        "headers, not markup"
    );

    // Forms need the page's CSRF token.
    let token = list.csrf();
    let forged = browser
        .submit(
            "/dashboard/environment",
            &[("csrf", "00"), ("environment", "production")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let switched = browser
        .submit(
            "/dashboard/environment",
            &[
                ("csrf", &token),
                ("environment", "production"),
                ("back", TOKENS),
            ],
        )
        .await;
    assert_eq!(switched.location.as_deref(), Some(TOKENS));
    // From an object's page, back to its section: the object belongs to the other environment.
    let from_object = browser
        .submit(
            "/dashboard/environment",
            &[
                ("csrf", &token),
                ("environment", "production"),
                (
                    "back",
                    "/dashboard/inquiries/inq_AAAAAAAAAAAAAAAAAAAAAAAA?x=1",
                ),
            ],
        )
        .await;
    assert_eq!(
        from_object.location.as_deref(),
        Some("/dashboard/inquiries")
    );
    let production = browser.get(TOKENS).await;
    assert!(production.body.contains("Production: real end users"));

    // Signing out ends the session on the server, not only in the browser.
    let old_cookie = browser.cookie.clone();
    let out = browser
        .submit("/dashboard/sign-out", &[("csrf", &token)])
        .await;
    assert_eq!(out.location.as_deref(), Some("/dashboard/sign-in"));
    browser.cookie = old_cookie;
    let after = browser.get(TOKENS).await;
    assert_eq!(after.location.as_deref(), Some("/dashboard/sign-in"));

    // A session idle for longer than its limit has ended.
    let mut idle = signed_in(&app, "ada@bank.example").await;
    assert_eq!(idle.get(TOKENS).await.status, StatusCode::OK);
    app.state.advance_clock(time::Duration::minutes(31));
    let expired = idle.get(TOKENS).await;
    assert_eq!(expired.location.as_deref(), Some("/dashboard/sign-in"));

    // Repeated failures make the account wait, even with the right password, in a browser it
    // does not trust (this one signed in before, but keeps only one cookie).
    for _ in 0..5 {
        sign_in_attempt(&mut browser, "ada@bank.example", "guess").await;
    }
    let locked = sign_in_attempt(&mut browser, "ada@bank.example", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.body.contains("Too many failed attempts"));

    let missing = browser.get("/dashboard/no-such-page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    missing.assert_html();
}

pub(crate) fn id_of(doc: &Value) -> String {
    doc["data"]["id"].as_str().unwrap().to_owned()
}

/// S with a completed inquiry and an active connection S→D; returns (connection, inquiry,
/// destination template).
pub(crate) async fn connect_setup(
    app: &TestApp,
    s: &Tenant,
    d: &Tenant,
) -> (String, String, String) {
    let source_template = id_of(
        &expect_status(
            app.post(
                &s.sandbox,
                "/api/v1/inquiry-templates",
                &json!({"data": {"attributes": {"name": "Onboarding", "field-schemas": [
                    {"key": "name-first", "type": "string"}, {"key": "name-last", "type": "string"},
                    {"key": "email-address", "type": "string"}],
                  "verifications": [{"type": "email-address", "required": true}]}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    );
    let inquiry = id_of(
        &app.create_inquiry(
            &s.sandbox,
            &source_template,
            json!({"name-first": "Ada", "name-last": "Lovelace", "email-address": "ada@example.com"}),
        )
        .await,
    );
    expect_status(
        app.post(
            &s.sandbox,
            &format!("/api/v1/inquiries/{inquiry}/submit"),
            &json!({}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.drain().await;
    let connection = id_of(
        &expect_status(
            app.post(
                &s.sandbox,
                "/api/v1/connect/connections",
                &json!({"data": {"attributes": {"destination-organization-id": d.org_id.as_str()}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    );
    expect_status(
        app.post(
            &d.sandbox,
            &format!("/api/v1/connect/connections/{connection}/activate"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let destination_template = id_of(
        &expect_status(
            app.post(
                &d.sandbox,
                "/api/v1/inquiry-templates",
                &json!({"data": {"attributes": {"name": "Brokerage", "field-schemas": [
                    {"key": "name-first", "type": "string"}, {"key": "email-address", "type": "string"}],
                  "verifications": [{"type": "email-address", "required": true, "reuse": {"max-age-days": 30}}]}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    );
    (connection, inquiry, destination_template)
}

pub(crate) fn text_of(page: &Page, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("#{id} in {}", page.body))
        + marker.len();
    let end = page.body[start..].find('<').unwrap();
    page.body[start..start + end].to_owned()
}

async fn share_tokens_are_created_and_redeemed_from_the_dashboard(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.tenant("Acme Bank").await;
    let d = app.tenant("Globex").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &s.org_id, "ops@acme.example", Role::Admin).await;
    add_user(&app, &d.org_id, "ops@globex.example", Role::Admin).await;
    add_user(&app, &d.org_id, "auditor@globex.example", Role::Viewer).await;
    add_user(&app, &c.org_id, "eve@stranger.example", Role::Admin).await;
    let (connection, inquiry, template) = connect_setup(&app, &s, &d).await;

    // The source creates the token from the list page; a bad id is refused next to the form,
    // escaped.
    let mut source = signed_in(&app, "ops@acme.example").await;
    let token = csrf(&mut source).await;
    let refused = source
        .submit(
            TOKENS,
            &[
                ("csrf", &token),
                ("connection_id", &connection),
                ("inquiry_id", "<script>alert(1)</script>"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!refused.body.contains("<script>alert(1)</script>"));
    assert!(
        refused.body.contains("script&#62;alert(1)"),
        "kept, escaped"
    );
    let created = source
        .submit(
            TOKENS,
            &[
                ("csrf", &token),
                ("connection_id", &connection),
                ("inquiry_id", &inquiry),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let token_path = created.location.unwrap();
    let share_token = token_path.rsplit('/').next().unwrap().to_owned();
    assert!(share_token.starts_with("cnst_"));

    // The destination pastes the token, previews with its template, and redeems.
    let mut destination = signed_in(&app, "ops@globex.example").await;
    let list = destination
        .get(&format!("{TOKENS}?direction=inbound"))
        .await;
    assert!(list.body.contains(&share_token), "{}", list.body);
    let opened = destination
        .get(&format!("{TOKENS}/open?token={share_token}"))
        .await;
    assert_eq!(opened.location.as_deref(), Some(token_path.as_str()));
    let preview = destination
        .get(&format!("{token_path}?template={template}"))
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(preview.body.contains("will-complete"), "{}", preview.body);
    assert!(
        !preview.body.contains("ada@example.com"),
        "a preview shows no value"
    );
    let redeemed = destination
        .submit(
            &format!("{token_path}/redeem"),
            &[("csrf", &preview.csrf()), ("template", &template)],
        )
        .await;
    assert_eq!(redeemed.location.as_deref(), Some(token_path.as_str()));
    let pending = destination.get(&token_path).await;
    assert_eq!(text_of(&pending, "token-status"), "pending");
    assert!(
        pending.body.contains("http-equiv=\"refresh\""),
        "follows itself"
    );
    app.drain().await;
    let done = destination.get(&token_path).await;
    assert_eq!(text_of(&done, "token-status"), "redeemed");
    assert!(!done.body.contains("http-equiv=\"refresh\""));
    let destination_inquiry = text_of(&done, "destination-inquiry");
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

    // The overview draws it: one token redeemed today, one redemption completed.
    let overview = destination.get("/dashboard/overview").await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);
    assert_eq!(overview.body.matches("class=\"chart\"").count(), 3);
    assert!(
        overview.body.contains(": redeemed 1</title>"),
        "{}",
        overview.body
    );
    assert!(
        overview
            .body
            .contains("<title>completed: completed 1</title>")
    );
    assert!(overview.body.contains(": redemptions 1</title>"));

    // A viewer sees but cannot redeem; a second token stays `created`.
    let second = source
        .submit(
            TOKENS,
            &[
                ("csrf", &token),
                ("connection_id", &connection),
                ("inquiry_id", &inquiry),
            ],
        )
        .await
        .location
        .unwrap();
    let mut viewer = signed_in(&app, "auditor@globex.example").await;
    let seen = viewer.get(&format!("{second}?template={template}")).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen.body.contains("Your role cannot redeem"));
    let denied = viewer
        .submit(
            &format!("{second}/redeem"),
            &[("csrf", &seen.csrf()), ("template", &template)],
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let still = destination.get(&second).await;
    assert_eq!(text_of(&still, "token-status"), "created");

    // Another organization, and the other environment, find nothing.
    let mut stranger = signed_in(&app, "eve@stranger.example").await;
    let foreign = stranger.get(&token_path).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert!(!foreign.body.contains(&inquiry));
    let stranger_csrf = csrf(&mut stranger).await;
    let attempt = stranger
        .submit(
            &format!("{second}/redeem"),
            &[("csrf", &stranger_csrf), ("template", &template)],
        )
        .await;
    assert_eq!(attempt.status, StatusCode::NOT_FOUND);
    let d_csrf = csrf(&mut destination).await;
    destination
        .submit(
            "/dashboard/environment",
            &[("csrf", &d_csrf), ("environment", "production")],
        )
        .await;
    assert_eq!(
        destination.get(&token_path).await.status,
        StatusCode::NOT_FOUND
    );

    // The source expires the second token, once confirmed.
    let expired = source
        .submit(
            &format!("{second}/expire"),
            &[("csrf", &token), ("confirm", "yes")],
        )
        .await;
    assert_eq!(expired.status, StatusCode::SEE_OTHER);
    assert_eq!(
        text_of(&source.get(&second).await, "token-status"),
        "expired"
    );
}

const CONNECTIONS: &str = "/dashboard/connect/connections";

/// The status shown in a connection's row.
fn row_status(page: &Page, connection: &str) -> String {
    let row = page
        .body
        .find(&format!("<tr id=\"{connection}\">"))
        .unwrap_or_else(|| panic!("a row for {connection}: {}", page.body));
    let rest = &page.body[row..];
    let marker = "class=\"status status-";
    let start = rest.find(marker).unwrap() + marker.len();
    rest[start..start + rest[start..].find('"').unwrap()].to_owned()
}

async fn connections_are_made_and_accepted_in_the_dashboard(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.tenant("Acme Bank").await;
    let d = app.tenant("Globex").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &s.org_id, "ops@acme.example", Role::Admin).await;
    add_user(&app, &d.org_id, "ops@globex.example", Role::Admin).await;
    add_user(&app, &d.org_id, "auditor@globex.example", Role::Viewer).await;
    add_user(&app, &c.org_id, "eve@stranger.example", Role::Admin).await;

    let mut source = signed_in(&app, "ops@acme.example").await;
    let csrf_s = csrf(&mut source).await;
    let unknown = source
        .submit(
            CONNECTIONS,
            &[
                ("csrf", &csrf_s),
                ("destination_organization_id", "org_<b>nope</b>"),
            ],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!unknown.body.contains("<b>nope</b>"));
    let created = source
        .submit(
            CONNECTIONS,
            &[
                ("csrf", &csrf_s),
                ("destination_organization_id", d.org_id.as_str()),
            ],
        )
        .await;
    assert_eq!(
        created.location.as_deref(),
        Some(CONNECTIONS),
        "{}",
        created.body
    );
    let again = source
        .submit(
            CONNECTIONS,
            &[
                ("csrf", &csrf_s),
                ("destination_organization_id", d.org_id.as_str()),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("already exists"), "{}", again.body);
    let list = expect_status(
        app.get(&s.sandbox, "/api/v1/connect/connections").await,
        StatusCode::OK,
    )
    .await;
    let connection = id_of(&json!({"data": list["data"][0]}));
    assert_eq!(
        row_status(&source.get(CONNECTIONS).await, &connection),
        "pending"
    );

    // A viewer of the destination sees the connection but no action, and cannot act.
    let mut viewer = signed_in(&app, "auditor@globex.example").await;
    let seen = viewer.get(CONNECTIONS).await;
    assert_eq!(row_status(&seen, &connection), "pending");
    assert!(!seen.body.contains("Accept"));
    let denied = viewer
        .submit(
            &format!("{CONNECTIONS}/{connection}/activate"),
            &[("csrf", &seen.csrf())],
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    // Another organization cannot act on it either.
    let mut stranger = signed_in(&app, "eve@stranger.example").await;
    let csrf_c = csrf(&mut stranger).await;
    let foreign = stranger
        .submit(
            &format!("{CONNECTIONS}/{connection}/activate"),
            &[("csrf", &csrf_c)],
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert!(!stranger.get(CONNECTIONS).await.body.contains(&connection));

    // The destination accepts; the source deactivates and reactivates.
    let mut destination = signed_in(&app, "ops@globex.example").await;
    let inbound = destination
        .get(&format!("{CONNECTIONS}?direction=inbound"))
        .await;
    assert!(inbound.body.contains("Accept"));
    let accepted = destination
        .submit(
            &format!("{CONNECTIONS}/{connection}/activate"),
            &[("csrf", &inbound.csrf())],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER);
    assert_eq!(
        row_status(&source.get(CONNECTIONS).await, &connection),
        "active"
    );

    // The template alignment: what the destination's template needs and the source's never
    // collects.
    let template = |key: String, body: Value| {
        let app = &app;
        async move {
            id_of(
                &expect_status(
                    app.post(
                        &key,
                        "/api/v1/inquiry-templates",
                        &json!({"data": {"attributes": body}}),
                    )
                    .await,
                    StatusCode::CREATED,
                )
                .await,
            )
        }
    };
    let onboarding = template(
        s.sandbox.clone(),
        json!({"name": "Onboarding", "field-schemas": [{"key": "name-first", "type": "string"}]}),
    )
    .await;
    let brokerage = template(
        d.sandbox.clone(),
        json!({"name": "Brokerage", "field-schemas": [
            {"key": "name-first", "type": "string", "config": {"required": true}},
            {"key": "address-street-1", "type": "string"}, {"key": "address-city", "type": "string"},
            {"key": "address-postal-code", "type": "string"}, {"key": "address-country-code", "type": "string"}],
          "verifications": [{"type": "document", "required": true}]}),
    )
    .await;
    let pair = format!(
        "{CONNECTIONS}/{connection}?source_template={onboarding}&destination_template={brokerage}"
    );
    let aligned = destination.get(&pair).await;
    assert_eq!(aligned.status, StatusCode::OK, "{}", aligned.body);
    assert!(
        aligned
            .body
            .contains("Never collected by the source</strong> (6)"),
        "{}",
        aligned.body
    );
    assert!(aligned.body.contains("Proof of address details"));
    assert!(
        !aligned.body.contains("<li>First name"),
        "collected by the source"
    );
    let from_source = source.get(&pair).await;
    assert!(
        from_source
            .body
            .contains("Never collected by the source</strong> (6)")
    );
    let foreign = stranger.get(&format!("{CONNECTIONS}/{connection}")).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert!(!foreign.body.contains("Brokerage"));
    let mut elsewhere = signed_in(&app, "ops@globex.example").await;
    switch_to_production(&mut elsewhere).await;
    assert_eq!(
        elsewhere.get(&pair).await.status,
        StatusCode::NOT_FOUND,
        "not in production"
    );
    assert!(!elsewhere.get(CONNECTIONS).await.body.contains(&connection));
    // The source cannot accept its own connection: a clear refusal.
    let wrong_side = source
        .submit(
            &format!("{CONNECTIONS}/{connection}/activate"),
            &[("csrf", &csrf_s)],
        )
        .await;
    assert_eq!(wrong_side.status, StatusCode::FORBIDDEN);
    assert!(
        wrong_side.body.contains("Only the destination"),
        "{}",
        wrong_side.body
    );
    for (action, status) in [("deactivate", "inactive"), ("reactivate", "pending")] {
        let done = source
            .submit(
                &format!("{CONNECTIONS}/{connection}/{action}"),
                &[("csrf", &csrf_s)],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(
            row_status(&source.get(CONNECTIONS).await, &connection),
            status
        );
    }
    // Not active any more: the partners' templates are no longer shown.
    let pending = destination.get(&pair).await;
    assert!(
        pending
            .body
            .contains("Available while the connection is active")
    );
    assert!(!pending.body.contains("Onboarding"));
}

const INQUIRIES: &str = "/dashboard/inquiries";

async fn inquiries_are_reviewed_in_the_dashboard(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.tenant("Acme Bank").await;
    let d = app.tenant("Globex").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &d.org_id, "ops@globex.example", Role::Admin).await;
    add_user(&app, &d.org_id, "review@globex.example", Role::Reviewer).await;
    add_user(&app, &d.org_id, "auditor@globex.example", Role::Viewer).await;
    add_user(&app, &c.org_id, "eve@stranger.example", Role::Admin).await;
    let (connection, source, template) = connect_setup(&app, &s, &d).await;
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
    let redeemed = expect_status(
        app.post(
            &d.sandbox,
            &format!("/api/v1/connect/share-tokens/{token}/redeem"),
            &json!({"data": {"attributes": {"inquiry-template-id": template}}}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let inquiry = redeemed["data"]["relationships"]["destination"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.drain().await;
    let path = format!("{INQUIRIES}/{inquiry}");

    // The viewer follows the work, with where the copied data came from, but neither reads the
    // person's data (the name is masked) nor acts.
    let mut viewer = signed_in(&app, "auditor@globex.example").await;
    let list = viewer.get(&format!("{INQUIRIES}?status=completed")).await;
    assert!(list.body.contains(&inquiry), "{}", list.body);
    let none = viewer.get(&format!("{INQUIRIES}?status=approved")).await;
    assert!(!none.body.contains(&inquiry));
    let bad = viewer.get(&format!("{INQUIRIES}?from=yesterday")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("YYYY-MM-DD"));
    let page = viewer.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(text_of(&page, "inquiry-status"), "completed");
    assert_eq!(text_of(&page, "person"), "A•••");
    assert!(!page.body.contains("ada@example.com"));
    assert!(!page.body.contains("Ada"));
    assert!(
        page.body
            .contains(&format!("copied from {source} through {token}")),
        "{}",
        page.body
    );
    assert!(page.body.contains("reused from ver_"), "{}", page.body);
    assert!(
        page.body.contains("connect/share-token.inbound-redeemed")
            || page.body.contains("inquiry.completed")
    );
    assert!(!page.body.contains(">Approve<"));
    let denied = viewer
        .submit(&format!("{path}/approve"), &[("csrf", &page.csrf())])
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    // Every view of the inquiry's data is in the audit log.
    let mut tx = app.store.begin_read().await.unwrap();
    let entries = idshare_store::audit::list(
        &mut tx,
        &idshare_store::Scope::new(
            d.org_id.clone(),
            idshare_domain::environment::Environment::Sandbox,
        ),
        Some(&inquiry),
        None,
        idshare_store::Cursor::Start,
        100,
    )
    .await
    .unwrap()
    .unwrap();
    drop(tx);
    assert_eq!(entries.items.len(), 1);
    assert_eq!(entries.items[0].action, "inquiry.viewed");

    // The reviewer approves; the admin cannot redact without typing the id.
    let mut reviewer = signed_in(&app, "review@globex.example").await;
    let page = reviewer.get(&path).await;
    assert_eq!(text_of(&page, "person"), "Ada");
    assert!(page.body.contains("ada@example.com"));
    assert!(page.body.contains(">Approve<"));
    assert!(!page.body.contains(">Redact<"), "redaction is for admins");
    // A comment with a control character: a clear page, and the inquiry is not decided.
    let refused = reviewer
        .submit(
            &format!("{path}/approve"),
            &[("csrf", &page.csrf()), ("comment", "partner\u{0}verified")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    refused.assert_html();
    assert!(
        refused
            .body
            .contains("The field `comment` contains a control character (U+0000)"),
        "{}",
        refused.body
    );
    assert_eq!(
        text_of(&reviewer.get(&path).await, "inquiry-status"),
        "completed"
    );
    let approved = reviewer
        .submit(
            &format!("{path}/approve"),
            &[
                ("csrf", &page.csrf()),
                ("comment", "partner-verified"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(approved.location.as_deref(), Some(path.as_str()));
    assert_eq!(
        text_of(&reviewer.get(&path).await, "inquiry-status"),
        "approved"
    );
    let again = reviewer
        .submit(
            &format!("{path}/approve"),
            &[("csrf", &page.csrf()), ("confirm", "yes")],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        again.body.contains("approved"),
        "names the status: {}",
        again.body
    );

    let mut admin = signed_in(&app, "ops@globex.example").await;
    let page = admin.get(&path).await;
    let unconfirmed = admin
        .submit(
            &format!("{path}/redact"),
            &[("csrf", &page.csrf()), ("confirm", "yes")],
        )
        .await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unconfirmed.body.contains("ada@example.com"),
        "nothing was changed"
    );
    let redacted = admin
        .submit(
            &format!("{path}/redact"),
            &[("csrf", &page.csrf()), ("confirm", &inquiry)],
        )
        .await;
    assert_eq!(redacted.status, StatusCode::SEE_OTHER);
    let gone = admin.get(&path).await;
    assert!(gone.body.contains("was redacted"));
    assert!(!gone.body.contains("ada@example.com"));

    // A new inquiry with a hostile value: escaped; a one-time link for its end user.
    let fresh = id_of(
        &app.create_inquiry(
            &d.sandbox,
            &template,
            json!({"name-first": "<script>alert('x')</script>"}),
        )
        .await,
    );
    let fresh_path = format!("{INQUIRIES}/{fresh}");
    // Hostile text in every other free-text attribute the pages show: reference id, tags, note.
    expect_status(
        app.patch(
            &d.sandbox,
            &format!("/api/v1/inquiries/{fresh}"),
            &json!({"data": {"attributes": {
                "tags": ["<script>alert('t')</script>"], "note": "<script>alert('n')</script>"}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.post(
            &d.sandbox,
            "/api/v1/inquiries",
            &json!({"data": {"attributes": {"inquiry-template-id": template,
                    "reference-id": "<script>alert('r')</script>"}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let page = admin.get(&fresh_path).await;
    let listed = admin.get(INQUIRIES).await;
    for body in [&page.body, &listed.body] {
        assert!(!body.contains("<script>alert"), "escaped: {body}");
        assert_eq!(
            body.matches("<script").count(),
            2,
            "only the vendored htmx and the local-time script: {body}"
        );
    }
    assert!(
        page.body.contains("&#60;script&#62;alert(&#39;t&#39;)"),
        "{}",
        page.body
    );
    let linked = admin
        .submit(
            &format!("{fresh_path}/one-time-link"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.body);
    assert!(text_of(&linked, "one-time-link").contains("/flow/link/"));

    // Another organization finds nothing.
    let mut stranger = signed_in(&app, "eve@stranger.example").await;
    let foreign = stranger.get(&fresh_path).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert!(!stranger.get(INQUIRIES).await.body.contains(&fresh));
    // Nor does the owner in the other environment.
    switch_to_production(&mut admin).await;
    let elsewhere = admin.get(&fresh_path).await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
    assert!(!admin.get(INQUIRIES).await.body.contains(&fresh));
}

/// Switches a signed-in browser to production.
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

async fn templates_and_workflows_are_edited_in_the_dashboard(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &t.org_id, "ops@bank.example", Role::Admin).await;
    add_user(&app, &t.org_id, "auditor@bank.example", Role::Viewer).await;
    add_user(&app, &c.org_id, "eve@stranger.example", Role::Admin).await;
    let mut admin = signed_in(&app, "ops@bank.example").await;
    let token = csrf(&mut admin).await;

    // Templates: not JSON, then an invalid definition, each problem with its place.
    let not_json = admin
        .submit(
            "/dashboard/templates",
            &[
                ("csrf", &token),
                ("name", "KYC"),
                ("definition", "{\"field-schemas\": ["),
            ],
        )
        .await;
    assert_eq!(not_json.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        not_json.body.contains("This is not valid JSON"),
        "{}",
        not_json.body
    );
    let invalid = admin
        .submit(
            "/dashboard/templates",
            &[
                ("csrf", &token),
                ("name", "KYC"),
                (
                    "definition",
                    r#"{"field-schemas": [{"key": "name-first", "type": "colour"}], "verifications": [{"type": "telepathy"}]}"#,
                ),
            ],
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        invalid.body.contains("<code>/field-schemas/0/type</code>"),
        "{}",
        invalid.body
    );
    assert!(
        invalid.body.contains("telepathy"),
        "the text is kept in the editor"
    );
    let created = admin
        .submit(
            "/dashboard/templates",
            &[
                ("csrf", &token),
                ("name", "KYC <b>"),
                (
                    "definition",
                    r#"{"field-schemas": [{"key": "name-first", "type": "string"}]}"#,
                ),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let template_path = created.location.unwrap();
    let page = admin.get(&template_path).await;
    assert!(
        page.body.contains("KYC &#60;b&#62;"),
        "escaped name: {}",
        page.body
    );
    assert!(page.body.contains("status-published"));
    let edited = admin
        .submit(
            &template_path,
            &[
                ("csrf", &token),
                (
                    "definition",
                    r#"{"field-schemas": [{"key": "name-first", "type": "string"}, {"key": "name-last", "type": "string"}]}"#,
                ),
            ],
        )
        .await;
    assert_eq!(edited.status, StatusCode::SEE_OTHER, "{}", edited.body);
    let page = admin.get(&template_path).await;
    assert!(page.body.contains("status-draft"));
    let marker = "/versions/";
    let at = page.body.find(marker).unwrap() + marker.len();
    let version = page.body[at..at + page.body[at..].find('/').unwrap()].to_owned();
    let published = admin
        .submit(
            &format!("{template_path}/versions/{version}/publish"),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(
        published.status,
        StatusCode::SEE_OTHER,
        "{}",
        published.body
    );
    let page = admin.get(&template_path).await;
    assert!(page.body.contains("status-superseded"));
    assert!(!page.body.contains("status-draft"));

    // A viewer reads but cannot save.
    let mut viewer = signed_in(&app, "auditor@bank.example").await;
    let read = viewer.get(&template_path).await;
    assert!(read.body.contains("readonly"));
    let denied = viewer
        .submit(
            &template_path,
            &[("csrf", &read.csrf()), ("definition", "{}")],
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    // Workflows: an unknown action is pointed at; a valid one shows its secret once.
    let template = template_path.rsplit('/').next().unwrap().to_owned();
    let bad = admin
        .submit(
            "/dashboard/workflows",
            &[
                ("csrf", &token),
                ("name", "Tagger"),
                (
                    "definition",
                    r#"{"trigger": {"event": "inquiry.created"}, "steps": [{"id": "a", "action": "fly"}]}"#,
                ),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("<code>/steps/0/action</code>"),
        "{}",
        bad.body
    );
    let made = admin
        .submit(
            "/dashboard/workflows",
            &[
                ("csrf", &token),
                ("name", "Tagger <script>alert(1)</script>"),
                (
                    "definition",
                    r#"{"trigger": {"event": "inquiry.created"}, "steps": [{"id": "tag", "action": "add-tag", "with": {"tag": "auto"}}]}"#,
                ),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert!(text_of(&made, "workflow-secret").starts_with("wflsec_"));
    let listed = admin.get("/dashboard/workflows").await;
    assert!(
        listed.body.contains("Tagger &#60;script&#62;alert(1)"),
        "escaped: {}",
        listed.body
    );
    assert_eq!(
        listed.body.matches("<script").count(),
        2,
        "only the vendored htmx and the local-time script"
    );
    let list = expect_status(
        app.get(&t.sandbox, "/api/v1/workflows").await,
        StatusCode::OK,
    )
    .await;
    let workflow = list["data"][0]["id"].as_str().unwrap().to_owned();
    let workflow_path = format!("/dashboard/workflows/{workflow}");
    let page = admin.get(&workflow_path).await;
    assert!(
        !page.body.contains(&text_of(&made, "workflow-secret")),
        "shown once"
    );
    let published = admin
        .submit(&format!("{workflow_path}/publish"), &[("csrf", &token)])
        .await;
    assert_eq!(published.status, StatusCode::SEE_OTHER);
    app.create_inquiry(&t.sandbox, &template, json!({"name-first": "Ada"}))
        .await;
    app.drain().await;
    let page = admin.get(&workflow_path).await;
    assert!(
        page.body.contains(
            "<code>tag</code> (add-tag) <span class=\"status status-completed\">completed</span>"
        ),
        "{}",
        page.body
    );
    let disabled = admin
        .submit(&format!("{workflow_path}/disable"), &[("csrf", &token)])
        .await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER);
    assert_eq!(
        text_of(&admin.get(&workflow_path).await, "workflow-status"),
        "disabled"
    );

    // Another organization finds neither, and neither does the owner in production.
    let mut stranger = signed_in(&app, "eve@stranger.example").await;
    switch_to_production(&mut admin).await;
    for path in [&template_path, &workflow_path] {
        let page = stranger.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        let page = admin.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path} in production");
    }
    assert!(
        !stranger
            .get("/dashboard/templates")
            .await
            .body
            .contains(&template)
    );
}

backend_tests!(
    sign_in_sessions_and_csrf,
    share_tokens_are_created_and_redeemed_from_the_dashboard,
    connections_are_made_and_accepted_in_the_dashboard,
    inquiries_are_reviewed_in_the_dashboard,
    templates_and_workflows_are_edited_in_the_dashboard,
);
