# What each reader of an organisation's pages sees: the wallet is its owner's and admins'; a
# member reads their own spending, a team's manager their teams'.
web-org-wallet-ask = Only the organisation's owner and admins see the wallet. Ask them about its balance or to top it up.
web-org-wallet-admins-only = Admins only
web-org-spent-yours = { $period ->
    [daily] You spent today
    [weekly] You spent this week
    [quarterly] You spent this quarter
   *[monthly] You spent this month
}
web-org-spent-your-teams = { $period ->
    [daily] Your teams spent today
    [weekly] Your teams spent this week
    [quarterly] Your teams spent this quarter
   *[monthly] Your teams spent this month
}
web-org-spend-teams-yours = Your spending per team
web-org-teams-none-yours = You are in no team yet. A team key needs a team: ask an admin or a team's manager to add you.
web-org-cap-yours-in = Your cap in { $team }
web-org-cap-yours = Your cap: { $budget }

# The keys page: each team's budget under the choice of team.
web-key-team-budget-of = { $team }:
web-key-team-no-budget = no budget
web-key-team-budget-cap = { $budget } · your cap { $cap }

# The invitation's page: what the invited person would join as.
web-invitation-join = { $role ->
    [admin] You would join as an admin.
   *[member] You would join as a member.
}
web-invitation-join-team = { $role ->
    [admin] You would join as an admin, in the team { $team }.
   *[member] You would join as a member, in the team { $team }.
}
web-invitation-join-manager = { $role ->
    [admin] You would join as an admin, managing the team { $team }.
   *[member] You would join as a member, managing the team { $team }.
}

# The overview's activity: spend per model this month and the latest requests, of what the
# reader sees.
web-org-spend-models = Spend per model this month
web-org-models-none = Nothing spent this month yet.
web-org-col-requests = Requests
web-org-latest = Latest requests
web-org-latest-none = No requests yet.
web-org-latest-more = All usage, with filters and the chargeback report
web-org-spend-not-yours = What a teammate spends is for the team's managers and the organisation's admins.
