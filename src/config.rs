//! The one typed configuration, from command-line flags and `TOLLGATE_*` environment variables
//! (flags win). Settings an admin may change while the server runs are runtime options
//! instead (see `options`).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

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

    /// Seconds a graceful stop waits for requests and streams in flight.
    #[arg(long, env = "TOLLGATE_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Use the first address in X-Forwarded-For as the client address (only behind a proxy
    /// you trust).
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
}

impl ServerConfig {
    pub fn billing_flush_interval(&self) -> Duration {
        Duration::from_millis(self.billing_flush_ms)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            billing_flush_ms: 1000,
            sync_interval_ms: 500,
            shutdown_grace_secs: 30,
            trust_forwarded_for: false,
            upstream_connect_timeout_secs: 10,
            workers: 0,
        }
    }
}

/// Everything `App::build` needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub database: DatabaseConfig,
    pub server: ServerConfig,
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
}
