//! Configuration notation shared by both binaries: the api and the worker
//! read some of the same variables (`REDIS_KEY_PREFIX`, `DATABASE_URL`,
//! `REDIS_URL`) and write durations the same way, so an operator can copy a
//! value from one to the other. Both read their variables through one
//! [`Env`], so a wrong value is reported the same way by either: a
//! [`ConfigError`] naming the variable.

use std::{fmt, str::FromStr, time::Duration};

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

/// A configuration problem that stops start-up. The message names the
/// variable to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError(message.into())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration error: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Typed reads over a lookup function (the process environment, or a map in
/// tests): read the variable, parse it, and on failure say which variable is
/// wrong. A variable set to blanks counts as unset.
#[derive(Clone, Copy)]
pub struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl<'a> Env<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Env(lookup)
    }

    /// The raw value, `None` when unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// The value parsed as a `T` (surrounding spaces ignored), `default` when unset.
    pub fn parsed<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e| ConfigError(format!("{name} is invalid: {e}"))),
        }
    }

    /// A count or rate that must be at least 1.
    pub fn positive(&self, name: &str, default: u32) -> Result<u32, ConfigError> {
        match self.parsed(name, default)? {
            0 => Err(ConfigError(format!("{name} must be at least 1"))),
            n => Ok(n),
        }
    }

    /// A duration in [`parse_duration`]'s notation, `default` when unset.
    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => parse_duration(&raw).ok_or_else(|| {
                ConfigError(format!(
                    "{name} is invalid: `{raw}` is not a duration like 250ms, 30s, 15m, 12h or 7d"
                ))
            }),
        }
    }

    /// A comma-separated list, blanks dropped; empty when unset.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A secret given either as `name` or as `<name>_FILE` (a path whose
    /// contents, without the trailing newline, are the value: Docker and
    /// Kubernetes secrets); both is an error.
    pub fn secret_value(&self, name: &str) -> Result<Option<String>, ConfigError> {
        let file_var = format!("{name}_FILE");
        match (self.get(name), self.get(&file_var)) {
            (Some(_), Some(_)) => Err(ConfigError(format!(
                "set either {name} or {file_var}, not both"
            ))),
            (Some(value), None) => Ok(Some(value)),
            (None, Some(path)) => {
                let path = path.trim();
                let contents = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!("{file_var} cannot be read (`{path}`): {e}"))
                })?;
                let value = contents
                    .strip_suffix('\n')
                    .map(|v| v.strip_suffix('\r').unwrap_or(v))
                    .unwrap_or(&contents);
                if value.trim().is_empty() {
                    return Err(ConfigError(format!(
                        "{file_var} names an empty file (`{path}`)"
                    )));
                }
                Ok(Some(value.to_owned()))
            }
            (None, None) => Ok(None),
        }
    }

    /// [`Env::secret_value`] for a variable that must be set.
    pub fn required_secret(&self, name: &str) -> Result<String, ConfigError> {
        self.secret_value(name)?
            .ok_or_else(|| ConfigError(format!("{name} (or {name}_FILE) is required but not set")))
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

    fn read<T>(pairs: &[(&str, &str)], f: impl Fn(Env<'_>) -> T) -> T {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| map.get(k).cloned();
        f(Env::new(&lookup))
    }

    #[test]
    fn every_error_names_its_variable() {
        let err = read(&[("PORT", "eighty")], |env| env.parsed("PORT", 1u16)).expect_err("nan");
        assert!(err.to_string().contains("PORT"), "{err}");
        let err = read(&[("T", "soon")], |env| env.duration("T", Duration::ZERO))
            .expect_err("not a duration");
        assert!(err.to_string().contains("`soon`"), "{err}");
        let err = read(&[("N", "0")], |env| env.positive("N", 1)).expect_err("zero");
        assert!(err.to_string().contains("N must be at least 1"), "{err}");
        let err = read(&[], |env| env.required_secret("DATABASE_URL")).expect_err("unset");
        assert!(err.to_string().contains("DATABASE_URL_FILE"), "{err}");
    }

    #[test]
    fn blank_values_count_as_unset() {
        let value = read(&[("T", "  ")], |env| {
            env.duration("T", Duration::from_secs(3))
        });
        assert_eq!(value, Ok(Duration::from_secs(3)));
        assert_eq!(read(&[("L", " a, ,b ")], |env| env.list("L")), ["a", "b"]);
    }
}
