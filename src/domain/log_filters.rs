//! The filters of a log listing as people and clients write them, shared by the admin logs,
//! their CSV and `/api/logs`: `user`, `key` (or `token_id`), `model`, `channel`, `outcome`,
//! `from` and `to` (a day of the site's zone, an RFC 3339 instant or milliseconds), `before` (the
//! opaque cursor of the page before; `before_id`, a row id, is kept) and `limit`.

use serde::Deserialize;

use super::calendar::SiteCalendar;
use super::cursor::Cursor;
use super::kinds::Outcome;

/// The filters as sent: text, each parsed on its own so a bad one is named.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct FilterText {
    pub user: String,
    #[serde(alias = "token_id")]
    pub key: String,
    pub model: String,
    pub channel: String,
    pub outcome: String,
    pub from: String,
    pub to: String,
    pub before: String,
    pub before_id: String,
    pub limit: String,
}

/// The filters, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    pub user: Option<String>,
    pub token_id: Option<i64>,
    pub model: Option<String>,
    pub channel_id: Option<i64>,
    pub outcome: Option<Outcome>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub before: Option<Cursor>,
    pub before_id: Option<i64>,
    pub limit: Option<i64>,
}

/// Why a filter's value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Not a day, an RFC 3339 instant or milliseconds.
    Time,
    /// Not a number.
    Number,
    /// Not one of the outcomes.
    Outcome,
    /// Not a cursor this server wrote.
    Cursor,
    /// `to` is not after `from`.
    Order,
}

impl FilterText {
    /// The filters, or each refused value's field and why.
    pub fn parse(&self, calendar: &SiteCalendar) -> Result<Filters, Vec<(&'static str, Problem)>> {
        let mut problems = Vec::new();
        let mut number = |field: &'static str, text: &str| -> Option<i64> {
            let text = text.trim();
            if text.is_empty() {
                return None;
            }
            let parsed = text.parse().ok();
            if parsed.is_none() {
                problems.push((field, Problem::Number));
            }
            parsed
        };
        let token_id = number("key", &self.key);
        let channel_id = number("channel", &self.channel);
        let before_id = number("before_id", &self.before_id);
        let limit = number("limit", &self.limit);
        let mut time = |field: &'static str, text: &str, end: bool| -> Option<i64> {
            if text.trim().is_empty() {
                return None;
            }
            let bound = calendar.bound_ms(text, end);
            if bound.is_none() {
                problems.push((field, Problem::Time));
            }
            bound
        };
        let from_ms = time("from", &self.from, false);
        let to_ms = time("to", &self.to, true);
        if let (Some(from), Some(to)) = (from_ms, to_ms)
            && to <= from
        {
            problems.push(("to", Problem::Order));
        }
        let outcome = match self.outcome.trim() {
            "" => None,
            text => {
                let parsed = Outcome::parse(text);
                if parsed.is_none() {
                    problems.push(("outcome", Problem::Outcome));
                }
                parsed
            }
        };
        let before = match self.before.trim() {
            "" => None,
            text => {
                let parsed = Cursor::decode(text);
                if parsed.is_none() {
                    problems.push(("before", Problem::Cursor));
                }
                parsed
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let text = |t: &str| Some(t.trim().to_string()).filter(|t| !t.is_empty());
        Ok(Filters {
            user: text(&self.user),
            token_id,
            model: text(&self.model),
            channel_id,
            outcome,
            from_ms,
            to_ms,
            before,
            before_id,
            limit,
        })
    }

    /// How many filters are set (paging aside).
    pub fn active(&self) -> usize {
        self.pairs().iter().filter(|(_, v)| !v.is_empty()).count()
    }

    /// The filters set, as (name, value), paging aside.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("user", self.user.trim()),
            ("key", self.key.trim()),
            ("model", self.model.trim()),
            ("channel", self.channel.trim()),
            ("outcome", self.outcome.trim()),
            ("from", self.from.trim()),
            ("to", self.to.trim()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> SiteCalendar {
        SiteCalendar::new("UTC")
    }

    #[test]
    fn parses_every_filter() {
        let cursor = Cursor {
            created_at: 5,
            id: 9,
        };
        let text = FilterText {
            user: " alice ".into(),
            key: "7".into(),
            model: "gpt-4o".into(),
            channel: "3".into(),
            outcome: "refused".into(),
            from: "2026-11-30".into(),
            to: "2026-11-30T12:00:00Z".into(),
            before: cursor.encode(),
            before_id: String::new(),
            limit: "20".into(),
        };
        let parsed = text.parse(&utc()).unwrap();
        assert_eq!(parsed.user.as_deref(), Some("alice"));
        assert_eq!(parsed.token_id, Some(7));
        assert_eq!(parsed.channel_id, Some(3));
        assert_eq!(parsed.outcome, Some(Outcome::Refused));
        assert_eq!(
            parsed.to_ms.unwrap() - parsed.from_ms.unwrap(),
            12 * 3_600_000
        );
        assert_eq!(parsed.before, Some(cursor));
        assert_eq!(parsed.limit, Some(20));
        assert_eq!(text.active(), 7);
        assert_eq!(FilterText::default().parse(&utc()), Ok(Filters::default()));
    }

    #[test]
    fn names_each_refused_value() {
        let text = FilterText {
            key: "seven".into(),
            outcome: "fine".into(),
            from: "tomorrow".into(),
            before: "nope".into(),
            ..Default::default()
        };
        let problems = text.parse(&utc()).unwrap_err();
        assert!(problems.contains(&("key", Problem::Number)));
        assert!(problems.contains(&("outcome", Problem::Outcome)));
        assert!(problems.contains(&("from", Problem::Time)));
        assert!(problems.contains(&("before", Problem::Cursor)));
        let backwards = FilterText {
            from: "2026-11-30".into(),
            to: "2026-11-29T00:00:00Z".into(),
            ..Default::default()
        };
        assert_eq!(backwards.parse(&utc()), Err(vec![("to", Problem::Order)]));
    }
}
