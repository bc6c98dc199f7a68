//! A histogram of durations kept in atomics. prometheus-client's own histogram takes a mutex
//! on every observation; this one costs the relay two relaxed atomic additions, however many
//! threads observe at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Upper bounds, in seconds, for a request's time and what makes it up: from a millisecond
/// (what the gateway adds) to ten minutes (a long stream).
pub const REQUEST_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
];

/// Upper bounds, in seconds, for the short internal calls (a billing flush, a Redis round
/// trip): from a tenth of a millisecond to ten seconds.
pub const CALL_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Durations in fixed buckets. Clones share their counts.
#[derive(Clone, Debug)]
pub struct Histogram {
    inner: Arc<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    bounds: &'static [f64],
    /// One count per bound, and one past the last (`+Inf`); not cumulative.
    counts: Box<[AtomicU64]>,
    /// The sum of the observations in nanoseconds (wraps after 584 years of observed time).
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            inner: Arc::new(Buckets {
                bounds,
                counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                sum_nanos: AtomicU64::new(0),
            }),
        }
    }

    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = self.inner.bounds.partition_point(|bound| *bound < seconds);
        self.inner.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// How many observations were made.
    pub fn count(&self) -> u64 {
        self.inner
            .counts
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .sum()
    }

    /// The sum of the observations.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.inner.sum_nanos.load(Ordering::Relaxed))
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let inner = &self.inner;
        let buckets: Vec<(f64, u64)> = inner
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(inner.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        // The count is the buckets' sum, so a scrape during observations stays consistent.
        let count = buckets.iter().map(|(_, n)| n).sum();
        encoder.encode_histogram::<NoLabelSet>(self.sum().as_secs_f64(), count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observation_on_a_bound_counts_in_that_bucket() {
        let histogram = Histogram::new(&[0.1, 1.0]);
        histogram.observe(Duration::from_millis(100));
        histogram.observe(Duration::from_millis(500));
        histogram.observe(Duration::from_secs(3));
        let counts: Vec<u64> = histogram
            .inner
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, [1, 1, 1]);
        assert_eq!(histogram.count(), 3);
        assert_eq!(histogram.sum(), Duration::from_millis(3600));
    }
}
