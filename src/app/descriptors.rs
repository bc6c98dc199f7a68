//! Staying under the limit on open files. Every connection holds a descriptor, and a server
//! out of descriptors answers no one: not the portal, not `/v1`, not its own database. So when
//! this process gets near its limit (90 % of `RLIMIT_NOFILE`) the serving threads stop
//! accepting, and the request bodies that have waited longest are closed first, until there is
//! room again; those are the connections a slow-body attack holds.
//!
//! Open connections are counted as they are accepted and closed (all serving threads share the
//! count); the process's other descriptors (database, upstreams, files) are counted from
//! `/proc/self/fd` at most once a second (every ten while far from the limit). The limit is read from `/proc/self/limits`; where
//! neither exists, nothing is shed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::sync::atomic::AtomicU8;

use tokio::sync::Notify;

/// How often the descriptors other than connections are counted again.
const RECOUNT_EVERY: Duration = Duration::from_secs(1);
/// ... while far from the limit (listing many descriptors takes a moment of a serving thread).
const RECOUNT_AT_EASE: Duration = Duration::from_secs(10);
/// How long the process must have been out of a shortage for it to count as over (an attack
/// that keeps coming back is one shortage, logged once).
const QUIET: Duration = Duration::from_secs(10);
/// Time for connections being closed to go before more are chosen.
pub(super) const SHED_PAUSE: Duration = Duration::from_millis(50);

/// Open descriptors against the limit, and the body reads that wait (the first to go).
pub(super) struct Descriptors {
    /// The soft limit on open files; None where it cannot be read.
    limit: Option<usize>,
    /// Open client connections, on every serving thread.
    connections: AtomicUsize,
    /// Other descriptors of the process, as last counted.
    others: AtomicUsize,
    epoch: Instant,
    /// When `others` was last counted, in milliseconds since `epoch`.
    counted_at_ms: AtomicU64,
    /// In a shortage (its start is logged once, and its end).
    short: AtomicBool,
    /// When the process was last at its ceiling, in milliseconds since `epoch`.
    short_at_ms: AtomicU64,
    waiting: Mutex<Waiting>,
}

struct Waiting {
    /// Body reads that wait, by when their body started and a serial number.
    reads: BTreeMap<(Instant, u64), Arc<Activity>>,
    next: u64,
    last_shed: Option<Instant>,
}

/// A body read on the waiting list.
pub(super) struct WaitingRead((Instant, u64));

/// An accepted connection, counted until dropped.
pub(super) struct OpenConnection(Arc<Descriptors>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Descriptors {
    /// This process's limit and descriptors.
    pub(super) fn of_this_process() -> Descriptors {
        let limit = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|text| open_files_limit(&text));
        let descriptors = Descriptors::with_limit(limit);
        if let Some(open) = count_open() {
            descriptors.others.store(open, Ordering::Relaxed);
        }
        descriptors
    }

    pub(super) fn with_limit(limit: Option<usize>) -> Descriptors {
        Descriptors {
            limit,
            connections: AtomicUsize::new(0),
            others: AtomicUsize::new(0),
            epoch: Instant::now(),
            counted_at_ms: AtomicU64::new(0),
            short: AtomicBool::new(false),
            short_at_ms: AtomicU64::new(0),
            waiting: Mutex::new(Waiting {
                reads: BTreeMap::new(),
                next: 0,
                last_shed: None,
            }),
        }
    }

    pub(super) fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Counts an accepted connection until the guard is dropped.
    pub(super) fn opened(self: &Arc<Self>) -> OpenConnection {
        self.connections.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.clone())
    }

    /// Puts a body read that has to wait on the list.
    pub(super) fn start_waiting(
        &self,
        started: Instant,
        connection: &Arc<Activity>,
    ) -> WaitingRead {
        let mut waiting = self.lock();
        let key = (started, waiting.next);
        waiting.next += 1;
        waiting.reads.insert(key, connection.clone());
        WaitingRead(key)
    }

    pub(super) fn stop_waiting(&self, read: WaitingRead) {
        self.lock().reads.remove(&read.0);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // A panic while holding it left nothing half-done worth refusing to serve for.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether to stop accepting for now: the process is at 90 % of its limit. Then the
    /// longest-waiting body reads are closed, enough to get back under it with some room.
    pub(super) fn must_pause(&self) -> bool {
        let Some(limit) = self.limit else {
            return false;
        };
        let now = self.now_ms();
        let ceiling = limit / 10 * 9 + limit % 10 * 9 / 10;
        let room = (limit / 20).max(1);
        let every = if self.in_use() >= ceiling / 2 {
            RECOUNT_EVERY
        } else {
            RECOUNT_AT_EASE
        };
        self.recount_if_due(now, every);
        let in_use = self.in_use();
        if in_use < ceiling {
            let calm = in_use < ceiling.saturating_sub(2 * room)
                && now.saturating_sub(self.short_at_ms.load(Ordering::Relaxed))
                    >= QUIET.as_millis() as u64;
            if calm && self.short.swap(false, Ordering::Relaxed) {
                tracing::info!(in_use, limit, "no longer short of file descriptors");
            }
            return false;
        }
        self.short_at_ms.store(now, Ordering::Relaxed);
        let closed = self.shed(in_use + room - ceiling);
        if !self.short.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                in_use,
                limit,
                closed,
                "short of file descriptors: not accepting connections, and closing the request bodies that have waited longest"
            );
        }
        true
    }

    fn in_use(&self) -> usize {
        self.connections.load(Ordering::Relaxed) + self.others.load(Ordering::Relaxed)
    }

    /// Closes up to `count` of the body reads that have waited longest; how many it closed.
    fn shed(&self, count: usize) -> usize {
        let mut waiting = self.lock();
        let now = Instant::now();
        if waiting
            .last_shed
            .is_some_and(|last| now.duration_since(last) < SHED_PAUSE)
        {
            // The last ones chosen are still closing.
            return 0;
        }
        waiting.last_shed = Some(now);
        let mut closed = 0;
        while closed < count {
            let Some((_, connection)) = waiting.reads.pop_first() else {
                break;
            };
            connection.close_now();
            closed += 1;
        }
        closed
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn recount_if_due(&self, now: u64, every: Duration) {
        let last = self.counted_at_ms.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= every.as_millis() as u64;
        if due
            && self
                .counted_at_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            && let Some(open) = count_open()
        {
            let connections = self.connections.load(Ordering::Relaxed);
            self.others
                .store(open.saturating_sub(connections), Ordering::Relaxed);
        }
    }
}

/// The soft limit on open files in the text of `/proc/self/limits`; None when unlimited.
fn open_files_limit(limits: &str) -> Option<usize> {
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok())
}

/// This process's open descriptors (None where `/proc` is not there, or no descriptor is
/// left to list it with).
fn count_open() -> Option<usize> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    // Less the one the listing itself holds.
    Some(entries.count().saturating_sub(1))
}

/// Why a connection is to close before its client is done with it.
const KEEP_OPEN: u8 = 0;
/// A body missed its deadline: its answer goes out, then the connection closes.
const CLOSE_AFTER_ANSWER: u8 = 1;
/// Descriptors are short and this connection waits longest: it closes now.
const CLOSE_NOW: u8 = 2;

/// What a connection's requests have shown so far.
pub(super) struct Activity {
    started: Instant,
    /// A request's headers have been read.
    pub(super) requested: AtomicBool,
    pub(super) http2: AtomicBool,
    /// HTTP/2 requests whose response has not been sent whole.
    open: AtomicUsize,
    /// When the last HTTP/2 response was done, in milliseconds since `started`.
    idle_since_ms: AtomicU64,
    /// `KEEP_OPEN`, `CLOSE_AFTER_ANSWER` or `CLOSE_NOW`; a change is signalled on `closing`.
    close: AtomicU8,
    pub(super) closing: Notify,
    pub(super) descriptors: Arc<Descriptors>,
}

impl Activity {
    pub(super) fn new(descriptors: Arc<Descriptors>) -> Activity {
        Activity {
            started: Instant::now(),
            requested: AtomicBool::new(false),
            http2: AtomicBool::new(false),
            open: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            close: AtomicU8::new(KEEP_OPEN),
            closing: Notify::new(),
            descriptors,
        }
    }

    /// A request body missed its deadline: close once the answer is out.
    pub(super) fn close_after_answer(&self) {
        if self
            .close
            .compare_exchange(
                KEEP_OPEN,
                CLOSE_AFTER_ANSWER,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.closing.notify_one();
        }
    }

    /// Close at once, answered or not.
    pub(super) fn close_now(&self) {
        if self.close.swap(CLOSE_NOW, Ordering::Relaxed) != CLOSE_NOW {
            self.closing.notify_one();
        }
    }

    pub(super) fn closing_now(&self) -> bool {
        self.close.load(Ordering::Relaxed) == CLOSE_NOW
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A request arrived. An HTTP/2 request is tracked until its response is done.
    pub(super) fn request_started(self: &Arc<Self>, version: http::Version) -> Option<OpenRequest> {
        if !self.requested.load(Ordering::Relaxed) {
            self.requested.store(true, Ordering::Relaxed);
        }
        if version != http::Version::HTTP_2 {
            return None;
        }
        self.http2.store(true, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        Some(OpenRequest(self.clone()))
    }

    /// How long an HTTP/2 connection has had no request open; None while one is.
    pub(super) fn idle_for(&self) -> Option<Duration> {
        if self.open.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let since = self.idle_since_ms.load(Ordering::Relaxed);
        Some(Duration::from_millis(
            self.elapsed_ms().saturating_sub(since),
        ))
    }
}

/// An HTTP/2 request in progress; dropped with its response body.
pub(super) struct OpenRequest(Arc<Activity>);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .idle_since_ms
            .store(activity.elapsed_ms(), Ordering::Relaxed);
        activity.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_soft_limit_on_open_files() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            256                  4096                 files     \n";
        assert_eq!(open_files_limit(text), Some(256));
        assert_eq!(
            open_files_limit(
                "Max open files            unlimited            unlimited            files"
            ),
            None
        );
        assert_eq!(open_files_limit(""), None);
        if std::path::Path::new("/proc/self/limits").exists() {
            assert!(Descriptors::of_this_process().limit().is_some());
            assert!(count_open().is_some_and(|n| n >= 3));
        }
    }

    #[test]
    fn near_the_limit_the_longest_waiting_reads_are_closed_first() {
        let mut descriptors = Descriptors::with_limit(Some(100));
        // As if the server had run a while (the quiet time is measured from its start).
        descriptors.epoch = Instant::now()
            .checked_sub(QUIET * 2)
            .unwrap_or(descriptors.epoch);
        let descriptors = Arc::new(descriptors);
        // Keep the count of other descriptors at 0 for the test.
        descriptors.counted_at_ms.store(u64::MAX, Ordering::Relaxed);
        let start = Instant::now();
        let reads: Vec<_> = (0..5)
            .map(|i| {
                let connection = Arc::new(Activity::new(descriptors.clone()));
                let at = start + Duration::from_secs(10 - i);
                let read = descriptors.start_waiting(at, &connection);
                (connection, read)
            })
            .collect();
        let mut open: Vec<_> = (0..85).map(|_| descriptors.opened()).collect();
        assert!(!descriptors.must_pause(), "85 of 100 is room enough");
        open.extend((0..5).map(|_| descriptors.opened()));
        // 90 of 100: pause, and close enough to get 5 (the room) under 90: all five.
        assert!(descriptors.must_pause());
        let closed: Vec<bool> = reads.iter().map(|(c, _)| c.closing_now()).collect();
        assert_eq!(closed, vec![true; 5]);
        assert!(descriptors.lock().reads.is_empty());

        // Fewer to close than waiting: the oldest go, the newest stay.
        let more: Vec<_> = (0..4)
            .map(|i| {
                let connection = Arc::new(Activity::new(descriptors.clone()));
                let read = descriptors.start_waiting(start + Duration::from_secs(i), &connection);
                (connection, read)
            })
            .collect();
        open.truncate(88);
        std::thread::sleep(SHED_PAUSE);
        // 88 in use: under 90, no pause.
        assert!(!descriptors.must_pause());
        open.extend((0..3).map(|_| descriptors.opened()));
        // 91 in use: close 91 + 5 - 90 = 6, but only 4 wait.
        assert!(descriptors.must_pause());
        assert!(more.iter().all(|(c, _)| c.closing_now()));
        drop(open);
        assert!(
            !descriptors.must_pause(),
            "room again once connections close"
        );
        // One shortage until it has been quiet a while: an attack that comes back within
        // seconds is not a new one (and not logged again).
        assert!(descriptors.short.load(Ordering::Relaxed));
        descriptors.short_at_ms.store(0, Ordering::Relaxed);
        assert!(!descriptors.must_pause());
        assert!(
            !descriptors.short.load(Ordering::Relaxed),
            "over once quiet"
        );
    }

    #[test]
    fn the_oldest_reads_go_and_the_newest_stay() {
        let descriptors = Arc::new(Descriptors::with_limit(Some(1000)));
        descriptors.counted_at_ms.store(u64::MAX, Ordering::Relaxed);
        let start = Instant::now();
        let reads: Vec<_> = (0..100)
            .map(|i| {
                let connection = Arc::new(Activity::new(descriptors.clone()));
                // Registered newest first, so the order is by start, not by arrival.
                let read =
                    descriptors.start_waiting(start + Duration::from_secs(100 - i), &connection);
                (connection, read)
            })
            .collect();
        // 900 of 1000 in use: close 900 + 50 - 900 = 50 of them.
        let _open: Vec<_> = (0..900).map(|_| descriptors.opened()).collect();
        assert!(descriptors.must_pause());
        for (i, (connection, _)) in reads.iter().enumerate() {
            // Reads 50..100 started first (at +1 s … +50 s).
            assert_eq!(connection.closing_now(), i >= 50, "read {i}");
        }
        // Dropping a closed read's entry is harmless; an open one leaves the list.
        let (_, read) = reads.into_iter().next().unwrap();
        descriptors.stop_waiting(read);
        assert_eq!(descriptors.lock().reads.len(), 49);
    }

    #[test]
    fn without_a_known_limit_nothing_is_shed() {
        let descriptors = Arc::new(Descriptors::with_limit(None));
        let _open: Vec<_> = (0..10_000).map(|_| descriptors.opened()).collect();
        assert!(!descriptors.must_pause());
    }
}
