//! PostgreSQL going away: every route answers 503 `dependency_unavailable`
//! (not 500) while it is down, and the api recovers by itself when it is back.

use std::{path::PathBuf, process::Command, time::Duration};

use codecall_api::{config::Config, startup::Application};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::{
    auth::signed_up_user,
    helpers::{TestApp, assert_error, create_database, test_env, with_database},
    social::{User, call},
};

/// A PostgreSQL server of one test's own (a fresh cluster on a free port), so
/// the test can stop and restart it. Stopped and removed on drop.
struct OwnPostgres {
    url: String,
    bindir: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl OwnPostgres {
    fn start() -> OwnPostgres {
        let bindir = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (scripts/servers.sh installs it)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("a PostgreSQL bin directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = std::env::temp_dir().join(format!("codecall-own-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let pg = OwnPostgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            bindir,
            dir,
            port,
        };
        // PostgreSQL refuses to run as root: run it as `postgres` then.
        if pg.as_root() {
            let status = Command::new("chown")
                .args(["postgres", &pg.dir.to_string_lossy()])
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        pg.restart();
        pg
    }

    fn as_root(&self) -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    }

    /// `tool` of the server's bin directory, run as `postgres` when we are root.
    fn command(&self, tool: &str) -> Command {
        let program = self.bindir.join(tool);
        if self.as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let output = self
            .command(tool)
            .args(args)
            .output()
            .expect("PostgreSQL tool runs");
        assert!(
            output.status.success(),
            "{tool} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn restart(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-w",
                "-t",
                "30",
                "-o",
                &options,
                "start",
            ],
        );
    }

    fn stop(&self) {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data.to_string_lossy(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn postgres_down_answers_503_on_every_route_and_recovers_by_itself() {
    let pg = OwnPostgres::start();
    let db_name = create_database(&pg.url).await;
    let db_url = with_database(&pg.url, &db_name);
    let (_, redis_url) = crate::helpers::server_urls();
    let prefix = format!("test:{}:", Uuid::new_v4().simple());
    let mut env = test_env(&db_url, &redis_url, &prefix);
    env.insert("DATABASE_ACQUIRE_TIMEOUT".into(), "1s".into());
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("test configuration");
    let server = Application::build(config)
        .await
        .expect("application builds");
    let port = server.port();
    tokio::spawn(server.run_until_stopped(std::future::pending()));
    let app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        db: sqlx::PgPool::connect_lazy(&db_url).expect("lazy pool"),
        db_name,
        server_url: pg.url.clone(),
        db_url,
        redis_url,
        redis_prefix: prefix,
        client: reqwest::Client::new(),
    };
    let email = "down@codecall.dev";
    let (id, token, _) = signed_up_user(&app, email).await;
    let me = User {
        id,
        email: email.into(),
        token,
    };
    let login = json!({"email": email, "password": "StrongPass123"});

    pg.stop();
    let started = std::time::Instant::now();
    assert_error(
        app.post_json("/auth/login", &login).await,
        503,
        "dependency_unavailable",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered promptly"
    );
    assert_error(
        call(&app, Some(&me), Method::GET, "/api/users/me", None).await,
        503,
        "dependency_unavailable",
    )
    .await;
    assert_error(
        call(&app, Some(&me), Method::GET, "/api/sessions", None).await,
        503,
        "dependency_unavailable",
    )
    .await;
    assert_error(
        app.post_json(
            "/auth/register",
            &json!({"name": "Late", "email": "late@codecall.dev", "password": "StrongPass123"}),
        )
        .await,
        503,
        "dependency_unavailable",
    )
    .await;

    pg.restart();
    // Routes without a sign-in throttle first: failed logins would count.
    let mut recovered = false;
    for _ in 0..50 {
        let response = call(&app, Some(&me), Method::GET, "/api/users/me", None).await;
        if response.status().as_u16() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the api works again without a restart");
    let response = app.post_json("/auth/login", &login).await;
    assert_eq!(response.status().as_u16(), 200);
}
