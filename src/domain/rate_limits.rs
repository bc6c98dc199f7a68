//! Requests per minute, tokens per minute and requests in flight: the limits a key, an account
//! and a group may carry, the sliding window that counts them, and how OpenAI's rate-limit
//! headers spell what is left and when it is back.
//!
//! The window is the sliding-window counter of [`super::sliding_window`], weighted: a request
//! adds 1 to the request count and its tokens to the token count. Two fixed buckets a minute
//! long (the current one and the one before it) estimate what the last minute used: the
//! current bucket whole, plus the share of the previous one the sliding minute still covers.
//! A fixed window would let a full minute's worth through at the end of one bucket and again
//! at the start of the next; this does not. A shared store keeps the same three numbers per
//! counter and decides by the same rule (see `billing::rates`).

/// The window every limit counts over: one minute.
pub const WINDOW_MS: i64 = 60_000;

/// The largest limit accepted: far above any real one, and exact in every store (a Lua number
/// is a double).
pub const MAX_LIMIT: u64 = 1_000_000_000_000;

/// What a key, an account or a group allows; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RateLimits {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute: input and output together.
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    pub max_concurrent: Option<u64>,
}

impl RateLimits {
    pub const NONE: RateLimits = RateLimits {
        rpm: None,
        tpm: None,
        max_concurrent: None,
    };

    /// Whether nothing is limited.
    pub fn is_none(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.max_concurrent.is_none()
    }

    /// These limits, each one not set taken from `fallback` (a key's own values over its
    /// group's).
    pub fn or(self, fallback: RateLimits) -> RateLimits {
        RateLimits {
            rpm: self.rpm.or(fallback.rpm),
            tpm: self.tpm.or(fallback.tpm),
            max_concurrent: self.max_concurrent.or(fallback.max_concurrent),
        }
    }

    /// The value of one limit.
    pub fn get(&self, kind: LimitKind) -> Option<u64> {
        match kind {
            LimitKind::Requests => self.rpm,
            LimitKind::Tokens => self.tpm,
            LimitKind::Concurrent => self.max_concurrent,
        }
    }
}

/// Which of the three limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitKind {
    Requests,
    Tokens,
    Concurrent,
}

impl LimitKind {
    /// The name people set it by.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Requests => "rpm",
            LimitKind::Tokens => "tpm",
            LimitKind::Concurrent => "max_concurrent",
        }
    }
}

/// Why a limit's text was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadLimit;

/// A limit as people type it: a whole number from 1 to [`MAX_LIMIT`]; empty or `none` for no
/// limit.
pub fn parse_limit(text: &str) -> Result<Option<u64>, BadLimit> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    match text.replace('_', "").parse::<u64>() {
        Ok(value) if (1..=MAX_LIMIT).contains(&value) => Ok(Some(value)),
        _ => Err(BadLimit),
    }
}

/// One counter: what the current bucket and the one before it counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// The start of the current bucket (a multiple of the window), in milliseconds.
    pub start_ms: i64,
    pub current: u64,
    pub previous: u64,
}

fn bucket_start(now_ms: i64, window_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(window_ms)
}

fn as_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl Window {
    /// Moves the counter on to the bucket holding `now_ms`: the current bucket becomes the
    /// previous one when it is the one just before, else both start from nothing.
    pub fn roll(&mut self, now_ms: i64, window_ms: i64) {
        let window_ms = window_ms.max(1);
        let start = bucket_start(now_ms, window_ms);
        if start <= self.start_ms {
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

    /// The counter moved on to `now_ms`, leaving this one as it is.
    pub fn at(mut self, now_ms: i64, window_ms: i64) -> Window {
        self.roll(now_ms, window_ms);
        self
    }

    /// What the minute ending at `now_ms` used: the current bucket, and the previous one's
    /// share still inside the minute, rounded up (never less than was used). The counter is
    /// rolled to `now_ms`.
    pub fn used(&self, now_ms: i64, window_ms: i64) -> u64 {
        let window_ms = window_ms.max(1);
        let window = self.at(now_ms, window_ms);
        let left_of_previous = (window_ms - (now_ms - window.start_ms)).clamp(0, window_ms);
        let weighted = u128::from(window.previous) * u128::from(as_u64(left_of_previous));
        let weighted = weighted.div_ceil(u128::from(as_u64(window_ms)));
        u64::try_from(weighted)
            .unwrap_or(u64::MAX)
            .saturating_add(window.current)
    }

    /// Whether `amount` more fits under `max` at `now_ms`.
    pub fn fits(&self, now_ms: i64, window_ms: i64, max: u64, amount: u64) -> bool {
        self.used(now_ms, window_ms).saturating_add(amount) <= max
    }

    /// Counts `amount` in the bucket of `now_ms`.
    pub fn add(&mut self, now_ms: i64, window_ms: i64, amount: u64) {
        self.roll(now_ms, window_ms);
        self.current = self.current.saturating_add(amount);
    }

    /// Replaces `held`, counted in the bucket that began at `held_start`, by `real`. Nothing
    /// changes once that bucket has slid out of the window: it no longer counts.
    pub fn correct(&mut self, held_start: i64, window_ms: i64, held: u64, real: u64) {
        let fix = |count: u64| count.saturating_sub(held).saturating_add(real);
        if held_start == self.start_ms {
            self.current = fix(self.current);
        } else if held_start.saturating_add(window_ms.max(1)) == self.start_ms {
            self.previous = fix(self.previous);
        }
    }

    /// How long from `now_ms` until `amount` more fits under `max`: 0 when it fits now; None
    /// when it never can (`amount` alone is above `max`).
    pub fn wait_ms(&self, now_ms: i64, window_ms: i64, max: u64, amount: u64) -> Option<i64> {
        if amount > max {
            return None;
        }
        let window_ms = window_ms.max(1);
        let window = self.at(now_ms, window_ms);
        let into_bucket = (now_ms - window.start_ms).clamp(0, window_ms - 1);
        // The earliest offset into a bucket at which `counted` plus the share of `previous`
        // still covered leaves `room`: share = ceil(previous × (W − d) / W) ≤ room holds from
        // d = W − floor(room × W / previous) on.
        let offset_for = |previous: u64, room: u64| -> i64 {
            if previous == 0 {
                return 0;
            }
            let w = u128::from(as_u64(window_ms));
            let free = (u128::from(room) * w / u128::from(previous)).min(w);
            window_ms - i64::try_from(free).unwrap_or(window_ms)
        };
        let needed = max - amount;
        if let Some(room) = needed.checked_sub(window.current) {
            return Some((offset_for(window.previous, room) - into_bucket).max(0));
        }
        // The current bucket alone is over: wait for it to become the previous one, then for
        // enough of it to slide out.
        let to_next = window_ms - into_bucket;
        Some(to_next + offset_for(window.current, needed))
    }

    /// How long from `now_ms` until nothing counted so far counts any more.
    pub fn reset_ms(&self, now_ms: i64, window_ms: i64) -> i64 {
        let window_ms = window_ms.max(1);
        let window = self.at(now_ms, window_ms);
        let end = if window.current > 0 {
            window.start_ms + 2 * window_ms
        } else if window.previous > 0 {
            window.start_ms + window_ms
        } else {
            now_ms
        };
        (end - now_ms).max(0)
    }
}

/// What a limit leaves, as OpenAI's `x-ratelimit-*` headers give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    pub limit: u64,
    pub remaining: u64,
    /// Milliseconds until the limit is whole again.
    pub reset_ms: i64,
}

impl Allowance {
    /// What `window` leaves of `limit` at `now_ms`.
    pub fn of(window: &Window, now_ms: i64, window_ms: i64, limit: u64) -> Allowance {
        Allowance {
            limit,
            remaining: limit.saturating_sub(window.used(now_ms, window_ms)),
            reset_ms: window.reset_ms(now_ms, window_ms),
        }
    }

    /// The tighter of two: the one with less left (the one that resets later on a tie).
    pub fn tighter(self, other: Option<Allowance>) -> Allowance {
        match other {
            Some(other)
                if (other.remaining, std::cmp::Reverse(other.reset_ms))
                    < (self.remaining, std::cmp::Reverse(self.reset_ms)) =>
            {
                other
            }
            _ => self,
        }
    }
}

/// One subject's counters (a key's, an account's) as a decision reads them: in this
/// process's memory, or as a shared store returned them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    pub requests: Window,
    pub tokens: Window,
    /// Requests holding a slot now.
    pub in_flight: u64,
}

/// Which limit of which subject refused, and when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exceeded {
    /// The subject's place in the list checked.
    pub subject: usize,
    pub kind: LimitKind,
    pub limit: u64,
    /// Milliseconds until the request would fit; None when it never can (its tokens alone are
    /// above the limit).
    pub wait_ms: Option<i64>,
}

/// How long a refused request waits for a slot to free: a request's end cannot be foreseen.
pub const CONCURRENCY_RETRY_MS: i64 = 1_000;

/// Whether one more request holding `tokens` fits every limit of every subject at `now_ms`;
/// else the first limit it does not fit, subject by subject in list order, requests before
/// tokens before slots. Every store decides by this rule.
pub fn check(
    now_ms: i64,
    window_ms: i64,
    subjects: &[(RateLimits, Reading)],
    tokens: u64,
) -> Result<(), Exceeded> {
    for (subject, (limits, reading)) in subjects.iter().enumerate() {
        let exceeded = |kind, limit, wait_ms| Exceeded {
            subject,
            kind,
            limit,
            wait_ms,
        };
        if let Some(limit) = limits.rpm
            && !reading.requests.fits(now_ms, window_ms, limit, 1)
        {
            let wait = reading.requests.wait_ms(now_ms, window_ms, limit, 1);
            return Err(exceeded(LimitKind::Requests, limit, wait));
        }
        if let Some(limit) = limits.tpm
            && !reading.tokens.fits(now_ms, window_ms, limit, tokens)
        {
            let wait = reading.tokens.wait_ms(now_ms, window_ms, limit, tokens);
            return Err(exceeded(LimitKind::Tokens, limit, wait));
        }
        if let Some(limit) = limits.max_concurrent
            && reading.in_flight >= limit
        {
            return Err(exceeded(
                LimitKind::Concurrent,
                limit,
                Some(CONCURRENCY_RETRY_MS),
            ));
        }
    }
    Ok(())
}

/// What the tightest request and token limits leave at `now_ms` (for the headers); None for a
/// kind no subject limits.
pub fn allowances(
    now_ms: i64,
    window_ms: i64,
    subjects: &[(RateLimits, Reading)],
) -> (Option<Allowance>, Option<Allowance>) {
    let mut requests: Option<Allowance> = None;
    let mut tokens: Option<Allowance> = None;
    for (limits, reading) in subjects {
        if let Some(limit) = limits.rpm {
            let allowance = Allowance::of(&reading.requests, now_ms, window_ms, limit);
            requests = Some(allowance.tighter(requests));
        }
        if let Some(limit) = limits.tpm {
            let allowance = Allowance::of(&reading.tokens, now_ms, window_ms, limit);
            tokens = Some(allowance.tighter(tokens));
        }
    }
    (requests, tokens)
}

/// Whole seconds to wait, as `Retry-After` gives them: rounded up, at least 1.
pub fn retry_after_secs(wait_ms: i64) -> u64 {
    u64::try_from(wait_ms.max(1)).unwrap_or(1).div_ceil(1000)
}

/// A duration as OpenAI's headers spell it (Go's notation): `0s`, `120ms`, `1s`, `1.5s`,
/// `6m0s`, `1h2m3s`; milliseconds are the finest unit.
pub fn duration_text(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (hours, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let (seconds, millis) = (rest / 1000, rest % 1000);
    let mut text = String::new();
    if hours > 0 {
        text.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        text.push_str(&format!("{minutes}m"));
    }
    text.push_str(&seconds.to_string());
    if millis > 0 {
        let fraction = format!("{millis:03}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('s');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: i64 = WINDOW_MS;

    #[test]
    fn limits_parse_from_what_people_type() {
        assert_eq!(parse_limit(""), Ok(None));
        assert_eq!(parse_limit(" none "), Ok(None));
        assert_eq!(parse_limit("NONE"), Ok(None));
        assert_eq!(parse_limit("60"), Ok(Some(60)));
        assert_eq!(parse_limit("100_000"), Ok(Some(100_000)));
        assert_eq!(parse_limit("0"), Err(BadLimit));
        assert_eq!(parse_limit("-3"), Err(BadLimit));
        assert_eq!(parse_limit("1.5"), Err(BadLimit));
        assert_eq!(parse_limit("lots"), Err(BadLimit));
        assert_eq!(parse_limit("1000000000001"), Err(BadLimit));
    }

    #[test]
    fn a_key_overrides_its_group_limit_by_limit() {
        let key = RateLimits {
            rpm: Some(10),
            ..RateLimits::NONE
        };
        let group = RateLimits {
            rpm: Some(100),
            tpm: Some(5_000),
            max_concurrent: None,
        };
        let applied = key.or(group);
        assert_eq!(applied.rpm, Some(10));
        assert_eq!(applied.tpm, Some(5_000));
        assert_eq!(applied.max_concurrent, None);
        assert!(RateLimits::NONE.is_none());
        assert!(!applied.is_none());
    }

    #[test]
    fn requests_stop_at_the_limit_and_refusals_do_not_count() {
        let mut window = Window::default();
        let now = 10 * W + 5;
        for i in 0..3 {
            assert!(window.fits(now + i, W, 3, 1));
            window.add(now + i, W, 1);
        }
        assert!(!window.fits(now + 3, W, 3, 1));
        assert!(!window.fits(now + 4, W, 3, 1));
        assert_eq!(window.used(now + 4, W), 3);
    }

    #[test]
    fn no_double_burst_at_a_bucket_edge() {
        // A fixed window lets 10 through just before the edge and 10 more just after it;
        // the sliding window lets the second ten in only as the first slide out.
        let mut window = Window::default();
        let edge = 10 * W;
        for i in 0..10 {
            assert!(window.fits(edge - 10 + i, W, 10, 1));
            window.add(edge - 10 + i, W, 1);
        }
        let mut allowed = 0;
        for i in 0..20 {
            if window.fits(edge + 1 + i, W, 10, 1) {
                window.add(edge + 1 + i, W, 1);
                allowed += 1;
            }
        }
        assert_eq!(allowed, 0, "nothing more right after the edge");
        // A fixed window would have let ten more through in those 20 ms; here the next ten
        // come in only as the first ten slide out, spread over the minute.
        let mut greedy = window;
        let granted: Vec<i64> = (0..W / 1000)
            .map(|s| edge + s * 1000)
            .filter(|&t| {
                let fits = greedy.fits(t, W, 10, 1);
                if fits {
                    greedy.add(t, W, 1);
                }
                fits
            })
            .collect();
        assert_eq!(granted.len(), 9, "{granted:?}");
        assert!(granted[0] >= edge + W / 10, "{granted:?}");
        // Half a window after the edge about half of the first ten have slid out.
        let mut half = Window::default();
        for i in 0..10 {
            half.add(edge - 10 + i, W, 1);
        }
        let allowed = (0..10)
            .filter(|i| {
                let t = edge + W / 2 + i;
                let fits = half.fits(t, W, 10, 1);
                if fits {
                    half.add(t, W, 1);
                }
                fits
            })
            .count();
        assert!((4..=5).contains(&allowed), "{allowed}");
    }

    #[test]
    fn tokens_are_held_then_corrected() {
        let mut window = Window::default();
        let now = 3 * W + 100;
        window.add(now, W, 900);
        assert!(!window.fits(now, W, 1_000, 200));
        // The answer used 50 tokens, not 900: the rest is free again.
        window.correct(window.start_ms, W, 900, 50);
        assert_eq!(window.used(now + 1, W), 50);
        assert!(window.fits(now + 1, W, 1_000, 900));
        // A correction for a bucket that has become the previous one lands there.
        let held_start = window.start_ms;
        window.add(now + W, W, 10);
        window.correct(held_start, W, 50, 500);
        assert_eq!((window.previous, window.current), (500, 10));
        // One for a bucket gone from the window changes nothing.
        window.add(now + 3 * W, W, 1);
        window.correct(held_start, W, 500, 0);
        assert_eq!((window.previous, window.current), (0, 1));
        // It never goes below nothing.
        window.correct(window.start_ms, W, 1_000, 0);
        assert_eq!(window.current, 0);
    }

    #[test]
    fn the_wait_is_when_the_amount_fits_again() {
        let start = 20 * W;
        // Ten requests late in a bucket; a limit of 10.
        let mut window = Window::default();
        window.add(start + W - 1_000, W, 10);
        let now = start + W - 500;
        let wait = window.wait_ms(now, W, 10, 1).unwrap();
        // The bucket ends in 500 ms; then one of ten must slide out: a tenth of a minute.
        assert_eq!(wait, 500 + W / 10);
        assert!(!window.fits(now + wait - 1, W, 10, 1));
        assert!(window.fits(now + wait, W, 10, 1));
        // Fits now: no wait.
        assert_eq!(Window::default().wait_ms(now, W, 10, 1), Some(0));
        // More than the limit alone never fits.
        assert_eq!(window.wait_ms(now, W, 10, 11), None);
        // Waiting on the previous bucket only: 6 of 10 counted last minute, 4 now, limit 10,
        // 1 more wanted: one sixth... of the previous must slide out.
        let mut window = Window {
            start_ms: start,
            current: 4,
            previous: 6,
        };
        let now = start + 1_000;
        let wait = window.wait_ms(now, W, 10, 1).unwrap();
        assert!(!window.fits(now + wait - 1, W, 10, 1), "{wait}");
        assert!(window.fits(now + wait, W, 10, 1), "{wait}");
        window.add(now + wait, W, 1);
        assert!(!window.fits(now + wait, W, 10, 1));
        // Tokens: the same rule, any amount.
        let window = Window {
            start_ms: start,
            current: 700,
            previous: 900,
        };
        for amount in [1, 100, 299, 300, 500, 1_000] {
            let wait = window.wait_ms(start + 10, W, 1_000, amount).unwrap();
            assert!(window.fits(start + 10 + wait, W, 1_000, amount), "{amount}");
            if wait > 0 {
                assert!(!window.fits(start + 9 + wait, W, 1_000, amount), "{amount}");
            }
        }
    }

    #[test]
    fn reset_is_when_nothing_counts_any_more() {
        let start = 7 * W;
        let mut window = Window::default();
        assert_eq!(window.reset_ms(start, W), 0);
        window.add(start + 10_000, W, 1);
        assert_eq!(window.reset_ms(start + 10_000, W), 2 * W - 10_000);
        // Next bucket: only the previous one counts, until its end.
        assert_eq!(window.reset_ms(start + W + 5_000, W), W - 5_000);
        assert_eq!(window.reset_ms(start + 2 * W, W), 0);
        let allowance = Allowance::of(&window, start + 10_000, W, 3);
        assert_eq!((allowance.limit, allowance.remaining), (3, 2));
    }

    #[test]
    fn the_tighter_allowance_is_the_one_with_less_left() {
        let key = Allowance {
            limit: 10,
            remaining: 4,
            reset_ms: 1_000,
        };
        let account = Allowance {
            limit: 100,
            remaining: 2,
            reset_ms: 500,
        };
        assert_eq!(key.tighter(Some(account)), account);
        assert_eq!(account.tighter(Some(key)), account);
        assert_eq!(key.tighter(None), key);
    }

    #[test]
    fn the_first_limit_that_binds_is_named() {
        let now = 5 * W;
        let key = RateLimits {
            rpm: Some(2),
            tpm: Some(1_000),
            max_concurrent: Some(1),
        };
        let account = RateLimits {
            rpm: Some(100),
            ..RateLimits::NONE
        };
        let mut reading = Reading::default();
        let fresh = Reading::default();
        assert_eq!(
            check(now, W, &[(key, reading), (account, fresh)], 500),
            Ok(())
        );
        // A request's tokens alone above the limit can never fit.
        let refused = check(now, W, &[(key, reading)], 1_001).unwrap_err();
        assert_eq!((refused.kind, refused.wait_ms), (LimitKind::Tokens, None));
        reading.in_flight = 1;
        let refused = check(now, W, &[(key, reading)], 10).unwrap_err();
        assert_eq!(refused.kind, LimitKind::Concurrent);
        assert_eq!(refused.wait_ms, Some(CONCURRENCY_RETRY_MS));
        reading.requests.add(now, W, 2);
        let refused = check(now, W, &[(account, fresh), (key, reading)], 10).unwrap_err();
        assert_eq!(
            (refused.subject, refused.kind, refused.limit),
            (1, LimitKind::Requests, 2)
        );
        assert!(refused.wait_ms.unwrap() > 0);
        let (requests, tokens) = allowances(now, W, &[(key, reading), (account, fresh)]);
        let requests = requests.unwrap();
        assert_eq!((requests.limit, requests.remaining), (2, 0));
        assert_eq!(tokens.unwrap().remaining, 1_000);
        assert_eq!(allowances(now, W, &[(account, fresh)]).1, None);
    }

    #[test]
    fn durations_read_like_openai_headers() {
        assert_eq!(duration_text(0), "0s");
        assert_eq!(duration_text(-5), "0s");
        assert_eq!(duration_text(120), "120ms");
        assert_eq!(duration_text(1_000), "1s");
        assert_eq!(duration_text(1_500), "1.5s");
        assert_eq!(duration_text(17_250), "17.25s");
        assert_eq!(duration_text(360_000), "6m0s");
        assert_eq!(duration_text(90_001), "1m30.001s");
        assert_eq!(duration_text(3_723_000), "1h2m3s");
        assert_eq!(duration_text(7_200_000), "2h0m0s");
        assert_eq!(retry_after_secs(0), 1);
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1_000), 1);
        assert_eq!(retry_after_secs(1_001), 2);
        assert_eq!(retry_after_secs(6_500), 7);
    }
}
