//! Charts drawn on the server as SVG: no script, nothing to load, and readable as a table by
//! screen readers (each bar carries its day and figures as a title).

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
    /// What the bar shows, in words (its tooltip and accessible name).
    pub title: String,
}

/// Bars of spend per day, scaled to the costliest day; a day with requests but a tiny cost
/// still shows a sliver.
pub fn spend_bars(
    days: &[DaySpend],
    quota_per_usd: i64,
    describe: impl Fn(&str, &str, i64) -> String,
) -> Vec<Bar> {
    let count = i64::try_from(days.len()).unwrap_or(1).max(1);
    let width = (WIDTH / count - GAP).max(1);
    let highest = days.iter().map(|d| d.spend.cost).max().unwrap_or(0).max(1);
    days.iter()
        .enumerate()
        .map(|(at, day)| {
            let scaled = i128::from(day.spend.cost) * i128::from(HEIGHT) / i128::from(highest);
            let mut height = i64::try_from(scaled).unwrap_or(HEIGHT);
            if height == 0 && day.spend.requests > 0 {
                height = 1;
            }
            let x = i64::try_from(at).unwrap_or(0) * (width + GAP);
            Bar {
                x,
                y: HEIGHT - height,
                width,
                height,
                title: describe(
                    &day.label,
                    &Quota(day.spend.cost).usd_display(quota_per_usd),
                    day.spend.requests,
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::usage::Spend;

    #[test]
    fn bars_scale_to_the_costliest_day() {
        let day = |label: &str, requests, cost| DaySpend {
            label: label.into(),
            spend: Spend { requests, cost },
        };
        let days = [day("a", 0, 0), day("b", 1, 1), day("c", 2, 500_000)];
        let bars = spend_bars(&days, 500_000, |label, usd, n| format!("{label} {usd} {n}"));
        assert_eq!(bars.len(), 3);
        assert_eq!(bars[0].height, 0);
        assert_eq!(bars[1].height, 1, "a day with requests shows");
        assert_eq!(bars[2].height, HEIGHT);
        assert_eq!(bars[2].y, 0);
        assert_eq!(bars[2].title, "c $1.00 2");
        assert!(bars[2].x + bars[2].width <= WIDTH);
    }
}
