use super::{ServiceError, ServiceResult, name_err};
use crate::db::admin_tokens::{AdminTokenOwner, AdminTokenRow};
use crate::db::{self, Db};
use crate::domain::kinds::Status;
use crate::domain::{names, secret_key};
use crate::msg;

/// Creates a management-API token for an admin or root user; returns it with the plain token,
/// shown only now.
pub async fn create(db: &Db, username: &str, name: &str) -> ServiceResult<(AdminTokenRow, String)> {
    let user = super::users::get(db, username).await?;
    if !user.role.is_admin() {
        return Err(ServiceError::Forbidden(msg!(
            "admin-token-needs-admin",
            name = username,
            role = user.role.as_str()
        )));
    }
    if user.status != Status::Active {
        return Err(ServiceError::Forbidden(msg!(
            "user-disabled",
            name = username
        )));
    }
    let name = names::label("a token name", name).map_err(name_err("name"))?;
    let secret = secret_key::generate(secret_key::ADMIN_TOKEN_PREFIX);
    let id = db::admin_tokens::insert(db, user.id, &name, &secret.hash, &secret.display).await?;
    let row = db::admin_tokens::list(db)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ServiceError::NotFound(msg!("admin-token-not-found", id = id)))?;
    Ok((row, secret.plain))
}

pub async fn list(db: &Db) -> ServiceResult<Vec<AdminTokenRow>> {
    Ok(db::admin_tokens::list(db).await?)
}

pub async fn delete(db: &Db, id: i64) -> ServiceResult<()> {
    if !db::admin_tokens::delete(db, id).await? {
        return Err(ServiceError::NotFound(msg!(
            "admin-token-not-found",
            id = id
        )));
    }
    Ok(())
}

/// The active admin behind a presented token, or None.
pub async fn authenticate(db: &Db, presented: &str) -> ServiceResult<Option<AdminTokenOwner>> {
    let owner = db::admin_tokens::find_owner(db, &secret_key::hash(presented)).await?;
    Ok(owner.filter(|o| o.role.is_admin() && o.status == Status::Active))
}
