//! `idshare demo`: a ready-to-try organization on a fresh (or existing) instance.

use idshare_domain::{environment::Environment, permission::PermissionSet};
use idshare_server::{
    app::AppState,
    config::Config,
    service::{
        inquiries::{self, CreateInquiry, TemplateRef},
        templates,
    },
};
use idshare_store::{Scope, Store, api_keys, orgs};
use serde_json::json;
use time::OffsetDateTime;

/// Creates the demo organization, key, template and inquiry, and prints how to use them.
pub async fn seed(store: &Store, config: &Config) -> anyhow::Result<()> {
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
            {"key": "address-country-code", "type": "string"},
            {"key": "email-address", "type": "string"}
        ],
        "verifications": [
            {"type": "government-id", "required": true, "config": {"minimum-age": 18}}
        ],
        "reports": [{"type": "watchlist", "on-match": "needs_review"}]
    });
    let (template, _) = templates::create(&state, &scope, "Basic KYC", &definition).await?;
    let fields = json!({"name-first": "Ada", "name-last": "Lovelace", "birthdate": "1990-12-10"});
    let inquiry = inquiries::create(
        &state,
        &scope,
        CreateInquiry {
            template: TemplateRef::Template(template.id.clone()),
            reference_id: Some("demo-user-1".into()),
            fields: fields.as_object().cloned().unwrap_or_default(),
            note: None,
            tags: vec!["demo".into()],
            expires_in_seconds: None,
        },
    )
    .await?;

    let base = format!("http://{}", config.listen);
    println!(
        "\nidshare demo is ready.\n\n  organization   {org}\n  sandbox key    {secret}\n  template       {template}\n  inquiry        {inquiry}\n\n\
         Try it:\n\n  curl -s {base}/api/v1/inquiries/{inquiry} -H 'Authorization: Bearer {secret}'\n\n\
         The API reference: {base}/api/v1/openapi.json\n",
        org = org.id,
        template = template.id,
        inquiry = inquiry.inquiry.id,
    );
    Ok(())
}
