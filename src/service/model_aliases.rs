//! Model aliases an admin sets: a name clients ask for (`fast`, `claude-opus-4-8`) and the
//! model that serves and prices it. An alias resolves before routing and pricing; aliases do
//! not chain.

use super::{Caller, Ctx, ServiceError, ServiceResult, audit, conflict, name_err};
use crate::domain::names;
use crate::msg;
use crate::service::db;
use crate::service::db::model_aliases::AliasRow;

pub async fn list(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<AliasRow>> {
    caller.require_admin()?;
    Ok(db::model_aliases::list(&ctx.db).await?)
}

/// The alias's name and target as they are stored, checked against the aliases there are
/// (`except` an alias being pointed elsewhere): aliases do not chain.
async fn checked(
    ctx: &Ctx,
    name: &str,
    target: &str,
    except: Option<&str>,
) -> ServiceResult<(String, String)> {
    let name = names::model_name(name).map_err(name_err("name"))?;
    let target = names::model_name(target).map_err(name_err("to"))?;
    if name == target {
        return Err(ServiceError::invalid("to", msg!("alias-points-at-itself")));
    }
    let existing: Vec<AliasRow> = db::model_aliases::list(&ctx.db)
        .await?
        .into_iter()
        .filter(|a| Some(a.name.as_str()) != except)
        .collect();
    if let Some(alias) = existing.iter().find(|a| a.name == target) {
        return Err(ServiceError::invalid(
            "to",
            msg!(
                "alias-target-is-alias",
                target = target.as_str(),
                model = alias.target.as_str()
            ),
        ));
    }
    if let Some(alias) = existing.iter().find(|a| a.target == name) {
        return Err(ServiceError::invalid(
            "name",
            msg!(
                "alias-name-is-target",
                alias = alias.name.as_str(),
                name = name.as_str()
            ),
        ));
    }
    Ok((name, target))
}

/// Points `name` at `target`.
pub async fn add(ctx: &Ctx, caller: &Caller, name: &str, target: &str) -> ServiceResult<AliasRow> {
    caller.require_admin()?;
    let (name, target) = checked(ctx, name, target, None).await?;
    ctx.write(caller, async |tx| {
        let row = db::model_aliases::insert(tx, &name, &target)
            .await
            .map_err(conflict("name", msg!("alias-exists", name = name.as_str())))?;
        tx.audit(audit::change(
            "alias.create",
            format!("alias:{name}"),
            None,
            Some(serde_json::json!({ "target": target })),
            &[],
        ));
        Ok(row)
    })
    .await
}

/// Points the existing alias `name` at another model.
pub async fn retarget(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    target: &str,
) -> ServiceResult<AliasRow> {
    caller.require_admin()?;
    let before = db::model_aliases::list(&ctx.db)
        .await?
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| ServiceError::NotFound(msg!("alias-not-found", name = name)))?;
    let (name, target) = checked(ctx, name, target, Some(name)).await?;
    ctx.write(caller, async |tx| {
        db::model_aliases::delete(tx, &name).await?;
        let row = db::model_aliases::insert(tx, &name, &target).await?;
        tx.audit(audit::change(
            "alias.update",
            format!("alias:{name}"),
            Some(serde_json::json!({ "target": before.target })),
            Some(serde_json::json!({ "target": target })),
            &[],
        ));
        Ok(row)
    })
    .await
}

pub async fn remove(ctx: &Ctx, caller: &Caller, name: &str) -> ServiceResult<()> {
    caller.require_admin()?;
    let removed = ctx
        .write(caller, async |tx| {
            let removed = db::model_aliases::delete(tx, name).await?;
            tx.audit(audit::entry("alias.delete", format!("alias:{name}")));
            Ok(removed)
        })
        .await?;
    if removed {
        Ok(())
    } else {
        Err(ServiceError::NotFound(msg!("alias-not-found", name = name)))
    }
}
