# 组织页面上各人能看到的内容：钱包只对所有者和管理员可见；成员看到自己的花费，团队经理看到所管团队的花费。
web-org-wallet-ask = 只有组织的所有者和管理员能看到钱包。如需了解余额或充值，请联系他们。
web-org-wallet-admins-only = 仅管理员可见
web-org-spent-yours = { $period ->
    [daily] 你今日的花费
    [weekly] 你本周的花费
    [quarterly] 你本季度的花费
   *[monthly] 你本月的花费
}
web-org-spent-your-teams = { $period ->
    [daily] 你所管团队今日的花费
    [weekly] 你所管团队本周的花费
    [quarterly] 你所管团队本季度的花费
   *[monthly] 你所管团队本月的花费
}
web-org-spend-teams-yours = 你在各团队的花费
web-org-teams-none-yours = 你还不在任何团队中。团队密钥需要团队：请联系管理员或团队经理把你加入。
web-org-cap-yours-in = 你在 { $team } 的个人上限
web-org-cap-yours = 你的上限：{ $budget }

# 密钥页面：在团队选择下方列出各团队的预算。
web-key-team-budget-of = { $team }：
web-key-team-no-budget = 无预算
web-key-team-budget-cap = { $budget } · 你的上限 { $cap }

# 邀请页面：受邀人将以什么身份加入。
web-invitation-join = { $role ->
    [admin] 你将以管理员身份加入。
   *[member] 你将以成员身份加入。
}
web-invitation-join-team = { $role ->
    [admin] 你将以管理员身份加入，并加入团队 { $team }。
   *[member] 你将以成员身份加入，并加入团队 { $team }。
}
web-invitation-join-manager = { $role ->
    [admin] 你将以管理员身份加入，并担任团队 { $team } 的经理。
   *[member] 你将以成员身份加入，并担任团队 { $team } 的经理。
}

# 概览的动态：本月各模型花费与最近的请求（仅限读者可见的部分）。
web-org-spend-models = 本月各模型花费
web-org-models-none = 本月还没有花费。
web-org-col-requests = 请求数
web-org-latest = 最近的请求
web-org-latest-none = 还没有请求。
web-org-latest-more = 全部用量（可筛选，含分摊报表）
web-org-spend-not-yours = 队友的花费只有团队负责人和组织管理员可以查看。
