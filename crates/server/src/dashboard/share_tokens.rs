//! Connect > Share Tokens: the list (both directions), creating a token (source), redeeming
//! one with a template after seeing the preview (destination), following it to `redeemed`,
//! and expiring one.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use idshare_domain::{
    connect::{ConnectionStatus, Direction, Side},
    id::ShareTokenId,
    id::{InquiryId, OrgId},
    preview::Preview,
    share_token::ShareTokenStatus,
};
use idshare_store::{
    Cursor,
    connections::{self, ConnectionFilter},
    inquiries, orgs,
    share_tokens::{self, ShareToken, ShareTokenFilter},
    templates,
    users::Role,
};
use serde::Deserialize;
use std::collections::HashMap;

use super::{Chrome, Confirmation, Moment, Notice, PageError, Signed};
use crate::{state::AppState, web};
use idshare_service::{
    Creator, ServiceError,
    redemption::{self, FieldMapping, Redeem},
    share_tokens::{self as service, NewShareToken},
};

const PATH: &str = "/dashboard/connect/share-tokens";
/// Who may create, redeem and expire share tokens.
const CONNECT_WRITERS: &[Role] = &[Role::Admin];
const PAGE_SIZE: u32 = 25;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(list).post(create))
        .route("/dashboard/connect/share-tokens/open", get(open))
        .route("/dashboard/connect/share-tokens/{id}", get(show))
        .route("/dashboard/connect/share-tokens/{id}/redeem", post(redeem))
        .route("/dashboard/connect/share-tokens/{id}/expire", post(expire))
}

/// One token as a row of the list or the head of its page.
#[derive(Debug)]
struct TokenView {
    id: String,
    direction: &'static str,
    status: &'static str,
    /// The other organization, by name.
    partner: String,
    connection: String,
    source_inquiry: Option<String>,
    destination_inquiry: Option<String>,
    /// The person of the inquiry this side sees (masked for viewers).
    person: Option<String>,
    created_at: Moment,
    expires_at: Moment,
    pending_at: Option<Moment>,
    redeemed_at: Option<Moment>,
    failed_at: Option<Moment>,
    failure_reason: Option<String>,
}

/// An organization's name from what [`orgs::partner_names`] read, its id if it has none there.
pub(super) fn org_name(names: &HashMap<OrgId, String>, id: &OrgId) -> String {
    names.get(id).cloned().unwrap_or_else(|| id.to_string())
}

impl TokenView {
    /// The inquiry of this side: the source's for the source, the one redeemed into for the
    /// destination.
    fn own_inquiry(&self) -> Option<InquiryId> {
        self.source_inquiry
            .as_ref()
            .or(self.destination_inquiry.as_ref())
            .and_then(|id| InquiryId::parse(id).ok())
    }

    fn new(
        token: &ShareToken,
        signed: &Signed,
        names: &HashMap<OrgId, String>,
        now: time::OffsetDateTime,
    ) -> Self {
        let side = if token.source_org_id == signed.session.user.org_id {
            Side::Source
        } else {
            Side::Destination
        };
        let ts = |t: Option<time::OffsetDateTime>| t.map(|t| Moment::new(t, now));
        let partner = match side {
            Side::Source => &token.destination_org_id,
            Side::Destination => &token.source_org_id,
        };
        Self {
            id: token.id.to_string(),
            direction: side.direction().as_str(),
            status: token.status.as_str(),
            partner: org_name(names, partner),
            connection: token.connection_id.to_string(),
            // The source inquiry is the source's: the destination sees only that one exists.
            source_inquiry: (side == Side::Source).then(|| token.source_inquiry_id.to_string()),
            destination_inquiry: (side == Side::Destination)
                .then(|| {
                    token
                        .destination_inquiry_id
                        .as_ref()
                        .map(ToString::to_string)
                })
                .flatten(),
            person: None,
            created_at: Moment::new(token.created_at, now),
            expires_at: Moment::new(token.expires_at, now),
            pending_at: ts(token.pending_at),
            redeemed_at: ts(token.redeemed_at),
            failed_at: ts(token.failed_at),
            failure_reason: token.failure_reason.clone(),
        }
    }
}

#[derive(Debug)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/share_tokens.html")]
struct ListPage {
    chrome: Chrome,
    tokens: Vec<TokenView>,
    directions: Vec<Choice>,
    statuses: Vec<Choice>,
    paging: super::Paging,
    can_write: bool,
    connections: Vec<Choice>,
    error: Option<String>,
    inquiry_id: String,
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    direction: Option<String>,
    status: Option<String>,
    #[serde(default)]
    before: String,
    #[serde(default)]
    after: String,
}

fn choices(all: &[&str], chosen: Option<&str>) -> Vec<Choice> {
    std::iter::once(("", "All"))
        .chain(all.iter().map(|v| (*v, *v)))
        .map(|(value, label)| Choice {
            value: value.to_owned(),
            label: label.to_owned(),
            selected: chosen.unwrap_or("") == value,
        })
        .collect()
}

async fn list_page(
    state: &AppState,
    signed: &Signed,
    query: &ListQuery,
    error: Option<String>,
    inquiry_id: String,
) -> Result<ListPage, PageError> {
    let scope = signed.scope();
    let direction = query
        .direction
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<Direction>().map_err(|_| PageError::NotFound))
        .transpose()?;
    let status = query
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ShareTokenStatus>()
                .map_err(|_| PageError::NotFound)
        })
        .transpose()?;
    let filter = ShareTokenFilter {
        connection_id: None,
        status,
        direction,
    };
    let mut tx = state.store().begin_read().await?;
    let cursor = super::cursor(&query.before, &query.after);
    let page = share_tokens::list(&mut tx, &scope, &filter, cursor, PAGE_SIZE)
        .await?
        .ok_or(PageError::NotFound)?;
    let outbound = ConnectionFilter {
        status: Some(ConnectionStatus::Active),
        destination_org_id: None,
        direction: Some(Direction::Outbound),
    };
    let connections = connections::list(&mut tx, &scope, &outbound, Cursor::Start, 100)
        .await?
        .map(|p| p.items)
        .unwrap_or_default();
    let names = orgs::partner_names(&mut tx, &scope).await?;
    let now = state.now();
    let mut tokens: Vec<TokenView> = page
        .items
        .iter()
        .map(|t| TokenView::new(t, signed, &names, now))
        .collect();
    // The people of the page's inquiries on this side, in one statement.
    let own: Vec<InquiryId> = tokens.iter().filter_map(|t| t.own_inquiry()).collect();
    let people: HashMap<String, Option<String>> =
        inquiries::get_many(&mut tx, state.store().crypto(), &scope, &own)
            .await?
            .iter()
            .map(|i| (i.id.to_string(), super::inquiries::person(i, signed)))
            .collect();
    drop(tx);
    for token in &mut tokens {
        let id = token.own_inquiry().map(|id| id.to_string());
        token.person = id.and_then(|id| people.get(&id).cloned().flatten());
    }
    let paging = super::Paging::new(
        PATH,
        &[
            ("direction", query.direction.as_deref().unwrap_or("")),
            ("status", query.status.as_deref().unwrap_or("")),
        ],
        &page,
        |t| t.id.to_string(),
        "tokens",
    );
    Ok(ListPage {
        chrome: signed.chrome("share-tokens"),
        tokens,
        directions: choices(&["outbound", "inbound"], query.direction.as_deref()),
        statuses: choices(
            &["created", "pending", "redeemed", "failed", "expired"],
            query.status.as_deref(),
        ),
        paging,
        can_write: CONNECT_WRITERS.contains(&signed.role()),
        connections: connections
            .iter()
            .map(|c| Choice {
                value: c.id.to_string(),
                label: format!("{} ({})", org_name(&names, &c.destination_org_id), c.id),
                selected: false,
            })
            .collect(),
        error,
        inquiry_id,
    })
}

async fn list(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let page = list_page(&state, &signed, &query, None, String::new()).await?;
    Ok(web::html(StatusCode::OK, page.render()))
}

#[derive(Debug, Deserialize)]
struct CreateForm {
    csrf: String,
    connection_id: String,
    inquiry_id: String,
}

/// Creates a token; a refusal shows the list again with the reason next to the form.
async fn create(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(CONNECT_WRITERS)?;
    let created = service::create(
        &state,
        &signed.scope(),
        Creator::User(&signed.session.user.id),
        &signed.actor(),
        NewShareToken {
            connection_id: &form.connection_id,
            source_id: &form.inquiry_id,
            expires_in_seconds: None,
        },
    )
    .await;
    match created {
        Ok(token) => Ok(super::done(
            &state,
            &format!("{PATH}/{}", token.id),
            Notice::ShareTokenCreated,
        )),
        Err(e) if !e.is_failure() => {
            let page = list_page(
                &state,
                &signed,
                &ListQuery::default(),
                Some(reason(&e)),
                form.inquiry_id.clone(),
            )
            .await?;
            Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
        }
        Err(e) => Err(e.into()),
    }
}

/// What a refusal says, for a person (a pasted id that names nothing reads as "not found").
fn reason(e: &ServiceError) -> String {
    if let ServiceError::NotFound { .. } = e {
        return "No such object exists in this organization and environment.".to_owned();
    }
    e.to_string()
}

#[derive(Debug, Deserialize)]
struct OpenQuery {
    token: String,
}

/// "Paste a token": to the token's page.
async fn open(_signed: Signed, Query(query): Query<OpenQuery>) -> Response {
    let token = query.token.trim();
    match ShareTokenId::parse(token) {
        Ok(id) => web::see_other(&format!("{PATH}/{id}"), None),
        Err(_) => super::not_found(),
    }
}

#[derive(Debug)]
struct RequirementView {
    kind: &'static str,
    label: String,
}

#[derive(Debug)]
struct PreviewView {
    template: String,
    outcome: &'static str,
    satisfied: Vec<RequirementView>,
    reused: Vec<&'static str>,
    to_run: Vec<&'static str>,
    missing: Vec<RequirementView>,
}

impl PreviewView {
    fn new(template: String, preview: &Preview) -> Self {
        let requirements = |list: &[idshare_domain::requirements::Requirement]| {
            list.iter()
                .map(|r| RequirementView {
                    kind: r.kind.as_str(),
                    label: r.label.clone(),
                })
                .collect()
        };
        Self {
            template,
            outcome: preview.outcome.as_str(),
            satisfied: requirements(&preview.satisfied),
            reused: preview.reused.iter().map(|v| v.as_str()).collect(),
            to_run: preview.to_run.iter().map(|v| v.as_str()).collect(),
            missing: requirements(&preview.missing),
        }
    }
}

#[derive(Debug, Template)]
#[template(path = "dashboard/share_token.html")]
struct TokenPage {
    chrome: Chrome,
    token: TokenView,
    /// Reload every second while the redemption runs (no JavaScript needed).
    refresh: bool,
    can_redeem: bool,
    can_expire: bool,
    templates: Vec<Choice>,
    /// The chosen template's fields: the destinations a field mapping can name.
    template_fields: Vec<String>,
    /// The field mapping editor's rows: those sent, then empty ones to fill in.
    mapping_rows: Vec<MappingRow>,
    mapping_problems: Vec<String>,
    /// The mappings the preview used, which the redeem form sends again.
    mappings: Vec<MappingRow>,
    preview: Option<PreviewView>,
    error: Option<String>,
}

/// One row of the field mapping editor: a field of the source's inquiry copied into a field of
/// the chosen template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct MappingRow {
    source: String,
    destination: String,
}

/// How many empty rows the editor offers below those filled in (more after the next preview).
const EMPTY_MAPPING_ROWS: usize = 2;
/// The most rows the editor takes.
const MAX_MAPPING_ROWS: usize = 50;

/// The preview's or the redeem's form: `template`, the CSRF token (redeem), and the editor's
/// rows as repeated `source` and `destination` fields, paired in order.
#[derive(Debug, Default)]
struct TokenForm {
    csrf: String,
    template: Option<String>,
    rows: Vec<MappingRow>,
}

impl TokenForm {
    fn parse(pairs: Vec<(String, String)>) -> Self {
        let mut form = Self::default();
        let mut sources = vec![];
        let mut destinations = vec![];
        for (name, value) in pairs {
            match name.as_str() {
                "csrf" => form.csrf = value,
                "template" => form.template = Some(value),
                "source" => sources.push(value.trim().to_owned()),
                "destination" => destinations.push(value.trim().to_owned()),
                _ => {}
            }
        }
        let rows = sources.len().max(destinations.len()).min(MAX_MAPPING_ROWS);
        form.rows = (0..rows)
            .map(|i| MappingRow {
                source: sources.get(i).cloned().unwrap_or_default(),
                destination: destinations.get(i).cloned().unwrap_or_default(),
            })
            .filter(|row| !row.source.is_empty() || !row.destination.is_empty())
            .collect();
        form
    }
}

/// The editor's rows as field mappings, or what is wrong with them, row by row: both sides
/// named, the destination a field of the template, no destination twice.
fn field_mappings(
    rows: &[MappingRow],
    template_fields: &[String],
) -> Result<Vec<FieldMapping>, Vec<String>> {
    let mut problems = vec![];
    for (i, row) in rows.iter().enumerate() {
        let n = i + 1;
        if row.source.is_empty() || row.destination.is_empty() {
            problems.push(format!(
                "Mapping {n}: name both the partner's field and the field of your template it \
                 fills."
            ));
        } else if !template_fields.contains(&row.destination) {
            problems.push(format!(
                "Mapping {n}: `{}` is not a field of the chosen template.",
                row.destination
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let raw = serde_json::Value::Array(
        rows.iter()
            .map(|row| {
                serde_json::json!({
                    "source-field-name": row.source,
                    "destination-field-name": row.destination,
                })
            })
            .collect(),
    );
    redemption::parse_mappings(Some(&raw)).map_err(|e| {
        e.reasons()
            .iter()
            .map(|r| {
                let row = r
                    .input
                    .and_then(|at| at.split('/').nth(1))
                    .and_then(|i| i.parse::<usize>().ok());
                match row {
                    Some(i) => format!("Mapping {}: {}", i + 1, r.details),
                    None => r.details.to_owned(),
                }
            })
            .collect()
    })
}

/// The field keys of a template's published version (empty when it has none).
async fn published_fields(
    state: &AppState,
    scope: &idshare_store::Scope,
    template: &str,
) -> Result<Vec<String>, PageError> {
    let Ok(template_id) = idshare_domain::id::InquiryTemplateId::parse(template.trim()) else {
        return Ok(vec![]);
    };
    let mut tx = state.store().begin_read().await?;
    let Some(version_id) = templates::get(&mut tx, scope, &template_id)
        .await?
        .and_then(|t| t.published_version_id)
    else {
        return Ok(vec![]);
    };
    Ok(templates::get_version(&mut tx, scope, &version_id)
        .await?
        .map(|v| {
            v.definition
                .field_schemas
                .iter()
                .map(|f| f.key.to_string())
                .collect()
        })
        .unwrap_or_default())
}

/// The token's page, with the preview for `template` when one is asked for; a refused preview
/// gives the page with the reason, and the refusal's status.
async fn token_page(
    state: &AppState,
    signed: &Signed,
    id: &ShareTokenId,
    template: Option<&str>,
    rows: &[MappingRow],
    error: Option<String>,
) -> Result<(TokenPage, StatusCode), PageError> {
    let scope = signed.scope();
    let (token, _) = service::get(state, &scope, id, false, &signed.actor()).await?;
    let mut tx = state.store().begin_read().await?;
    let names = orgs::partner_names(&mut tx, &scope).await?;
    let mut view = TokenView::new(&token, signed, &names, state.now());
    // The one inquiry of this side the page names: decrypted for its name alone.
    if let Some(id) = view.own_inquiry()
        && let Some(inquiry) = inquiries::get(&mut tx, state.store().crypto(), &scope, &id).await?
    {
        view.person = super::inquiries::person(&inquiry, signed);
    }
    drop(tx);
    let redeemable = view.direction == Direction::Inbound.as_str()
        && token.status == ShareTokenStatus::Created
        && token.expires_at > state.now();
    let can_write = CONNECT_WRITERS.contains(&signed.role());
    let mut templates_list = vec![];
    let mut template_fields = vec![];
    let mut mapping_problems = vec![];
    let mut mappings = vec![];
    let mut status = StatusCode::OK;
    let mut preview = None;
    if redeemable {
        let mut tx = state.store().begin_read().await?;
        let all = templates::list(&mut tx, &scope, Cursor::Start, 100)
            .await?
            .map(|p| p.items)
            .unwrap_or_default();
        drop(tx);
        templates_list = all
            .iter()
            .filter(|t| t.published_version_id.is_some())
            .map(|t| Choice {
                value: t.id.to_string(),
                label: format!("{} ({})", t.name, t.id),
                selected: template == Some(t.id.as_str()),
            })
            .collect();
        if let Some(template) = template.filter(|t| !t.is_empty()) {
            template_fields = published_fields(state, &scope, template).await?;
            match field_mappings(rows, &template_fields) {
                Err(problems) => {
                    mapping_problems = problems;
                    status = StatusCode::UNPROCESSABLE_ENTITY;
                }
                // The same service as the API's: over an active connection only, recorded in
                // the source's events, and counted against the token's limit of reads.
                Ok(valid) => {
                    match service::preview(state, &scope, id, template, &valid, &signed.actor())
                        .await
                    {
                        Ok((_, template_id, prediction)) => {
                            preview = Some(PreviewView::new(template_id.to_string(), &prediction));
                            mappings = rows.to_vec();
                        }
                        Err(e) if !e.is_failure() => {
                            let (page, _) = Box::pin(token_page(
                                state,
                                signed,
                                id,
                                None,
                                &[],
                                Some(reason(&e)),
                            ))
                            .await?;
                            return Ok((page, crate::http::error::status_of(&e)));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }
    let mapping_rows = rows
        .iter()
        .cloned()
        .chain(std::iter::repeat_n(
            MappingRow::default(),
            EMPTY_MAPPING_ROWS,
        ))
        .collect();
    let page = TokenPage {
        chrome: signed.chrome("share-tokens"),
        refresh: token.status == ShareTokenStatus::Pending,
        can_redeem: redeemable && can_write,
        can_expire: view.direction == Direction::Outbound.as_str()
            && token.status == ShareTokenStatus::Created
            && can_write,
        token: view,
        templates: templates_list,
        template_fields,
        mapping_rows,
        mapping_problems,
        mappings,
        preview,
        error,
    };
    Ok((page, status))
}

async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let id = ShareTokenId::parse(&id).map_err(|_| PageError::NotFound)?;
    let form = TokenForm::parse(query);
    let (page, status) = token_page(
        &state,
        &signed,
        &id,
        form.template.as_deref(),
        &form.rows,
        None,
    )
    .await?;
    Ok(web::html(status, page.render()))
}

/// Redeems into a new inquiry of the chosen template, with the field mappings of the preview;
/// the token's page then follows it.
async fn redeem(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let form = TokenForm::parse(pairs);
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(CONNECT_WRITERS)?;
    let id = ShareTokenId::parse(&id).map_err(|_| PageError::NotFound)?;
    let template = form.template.clone().unwrap_or_default();
    let template_fields = published_fields(&state, &signed.scope(), &template).await?;
    let field_mappings = match field_mappings(&form.rows, &template_fields) {
        Ok(valid) => valid,
        // The page again with the editor and its problems; the preview is not run again.
        Err(_) => {
            let (page, status) =
                token_page(&state, &signed, &id, Some(&template), &form.rows, None).await?;
            return Ok(web::html(status, page.render()));
        }
    };
    let redeemed = redemption::redeem(
        &state,
        &signed.scope(),
        &id,
        Redeem {
            destination_id: None,
            inquiry_template_id: Some(template),
            field_mappings,
        },
        &signed.actor(),
    )
    .await;
    match redeemed {
        Ok(_) => Ok(super::done(
            &state,
            &format!("{PATH}/{id}"),
            Notice::RedemptionStarted,
        )),
        Err(e) if super::explainable(&e) => {
            let (page, _) = token_page(&state, &signed, &id, None, &[], Some(reason(&e))).await?;
            Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Expires the token once confirmed: the destination can no longer preview or redeem it.
async fn expire(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<super::ConfirmedForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(CONNECT_WRITERS)?;
    let id = ShareTokenId::parse(&id).map_err(|_| PageError::NotFound)?;
    if !form.confirmed() {
        // Asked only about a token of this organization and environment (404 otherwise).
        service::get(&state, &signed.scope(), &id, false, &signed.actor()).await?;
        return Ok(super::confirmation(
            &signed,
            Confirmation {
                question: format!("Expire share token {id}?"),
                consequence: "The partner can no longer preview or redeem it. This cannot be \
                              undone: to share again, create a new token.",
                action: format!("{PATH}/{id}/expire"),
                fields: vec![],
                button: "Expire this token",
                cancel: format!("{PATH}/{id}"),
                section: "share-tokens",
            },
        ));
    }
    match service::expire(&state, &signed.scope(), &id, &signed.actor()).await {
        Ok(_) => Ok(super::done(
            &state,
            &format!("{PATH}/{id}"),
            Notice::ShareTokenExpired,
        )),
        Err(e) if super::explainable(&e) => {
            let (page, _) = token_page(&state, &signed, &id, None, &[], Some(reason(&e))).await?;
            Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
        }
        Err(e) => Err(e.into()),
    }
}
