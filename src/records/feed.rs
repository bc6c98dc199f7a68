//! What changed, as the change feed records it.

/// Something a write changed that running servers hold in memory, recorded once per
/// transaction. What the relay never reads (an email, a display name, a password) is not a
/// change.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Change {
    /// A user's role, status, group or balance.
    User(i64),
    Token(i64),
    /// An organisation: its settings, wallet, budget, members, teams or caps (the relay
    /// re-reads the whole organisation).
    Org(i64),
    Channel(i64),
    Group(String),
    Price(String),
    Option(String),
    Alias(String),
}

impl Change {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Change::User(_) => "user",
            Change::Token(_) => "token",
            Change::Org(_) => "org",
            Change::Channel(_) => "channel",
            Change::Group(_) => "group",
            Change::Price(_) => "price",
            Change::Option(_) => "option",
            Change::Alias(_) => "alias",
        }
    }

    pub(crate) fn subject(&self) -> String {
        match self {
            Change::User(id) | Change::Token(id) | Change::Org(id) | Change::Channel(id) => {
                id.to_string()
            }
            Change::Group(name)
            | Change::Price(name)
            | Change::Option(name)
            | Change::Alias(name) => name.clone(),
        }
    }

    /// A stored row back as a change; `None` for a kind this build does not know.
    pub(crate) fn decode(kind: &str, subject: String) -> Option<Change> {
        let id = || subject.parse::<i64>().ok();
        Some(match kind {
            "user" => Change::User(id()?),
            "token" => Change::Token(id()?),
            "org" => Change::Org(id()?),
            "channel" => Change::Channel(id()?),
            "group" => Change::Group(subject),
            "price" => Change::Price(subject),
            "option" => Change::Option(subject),
            "alias" => Change::Alias(subject),
            _ => return None,
        })
    }

    /// Whether the change is to the routing view (channels, groups, prices, options,
    /// aliases) rather than to one account (a user, a key or an organisation).
    pub fn is_routing(&self) -> bool {
        !matches!(self, Change::User(_) | Change::Token(_) | Change::Org(_))
    }
}

/// What the feed holds for a range of versions.
#[derive(Debug, Default)]
pub struct FeedRead {
    /// The versions that have rows, ascending, each once.
    pub versions: Vec<i64>,
    /// The changes, each once, in the order first recorded.
    pub changes: Vec<Change>,
    /// Rows of a kind this build does not know (written by a newer build).
    pub unknown: usize,
}

impl FeedRead {
    /// Whether every version after `after` up to `upto` is present: nothing was pruned or
    /// skipped in between.
    pub fn is_complete(&self, after: i64, upto: i64) -> bool {
        let expected = usize::try_from(upto.saturating_sub(after)).unwrap_or(usize::MAX);
        self.unknown == 0
            && self.versions.len() == expected
            && self.versions.first().is_none_or(|&v| v == after + 1)
            && self.versions.last().is_none_or(|&v| v == upto)
    }
}
