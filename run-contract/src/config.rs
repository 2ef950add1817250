//! Configuration notation shared by both binaries: the api and the worker
//! read some of the same variables (`REDIS_KEY_PREFIX`) and write durations
//! the same way, so an operator can copy a value from one to the other.

use std::{fmt, time::Duration};

/// `REDIS_KEY_PREFIX`'s default: every Redis key and channel of both
/// binaries starts with it, so they find each other's channels.
pub const DEFAULT_REDIS_KEY_PREFIX: &str = "codecall:";

/// Parses a duration: a whole number with the unit `ms`, `s`, `m`, `h` or `d`
/// (`250ms`, `30s`, `15m`, `12h`, `7d`); a bare number means seconds. Spaces
/// around the value and between number and unit are allowed, and so is a
/// leading `+`. `None` for anything else, and for a value too large to
/// represent.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let digits = raw.strip_prefix('+').unwrap_or(raw);
    let split = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let (number, unit) = digits.split_at(split);
    if number.is_empty() {
        return None;
    }
    let n: u64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => return Some(Duration::from_millis(n)),
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

/// A value that must never be printed, such as a URL carrying a password:
/// `Debug` shows `[redacted]`, so a configuration can derive `Debug` and be
/// logged whole.
#[derive(Clone)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The wrapped value, for the one place that needs it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_every_unit_either_binary_ever_took() {
        let cases = [
            ("250ms", Duration::from_millis(250)),
            ("10s", Duration::from_secs(10)),
            ("90", Duration::from_secs(90)),
            ("2m", Duration::from_secs(120)),
            ("12h", Duration::from_secs(43_200)),
            ("7d", Duration::from_secs(604_800)),
            (" 30 s ", Duration::from_secs(30)),
            ("+5", Duration::from_secs(5)),
            ("+100ms", Duration::from_millis(100)),
            ("0", Duration::ZERO),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_duration(raw), Some(expected), "{raw}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for raw in [
            "",
            "s",
            "ms",
            "ten",
            "soon",
            "5w",
            "-5s",
            "++5",
            "+",
            "1.5s",
            "5 5s",
            "5S",
            "18446744073709551615m",
        ] {
            assert_eq!(parse_duration(raw), None, "{raw}");
        }
    }
}
