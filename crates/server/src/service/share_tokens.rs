//! Connect share tokens: creation by the connection's source, retrieval (with the
//! destination's peek at what the source holds), expiry by the source or by the TTL job.
//! Every change writes its event to *both* organizations: `outbound-…` to the source,
//! `inbound-…` to the destination, each payload the token as that organization sees it.
//! Redemption is in [`crate::service::redemption`]; its preview ([`preview`]) is here.

use idshare_domain::{
    connect::{ConnectionStatus, Side},
    field::FieldValue,
    id::{ConnectionId, InquiryId, InquiryTemplateId, OrgId, ShareTokenId},
    inquiry::InquiryStatus,
    preview::{self, PassedVerification, Preview},
    share_token::{
        self, ShareTokenAction, ShareTokenStatus, ShareTokenTransitionError, transition,
    },
};
use idshare_store::{
    Scope, StoreError, Tx, checks, connections, events, inquiries,
    share_tokens::{self, ShareToken},
    templates,
};
use serde_json::{Map, Value, json};

use super::ServiceError;
use crate::{
    app::AppState,
    render::{self, Peek},
    service::{pipeline, redemption::FieldMapping},
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
    state: &AppState,
    scope: &Scope,
    creator: super::Creator<'_>,
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

/// A token the caller's organization is an end of, in the caller's environment, with the
/// source-data envelope when `peek` is asked (destination only: the source gets a 403).
pub async fn get(
    state: &AppState,
    scope: &Scope,
    id: &ShareTokenId,
    peek: bool,
) -> Result<(ShareToken, Option<Peek>), ServiceError> {
    let mut tx = state.store().begin_read().await?;
    let token = share_tokens::get(&mut tx, scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    if !peek {
        return Ok((token, None));
    }
    if token.destination_org_id != scope.org_id {
        return Err(ServiceError::forbidden(
            "Only the destination organization of a share token can peek at its source data; \
             yours is its source (retrieve the source inquiry itself instead).",
        )
        .at(PEEK_INPUT));
    }
    let peek = peek_source(&mut tx, state, &token).await?;
    Ok((token, Some(peek)))
}

/// Which fields and verification types the source inquiry holds — names, types, ids and
/// statuses only, never a value.
async fn peek_source(
    tx: &mut Tx,
    state: &AppState,
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
        .filter(|(_, value)| holds_value(value))
        .map(|(key, _)| (key.clone(), json!({"visibility": "present"})))
        .collect();
    let related: Vec<Value> = checks::verifications_of(tx, crypto, &source_scope, &source.id)
        .await?
        .into_iter()
        .map(|v| {
            json!({
                "type": format!("verification/{}", v.verification_type),
                "id": v.id.as_str(),
                "peekable-attributes": {"status": v.status},
            })
        })
        .collect();
    Ok(Peek::Envelope(json!({
        "type": "inquiry",
        "id": source.id.as_str(),
        "peekable-attributes": {"fields": fields},
        "related-objects": related,
    })))
}

fn holds_value(value: &FieldValue) -> bool {
    match value {
        FieldValue::String(s) | FieldValue::Choices(s) | FieldValue::File(s) => {
            !s.trim().is_empty()
        }
        FieldValue::MultiChoices(v) => !v.is_empty(),
        FieldValue::Json(v) => !v.is_null(),
        FieldValue::Date(_) | FieldValue::Number(_) | FieldValue::Boolean(_) => true,
    }
}

const PREVIEW_TEMPLATE_INPUT: &str = "inquiry-template-id";

/// What redeeming the token under one of the caller's templates would do (DESIGN §2.5),
/// computed from what the source holds, in one read transaction: nothing is copied, created or
/// changed. Destination only (the source gets a 403); the token must be `created` and
/// unexpired.
pub async fn preview(
    state: &AppState,
    scope: &Scope,
    id: &ShareTokenId,
    template_id: &str,
    mappings: &[FieldMapping],
) -> Result<(ShareToken, InquiryTemplateId, Preview), ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_read().await?;
    let token = share_tokens::get(&mut tx, scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    if token.destination_org_id != scope.org_id {
        return Err(ServiceError::forbidden(
            "Only the destination organization of a share token can preview its redemption; \
             yours is its source.",
        ));
    }
    if token.status != ShareTokenStatus::Created || token.expires_at <= now {
        let status = if token.status == ShareTokenStatus::Created {
            ShareTokenStatus::Expired
        } else {
            token.status
        };
        return Err(ServiceError::invalid(
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
    let version = templates::get_version(&mut tx, scope, &version_id)
        .await?
        .ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!("published version {version_id} missing"))
        })?;
    let definition = version.definition;
    let source_scope = Scope::new(token.source_org_id.clone(), token.environment);
    let crypto = state.store().crypto();
    let source = inquiries::get(&mut tx, crypto, &source_scope, &token.source_inquiry_id)
        .await?
        .filter(|s| s.redacted_at.is_none())
        .ok_or_else(|| {
            ServiceError::invalid(
                "Source inquiry redacted",
                "The source inquiry was redacted: this share token has no data left to copy.",
            )
        })?;
    let source_subject = pipeline::load_subject(&mut tx, state, &source_scope, &source).await?;
    let passed: Vec<PassedVerification> =
        checks::verifications_of(&mut tx, crypto, &source_scope, &source.id)
            .await?
            .into_iter()
            .filter(|v| v.status == "passed")
            .filter_map(|v| {
                Some(PassedVerification {
                    verification_type: v.verification_type.parse().ok()?,
                    completed_at: v.completed_at?,
                })
            })
            .collect();
    drop(tx);
    let subject = preview::copied_subject(
        &definition,
        &source_subject,
        &crate::service::redemption::mapping_table(mappings),
        now.date(),
    );
    let prediction = preview::preview(&definition, &subject, &passed, now);
    Ok((token, template_id, prediction))
}

/// Expires a `created` token (source only), with its events.
pub async fn expire(
    state: &AppState,
    scope: &Scope,
    id: &ShareTokenId,
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
            ShareTokenTransitionError::WrongStatus { .. } => ServiceError::invalid(
                "Invalid transition",
                format!("{}.", sentence(&e.to_string())),
            ),
        })?;
    if !share_tokens::expire(&mut tx, &token.id, now).await? {
        // Redeemed or expired by someone else since we read it.
        return Err(ServiceError::invalid(
            "Invalid transition",
            "Cannot expire a share token that is no longer `created`.",
        ));
    }
    token.expired_at = Some(now);
    token.updated_at = now;
    record(state, &mut tx, share_token::expired_event, &token).await?;
    tx.commit().await?;
    Ok(token)
}

/// Expires every `created` token past its `expires-at` (the TTL job); returns how many.
pub async fn expire_due(state: &AppState) -> Result<usize, ServiceError> {
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
            match expire(state, &scope, &id).await {
                Ok(_) => {
                    expired += 1;
                    progressed = true;
                }
                // Redeemed or expired meanwhile: the transition no longer applies.
                Err(ServiceError::Invalid(_)) => {
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
    state: &AppState,
    tx: &mut Tx,
    name_for: fn(Side) -> &'static str,
    token: &ShareToken,
) -> Result<(), StoreError> {
    let mut ends = vec![(Side::Source, &token.source_org_id)];
    if token.destination_org_id != token.source_org_id {
        ends.push((Side::Destination, &token.destination_org_id));
    }
    for (side, org) in ends {
        let payload = render::payload(&render::share_token(token, org, None));
        crate::service::events::record(
            state,
            tx,
            &Scope::new(org.clone(), token.environment),
            events::NewEvent {
                name: name_for(side),
                object_type: "connect/share-token",
                object_id: token.id.as_str(),
                payload: &payload,
                sealed_by: None,
            },
        )
        .await?;
    }
    Ok(())
}
