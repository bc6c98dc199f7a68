//! Management operations shared by the command line, the `/api` JSON API and (later) the admin
//! console: validation, the database write, and the views people see. Every write goes through
//! the database layer, which bumps the data version so running servers pick it up.

pub mod admin_tokens;
pub mod billing;
pub mod channel_tools;
pub mod channels;
pub mod groups;
pub mod logs;
pub mod model_aliases;
pub mod options;
pub mod prices;
pub mod tokens;
pub mod users;
pub mod views;

use crate::db::DbError;
use crate::domain::money::{DecimalError, MicroUsd, Quota};
use crate::domain::names::NameError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A value a person typed is wrong; `field` names it (a CLI flag or JSON field).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    /// An upstream a channel tool called failed; the message says how.
    #[error("{0}")]
    Upstream(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field,
            message: message.into(),
        }
    }
}

pub(crate) fn name_err(field: &'static str) -> impl Fn(NameError) -> ServiceError {
    move |e| ServiceError::invalid(field, e.to_string())
}

pub(crate) fn decimal_err(field: &'static str) -> impl Fn(DecimalError) -> ServiceError {
    move |e| ServiceError::invalid(field, e.to_string())
}

/// Turns a unique-constraint refusal into a readable conflict.
pub(crate) fn conflict(message: impl Into<String>) -> impl FnOnce(DbError) -> ServiceError {
    let message = message.into();
    move |e| match e {
        DbError::Conflict(_) => ServiceError::Conflict(message),
        other => ServiceError::Db(other),
    }
}

/// A dollar amount converted to quota units at the current rate.
pub(crate) fn usd_to_quota(
    field: &'static str,
    usd: MicroUsd,
    quota_per_usd: i64,
) -> ServiceResult<Quota> {
    Quota::from_usd(usd, quota_per_usd)
        .ok_or_else(|| ServiceError::invalid(field, "amount is too large"))
}
