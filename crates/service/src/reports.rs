//! Reports: reading them and dismissing false-positive matches.

use idshare_domain::id::ReportId;
use idshare_store::{Scope, audit, checks, events};
use serde_json::{Value, json};

use super::ServiceError;
use crate::{ServiceContext, audit::Actor, render};

/// Dismisses one match (by list entity id) of a report, or all of them when `entity_id` is
/// `None`. `has-match` turns false when no match is left open.
pub async fn dismiss(
    state: &ServiceContext,
    scope: &Scope,
    id: &ReportId,
    entity_id: Option<&str>,
    reason: &str,
    actor: &Actor,
) -> Result<checks::StoredReport, ServiceError> {
    let now = state.now();
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    let report = checks::get_report(&mut tx, crypto, scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    let Some(mut result) = report.result.clone() else {
        return Err(ServiceError::conflict(
            "Report redacted",
            "The inquiry of this report was redacted.",
        ));
    };
    let matches: Vec<Value> = result
        .get("matches")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut dismissed: Vec<Value> = result
        .get("dismissed")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_dismissed = |dismissed: &[Value], entity: &str| {
        dismissed
            .iter()
            .any(|d| d.get("entity-id").and_then(Value::as_str) == Some(entity))
    };
    let targets: Vec<String> = matches
        .iter()
        .filter_map(|m| {
            m.get("entity-id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .filter(|e| entity_id.is_none_or(|wanted| wanted == e))
        .collect();
    if targets.is_empty() {
        return Err(ServiceError::invalid(
            "Nothing to dismiss",
            match entity_id {
                Some(e) => format!("This report has no match for entity `{e}`."),
                None => "This report has no matches.".to_owned(),
            },
        )
        .at("entity-id"));
    }
    let before = dismissed.len();
    for entity in targets {
        if !is_dismissed(&dismissed, &entity) {
            dismissed.push(json!({
                "entity-id": entity,
                "reason": reason,
                "dismissed-at": idshare_domain::time_format::format_timestamp(now),
            }));
        }
    }
    if dismissed.len() == before {
        // Already dismissed: nothing changes, nothing is announced.
        return Ok(report);
    }
    let open = matches.iter().any(|m| {
        m.get("entity-id")
            .and_then(Value::as_str)
            .is_some_and(|e| !is_dismissed(&dismissed, e))
    });
    result["dismissed"] = Value::Array(dismissed);
    checks::update_report(&mut tx, crypto, &report, &result, open).await?;
    let updated = checks::StoredReport {
        has_match: open,
        result: Some(result),
        ..report
    };
    let payload = render::payload(&render::report(&updated));
    crate::events::record(
        state,
        &mut tx,
        scope,
        events::NewEvent {
            name: &format!("report/{}.dismissed", updated.report_type),
            object_type: "report",
            object_id: updated.id.as_str(),
            payload: &payload,
            sealed_by: Some(updated.inquiry_id.as_str()),
        },
    )
    .await?;
    let object = ("report", updated.id.as_str());
    audit::record_by(&mut tx, scope, actor, "report.dismissed", object, now).await?;
    tx.commit().await?;
    Ok(updated)
}
