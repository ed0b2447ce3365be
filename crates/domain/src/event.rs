//! Event names, as they appear in `attributes.name` of events and in webhook subscriptions.

/// Names of the events emitted so far. Inquiry status transitions take theirs from
/// [`crate::inquiry::InquiryAction::event_name`].
pub mod names {
    pub const INQUIRY_CREATED: &str = "inquiry.created";
    /// Field or note changes.
    pub const INQUIRY_UPDATED: &str = "inquiry.updated";
    pub const INQUIRY_UPDATED_TAGS: &str = "inquiry.updated-tags";
    pub const INQUIRY_REDACTED: &str = "inquiry.redacted";
    /// A phone number or email address confirmed with a code.
    pub const INQUIRY_FIELD_CONFIRMED: &str = "inquiry.field-confirmed";
    /// Reports: `report/<type>.ready` when a report ran, `.matched` when it found matches,
    /// `.dismissed` when a reviewer dismissed them.
    pub const REPORT_WATCHLIST_READY: &str = "report/watchlist.ready";
    pub const REPORT_WATCHLIST_MATCHED: &str = "report/watchlist.matched";
    pub const REPORT_WATCHLIST_DISMISSED: &str = "report/watchlist.dismissed";
    pub const REPORT_PEP_READY: &str = "report/politically-exposed-person.ready";
    pub const REPORT_PEP_MATCHED: &str = "report/politically-exposed-person.matched";
    pub const REPORT_PEP_DISMISSED: &str = "report/politically-exposed-person.dismissed";
    pub const INQUIRY_TEMPLATE_CREATED: &str = "inquiry-template.created";
    pub const INQUIRY_TEMPLATE_VERSION_CREATED: &str = "inquiry-template-version.created";
    pub const INQUIRY_TEMPLATE_VERSION_PUBLISHED: &str = "inquiry-template-version.published";
    pub const VERIFICATION_PASSED: &str = "verification.passed";
    pub const VERIFICATION_FAILED: &str = "verification.failed";
    /// Ran, but could not be decided (no usable provider): a person reviews it.
    pub const VERIFICATION_SUBMITTED: &str = "verification.submitted";
    pub const VERIFICATION_REQUIRES_RETRY: &str = "verification.requires-retry";
    pub const DOCUMENT_CREATED: &str = "document.created";
    pub const FILE_CREATED: &str = "file.created";
    /// Connect connections: each written to both organizations of the connection. Status
    /// changes take theirs from [`crate::connect::ConnectionAction::event_name`].
    pub const CONNECTION_CREATED: &str = "connect/connection.created";
    pub const CONNECTION_ACTIVATED: &str = "connect/connection.activated";
    pub const CONNECTION_DEACTIVATED: &str = "connect/connection.deactivated";
    pub const CONNECTION_REACTIVATED: &str = "connect/connection.reactivated";
    /// Connect share tokens: the source gets the `outbound-` event, the destination the
    /// `inbound-` one ([`crate::share_token::created_event`]). `…-expired` is an extension.
    pub const SHARE_TOKEN_OUTBOUND_CREATED: &str = "connect/share-token.outbound-created";
    pub const SHARE_TOKEN_INBOUND_CREATED: &str = "connect/share-token.inbound-created";
    pub const SHARE_TOKEN_OUTBOUND_EXPIRED: &str = "connect/share-token.outbound-expired";
    pub const SHARE_TOKEN_INBOUND_EXPIRED: &str = "connect/share-token.inbound-expired";
    pub const SHARE_TOKEN_OUTBOUND_REDEEMED: &str = "connect/share-token.outbound-redeemed";
    pub const SHARE_TOKEN_INBOUND_REDEEMED: &str = "connect/share-token.inbound-redeemed";
    /// Extension: the redemption job could not proceed (`failure-reason` says why).
    pub const SHARE_TOKEN_OUTBOUND_FAILED: &str = "connect/share-token.outbound-failed";
    pub const SHARE_TOKEN_INBOUND_FAILED: &str = "connect/share-token.inbound-failed";
    /// Extension: the destination peeked at the source data, or previewed a redemption.
    pub const SHARE_TOKEN_OUTBOUND_PEEKED: &str = "connect/share-token.outbound-peeked";
    pub const SHARE_TOKEN_INBOUND_PEEKED: &str = "connect/share-token.inbound-peeked";
    pub const SHARE_TOKEN_OUTBOUND_PREVIEWED: &str = "connect/share-token.outbound-previewed";
    pub const SHARE_TOKEN_INBOUND_PREVIEWED: &str = "connect/share-token.inbound-previewed";
    /// Workflow runs: a run started, finished all its steps, or stopped on a step that failed
    /// for good.
    pub const WORKFLOW_RUN_CREATED: &str = "workflow-run.created";
    pub const WORKFLOW_RUN_COMPLETED: &str = "workflow-run.completed";
    pub const WORKFLOW_RUN_ERRORED: &str = "workflow-run.errored";
}
