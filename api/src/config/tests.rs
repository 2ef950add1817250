//! The api's configuration: defaults, refusals (each naming its variable),
//! secrets from files, and the repository scan for published JWT secrets.

use std::collections::HashMap;

use std::time::Duration;

use run_contract::config::parse_duration;

use super::*;

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

const A: &str = "access-secret-access-secret-access-secret";
const R: &str = "refresh-secret-refresh-secret-refresh-secret";

fn base() -> Vec<(&'static str, &'static str)> {
    vec![
        ("DATABASE_URL", "postgres://localhost/x"),
        ("JWT_ACCESS_SECRET", A),
        ("JWT_REFRESH_SECRET", R),
    ]
}

#[test]
fn defaults_follow_the_seed() {
    let config = Config::from_lookup(lookup(&base())).expect("valid");
    assert_eq!(config.port, 5000);
    assert_eq!(config.jwt.access_ttl, Duration::from_secs(15 * 60));
    assert_eq!(config.jwt.refresh_ttl, Duration::from_secs(7 * 86_400));
    assert!(config.http.cors_origins.is_empty());
    assert_eq!(config.http.body_limit_bytes, 16 * 1024 * 1024);
    assert_eq!(config.http.auth_body_limit_bytes, 16 * 1024);
    assert_eq!(config.http.small_body_limit_bytes, 64 * 1024);
    assert_eq!(config.database.acquire_timeout, Duration::from_secs(3));
    assert_eq!(config.auth.register_max_per_address, 10);
    assert_eq!(
        config.retention.run_retention,
        Duration::from_secs(30 * 86_400)
    );
    assert_eq!(config.sockets.max_per_user, 16);
    assert_eq!(config.sockets.max_per_user_session, 8);
    assert_eq!(config.feedback.edit_window, Duration::from_secs(7 * 86_400));
    assert_eq!(config.sockets.read_buffer_bytes, 1024);
}

#[test]
fn no_route_accepts_more_than_body_limit_bytes() {
    let mut pairs = base();
    pairs.push(("BODY_LIMIT_BYTES", "4096"));
    let config = Config::from_lookup(lookup(&pairs)).expect("valid");
    assert_eq!(config.http.auth_body_limit_bytes, 4096);
    assert_eq!(config.http.small_body_limit_bytes, 4096);
}

#[test]
fn a_zero_socket_limit_is_refused() {
    let mut pairs = base();
    pairs.push(("SOCKET_CHAT_PER_USER_PER_SECOND", "0"));
    let err = Config::from_lookup(lookup(&pairs)).expect_err("zero");
    assert!(
        err.to_string().contains("SOCKET_CHAT_PER_USER_PER_SECOND"),
        "{err}"
    );
}

#[test]
fn a_tiny_socket_read_buffer_is_refused() {
    let mut pairs = base();
    pairs.push(("SOCKET_READ_BUFFER_BYTES", "16"));
    let err = Config::from_lookup(lookup(&pairs)).expect_err("too small");
    assert!(
        err.to_string().contains("SOCKET_READ_BUFFER_BYTES"),
        "{err}"
    );
}

#[test]
fn each_missing_required_variable_is_named() {
    for missing in ["DATABASE_URL", "JWT_ACCESS_SECRET", "JWT_REFRESH_SECRET"] {
        let pairs: Vec<_> = base().into_iter().filter(|(k, _)| *k != missing).collect();
        let err = Config::from_lookup(lookup(&pairs)).expect_err("must fail");
        assert!(err.to_string().contains(missing), "{err}");
    }
}

#[test]
fn a_weak_or_reused_secret_is_refused() {
    let mut pairs = base();
    pairs[1] = ("JWT_ACCESS_SECRET", "your_access_secret");
    let err = Config::from_lookup(lookup(&pairs)).expect_err("weak");
    assert!(err.to_string().contains("JWT_ACCESS_SECRET"), "{err}");

    let mut pairs = base();
    pairs[2] = ("JWT_REFRESH_SECRET", A);
    let err = Config::from_lookup(lookup(&pairs)).expect_err("same");
    assert!(err.to_string().contains("JWT_REFRESH_SECRET"), "{err}");
}

#[test]
fn published_secrets_are_refused() {
    for published in PUBLISHED_SECRETS {
        for (i, name) in [(1, "JWT_ACCESS_SECRET"), (2, "JWT_REFRESH_SECRET")] {
            let mut pairs = base();
            pairs[i] = (name, *published);
            let err = Config::from_lookup(lookup(&pairs)).expect_err("published");
            let message = err.to_string();
            assert!(
                message.contains(name) && message.contains("published"),
                "{message}"
            );
        }
    }
}

/// The values following `JWT_ACCESS_SECRET` / `JWT_REFRESH_SECRET` in
/// `text` (`NAME=v`, `NAME: v`, `${NAME:-v}`, `("NAME", "v")`), long
/// enough to pass the length check.
fn published_values(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for name in ["JWT_ACCESS_SECRET", "JWT_REFRESH_SECRET"] {
        for (at, _) in text.match_indices(name) {
            let mut rest = &text[at + name.len()..];
            if rest.starts_with("_FILE") {
                continue;
            }
            rest = rest.trim_start_matches(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | ':' | '=' | ',' | '(')
            });
            if let Some(inner) = rest.strip_prefix("${") {
                match inner.split_once(":-") {
                    Some((_, default)) => rest = default,
                    None => continue,
                }
            }
            let value: String = rest
                .chars()
                .take_while(|c| {
                    !c.is_whitespace() && !matches!(c, '"' | '\'' | '}' | ')' | ',' | '`' | '|')
                })
                .collect();
            if value.len() >= MIN_SECRET_LEN {
                found.push(value);
            }
        }
    }
    found
}

#[test]
fn secret_values_are_found_in_every_notation() {
    let a = "a".repeat(40);
    for text in [
        format!("JWT_ACCESS_SECRET={a}\n"),
        format!("      JWT_ACCESS_SECRET: ${{JWT_ACCESS_SECRET:-{a}}}\n"),
        format!("(\n    \"JWT_ACCESS_SECRET\",\n    \"{a}\",\n)"),
        format!("export JWT_REFRESH_SECRET='{a}'"),
    ] {
        assert!(published_values(&text).contains(&a), "{text}");
    }
    assert!(
        published_values("JWT_ACCESS_SECRET_FILE=/run/secrets/jwt-access-secret-0001").is_empty()
    );
    assert!(published_values("| `JWT_ACCESS_SECRET` | required, ≥ 32 bytes |").is_empty());
}

/// Every file of the repository (no build output, no VCS data).
fn repository_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("readable directory")
        .flatten()
    {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                repository_files(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

#[test]
fn every_secret_published_in_the_repository_is_refused() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    repository_files(&root, &mut files);
    assert!(files.iter().any(|f| f.ends_with("docker-compose.yml")));
    let mut unlisted = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue; // not text
        };
        for value in published_values(&text) {
            if !PUBLISHED_SECRETS.contains(&value.as_str()) {
                unlisted.push(format!("{}: {value}", file.display()));
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "JWT secrets published in the repository but not refused (add them to \
         PUBLISHED_SECRETS, and remove them from the file): {unlisted:#?}"
    );
}

#[test]
fn debug_output_never_shows_secrets() {
    let config = Config::from_lookup(lookup(&base())).expect("valid");
    let printed = format!("{config:?}");
    assert!(!printed.contains(A) && !printed.contains(R));
    assert!(!printed.contains("postgres://localhost/x"));
}

#[test]
fn durations_take_a_number_and_an_optional_ms_s_m_h_or_d_unit() {
    assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
    assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
    assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("soon"), None);
    assert_eq!(parse_duration("5w"), None);
}

/// A file in the test's own temporary directory holding `contents`.
fn secret_file(test: &str, name: &str, contents: &str) -> String {
    let dir = std::env::temp_dir().join(format!("codecall-config-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write secret file");
    path.to_string_lossy().into_owned()
}

#[test]
fn every_secret_can_come_from_a_file() {
    let access = secret_file("files", "access", &format!("{A}\n"));
    let refresh = secret_file("files", "refresh", R);
    let db = secret_file("files", "db", "postgres://from-file/x\r\n");
    let redis = secret_file("files", "redis", "redis://from-file:6379\n");
    let config = Config::from_lookup(lookup(&[
        ("JWT_ACCESS_SECRET_FILE", access.as_str()),
        ("JWT_REFRESH_SECRET_FILE", refresh.as_str()),
        ("DATABASE_URL_FILE", db.as_str()),
        ("REDIS_URL_FILE", redis.as_str()),
    ]))
    .expect("valid");
    assert_eq!(config.jwt.access_secret.expose(), A);
    assert_eq!(config.jwt.refresh_secret.expose(), R);
    assert_eq!(config.database.url.expose(), "postgres://from-file/x");
    assert_eq!(config.redis.url.expose(), "redis://from-file:6379");
}

#[test]
fn a_secret_given_twice_or_unreadable_is_refused() {
    let access = secret_file("twice", "access", A);
    let mut pairs: Vec<(&str, &str)> = base();
    pairs.push(("JWT_ACCESS_SECRET_FILE", access.as_str()));
    let err = Config::from_lookup(lookup(&pairs)).expect_err("both set");
    let message = err.to_string();
    assert!(
        message.contains("JWT_ACCESS_SECRET") && message.contains("JWT_ACCESS_SECRET_FILE"),
        "{message}"
    );

    let mut pairs: Vec<(&str, &str)> = base()
        .into_iter()
        .filter(|(k, _)| *k != "DATABASE_URL")
        .collect();
    pairs.push(("DATABASE_URL_FILE", "/nonexistent/codecall/db-url"));
    let err = Config::from_lookup(lookup(&pairs)).expect_err("unreadable");
    assert!(err.to_string().contains("DATABASE_URL_FILE"), "{err}");

    let empty = secret_file("twice", "empty", "\n");
    let mut pairs: Vec<(&str, &str)> = base()
        .into_iter()
        .filter(|(k, _)| *k != "JWT_REFRESH_SECRET")
        .collect();
    pairs.push(("JWT_REFRESH_SECRET_FILE", empty.as_str()));
    let err = Config::from_lookup(lookup(&pairs)).expect_err("empty");
    assert!(err.to_string().contains("JWT_REFRESH_SECRET_FILE"), "{err}");
}

#[test]
fn a_weak_secret_from_a_file_is_refused_too() {
    let weak = secret_file("weak", "access", "short\n");
    let mut pairs: Vec<(&str, &str)> = base()
        .into_iter()
        .filter(|(k, _)| *k != "JWT_ACCESS_SECRET")
        .collect();
    pairs.push(("JWT_ACCESS_SECRET_FILE", weak.as_str()));
    let err = Config::from_lookup(lookup(&pairs)).expect_err("weak");
    assert!(err.to_string().contains("JWT_ACCESS_SECRET"), "{err}");
}

#[test]
fn an_invalid_number_names_its_variable() {
    let mut pairs = base();
    pairs.push(("PORT", "eighty"));
    let err = Config::from_lookup(lookup(&pairs)).expect_err("invalid");
    assert!(err.to_string().contains("PORT"), "{err}");
}
