//! A real SMTP server on loopback (`tests/smtp_sink.py`, aiosmtpd) whose received mail the
//! tests read: the code or link a person would find in their inbox.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use super::TestApp;

/// One message as the server received it.
#[derive(Clone, Debug, Deserialize)]
pub struct Mail {
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
}

impl Mail {
    /// The 6-digit code in the message.
    pub fn code(&self) -> String {
        let digits: Vec<char> = self.text.chars().collect();
        digits
            .windows(6)
            .enumerate()
            .find(|(at, w)| {
                w.iter().all(char::is_ascii_digit)
                    && (*at == 0 || !digits[at - 1].is_ascii_digit())
                    && digits.get(at + 6).is_none_or(|c| !c.is_ascii_digit())
            })
            .map(|(_, w)| w.iter().collect())
            .unwrap_or_else(|| panic!("no code in {:?}", self.text))
    }

    /// The path and query of the first link to this server in the message.
    pub fn link_path(&self, app: &TestApp) -> String {
        let base = format!("http://{}", app.addr);
        let start = self
            .text
            .find(&base)
            .unwrap_or_else(|| panic!("no link to {base} in {:?}", self.text));
        let rest = &self.text[start + base.len()..];
        rest.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

pub struct MailSink {
    pub port: u16,
    received: Arc<Mutex<Vec<Mail>>>,
    arrived: Arc<Notify>,
    _server: Child,
}

impl MailSink {
    /// Starts the server; None (a skip, printed) without the test Python, unless every
    /// service is required.
    pub async fn start() -> Option<MailSink> {
        let python = crate::sdk::python()?;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py");
        let mut server = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the SMTP sink starts");
        let stdout = server.stdout.take().expect("its output");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the SMTP sink says its port in time")
            .expect("its output reads")
            .expect("a first line (is aiosmtpd installed? see tests/sdk-requirements.txt)");
        let port: serde_json::Value = serde_json::from_str(&first).expect("a JSON line");
        let port = port["port"].as_u64().expect("a port") as u16;
        let received = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let (sink, notify) = (received.clone(), arrived.clone());
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mail) = serde_json::from_str::<Mail>(&line) {
                    sink.lock().unwrap().push(mail);
                    notify.notify_waiters();
                }
            }
        });
        Some(MailSink {
            port,
            received,
            arrived,
            _server: server,
        })
    }

    /// Points the app's mail settings at this server.
    pub async fn configure(&self, app: &TestApp) {
        app.set_option("smtp_host", "127.0.0.1").await;
        app.set_option("smtp_port", &self.port.to_string()).await;
        app.set_option("smtp_security", "none").await;
        app.set_option("smtp_from", "Tollgate <noreply@tollgate.test>")
            .await;
        app.reload().await;
    }

    /// Takes the next message to `address`, waiting up to ten seconds for it.
    pub async fn next_to(&self, address: &str) -> Mail {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let arrived = self.arrived.notified();
            {
                let mut received = self.received.lock().unwrap();
                if let Some(at) = received
                    .iter()
                    .position(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
                {
                    return received.remove(at);
                }
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("no mail to {address} within 10 s");
            }
        }
    }

    /// How many messages to `address` are waiting.
    pub fn count_to(&self, address: &str) -> usize {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
            .count()
    }
}
