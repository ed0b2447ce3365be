//! Workflow definitions: a trigger (an event name and an optional condition) and a tree of steps,
//! validated on save, with conditions written in CEL.
//!
//! ```json
//! {
//!   "trigger": {"event": "inquiry.completed",
//!               "condition": "object.relationships['inquiry-template'].data.id == 'itmpl_…'"},
//!   "steps": [
//!     {"id": "share", "action": "create-share-token", "with": {"connection-id": "cxn_…"}},
//!     {"id": "route", "branches": [
//!       {"condition": "object.attributes.status == 'completed'",
//!        "steps": [{"id": "ok", "action": "approve-inquiry"}]},
//!       {"steps": [{"id": "rev", "action": "mark-inquiry-for-review"}]}
//!     ]}
//!   ]
//! }
//! ```
//! This module only reads, checks and writes definitions and evaluates conditions; running the
//! steps is the server's. It walks [`WorkflowDefinition::steps`]: an [`ActionStep`] runs when
//! [`ActionStep::runs`] says so, a [`BranchStep`] continues with the steps
//! [`BranchStep::select`] picks.

mod condition;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::PointedError;
use crate::field::FieldKey;
use crate::id::{ConnectionId, InquiryTemplateId};
use crate::webhook::{self, ALL_EVENTS, WebhookUrl, echo};
use crate::{share_token, tags};

pub use condition::{
    Budget, Condition, ConditionError, Exceeded, MAX_COMPREHENSION_NESTING, MAX_LITERAL_ITEMS,
};

/// The most steps a definition may hold, counting action and branch steps at every depth.
pub const MAX_STEPS: usize = 50;
/// How deep steps may nest: top-level steps are at depth 1, the steps of one of their
/// branches at depth 2, and so on.
pub const MAX_DEPTH: usize = 5;
/// The longest condition, in characters.
pub const MAX_CONDITION_CHARS: usize = 2000;
/// The longest step id, in characters.
const MAX_STEP_ID_CHARS: usize = 63;
/// The longest reviewer comment (as the inquiry API allows).
const MAX_COMMENT_CHARS: usize = 10_000;
/// The longest `reference-id` (as the inquiry API allows).
const MAX_REFERENCE_ID_CHARS: usize = 255;
/// Events whose name starts with this cannot trigger a workflow: a workflow triggered by runs
/// would trigger itself without end.
const WORKFLOW_RUN_EVENTS: &str = "workflow-run.";

/// A validated workflow definition. Built only by [`WorkflowDefinition::parse`]; serializes back
/// to the JSON it was read from, with defaults written out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowDefinition {
    trigger: Trigger,
    steps: Vec<Step>,
}

/// What starts a run: an event of this name whose condition (if any) holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trigger {
    pub event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

/// One step of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Step {
    Action(ActionStep),
    Branch(BranchStep),
}

/// A step that does one thing, unless its condition is false (then it is skipped).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionStep {
    pub id: String,
    /// Written as `"action"` and `"with"`.
    #[serde(flatten)]
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

/// A step that continues with the steps of the first branch whose condition holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BranchStep {
    pub id: String,
    pub branches: Vec<Branch>,
}

/// One route of a [`BranchStep`]. Without a condition it is the catch-all, always last.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Branch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    pub steps: Vec<Step>,
}

string_enum! {
    /// The names of the actions a step can take.
    pub enum ActionKind ("workflow action", all: slice) {
        CreateShareToken = "create-share-token",
        RedeemShareToken = "redeem-share-token",
        ApproveInquiry = "approve-inquiry",
        DeclineInquiry = "decline-inquiry",
        MarkInquiryForReview = "mark-inquiry-for-review",
        AddTag = "add-tag",
        MakeHttpsRequest = "make-https-request",
        CreateInquiry = "create-inquiry",
    }
}

impl ActionKind {
    /// The parameters `with` may hold.
    fn parameters(self) -> &'static [&'static str] {
        match self {
            Self::CreateShareToken => &["connection-id", "expires-in-seconds"],
            Self::RedeemShareToken => &["inquiry-template-id", "field-mappings"],
            Self::ApproveInquiry | Self::DeclineInquiry | Self::MarkInquiryForReview => {
                &["comment"]
            }
            Self::AddTag => &["tag"],
            Self::MakeHttpsRequest => &["url", "method", "timeout-seconds", "max-attempts"],
            Self::CreateInquiry => &["inquiry-template-id", "reference-id"],
        }
    }

    /// Why this action cannot follow a trigger on `event`, or `None` when it can: the actions
    /// that act on the triggering object need an event about an object of the right type.
    fn trigger_mismatch(self, event: &str) -> Option<String> {
        match self {
            Self::CreateShareToken
            | Self::ApproveInquiry
            | Self::DeclineInquiry
            | Self::MarkInquiryForReview
            | Self::AddTag
                if !event.starts_with("inquiry.") =>
            {
                Some(format!(
                    "`{self}` acts on the inquiry of the triggering event, and `{event}` is not \
                     an inquiry event: trigger on an `inquiry.…` event"
                ))
            }
            Self::RedeemShareToken if !event.starts_with("connect/share-token.inbound-") => {
                Some(format!(
                    "`{self}` redeems the share token of the triggering event, and `{event}` is \
                     not an inbound share token event: trigger on \
                     `connect/share-token.inbound-created`"
                ))
            }
            _ => None,
        }
    }
}

/// An action with its validated parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Shares the triggering inquiry over the connection (the token's lifetime defaults to that
    /// of [`share_token::ttl`]).
    CreateShareToken {
        connection_id: ConnectionId,
        expires_in_seconds: Option<i64>,
    },
    /// Redeems the triggering share token into a new inquiry of the template.
    RedeemShareToken {
        inquiry_template_id: InquiryTemplateId,
        field_mappings: Vec<FieldMapping>,
    },
    /// Approves the triggering inquiry.
    ApproveInquiry { comment: Option<String> },
    /// Declines the triggering inquiry.
    DeclineInquiry { comment: Option<String> },
    /// Marks the triggering inquiry for review.
    MarkInquiryForReview { comment: Option<String> },
    /// Tags the triggering inquiry (normalised like any tag).
    AddTag { tag: String },
    /// Sends the triggering event's envelope to a URL, signed like a webhook delivery with the
    /// workflow's own secret.
    MakeHttpsRequest(HttpsRequest),
    /// Creates an inquiry from the template's published version.
    CreateInquiry {
        inquiry_template_id: InquiryTemplateId,
        reference_id: Option<String>,
    },
}

/// The parameters of a `make-https-request` step, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsRequest {
    pub url: WebhookUrl,
    pub method: HttpMethod,
    /// 1..=30; 5 when left out.
    pub timeout_seconds: u32,
    /// 1..=8 (the first attempt included); 3 when left out.
    pub max_attempts: u32,
}

const DEFAULT_TIMEOUT_SECONDS: u32 = 5;
const DEFAULT_MAX_ATTEMPTS: u32 = 3;

string_enum! {
    /// The methods a `make-https-request` step may use.
    pub enum HttpMethod ("HTTP method", all: slice) {
        Post = "POST",
        Put = "PUT",
        Patch = "PATCH",
    }
}

/// A source field copied under another name when a share token is redeemed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FieldMapping {
    pub source_field_name: FieldKey,
    pub destination_field_name: FieldKey,
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Self::CreateShareToken { .. } => ActionKind::CreateShareToken,
            Self::RedeemShareToken { .. } => ActionKind::RedeemShareToken,
            Self::ApproveInquiry { .. } => ActionKind::ApproveInquiry,
            Self::DeclineInquiry { .. } => ActionKind::DeclineInquiry,
            Self::MarkInquiryForReview { .. } => ActionKind::MarkInquiryForReview,
            Self::AddTag { .. } => ActionKind::AddTag,
            Self::MakeHttpsRequest(_) => ActionKind::MakeHttpsRequest,
            Self::CreateInquiry { .. } => ActionKind::CreateInquiry,
        }
    }

    /// The `with` object: the parameters in their JSON form, optional ones only when set.
    pub fn parameters(&self) -> Map<String, Value> {
        let mut with = Map::new();
        let mut put = |key: &str, value: Value| {
            with.insert(key.to_owned(), value);
        };
        match self {
            Self::CreateShareToken {
                connection_id,
                expires_in_seconds,
            } => {
                put("connection-id", connection_id.as_str().into());
                if let Some(seconds) = expires_in_seconds {
                    put("expires-in-seconds", (*seconds).into());
                }
            }
            Self::RedeemShareToken {
                inquiry_template_id,
                field_mappings,
            } => {
                put("inquiry-template-id", inquiry_template_id.as_str().into());
                if !field_mappings.is_empty() {
                    put("field-mappings", serde_json::json!(field_mappings));
                }
            }
            Self::ApproveInquiry { comment }
            | Self::DeclineInquiry { comment }
            | Self::MarkInquiryForReview { comment } => {
                if let Some(comment) = comment {
                    put("comment", comment.as_str().into());
                }
            }
            Self::AddTag { tag } => put("tag", tag.as_str().into()),
            Self::MakeHttpsRequest(request) => {
                put("url", request.url.as_str().into());
                put("method", request.method.as_str().into());
                put("timeout-seconds", request.timeout_seconds.into());
                put("max-attempts", request.max_attempts.into());
            }
            Self::CreateInquiry {
                inquiry_template_id,
                reference_id,
            } => {
                put("inquiry-template-id", inquiry_template_id.as_str().into());
                if let Some(reference_id) = reference_id {
                    put("reference-id", reference_id.as_str().into());
                }
            }
        }
        with
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let with = self.parameters();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("action", &self.kind())?;
        if !with.is_empty() {
            map.serialize_entry("with", &with)?;
        }
        map.end()
    }
}

/// `true` without a condition, else the condition's value.
fn holds(condition: Option<&Condition>, context: &Value) -> Result<bool, ConditionError> {
    condition.map_or(Ok(true), |c| c.evaluate(context))
}

impl WorkflowDefinition {
    /// Reads and checks a definition, reporting every problem found, each with a JSON pointer
    /// relative to the definition (`/steps/1/branches/0/condition`).
    pub fn parse(value: &Value) -> Result<Self, Vec<PointedError>> {
        let mut reader = Reader::default();
        let definition = reader.definition(value);
        if reader.step_count > MAX_STEPS {
            reader.error(
                "/steps",
                format!(
                    "a workflow has at most {MAX_STEPS} steps (counting those inside branches); \
                     this one has {}",
                    reader.step_count
                ),
            );
        }
        match definition {
            Some(definition) if reader.errors.is_empty() => Ok(definition),
            // Every part that is not read records why, so the list is never empty here.
            _ => Err(reader.errors),
        }
    }

    pub fn trigger(&self) -> &Trigger {
        &self.trigger
    }

    /// The top-level steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
}

impl Trigger {
    /// Whether an event named `event_name`, with `context` for the condition, starts a run.
    pub fn fires(&self, event_name: &str, context: &Value) -> Result<bool, ConditionError> {
        if event_name != self.event {
            return Ok(false);
        }
        holds(self.condition.as_ref(), context)
    }
}

impl Step {
    pub fn id(&self) -> &str {
        match self {
            Self::Action(step) => &step.id,
            Self::Branch(step) => &step.id,
        }
    }
}

impl ActionStep {
    /// Whether the step runs (`false`: it is skipped).
    pub fn runs(&self, context: &Value) -> Result<bool, ConditionError> {
        holds(self.condition.as_ref(), context)
    }
}

impl BranchStep {
    /// The index of the first branch whose condition holds (a branch without one always
    /// does), or `None` when none does. Conditions are evaluated in order and no further than
    /// needed.
    pub fn route(&self, context: &Value) -> Result<Option<usize>, ConditionError> {
        for (index, branch) in self.branches.iter().enumerate() {
            if holds(branch.condition.as_ref(), context)? {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }
}

/// Reads a definition, collecting errors instead of stopping at the first.
///
/// Each reading function returns `None` only after recording at least one error.
#[derive(Default)]
struct Reader {
    errors: Vec<PointedError>,
    step_count: usize,
    /// Every step id read so far, with the pointer of its step.
    ids: Vec<(String, String)>,
}

impl Reader {
    fn error(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.errors.push(PointedError {
            pointer: pointer.into(),
            message: message.into(),
        });
    }

    /// `value` as an object whose members are all among `allowed`; unknown members are
    /// reported (one error each) but do not stop the reading of the others.
    fn object<'v>(
        &mut self,
        value: &'v Value,
        at: &str,
        what: &str,
        allowed: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Some(map) = value.as_object() else {
            self.error(at, format!("{what} must be an object"));
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.error(
                    format!("{at}/{}", escape(key)),
                    format!(
                        "`{}` is not a member of {what} (members: {})",
                        echo(key),
                        allowed.join(", ")
                    ),
                );
            }
        }
        Some(map)
    }

    /// The member `key` of `map`, recording its absence.
    fn required<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        key: &str,
        at: &str,
    ) -> Option<&'v Value> {
        let value = map.get(key);
        if value.is_none() {
            self.error(at, format!("`{key}` is required"));
        }
        value
    }

    fn string<'v>(&mut self, value: &'v Value, at: &str) -> Option<&'v str> {
        let s = value.as_str();
        if s.is_none() {
            self.error(at, "must be a string");
        }
        s
    }

    /// A whole number within `range`.
    fn integer(
        &mut self,
        value: &Value,
        at: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        match value.as_i64() {
            Some(n) if range.contains(&n) => Some(n),
            _ => {
                self.error(
                    at,
                    format!(
                        "must be a whole number between {} and {}",
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }

    /// A string of at most `max` characters, with no control characters but line breaks and
    /// tabs.
    fn text(&mut self, value: &Value, at: &str, max: usize) -> Option<String> {
        let s = self.string(value, at)?;
        if s.chars().count() > max {
            self.error(at, format!("must be at most {max} characters"));
            return None;
        }
        if s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            self.error(at, "must not contain control characters");
            return None;
        }
        Some(s.to_owned())
    }

    fn condition(&mut self, value: &Value, at: &str) -> Option<Condition> {
        let source = self.string(value, at)?;
        if source.trim().is_empty() {
            self.error(
                at,
                "a condition must not be blank; leave it out to always hold",
            );
            return None;
        }
        if source.chars().count() > MAX_CONDITION_CHARS {
            self.error(
                at,
                format!("a condition is at most {MAX_CONDITION_CHARS} characters"),
            );
            return None;
        }
        match Condition::compile(source) {
            Ok(condition) => Some(condition),
            Err(message) => {
                self.error(at, message);
                None
            }
        }
    }

    fn optional_condition(
        &mut self,
        map: &Map<String, Value>,
        at: &str,
    ) -> Option<Option<Condition>> {
        match map.get("condition") {
            None => Some(None),
            Some(value) => self.condition(value, &format!("{at}/condition")).map(Some),
        }
    }

    fn definition(&mut self, value: &Value) -> Option<WorkflowDefinition> {
        let map = self.object(value, "", "a workflow definition", &["trigger", "steps"])?;
        let trigger = self
            .required(map, "trigger", "")
            .and_then(|t| self.trigger(t));
        let steps = self.required(map, "steps", "").and_then(|steps| {
            let steps = self.steps(steps, "/steps", 1)?;
            if steps.is_empty() {
                self.error("/steps", "a workflow needs at least one step");
                return None;
            }
            Some(steps)
        });
        let (trigger, steps) = (trigger?, steps?);
        self.check_actions_fit(trigger.event, &steps, "/steps");
        Some(WorkflowDefinition { trigger, steps })
    }

    fn trigger(&mut self, value: &Value) -> Option<Trigger> {
        let map = self.object(value, "/trigger", "a trigger", &["event", "condition"])?;
        let event = self.required(map, "event", "/trigger").and_then(|event| {
            let name = self.string(event, "/trigger/event")?;
            let message = if name == ALL_EVENTS {
                format!("a trigger names one event; `{ALL_EVENTS}` is for webhooks")
            } else if name.starts_with(WORKFLOW_RUN_EVENTS) {
                "workflow-run events cannot trigger a workflow (a workflow could trigger itself \
                 without end)"
                    .to_owned()
            } else if let Some(known) = webhook::known_event(name) {
                return Some(known);
            } else {
                format!(
                    "`{}` is not an event name; use one of: {}",
                    echo(name),
                    webhook::SUBSCRIBABLE_EVENTS
                        .iter()
                        .filter(|e| !e.starts_with(WORKFLOW_RUN_EVENTS))
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            self.error("/trigger/event", message);
            None
        });
        let condition = self.optional_condition(map, "/trigger");
        Some(Trigger {
            event: event?,
            condition: condition?,
        })
    }

    /// A list of steps at `depth` (1 for the top level). Every item is read, even after one
    /// fails, so that all errors are reported.
    fn steps(&mut self, value: &Value, at: &str, depth: usize) -> Option<Vec<Step>> {
        let Some(items) = value.as_array() else {
            self.error(at, "must be a list of steps");
            return None;
        };
        let steps: Vec<Option<Step>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.step(item, &format!("{at}/{i}"), depth))
            .collect();
        steps.into_iter().collect()
    }

    fn step(&mut self, value: &Value, at: &str, depth: usize) -> Option<Step> {
        self.step_count += 1;
        if depth > MAX_DEPTH {
            self.error(
                at,
                format!("steps nest at most {MAX_DEPTH} deep (branches inside branches)"),
            );
            return None;
        }
        let Some(map) = value.as_object() else {
            self.error(at, "a step must be an object");
            return None;
        };
        let id = self.step_id(map, at);
        match (map.contains_key("action"), map.contains_key("branches")) {
            (true, true) => {
                self.error(
                    at,
                    "a step has either `action` (an action step) or `branches` (a branch step), \
                     not both",
                );
                None
            }
            (false, false) => {
                self.error(
                    at,
                    "a step needs `action` (an action step) or `branches` (a branch step)",
                );
                None
            }
            (true, false) => self.action_step(value, at, id),
            (false, true) => self.branch_step(value, at, depth, id),
        }
    }

    fn step_id(&mut self, map: &Map<String, Value>, at: &str) -> Option<String> {
        let id_at = format!("{at}/id");
        let id = self.required(map, "id", at)?;
        let id = self.string(id, &id_at)?;
        let well_formed = id.len() <= MAX_STEP_ID_CHARS
            && id
                .bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && b == b'-'))
            && !id.is_empty();
        if !well_formed {
            self.error(
                id_at,
                format!(
                    "`{}` is not a valid step id (expected 1 to {MAX_STEP_ID_CHARS} lowercase \
                     letters, digits and hyphens, not starting with a hyphen)",
                    echo(id)
                ),
            );
            return None;
        }
        if let Some((_, first)) = self.ids.iter().find(|(seen, _)| seen == id) {
            let message = format!("`{id}` is already the id of {first}");
            self.error(id_at, message);
            return None;
        }
        self.ids.push((id.to_owned(), at.to_owned()));
        Some(id.to_owned())
    }

    fn action_step(&mut self, value: &Value, at: &str, id: Option<String>) -> Option<Step> {
        let map = self.object(
            value,
            at,
            "an action step",
            &["id", "action", "with", "condition"],
        )?;
        let action_at = format!("{at}/action");
        let kind = map
            .get("action")
            .and_then(|name| self.string(name, &action_at))
            .and_then(|name| match name.parse::<ActionKind>() {
                Ok(kind) => Some(kind),
                Err(e) => {
                    self.error(&action_at, e.to_string());
                    None
                }
            });
        let with_at = format!("{at}/with");
        let empty = Value::Object(Map::new());
        let with = map.get("with").unwrap_or(&empty);
        let action = kind.and_then(|kind| self.action(kind, with, &with_at));
        let condition = self.optional_condition(map, at);
        Some(Step::Action(ActionStep {
            id: id?,
            action: action?,
            condition: condition?,
        }))
    }

    fn branch_step(
        &mut self,
        value: &Value,
        at: &str,
        depth: usize,
        id: Option<String>,
    ) -> Option<Step> {
        let map = self.object(value, at, "a branch step", &["id", "branches"])?;
        let branches_at = format!("{at}/branches");
        let Some(items) = map
            .get("branches")
            .and_then(Value::as_array)
            .filter(|b| !b.is_empty())
        else {
            self.error(branches_at, "must be a non-empty list of branches");
            return None;
        };
        let last = items.len() - 1;
        let branches: Vec<Option<Branch>> = items
            .iter()
            .enumerate()
            .map(|(j, item)| {
                let branch_at = format!("{branches_at}/{j}");
                let map = self.object(item, &branch_at, "a branch", &["condition", "steps"])?;
                let condition = self.optional_condition(map, &branch_at);
                if j != last && !map.contains_key("condition") {
                    self.error(
                        &branch_at,
                        "a branch without a condition is the catch-all and must come last",
                    );
                }
                let steps = self
                    .required(map, "steps", &branch_at)
                    .and_then(|steps| self.steps(steps, &format!("{branch_at}/steps"), depth + 1));
                Some(Branch {
                    condition: condition?,
                    steps: steps?,
                })
            })
            .collect();
        let branches = branches.into_iter().collect::<Option<Vec<_>>>()?;
        Some(Step::Branch(BranchStep { id: id?, branches }))
    }

    /// The parameters of an action from its `with` object (`at` points at `with`).
    fn action(&mut self, kind: ActionKind, with: &Value, at: &str) -> Option<Action> {
        let what = format!("the parameters of `{kind}`");
        let map = self.object(with, at, &what, kind.parameters())?;
        let param = |key: &str| (map.get(key), format!("{at}/{key}"));
        let comment = |reader: &mut Self| match param("comment") {
            (None, _) => Some(None),
            (Some(v), p) => reader.text(v, &p, MAX_COMMENT_CHARS).map(Some),
        };
        match kind {
            ActionKind::CreateShareToken => {
                let connection_id = self
                    .required(map, "connection-id", at)
                    .and_then(|v| self.id::<ConnectionId>(v, &param("connection-id").1));
                let expires = match param("expires-in-seconds") {
                    (None, _) => Some(None),
                    (Some(v), p) => self.ttl(v, &p).map(Some),
                };
                Some(Action::CreateShareToken {
                    connection_id: connection_id?,
                    expires_in_seconds: expires?,
                })
            }
            ActionKind::RedeemShareToken => {
                let template = self
                    .required(map, "inquiry-template-id", at)
                    .and_then(|v| self.id(v, &param("inquiry-template-id").1));
                let mappings = match param("field-mappings") {
                    (None, _) => Some(Vec::new()),
                    (Some(v), p) => self.field_mappings(v, &p),
                };
                Some(Action::RedeemShareToken {
                    inquiry_template_id: template?,
                    field_mappings: mappings?,
                })
            }
            ActionKind::ApproveInquiry => Some(Action::ApproveInquiry {
                comment: comment(self)?,
            }),
            ActionKind::DeclineInquiry => Some(Action::DeclineInquiry {
                comment: comment(self)?,
            }),
            ActionKind::MarkInquiryForReview => Some(Action::MarkInquiryForReview {
                comment: comment(self)?,
            }),
            ActionKind::AddTag => {
                let tag = self.required(map, "tag", at)?;
                let tag_at = param("tag").1;
                let tag = self.string(tag, &tag_at)?;
                match tags::validate_tags(&[tag.to_owned()]) {
                    Ok(mut normalised) => normalised.pop().map(|tag| Action::AddTag { tag }),
                    Err(message) => {
                        self.error(tag_at, message);
                        None
                    }
                }
            }
            ActionKind::MakeHttpsRequest => {
                let url = self.required(map, "url", at).and_then(|v| {
                    let url_at = param("url").1;
                    let s = self.string(v, &url_at)?;
                    match webhook::parse_webhook_url(s) {
                        Ok(url) => Some(url),
                        Err(e) => {
                            self.error(url_at, e.to_string());
                            None
                        }
                    }
                });
                let method = match param("method") {
                    (None, _) => Some(HttpMethod::Post),
                    (Some(v), p) => {
                        self.string(v, &p)
                            .and_then(|s| match s.parse::<HttpMethod>() {
                                Ok(method) => Some(method),
                                Err(e) => {
                                    self.error(p, e.to_string());
                                    None
                                }
                            })
                    }
                };
                let timeout = match param("timeout-seconds") {
                    (None, _) => Some(DEFAULT_TIMEOUT_SECONDS),
                    (Some(v), p) => self.integer(v, &p, 1..=30).map(small),
                };
                let attempts = match param("max-attempts") {
                    (None, _) => Some(DEFAULT_MAX_ATTEMPTS),
                    (Some(v), p) => self
                        .integer(v, &p, 1..=i64::from(webhook::MAX_ATTEMPTS))
                        .map(small),
                };
                Some(Action::MakeHttpsRequest(HttpsRequest {
                    url: url?,
                    method: method?,
                    timeout_seconds: timeout?,
                    max_attempts: attempts?,
                }))
            }
            ActionKind::CreateInquiry => {
                let template = self
                    .required(map, "inquiry-template-id", at)
                    .and_then(|v| self.id(v, &param("inquiry-template-id").1));
                let reference_id = match param("reference-id") {
                    (None, _) => Some(None),
                    (Some(v), p) => self.text(v, &p, MAX_REFERENCE_ID_CHARS).map(Some),
                };
                Some(Action::CreateInquiry {
                    inquiry_template_id: template?,
                    reference_id: reference_id?,
                })
            }
        }
    }

    fn id<T: std::str::FromStr<Err = crate::id::IdError>>(
        &mut self,
        value: &Value,
        at: &str,
    ) -> Option<T> {
        match self.string(value, at)?.parse() {
            Ok(id) => Some(id),
            Err(e) => {
                self.error(at, e.to_string());
                None
            }
        }
    }

    fn ttl(&mut self, value: &Value, at: &str) -> Option<i64> {
        let Some(seconds) = value.as_i64() else {
            self.error(at, "must be a whole number of seconds");
            return None;
        };
        match share_token::ttl(Some(seconds)) {
            Ok(_) => Some(seconds),
            Err(e) => {
                self.error(at, e.to_string());
                None
            }
        }
    }

    fn field_mappings(&mut self, value: &Value, at: &str) -> Option<Vec<FieldMapping>> {
        let Some(items) = value.as_array() else {
            self.error(
                at,
                "must be a list of {source-field-name, destination-field-name}",
            );
            return None;
        };
        let mut mappings: Vec<Option<FieldMapping>> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_at = format!("{at}/{i}");
            const MEMBERS: [&str; 2] = ["source-field-name", "destination-field-name"];
            let Some(map) = self.object(item, &item_at, "a field mapping", &MEMBERS) else {
                mappings.push(None);
                continue;
            };
            let [source, destination] = MEMBERS.map(|key| {
                let value = self.required(map, key, &item_at)?;
                let key_at = format!("{item_at}/{key}");
                match FieldKey::parse(self.string(value, &key_at)?) {
                    Ok(key) => Some(key),
                    Err(message) => {
                        self.error(key_at, message);
                        None
                    }
                }
            });
            if let Some(destination) = &destination
                && mappings
                    .iter()
                    .flatten()
                    .any(|m| &m.destination_field_name == destination)
            {
                self.error(
                    format!("{item_at}/destination-field-name"),
                    format!("`{destination}` is the destination of more than one mapping"),
                );
            }
            mappings.push(
                source
                    .zip(destination)
                    .map(|(source, destination)| FieldMapping {
                        source_field_name: source,
                        destination_field_name: destination,
                    }),
            );
        }
        mappings.into_iter().collect()
    }

    /// Reports the action steps (at any depth) that cannot follow a trigger on `event`.
    fn check_actions_fit(&mut self, event: &str, steps: &[Step], at: &str) {
        for (i, step) in steps.iter().enumerate() {
            let step_at = format!("{at}/{i}");
            match step {
                Step::Action(step) => {
                    if let Some(message) = step.action.kind().trigger_mismatch(event) {
                        self.error(format!("{step_at}/action"), message);
                    }
                }
                Step::Branch(step) => {
                    for (j, branch) in step.branches.iter().enumerate() {
                        self.check_actions_fit(
                            event,
                            &branch.steps,
                            &format!("{step_at}/branches/{j}/steps"),
                        );
                    }
                }
            }
        }
    }
}

/// A number already checked to lie within a small range.
fn small(n: i64) -> u32 {
    // Callers pass ranges within 1..=30, so the conversion cannot fail.
    u32::try_from(n).expect("checked to be within a small positive range")
}

/// JSON pointer escaping (RFC 6901) of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const CXN: &str = "cxn_123456789ABCDEFGHJKLMNPQ";
    const ITMPL: &str = "itmpl_123456789ABCDEFGHJKLMNPQ";

    fn example() -> Value {
        json!({
            "trigger": {
                "event": "inquiry.completed",
                "condition": format!("object.attributes['inquiry-template-id'] == '{ITMPL}'")
            },
            "steps": [
                {"id": "share", "action": "create-share-token", "with": {"connection-id": CXN}},
                {"id": "route", "branches": [
                    {"condition": "object.attributes.status == 'completed'",
                     "steps": [{"id": "ok", "action": "approve-inquiry"}]},
                    {"steps": [{"id": "rev", "action": "mark-inquiry-for-review"}]}
                ]}
            ]
        })
    }

    fn errors(value: Value) -> Vec<(String, String)> {
        WorkflowDefinition::parse(&value)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.pointer, e.message))
            .collect()
    }

    fn pointers(value: Value) -> Vec<String> {
        errors(value).into_iter().map(|(p, _)| p).collect()
    }

    /// A definition triggered by `inquiry.completed` with these steps.
    fn with_steps(steps: Value) -> Value {
        json!({"trigger": {"event": "inquiry.completed"}, "steps": steps})
    }

    fn context(attributes: Value) -> Value {
        json!({
            "object": {"type": "inquiry", "id": "inq_1", "attributes": attributes,
                       "relationships": {}},
            "event": {"name": "inquiry.completed", "id": "evt_1",
                      "created-at": "2024-03-15T18:35:01.100Z"},
            "steps": {"share": {"share-token-id": "cnst_1"}}
        })
    }

    #[test]
    fn the_example_parses_and_serializes_back_to_itself() {
        let definition = WorkflowDefinition::parse(&example()).unwrap();
        assert_eq!(definition.trigger().event, "inquiry.completed");
        let ids: Vec<&str> = definition.steps().iter().map(Step::id).collect();
        assert_eq!(ids, ["share", "route"]);
        let Step::Action(share) = &definition.steps()[0] else {
            panic!("an action step");
        };
        assert_eq!(
            share.action,
            Action::CreateShareToken {
                connection_id: CXN.parse().unwrap(),
                expires_in_seconds: None
            }
        );
        assert_eq!(serde_json::to_value(&definition).unwrap(), example());
    }

    #[test]
    fn every_action_reads_its_parameters_and_writes_them_back() {
        let steps = json!([
            {"id": "a", "action": "create-share-token",
             "with": {"connection-id": CXN, "expires-in-seconds": 3600}},
            {"id": "b", "action": "approve-inquiry", "with": {"comment": "fine\nreally"}},
            {"id": "c", "action": "decline-inquiry"},
            {"id": "d", "action": "mark-inquiry-for-review", "condition": "true"},
            {"id": "e", "action": "add-tag", "with": {"tag": "vip"}},
            {"id": "f", "action": "make-https-request",
             "with": {"url": "https://example.com/hook", "method": "PUT",
                      "timeout-seconds": 30, "max-attempts": 8}},
            {"id": "g", "action": "create-inquiry",
             "with": {"inquiry-template-id": ITMPL, "reference-id": "user-42"}}
        ]);
        let definition = WorkflowDefinition::parse(&with_steps(steps.clone())).unwrap();
        assert_eq!(
            serde_json::to_value(&definition).unwrap(),
            with_steps(steps)
        );
        let kinds: Vec<ActionKind> = definition
            .steps()
            .iter()
            .map(|s| match s {
                Step::Action(a) => a.action.kind(),
                Step::Branch(_) => panic!("no branch here"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ActionKind::CreateShareToken,
                ActionKind::ApproveInquiry,
                ActionKind::DeclineInquiry,
                ActionKind::MarkInquiryForReview,
                ActionKind::AddTag,
                ActionKind::MakeHttpsRequest,
                ActionKind::CreateInquiry
            ]
        );

        let redeem = json!({
            "trigger": {"event": "connect/share-token.inbound-created"},
            "steps": [{"id": "redeem", "action": "redeem-share-token",
                       "with": {"inquiry-template-id": ITMPL, "field-mappings": [
                           {"source-field-name": "name-first", "destination-field-name": "given-name"}
                       ]}}]
        });
        let definition = WorkflowDefinition::parse(&redeem).unwrap();
        assert_eq!(serde_json::to_value(&definition).unwrap(), redeem);
    }

    #[test]
    fn defaults_are_filled_in_and_tags_normalised() {
        let definition = WorkflowDefinition::parse(&with_steps(json!([
            {"id": "hook", "action": "make-https-request", "with": {"url": "https://Example.com"}},
            {"id": "tag", "action": "add-tag", "with": {"tag": "  vip "}}
        ])))
        .unwrap();
        assert_eq!(
            serde_json::to_value(definition.steps()).unwrap(),
            json!([
                {"id": "hook", "action": "make-https-request",
                 "with": {"url": "https://example.com/", "method": "POST",
                          "timeout-seconds": 5, "max-attempts": 3}},
                {"id": "tag", "action": "add-tag", "with": {"tag": "vip"}}
            ])
        );
    }

    #[test]
    fn shape_errors_are_all_reported_with_pointers() {
        assert_eq!(pointers(json!([])), [""]);
        assert_eq!(pointers(json!({})), ["", ""]);
        assert_eq!(errors(json!({}))[0].1, "`trigger` is required");
        assert_eq!(
            pointers(json!({"trigger": {"event": "inquiry.completed"}, "steps": [], "x": 1})),
            ["/x", "/steps"]
        );
        let definition = json!({
            "trigger": {"event": "inquiry.done", "condition": "(", "extra": true},
            "steps": [
                {"id": "Bad_Id", "action": "approve-inquiry"},
                {"id": "dup", "action": "fly"},
                {"id": "dup", "action": "approve-inquiry", "with": {"note": "x"}},
                {"id": "both", "action": "add-tag", "branches": []},
                {"id": "neither"},
                {"action": "add-tag", "with": {"tag": ""}},
                "not a step",
                {"id": "b", "branches": [
                    {"steps": []},
                    {"condition": "1 +", "steps": [{"id": "x", "action": "add-tag"}]},
                    {"condition": "true", "steps": "nope", "else": 1}
                ]},
                {"id": "e", "branches": []},
                {"id": "s", "action": "create-share-token",
                 "with": {"connection-id": ITMPL, "expires-in-seconds": 59}},
                {"id": "r", "action": "create-inquiry",
                 "with": {"inquiry-template-id": CXN, "reference-id": "x".repeat(256)}},
                {"id": "h", "action": "make-https-request",
                 "with": {"url": "ftp://example.com", "method": "GET",
                          "timeout-seconds": 31, "max-attempts": 0}},
                {"id": "c", "action": "approve-inquiry", "condition": "",
                 "with": {"comment": 5}},
                {"id": "w", "action": "decline-inquiry", "with": []}
            ]
        });
        assert_eq!(
            pointers(definition),
            [
                "/trigger/extra",
                "/trigger/event",
                "/trigger/condition",
                "/steps/0/id",
                "/steps/1/action",
                "/steps/2/id",
                "/steps/2/with/note",
                "/steps/3",
                "/steps/4",
                "/steps/5",
                "/steps/5/with/tag",
                "/steps/6",
                "/steps/7/branches/0",
                "/steps/7/branches/1/condition",
                "/steps/7/branches/1/steps/0/with",
                "/steps/7/branches/2/else",
                "/steps/7/branches/2/steps",
                "/steps/8/branches",
                "/steps/9/with/connection-id",
                "/steps/9/with/expires-in-seconds",
                "/steps/10/with/inquiry-template-id",
                "/steps/10/with/reference-id",
                "/steps/11/with/url",
                "/steps/11/with/method",
                "/steps/11/with/timeout-seconds",
                "/steps/11/with/max-attempts",
                "/steps/12/with/comment",
                "/steps/12/condition",
                "/steps/13/with",
            ]
        );
    }

    #[test]
    fn step_ids_follow_the_pattern() {
        let step = |id: &str| with_steps(json!([{"id": id, "action": "approve-inquiry"}]));
        for good in ["a", "0", "a-", "a--b", &"x".repeat(63)] {
            assert!(WorkflowDefinition::parse(&step(good)).is_ok(), "{good}");
        }
        for bad in ["", "-a", "A", "a_b", "a b", "é", &"x".repeat(64)] {
            assert_eq!(pointers(step(bad)), ["/steps/0/id"], "{bad}");
        }
        assert_eq!(
            pointers(with_steps(json!([{"id": 7, "action": "approve-inquiry"}]))),
            ["/steps/0/id"]
        );
    }

    #[test]
    fn error_messages_read_clearly() {
        let messages: Vec<String> = errors(with_steps(json!([
            {"id": "a", "action": "fly"},
            {"id": "a", "action": "add-tag", "with": {"tag": "x", "colour": "red"}},
            {"id": "s", "action": "create-share-token", "with": {"connection-id": "cxn_x"}},
            {"id": "m", "action": "make-https-request", "with": {"url": "https://u:p@example.com"}},
        ])))
        .into_iter()
        .map(|(_, m)| m)
        .collect();
        assert_eq!(
            messages,
            [
                "`fly` is not a valid workflow action (expected one of: create-share-token, \
                 redeem-share-token, approve-inquiry, decline-inquiry, mark-inquiry-for-review, \
                 add-tag, make-https-request, create-inquiry)",
                "`a` is already the id of /steps/0",
                "`colour` is not a member of the parameters of `add-tag` (members: tag)",
                "`cxn_x` is not a valid connection id (expected `cxn_` followed by 24 characters)",
                "a URL must not carry a user name or password; send credentials in the body",
            ]
        );
        let (_, message) = &errors(json!({"trigger": {"event": "*"}, "steps": []}))[0];
        assert_eq!(message, "a trigger names one event; `*` is for webhooks");
        let (_, message) =
            &errors(json!({"trigger": {"event": "workflow-run.completed"}, "steps": []}))[0];
        assert!(
            message.starts_with("workflow-run events cannot trigger"),
            "{message}"
        );
        let (pointer, message) =
            &errors(json!({"trigger": {"event": "inquiry.done"}, "steps": []}))[0];
        assert_eq!(pointer, "/trigger/event");
        assert!(
            message
                .starts_with("`inquiry.done` is not an event name; use one of: inquiry.created, "),
            "{message}"
        );
        assert!(!message.contains("workflow-run."), "{message}");
    }

    #[test]
    fn cel_syntax_errors_carry_the_parser_message_and_position() {
        let errs = errors(json!({
            "trigger": {"event": "inquiry.completed",
                        "condition": "object.attributes.status == "},
            "steps": [{"id": "a", "action": "approve-inquiry"}]
        }));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, "/trigger/condition");
        assert!(
            errs[0]
                .1
                .starts_with("not a valid CEL expression: Syntax error: mismatched input '<EOF>'")
                && errs[0].1.ends_with("(line 1, column 29)"),
            "{}",
            errs[0].1
        );
    }

    #[test]
    fn actions_must_fit_the_trigger() {
        let errs = errors(json!({
            "trigger": {"event": "connect/connection.created"},
            "steps": [
                {"id": "tag", "action": "add-tag", "with": {"tag": "x"}},
                {"id": "b", "branches": [{"steps": [
                    {"id": "redeem", "action": "redeem-share-token",
                     "with": {"inquiry-template-id": ITMPL}},
                    {"id": "hook", "action": "make-https-request",
                     "with": {"url": "https://example.com"}},
                    {"id": "new", "action": "create-inquiry",
                     "with": {"inquiry-template-id": ITMPL}}
                ]}]}
            ]
        }));
        assert_eq!(
            errs.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["/steps/0/action", "/steps/1/branches/0/steps/0/action"]
        );
        assert_eq!(
            errs[0].1,
            "`add-tag` acts on the inquiry of the triggering event, and \
             `connect/connection.created` is not an inquiry event: trigger on an `inquiry.…` event"
        );
        assert!(errs[1].1.contains("connect/share-token.inbound-created"));
    }

    #[test]
    fn limits_on_steps_depth_and_condition_length() {
        let many: Vec<Value> = (0..=MAX_STEPS)
            .map(|i| json!({"id": format!("s{i}"), "action": "approve-inquiry"}))
            .collect();
        let errs = errors(with_steps(Value::Array(many.clone())));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, "/steps");
        assert!(errs[0].1.contains("this one has 51"), "{}", errs[0].1);
        assert!(WorkflowDefinition::parse(&with_steps(Value::Array(many[..50].to_vec()))).is_ok());

        /// A branch step holding `inner` as its only step, `levels` times over.
        fn nest(levels: usize, inner: Value) -> Value {
            (0..levels).fold(inner, |inner, level| {
                json!({"id": format!("level-{level}"), "branches": [{"steps": [inner]}]})
            })
        }
        let leaf = json!({"id": "leaf", "action": "approve-inquiry"});
        assert!(
            WorkflowDefinition::parse(&with_steps(json!([nest(MAX_DEPTH - 1, leaf.clone())])))
                .is_ok()
        );
        let deep = "/steps/0/branches/0/steps/0/branches/0/steps/0/branches/0/steps/0\
                    /branches/0/steps/0/branches/0/steps/0";
        assert_eq!(pointers(with_steps(json!([nest(MAX_DEPTH, leaf)]))), [deep]);

        let long = format!("'{}' == ''", "x".repeat(MAX_CONDITION_CHARS));
        let errs = errors(with_steps(json!([
            {"id": "a", "action": "approve-inquiry", "condition": long}
        ])));
        assert_eq!(errs[0].0, "/steps/0/condition");
        assert_eq!(errs[0].1, "a condition is at most 2000 characters");
    }

    fn condition(source: &str) -> Condition {
        Condition::compile(source).unwrap()
    }

    #[test]
    fn conditions_reach_kebab_case_keys_events_and_earlier_steps() {
        let context = context(json!({
            "status": "completed",
            "inquiry-template-id": ITMPL,
            "fields": {"birthdate": {"type": "date", "value": "1990-01-01"}},
            "tags": ["vip"],
            "score": 0.75,
            "age": 34
        }));
        for (source, expected) in [
            (
                format!("object.attributes['inquiry-template-id'] == '{ITMPL}'"),
                true,
            ),
            ("object.attributes.status == 'completed'".to_owned(), true),
            (
                "object.attributes.fields['birthdate'].value.startsWith('1990')".to_owned(),
                true,
            ),
            ("'vip' in object.attributes.tags".to_owned(), true),
            (
                "object.attributes.score > 0.5 && object.attributes.age >= 18".to_owned(),
                true,
            ),
            ("has(object.attributes.nickname)".to_owned(), false),
            (
                "event.name == 'inquiry.completed' && event['created-at'] != ''".to_owned(),
                true,
            ),
            ("steps.share['share-token-id'] == 'cnst_1'".to_owned(), true),
            ("object.attributes.status.matches('^comp')".to_owned(), true),
            ("size(object.relationships) == 0".to_owned(), true),
        ] {
            assert_eq!(
                condition(&source).evaluate(&context),
                Ok(expected),
                "{source}"
            );
        }
    }

    #[test]
    fn non_bool_results_and_failures_are_errors_not_false() {
        let context = context(json!({"status": "completed"}));
        assert_eq!(
            condition("object.attributes.status").evaluate(&context),
            Err(ConditionError::NotBool("string".to_owned()))
        );
        assert_eq!(
            condition("1 + 1").evaluate(&context),
            Err(ConditionError::NotBool("int".to_owned()))
        );
        assert!(matches!(
            condition("object.attributes.missing == 'x'").evaluate(&context),
            Err(ConditionError::Evaluation(_))
        ));
        assert!(matches!(
            condition("nothing == 1").evaluate(&context),
            Err(ConditionError::Evaluation(_))
        ));
        assert_eq!(
            condition("true").evaluate(&json!([])),
            Err(ConditionError::ContextNotObject)
        );
        assert_eq!(
            condition("1 + 1")
                .evaluate(&context)
                .unwrap_err()
                .to_string(),
            "the condition gave a value of type int, not a bool"
        );
    }

    #[test]
    fn json_values_become_cel_values() {
        let context = json!({
            "v": {"null": null, "t": true, "i": -3, "u": u64::MAX, "f": 1.5, "s": "x",
                  "l": [1, "a"], "m": {"k-k": 1}}
        });
        for source in [
            "v['null'] == null",
            "v.t",
            "v.i == -3",
            "v.u == 18446744073709551615u",
            "v.f == 1.5",
            "v.s == 'x'",
            "v.l[1] == 'a' && size(v.l) == 2",
            "v.m['k-k'] == 1",
        ] {
            assert_eq!(condition(source).evaluate(&context), Ok(true), "{source}");
        }
    }

    #[test]
    fn branches_select_the_first_match_or_the_catch_all() {
        let definition = WorkflowDefinition::parse(&example()).unwrap();
        let Step::Branch(route) = &definition.steps()[1] else {
            panic!("a branch step");
        };
        assert_eq!(
            route.route(&context(json!({"status": "completed"}))),
            Ok(Some(0))
        );
        assert_eq!(route.branches[0].steps[0].id(), "ok");
        assert_eq!(
            route.route(&context(json!({"status": "failed"}))),
            Ok(Some(1)),
            "the catch-all"
        );
        assert!(matches!(
            route.route(&context(json!({}))),
            Err(ConditionError::Evaluation(_))
        ));

        let without_catch_all = WorkflowDefinition::parse(&with_steps(json!([
            {"id": "b", "branches": [
                {"condition": "object.attributes.status == 'a'", "steps": []},
                {"condition": "object.attributes.status == 'b'",
                 "steps": [{"id": "x", "action": "approve-inquiry"}]}
            ]}
        ])))
        .unwrap();
        let Step::Branch(route) = &without_catch_all.steps()[0] else {
            panic!("a branch step");
        };
        assert_eq!(route.route(&context(json!({"status": "c"}))), Ok(None));
        assert_eq!(route.route(&context(json!({"status": "a"}))), Ok(Some(0)));
    }

    #[test]
    fn triggers_and_action_conditions() {
        let definition = WorkflowDefinition::parse(&example()).unwrap();
        let trigger = definition.trigger();
        let matching = context(json!({"inquiry-template-id": ITMPL}));
        assert_eq!(trigger.fires("inquiry.completed", &matching), Ok(true));
        assert_eq!(trigger.fires("inquiry.approved", &matching), Ok(false));
        assert_eq!(
            trigger.fires(
                "inquiry.completed",
                &context(json!({"inquiry-template-id": "other"}))
            ),
            Ok(false)
        );

        let definition = WorkflowDefinition::parse(&with_steps(json!([
            {"id": "a", "action": "approve-inquiry", "condition": "object.attributes.ok"},
            {"id": "b", "action": "approve-inquiry"}
        ])))
        .unwrap();
        let runs: Vec<bool> = definition
            .steps()
            .iter()
            .map(|s| match s {
                Step::Action(a) => a.runs(&context(json!({"ok": false}))).unwrap(),
                Step::Branch(_) => panic!("no branch here"),
            })
            .collect();
        assert_eq!(runs, [false, true]);
    }

    #[test]
    fn definitions_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<WorkflowDefinition>();
    }

    /// Generates simple definitions as JSON: action steps and branch steps up to three deep.
    fn arb_steps(depth: u32) -> BoxedStrategy<Vec<Value>> {
        let conditions = prop_oneof![
            Just(None),
            Just(Some("true")),
            Just(Some("object.attributes.status == 'completed'")),
            Just(Some("'vip' in object.attributes.tags || size(steps) > 2")),
        ];
        let action = (
            prop_oneof![
                Just(json!({"action": "approve-inquiry"})),
                Just(json!({"action": "decline-inquiry", "with": {"comment": "no"}})),
                "[a-z]{1,10}".prop_map(|tag| json!({"action": "add-tag", "with": {"tag": tag}})),
                (
                    1u32..=30,
                    1u32..=8,
                    proptest::sample::select(HttpMethod::ALL)
                )
                    .prop_map(|(timeout, attempts, method)| json!({
                        "action": "make-https-request",
                        "with": {"url": "https://example.com/x", "method": method,
                                 "timeout-seconds": timeout, "max-attempts": attempts}
                    })),
                (60i64..=1_814_400).prop_map(|ttl| json!({
                    "action": "create-share-token",
                    "with": {"connection-id": CXN, "expires-in-seconds": ttl}
                })),
            ],
            conditions.clone(),
        )
            .prop_map(|(mut step, condition)| {
                if let Some(condition) = condition {
                    step["condition"] = json!(condition);
                }
                step
            });
        let step = if depth == 0 {
            action.boxed()
        } else {
            let branch = (conditions, arb_steps(depth - 1));
            prop_oneof![
                3 => action,
                1 => proptest::collection::vec(branch, 1..3).prop_map(|branches| {
                    let last = branches.len() - 1;
                    json!({"branches": branches.into_iter().enumerate().map(|(i, (c, steps))| {
                        // Only the last branch may go without a condition.
                        match c.or((i != last).then_some("false")) {
                            Some(c) => json!({"condition": c, "steps": steps}),
                            None => json!({"steps": steps}),
                        }
                    }).collect::<Vec<_>>()})
                }),
            ]
            .boxed()
        };
        proptest::collection::vec(step, 0..4).boxed()
    }

    /// Gives every step (depth first) a unique id.
    fn number_steps(steps: &mut [Value], next: &mut usize) {
        for step in steps {
            step["id"] = json!(format!("step-{next}"));
            *next += 1;
            if let Some(branches) = step.get_mut("branches").and_then(Value::as_array_mut) {
                for branch in branches {
                    if let Some(inner) = branch["steps"].as_array_mut() {
                        number_steps(inner, next);
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn parse_serialize_round_trips(mut steps in arb_steps(2), first in arb_steps(0)) {
            // At least one step at the top.
            steps.insert(0, first.into_iter().next().unwrap_or(json!({"action": "approve-inquiry"})));
            number_steps(&mut steps, &mut 0);
            let json = with_steps(Value::Array(steps));
            let definition = WorkflowDefinition::parse(&json).unwrap();
            let written = serde_json::to_value(&definition).unwrap();
            prop_assert_eq!(&written, &json);
            prop_assert_eq!(WorkflowDefinition::parse(&written).unwrap(), definition);
        }

        #[test]
        fn compiling_any_text_never_panics(source in "\\PC{0,80}") {
            let _ = Condition::compile(&source);
        }
    }
}
