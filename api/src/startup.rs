//! Building and running the application: connections, migrations, the router
//! with its middleware, and graceful shutdown.
//!
//! [`Application::build`] does everything that can fail at start-up and binds
//! the listener, so the port is known before serving (tests bind port 0).

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderValue, Method, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    serve::ListenerExt as _,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::{PgPool, postgres::PgPoolOptions};
use tokio::net::TcpListener;
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{
    admin, api_tokens,
    auth::{self, password::Passwords, throttle::LoginThrottle, tokens::TokenKeys},
    compat,
    config::Config,
    documents,
    error::Error,
    feedback, friends, health, openapi, problems, prometheus, realtime, retention, rooms, run_wait,
    runs, sessions, users,
};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

/// Everything a handler may need, cloned cheaply into each request.
#[derive(Clone)]
pub struct ApiContext {
    pub config: Arc<Config>,
    pub db: PgPool,
    pub redis: ConnectionManager,
    pub passwords: Passwords,
    pub tokens: Arc<TokenKeys>,
    pub throttle: LoginThrottle,
    /// The rooms' Redis subscriber and local fan-out.
    pub hub: std::sync::Arc<realtime::hub::Hub>,
    pub documents: Arc<documents::live::Documents>,
    /// `?wait=true` requests waiting for their run's finish notification.
    pub run_waiters: Arc<run_wait::RunWaiters>,
    /// This replica's open sockets (token lifetime, revocations, caps).
    pub sockets: Arc<realtime::lifetime::Sockets>,
    /// Wakes this replica's session clock when a deadline changes.
    pub clock: Arc<sessions::clock::Clock>,
    /// This replica's present sockets, refreshed together.
    pub presence: Arc<realtime::presence::Local>,
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    shutdown_grace: Duration,
}

impl Application {
    /// Connects to PostgreSQL (and fails if it cannot), applies pending
    /// migrations, prepares a lazy Redis connection (Redis being down makes
    /// the service unready, not dead), and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        prometheus::handle();
        let db = PgPoolOptions::new()
            .max_connections(config.database.max_connections)
            .acquire_timeout(config.database.acquire_timeout)
            .connect(config.database.url.expose())
            .await
            .context("cannot connect to PostgreSQL (DATABASE_URL)")?;
        sqlx::migrate!("../migrations")
            .run(&db)
            .await
            .context("applying database migrations failed")?;

        promote_admins(&db, &config.auth.admin_emails).await?;

        let redis = connect_redis(config.redis.url.expose())?;
        let passwords = Passwords::new(config.auth.password_hash_concurrency)?;
        let tokens = Arc::new(TokenKeys::new(&config.jwt));
        let throttle = LoginThrottle::new(&config.redis.key_prefix, &config.auth);
        let run_waiters = run_wait::RunWaiters::spawn(config.database.url.expose())
            .await
            .context("cannot listen for run notifications (DATABASE_URL)")?;
        let hub = realtime::hub::Hub::new(config.redis.url.expose())?;

        let address = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address} (HOST/PORT)"))?;

        let shutdown_grace = config.http.shutdown_grace;
        let ctx = ApiContext {
            config: Arc::new(config),
            db,
            redis,
            passwords,
            tokens,
            throttle,
            run_waiters,
            hub,
            documents: Arc::default(),
            sockets: Arc::default(),
            clock: Arc::default(),
            presence: Arc::default(),
        };
        sessions::spawn_idle_sweeper(ctx.clone());
        sessions::clock::spawn(ctx.clone());
        retention::spawn_sweeper(ctx.clone());
        realtime::lifetime::spawn(&ctx);
        rooms::spawn(&ctx);
        compat::callbacks::spawn(ctx.clone());
        Ok(Application {
            listener,
            router: router(ctx),
            shutdown_grace,
        })
    }

    /// The port actually bound (useful when `PORT=0`).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish
    /// for at most the configured grace period.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(port = self.port(), "listening");
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        // Small frames go out at once: with Nagle's algorithm a socket's
        // second event waits for the client's (delayed) ACK of the first.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let server = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, draining in-flight requests");
            let _ = stopping_tx.send(());
        });
        let grace = self.shutdown_grace;
        tokio::select! {
            result = server.into_future() => result,
            () = async move {
                if stopping_rx.await.is_ok() {
                    tokio::time::sleep(grace).await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => {
                tracing::warn!(?grace, "shutdown grace period over; dropping remaining connections");
                Ok(())
            }
        }
    }
}

/// Gives the `admin` role to the accounts listed in `ADMIN_EMAILS` that
/// already exist (new ones get it when they register).
async fn promote_admins(db: &PgPool, emails: &[String]) -> anyhow::Result<()> {
    if emails.is_empty() {
        return Ok(());
    }
    let promoted = sqlx::query!(
        "UPDATE users SET role = 'admin' WHERE email = ANY($1) AND role <> 'admin'",
        emails
    )
    .execute(db)
    .await
    .context("promoting ADMIN_EMAILS")?
    .rows_affected();
    if promoted > 0 {
        tracing::info!(promoted, "granted the admin role from ADMIN_EMAILS");
    }
    Ok(())
}

/// A Redis connection that reconnects by itself and connects lazily, so the
/// api starts (and reports itself unready) while Redis is down.
pub fn connect_redis(url: &str) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        // The default 500 ms turns one slow reply under load into an error.
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(2);
    ConnectionManager::new_lazy_with_config(client, config).context("cannot set up Redis client")
}

/// The whole HTTP surface: each feature module contributes its routes.
pub fn router(ctx: ApiContext) -> Router {
    let http = &ctx.config.http;
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(http.cors_origins.clone()))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(3600));

    let (routes, openapi) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::router())
        // Per-route body limits: the innermost `DefaultBodyLimit` wins, so
        // these replace the small default set on the whole router below.
        .merge(auth::router().layer(DefaultBodyLimit::max(http.auth_body_limit_bytes)))
        .merge(users::router().layer(DefaultBodyLimit::max(http.auth_body_limit_bytes)))
        .merge(friends::router())
        .merge(sessions::router())
        .merge(runs::router().layer(DefaultBodyLimit::max(http.body_limit_bytes)))
        // A problem carries its tests: the same limit as a run.
        .merge(problems::router().layer(DefaultBodyLimit::max(http.body_limit_bytes)))
        .merge(feedback::router())
        .merge(api_tokens::router())
        .merge(compat::router().layer(DefaultBodyLimit::max(http.body_limit_bytes)))
        .merge(rooms::router())
        .merge(documents::router())
        .merge(admin::router())
        .merge(prometheus::router())
        .split_for_parts();

    Router::new()
        .merge(routes)
        .route_layer(middleware::from_fn(prometheus::track))
        .merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi::document(openapi)))
        .fallback(|| async { Error::NotFound("no such route") })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(http.small_body_limit_bytes))
        .layer(middleware::from_fn_with_state(
            http.request_timeout,
            request_timeout,
        ))
        .layer(cors)
        .layer(CatchPanicLayer::custom(|_| {
            Error::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // The path only: query strings may carry tokens (`?token=`),
                // and so does the Piston door's path (redacted).
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %compat::piston::redact(request.uri().path()),
                    request_id,
                )
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::from_fn_with_state(instance_id(), tag_instance))
        .with_state(ctx)
}

/// This process's name for the `x-instance-id` response header: the host
/// name, which under Docker is the container id (Swarm, Kubernetes: the task
/// or pod). Behind a load balancer it tells clients and operators which
/// replica answered; it reveals nothing the balancer's operator does not know.
fn instance_id() -> HeaderValue {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .and_then(|name| HeaderValue::from_str(name.trim()).ok())
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| HeaderValue::from_static("unknown"))
}

/// Adds `x-instance-id` to every response, errors and WebSocket upgrades included.
async fn tag_instance(State(id): State<HeaderValue>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert("x-instance-id", id);
    response
}

/// Bounds the time a request may take: past `REQUEST_TIMEOUT` it answers 408
/// `request_timeout`, so a slow client cannot hold a task. WebSocket upgrades
/// return at once, so long-lived sockets are unaffected.
async fn request_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Error::Timeout.into_response(),
    }
}
