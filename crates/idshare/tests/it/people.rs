//! Settings > People and Account through HTTP: invitations and one-time set-password links,
//! roles, disabling, enabling, removing, password resets and changes, sessions, TOTP
//! two-factor authentication (codes computed here from the secret the page shows) and the
//! organization's requirement of it; the guard rails, the refusals of lower roles and of other
//! organizations, and the audit entries of every change.

use idshare_store::users::{self, Role};
use reqwest::StatusCode;
use time::{Duration, OffsetDateTime};

use crate::{
    browser::{Browser, Page},
    cli::{idshare, refused, stdout, storage_for},
    dashboard::{PASSWORD, add_user, sign_in_attempt, signed_in, text_of},
    helpers::{Backend, TestApp, spawn_app},
};

const PEOPLE: &str = "/dashboard/people";
const NEW_PASSWORD: &str = "a brand new password";

async fn id_of(app: &TestApp, email: &str) -> String {
    let mut tx = app.store.begin_read().await.unwrap();
    let user = users::get_by_email(&mut tx, email).await.unwrap().unwrap();
    user.id.to_string()
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    app.count_rows(&format!(
        "SELECT COUNT(*) FROM audit_entries WHERE action = '{action}'"
    ))
    .await
}

/// The path of the set-password link a page shows.
fn link_path(page: &Page) -> String {
    let link = text_of(page, "set-password-link");
    let at = link.find("/dashboard/").expect("a dashboard link");
    link[at..].to_owned()
}

async fn people_csrf(browser: &mut Browser) -> String {
    let page = browser.get(PEOPLE).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.csrf()
}

/// Follows a set-password link with `password` typed twice.
async fn set_password(app: &TestApp, path: &str, password: &str) -> Page {
    Browser::new(app)
        .submit(
            path,
            &[("password", password), ("password-again", password)],
        )
        .await
}

/// The session still works (a page of the dashboard answers), or it ended (to sign-in).
async fn signed_in_still(browser: &mut Browser) -> bool {
    let page = browser.get("/dashboard/account").await;
    match page.status {
        StatusCode::OK => true,
        StatusCode::SEE_OTHER => {
            assert_eq!(page.location.as_deref(), Some("/dashboard/sign-in"));
            false
        }
        other => panic!("{other}: {}", page.body),
    }
}

async fn invitations_set_a_password_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    add_user(&app, &t.org_id, "ada@bank.example", Role::Admin).await;
    let mut admin = signed_in(&app, "ada@bank.example").await;
    let csrf = people_csrf(&mut admin).await;

    // Bad input: a clear message, nobody invited.
    for (email, role) in [("not an address", "viewer"), ("bob@bank.example", "owner")] {
        let page = admin
            .submit(PEOPLE, &[("csrf", &csrf), ("email", email), ("role", role)])
            .await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            page.body
        );
        assert!(page.body.contains("id=\"error\""), "{}", page.body);
    }
    let taken = admin
        .submit(
            PEOPLE,
            &[
                ("csrf", &csrf),
                ("email", "ADA@bank.example"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(taken.body.contains("exists already"), "{}", taken.body);
    assert_eq!(app.count_rows("SELECT COUNT(*) FROM users").await, 1);

    let invited = admin
        .submit(
            PEOPLE,
            &[
                ("csrf", &csrf),
                ("email", " Bob@Bank.example "),
                ("role", "reviewer"),
            ],
        )
        .await;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.body);
    assert!(text_of(&invited, "notice").contains("bob@bank.example is invited as reviewer"));
    assert!(invited.body.contains("idshare sends no email"));
    let path = link_path(&invited);
    assert!(path.starts_with("/dashboard/set-password/spl_"), "{path}");
    let bob = id_of(&app, "bob@bank.example").await;
    let row = invited.body.split(&format!("id=\"{bob}\"")).nth(1).unwrap();
    assert!(row.contains("invited") && row.contains("never"), "{row}");
    // Only the hash of the link's token is stored.
    let token = path.rsplit('/').next().unwrap();
    assert_eq!(
        app.count_rows(&format!(
            "SELECT COUNT(*) FROM set_password_links WHERE CAST(token_hash AS TEXT) LIKE '%{token}%'"
        ))
        .await,
        0
    );

    // Invited, bob cannot sign in yet.
    let mut browser = Browser::new(&app);
    let refused = sign_in_attempt(&mut browser, "bob@bank.example", "").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    // The link's page; a bad password changes nothing and the link stays usable.
    let form = Browser::new(&app).get(&path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert_eq!(text_of(&form, "account-email"), "bob@bank.example");
    let short = set_password(&app, &path, "short").await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.body.contains("at least 12 characters"));
    let differ = Browser::new(&app)
        .submit(
            &path,
            &[
                ("password", NEW_PASSWORD),
                ("password-again", "something else"),
            ],
        )
        .await;
    assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(differ.body.contains("differ"));

    let set = set_password(&app, &path, NEW_PASSWORD).await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    assert_eq!(set.location.as_deref(), Some("/dashboard/sign-in"));
    // Once only.
    for page in [
        Browser::new(&app).get(&path).await,
        set_password(&app, &path, "yet another password").await,
    ] {
        assert_eq!(page.status, StatusCode::GONE, "{}", page.body);
        assert!(page.body.contains("This link has been used"));
    }
    let signed = sign_in_attempt(&mut browser, "bob@bank.example", NEW_PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    // A reviewer does not manage people.
    assert_eq!(browser.get(PEOPLE).await.status, StatusCode::FORBIDDEN);

    // Unknown and expired links: a clear page.
    let unknown = Browser::new(&app)
        .get("/dashboard/set-password/spl_unknown")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body.contains("This link is not valid"));
    let again = admin
        .submit(
            PEOPLE,
            &[
                ("csrf", &csrf),
                ("email", "cy@bank.example"),
                ("role", "viewer"),
            ],
        )
        .await;
    let expiring = link_path(&again);
    app.state.advance_clock(Duration::hours(73));
    let expired = set_password(&app, &expiring, NEW_PASSWORD).await;
    assert_eq!(expired.status, StatusCode::GONE);
    assert!(expired.body.contains("This link has expired"));

    // One audit entry per environment for each change.
    assert_eq!(audit_count(&app, "user.invited").await, 4);
    assert_eq!(audit_count(&app, "user.password-changed").await, 2);
}

async fn roles_disabling_and_removal_with_guard_rails(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    add_user(&app, &t.org_id, "ada@bank.example", Role::Admin).await;
    add_user(&app, &t.org_id, "bea@bank.example", Role::Admin).await;
    add_user(&app, &t.org_id, "rex@bank.example", Role::Reviewer).await;
    let (ada, bea, rex) = (
        id_of(&app, "ada@bank.example").await,
        id_of(&app, "bea@bank.example").await,
        id_of(&app, "rex@bank.example").await,
    );
    let mut admin = signed_in(&app, "ada@bank.example").await;
    let csrf = people_csrf(&mut admin).await;
    let act = |user: &str, action: &str| format!("{PEOPLE}/{user}/{action}");

    // Nobody disables, removes or demotes themself.
    let own_role = admin
        .submit(&act(&ada, "role"), &[("csrf", &csrf), ("role", "viewer")])
        .await;
    assert_eq!(own_role.status, StatusCode::CONFLICT);
    assert!(text_of(&own_role, "error").contains("cannot change your own role"));
    for action in ["disable", "remove"] {
        let page = admin
            .submit(&act(&ada, action), &[("csrf", &csrf), ("confirm", "yes")])
            .await;
        assert_eq!(page.status, StatusCode::CONFLICT, "{action}");
        assert!(text_of(&page, "error").contains(&format!("cannot {action} yourself")));
    }

    // A role change.
    let changed = admin
        .submit(&act(&rex, "role"), &[("csrf", &csrf), ("role", "viewer")])
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(
        text_of(&changed, "notice"),
        "rex@bank.example is now viewer."
    );
    let bad_role = admin
        .submit(&act(&rex, "role"), &[("csrf", &csrf), ("role", "owner")])
        .await;
    assert_eq!(bad_role.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Disabling asks first; done, its sessions end and it cannot sign in.
    let mut other = signed_in(&app, "bea@bank.example").await;
    let ask = admin.get(&act(&bea, "disable")).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("Disable this user?"));
    let unconfirmed = admin
        .submit(&act(&bea, "disable"), &[("csrf", &csrf)])
        .await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(signed_in_still(&mut other).await);
    let disabled = admin
        .submit(
            &act(&bea, "disable"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    assert!(text_of(&disabled, "notice").contains("is disabled"));
    assert!(!signed_in_still(&mut other).await);
    let refused = sign_in_attempt(&mut Browser::new(&app), "bea@bank.example", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("This account is disabled"));
    let twice = admin
        .submit(
            &act(&bea, "disable"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);

    let enabled = admin.submit(&act(&bea, "enable"), &[("csrf", &csrf)]).await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.body);
    signed_in(&app, "bea@bank.example").await;

    // Removal: gone from the list, cannot sign in, its address stays taken.
    let removed = admin
        .submit(&act(&rex, "remove"), &[("csrf", &csrf), ("confirm", "yes")])
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert!(!removed.body.contains(&format!("id=\"{rex}\"")));
    let gone = sign_in_attempt(&mut Browser::new(&app), "rex@bank.example", PASSWORD).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        admin.get(&act(&rex, "sessions")).await.status,
        StatusCode::NOT_FOUND
    );

    for (action, entries) in [
        ("user.role-changed", 2),
        ("user.disabled", 2),
        ("user.enabled", 2),
        ("user.removed", 2),
    ] {
        assert_eq!(audit_count(&app, action).await, entries, "{action}");
    }
}

async fn lower_roles_and_other_organizations_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let stranger = app.tenant("Stranger").await;
    add_user(&app, &t.org_id, "ada@bank.example", Role::Admin).await;
    add_user(&app, &t.org_id, "vic@bank.example", Role::Viewer).await;
    add_user(&app, &t.org_id, "rex@bank.example", Role::Reviewer).await;
    add_user(&app, &stranger.org_id, "eve@stranger.example", Role::Admin).await;
    let ada = id_of(&app, "ada@bank.example").await;
    let eve = id_of(&app, "eve@stranger.example").await;

    for email in ["vic@bank.example", "rex@bank.example"] {
        let mut browser = signed_in(&app, email).await;
        let overview = browser.get("/dashboard/overview").await;
        assert!(!overview.body.contains("href=\"/dashboard/people\""));
        assert_eq!(browser.get(PEOPLE).await.status, StatusCode::FORBIDDEN);
        assert_eq!(
            browser
                .get(&format!("{PEOPLE}/{ada}/sessions"))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        let csrf = overview.csrf();
        let invite = browser
            .submit(
                PEOPLE,
                &[
                    ("csrf", &csrf),
                    ("email", "mal@bank.example"),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(invite.status, StatusCode::FORBIDDEN);
        let demote = browser
            .submit(
                &format!("{PEOPLE}/{ada}/disable"),
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(demote.status, StatusCode::FORBIDDEN);
        let require = browser
            .submit(
                "/dashboard/people/two-factor",
                &[("csrf", &csrf), ("required", "yes")],
            )
            .await;
        assert_eq!(require.status, StatusCode::FORBIDDEN);
    }

    // Another organization's user, in either environment: not found, nothing changed.
    let mut admin = signed_in(&app, "ada@bank.example").await;
    let page = admin.get(PEOPLE).await;
    assert!(page.body.contains("href=\"/dashboard/people\""));
    assert!(!page.body.contains("eve@stranger.example"));
    let csrf = page.csrf();
    for environment in ["sandbox", "production"] {
        admin
            .submit(
                "/dashboard/environment",
                &[("csrf", &csrf), ("environment", environment)],
            )
            .await;
        for action in ["sessions", "disable", "remove", "reset-password"] {
            let page = admin.get(&format!("{PEOPLE}/{eve}/{action}")).await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{action}");
            assert!(!page.body.contains("eve@stranger.example"));
        }
        for action in [
            "disable",
            "remove",
            "reset-password",
            "revoke-sessions",
            "enable",
        ] {
            let page = admin
                .submit(
                    &format!("{PEOPLE}/{eve}/{action}"),
                    &[("csrf", &csrf), ("confirm", "yes"), ("role", "viewer")],
                )
                .await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{action}");
        }
        let role = admin
            .submit(
                &format!("{PEOPLE}/{eve}/role"),
                &[("csrf", &csrf), ("role", "viewer")],
            )
            .await;
        assert_eq!(role.status, StatusCode::NOT_FOUND);
    }
    signed_in(&app, "eve@stranger.example").await;
    assert_eq!(
        app.count_rows("SELECT COUNT(*) FROM users WHERE role = 'admin'")
            .await,
        2
    );
    assert_eq!(
        app.count_rows("SELECT COUNT(*) FROM audit_entries WHERE action LIKE 'user.%' AND action NOT LIKE 'user.sign%'")
            .await,
        0
    );
}

async fn resets_end_sessions_and_the_old_password(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    add_user(&app, &t.org_id, "ada@bank.example", Role::Admin).await;
    add_user(&app, &t.org_id, "bob@bank.example", Role::Viewer).await;
    let bob = id_of(&app, "bob@bank.example").await;
    let mut admin = signed_in(&app, "ada@bank.example").await;
    let mut user = signed_in(&app, "bob@bank.example").await;
    let csrf = people_csrf(&mut admin).await;

    let ask = admin.get(&format!("{PEOPLE}/{bob}/reset-password")).await;
    assert!(ask.body.contains("id=\"confirm\""), "{}", ask.body);
    assert!(ask.body.contains("Reset this user"), "{}", ask.body);
    let reset = admin
        .submit(
            &format!("{PEOPLE}/{bob}/reset-password"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    let path = link_path(&reset);
    assert!(!signed_in_still(&mut user).await);
    let old = sign_in_attempt(&mut Browser::new(&app), "bob@bank.example", PASSWORD).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);

    // A second reset replaces the first link.
    let again = admin
        .submit(
            &format!("{PEOPLE}/{bob}/reset-password"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    let newer = link_path(&again);
    assert_eq!(
        set_password(&app, &path, NEW_PASSWORD).await.status,
        StatusCode::GONE
    );
    let set = set_password(&app, &newer, NEW_PASSWORD).await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    let signed = sign_in_attempt(&mut Browser::new(&app), "bob@bank.example", NEW_PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    assert_eq!(audit_count(&app, "user.password-reset").await, 4);
}

async fn users_change_their_password_and_revoke_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    add_user(&app, &t.org_id, "ada@bank.example", Role::Admin).await;
    add_user(&app, &t.org_id, "bob@bank.example", Role::Viewer).await;
    let bob = id_of(&app, "bob@bank.example").await;
    let mut here = signed_in(&app, "bob@bank.example").await;
    let mut there = signed_in(&app, "bob@bank.example").await;

    let account = here.get("/dashboard/account").await;
    assert_eq!(account.status, StatusCode::OK);
    assert_eq!(account.body.matches("(this session)").count(), 1);
    assert_eq!(account.body.matches("<tr id=\"dses_").count(), 2);
    let csrf = account.csrf();

    let wrong = here
        .submit(
            "/dashboard/account/password",
            &[
                ("csrf", &csrf),
                ("current", "not my password"),
                ("password", NEW_PASSWORD),
                ("password-again", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text_of(&wrong, "error").contains("current password is not right"));
    assert!(signed_in_still(&mut there).await);
    let changed = here
        .submit(
            "/dashboard/account/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("password", NEW_PASSWORD),
                ("password-again", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert!(text_of(&changed, "notice").contains("other sessions have ended"));
    assert!(!signed_in_still(&mut there).await);
    assert!(signed_in_still(&mut here).await);
    let old = sign_in_attempt(&mut Browser::new(&app), "bob@bank.example", PASSWORD).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);

    // The user revokes another session of theirs.
    let mut third = Browser::new(&app);
    let signed = sign_in_attempt(&mut third, "bob@bank.example", NEW_PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    let account = here.get("/dashboard/account").await;
    let rows: Vec<&str> = account.body.split("<tr id=\"").skip(1).collect();
    let id_of_row = |row: &str| row.split('"').next().unwrap().to_owned();
    let this_session = rows
        .iter()
        .find(|row| row.contains("(this session)"))
        .map(|row| id_of_row(row))
        .unwrap();
    let other_session = rows
        .iter()
        .map(|row| id_of_row(row))
        .find(|id| *id != this_session)
        .unwrap();
    let revoked = here
        .submit(
            &format!("/dashboard/account/sessions/{other_session}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert!(!signed_in_still(&mut third).await);
    assert!(signed_in_still(&mut here).await);

    // An administrator sees the user's sessions and ends them all.
    let mut admin = signed_in(&app, "ada@bank.example").await;
    let sessions = admin.get(&format!("{PEOPLE}/{bob}/sessions")).await;
    assert_eq!(sessions.status, StatusCode::OK);
    assert!(sessions.body.contains(&this_session));
    assert!(!sessions.body.contains(&other_session));
    let csrf = sessions.csrf();
    let ended = admin
        .submit(
            &format!("{PEOPLE}/{bob}/revoke-sessions"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    assert!(!signed_in_still(&mut here).await);
    assert_eq!(audit_count(&app, "session.revoked").await, 4);
    assert_eq!(audit_count(&app, "user.password-changed").await, 2);
}

/// The current code of a base32 secret at `at`.
fn code(secret: &str, at: OffsetDateTime) -> String {
    let totp = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap();
    totp.generate(u64::try_from(at.unix_timestamp()).unwrap())
        .to_string()
}

async fn two_factor_sign_in_with_codes_used_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    add_user(&app, &t.org_id, "ada@bank.example", Role::Admin).await;
    let mut browser = signed_in(&app, "ada@bank.example").await;

    let setup = browser.get("/dashboard/two-factor").await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.body);
    assert!(setup.body.contains("<svg"), "a QR code");
    let secret = text_of(&setup, "totp-secret");
    assert!(
        setup
            .body
            .contains("otpauth://totp/idshare:ada%40bank.example?"),
        "{}",
        setup.body
    );
    // The secret is sealed at rest.
    assert_eq!(
        app.count_rows(&format!(
            "SELECT COUNT(*) FROM users WHERE CAST(totp_secret AS TEXT) LIKE '%{secret}%'"
        ))
        .await,
        0
    );
    let again = browser.get("/dashboard/two-factor").await;
    assert_eq!(
        text_of(&again, "totp-secret"),
        secret,
        "the same secret until confirmed"
    );
    let csrf = setup.csrf();
    let wrong = browser
        .submit(
            "/dashboard/two-factor",
            &[("csrf", &csrf), ("code", "000000")],
        )
        .await;
    assert!(
        wrong.status == StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.body
    );
    let enrolled_with = code(&secret, app.state.now());
    let on = browser
        .submit(
            "/dashboard/two-factor",
            &[("csrf", &csrf), ("code", &enrolled_with)],
        )
        .await;
    assert_eq!(on.status, StatusCode::SEE_OTHER, "{}", on.body);
    let account = browser.get("/dashboard/account").await;
    assert!(text_of(&account, "two-factor-status").starts_with("On"));

    // Signing in now asks for a code; nothing else opens before it.
    let mut next = Browser::new(&app);
    let password = sign_in_attempt(&mut next, "ada@bank.example", PASSWORD).await;
    assert_eq!(password.location.as_deref(), Some("/dashboard/two-factor"));
    let overview = next.get("/dashboard/overview").await;
    assert_eq!(overview.location.as_deref(), Some("/dashboard/two-factor"));
    let prompt = next.get("/dashboard/two-factor").await;
    assert!(prompt.body.contains("Enter the 6-digit code"));
    assert!(!prompt.body.contains("totp-secret"));
    let csrf = prompt.csrf();
    // The enrolment's code is spent: a replay is refused.
    let replay = next
        .submit(
            "/dashboard/two-factor",
            &[("csrf", &csrf), ("code", &enrolled_with)],
        )
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.body);
    app.state.advance_clock(Duration::seconds(30));
    let fresh = code(&secret, app.state.now());
    let accepted = next
        .submit(
            "/dashboard/two-factor",
            &[("csrf", &csrf), ("code", &fresh)],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
    assert_eq!(accepted.location.as_deref(), Some("/dashboard"));
    assert_eq!(next.get("/dashboard/overview").await.status, StatusCode::OK);

    // Failed codes count as failed sign-ins: the account waits.
    let mut guesser = Browser::new(&app);
    sign_in_attempt(&mut guesser, "ada@bank.example", PASSWORD).await;
    let csrf = guesser.get("/dashboard/two-factor").await.csrf();
    let mut last = StatusCode::OK;
    for _ in 0..7 {
        last = guesser
            .submit(
                "/dashboard/two-factor",
                &[("csrf", &csrf), ("code", "123456")],
            )
            .await
            .status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    assert!(audit_count(&app, "user.sign-in-failed").await >= 10);
    app.state.advance_clock(Duration::minutes(20));

    // Turned off with a code (a later one).
    app.state.advance_clock(Duration::seconds(30));
    let csrf = next.get("/dashboard/account").await.csrf();
    let off = next
        .submit(
            "/dashboard/account/two-factor/off",
            &[("csrf", &csrf), ("code", &code(&secret, app.state.now()))],
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    assert_eq!(text_of(&off, "two-factor-status"), "Off.");
    assert_eq!(audit_count(&app, "user.two-factor-enabled").await, 2);
    assert_eq!(audit_count(&app, "user.two-factor-disabled").await, 2);
}

async fn an_organization_can_require_two_factor(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    add_user(&app, &t.org_id, "ada@bank.example", Role::Admin).await;
    add_user(&app, &t.org_id, "bob@bank.example", Role::Viewer).await;
    let mut admin = signed_in(&app, "ada@bank.example").await;
    let mut user = signed_in(&app, "bob@bank.example").await;
    let csrf = people_csrf(&mut admin).await;

    // Not before the admin has it.
    let early = admin
        .submit(
            "/dashboard/people/two-factor",
            &[("csrf", &csrf), ("required", "yes")],
        )
        .await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert!(text_of(&early, "error").contains("your own account first"));
    let setup = admin.get("/dashboard/two-factor").await;
    let secret = text_of(&setup, "totp-secret");
    let on = admin
        .submit(
            "/dashboard/two-factor",
            &[("csrf", &csrf), ("code", &code(&secret, app.state.now()))],
        )
        .await;
    assert_eq!(on.status, StatusCode::SEE_OTHER, "{}", on.body);
    let required = admin
        .submit(
            "/dashboard/people/two-factor",
            &[("csrf", &csrf), ("required", "yes")],
        )
        .await;
    assert_eq!(required.status, StatusCode::OK, "{}", required.body);
    assert!(text_of(&required, "two-factor-requirement").starts_with("Required"));
    assert_eq!(
        audit_count(&app, "organization.two-factor-required").await,
        2
    );

    // A user without it reaches nothing but the enrolment, from the next request on.
    let page = user.get("/dashboard/inquiries").await;
    assert_eq!(page.location.as_deref(), Some("/dashboard/two-factor"));
    let enrol = user.get("/dashboard/two-factor").await;
    assert!(enrol.body.contains("Your organization requires two-factor"));
    assert!(!enrol.body.contains("Not now"));
    let user_secret = text_of(&enrol, "totp-secret");
    let done = user
        .submit(
            "/dashboard/two-factor",
            &[
                ("csrf", &enrol.csrf()),
                ("code", &code(&user_secret, app.state.now())),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(
        user.get("/dashboard/inquiries").await.status,
        StatusCode::OK
    );
    // It stays on while required.
    let account = user.get("/dashboard/account").await;
    assert!(account.body.contains("Your organization requires it"));
}

async fn operators_manage_people_from_the_command_line(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let storage = storage_for(backend, dir.path()).await;
    stdout(&idshare(&["migrate"], &storage));
    let org = stdout(&idshare(
        &["admin", "org", "create", "--name", "Acme Bank"],
        &storage,
    ));
    let user = |args: &[&str]| {
        let mut all = vec!["admin", "user"];
        all.extend_from_slice(args);
        idshare(&all, &storage)
    };
    stdout(&user(&[
        "create",
        "--org",
        &org,
        "--email",
        "ada@acme.test",
        "--password",
        "correct horse battery",
    ]));
    let invited = user(&[
        "invite",
        "--org",
        &org,
        "--email",
        "bob@acme.test",
        "--role",
        "admin",
    ]);
    let link = stdout(&invited);
    assert!(link.starts_with("/dashboard/set-password/spl_"), "{link}");
    assert!(String::from_utf8_lossy(&invited.stderr).contains("invited bob@acme.test"));
    let list = |storage: &[String]| {
        let text = stdout(&idshare(
            &["admin", "user", "list", "--org", &org, "--json"],
            storage,
        ));
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let people = list(&storage);
    assert_eq!(people[1]["email-address"], "bob@acme.test");
    assert_eq!(people[1]["status"], "invited");
    assert_eq!(people[1]["two-factor"], false);
    assert_eq!(people[0]["status"], "active");
    let table = stdout(&user(&["list", "--org", &org]));
    assert!(
        table.starts_with("ID  ") && table.contains("STATUS") && table.contains("TWO-FACTOR"),
        "{table}"
    );

    // The last active admin stays one, whoever asks (an invited admin may never come).
    for args in [
        vec!["disable", "--email", "ada@acme.test"],
        vec!["remove", "--email", "ada@acme.test"],
        vec!["set-role", "--email", "ada@acme.test", "--role", "viewer"],
    ] {
        let line = refused(&user(&args), &args.join(" "));
        assert!(line.contains("last active administrator"), "{line}");
    }
    assert!(
        refused(
            &user(&["disable", "--email", "nobody@acme.test"]),
            "unknown"
        )
        .contains("no user")
    );
    let bad_role = user(&["set-role", "--email", "bob@acme.test", "--role", "owner"]);
    assert!(!bad_role.status.success());
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("admin, reviewer, viewer"));

    stdout(&user(&[
        "set-role",
        "--email",
        "bob@acme.test",
        "--role",
        "admin",
    ]));
    stdout(&user(&["disable", "--email", "bob@acme.test"]));
    assert_eq!(list(&storage)[1]["status"], "disabled");
    assert!(
        refused(
            &user(&["reset-password", "--email", "bob@acme.test"]),
            "reset"
        )
        .contains("enable it first")
    );
    stdout(&user(&["enable", "--email", "bob@acme.test"]));
    let reset = stdout(&user(&["reset-password", "--email", "bob@acme.test"]));
    assert!(
        reset.starts_with("/dashboard/set-password/spl_") && reset != link,
        "{reset}"
    );
    let sessions = stdout(&user(&["sessions", "--email", "ada@acme.test", "--json"]));
    assert_eq!(sessions, "[]");
    let revoked = user(&["revoke-sessions", "--email", "ada@acme.test"]);
    stdout(&revoked);
    assert!(String::from_utf8_lossy(&revoked.stderr).contains("ended 0 session(s)"));
    stdout(&user(&["remove", "--email", "bob@acme.test"]));
    let people = list(&storage);
    assert_eq!(people.as_array().unwrap().len(), 1, "{people}");
    let again = user(&[
        "invite",
        "--org",
        &org,
        "--email",
        "bob@acme.test",
        "--role",
        "viewer",
    ]);
    assert!(refused(&again, "a removed address").contains("exists already"));
}

backend_tests!(
    operators_manage_people_from_the_command_line,
    invitations_set_a_password_once,
    roles_disabling_and_removal_with_guard_rails,
    lower_roles_and_other_organizations_change_nothing,
    resets_end_sessions_and_the_old_password,
    users_change_their_password_and_revoke_sessions,
    two_factor_sign_in_with_codes_used_once,
    an_organization_can_require_two_factor,
);
