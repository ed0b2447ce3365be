//! The rules of managing the people who use the dashboard: what a password and an address must
//! be, how long a set-password link lasts, and the guard rails that keep an organization from
//! losing its last administrator.

use time::Duration;

use crate::sign_in::MAX_EMAIL_CHARS;

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted (hashing a longer one would only cost time).
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// How long an invitation's or a reset's set-password link can be used.
pub const SET_PASSWORD_LINK_LIFETIME: Duration = Duration::hours(72);

/// Where a user stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    /// Can sign in (or will, once a reset link sets a new password).
    Active,
    /// Invited and has not set a password yet.
    Invited,
    /// Cannot sign in until an administrator enables it again.
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Invited => "invited",
            UserStatus::Disabled => "disabled",
        }
    }
}

/// Why a password cannot be used, or `None` when it can.
pub fn password_problem(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        Some(format!(
            "A password has at least {MIN_PASSWORD_CHARS} characters."
        ))
    } else if chars > MAX_PASSWORD_CHARS {
        Some(format!(
            "A password has at most {MAX_PASSWORD_CHARS} characters."
        ))
    } else {
        None
    }
}

/// The address a user signs in with, trimmed and lowercased, or why it cannot be one.
pub fn parse_email(input: &str) -> Result<String, String> {
    let email = input.trim().to_lowercase();
    let valid = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(char::is_whitespace);
    if email.chars().count() > MAX_EMAIL_CHARS {
        Err(format!(
            "An email address has at most {MAX_EMAIL_CHARS} characters."
        ))
    } else if valid {
        Ok(email)
    } else {
        Err("Enter an email address such as ada@example.com.".to_owned())
    }
}

/// A change an administrator makes to a user that could leave the organization without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminChange {
    Disable,
    Remove,
    /// Any role but admin.
    Demote,
}

/// Who a change concerns, as the guard rails see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The user acting is the one changed.
    pub is_self: bool,
    /// The user changed is an administrator who can sign in (has a password, is not disabled).
    pub is_active_admin: bool,
    /// Active administrators of the organization, the user changed included.
    pub active_admins: u64,
}

/// Why the change is refused, or `None` when it may go ahead: nobody disables, removes or
/// demotes themself, and the last active administrator stays one.
pub fn admin_change_refusal(change: AdminChange, target: Target) -> Option<&'static str> {
    if target.is_self {
        return Some(match change {
            AdminChange::Disable => "You cannot disable yourself; ask another administrator.",
            AdminChange::Remove => "You cannot remove yourself; ask another administrator.",
            AdminChange::Demote => "You cannot change your own role; ask another administrator.",
        });
    }
    (target.is_active_admin && target.active_admins <= 1).then_some(
        "This is the organization's last active administrator: make another user an \
         administrator first.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_have_a_length_between_the_limits() {
        assert!(password_problem("short").is_some());
        assert!(password_problem("twelve chars").is_none());
        assert!(password_problem(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_some());
    }

    #[test]
    fn addresses_are_trimmed_lowercased_and_checked() {
        assert_eq!(
            parse_email(" Ada@Bank.Example "),
            Ok("ada@bank.example".into())
        );
        for bad in ["", "ada", "@bank.example", "ada@bank", "a da@bank.example"] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
        assert!(parse_email(&format!("{}@bank.example", "a".repeat(250))).is_err());
    }

    #[test]
    fn nobody_locks_themself_out_and_the_last_admin_stays() {
        let other_admin = Target {
            is_self: false,
            is_active_admin: true,
            active_admins: 2,
        };
        for change in [
            AdminChange::Disable,
            AdminChange::Remove,
            AdminChange::Demote,
        ] {
            assert_eq!(admin_change_refusal(change, other_admin), None);
            let own = Target {
                is_self: true,
                ..other_admin
            };
            assert!(admin_change_refusal(change, own).is_some());
            let last = Target {
                active_admins: 1,
                ..other_admin
            };
            assert!(
                admin_change_refusal(change, last)
                    .unwrap()
                    .contains("last active administrator")
            );
            let reviewer = Target {
                is_active_admin: false,
                active_admins: 1,
                ..other_admin
            };
            assert_eq!(admin_change_refusal(change, reviewer), None);
        }
    }
}
