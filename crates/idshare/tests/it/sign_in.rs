//! The dashboard's sign-in under attack: storms of anonymous sign-ins do not fail the API's
//! writes, the form is bounded and refuses control characters, failures slow down the account
//! and the client address but never lock its owner out of a browser it trusts, an administrator
//! unlocks, and every checked password of a known account is in the audit log.

use std::net::{IpAddr, Ipv4Addr};

use idshare_domain::environment::Environment;
use idshare_store::{Cursor, Scope, audit, users::Role};
use reqwest::{StatusCode, header, redirect::Policy};
use serde_json::json;

use crate::{
    browser::Browser,
    dashboard::{PASSWORD, TOKENS, add_user},
    helpers::{Backend, TestApp, expect_status, spawn_app},
};

/// One browser at its own loopback address (the whole of 127.0.0.0/8 is this machine), keeping
/// every cookie the server sets.
struct Client {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

struct Answer {
    status: StatusCode,
    body: String,
    set_cookies: Vec<String>,
}

impl Client {
    fn at(app: &TestApp, last_octet: u8) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)))
                .build()
                .unwrap(),
            base: app.address.clone(),
            cookies: vec![],
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) -> Vec<String> {
        let set: Vec<String> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for cookie in &set {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            self.cookies.push((name.to_owned(), value.to_owned()));
        }
        set
    }

    /// Opens the sign-in page and posts the form with `email` and `password`.
    async fn sign_in(&mut self, email: &str, password: &str) -> Answer {
        let page = self
            .http
            .get(format!("{}/dashboard/sign-in", self.base))
            .header(header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&page);
        let body = page.text().await.unwrap();
        let marker = "name=\"csrf\" value=\"";
        let start = body.find(marker).unwrap() + marker.len();
        let csrf = body[start..start + body[start..].find('"').unwrap()].to_owned();
        self.post_form(&[("csrf", &csrf), ("email", email), ("password", password)])
            .await
    }

    async fn post_form(&mut self, fields: &[(&str, &str)]) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.post_body(body).await
    }

    async fn post_body(&mut self, body: String) -> Answer {
        let response = self
            .http
            .post(format!("{}/dashboard/sign-in", self.base))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, self.cookie_header())
            .body(body)
            .send()
            .await
            .unwrap();
        let set_cookies = self.keep(&response);
        Answer {
            status: response.status(),
            body: response.text().await.unwrap(),
            set_cookies,
        }
    }

    fn forget(&mut self, name: &str) {
        self.cookies.retain(|(n, _)| n != name);
    }
}

async fn audit_entries(app: &TestApp, org: &idshare_domain::id::OrgId) -> Vec<audit::AuditEntry> {
    let mut tx = app.store.begin_read().await.unwrap();
    let scope = Scope::new(org.clone(), Environment::Production);
    audit::list(&mut tx, &scope, None, None, Cursor::Start, 100)
        .await
        .unwrap()
        .unwrap()
        .items
}

async fn sign_in_storms_do_not_fail_api_writes(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Bank").await;
    add_user(
        &app,
        &tenant.org_id,
        "reviewer@bank.example",
        Role::Reviewer,
    )
    .await;
    let template = app.create_template(&tenant.sandbox).await;

    // While another request holds the database's write lock (SQLite has one), an anonymous
    // sign-in is still answered: checking a password opens no write transaction.
    let held = app.store.begin_write().await.unwrap();
    let anonymous = Client::at(&app, 19)
        .sign_in("nobody@bank.example", "password123")
        .await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.body
    );
    drop(held);

    // Anonymous clients, each at its own address, try made-up accounts: every attempt has a
    // password to check (each address stays under its limit).
    const CLIENTS: u8 = 12;
    const ATTEMPTS: usize = 10;
    let storm: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let mut client = Client::at(&app, 20 + n);
            tokio::spawn(async move {
                let mut statuses = vec![];
                for attempt in 0..ATTEMPTS {
                    let email = format!("guess-{n}-{attempt}@bank.example");
                    statuses.push(client.sign_in(&email, "password123").await.status);
                }
                statuses
            })
        })
        .collect();
    // Meanwhile an API client writes: every write succeeds, and all are done while the storm
    // still runs (the storm's password checks do not hold up the server's other work).
    let written = 25;
    for n in 0..written {
        let response = app
            .post(
                &tenant.sandbox,
                "/api/v1/inquiries",
                &json!({"data": {"attributes": {"inquiry-template-id": template, "reference-id": format!("user-{n}")}}}),
            )
            .await;
        expect_status(response, StatusCode::CREATED).await;
    }
    let storm_running = storm.iter().any(|task| !task.is_finished());
    for task in storm {
        for status in task.await.unwrap() {
            assert!(
                [StatusCode::UNAUTHORIZED, StatusCode::SERVICE_UNAVAILABLE].contains(&status),
                "a sign-in answered {status}"
            );
        }
    }
    assert!(
        storm_running,
        "the API's writes waited for the storm of sign-ins to pass"
    );
    assert_eq!(
        app.list_ids(&tenant.sandbox, "/api/v1/inquiries?page[size]=100")
            .await
            .len(),
        written
    );
    // Unknown email addresses leave nothing in any audit log.
    assert!(audit_entries(&app, &tenant.org_id).await.is_empty());
}

async fn the_sign_in_form_is_bounded_and_refuses_control_characters(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Bank").await;
    add_user(&app, &tenant.org_id, "ada@bank.example", Role::Admin).await;
    let mut client = Client::at(&app, 1);

    let nul = client.sign_in("ada\u{0}@bank.example", PASSWORD).await;
    assert_eq!(nul.status, StatusCode::BAD_REQUEST, "{}", nul.body);
    assert!(
        nul.body
            .contains("The field `email` contains a control character (U+0000)")
    );
    let control = client.sign_in("ada@bank.example", "pass\u{1}word").await;
    assert_eq!(control.status, StatusCode::BAD_REQUEST, "{}", control.body);
    assert!(control.body.contains("The field `password`"));

    let long = format!("{}@bank.example", "a".repeat(300));
    let refused = client.sign_in(&long, PASSWORD).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("at most 254 characters"));
    assert!(
        !refused.body.contains(&long),
        "a refused address is not echoed"
    );

    let huge = format!("email={}&password=x&csrf=00", "a".repeat(1024 * 1024));
    let too_large = client.post_body(huge).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);

    // None of it counted as a failure, created a session or wrote to the audit log.
    assert!(audit_entries(&app, &tenant.org_id).await.is_empty());
    let signed = client.sign_in("ada@bank.example", PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
}

async fn a_locked_account_still_signs_in_from_its_trusted_browser_and_an_admin_unlocks_it(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Bank").await;
    add_user(&app, &tenant.org_id, "rita@bank.example", Role::Reviewer).await;
    let email = "rita@bank.example";

    // Rita signs in once from her browser, which the account then trusts.
    let mut rita = Client::at(&app, 1);
    let signed = rita.sign_in(email, PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    rita.forget("idshare_dashboard");

    // A stranger guesses from one address, then sprays from others: after five failures the
    // account makes every browser it does not trust wait, even with the right password.
    let mut stranger = Client::at(&app, 2);
    for _ in 0..5 {
        let wrong = stranger.sign_in(email, "password123").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    }
    for octet in 2..6 {
        let refused = Client::at(&app, octet).sign_in(email, PASSWORD).await;
        assert_eq!(
            refused.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            refused.body
        );
        assert!(refused.body.contains("Too many failed attempts"));
    }

    // Rita's browser is not locked out: it holds the account's signed trust.
    let trusted = rita.sign_in(email, PASSWORD).await;
    assert_eq!(trusted.status, StatusCode::SEE_OTHER, "{}", trusted.body);
    assert!(
        signed
            .set_cookies
            .iter()
            .any(|c| c.starts_with("idshare_trusted_browser=")
                && c.contains("HttpOnly")
                && c.contains("Path=/dashboard/sign-in")),
        "{:?}",
        signed.set_cookies
    );
    rita.forget("idshare_dashboard");

    // On a new computer she waits, or an administrator unlocks the account.
    let mut laptop = Client::at(&app, 7);
    let refused = laptop.sign_in(email, PASSWORD).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused
            .body
            .contains("Too many failed attempts for this account. Try again in 1 minute"),
        "{}",
        refused.body
    );
    let mut storage = vec!["--data-dir".to_owned(), app.data_dir.display().to_string()];
    if backend == Backend::Postgres {
        storage.extend(["--database-url".to_owned(), app.database_url.clone()]);
    }
    let unlock = std::process::Command::new(env!("CARGO_BIN_EXE_idshare"))
        .args(["admin", "user", "unlock", "--email", "Rita@Bank.example"])
        .args(&storage)
        .env_remove("IDSHARE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        unlock.status.success(),
        "{}",
        String::from_utf8_lossy(&unlock.stderr)
    );
    let unlocked = laptop.sign_in(email, PASSWORD).await;
    assert_eq!(unlocked.status, StatusCode::SEE_OTHER, "{}", unlocked.body);
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_idshare"))
        .args(["admin", "user", "unlock", "--email", "nobody@bank.example"])
        .args(&storage)
        .env_remove("IDSHARE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!unknown.status.success());

    // A browser the account trusts has a count of its own: it cannot guess without end.
    for _ in 0..5 {
        let wrong = rita.sign_in(email, "password123").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let slowed = rita.sign_in(email, PASSWORD).await;
    assert_eq!(slowed.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(slowed.body.contains("from this browser"), "{}", slowed.body);

    // Every wait ends by itself.
    app.state.advance_clock(time::Duration::minutes(2));
    let later = rita.sign_in(email, PASSWORD).await;
    assert_eq!(later.status, StatusCode::SEE_OTHER, "{}", later.body);
}

async fn a_client_address_that_keeps_failing_waits(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Bank").await;
    add_user(&app, &tenant.org_id, "ada@bank.example", Role::Admin).await;
    // Guessing many accounts from one address: after 20 failures the address waits, even for
    // an account that exists and the right password; another address does not.
    let mut sprayer = Client::at(&app, 9);
    for n in 0..20 {
        let wrong = sprayer
            .sign_in(&format!("user{n}@bank.example"), "password123")
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let refused = sprayer.sign_in("ada@bank.example", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused.body.contains("from your network address"),
        "{}",
        refused.body
    );
    let elsewhere = Client::at(&app, 10)
        .sign_in("ada@bank.example", PASSWORD)
        .await;
    assert_eq!(
        elsewhere.status,
        StatusCode::SEE_OTHER,
        "{}",
        elsewhere.body
    );
}

async fn sign_ins_are_in_the_audit_log_with_the_client_address(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Bank").await;
    add_user(&app, &tenant.org_id, "ada@bank.example", Role::Admin).await;
    let mut client = Client::at(&app, 5);
    let wrong = client.sign_in("ada@bank.example", "password123").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let unknown = client.sign_in("eve@bank.example", "password123").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let signed = client.sign_in("ada@bank.example", PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);

    // In both environments (a sign-in opens both), newest first; the unknown address wrote
    // nothing, and no entry holds a password.
    for environment in [Environment::Sandbox, Environment::Production] {
        let mut tx = app.store.begin_read().await.unwrap();
        let scope = Scope::new(tenant.org_id.clone(), environment);
        let entries = audit::list(&mut tx, &scope, None, None, Cursor::Start, 100)
            .await
            .unwrap()
            .unwrap()
            .items;
        let seen: Vec<(&str, &str, Option<&str>)> = entries
            .iter()
            .map(|e| {
                (
                    e.action.as_str(),
                    e.object_type.as_str(),
                    e.client_address.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("user.signed-in", "user", Some("127.0.0.5")),
                ("user.sign-in-failed", "user", Some("127.0.0.5")),
            ]
        );
    }
    // The dashboard's audit log shows them with the address.
    let mut browser = Browser::new(&app);
    browser.cookie = client
        .cookies
        .iter()
        .find(|(name, _)| name == "idshare_dashboard")
        .map(|(name, value)| format!("{name}={value}"));
    assert_eq!(browser.get(TOKENS).await.status, StatusCode::OK);
    let page = browser.get("/dashboard/audit").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("user.sign-in-failed"), "{}", page.body);
    assert!(page.body.contains("127.0.0.5"), "{}", page.body);
    assert!(!page.body.contains("password123"));
}

backend_tests!(
    sign_in_storms_do_not_fail_api_writes,
    the_sign_in_form_is_bounded_and_refuses_control_characters,
    a_locked_account_still_signs_in_from_its_trusted_browser_and_an_admin_unlocks_it,
    a_client_address_that_keeps_failing_waits,
    sign_ins_are_in_the_audit_log_with_the_client_address,
);
