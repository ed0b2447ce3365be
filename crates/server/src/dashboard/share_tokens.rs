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

use super::{Chrome, Moment, PageError, Signed};
use crate::{state::AppState, web};
use idshare_service::{
    Creator, ServiceError,
    redemption::{self, Redeem},
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
    next: Option<String>,
    can_write: bool,
    connections: Vec<Choice>,
    error: Option<String>,
    inquiry_id: String,
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    direction: Option<String>,
    status: Option<String>,
    after: Option<String>,
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
    let cursor = match query.after.as_deref().filter(|a| !a.is_empty()) {
        Some(after) => Cursor::After(after),
        None => Cursor::Start,
    };
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
    let next = page.has_older.then(|| {
        let last = page
            .items
            .last()
            .map(|t| t.id.to_string())
            .unwrap_or_default();
        format!(
            "{PATH}?direction={}&status={}&after={last}",
            query.direction.as_deref().unwrap_or(""),
            query.status.as_deref().unwrap_or("")
        )
    });
    Ok(ListPage {
        chrome: signed.chrome("share-tokens"),
        tokens,
        directions: choices(&["outbound", "inbound"], query.direction.as_deref()),
        statuses: choices(
            &["created", "pending", "redeemed", "failed", "expired"],
            query.status.as_deref(),
        ),
        next,
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
        Ok(token) => Ok(web::see_other(&format!("{PATH}/{}", token.id), None)),
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
    preview: Option<PreviewView>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ShowQuery {
    template: Option<String>,
}

/// The token's page, with the preview for `template` when one is asked for; a refused preview
/// gives the page with the reason, and the refusal's status.
async fn token_page(
    state: &AppState,
    signed: &Signed,
    id: &ShareTokenId,
    template: Option<&str>,
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
            // The same service as the API's: over an active connection only, recorded in the
            // source's events, and counted against the token's limit of reads.
            match service::preview(state, &scope, id, template, &[], &signed.actor()).await {
                Ok((_, template_id, prediction)) => {
                    preview = Some(PreviewView::new(template_id.to_string(), &prediction));
                }
                Err(e) if !e.is_failure() => {
                    let (page, _) =
                        Box::pin(token_page(state, signed, id, None, Some(reason(&e)))).await?;
                    return Ok((page, crate::http::error::status_of(&e)));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let page = TokenPage {
        chrome: signed.chrome("share-tokens"),
        refresh: token.status == ShareTokenStatus::Pending,
        can_redeem: redeemable && can_write,
        can_expire: view.direction == Direction::Outbound.as_str()
            && token.status == ShareTokenStatus::Created
            && can_write,
        token: view,
        templates: templates_list,
        preview,
        error,
    };
    Ok((page, StatusCode::OK))
}

async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let id = ShareTokenId::parse(&id).map_err(|_| PageError::NotFound)?;
    let (page, status) = token_page(&state, &signed, &id, query.template.as_deref(), None).await?;
    Ok(web::html(status, page.render()))
}

#[derive(Debug, Deserialize)]
struct RedeemForm {
    csrf: String,
    template: String,
}

/// Redeems into a new inquiry of the chosen template; the token's page then follows it.
async fn redeem(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<RedeemForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(CONNECT_WRITERS)?;
    let id = ShareTokenId::parse(&id).map_err(|_| PageError::NotFound)?;
    let redeemed = redemption::redeem(
        &state,
        &signed.scope(),
        &id,
        Redeem {
            destination_id: None,
            inquiry_template_id: Some(form.template.clone()),
            field_mappings: vec![],
        },
        &signed.actor(),
    )
    .await;
    match redeemed {
        Ok(_) => Ok(web::see_other(&format!("{PATH}/{id}"), None)),
        Err(e) if super::explainable(&e) => {
            let (page, _) = token_page(&state, &signed, &id, None, Some(reason(&e))).await?;
            Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
        }
        Err(e) => Err(e.into()),
    }
}

async fn expire(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<super::CsrfForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(CONNECT_WRITERS)?;
    let id = ShareTokenId::parse(&id).map_err(|_| PageError::NotFound)?;
    match service::expire(&state, &signed.scope(), &id, &signed.actor()).await {
        Ok(_) => Ok(web::see_other(&format!("{PATH}/{id}"), None)),
        Err(e) if super::explainable(&e) => {
            let (page, _) = token_page(&state, &signed, &id, None, Some(reason(&e))).await?;
            Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
        }
        Err(e) => Err(e.into()),
    }
}
