//! Inquiries: the list with filters, and one inquiry's page — fields (with their provenance
//! when copied through Connect), what is missing, files, verifications with their checks,
//! reports with their matches, the event timeline — and the reviewer's actions. Opening an
//! inquiry's page is written to the audit log.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use idshare_domain::{
    id::{InquiryId, InquiryTemplateId},
    inquiry::{InquiryAction, InquiryStatus},
    retention::RetentionSource,
    time_format::{format_timestamp, parse_date},
};
use idshare_store::{
    Cursor, audit, checks,
    events::{self, EventFilter},
    inquiries::{self, InquiryFilter, Search},
    inquiry_search,
    sessions::SessionKind,
    users::Role,
};
use serde::Deserialize;
use serde_json::Value;

use super::{Chrome, Confirmation, Notice, PageError, Signed};
use crate::{state::AppState, web};
use idshare_service::{self as service, ServiceError, render};

const PATH: &str = "/dashboard/inquiries";
/// Who may decide inquiries (approve, decline, review, expire, send a link).
const DECIDERS: &[Role] = &[Role::Admin, Role::Reviewer];
/// Who may redact.
const REDACTORS: &[Role] = &[Role::Admin];
const PAGE_SIZE: u32 = 25;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(list))
        .route("/dashboard/inquiries/{id}", get(show))
        .route(
            "/dashboard/inquiries/{id}/one-time-link",
            post(one_time_link),
        )
        .route("/dashboard/inquiries/{id}/redact", post(redact))
        .route(
            "/dashboard/inquiries/{id}/reports/{report}/dismiss",
            post(dismiss),
        )
        .route("/dashboard/inquiries/{id}/{action}", post(act))
}

#[derive(Debug)]
struct Row {
    id: String,
    status: &'static str,
    reference_id: Option<String>,
    template: Option<String>,
    created_at: String,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/inquiries.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    query: ListQuery,
    statuses: Vec<&'static str>,
    paging: super::Paging,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    /// A reference id, a name (or one word of it) or an email address.
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    reference: String,
    /// YYYY-MM-DD, inclusive.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: String,
    #[serde(default)]
    after: String,
}

impl ListQuery {
    /// The filter, or what is wrong with the form.
    fn filter(&self) -> Result<InquiryFilter, String> {
        let date = |raw: &str, what: &str| {
            if raw.trim().is_empty() {
                return Ok(None);
            }
            parse_date(raw.trim())
                .map(Some)
                .ok_or_else(|| format!("The {what} date must be a date (YYYY-MM-DD)."))
        };
        let from = date(&self.from, "from")?;
        let to = date(&self.to, "to")?;
        Ok(InquiryFilter {
            search: None,
            status: (!self.status.is_empty())
                .then(|| self.status.parse::<InquiryStatus>())
                .transpose()
                .map_err(|e| e.to_string())?,
            reference_id: (!self.reference.trim().is_empty())
                .then(|| self.reference.trim().to_owned()),
            template_id: (!self.template.trim().is_empty())
                .then(|| InquiryTemplateId::parse(self.template.trim()))
                .transpose()
                .map_err(|_| "The template must be an inquiry template id (itmpl_…).".to_owned())?,
            created_at_start: from.map(|d| d.midnight().assume_utc()),
            created_at_end: to.map(|d| (d.midnight() + time::Duration::days(1)).assume_utc()),
        })
    }
}

async fn list(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let (mut filter, error) = match query.filter() {
        Ok(filter) => (filter, None),
        Err(e) => (InquiryFilter::default(), Some(e)),
    };
    let scope = signed.scope();
    let mut tx = state.store().begin_read().await?;
    let searched = query.q.trim();
    if !searched.is_empty() {
        // Names and emails are sealed: the search index finds them by a keyed hash.
        let term = inquiry_search::term(&mut tx, state.store().crypto(), &scope, searched).await?;
        filter.search = Some(Search {
            reference_id: searched.to_owned(),
            term,
        });
    }
    let cursor = super::cursor(&query.before, &query.after);
    let page = inquiries::list(
        &mut tx,
        state.store().crypto(),
        &scope,
        &filter,
        cursor,
        PAGE_SIZE,
    )
    .await?
    .ok_or(PageError::NotFound)?;
    let paging = super::Paging::new(
        PATH,
        &[
            ("q", &query.q),
            ("status", &query.status),
            ("template", &query.template),
            ("reference", &query.reference),
            ("from", &query.from),
            ("to", &query.to),
        ],
        &page,
        |i| i.id.to_string(),
        "inquiries",
    );
    let rows = page
        .items
        .iter()
        .map(|i| Row {
            id: i.id.to_string(),
            status: i.status.as_str(),
            reference_id: i.reference_id.clone(),
            template: i.template_id.as_ref().map(ToString::to_string),
            created_at: format_timestamp(i.created_at),
        })
        .collect();
    let page = ListPage {
        chrome: signed.chrome("inquiries"),
        rows,
        query,
        statuses: InquiryStatus::ALL.iter().map(|s| s.as_str()).collect(),
        paging,
        error,
    };
    let status = if page.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(web::html(status, page.render()))
}

#[derive(Debug)]
struct FieldView {
    key: String,
    value: String,
    /// "copied from inq_… through cnst_…" when it came through Connect.
    provenance: Option<String>,
}

#[derive(Debug)]
struct CheckView {
    name: String,
    status: String,
    reasons: Vec<String>,
}

#[derive(Debug)]
struct VerificationView {
    kind: String,
    status: String,
    checks: Vec<CheckView>,
    origin: Option<String>,
}

#[derive(Debug)]
struct MatchView {
    name: String,
    list: String,
    score: String,
}

#[derive(Debug)]
struct ReportView {
    id: String,
    kind: String,
    status: String,
    has_match: bool,
    matches: Vec<MatchView>,
}

#[derive(Debug)]
struct FileView {
    kind: String,
    content_type: String,
    url: String,
    is_image: bool,
    provenance: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/inquiry.html")]
struct InquiryPage {
    chrome: Chrome,
    id: String,
    status: &'static str,
    reference_id: Option<String>,
    tags: Vec<String>,
    redacted: bool,
    /// When retention redacts it, in words; `None` when no redaction is scheduled.
    scheduled_redaction: Option<String>,
    fields: Vec<FieldView>,
    missing: Vec<String>,
    files: Vec<FileView>,
    verifications: Vec<VerificationView>,
    reports: Vec<ReportView>,
    events: Vec<(String, String)>,
    actions: Vec<(&'static str, &'static str)>,
    can_link: bool,
    can_redact: bool,
    can_dismiss: bool,
    link: Option<String>,
    error: Option<String>,
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn provenance(entry: Option<&Value>) -> Option<String> {
    let entry = entry?;
    let mut line = format!(
        "copied from {} through {}",
        text(&entry["source-inquiry"]),
        text(&entry["share-token"])
    );
    if let Some(field) = entry["source-field"].as_str() {
        line.push_str(&format!(" (source field {field})"));
    }
    line.push_str(&format!(" at {}", text(&entry["copied-at"])));
    Some(line)
}

/// The actions the status allows and the role may take.
fn actions(status: InquiryStatus, role: Role) -> Vec<(&'static str, &'static str)> {
    if !DECIDERS.contains(&role) {
        return vec![];
    }
    [
        (InquiryAction::Approve, "approve", "Approve"),
        (InquiryAction::Decline, "decline", "Decline"),
        (
            InquiryAction::MarkForReview,
            "mark-for-review",
            "Mark for review",
        ),
        (InquiryAction::Expire, "expire", "Expire"),
    ]
    .into_iter()
    .filter(|(action, _, _)| idshare_domain::inquiry::transition(status, *action).is_ok())
    .map(|(_, path, label)| (path, label))
    .collect()
}

async fn inquiry_page(
    state: &AppState,
    signed: &Signed,
    id: &InquiryId,
    link: Option<String>,
    error: Option<String>,
) -> Result<InquiryPage, PageError> {
    let scope = signed.scope();
    let view = service::inquiries::get(state, &scope, id).await?;
    let resource = serde_json::to_value(view.resource())
        .map_err(|e| PageError::Service(ServiceError::internal(e)))?;
    let attributes = &resource["attributes"];
    let provenance_of = |key: &str| provenance(attributes["field-provenance"].get(key));
    let fields = attributes["fields"]
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .map(|(key, field)| FieldView {
                    key: key.clone(),
                    value: text(&field["value"]),
                    provenance: provenance_of(key),
                })
                .collect()
        })
        .unwrap_or_default();
    let missing = view.missing.iter().map(|r| r.label.clone()).collect();
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_read().await?;
    let verifications = checks::verifications_of(&mut tx, crypto, &scope, id)
        .await?
        .iter()
        .map(|v| {
            let rendered = serde_json::to_value(render::verification(v)).unwrap_or_default();
            let a = &rendered["attributes"];
            let details = &a["details"];
            VerificationView {
                kind: v.verification_type.clone(),
                status: v.status.clone(),
                checks: a["checks"]
                    .as_array()
                    .map(|checks| {
                        checks
                            .iter()
                            .map(|c| CheckView {
                                name: text(&c["name"]),
                                status: text(&c["status"]),
                                reasons: c["reasons"]
                                    .as_array()
                                    .map(|r| r.iter().map(text).collect())
                                    .unwrap_or_default(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                origin: details["reused-from"]
                    .as_str()
                    .map(|v| format!("reused from {v}"))
                    .or_else(|| {
                        details["cloned-from"]
                            .as_str()
                            .map(|v| format!("cloned from {v}"))
                    }),
            }
        })
        .collect();
    let reports = checks::reports_of(&mut tx, crypto, &scope, id)
        .await?
        .iter()
        .map(|r| {
            let rendered = serde_json::to_value(render::report(r)).unwrap_or_default();
            ReportView {
                id: r.id.to_string(),
                kind: r.report_type.clone(),
                status: r.status.clone(),
                has_match: r.has_match,
                matches: rendered["attributes"]["matches"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .map(|m| MatchView {
                                name: text(&m["name"]),
                                list: text(&m["list"]),
                                score: text(&m["score"]),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let filter = EventFilter {
        name: None,
        object_id: Some(id.to_string()),
    };
    let events = events::list(&mut tx, crypto, &scope, &filter, Cursor::Start, 100)
        .await?
        .map(|page| {
            page.items
                .iter()
                .map(|e| (format_timestamp(e.created_at), e.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    drop(tx);
    let files = service::files::list(state, &scope, id)
        .await?
        .into_iter()
        .map(|f| {
            let kind = f.attributes.kind.clone();
            FileView {
                is_image: f.attributes.content_type.starts_with("image/"),
                provenance: provenance_of(&format!("file:{kind}")),
                kind,
                content_type: f.attributes.content_type.clone(),
                url: f.attributes.download_url.clone(),
            }
        })
        .collect();
    let scheduled_redaction = service::retention::scheduled_redaction(state, &scope, &view.inquiry)
        .await?
        .map(|(at, days, source)| {
            let setting = match source {
                RetentionSource::Template => "its template's retention period",
                RetentionSource::Organization => "the organization's default retention period",
            };
            format!(
                "Its personal data will be redacted automatically on {} ({} days after it ended: \
                 {setting}).",
                format_timestamp(at),
                days.get()
            )
        });
    let role = signed.role();
    let redacted = view.inquiry.redacted_at.is_some();
    let open = matches!(
        view.inquiry.status,
        InquiryStatus::Created | InquiryStatus::Pending | InquiryStatus::Expired
    );
    Ok(InquiryPage {
        chrome: signed.chrome("inquiries"),
        id: id.to_string(),
        status: view.inquiry.status.as_str(),
        reference_id: view.inquiry.reference_id.clone(),
        tags: view.inquiry.tags.clone(),
        redacted,
        scheduled_redaction,
        fields,
        missing,
        files,
        verifications,
        reports,
        events,
        actions: if redacted {
            vec![]
        } else {
            actions(view.inquiry.status, role)
        },
        can_link: !redacted && open && DECIDERS.contains(&role),
        can_redact: !redacted && REDACTORS.contains(&role),
        can_dismiss: DECIDERS.contains(&role),
        link,
        error,
    })
}

/// Shows an inquiry, and writes that its data was viewed to the audit log.
async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = InquiryId::parse(&id).map_err(|_| PageError::NotFound)?;
    let page = inquiry_page(&state, &signed, &id, None, None).await?;
    audit_entry(&state, &signed, "inquiry.viewed", &id).await?;
    Ok(web::html(StatusCode::OK, page.render()))
}

async fn audit_entry(
    state: &AppState,
    signed: &Signed,
    action: &str,
    id: &InquiryId,
) -> Result<(), PageError> {
    let mut tx = state.store().begin_write().await?;
    audit::record(
        &mut tx,
        &signed.scope(),
        &signed.session.user.id,
        action,
        ("inquiry", id.as_str()),
        state.now(),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A refused action shows the page again with the reason; anything else goes back to it,
/// saying what was done.
async fn after(
    state: &AppState,
    signed: &Signed,
    id: &InquiryId,
    result: Result<Notice, ServiceError>,
) -> Result<Response, PageError> {
    match result {
        Ok(notice) => Ok(super::done(state, &format!("{PATH}/{id}"), notice)),
        Err(e) if super::explainable(&e) => {
            let reason = e.to_string();
            let page = inquiry_page(state, signed, id, None, Some(reason)).await?;
            Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct ActionForm {
    csrf: String,
    #[serde(default)]
    comment: String,
    /// `yes` from the confirmation page of a decision that cannot be undone.
    #[serde(default)]
    confirm: String,
}

/// What the confirmation page of an action that cannot be undone says (verb, consequence,
/// button); `None` for one that can (marking for review).
fn final_decision(action: InquiryAction) -> Option<(&'static str, &'static str, &'static str)> {
    match action {
        InquiryAction::Approve => Some((
            "Approve",
            "The inquiry becomes approved and its webhooks and workflows run. A decision cannot \
             be undone.",
            "Approve this inquiry",
        )),
        InquiryAction::Decline => Some((
            "Decline",
            "The inquiry becomes declined and its webhooks and workflows run. A decision cannot \
             be undone.",
            "Decline this inquiry",
        )),
        InquiryAction::Expire => Some((
            "Expire",
            "The end user can no longer continue this inquiry. This cannot be undone.",
            "Expire this inquiry",
        )),
        _ => None,
    }
}

async fn act(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(DECIDERS)?;
    let id = InquiryId::parse(&id).map_err(|_| PageError::NotFound)?;
    let (action, notice) = match action.as_str() {
        "approve" => (InquiryAction::Approve, Notice::InquiryApproved),
        "decline" => (InquiryAction::Decline, Notice::InquiryDeclined),
        "mark-for-review" => (InquiryAction::MarkForReview, Notice::InquiryMarkedForReview),
        "expire" => (InquiryAction::Expire, Notice::InquiryExpired),
        _ => return Err(PageError::NotFound),
    };
    if let Some((verb, consequence, button)) = final_decision(action)
        && form.confirm != "yes"
    {
        // Asked only about an inquiry of this organization and environment (404 otherwise).
        let mut tx = state.store().begin_read().await?;
        inquiries::get(&mut tx, state.store().crypto(), &signed.scope(), &id)
            .await?
            .ok_or(PageError::NotFound)?;
        drop(tx);
        return Ok(super::confirmation(
            &signed,
            Confirmation {
                question: format!("{verb} inquiry {id}?"),
                consequence,
                action: format!("{PATH}/{id}/{}", verb.to_lowercase()),
                fields: vec![("comment", form.comment.clone())],
                button,
                cancel: format!("{PATH}/{id}"),
                section: "inquiries",
            },
        ));
    }
    let comment = Some(form.comment.trim().to_owned()).filter(|c| !c.is_empty());
    let result = service::inquiries::act(&state, &signed.scope(), &id, action, comment)
        .await
        .map(|_| ());
    if result.is_ok() {
        audit_entry(&state, &signed, action.event_name(), &id).await?;
    }
    after(&state, &signed, &id, result.map(|()| notice)).await
}

/// Makes a one-time link for the end user and shows it once.
async fn one_time_link(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<super::CsrfForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(DECIDERS)?;
    let id = InquiryId::parse(&id).map_err(|_| PageError::NotFound)?;
    match service::inquiries::open_for_end_user(
        &state,
        &signed.scope(),
        &id,
        SessionKind::OneTimeLink,
        None,
    )
    .await
    {
        Ok((_, token, _)) => {
            audit_entry(&state, &signed, "inquiry.one-time-link-created", &id).await?;
            let link = format!("{}/flow/link/{token}", state.config().public_url());
            let page = inquiry_page(&state, &signed, &id, Some(link), None).await?;
            Ok(web::html(StatusCode::OK, page.render()))
        }
        Err(e) => after(&state, &signed, &id, Err(e)).await,
    }
}

#[derive(Debug, Deserialize)]
struct RedactForm {
    csrf: String,
    #[serde(default)]
    confirm: String,
}

/// Redacts, once the user typed the inquiry's id to confirm.
async fn redact(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<RedactForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(REDACTORS)?;
    let id = InquiryId::parse(&id).map_err(|_| PageError::NotFound)?;
    if form.confirm.trim() != id.as_str() {
        let page = inquiry_page(
            &state,
            &signed,
            &id,
            None,
            Some("To redact, type the inquiry's id exactly; nothing was changed.".to_owned()),
        )
        .await?;
        return Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()));
    }
    let result = service::inquiries::redact(&state, &signed.scope(), &id)
        .await
        .map(|_| ());
    if result.is_ok() {
        audit_entry(&state, &signed, "inquiry.redacted", &id).await?;
    }
    after(
        &state,
        &signed,
        &id,
        result.map(|()| Notice::InquiryRedacted),
    )
    .await
}

#[derive(Debug, Deserialize)]
struct DismissForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

async fn dismiss(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, report)): Path<(String, String)>,
    Form(form): Form<DismissForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(DECIDERS)?;
    let id = InquiryId::parse(&id).map_err(|_| PageError::NotFound)?;
    let report = idshare_domain::id::ReportId::parse(&report).map_err(|_| PageError::NotFound)?;
    let result =
        service::reports::dismiss(&state, &signed.scope(), &report, None, form.reason.trim())
            .await
            .map(|_| ());
    after(
        &state,
        &signed,
        &id,
        result.map(|()| Notice::ReportDismissed),
    )
    .await
}
