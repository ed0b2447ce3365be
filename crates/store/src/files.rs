//! Uploaded files (ID images, selfies, documents), sealed under the inquiry's data key.

use idshare_domain::{
    id::{FileId, InquiryId},
    time_format::{from_unix_micros, to_unix_micros},
    verification::{FileKind, FileRef},
};
use time::OffsetDateTime;

use crate::{Crypto, DataKey, Scope, StoreError, Tx, db::on_conn, inquiries, values_list};

#[derive(Debug, Clone)]
pub struct StoredFile {
    pub id: FileId,
    pub inquiry_id: InquiryId,
    pub kind: FileKind,
    pub content_type: String,
    pub size: u64,
    pub created_at: OffsetDateTime,
}

impl StoredFile {
    pub fn as_ref(&self) -> FileRef {
        FileRef {
            id: self.id.to_string(),
            kind: self.kind,
            content_type: self.content_type.clone(),
            size: self.size,
        }
    }
}

#[derive(sqlx::FromRow)]
struct FileRow {
    id: String,
    inquiry_id: String,
    kind: String,
    content_type: String,
    size: i64,
    created_at: i64,
}

impl TryFrom<FileRow> for StoredFile {
    type Error = StoreError;
    fn try_from(row: FileRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: FileId::parse(&row.id).map_err(StoreError::corrupt)?,
            inquiry_id: InquiryId::parse(&row.inquiry_id).map_err(StoreError::corrupt)?,
            kind: row.kind.parse().map_err(StoreError::corrupt)?,
            content_type: row.content_type,
            size: u64::try_from(row.size).map_err(StoreError::corrupt)?,
            created_at: from_unix_micros(row.created_at),
        })
    }
}

fn content_context(id: &str) -> String {
    format!("{id}:file-content")
}

const COLUMNS: &str = "id, inquiry_id, kind, content_type, size, created_at";

/// A file to store: what it is for, its sniffed type, and its bytes.
#[derive(Debug)]
pub struct NewFile<'a> {
    pub kind: FileKind,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// Stores a file for an inquiry that still has its data key.
pub async fn create(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    inquiry_id: &InquiryId,
    file: NewFile<'_>,
    now: OffsetDateTime,
) -> Result<StoredFile, StoreError> {
    let NewFile {
        kind,
        content_type,
        bytes,
    } = file;
    let id = FileId::generate();
    let key = inquiries::data_key(tx, crypto, inquiry_id.as_str())
        .await?
        .ok_or_else(|| StoreError::corrupt("inquiry has no data key"))?;
    let sealed = key.seal(bytes, &content_context(id.as_str()))?;
    let size = u64::try_from(bytes.len()).map_err(StoreError::corrupt)?;
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO files (id, org_id, environment, inquiry_id, kind, content_type, size, \
             content_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(inquiry_id.as_str())
        .bind(kind.as_str())
        .bind(content_type)
        .bind(i64::try_from(size).map_err(StoreError::corrupt)?)
        .bind(sealed)
        .bind(to_unix_micros(now))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(StoredFile {
        id,
        inquiry_id: inquiry_id.clone(),
        kind,
        content_type: content_type.to_owned(),
        size,
        created_at: now,
    })
}

pub async fn get(
    tx: &mut Tx,
    scope: &Scope,
    id: &FileId,
) -> Result<Option<StoredFile>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM files WHERE id = $1 AND org_id = $2 AND environment = $3 \
         AND content_sealed IS NOT NULL"
    ));
    let row: Option<FileRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(StoredFile::try_from).transpose()
}

/// The files of an inquiry, oldest first (redacted files are gone).
pub async fn for_inquiry(
    tx: &mut Tx,
    scope: &Scope,
    inquiry_id: &InquiryId,
) -> Result<Vec<StoredFile>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM files WHERE inquiry_id = $1 AND org_id = $2 AND environment = $3 \
         AND content_sealed IS NOT NULL ORDER BY created_at, id"
    ));
    let rows: Vec<FileRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(inquiry_id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(StoredFile::try_from).collect()
}

/// The decrypted bytes of a file, by id alone: the caller has verified a signed URL that names
/// the file and its scope.
pub async fn content(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    id: &FileId,
) -> Result<Option<(StoredFile, Vec<u8>)>, StoreError> {
    let Some(file) = get(tx, scope, id).await? else {
        return Ok(None);
    };
    let sealed: Option<Vec<u8>> = on_conn!(tx, |conn| {
        sqlx::query_scalar("SELECT content_sealed FROM files WHERE id = $1")
            .bind(id.as_str())
            .fetch_one(conn)
            .await?
    });
    let (Some(sealed), Some(key)) = (
        sealed,
        inquiries::data_key(tx, crypto, file.inquiry_id.as_str()).await?,
    ) else {
        return Ok(None);
    };
    let bytes = key.open(&sealed, &content_context(id.as_str()))?;
    Ok(Some((file, bytes)))
}

/// A file to store with [`insert_all`], its id chosen before any transaction opens (what is
/// computed from the file, such as a verification's basis, may name it).
pub fn prepare(
    inquiry_id: &InquiryId,
    kind: FileKind,
    content_type: &str,
    size: usize,
    now: OffsetDateTime,
) -> Result<StoredFile, StoreError> {
    Ok(StoredFile {
        id: FileId::generate(),
        inquiry_id: inquiry_id.clone(),
        kind,
        content_type: content_type.to_owned(),
        size: u64::try_from(size).map_err(StoreError::corrupt)?,
        created_at: now,
    })
}

/// Stores prepared files of one inquiry in one statement, sealed under its already unwrapped
/// `key`.
pub async fn insert_all(
    tx: &mut Tx,
    key: &DataKey,
    scope: &Scope,
    files: &[(StoredFile, &[u8])],
) -> Result<(), StoreError> {
    if files.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(files.len());
    for (file, bytes) in files {
        let size = i64::try_from(file.size).map_err(StoreError::corrupt)?;
        rows.push((
            file,
            size,
            key.seal(bytes, &content_context(file.id.as_str()))?,
        ));
    }
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO files (id, org_id, environment, inquiry_id, kind, content_type, size, \
         content_sealed, created_at) VALUES {}",
        values_list(rows.len(), 9)
    ));
    on_conn!(tx, |conn| {
        let mut query = sqlx::query(sql);
        for (file, size, sealed) in &rows {
            query = query
                .bind(file.id.as_str())
                .bind(scope.org_id.as_str())
                .bind(scope.environment.as_str())
                .bind(file.inquiry_id.as_str())
                .bind(file.kind.as_str())
                .bind(file.content_type.as_str())
                .bind(*size)
                .bind(sealed.as_slice())
                .bind(to_unix_micros(file.created_at));
        }
        query.execute(conn).await?.rows_affected()
    });
    Ok(())
}

/// The files of an inquiry with their decrypted bytes, oldest first, in one read, opened with
/// its already unwrapped `key`.
pub async fn all_with_content(
    tx: &mut Tx,
    key: &DataKey,
    scope: &Scope,
    inquiry_id: &InquiryId,
) -> Result<Vec<(StoredFile, Vec<u8>)>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        file: FileRow,
        content_sealed: Vec<u8>,
    }
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, content_sealed FROM files WHERE inquiry_id = $1 AND org_id = $2 \
         AND environment = $3 AND content_sealed IS NOT NULL ORDER BY created_at, id"
    ));
    let rows: Vec<Row> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(inquiry_id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_all(conn)
            .await?
    });
    rows.into_iter()
        .map(|row| {
            let file = StoredFile::try_from(row.file)?;
            let bytes = key.open(&row.content_sealed, &content_context(file.id.as_str()))?;
            Ok((file, bytes))
        })
        .collect()
}
