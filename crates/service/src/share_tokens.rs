//! Connect share tokens: creation by the connection's source, retrieval (with the
//! destination's peek at what the source holds), expiry by the source or by the TTL job.
//! Every change writes its event to *both* organizations: `outbound-…` to the source,
//! `inbound-…` to the destination, each payload the token as that organization sees it.
//! Redemption is in [`crate::redemption`]; its preview ([`preview`]) is here.
//!
//! The destination's reads of the source before redeeming — the peek and the preview — are
//! events too (`…-peeked`, `…-previewed`), so the source sees every one; they need an active
//! connection, and the reads of one token are limited ([`admit_read`]).

use idshare_domain::{
    connect::{ConnectionStatus, Side},
    id::{ConnectionId, InquiryId, InquiryTemplateId, OrgId, ShareTokenId},
    inquiry::InquiryStatus,
    preview::{self, Preview, SourceShape},
    requirements,
    share_token::{
        self, SOURCE_READ_WINDOW, ShareTokenAction, ShareTokenStatus, ShareTokenTransitionError,
        SourceRead, transition,
    },
    template::VerificationType,
};
use idshare_store::{
    Scope, StoreError, Tx, audit, checks, connections, events, inquiries,
    share_tokens::{self, ShareToken},
    templates,
};
use serde_json::{Map, Value, json};

use super::ServiceError;
use crate::{
    ServiceContext,
    audit::Actor,
    pipeline,
    redemption::FieldMapping,
    render::{self, Peek},
};

const CONNECTION_INPUT: &str = "connection-id";
const SOURCE_INPUT: &str = "source-id";
const TTL_INPUT: &str = "expires-in-seconds";
/// Whether the destination asks to see what the source holds.
pub const PEEK_INPUT: &str = "peek-source-data";

/// What a new token is made of, as sent.
#[derive(Debug, Clone)]
pub struct NewShareToken<'a> {
    pub connection_id: &'a str,
    pub source_id: &'a str,
    pub expires_in_seconds: Option<i64>,
}

/// Creates a `created` token over one of the caller's active connections (as its source),
/// offering one of the caller's completed or approved inquiries.
pub async fn create(
    state: &ServiceContext,
    scope: &Scope,
    creator: super::Creator<'_>,
    actor: &Actor,
    new: NewShareToken<'_>,
) -> Result<ShareToken, ServiceError> {
    let ttl = share_token::ttl(new.expires_in_seconds).map_err(|e| {
        ServiceError::invalid("Invalid expiry", format!("{}.", sentence(&e.to_string())))
            .at(TTL_INPUT)
    })?;
    let connection_id = ConnectionId::parse(new.connection_id.trim())
        .map_err(|_| ServiceError::not_found().at(CONNECTION_INPUT))?;
    let source_id = InquiryId::parse(new.source_id.trim())
        .map_err(|_| ServiceError::not_found().at(SOURCE_INPUT))?;
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let connection = connections::get_for_update(&mut tx, scope, &connection_id)
        .await?
        .ok_or_else(|| ServiceError::not_found().at(CONNECTION_INPUT))?;
    if connection.source_org_id != scope.org_id {
        return Err(ServiceError::forbidden(
            "Only the source organization of a connection can create share tokens over it; \
             yours is its destination.",
        )
        .at(CONNECTION_INPUT));
    }
    if connection.status != ConnectionStatus::Active {
        return Err(ServiceError::invalid(
            "Connection not active",
            format!(
                "Share tokens travel only over an active connection; `{}` is `{}`.{}",
                connection.id,
                connection.status,
                match connection.status {
                    ConnectionStatus::Pending =>
                        " The destination organization has to activate it first.",
                    _ => " Its source can reactivate it, and the destination activate it again.",
                }
            ),
        )
        .at(CONNECTION_INPUT));
    }
    let source = inquiries::get(&mut tx, state.store().crypto(), scope, &source_id)
        .await?
        .ok_or_else(|| ServiceError::not_found().at(SOURCE_INPUT))?;
    if source.redacted_at.is_some() {
        return Err(ServiceError::invalid(
            "Source inquiry redacted",
            format!(
                "Inquiry `{}` was redacted: it holds no data to share.",
                source.id
            ),
        )
        .at(SOURCE_INPUT));
    }
    if !matches!(
        source.status,
        InquiryStatus::Completed | InquiryStatus::Approved
    ) {
        return Err(ServiceError::invalid(
            "Source inquiry not finished",
            format!(
                "Only a `completed` or `approved` inquiry can be shared; `{}` is `{}`.",
                source.id, source.status
            ),
        )
        .at(SOURCE_INPUT));
    }
    let token = ShareToken {
        id: ShareTokenId::generate(),
        environment: scope.environment,
        connection_id: connection.id,
        source_org_id: connection.source_org_id,
        destination_org_id: connection.destination_org_id,
        source_inquiry_id: source.id,
        status: ShareTokenStatus::Created,
        creator_type: creator.kind().to_owned(),
        creator_id: creator.id().to_owned(),
        created_at: now,
        updated_at: now,
        expires_at: now + ttl,
        pending_at: None,
        redeemed_at: None,
        failed_at: None,
        failure_reason: None,
        expired_at: None,
        destination_inquiry_id: None,
    };
    share_tokens::insert(&mut tx, &token).await?;
    record(state, &mut tx, share_token::created_event, &token).await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        "share-token.created",
        object(&token),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// The side the caller's organization holds for `action`. An organization connected to
/// itself holds both, and acts from the one the action needs.
pub(crate) fn side_of(token: &ShareToken, org: &OrgId, action: ShareTokenAction) -> Side {
    if token.source_org_id == token.destination_org_id {
        action.only_side().unwrap_or(Side::Source)
    } else if &token.source_org_id == org {
        Side::Source
    } else {
        Side::Destination
    }
}

/// Refuses a read of the source, or a redemption, unless the token's connection is `active`:
/// a deactivated connection shares nothing more, whoever deactivated it.
pub(crate) async fn ensure_connection_active(
    tx: &mut Tx,
    scope: &Scope,
    token: &ShareToken,
    verb: &str,
) -> Result<(), ServiceError> {
    let connection = connections::get(tx, scope, &token.connection_id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    if connection.status != ConnectionStatus::Active {
        return Err(ServiceError::conflict(
            "Connection not active",
            format!(
                "Share tokens are {verb} only over an active connection; `{}` is `{}`.",
                connection.id, connection.status
            ),
        ));
    }
    Ok(())
}

/// Locks a token for a read of its source by the caller, who must be its destination, over an
/// active connection.
async fn lock_for_read(
    tx: &mut Tx,
    scope: &Scope,
    id: &ShareTokenId,
    read: SourceRead,
) -> Result<ShareToken, ServiceError> {
    let token = share_tokens::get_for_update(tx, scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    if token.destination_org_id != scope.org_id {
        return Err(match read {
            SourceRead::Peek => ServiceError::forbidden(
                "Only the destination organization of a share token can peek at its source \
                 data; yours is its source (retrieve the source inquiry itself instead).",
            )
            .at(PEEK_INPUT),
            SourceRead::Preview => ServiceError::forbidden(
                "Only the destination organization of a share token can preview its \
                 redemption; yours is its source.",
            ),
        });
    }
    ensure_connection_active(tx, scope, &token, read.verb()).await?;
    Ok(token)
}

/// Admits one read of the token's source, in the caller's write transaction under the token's
/// lock, after every other check passed: refused (429) when the token's reads within the last
/// hour reached `share_token_peeks_and_previews_per_hour`; otherwise recorded in both
/// organizations. The count is of the source's events, so it holds across every node of the
/// database, and a read is answered only once its events are committed.
async fn admit_read(
    state: &ServiceContext,
    tx: &mut Tx,
    token: &ShareToken,
    read: SourceRead,
) -> Result<(), ServiceError> {
    let now = state.now();
    let source_scope = Scope::new(token.source_org_id.clone(), token.environment);
    let earlier: Vec<_> = events::names_since(
        tx,
        &source_scope,
        token.id.as_str(),
        now - SOURCE_READ_WINDOW,
    )
    .await?
    .into_iter()
    .filter(|(name, _)| SourceRead::is_source_record(name))
    .map(|(_, at)| at)
    .collect();
    let limit = state.config().share_token_peeks_and_previews_per_hour;
    share_token::source_read_allowed(&earlier, limit, now).map_err(|wait| {
        let seconds = wait.whole_seconds() + i64::from(wait.subsec_nanoseconds() > 0);
        let retry_after_seconds = u64::try_from(seconds).unwrap_or(1).max(1);
        ServiceError::RateLimited {
            details: format!(
                "Share token `{}` was peeked at or previewed {limit} times within the last hour, \
                 as many as allowed; retry in {retry_after_seconds} s.",
                token.id
            ),
            retry_after_seconds,
        }
    })?;
    record(state, tx, |side| read.event(side), token).await?;
    Ok(())
}

/// A token the caller's organization is an end of, in the caller's environment, with the
/// source-data envelope when `peek` is asked: destination only (the source gets a 403), over
/// an active connection, within the token's limit of reads, and recorded in both organizations
/// (`…-peeked`).
pub async fn get(
    state: &ServiceContext,
    scope: &Scope,
    id: &ShareTokenId,
    peek: bool,
    actor: &Actor,
) -> Result<(ShareToken, Option<Peek>), ServiceError> {
    if !peek {
        let mut tx = state.store().begin_read().await?;
        let token = share_tokens::get(&mut tx, scope, id)
            .await?
            .ok_or_else(ServiceError::not_found)?;
        return Ok((token, None));
    }
    let mut tx = state.store().begin_write().await?;
    let token = lock_for_read(&mut tx, scope, id, SourceRead::Peek).await?;
    admit_read(state, &mut tx, &token, SourceRead::Peek).await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        "share-token.peeked",
        object(&token),
        state.now(),
    )
    .await?;
    tx.commit().await?;
    let mut tx = state.store().begin_read().await?;
    let peek = peek_source(&mut tx, state, &token).await?;
    Ok((token, Some(peek)))
}

/// Which fields and verification types the source inquiry holds, in Persona's
/// `connect/source-data/inquiry` shape: each field's presence (never its value), the
/// inquiry's and its verifications' statuses.
async fn peek_source(
    tx: &mut Tx,
    state: &ServiceContext,
    token: &ShareToken,
) -> Result<Peek, ServiceError> {
    let source_scope = Scope::new(token.source_org_id.clone(), token.environment);
    let crypto = state.store().crypto();
    let Some(source) = inquiries::get(tx, crypto, &source_scope, &token.source_inquiry_id).await?
    else {
        return Ok(Peek::Unavailable("source-unavailable"));
    };
    if source.redacted_at.is_some() {
        return Ok(Peek::Unavailable("source-redacted"));
    }
    let fields: Map<String, Value> = source
        .data
        .fields
        .iter()
        .map(|(key, value)| {
            let present = requirements::has_value(value);
            (
                key.clone(),
                json!({"visibility": "presence", "value": present}),
            )
        })
        .collect();
    let related: Vec<Value> = checks::verifications_of(tx, crypto, &source_scope, &source.id)
        .await?
        .into_iter()
        .map(|v| {
            json!({
                "type": format!("connect/source-data/verification/{}", v.verification_type),
                "id": v.id.as_str(),
                "peekable-attributes": {"status": {"visibility": "full", "value": v.status}},
            })
        })
        .collect();
    Ok(Peek::Envelope(json!({
        "type": "connect/source-data/inquiry",
        "id": source.id.as_str(),
        "peekable-attributes": {
            "status": {"visibility": "full", "value": source.status.as_str()},
            "fields": fields,
        },
        "related-objects": related,
    })))
}

const PREVIEW_TEMPLATE_INPUT: &str = "inquiry-template-id";

fn source_redacted() -> ServiceError {
    ServiceError::invalid(
        "Source inquiry redacted",
        "The source inquiry was redacted: this share token has no data left to copy.",
    )
}

/// What redeeming the token under one of the caller's templates would do (DESIGN §2.5), told
/// from the structure of what the source holds ([`SourceShape`]): never whether a value
/// would pass the template's constraints. Destination only (the source gets a 403), over an
/// active connection, for a `created`, unexpired token, within the token's limit of reads; the
/// read is recorded in both organizations (`…-previewed`), and nothing else is copied, created
/// or changed.
pub async fn preview(
    state: &ServiceContext,
    scope: &Scope,
    id: &ShareTokenId,
    template_id: &str,
    mappings: &[FieldMapping],
    actor: &Actor,
) -> Result<(ShareToken, InquiryTemplateId, Preview), ServiceError> {
    let now = state.now();
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    let token = lock_for_read(&mut tx, scope, id, SourceRead::Preview).await?;
    if token.status != ShareTokenStatus::Created || token.expires_at <= now {
        let status = if token.status == ShareTokenStatus::Created {
            ShareTokenStatus::Expired
        } else {
            token.status
        };
        return Err(ServiceError::conflict(
            "Share token not redeemable",
            format!(
                "Only a `created`, unexpired share token can be previewed; `{}` is `{status}`.",
                token.id
            ),
        ));
    }
    let template_id = InquiryTemplateId::parse(template_id.trim())
        .map_err(|_| ServiceError::not_found().at(PREVIEW_TEMPLATE_INPUT))?;
    let template = templates::get(&mut tx, scope, &template_id)
        .await?
        .ok_or_else(|| ServiceError::not_found().at(PREVIEW_TEMPLATE_INPUT))?;
    let version_id = template.published_version_id.ok_or_else(|| {
        ServiceError::invalid(
            "Template not published",
            "This template has no published version.",
        )
        .at(PREVIEW_TEMPLATE_INPUT)
    })?;
    let source_scope = Scope::new(token.source_org_id.clone(), token.environment);
    inquiries::get(&mut tx, crypto, &source_scope, &token.source_inquiry_id)
        .await?
        .filter(|s| s.redacted_at.is_none())
        .ok_or_else(source_redacted)?;
    admit_read(state, &mut tx, &token, SourceRead::Preview).await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        "share-token.previewed",
        object(&token),
        now,
    )
    .await?;
    tx.commit().await?;

    let mut tx = state.store().begin_read().await?;
    let version = templates::get_version(&mut tx, scope, &version_id)
        .await?
        .ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!("published version {version_id} missing"))
        })?;
    let definition = version.definition;
    let source = inquiries::get(&mut tx, crypto, &source_scope, &token.source_inquiry_id)
        .await?
        .filter(|s| s.redacted_at.is_none())
        .ok_or_else(source_redacted)?;
    let passed: Vec<VerificationType> =
        checks::verifications_of(&mut tx, crypto, &source_scope, &source.id)
            .await?
            .into_iter()
            .filter(|v| v.status == "passed")
            .filter_map(|v| v.verification_type.parse().ok())
            .collect();
    // Only the structure goes on: no value can reach the answer.
    let shape = SourceShape::of(
        &pipeline::load_subject(&mut tx, state, &source_scope, &source).await?,
        passed,
    );
    drop(tx);
    let prediction = preview::preview(
        &definition,
        &shape,
        &crate::redemption::mapping_table(mappings),
    );
    Ok((token, template_id, prediction))
}

/// Expires a `created` token (source only), with its events and its audit entry.
pub async fn expire(
    state: &ServiceContext,
    scope: &Scope,
    id: &ShareTokenId,
    actor: &Actor,
) -> Result<ShareToken, ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let mut token = share_tokens::get(&mut tx, scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    let side = side_of(&token, &scope.org_id, ShareTokenAction::Expire);
    token.status =
        transition(token.status, ShareTokenAction::Expire, side).map_err(|e| match e {
            ShareTokenTransitionError::WrongSide { .. } => {
                ServiceError::forbidden(format!("{}.", sentence(&e.to_string())))
            }
            ShareTokenTransitionError::WrongStatus { .. } => ServiceError::conflict(
                "Invalid transition",
                format!("{}.", sentence(&e.to_string())),
            ),
        })?;
    if !share_tokens::expire(&mut tx, &token.id, now).await? {
        // Redeemed or expired by someone else since we read it.
        return Err(ServiceError::conflict(
            "Invalid transition",
            "Cannot expire a share token that is no longer `created`.",
        ));
    }
    token.expired_at = Some(now);
    token.updated_at = now;
    record(state, &mut tx, share_token::expired_event, &token).await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        "share-token.expired",
        object(&token),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// Expires every `created` token past its `expires-at` (the TTL job, the system's act in the
/// audit log); returns how many.
pub async fn expire_due(state: &ServiceContext) -> Result<usize, ServiceError> {
    let system = Actor::system();
    let mut expired = 0;
    loop {
        let due = {
            let mut tx = state.store().begin_read().await?;
            share_tokens::due_to_expire(&mut tx, state.now(), 100).await?
        };
        if due.is_empty() {
            return Ok(expired);
        }
        let mut progressed = false;
        for (scope, id) in due {
            match expire(state, &scope, &id, &system).await {
                Ok(_) => {
                    expired += 1;
                    progressed = true;
                }
                // Redeemed or expired meanwhile: the transition no longer applies.
                Err(ServiceError::Conflict { .. }) => {
                    progressed = true;
                }
                Err(e) => return Err(e),
            }
        }
        if !progressed {
            return Ok(expired);
        }
    }
}

/// A token as the audit log names it.
pub(crate) fn object(token: &ShareToken) -> (&'static str, &str) {
    ("share-token", token.id.as_str())
}

/// The message as a sentence: capitalized (the domain writes it lower-case, to embed).
pub(crate) fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Records the event named by `name_for(side)` in each organization of the token (once when
/// its connection joins an organization to itself). A token holds no personal data, so the
/// payloads are not sealed.
pub(crate) async fn record(
    state: &ServiceContext,
    tx: &mut Tx,
    name_for: impl Fn(Side) -> &'static str,
    token: &ShareToken,
) -> Result<(), StoreError> {
    crate::events::record_batch(state, tx, None, &announcements(name_for, token)).await?;
    Ok(())
}

/// The events [`record`] writes, for a caller that records them with others.
pub(crate) fn announcements(
    name_for: impl Fn(Side) -> &'static str,
    token: &ShareToken,
) -> Vec<crate::events::Announcement> {
    let mut ends = vec![(Side::Source, &token.source_org_id)];
    if token.destination_org_id != token.source_org_id {
        ends.push((Side::Destination, &token.destination_org_id));
    }
    ends.into_iter()
        .map(|(side, org)| crate::events::Announcement {
            scope: Scope::new(org.clone(), token.environment),
            name: name_for(side).to_owned(),
            object_type: "connect/share-token",
            object_id: token.id.to_string(),
            payload: render::payload(&render::share_token(token, org, None)),
            sealed_by: None,
        })
        .collect()
}
