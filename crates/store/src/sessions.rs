//! Credentials that open an inquiry in the hosted flow: API-issued session tokens, one-time
//! links, and the browser session a link is exchanged for. Only a hash of each token is stored.

use idshare_domain::{
    environment::Environment,
    id::{InquiryId, InquirySessionId, OrgId},
    time_format::{from_unix_micros, to_unix_micros},
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{Scope, StoreError, Tx, db::on_conn};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// `POST /inquiries/{id}/resume`: `meta.session-token`, used by SDKs and the flow.
    Session,
    /// `POST /inquiries/{id}/generate-one-time-link`: opens the flow once.
    OneTimeLink,
    /// The cookie of a browser that opened the flow.
    Browser,
}

impl SessionKind {
    fn as_str(self) -> &'static str {
        match self {
            SessionKind::Session => "session",
            SessionKind::OneTimeLink => "one-time-link",
            SessionKind::Browser => "browser",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "session" => Ok(Self::Session),
            "one-time-link" => Ok(Self::OneTimeLink),
            "browser" => Ok(Self::Browser),
            other => Err(StoreError::corrupt(format!("unknown session kind {other}"))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct InquirySession {
    pub id: InquirySessionId,
    pub scope: Scope,
    pub inquiry_id: InquiryId,
    pub kind: SessionKind,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: String,
    org_id: String,
    environment: String,
    inquiry_id: String,
    kind: String,
    expires_at: i64,
    used_at: Option<i64>,
}

impl TryFrom<SessionRow> for InquirySession {
    type Error = StoreError;
    fn try_from(row: SessionRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: InquirySessionId::parse(&row.id).map_err(StoreError::corrupt)?,
            scope: Scope::new(
                OrgId::parse(&row.org_id).map_err(StoreError::corrupt)?,
                row.environment
                    .parse::<Environment>()
                    .map_err(StoreError::corrupt)?,
            ),
            inquiry_id: InquiryId::parse(&row.inquiry_id).map_err(StoreError::corrupt)?,
            kind: SessionKind::parse(&row.kind)?,
            expires_at: from_unix_micros(row.expires_at),
            used_at: row.used_at.map(from_unix_micros),
        })
    }
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Creates a credential and returns it with its secret token (shown once).
pub async fn create(
    tx: &mut Tx,
    scope: &Scope,
    inquiry_id: &InquiryId,
    kind: SessionKind,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(InquirySession, String), StoreError> {
    let mut secret = [0u8; 32];
    rand::fill(&mut secret[..]);
    let token = bs58::encode(secret).into_string();
    let session = InquirySession {
        id: InquirySessionId::generate(),
        scope: scope.clone(),
        inquiry_id: inquiry_id.clone(),
        kind,
        expires_at,
        used_at: None,
    };
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO inquiry_sessions (id, org_id, environment, inquiry_id, kind, token_hash, \
             expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(session.id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(inquiry_id.as_str())
        .bind(kind.as_str())
        .bind(hash(&token))
        .bind(to_unix_micros(expires_at))
        .bind(to_unix_micros(now))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok((session, token))
}

/// The credential a token belongs to (whatever its state; the caller checks expiry and use).
pub async fn find(tx: &mut Tx, token: &str) -> Result<Option<InquirySession>, StoreError> {
    let row: Option<SessionRow> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, org_id, environment, inquiry_id, kind, expires_at, used_at \
             FROM inquiry_sessions WHERE token_hash = $1",
        )
        .bind(hash(token))
        .fetch_optional(conn)
        .await?
    });
    row.map(InquirySession::try_from).transpose()
}

/// Marks a single-use credential used; false when it already was (a lost race).
pub async fn mark_used(
    tx: &mut Tx,
    id: &InquirySessionId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let updated = on_conn!(tx, |conn| {
        sqlx::query("UPDATE inquiry_sessions SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(to_unix_micros(now))
            .bind(id.as_str())
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(updated == 1)
}

/// Ends every open credential of an inquiry (it expired or finished).
pub async fn expire_all(
    tx: &mut Tx,
    inquiry_id: &InquiryId,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let micros = to_unix_micros(now);
    let expired = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE inquiry_sessions SET expires_at = $1 WHERE inquiry_id = $2 AND expires_at > $1",
        )
        .bind(micros)
        .bind(inquiry_id.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(expired)
}
