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
    field::FieldValue,
    id::{InquiryId, InquiryTemplateId},
    inquiry::{InquiryAction, InquiryStatus},
    names::full_name,
    retention::RetentionSource,
    time_format::{format_exact, parse_date},
};
use idshare_store::{
    Cursor,
    audit::Principal,
    checks,
    events::{self, EventFilter},
    inquiries::{self, Inquiry, InquiryFilter, Search},
    inquiry_search,
    sessions::SessionKind,
    templates,
    users::{self, Role},
};
use serde::Deserialize;
use serde_json::Value;

use super::{Chrome, Confirmation, Moment, Notice, PageError, Signed};
use crate::{state::AppState, web};
use idshare_service::{self as service, ServiceError, render};

const PATH: &str = "/dashboard/inquiries";
/// Who may decide inquiries (approve, decline, review, expire, send a link).
const DECIDERS: &[Role] = &[Role::Admin, Role::Reviewer];
/// Who may redact.
const REDACTORS: &[Role] = &[Role::Admin];
const PAGE_SIZE: u32 = 25;
/// A field value a viewer does not see.
const HIDDEN: &str = "•••";

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
    /// The person's name (masked for viewers), when the inquiry has one.
    name: Option<String>,
    status: &'static str,
    reference_id: Option<String>,
    template: Option<TemplateLabel>,
    created_at: Moment,
}

/// A template an inquiry was made from, by name, linked by id.
#[derive(Debug)]
struct TemplateLabel {
    id: String,
    name: String,
}

impl TemplateLabel {
    fn new(
        id: &InquiryTemplateId,
        names: &std::collections::HashMap<InquiryTemplateId, String>,
    ) -> Self {
        Self {
            id: id.to_string(),
            name: names.get(id).cloned().unwrap_or_else(|| id.to_string()),
        }
    }
}

/// The person an inquiry is about, from its name fields, as the user may see it.
pub(super) fn person(inquiry: &Inquiry, signed: &Signed) -> Option<String> {
    let field = |key: &str| match inquiry.data.fields.get(key) {
        Some(FieldValue::String(value)) => Some(value.as_str()),
        _ => None,
    };
    full_name(field("name-first"), field("name-last")).map(|name| signed.person_name(name))
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
    let template_names = templates::names(&mut tx, &scope).await?;
    drop(tx);
    let now = state.now();
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
            name: person(i, &signed),
            status: i.status.as_str(),
            reference_id: i.reference_id.clone(),
            template: i
                .template_id
                .as_ref()
                .map(|t| TemplateLabel::new(t, &template_names)),
            created_at: Moment::new(i.created_at, now),
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

/// The last decision on an inquiry (approved, declined, marked for review, expired): who made
/// it, when, and the reviewer's comment.
#[derive(Debug)]
struct DecisionView {
    /// "Approved", "Declined", …
    what: &'static str,
    /// The user's email, the API key's name, or the workflow; `None` when the audit log has no
    /// entry for it (decisions made before actors were recorded).
    by: Option<String>,
    at: Moment,
    /// `None` when there is none, or the user may not read it (it may name the person).
    comment: Option<String>,
    comment_hidden: bool,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/inquiry.html")]
struct InquiryPage {
    chrome: Chrome,
    id: String,
    /// The person's name (masked for viewers), when the inquiry has one.
    name: Option<String>,
    template: Option<TemplateLabel>,
    created_at: Moment,
    decision: Option<DecisionView>,
    /// Whether field values and files are shown (not to viewers).
    shows_personal_data: bool,
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
    events: Vec<(Moment, String)>,
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
    let copied_at = entry["copied-at"]
        .as_str()
        .and_then(|at| idshare_domain::time_format::parse_timestamp(at).ok())
        .map_or_else(|| text(&entry["copied-at"]), format_exact);
    line.push_str(&format!(" at {copied_at}"));
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

/// The actions a reviewer takes on an inquiry (the decision block shows the last).
const DECISIONS: [InquiryAction; 4] = [
    InquiryAction::Approve,
    InquiryAction::Decline,
    InquiryAction::MarkForReview,
    InquiryAction::Expire,
];

/// What a decision's audit action is called on the page.
fn decision_label(action: &str) -> Option<&'static str> {
    DECISIONS
        .into_iter()
        .find(|a| a.event_name() == action)
        .map(|a| match a {
            InquiryAction::Approve => "Approved",
            InquiryAction::Decline => "Declined",
            InquiryAction::MarkForReview => "Marked for review",
            _ => "Expired",
        })
}

/// The last decision: from the audit log (who — a user, an API key or a workflow — and when),
/// else from the inquiry's own times.
async fn decision(
    tx: &mut idshare_store::Tx,
    signed: &Signed,
    inquiry: &Inquiry,
    now: time::OffsetDateTime,
) -> Result<Option<DecisionView>, PageError> {
    let scope = signed.scope();
    let entry = idshare_store::audit::latest(
        tx,
        &scope,
        inquiry.id.as_str(),
        &DECISIONS.map(|a| a.event_name()),
    )
    .await?;
    let by_user = entry.and_then(|e| decision_label(&e.action).map(|what| (what, e)));
    let (what, by, at) = match by_user {
        Some((what, entry)) => {
            let by = match &entry.actor {
                Principal::User(id) => users::list_in_org(tx, &scope.org_id)
                    .await?
                    .into_iter()
                    .find(|u| &u.id == id)
                    .map(|u| u.email),
                Principal::ApiKey(id) => Some(
                    idshare_store::api_keys::get(tx, &scope, id)
                        .await?
                        .map_or_else(
                            || format!("API key {id}"),
                            |key| format!("API key “{}”", key.name),
                        ),
                ),
                Principal::System => Some("a workflow".to_owned()),
            };
            (what, by, entry.created_at)
        }
        None => {
            let through_api = match inquiry.status {
                InquiryStatus::Approved => inquiry.decisioned_at.map(|at| ("Approved", at)),
                InquiryStatus::Declined => inquiry.decisioned_at.map(|at| ("Declined", at)),
                InquiryStatus::NeedsReview => inquiry
                    .marked_for_review_at
                    .map(|at| ("Marked for review", at)),
                _ => None,
            };
            match through_api {
                Some((what, at)) => (what, None, at),
                None => return Ok(None),
            }
        }
    };
    let comment = inquiry.data.reviewer_comment.clone();
    Ok(Some(DecisionView {
        what,
        by,
        at: Moment::new(at, now),
        comment_hidden: comment.is_some() && !signed.sees_personal_data(),
        comment: comment.filter(|_| signed.sees_personal_data()),
    }))
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
                    value: if signed.sees_personal_data() {
                        text(&field["value"])
                    } else {
                        HIDDEN.to_owned()
                    },
                    provenance: provenance_of(key),
                })
                .collect()
        })
        .unwrap_or_default();
    let missing = view.missing.iter().map(|r| r.label.clone()).collect();
    let crypto = state.store().crypto();
    let now = state.now();
    let mut tx = state.store().begin_read().await?;
    let decision = decision(&mut tx, signed, &view.inquiry, now).await?;
    let template = match &view.inquiry.template_id {
        Some(id) => Some(TemplateLabel::new(
            id,
            &templates::names(&mut tx, &scope).await?,
        )),
        None => None,
    };
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
                .map(|e| (Moment::new(e.created_at, now), e.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    drop(tx);
    let files = if signed.sees_personal_data() {
        service::files::list(state, &scope, id).await?
    } else {
        vec![]
    };
    let files = files
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
                format_exact(at),
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
        name: person(&view.inquiry, signed),
        template,
        created_at: Moment::new(view.inquiry.created_at, now),
        decision,
        shows_personal_data: signed.sees_personal_data(),
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
    service::audit::record_view(
        &state,
        &signed.scope(),
        &signed.actor(),
        "inquiry.viewed",
        ("inquiry", id.as_str()),
    )
    .await?;
    Ok(web::html(StatusCode::OK, page.render()))
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
    let result = service::inquiries::act(
        &state,
        &signed.scope(),
        &id,
        action,
        comment,
        &signed.actor(),
    )
    .await
    .map(|_| ());
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
        &signed.actor(),
    )
    .await
    {
        Ok((_, token, _)) => {
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
    let result = service::inquiries::redact(&state, &signed.scope(), &id, &signed.actor())
        .await
        .map(|_| ());
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
    let reason = form.reason.trim();
    let result = service::reports::dismiss(
        &state,
        &signed.scope(),
        &report,
        None,
        reason,
        &signed.actor(),
    )
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
