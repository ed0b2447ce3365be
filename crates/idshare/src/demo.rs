//! `idshare demo`: a ready-to-try organization on a fresh (or existing) instance — sample
//! screening lists, a KYC template, one inquiry taken through the whole verification pipeline
//! (documents, files, submission; the server's workers finish it), and a one-time link to a
//! second inquiry for trying the hosted flow.

use idshare_domain::{
    environment::Environment,
    mrz::check_digit,
    permission::PermissionSet,
    screening::{ListFormat, parse_list},
    verification::{AddressDocument, FileKind, GovernmentIdDocument},
};
use idshare_server::{
    app::AppState,
    config::Config,
    service::{
        files::{self, NewDocument},
        inquiries::{self, CreateInquiry, TemplateRef},
        templates,
    },
};
use idshare_store::{Scope, Store, api_keys, lists, orgs, sessions::SessionKind};
use serde_json::json;
use time::{Duration, OffsetDateTime};

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

/// A PNG signature and a few bytes: stands in for the photos of the demo.
const SAMPLE_IMAGE: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRidshare-demo-image";

/// The two lines of a TD3 passport MRZ with correct check digits.
fn passport_mrz(
    surname: &str,
    given: &str,
    number: &str,
    birth: &str,
    expiry: &str,
) -> Vec<String> {
    let line1 = format!("P<GBR{:<<39}", format!("{surname}<<{given}"));
    let optional = "<".repeat(14);
    let [n, b, e, o] = [number, birth, expiry, optional.as_str()].map(check_digit);
    let composite = check_digit(&format!("{number}{n}{birth}{b}{expiry}{e}{optional}{o}"));
    vec![
        line1,
        format!("{number}{n}GBR{birth}{b}F{expiry}{e}{optional}{o}{composite}"),
    ]
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

/// Creates the demo organization and data, and prints how to use them.
pub async fn seed(store: &Store, config: &Config) -> anyhow::Result<()> {
    import_sample_lists(store).await?;
    let now = OffsetDateTime::now_utc();
    let mut tx = store.begin_write().await?;
    let org = orgs::create(&mut tx, "Demo Bank", now).await?;
    let scope = Scope::new(org.id.clone(), Environment::Sandbox);
    let (_, secret) = api_keys::create(&mut tx, &scope, "demo", &PermissionSet::all(), now).await?;
    tx.commit().await?;

    let state = AppState::new(store.clone(), config.clone());
    let definition = json!({
        "field-schemas": [
            {"key": "name-first", "type": "string", "config": {"required": true}},
            {"key": "name-last", "type": "string", "config": {"required": true}},
            {"key": "birthdate", "type": "date", "config": {"required": true}},
            {"key": "address-street-1", "type": "string"},
            {"key": "address-city", "type": "string"},
            {"key": "address-postal-code", "type": "string"},
            {"key": "address-country-code", "type": "string"}
        ],
        "verifications": [
            {"type": "government-id", "config": {"minimum-age": 18, "require-mrz": true}},
            {"type": "selfie"},
            {"type": "document"}
        ],
        "reports": [{"type": "watchlist", "on-match": "needs_review", "config": {"lists": ["sample-watchlist"]}}]
    });
    let (template, _) = templates::create(&state, &scope, "Basic KYC", &definition).await?;
    let new_inquiry = |reference: &str, fields: serde_json::Value| CreateInquiry {
        template: TemplateRef::Template(template.id.clone()),
        reference_id: Some(reference.into()),
        fields: fields.as_object().cloned().unwrap_or_default(),
        note: None,
        tags: vec!["demo".into()],
        expires_in_seconds: None,
    };
    let fields = json!({"name-first": "Ada", "name-last": "Lovelace", "birthdate": "1990-12-10",
        "address-street-1": "12 High Street", "address-city": "London", "address-postal-code": "SW1A 1AA",
        "address-country-code": "GB"});
    let verified = inquiries::create(&state, &scope, new_inquiry("demo-user-1", fields)).await?;
    let id = verified.inquiry.id.clone();
    let today = now.date();
    let expiry = today + Duration::days(4 * 365);
    let expiry_mrz = format!(
        "{:02}{:02}{:02}",
        expiry.year() % 100,
        u8::from(expiry.month()),
        expiry.day()
    );
    files::add_document(
        &state,
        &scope,
        &id,
        NewDocument::GovernmentId(GovernmentIdDocument {
            id_class: "pp".into(),
            issuing_country: "GB".into(),
            document_number: "502135326".into(),
            name_first: "Ada".into(),
            name_last: "Lovelace".into(),
            birthdate: time::Date::from_calendar_date(1990, time::Month::December, 10).ok(),
            expiration_date: Some(expiry),
            mrz: passport_mrz("LOVELACE", "ADA", "502135326", "901210", &expiry_mrz),
        }),
    )
    .await?;
    files::add_document(
        &state,
        &scope,
        &id,
        NewDocument::ProofOfAddress(AddressDocument {
            document_kind: "utility-bill".into(),
            issue_date: Some(today - Duration::days(14)),
            address_street_1: "12 High Street".into(),
            address_street_2: None,
            address_city: "London".into(),
            address_subdivision: None,
            address_postal_code: "SW1A 1AA".into(),
            address_country_code: "GB".into(),
        }),
    )
    .await?;
    for kind in [
        FileKind::GovernmentIdFront,
        FileKind::Selfie,
        FileKind::ProofOfAddress,
    ] {
        files::upload(&state, &scope, &id, kind, SAMPLE_IMAGE).await?;
    }
    inquiries::submit(&state, &scope, &id).await?;

    let waiting = inquiries::create(
        &state,
        &scope,
        new_inquiry(
            "demo-user-2",
            json!({"name-first": "Grace", "name-last": "Hopper"}),
        ),
    )
    .await?;
    let (_, token, _) = inquiries::open_for_end_user(
        &state,
        &scope,
        &waiting.inquiry.id,
        SessionKind::OneTimeLink,
        None,
    )
    .await?;

    let base = config.public_url();
    println!(
        "\nidshare demo is ready.\n\n  organization   {org}\n  sandbox key    {secret}\n  template       {template}\n\
         \n  inquiry        {id}  (submitted with an ID, a selfie and a utility bill; the workers verify it)\
         \n  hosted flow    {base}/flow/link/{token}  (a second inquiry: open it as the end user)\n\n\
         Try it:\n\n  curl -s {base}/api/v1/inquiries/{id} -H 'Authorization: Bearer {secret}'\
         \n  curl -s '{base}/api/v1/verifications?filter[inquiry-id]={id}' -H 'Authorization: Bearer {secret}'\n\n\
         The API reference: {base}/api/v1/openapi.json\n",
        org = org.id,
        template = template.id,
    );
    Ok(())
}
