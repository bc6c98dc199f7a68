//! Management operations shared by the command line, the `/api` JSON API and (later) the admin
//! console: validation, the database write, and the views people see. Every write goes through
//! the database layer, which bumps the data version so running servers pick it up.

pub mod accounts;
pub mod admin_tokens;
pub mod audit;
pub mod balance_alerts;
pub mod billing;
pub mod budget_alerts;
pub mod catalog;
pub mod channel_batches;
pub mod channel_tools;
pub mod channels;
pub mod codes;
mod context;
/// The database: SQL lives here alone, and only the services reach it (the compiler keeps the
/// portal, `/api`, the relay and the command line out). The integration tests build with the
/// `test-support` feature, which opens it to them for setting up and inspecting state.
#[cfg(feature = "test-support")]
pub mod db;
#[cfg(not(feature = "test-support"))]
mod db;
pub mod email_codes;
pub mod feed;
pub mod groups;
pub mod health;
pub mod invites;
pub mod key_billing;
pub mod ledger;
pub mod limits;
pub mod logs;
pub mod model_aliases;
pub mod oauth;
pub mod onboarding;
pub mod options;
pub mod org_invitations;
pub mod org_usage;
pub mod orgs;
pub mod overview;
pub mod prices;
pub mod rate_limits;
pub mod relay_accounts;
pub mod rollups;
pub mod sessions;
pub mod site_checks;
pub mod site_values;
pub mod tokens;
pub mod topups;
pub mod usage;
pub mod users;
pub mod views;

pub use context::{AfterWrite, Caller, Ctx};

use crate::domain::money::{DecimalError, MicroUsd, Quota};
use crate::domain::names::NameError;
use crate::i18n::Message;
use crate::msg;
use crate::service::db::DbError;

/// One value a person gave that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field's one spelling: its JSON name, `snake_case` (the command line shows it as
    /// its flag, a form marks its input).
    pub field: &'static str,
    pub message: Message,
}

/// Why a management operation did not happen, as messages any edge renders in its reader's
/// language.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Values a person gave are wrong; each problem names its field.
    #[error("{}", describe_fields(.0))]
    Invalid(Vec<FieldProblem>),
    #[error("{0}")]
    NotFound(Message),
    /// A value that must be unique is taken; `field` names it when known.
    #[error("{message}")]
    Conflict {
        field: Option<&'static str>,
        message: Message,
    },
    #[error("{0}")]
    Forbidden(Message),
    /// An upstream a channel tool called failed; the message says how.
    #[error("{0}")]
    Upstream(Message),
    #[error(transparent)]
    Db(#[from] DbError),
}

fn describe_fields(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    /// One wrong value.
    pub fn invalid(field: &'static str, message: Message) -> Self {
        ServiceError::Invalid(vec![FieldProblem { field, message }])
    }

    pub fn conflict(field: &'static str, message: Message) -> Self {
        ServiceError::Conflict {
            field: Some(field),
            message,
        }
    }

    /// The problems with named fields (empty for other errors).
    pub fn fields(&self) -> &[FieldProblem] {
        match self {
            ServiceError::Invalid(problems) => problems,
            _ => &[],
        }
    }

    /// The message that sums the error up: the first field's for invalid values; None for a
    /// database failure, whose details are for the log.
    pub fn message(&self) -> Option<&Message> {
        match self {
            ServiceError::Invalid(problems) => problems.first().map(|p| &p.message),
            ServiceError::NotFound(message)
            | ServiceError::Forbidden(message)
            | ServiceError::Upstream(message)
            | ServiceError::Conflict { message, .. } => Some(message),
            ServiceError::Db(_) => None,
        }
    }
}

/// The wrong values of one request, collected so that all of them are reported at once (a
/// form marks every field to fix, not the first).
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<FieldProblem>);

impl Problems {
    /// The value, or None with its problems noted. Errors other than wrong values end the
    /// operation at once.
    pub(crate) fn check<T>(&mut self, result: ServiceResult<T>) -> ServiceResult<Option<T>> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(ServiceError::Invalid(mut problems)) => {
                self.0.append(&mut problems);
                Ok(None)
            }
            Err(other) => Err(other),
        }
    }

    /// Ok when nothing was wrong.
    pub(crate) fn finish(self) -> ServiceResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Invalid(self.0))
        }
    }
}

/// Why a name was refused, for the field it was typed in.
pub fn name_problem(error: &NameError) -> Message {
    match error {
        NameError::Empty { .. } => msg!("name-empty"),
        NameError::TooLong { max, .. } => msg!("name-too-long", max = *max),
        NameError::BadCharacter { value, allowed, .. } => {
            msg!(
                "name-bad-character",
                value = value.as_str(),
                allowed = *allowed
            )
        }
    }
}

/// Why a decimal amount was refused.
pub fn decimal_problem(error: &DecimalError) -> Message {
    match error {
        DecimalError::NotANumber(value) => msg!("decimal-not-a-number", value = value),
        DecimalError::TooPrecise(value, places) => {
            msg!("decimal-too-precise", value = value, places = *places)
        }
        DecimalError::Negative(value) => msg!("decimal-negative", value = value),
        DecimalError::TooLarge(value) => msg!("decimal-too-large", value = value),
    }
}

pub(crate) fn name_err(field: &'static str) -> impl Fn(NameError) -> ServiceError {
    move |e| ServiceError::invalid(field, name_problem(&e))
}

pub(crate) fn decimal_err(field: &'static str) -> impl Fn(DecimalError) -> ServiceError {
    move |e| ServiceError::invalid(field, decimal_problem(&e))
}

/// Turns a unique-constraint refusal into a conflict on `field`.
pub(crate) fn conflict(
    field: &'static str,
    message: Message,
) -> impl FnOnce(DbError) -> ServiceError {
    move |e| match e {
        DbError::Conflict(_) => ServiceError::conflict(field, message),
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
        .ok_or_else(|| ServiceError::invalid(field, msg!("amount-too-large")))
}
