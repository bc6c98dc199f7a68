//! Charts drawn on the server as SVG: no script, nothing to load. The bars are a picture
//! (hidden from screen readers); the axis values are text beside it, and the same figures are
//! a table that screen readers read instead.

use crate::domain::money::Quota;
use crate::service::usage::DaySpend;

/// The chart's drawing area, in SVG units (it scales to the page's width).
pub const WIDTH: i64 = 600;
pub const HEIGHT: i64 = 160;
const GAP: i64 = 4;

/// One bar of a chart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub width: i64,
    pub height: i64,
    /// What the bar shows, in words (its tooltip).
    pub title: String,
}

/// One day as the chart's table reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayRow {
    pub day: String,
    pub spend: String,
    pub requests: i64,
}

/// A bar chart of spend per day with its axes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendChart {
    pub bars: Vec<Bar>,
    /// The spend at the top of the axis, half way, and zero (the gridlines' values).
    pub axis_top: String,
    pub axis_middle: String,
    pub axis_zero: String,
    /// The first, middle and last day under the bars.
    pub first_day: String,
    pub middle_day: String,
    pub last_day: String,
    pub rows: Vec<DayRow>,
}

/// The smallest round amount (1, 2 or 5 × 10ⁿ micro-dollars, so its half is round too) at or
/// above `units`, in units.
fn round_top(units: i64, quota_per_usd: i64) -> i64 {
    let qpu = i128::from(quota_per_usd.max(1));
    let micros = (i128::from(units.max(1)) * 1_000_000 + qpu - 1) / qpu;
    let mut step: i128 = 1;
    let top_micros = loop {
        if let Some(top) = [1, 2, 5]
            .iter()
            .map(|m| m * step)
            .find(|top| *top >= micros)
        {
            break top;
        }
        step = step.saturating_mul(10);
    };
    i64::try_from((top_micros.saturating_mul(qpu) + 999_999) / 1_000_000).unwrap_or(i64::MAX)
}

/// Bars of spend per day, scaled to a round amount at or above the costliest day; a day with
/// requests but a tiny cost still shows a sliver.
pub fn spend_chart(
    days: &[DaySpend],
    quota_per_usd: i64,
    describe: impl Fn(&str, &str, i64) -> String,
) -> SpendChart {
    let usd = |units: i64| Quota(units).usd_display(quota_per_usd);
    let count = i64::try_from(days.len()).unwrap_or(1).max(1);
    let width = (WIDTH / count - GAP).max(1);
    let highest = days.iter().map(|d| d.spend.cost).max().unwrap_or(0);
    let top = round_top(highest, quota_per_usd);
    let bars = days
        .iter()
        .enumerate()
        .map(|(at, day)| {
            let scaled = i128::from(day.spend.cost) * i128::from(HEIGHT) / i128::from(top);
            let mut height = i64::try_from(scaled).unwrap_or(HEIGHT).min(HEIGHT);
            if height == 0 && day.spend.requests > 0 {
                height = 1;
            }
            let x = i64::try_from(at).unwrap_or(0) * (width + GAP);
            Bar {
                x,
                y: HEIGHT - height,
                width,
                height,
                title: describe(&day.label, &usd(day.spend.cost), day.spend.requests),
            }
        })
        .collect();
    let label = |index: usize| days.get(index).map(|d| d.label.clone()).unwrap_or_default();
    SpendChart {
        bars,
        axis_top: usd(top),
        axis_middle: usd(top / 2),
        axis_zero: usd(0),
        first_day: label(0),
        middle_day: label(days.len() / 2),
        last_day: label(days.len().saturating_sub(1)),
        rows: days
            .iter()
            .map(|d| DayRow {
                day: d.label.clone(),
                spend: usd(d.spend.cost),
                requests: d.spend.requests,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::usage::Spend;

    fn day(label: &str, requests: i64, cost: i64) -> DaySpend {
        DaySpend {
            label: label.into(),
            spend: Spend { requests, cost },
        }
    }

    #[test]
    fn bars_scale_to_a_round_top_with_axis_values() {
        // The costliest day is $0.80; the axis goes to $1.00.
        let days = [day("a", 0, 0), day("b", 1, 1), day("c", 2, 400_000)];
        let chart = spend_chart(&days, 500_000, |label, usd, n| format!("{label} {usd} {n}"));
        assert_eq!(chart.bars.len(), 3);
        assert_eq!(chart.bars[0].height, 0);
        assert_eq!(chart.bars[1].height, 1, "a day with requests shows");
        assert_eq!(chart.bars[2].height, HEIGHT * 8 / 10);
        assert_eq!(chart.bars[2].title, "c $0.80 2");
        assert!(chart.bars[2].x + chart.bars[2].width <= WIDTH);
        assert_eq!(
            (
                chart.axis_top.as_str(),
                chart.axis_middle.as_str(),
                chart.axis_zero.as_str()
            ),
            ("$1.00", "$0.50", "$0.00")
        );
        assert_eq!(
            (
                chart.first_day.as_str(),
                chart.middle_day.as_str(),
                chart.last_day.as_str()
            ),
            ("a", "b", "c")
        );
        assert_eq!(
            chart.rows[1],
            DayRow {
                day: "b".into(),
                spend: "$0.000002".into(),
                requests: 1
            }
        );
    }

    #[test]
    fn the_top_is_round() {
        let qpu = 500_000;
        assert_eq!(round_top(0, qpu), 1, "an empty chart still has a scale");
        assert_eq!(round_top(1, qpu), 1);
        assert_eq!(
            round_top(2, qpu),
            3,
            "two units are $0.000004: the top is $0.000005"
        );
        assert_eq!(round_top(500_000, qpu), 500_000);
        assert_eq!(round_top(500_001, qpu), 1_000_000);
        assert_eq!(round_top(1_100_000, qpu), 2_500_000, "$2.20 → $5.00");
        assert!(round_top(i64::MAX, qpu) >= i64::MAX / 2);
    }
}
