//! Who the client is: forwarding headers count only when a trusted proxy sends them, walked
//! from the right, so a client cannot pick its own address to escape the per-address sign-in
//! limit or a key's IP allow-list. A key refused for its address is logged.

use crate::helpers::{Browser, FakeUpstream, TestApp, chat_body, db_test, expect_error};
use tollgate::domain::client_address::TrustedProxies;
use tollgate::domain::kinds::Outcome;
use tollgate::service::tokens::CreateToken;

/// A site serving `gpt-4o-mini`, and a key of alice's usable only from 203.0.113.0/24.
async fn site(app: &TestApp) -> (String, i64, FakeUpstream) {
    let upstream = FakeUpstream::chat().await;
    app.add_channel("main", &upstream, "gpt-4o-mini").await;
    app.price("gpt-4o-mini", "0.15", "0.60").await;
    app.create_user("alice", "5").await;
    let (key, row) = app
        .create_key(CreateToken {
            username: "alice".into(),
            name: "office".into(),
            allow_ips: Some("203.0.113.0/24".into()),
            ..Default::default()
        })
        .await;
    app.reload().await;
    (key, row.id, upstream)
}

/// A chat request with these extra headers.
async fn chat_with(app: &TestApp, key: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat_body("gpt-4o-mini"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// One wrong sign-in (a fresh visitor each time, an account name never used before), sent
/// with these headers; the answer's status.
async fn wrong_sign_in(app: &TestApp, attempt: usize, headers: &[(&str, &str)]) -> u16 {
    let browser = Browser::with_headers(app, headers);
    let login = format!("nobody{attempt}");
    browser.sign_in(&login, "not the password").await.status
}

/// The per-address limit: 30 wrong sign-ins in five minutes.
const SIGN_INS_PER_ADDRESS: usize = 30;

db_test! {
    /// Without a trusted proxy, X-Forwarded-For and Forwarded are the client's own words: a
    /// new address in them every time does not escape the sign-in limit, and naming an
    /// allowed address does not pass a key's allow-list.
    async fn forwarding_headers_from_a_client_are_not_believed(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let (key, _, upstream) = site(&app).await;
        for headers in [
            [("x-forwarded-for", "203.0.113.5")],
            [("forwarded", "for=203.0.113.5")],
        ] {
            let message = expect_error(chat_with(&app, &key, &headers).await, 403, "ip_not_allowed").await;
            assert!(message.contains("127.0.0.1"), "{message}");
        }
        assert_eq!(upstream.request_count(), 0);

        for attempt in 0..SIGN_INS_PER_ADDRESS {
            let spoofed = format!("198.51.100.{attempt}");
            let status = wrong_sign_in(&app, attempt, &[("x-forwarded-for", &spoofed)]).await;
            assert_eq!(status, 422, "attempt {attempt}");
        }
        let status = wrong_sign_in(&app, 99, &[("x-forwarded-for", "198.51.100.200"), ("forwarded", "for=198.51.100.201")]).await;
        assert_eq!(status, 429, "the client's own address is limited");
    }
}

db_test! {
    /// Behind a trusted proxy (the test client, at 127.0.0.1) the address the proxy appended
    /// is the client: it passes the key's allow-list from an allowed address and not from
    /// another, whatever the client put before it; the log shows it; Forwarded wins over
    /// X-Forwarded-For; and the sign-in limit counts the real client, not the proxy.
    async fn behind_a_trusted_proxy_the_real_client_counts(db: TestDb) {
        let app = TestApp::spawn_with(db, |c| {
            c.trusted_proxies = TrustedProxies::parse("127.0.0.0/8").unwrap();
        })
        .await;
        let (key, _, upstream) = site(&app).await;
        assert_eq!(chat_with(&app, &key, &[("x-forwarded-for", "203.0.113.5")]).await.status(), 200);
        expect_error(chat_with(&app, &key, &[("x-forwarded-for", "198.51.100.1")]).await, 403, "ip_not_allowed").await;
        // The client wrote an allowed address; the proxy appended where it really came from.
        expect_error(
            chat_with(&app, &key, &[("x-forwarded-for", "203.0.113.5, 198.51.100.1")]).await,
            403,
            "ip_not_allowed",
        )
        .await;
        // Forwarded is read when present, and X-Forwarded-For then not at all.
        assert_eq!(
            chat_with(&app, &key, &[("forwarded", "for=\"203.0.113.7:4711\""), ("x-forwarded-for", "198.51.100.1")]).await.status(),
            200
        );
        expect_error(
            chat_with(&app, &key, &[("forwarded", "for=198.51.100.1"), ("x-forwarded-for", "203.0.113.5")]).await,
            403,
            "ip_not_allowed",
        )
        .await;
        assert_eq!(upstream.request_count(), 2);
        let logs = app.wait_for_logs(2).await;
        let served: Vec<&str> = logs
            .iter()
            .filter(|l| l.outcome == Outcome::Success)
            .map(|l| l.client_ip.as_str())
            .collect();
        assert_eq!(served, ["203.0.113.5", "203.0.113.7"]);

        for attempt in 0..SIGN_INS_PER_ADDRESS {
            // What the client writes first changes every time; the proxy's entry does not.
            let header = format!("10.0.{attempt}.1, 203.0.113.5");
            assert_eq!(wrong_sign_in(&app, attempt, &[("x-forwarded-for", &header)]).await, 422, "attempt {attempt}");
        }
        assert_eq!(wrong_sign_in(&app, 98, &[("x-forwarded-for", "203.0.113.5")]).await, 429);
        assert_eq!(wrong_sign_in(&app, 99, &[("forwarded", "for=203.0.113.5")]).await, 429);
        // Another client behind the same proxy is not limited by the first.
        assert_eq!(wrong_sign_in(&app, 100, &[("x-forwarded-for", "203.0.113.6")]).await, 422);
        // Nor is the proxy itself, which sent the first client's attempts.
        assert_eq!(wrong_sign_in(&app, 101, &[]).await, 422);
    }
}

db_test! {
    /// `--trust-forwarded-for` still works: it trusts a proxy on this machine.
    async fn trust_forwarded_for_trusts_this_machine(db: TestDb) {
        let app = TestApp::spawn_with(db, |c| c.trust_forwarded_for = true).await;
        let (key, _, _upstream) = site(&app).await;
        assert_eq!(chat_with(&app, &key, &[("x-forwarded-for", "203.0.113.5")]).await.status(), 200);
        expect_error(chat_with(&app, &key, &[("x-forwarded-for", "203.0.113.5, 198.51.100.1")]).await, 403, "ip_not_allowed").await;
    }
}

db_test! {
    /// A request refused because the key's allow-list does not include the caller's address
    /// is in the usage log as a refusal: the key, the address, the reason, nothing charged. On
    /// every `/v1` route the key opens, `/v1/models` too.
    async fn a_key_refused_for_its_address_is_logged(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let (key, key_id, upstream) = site(&app).await;
        let before = app.user("alice").await.quota;
        expect_error(app.chat(&key, chat_body("gpt-4o-mini")).await, 403, "ip_not_allowed").await;
        let models = app.client.get(app.url("/v1/models")).bearer_auth(&key).send().await.unwrap();
        expect_error(models, 403, "ip_not_allowed").await;
        // A key that does not exist is refused before anything is known to log it against.
        expect_error(app.chat("sk-unknown", chat_body("gpt-4o-mini")).await, 401, "invalid_api_key").await;

        let logs = app.wait_for_logs(2).await;
        assert_eq!(logs.len(), 2, "{logs:#?}");
        for (log, endpoint) in logs.iter().zip(["chat.completions", "models"]) {
            assert_eq!(log.outcome, Outcome::Refused);
            assert_eq!(log.endpoint, endpoint);
            assert_eq!(log.token_id, key_id);
            assert_eq!(log.username, "alice");
            assert_eq!(log.client_ip, "127.0.0.1");
            assert_eq!(log.status_code, 403);
            assert!(log.error_message.contains("may not be used from 127.0.0.1"), "{}", log.error_message);
            assert_eq!(log.cost, 0);
            assert!(!log.request_id.is_empty());
        }
        assert_eq!(app.user("alice").await.quota, before);
        assert_eq!(upstream.request_count(), 0);
    }
}

/// The trusted list is read once, at start: an entry that is not an address or a range stops
/// the server with a message naming it, from the flag or from the environment.
#[test]
fn a_bad_trusted_proxy_is_named_at_start() {
    let start = |args: &[&str], env: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"));
        command
            .arg("serve")
            .args(args)
            .env_remove("TOLLGATE_TRUSTED_PROXIES");
        if let Some(value) = env {
            command.env("TOLLGATE_TRUSTED_PROXIES", value);
        }
        let output = command.output().expect("run tollgate");
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let said = start(&["--trusted-proxies", "10.0.0.0/8,10.0.0.0/33"], None);
    assert!(
        said.contains("'10.0.0.0/33' is not an IP address or CIDR range"),
        "{said}"
    );
    assert!(said.contains("--trusted-proxies"), "{said}");
    let said = start(&[], Some("192.168.0.1, proxy.internal"));
    assert!(
        said.contains("'proxy.internal' is not an IP address or CIDR range"),
        "{said}"
    );
    let said = start(&["--body-timeout-secs", "0"], None);
    assert!(said.contains("--body-timeout-secs"), "{said}");
}

/// One way to learn the client's address: the connection layer decides it once and handlers
/// take `ClientAddress`. The socket's peer is not handed to handlers (`ConnectInfo` would
/// fail at run time), and no code but the rule itself reads forwarding headers.
#[test]
fn the_client_address_has_one_source() {
    fn sources(dir: &std::path::Path, found: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path.display().to_string(), text));
            }
        }
    }
    let mut found = Vec::new();
    sources(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    for (path, text) in &found {
        assert!(
            !text.contains("ConnectInfo"),
            "{path} reads the socket's peer; take ClientAddress"
        );
        let lower = text.to_ascii_lowercase();
        let reads_headers = ["\"x-forwarded-for\"", "\"forwarded\"", "header::forwarded"]
            .iter()
            .any(|name| lower.contains(name));
        let allowed =
            path.ends_with("domain/client_address.rs") || path.ends_with("protocol/client.rs");
        assert!(
            !reads_headers || allowed,
            "{path} reads X-Forwarded-For; take ClientAddress"
        );
    }
}
