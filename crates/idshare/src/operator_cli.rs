//! Operator commands that look at the data without sealing or opening any: organizations, API
//! keys, users (and managing them), screening lists, jobs and migrations. Each listing prints a
//! table for people, or JSON (`--json`) for scripts.

use anyhow::bail;
use idshare_domain::{
    id::{JobId, OrgId},
    time_format::format_timestamp,
};
use idshare_service::{
    ServiceError,
    people::{self, Actor},
};
use idshare_store::{
    MigrationState, Store, api_keys, dashboard_sessions, jobs, lists, orgs, set_password_links,
    users::{self, Role, User},
};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// How a listing is printed.
#[derive(Debug, Clone, Copy)]
pub enum Output {
    Table,
    Json,
}

impl Output {
    pub fn from_flag(json: bool) -> Self {
        if json { Self::Json } else { Self::Table }
    }
}

/// One listing: its column headers, and per row the table cells and the JSON object.
struct Listing {
    headers: &'static [&'static str],
    rows: Vec<(Vec<String>, Value)>,
    /// Printed instead of an empty table.
    empty: &'static str,
}

impl Listing {
    fn print(self, output: Output) {
        match output {
            Output::Json => {
                let rows: Vec<Value> = self.rows.into_iter().map(|(_, json)| json).collect();
                println!("{}", Value::Array(rows));
            }
            Output::Table if self.rows.is_empty() => eprintln!("{}", self.empty),
            Output::Table => {
                let cells: Vec<Vec<String>> = self.rows.into_iter().map(|(row, _)| row).collect();
                print!("{}", table(self.headers, &cells));
            }
        }
    }
}

/// Columns padded to their widest cell, two spaces apart; the last column is not padded.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 == widths.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

fn time_cell(at: Option<OffsetDateTime>) -> String {
    at.map_or_else(|| "-".to_owned(), format_timestamp)
}

fn time_json(at: Option<OffsetDateTime>) -> Value {
    at.map_or(Value::Null, |at| Value::String(format_timestamp(at)))
}

pub async fn org_list(store: &Store, output: Output) -> anyhow::Result<()> {
    let mut tx = store.begin_read().await?;
    let orgs = orgs::list(&mut tx).await?;
    let rows = orgs
        .into_iter()
        .map(|org| {
            let json = json!({
                "id": org.id.as_str(),
                "name": org.name,
                "created-at": time_json(Some(org.created_at)),
            });
            (
                vec![
                    org.id.to_string(),
                    time_cell(Some(org.created_at)),
                    org.name,
                ],
                json,
            )
        })
        .collect();
    Listing {
        headers: &["ID", "CREATED", "NAME"],
        rows,
        empty: "no organizations (create one with `idshare admin org create --name …`)",
    }
    .print(output);
    Ok(())
}

pub async fn api_key_list(
    store: &Store,
    org: Option<&OrgId>,
    output: Output,
) -> anyhow::Result<()> {
    let mut tx = store.begin_read().await?;
    let keys = api_keys::list_all(&mut tx, org).await?;
    let rows = keys
        .into_iter()
        .map(|key| {
            let status = if key.revoked_at.is_some() {
                "revoked"
            } else {
                "active"
            };
            let permissions = key.permissions.to_list_string();
            let json = json!({
                "id": key.id.as_str(),
                "organization": key.scope.org_id.as_str(),
                "environment": key.scope.environment.as_str(),
                "name": key.name,
                "status": status,
                "permissions": key.permissions,
                "created-at": time_json(Some(key.created_at)),
                "last-used-at": time_json(key.last_used_at),
                "revoked-at": time_json(key.revoked_at),
            });
            (
                vec![
                    key.id.to_string(),
                    key.scope.org_id.to_string(),
                    key.scope.environment.to_string(),
                    status.to_owned(),
                    time_cell(Some(key.created_at)),
                    key.last_used_at
                        .map_or_else(|| "never".to_owned(), format_timestamp),
                    key.name,
                    permissions,
                ],
                json,
            )
        })
        .collect();
    Listing {
        headers: &[
            "ID",
            "ORGANIZATION",
            "ENVIRONMENT",
            "STATUS",
            "CREATED",
            "LAST USED (to the minute)",
            "NAME",
            "PERMISSIONS",
        ],
        rows,
        empty: "no API keys",
    }
    .print(output);
    Ok(())
}

pub async fn user_list(store: &Store, org: Option<&OrgId>, output: Output) -> anyhow::Result<()> {
    let mut tx = store.begin_read().await?;
    let users = users::list_all(&mut tx, org).await?;
    let rows = users
        .into_iter()
        .map(|user| {
            let json = json!({
                "id": user.id.as_str(),
                "organization": user.org_id.as_str(),
                "email-address": user.email,
                "role": user.role.as_str(),
                "status": user.status.as_str(),
                "two-factor": user.two_factor,
                "created-at": time_json(Some(user.created_at)),
                "last-signed-in-at": time_json(user.last_signed_in_at),
            });
            (
                vec![
                    user.id.to_string(),
                    user.org_id.to_string(),
                    user.role.as_str().to_owned(),
                    user.status.as_str().to_owned(),
                    if user.two_factor { "on" } else { "off" }.to_owned(),
                    time_cell(Some(user.created_at)),
                    time_cell(user.last_signed_in_at),
                    user.email,
                ],
                json,
            )
        })
        .collect();
    Listing {
        headers: &[
            "ID",
            "ORGANIZATION",
            "ROLE",
            "STATUS",
            "TWO-FACTOR",
            "CREATED",
            "LAST SIGN-IN",
            "EMAIL",
        ],
        rows,
        empty: "no users",
    }
    .print(output);
    Ok(())
}

/// A service's refusal as one line for the operator; a failure with its cause.
fn service_error(e: ServiceError) -> anyhow::Error {
    if e.is_failure() {
        anyhow::Error::new(e)
    } else {
        anyhow::anyhow!(
            "{}",
            e.reasons()
                .iter()
                .map(|r| r.details)
                .collect::<Vec<_>>()
                .join(" ")
        )
    }
}

/// The user (not removed) who signs in with `email`.
async fn user_by_email(store: &Store, email: &str) -> anyhow::Result<User> {
    let mut tx = store.begin_read().await?;
    match users::get_by_email(&mut tx, email).await? {
        Some(user) => Ok(user),
        None => bail!("no user with the email address {email} (see `idshare admin user list`)"),
    }
}

/// Invites a user and prints the path of its set-password link.
pub async fn user_invite(
    store: &Store,
    org: &OrgId,
    email: &str,
    role: Role,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let (user, token) = people::invite(store, Actor::Operator, org, email, role, now)
        .await
        .map_err(|e| match e {
            ServiceError::NotFound { .. } => anyhow::anyhow!("no organization {org}"),
            e => service_error(e),
        })?;
    eprintln!(
        "invited {} ({}) as {}; give them this link (after the server's public URL), valid \
         72 hours, once:",
        user.email,
        user.id,
        role.as_str()
    );
    println!("{}", set_password_links::path(&token));
    Ok(())
}

/// A change an operator makes to a user.
#[derive(Debug, Clone, Copy)]
pub enum UserChange {
    SetRole(Role),
    Disable,
    Enable,
    Remove,
    ResetPassword,
    RevokeSessions,
}

pub async fn user_change(
    store: &Store,
    email: &str,
    change: UserChange,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let user = user_by_email(store, email).await?;
    let (org, id, actor) = (&user.org_id, &user.id, Actor::Operator);
    let done = match change {
        UserChange::SetRole(role) => people::set_role(store, actor, org, id, role, now)
            .await
            .map(|_| format!("{email} is now {}", role.as_str())),
        UserChange::Disable => people::disable(store, actor, org, id, now)
            .await
            .map(|_| format!("disabled {email}; its sessions have ended")),
        UserChange::Enable => people::enable(store, actor, org, id, now)
            .await
            .map(|_| format!("enabled {email}")),
        UserChange::Remove => people::remove(store, actor, org, id, now)
            .await
            .map(|_| format!("removed {email}")),
        UserChange::ResetPassword => people::reset_password(store, actor, org, id, now)
            .await
            .map(|(_, token)| {
                println!("{}", set_password_links::path(&token));
                format!(
                    "reset the password of {email}; its sessions have ended. The link above \
                     (after the server's public URL) sets a new one, once, within 72 hours"
                )
            }),
        UserChange::RevokeSessions => people::revoke_sessions(store, actor, org, id, None, now)
            .await
            .map(|ended| format!("ended {ended} session(s) of {email}")),
    };
    eprintln!("{}", done.map_err(service_error)?);
    Ok(())
}

pub async fn user_sessions(
    store: &Store,
    email: &str,
    output: Output,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let user = user_by_email(store, email).await?;
    let mut tx = store.begin_read().await?;
    let sessions = dashboard_sessions::list_for_user(&mut tx, &user.id, now).await?;
    let rows = sessions
        .into_iter()
        .map(|session| {
            let json = json!({
                "id": session.id.as_str(),
                "created-at": time_json(Some(session.created_at)),
                "last-seen-at": time_json(Some(session.last_seen_at)),
                "client-address": session.client_address,
                "user-agent": session.user_agent,
            });
            (
                vec![
                    session.id.to_string(),
                    time_cell(Some(session.created_at)),
                    time_cell(Some(session.last_seen_at)),
                    session.client_address.unwrap_or_else(|| "-".to_owned()),
                    session.user_agent.unwrap_or_else(|| "-".to_owned()),
                ],
                json,
            )
        })
        .collect();
    Listing {
        headers: &["ID", "CREATED", "LAST SEEN", "CLIENT ADDRESS", "USER AGENT"],
        rows,
        empty: "no live sessions",
    }
    .print(output);
    Ok(())
}

pub async fn lists_list(store: &Store, output: Output) -> anyhow::Result<()> {
    let rows = lists::summaries(store)
        .await?
        .into_iter()
        .map(|list| {
            let json = json!({
                "list": list.list,
                "entries": list.entries,
                "imported-at": time_json(Some(list.imported_at)),
            });
            (
                vec![
                    list.list,
                    list.entries.to_string(),
                    time_cell(Some(list.imported_at)),
                ],
                json,
            )
        })
        .collect();
    Listing {
        headers: &["LIST", "ENTRIES", "IMPORTED"],
        rows,
        empty: "no screening lists (import one with `idshare lists import`)",
    }
    .print(output);
    Ok(())
}

pub async fn lists_delete(store: &Store, list: &str) -> anyhow::Result<()> {
    if !lists::delete(store, list).await? {
        bail!("no screening list named `{list}` (`idshare lists list` shows them)");
    }
    eprintln!(
        "deleted the screening list `{list}`; a running server stops screening against it at \
         its next screening"
    );
    Ok(())
}

pub async fn jobs_list(
    store: &Store,
    dead_only: bool,
    limit: u32,
    output: Output,
) -> anyhow::Result<()> {
    let mut tx = store.begin_read().await?;
    let jobs = jobs::list_unfinished(&mut tx, dead_only, limit).await?;
    let rows = jobs
        .into_iter()
        .map(|job| {
            let json = json!({
                "id": job.id.as_str(),
                "queue": job.queue,
                "kind": job.kind,
                "status": job.status,
                "attempts": job.attempts,
                "max-attempts": job.max_attempts,
                "run-at": time_json(Some(job.run_at)),
                "updated-at": time_json(Some(job.updated_at)),
                "last-error": job.last_error,
            });
            (
                vec![
                    job.id.to_string(),
                    job.queue,
                    job.kind,
                    job.status,
                    format!("{}/{}", job.attempts, job.max_attempts),
                    time_cell(Some(job.updated_at)),
                    job.last_error.unwrap_or_else(|| "-".to_owned()),
                ],
                json,
            )
        })
        .collect();
    Listing {
        headers: &[
            "ID",
            "QUEUE",
            "KIND",
            "STATUS",
            "ATTEMPTS",
            "UPDATED",
            "LAST ERROR",
        ],
        rows,
        empty: if dead_only {
            "no dead jobs"
        } else {
            "no jobs waiting, running or dead"
        },
    }
    .print(output);
    Ok(())
}

pub async fn jobs_retry(store: &Store, ids: &[JobId]) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    let mut tx = store.begin_write().await?;
    let mut missing = Vec::new();
    for id in ids {
        if jobs::retry_dead(&mut tx, id, now).await?.is_none() {
            missing.push(id.to_string());
        }
    }
    if !missing.is_empty() {
        bail!(
            "no dead job {} (`idshare jobs list --dead` shows them); nothing was retried",
            missing.join(", ")
        );
    }
    tx.commit().await?;
    eprintln!(
        "queued {} job(s) again with fresh attempts; a running server runs them within its job \
         poll interval (at once on PostgreSQL)",
        ids.len()
    );
    Ok(())
}

pub fn print_migration_status(states: &[MigrationState], output: Output) {
    let pending = states.iter().filter(|s| s.applied_on.is_none()).count();
    let rows = states
        .iter()
        .map(|state| {
            let status = match (&state.applied_on, state.checksum_differs) {
                (None, _) => "pending",
                (Some(_), true) => "applied (file differs from this build)",
                (Some(_), false) => "applied",
            };
            let json = json!({
                "version": state.version,
                "description": state.description,
                "status": status,
                "applied-on": state.applied_on,
            });
            (
                vec![
                    format!("{:04}", state.version),
                    status.to_owned(),
                    state.applied_on.clone().unwrap_or_else(|| "-".to_owned()),
                    state.description.clone(),
                ],
                json,
            )
        })
        .collect();
    Listing {
        headers: &["VERSION", "STATUS", "APPLIED ON", "DESCRIPTION"],
        rows,
        empty: "this build has no migrations",
    }
    .print(output);
    if matches!(output, Output::Table) {
        if pending == 0 {
            eprintln!("the database is up to date");
        } else {
            eprintln!(
                "{pending} migration(s) pending: `idshare migrate` (or `idshare serve`) applies them"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns_and_leave_the_last_unpadded() {
        let rows = vec![
            vec!["a".to_owned(), "long cell".to_owned(), "x".to_owned()],
            vec!["bbb".to_owned(), "c".to_owned(), "last column".to_owned()],
        ];
        assert_eq!(
            table(&["H1", "H2", "H3"], &rows),
            "H1   H2         H3\na    long cell  x\nbbb  c          last column\n"
        );
    }
}
