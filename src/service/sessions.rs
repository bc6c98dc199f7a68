//! The portal's sign-in sessions and their policy, in one place: who a session belongs to and
//! whether it still does (the account is re-read on every request: disabled, deleted or
//! re-passworded accounts are signed out at once), how long sessions last, what counts as a
//! recent sign-in (changing one's email or password needs one, or the current password), the
//! rows behind each session (kept in our own table, `web_sessions`, so people can list and end
//! theirs), and what a page may know of the person signed in ([`Viewer`], never the account's
//! row).
//!
//! The portal keeps sessions through tower-sessions: [`SessionRows`] is its store, and the web
//! layer reads and writes a session's values under the names in [`keys`].

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use super::{Caller, Ctx, ServiceError, ServiceResult};
use crate::domain::kinds::{Role, Status};
use crate::domain::secret_key;
use crate::msg;
use crate::service::db::users::UserRow;
use crate::service::db::web_sessions::{self, SessionRow};
use crate::service::db::{self, Db, DbError, now_ms};

/// How long a signed-in session lasts without use.
pub const SIGNED_IN_IDLE: Duration = Duration::from_secs(14 * 24 * 3600);

/// How long a visitor's session (a provider sign-in on its way, an account held back until
/// its address is proven) lasts without use. Visitors who only read pages get none.
pub const VISITOR_IDLE: Duration = Duration::from_secs(10 * 60);

/// How recent a sign-in must be to change one's email or password without giving the current
/// password again (and, in the admin console, to make sensitive changes).
pub const RECENT_SIGN_IN: Duration = Duration::from_secs(10 * 60);

/// The names of what a session holds.
pub mod keys {
    /// The signed-in account's id.
    pub const USER_ID: &str = "user_id";
    /// The anti-forgery token of a signed-in session's forms.
    pub const CSRF: &str = "csrf";
    /// A digest of the account's password hash at sign-in: a new password ends the session.
    pub const STAMP: &str = "stamp";
    /// When the person last proved who they are here (a password, a provider, a code), in
    /// Unix milliseconds.
    pub const SIGNED_IN_AT: &str = "signed_in_at";
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
    /// Where a person who registered from a page (an invitation's) goes once their address
    /// is proven.
    pub const AFTER_VERIFY: &str = "after_verify";
    /// The OAuth sign-in on its way: its state, nonce and PKCE verifier (see `web::oauth`).
    pub const OAUTH_FLOW: &str = "oauth_flow";
}

/// What pages may know of the person signed in (or held back until their address is proven):
/// never the password hash or other columns a page has no use for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Viewer {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub role: Role,
    /// Whether the account has a password (one made through a sign-in provider may not).
    pub has_password: bool,
    pub group: String,
    /// Remaining balance in quota units.
    pub quota: i64,
    pub invite_code: Option<String>,
    /// The portal language the person chose (`en`, `zh-CN`); empty follows the browser.
    pub locale: String,
    /// Below this balance (quota units) one email warns; -1 the site's default, 0 never.
    pub low_balance_threshold: i64,
    /// A digest of the password hash, kept by the session to notice a new password.
    stamp: String,
}

impl Viewer {
    pub(crate) fn of(user: &UserRow) -> Viewer {
        Viewer {
            id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            email: user.email.clone(),
            email_verified: user.email_verified,
            role: user.role,
            has_password: user.password_hash.is_some(),
            group: user.group.clone(),
            quota: user.quota,
            invite_code: user.invite_code.clone(),
            locale: user.locale.clone(),
            low_balance_threshold: user.low_balance_threshold,
            stamp: password_stamp(user.password_hash.as_deref()),
        }
    }

    /// Who this person is to the services.
    pub fn caller(&self) -> Caller {
        Caller::for_account(self.id, self.role)
    }

    pub fn is_admin(&self) -> bool {
        self.role.is_admin()
    }

    /// The name shown for them: their display name, else their username.
    pub fn name(&self) -> &str {
        if self.display_name.trim().is_empty() {
            &self.username
        } else {
            &self.display_name
        }
    }
}

/// A short digest of a password hash: changing the password changes it.
fn password_stamp(hash: Option<&str>) -> String {
    let mut stamp = secret_key::hash(hash.unwrap_or(""));
    stamp.truncate(16);
    stamp
}

/// What a signed-in session remembers of its sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignIn {
    pub user_id: i64,
    pub stamp: String,
    /// When the person last proved who they are in this session (Unix milliseconds).
    pub at_ms: i64,
}

impl SignIn {
    /// A sign-in happening now.
    pub fn now(viewer: &Viewer) -> SignIn {
        SignIn {
            user_id: viewer.id,
            stamp: viewer.stamp.clone(),
            at_ms: now_ms(),
        }
    }

    /// Whether the person proved who they are within [`RECENT_SIGN_IN`] of `now_ms`.
    pub fn is_recent(&self, now_ms: i64) -> bool {
        let window = i64::try_from(RECENT_SIGN_IN.as_millis()).unwrap_or(i64::MAX);
        now_ms.saturating_sub(self.at_ms) < window && self.at_ms <= now_ms
    }
}

/// The account behind a sign-in, if it is still the same one: active, with the password it
/// signed in with.
pub async fn resume(ctx: &Ctx, sign_in: &SignIn) -> ServiceResult<Option<Viewer>> {
    let user = db::users::find_by_id(&ctx.db, sign_in.user_id).await?;
    Ok(user
        .filter(|user| user.status == Status::Active)
        .map(|user| Viewer::of(&user))
        .filter(|viewer| viewer.stamp == sign_in.stamp))
}

/// An active account by id, as a page may see it (the one a visitor is proving an address
/// for).
pub async fn viewer(ctx: &Ctx, user_id: i64) -> ServiceResult<Option<Viewer>> {
    let user = db::users::find_by_id(&ctx.db, user_id).await?;
    Ok(user
        .filter(|user| user.status == Status::Active)
        .map(|user| Viewer::of(&user)))
}

/// Keeps the portal language a person chose (empty: follow the browser).
pub async fn set_language(ctx: &Ctx, caller: &Caller, tag: &str) -> ServiceResult<()> {
    let user_id = caller.own_account()?;
    db::users::set_locale(&ctx.db, user_id, tag).await?;
    Ok(())
}

/// One of a person's sessions, as their profile lists it.
#[derive(Clone, Debug, Serialize)]
pub struct SessionView {
    /// The row's id (the digest of the cookie's id), to end it by.
    pub id: String,
    pub ip: String,
    pub user_agent: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

impl SessionView {
    fn of(row: SessionRow) -> SessionView {
        SessionView {
            id: row.id,
            ip: row.ip,
            user_agent: row.user_agent,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
        }
    }
}

/// The caller's sessions that have not expired, most recently seen first.
pub async fn list(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<SessionView>> {
    let user_id = caller.own_account()?;
    let rows = web_sessions::for_user(&ctx.db, user_id, now_ms()).await?;
    Ok(rows.into_iter().map(SessionView::of).collect())
}

/// Ends the caller's other sessions (`keep` is the asking session's row id; None ends all).
pub async fn end_others(ctx: &Ctx, caller: &Caller, keep: Option<&str>) -> ServiceResult<u64> {
    let user_id = caller.own_account()?;
    Ok(web_sessions::delete_for_user(&ctx.db, user_id, keep).await?)
}

/// Ends one of the caller's sessions; not found when it is not theirs.
pub async fn end(ctx: &Ctx, caller: &Caller, row_id: &str) -> ServiceResult<()> {
    let user_id = caller.own_account()?;
    if web_sessions::delete_owned(&ctx.db, user_id, row_id).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound(msg!("session-not-found")))
    }
}

/// An account's sessions that have not expired, most recently seen first (administrators).
pub async fn list_of(
    ctx: &Ctx,
    caller: &Caller,
    username: &str,
) -> ServiceResult<Vec<SessionView>> {
    caller.require_admin()?;
    let user = super::users::find(&ctx.db, username).await?;
    let rows = web_sessions::for_user(&ctx.db, user.id, now_ms()).await?;
    Ok(rows.into_iter().map(SessionView::of).collect())
}

/// Ends one of an account's sessions (`row_id`), or all of them (administrators; only root
/// signs out an administrator). How many ended; not found when the one named is not theirs.
pub async fn end_of(
    ctx: &Ctx,
    caller: &Caller,
    username: &str,
    row_id: Option<&str>,
) -> ServiceResult<u64> {
    caller.require_admin()?;
    let user = super::users::find(&ctx.db, username).await?;
    if Some(user.id) != caller.admin_id() {
        caller.may_manage_role(user.role)?;
    }
    let ended = ctx
        .write(caller, async |tx| {
            let ended = web_sessions::delete_of_user_in(tx, user.id, row_id).await?;
            if ended > 0 {
                tx.audit(super::audit::change(
                    "user.sessions_end",
                    format!("user:{}", user.username),
                    None,
                    Some(serde_json::json!({
                        "session": row_id.unwrap_or("all"),
                        "ended": ended,
                    })),
                    &[],
                ));
            }
            Ok(ended)
        })
        .await?;
    if ended == 0 && row_id.is_some() {
        return Err(ServiceError::NotFound(msg!("session-not-found")));
    }
    Ok(ended)
}

/// Ends every session of an account (it was deleted or disabled).
pub(crate) async fn end_all_of(ctx: &Ctx, user_id: i64) -> ServiceResult<()> {
    web_sessions::delete_for_user(&ctx.db, user_id, None).await?;
    Ok(())
}

/// The site's secret for what browsers carry (visitors' form tokens, device cookies): made
/// once, kept in the database, the same on every node.
async fn browser_secret(ctx: &Ctx) -> ServiceResult<String> {
    super::site_values::get_or_create(ctx, "browser_secret", || {
        let bytes: [u8; 32] = rand::random();
        secret_key::hex(&bytes)
    })
    .await
}

const VISITOR_FORM: &str = "visitor-form";
const DEVICE: &str = "device";

/// Whether a browser's own random id (a visitor's, a device's) looks like one this site made:
/// 16 to 64 characters of base64url.
fn is_browser_id(text: &str) -> bool {
    (16..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new random id for a browser: 128 bits, base64url.
pub fn new_browser_id() -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The form token of a visitor (nobody signed in): bound to the visitor's own random id (a
/// cookie) and signed with the site's secret, so it needs no session row and every node
/// accepts it; another browser's token is worthless without that browser's cookie.
pub async fn visitor_form_token(ctx: &Ctx, visitor: &str) -> ServiceResult<String> {
    Ok(crate::domain::signed::tag(
        &browser_secret(ctx).await?,
        VISITOR_FORM,
        visitor,
    ))
}

/// Whether `token` is the form token of `visitor`.
pub async fn visitor_form_token_matches(
    ctx: &Ctx,
    visitor: &str,
    token: &str,
) -> ServiceResult<bool> {
    Ok(is_browser_id(visitor)
        && crate::domain::signed::verify(&browser_secret(ctx).await?, VISITOR_FORM, visitor, token))
}

/// The cookie that marks a browser as one the account signed in from (OWASP's device cookie):
/// `ACCOUNT.DEVICE.TAG`. A browser that carries it is not locked out by failures from others.
pub async fn device_cookie(ctx: &Ctx, user_id: i64) -> ServiceResult<String> {
    let device = format!("{user_id}.{}", new_browser_id());
    let tag = crate::domain::signed::tag(&browser_secret(ctx).await?, DEVICE, &device);
    Ok(format!("{device}.{tag}"))
}

/// The device a device cookie names, when it is genuine and the account's: the key its
/// failed sign-ins are counted under (instead of the account's).
pub async fn trusted_device(
    ctx: &Ctx,
    cookie: &str,
    account_id: i64,
) -> ServiceResult<Option<String>> {
    let Some((device, tag)) = cookie.rsplit_once('.') else {
        return Ok(None);
    };
    let Some((owner, id)) = device.split_once('.') else {
        return Ok(None);
    };
    if owner.parse::<i64>().ok() != Some(account_id) || !is_browser_id(id) {
        return Ok(None);
    }
    let genuine = crate::domain::signed::verify(&browser_secret(ctx).await?, DEVICE, device, tag);
    Ok(genuine.then(|| format!("device:{device}")))
}

/// The row key for a session id: a database copy holds no cookie that signs anyone in.
pub fn row_id(id: &Id) -> String {
    secret_key::hash(&id.to_string())
}

/// tower-sessions' store: one row per session in `web_sessions`.
#[derive(Clone, Debug)]
pub struct SessionRows {
    db: Db,
}

impl SessionRows {
    pub fn new(ctx: &Ctx) -> SessionRows {
        SessionRows { db: ctx.db.clone() }
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
    let user_id = record.data.get(keys::USER_ID).and_then(|v| v.as_i64());
    let mut expires_at =
        i64::try_from(record.expiry_date.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    if user_id.is_none() {
        // A visitor's session is short-lived whatever the cookie says.
        let visitor_idle = i64::try_from(VISITOR_IDLE.as_millis()).unwrap_or(i64::MAX);
        expires_at = expires_at.min(now.saturating_add(visitor_idle));
    }
    Ok(SessionRow {
        id: row_id(&record.id),
        user_id,
        data,
        ip: text_of(record, keys::IP, 64),
        user_agent: text_of(record, keys::USER_AGENT, 255),
        created_at: record
            .data
            .get(keys::CREATED)
            .and_then(|v| v.as_i64())
            .unwrap_or(now),
        last_seen_at: now,
        expires_at,
    })
}

#[async_trait]
impl SessionStore for SessionRows {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visitors_row_lasts_ten_minutes_a_signed_in_one_its_whole_life() {
        let in_two_weeks = OffsetDateTime::now_utc() + time::Duration::days(14);
        let mut record = Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: in_two_weeks,
        };
        record
            .data
            .insert(keys::OAUTH_FLOW.into(), serde_json::json!({"state": "x"}));
        let visitor = to_row(&record).unwrap();
        let ten_minutes = 10 * 60 * 1000;
        assert!(visitor.expires_at <= now_ms() + ten_minutes);
        assert!(visitor.expires_at > now_ms() + ten_minutes - 5_000);
        assert_eq!(visitor.user_id, None);
        record
            .data
            .insert(keys::USER_ID.into(), serde_json::json!(7));
        let signed_in = to_row(&record).unwrap();
        assert_eq!(signed_in.user_id, Some(7));
        assert!(signed_in.expires_at > now_ms() + 13 * 24 * 3600 * 1000);
        // The row is keyed by the id's digest, never the id itself.
        assert_ne!(signed_in.id, record.id.to_string());
    }

    #[test]
    fn a_sign_in_is_recent_for_ten_minutes() {
        let at = 1_000_000_000_000;
        let sign_in = SignIn {
            user_id: 1,
            stamp: String::new(),
            at_ms: at,
        };
        assert!(sign_in.is_recent(at));
        assert!(sign_in.is_recent(at + 9 * 60 * 1000));
        assert!(!sign_in.is_recent(at + 10 * 60 * 1000));
        // A clock that went backwards proves nothing.
        assert!(!sign_in.is_recent(at - 1));
    }
}
