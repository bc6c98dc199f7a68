use super::{Caller, Ctx, ServiceError, ServiceResult, audit, name_err};
use crate::domain::kinds::Status;
use crate::domain::{names, secret_key};
use crate::msg;
use crate::service::db;
use crate::service::db::admin_tokens::{AdminTokenOwner, AdminTokenRow};

/// Creates a management-API token for an admin or root user; returns it with the plain token,
/// shown only now.
pub async fn create(
    ctx: &Ctx,
    caller: &Caller,
    username: &str,
    name: &str,
) -> ServiceResult<(AdminTokenRow, String)> {
    caller.require_admin()?;
    let user = super::users::find(&ctx.db, username).await?;
    // Only root hands out tokens for other administrators' accounts.
    if Some(user.id) != caller.admin_id() {
        caller.may_manage_role(user.role)?;
    }
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
    let id = ctx
        .write(caller, async |tx| {
            let id =
                db::admin_tokens::insert(tx, user.id, &name, &secret.hash, &secret.display).await?;
            tx.audit(audit::change(
                "admin_token.create",
                format!("admin_token:{id}"),
                None,
                Some(serde_json::json!({ "user": user.username, "name": name })),
                &[],
            ));
            Ok(id)
        })
        .await?;
    let row = db::admin_tokens::list(&ctx.db)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ServiceError::NotFound(msg!("admin-token-not-found", id = id)))?;
    Ok((row, secret.plain))
}

/// [`create`] for `username`, or the caller's own account when None (the command line has
/// none, so it names one).
pub async fn create_for(
    ctx: &Ctx,
    caller: &Caller,
    username: Option<&str>,
    name: &str,
) -> ServiceResult<(AdminTokenRow, String)> {
    caller.require_admin()?;
    let username = match username.map(str::trim).filter(|u| !u.is_empty()) {
        Some(username) => username.to_string(),
        None => {
            let own = caller
                .admin_id()
                .ok_or_else(|| ServiceError::invalid("user", msg!("field-required")))?;
            super::users::find_id(&ctx.db, own).await?.username
        }
    };
    create(ctx, caller, &username, name).await
}

pub async fn list(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<AdminTokenRow>> {
    caller.require_admin()?;
    Ok(db::admin_tokens::list(&ctx.db).await?)
}

/// Revokes a token: `/api` refuses it from now on. Only root revokes another
/// administrator's token (as only root hands one out).
pub async fn delete(ctx: &Ctx, caller: &Caller, id: i64) -> ServiceResult<()> {
    caller.require_admin()?;
    let not_found = || ServiceError::NotFound(msg!("admin-token-not-found", id = id));
    let token = db::admin_tokens::list(&ctx.db)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(not_found)?;
    let owner = super::users::find(&ctx.db, &token.username).await?;
    if Some(owner.id) != caller.admin_id() {
        caller.may_manage_role(owner.role)?;
    }
    ctx.write(caller, async |tx| {
        if !db::admin_tokens::delete(tx, id).await? {
            // Revoked meanwhile: nothing to record.
            return Err(not_found());
        }
        tx.audit(audit::change(
            "admin_token.revoke",
            format!("admin_token:{id}"),
            Some(serde_json::json!({ "user": token.username, "name": token.name })),
            None,
            &[],
        ));
        Ok(())
    })
    .await
}

/// The active admin behind a presented token, or None. Records the token's use.
pub async fn authenticate(ctx: &Ctx, presented: &str) -> ServiceResult<Option<AdminTokenOwner>> {
    let owner = db::admin_tokens::find_owner(&ctx.db, &secret_key::hash(presented)).await?;
    let owner = owner.filter(|o| o.role.is_admin() && o.status == Status::Active);
    if let Some(owner) = &owner
        && let Err(e) = db::admin_tokens::touch(&ctx.db, owner.token_id).await
    {
        tracing::warn!(error = %e, "could not record admin token use");
    }
    Ok(owner)
}
