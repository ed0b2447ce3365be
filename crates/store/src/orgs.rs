//! Organizations (tenants). Not scoped: an organization is the scope.

use idshare_domain::{
    id::OrgId,
    time_format::{from_unix_micros, to_unix_micros},
};
use time::OffsetDateTime;

use crate::{StoreError, Tx, db::on_conn};

#[derive(Debug, Clone)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub created_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct OrgRow {
    id: String,
    name: String,
    created_at: i64,
}

impl TryFrom<OrgRow> for Organization {
    type Error = StoreError;
    fn try_from(row: OrgRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: OrgId::parse(&row.id).map_err(StoreError::corrupt)?,
            name: row.name,
            created_at: from_unix_micros(row.created_at),
        })
    }
}

pub async fn create(
    tx: &mut Tx,
    name: &str,
    now: OffsetDateTime,
) -> Result<Organization, StoreError> {
    let org = Organization {
        id: OrgId::generate(),
        name: name.to_owned(),
        created_at: now,
    };
    on_conn!(tx, |conn| {
        sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(org.id.as_str())
            .bind(&org.name)
            .bind(to_unix_micros(now))
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(org)
}

pub async fn get(tx: &mut Tx, id: &OrgId) -> Result<Option<Organization>, StoreError> {
    let row: Option<OrgRow> = on_conn!(tx, |conn| {
        sqlx::query_as("SELECT id, name, created_at FROM organizations WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(Organization::try_from).transpose()
}

/// How many organizations exist (`idshare demo` sets up only a database without any).
pub async fn count(tx: &mut Tx) -> Result<i64, StoreError> {
    Ok(on_conn!(tx, |conn| {
        sqlx::query_scalar("SELECT COUNT(*) FROM organizations")
            .fetch_one(conn)
            .await?
    }))
}
