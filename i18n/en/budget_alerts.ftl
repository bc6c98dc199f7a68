# Budget alerts: mailed to an organisation's owner and admins (and a team's managers) when a
# budget's period has spent 80% and 100%, and to a member whose cap in a team is spent.
mail-budget-period-daily = daily
mail-budget-period-weekly = weekly
mail-budget-period-monthly = monthly
mail-budget-period-quarterly = quarterly

mail-budget-team-subject = { $org }: team { $team } has used { $percent }% of its { $period } budget
mail-budget-team-text =
    Hello { $name },

    Team { $team } of { $org } has spent { $spent } of its { $period } budget of { $limit } ({ $percent }%).
    { $level ->
        [full] Its team keys are refused until the budget starts over.
       *[near] Once it is spent, its team keys are refused until the budget starts over.
    }
    The budget starts over on { $resets } ({ $zone }).

    See the team: { $link }

    You receive this as the owner or an admin of { $org } or a manager of the team: once at 80% and once at 100% of each period's budget.

mail-budget-org-subject = { $org }: { $percent }% of the organisation's { $period } budget is used
mail-budget-org-text =
    Hello { $name },

    { $org } has spent { $spent } of the organisation's { $period } budget of { $limit } ({ $percent }%).
    { $level ->
        [full] Every team key of the organisation is refused until the budget starts over.
       *[near] Once it is spent, every team key of the organisation is refused until the budget starts over.
    }
    The budget starts over on { $resets } ({ $zone }).

    See the organisation: { $link }

    You receive this as the owner or an admin of { $org }: once at 80% and once at 100% of each period's budget.

mail-budget-cap-subject = { $org }: you have spent your { $period } cap in team { $team }
mail-budget-cap-text =
    Hello { $name },

    You have spent { $spent } of your { $period } cap of { $limit } in team { $team } of { $org }.
    Your keys for the team are refused until the cap starts over on { $resets } ({ $zone }); your personal keys go on working.
    A manager of the team can raise your cap.

    See the team: { $link }
