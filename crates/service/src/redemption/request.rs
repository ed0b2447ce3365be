//! The destination's `redeem` call: checks, the destination inquiry (given, or created from a
//! template, or a clone of the source), the token `pending`, and the job enqueued.

use idshare_domain::{
    event::names,
    id::{InquiryId, InquiryTemplateId, ShareTokenId},
    share_token::ShareTokenStatus,
};
use idshare_store::{
    Scope, Tx, audit,
    inquiries::{self, InquiryData, NewInquiry},
    share_tokens::{self, ShareToken},
};

use super::{Redeem, emit_inquiry, hydratable};
use crate::{
    ServiceContext, ServiceError,
    audit::Actor,
    inquiries::{CreateInquiry, TemplateRef},
    jobs::JobKind,
    share_tokens::ensure_connection_active,
};

const DESTINATION_INPUT: &str = "destination-id";
const TEMPLATE_INPUT: &str = "inquiry-template-id";

/// Locks the token and checks everything about it and its connection that does not depend on
/// the destination inquiry.
async fn lock_redeemable(
    tx: &mut Tx,
    state: &ServiceContext,
    scope: &Scope,
    id: &ShareTokenId,
) -> Result<ShareToken, ServiceError> {
    let token = share_tokens::get_for_update(tx, scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    if token.destination_org_id != scope.org_id {
        return Err(ServiceError::forbidden(
            "Only the destination organization can redeem a share token; yours is its source.",
        ));
    }
    ensure_connection_active(tx, scope, &token, "redeemed").await?;
    match token.status {
        ShareTokenStatus::Created if token.expires_at > state.now() => Ok(token),
        ShareTokenStatus::Created | ShareTokenStatus::Expired => Err(ServiceError::conflict(
            "Share token expired",
            format!(
                "Share token `{}` expired; ask the source organization for a new one.",
                token.id
            ),
        )),
        ShareTokenStatus::Pending => Err(ServiceError::conflict(
            "Share token being redeemed",
            "This share token is already being redeemed.",
        )),
        ShareTokenStatus::Redeemed | ShareTokenStatus::Failed => Err(ServiceError::conflict(
            "Share token already redeemed",
            format!(
                "This share token was already redeemed (status `{}`); a token is redeemed at most once.",
                token.status
            ),
        )),
    }
}

/// Accepts a redemption: the token goes `pending` towards its destination inquiry and the job
/// is enqueued, in one transaction under the token's row lock.
pub async fn redeem(
    state: &ServiceContext,
    scope: &Scope,
    id: &ShareTokenId,
    request: Redeem,
    actor: &Actor,
) -> Result<ShareToken, ServiceError> {
    if request.destination_id.is_some() && request.inquiry_template_id.is_some() {
        return Err(ServiceError::malformed(
            "Give `destination-id` (hydrate an inquiry of yours) or `inquiry-template-id` \
             (create one from that template), not both; neither clones the source inquiry.",
        )
        .at(TEMPLATE_INPUT));
    }
    let destination = request
        .destination_id
        .as_deref()
        .map(|raw| {
            InquiryId::parse(raw.trim()).map_err(|_| {
                ServiceError::invalid(
                    "Invalid destination",
                    "`destination-id` names no inquiry of yours.",
                )
                .at(DESTINATION_INPUT)
            })
        })
        .transpose()?;
    let template = request
        .inquiry_template_id
        .as_deref()
        .map(|raw| {
            InquiryTemplateId::parse(raw.trim())
                .map_err(|_| ServiceError::not_found().at(TEMPLATE_INPUT))
        })
        .transpose()?;
    let now = state.now();
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    let mut token = lock_redeemable(&mut tx, state, scope, id).await?;
    let destination = match (destination, template) {
        (Some(destination), _) => {
            let inquiry = inquiries::get_for_update(&mut tx, crypto, scope, &destination)
                .await?
                .ok_or_else(|| {
                    ServiceError::invalid(
                        "Invalid destination",
                        format!("`{destination}` is not an inquiry of yours."),
                    )
                    .at(DESTINATION_INPUT)
                })?;
            if !hydratable(&inquiry) {
                return Err(ServiceError::invalid(
                    "Destination not hydratable",
                    format!(
                        "Data can be copied only into an unredacted inquiry with a template that \
                         is `created`, or `pending` with nothing submitted; `{}` is `{}`{}.",
                        inquiry.id,
                        inquiry.status,
                        if inquiry.redacted_at.is_some() {
                            " and redacted"
                        } else {
                            ""
                        }
                    ),
                )
                .at(DESTINATION_INPUT));
            }
            if share_tokens::targets(&mut tx, &inquiry.id, &token.id).await? {
                return Err(ServiceError::invalid(
                    "Destination already targeted",
                    format!(
                        "`{}` is already the destination of another share token.",
                        inquiry.id
                    ),
                )
                .at(DESTINATION_INPUT));
            }
            inquiry.id
        }
        (None, Some(template)) => {
            // Created in this transaction: a refused or lost redeem leaves no inquiry behind.
            let created = crate::inquiries::create_in(
                state,
                &mut tx,
                scope,
                CreateInquiry {
                    template: TemplateRef::Template(template),
                    reference_id: None,
                    fields: Default::default(),
                    note: None,
                    tags: vec![],
                    expires_in_seconds: None,
                },
            )
            .await?;
            created.inquiry.id
        }
        (None, None) => {
            // Clone: a new inquiry with no template, filled by the job.
            let inquiry = inquiries::create(
                &mut tx,
                crypto,
                scope,
                NewInquiry {
                    template_id: None,
                    template_version_id: None,
                    reference_id: None,
                    tags: vec![],
                    data: InquiryData::default(),
                    expires_at: None,
                },
                now,
            )
            .await?;
            emit_inquiry(state, &mut tx, scope, names::INQUIRY_CREATED, &inquiry, &[]).await?;
            inquiry.id
        }
    };
    if !share_tokens::start_redemption(&mut tx, &token.id, &destination, now).await? {
        return Err(ServiceError::conflict(
            "Share token being redeemed",
            "This share token is already being redeemed.",
        ));
    }
    token.status = ShareTokenStatus::Pending;
    token.pending_at = Some(now);
    token.updated_at = now;
    token.destination_inquiry_id = Some(destination);
    let job = JobKind::ShareTokenRedemption {
        token_id: token.id.to_string(),
        field_mappings: request.field_mappings,
        workflow_chain: crate::workflows::current_chain(),
    };
    crate::jobs::enqueue(state, &mut tx, &job, Some(&format!("redeem:{}", token.id))).await?;
    // The destination's decision to copy the data; the copy itself runs as the job.
    audit::record_by(
        &mut tx,
        scope,
        actor,
        "share-token.redeemed",
        crate::share_tokens::object(&token),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}
