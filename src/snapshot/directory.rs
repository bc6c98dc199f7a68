//! The API keys and accounts the relay has seen, kept in memory and updated one entry at a
//! time.
//!
//! A portal holds hundreds of thousands of keys, most of them idle on any given day. Loading
//! them all would make every server slow to start and large at rest, so a key is read from the
//! database the first time it is presented (with its owner, if that account is not held yet)
//! and answered from memory from then on: the hot path makes no database round-trip for a key
//! it has seen. A key that does not exist is remembered too, so unknown keys cannot make the
//! database answer for them again and again. Entries idle for a while are dropped once nothing
//! is in flight on their balances.
//!
//! A team key's organisation is held too, whole: its wallet, its budget, its teams' budgets
//! and every member's place and cap, so a team key's request is held on all of them from
//! memory. An organisation is small beside the keys; it is read again as a whole when
//! anything in it changes.
//!
//! Writes reach the directory through the change feed: a changed key, account or
//! organisation that is held is re-read (and a key that was remembered as unknown is
//! forgotten), so a key disabled or deleted, or a member removed from a team, stops at once
//! and a key just created is never refused. A row this build cannot read drops what was held
//! of it: its next use fails closed rather than serving stale data.
//!
//! Each balance and budget is a [`LiveScope`] (see `billing::scopes`); an entry read again
//! keeps the scopes of the entry it replaces, with their holds in flight and spending not yet
//! written. Everything that holds what it read (first loads, changes, the periodic re-read)
//! does so under the billing writer's lock ([`BalanceSync`]), so no batch commits between a
//! balance read and its use. The lookup of a key not held runs outside it, so a flood of
//! unknown keys cannot hold up billing or changes; a generation counter, bumped under the lock
//! by every change applied, tells a lookup whether a change raced it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::billing::BalanceSync;
use crate::billing::rates::RateCounters;
use crate::billing::scopes::{LiveScope, ScopeId, ScopeKind, ScopeStore};
use crate::records::scopes::{OrgBalance, OrgScopes, ScopeSpend};
use crate::records::tokens::{KeyBalance, TokenRow};
use crate::records::users::UserRow;
use crate::records::{Change, DbError, DbResult};

/// Where the directory reads keys and accounts from when it has not seen them (or must read
/// them again): the database, through the services (`service::relay_accounts`).
#[async_trait::async_trait]
pub trait AccountSource: Send + Sync {
    /// A key by the hex SHA-256 of its secret.
    async fn key_by_hash(&self, key_hash: &str) -> DbResult<Option<TokenRow>>;
    /// These keys (those that exist), each read on its own.
    async fn keys_by_ids(&self, ids: &[i64]) -> DbResult<Vec<(i64, DbResult<TokenRow>)>>;
    /// What these keys may still spend, as stored.
    async fn key_balances(&self, ids: &[i64]) -> DbResult<Vec<KeyBalance>>;
    async fn account(&self, id: i64) -> DbResult<Option<UserRow>>;
    /// These accounts (those that exist), each read on its own.
    async fn accounts_by_ids(&self, ids: &[i64]) -> DbResult<Vec<(i64, DbResult<UserRow>)>>;
    /// These accounts' balances as stored, as (id, quota).
    async fn account_balances(&self, ids: &[i64]) -> DbResult<Vec<(i64, i64)>>;
    /// An organisation with its teams, members and budgets' spending.
    async fn org(&self, id: i64) -> DbResult<Option<OrgScopes>>;
    /// These organisations' wallets and budgets' spending, as stored.
    async fn org_balances(&self, ids: &[i64]) -> DbResult<Vec<OrgBalance>>;
}
use crate::domain::ip_allow::IpAllowList;
use crate::domain::kinds::{BudgetPeriod, OrgRole, Role, Status};
use crate::domain::rate_limits::RateLimits;
use crate::domain::secret_key;
use dashmap::DashMap;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

#[derive(Debug)]
pub struct UserEntry {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub status: Status,
    pub group: String,
    /// The person's balance, which their personal keys spend.
    pub balance: Arc<LiveScope>,
    /// Rate limits on all of the person's keys together, and their counters here (kept
    /// when the account is read again).
    pub rate_limits: RateLimits,
    pub rates: Arc<RateCounters>,
    /// Seconds since the Unix epoch of the last request that used the account.
    last_used: AtomicI64,
}

#[derive(Debug)]
pub struct TokenEntry {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub status: Status,
    pub expires_at: Option<i64>,
    pub unlimited: bool,
    /// Empty = every model the user's group may use.
    pub allowed_models: FxHashSet<String>,
    pub allowed_ips: IpAllowList,
    /// The group the key uses instead of its owner's; empty: the owner's.
    pub group: String,
    /// The key's own limit (unused when `unlimited`).
    pub limit: Arc<LiveScope>,
    /// The budget that starts over every period, when the key has one.
    pub budget: Option<PeriodicScope>,
    /// A team key's organisation and team (0, 0: a personal key).
    pub org_id: i64,
    pub team_id: i64,
    /// The key's own rate limits (its group's apply where it sets none), and the key's
    /// counters here (kept when the key is read again).
    pub rate_limits: RateLimits,
    pub rates: Arc<RateCounters>,
    last_used: AtomicI64,
}

/// A budget and the period it starts over in.
pub type PeriodicScope = (BudgetPeriod, Arc<LiveScope>);

/// An organisation as its team keys' requests see it.
#[derive(Debug)]
pub struct OrgEntry {
    pub id: i64,
    pub slug: String,
    pub name: String,
    /// Its own time zone; empty: the site's.
    pub timezone: String,
    pub wallet: Arc<LiveScope>,
    pub budget: Option<PeriodicScope>,
    pub teams: FxHashMap<i64, TeamEntry>,
    /// Members by account id.
    pub members: FxHashMap<i64, MemberEntry>,
}

#[derive(Debug)]
pub struct TeamEntry {
    pub id: i64,
    pub name: String,
    pub budget: Option<PeriodicScope>,
}

#[derive(Debug)]
pub struct MemberEntry {
    pub role: OrgRole,
    /// The teams the member is in, each with the member's cap there (None: no cap).
    pub teams: FxHashMap<i64, Option<PeriodicScope>>,
}

impl OrgEntry {
    /// Every scope of the organisation, for checking that nothing is in flight.
    fn scopes(&self) -> impl Iterator<Item = &Arc<LiveScope>> {
        let budgets = self.budget.iter().map(|(_, scope)| scope);
        let teams = self
            .teams
            .values()
            .filter_map(|team| team.budget.as_ref().map(|(_, scope)| scope));
        let caps = self
            .members
            .values()
            .flat_map(|member| member.teams.values().flatten().map(|(_, scope)| scope));
        std::iter::once(&self.wallet)
            .chain(budgets)
            .chain(teams)
            .chain(caps)
    }
}

/// A budget as just read: the live scope it had (same scope, same period), its figures set to
/// the read unless balances read now may be off by a batch; else a new one. A new period
/// starts a new scope, as the database counts afresh.
fn reuse_budget(
    previous: Option<&PeriodicScope>,
    id: ScopeId,
    period: BudgetPeriod,
    limit: i64,
    spend: Option<&ScopeSpend>,
    uncertain: bool,
) -> PeriodicScope {
    let (spent, window) = spend.map_or((0, 0), |s| (s.spent, s.window_start));
    match previous.filter(|(was, scope)| *was == period && scope.id == id) {
        Some((_, scope)) => {
            if !uncertain {
                scope.set_budget(limit, spent, window);
            }
            (period, Arc::clone(scope))
        }
        None => (
            period,
            Arc::new(LiveScope::budget(id, period, limit, spent, window)),
        ),
    }
}

/// A balance as just read, keeping the live scope it had (see [`reuse_budget`]).
fn reuse_balance(
    previous: Option<&Arc<LiveScope>>,
    id: ScopeId,
    stored: i64,
    uncertain: bool,
) -> Arc<LiveScope> {
    match previous {
        Some(scope) => {
            if !uncertain {
                scope.set_balance(stored);
            }
            Arc::clone(scope)
        }
        None => Arc::new(LiveScope::balance(id, stored)),
    }
}

impl TokenEntry {
    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_models.is_empty() || self.allowed_models.contains(model)
    }
}

/// Notes a use, writing the shared counter only when the second changed, so concurrent
/// requests on one key do not keep invalidating each other's cache line.
fn touch(last_used: &AtomicI64, now_secs: i64) {
    if last_used.load(Ordering::Relaxed) != now_secs {
        last_used.store(now_secs, Ordering::Relaxed);
    }
}

/// Unknown keys remembered at most; past this the memory starts over (an attacker cycling
/// random keys costs one indexed lookup per key, like any other request).
const UNKNOWN_KEYS_HELD: usize = 100_000;

/// What a periodic sweep or re-read did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    pub users: usize,
    pub tokens: usize,
}

pub struct Directory {
    source: Arc<dyn AccountSource>,
    /// Shared with the billing writer (see the module's doc).
    sync: BalanceSync,
    /// Where holds are counted: a shared store must note its marks before each read of the
    /// figures it checks holds against.
    store: Arc<dyn ScopeStore>,
    /// Bumped (under the lock) whenever changes are applied or everything is re-read.
    generation: AtomicU64,
    /// Keyed by the SHA-256 of the key.
    tokens: DashMap<[u8; 32], Arc<TokenEntry>, FxBuildHasher>,
    /// The digest of each key held, by id: changes name keys by id.
    digests: DashMap<i64, [u8; 32], FxBuildHasher>,
    users: DashMap<i64, Arc<UserEntry>, FxBuildHasher>,
    orgs: DashMap<i64, Arc<OrgEntry>, FxBuildHasher>,
    /// Digests the database had no key for.
    unknown: std::sync::Mutex<FxHashSet<[u8; 32]>>,
}

impl Directory {
    pub fn new(
        source: Arc<dyn AccountSource>,
        sync: BalanceSync,
        store: Arc<dyn ScopeStore>,
    ) -> Directory {
        Directory {
            source,
            sync,
            store,
            generation: AtomicU64::new(0),
            tokens: DashMap::with_hasher(FxBuildHasher),
            digests: DashMap::with_hasher(FxBuildHasher),
            users: DashMap::with_hasher(FxBuildHasher),
            orgs: DashMap::with_hasher(FxBuildHasher),
            unknown: std::sync::Mutex::new(FxHashSet::default()),
        }
    }

    /// The key with this digest and its owner: from memory when held, else read once from
    /// the database. `None` when there is no such key (or its owner is gone).
    pub async fn find(
        &self,
        digest: &[u8; 32],
        now_ms: i64,
    ) -> DbResult<Option<(Arc<TokenEntry>, Arc<UserEntry>)>> {
        let now_secs = now_ms / 1000;
        if let Some(token) = self.held_token(digest) {
            touch(&token.last_used, now_secs);
            // A team key whose organisation is not held yet (its first load is still reading
            // it) waits for that load below.
            let org_held = token.org_id == 0 || self.orgs.contains_key(&token.org_id);
            if let Some(user) = self.user(token.user_id).filter(|_| org_held) {
                touch(&user.last_used, now_secs);
                return Ok(Some((token, user)));
            }
        } else if self.is_unknown(digest) {
            return Ok(None);
        }
        let found = self.load(digest).await?;
        if let Some((token, user)) = &found {
            touch(&token.last_used, now_secs);
            touch(&user.last_used, now_secs);
        }
        Ok(found)
    }

    /// An account held in memory.
    pub fn user(&self, id: i64) -> Option<Arc<UserEntry>> {
        self.users.get(&id).map(|user| Arc::clone(&user))
    }

    /// An organisation held in memory.
    pub fn org(&self, id: i64) -> Option<Arc<OrgEntry>> {
        self.orgs.get(&id).map(|org| Arc::clone(&org))
    }

    /// A key held in memory, by id.
    pub fn token(&self, id: i64) -> Option<Arc<TokenEntry>> {
        let digest = *self.digests.get(&id)?;
        self.held_token(&digest)
    }

    /// How many keys and accounts are held.
    pub fn held(&self) -> Sweep {
        Sweep {
            users: self.users.len(),
            tokens: self.tokens.len(),
        }
    }

    fn held_token(&self, digest: &[u8; 32]) -> Option<Arc<TokenEntry>> {
        self.tokens.get(digest).map(|token| Arc::clone(&token))
    }

    fn is_unknown(&self, digest: &[u8; 32]) -> bool {
        self.unknown_keys().contains(digest)
    }

    fn unknown_keys(&self) -> std::sync::MutexGuard<'_, FxHashSet<[u8; 32]>> {
        // Only inserts and removals happen under this lock; a panic cannot leave it half-done.
        self.unknown
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The first sight of a key (or of its owner). The key is looked up outside the lock;
    /// what is found is held under it, unless a change was applied meanwhile (then it is
    /// read again under the lock, where no change can race it).
    async fn load(&self, digest: &[u8; 32]) -> DbResult<Option<(Arc<TokenEntry>, Arc<UserEntry>)>> {
        let hash = secret_key::hex(digest);
        let generation = self.generation.load(Ordering::SeqCst);
        // None: not looked up (it was held a moment ago).
        let looked_up = match self.held_token(digest) {
            Some(_) => None,
            None => Some(self.source.key_by_hash(&hash).await?),
        };
        let _sync = self.sync.lock().await;
        let token = match self.held_token(digest) {
            Some(token) => token,
            None => {
                let row = match looked_up {
                    Some(row) if self.generation.load(Ordering::SeqCst) == generation => row,
                    _ => self.source.key_by_hash(&hash).await?,
                };
                match row {
                    Some(row) => self.hold_token(row, digest),
                    None => {
                        let mut unknown = self.unknown_keys();
                        if unknown.len() >= UNKNOWN_KEYS_HELD {
                            unknown.clear();
                        }
                        unknown.insert(*digest);
                        return Ok(None);
                    }
                }
            }
        };
        let user = match self.user(token.user_id) {
            Some(user) => user,
            None => match self.source.account(token.user_id).await? {
                Some(row) => self.hold_user(row),
                None => return Ok(None),
            },
        };
        // A team key's organisation, so its requests are held without a database read. One
        // that is gone is not held: the key is then refused.
        if token.org_id != 0 && !self.orgs.contains_key(&token.org_id) {
            self.reread_orgs(&[token.org_id]).await?;
        }
        if self.store.needs_marks() {
            let org = if token.org_id == 0 {
                vec![]
            } else {
                vec![token.org_id]
            };
            self.refresh_figures(&[user.id], &[token.id], &org).await?;
        }
        Ok(Some((token, user)))
    }

    /// Holds a key read from the database, keeping the balance in flight of the entry it
    /// replaces. The caller holds the sync lock.
    fn hold_token(&self, row: TokenRow, digest: &[u8; 32]) -> Arc<TokenEntry> {
        // An id some other key had (MySQL can hand a deleted row's id out again): that key
        // is gone.
        if let Some(other) = self.digests.get(&row.id).map(|d| *d)
            && other != *digest
        {
            self.tokens.remove(&other);
        }
        let previous = self.held_token(digest);
        let uncertain = self.sync.is_uncertain();
        let limit = reuse_balance(
            previous.as_ref().map(|t| &t.limit),
            ScopeId::new(ScopeKind::KeyLimit, row.id),
            row.remaining_quota,
            uncertain,
        );
        let budget = row.budget.map(|b| {
            let spend = ScopeSpend {
                kind: String::new(),
                scope_id: row.id,
                window_start: b.window,
                spent: b.spent,
            };
            reuse_budget(
                previous.as_ref().and_then(|t| t.budget.as_ref()),
                ScopeId::new(ScopeKind::KeyBudget, row.id),
                b.period,
                b.quota,
                Some(&spend),
                uncertain,
            )
        });
        let last_used = previous
            .as_ref()
            .map_or(0, |t| t.last_used.load(Ordering::Relaxed));
        let rates = previous.map(|t| Arc::clone(&t.rates)).unwrap_or_default();
        let allowed_ips = IpAllowList::parse(&row.allowed_ips).unwrap_or_else(|e| {
            // Refuse every address rather than allow all when the stored list is bad.
            tracing::warn!(key = row.id, "the key has an unreadable IP list: {e}");
            IpAllowList::parse("0.0.0.0/32").unwrap_or_default()
        });
        let entry = Arc::new(TokenEntry {
            id: row.id,
            user_id: row.user_id,
            name: row.name,
            status: row.status,
            expires_at: row.expires_at,
            unlimited: row.unlimited,
            allowed_models: row.allowed_models.into_iter().collect(),
            allowed_ips,
            group: row.group,
            limit,
            budget,
            org_id: row.org_id,
            team_id: row.team_id,
            rate_limits: row.rate_limits,
            rates,
            last_used: AtomicI64::new(last_used),
        });
        self.digests.insert(entry.id, *digest);
        self.tokens.insert(*digest, Arc::clone(&entry));
        entry
    }

    /// Holds an account read from the database (see [`Directory::hold_token`]).
    fn hold_user(&self, row: UserRow) -> Arc<UserEntry> {
        let previous = self.user(row.id);
        let balance = reuse_balance(
            previous.as_ref().map(|u| &u.balance),
            ScopeId::new(ScopeKind::Balance, row.id),
            row.quota,
            self.sync.is_uncertain(),
        );
        let last_used = previous
            .as_ref()
            .map_or(0, |u| u.last_used.load(Ordering::Relaxed));
        let rates = previous.map(|u| Arc::clone(&u.rates)).unwrap_or_default();
        let entry = Arc::new(UserEntry {
            id: row.id,
            username: row.username,
            role: row.role,
            status: row.status,
            group: row.group,
            balance,
            rate_limits: row.rate_limits,
            rates,
            last_used: AtomicI64::new(last_used),
        });
        self.users.insert(entry.id, Arc::clone(&entry));
        entry
    }

    /// Holds an organisation read from the database, keeping the live scopes of the entry it
    /// replaces (see [`Directory::hold_token`]). The caller holds the sync lock.
    fn hold_org(&self, row: OrgScopes) {
        let previous = self.org(row.id);
        let uncertain = self.sync.is_uncertain();
        let spend_of = |kind: &str, scope_id: i64| {
            row.spend
                .iter()
                .find(|s| s.kind == kind && s.scope_id == scope_id)
        };
        let wallet = reuse_balance(
            previous.as_ref().map(|o| &o.wallet),
            ScopeId::new(ScopeKind::Wallet, row.id),
            row.quota,
            uncertain,
        );
        let budget = row.budget.map(|(period, limit)| {
            reuse_budget(
                previous.as_ref().and_then(|o| o.budget.as_ref()),
                ScopeId::new(ScopeKind::OrgBudget, row.id),
                period,
                limit,
                spend_of("org", row.id),
                uncertain,
            )
        });
        let mut teams = FxHashMap::default();
        for team in &row.teams {
            let budget = team.budget.map(|(period, limit)| {
                reuse_budget(
                    previous
                        .as_ref()
                        .and_then(|o| o.teams.get(&team.id))
                        .and_then(|t| t.budget.as_ref()),
                    ScopeId::new(ScopeKind::TeamBudget, team.id),
                    period,
                    limit,
                    spend_of("team", team.id),
                    uncertain,
                )
            });
            teams.insert(
                team.id,
                TeamEntry {
                    id: team.id,
                    name: team.name.clone(),
                    budget,
                },
            );
        }
        let mut members: FxHashMap<i64, MemberEntry> = row
            .members
            .iter()
            .map(|&(user_id, role)| {
                (
                    user_id,
                    MemberEntry {
                        role,
                        teams: FxHashMap::default(),
                    },
                )
            })
            .collect();
        for membership in &row.memberships {
            let (Some(member), Some(team)) = (
                members.get_mut(&membership.user_id),
                row.teams.iter().find(|t| t.id == membership.team_id),
            ) else {
                continue;
            };
            let cap = membership.cap.or(team.member_cap).map(|limit| {
                let period = team
                    .budget
                    .map_or(BudgetPeriod::CAP_WITHOUT_TEAM_BUDGET, |(period, _)| period);
                reuse_budget(
                    previous
                        .as_ref()
                        .and_then(|o| o.members.get(&membership.user_id))
                        .and_then(|m| m.teams.get(&membership.team_id))
                        .and_then(Option::as_ref),
                    ScopeId::new(ScopeKind::MemberCap, membership.id),
                    period,
                    limit,
                    spend_of("member", membership.id),
                    uncertain,
                )
            });
            member.teams.insert(membership.team_id, cap);
        }
        self.orgs.insert(
            row.id,
            Arc::new(OrgEntry {
                id: row.id,
                slug: row.slug,
                name: row.name,
                timezone: row.timezone,
                wallet,
                budget,
                teams,
                members,
            }),
        );
    }

    /// Re-reads these organisations; one that is gone is dropped (its keys are then refused).
    /// The caller holds the lock.
    async fn reread_orgs(&self, ids: &[i64]) -> DbResult<()> {
        for &id in ids {
            match self.source.org(id).await? {
                Some(row) => self.hold_org(row),
                None => {
                    self.orgs.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// Brings what is held up to date with committed changes: a held key or account is
    /// re-read (or dropped when it is gone); a key remembered as unknown is forgotten.
    pub async fn apply(&self, changes: &[Change]) -> DbResult<()> {
        let token_ids: Vec<i64> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Token(id) => Some(*id),
                _ => None,
            })
            .collect();
        let user_ids: Vec<i64> = changes
            .iter()
            .filter_map(|c| match c {
                Change::User(id) => Some(*id),
                _ => None,
            })
            .collect();
        let org_ids: Vec<i64> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Org(id) => Some(*id),
                _ => None,
            })
            .collect();
        if token_ids.is_empty() && user_ids.is_empty() && org_ids.is_empty() {
            return Ok(());
        }
        let _sync = self.sync.lock().await;
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.reread_tokens(&token_ids).await?;
        let held_users: Vec<i64> = user_ids
            .into_iter()
            .filter(|id| self.users.contains_key(id))
            .collect();
        self.reread_users(&held_users).await?;
        let held_orgs: Vec<i64> = org_ids
            .into_iter()
            .filter(|id| self.orgs.contains_key(id))
            .collect();
        self.reread_orgs(&held_orgs).await?;
        if self.store.needs_marks() {
            let held_tokens: Vec<i64> = token_ids
                .into_iter()
                .filter(|id| self.digests.contains_key(id))
                .collect();
            self.refresh_figures(&held_users, &held_tokens, &held_orgs)
                .await?;
        }
        Ok(())
    }

    /// Re-reads these keys; every key read is no longer unknown; a key that is gone, or that
    /// cannot be read, is dropped. The caller holds the lock.
    async fn reread_tokens(&self, ids: &[i64]) -> DbResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut read = FxHashSet::default();
        for (id, row) in self.source.keys_by_ids(ids).await? {
            let row = row.and_then(|row| match secret_key::digest_from_hex(&row.key_hash) {
                Some(digest) => Ok((row, digest)),
                None => Err(DbError::Corrupt("an unreadable key hash".into())),
            });
            match row {
                Ok((row, digest)) => {
                    read.insert(id);
                    self.unknown_keys().remove(&digest);
                    if self.digests.contains_key(&id) {
                        self.hold_token(row, &digest);
                    }
                }
                Err(e) => {
                    tracing::warn!(key = id, error = %e, "cannot read a key; it is not served until it can be")
                }
            }
        }
        for id in ids.iter().filter(|id| !read.contains(id)) {
            if let Some((_, digest)) = self.digests.remove(id) {
                self.tokens.remove(&digest);
            }
        }
        Ok(())
    }

    /// Re-reads these held accounts; an account that is gone is dropped with its keys.
    async fn reread_users(&self, ids: &[i64]) -> DbResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut found = FxHashSet::default();
        for (id, row) in self.source.accounts_by_ids(ids).await? {
            match row {
                Ok(row) => {
                    found.insert(id);
                    self.hold_user(row);
                }
                Err(e) => {
                    tracing::warn!(user = id, error = %e, "cannot read an account; its keys are not served until it can be")
                }
            }
        }
        let gone: FxHashSet<i64> = ids
            .iter()
            .copied()
            .filter(|id| !found.contains(id))
            .collect();
        if !gone.is_empty() {
            for id in &gone {
                self.users.remove(id);
            }
            self.tokens
                .retain(|_, token| !gone.contains(&token.user_id));
            self.digests
                .retain(|_, digest| self.tokens.contains_key(digest));
        }
        Ok(())
    }

    /// Re-reads everything held, for a full reload (a gap in the change feed): every held key
    /// and account as it is now; unknown keys are forgotten.
    pub async fn reread_all(&self) -> DbResult<Sweep> {
        let _sync = self.sync.lock().await;
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.unknown_keys().clear();
        let token_ids: Vec<i64> = self.digests.iter().map(|e| *e.key()).collect();
        let user_ids: Vec<i64> = self.users.iter().map(|e| *e.key()).collect();
        let org_ids: Vec<i64> = self.orgs.iter().map(|e| *e.key()).collect();
        self.reread_tokens(&token_ids).await?;
        self.reread_users(&user_ids).await?;
        self.reread_orgs(&org_ids).await?;
        if self.store.needs_marks() {
            self.refresh_figures(&user_ids, &token_ids, &org_ids)
                .await?;
        }
        Ok(Sweep {
            users: user_ids.len(),
            tokens: token_ids.len(),
        })
    }

    /// Re-reads the balances held: other servers' billing changes them in the database
    /// without a change in the feed (billing would flood it).
    pub async fn reread_balances(&self) -> DbResult<Sweep> {
        let _sync = self.sync.lock().await;
        let user_ids: Vec<i64> = self.users.iter().map(|e| *e.key()).collect();
        let token_ids: Vec<i64> = self
            .tokens
            .iter()
            .filter(|e| !e.unlimited || e.budget.is_some())
            .map(|e| e.id)
            .collect();
        let org_ids: Vec<i64> = self.orgs.iter().map(|e| *e.key()).collect();
        if !self
            .refresh_figures(&user_ids, &token_ids, &org_ids)
            .await?
        {
            return Ok(Sweep::default());
        }
        Ok(Sweep {
            users: user_ids.len(),
            tokens: token_ids.len(),
        })
    }

    /// Reads the balances and budgets' spending of these held accounts, keys and
    /// organisations again (the caller holds the billing writer's lock). A shared store notes
    /// its marks first, so what the read includes is told from what came after. False when
    /// balances read now may be off by a batch (nothing is set then).
    async fn refresh_figures(
        &self,
        user_ids: &[i64],
        token_ids: &[i64],
        org_ids: &[i64],
    ) -> DbResult<bool> {
        if self.sync.is_uncertain() {
            return Ok(false);
        }
        if self.store.needs_marks() {
            let mut scopes: Vec<Arc<LiveScope>> = Vec::new();
            for id in user_ids {
                if let Some(user) = self.user(*id) {
                    scopes.push(Arc::clone(&user.balance));
                }
            }
            for id in token_ids {
                if let Some(token) = self.token(*id) {
                    scopes.push(Arc::clone(&token.limit));
                    if let Some((_, budget)) = &token.budget {
                        scopes.push(Arc::clone(budget));
                    }
                }
            }
            for id in org_ids {
                if let Some(org) = self.org(*id) {
                    scopes.extend(org.scopes().cloned());
                }
            }
            // Without marks the figures still get set, each with a mark of 0: every commit
            // of the epoch then counts against them, which refuses early, never overspends.
            self.store.prepare_marks(&scopes).await;
        }
        for (id, quota) in self.source.account_balances(user_ids).await? {
            if let Some(user) = self.user(id) {
                user.balance.set_balance(quota);
            }
        }
        for balance in self.source.key_balances(token_ids).await? {
            if let Some(token) = self.token(balance.id) {
                token.limit.set_balance(balance.remaining_quota);
                if let Some((_, budget)) = &token.budget {
                    budget.set_budget(
                        balance.budget_quota,
                        balance.budget_spent,
                        balance.budget_window,
                    );
                }
            }
        }
        for balance in self.source.org_balances(org_ids).await? {
            if let Some(org) = self.org(balance.id) {
                org.wallet.set_balance(balance.quota);
                for scope in org.scopes().filter(|s| !s.id.kind.is_balance()) {
                    let kind = scope.id.kind.spend_kind().unwrap_or_default();
                    let (spent, window) = balance
                        .spend
                        .iter()
                        .find(|s| s.kind == kind && s.scope_id == scope.id.row)
                        .map_or((0, 0), |s| (s.spent, s.window_start));
                    scope.set_budget(scope.limit(), spent, window);
                }
            }
        }
        Ok(true)
    }

    /// Every scope held with something in flight on it (holds, spending not yet written).
    pub fn scopes_in_flight(&self) -> Vec<Arc<LiveScope>> {
        let mut scopes: Vec<Arc<LiveScope>> = Vec::new();
        let mut add = |scope: &Arc<LiveScope>| {
            if scope.in_flight().0 != 0 {
                scopes.push(Arc::clone(scope));
            }
        };
        for user in self.users.iter() {
            add(&user.balance);
        }
        for token in self.tokens.iter() {
            add(&token.limit);
            if let Some((_, budget)) = &token.budget {
                add(budget);
            }
        }
        for org in self.orgs.iter() {
            org.scopes().for_each(&mut add);
        }
        scopes
    }

    pub async fn drop_idle(&self, now_ms: i64, idle: Duration) -> Sweep {
        let _sync = self.sync.lock().await;
        let before = now_ms / 1000 - i64::try_from(idle.as_secs()).unwrap_or(i64::MAX);
        let mut dropped = Sweep::default();
        // `retain` holds each shard's write lock while it decides: no request can take an
        // entry out of the map between the check and the removal.
        self.tokens.retain(|_, token| {
            let idle = token.last_used.load(Ordering::Relaxed) < before
                && Arc::strong_count(token) == 1
                && Arc::strong_count(&token.limit) == 1
                && Arc::strong_count(&token.rates) == 1
                && token.limit.is_settled()
                && token.budget.as_ref().is_none_or(|(_, budget)| {
                    Arc::strong_count(budget) == 1 && budget.is_settled()
                });
            if idle {
                dropped.tokens += 1;
            }
            !idle
        });
        if dropped.tokens > 0 {
            self.digests
                .retain(|_, digest| self.tokens.contains_key(digest));
        }
        self.users.retain(|_, user| {
            let idle = user.last_used.load(Ordering::Relaxed) < before
                && Arc::strong_count(user) == 1
                && Arc::strong_count(&user.balance) == 1
                && Arc::strong_count(&user.rates) == 1
                && user.balance.is_settled();
            if idle {
                dropped.users += 1;
            }
            !idle
        });
        // An organisation stays while a key of it is held, or anything is in flight on it.
        let in_use: FxHashSet<i64> = self.tokens.iter().map(|t| t.org_id).collect();
        self.orgs.retain(|id, org| {
            in_use.contains(id)
                || Arc::strong_count(org) > 1
                || org
                    .scopes()
                    .any(|scope| Arc::strong_count(scope) > 1 || !scope.is_settled())
        });
        dropped
    }
}
