//! Test harness: the real server on port 0 with its own database per test (a temporary
//! SQLite file, or a fresh PostgreSQL / MySQL database), fake upstreams on port 0, and
//! helpers to seed data and read balances and logs back.

pub mod api;
pub mod browser;
pub mod cluster;
pub mod db;
pub mod mail;
pub mod oauth_provider;
pub mod stripe;
pub mod upstream;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tollgate::config::{Config, DatabaseConfig, RedisConfig, ServerConfig};
use tollgate::service::channels::ChannelInput;
use tollgate::service::db::logs::{LogFilter, RequestLog};
use tollgate::service::db::users::UserRow;
use tollgate::service::db::{Db, tokens::TokenRow};
use tollgate::service::prices::PriceInput;
use tollgate::service::tokens::CreateToken;
use tollgate::service::users::CreateUser;
use tollgate::service::{Caller, Ctx};
use tollgate::state::AppState;
use tollgate::{App, service};

pub use api::{Api, admin_token};
pub use browser::Browser;
pub use db::TestDb;
pub use mail::MailSink;
pub use upstream::{FakeUpstream, Reply};

/// Tests manage the server the way the command line does: with every right.
pub const CLI: Caller = Caller::Cli;

/// Generates one test per database backend: `name::sqlite`, `name::postgres`, `name::mysql`.
/// PostgreSQL and MySQL run when `TOLLGATE_TEST_POSTGRES_URL` / `TOLLGATE_TEST_MYSQL_URL`
/// are set; otherwise they skip with a printed reason, unless `TOLLGATE_REQUIRE_ALL=1`, which
/// turns a missing backend into a failure.
macro_rules! db_test {
    ($(#[$meta:meta])* async fn $name:ident($db:ident : TestDb) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            async fn run($db: $crate::helpers::TestDb) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::helpers::TestDb::sqlite().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::helpers::TestDb::postgres().await {
                    run(db).await
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                if let Some(db) = $crate::helpers::TestDb::mysql().await {
                    run(db).await
                }
            }
        }
    };
}
pub(crate) use db_test;

pub fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        tollgate::telemetry::init("info,tollgate=debug,sqlx=warn");
    }
}

/// A running Tollgate with its own database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub db: Db,
    pub db_url: String,
    pub client: reqwest::Client,
    /// The first-run link the server printed (no administrator existed at its start).
    pub setup_link: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    /// Files the server writes beside its database (the billing dead-letter file).
    _scratch: tempfile::TempDir,
    // Dropped last: removes the database (taken by a restart, which hands it on).
    test_db: Option<TestDb>,
}

/// Settings tests usually want: fast billing flushes and snapshot syncs.
pub fn test_server_config() -> ServerConfig {
    ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        billing_flush_ms: 50,
        sync_interval_ms: 100,
        reconcile_interval_ms: 60_000,
        shutdown_grace_secs: 5,
        trusted_proxies: Default::default(),
        trust_forwarded_for: false,
        upstream_connect_timeout_secs: 2,
        workers: 0,
        header_read_timeout_secs: 30,
        body_timeout_secs: 10,
        min_body_bytes_per_sec: 8192,
        dead_letter_file: None,
        metrics_listen: None,
    }
}

impl TestApp {
    /// The running server's service context: writes through it are live before they return.
    pub fn ctx(&self) -> &Ctx {
        &self.state.ctx
    }

    pub async fn spawn(test_db: TestDb) -> TestApp {
        Self::spawn_with(test_db, |_| {}).await
    }

    pub async fn spawn_with(test_db: TestDb, adjust: impl FnOnce(&mut ServerConfig)) -> TestApp {
        Self::spawn_node(test_db, RedisConfig::default(), adjust).await
    }

    /// A node of a deployment that shares Redis (`redis`), as `spawn_with`.
    pub async fn spawn_node(
        test_db: TestDb,
        redis: RedisConfig,
        adjust: impl FnOnce(&mut ServerConfig),
    ) -> TestApp {
        let url = test_db.url.clone();
        let mut app = Self::start(&url, redis, adjust).await;
        app.test_db = Some(test_db);
        app
    }

    /// Another server on this one's database (and Redis, if it has one), as a second node of
    /// one site is.
    pub async fn spawn_sibling(&self) -> TestApp {
        self.spawn_sibling_with(|_| {}).await
    }

    pub async fn spawn_sibling_with(&self, adjust: impl FnOnce(&mut ServerConfig)) -> TestApp {
        Self::start(&self.db_url, self.state.config.redis.clone(), adjust).await
    }

    async fn start(
        url: &str,
        redis: RedisConfig,
        adjust: impl FnOnce(&mut ServerConfig),
    ) -> TestApp {
        init_logging();
        let scratch = tempfile::tempdir().expect("a scratch directory");
        let mut server = test_server_config();
        server.dead_letter_file = Some(scratch.path().join("dead-letter.jsonl"));
        adjust(&mut server);
        let config = Config {
            database: DatabaseConfig {
                url: url.to_string(),
                max_connections: 5,
            },
            server,
            redis,
        };
        let app = App::build(config)
            .await
            .unwrap_or_else(|e| panic!("the app starts: {e:#}"));
        let addr = app.local_addr();
        let state = app.state();
        let setup_link = app.setup_link().map(str::to_string);
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let db = Db::connect(url, 3).await.expect("a second pool");
        TestApp {
            addr,
            state,
            db,
            db_url: url.to_string(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            setup_link,
            shutdown: Some(shutdown),
            server: Some(server),
            _scratch: scratch,
            test_db: None,
        }
    }

    /// Where the server sets aside billing records the database refuses.
    pub fn dead_letter_path(&self) -> std::path::PathBuf {
        self.state.config.dead_letter_path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Rebuilds the server's snapshot now (tests seed data through the services, as the CLI
    /// does, and need not wait for the sync interval).
    pub async fn reload(&self) {
        tollgate::jobs::snapshot_sync::reload(&self.state)
            .await
            .expect("snapshot reload");
    }

    /// Waits until every billing record so far is written.
    pub async fn flush(&self) {
        self.state.billing.flush().await;
    }

    /// Kills the server as a crash would (its task aborted mid-work: nothing flushed, only what
    /// was committed stays) and starts a new one on the same database.
    pub async fn killed_and_restarted(mut self, adjust: impl FnOnce(&mut ServerConfig)) -> TestApp {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
        self.shutdown.take();
        self.db.close().await;
        let test_db = self.test_db.take().expect("the database");
        let redis = self.state.config.redis.clone();
        TestApp::spawn_node(test_db, redis, adjust).await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    pub async fn set_option(&self, name: &str, value: &str) {
        service::options::set(self.ctx(), &CLI, name, value)
            .await
            .expect("set option");
    }

    pub async fn create_user(&self, username: &str, quota_usd: &str) -> UserRow {
        self.create_user_in(username, quota_usd, "default").await
    }

    /// An account with an email address (unverified) and a password, as if registered.
    pub async fn create_user_with_email(
        &self,
        username: &str,
        email: &str,
        password: &str,
    ) -> UserRow {
        service::users::create(
            self.ctx(),
            &CLI,
            CreateUser {
                username: username.into(),
                password: Some(password.into()),
                email: Some(email.into()),
                role: None,
                group: None,
                quota_usd: None,
                ..Default::default()
            },
        )
        .await
        .expect("create user")
    }

    /// An account of `role` (`user`, `admin`, `root`) with a password, to sign in to the
    /// portal and the console with.
    pub async fn create_account(&self, username: &str, role: &str, password: &str) -> UserRow {
        service::users::create(
            self.ctx(),
            &CLI,
            CreateUser {
                username: username.into(),
                password: Some(password.into()),
                role: Some(role.into()),
                ..Default::default()
            },
        )
        .await
        .expect("create account")
    }

    pub async fn create_user_in(&self, username: &str, quota_usd: &str, group: &str) -> UserRow {
        service::users::create(
            self.ctx(),
            &CLI,
            CreateUser {
                username: username.into(),
                password: None,
                email: None,
                role: None,
                group: Some(group.into()),
                quota_usd: Some(quota_usd.into()),
                ..Default::default()
            },
        )
        .await
        .expect("create user")
    }

    pub async fn create_group(&self, name: &str, ratio: &str) {
        service::groups::create(
            self.ctx(),
            &CLI,
            name,
            service::groups::GroupInput {
                ratio: Some(ratio.into()),
                ..Default::default()
            },
        )
        .await
        .expect("create group");
    }

    /// Creates a key; returns the plain key and its row.
    pub async fn create_key(&self, input: CreateToken) -> (String, TokenRow) {
        let (row, key) = service::tokens::create(self.ctx(), &CLI, input)
            .await
            .expect("create key");
        (key, row)
    }

    /// An unlimited key for `username`.
    pub async fn key_for(&self, username: &str) -> String {
        self.create_key(CreateToken {
            username: username.into(),
            name: "test".into(),
            ..Default::default()
        })
        .await
        .0
    }

    pub async fn add_channel(&self, name: &str, upstream: &FakeUpstream, models: &str) -> i64 {
        self.add_channel_with(ChannelInput {
            name: Some(name.into()),
            base_url: Some(upstream.base_url()),
            models: Some(models.into()),
            ..Default::default()
        })
        .await
    }

    pub async fn add_channel_with(&self, mut input: ChannelInput) -> i64 {
        input.channel_type.get_or_insert_with(|| "openai".into());
        input
            .keys
            .get_or_insert_with(|| vec!["sk-upstream-test-key".into()]);
        service::channels::create(self.ctx(), &CLI, input)
            .await
            .expect("add channel")
            .id
    }

    pub async fn price(&self, model: &str, input: &str, output: &str) {
        service::prices::set(
            self.ctx(),
            &CLI,
            model,
            &PriceInput {
                input: Some(input.into()),
                output: Some(output.into()),
                ..Default::default()
            },
        )
        .await
        .expect("set price");
    }

    pub async fn price_per_request(&self, model: &str, usd: &str) {
        service::prices::set(
            self.ctx(),
            &CLI,
            model,
            &PriceInput {
                per_request: Some(usd.into()),
                ..Default::default()
            },
        )
        .await
        .expect("set price");
    }

    /// Reads through the test's own pool, which outlives the server's (closed at shutdown).
    pub async fn user(&self, username: &str) -> UserRow {
        service::users::get(&Ctx::new(self.db.clone()), &CLI, username)
            .await
            .expect("user")
    }

    /// Makes every session of `username` look signed in an hour ago: changes that need a
    /// recent sign-in then need the current password.
    pub async fn age_sign_ins_of(&self, username: &str) {
        let user = self.user(username).await;
        let now = tollgate::service::db::now_ms();
        for mut row in tollgate::service::db::web_sessions::for_user(&self.db, user.id, now)
            .await
            .expect("sessions")
        {
            let mut data: serde_json::Map<String, Value> =
                serde_json::from_str(&row.data).expect("session data");
            data.insert("signed_in_at".into(), Value::from(now - 3_600_000));
            row.data = serde_json::to_string(&data).expect("json");
            tollgate::service::db::web_sessions::save(&self.db, &row)
                .await
                .expect("save session");
        }
    }

    /// The ids of a user's keys, oldest first.
    pub async fn token_ids_of(&self, username: &str) -> Vec<i64> {
        service::tokens::list_for_user(&Ctx::new(self.db.clone()), &CLI, username)
            .await
            .expect("keys")
            .iter()
            .map(|t| t.id)
            .collect()
    }

    pub async fn token(&self, id: i64) -> TokenRow {
        service::tokens::get(&Ctx::new(self.db.clone()), &CLI, id)
            .await
            .expect("token")
    }

    /// Every log row, oldest first.
    pub async fn logs(&self) -> Vec<RequestLog> {
        let mut rows = tollgate::service::db::logs::list(
            &self.db,
            &LogFilter {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .expect("logs");
        rows.reverse();
        rows
    }

    /// Waits (up to 5 s) until at least `count` log rows are written.
    pub async fn wait_for_logs(&self, count: usize) -> Vec<RequestLog> {
        for _ in 0..100 {
            self.flush().await;
            let rows = self.logs().await;
            if rows.len() >= count {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let rows = self.logs().await;
        panic!("expected {count} log rows, found {}: {rows:#?}", rows.len());
    }

    pub async fn chat(&self, key: &str, body: Value) -> reqwest::Response {
        self.post(key, "/v1/chat/completions", body).await
    }

    /// A streamed chat completion read to its end: the status and everything sent.
    pub async fn chat_streamed(&self, key: &str, model: &str) -> (u16, String) {
        let mut body = chat_body(model);
        body["stream"] = Value::Bool(true);
        let answer = self.chat(key, body).await;
        let status = answer.status().as_u16();
        (status, answer.text().await.unwrap_or_default())
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("request reaches the server")
    }

    /// Quota units of `usd` at the default rate.
    pub fn units(usd: f64) -> i64 {
        (usd * 500_000.0).round() as i64
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A typical one-message chat request.
pub fn chat_body(model: &str) -> Value {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 16
    })
}

/// Asserts an OpenAI error envelope with the given status and code; returns the message.
pub async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    assert!(
        response.headers().contains_key("x-request-id"),
        "every /v1 answer carries x-request-id"
    );
    let body: Value = response.json().await.expect("a JSON error body");
    let error = &body["error"];
    assert_eq!(error["code"], code, "unexpected error: {body}");
    assert!(error["type"].is_string(), "error type missing: {body}");
    let message = error["message"].as_str().expect("message").to_string();
    assert!(!message.is_empty());
    message
}

/// A streamed answer's whole body, read as it arrives.
pub async fn read_text(response: reqwest::Response) -> String {
    use futures::StreamExt;
    let mut bytes = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.expect("stream chunk"));
    }
    String::from_utf8(bytes).expect("UTF-8 stream")
}

/// The `data:` payloads of a server-sent-event answer: JSON chunks, and `[DONE]` as a string.
pub async fn read_chunks(response: reqwest::Response) -> Vec<Value> {
    read_text(response)
        .await
        .split("\n\n")
        .filter_map(|event| event.trim().strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_string())))
        .collect()
}
