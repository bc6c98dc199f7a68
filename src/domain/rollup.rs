//! The rollups' time buckets: 15 minutes of UTC each, so a time range is read as whole buckets
//! from the rollups and, at each edge finer than a bucket, at most one bucket of raw requests.

/// A bucket's length in milliseconds.
pub const BUCKET_MS: i64 = 15 * 60 * 1000;

/// The start of the bucket `at_ms` falls in.
pub fn bucket_start(at_ms: i64) -> i64 {
    at_ms - at_ms.rem_euclid(BUCKET_MS)
}

/// The first bucket boundary at or after `at_ms`.
pub fn bucket_ceil(at_ms: i64) -> i64 {
    let start = bucket_start(at_ms);
    if start == at_ms {
        start
    } else {
        start.saturating_add(BUCKET_MS)
    }
}

/// A half-open span of time, `[from, to)`, either end open (`None`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// How a time range is read: whole buckets from the rollups, the rest from raw rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Whole buckets (bounds on bucket boundaries, or open).
    pub rollups: Option<Span>,
    /// Raw rows before the first whole bucket, or the whole range when it lies within one
    /// bucket.
    pub head: Option<Span>,
    /// Raw rows after the last whole bucket.
    pub tail: Option<Span>,
}

/// Splits `[from, to)` into whole buckets and raw edges, each edge shorter than a bucket.
pub fn split(from: Option<i64>, to: Option<i64>) -> Split {
    if let (Some(f), Some(t)) = (from, to)
        && t <= f
    {
        return Split::default();
    }
    let whole_from = from.map(bucket_ceil);
    let whole_to = to.map(bucket_start);
    if let (Some(wf), Some(wt)) = (whole_from, whole_to)
        && wf > wt
    {
        // Within one bucket: all raw.
        return Split {
            rollups: None,
            head: Some(Span { from, to }),
            tail: None,
        };
    }
    let head = match (from, whole_from) {
        (Some(f), Some(wf)) if f < wf => Some(Span {
            from: Some(f),
            to: Some(wf),
        }),
        _ => None,
    };
    let tail = match (to, whole_to) {
        (Some(t), Some(wt)) if wt < t => Some(Span {
            from: Some(wt),
            to: Some(t),
        }),
        _ => None,
    };
    let rollups = match (whole_from, whole_to) {
        (Some(wf), Some(wt)) if wf == wt => None,
        _ => Some(Span {
            from: whole_from,
            to: whole_to,
        }),
    };
    Split {
        rollups,
        head,
        tail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: i64 = BUCKET_MS;

    fn span(from: i64, to: i64) -> Option<Span> {
        Some(Span {
            from: Some(from),
            to: Some(to),
        })
    }

    #[test]
    fn buckets_are_aligned_on_utc_quarter_hours() {
        assert_eq!(bucket_start(0), 0);
        assert_eq!(bucket_start(B - 1), 0);
        assert_eq!(bucket_start(B), B);
        assert_eq!(bucket_start(-1), -B);
        assert_eq!(bucket_ceil(1), B);
        assert_eq!(bucket_ceil(B), B);
    }

    #[test]
    fn aligned_ranges_read_only_rollups() {
        let s = split(Some(2 * B), Some(10 * B));
        assert_eq!(s.rollups, span(2 * B, 10 * B));
        assert_eq!((s.head, s.tail), (None, None));
        let open = split(None, None);
        assert_eq!(open.rollups, Some(Span::default()));
    }

    #[test]
    fn edges_read_at_most_one_bucket_of_raw_rows() {
        let s = split(Some(2 * B + 5), Some(10 * B + 7));
        assert_eq!(s.head, span(2 * B + 5, 3 * B));
        assert_eq!(s.rollups, span(3 * B, 10 * B));
        assert_eq!(s.tail, span(10 * B, 10 * B + 7));
        let from_only = split(Some(B + 1), None);
        assert_eq!(from_only.head, span(B + 1, 2 * B));
        assert_eq!(
            from_only.rollups,
            Some(Span {
                from: Some(2 * B),
                to: None
            })
        );
    }

    #[test]
    fn a_range_inside_one_bucket_is_raw_and_adjacent_edges_skip_rollups() {
        let inside = split(Some(B + 1), Some(B + 9));
        assert_eq!(inside.head, span(B + 1, B + 9));
        assert_eq!((inside.rollups, inside.tail), (None, None));
        let adjacent = split(Some(B + 1), Some(2 * B + 3));
        assert_eq!(adjacent.rollups, None);
        assert_eq!(adjacent.head, span(B + 1, 2 * B));
        assert_eq!(adjacent.tail, span(2 * B, 2 * B + 3));
        assert_eq!(split(Some(5), Some(5)), Split::default());
    }
}
