//! The dashboard for reviewers through HTTP, as a browser without JavaScript uses it: a webhook
//! delivery's own page, field mappings in a share token's preview and redeem, confirmations
//! before irreversible actions, notices after actions, and paging both ways — with roles, and
//! other organizations' and environments' objects.

use idshare_store::users::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    browser::{Browser, Page},
    dashboard::{TOKENS, add_user, connect_setup, csrf, id_of, signed_in, text_of},
    helpers::{Backend, TestApp, expect_status, spawn_app},
    webhooks::Receiver,
};

const WEBHOOKS: &str = "/dashboard/webhooks";
const INQUIRIES: &str = "/dashboard/inquiries";

/// The `href` of the first link whose text contains `text`.
fn link_to(page: &Page, text: &str) -> Option<String> {
    let at = page.body.find(text)?;
    let before = &page.body[..at];
    let start = before.rfind("href=\"")? + "href=\"".len();
    let end = start + page.body[start..].find('"')?;
    Some(
        page.body[start..end]
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

async fn switch(browser: &mut Browser, environment: &str) {
    let token = csrf(browser).await;
    let switched = browser
        .submit(
            "/dashboard/environment",
            &[("csrf", &token), ("environment", environment)],
        )
        .await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
}

/// A webhook of `browser`'s organization (sandbox) sending `inquiry.created` to `receiver`.
async fn webhook_to(browser: &mut Browser, receiver: &Receiver) -> String {
    let token = csrf(browser).await;
    let created = browser
        .submit(
            WEBHOOKS,
            &[
                ("csrf", &token),
                ("url", &receiver.url),
                ("enabled_events", "inquiry.created"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    text_of(&created, "webhook-id")
}

async fn a_delivery_shows_what_was_sent_and_every_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Acme Bank").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &t.org_id, "ops@acme.example", Role::Admin).await;
    add_user(&app, &t.org_id, "auditor@acme.example", Role::Viewer).await;
    add_user(&app, &c.org_id, "eve@stranger.example", Role::Admin).await;
    let receiver = Receiver::start().await;
    let mut admin = signed_in(&app, "ops@acme.example").await;
    let webhook = webhook_to(&mut admin, &receiver).await;
    let path = format!("{WEBHOOKS}/{webhook}");

    // The first attempt is accepted with a long answer; the redelivery refused with a hostile
    // one (and left pending, to be retried later).
    receiver.answer_body(&"ok ".repeat(600));
    let template = app.create_template(&t.sandbox).await;
    app.create_inquiry(&t.sandbox, &template, json!({"name-first": "Ada <b>"}))
        .await;
    app.drain().await;
    receiver.answer(500);
    receiver.answer_body("<script>alert(1)</script> try later");
    let page = admin.get(&path).await;
    assert!(
        page.body.contains("class=\"fitted deliveries\""),
        "{}",
        page.body
    );
    let delivery_path = link_to(&page, ">View<").expect("a link to the delivery");
    let token = page.csrf();
    let redelivered = admin
        .submit(&format!("{delivery_path}/redeliver"), &[("csrf", &token)])
        .await;
    assert_eq!(redelivered.status, StatusCode::SEE_OTHER);
    app.drain().await;
    assert_eq!(receiver.received().len(), 2);

    let view = admin.get(&delivery_path).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    view.assert_html();
    assert_eq!(text_of(&view, "delivery-status"), "pending");
    assert_eq!(text_of(&view, "delivery-url"), receiver.url);
    // The body as sent, pretty and escaped: the event with its payload.
    assert!(
        view.body.contains("&#34;inquiry.created&#34;"),
        "{}",
        view.body
    );
    assert!(
        view.body.contains("\n  &#34;data&#34;: {"),
        "pretty: {}",
        view.body
    );
    assert!(
        view.body.contains("Ada &#60;b&#62;"),
        "escaped: {}",
        view.body
    );
    assert!(!view.body.contains("Ada <b>"));
    // The headers that matter, never the secret.
    assert!(view.body.contains("<code>Persona-Signature</code>"));
    assert!(!view.body.contains("wbhsec_"));
    // Each attempt: its status code, latency and the receiver's answer (bounded, escaped).
    let attempts = &view.body[view.body.find("id=\"attempts\"").unwrap()..];
    assert!(attempts.contains("<strong>500</strong>"), "{attempts}");
    assert!(attempts.contains("<strong>200</strong>"));
    assert!(attempts.contains("the receiver answered 500"));
    assert!(attempts.contains("&#60;script&#62;alert(1)&#60;/script&#62; try later"));
    assert!(!attempts.contains("<script>alert(1)"));
    assert!(attempts.contains(" ms</td>"));
    let kept = "ok ".repeat(600)[..1024].to_owned();
    assert!(attempts.contains(&format!("{kept}…")), "cut at 1 KiB");
    assert!(!attempts.contains(&"ok ".repeat(342)), "no more than 1 KiB");

    // A viewer reads it, without the Redeliver button; opening it is in the audit log.
    let mut viewer = signed_in(&app, "auditor@acme.example").await;
    let seen = viewer.get(&delivery_path).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(!seen.body.contains(">Redeliver<"));
    let viewed = app
        .count_rows("SELECT COUNT(*) FROM audit_entries WHERE action = 'webhook-delivery.viewed'")
        .await;
    assert_eq!(viewed, 2);

    // Another organization, the other environment and a delivery of another webhook: 404.
    let mut stranger = signed_in(&app, "eve@stranger.example").await;
    let foreign = stranger.get(&delivery_path).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert!(!foreign.body.contains("inquiry.created"));
    let stranger_receiver = Receiver::start().await;
    let theirs = webhook_to(&mut stranger, &stranger_receiver).await;
    let delivery = delivery_path.rsplit('/').next().unwrap();
    let crossed = admin
        .get(&format!("{WEBHOOKS}/{theirs}/deliveries/{delivery}"))
        .await;
    assert_eq!(crossed.status, StatusCode::NOT_FOUND);
    switch(&mut admin, "production").await;
    let elsewhere = admin.get(&delivery_path).await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
    assert!(!elsewhere.body.contains("Ada"));
    let unknown = admin.get(&format!("{path}/deliveries/not-an-id")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

/// A destination template with a `given-name` field the source's `name-first` can fill.
async fn mapping_template(app: &TestApp, key: &str) -> String {
    id_of(
        &expect_status(
            app.post(
                key,
                "/api/v1/inquiry-templates",
                &json!({"data": {"attributes": {"name": "Brokerage", "field-schemas": [
                    {"key": "given-name", "type": "string"},
                    {"key": "email-address", "type": "string"}],
                  "verifications": [{"type": "email-address", "required": true, "reuse": {"max-age-days": 30}}]}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    )
}

async fn field_mappings_in_the_dashboard_preview_and_redeem(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.tenant("Acme Bank").await;
    let d = app.tenant("Globex").await;
    add_user(&app, &s.org_id, "ops@acme.example", Role::Admin).await;
    add_user(&app, &d.org_id, "ops@globex.example", Role::Admin).await;
    add_user(&app, &d.org_id, "auditor@globex.example", Role::Viewer).await;
    let (connection, inquiry, _) = connect_setup(&app, &s, &d).await;
    let template = mapping_template(&app, &d.sandbox).await;
    let mut source = signed_in(&app, "ops@acme.example").await;
    let token = csrf(&mut source).await;
    let token_path = source
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

    // Choosing the template opens the editor: selects of the template's fields, empty rows.
    let mut destination = signed_in(&app, "ops@globex.example").await;
    let chosen = destination
        .get(&format!("{token_path}?template={template}"))
        .await;
    assert_eq!(chosen.status, StatusCode::OK, "{}", chosen.body);
    assert!(chosen.body.contains("id=\"field-mappings\""));
    assert!(
        chosen
            .body
            .contains("<option value=\"given-name\">given-name</option>")
    );
    assert!(chosen.body.contains("name=\"source\""));
    assert!(chosen.body.contains("name=\"destination\""));

    // Bad rows: each reason, row by row, and no preview (no read of the source is spent).
    for (rows, reason) in [
        (
            vec![("name-first", "")],
            "Mapping 1: name both the partner&#39;s field",
        ),
        (
            vec![("name-first", "nickname")],
            "Mapping 1: `nickname` is not a field of the chosen template.",
        ),
        (
            vec![("name-first", "given-name"), ("name-last", "given-name")],
            "Mapping 2: `given-name` is the destination of more than one field mapping.",
        ),
    ] {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("template", &template);
        for (from, to) in &rows {
            query
                .append_pair("source", from)
                .append_pair("destination", to);
        }
        let refused = destination
            .get(&format!("{token_path}?{}", query.finish()))
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{rows:?}");
        assert!(refused.body.contains(reason), "{reason}: {}", refused.body);
        assert!(!refused.body.contains("id=\"preview\""));
    }
    let hostile = destination
        .get(&format!(
            "{token_path}?template={template}&source=%3Cscript%3Ealert(1)%3C/script%3E&destination=nickname"
        ))
        .await;
    assert!(!hostile.body.contains("<script>alert(1)"));
    assert!(
        hostile.body.contains("&#60;script&#62;alert(1)"),
        "kept, escaped"
    );

    // A mapping previews (the name fills `given-name`), and the redeem form carries it.
    let preview = destination
        .get(&format!(
            "{token_path}?template={template}&source=name-first&destination=given-name&source=&destination="
        ))
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(preview.body.contains("id=\"preview\""));
    assert!(
        preview.body.contains("value=\"name-first\" autocomplete"),
        "kept in the editor"
    );
    assert!(
        text_of(&preview, "redeem-mappings").contains("With 1 field mapping"),
        "{}",
        preview.body
    );
    assert!(
        preview
            .body
            .contains("<input type=\"hidden\" name=\"destination\" value=\"given-name\">")
    );

    // A viewer cannot redeem; a redeem with a bad mapping is refused and changes nothing.
    let mut viewer = signed_in(&app, "auditor@globex.example").await;
    let viewer_csrf = csrf(&mut viewer).await;
    let denied = viewer
        .submit(
            &format!("{token_path}/redeem"),
            &[
                ("csrf", &viewer_csrf),
                ("template", &template),
                ("source", "name-first"),
                ("destination", "given-name"),
            ],
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let refused = destination
        .submit(
            &format!("{token_path}/redeem"),
            &[
                ("csrf", &preview.csrf()),
                ("template", &template),
                ("source", "name-first"),
                ("destination", "nickname"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .body
            .contains("`nickname` is not a field of the chosen template.")
    );
    assert_eq!(text_of(&refused, "token-status"), "created");

    // Redeemed with the mapping: the destination's `given-name` holds the source's first name.
    let redeemed = destination
        .submit(
            &format!("{token_path}/redeem"),
            &[
                ("csrf", &preview.csrf()),
                ("template", &template),
                ("source", "name-first"),
                ("destination", "given-name"),
            ],
        )
        .await;
    assert_eq!(redeemed.status, StatusCode::SEE_OTHER, "{}", redeemed.body);
    let started = destination.get(&token_path).await;
    assert_eq!(text_of(&started, "notice"), "Redemption started.");
    app.drain().await;
    let done = destination.get(&token_path).await;
    assert_eq!(text_of(&done, "token-status"), "redeemed");
    assert!(!done.body.contains("id=\"notice\""), "shown once");
    let copied = expect_status(
        app.get(
            &d.sandbox,
            &format!(
                "/api/v1/inquiries/{}",
                text_of(&done, "destination-inquiry")
            ),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        copied["data"]["attributes"]["fields"]["given-name"]["value"],
        "Ada"
    );
}

async fn irreversible_actions_ask_first_and_say_when_done(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.tenant("Acme Bank").await;
    let d = app.tenant("Globex").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &s.org_id, "ops@acme.example", Role::Admin).await;
    add_user(&app, &s.org_id, "review@acme.example", Role::Reviewer).await;
    add_user(&app, &s.org_id, "auditor@acme.example", Role::Viewer).await;
    add_user(&app, &d.org_id, "ops@globex.example", Role::Admin).await;
    add_user(&app, &c.org_id, "eve@stranger.example", Role::Admin).await;
    let (connection, inquiry, _) = connect_setup(&app, &s, &d).await;
    let mut admin = signed_in(&app, "ops@acme.example").await;
    let token = csrf(&mut admin).await;
    let token_path = admin
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
    let created = admin.get(&token_path).await;
    assert_eq!(text_of(&created, "notice"), "Share token created.");
    assert!(
        !admin.get(&token_path).await.body.contains("id=\"notice\""),
        "once"
    );

    // Expiring a share token: the unconfirmed POST asks, and changes nothing.
    let asked = admin
        .submit(&format!("{token_path}/expire"), &[("csrf", &token)])
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(asked.body.contains("id=\"confirm\""));
    assert!(
        asked
            .body
            .contains("<input type=\"hidden\" name=\"confirm\" value=\"yes\">")
    );
    assert!(
        asked
            .body
            .contains(&format!("href=\"{token_path}\">Cancel<"))
    );
    assert_eq!(
        text_of(&admin.get(&token_path).await, "token-status"),
        "created"
    );
    // A viewer is refused, another organization and the other environment find nothing.
    let mut viewer = signed_in(&app, "auditor@acme.example").await;
    let viewer_csrf = csrf(&mut viewer).await;
    let denied = viewer
        .submit(
            &format!("{token_path}/expire"),
            &[("csrf", &viewer_csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let mut stranger = signed_in(&app, "eve@stranger.example").await;
    let stranger_csrf = csrf(&mut stranger).await;
    for confirm in ["", "yes"] {
        let attempt = stranger
            .submit(
                &format!("{token_path}/expire"),
                &[("csrf", &stranger_csrf), ("confirm", confirm)],
            )
            .await;
        assert_eq!(attempt.status, StatusCode::NOT_FOUND, "{confirm}");
        assert!(!attempt.body.contains(&inquiry));
    }
    switch(&mut admin, "production").await;
    let token = csrf(&mut admin).await;
    let elsewhere = admin
        .submit(&format!("{token_path}/expire"), &[("csrf", &token)])
        .await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
    switch(&mut admin, "sandbox").await;
    let token = csrf(&mut admin).await;
    assert_eq!(
        text_of(&admin.get(&token_path).await, "token-status"),
        "created"
    );
    let expired = admin
        .submit(
            &format!("{token_path}/expire"),
            &[("csrf", &token), ("confirm", "yes")],
        )
        .await;
    assert_eq!(expired.location.as_deref(), Some(token_path.as_str()));
    let page = admin.get(&token_path).await;
    assert_eq!(text_of(&page, "token-status"), "expired");
    assert_eq!(text_of(&page, "notice"), "Share token expired.");

    // Declining an inquiry: asked first, the comment carried to the confirmation, escaped.
    let inquiry_path = format!("{INQUIRIES}/{inquiry}");
    let mut reviewer = signed_in(&app, "review@acme.example").await;
    let review_csrf = csrf(&mut reviewer).await;
    let asked = reviewer
        .submit(
            &format!("{inquiry_path}/decline"),
            &[("csrf", &review_csrf), ("comment", "<b>forged</b> id")],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(asked.body.contains("Decline this inquiry"));
    assert!(
        asked
            .body
            .contains("name=\"comment\" value=\"&#60;b&#62;forged&#60;/b&#62; id\"")
    );
    assert_eq!(
        text_of(&reviewer.get(&inquiry_path).await, "inquiry-status"),
        "completed"
    );
    let denied = viewer
        .submit(
            &format!("{inquiry_path}/decline"),
            &[("csrf", &viewer_csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let foreign = stranger
        .submit(
            &format!("{inquiry_path}/decline"),
            &[("csrf", &stranger_csrf)],
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let declined = reviewer
        .submit(
            &format!("{inquiry_path}/decline"),
            &[
                ("csrf", &review_csrf),
                ("comment", "forged id"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(declined.location.as_deref(), Some(inquiry_path.as_str()));
    let page = reviewer.get(&inquiry_path).await;
    assert_eq!(text_of(&page, "inquiry-status"), "declined");
    assert_eq!(text_of(&page, "notice"), "Inquiry declined.");

    // Archiving a webhook: asked first; enabling and disabling are not.
    let receiver = Receiver::start().await;
    let webhook = webhook_to(&mut admin, &receiver).await;
    let webhook_path = format!("{WEBHOOKS}/{webhook}");
    let asked = admin
        .submit(&format!("{webhook_path}/archive"), &[("csrf", &token)])
        .await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(asked.body.contains("Archive this webhook"));
    assert_eq!(
        text_of(&admin.get(&webhook_path).await, "webhook-status"),
        "enabled"
    );
    let foreign = stranger
        .submit(
            &format!("{webhook_path}/archive"),
            &[("csrf", &stranger_csrf)],
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let disabled = admin
        .submit(&format!("{webhook_path}/disable"), &[("csrf", &token)])
        .await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER);
    assert_eq!(
        text_of(&admin.get(&webhook_path).await, "notice"),
        "Webhook disabled."
    );
    let archived = admin
        .submit(
            &format!("{webhook_path}/archive"),
            &[("csrf", &token), ("confirm", "yes")],
        )
        .await;
    assert_eq!(archived.status, StatusCode::SEE_OTHER);
    let page = admin.get(&webhook_path).await;
    assert_eq!(text_of(&page, "webhook-status"), "archived");
    assert_eq!(text_of(&page, "notice"), "Webhook archived.");

    // A notice cookie naming no notice shows nothing.
    admin.cookie = admin
        .cookie
        .map(|c| format!("{c}; idshare_notice=%3Cscript%3E"));
    let page = admin.get(&webhook_path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("id=\"notice\""));
}

async fn paged_lists_go_newer_and_older(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Acme Bank").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &t.org_id, "ops@acme.example", Role::Admin).await;
    add_user(&app, &c.org_id, "eve@stranger.example", Role::Admin).await;
    let template = app.create_template(&t.sandbox).await;
    let mut created = vec![];
    for i in 0..30 {
        let inquiry = app
            .create_inquiry(
                &t.sandbox,
                &template,
                json!({"name-first": format!("N{i}")}),
            )
            .await;
        created.push(id_of(&inquiry));
    }
    let mut admin = signed_in(&app, "ops@acme.example").await;
    let ids_on = |page: &Page| -> Vec<String> {
        created
            .iter()
            .filter(|id| page.body.contains(&format!("{INQUIRIES}/{id}\"")))
            .cloned()
            .collect()
    };

    // The newest 25 first: "Older" only.
    let first = admin.get(INQUIRIES).await;
    assert_eq!(ids_on(&first).len(), 25);
    assert!(ids_on(&first).contains(&created[29]));
    assert!(link_to(&first, "Newer inquiries").is_none());
    let older = link_to(&first, "Older inquiries").expect("an Older link");
    // The 5 oldest next: "Newer" only, back to the same first page.
    let second = admin.get(&older).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(ids_on(&second).len(), 5);
    assert!(ids_on(&second).contains(&created[0]));
    assert!(link_to(&second, "Older inquiries").is_none());
    let newer = link_to(&second, "Newer inquiries").expect("a Newer link");
    assert!(newer.contains("before="), "{newer}");
    let back = admin.get(&newer).await;
    assert_eq!(ids_on(&back), ids_on(&first));
    assert!(link_to(&back, "Older inquiries").is_some());

    // Filters are kept in both links.
    let filtered = admin.get(&format!("{INQUIRIES}?status=created")).await;
    let older = link_to(&filtered, "Older inquiries").unwrap();
    assert!(older.contains("status=created"), "{older}");
    let newer = link_to(&admin.get(&older).await, "Newer inquiries").unwrap();
    assert!(newer.contains("status=created"), "{newer}");

    // A cursor naming another organization's or environment's inquiry finds nothing.
    let mut stranger = signed_in(&app, "eve@stranger.example").await;
    for cursor in ["before", "after"] {
        let foreign = stranger
            .get(&format!("{INQUIRIES}?{cursor}={}", created[10]))
            .await;
        assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{cursor}");
        assert!(!foreign.body.contains(&created[9]));
    }
    switch(&mut admin, "production").await;
    let elsewhere = admin
        .get(&format!("{INQUIRIES}?before={}", created[10]))
        .await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
}

async fn inquiries_are_found_by_reference_id_name_or_email(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Acme Bank").await;
    let c = app.tenant("Stranger").await;
    add_user(&app, &t.org_id, "ops@acme.example", Role::Admin).await;
    let template = app.create_template(&t.sandbox).await;
    let create = |key: String, template: String, attributes: serde_json::Value| {
        let app = &app;
        async move {
            let mut attributes = attributes;
            attributes["inquiry-template-id"] = json!(template);
            id_of(
                &expect_status(
                    app.post(
                        &key,
                        "/api/v1/inquiries",
                        &json!({"data": {"attributes": attributes}}),
                    )
                    .await,
                    StatusCode::CREATED,
                )
                .await,
            )
        }
    };
    let ada = create(
        t.sandbox.clone(),
        template.clone(),
        json!({"fields": {"name-first": "Ada", "name-last": "Lovelace",
                          "email-address": "Ada@Example.com"}}),
    )
    .await;
    let grace = create(
        t.sandbox.clone(),
        template.clone(),
        json!({"reference-id": "cust-42",
               "fields": {"name-first": "Grace", "name-last": "Hopper"}}),
    )
    .await;
    let theirs = app.create_template(&c.sandbox).await;
    let stranger_ada = create(
        c.sandbox.clone(),
        theirs,
        json!({"fields": {"name-first": "Ada", "email-address": "ada@example.com"}}),
    )
    .await;
    let mut admin = signed_in(&app, "ops@acme.example").await;
    let found = |page: &Page| -> Vec<String> {
        [&ada, &grace, &stranger_ada]
            .into_iter()
            .filter(|id| page.body.contains(&format!("{INQUIRIES}/{id}\"")))
            .cloned()
            .collect()
    };

    for (query, expected) in [
        ("ada@example.com", vec![ada.clone()]),
        ("  ADA@Example.COM ", vec![ada.clone()]),
        ("lovelace", vec![ada.clone()]),
        ("Ada  Lovelace", vec![ada.clone()]),
        ("ada", vec![ada.clone()]),
        ("cust-42", vec![grace.clone()]),
        ("grace hopper", vec![grace.clone()]),
        ("Lovelac", vec![]),
        ("<script>alert(1)</script>", vec![]),
    ] {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("q", query)
            .finish();
        let page = admin.get(&format!("{INQUIRIES}?{encoded}")).await;
        assert_eq!(page.status, StatusCode::OK, "{query}: {}", page.body);
        assert_eq!(found(&page), expected, "{query}");
        assert!(!page.body.contains("<script>alert(1)"));
    }
    let page = admin.get(&format!("{INQUIRIES}?q=nobody")).await;
    assert!(page.body.contains("No inquiries match."));
    assert!(page.body.contains("value=\"nobody\""), "the search kept");

    // The index holds keyed hashes only, one key per organization and environment.
    assert_eq!(
        app.count_rows("SELECT COUNT(*) FROM inquiry_search_keys")
            .await,
        2
    );
    assert!(
        app.count_rows("SELECT COUNT(*) FROM inquiry_search_terms")
            .await
            > 0
    );
    let not_hashes = app
        .count_rows("SELECT COUNT(*) FROM inquiry_search_terms WHERE length(term) <> 32")
        .await;
    assert_eq!(not_hashes, 0, "HMAC-SHA256 values only");

    // A change of name is found by the new one only; a redacted inquiry by none.
    expect_status(
        app.patch(
            &t.sandbox,
            &format!("/api/v1/inquiries/{ada}"),
            &json!({"data": {"attributes": {"fields": {"name-last": "Byron"}}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let renamed = admin.get(&format!("{INQUIRIES}?q=byron")).await;
    assert_eq!(found(&renamed), vec![ada.clone()]);
    let old = admin.get(&format!("{INQUIRIES}?q=lovelace")).await;
    assert!(found(&old).is_empty());
    app.delete(&t.sandbox, &format!("/api/v1/inquiries/{ada}"))
        .await;
    let redacted = admin.get(&format!("{INQUIRIES}?q=byron")).await;
    assert!(found(&redacted).is_empty());
    assert_eq!(
        app.count_rows(&format!(
            "SELECT COUNT(*) FROM inquiry_search_terms WHERE inquiry_id = '{ada}'"
        ))
        .await,
        0
    );

    // The other environment finds nothing.
    switch(&mut admin, "production").await;
    let elsewhere = admin.get(&format!("{INQUIRIES}?q=cust-42")).await;
    assert!(found(&elsewhere).is_empty());
}

backend_tests!(
    a_delivery_shows_what_was_sent_and_every_answer,
    field_mappings_in_the_dashboard_preview_and_redeem,
    irreversible_actions_ask_first_and_say_when_done,
    paged_lists_go_newer_and_older,
    inquiries_are_found_by_reference_id_name_or_email,
);
