//! OAuth providers and the identities linked to accounts (see migration 0011).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, DbResult, Tx, Value, now_ms, text};
use crate::domain::kinds::OAuthKind;
pub use crate::records::oauth::ProviderRow;

const PROVIDER_COLUMNS: &str = "id, name, kind, display_name, client_id, client_secret, issuer, \
     auth_url, token_url, userinfo_url, jwks_url, scopes, created_at";

fn provider_from(row: &AnyRow) -> DbResult<ProviderRow> {
    let kind: String = text(row, "kind")?;
    Ok(ProviderRow {
        id: row.try_get("id")?,
        name: text(row, "name")?,
        kind: OAuthKind::parse(&kind)
            .ok_or_else(|| DbError::Corrupt(format!("OAuth provider kind '{kind}'")))?,
        display_name: text(row, "display_name")?,
        client_id: text(row, "client_id")?,
        client_secret: text(row, "client_secret")?,
        issuer: text(row, "issuer")?,
        auth_url: text(row, "auth_url")?,
        token_url: text(row, "token_url")?,
        userinfo_url: text(row, "userinfo_url")?,
        jwks_url: text(row, "jwks_url")?,
        scopes: text(row, "scopes")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn insert_provider(tx: &mut Tx, p: &ProviderRow) -> DbResult<i64> {
    tx.insert_returning_id(
        "INSERT INTO oauth_providers (name, kind, display_name, client_id, client_secret, issuer, \
         auth_url, token_url, userinfo_url, jwks_url, scopes, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            Value::Text(p.name.clone()),
            Value::Text(p.kind.as_str().into()),
            Value::Text(p.display_name.clone()),
            Value::Text(p.client_id.clone()),
            Value::Text(p.client_secret.clone()),
            Value::Text(p.issuer.clone()),
            Value::Text(p.auth_url.clone()),
            Value::Text(p.token_url.clone()),
            Value::Text(p.userinfo_url.clone()),
            Value::Text(p.jwks_url.clone()),
            Value::Text(p.scopes.clone()),
            Value::Int(now_ms()),
        ],
    )
    .await
}

pub async fn providers(db: &Db) -> DbResult<Vec<ProviderRow>> {
    let sql = format!("SELECT {PROVIDER_COLUMNS} FROM oauth_providers ORDER BY id");
    db.fetch_all_with(&sql, &[])
        .await?
        .iter()
        .map(provider_from)
        .collect()
}

pub async fn provider(db: &Db, name: &str) -> DbResult<Option<ProviderRow>> {
    let sql = format!("SELECT {PROVIDER_COLUMNS} FROM oauth_providers WHERE name = ?");
    db.fetch_all_with(&sql, &[Value::Text(name.to_string())])
        .await?
        .first()
        .map(provider_from)
        .transpose()
}

/// Removes a provider and every identity linked through it. False when there was none.
pub async fn delete_provider(tx: &mut Tx, name: &str) -> DbResult<bool> {
    tx.execute(
        "DELETE FROM user_identities WHERE provider = ?",
        &[Value::Text(name.to_string())],
    )
    .await?;
    Ok(tx
        .execute(
            "DELETE FROM oauth_providers WHERE name = ?",
            &[Value::Text(name.to_string())],
        )
        .await?
        > 0)
}

/// One account's identity at one provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityRow {
    pub id: i64,
    pub user_id: i64,
    pub provider: String,
    pub subject: String,
    pub email: String,
    pub login: String,
    pub created_at: i64,
}

const IDENTITY_COLUMNS: &str = "id, user_id, provider, subject, email, login, created_at";

fn identity_from(row: &AnyRow) -> DbResult<IdentityRow> {
    Ok(IdentityRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        provider: text(row, "provider")?,
        subject: text(row, "subject")?,
        email: text(row, "email")?,
        login: text(row, "login")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The identity with this subject at this provider, whoever it belongs to.
pub async fn identity(db: &Db, provider: &str, subject: &str) -> DbResult<Option<IdentityRow>> {
    let sql = format!(
        "SELECT {IDENTITY_COLUMNS} FROM user_identities WHERE provider = ? AND subject = ?"
    );
    db.fetch_all_with(
        &sql,
        &[
            Value::Text(provider.to_string()),
            Value::Text(subject.to_string()),
        ],
    )
    .await?
    .first()
    .map(identity_from)
    .transpose()
}

pub async fn identities_of(db: &Db, user_id: i64) -> DbResult<Vec<IdentityRow>> {
    let sql =
        format!("SELECT {IDENTITY_COLUMNS} FROM user_identities WHERE user_id = ? ORDER BY id");
    db.fetch_all_with(&sql, &[Value::Int(user_id)])
        .await?
        .iter()
        .map(identity_from)
        .collect()
}

/// Links an identity; a subject already linked (to anyone) is refused by the unique index.
pub async fn link(tx: &mut Tx, identity: &IdentityRow) -> DbResult<i64> {
    tx.insert_returning_id(
        "INSERT INTO user_identities (user_id, provider, subject, email, login, created_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            Value::Int(identity.user_id),
            Value::Text(identity.provider.clone()),
            Value::Text(identity.subject.clone()),
            Value::Text(identity.email.clone()),
            Value::Text(identity.login.clone()),
            Value::Int(now_ms()),
        ],
    )
    .await
}

/// Unlinks one of `user_id`'s identities (another account's is not found). False when none.
pub async fn unlink(tx: &mut Tx, id: i64, user_id: i64) -> DbResult<bool> {
    Ok(tx
        .execute(
            "DELETE FROM user_identities WHERE id = ? AND user_id = ?",
            &[Value::Int(id), Value::Int(user_id)],
        )
        .await?
        > 0)
}

/// How many identities an account has, counted inside a write (for "not the last way in").
pub async fn count_of(tx: &mut Tx, user_id: i64) -> DbResult<i64> {
    let rows = tx
        .fetch_all(
            "SELECT COUNT(*) AS n FROM user_identities WHERE user_id = ?",
            &[Value::Int(user_id)],
        )
        .await?;
    Ok(rows
        .first()
        .map(|row| row.try_get::<i64, _>("n"))
        .transpose()?
        .unwrap_or(0))
}

/// Forgets every identity of an account (when it is deleted, so the subject is free again).
pub async fn unlink_all(tx: &mut Tx, user_id: i64) -> DbResult<()> {
    tx.execute(
        "DELETE FROM user_identities WHERE user_id = ?",
        &[Value::Int(user_id)],
    )
    .await?;
    Ok(())
}
