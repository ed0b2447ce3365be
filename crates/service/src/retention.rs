//! Retention policies: setting a template's period or the organization's default (recorded in
//! the audit log with the change), telling when an inquiry will be redacted, and redacting the
//! inquiries whose period has run out (housekeeping).

use idshare_domain::{
    id::InquiryTemplateId,
    inquiry::InquiryStatus,
    retention::{self, EndTimes, RetentionDays, RetentionSource},
};
use idshare_store::{Scope, audit, inquiries::Inquiry, retention as store};
use time::OffsetDateTime;

use crate::{ServiceContext, ServiceError, audit::Actor, inquiries};

/// Inquiries redacted per read of the overdue ones.
const BATCH: u32 = 100;

/// The periods that apply to a template: its own, and the organization's default.
#[derive(Debug, Clone, Copy)]
pub struct TemplateRetention {
    pub template: Option<RetentionDays>,
    pub organization: Option<RetentionDays>,
}

impl TemplateRetention {
    pub fn effective(&self) -> Option<(RetentionDays, RetentionSource)> {
        retention::effective(self.template, self.organization)
    }
}

pub async fn of_template(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryTemplateId,
) -> Result<TemplateRetention, ServiceError> {
    let mut tx = state.store().begin_read().await?;
    let (template, organization) = store::of_template(&mut tx, scope, id)
        .await?
        .ok_or(ServiceError::NotFound { input: None })?;
    Ok(TemplateRetention {
        template,
        organization,
    })
}

pub async fn organization_default(
    state: &ServiceContext,
    scope: &Scope,
) -> Result<Option<RetentionDays>, ServiceError> {
    let mut tx = state.store().begin_read().await?;
    Ok(store::organization_default(&mut tx, &scope.org_id).await?)
}

/// Sets a template's own period (`None`: the organization's default applies), with its audit
/// entry, in one transaction.
pub async fn set_template(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryTemplateId,
    days: Option<RetentionDays>,
    actor: &Actor,
) -> Result<(), ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    if !store::set_template(&mut tx, scope, id, days, now).await? {
        return Err(ServiceError::NotFound { input: None });
    }
    audit::record_by(
        &mut tx,
        scope,
        actor,
        "inquiry-template.retention-changed",
        ("inquiry-template", id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sets the organization's default period (both environments), with its audit entry.
pub async fn set_organization_default(
    state: &ServiceContext,
    scope: &Scope,
    days: Option<RetentionDays>,
    actor: &Actor,
) -> Result<(), ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    store::set_organization_default(&mut tx, &scope.org_id, days).await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        "organization.retention-changed",
        ("organization", scope.org_id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// When an inquiry will be redacted automatically, and under which setting; `None` while it
/// has not ended, or when no period applies.
pub fn redaction_due(
    status: InquiryStatus,
    times: EndTimes,
    policy: &TemplateRetention,
) -> Option<(OffsetDateTime, RetentionDays, RetentionSource)> {
    let ended = retention::ended_at(status, times)?;
    let (days, source) = policy.effective()?;
    Some((retention::redaction_due_at(ended, days), days, source))
}

/// When `inquiry` will be redacted automatically, and under which setting; `None` once redacted,
/// while it has not ended, or when no period applies.
pub async fn scheduled_redaction(
    state: &ServiceContext,
    scope: &Scope,
    inquiry: &Inquiry,
) -> Result<Option<(OffsetDateTime, RetentionDays, RetentionSource)>, ServiceError> {
    if inquiry.redacted_at.is_some() {
        return Ok(None);
    }
    let policy = match &inquiry.template_id {
        Some(template) => of_template(state, scope, template).await?,
        None => TemplateRetention {
            template: None,
            organization: organization_default(state, scope).await?,
        },
    };
    let times = EndTimes {
        completed_at: inquiry.completed_at,
        failed_at: inquiry.failed_at,
        expired_at: inquiry.expired_at,
        decisioned_at: inquiry.decisioned_at,
    };
    Ok(redaction_due(inquiry.status, times, &policy))
}

/// Redacts every inquiry whose retention period has run out (housekeeping), each as
/// `POST …/redact` would (its data destroyed, the `inquiry.redacted` event); returns how many.
pub async fn redact_overdue(state: &ServiceContext) -> Result<usize, ServiceError> {
    let system = Actor::system();
    let mut redacted = 0;
    loop {
        let due = {
            let mut tx = state.store().begin_read().await?;
            store::overdue(&mut tx, state.now(), BATCH).await?
        };
        if due.is_empty() {
            return Ok(redacted);
        }
        for (scope, id) in due {
            match inquiries::redact(state, &scope, &id, &system).await {
                Ok(_) => redacted += 1,
                // Redacted by someone else meanwhile: no longer overdue either.
                Err(ServiceError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
}
