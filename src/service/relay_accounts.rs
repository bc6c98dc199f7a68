//! What the relay's directory reads of API keys, their accounts and their organisations, when
//! a key is first seen and when a change (or another node's billing) makes it read them again.
//! Reads only: the relay authenticates from memory, and these run off the request path or once
//! per new key.

use async_trait::async_trait;

use super::Ctx;
use super::db::{scopes, tokens, users};
use crate::records::DbResult;
use crate::records::scopes::{OrgBalance, OrgScopes};
use crate::records::tokens::{KeyBalance, TokenRow};
use crate::records::users::UserRow;
use crate::snapshot::directory::AccountSource;

/// The directory's source: this server's database, through the services.
pub struct StoredAccounts(pub Ctx);

#[async_trait]
impl AccountSource for StoredAccounts {
    async fn key_by_hash(&self, key_hash: &str) -> DbResult<Option<TokenRow>> {
        tokens::by_hash(&self.0.db, key_hash).await
    }

    async fn keys_by_ids(&self, ids: &[i64]) -> DbResult<Vec<(i64, DbResult<TokenRow>)>> {
        tokens::by_ids(&self.0.db, ids).await
    }

    async fn key_balances(&self, ids: &[i64]) -> DbResult<Vec<KeyBalance>> {
        tokens::balances_of(&self.0.db, ids).await
    }

    async fn account(&self, id: i64) -> DbResult<Option<UserRow>> {
        users::find_by_id(&self.0.db, id).await
    }

    async fn accounts_by_ids(&self, ids: &[i64]) -> DbResult<Vec<(i64, DbResult<UserRow>)>> {
        users::by_ids(&self.0.db, ids).await
    }

    async fn account_balances(&self, ids: &[i64]) -> DbResult<Vec<(i64, i64)>> {
        users::balances_of(&self.0.db, ids).await
    }

    async fn org(&self, id: i64) -> DbResult<Option<OrgScopes>> {
        scopes::org_scopes(&self.0.db, id).await
    }

    async fn org_balances(&self, ids: &[i64]) -> DbResult<Vec<OrgBalance>> {
        scopes::org_balances(&self.0.db, ids).await
    }
}
