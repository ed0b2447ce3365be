//! What the benchmark commands share: a small client of the public API, organizations with keys
//! created directly in the store, quantiles, peak RSS and the storage ceiling.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use idshare_domain::{environment::Environment, permission::PermissionSet};
use idshare_store::{Scope, Store, api_keys, orgs};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Sequential single-row write transactions timed for the storage ceiling.
pub const CEILING_WRITES: usize = 2_000;

/// The public API of the server under test.
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
}

impl Api {
    /// GET `path`, or POST `body` to it.
    pub async fn send(
        &self,
        key: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let url = format!("{}{path}", self.base);
        let request = match body {
            Some(body) => self.client.post(url).json(body),
            None => self.client.get(url),
        };
        let response = request.bearer_auth(key).send().await?;
        let status = response.status();
        let text = response.text().await?;
        let doc = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, doc))
    }

    /// Like [`Api::send`], failing unless the answer has status `want`.
    pub async fn expect(
        &self,
        key: &str,
        path: &str,
        body: Option<&Value>,
        want: StatusCode,
    ) -> Result<Value> {
        let (status, doc) = self.send(key, path, body).await?;
        if status != want {
            bail!("{path}: {status}, expected {want}: {doc}");
        }
        Ok(doc)
    }

    /// POSTs `body`, expects 201, returns the new object's id.
    pub async fn create(&self, key: &str, path: &str, body: &Value) -> Result<String> {
        let doc = self
            .expect(key, path, Some(body), StatusCode::CREATED)
            .await?;
        id_of(&doc)
    }
}

pub fn id_of(doc: &Value) -> Result<String> {
    doc["data"]["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no data.id in {doc}"))
}

/// A template with these string fields and a required email-address verification.
pub fn template_body(fields: &[&str]) -> Value {
    let schemas: Vec<Value> = fields
        .iter()
        .map(|k| json!({"key": k, "type": "string"}))
        .collect();
    json!({"data": {"attributes": {"name": "bench", "field-schemas": schemas,
        "verifications": [{"type": "email-address", "required": true}]}}})
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `q` quantile (nearest rank) of sorted durations.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Peak resident set size of this process (VmHWM), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A new organization with an all-permissions sandbox key: `(org id, key secret)`.
pub async fn org_with_key(store: &Store, name: &str) -> Result<(String, String)> {
    let now = OffsetDateTime::now_utc();
    let mut tx = store.begin_write().await?;
    let org = orgs::create(&mut tx, name, now).await?;
    let (_, secret) = api_keys::create(
        &mut tx,
        &Scope::new(org.id.clone(), Environment::Sandbox),
        "bench",
        &PermissionSet::all(),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((org.id.to_string(), secret))
}

/// The storage ceiling: [`CEILING_WRITES`] sequential single-row write transactions
/// (`begin_write`, one `INSERT` into `organizations`, commit) through `store`. Returns the rate
/// per second and the time taken.
pub async fn storage_ceiling(store: &Store) -> Result<(f64, Duration)> {
    let started = Instant::now();
    for i in 0..CEILING_WRITES {
        let mut tx = store.begin_write().await?;
        orgs::create(&mut tx, &format!("ceiling {i}"), OffsetDateTime::now_utc()).await?;
        tx.commit().await?;
    }
    let took = started.elapsed();
    Ok((CEILING_WRITES as f64 / took.as_secs_f64().max(1e-9), took))
}
