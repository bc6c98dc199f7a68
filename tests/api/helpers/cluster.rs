//! Several nodes of one deployment: Redis (the shared one on 6379 under a prefix of the
//! test's own, or a `redis-server` of the test's own that it can stop), and Tollgate nodes run
//! as separate processes of the real binary beside the test's in-process server.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tollgate::config::RedisConfig;

use super::db::{Kind, TestDb, require_all};

/// Skips (or, under TOLLGATE_REQUIRE_ALL=1, fails) a test that needs something missing.
fn unavailable<T>(reason: &str) -> Option<T> {
    if require_all() {
        panic!("{reason} (TOLLGATE_REQUIRE_ALL=1 requires every service)");
    }
    eprintln!("skipped: {reason}");
    None
}

/// Whether a Redis server answers PING at `address`.
fn answers(address: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// The Redis every machine runs on 6379, under a key prefix of this test's own; None (after
/// saying why) when it does not answer.
pub fn shared_redis() -> Option<RedisConfig> {
    if !answers("127.0.0.1:6379") {
        return unavailable("no Redis answers on 127.0.0.1:6379");
    }
    Some(RedisConfig {
        url: Some("redis://127.0.0.1:6379".into()),
        key_prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
    })
}

/// Multi-node tests run where several servers share one database: PostgreSQL and MariaDB.
pub fn shared_database(db: &TestDb) -> bool {
    if db.kind == Kind::Sqlite {
        eprintln!(
            "skipped on SQLite: nodes of one deployment share a database server (PostgreSQL or MariaDB); SQLite is the single-node default"
        );
        return false;
    }
    true
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// A `redis-server` of the test's own, on a free port, keeping nothing on disk: stopping it
/// loses everything, as a Redis without persistence does.
pub struct OwnRedis {
    pub port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start() -> Option<OwnRedis> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            return unavailable("redis-server is not installed");
        }
        let mut redis = OwnRedis {
            port: free_port(),
            child: None,
        };
        redis.resume();
        Some(redis)
    }

    pub fn config(&self) -> RedisConfig {
        RedisConfig {
            url: Some(format!("redis://127.0.0.1:{}", self.port)),
            key_prefix: "tollgate:".into(),
        }
    }

    /// Starts the server again on the same port (empty).
    pub fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let address = format!("127.0.0.1:{}", self.port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers(&address) {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server: every connection drops and its data is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Tollgate node run as a process of its own, on the test's database and Redis.
pub struct NodeProcess {
    pub address: String,
    child: Child,
}

impl NodeProcess {
    /// Starts `tollgate serve` on a free port with `env` (TOLLGATE_* settings) besides the
    /// database and Redis.
    pub fn start(database_url: &str, redis: &RedisConfig, env: &[(&str, &str)]) -> NodeProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", database_url)
            .env("TOLLGATE_BILLING_FLUSH_MS", "50")
            .env("TOLLGATE_SYNC_INTERVAL_MS", "100")
            .env("TOLLGATE_WORKERS", "1")
            .env("TOLLGATE_REDIS_KEY_PREFIX", &redis.key_prefix)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(url) = &redis.url {
            command.env("TOLLGATE_REDIS_URL", url);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start a node");
        let stderr = child.stderr.take().expect("the node's log");
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let address = line[at + "listening on http://".len()..].trim().to_string();
                    let _ = address_tx.send(address);
                }
                if std::env::var_os("TOLLGATE_TEST_NODE_LOGS").is_some() {
                    eprintln!("node: {line}");
                }
            }
        });
        let address = address_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the node starts");
        NodeProcess { address, child }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Kills the process at once (SIGKILL): nothing is flushed, nothing let go.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
