use super::{ServiceError, ServiceResult};
use crate::db::{self, Db};
use crate::i18n::Message;
use crate::msg;
use crate::options::{OptionInfo, RuntimeOptions};

/// The runtime options as stored now.
pub async fn current(db: &Db) -> ServiceResult<RuntimeOptions> {
    let stored = db::options::all(db).await?;
    Ok(RuntimeOptions::from_stored(&stored).0)
}

pub async fn list(db: &Db) -> ServiceResult<Vec<OptionInfo>> {
    Ok(current(db).await?.describe())
}

/// Validates and stores one option.
pub async fn set(db: &Db, name: &str, value: &str) -> ServiceResult<OptionInfo> {
    let mut options = current(db).await?;
    options.set(name, value).map_err(|message| {
        if RuntimeOptions::names().contains(&name) {
            ServiceError::invalid("value", message)
        } else {
            ServiceError::NotFound(message)
        }
    })?;
    let info = options
        .describe()
        .into_iter()
        .find(|o| o.name == name)
        .ok_or_else(|| ServiceError::NotFound(unknown(name)))?;
    // Store the canonical spelling, so what is listed is what was set.
    db::options::set(db, name, &info.value).await?;
    Ok(info)
}

pub async fn reset(db: &Db, name: &str) -> ServiceResult<OptionInfo> {
    if !RuntimeOptions::names().contains(&name) {
        return Err(ServiceError::NotFound(unknown(name)));
    }
    db::options::reset(db, name).await?;
    RuntimeOptions::default()
        .describe()
        .into_iter()
        .find(|o| o.name == name)
        .ok_or_else(|| ServiceError::NotFound(unknown(name)))
}

fn unknown(name: &str) -> Message {
    msg!(
        "option-unknown",
        name = name,
        known = RuntimeOptions::names().join(", ")
    )
}
