//! The rollups' time buckets: 15 minutes of UTC each, so a time range is read as whole buckets
//! from the rollups and, at each edge finer than a bucket, at most one bucket of raw requests.
//! The overview's coarser rollups add hours and days (of UTC): a long range is read as whole
//! days, then whole hours at its edges, then the 15-minute path for what is left.

/// A bucket's length in milliseconds.
pub const BUCKET_MS: i64 = 15 * 60 * 1000;

/// An hour and a day (of UTC), the grains of the overview's coarser rollups. Each is a whole
/// number of the finer ones, so a range cut at day boundaries is also cut at hour and bucket
/// boundaries.
pub const HOUR_MS: i64 = 60 * 60 * 1000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

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

/// How a range is read from rollups of several grains: whole grains of each (coarsest first),
/// and the edges finer than the finest, which are read as before (15-minute rollups and raw
/// rows).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layers {
    /// `(grain_ms, span)`: whole grains, bounds on that grain's boundaries.
    pub whole: Vec<(i64, Span)>,
    /// What is left, each shorter than the finest grain, at most two.
    pub rest: Vec<Span>,
}

/// Splits `[from, to)` into whole `grains` (coarsest first, each a multiple of the next) and
/// the rest. Each grain is used only between the boundaries of the one above, so at most two
/// spans of each finer grain are read: a 30-day range is some 29 days, up to 46 hours and the
/// edges.
pub fn layers(from: i64, to: i64, grains: &[i64]) -> Layers {
    let mut out = Layers::default();
    layer(from, to, grains, &mut out);
    // Oldest first, which reads best when printed and changes no sum.
    out.whole.sort_by_key(|(grain, span)| (span.from, *grain));
    out.rest.sort_by_key(|span| span.from);
    out
}

fn layer(from: i64, to: i64, grains: &[i64], out: &mut Layers) {
    if from >= to {
        return;
    }
    let Some((&grain, finer)) = grains.split_first() else {
        out.rest.push(Span {
            from: Some(from),
            to: Some(to),
        });
        return;
    };
    let floor = |at: i64| at - at.rem_euclid(grain);
    let whole_from = if floor(from) == from {
        from
    } else {
        floor(from) + grain
    };
    let whole_to = floor(to);
    if whole_from >= whole_to {
        layer(from, to, finer, out);
        return;
    }
    out.whole.push((
        grain,
        Span {
            from: Some(whole_from),
            to: Some(whole_to),
        },
    ));
    layer(from, whole_from, finer, out);
    layer(whole_to, to, finer, out);
}

/// The starts of `grain`-long periods (sorted) as the fewest spans that cover them: a rebuild
/// recomputes each run of neighbouring hours or days with one statement.
pub fn runs(starts: impl IntoIterator<Item = i64>, grain: i64) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for start in starts {
        match out.last_mut() {
            Some((_, end)) if *end == start => *end = start + grain,
            _ => out.push((start, start + grain)),
        }
    }
    out
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

    fn whole(grain: i64, from: i64, to: i64) -> (i64, Span) {
        (
            grain,
            Span {
                from: Some(from),
                to: Some(to),
            },
        )
    }

    #[test]
    fn layers_read_days_then_hours_then_the_edges() {
        let (d, h) = (DAY_MS, HOUR_MS);
        // 30 days from a midnight in UTC+8 (16:00 UTC) to 10:20 and 7 ms UTC.
        let from = 10 * d - 8 * h;
        let to = 40 * d + 10 * h + 20 * 60_000 + 7;
        let l = layers(from, to, &[d, h]);
        assert_eq!(
            l.whole,
            vec![
                whole(h, from, 10 * d),
                whole(d, 10 * d, 40 * d),
                whole(h, 40 * d, 40 * d + 10 * h),
            ]
        );
        assert_eq!(l.rest, vec![span(40 * d + 10 * h, to).unwrap()]);
        // Every millisecond is read once.
        let covered: i64 = l
            .whole
            .iter()
            .map(|(_, s)| s.to.unwrap() - s.from.unwrap())
            .chain(l.rest.iter().map(|s| s.to.unwrap() - s.from.unwrap()))
            .sum();
        assert_eq!(covered, to - from);
    }

    #[test]
    fn layers_fall_through_to_finer_grains_and_half_hour_edges_stay_out_of_hours() {
        let (d, h) = (DAY_MS, HOUR_MS);
        // A day in UTC+5:30 starts at 18:30 UTC: its first half hour is an edge.
        let from = 3 * d - 5 * h - h / 2;
        let l = layers(from, from + d, &[d, h]);
        assert_eq!(l.whole, vec![whole(h, from + h / 2, from + d - h / 2)]);
        assert_eq!(
            l.rest,
            vec![
                span(from, from + h / 2).unwrap(),
                span(from + d - h / 2, from + d).unwrap()
            ]
        );
        assert_eq!(layers(5, 5, &[d, h]), Layers::default());
        assert_eq!(layers(1, 9, &[]).rest, vec![span(1, 9).unwrap()]);
        let quarter = layers(B + 1, 5 * B, &[B]);
        assert_eq!(quarter.whole, vec![whole(B, 2 * B, 5 * B)]);
        assert_eq!(quarter.rest, vec![span(B + 1, 2 * B).unwrap()]);
    }

    #[test]
    fn neighbouring_periods_make_one_run() {
        assert_eq!(
            runs([0, B, 2 * B, 5 * B], B),
            vec![(0, 3 * B), (5 * B, 6 * B)]
        );
        assert!(runs([], B).is_empty());
    }
}
