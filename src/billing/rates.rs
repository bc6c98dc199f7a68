//! Request and token rate limits: requests per minute, tokens per minute and requests in
//! flight, per key and per account, behind one store.
//!
//! A request is checked against at most two subjects: its key (with the key's own limits,
//! each one the key does not set taken from its group) and its owner's account (whose limits
//! count every key of the person together). Admission asks the [`RateStore`] to take the
//! request on every subject or on none: one request and the request's estimated tokens in
//! each subject's windows, and a slot where concurrency is limited. The request's end settles
//! once: the slot is freed and the estimate is replaced by the tokens really used. Both calls
//! take the request's id, so a shared store (Redis, [`redis::RedisRateStore`]) applies a
//! retried call once; each is one round trip, and the check reads the same counters the
//! settlement writes.
//!
//! The memory store keeps each subject's counters in a [`RateCounters`] that the directory
//! holds beside the key or account (so they live and go with it), locking the key's before
//! the account's: two requests never lock them in opposite orders. Counting follows
//! [`crate::domain::rate_limits`]: a sliding window over two buckets a minute long.
//!
//! A key with no limit anywhere (its own, its group's, its account's) is not checked at all:
//! no lock, no allocation, no call.

pub mod redis;

use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use smallvec::SmallVec;

use crate::domain::rate_limits::{self, Allowance, LimitKind, RateLimits, Reading, WINDOW_MS};

/// Whose counters a limit counts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateScope {
    /// One key; the row is the key's id.
    Key,
    /// Every key of one person; the row is the account's id.
    Account,
}

impl RateScope {
    pub fn as_str(self) -> &'static str {
        match self {
            RateScope::Key => "key",
            RateScope::Account => "account",
        }
    }
}

/// A subject's stable id, as a shared store names its counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateId {
    pub scope: RateScope,
    pub row: i64,
}

impl RateId {
    pub fn new(scope: RateScope, row: i64) -> RateId {
        RateId { scope, row }
    }
}

/// A subject's counters in this process (used by the memory store).
#[derive(Debug, Default)]
pub struct RateCounters {
    reading: Mutex<Reading>,
}

impl RateCounters {
    fn lock(&self) -> MutexGuard<'_, Reading> {
        // A few integers: a panic while one was held leaves nothing worth stopping for.
        self.reading
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a shared store's windows as this process's view, kept for counting here should
    /// the store become unreachable (see `cluster::rates`); the requests in flight stay this
    /// process's own count.
    pub fn follow(&self, shared: Reading) {
        let mut reading = self.lock();
        reading.requests = shared.requests;
        reading.tokens = shared.tokens;
    }

    /// The counters as they stand (for tests and the console).
    pub fn reading(&self) -> Reading {
        *self.lock()
    }
}

/// One subject a request is checked against: its id, the limits that apply to it, and its
/// counters in this process.
#[derive(Clone, Debug)]
pub struct RateSubject {
    pub id: RateId,
    pub limits: RateLimits,
    pub counters: Arc<RateCounters>,
}

/// What the tightest limits leave, for OpenAI's `x-ratelimit-*` headers; None where no
/// subject limits requests (or tokens).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateStatus {
    pub requests: Option<Allowance>,
    pub tokens: Option<Allowance>,
}

/// A subject a request was admitted on: what its settlement must undo.
#[derive(Clone, Debug)]
pub struct AdmittedSubject {
    pub id: RateId,
    pub counters: Arc<RateCounters>,
    /// Whether the request holds one of the subject's concurrency slots.
    pub slot: bool,
}

/// A request taken on every subject.
#[derive(Clone, Debug)]
pub struct Admitted {
    pub subjects: SmallVec<[AdmittedSubject; 2]>,
    /// The tokens held (the request's estimate), and the start of the bucket they were
    /// counted in (the settlement corrects that bucket).
    pub held_tokens: u64,
    pub window_start: i64,
    /// What is left after this request, for the headers.
    pub status: RateStatus,
    /// Counted in this process's memory by a store that is otherwise shared (a node's share
    /// while Redis is away): settled there too.
    pub in_memory: bool,
}

/// A limit that refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateRefusal {
    pub subject: RateId,
    pub kind: LimitKind,
    pub limit: u64,
    /// The request's tokens as estimated (what a tokens-per-minute refusal could not hold).
    pub tokens: u64,
    /// Milliseconds until the request would fit; None when it never can.
    pub retry_after_ms: Option<i64>,
    pub status: RateStatus,
}

/// Why a request was not admitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RateError {
    Refused(RateRefusal),
    /// The store could not be asked (a shared store out of reach): the request is refused
    /// rather than let through uncounted.
    Unavailable(String),
}

/// Where rate limits are counted. Both calls are idempotent by request id (see the module's
/// doc).
#[async_trait::async_trait]
pub trait RateStore: Send + Sync + std::fmt::Debug {
    /// Takes a request holding `tokens` on every subject, or on none and names the first
    /// limit it does not fit.
    async fn admit(
        &self,
        request_id: &str,
        subjects: &[RateSubject],
        tokens: u64,
    ) -> Result<Admitted, RateError>;

    /// Frees the request's slots and replaces its held tokens by `tokens`, what it used. The
    /// future owns what it needs, so a caller that cannot wait (a request dropped mid-answer)
    /// hands it to the runtime.
    fn settle(&self, request_id: &str, admitted: &Admitted, tokens: u64) -> BoxFuture<'static, ()>;
}

/// What the subjects' readings say after a decision: the headers' figures.
fn status_of(now_ms: i64, checked: &[(RateLimits, Reading)]) -> RateStatus {
    let (requests, tokens) = rate_limits::allowances(now_ms, WINDOW_MS, checked);
    RateStatus { requests, tokens }
}

/// The refusal a decision's [`rate_limits::Exceeded`] stands for.
fn refusal(
    exceeded: rate_limits::Exceeded,
    subjects: &[RateSubject],
    tokens: u64,
    status: RateStatus,
) -> RateRefusal {
    RateRefusal {
        subject: subjects[exceeded.subject].id,
        kind: exceeded.kind,
        limit: exceeded.limit,
        tokens,
        retry_after_ms: exceeded.wait_ms,
        status,
    }
}

/// The store of a single server: counters in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryRateStore;

impl MemoryRateStore {
    /// [`RateStore::admit`] without the future, at `now_ms`: every subject's lock is taken in
    /// list order and kept until all are checked, so the request is taken on all or none.
    pub fn admit_at(
        &self,
        now_ms: i64,
        subjects: &[RateSubject],
        tokens: u64,
    ) -> Result<Admitted, RateRefusal> {
        let mut guards: SmallVec<[MutexGuard<'_, Reading>; 2]> = SmallVec::new();
        let mut checked: SmallVec<[(RateLimits, Reading); 2]> = SmallVec::new();
        for subject in subjects {
            let mut reading = subject.counters.lock();
            reading.requests.roll(now_ms, WINDOW_MS);
            reading.tokens.roll(now_ms, WINDOW_MS);
            checked.push((subject.limits, *reading));
            guards.push(reading);
        }
        if let Err(exceeded) = rate_limits::check(now_ms, WINDOW_MS, &checked, tokens) {
            return Err(refusal(
                exceeded,
                subjects,
                tokens,
                status_of(now_ms, &checked),
            ));
        }
        let mut admitted = SmallVec::new();
        for ((subject, reading), (_, after)) in subjects.iter().zip(&mut guards).zip(&mut checked) {
            reading.requests.add(now_ms, WINDOW_MS, 1);
            reading.tokens.add(now_ms, WINDOW_MS, tokens);
            let slot = subject.limits.max_concurrent.is_some();
            if slot {
                reading.in_flight += 1;
            }
            *after = **reading;
            admitted.push(AdmittedSubject {
                id: subject.id,
                counters: Arc::clone(&subject.counters),
                slot,
            });
        }
        drop(guards);
        Ok(Admitted {
            subjects: admitted,
            held_tokens: tokens,
            window_start: now_ms - now_ms.rem_euclid(WINDOW_MS),
            status: status_of(now_ms, &checked),
            in_memory: false,
        })
    }

    /// [`RateStore::settle`] without the future.
    pub fn settle_now(&self, admitted: &Admitted, tokens: u64) {
        for subject in &admitted.subjects {
            let mut reading = subject.counters.lock();
            if subject.slot {
                reading.in_flight = reading.in_flight.saturating_sub(1);
            }
            reading.tokens.correct(
                admitted.window_start,
                WINDOW_MS,
                admitted.held_tokens,
                tokens,
            );
        }
    }
}

#[async_trait::async_trait]
impl RateStore for MemoryRateStore {
    async fn admit(
        &self,
        _request_id: &str,
        subjects: &[RateSubject],
        tokens: u64,
    ) -> Result<Admitted, RateError> {
        self.admit_at(crate::clock::now_ms(), subjects, tokens)
            .map_err(RateError::Refused)
    }

    fn settle(
        &self,
        _request_id: &str,
        admitted: &Admitted,
        tokens: u64,
    ) -> BoxFuture<'static, ()> {
        self.settle_now(admitted, tokens);
        Box::pin(std::future::ready(()))
    }
}

/// A request's admission, settled exactly once: by [`RateHold::settle`] when the request
/// ends, or, should it be dropped unsettled (a panic, a refusal further on), on drop with the
/// tokens it held. Its slots are then free again however the request ended.
#[derive(Debug)]
pub struct RateHold {
    store: Arc<dyn RateStore>,
    request_id: String,
    admitted: Admitted,
    settled: bool,
}

impl RateHold {
    /// Admits a request on `subjects` (none: nothing to hold, `Ok(None)`).
    pub async fn admit(
        store: &Arc<dyn RateStore>,
        request_id: &str,
        subjects: &[RateSubject],
        tokens: u64,
    ) -> Result<Option<RateHold>, RateError> {
        if subjects.is_empty() {
            return Ok(None);
        }
        let admitted = store.admit(request_id, subjects, tokens).await?;
        Ok(Some(RateHold {
            store: Arc::clone(store),
            request_id: request_id.to_string(),
            admitted,
            settled: false,
        }))
    }

    /// What the limits leave after this request.
    pub fn status(&self) -> RateStatus {
        self.admitted.status
    }

    /// Ends the request having used `tokens` (input and output).
    pub fn settle(mut self, tokens: u64) {
        self.finish(tokens);
    }

    fn finish(&mut self, tokens: u64) {
        if self.settled {
            return;
        }
        self.settled = true;
        let settlement = self.store.settle(&self.request_id, &self.admitted, tokens);
        super::finish_settlement(settlement);
    }
}

impl Drop for RateHold {
    fn drop(&mut self) {
        // Nothing says what was used: the estimate stays counted, the slots are freed.
        let held = self.admitted.held_tokens;
        self.finish(held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(scope: RateScope, limits: RateLimits) -> RateSubject {
        RateSubject {
            id: RateId::new(scope, 1),
            limits,
            counters: Arc::default(),
        }
    }

    fn limits(rpm: Option<u64>, tpm: Option<u64>, max_concurrent: Option<u64>) -> RateLimits {
        RateLimits {
            rpm,
            tpm,
            max_concurrent,
        }
    }

    const NOW: i64 = 1_000 * WINDOW_MS + 10_000;

    #[test]
    fn admits_on_every_subject_or_none() {
        let store = MemoryRateStore;
        let key = subject(RateScope::Key, limits(Some(10), None, None));
        let account = subject(RateScope::Account, limits(Some(2), None, None));
        let both = [key.clone(), account.clone()];
        let first = store.admit_at(NOW, &both, 0).unwrap();
        assert_eq!(
            first.status.requests.unwrap().remaining,
            1,
            "the tighter one"
        );
        store.admit_at(NOW + 1, &both, 0).unwrap();
        let refused = store.admit_at(NOW + 2, &both, 0).unwrap_err();
        assert_eq!(refused.subject.scope, RateScope::Account);
        assert_eq!((refused.kind, refused.limit), (LimitKind::Requests, 2));
        assert!(refused.retry_after_ms.unwrap() > 0);
        // The refusal took nothing from the key either.
        assert_eq!(key.counters.reading().requests.current, 2);
        assert_eq!(account.counters.reading().requests.current, 2);
    }

    #[test]
    fn tokens_are_held_on_the_estimate_and_corrected() {
        let store = MemoryRateStore;
        let key = [subject(RateScope::Key, limits(None, Some(1_000), None))];
        let held = store.admit_at(NOW, &key, 800).unwrap();
        assert_eq!(held.status.tokens.unwrap().remaining, 200);
        let refused = store.admit_at(NOW + 1, &key, 300).unwrap_err();
        assert_eq!(refused.kind, LimitKind::Tokens);
        // The answer was short: 100 tokens. The other 700 are free at once.
        store.settle_now(&held, 100);
        let again = store.admit_at(NOW + 2, &key, 300).unwrap();
        assert_eq!(again.status.tokens.unwrap().remaining, 600);
        // More than the whole limit never fits.
        let refused = store.admit_at(NOW + 3, &key, 1_001).unwrap_err();
        assert_eq!(refused.retry_after_ms, None);
    }

    #[test]
    fn a_slot_is_freed_exactly_once() {
        let store: Arc<dyn RateStore> = Arc::new(MemoryRateStore);
        let key = [subject(RateScope::Key, limits(None, None, Some(1)))];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let first = RateHold::admit(&store, "a", &key, 5)
                .await
                .unwrap()
                .unwrap();
            let refused = RateHold::admit(&store, "b", &key, 5).await.unwrap_err();
            let RateError::Refused(refused) = refused else {
                panic!("{refused:?}")
            };
            assert_eq!(refused.kind, LimitKind::Concurrent);
            // Dropped unsettled (a cancelled request): the slot comes back, once.
            drop(first);
            assert_eq!(key[0].counters.reading().in_flight, 0);
            let second = RateHold::admit(&store, "c", &key, 5)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(key[0].counters.reading().in_flight, 1);
            second.settle(3);
            assert_eq!(key[0].counters.reading().in_flight, 0);
            assert_eq!(key[0].counters.reading().tokens.current, 8);
        });
        // Nothing limited: nothing to hold.
        let none = runtime.block_on(RateHold::admit(&store, "d", &[], 5));
        assert!(none.unwrap().is_none());
    }

    #[test]
    fn concurrent_admissions_never_pass_a_limit() {
        let key = subject(RateScope::Key, limits(Some(1_000), None, Some(3)));
        let account = subject(RateScope::Account, limits(Some(50), None, None));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let both = [key.clone(), account.clone()];
                std::thread::spawn(move || {
                    let store = MemoryRateStore;
                    let mut admitted = 0;
                    for i in 0..100 {
                        if let Ok(hold) = store.admit_at(NOW + i, &both, 1) {
                            admitted += 1;
                            assert!(both[0].counters.reading().in_flight <= 3);
                            store.settle_now(&hold, 1);
                        }
                    }
                    admitted
                })
            })
            .collect();
        let admitted: i32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(admitted, 50);
        assert_eq!(key.counters.reading().in_flight, 0);
    }
}
