//! Sign-in sessions kept in our own table (`db::web_sessions`) through tower-sessions: one row
//! per session with whose it is, from where, and when it was last seen, so people can list
//! their sessions and end them, and an account's sessions can all be ended at once.

use async_trait::async_trait;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use crate::db::web_sessions::{self, SessionRow};
use crate::db::{Db, DbError, now_ms};
use crate::domain::secret_key;

/// The keys of what a session holds.
pub mod keys {
    /// The signed-in account's id.
    pub const USER_ID: &str = "user_id";
    /// The anti-forgery token of the session's forms.
    pub const CSRF: &str = "csrf";
    /// A digest of the account's password hash at sign-in: a new password ends the session.
    pub const STAMP: &str = "stamp";
    pub const IP: &str = "ip";
    pub const USER_AGENT: &str = "ua";
    pub const CREATED: &str = "created";
    /// The minute the session was last seen (saving it when it changes keeps `last_seen_at`).
    pub const SEEN: &str = "seen";
    /// The account that gave its password (or just registered) but must prove its email
    /// address before it is signed in.
    pub const PENDING_USER_ID: &str = "pending_user_id";
    /// A one-time notice for the next page.
    pub const FLASH: &str = "flash";
    /// The OAuth sign-in on its way: its state, nonce and PKCE verifier (see `web::oauth`).
    pub const OAUTH_FLOW: &str = "oauth_flow";
}

/// The row key for a session id: a database copy holds no cookie that signs anyone in.
pub fn row_id(id: &Id) -> String {
    secret_key::hash(&id.to_string())
}

#[derive(Clone, Debug)]
pub struct DbSessionStore {
    db: Db,
}

impl DbSessionStore {
    pub fn new(db: Db) -> DbSessionStore {
        DbSessionStore { db }
    }
}

fn backend(error: DbError) -> session_store::Error {
    session_store::Error::Backend(error.to_string())
}

fn text_of(record: &Record, key: &str, max: usize) -> String {
    record
        .data
        .get(key)
        .and_then(|v| v.as_str())
        .map(|s| s.chars().take(max).collect())
        .unwrap_or_default()
}

fn to_row(record: &Record) -> session_store::Result<SessionRow> {
    let now = now_ms();
    let data = serde_json::to_string(&record.data)
        .map_err(|e| session_store::Error::Encode(e.to_string()))?;
    Ok(SessionRow {
        id: row_id(&record.id),
        user_id: record.data.get(keys::USER_ID).and_then(|v| v.as_i64()),
        data,
        ip: text_of(record, keys::IP, 64),
        user_agent: text_of(record, keys::USER_AGENT, 255),
        created_at: record
            .data
            .get(keys::CREATED)
            .and_then(|v| v.as_i64())
            .unwrap_or(now),
        last_seen_at: now,
        expires_at: i64::try_from(record.expiry_date.unix_timestamp_nanos() / 1_000_000)
            .unwrap_or(i64::MAX),
    })
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        record
            .data
            .insert(keys::CREATED.into(), serde_json::Value::from(now_ms()));
        // Ids are 128 random bits; a collision only means drawing again.
        loop {
            let row = to_row(record)?;
            if web_sessions::insert(&self.db, &row)
                .await
                .map_err(backend)?
            {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        web_sessions::save(&self.db, &to_row(record)?)
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(row) = web_sessions::find(&self.db, &row_id(id), now_ms())
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let data = serde_json::from_str(&row.data)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(row.expires_at) * 1_000_000)
                .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        web_sessions::delete(&self.db, &row_id(id))
            .await
            .map_err(backend)
    }
}
