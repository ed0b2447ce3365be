//! API key permissions.

use std::collections::BTreeSet;

string_enum! {
    /// One thing an API key may be allowed to do.
    pub enum Permission ("permission", all: slice) {
        InquiryRead = "inquiry.read",
        InquiryWrite = "inquiry.write",
        InquiryTemplateRead = "inquiry-template.read",
        InquiryTemplateWrite = "inquiry-template.write",
        EventRead = "event.read",
        ConnectRead = "connect.read",
        ConnectWrite = "connect.write",
        WebhookRead = "webhook.read",
        WebhookWrite = "webhook.write",
        WorkflowRead = "workflow.read",
        WorkflowWrite = "workflow.write",
        ReportRead = "report.read",
        ReportWrite = "report.write",
        VerificationRead = "verification.read",
        FileRead = "file.read",
        FileWrite = "file.write",
        AuditRead = "audit.read",
    }
}

/// A permission list that names something other than a permission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{unknown}` is not a permission (valid permissions: {})",
    valid_list()
)]
pub struct PermissionError {
    pub unknown: String,
}

fn valid_list() -> String {
    Permission::ALL
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The permissions granted to an API key. Serializes as a sorted array of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct PermissionSet(BTreeSet<Permission>);

impl PermissionSet {
    pub fn all() -> Self {
        Permission::ALL.iter().copied().collect()
    }

    pub fn contains(&self, permission: Permission) -> bool {
        self.0.contains(&permission)
    }

    /// Parses a comma-separated list such as `"inquiry.read, inquiry.write"`.
    /// A blank string is the empty set; empty items between commas are ignored.
    pub fn parse_list(s: &str) -> Result<Self, PermissionError> {
        s.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse().map_err(|_| PermissionError {
                    unknown: item.to_owned(),
                })
            })
            .collect()
    }

    /// The inverse of [`Self::parse_list`]: sorted, comma-separated, no spaces.
    pub fn to_list_string(&self) -> String {
        self.iter()
            .map(Permission::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The permissions in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_round_trips() {
        for &p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
        }
    }

    #[test]
    fn parse_list_trims_sorts_and_deduplicates() {
        let set = PermissionSet::parse_list(" inquiry.write,inquiry.read ,inquiry.write").unwrap();
        assert!(set.contains(Permission::InquiryRead));
        assert!(!set.contains(Permission::ConnectRead));
        assert_eq!(set.to_list_string(), "inquiry.read,inquiry.write");
        assert_eq!(PermissionSet::parse_list(&set.to_list_string()), Ok(set));
        assert_eq!(PermissionSet::parse_list(""), Ok(PermissionSet::default()));
    }

    #[test]
    fn parse_list_names_the_unknown_permission() {
        let err = PermissionSet::parse_list("inquiry.read, inquiry.delete").unwrap_err();
        assert_eq!(err.unknown, "inquiry.delete");
        let msg = err.to_string();
        assert!(msg.starts_with("`inquiry.delete` is not a permission (valid permissions: "));
        assert!(msg.contains("audit.read"));
    }

    #[test]
    fn all_contains_everything_and_serializes_as_array() {
        let all = PermissionSet::all();
        assert!(Permission::ALL.iter().all(|&p| all.contains(p)));
        let json = serde_json::to_value(&all).unwrap();
        assert_eq!(json.as_array().map(Vec::len), Some(Permission::ALL.len()));
        assert_eq!(serde_json::from_value::<PermissionSet>(json).unwrap(), all);
    }
}
