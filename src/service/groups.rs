use super::{Caller, Ctx, ServiceError, ServiceResult, audit, conflict, decimal_err, name_err};
use crate::domain::money::Ratio;
use crate::domain::names;
use crate::domain::rate_limits::RateLimits;
use crate::msg;
use crate::service::db::groups::GroupRow;
use crate::service::db::{self, Db};
use crate::service::rate_limits::RateLimitInput;

#[derive(Debug, Clone, Default)]
pub struct GroupInput {
    pub ratio: Option<String>,
    pub description: Option<String>,
    pub user_selectable: Option<bool>,
    /// Rate limits of each key of the group that sets none: a field absent stays, an empty
    /// one is cleared.
    pub rate_limits: RateLimitInput,
}

pub async fn list(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<GroupRow>> {
    caller.require_admin()?;
    Ok(db::groups::list(&ctx.db).await?)
}

pub async fn get(ctx: &Ctx, caller: &Caller, name: &str) -> ServiceResult<GroupRow> {
    caller.require_admin()?;
    find(&ctx.db, name).await
}

async fn find(db: &Db, name: &str) -> ServiceResult<GroupRow> {
    db::groups::find(db, name)
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("group-not-found", name = name)))
}

/// The group must exist before users or channels can refer to it.
pub(crate) async fn require(db: &Db, field: &'static str, name: &str) -> ServiceResult<()> {
    if db::groups::find(db, name).await?.is_none() {
        let known: Vec<String> = db::groups::list(db)
            .await?
            .into_iter()
            .map(|g| g.name)
            .collect();
        return Err(ServiceError::invalid(
            field,
            msg!("group-unknown", name = name, existing = known.join(", ")),
        ));
    }
    Ok(())
}

fn parse_ratio(text: &str) -> ServiceResult<Ratio> {
    Ratio::parse(text).map_err(decimal_err("ratio"))
}

pub async fn create(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    input: GroupInput,
) -> ServiceResult<GroupRow> {
    caller.require_admin()?;
    let name = names::group_name(name).map_err(name_err("name"))?;
    let group = GroupRow {
        name: name.clone(),
        ratio: match &input.ratio {
            Some(text) => parse_ratio(text)?,
            None => Ratio::ONE,
        },
        description: input.description.unwrap_or_default(),
        user_selectable: input.user_selectable.unwrap_or(false),
        rate_limits: input.rate_limits.applied_to(RateLimits::NONE)?,
        created_at: 0,
        updated_at: 0,
    };
    ctx.write(caller, async |tx| {
        db::groups::insert(tx, &group)
            .await
            .map_err(conflict("name", msg!("group-exists", name = name.as_str())))?;
        tx.audit(audit::change(
            "group.create",
            format!("group:{name}"),
            None,
            Some(audit::fields::group(&group)),
            &[],
        ));
        Ok(())
    })
    .await?;
    find(&ctx.db, &name).await
}

pub async fn update(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    input: GroupInput,
) -> ServiceResult<GroupRow> {
    caller.require_admin()?;
    let mut group = find(&ctx.db, name).await?;
    let before = audit::fields::group(&group);
    if let Some(text) = &input.ratio {
        group.ratio = parse_ratio(text)?;
    }
    if let Some(description) = input.description {
        group.description = description;
    }
    if let Some(selectable) = input.user_selectable {
        group.user_selectable = selectable;
    }
    group.rate_limits = input.rate_limits.applied_to(group.rate_limits)?;
    ctx.write(caller, async |tx| {
        db::groups::update(tx, &group).await?;
        tx.audit(audit::change(
            "group.update",
            format!("group:{name}"),
            Some(before),
            Some(audit::fields::group(&group)),
            &[],
        ));
        Ok(())
    })
    .await?;
    find(&ctx.db, name).await
}

/// New users join this group unless told otherwise, so it cannot be deleted.
pub const DEFAULT_GROUP: &str = "default";

pub async fn delete(ctx: &Ctx, caller: &Caller, name: &str) -> ServiceResult<()> {
    caller.require_admin()?;
    if name == DEFAULT_GROUP {
        return Err(ServiceError::Forbidden(msg!("group-default-undeletable")));
    }
    let group = find(&ctx.db, name).await?;
    let members = db::groups::member_count(&ctx.db, name).await?;
    if members > 0 {
        return Err(ServiceError::Conflict {
            field: None,
            message: msg!("group-has-users", name = name, count = members),
        });
    }
    ctx.write(caller, async |tx| {
        db::groups::delete(tx, name).await?;
        tx.audit(audit::change(
            "group.delete",
            format!("group:{name}"),
            Some(audit::fields::group(&group)),
            None,
            &[],
        ));
        Ok(())
    })
    .await?;
    Ok(())
}
