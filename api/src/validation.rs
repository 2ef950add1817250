//! Request validation: field problems collected across a request and
//! answered as one 422 ([`Problems`], which becomes
//! [`Error::Unprocessable`] with code `validation_failed`), and the account
//! fields' rules shared by registration, login and the account's own
//! routes (name, email, password).
//!
//! Each feature keeps the rules only it needs (a session's title, a run's
//! limits) next to its handlers; what they report goes through [`Problems`]
//! or [`Error::invalid_field`].

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Longest accepted name, in characters (after trimming; an empty one is
/// refused too).
pub const NAME_MAX_CHARS: usize = 100;
/// Accepted password lengths, in characters. Longer input is refused before any hashing.
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;
/// RFC 5321's limit on a forward path, in bytes.
pub const EMAIL_MAX_BYTES: usize = 254;

/// Field problems collected across a request, answered as one 422.
#[derive(Default)]
pub struct Problems(BTreeMap<String, String>);

impl Problems {
    pub fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| problem.into());
    }

    /// Records the error of `result`, if any, and passes its value on.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|problem| self.add(field, problem)).ok()
    }

    pub fn into_result(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Unprocessable {
                code: "validation_failed",
                fields: self.0,
            })
        }
    }
}

/// A display name: trimmed, 1–100 characters.
pub fn validate_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > NAME_MAX_CHARS {
        return Err(format!("must be 1–{NAME_MAX_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_owned())
}

/// An email address, normalised (trimmed, lower-cased). Deliberately liberal:
/// one `@`, a non-empty local part, a dotted domain, no spaces or controls.
pub fn normalize_email(raw: &str) -> Result<String, String> {
    let invalid = || Err("must be a valid email address".to_owned());
    // Bounded before any copy is made of it.
    if raw.trim().len() > EMAIL_MAX_BYTES {
        return Err(format!("must be at most {EMAIL_MAX_BYTES} bytes"));
    }
    let email = raw.trim().to_lowercase();
    if email.is_empty() || email.len() > EMAIL_MAX_BYTES {
        return invalid();
    }
    let Some((local, domain)) = email.split_once('@') else {
        return invalid();
    };
    let well_formed = !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if well_formed { Ok(email) } else { invalid() }
}

pub fn validate_password(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if (PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
        Ok(())
    } else {
        Err(format!(
            "must be {PASSWORD_MIN_CHARS}–{PASSWORD_MAX_CHARS} characters"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            normalize_email("  Test@CodeCall.DEV ").as_deref(),
            Ok("test@codecall.dev")
        );
        for bad in [
            "",
            "plain",
            "@codecall.dev",
            "a@b",
            "a b@c.dev",
            "a@b@c.dev",
            "a@.dev",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_are_at_most_254_bytes() {
        let at_limit = format!("{}@b.dev", "a".repeat(248));
        assert_eq!(at_limit.len(), 254);
        assert!(normalize_email(&at_limit).is_ok());
        assert!(normalize_email(&format!("a{at_limit}")).is_err());
        // Bytes, not characters: 131 characters, 256 bytes.
        assert!(normalize_email(&format!("{}@b.dev", "é".repeat(125))).is_err());
    }

    #[test]
    fn passwords_are_8_to_128_characters() {
        assert!(validate_password(&"x".repeat(7)).is_err());
        assert!(validate_password(&"x".repeat(8)).is_ok());
        assert!(validate_password(&"é".repeat(128)).is_ok());
        assert!(validate_password(&"x".repeat(129)).is_err());
    }
}
