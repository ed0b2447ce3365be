//! Identity documents of an inquiry (government ID, proof of address): what was read from
//! them, sealed under the inquiry's data key. One per kind per inquiry; a new one replaces it.

use std::collections::BTreeMap;

use idshare_domain::{
    id::{DocumentId, InquiryId},
    time_format::to_unix_micros,
};
use serde::{Serialize, de::DeserializeOwned};
use time::OffsetDateTime;

use crate::{Crypto, DataKey, Scope, StoreError, Tx, db::on_conn, inquiries, values_list};

fn context(inquiry_id: &str, kind: &str) -> String {
    format!("{inquiry_id}:document:{kind}")
}

/// Stores (or replaces) the document of `kind` for an inquiry; returns its id.
pub async fn upsert<T: Serialize>(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    inquiry_id: &InquiryId,
    kind: &str,
    data: &T,
    now: OffsetDateTime,
) -> Result<DocumentId, StoreError> {
    let key = inquiries::data_key(tx, crypto, inquiry_id.as_str())
        .await?
        .ok_or_else(|| StoreError::corrupt("inquiry has no data key"))?;
    let plain = serde_json::to_vec(data).map_err(StoreError::corrupt)?;
    let sealed = key.seal(&plain, &context(inquiry_id.as_str(), kind))?;
    let micros = to_unix_micros(now);
    let existing: Option<String> = on_conn!(tx, |conn| {
        sqlx::query_scalar("SELECT id FROM documents WHERE inquiry_id = $1 AND kind = $2")
            .bind(inquiry_id.as_str())
            .bind(kind)
            .fetch_optional(conn)
            .await?
    });
    let id = match existing {
        Some(id) => {
            on_conn!(tx, |conn| {
                sqlx::query("UPDATE documents SET data_sealed = $1, updated_at = $2 WHERE id = $3")
                    .bind(sealed)
                    .bind(micros)
                    .bind(&id)
                    .execute(conn)
                    .await?
                    .rows_affected()
            });
            DocumentId::parse(&id).map_err(StoreError::corrupt)?
        }
        None => {
            let id = DocumentId::generate();
            on_conn!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO documents (id, org_id, environment, inquiry_id, kind, data_sealed, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(id.as_str())
                .bind(scope.org_id.as_str())
                .bind(scope.environment.as_str())
                .bind(inquiry_id.as_str())
                .bind(kind)
                .bind(sealed)
                .bind(micros)
                .execute(conn)
                .await?
                .rows_affected()
            });
            id
        }
    };
    Ok(id)
}

/// The document of `kind` of an inquiry, decrypted; `None` when absent or redacted.
pub async fn get<T: DeserializeOwned>(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    inquiry_id: &InquiryId,
    kind: &str,
) -> Result<Option<(DocumentId, T)>, StoreError> {
    let row: Option<(String, Option<Vec<u8>>)> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, data_sealed FROM documents \
             WHERE inquiry_id = $1 AND kind = $2 AND org_id = $3 AND environment = $4",
        )
        .bind(inquiry_id.as_str())
        .bind(kind)
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .fetch_optional(conn)
        .await?
    });
    let Some((id, Some(sealed))) = row else {
        return Ok(None);
    };
    let Some(key) = inquiries::data_key(tx, crypto, inquiry_id.as_str()).await? else {
        return Ok(None);
    };
    let plain = key.open(&sealed, &context(inquiry_id.as_str(), kind))?;
    let data = serde_json::from_slice(&plain).map_err(StoreError::corrupt)?;
    Ok(Some((
        DocumentId::parse(&id).map_err(StoreError::corrupt)?,
        data,
    )))
}

/// Every document of an inquiry, decrypted, by kind.
#[derive(Debug, Default)]
pub struct Documents(BTreeMap<String, Vec<u8>>);

impl Documents {
    /// The document of `kind`, when the inquiry has one.
    pub fn get<T: DeserializeOwned>(&self, kind: &str) -> Result<Option<T>, StoreError> {
        self.0
            .get(kind)
            .map(|plain| serde_json::from_slice(plain).map_err(StoreError::corrupt))
            .transpose()
    }

    /// The document of `kind` as stored (JSON), when the inquiry has one.
    pub fn raw(&self, kind: &str) -> Option<&[u8]> {
        self.0.get(kind).map(Vec::as_slice)
    }

    /// Puts (or replaces) the document of `kind`: what the inquiry holds once a copy of it is
    /// written.
    pub fn insert(&mut self, kind: &str, document: Vec<u8>) {
        self.0.insert(kind.to_owned(), document);
    }
}

/// Every document of an inquiry in one read, opened with its already unwrapped `key`.
pub async fn all(
    tx: &mut Tx,
    key: &DataKey,
    scope: &Scope,
    inquiry_id: &InquiryId,
) -> Result<Documents, StoreError> {
    let rows: Vec<(String, Option<Vec<u8>>)> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT kind, data_sealed FROM documents \
             WHERE inquiry_id = $1 AND org_id = $2 AND environment = $3",
        )
        .bind(inquiry_id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .fetch_all(conn)
        .await?
    });
    let mut documents = BTreeMap::new();
    for (kind, sealed) in rows {
        if let Some(sealed) = sealed {
            let plain = key.open(&sealed, &context(inquiry_id.as_str(), &kind))?;
            documents.insert(kind, plain);
        }
    }
    Ok(Documents(documents))
}

/// Stores (or replaces) several documents of an inquiry in one statement, sealed under its
/// already unwrapped `key`: `(kind, document as JSON)`.
pub async fn upsert_all(
    tx: &mut Tx,
    key: &DataKey,
    scope: &Scope,
    inquiry_id: &InquiryId,
    documents: &[(&str, Vec<u8>)],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    if documents.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(documents.len());
    for (kind, plain) in documents {
        let sealed = key.seal(plain, &context(inquiry_id.as_str(), kind))?;
        rows.push((DocumentId::generate(), *kind, sealed));
    }
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO documents (id, org_id, environment, inquiry_id, kind, data_sealed, \
         created_at, updated_at) VALUES {} \
         ON CONFLICT (inquiry_id, kind) DO UPDATE SET data_sealed = excluded.data_sealed, \
         updated_at = excluded.updated_at",
        values_list(rows.len(), 8)
    ));
    let micros = to_unix_micros(now);
    on_conn!(tx, |conn| {
        let mut query = sqlx::query(sql);
        for (id, kind, sealed) in &rows {
            query = query
                .bind(id.as_str())
                .bind(scope.org_id.as_str())
                .bind(scope.environment.as_str())
                .bind(inquiry_id.as_str())
                .bind(*kind)
                .bind(sealed.as_slice())
                .bind(micros)
                .bind(micros);
        }
        query.execute(conn).await?.rows_affected()
    });
    Ok(())
}
