//! Sending the portal's mail over SMTP (lettre), with the server the admin configured in the
//! runtime options. A connection is made per message: mail is rare (codes, reset links), and
//! a changed setting then applies to the next message without a restart.

use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::options::RuntimeOptions;

/// How long one message may take to hand over before the attempt is given up.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain text (a relay on the same host or network).
    None,
    /// Plain text upgraded with STARTTLS, which the server must offer.
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// Where and how mail is sent.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    pub password: String,
    pub from: String,
}

impl SmtpSettings {
    /// The settings in the options, or None when no SMTP server is set (the portal then sends
    /// no mail and says so where it would have).
    pub fn from_options(options: &RuntimeOptions) -> Option<SmtpSettings> {
        if options.smtp_host.is_empty() {
            return None;
        }
        let security = match options.smtp_security.as_str() {
            "none" => Security::None,
            "tls" => Security::Tls,
            _ => Security::StartTls,
        };
        // Without a sender of its own, mail comes from the login (often an address) under
        // the site's name.
        let from = if !options.smtp_from.is_empty() {
            options.smtp_from.clone()
        } else if options.smtp_username.contains('@') {
            format!("{} <{}>", options.site_name, options.smtp_username)
        } else {
            format!("{} <noreply@{}>", options.site_name, options.smtp_host)
        };
        Some(SmtpSettings {
            host: options.smtp_host.clone(),
            port: u16::try_from(options.smtp_port).unwrap_or(587),
            security,
            username: options.smtp_username.clone(),
            password: options.smtp_password.clone(),
            from,
        })
    }
}

/// One message: plain text in the reader's language.
#[derive(Clone, Debug)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// Why a message was not sent, in words an admin can act on.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the address {0} is not valid")]
    Address(String),
    #[error("the message could not be built: {0}")]
    Build(String),
    #[error("the mail server refused or could not be reached: {0}")]
    Send(String),
}

/// Sends one message.
pub async fn send(settings: &SmtpSettings, email: Email) -> Result<(), MailError> {
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|_| MailError::Address(settings.from.clone()))?;
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|_| MailError::Address(email.to.clone()))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(email.text)
        .map_err(|e| MailError::Build(e.to_string()))?;
    let builder = match settings.security {
        Security::None => {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.as_str())
        }
        Security::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
            .map_err(|e| MailError::Send(e.to_string()))?,
        Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)
            .map_err(|e| MailError::Send(e.to_string()))?,
    };
    let mut builder = builder.port(settings.port).timeout(Some(SEND_TIMEOUT));
    if !settings.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            settings.username.clone(),
            settings.password.clone(),
        ));
    }
    let transport = builder.build();
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| MailError::Send(e.to_string()))
}
