//! Test databases: one definition for the api's and the worker's test
//! binaries (the worker's include this file by path), so both suites create
//! and drop their databases alike. Each test gets a `codecall_test_*`
//! database of its own on the server the test command's `DATABASE_URL`
//! names (or a server of the test's own), migrated by the application under
//! test when it starts, and dropped when the test ends.

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use uuid::Uuid;

/// The server-level URLs the test command exported: (PostgreSQL, Redis).
pub fn server_urls() -> (String, String) {
    let db = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must be set: run the tests with scripts/test.sh");
    let redis = std::env::var("REDIS_URL")
        .expect("REDIS_URL must be set: run the tests with scripts/test.sh");
    (db, redis)
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, rest) = url.rsplit_once('/').expect("DATABASE_URL has a path");
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{base}/{name}{query}")
}

/// A database created for one test, dropped (with `FORCE`, which ends the
/// connections the application still holds) when this guard is dropped.
pub struct TestDatabase {
    pub name: String,
    /// The database's own URL.
    pub url: String,
    server_url: String,
}

impl TestDatabase {
    /// Creates an empty database on the PostgreSQL server at `server_url`.
    pub async fn create(server_url: &str) -> TestDatabase {
        let database = TestDatabase::named(server_url);
        execute(&database.server_url, database.statement("CREATE DATABASE"))
            .await
            .expect("create test database");
        database
    }

    /// [`TestDatabase::create`] for a test that is not async (the worker's
    /// binary tests; the api's tests are all async).
    #[allow(dead_code)]
    pub fn create_blocking(server_url: &str) -> TestDatabase {
        let database = TestDatabase::named(server_url);
        execute_blocking(&database.server_url, database.statement("CREATE DATABASE"))
            .expect("create test database");
        database
    }

    fn named(server_url: &str) -> TestDatabase {
        let name = format!("codecall_test_{}", Uuid::new_v4().simple());
        TestDatabase {
            url: with_database(server_url, &name),
            name,
            server_url: server_url.to_owned(),
        }
    }

    /// `command` (e.g. `CREATE DATABASE`) on this database's (quoted) name.
    fn statement(&self, command: &str) -> String {
        format!(r#"{command} "{}""#, self.name)
    }
}

impl Drop for TestDatabase {
    /// Joined, so the database is gone before the test counts as finished.
    /// Errors are ignored: a test may have dropped the database or stopped
    /// its server itself, and panicking here would hide the test's own
    /// outcome.
    fn drop(&mut self) {
        let statement = format!("{} WITH (FORCE)", self.statement("DROP DATABASE IF EXISTS"));
        let _ = execute_blocking(&self.server_url, statement);
    }
}

/// Runs one statement on the server at `server_url`.
async fn execute(server_url: &str, statement: String) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(server_url).await?;
    conn.execute(sqlx::raw_sql(AssertSqlSafe(statement)))
        .await?;
    conn.close().await
}

/// [`execute`] on a thread of its own with a small runtime, because `drop`
/// and tests that are not async cannot await, and may run inside a runtime.
fn execute_blocking(server_url: &str, statement: String) -> Result<(), String> {
    let server_url = server_url.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime
            .block_on(execute(&server_url, statement))
            .map_err(|e| e.to_string())
    })
    .join()
    .unwrap_or_else(|_| Err("the statement's thread panicked".into()))
}
