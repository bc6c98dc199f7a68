//! Migrations are embedded in the binary, one numbered file per backend per step, kept in
//! lockstep: `migrations/{sqlite,postgres,mysql}/NNNN_name.sql`. Forward-only; never edit a
//! file that has shipped (sqlx checksums them).

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::{Backend, Db, DbResult};

/// (version, description, SQLite, PostgreSQL, MySQL)
type Step = (i64, &'static str, &'static str, &'static str, &'static str);

const STEPS: &[Step] = &[
    (
        1,
        "relay core",
        include_str!("../../../migrations/sqlite/0001_relay_core.sql"),
        include_str!("../../../migrations/postgres/0001_relay_core.sql"),
        include_str!("../../../migrations/mysql/0001_relay_core.sql"),
    ),
    (
        2,
        "channel tests",
        include_str!("../../../migrations/sqlite/0002_channel_tests.sql"),
        include_str!("../../../migrations/postgres/0002_channel_tests.sql"),
        include_str!("../../../migrations/mysql/0002_channel_tests.sql"),
    ),
    (
        3,
        "key status and cache writes",
        include_str!("../../../migrations/sqlite/0003_key_status_and_cache_writes.sql"),
        include_str!("../../../migrations/postgres/0003_key_status_and_cache_writes.sql"),
        include_str!("../../../migrations/mysql/0003_key_status_and_cache_writes.sql"),
    ),
    (
        4,
        "relay hardening",
        include_str!("../../../migrations/sqlite/0004_relay_hardening.sql"),
        include_str!("../../../migrations/postgres/0004_relay_hardening.sql"),
        include_str!("../../../migrations/mysql/0004_relay_hardening.sql"),
    ),
    (
        5,
        "balance ledger",
        include_str!("../../../migrations/sqlite/0005_balance_ledger.sql"),
        include_str!("../../../migrations/postgres/0005_balance_ledger.sql"),
        include_str!("../../../migrations/mysql/0005_balance_ledger.sql"),
    ),
    (
        6,
        "change feed",
        include_str!("../../../migrations/sqlite/0006_change_feed.sql"),
        include_str!("../../../migrations/postgres/0006_change_feed.sql"),
        include_str!("../../../migrations/mysql/0006_change_feed.sql"),
    ),
    (
        7,
        "portal sessions",
        include_str!("../../../migrations/sqlite/0007_portal_sessions.sql"),
        include_str!("../../../migrations/postgres/0007_portal_sessions.sql"),
        include_str!("../../../migrations/mysql/0007_portal_sessions.sql"),
    ),
    (
        8,
        "email codes and usage by day",
        include_str!("../../../migrations/sqlite/0008_email_codes.sql"),
        include_str!("../../../migrations/postgres/0008_email_codes.sql"),
        include_str!("../../../migrations/mysql/0008_email_codes.sql"),
    ),
    (
        9,
        "key groups and low-balance warnings",
        include_str!("../../../migrations/sqlite/0009_key_groups.sql"),
        include_str!("../../../migrations/postgres/0009_key_groups.sql"),
        include_str!("../../../migrations/mysql/0009_key_groups.sql"),
    ),
    (
        10,
        "key budgets that start over each period",
        include_str!("../../../migrations/sqlite/0010_key_budgets.sql"),
        include_str!("../../../migrations/postgres/0010_key_budgets.sql"),
        include_str!("../../../migrations/mysql/0010_key_budgets.sql"),
    ),
    (
        11,
        "OAuth providers and linked identities",
        include_str!("../../../migrations/sqlite/0011_oauth.sql"),
        include_str!("../../../migrations/postgres/0011_oauth.sql"),
        include_str!("../../../migrations/mysql/0011_oauth.sql"),
    ),
    (
        12,
        "redemption codes",
        include_str!("../../../migrations/sqlite/0012_redemption_codes.sql"),
        include_str!("../../../migrations/postgres/0012_redemption_codes.sql"),
        include_str!("../../../migrations/mysql/0012_redemption_codes.sql"),
    ),
    (
        13,
        "stripe top-ups",
        include_str!("../../../migrations/sqlite/0013_topups.sql"),
        include_str!("../../../migrations/postgres/0013_topups.sql"),
        include_str!("../../../migrations/mysql/0013_topups.sql"),
    ),
    (
        14,
        "context windows, site values and dispute amounts",
        include_str!("../../../migrations/sqlite/0014_context_windows_and_site_values.sql"),
        include_str!("../../../migrations/postgres/0014_context_windows_and_site_values.sql"),
        include_str!("../../../migrations/mysql/0014_context_windows_and_site_values.sql"),
    ),
    (
        15,
        "accounts and key forms",
        include_str!("../../../migrations/sqlite/0015_accounts_and_key_forms.sql"),
        include_str!("../../../migrations/postgres/0015_accounts_and_key_forms.sql"),
        include_str!("../../../migrations/mysql/0015_accounts_and_key_forms.sql"),
    ),
    (
        16,
        "request log rollups",
        include_str!("../../../migrations/sqlite/0016_log_rollups.sql"),
        include_str!("../../../migrations/postgres/0016_log_rollups.sql"),
        include_str!("../../../migrations/mysql/0016_log_rollups.sql"),
    ),
    (
        17,
        "audit log",
        include_str!("../../../migrations/sqlite/0017_audit_log.sql"),
        include_str!("../../../migrations/postgres/0017_audit_log.sql"),
        include_str!("../../../migrations/mysql/0017_audit_log.sql"),
    ),
    (
        18,
        "coarser rollups for the overview",
        include_str!("../../../migrations/sqlite/0018_overview_rollups.sql"),
        include_str!("../../../migrations/postgres/0018_overview_rollups.sql"),
        include_str!("../../../migrations/mysql/0018_overview_rollups.sql"),
    ),
    (
        19,
        "failed attempts in request logs",
        include_str!("../../../migrations/sqlite/0019_failed_attempts.sql"),
        include_str!("../../../migrations/postgres/0019_failed_attempts.sql"),
        include_str!("../../../migrations/mysql/0019_failed_attempts.sql"),
    ),
    (
        20,
        "organisations, teams and budget scopes",
        include_str!("../../../migrations/sqlite/0020_organisations.sql"),
        include_str!("../../../migrations/postgres/0020_organisations.sql"),
        include_str!("../../../migrations/mysql/0020_organisations.sql"),
    ),
    (
        21,
        "card and code top-ups into organisations' wallets",
        include_str!("../../../migrations/sqlite/0021_org_topups.sql"),
        include_str!("../../../migrations/postgres/0021_org_topups.sql"),
        include_str!("../../../migrations/mysql/0021_org_topups.sql"),
    ),
    (
        22,
        "budget alerts sent",
        include_str!("../../../migrations/sqlite/0022_budget_alerts.sql"),
        include_str!("../../../migrations/postgres/0022_budget_alerts.sql"),
        include_str!("../../../migrations/mysql/0022_budget_alerts.sql"),
    ),
    (
        23,
        "rate limits on keys, accounts and groups",
        include_str!("../../../migrations/sqlite/0023_rate_limits.sql"),
        include_str!("../../../migrations/postgres/0023_rate_limits.sql"),
        include_str!("../../../migrations/mysql/0023_rate_limits.sql"),
    ),
];

#[derive(Debug)]
struct Embedded(Backend);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        let migrations = STEPS
            .iter()
            .map(|&(version, description, sqlite, postgres, mysql)| {
                let sql = match self.0 {
                    Backend::Sqlite => sqlite,
                    Backend::Postgres => postgres,
                    Backend::MySql => mysql,
                };
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

pub(super) async fn run(db: &Db) -> DbResult<()> {
    let migrator = Migrator::new(Embedded(db.backend())).await?;
    migrator.run(db.pool()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step exists for every backend, and the folders hold no file that is not embedded.
    #[test]
    fn migration_trees_stay_in_lockstep() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut names: Vec<Vec<String>> = Vec::new();
        for backend in ["sqlite", "postgres", "mysql"] {
            let mut files: Vec<String> = std::fs::read_dir(format!("{root}/{backend}"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sql"))
                .collect();
            files.sort();
            names.push(files);
        }
        assert_eq!(names[0], names[1], "sqlite and postgres migrations differ");
        assert_eq!(names[0], names[2], "sqlite and mysql migrations differ");
        assert_eq!(
            names[0].len(),
            STEPS.len(),
            "a migration file is not embedded in STEPS"
        );
        for (file, step) in names[0].iter().zip(STEPS) {
            let version: i64 = file[..4].parse().unwrap();
            assert_eq!(version, step.0, "{file} is out of order in STEPS");
        }
    }
}
