//! A sliding-window counter: at most `max` attempts in any window of `window_ms`, estimated
//! from two fixed buckets (the current one and the one before it, weighted by how much of it
//! the sliding window still covers). Unlike a fixed window it allows no burst of twice the
//! limit across a bucket edge, and it needs two numbers per key — the same two a shared store
//! keeps, so every store decides by this one rule.

/// What a store keeps per limit and key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Buckets {
    /// The start of the current bucket (a multiple of the window), in milliseconds.
    pub start_ms: i64,
    /// Attempts counted in the current bucket.
    pub current: u32,
    /// Attempts counted in the bucket before it.
    pub previous: u32,
}

impl Buckets {
    /// Moves the buckets on to the one holding `now_ms`.
    fn roll(&mut self, now_ms: i64, window_ms: i64) {
        let start = now_ms - now_ms.rem_euclid(window_ms);
        if start == self.start_ms {
            return;
        }
        self.previous = if start - self.start_ms == window_ms {
            self.current
        } else {
            0
        };
        self.current = 0;
        self.start_ms = start;
    }

    /// The attempts the sliding window ending at `now_ms` holds (rounded up: never fewer than
    /// were made).
    fn estimate(&self, now_ms: i64, window_ms: i64) -> u64 {
        let into_current = now_ms - self.start_ms;
        let previous_share = window_ms - into_current;
        let weighted = (u64::from(self.previous) * u64::try_from(previous_share).unwrap_or(0))
            .div_ceil(u64::try_from(window_ms).unwrap_or(1));
        weighted + u64::from(self.current)
    }

    /// Counts an attempt at `now_ms` when fewer than `max` are in the window; false (and not
    /// counted) otherwise.
    pub fn hit(&mut self, now_ms: i64, window_ms: i64, max: u32) -> bool {
        let window_ms = window_ms.max(1);
        self.roll(now_ms, window_ms);
        if self.estimate(now_ms, window_ms) >= u64::from(max) {
            return false;
        }
        self.current = self.current.saturating_add(1);
        true
    }

    /// Takes back an attempt counted earlier (it turned out not to count: a right code, a
    /// registration that was refused for its values).
    pub fn give_back(&mut self, now_ms: i64, window_ms: i64) {
        self.roll(now_ms, window_ms.max(1));
        if self.current > 0 {
            self.current -= 1;
        } else {
            self.previous = self.previous.saturating_sub(1);
        }
    }

    /// Whether nothing counts any more at `now_ms` (the key can be forgotten).
    pub fn is_spent(&self, now_ms: i64, window_ms: i64) -> bool {
        now_ms - self.start_ms >= 2 * window_ms.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    #[test]
    fn allows_the_maximum_then_refuses() {
        let mut buckets = Buckets::default();
        let now = 10 * MINUTE;
        assert!(buckets.hit(now, MINUTE, 3));
        assert!(buckets.hit(now + 1, MINUTE, 3));
        assert!(buckets.hit(now + 2, MINUTE, 3));
        assert!(!buckets.hit(now + 3, MINUTE, 3));
        // Refusals do not count: giving one back opens exactly one more.
        buckets.give_back(now + 4, MINUTE);
        assert!(buckets.hit(now + 5, MINUTE, 3));
        assert!(!buckets.hit(now + 6, MINUTE, 3));
    }

    #[test]
    fn no_double_burst_across_a_bucket_edge() {
        // A fixed window allows max at the end of one bucket and max again at the start of
        // the next; the sliding window does not.
        let mut buckets = Buckets::default();
        let edge = 10 * MINUTE;
        for i in 0..10 {
            assert!(buckets.hit(edge - 10 + i, MINUTE, 10));
        }
        assert!(!buckets.hit(edge + 1, MINUTE, 10));
        // Half a window later half of the earlier attempts have slid out.
        let allowed = (0..10)
            .filter(|i| buckets.hit(edge + MINUTE / 2 + i, MINUTE, 10))
            .count();
        assert!((4..=5).contains(&allowed), "{allowed}");
        // Two windows later everything has.
        assert!(buckets.is_spent(edge + 2 * MINUTE, MINUTE));
        let allowed = (0..20)
            .filter(|i| buckets.hit(edge + 2 * MINUTE + i, MINUTE, 10))
            .count();
        assert_eq!(allowed, 10);
    }

    #[test]
    fn a_limit_of_zero_refuses_everything() {
        let mut buckets = Buckets::default();
        assert!(!buckets.hit(5, MINUTE, 0));
    }
}
