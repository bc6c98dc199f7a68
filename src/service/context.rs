//! Who calls a management operation, and what it runs with.
//!
//! Every operation takes a [`Ctx`] (the database, and what to do once a write has committed)
//! and the [`Caller`], and decides there who may do what: a handler cannot forget a check,
//! because the service makes it. Records a user owns are read and changed through queries
//! scoped to the owner, so another user's id is simply not found.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::site_values::SiteValueCache;
use super::{ServiceError, ServiceResult};
use crate::domain::kinds::Role;
use crate::msg;
use crate::service::db::{Change, Db, DbError, Tx};

/// Who is asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The command line on the server's machine: whoever runs it holds the database, so it
    /// may do what root may.
    Cli,
    /// The server itself (background work).
    System,
    /// An administrator by user id; `root` may also manage other administrators.
    Admin { user_id: i64, root: bool },
    /// A user acting on their own account.
    User(i64),
}

impl Caller {
    /// The caller for an account of `role`.
    pub fn for_account(user_id: i64, role: Role) -> Caller {
        match role {
            Role::Root => Caller::Admin {
                user_id,
                root: true,
            },
            Role::Admin => Caller::Admin {
                user_id,
                root: false,
            },
            Role::User => Caller::User(user_id),
        }
    }

    pub fn is_admin(&self) -> bool {
        !matches!(self, Caller::User(_))
    }

    fn is_root(&self) -> bool {
        matches!(
            self,
            Caller::Cli | Caller::System | Caller::Admin { root: true, .. }
        )
    }

    /// Administration: managing users, channels, prices, options.
    pub fn require_admin(&self) -> ServiceResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(msg!("admins-only")))
        }
    }

    /// Root's alone: what holds a secret or decides where one is sent (mail, payments,
    /// sign-in providers, the site's address).
    pub fn require_root(&self) -> ServiceResult<()> {
        if self.is_root() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(msg!("root-only-change")))
        }
    }

    /// Only root may create, change or grant admin and root accounts.
    pub fn may_manage_role(&self, role: Role) -> ServiceResult<()> {
        if role.is_admin() && !self.is_root() {
            return Err(ServiceError::Forbidden(msg!("root-only")));
        }
        Ok(())
    }

    /// The administrator's own user id.
    pub fn admin_id(&self) -> Option<i64> {
        match self {
            Caller::Admin { user_id, .. } => Some(*user_id),
            _ => None,
        }
    }

    /// The account of a person calling (a user or an administrator); None for the command line
    /// and the server itself.
    pub fn account_id(&self) -> Option<i64> {
        match self {
            Caller::User(user_id) | Caller::Admin { user_id, .. } => Some(*user_id),
            Caller::Cli | Caller::System => None,
        }
    }

    /// The caller's own account, for operations on one's own account (a profile, sessions):
    /// the command line and the server have none.
    pub fn own_account(&self) -> ServiceResult<i64> {
        self.account_id()
            .ok_or_else(|| ServiceError::Forbidden(msg!("own-account-only")))
    }

    /// The user whose records alone this caller may see; None for administrators.
    pub fn owner(&self) -> Option<i64> {
        match self {
            Caller::User(id) => Some(*id),
            _ => None,
        }
    }

    /// How the caller is named in records it leaves (the balance ledger): `cli`, `system`,
    /// `admin:12`, `user:34`.
    pub fn actor(&self) -> String {
        match self {
            Caller::Cli => "cli".into(),
            Caller::System => "system".into(),
            Caller::Admin { user_id, .. } => format!("admin:{user_id}"),
            Caller::User(id) => format!("user:{id}"),
        }
    }
}

/// What a server does once a write has committed: bring its in-memory view up to date, so
/// the change is live before the operation answers.
pub trait AfterWrite: Send + Sync {
    fn committed<'a>(&'a self, changes: &'a [Change]) -> BoxFuture<'a, ()>;
}

/// What every operation runs with. Its database is the services' alone: whoever holds a `Ctx`
/// reaches the data only through the operations that take it.
#[derive(Clone)]
pub struct Ctx {
    pub(in crate::service) db: Db,
    after_write: Option<Arc<dyn AfterWrite>>,
    /// Site-wide values read so far (see `site_values`).
    site_values: SiteValueCache,
}

impl Ctx {
    /// For the command line: a running server notices its writes through the data version.
    pub fn new(db: Db) -> Ctx {
        Ctx {
            db,
            after_write: None,
            site_values: SiteValueCache::default(),
        }
    }

    /// Opens (and migrates) the database at `url`, with at most `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Ctx, DbError> {
        Ok(Ctx::new(Db::connect(url, max_connections).await?))
    }

    /// For a server: `after_write` runs once each write has committed.
    pub fn with_after_write(self, after_write: Arc<dyn AfterWrite>) -> Ctx {
        Ctx {
            after_write: Some(after_write),
            ..self
        }
    }

    /// Closes the database's connections (the server stopping, a command done).
    pub async fn close(&self) {
        self.db.close().await;
    }

    pub(super) fn site_values(&self) -> &SiteValueCache {
        &self.site_values
    }

    /// Runs `work` in one transaction (see [`Db::write`]) as `caller`, then the after-write
    /// effects of what it changed. What the work described of its changes (`Tx::audit`) is
    /// written to the audit log in the same transaction when the caller is audited (see
    /// [`super::audit`]): this is the one write path, so no change can forget its row.
    pub async fn write<T>(
        &self,
        caller: &Caller,
        work: impl AsyncFnOnce(&mut Tx) -> ServiceResult<T>,
    ) -> ServiceResult<T> {
        let (value, changes) = self
            .db
            .write(async |tx: &mut Tx| {
                let value = work(tx).await?;
                super::audit::record(tx, caller).await?;
                Ok::<T, ServiceError>(value)
            })
            .await?;
        self.committed(&changes).await;
        Ok(value)
    }

    /// [`Ctx::write`] for a change of the caller's own records (their profile, keys,
    /// sessions): not audited, whatever their role.
    pub async fn write_own<T>(
        &self,
        caller: &Caller,
        work: impl AsyncFnOnce(&mut Tx) -> ServiceResult<T>,
    ) -> ServiceResult<T> {
        self.write(caller, async |tx: &mut Tx| {
            tx.own_records();
            work(tx).await
        })
        .await
    }

    /// [`Ctx::write`] for the server's own work that fails only with database errors, which
    /// the caller inspects (whether to retry). Not audited: nobody but the server asked.
    pub async fn write_db<T>(
        &self,
        work: impl AsyncFnOnce(&mut Tx) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let (value, changes) = self.db.write(work).await?;
        self.committed(&changes).await;
        Ok(value)
    }

    async fn committed(&self, changes: &[Change]) {
        if let Some(after_write) = self.after_write.as_ref().filter(|_| !changes.is_empty()) {
            after_write.committed(changes).await;
        }
    }
}
