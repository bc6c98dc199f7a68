//! What the browser tests in `tests/` share: the built `tollgate` binary and its command line,
//! a server on SQLite, a fake OpenAI upstream, the SMTP sink of the API tests, a headless
//! Chromium session with screenshots of every step, and the checks every page gets (its
//! language, and on a phone no horizontal overflow). Each file in `tests/` is a crate of its
//! own; this library is what they have in common.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromedriver`); without them
//! [`no_browser`] says why and the tests pass, unless `TOLLGATE_REQUIRE_ALL=1` (CI), where they
//! fail. Screenshots go to `E2E_SCREENSHOTS` (default: `target/e2e-screenshots`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// The password every person the tests make signs in with.
pub const PASSWORD: &str = "correct horse battery";

/// The built binary: `target/debug/tollgate`, beside the running test's `deps/` folder.
pub fn tollgate_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let debug = exe.parent().and_then(Path::parent).expect("target/debug");
    debug.join("tollgate")
}

/// Whether everything must run (CI): a missing browser or mail server is then a failure.
pub fn require_all() -> bool {
    std::env::var("TOLLGATE_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

pub fn chromedriver() -> Option<PathBuf> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether the browser tests cannot run here (said, and a failure where everything is
/// required).
pub fn no_browser() -> bool {
    if chromedriver().is_some() && tollgate_binary().exists() {
        return false;
    }
    let reason = "chromium-driver or the built tollgate binary is missing (apt-get install chromium chromium-driver; cargo build)";
    assert!(
        !require_all(),
        "{reason}, and TOLLGATE_REQUIRE_ALL=1 requires it"
    );
    eprintln!("skipped: {reason}");
    true
}

/// Where a test's screenshots go: `E2E_SCREENSHOTS/name` (default
/// `target/e2e-screenshots/name`).
pub fn screenshots_dir(name: &str) -> PathBuf {
    let base = std::env::var("E2E_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            tollgate_binary()
                .parent()
                .and_then(Path::parent)
                .map(|t| t.join("e2e-screenshots"))
                .unwrap_or_default()
        });
    base.join(name)
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP on loopback: the fake upstream, and requests the way an SDK sends them.

/// Reads one HTTP/1.1 request: its request line and body (by `content-length`); `None` when
/// the connection ends first.
pub async fn read_request<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<(String, Vec<u8>)> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
        return None;
    }
    let mut length = 0_usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some((request_line, body))
}

/// Writes a 200 answer with `body`; whether the connection took it.
pub async fn respond<W: AsyncWriteExt + Unpin>(
    writer: &mut W,
    content_type: &str,
    extra_headers: &str,
    body: &str,
) -> bool {
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{extra_headers}\r\n{body}",
        body.len()
    );
    writer.write_all(response.as_bytes()).await.is_ok()
}

/// The live answer to a streamed chat request: two text chunks, usage, the end.
fn streamed_answer() -> String {
    let events = [
        r#"{"id":"chatcmpl-e2e","object":"chat.completion.chunk","created":0,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"Streamed "}}]}"#,
        r#"{"id":"chatcmpl-e2e","object":"chat.completion.chunk","created":0,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"hello"},"finish_reason":"stop"}]}"#,
        r#"{"id":"chatcmpl-e2e","object":"chat.completion.chunk","created":0,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#,
    ];
    let mut stream = String::new();
    for event in events {
        stream.push_str(&format!("data: {event}\n\n"));
    }
    stream.push_str("data: [DONE]\n\n");
    stream
}

/// An OpenAI-compatible upstream on a free port that answers every chat request with the same
/// short answer and its usage (12 prompt and 6 completion tokens; streamed: 9 and 2).
pub async fn fake_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                while let Some((_, body)) = read_request(&mut reader).await {
                    let streamed = String::from_utf8_lossy(&body).contains("\"stream\":true");
                    let (content_type, answer) = if streamed {
                        ("text/event-stream", streamed_answer())
                    } else {
                        let answer = serde_json::json!({
                            "id": "chatcmpl-e2e", "object": "chat.completion", "created": 0,
                            "model": "gpt-4o-mini",
                            "choices": [{"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": "Hello from the test upstream"}}],
                            "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}
                        });
                        ("application/json", answer.to_string())
                    };
                    if !respond(reader.get_mut(), content_type, "", &answer).await {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Posts a JSON body with one extra header line (`name: value`); the answer's status.
pub async fn post_json(base: &str, path: &str, header: &str, body: &str) -> u16 {
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\n{header}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Sends one chat request with `key` the way an SDK would; the answer's status.
pub async fn call_v1(base: &str, key: &str) -> u16 {
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}"#;
    post_json(
        base,
        "/v1/chat/completions",
        &format!("authorization: Bearer {key}"),
        body,
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Mail: the API tests' SMTP sink, a real SMTP server on loopback.

/// The SMTP sink of the API tests (`tests/smtp_sink.py`, aiosmtpd): its port, and the mail it
/// received, one JSON object each (`from`, `to`, `subject`, `text`).
pub struct MailSink {
    pub port: u16,
    pub mail: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    _server: Child,
}

impl MailSink {
    /// The sink, when `TOLLGATE_TEST_PYTHON` names a python with aiosmtpd.
    pub async fn start() -> Option<MailSink> {
        let python = std::env::var("TOLLGATE_TEST_PYTHON").ok()?;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/smtp_sink.py");
        let mut server = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .ok()?;
        let mut lines = BufReader::new(server.stdout.take()?).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .ok()?
            .ok()??;
        let port = serde_json::from_str::<serde_json::Value>(&first).ok()?["port"].as_u64()? as u16;
        let (sender, mail) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(message) = serde_json::from_str(&line) {
                    let _ = sender.send(message);
                }
            }
        });
        Some(MailSink {
            port,
            mail,
            _server: server,
        })
    }

    /// The next message to `address` (others before it are passed over), within 15 seconds.
    pub async fn next_to(&mut self, address: &str) -> serde_json::Value {
        let wait = async {
            while let Some(message) = self.mail.recv().await {
                let to = message["to"].as_array().cloned().unwrap_or_default();
                if to.iter().any(|a| a.as_str() == Some(address)) {
                    return Some(message);
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_secs(15), wait)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no mail to {address} arrived"))
    }
}

/// The 6-digit code in a message's subject.
pub fn code_in(message: &serde_json::Value) -> String {
    let subject = message["subject"].as_str().unwrap_or_default();
    subject
        .split(|c: char| !c.is_ascii_digit())
        .find(|part| part.len() == 6)
        .unwrap_or_default()
        .to_string()
}

/// The path of the link to the site at `base` in a message's text (`base` taken off: what
/// follows it up to the next white space).
pub fn link_in(message: &serde_json::Value, base: &str) -> Option<String> {
    let text = message["text"].as_str().unwrap_or_default();
    let start = text.find(base)? + base.len();
    text[start..].split_whitespace().next().map(str::to_string)
}

// ---------------------------------------------------------------------------------------------
// The server: its command line and a running `tollgate serve`.

/// A running server; stopped when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    pub database_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Runs `tollgate ARGS` on `database_url`, as an operator would; its standard output.
pub async fn cli(database_url: &str, args: &[&str]) -> String {
    let output = Command::new(tollgate_binary())
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("run tollgate");
    assert!(
        output.status.success(),
        "tollgate {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A new site's database with its root account (`root`, "root password here").
pub async fn site_with_root(dir: &Path) -> String {
    let database_url = format!("sqlite://{}/tollgate.db", dir.display());
    cli(
        &database_url,
        &[
            "--create-database",
            "user",
            "create",
            "--username",
            "root",
            "--role",
            "root",
            "--password",
            "root password here",
        ],
    )
    .await;
    database_url
}

/// The channel `main`: `gpt-4o-mini` at the fake upstream on `upstream_port`.
pub async fn add_channel(database_url: &str, upstream_port: u16) {
    cli(
        database_url,
        &[
            "channel",
            "add",
            "--name",
            "main",
            "--type",
            "openai",
            "--base-url",
            &format!("http://127.0.0.1:{upstream_port}/v1"),
            "--key",
            "sk-upstream",
            "--models",
            "gpt-4o-mini",
        ],
    )
    .await;
}

/// A site ready for people: root, the channel, `gpt-4o-mini` priced ($0.15 and $0.60 a
/// million tokens), $5 for every new account, and with `smtp_port` mail through that server
/// and registration held until the address is proven. Its database's URL.
pub async fn set_up_site(dir: &Path, upstream_port: u16, smtp_port: Option<u16>) -> String {
    let database_url = site_with_root(dir).await;
    add_channel(&database_url, upstream_port).await;
    cli(
        &database_url,
        &[
            "price",
            "set",
            "gpt-4o-mini",
            "--input",
            "0.15",
            "--output",
            "0.60",
        ],
    )
    .await;
    cli(&database_url, &["option", "set", "new_user_quota_usd", "5"]).await;
    if let Some(smtp_port) = smtp_port {
        for (name, value) in [
            ("smtp_host", "127.0.0.1".to_string()),
            ("smtp_port", smtp_port.to_string()),
            ("smtp_security", "none".to_string()),
            ("smtp_from", "Tollgate <noreply@tollgate.test>".to_string()),
            ("email_verification_required", "true".to_string()),
        ] {
            cli(&database_url, &["option", "set", name, &value]).await;
        }
    }
    database_url
}

/// [`set_up_site`], served.
pub async fn start_server(dir: &Path, upstream_port: u16, smtp_port: Option<u16>) -> Server {
    serve(set_up_site(dir, upstream_port, smtp_port).await).await
}

/// The server on `database_url`, once it accepts connections.
pub async fn serve(database_url: String) -> Server {
    let port = free_port();
    let child = Command::new(tollgate_binary())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--billing-flush-ms",
            "50",
            "--sync-interval-ms",
            "100",
        ])
        .env("DATABASE_URL", &database_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start tollgate");
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Server {
        child,
        base,
        database_url,
    }
}

// ---------------------------------------------------------------------------------------------
// The browser.

/// A headless Chromium through its own chromedriver, saving a numbered screenshot of each step.
pub struct Browser {
    pub client: Client,
    driver: Child,
    shots: PathBuf,
    count: usize,
}

impl Browser {
    pub async fn start(shots: PathBuf, width: u32, height: u32) -> Option<Browser> {
        Browser::start_in(shots, width, height, false).await
    }

    /// A browser whose system asks pages for their dark colours (`prefers-color-scheme: dark`)
    /// when `dark`.
    pub async fn start_in(shots: PathBuf, width: u32, height: u32, dark: bool) -> Option<Browser> {
        let driver_path = chromedriver()?;
        let port = free_port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .ok()?;
        let mut capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--no-first-run",
                         "--disable-dev-shm-usage", "--lang=en-US", format!("--window-size={width},{height}")]
            }
        });
        if dark {
            // Blink's preferred colour scheme: 0 is dark.
            capabilities["goog:chromeOptions"]["args"]
                .as_array_mut()
                .expect("the arguments")
                .push(serde_json::json!("--blink-settings=preferredColorScheme=0"));
        }
        if width < 500 {
            // A window is at least 500 px wide: a phone's screen is emulated instead, so the
            // page really is this wide (and follows its viewport meta as a phone does).
            capabilities["goog:chromeOptions"]["mobileEmulation"] = serde_json::json!({
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0}
            });
        }
        let capabilities = capabilities.as_object().cloned().unwrap_or_default();
        let mut client = None;
        for _ in 0..100 {
            match ClientBuilder::rustls()
                .expect("a TLS client")
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        std::fs::create_dir_all(&shots).ok()?;
        Some(Browser {
            client: client?,
            driver,
            shots,
            count: 0,
        })
    }

    /// Saves a screenshot named after the step; returns its path.
    pub async fn shot(&mut self, name: &str) -> PathBuf {
        self.count += 1;
        let path = self.shots.join(format!("{:02}-{name}.png", self.count));
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(&path, png);
        }
        path
    }

    pub async fn open(&mut self, url: &str, name: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
        self.shot(name).await;
    }

    pub async fn fill(&self, name: &str, value: &str) {
        self.type_into(&format!("input[name='{name}']"), value)
            .await;
    }

    pub async fn fill_text(&self, name: &str, value: &str) {
        self.type_into(&format!("textarea[name='{name}']"), value)
            .await;
    }

    async fn type_into(&self, css: &str, value: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("the field {css}: {e}"));
        field.clear().await.ok();
        field.send_keys(value).await.expect("typing");
    }

    /// Chooses the option with `value` in the select `name`.
    pub async fn choose(&self, name: &str, value: &str) {
        self.client
            .find(Locator::Css(&format!("select[name='{name}']")))
            .await
            .unwrap_or_else(|e| panic!("the choice {name}: {e}"))
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("the option {value} of {name}: {e}"));
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Scrolls the element `css` to the middle of the screen (for a screenshot of it).
    pub async fn scroll_to(&self, css: &str) {
        let _ = self
            .client
            .execute(
                "const e = document.querySelector(arguments[0]); if (e) e.scrollIntoView({block: 'center'});",
                vec![serde_json::json!(css)],
            )
            .await;
    }

    /// Presses the submit button of the form posting to `form_action` (or to it with
    /// `#errors`, where a form comes back marked).
    pub async fn submit(&self, form_action: &str) {
        // Marks the page being left, so `arrive` can tell its answer from it when the answer
        // comes back at the same address.
        let _ = self
            .client
            .execute("window.e2eLeaving = true;", vec![])
            .await;
        self.client
            .find(Locator::Css(&format!(
                ":is(form[action='{form_action}'], form[action='{form_action}#errors']) button[type='submit']"
            )))
            .await
            .unwrap_or_else(|e| panic!("the form {form_action}: {e}"))
            .click()
            .await
            .expect("submit");
    }

    /// The page's text; while a page is still replacing the last one (a form's answer, a
    /// redirect) its body may not be there yet, so this waits up to five seconds for it.
    pub async fn text(&self) -> String {
        for _ in 0..100 {
            if let Ok(body) = self.client.find(Locator::Css("body")).await {
                return body.text().await.unwrap_or_default();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page has no body");
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.path().to_string())
            .unwrap_or_default()
    }

    /// Waits (up to ten seconds) until the browser is at `path` and a page that is not the one
    /// a form was submitted from has loaded.
    pub async fn arrive(&self, path: &str) -> String {
        for _ in 0..200 {
            let here = self.path().await;
            let ready = string(
                self,
                "return window.e2eLeaving ? 'leaving' : document.readyState;",
            )
            .await;
            if here == path && ready == "complete" {
                return here;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.path().await
    }

    /// Waits (up to ten seconds) for an element, after a form posts to the page it is on.
    pub async fn wait_for(&self, css: &str) {
        for _ in 0..200 {
            if self.client.find(Locator::Css(css)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fails the test with `what`, a screenshot and the page's text, unless `condition`.
    pub async fn check(&mut self, condition: bool, what: &str) {
        if !condition {
            let shot = self.shot("failed").await;
            let text = self.text().await;
            panic!(
                "{what} (screenshot: {}); the page said:\n{text}",
                shot.display()
            );
        }
    }

    /// Makes a key with the keys page's form as filled in, and reads it from the page that
    /// shows it once.
    pub async fn make_key(&self) -> String {
        self.submit("/keys").await;
        self.wait_for("#new-key").await;
        self.client
            .find(Locator::Id("new-key"))
            .await
            .expect("the new key")
            .text()
            .await
            .unwrap_or_default()
    }

    /// Signs in through the login page and waits for the dashboard.
    pub async fn sign_in(&mut self, base: &str, login: &str) {
        self.open(&format!("{base}/login"), "login").await;
        self.fill("login", login).await;
        self.fill("password", PASSWORD).await;
        self.submit("/login").await;
        self.arrive("/dashboard").await;
    }

    /// The language the page says it is in (`<html lang>`).
    pub async fn lang(&self) -> String {
        string(self, "return document.documentElement.lang;").await
    }

    /// Switches to `lang` with the link every page has in its header (in the menu on a
    /// phone), as a reader would, and waits (up to ten seconds) for the page in that language.
    pub async fn switch_language(&mut self, lang: &str, phone: bool) {
        let links = if phone {
            self.click("details.nav-menu > summary").await;
            "details.nav-menu"
        } else {
            "nav.nav-row"
        };
        self.click(&format!("{links} a[hreflang='{lang}']")).await;
        for _ in 0..200 {
            let ready = string(self, "return document.readyState;").await;
            if self.lang().await == lang && ready == "complete" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.shot(&format!("switched-to-{lang}")).await;
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}

/// A number the page's script answers.
pub async fn number(browser: &Browser, script: &str) -> f64 {
    browser
        .client
        .execute(script, vec![])
        .await
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(f64::NAN)
}

/// Text the page's script answers (empty when it answers anything else).
pub async fn string(browser: &Browser, script: &str) -> String {
    browser
        .client
        .execute(script, vec![])
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Runs a script that ends by calling its last argument with a value, and answers the value
/// as text.
pub async fn script_text(browser: &Browser, script: &str) -> String {
    browser
        .client
        .execute_async(script, vec![])
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Clicks the first submit button inside `css`.
pub async fn press(browser: &Browser, css: &str) {
    browser
        .client
        .find(Locator::Css(&format!("{css} button[type='submit']")))
        .await
        .unwrap_or_else(|e| panic!("a button in {css}: {e}"))
        .click()
        .await
        .expect("press");
}

/// Whether the page is wider than the window, and the first elements that stick out (a
/// scrolling table's insides do not count: it scrolls in its own box).
pub async fn overflow(browser: &Browser) -> Option<String> {
    let wider = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth + 1;",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if !wider {
        return None;
    }
    let culprits = string(
        browser,
        "return Array.from(document.querySelectorAll('body *')).filter(e => !e.closest('.table-wrap') && e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + '/' + window.innerWidth).join(', ');",
    )
    .await;
    Some(culprits)
}

/// Checks the page on screen (named `name`) speaks `lang` and, on a phone, is no wider than
/// the screen.
pub async fn check_page(browser: &mut Browser, name: &str, lang: &str, phone: bool) {
    let html_lang = browser.lang().await;
    browser
        .check(html_lang == lang, &format!("{name} speaks {lang}"))
        .await;
    if phone {
        let wider = overflow(browser).await;
        browser
            .check(
                wider.is_none(),
                &format!("{name} fits a phone (wider: {})", wider.unwrap_or_default()),
            )
            .await;
    }
}

/// Opens a page (named `name` in its screenshot) and checks it speaks `lang` and, on a phone,
/// that it is no wider than the screen.
pub async fn visit(browser: &mut Browser, url: &str, name: &str, lang: &str, phone: bool) {
    browser.open(url, name).await;
    check_page(browser, name, lang, phone).await;
}
