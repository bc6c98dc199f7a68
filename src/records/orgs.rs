//! Organisations as stored: the organisation, its members, its teams and their members (see
//! migration 0020).

use crate::domain::kinds::{BudgetPeriod, OrgRole};

/// What a budget may spend in each period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub period: BudgetPeriod,
    pub quota: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgRow {
    pub id: i64,
    pub name: String,
    pub slug: String,
    /// The group team keys use unless their team lets them pick another.
    pub group_name: String,
    /// An IANA zone; empty: the site's (option `timezone`).
    pub timezone: String,
    pub budget: Option<Budget>,
    /// The wallet's balance, in quota units.
    pub quota: i64,
    pub used_quota: i64,
    pub request_count: i64,
    /// The member the owner offered ownership to, until they accept (0: none).
    pub pending_owner: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A person's place in an organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgMemberRow {
    pub id: i64,
    pub org_id: i64,
    pub user_id: i64,
    pub username: String,
    pub role: OrgRole,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamRow {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub budget: Option<Budget>,
    /// What each member may spend per the team's period unless their membership says
    /// otherwise; None: no cap.
    pub member_cap_quota: Option<i64>,
    /// The organisation's groups the team's keys may use; empty: the organisation's group
    /// alone.
    pub group_names: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A member's place in a team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamMemberRow {
    /// The row's id: the scope of the member's cap in `budget_spend`.
    pub id: i64,
    pub team_id: i64,
    pub org_id: i64,
    pub user_id: i64,
    pub username: String,
    pub manager: bool,
    /// The member's own cap per the team's period; None: the team's default.
    pub cap_quota: Option<i64>,
    pub created_at: i64,
}

/// An organisation with everything in it, as management pages show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgTree {
    pub org: OrgRow,
    /// Owner first, then admins, then members, each by username.
    pub members: Vec<OrgMemberRow>,
    /// By name.
    pub teams: Vec<TeamRow>,
    /// Every team membership, by team and username.
    pub team_members: Vec<TeamMemberRow>,
}

impl OrgTree {
    pub fn owner(&self) -> Option<&OrgMemberRow> {
        self.members.iter().find(|m| m.role == OrgRole::Owner)
    }

    pub fn member(&self, user_id: i64) -> Option<&OrgMemberRow> {
        self.members.iter().find(|m| m.user_id == user_id)
    }

    pub fn team_named(&self, name: &str) -> Option<&TeamRow> {
        self.teams.iter().find(|t| t.name == name)
    }

    pub fn members_of(&self, team_id: i64) -> impl Iterator<Item = &TeamMemberRow> {
        self.team_members
            .iter()
            .filter(move |m| m.team_id == team_id)
    }

    pub fn membership(&self, team_id: i64, user_id: i64) -> Option<&TeamMemberRow> {
        self.team_members
            .iter()
            .find(|m| m.team_id == team_id && m.user_id == user_id)
    }
}

impl TeamRow {
    /// The groups the team's keys may use: those it lists, or the organisation's alone.
    pub fn groups<'a>(&'a self, org: &'a OrgRow) -> Vec<&'a str> {
        if self.group_names.is_empty() {
            vec![org.group_name.as_str()]
        } else {
            self.group_names.iter().map(String::as_str).collect()
        }
    }
}

impl TeamMemberRow {
    /// The cap that holds the member: their own, else the team's default.
    pub fn effective_cap(&self, team: &TeamRow) -> Option<i64> {
        self.cap_quota.or(team.member_cap_quota)
    }
}
