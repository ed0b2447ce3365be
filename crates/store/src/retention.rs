//! Retention settings (a template's period, an organization's default) and the inquiries whose
//! period has run out ([`idshare_domain::retention`] has the rules).

use idshare_domain::{
    id::{InquiryId, InquiryTemplateId, OrgId},
    retention::RetentionDays,
    time_format::to_unix_micros,
};
use time::OffsetDateTime;

use crate::{Scope, StoreError, Tx, db::on_conn};

fn days_from_row(days: Option<i64>) -> Result<Option<RetentionDays>, StoreError> {
    days.map(|d| {
        u32::try_from(d)
            .ok()
            .and_then(|d| RetentionDays::new(d).ok())
            .ok_or_else(|| StoreError::corrupt(format!("retention of {d} days")))
    })
    .transpose()
}

/// The organization's default period.
pub async fn organization_default(
    tx: &mut Tx,
    org_id: &OrgId,
) -> Result<Option<RetentionDays>, StoreError> {
    let days: Option<Option<i64>> = on_conn!(tx, |conn| {
        sqlx::query_scalar("SELECT retention_days FROM organizations WHERE id = $1")
            .bind(org_id.as_str())
            .fetch_optional(conn)
            .await?
    });
    days_from_row(days.flatten())
}

pub async fn set_organization_default(
    tx: &mut Tx,
    org_id: &OrgId,
    days: Option<RetentionDays>,
) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query("UPDATE organizations SET retention_days = $1 WHERE id = $2")
            .bind(days.map(|d| i64::from(d.get())))
            .bind(org_id.as_str())
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// The template's own period and the organization's default, in one read; `None` when the scope
/// has no such template.
pub async fn of_template(
    tx: &mut Tx,
    scope: &Scope,
    id: &InquiryTemplateId,
) -> Result<Option<(Option<RetentionDays>, Option<RetentionDays>)>, StoreError> {
    let row: Option<(Option<i64>, Option<i64>)> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT t.retention_days, o.retention_days FROM inquiry_templates t \
             JOIN organizations o ON o.id = t.org_id \
             WHERE t.id = $1 AND t.org_id = $2 AND t.environment = $3",
        )
        .bind(id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .fetch_optional(conn)
        .await?
    });
    row.map(|(template, org)| Ok((days_from_row(template)?, days_from_row(org)?)))
        .transpose()
}

/// Sets the template's own period (`None`: the organization's default applies); false when the
/// scope has no such template.
pub async fn set_template(
    tx: &mut Tx,
    scope: &Scope,
    id: &InquiryTemplateId,
    days: Option<RetentionDays>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let updated = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE inquiry_templates SET retention_days = $1, updated_at = $2 \
             WHERE id = $3 AND org_id = $4 AND environment = $5",
        )
        .bind(days.map(|d| i64::from(d.get())))
        .bind(to_unix_micros(now))
        .bind(id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}

/// Inquiries not yet redacted whose retention period (the template's, else the organization's)
/// ran out before `now`, counted from when each ended (its completion, failure, expiry or
/// decision), at most `limit`, the longest overdue first.
pub async fn overdue(
    tx: &mut Tx,
    now: OffsetDateTime,
    limit: u32,
) -> Result<Vec<(Scope, InquiryId)>, StoreError> {
    const DAY_MICROS: i64 = 86_400_000_000;
    let rows: Vec<(String, String, String)> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT org_id, environment, id FROM ( \
               SELECT i.org_id, i.environment, i.id, \
                 CASE i.status \
                   WHEN 'completed' THEN i.completed_at WHEN 'failed' THEN i.failed_at \
                   WHEN 'expired' THEN i.expired_at ELSE i.decisioned_at END \
                 + COALESCE(t.retention_days, o.retention_days) * $1 AS due_at \
               FROM inquiries i \
               JOIN organizations o ON o.id = i.org_id \
               LEFT JOIN inquiry_templates t ON t.id = i.template_id \
               WHERE i.redacted_at IS NULL \
                 AND i.status IN ('completed', 'failed', 'expired', 'approved', 'declined') \
                 AND COALESCE(t.retention_days, o.retention_days) IS NOT NULL \
             ) ended WHERE due_at < $2 ORDER BY due_at, id LIMIT $3",
        )
        .bind(DAY_MICROS)
        .bind(to_unix_micros(now))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?
    });
    Scope::with_ids(rows, InquiryId::parse)
}
