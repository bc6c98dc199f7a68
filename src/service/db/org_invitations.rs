//! Invitations into organisations (see migration 0020).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, DbResult, Tx, Value, flag, text};
use crate::domain::kinds::OrgRole;

/// An invitation as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvitationRow {
    pub id: i64,
    pub org_id: i64,
    /// Empty for an invitation by username.
    pub email: String,
    /// Empty for an invitation by email.
    pub username: String,
    pub role: OrgRole,
    /// 0: no team.
    pub team_id: i64,
    pub manager: bool,
    pub invited_by: i64,
    /// `pending`, `accepted`, `declined` or `revoked`.
    pub state: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub answered_at: Option<i64>,
}

pub struct NewInvitation<'a> {
    pub org_id: i64,
    pub token_hash: Option<&'a str>,
    pub email: &'a str,
    pub username: &'a str,
    pub role: OrgRole,
    pub team_id: i64,
    pub manager: bool,
    pub invited_by: i64,
    pub now_ms: i64,
    pub expires_at: i64,
}

const COLUMNS: &str = "id, org_id, email, username, role, team_id, manager, invited_by, state, \
     created_at, expires_at, answered_at";

fn from_row(row: &AnyRow) -> DbResult<InvitationRow> {
    let role: String = text(row, "role")?;
    Ok(InvitationRow {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        email: text(row, "email")?,
        username: text(row, "username")?,
        role: OrgRole::parse(&role)
            .ok_or_else(|| DbError::Corrupt(format!("invitation role '{role}'")))?,
        team_id: row.try_get("team_id")?,
        manager: flag(row.try_get("manager")?),
        invited_by: row.try_get("invited_by")?,
        state: text(row, "state")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        answered_at: row.try_get("answered_at")?,
    })
}

pub async fn insert(tx: &mut Tx, invitation: &NewInvitation<'_>) -> DbResult<i64> {
    tx.insert_returning_id(
        "INSERT INTO org_invitations (org_id, token_hash, email, username, role, team_id, manager, \
         invited_by, state, created_at, expires_at, answered_by) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, 0)",
        &[
            Value::Int(invitation.org_id),
            Value::OptText(invitation.token_hash.map(str::to_string)),
            Value::Text(invitation.email.to_string()),
            Value::Text(invitation.username.to_string()),
            Value::Text(invitation.role.as_str().to_string()),
            Value::Int(invitation.team_id),
            Value::Int(i64::from(invitation.manager)),
            Value::Int(invitation.invited_by),
            Value::Int(invitation.now_ms),
            Value::Int(invitation.expires_at),
        ],
    )
    .await
}

/// The invitation a link's token belongs to.
pub async fn by_token_hash(db: &Db, token_hash: &str) -> DbResult<Option<InvitationRow>> {
    let rows = db
        .fetch_all_with(
            &format!("SELECT {COLUMNS} FROM org_invitations WHERE token_hash = ?"),
            &[Value::Text(token_hash.to_string())],
        )
        .await?;
    rows.first().map(from_row).transpose()
}

/// An invitation of this organisation, by id.
pub async fn find(db: &Db, org_id: i64, id: i64) -> DbResult<Option<InvitationRow>> {
    let rows = db
        .fetch_all_with(
            &format!("SELECT {COLUMNS} FROM org_invitations WHERE id = ? AND org_id = ?"),
            &[Value::Int(id), Value::Int(org_id)],
        )
        .await?;
    rows.first().map(from_row).transpose()
}

/// The organisation's invitations, newest first (at most `limit`).
pub async fn of_org(db: &Db, org_id: i64, limit: i64) -> DbResult<Vec<InvitationRow>> {
    db.fetch_all_with(
        &format!("SELECT {COLUMNS} FROM org_invitations WHERE org_id = ? ORDER BY id DESC LIMIT ?"),
        &[Value::Int(org_id), Value::Int(limit)],
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// How many invitations of the organisation are pending and unexpired.
pub async fn pending_count_in(tx: &mut Tx, org_id: i64, now_ms: i64) -> DbResult<i64> {
    let rows = tx
        .fetch_all(
            "SELECT COUNT(*) AS n FROM org_invitations WHERE org_id = ? AND state = 'pending' \
             AND expires_at > ?",
            &[Value::Int(org_id), Value::Int(now_ms)],
        )
        .await?;
    Ok(rows
        .first()
        .map(|r| r.try_get("n"))
        .transpose()?
        .unwrap_or(0))
}

/// Pending, unexpired invitations by username for this account name (any case).
pub async fn pending_for_username(
    db: &Db,
    username: &str,
    now_ms: i64,
) -> DbResult<Vec<InvitationRow>> {
    db.fetch_all_with(
        &format!(
            "SELECT {COLUMNS} FROM org_invitations WHERE LOWER(username) = ? AND state = 'pending' \
             AND expires_at > ? ORDER BY id"
        ),
        &[Value::Text(username.to_lowercase()), Value::Int(now_ms)],
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Moves a pending, unexpired invitation to `state` (answered by `user_id`, 0 for the
/// inviter's side). False when it was not pending any more (answered, revoked or expired):
/// two answers racing each other, one wins.
pub async fn answer(
    tx: &mut Tx,
    id: i64,
    state: &str,
    user_id: i64,
    now_ms: i64,
) -> DbResult<bool> {
    let changed = tx
        .execute(
            "UPDATE org_invitations SET state = ?, answered_at = ?, answered_by = ?, \
             token_hash = NULL WHERE id = ? AND state = 'pending' AND expires_at > ?",
            &[
                Value::Text(state.to_string()),
                Value::Int(now_ms),
                Value::Int(user_id),
                Value::Int(id),
                Value::Int(now_ms),
            ],
        )
        .await?;
    Ok(changed == 1)
}

/// A pending invitation's new link and expiry (the old link stops working).
pub async fn renew(
    tx: &mut Tx,
    id: i64,
    org_id: i64,
    token_hash: &str,
    expires_at: i64,
    now_ms: i64,
) -> DbResult<bool> {
    let changed = tx
        .execute(
            "UPDATE org_invitations SET token_hash = ?, expires_at = ? WHERE id = ? AND org_id = ? \
             AND state = 'pending' AND (expires_at > ? OR email <> '')",
            &[
                Value::Text(token_hash.to_string()),
                Value::Int(expires_at),
                Value::Int(id),
                Value::Int(org_id),
                Value::Int(now_ms),
            ],
        )
        .await?;
    Ok(changed == 1)
}
