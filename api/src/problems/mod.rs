//! Interview problems: a statement, starter code, sample tests everyone in a
//! session sees and hidden tests only the author and a session's
//! interviewer see.
//!
//! - [`catalogue`]: `POST/GET /api/problems`, `GET/PATCH/DELETE
//!   /api/problems/{id}` — authors manage their own; listing with search,
//!   filters and cursor pagination over what the caller may see.
//! - [`session`]: `PUT/GET /api/sessions/{id}/problem` — the host attaches a
//!   problem; its starter code goes into the shared document only when that
//!   document is empty.
//! - [`submit`]: `POST /api/sessions/{id}/submit` — the shared code against
//!   the hidden tests (or the samples), through the ordinary run pipeline.
//!
//! Who sees a problem: its author always; everyone when it is `public`; the
//! author's friends when it is `friends`. Others get 404, as for a problem
//! that does not exist. The platform's own problems (a migration ships
//! them) have no author and are public. Hidden tests are left out of every
//! answer except the author's and, for the problem of a session, the
//! session's interviewer's.

pub mod catalogue;
pub mod session;
pub mod submit;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::{
    config::RunSettings, error::Result, friends::are_friends, sessions::LANGUAGES,
    startup::ApiContext, validation::Problems,
};

pub const TITLE_MAX_CHARS: usize = 200;
/// The statement (Markdown), in bytes.
pub const STATEMENT_MAX_BYTES: usize = 64 * 1024;
/// Tags per problem, and characters per tag.
pub const MAX_TAGS: usize = 10;
pub const TAG_MAX_CHARS: usize = 30;
/// Starter code per language, in bytes.
pub const STARTER_MAX_BYTES: usize = 32 * 1024;
/// The suggested duration, in minutes.
pub const MAX_TIME_SUGGESTION_MINUTES: i32 = 600;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .merge(catalogue::router())
        .merge(session::router())
        .merge(submit::router())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    Easy,
    Medium,
    Hard,
}

impl Difficulty {
    pub fn as_str(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Medium => "medium",
            Difficulty::Hard => "hard",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Private,
    Friends,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Friends => "friends",
            Visibility::Public => "public",
        }
    }
}

/// One test: the program's stdin and the output expected on stdout
/// (compared line by line, ignoring trailing whitespace).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestCase {
    #[serde(default)]
    pub stdin: String,
    pub expected_output: String,
}

/// A problem as one reader sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProblemBody {
    pub id: Uuid,
    /// `null` for the problems the platform ships.
    pub author_id: Option<Uuid>,
    pub title: String,
    /// Markdown.
    pub statement: String,
    pub difficulty: String,
    pub tags: Vec<String>,
    pub time_suggestion_minutes: Option<i32>,
    /// Language → starter code.
    pub starter_code: BTreeMap<String, String>,
    pub sample_tests: Vec<TestCase>,
    pub hidden_test_count: usize,
    /// Only for the author, and for a session's interviewer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden_tests: Option<Vec<TestCase>>,
    pub visibility: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A `problems` row.
pub struct ProblemRow {
    pub id: Uuid,
    pub author_id: Option<Uuid>,
    pub title: String,
    pub statement: String,
    pub difficulty: String,
    pub tags: Vec<String>,
    pub time_suggestion_minutes: Option<i32>,
    pub starter_code: serde_json::Value,
    pub sample_tests: serde_json::Value,
    pub hidden_tests: serde_json::Value,
    pub visibility: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl ProblemRow {
    pub fn starter_code(&self) -> BTreeMap<String, String> {
        serde_json::from_value(self.starter_code.clone()).unwrap_or_default()
    }

    pub fn sample_tests(&self) -> Vec<TestCase> {
        serde_json::from_value(self.sample_tests.clone()).unwrap_or_default()
    }

    pub fn hidden_tests(&self) -> Vec<TestCase> {
        serde_json::from_value(self.hidden_tests.clone()).unwrap_or_default()
    }

    /// The body, with the hidden tests only when `show_hidden`.
    pub fn body(&self, show_hidden: bool) -> ProblemBody {
        let hidden = self.hidden_tests();
        ProblemBody {
            id: self.id,
            author_id: self.author_id,
            title: self.title.clone(),
            statement: self.statement.clone(),
            difficulty: self.difficulty.clone(),
            tags: self.tags.clone(),
            time_suggestion_minutes: self.time_suggestion_minutes,
            starter_code: self.starter_code(),
            sample_tests: self.sample_tests(),
            hidden_test_count: hidden.len(),
            hidden_tests: show_hidden.then_some(hidden),
            visibility: self.visibility.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// Whether `user` may read it in the catalogue (deleted problems are
    /// read only through the sessions that used them).
    pub async fn visible_to(&self, db: &mut PgConnection, user: Uuid) -> Result<bool> {
        if self.deleted_at.is_some() {
            return Ok(false);
        }
        Ok(match (self.visibility.as_str(), self.author_id) {
            (_, Some(author)) if author == user => true,
            ("public", _) => true,
            ("friends", Some(author)) => are_friends(db, author, user).await?,
            _ => false,
        })
    }
}

/// Loads a problem row, deleted or not.
pub async fn load(db: &mut PgConnection, id: Uuid) -> Result<Option<ProblemRow>> {
    Ok(sqlx::query_as!(
        ProblemRow,
        r#"SELECT id, author_id, title, statement, difficulty, tags, time_suggestion_minutes,
                  starter_code, sample_tests, hidden_tests, visibility, created_at, updated_at,
                  deleted_at
           FROM problems WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await?)
}

/// A problem's fields, validated together (on create, and after a patch).
pub struct Draft {
    pub title: String,
    pub statement: String,
    pub difficulty: Difficulty,
    pub tags: Vec<String>,
    pub time_suggestion_minutes: Option<i32>,
    pub starter_code: BTreeMap<String, String>,
    pub sample_tests: Vec<TestCase>,
    pub hidden_tests: Vec<TestCase>,
    pub visibility: Visibility,
}

impl Draft {
    /// Checks every field, normalising title (trimmed) and tags (trimmed,
    /// lower case, without duplicates). Tests must fit in one run
    /// (`RUN_MAX_TESTS`, `RUN_MAX_STDIN_BYTES`, `RUN_MAX_TESTS_BYTES`).
    pub fn validate(mut self, limits: &RunSettings) -> Result<Draft> {
        let mut problems = Problems::default();
        self.title = self.title.trim().to_owned();
        let chars = self.title.chars().count();
        if chars == 0 || chars > TITLE_MAX_CHARS {
            problems.add("title", format!("must be 1–{TITLE_MAX_CHARS} characters"));
        }
        if self.statement.trim().is_empty() || self.statement.len() > STATEMENT_MAX_BYTES {
            problems.add(
                "statement",
                format!("must be non-empty and at most {STATEMENT_MAX_BYTES} bytes"),
            );
        }
        let mut tags: Vec<String> = Vec::new();
        for tag in &self.tags {
            let tag = tag.trim().to_lowercase();
            let valid = !tag.is_empty()
                && tag.chars().count() <= TAG_MAX_CHARS
                && tag
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '-' | '+' | '#' | '.' | '_'));
            if !valid {
                problems.add(
                    "tags",
                    format!(
                        "each tag is 1–{TAG_MAX_CHARS} letters, digits or - + # . _ (`{tag}` is not)"
                    ),
                );
            } else if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        if tags.len() > MAX_TAGS {
            problems.add("tags", format!("at most {MAX_TAGS} tags"));
        }
        self.tags = tags;
        if let Some(minutes) = self.time_suggestion_minutes
            && !(1..=MAX_TIME_SUGGESTION_MINUTES).contains(&minutes)
        {
            problems.add(
                "timeSuggestionMinutes",
                format!("must be between 1 and {MAX_TIME_SUGGESTION_MINUTES}"),
            );
        }
        for (language, code) in &self.starter_code {
            if !LANGUAGES.contains(&language.as_str()) {
                problems.add(
                    "starterCode",
                    format!(
                        "`{language}` is not a session language ({})",
                        LANGUAGES.join(", ")
                    ),
                );
            } else if code.len() > STARTER_MAX_BYTES {
                problems.add(
                    "starterCode",
                    format!("each language's code is at most {STARTER_MAX_BYTES} bytes"),
                );
            }
        }
        check_tests(&mut problems, "sampleTests", &self.sample_tests, limits);
        check_tests(&mut problems, "hiddenTests", &self.hidden_tests, limits);
        problems.into_result()?;
        Ok(self)
    }
}

fn check_tests(problems: &mut Problems, field: &str, tests: &[TestCase], limits: &RunSettings) {
    if tests.len() > limits.max_tests {
        problems.add(field, format!("at most {} tests", limits.max_tests));
    }
    let bytes: usize = tests
        .iter()
        .map(|t| t.stdin.len() + t.expected_output.len())
        .sum();
    if bytes > limits.max_tests_bytes
        || tests.iter().any(|t| t.stdin.len() > limits.max_stdin_bytes)
    {
        problems.add(
            field,
            format!(
                "each test's stdin is limited to {} bytes and all tests together to {}",
                limits.max_stdin_bytes, limits.max_tests_bytes
            ),
        );
    }
}
