//! An execution request as the engine's tests and benchmarks send one: a
//! single unnamed source file, no stdin, arguments or tests, the default
//! limits. Included by path (`#[path]`) where it is used.

use codecall_worker::sandbox::{ExecutionRequest, SourceFile};

/// `source` in `language`, labelled uniquely (tests may change any field).
pub fn request(language: &str, source: &str) -> ExecutionRequest {
    ExecutionRequest {
        language: language.into(),
        files: vec![SourceFile {
            name: String::new(),
            content: source.into(),
        }],
        stdin: Vec::new(),
        args: Vec::new(),
        tests: Vec::new(),
        time_ms: None,
        memory_mb: None,
        label: format!("test-{}", uuid::Uuid::new_v4().simple()),
    }
}
