use super::{ServiceError, ServiceResult, conflict, decimal_err, name_err};
use crate::db::groups::GroupRow;
use crate::db::{self, Db};
use crate::domain::money::Ratio;
use crate::domain::names;
use crate::msg;

#[derive(Debug, Clone, Default)]
pub struct GroupInput {
    pub ratio: Option<String>,
    pub description: Option<String>,
    pub user_selectable: Option<bool>,
}

pub async fn list(db: &Db) -> ServiceResult<Vec<GroupRow>> {
    Ok(db::groups::list(db).await?)
}

pub async fn get(db: &Db, name: &str) -> ServiceResult<GroupRow> {
    db::groups::find(db, name)
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("group-not-found", name = name)))
}

/// The group must exist before users or channels can refer to it.
pub async fn require(db: &Db, field: &'static str, name: &str) -> ServiceResult<()> {
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

pub async fn create(db: &Db, name: &str, input: GroupInput) -> ServiceResult<GroupRow> {
    let name = names::group_name(name).map_err(name_err("name"))?;
    let group = GroupRow {
        name: name.clone(),
        ratio: match &input.ratio {
            Some(text) => parse_ratio(text)?,
            None => Ratio::ONE,
        },
        description: input.description.unwrap_or_default(),
        user_selectable: input.user_selectable.unwrap_or(false),
        created_at: 0,
        updated_at: 0,
    };
    db::groups::insert(db, &group)
        .await
        .map_err(conflict("name", msg!("group-exists", name = name.as_str())))?;
    get(db, &name).await
}

pub async fn update(db: &Db, name: &str, input: GroupInput) -> ServiceResult<GroupRow> {
    let mut group = get(db, name).await?;
    if let Some(text) = &input.ratio {
        group.ratio = parse_ratio(text)?;
    }
    if let Some(description) = input.description {
        group.description = description;
    }
    if let Some(selectable) = input.user_selectable {
        group.user_selectable = selectable;
    }
    db::groups::update(db, &group).await?;
    get(db, name).await
}

/// New users join this group unless told otherwise, so it cannot be deleted.
pub const DEFAULT_GROUP: &str = "default";

pub async fn delete(db: &Db, name: &str) -> ServiceResult<()> {
    if name == DEFAULT_GROUP {
        return Err(ServiceError::Forbidden(msg!("group-default-undeletable")));
    }
    get(db, name).await?;
    let members = db::groups::member_count(db, name).await?;
    if members > 0 {
        return Err(ServiceError::Conflict {
            field: None,
            message: msg!("group-has-users", name = name, count = members),
        });
    }
    db::groups::delete(db, name).await?;
    Ok(())
}
