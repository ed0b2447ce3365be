//! Verification and report results of an inquiry, one row per type per submission. The
//! result (checks, extracted attributes, matches) is sealed: it can name the person.

use idshare_domain::{
    id::{InquiryId, ReportId, VerificationId},
    time_format::{from_unix_micros, to_unix_micros},
};
use serde_json::Value;
use time::OffsetDateTime;

use crate::{Crypto, DataKey, Scope, StoreError, Tx, db::on_conn, inquiries, values_list};

#[derive(Debug, Clone)]
pub struct StoredVerification {
    pub id: VerificationId,
    pub inquiry_id: InquiryId,
    pub verification_type: String,
    pub submission: i64,
    pub status: String,
    pub required: bool,
    /// `{checks, attributes}`; `None` once the inquiry was redacted.
    pub result: Option<Value>,
    pub created_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct StoredReport {
    pub id: ReportId,
    pub inquiry_id: InquiryId,
    pub report_type: String,
    pub submission: i64,
    pub status: String,
    pub has_match: bool,
    /// `{matches, dismissed}`; `None` once the inquiry was redacted.
    pub result: Option<Value>,
    pub created_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct VerificationRow {
    id: String,
    inquiry_id: String,
    verification_type: String,
    submission: i64,
    status: String,
    required: i64,
    result_sealed: Option<Vec<u8>>,
    wrapped_key: Option<Vec<u8>>,
    created_at: i64,
    completed_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ReportRow {
    id: String,
    inquiry_id: String,
    report_type: String,
    submission: i64,
    status: String,
    has_match: i64,
    result_sealed: Option<Vec<u8>>,
    wrapped_key: Option<Vec<u8>>,
    created_at: i64,
    completed_at: Option<i64>,
}

fn open(
    crypto: &Crypto,
    inquiry_id: &str,
    sealed: Option<&[u8]>,
    wrapped: Option<&[u8]>,
    context: &str,
) -> Result<Option<Value>, StoreError> {
    let (Some(sealed), Some(wrapped)) = (sealed, wrapped) else {
        return Ok(None);
    };
    let plain = crypto
        .unwrap_data_key(inquiry_id, wrapped)?
        .open(sealed, context)?;
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(StoreError::corrupt)
}

fn result_context(object_id: &str) -> String {
    format!("{object_id}:result")
}

impl StoredVerification {
    fn decode(row: VerificationRow, crypto: &Crypto) -> Result<Self, StoreError> {
        let result = open(
            crypto,
            &row.inquiry_id,
            row.result_sealed.as_deref(),
            row.wrapped_key.as_deref(),
            &result_context(&row.id),
        )?;
        Ok(Self {
            result,
            ..Self::decode_plain(row)?
        })
    }

    /// Everything but the sealed result.
    fn decode_plain(row: VerificationRow) -> Result<Self, StoreError> {
        Ok(Self {
            result: None,
            id: VerificationId::parse(&row.id).map_err(StoreError::corrupt)?,
            inquiry_id: InquiryId::parse(&row.inquiry_id).map_err(StoreError::corrupt)?,
            verification_type: row.verification_type,
            submission: row.submission,
            status: row.status,
            required: row.required != 0,
            created_at: from_unix_micros(row.created_at),
            completed_at: row.completed_at.map(from_unix_micros),
        })
    }
}

impl StoredReport {
    fn decode(row: ReportRow, crypto: &Crypto) -> Result<Self, StoreError> {
        let result = open(
            crypto,
            &row.inquiry_id,
            row.result_sealed.as_deref(),
            row.wrapped_key.as_deref(),
            &result_context(&row.id),
        )?;
        Ok(Self {
            result,
            ..Self::decode_plain(row)?
        })
    }

    /// Everything but the sealed result.
    fn decode_plain(row: ReportRow) -> Result<Self, StoreError> {
        Ok(Self {
            result: None,
            id: ReportId::parse(&row.id).map_err(StoreError::corrupt)?,
            inquiry_id: InquiryId::parse(&row.inquiry_id).map_err(StoreError::corrupt)?,
            report_type: row.report_type,
            submission: row.submission,
            status: row.status,
            has_match: row.has_match != 0,
            created_at: from_unix_micros(row.created_at),
            completed_at: row.completed_at.map(from_unix_micros),
        })
    }
}

const VERIFICATION_COLUMNS: &str = "id, inquiry_id, verification_type, submission, status, required, \
    result_sealed, (SELECT wrapped_key FROM data_keys WHERE owner_id = verifications.inquiry_id) AS wrapped_key, \
    created_at, completed_at";
const REPORT_COLUMNS: &str = "id, inquiry_id, report_type, submission, status, has_match, \
    result_sealed, (SELECT wrapped_key FROM data_keys WHERE owner_id = reports.inquiry_id) AS wrapped_key, \
    created_at, completed_at";

/// A verification result to record.
#[derive(Debug)]
pub struct NewVerification<'a> {
    pub inquiry_id: &'a InquiryId,
    pub verification_type: &'a str,
    pub submission: i64,
    pub status: &'a str,
    pub required: bool,
    pub result: &'a Value,
}

/// Records a verification; `Ok(None)` when this type was already recorded for the submission
/// (a retried pipeline run).
pub async fn record_verification(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    new: NewVerification<'_>,
    now: OffsetDateTime,
) -> Result<Option<StoredVerification>, StoreError> {
    let id = VerificationId::generate();
    let key = inquiries::data_key(tx, crypto, new.inquiry_id.as_str())
        .await?
        .ok_or_else(|| StoreError::corrupt("inquiry has no data key"))?;
    let plain = serde_json::to_vec(new.result).map_err(StoreError::corrupt)?;
    let sealed = key.seal(&plain, &result_context(id.as_str()))?;
    let micros = to_unix_micros(now);
    let inserted = on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO verifications (id, org_id, environment, inquiry_id, verification_type, \
             submission, status, required, result_sealed, created_at, completed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) ON CONFLICT DO NOTHING",
        )
        .bind(id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(new.inquiry_id.as_str())
        .bind(new.verification_type)
        .bind(new.submission)
        .bind(new.status)
        .bind(i64::from(new.required))
        .bind(sealed)
        .bind(micros)
        .execute(conn)
        .await?
        .rows_affected()
    });
    if inserted == 0 {
        return Ok(None);
    }
    Ok(Some(StoredVerification {
        id,
        inquiry_id: new.inquiry_id.clone(),
        verification_type: new.verification_type.to_owned(),
        submission: new.submission,
        status: new.status.to_owned(),
        required: new.required,
        result: Some(new.result.clone()),
        created_at: now,
        completed_at: Some(now),
    }))
}

/// A report result to record.
#[derive(Debug)]
pub struct NewReport<'a> {
    pub inquiry_id: &'a InquiryId,
    pub report_type: &'a str,
    pub submission: i64,
    pub status: &'a str,
    pub has_match: bool,
    pub result: &'a Value,
}

pub async fn record_report(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    new: NewReport<'_>,
    now: OffsetDateTime,
) -> Result<Option<StoredReport>, StoreError> {
    let id = ReportId::generate();
    let key = inquiries::data_key(tx, crypto, new.inquiry_id.as_str())
        .await?
        .ok_or_else(|| StoreError::corrupt("inquiry has no data key"))?;
    let plain = serde_json::to_vec(new.result).map_err(StoreError::corrupt)?;
    let sealed = key.seal(&plain, &result_context(id.as_str()))?;
    let micros = to_unix_micros(now);
    let inserted = on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO reports (id, org_id, environment, inquiry_id, report_type, submission, \
             status, has_match, result_sealed, created_at, completed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) ON CONFLICT DO NOTHING",
        )
        .bind(id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(new.inquiry_id.as_str())
        .bind(new.report_type)
        .bind(new.submission)
        .bind(new.status)
        .bind(i64::from(new.has_match))
        .bind(sealed)
        .bind(micros)
        .execute(conn)
        .await?
        .rows_affected()
    });
    if inserted == 0 {
        return Ok(None);
    }
    Ok(Some(StoredReport {
        id,
        inquiry_id: new.inquiry_id.clone(),
        report_type: new.report_type.to_owned(),
        submission: new.submission,
        status: new.status.to_owned(),
        has_match: new.has_match,
        result: Some(new.result.clone()),
        created_at: now,
        completed_at: Some(now),
    }))
}

pub async fn verifications_of(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    inquiry_id: &InquiryId,
) -> Result<Vec<StoredVerification>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {VERIFICATION_COLUMNS} FROM verifications \
         WHERE inquiry_id = $1 AND org_id = $2 AND environment = $3 ORDER BY submission, created_at, id"
    ));
    let rows: Vec<VerificationRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(inquiry_id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_all(conn)
            .await?
    });
    rows.into_iter()
        .map(|r| StoredVerification::decode(r, crypto))
        .collect()
}

pub async fn get_verification(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    id: &VerificationId,
) -> Result<Option<StoredVerification>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {VERIFICATION_COLUMNS} FROM verifications WHERE id = $1 AND org_id = $2 AND environment = $3"
    ));
    let row: Option<VerificationRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(|r| StoredVerification::decode(r, crypto))
        .transpose()
}

pub async fn reports_of(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    inquiry_id: &InquiryId,
) -> Result<Vec<StoredReport>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {REPORT_COLUMNS} FROM reports \
         WHERE inquiry_id = $1 AND org_id = $2 AND environment = $3 ORDER BY submission, created_at, id"
    ));
    let rows: Vec<ReportRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(inquiry_id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_all(conn)
            .await?
    });
    rows.into_iter()
        .map(|r| StoredReport::decode(r, crypto))
        .collect()
}

pub async fn get_report(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    id: &ReportId,
) -> Result<Option<StoredReport>, StoreError> {
    let lock = tx.lock_clause(true);
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {REPORT_COLUMNS} FROM reports WHERE id = $1 AND org_id = $2 AND environment = $3{lock}"
    ));
    let row: Option<ReportRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(|r| StoredReport::decode(r, crypto)).transpose()
}

/// Rewrites a report's result (dismissals) and whether it still has an open match.
pub async fn update_report(
    tx: &mut Tx,
    crypto: &Crypto,
    report: &StoredReport,
    result: &Value,
    has_match: bool,
) -> Result<(), StoreError> {
    let key = inquiries::data_key(tx, crypto, report.inquiry_id.as_str())
        .await?
        .ok_or_else(|| StoreError::corrupt("inquiry has no data key"))?;
    let plain = serde_json::to_vec(result).map_err(StoreError::corrupt)?;
    let sealed = key.seal(&plain, &result_context(report.id.as_str()))?;
    on_conn!(tx, |conn| {
        sqlx::query("UPDATE reports SET result_sealed = $1, has_match = $2 WHERE id = $3")
            .bind(sealed)
            .bind(i64::from(has_match))
            .bind(report.id.as_str())
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// A verification result to record with [`record_verifications`], its id chosen before any
/// transaction opens.
pub fn prepare_verification(new: NewVerification<'_>, now: OffsetDateTime) -> StoredVerification {
    StoredVerification {
        id: VerificationId::generate(),
        inquiry_id: new.inquiry_id.clone(),
        verification_type: new.verification_type.to_owned(),
        submission: new.submission,
        status: new.status.to_owned(),
        required: new.required,
        result: Some(new.result.clone()),
        created_at: now,
        completed_at: Some(now),
    }
}

/// A report result to record with [`record_reports`], its id chosen before any transaction
/// opens.
pub fn prepare_report(new: NewReport<'_>, now: OffsetDateTime) -> StoredReport {
    StoredReport {
        id: ReportId::generate(),
        inquiry_id: new.inquiry_id.clone(),
        report_type: new.report_type.to_owned(),
        submission: new.submission,
        status: new.status.to_owned(),
        has_match: new.has_match,
        result: Some(new.result.clone()),
        created_at: now,
        completed_at: Some(now),
    }
}

/// The sealed result of a prepared verification or report.
fn seal_result(key: &DataKey, id: &str, result: Option<&Value>) -> Result<Vec<u8>, StoreError> {
    let plain = serde_json::to_vec(&result.unwrap_or(&Value::Null)).map_err(StoreError::corrupt)?;
    key.seal(&plain, &result_context(id))
}

/// Records prepared verifications of one inquiry in one statement, sealed under its already
/// unwrapped `key`; returns the ids of those recorded (a type already recorded for its
/// submission, by a retried run, is not).
pub async fn record_verifications(
    tx: &mut Tx,
    key: &DataKey,
    scope: &Scope,
    verifications: &[StoredVerification],
) -> Result<Vec<VerificationId>, StoreError> {
    if verifications.is_empty() {
        return Ok(vec![]);
    }
    let mut sealed = Vec::with_capacity(verifications.len());
    for v in verifications {
        sealed.push(seal_result(key, v.id.as_str(), v.result.as_ref())?);
    }
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO verifications (id, org_id, environment, inquiry_id, verification_type, \
         submission, status, required, result_sealed, created_at, completed_at) VALUES {} \
         ON CONFLICT DO NOTHING RETURNING id",
        values_list(verifications.len(), 11)
    ));
    let inserted: Vec<String> = on_conn!(tx, |conn| {
        let mut query = sqlx::query_scalar(sql);
        for (v, sealed) in verifications.iter().zip(&sealed) {
            query = query
                .bind(v.id.as_str())
                .bind(scope.org_id.as_str())
                .bind(scope.environment.as_str())
                .bind(v.inquiry_id.as_str())
                .bind(v.verification_type.as_str())
                .bind(v.submission)
                .bind(v.status.as_str())
                .bind(i64::from(v.required))
                .bind(sealed.as_slice())
                .bind(to_unix_micros(v.created_at))
                .bind(v.completed_at.map(to_unix_micros));
        }
        query.fetch_all(conn).await?
    });
    inserted
        .iter()
        .map(|id| VerificationId::parse(id).map_err(StoreError::corrupt))
        .collect()
}

/// Records prepared reports of one inquiry in one statement, like [`record_verifications`].
pub async fn record_reports(
    tx: &mut Tx,
    key: &DataKey,
    scope: &Scope,
    reports: &[StoredReport],
) -> Result<Vec<ReportId>, StoreError> {
    if reports.is_empty() {
        return Ok(vec![]);
    }
    let mut sealed = Vec::with_capacity(reports.len());
    for r in reports {
        sealed.push(seal_result(key, r.id.as_str(), r.result.as_ref())?);
    }
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO reports (id, org_id, environment, inquiry_id, report_type, submission, \
         status, has_match, result_sealed, created_at, completed_at) VALUES {} \
         ON CONFLICT DO NOTHING RETURNING id",
        values_list(reports.len(), 11)
    ));
    let inserted: Vec<String> = on_conn!(tx, |conn| {
        let mut query = sqlx::query_scalar(sql);
        for (r, sealed) in reports.iter().zip(&sealed) {
            query = query
                .bind(r.id.as_str())
                .bind(scope.org_id.as_str())
                .bind(scope.environment.as_str())
                .bind(r.inquiry_id.as_str())
                .bind(r.report_type.as_str())
                .bind(r.submission)
                .bind(r.status.as_str())
                .bind(i64::from(r.has_match))
                .bind(sealed.as_slice())
                .bind(to_unix_micros(r.created_at))
                .bind(r.completed_at.map(to_unix_micros));
        }
        query.fetch_all(conn).await?
    });
    inserted
        .iter()
        .map(|id| ReportId::parse(id).map_err(StoreError::corrupt))
        .collect()
}

/// The verifications of an inquiry, opened with its already unwrapped `key` (no key lookup
/// per row).
pub async fn verifications_keyed(
    tx: &mut Tx,
    key: &DataKey,
    scope: &Scope,
    inquiry_id: &InquiryId,
) -> Result<Vec<StoredVerification>, StoreError> {
    let rows: Vec<VerificationRow> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, inquiry_id, verification_type, submission, status, required, \
             result_sealed, NULL AS wrapped_key, created_at, completed_at FROM verifications \
             WHERE inquiry_id = $1 AND org_id = $2 AND environment = $3 \
             ORDER BY submission, created_at, id",
        )
        .bind(inquiry_id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .fetch_all(conn)
        .await?
    });
    rows.into_iter()
        .map(|row| {
            let result = open_keyed(key, row.result_sealed.as_deref(), &result_context(&row.id))?;
            let mut verification = StoredVerification::decode_plain(row)?;
            verification.result = result;
            Ok(verification)
        })
        .collect()
}

/// The reports of an inquiry, opened with its already unwrapped `key`.
pub async fn reports_keyed(
    tx: &mut Tx,
    key: &DataKey,
    scope: &Scope,
    inquiry_id: &InquiryId,
) -> Result<Vec<StoredReport>, StoreError> {
    let rows: Vec<ReportRow> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, inquiry_id, report_type, submission, status, has_match, result_sealed, \
             NULL AS wrapped_key, created_at, completed_at FROM reports \
             WHERE inquiry_id = $1 AND org_id = $2 AND environment = $3 \
             ORDER BY submission, created_at, id",
        )
        .bind(inquiry_id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .fetch_all(conn)
        .await?
    });
    rows.into_iter()
        .map(|row| {
            let result = open_keyed(key, row.result_sealed.as_deref(), &result_context(&row.id))?;
            let mut report = StoredReport::decode_plain(row)?;
            report.result = result;
            Ok(report)
        })
        .collect()
}

fn open_keyed(
    key: &DataKey,
    sealed: Option<&[u8]>,
    context: &str,
) -> Result<Option<Value>, StoreError> {
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    serde_json::from_slice(&key.open(sealed, context)?)
        .map(Some)
        .map_err(StoreError::corrupt)
}
