//! Replaying the billing dead-letter file: records the writer set aside are applied to the
//! database, each exactly once however often the file is replayed.

use std::path::Path;

use serde::Serialize;

use crate::billing::dead_letter::{self, DeadLetter};
use crate::billing::writer::{BillingStore, Entry, batch_of};
use crate::records::logs::BillingBatch;
use crate::service::db::logs::{self, Replayed};
use crate::service::db::{DbError, now_ms};

use super::{Caller, Ctx, ServiceError, ServiceResult};
use crate::msg;

/// The billing writer's store: this server's database, through the services.
pub struct StoredBilling(pub Ctx);

#[async_trait::async_trait]
impl BillingStore for StoredBilling {
    async fn apply(&self, batch: &BillingBatch<'_>) -> Result<(), DbError> {
        logs::apply_billing(&self.0.db, batch).await
    }

    async fn logged_request_ids(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashSet<String>, DbError> {
        logs::logged_request_ids(&self.0.db, ids).await
    }

    async fn accepts_writes(&self) -> bool {
        crate::service::db::meta::accepts_writes(&self.0.db).await
    }
}

/// What a replay did, line by line.
#[derive(Debug, Default, Serialize)]
pub struct ReplayReport {
    /// Request ids whose charges and log rows were written now.
    pub applied: Vec<String>,
    /// Request ids already in the database (replayed before, or written after all).
    pub already_applied: Vec<String>,
    /// Quota units charged by the records applied now.
    pub charged: i64,
    /// Lines that could not be applied; the file keeps them for another try.
    pub failed: Vec<ReplayFailure>,
}

#[derive(Debug, Serialize)]
pub struct ReplayFailure {
    /// 1-based line number in the file.
    pub line: usize,
    pub request_id: Option<String>,
    pub error: String,
}

/// Applies every record of a dead-letter file. A record whose text the database still refuses
/// is applied with its text replaced, like the writer does.
pub async fn replay(ctx: &Ctx, caller: &Caller, path: &Path) -> ServiceResult<ReplayReport> {
    caller.require_admin()?;
    let lines = dead_letter::read(path).map_err(|e| {
        ServiceError::invalid(
            "file",
            msg!(
                "file-unreadable",
                path = path.display().to_string(),
                reason = e.to_string()
            ),
        )
    })?;
    let mut report = ReplayReport::default();
    for (index, line) in lines.into_iter().enumerate() {
        let mut letter = match line {
            Ok(letter) => letter,
            Err(error) => {
                report.failed.push(ReplayFailure {
                    line: index + 1,
                    request_id: None,
                    error: format!("not a billing record: {error}"),
                });
                continue;
            }
        };
        letter.log.make_storable();
        let request_id = letter.log.request_id.clone();
        let outcome = match apply(ctx, &letter).await {
            Err(error) if !error.is_transient() => {
                letter.log.replace_text(&error.to_string());
                apply(ctx, &letter).await
            }
            other => other,
        };
        match outcome {
            Ok(Replayed::Applied) => {
                report.charged = report.charged.saturating_add(letter.log.cost.max(0));
                report.applied.push(request_id);
            }
            Ok(Replayed::AlreadyApplied) => report.already_applied.push(request_id),
            Err(error) => report.failed.push(ReplayFailure {
                line: index + 1,
                request_id: Some(request_id),
                error: error.to_string(),
            }),
        }
    }
    Ok(report)
}

async fn apply(ctx: &Ctx, letter: &DeadLetter) -> Result<Replayed, DbError> {
    let batch = batch_of([Entry::from(letter)]);
    ctx.write_db(async |tx| logs::replay(tx, &letter.log.request_id, &batch, now_ms()).await)
        .await
}
