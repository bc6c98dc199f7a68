//! One database per test: a temporary SQLite file, or a freshly created PostgreSQL or MySQL
//! database (dropped again when the test ends).

use sqlx::{AnyConnection, Connection, Executor};

/// Which server the test database lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
    MySql,
}

pub struct TestDb {
    pub url: String,
    pub kind: Kind,
    /// The server-level URL and database name to drop, for PostgreSQL and MySQL.
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

pub(crate) fn require_all() -> bool {
    std::env::var("TOLLGATE_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Skips (or, under TOLLGATE_REQUIRE_ALL=1, fails) when a backend is not available.
fn unavailable(reason: String) -> Option<TestDb> {
    if require_all() {
        panic!("{reason} (TOLLGATE_REQUIRE_ALL=1 requires every backend)");
    }
    eprintln!("skipped: {reason}");
    None
}

fn unique_name() -> String {
    format!("tollgate_test_{}", uuid::Uuid::new_v4().simple())
}

/// `scheme://user@host:port/db?params` with the database replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, params) = match url.split_once('?') {
        Some((b, p)) => (b, Some(p)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("", base));
    let host = rest.split('/').next().unwrap_or(rest);
    let mut out = format!("{scheme}://{host}/{database}");
    if let Some(params) = params {
        out.push('?');
        out.push_str(params);
    }
    out
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}/tollgate.db", dir.path().display());
        TestDb {
            url,
            kind: Kind::Sqlite,
            cleanup: None,
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> Option<TestDb> {
        Self::server("TOLLGATE_TEST_POSTGRES_URL", Kind::Postgres).await
    }

    pub async fn mysql() -> Option<TestDb> {
        Self::server("TOLLGATE_TEST_MYSQL_URL", Kind::MySql).await
    }

    async fn server(variable: &str, kind: Kind) -> Option<TestDb> {
        let Ok(server_url) = std::env::var(variable) else {
            return unavailable(format!("{variable} is not set"));
        };
        sqlx::any::install_default_drivers();
        let mut conn = match AnyConnection::connect(&server_url).await {
            Ok(conn) => conn,
            Err(e) => return unavailable(format!("cannot connect to {variable}: {e}")),
        };
        let name = unique_name();
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create a test database");
        let _ = conn.close().await;
        Some(TestDb {
            url: with_database(&server_url, &name),
            kind,
            cleanup: Some((server_url, name)),
            _dir: None,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((server_url, name)) = self.cleanup.take() else {
            return;
        };
        let kind = self.kind;
        // Drop runs inside the test's runtime; use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut conn) = AnyConnection::connect(&server_url).await {
                    let sql = match kind {
                        Kind::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                        _ => format!("DROP DATABASE IF EXISTS {name}"),
                    };
                    let _ = conn.execute(sql.as_str()).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

#[test]
fn replaces_the_database_in_urls() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("mysql://root@127.0.0.1:3306", "x"),
        "mysql://root@127.0.0.1:3306/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
}
