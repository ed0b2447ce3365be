//! Event names, as they appear in `attributes.name` of events and in webhook subscriptions.

/// Names of the events emitted so far. Inquiry status transitions take theirs from
/// [`crate::inquiry::InquiryAction::event_name`].
pub mod names {
    pub const INQUIRY_CREATED: &str = "inquiry.created";
    /// Field or note changes.
    pub const INQUIRY_UPDATED: &str = "inquiry.updated";
    pub const INQUIRY_UPDATED_TAGS: &str = "inquiry.updated-tags";
    pub const INQUIRY_REDACTED: &str = "inquiry.redacted";
    pub const INQUIRY_TEMPLATE_CREATED: &str = "inquiry-template.created";
    pub const INQUIRY_TEMPLATE_VERSION_CREATED: &str = "inquiry-template-version.created";
    pub const INQUIRY_TEMPLATE_VERSION_PUBLISHED: &str = "inquiry-template-version.published";
    pub const VERIFICATION_PASSED: &str = "verification.passed";
    pub const VERIFICATION_FAILED: &str = "verification.failed";
    pub const VERIFICATION_REQUIRES_RETRY: &str = "verification.requires-retry";
    pub const DOCUMENT_CREATED: &str = "document.created";
    pub const FILE_CREATED: &str = "file.created";
    pub const INQUIRY_SESSION_STARTED: &str = "inquiry-session.started";
}
