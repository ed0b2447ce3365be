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
}
