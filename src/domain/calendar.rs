//! Days in the site's time zone (option `timezone`, an IANA name): where "today" begins, which
//! day a moment falls on, and how a day is written. Stored times stay UTC milliseconds.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::kinds::BudgetPeriod;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Whether `name` is a time zone Tollgate knows (`UTC`, `Asia/Shanghai`, …).
pub fn is_zone(name: &str) -> bool {
    TimeZone::get(name).is_ok()
}

/// The site's calendar.
#[derive(Clone, Debug)]
pub struct SiteCalendar {
    zone: TimeZone,
}

impl SiteCalendar {
    /// The calendar of a zone by name; UTC when the name is unknown (options are validated
    /// when set, so this only happens with a zone removed from the database).
    pub fn new(name: &str) -> SiteCalendar {
        SiteCalendar {
            zone: TimeZone::get(name).unwrap_or(TimeZone::UTC),
        }
    }

    fn zoned(&self, at_ms: i64) -> jiff::ZonedDateTime {
        Timestamp::from_millisecond(at_ms)
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .to_zoned_datetime(self.zone.clone())
    }

    /// When the day holding `at_ms` began, `days_back` days earlier (0: that day itself).
    pub fn day_start_ms(&self, at_ms: i64, days_back: i64) -> i64 {
        let zoned = self.zoned(at_ms);
        zoned
            .start_of_day()
            .and_then(|start| start.checked_sub(days_back.days()))
            .map(|start| start.timestamp().as_millisecond())
            .unwrap_or(at_ms - at_ms.rem_euclid(DAY_MS) - days_back * DAY_MS)
    }

    /// The period of a key's budget that holds `at_ms`, as (start, end) in UTC milliseconds:
    /// the local day, the week from Monday, the calendar month or quarter. Computed on the zone's own
    /// calendar, so a day with a daylight-saving change is 23 or 25 hours long.
    pub fn budget_window(&self, period: BudgetPeriod, at_ms: i64) -> (i64, i64) {
        let zoned = self.zoned(at_ms);
        let window = zoned.start_of_day().and_then(|day| {
            let (start, length) = match period {
                BudgetPeriod::Daily => (day, 1.day()),
                BudgetPeriod::Weekly => {
                    let since_monday = i64::from(day.weekday().to_monday_zero_offset());
                    (day.checked_sub(since_monday.days())?, 1.week())
                }
                BudgetPeriod::Monthly => (day.first_of_month()?.start_of_day()?, 1.month()),
                BudgetPeriod::Quarterly => {
                    let first = day.first_of_month()?;
                    let back = i64::from((first.month() - 1) % 3);
                    (
                        first.checked_sub(back.months())?.start_of_day()?,
                        3.months(),
                    )
                }
            };
            let end = start.checked_add(length)?;
            Ok((
                start.timestamp().as_millisecond(),
                end.timestamp().as_millisecond(),
            ))
        });
        // Only a moment at the very edge of the representable range has no such period.
        window.unwrap_or((
            at_ms - at_ms.rem_euclid(DAY_MS),
            at_ms - at_ms.rem_euclid(DAY_MS) + DAY_MS,
        ))
    }

    /// The zone's name as people set it (`Asia/Shanghai`, `UTC`).
    pub fn zone_name(&self) -> &str {
        self.zone.iana_name().unwrap_or("UTC")
    }

    /// `at_ms` on the zone's clock, to the second: `2026-12-05 14:03:07`.
    pub fn local_time(&self, at_ms: i64) -> String {
        self.zoned(at_ms).strftime("%Y-%m-%d %H:%M:%S").to_string()
    }

    /// `at_ms` on the zone's clock as RFC 3339 with its offset: `2026-12-05T14:03:07+08:00`.
    pub fn rfc3339(&self, at_ms: i64) -> String {
        self.zoned(at_ms)
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    /// When the zone's day `date` (`2026-11-30`) began, in UTC milliseconds.
    pub fn date_start_ms(&self, date: &str) -> Option<i64> {
        let date: jiff::civil::Date = date.trim().parse().ok()?;
        self.midnight_ms(date)
    }

    /// When the zone's day after `date` began: the end of `date`.
    pub fn date_end_ms(&self, date: &str) -> Option<i64> {
        let date: jiff::civil::Date = date.trim().parse().ok()?;
        self.midnight_ms(date.tomorrow().ok()?)
    }

    /// A bound of a time range as people write it: a day of the zone (`2026-11-30`: its start,
    /// or with `end` its end, so the day is included), an RFC 3339 instant
    /// (`2026-11-30T08:00:00Z`), or milliseconds since the epoch.
    pub fn bound_ms(&self, text: &str, end: bool) -> Option<i64> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse().ok();
        }
        if text.contains('T') || text.contains('t') {
            let at: Timestamp = text.parse().ok()?;
            return Some(at.as_millisecond());
        }
        if end {
            self.date_end_ms(text)
        } else {
            self.date_start_ms(text)
        }
    }

    fn midnight_ms(&self, date: jiff::civil::Date) -> Option<i64> {
        let zoned = date.to_zoned_datetime(self.zone.clone()).ok()?;
        Some(zoned.start_of_day().ok()?.timestamp().as_millisecond())
    }

    /// The zone's offset from UTC at `at_ms`, in milliseconds.
    pub fn offset_ms(&self, at_ms: i64) -> i64 {
        i64::from(self.zoned(at_ms).offset().seconds()) * 1000
    }

    /// The local day number (days since 1970-01-01 in this zone) of `at_ms`, with the offset
    /// in force at that moment.
    pub fn day_number(&self, at_ms: i64) -> i64 {
        (at_ms + self.offset_ms(at_ms)).div_euclid(DAY_MS)
    }

    /// A day number written as `2026-11-30`.
    pub fn day_label(day_number: i64) -> String {
        Timestamp::from_millisecond(day_number * DAY_MS + DAY_MS / 2)
            .map(|t| t.to_zoned_datetime(TimeZone::UTC).date().to_string())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_is_an_instant_or_a_day_of_the_zone() {
        let shanghai = SiteCalendar::new("Asia/Shanghai");
        assert_eq!(
            shanghai.bound_ms("2026-12-05T14:03:07+08:00", false),
            Some(1_796_450_587_000)
        );
        // The day starts at midnight in Shanghai: 16:00 UTC the day before.
        assert_eq!(
            shanghai.bound_ms("2026-12-05", false),
            Some(1_796_400_000_000)
        );
        assert_eq!(
            shanghai.bound_ms("2026-12-05", true),
            Some(1_796_486_400_000)
        );
        assert_eq!(shanghai.bound_ms("yesterday", false), None);
    }

    // 2026-11-30 01:30 UTC = 09:30 in Shanghai, 20:30 the day before in New York.
    const AT: i64 = 1_796_002_200_000;

    #[test]
    fn bounds_are_days_instants_or_milliseconds() {
        let shanghai = SiteCalendar::new("Asia/Shanghai");
        // 2026-11-30 00:00 in Shanghai is 2026-11-29 16:00 UTC.
        let start = shanghai.bound_ms("2026-11-30", false).unwrap();
        assert_eq!(start, shanghai.date_start_ms("2026-11-30").unwrap());
        assert_eq!(
            shanghai.bound_ms("2026-11-30", true),
            Some(start + 86_400_000)
        );
        assert_eq!(
            shanghai.bound_ms("2026-11-29T16:00:00Z", false),
            Some(start)
        );
        assert_eq!(
            shanghai.bound_ms("2026-11-30T00:00:00+08:00", true),
            Some(start)
        );
        assert_eq!(
            shanghai.bound_ms("1790000000000", false),
            Some(1_790_000_000_000)
        );
        assert_eq!(shanghai.bound_ms("yesterday", false), None);
        assert_eq!(shanghai.bound_ms("2026-11-30T25:00:00Z", false), None);
    }

    #[test]
    fn days_begin_in_the_site_zone() {
        let utc = SiteCalendar::new("UTC");
        assert_eq!(SiteCalendar::day_label(utc.day_number(AT)), "2026-11-30");
        assert_eq!(utc.day_start_ms(AT, 0), AT - 90 * 60_000);
        assert_eq!(utc.day_start_ms(AT, 7), AT - 90 * 60_000 - 7 * DAY_MS);

        let shanghai = SiteCalendar::new("Asia/Shanghai");
        assert_eq!(
            SiteCalendar::day_label(shanghai.day_number(AT)),
            "2026-11-30"
        );
        assert_eq!(shanghai.day_start_ms(AT, 0), AT - (9 * 60 + 30) * 60_000);

        let new_york = SiteCalendar::new("America/New_York");
        assert_eq!(
            SiteCalendar::day_label(new_york.day_number(AT)),
            "2026-11-29"
        );
        assert_eq!(new_york.offset_ms(AT), -5 * 3_600_000);
    }

    #[test]
    fn budget_periods_follow_the_local_calendar() {
        // Monday 2026-11-30 01:30 UTC.
        let utc = SiteCalendar::new("UTC");
        let midnight = AT - 90 * 60_000;
        assert_eq!(
            utc.budget_window(BudgetPeriod::Daily, AT),
            (midnight, midnight + DAY_MS)
        );
        assert_eq!(
            utc.budget_window(BudgetPeriod::Weekly, AT),
            (midnight, midnight + 7 * DAY_MS)
        );
        let november = midnight - 29 * DAY_MS;
        assert_eq!(
            utc.budget_window(BudgetPeriod::Monthly, AT),
            (november, midnight + DAY_MS)
        );
        // In New York it is still Sunday the 29th: the week began on Monday the 23rd.
        let new_york = SiteCalendar::new("America/New_York");
        let (start, end) = new_york.budget_window(BudgetPeriod::Weekly, AT);
        assert_eq!(start, midnight - 7 * DAY_MS + 5 * 3_600_000);
        assert_eq!(end - start, 7 * DAY_MS);
        // The day daylight saving ends there has 25 hours.
        let fall_back = 1_793_505_600_000; // 2026-11-01 04:00 UTC = midnight in New York
        let (start, end) = new_york.budget_window(BudgetPeriod::Daily, fall_back + 3_600_000);
        assert_eq!((start, end - start), (fall_back, 25 * 3_600_000));
        // Quarters start on 1 January, April, July and October: 2026-10-01 to 2027-01-01.
        let (start, end) = utc.budget_window(BudgetPeriod::Quarterly, AT);
        assert_eq!(start, november - 31 * DAY_MS);
        assert_eq!(end, november + (30 + 31) * DAY_MS);
        // In Berlin, 2027-01-01 00:30 local is still 2026-12-31 in UTC: the new quarter began.
        let berlin = SiteCalendar::new("Europe/Berlin");
        let new_year = end - 3_600_000; // midnight in Berlin
        assert_eq!(
            berlin
                .budget_window(BudgetPeriod::Quarterly, new_year + 30 * 60_000)
                .0,
            new_year
        );
    }

    #[test]
    fn writes_times_in_the_zone_to_the_second() {
        // 2026-12-05 06:03:07.250 UTC.
        let at = 1_796_450_587_250;
        let shanghai = SiteCalendar::new("Asia/Shanghai");
        assert_eq!(shanghai.rfc3339(at), "2026-12-05T14:03:07+08:00");
        assert_eq!(shanghai.local_time(at), "2026-12-05 14:03:07");
        assert_eq!(shanghai.zone_name(), "Asia/Shanghai");
        let utc = SiteCalendar::new("UTC");
        assert_eq!(utc.rfc3339(at), "2026-12-05T06:03:07+00:00");
        assert_eq!(utc.zone_name(), "UTC");
        let kolkata = SiteCalendar::new("Asia/Kolkata");
        assert_eq!(kolkata.rfc3339(at), "2026-12-05T11:33:07+05:30");
        // A typed day begins at the zone's midnight.
        assert_eq!(
            shanghai.date_start_ms("2026-12-05"),
            Some(1_796_428_800_000 - 8 * 3_600_000)
        );
        assert_eq!(
            shanghai.date_end_ms("2026-12-05"),
            Some(1_796_428_800_000 + 16 * 3_600_000)
        );
        assert_eq!(shanghai.date_start_ms("yesterday"), None);
    }

    #[test]
    fn knows_zones_by_name() {
        assert!(is_zone("UTC"));
        assert!(is_zone("Europe/Berlin"));
        assert!(!is_zone("Mars/Olympus_Mons"));
        assert_eq!(SiteCalendar::new("nowhere").offset_ms(AT), 0);
    }
}
