//! How stored objects look on the wire (and in event payloads, which carry the same shape).

use idshare_domain::{template::TemplateDefinition, time_format::format_timestamp};
use idshare_store::{
    audit::AuditEntry,
    checks::{StoredReport, StoredVerification},
    events::Event,
    files::StoredFile,
    inquiries::Inquiry,
    templates::{Template, TemplateVersion},
};
use serde::Serialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::jsonapi::ResourceObject;

fn ts(t: Option<OffsetDateTime>) -> Option<String> {
    t.map(format_timestamp)
}

/// The sections of a template definition, as sent and as stored.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct DefinitionAttributes {
    #[schema(value_type = Vec<Object>)]
    pub field_schemas: Value,
    #[schema(value_type = Vec<Object>)]
    pub verifications: Value,
    #[schema(value_type = Vec<Object>)]
    pub reports: Value,
    #[schema(value_type = Object)]
    pub expiration: Value,
}

/// A field schema's type as Persona names it: `multi-choices`, and `file` for idshare's file
/// fields, whose own type (`government_id`, `selfie`, `document`) stays in `idshare-type` (an
/// extension).
fn persona_field_schemas(schemas: Value) -> Value {
    let Value::Array(items) = schemas else {
        return schemas;
    };
    let items = items
        .into_iter()
        .map(|mut item| {
            let own = item.get("type").and_then(Value::as_str).map(str::to_owned);
            let persona = match own.as_deref() {
                Some("multi_choices") => Some("multi-choices"),
                Some("government_id" | "selfie" | "document") => Some("file"),
                _ => None,
            };
            if let (Some(persona), Some(own), Value::Object(members)) = (persona, own, &mut item) {
                members.insert("type".to_owned(), json!(persona));
                if persona == "file" {
                    members.insert("idshare-type".to_owned(), json!(own));
                }
            }
            item
        })
        .collect();
    Value::Array(items)
}

impl DefinitionAttributes {
    fn from_json(definition: &Value) -> Self {
        let section = |key: &str, default: Value| definition.get(key).cloned().unwrap_or(default);
        Self {
            field_schemas: persona_field_schemas(section("field-schemas", json!([]))),
            verifications: section("verifications", json!([])),
            reports: section("reports", json!([])),
            expiration: section("expiration", json!({})),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct TemplateAttributes {
    pub name: String,
    /// Always `active` (templates are never deleted).
    pub status: &'static str,
    /// The definition of the published version.
    #[serde(flatten)]
    pub definition: DefinitionAttributes,
    pub created_at: String,
    pub updated_at: String,
}

pub fn template(
    template: &Template,
    published: Option<&TemplateVersion>,
) -> ResourceObject<TemplateAttributes> {
    ResourceObject::new(
        "inquiry-template",
        template.id.as_str(),
        TemplateAttributes {
            name: template.name.clone(),
            status: "active",
            definition: DefinitionAttributes::from_json(
                &published.map_or(Value::Null, TemplateVersion::definition_json),
            ),
            created_at: format_timestamp(template.created_at),
            updated_at: format_timestamp(template.updated_at),
        },
    )
    .relationship(
        "latest-published-version",
        template
            .published_version_id
            .as_ref()
            .map(|id| ("inquiry-template-version", id.as_str())),
    )
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct TemplateVersionAttributes {
    pub version_number: i64,
    /// `draft`, `published` or `superseded`.
    pub status: &'static str,
    #[serde(flatten)]
    pub definition: DefinitionAttributes,
    pub created_at: String,
    pub published_at: Option<String>,
}

pub fn version(version: &TemplateVersion) -> ResourceObject<TemplateVersionAttributes> {
    ResourceObject::new(
        "inquiry-template-version",
        version.id.as_str(),
        TemplateVersionAttributes {
            version_number: version.version_number,
            status: version.status.as_str(),
            definition: DefinitionAttributes::from_json(&version.definition_json()),
            created_at: format_timestamp(version.created_at),
            published_at: ts(version.published_at),
        },
    )
    .relationship(
        "inquiry-template",
        Some(("inquiry-template", version.template_id.as_str())),
    )
}

/// What idshare writes as every inquiry's `creator`: it records no creating user.
pub const INQUIRY_CREATOR: &str = "api";

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct InquiryAttributes {
    /// `created`, `pending`, `completed`, `failed`, `expired`, `needs_review`, `approved`, `declined`.
    pub status: &'static str,
    pub reference_id: Option<String>,
    pub note: Option<String>,
    /// Persona's risk signals: idshare computes none, so always `null`.
    #[schema(value_type = Option<Object>)]
    pub behaviors: Option<Value>,
    pub reviewer_comment: Option<String>,
    pub tags: Vec<String>,
    /// Always `api`: idshare does not record who created an inquiry.
    pub creator: &'static str,
    /// Persona's flow steps: idshare's flow has none, so always `null`.
    pub previous_step_name: Option<String>,
    /// Always `null` (see `previous-step-name`).
    pub next_step_name: Option<String>,
    /// Every field of the template: `{"<key>": {"type": "...", "value": ...}}`.
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// What the end user still has to provide: `[{kind, key, label, for-verification}]`.
    #[schema(value_type = Vec<Object>)]
    pub missing_requirements: Vec<Value>,
    /// Where copied values and files came from (Connect redemption):
    /// `{"<field or file:kind>": {share-token, source-inquiry, source-field?, copied-at}}`.
    #[schema(value_type = Object)]
    pub field_provenance: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub failed_at: Option<String>,
    pub expired_at: Option<String>,
    pub marked_for_review_at: Option<String>,
    pub decisioned_at: Option<String>,
    pub redacted_at: Option<String>,
    pub expires_at: Option<String>,
}

fn inferred_type(value: &idshare_domain::field::FieldValue) -> idshare_domain::field::FieldType {
    use idshare_domain::field::{FieldType as T, FieldValue as V};
    match value {
        V::String(_) => T::String,
        V::Date(_) => T::Date,
        V::Number(_) => T::Number,
        V::Boolean(_) => T::Boolean,
        V::Choices(_) => T::Choices,
        V::MultiChoices(_) => T::MultiChoices,
        V::Json(_) => T::Json,
        V::File(_) => T::Document,
    }
}

/// An inquiry; `related` adds the to-many relationships (verifications, reports, documents,
/// selfies) where the caller loaded them (API answers do; event payloads carry the to-one
/// relationships only).
pub fn inquiry<'a>(
    inquiry: &Inquiry,
    definition: Option<&TemplateDefinition>,
    missing: &[idshare_domain::requirements::Requirement],
    related: Option<&'a idshare_store::inquiries::Related>,
) -> ResourceObject<InquiryAttributes> {
    let mut fields = Map::new();
    if let Some(definition) = definition {
        for schema in &definition.field_schemas {
            let value = inquiry.data.fields.get(schema.key.as_str()).map_or_else(
                || json!({ "type": schema.field_type.as_str(), "value": null }),
                |v| v.to_typed_json(schema.field_type),
            );
            fields.insert(schema.key.as_str().to_owned(), value);
        }
    } else {
        // A clone has no template: its fields are what it holds, typed by their values.
        for (key, value) in &inquiry.data.fields {
            fields.insert(key.clone(), value.to_typed_json(inferred_type(value)));
        }
    }
    let resource = ResourceObject::new(
        "inquiry",
        inquiry.id.as_str(),
        InquiryAttributes {
            status: inquiry.status.as_str(),
            reference_id: inquiry.reference_id.clone(),
            note: inquiry.data.note.clone(),
            behaviors: None,
            reviewer_comment: inquiry.data.reviewer_comment.clone(),
            tags: inquiry.tags.clone(),
            creator: INQUIRY_CREATOR,
            previous_step_name: None,
            next_step_name: None,
            fields,
            missing_requirements: missing
                .iter()
                .filter_map(|r| serde_json::to_value(r).ok())
                .collect(),
            field_provenance: inquiry
                .data
                .provenance
                .iter()
                .filter_map(|(k, p)| Some((k.clone(), serde_json::to_value(p).ok()?)))
                .collect(),
            created_at: format_timestamp(inquiry.created_at),
            updated_at: format_timestamp(inquiry.updated_at),
            started_at: ts(inquiry.started_at),
            completed_at: ts(inquiry.completed_at),
            failed_at: ts(inquiry.failed_at),
            expired_at: ts(inquiry.expired_at),
            marked_for_review_at: ts(inquiry.marked_for_review_at),
            decisioned_at: ts(inquiry.decisioned_at),
            redacted_at: ts(inquiry.redacted_at),
            expires_at: ts(inquiry.expires_at),
        },
    )
    .relationship(
        "inquiry-template",
        inquiry
            .template_id
            .as_ref()
            .map(|id| ("inquiry-template", id.as_str())),
    )
    .relationship(
        "inquiry-template-version",
        inquiry
            .template_version_id
            .as_ref()
            .map(|id| ("inquiry-template-version", id.as_str())),
    )
    // Persona's accounts, legacy templates, reviewers and transactions: idshare has none.
    .relationship("account", None)
    .relationship("template", None)
    .relationship("reviewer", None)
    .relationship("transaction", None);
    match related {
        None => resource,
        Some(related) => {
            let typed = |prefix: &'static str, list: &'a [(String, String)]| {
                list.iter()
                    .map(move |(kind, id)| (format!("{prefix}{kind}"), id.as_str()))
            };
            resource
                .to_many(
                    "verifications",
                    typed("verification/", &related.verifications),
                )
                .to_many("reports", typed("report/", &related.reports))
                .to_many("documents", typed("document/", &related.documents))
                // A selfie is a file in idshare (there is no selfie object): typed `file`.
                .to_many(
                    "selfies",
                    related.selfies.iter().map(|(_, id)| ("file", id.as_str())),
                )
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct EventAttributes {
    /// e.g. `inquiry.approved`.
    pub name: String,
    /// Increases across the organization's events (gaps allowed): order deliveries by it.
    pub sequence: i64,
    pub created_at: String,
    /// `{data: <object as the API rendered it then>}`; once the object was redacted, only
    /// `{data: {type, id}}`.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Persona's additional context of some events: idshare adds none, so always `{}`.
    #[schema(value_type = Object)]
    pub context: Map<String, Value>,
}

pub fn event(event: &Event) -> ResourceObject<EventAttributes> {
    ResourceObject::new(
        "event",
        event.id.as_str(),
        EventAttributes {
            name: event.name.clone(),
            sequence: event.seq,
            created_at: format_timestamp(event.created_at),
            payload: event.payload.clone().unwrap_or_else(
                || json!({"data": {"type": event.object_type, "id": event.object_id}}),
            ),
            context: Map::new(),
        },
    )
    .relationship("object", Some((&event.object_type, &event.object_id)))
}

/// An event payload: `{data: <resource>}`.
pub fn payload<A: Serialize>(resource: &ResourceObject<A>) -> Value {
    json!({ "data": resource })
}

pub fn template_event_payload(t: &Template, published: Option<&TemplateVersion>) -> Value {
    payload(&template(t, published))
}

pub fn version_event_payload(v: &TemplateVersion) -> Value {
    payload(&version(v))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct VerificationAttributes {
    /// `passed`, `failed`, `requires_retry`, or `submitted` (undecided: needs review).
    pub status: String,
    /// e.g. `government-id`.
    pub verification_type: String,
    pub required: bool,
    /// The pipeline submission that produced it (1 for the first).
    pub submission: i64,
    /// `[{name, status, reasons, requirement, metadata}]`; empty once redacted.
    #[schema(value_type = Vec<Object>)]
    pub checks: Value,
    /// What the verification read or derived; empty once redacted.
    #[schema(value_type = Object)]
    pub details: Value,
    pub created_at: String,
    pub completed_at: Option<String>,
}

pub fn verification(v: &StoredVerification) -> ResourceObject<VerificationAttributes> {
    let result = v.result.clone().unwrap_or(Value::Null);
    ResourceObject::new(
        &format!("verification/{}", v.verification_type),
        v.id.as_str(),
        VerificationAttributes {
            status: v.status.clone(),
            verification_type: v.verification_type.clone(),
            required: v.required,
            submission: v.submission,
            checks: result.get("checks").cloned().unwrap_or_else(|| json!([])),
            details: result
                .get("attributes")
                .cloned()
                .unwrap_or_else(|| json!({})),
            created_at: format_timestamp(v.created_at),
            completed_at: ts(v.completed_at),
        },
    )
    .relationship("inquiry", Some(("inquiry", v.inquiry_id.as_str())))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ReportAttributes {
    /// `pending`, `ready` or `errored`.
    pub status: String,
    /// e.g. `watchlist`.
    pub report_type: String,
    /// True while a match is not dismissed.
    pub has_match: bool,
    pub submission: i64,
    /// `[{entity-id, list, kind, name, matched-name, score, birthdates, countries, programs}]`.
    #[schema(value_type = Vec<Object>)]
    pub matches: Value,
    /// `[{entity-id, reason, dismissed-at}]`.
    #[schema(value_type = Vec<Object>)]
    pub dismissed: Value,
    pub created_at: String,
    pub completed_at: Option<String>,
}

pub fn report(r: &StoredReport) -> ResourceObject<ReportAttributes> {
    let result = r.result.clone().unwrap_or(Value::Null);
    ResourceObject::new(
        &format!("report/{}", r.report_type),
        r.id.as_str(),
        ReportAttributes {
            status: r.status.clone(),
            report_type: r.report_type.clone(),
            has_match: r.has_match,
            submission: r.submission,
            matches: result.get("matches").cloned().unwrap_or_else(|| json!([])),
            dismissed: result
                .get("dismissed")
                .cloned()
                .unwrap_or_else(|| json!([])),
            created_at: format_timestamp(r.created_at),
            completed_at: ts(r.completed_at),
        },
    )
    .relationship("inquiry", Some(("inquiry", r.inquiry_id.as_str())))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct FileAttributes {
    /// `government-id-front`, `government-id-back`, `selfie` or `proof-of-address`.
    pub kind: String,
    /// Sniffed from the bytes.
    pub content_type: String,
    pub size: u64,
    pub created_at: String,
    /// A short-lived signed URL to download the file.
    pub download_url: String,
    pub download_url_expires_at: String,
}

pub fn file(
    f: &StoredFile,
    download_url: String,
    expires_at: OffsetDateTime,
) -> ResourceObject<FileAttributes> {
    ResourceObject::new(
        "file",
        f.id.as_str(),
        FileAttributes {
            kind: f.kind.as_str().to_owned(),
            content_type: f.content_type.clone(),
            size: f.size,
            created_at: format_timestamp(f.created_at),
            download_url,
            download_url_expires_at: format_timestamp(expires_at),
        },
    )
    .relationship("inquiry", Some(("inquiry", f.inquiry_id.as_str())))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ConnectionAttributes {
    /// `pending`, `active` or `inactive`.
    pub status: &'static str,
    pub destination_organization_id: String,
    pub source_organization_id: String,
    /// `outbound` when the caller is the source, `inbound` when it is the destination (an
    /// extension over Persona); a connection of an organization to itself is `outbound`.
    pub direction: &'static str,
    pub created_at: String,
    pub updated_at: String,
    /// When the destination last activated it.
    pub activated_at: Option<String>,
    /// When either side last deactivated it.
    pub deactivated_at: Option<String>,
}

/// A connection as the organization `viewer` (one of its ends) sees it.
pub fn connection(
    c: &idshare_store::connections::Connection,
    viewer: &idshare_domain::id::OrgId,
) -> ResourceObject<ConnectionAttributes> {
    use idshare_domain::connect::Side;
    let side = if &c.source_org_id == viewer {
        Side::Source
    } else {
        Side::Destination
    };
    ResourceObject::new(
        "connect/connection",
        c.id.as_str(),
        ConnectionAttributes {
            status: c.status.as_str(),
            destination_organization_id: c.destination_org_id.to_string(),
            source_organization_id: c.source_org_id.to_string(),
            direction: side.direction().as_str(),
            created_at: format_timestamp(c.created_at),
            updated_at: format_timestamp(c.updated_at),
            activated_at: ts(c.activated_at),
            deactivated_at: ts(c.deactivated_at),
        },
    )
    .relationship("creator", Some((&c.creator_type, &c.creator_id)))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ShareTokenAttributes {
    /// `created`, `pending`, `redeemed`, `expired` or `failed`.
    pub status: &'static str,
    /// `outbound` for the source's view, `inbound` for the destination's.
    pub direction: &'static str,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: String,
    pub pending_at: Option<String>,
    pub redeemed_at: Option<String>,
    pub failed_at: Option<String>,
    /// Persona's reason of a `failed` token: `source_redacted`, `import_failed` or
    /// `unrecoverable_error` (see `failure-detail`).
    pub failure_reason: Option<&'static str>,
    /// idshare's precise reason (an extension): `source-redacted`, `connection-inactive`,
    /// `destination-not-hydratable` or `internal-error`.
    pub failure_detail: Option<String>,
    /// Only when the destination retrieves the token with `peek-source-data=true`: which
    /// fields the source inquiry holds (`{"visibility": "presence", "value": true}`, never a
    /// value) and its verifications with their status. Absent when there is nothing to show
    /// (see `source-data-unavailable-reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub source_data: Option<Value>,
    /// Why a peek shows no `source-data` (an extension): `source-redacted` or
    /// `source-unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_data_unavailable_reason: Option<&'static str>,
}

/// Persona's `failure-reason` for idshare's precise one.
fn persona_failure_reason(reason: &str) -> &'static str {
    use idshare_domain::share_token::failure;
    match reason {
        failure::SOURCE_REDACTED => "source_redacted",
        failure::INTERNAL_ERROR => "unrecoverable_error",
        // The connection was deactivated, or the destination can no longer take the data.
        _ => "import_failed",
    }
}

/// What a peek adds to the token: the source-data envelope, or why there is none.
#[derive(Debug, Clone)]
pub enum Peek {
    Envelope(Value),
    Unavailable(&'static str),
}

/// A share token as the organization `viewer` (one of its ends) sees it, with `peek` only
/// when the destination asked for it.
pub fn share_token(
    t: &idshare_store::share_tokens::ShareToken,
    viewer: &idshare_domain::id::OrgId,
    peek: Option<Peek>,
) -> ResourceObject<ShareTokenAttributes> {
    use idshare_domain::connect::Side;
    let side = if &t.source_org_id == viewer {
        Side::Source
    } else {
        Side::Destination
    };
    let (source_data, source_data_unavailable_reason) = match peek {
        None => (None, None),
        Some(Peek::Envelope(envelope)) => (Some(envelope), None),
        Some(Peek::Unavailable(reason)) => (None, Some(reason)),
    };
    ResourceObject::new(
        "connect/share-token",
        t.id.as_str(),
        ShareTokenAttributes {
            status: t.status.as_str(),
            direction: side.direction().as_str(),
            created_at: format_timestamp(t.created_at),
            updated_at: format_timestamp(t.updated_at),
            expires_at: format_timestamp(t.expires_at),
            pending_at: ts(t.pending_at),
            redeemed_at: ts(t.redeemed_at),
            failed_at: ts(t.failed_at),
            failure_reason: t.failure_reason.as_deref().map(persona_failure_reason),
            failure_detail: t.failure_reason.clone(),
            source_data,
            source_data_unavailable_reason,
        },
    )
    .relationship(
        "connection",
        Some(("connect/connection", t.connection_id.as_str())),
    )
    .relationship("creator", Some((&t.creator_type, &t.creator_id)))
    .relationship("source", Some(("inquiry", t.source_inquiry_id.as_str())))
    .relationship(
        "destination",
        t.destination_inquiry_id
            .as_ref()
            .map(|id| ("inquiry", id.as_str())),
    )
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct WebhookAttributes {
    /// `enabled`, `disabled` or `archived`.
    pub status: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: String,
    /// Event names, or `*` for every event.
    pub enabled_events: Vec<String>,
    /// `kebab`, `camel` or `snake`: the keys of delivered payloads.
    pub api_key_inflection: &'static str,
    /// Attributes left out of delivered payloads.
    pub api_attributes_blocklist: Vec<String>,
    /// `idshare` (the default) or `persona`: deliveries in exactly Persona's shape, without
    /// idshare's extensions (an extension itself).
    pub idshare_shape: String,
    /// The signing secrets (`wbhsec_…`) with their expiry (`null`: the current one). Shown only
    /// in the answers to create and `rotate-secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<WebhookSecret>>,
    pub created_at: String,
    pub updated_at: String,
    pub archived_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct WebhookSecret {
    pub value: String,
    pub expires_at: Option<String>,
}

/// A webhook; `with_secrets` adds the signing secrets (create and rotation only).
pub fn webhook(
    w: &idshare_store::webhooks::Webhook,
    with_secrets: bool,
) -> ResourceObject<WebhookAttributes> {
    let secrets = with_secrets.then(|| {
        let mut secrets = vec![WebhookSecret {
            value: w.secret.clone(),
            expires_at: None,
        }];
        if let Some((previous, expires_at)) = &w.previous_secret {
            secrets.push(WebhookSecret {
                value: previous.clone(),
                expires_at: Some(format_timestamp(*expires_at)),
            });
        }
        secrets
    });
    ResourceObject::new(
        "webhook",
        w.id.as_str(),
        WebhookAttributes {
            status: w.status.clone(),
            name: w.name.clone(),
            description: w.description.clone(),
            url: w.url.clone(),
            enabled_events: w.enabled_events.clone(),
            api_key_inflection: w.api_key_inflection.as_str(),
            api_attributes_blocklist: w.api_attributes_blocklist.clone(),
            idshare_shape: w.shape.clone(),
            secrets,
            created_at: format_timestamp(w.created_at),
            updated_at: format_timestamp(w.updated_at),
            archived_at: ts(w.archived_at),
        },
    )
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct WebhookDeliveryAttributes {
    /// `pending` (being sent or waiting for a retry), `delivered` or `failed`.
    pub status: String,
    pub event_name: String,
    /// Attempts so far, across redeliveries.
    pub attempts_made: u32,
    pub first_attempted_at: Option<String>,
    pub last_attempted_at: Option<String>,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<String>,
    /// The receiver's HTTP status at the last attempt, if it answered.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

pub fn webhook_delivery(
    d: &idshare_store::webhooks::Delivery,
) -> ResourceObject<WebhookDeliveryAttributes> {
    ResourceObject::new(
        "webhook-delivery",
        d.id.as_str(),
        WebhookDeliveryAttributes {
            status: d.status.clone(),
            event_name: d.event_name.clone(),
            attempts_made: d.attempts_made,
            first_attempted_at: ts(d.first_attempted_at),
            last_attempted_at: ts(d.last_attempted_at),
            next_attempt_at: ts(d.next_attempt_at),
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            delivered_at: ts(d.delivered_at),
            created_at: format_timestamp(d.created_at),
            updated_at: format_timestamp(d.updated_at),
        },
    )
    .relationship("webhook", Some(("webhook", d.webhook_id.as_str())))
    .relationship("event", Some(("event", d.event_id.as_str())))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct WorkflowAttributes {
    pub name: String,
    /// `enabled` or `disabled`.
    pub status: String,
    /// The number of the published version, if any.
    pub published_version: Option<i64>,
    /// The number of the newest version.
    pub latest_version: Option<i64>,
    /// The published version's trigger event.
    pub trigger_event: Option<String>,
    /// Signs the workflow's `make-https-request` steps (`wflsec_…`); shown only when the
    /// workflow is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A workflow; `with_secret` adds its signing secret (creation only).
pub fn workflow(
    view: &crate::workflows::WorkflowView,
    with_secret: bool,
) -> ResourceObject<WorkflowAttributes> {
    let w = &view.workflow;
    let published = view.published();
    let latest = view.latest();
    ResourceObject::new(
        "workflow",
        w.id.as_str(),
        WorkflowAttributes {
            name: w.name.clone(),
            status: w.status.clone(),
            published_version: published.map(|v| v.number),
            latest_version: latest.map(|v| v.number),
            trigger_event: published.map(|v| v.trigger_event.clone()),
            secret: with_secret.then(|| w.secret.clone()),
            created_at: format_timestamp(w.created_at),
            updated_at: format_timestamp(w.updated_at),
        },
    )
    .relationship(
        "published-version",
        published.map(|v| ("workflow-version", v.id.as_str())),
    )
    .relationship(
        "latest-version",
        latest.map(|v| ("workflow-version", v.id.as_str())),
    )
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct WorkflowVersionAttributes {
    pub number: i64,
    /// `draft`, `published` or `superseded`.
    pub status: String,
    /// The definition, as validated (defaults written out). See docs/workflows.md.
    #[schema(value_type = Object)]
    pub definition: Value,
    pub trigger_event: String,
    pub created_at: String,
    pub published_at: Option<String>,
}

pub fn workflow_version(
    v: &idshare_store::workflows::Version,
) -> ResourceObject<WorkflowVersionAttributes> {
    ResourceObject::new(
        "workflow-version",
        v.id.as_str(),
        WorkflowVersionAttributes {
            number: v.number,
            status: v.status.clone(),
            definition: v.definition.clone(),
            trigger_event: v.trigger_event.clone(),
            created_at: format_timestamp(v.created_at),
            published_at: ts(v.published_at),
        },
    )
    .relationship("workflow", Some(("workflow", v.workflow_id.as_str())))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct WorkflowRunAttributes {
    /// `created`, `in_progress`, `completed` or `errored`.
    pub status: String,
    /// The name of the event that started it.
    pub event_name: String,
    /// One record per step reached, in order: `id`, `action`, `status` (`completed`,
    /// `skipped`, `errored`, or `pending` while waiting for a retry), `input`, `output`,
    /// `error`, `attempts`.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<Value>,
    /// Why the run errored.
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
}

pub fn workflow_run(r: &idshare_store::workflows::Run) -> ResourceObject<WorkflowRunAttributes> {
    ResourceObject::new(
        "workflow-run",
        r.id.as_str(),
        WorkflowRunAttributes {
            status: r.status.clone(),
            event_name: r.event_name.clone(),
            steps: r.steps.clone(),
            error: r.error.clone(),
            created_at: format_timestamp(r.created_at),
            updated_at: format_timestamp(r.updated_at),
            completed_at: ts(r.completed_at),
        },
    )
    .relationship("workflow", Some(("workflow", r.workflow_id.as_str())))
    .relationship(
        "workflow-version",
        Some(("workflow-version", r.version_id.as_str())),
    )
    .relationship("event", Some(("event", r.event_id.as_str())))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct AuditEntryAttributes {
    /// e.g. `inquiry.viewed`, `share-token.redeemed`, `webhook.created`.
    pub action: String,
    /// `user` (a dashboard user), `api-key` or `system` (the server on its own: expiries,
    /// retention, workflows, signed download links).
    pub actor_type: String,
    /// The user's or the key's id; null for the system.
    pub actor_id: Option<String>,
    pub object_type: String,
    pub object_id: String,
    /// The `Request-Id` of the HTTP request the action was made in; null for the server's own
    /// work.
    pub request_id: Option<String>,
    /// Where a sign-in came from; null for other actions.
    pub client_address: Option<String>,
    pub created_at: String,
}

pub fn audit_entry(entry: &AuditEntry) -> ResourceObject<AuditEntryAttributes> {
    ResourceObject::new(
        "audit-entry",
        entry.id.as_str(),
        AuditEntryAttributes {
            action: entry.action.clone(),
            actor_type: entry.actor.kind().to_owned(),
            actor_id: entry.actor.id().map(str::to_owned),
            object_type: entry.object_type.clone(),
            object_id: entry.object_id.clone(),
            request_id: entry.request_id.as_ref().map(ToString::to_string),
            client_address: entry.client_address.clone(),
            created_at: format_timestamp(entry.created_at),
        },
    )
}
