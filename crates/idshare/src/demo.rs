//! `idshare demo`: a tour of the product on a fresh data directory. Two organizations — a bank,
//! "Northwind Bank" (the Connect source), and a fintech, "Lumen Pay" (the destination) — with
//! dashboard users and sandbox keys; their templates; an active connection; completed onboarding
//! inquiries at the bank, shared by the bank's workflow; one share token redeemed into a
//! template the data fits (approved by the fintech's workflow), one redeemed into a template that
//! also needs a proof of address (stuck), one left for the visitor to redeem; and a webhook of
//! the fintech pointing at a receiver in this process that logs every delivery on stderr.
//!
//! Everything goes through the services, in process, as the API would do it. The demo sets up
//! a *fresh* database only: when it holds any organization (the demo's, whose passwords were
//! printed once by the run that created them, or anyone's) it stops with a message and changes
//! nothing.

use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail};
use idshare_domain::{
    connect::ConnectionAction,
    environment::Environment,
    id::{ApiKeyId, ConnectionId, InquiryId, InquiryTemplateId, OrgId, WorkflowId},
    permission::PermissionSet,
    screening::{ListFormat, parse_list},
    webhook_signature::{DEFAULT_TOLERANCE_SECONDS, verify},
};
use idshare_server::{app, config::Config, state::AppState};
use idshare_service::{
    Creator,
    audit::Actor,
    connections,
    inquiries::{self, CreateInquiry, TemplateRef},
    redemption::{self, Redeem},
    templates, webhooks, workflows,
};
use idshare_store::{
    Cursor, Scope, Store, Tx, api_keys, lists, orgs, random_secret,
    share_tokens::{self, ShareToken, ShareTokenFilter},
    users::{self, Role},
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::loopback_receiver::{self, Received};

/// Generated sample lists shipped with the source (see data/lists/README.md).
const SAMPLE_LISTS: [(&str, &str); 2] = [
    (
        "sample-watchlist",
        include_str!("../../../data/lists/sample-watchlist.csv"),
    ),
    (
        "sample-pep",
        include_str!("../../../data/lists/sample-pep.csv"),
    ),
];

/// The bank's customers, each onboarded and shared with the fintech: the first share token is
/// redeemed into "Lumen basic", the second into "Lumen with address" (stuck), the third is left
/// for the visitor.
const CUSTOMERS: [(&str, &str, &str); 3] = [
    ("Mira", "Castellanos", "mira.castellanos@example.com"),
    ("Tobias", "Brandt", "tobias.brandt@example.com"),
    ("Noor", "Haddad", "noor.haddad@example.com"),
];

/// A dashboard user as printed: email, role, the generated password.
struct Login {
    email: &'static str,
    role: Role,
    password: String,
}

/// One of the two organizations, with its sandbox key.
struct Party {
    name: &'static str,
    org_id: OrgId,
    scope: Scope,
    key_id: ApiKeyId,
    key: String,
    logins: Vec<Login>,
}

impl Party {
    /// The demo acts through the party's API key, as a client of the API would.
    fn actor(&self) -> Actor {
        Actor::api_key(self.key_id.clone(), None)
    }
}

/// What the tour set up, to print.
struct Tour {
    bank: Party,
    fintech: Party,
    connection: ConnectionId,
    webhook_url: String,
    redeemed: ShareToken,
    stuck: ShareToken,
    stuck_missing: Vec<String>,
    to_redeem: ShareToken,
}

/// Sets the demo up on the configured data directory, prints how to use it, and serves until
/// SIGINT or SIGTERM.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    // The webhook receiver of the tour listens on loopback.
    config.allow_private_webhook_targets = true;
    let store = app::open_store(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    // The printed URLs name the port actually bound (`--listen 127.0.0.1:0` picks one).
    config.listen = listener.local_addr()?;
    let state = AppState::new(store, config);
    let tour = set_up(&state).await?;
    print(&state, &tour);
    crate::serve_on(listener, state).await
}

async fn set_up(state: &AppState) -> anyhow::Result<Tour> {
    refuse_a_used_database(state.store()).await?;
    import_sample_lists(state.store()).await?;
    let (bank, fintech) = organizations(state).await?;
    let webhook_url = fintech_webhook(state, &fintech).await?;
    let onboarding = template(state, &bank, "Northwind onboarding", onboarding_template()).await?;
    let basic = template(state, &fintech, "Lumen basic", basic_template()).await?;
    let with_address = template(
        state,
        &fintech,
        "Lumen with address",
        with_address_template(),
    )
    .await?;
    let connection = connect(state, &bank, &fintech).await?;
    automate(state, &bank, &fintech, &connection, &onboarding, &basic).await?;
    let customers = onboard_customers(state, &bank, &onboarding).await?;
    let [redeemed, stuck, to_redeem] = shared_tokens(state, &bank, &customers).await?;
    let redeemed = redeem(state, &fintech, &redeemed, &basic).await?;
    let stuck = redeem(state, &fintech, &stuck, &with_address).await?;
    run_jobs(state).await?;
    let stuck_missing = missing_requirements(state, &fintech, &stuck).await?;
    Ok(Tour {
        bank,
        fintech,
        connection,
        webhook_url,
        redeemed,
        stuck,
        stuck_missing,
        to_redeem,
    })
}

/// The demo adds its organizations, admins and keys only to a database that has none: in one
/// that is in use they would be extra ways in, with passwords printed on a terminal.
async fn refuse_a_used_database(store: &Store) -> anyhow::Result<()> {
    let mut tx = store.begin_read().await?;
    let organizations = orgs::count(&mut tx).await?;
    if organizations > 0 {
        bail!(
            "this database already holds {organizations} organization(s) (the demo's, if it ran \
             here before): `idshare demo` sets up a fresh data directory only; pass another \
             --data-dir, or serve this one with `idshare serve`"
        );
    }
    Ok(())
}

async fn import_sample_lists(store: &Store) -> anyhow::Result<()> {
    let imported = lists::summaries(store).await?;
    for (list, csv) in SAMPLE_LISTS {
        if imported.iter().any(|s| s.list == list) {
            continue;
        }
        let parsed = parse_list(ListFormat::OpensanctionsCsv, csv.as_bytes(), list)?;
        let rows = parsed
            .entries
            .iter()
            .map(|e| Ok((e.entity_id.clone(), serde_json::to_string(e)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        lists::replace(store, list, &rows, OffsetDateTime::now_utc(), |_| {}).await?;
    }
    Ok(())
}

/// A password to print once: 18 base58 characters.
fn generated_password() -> String {
    random_secret("x")[2..20].to_owned()
}

/// Both organizations, their users and keys, in one transaction: a second run on the same
/// data directory finds the users' emails taken and stops before changing anything.
async fn organizations(state: &AppState) -> anyhow::Result<(Party, Party)> {
    let mut tx = state.store().begin_write().await?;
    let bank = party(
        state,
        &mut tx,
        "Northwind Bank",
        &[("admin@northwind.example", Role::Admin)],
    )
    .await?;
    let fintech = party(
        state,
        &mut tx,
        "Lumen Pay",
        &[
            ("admin@lumenpay.example", Role::Admin),
            ("reviewer@lumenpay.example", Role::Reviewer),
            ("viewer@lumenpay.example", Role::Viewer),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok((bank, fintech))
}

/// An organization with a full-permission sandbox key and dashboard users.
async fn party(
    state: &AppState,
    tx: &mut Tx,
    name: &'static str,
    users: &[(&'static str, Role)],
) -> anyhow::Result<Party> {
    let now = state.now();
    let org = orgs::create(tx, name, now).await?;
    let scope = Scope::new(org.id.clone(), Environment::Sandbox);
    let (key, secret) = api_keys::create(tx, &scope, "demo", &PermissionSet::all(), now).await?;
    let mut logins = vec![];
    for &(email, role) in users {
        let password = generated_password();
        let hash = users::hash_password(password.clone()).await?;
        match users::create(tx, &org.id, email, &hash, role, now).await {
            Err(e) if e.is_unique_violation() => bail!(
                "this data directory already holds the demo ({email} exists). `idshare demo` sets \
                 up a fresh data directory only: pass another --data-dir (or delete this one), or \
                 serve this one with `idshare serve --allow-private-webhook-targets` and the \
                 passwords printed the first time"
            ),
            other => other?,
        };
        logins.push(Login {
            email,
            role,
            password,
        });
    }
    Ok(Party {
        name,
        org_id: org.id,
        scope,
        key_id: key.id,
        key: secret,
        logins,
    })
}

/// Starts the receiver (logging each delivery with its signature checked) and subscribes the
/// fintech to every event; returns the receiver's URL.
async fn fintech_webhook(state: &AppState, fintech: &Party) -> anyhow::Result<String> {
    let secret = Arc::new(OnceLock::<String>::new());
    let known = secret.clone();
    let base =
        loopback_receiver::start(move |received| log_delivery(&received, known.get())).await?;
    let url = format!("{base}/hooks/lumen-pay");
    let webhook = webhooks::create(
        state,
        &fintech.scope,
        webhooks::Settings {
            name: Some(Some("Demo receiver".to_owned())),
            url: Some(url.clone()),
            enabled_events: Some(vec!["*".to_owned()]),
            ..Default::default()
        },
        &fintech.actor(),
    )
    .await?;
    let _ = secret.set(webhook.secret);
    Ok(url)
}

/// One line on stderr per delivery: the event, its object, and whether the signature holds.
fn log_delivery(received: &Received, secret: Option<&String>) {
    let signed = secret.is_some_and(|secret| {
        verify(
            &received.signature,
            secret,
            &received.body,
            received.at.unix_timestamp(),
            DEFAULT_TOLERANCE_SECONDS,
        )
        .is_ok()
    });
    let event: Value = serde_json::from_slice(&received.body).unwrap_or(Value::Null);
    let text = |pointer: &str| {
        event
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("?")
    };
    eprintln!(
        "webhook receiver got {} {} ({})",
        text("/data/attributes/name"),
        text("/data/attributes/payload/data/id"),
        if signed {
            "signature verified"
        } else {
            "signature INVALID"
        }
    );
}

fn name_and_email() -> Value {
    json!([
        {"key": "name-first", "type": "string", "config": {"required": true}},
        {"key": "name-last", "type": "string", "config": {"required": true}},
        {"key": "email-address", "type": "string", "config": {"required": true}}
    ])
}

/// The bank's onboarding: name, email with its verification, and a watchlist screening.
fn onboarding_template() -> Value {
    json!({
        "field-schemas": name_and_email(),
        "verifications": [{"type": "email-address", "required": true}],
        "reports": [{"type": "watchlist", "on-match": "needs_review",
                     "config": {"lists": ["sample-watchlist"]}}]
    })
}

/// What the bank's data fits: the email verification is reused when a partner passed it
/// within 30 days.
fn basic_template() -> Value {
    json!({
        "field-schemas": name_and_email(),
        "verifications": [{"type": "email-address", "required": true,
                           "reuse": {"max-age-days": 30}}]
    })
}

/// [`basic_template`] and a proof of address, which the bank never collects: a redemption
/// into it is stuck until the end user adds one.
fn with_address_template() -> Value {
    let mut fields = name_and_email();
    let array = fields.as_array_mut().expect("an array");
    for key in [
        "address-street-1",
        "address-city",
        "address-postal-code",
        "address-country-code",
    ] {
        array.push(json!({"key": key, "type": "string"}));
    }
    json!({
        "field-schemas": fields,
        "verifications": [{"type": "email-address", "required": true,
                           "reuse": {"max-age-days": 30}},
                          {"type": "document", "required": true}]
    })
}

async fn template(
    state: &AppState,
    party: &Party,
    name: &str,
    definition: Value,
) -> anyhow::Result<InquiryTemplateId> {
    let (template, _) =
        templates::create(state, &party.scope, name, &definition, &party.actor()).await?;
    Ok(template.id)
}

/// The bank connects to the fintech, which activates the connection.
async fn connect(state: &AppState, bank: &Party, fintech: &Party) -> anyhow::Result<ConnectionId> {
    let connection = connections::create(
        state,
        &bank.scope,
        Creator::ApiKey(&bank.key_id),
        &bank.actor(),
        fintech.org_id.as_str(),
    )
    .await?;
    connections::act(
        state,
        &fintech.scope,
        &connection.id,
        ConnectionAction::Activate,
        &fintech.actor(),
    )
    .await?;
    Ok(connection.id)
}

async fn published_workflow(
    state: &AppState,
    party: &Party,
    name: &str,
    definition: Value,
) -> anyhow::Result<WorkflowId> {
    let actor = party.actor();
    let created = workflows::create(state, &party.scope, name, &definition, &actor).await?;
    workflows::publish(state, &party.scope, &created.workflow.id, &actor).await?;
    Ok(created.workflow.id)
}

/// The bank shares every completed onboarding inquiry; the fintech approves every completed
/// inquiry of "Lumen basic" (see docs/workflows.md).
async fn automate(
    state: &AppState,
    bank: &Party,
    fintech: &Party,
    connection: &ConnectionId,
    onboarding: &InquiryTemplateId,
    basic: &InquiryTemplateId,
) -> anyhow::Result<()> {
    let template_is = |id: &InquiryTemplateId| {
        format!("object.relationships['inquiry-template'].data.id == '{id}'")
    };
    published_workflow(
        state,
        bank,
        "Share completed onboarding inquiries",
        json!({"trigger": {"event": "inquiry.completed", "condition": template_is(onboarding)},
               "steps": [{"id": "share", "action": "create-share-token",
                          "with": {"connection-id": connection.as_str()}}]}),
    )
    .await?;
    published_workflow(
        state,
        fintech,
        "Approve completed basic inquiries",
        json!({"trigger": {"event": "inquiry.completed", "condition": template_is(basic)},
               "steps": [{"id": "approve", "action": "approve-inquiry",
                          "with": {"comment": "verified by Northwind Bank, no watchlist match"}}]}),
    )
    .await?;
    Ok(())
}

/// Runs every due job to completion: the verification pipeline, workflow runs, redemptions and
/// webhook deliveries (the server's workers take over once it serves).
async fn run_jobs(state: &AppState) -> anyhow::Result<()> {
    idshare_service::worker::drain(state)
        .await
        .map_err(|e| anyhow::anyhow!("a demo job failed: {e:?}"))?;
    Ok(())
}

/// The bank's customers submit their onboarding inquiries, and the pipeline completes them.
async fn onboard_customers(
    state: &AppState,
    bank: &Party,
    onboarding: &InquiryTemplateId,
) -> anyhow::Result<Vec<InquiryId>> {
    let mut ids = vec![];
    for (i, (first, last, email)) in CUSTOMERS.into_iter().enumerate() {
        let fields = json!({"name-first": first, "name-last": last, "email-address": email});
        let created = inquiries::create(
            state,
            &bank.scope,
            CreateInquiry {
                template: TemplateRef::Template(onboarding.clone()),
                reference_id: Some(format!("northwind-customer-{}", i + 1)),
                fields: fields.as_object().cloned().unwrap_or_default(),
                note: None,
                tags: vec!["demo".into()],
                expires_in_seconds: None,
            },
        )
        .await?;
        inquiries::submit(state, &bank.scope, &created.inquiry.id).await?;
        ids.push(created.inquiry.id);
    }
    run_jobs(state).await?;
    Ok(ids)
}

/// The tokens the bank's workflow created, one per customer, in [`CUSTOMERS`] order.
async fn shared_tokens(
    state: &AppState,
    bank: &Party,
    customers: &[InquiryId],
) -> anyhow::Result<[ShareToken; 3]> {
    let mut tx = state.store().begin_read().await?;
    let page = share_tokens::list(
        &mut tx,
        &bank.scope,
        &ShareTokenFilter::default(),
        Cursor::Start,
        100,
    )
    .await?
    .context("the bank's share tokens")?;
    drop(tx);
    let mut tokens = page.items;
    let mut of = |inquiry: &InquiryId| {
        let at = tokens
            .iter()
            .position(|t| &t.source_inquiry_id == inquiry)
            .with_context(|| {
                format!(
                    "no share token for {inquiry}: did its onboarding inquiry complete (a \
                     watchlist match sends it to review)?"
                )
            })?;
        Ok::<_, anyhow::Error>(tokens.swap_remove(at))
    };
    let [a, b, c] = customers else {
        bail!("three customers");
    };
    Ok([of(a)?, of(b)?, of(c)?])
}

/// The fintech redeems a token into a new inquiry of `template`; the job runs with the next
/// [`run_jobs`].
async fn redeem(
    state: &AppState,
    fintech: &Party,
    token: &ShareToken,
    template: &InquiryTemplateId,
) -> anyhow::Result<ShareToken> {
    Ok(redemption::redeem(
        state,
        &fintech.scope,
        &token.id,
        Redeem {
            destination_id: None,
            inquiry_template_id: Some(template.to_string()),
            field_mappings: vec![],
        },
        &fintech.actor(),
    )
    .await?)
}

/// What the stuck inquiry still lacks, as `kind:key`; fails unless it is `pending`.
async fn missing_requirements(
    state: &AppState,
    fintech: &Party,
    stuck: &ShareToken,
) -> anyhow::Result<Vec<String>> {
    let id = stuck
        .destination_inquiry_id
        .as_ref()
        .context("the stuck token names its inquiry")?;
    let view = inquiries::get(state, &fintech.scope, id).await?;
    if view.missing.is_empty() {
        bail!(
            "inquiry {id} was expected to be stuck, but is `{}` with nothing missing",
            view.inquiry.status
        );
    }
    Ok(view
        .missing
        .iter()
        .map(|r| format!("{}:{}", r.kind, r.key))
        .collect())
}

fn destination(token: &ShareToken) -> String {
    token
        .destination_inquiry_id
        .as_ref()
        .map_or_else(|| "?".to_owned(), ToString::to_string)
}

fn print_party(party: &Party, role: &str) {
    println!("{} ({role})  {}", party.name, party.org_id);
    for login in &party.logins {
        println!(
            "  {:<9} {:<28} password {}",
            login.role.as_str(),
            login.email,
            login.password
        );
    }
    println!("  sandbox API key    {}", party.key);
    println!();
}

fn print(state: &AppState, tour: &Tour) {
    let base = state.config().public_url();
    let fintech_admin = tour.fintech.logins[0].email;
    println!("\nidshare demo is ready: Northwind Bank shares verified customers with Lumen Pay.\n");
    println!("Dashboard  {base}/dashboard  (sandbox; each password is shown only this once)\n");
    print_party(&tour.bank, "the Connect source");
    print_party(&tour.fintech, "the Connect destination");
    println!("Connect");
    println!(
        "  connection         {}  active, Northwind Bank -> Lumen Pay",
        tour.connection
    );
    println!(
        "  redeemed token     {}  into \"Lumen basic\": inquiry {} (approved by Lumen Pay's workflow)",
        tour.redeemed.id,
        destination(&tour.redeemed)
    );
    println!(
        "  stuck token        {}  into \"Lumen with address\"",
        tour.stuck.id
    );
    println!(
        "  stuck inquiry      {}  pending, missing {}",
        destination(&tour.stuck),
        tour.stuck_missing.join(", ")
    );
    println!(
        "  token to redeem    {}  created, waiting for you",
        tour.to_redeem.id
    );
    println!(
        "  webhook            {}  (Lumen Pay, every event; deliveries are logged on stderr)\n",
        tour.webhook_url
    );
    println!("Try it:\n");
    println!(
        "  1. Sign in as {fintech_admin}, open Connect > Share Tokens and redeem {} into \"Lumen basic\".",
        tour.to_redeem.id
    );
    println!(
        "  2. Open the stuck inquiry {} and create a one-time link: the end user adds the proof of address.",
        destination(&tour.stuck)
    );
    println!(
        "  3. Watch this terminal: \"webhook receiver got …\" lines follow every event of Lumen Pay."
    );
    println!(
        "\n  curl -s {base}/api/v1/inquiries/{} -H 'Authorization: Bearer {}'",
        destination(&tour.stuck),
        tour.fintech.key
    );
    println!("\nThe API reference: {base}/api/v1/openapi.json");
}
