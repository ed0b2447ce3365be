//! The inquiries' search index: keyed hashes (HMAC-SHA256) of an inquiry's normalized email
//! address, each word of its name and its whole name, so that the dashboard finds inquiries by
//! them without decrypting a row. Each organization and environment has its own random key,
//! sealed under the master key (and sealed again by master key rotation): the index reveals no
//! value, and does not tell whether two organizations hold the same one. Terms are written with
//! the inquiry's data and erased with it at redaction.

use std::collections::{BTreeMap, BTreeSet};

use idshare_domain::{field::FieldValue, id::InquiryId};
use zeroize::Zeroizing;

use crate::{Scope, StoreError, Tx, crypto::Crypto, db::on_conn};

const EMAIL_FIELD: &str = "email-address";
const FIRST_NAME_FIELD: &str = "name-first";
const MIDDLE_NAME_FIELD: &str = "name-middle";
const LAST_NAME_FIELD: &str = "name-last";
const KEY_LEN: usize = 32;

/// What is searched for and what is indexed alike: lower case, spaces collapsed.
pub fn normalize(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What an inquiry is found by: its email address, each word of its name, its whole name
/// (with and without the middle name).
fn terms(fields: &BTreeMap<String, FieldValue>) -> BTreeSet<String> {
    let text = |key: &str| match fields.get(key) {
        Some(FieldValue::String(s)) => normalize(s),
        _ => String::new(),
    };
    let (email, first, middle, last) = (
        text(EMAIL_FIELD),
        text(FIRST_NAME_FIELD),
        text(MIDDLE_NAME_FIELD),
        text(LAST_NAME_FIELD),
    );
    let whole = |parts: &[&str]| {
        parts
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut terms: BTreeSet<String> = [first.as_str(), middle.as_str(), last.as_str()]
        .iter()
        .flat_map(|name| name.split(' '))
        .map(str::to_owned)
        .collect();
    terms.insert(email);
    terms.insert(whole(&[&first, &middle, &last]));
    terms.insert(whole(&[&first, &last]));
    terms.remove("");
    terms
}

/// Where a scope's key is sealed, and what its sealing is bound to.
pub(crate) fn key_context(id: &str) -> String {
    format!("{id}:inquiry-search-key")
}

fn key_id(scope: &Scope) -> String {
    format!("{}:{}", scope.org_id, scope.environment.as_str())
}

async fn sealed_key(tx: &mut Tx, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(on_conn!(tx, |conn| {
        sqlx::query_scalar("SELECT key_sealed FROM inquiry_search_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?
    }))
}

/// The scope's key, made (and stored) first when `create` and there is none yet.
async fn key(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    create: bool,
) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    let id = key_id(scope);
    let sealed = match sealed_key(tx, &id).await? {
        Some(sealed) => sealed,
        None if !create => return Ok(None),
        None => {
            let mut fresh = Zeroizing::new(vec![0u8; KEY_LEN]);
            rand::fill(&mut fresh[..]);
            let sealed = crypto.seal_system(&fresh, &key_context(&id))?;
            // Two writers may make one at once: the first stays, and both use it.
            on_conn!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO inquiry_search_keys (id, key_sealed) VALUES ($1, $2) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&id)
                .bind(sealed)
                .execute(conn)
                .await?
                .rows_affected()
            });
            sealed_key(tx, &id)
                .await?
                .ok_or_else(|| StoreError::corrupt("the search key vanished"))?
        }
    };
    Ok(Some(Zeroizing::new(
        crypto.open_system(&sealed, &key_context(&id))?,
    )))
}

fn hash(key: &[u8], term: &str) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .expect("HMAC takes keys of any length");
    mac.update(term.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Writes the terms of an inquiry's `fields` in place of those it had.
pub async fn index(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    id: &InquiryId,
    fields: &BTreeMap<String, FieldValue>,
) -> Result<(), StoreError> {
    forget(tx, id).await?;
    let terms = terms(fields);
    if terms.is_empty() {
        return Ok(());
    }
    let key = key(tx, crypto, scope, true)
        .await?
        .ok_or_else(|| StoreError::corrupt("no search key"))?;
    for term in terms {
        let hashed = hash(&key, &term);
        on_conn!(tx, |conn| {
            sqlx::query(
                "INSERT INTO inquiry_search_terms (inquiry_id, term) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id.as_str())
            .bind(hashed)
            .execute(conn)
            .await?
            .rows_affected()
        });
    }
    Ok(())
}

/// Erases an inquiry's terms (redaction).
pub async fn forget(tx: &mut Tx, id: &InquiryId) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query("DELETE FROM inquiry_search_terms WHERE inquiry_id = $1")
            .bind(id.as_str())
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// The hash a search for `query` looks up: `None` for an empty query, or a scope that has
/// indexed nothing yet (nothing can match).
pub async fn term(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    query: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let query = normalize(query);
    if query.is_empty() {
        return Ok(None);
    }
    Ok(key(tx, crypto, scope, false)
        .await?
        .map(|key| hash(&key, &query)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inquiry_is_found_by_its_email_its_name_and_each_name_word() {
        let fields: BTreeMap<String, FieldValue> = [
            ("name-first", "Ada  Augusta"),
            ("name-last", "King-Lovelace"),
            ("email-address", " Ada@Example.COM "),
            ("address-city", "London"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), FieldValue::String(v.to_owned())))
        .collect();
        let expected: BTreeSet<String> = [
            "ada",
            "augusta",
            "king-lovelace",
            "ada augusta king-lovelace",
            "ada@example.com",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(terms(&fields), expected);
        assert!(terms(&BTreeMap::new()).is_empty());
        assert_eq!(normalize("  Ada \t LOVELACE "), "ada lovelace");
    }
}
