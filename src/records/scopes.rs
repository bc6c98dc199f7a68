//! What the relay reads of an organisation to hold its team keys' requests: the wallet, the
//! budgets of the organisation, its teams and their members, and what each budget spent in its
//! latest period.

use crate::domain::kinds::{BudgetPeriod, OrgRole};

/// An organisation with everything its team keys are held on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgScopes {
    pub id: i64,
    pub slug: String,
    pub name: String,
    /// The organisation's own time zone; empty: the site's.
    pub timezone: String,
    /// The wallet's balance.
    pub quota: i64,
    pub budget: Option<(BudgetPeriod, i64)>,
    pub teams: Vec<TeamScopes>,
    /// Every member with their role.
    pub members: Vec<(i64, OrgRole)>,
    /// Every team membership.
    pub memberships: Vec<Membership>,
    /// The latest period's spending of each budget of the organisation that has spent.
    pub spend: Vec<ScopeSpend>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamScopes {
    pub id: i64,
    pub name: String,
    pub budget: Option<(BudgetPeriod, i64)>,
    /// What each member may spend per the team's period, unless their membership says.
    pub member_cap: Option<i64>,
}

/// A member's place in a team.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The `team_members` row: the member cap's scope.
    pub id: i64,
    pub team_id: i64,
    pub user_id: i64,
    /// The member's own cap; None: the team's default.
    pub cap: Option<i64>,
}

/// What a budget spent in the period that began at `window_start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeSpend {
    /// `key`, `member`, `team` or `org`.
    pub kind: String,
    pub scope_id: i64,
    pub window_start: i64,
    pub spent: i64,
}

/// What billing changes on an organisation, as stored: its wallet and its budgets' spending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgBalance {
    pub id: i64,
    pub quota: i64,
    pub spend: Vec<ScopeSpend>,
}
