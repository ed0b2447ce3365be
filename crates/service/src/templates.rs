//! Inquiry templates and versions.

use idshare_domain::{
    event::names,
    id::{InquiryTemplateId, InquiryTemplateVersionId},
    template::TemplateDefinition,
};
use idshare_store::{
    Scope, Tx, audit, events,
    templates::{self, NewDefinition, Template, TemplateVersion, VersionStatus},
};
use serde_json::Value;

use super::ServiceError;
use crate::{ServiceContext, audit::Actor, render};

/// Validates a definition (within its size caps, before any transaction opens) and returns it
/// ready to store: canonical JSON, defaults filled in. Report lists must name lists that were
/// imported (`idshare lists import`).
async fn canonical(
    state: &ServiceContext,
    definition: &Value,
) -> Result<NewDefinition, ServiceError> {
    let parsed = TemplateDefinition::parse(definition).map_err(super::template_errors)?;
    let imported = crate::screening::list_names(state).await?;
    let mut unknown = Vec::new();
    for (r, report) in parsed.reports.iter().enumerate() {
        let lists = report.config.get("lists").and_then(Value::as_array);
        for (l, list) in lists.into_iter().flatten().enumerate() {
            let name = list.as_str().unwrap_or_default();
            if !imported.iter().any(|i| i == name) {
                unknown.push(idshare_domain::template::TemplateError {
                    pointer: format!("/reports/{r}/config/lists/{l}"),
                    message: format!(
                        "no list `{name}` has been imported (imported: {})",
                        if imported.is_empty() {
                            "none".to_owned()
                        } else {
                            imported.join(", ")
                        }
                    ),
                });
            }
        }
    }
    if !unknown.is_empty() {
        return Err(super::template_errors(unknown));
    }
    NewDefinition::new(parsed).map_err(ServiceError::internal)
}

fn check_name(name: &str) -> Result<String, ServiceError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "Invalid template",
            "`name` must be 1 to 200 characters without control characters.",
        )
        .at("name"));
    }
    Ok(name.to_owned())
}

pub async fn create(
    state: &ServiceContext,
    scope: &Scope,
    name: &str,
    definition: &Value,
    actor: &Actor,
) -> Result<(Template, TemplateVersion), ServiceError> {
    let name = check_name(name)?;
    let definition = canonical(state, definition).await?;
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let (template, version) = templates::create(&mut tx, scope, &name, &definition, now).await?;
    let payload = render::template_event_payload(&template, Some(&version));
    record(
        state,
        &mut tx,
        scope,
        actor,
        names::INQUIRY_TEMPLATE_CREATED,
        ("inquiry-template", template.id.as_str()),
        &payload,
    )
    .await?;
    tx.commit().await?;
    Ok((template, version))
}

pub async fn create_version(
    state: &ServiceContext,
    scope: &Scope,
    template_id: &InquiryTemplateId,
    definition: &Value,
    actor: &Actor,
) -> Result<TemplateVersion, ServiceError> {
    let definition = canonical(state, definition).await?;
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    // Locked, so concurrent new versions number themselves one after the other.
    templates::get_for_update(&mut tx, scope, template_id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    let version = templates::create_version(&mut tx, scope, template_id, &definition, now).await?;
    let payload = render::version_event_payload(&version);
    record(
        state,
        &mut tx,
        scope,
        actor,
        names::INQUIRY_TEMPLATE_VERSION_CREATED,
        ("inquiry-template-version", version.id.as_str()),
        &payload,
    )
    .await?;
    tx.commit().await?;
    Ok(version)
}

pub async fn publish_version(
    state: &ServiceContext,
    scope: &Scope,
    version_id: &InquiryTemplateVersionId,
    actor: &Actor,
) -> Result<TemplateVersion, ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let version = templates::get_version(&mut tx, scope, version_id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    // Locking the template serializes publishes, so exactly one version ends up published.
    templates::get_for_update(&mut tx, scope, &version.template_id).await?;
    let version = templates::get_version(&mut tx, scope, version_id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    if version.status != VersionStatus::Draft {
        return Err(ServiceError::conflict(
            "Version not publishable",
            format!(
                "Only a draft version can be published; this one is `{}`. Create a new version to change the template.",
                version.status.as_str()
            ),
        ));
    }
    let version = templates::publish_version(&mut tx, &version, now).await?;
    let payload = render::version_event_payload(&version);
    record(
        state,
        &mut tx,
        scope,
        actor,
        names::INQUIRY_TEMPLATE_VERSION_PUBLISHED,
        ("inquiry-template-version", version.id.as_str()),
        &payload,
    )
    .await?;
    tx.commit().await?;
    Ok(version)
}

/// Records the change's event, and its audit entry by `actor` under the same name.
async fn record(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    actor: &Actor,
    name: &str,
    (object_type, object_id): (&str, &str),
    payload: &Value,
) -> Result<(), ServiceError> {
    audit::record_by(
        tx,
        scope,
        actor,
        name,
        (object_type, object_id),
        state.now(),
    )
    .await?;
    crate::events::record(
        state,
        tx,
        scope,
        events::NewEvent {
            name,
            object_type,
            object_id,
            payload,
            sealed_by: None,
        },
    )
    .await?;
    Ok(())
}
