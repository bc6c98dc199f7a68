//! Fixed histograms of durations (latency, time to first token) and the percentiles read from
//! them. The rollups keep one count per bucket, so p50 and p95 over any set of rollup rows are
//! a sum of counts and a walk, never a scan of the raw requests.
//!
//! The 16 buckets are bounded above by [`BOUNDS_MS`], roughly log-spaced from 50 ms to a
//! minute; the last is open. A duration of exactly a bound falls in the bucket above it:
//! bucket `i` holds `BOUNDS_MS[i-1] <= ms < BOUNDS_MS[i]`. A percentile is reported as the
//! upper bound of the bucket it falls in (the lower bound for the open bucket), so it is never
//! below the true value by more than one bucket's width.

/// How many buckets a histogram has.
pub const BUCKETS: usize = 16;

/// The upper bound (exclusive) of each bucket but the last, in milliseconds.
pub const BOUNDS_MS: [i64; BUCKETS - 1] = [
    50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000, 20_000, 60_000,
];

/// A histogram: how many durations fell in each bucket.
pub type Histogram = [i64; BUCKETS];

/// The bucket `ms` falls in. Negative durations count as zero.
pub fn bucket_of(ms: i64) -> usize {
    BOUNDS_MS.partition_point(|&bound| bound <= ms)
}

/// Adds one duration to `histogram`.
pub fn record(histogram: &mut Histogram, ms: i64) {
    let slot = &mut histogram[bucket_of(ms)];
    *slot = slot.saturating_add(1);
}

/// Adds `other`'s counts to `histogram`.
pub fn merge(histogram: &mut Histogram, other: &Histogram) {
    for (slot, count) in histogram.iter_mut().zip(other) {
        *slot = slot.saturating_add(*count);
    }
}

/// The `percent`th percentile (1–100) of the durations counted: the upper bound of the bucket
/// holding the value at that rank (nearest-rank method), or the open bucket's lower bound.
/// None when nothing was counted.
pub fn percentile(histogram: &Histogram, percent: u8) -> Option<i64> {
    let total: i64 = histogram.iter().fold(0i64, |sum, c| sum.saturating_add(*c));
    if total <= 0 {
        return None;
    }
    let percent = i128::from(percent.clamp(1, 100));
    // The nearest rank: ceil(total × percent / 100), at least 1.
    let rank = ((i128::from(total) * percent + 99) / 100).max(1);
    let mut seen: i128 = 0;
    for (bucket, count) in histogram.iter().enumerate() {
        seen += i128::from((*count).max(0));
        if seen >= rank {
            return Some(match BOUNDS_MS.get(bucket) {
                Some(&upper) => upper,
                None => BOUNDS_MS[BUCKETS - 2],
            });
        }
    }
    Some(BOUNDS_MS[BUCKETS - 2])
}

/// The column names of a histogram in a table: `{prefix}_0` … `{prefix}_15`.
pub fn column_names(prefix: &str) -> Vec<String> {
    (0..BUCKETS).map(|i| format!("{prefix}_{i}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_the_bucket_below_their_bound() {
        assert_eq!(bucket_of(-5), 0);
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(49), 0);
        assert_eq!(bucket_of(50), 1);
        assert_eq!(bucket_of(999), 6);
        assert_eq!(bucket_of(1_000), 7);
        assert_eq!(bucket_of(59_999), 14);
        assert_eq!(bucket_of(60_000), 15);
        assert_eq!(bucket_of(i64::MAX), 15);
    }

    #[test]
    fn bounds_rise() {
        assert!(BOUNDS_MS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn percentiles_are_the_upper_bound_of_the_ranked_bucket() {
        let mut h = Histogram::default();
        assert_eq!(percentile(&h, 50), None);
        // 90 fast (under 50 ms), 10 slow (2–3 s).
        for _ in 0..90 {
            record(&mut h, 20);
        }
        for _ in 0..10 {
            record(&mut h, 2_500);
        }
        assert_eq!(percentile(&h, 50), Some(50));
        assert_eq!(percentile(&h, 90), Some(50));
        assert_eq!(percentile(&h, 91), Some(3_000));
        assert_eq!(percentile(&h, 95), Some(3_000));
        assert_eq!(percentile(&h, 100), Some(3_000));
    }

    #[test]
    fn one_value_is_every_percentile_and_the_open_bucket_reads_its_floor() {
        let mut h = Histogram::default();
        record(&mut h, 120_000);
        assert_eq!(percentile(&h, 1), Some(60_000));
        assert_eq!(percentile(&h, 95), Some(60_000));
    }

    #[test]
    fn merged_histograms_add_up() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        record(&mut a, 10);
        record(&mut b, 10);
        record(&mut b, 400);
        merge(&mut a, &b);
        assert_eq!(a[0], 2);
        assert_eq!(a[4], 1);
        assert_eq!(a.iter().sum::<i64>(), 3);
        assert_eq!(percentile(&a, 50), Some(50));
        assert_eq!(percentile(&a, 95), Some(500));
    }

    #[test]
    fn columns_are_numbered() {
        let names = column_names("lat");
        assert_eq!(names.len(), BUCKETS);
        assert_eq!(names[0], "lat_0");
        assert_eq!(names[15], "lat_15");
    }
}
