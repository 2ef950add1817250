//! A run's input as it is stored in its `runs` row: what the api writes when
//! it queues the run, and what the worker (and the Judge0 door's view of a
//! submission) reads back. One definition for writer and readers, so the two
//! sides cannot drift apart.
//!
//! Three `jsonb` columns hold it (the others are plain SQL types: `stdin` is
//! `bytea`, the limits are the integer columns `time_limit_ms` and
//! `memory_limit_mb`):
//!
//! - `files`: `[{"name": "...", "content": "..."}]`, at least one; an empty
//!   (or absent) `name` means the language's default file name;
//! - `args`: `["...", ...]`, the program's extra arguments;
//! - `tests`: `[{"stdin": "...", "expectedOutput": "..."}]`, `stdin` may be
//!   absent (empty). The problems' `sample_tests` / `hidden_tests` columns
//!   use the same shape.
//!
//! # Versions
//!
//! There is no version field: the shape is the version. Today's shape (call
//! it version 1) is the bare arrays above, exactly as every existing row
//! holds them. The reader is strict about what it needs — a column that is
//! not an array, an entry without `content` or `expectedOutput`, a value of
//! the wrong type — and fails with a [`InputError`] naming the column, so a
//! worker ends such a run as `internal_error` instead of executing an empty
//! program or dropping its tests. Fields it does not know are ignored: an
//! old worker and a new api run side by side during a deploy, so a new
//! *optional* field (with `#[serde(default)]`) must be safe to ignore. A
//! change an older reader must not ignore (say, contents in another
//! encoding) needs a shape the old reader refuses — e.g. an object
//! `{"v": 2, "files": [...]}` in place of the array — so that run fails
//! loudly on an old worker rather than running the wrong program.
//!
//! Also here: the rule for the file names a run may carry
//! ([`valid_file_name`]), checked by the api when a run is posted and by
//! the sandbox runner before it writes a file.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// One source file of a run (an entry of `runs.files`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFile {
    /// Empty for the language's default file name (a single-file run).
    #[serde(default)]
    pub name: String,
    pub content: String,
}

/// One test of a run (an entry of `runs.tests`): the program's stdin and the
/// output expected on its stdout. Expected outputs never reach the sandbox;
/// the worker compares them itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTest {
    #[serde(default)]
    pub stdin: String,
    pub expected_output: String,
}

/// The `jsonb` columns of a run's input, as read from or written to its row.
#[derive(Debug, Clone, PartialEq)]
pub struct InputColumns {
    pub files: serde_json::Value,
    pub args: serde_json::Value,
    pub tests: serde_json::Value,
}

/// A run's input, typed: what the api stores and the worker executes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunInput {
    pub files: Vec<RunFile>,
    pub args: Vec<String>,
    pub tests: Vec<RunTest>,
}

impl RunInput {
    /// The values of the `files`, `args` and `tests` columns.
    pub fn to_columns(&self) -> InputColumns {
        InputColumns {
            files: to_json(&self.files),
            args: to_json(&self.args),
            tests: to_json(&self.tests),
        }
    }

    /// Reads the columns back; an error names the first column that is not
    /// in the stored shape (see the module's documentation).
    pub fn from_columns(columns: InputColumns) -> Result<RunInput, InputError> {
        let files = read_files(columns.files)?;
        if files.is_empty() {
            return Err(InputError {
                column: Column::Files,
                reason: "no files".into(),
            });
        }
        Ok(RunInput {
            files,
            args: read_column(Column::Args, columns.args)?,
            tests: read_tests(columns.tests)?,
        })
    }
}

/// Reads a `runs.files` value on its own (the Judge0 door shows the source).
pub fn read_files(value: serde_json::Value) -> Result<Vec<RunFile>, InputError> {
    read_column(Column::Files, value)
}

/// Reads a `runs.tests` value on its own (the Judge0 door shows the
/// expected output).
pub fn read_tests(value: serde_json::Value) -> Result<Vec<RunTest>, InputError> {
    read_column(Column::Tests, value)
}

/// Which column of a run's input could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Files,
    Args,
    Tests,
}

impl Column {
    pub fn as_str(self) -> &'static str {
        match self {
            Column::Files => "files",
            Column::Args => "args",
            Column::Tests => "tests",
        }
    }
}

/// A stored input column that is not in the shape this version reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub column: Column,
    /// What was wrong, for the logs.
    pub reason: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the stored `{}` of the run cannot be read: {}",
            self.column.as_str(),
            self.reason
        )
    }
}

impl std::error::Error for InputError {}

fn read_column<T: DeserializeOwned>(
    column: Column,
    value: serde_json::Value,
) -> Result<Vec<T>, InputError> {
    if !value.is_array() {
        // Not today's shape: perhaps a later version's (see the module's
        // documentation), which this reader must not guess at.
        return Err(InputError {
            column,
            reason: format!("expected an array, found {}", kind(&value)),
        });
    }
    serde_json::from_value(value).map_err(|e| InputError {
        column,
        reason: e.to_string(),
    })
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Serialises a list of strings or of the structs above, which cannot fail
/// (string keys, no maps, no floats).
fn to_json<T: Serialize>(items: &[T]) -> serde_json::Value {
    serde_json::to_value(items).unwrap_or_else(|e| unreachable!("run input serialises: {e}"))
}

/// The longest file name a run may carry.
pub const MAX_FILE_NAME_LEN: usize = 100;

/// Whether `name` may name a run's file: a plain name of ASCII letters,
/// digits, `.`, `_` and `-`, at most [`MAX_FILE_NAME_LEN`] bytes, not `.` or
/// `..` — never a path, so a file cannot be written outside the sandbox's
/// work directory. The api refuses a run with another name (422), and the
/// sandbox runner refuses to write one.
pub fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FILE_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn columns(files: serde_json::Value, tests: serde_json::Value) -> InputColumns {
        InputColumns {
            files,
            args: json!([]),
            tests,
        }
    }

    #[test]
    fn writes_the_shape_existing_rows_hold() {
        let input = RunInput {
            files: vec![RunFile {
                name: String::new(),
                content: "print(1)".into(),
            }],
            args: vec!["-v".into()],
            tests: vec![RunTest {
                stdin: "1\n".into(),
                expected_output: "1".into(),
            }],
        };
        let written = input.to_columns();
        assert_eq!(written.files, json!([{"name": "", "content": "print(1)"}]));
        assert_eq!(written.args, json!(["-v"]));
        assert_eq!(
            written.tests,
            json!([{"stdin": "1\n", "expectedOutput": "1"}])
        );
        assert_eq!(RunInput::from_columns(written), Ok(input));
    }

    #[test]
    fn reads_rows_with_optional_fields_left_out_and_unknown_fields_added() {
        let input = RunInput::from_columns(columns(
            json!([{"content": "x", "later": true}]),
            json!([{"expectedOutput": "4"}]),
        ))
        .expect("readable");
        assert_eq!(input.files[0].name, "");
        assert_eq!(input.tests[0].stdin, "");
        assert_eq!(input.tests[0].expected_output, "4");
    }

    #[test]
    fn refuses_what_it_cannot_read_naming_the_column() {
        let cases = [
            (columns(json!([{"name": "a.py"}]), json!([])), Column::Files),
            (columns(json!([{"text": "x"}]), json!([])), Column::Files),
            (
                columns(json!({"v": 2, "files": []}), json!([])),
                Column::Files,
            ),
            (columns(json!("print(1)"), json!([])), Column::Files),
            (columns(json!([]), json!([])), Column::Files),
            (
                columns(json!([{"content": "x"}]), json!([{"stdin": "1"}])),
                Column::Tests,
            ),
            (
                columns(json!([{"content": "x"}]), json!(null)),
                Column::Tests,
            ),
        ];
        for (stored, column) in cases {
            let err = RunInput::from_columns(stored.clone()).expect_err("unreadable");
            assert_eq!(err.column, column, "{stored:?}: {err}");
        }
        let args = InputColumns {
            files: json!([{"content": "x"}]),
            args: json!([1, 2]),
            tests: json!([]),
        };
        assert_eq!(
            RunInput::from_columns(args).expect_err("unreadable").column,
            Column::Args
        );
    }

    #[test]
    fn file_names_cannot_escape_the_work_dir() {
        assert!(valid_file_name("Main.java"));
        assert!(valid_file_name(&"a".repeat(MAX_FILE_NAME_LEN)));
        assert!(!valid_file_name(&"a".repeat(MAX_FILE_NAME_LEN + 1)));
        for bad in ["", "..", "../x", "a/b", "/etc/passwd", ".", "a b", "é.py"] {
            assert!(!valid_file_name(bad), "{bad}");
        }
    }
}
