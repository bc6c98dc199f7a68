//! What of an organisation's money and spending each caller sees — the rule every page and
//! read follows, decided here so no page has to filter what it was given:
//! - admins, the owner and platform administrators see all of it: the wallet, every team's
//!   and every member's spending;
//! - a team's manager sees what that team's members spent, and their own spending elsewhere;
//! - a member sees what they spent themselves;
//! - the wallet (its balance and what it spent in all) is for those who manage the
//!   organisation, as a person's balance is theirs alone.

use super::Access;

/// How much of an organisation's spending a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sight {
    /// Everything: admins, the owner and platform administrators.
    Whole,
    /// The teams they manage, and their own spending in other teams.
    Teams,
    /// Their own spending only.
    #[default]
    Own,
}

impl Access {
    pub(crate) fn sight(&self) -> Sight {
        if self.manages_org() {
            Sight::Whole
        } else if self.managed_teams().is_empty() {
            Sight::Own
        } else {
            Sight::Teams
        }
    }

    /// The teams whose members' spending the caller sees and whose members they may invite:
    /// every team for those who manage the organisation, else those they manage.
    pub(crate) fn managed_teams(&self) -> Vec<i64> {
        self.tree
            .teams
            .iter()
            .filter(|team| self.manages_team(team.id))
            .map(|team| team.id)
            .collect()
    }

    /// Whether the caller sees what `user_id` spent through team `team_id`'s keys.
    pub(crate) fn sees_spend_of(&self, team_id: i64, user_id: i64) -> bool {
        self.manages_team(team_id) || self.me.as_ref().is_some_and(|me| me.user_id == user_id)
    }

    /// Whether the caller sees the wallet's balance and what it spent in all.
    pub(crate) fn sees_wallet(&self) -> bool {
        self.manages_org()
    }
}
