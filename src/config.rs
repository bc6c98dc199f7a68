//! The one typed configuration, from command-line flags and `TOLLGATE_*` environment variables
//! (flags win). Settings an admin may change while the server runs are runtime options
//! instead (see `options`).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::domain::client_address::TrustedProxies;

/// The billing dead-letter file's name when no path is configured: beside a SQLite database,
/// or in the working directory for a database server (see `Config::dead_letter_path`).
pub const DEAD_LETTER_FILE_NAME: &str = "tollgate-billing-dead-letter.jsonl";

/// Where the database is. Shared by the server and every CLI command.
#[derive(clap::Args, Clone)]
pub struct DatabaseConfig {
    /// Database URL: sqlite://FILE, postgres://…, or mysql://…
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "sqlite://tollgate.db",
        global = true
    )]
    pub url: String,

    /// Most connections the pool opens.
    #[arg(
        long = "db-max-connections",
        env = "TOLLGATE_DB_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub max_connections: u32,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// Where the nodes of one deployment share what must be live across them (budget holds, rate
/// limits, the change feed's announcements, the portal's limits). Shared by the server and every
/// CLI command, which announce their writes there. Without a URL, one node counts everything
/// in its own memory.
#[derive(clap::Args, Clone)]
pub struct RedisConfig {
    /// Redis URL (`redis://…`, or `rediss://…` for TLS), standalone.
    #[arg(
        id = "redis_url",
        long = "redis-url",
        env = "TOLLGATE_REDIS_URL",
        global = true
    )]
    pub url: Option<String>,

    /// The prefix of every key Tollgate writes in Redis, so several deployments (or tests) can
    /// share one server.
    #[arg(
        id = "redis_key_prefix",
        long = "redis-key-prefix",
        env = "TOLLGATE_REDIS_KEY_PREFIX",
        default_value = "tollgate:",
        global = true
    )]
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            key_prefix: "tollgate:".into(),
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// Hides the password in `scheme://user:password@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// How the server runs.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "TOLLGATE_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Milliseconds between billing writes; 0 writes every request as it finishes.
    #[arg(long, env = "TOLLGATE_BILLING_FLUSH_MS", default_value_t = 1000)]
    pub billing_flush_ms: u64,

    /// Milliseconds between checks for data changed by the CLI, the API or another node.
    #[arg(long, env = "TOLLGATE_SYNC_INTERVAL_MS", default_value_t = 500)]
    pub sync_interval_ms: u64,

    /// Milliseconds between rounds of asking Stripe about unpaid top-up orders.
    #[arg(long, env = "TOLLGATE_RECONCILE_INTERVAL_MS", default_value_t = 60_000)]
    pub reconcile_interval_ms: u64,

    /// Seconds a graceful stop waits for requests and streams in flight.
    #[arg(long, env = "TOLLGATE_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Proxies in front of Tollgate whose forwarding headers (`Forwarded`, else
    /// `X-Forwarded-For`) say who the client is: addresses and CIDR ranges, comma-separated.
    /// A request from any other address is its own client, whatever its headers say.
    #[arg(
        long,
        env = "TOLLGATE_TRUSTED_PROXIES",
        value_name = "CIDR,...",
        default_value = ""
    )]
    pub trusted_proxies: TrustedProxies,

    /// Trust a proxy on this machine: the same as adding 127.0.0.0/8,::1 to
    /// --trusted-proxies.
    #[arg(long, env = "TOLLGATE_TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,

    /// Seconds to wait for a TCP (and TLS) connection to an upstream.
    #[arg(
        long,
        env = "TOLLGATE_UPSTREAM_CONNECT_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub upstream_connect_timeout_secs: u64,

    /// Threads that serve requests; 0 starts one per CPU core. Fewer leave cores to other
    /// processes on a shared machine.
    #[arg(long, env = "TOLLGATE_WORKERS", default_value_t = 0)]
    pub workers: usize,

    /// Seconds a client has from connecting to sending its first request's headers (and
    /// between requests on a kept-alive connection) before the connection is closed.
    #[arg(long, env = "TOLLGATE_HEADER_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub header_read_timeout_secs: u64,

    /// Seconds the whole body of a portal, `/api` or webhook request may take to arrive, and
    /// the time a `/v1` body has before --min-body-bytes-per-sec applies. A body that misses
    /// its deadline closes its connection.
    #[arg(
        long,
        env = "TOLLGATE_BODY_TIMEOUT_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub body_timeout_secs: u64,

    /// The average rate, in bytes per second, a `/v1` body must keep once --body-timeout-secs
    /// have passed (so large uploads take as long as they need, trickles do not).
    #[arg(
        long,
        env = "TOLLGATE_MIN_BODY_BYTES_PER_SEC",
        default_value_t = 8192,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub min_body_bytes_per_sec: u64,

    /// Where billing records the database refuses are kept for `tollgate billing replay`
    /// (default: tollgate-billing-dead-letter.jsonl beside the SQLite file, or in the working
    /// directory).
    #[arg(long, env = "TOLLGATE_DEAD_LETTER_FILE")]
    pub dead_letter_file: Option<PathBuf>,

    /// Also serve `/metrics` without a token, with `/healthz` and `/readyz`, on this address
    /// (one only the monitoring network reaches; port 0 picks a free port).
    #[arg(long, env = "TOLLGATE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

impl ServerConfig {
    pub fn billing_flush_interval(&self) -> Duration {
        Duration::from_millis(self.billing_flush_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs.max(1))
    }

    /// The deadlines every request body gets.
    pub fn body_deadlines(&self) -> BodyDeadlines {
        BodyDeadlines {
            timeout: Duration::from_secs(self.body_timeout_secs.max(1)),
            min_bytes_per_sec: self.min_body_bytes_per_sec.max(1),
        }
    }

    /// The proxies whose forwarding headers are believed: --trusted-proxies, and this machine
    /// with --trust-forwarded-for.
    pub fn proxies(&self) -> TrustedProxies {
        if self.trust_forwarded_for {
            self.trusted_proxies
                .clone()
                .with(&TrustedProxies::loopback())
        } else {
            self.trusted_proxies.clone()
        }
    }
}

/// How long a request body may take (see `app::connection`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyDeadlines {
    /// The whole body of a portal, `/api` or webhook request; the start of a `/v1` one.
    pub timeout: Duration,
    /// The average a `/v1` body keeps after `timeout`.
    pub min_bytes_per_sec: u64,
}

impl Config {
    /// The dead-letter file: as configured, else beside a SQLite database file, else in the
    /// working directory.
    pub fn dead_letter_path(&self) -> PathBuf {
        if let Some(path) = &self.server.dead_letter_file {
            return path.clone();
        }
        let name = DEAD_LETTER_FILE_NAME;
        sqlite_file(&self.database.url)
            .and_then(|file| file.parent().map(|dir| dir.join(name)))
            .unwrap_or_else(|| PathBuf::from(name))
    }
}

/// The file of a `sqlite://` URL; None for other databases and in-memory SQLite.
pub(crate) fn sqlite_file(url: &str) -> Option<&Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or_default();
    (!file.is_empty() && !file.contains(":memory:")).then(|| Path::new(file))
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            billing_flush_ms: 1000,
            sync_interval_ms: 500,
            reconcile_interval_ms: 60_000,
            shutdown_grace_secs: 30,
            trusted_proxies: TrustedProxies::default(),
            trust_forwarded_for: false,
            upstream_connect_timeout_secs: 10,
            workers: 0,
            header_read_timeout_secs: 30,
            body_timeout_secs: 10,
            min_body_bytes_per_sec: 8192,
            dead_letter_file: None,
            metrics_listen: None,
        }
    }
}

/// Everything `App::build` needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub database: DatabaseConfig,
    pub server: ServerConfig,
    pub redis: RedisConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact_url("postgres://postgres:secret@127.0.0.1/db"),
            "postgres://postgres:***@127.0.0.1/db"
        );
        assert_eq!(
            redact_url("mysql://root@127.0.0.1/db"),
            "mysql://root@127.0.0.1/db"
        );
        assert_eq!(redact_url("sqlite://tollgate.db"), "sqlite://tollgate.db");
    }

    #[test]
    fn the_dead_letter_file_sits_beside_the_sqlite_file() {
        let config = |url: &str| Config {
            database: DatabaseConfig {
                url: url.into(),
                max_connections: 1,
            },
            server: ServerConfig::default(),
            redis: RedisConfig::default(),
        };
        let name = DEAD_LETTER_FILE_NAME;
        assert_eq!(
            config("sqlite:///var/lib/tollgate/t.db?mode=rwc").dead_letter_path(),
            PathBuf::from("/var/lib/tollgate").join(name)
        );
        assert_eq!(
            config("sqlite://tollgate.db").dead_letter_path(),
            PathBuf::from(name)
        );
        assert_eq!(
            config("postgres://u@h/db").dead_letter_path(),
            PathBuf::from(name)
        );
        let mut set = config("sqlite://x.db");
        set.server.dead_letter_file = Some("/tmp/d.jsonl".into());
        assert_eq!(set.dead_letter_path(), PathBuf::from("/tmp/d.jsonl"));
    }
}
