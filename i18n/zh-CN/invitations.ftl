# 邀请加入组织。
invite-email-or-username = 请填写要邀请的邮箱地址或用户名，二者选其一。
invite-role-invalid = 角色只能是管理员（admin）或成员（member）。
invite-team-invalid = 请选择组织中的一个团队，或不选。
invite-manager-needs-team = 只有团队成员才能管理团队：请同时选择团队。
invite-not-allowed = 只有组织管理员可以邀请他人（团队经理可以邀请成员加入自己的团队）。
invite-too-many = 该组织已有 { $max } 个待处理的邀请。请撤销部分邀请，或等待对方答复。
invite-resend-email-only = 只有通过邮箱发出的邀请才有可重新发送的链接。
invitation-not-found = 该邀请不存在或已失效。
invitation-answered = 该邀请已被答复、撤销或已过期。
invitation-sign-in = 请先登录再答复邀请。
invitation-other-account = 该邀请是发给另一个账户的。
invitation-verify-first = 该邀请发给 { $email }。请先在个人资料中验证该地址，然后重新打开链接。
invitation-other-address = 该邀请发给 { $email }。请使用该地址的账户登录，或用该地址注册。
mail-org-invite-subject = 邀请你在 { $site } 加入 { $org }
mail-org-invite-text =
    你好：

    你被邀请以 { $role } 身份加入 { $site } 上的组织 { $org }。
    在此接受或拒绝：{ $link }

    该链接仅可使用一次，有效期 { $days } 天。请使用此邮箱地址登录（或注册）后接受邀请。
    如果你没有预期收到此邀请，请忽略本邮件。
web-invitation-new = 邀请成员
web-invitation-email = 邮箱地址
web-invitation-email-hint = 对方会收到一个链接，仅可使用一次，7 天内有效，需使用该地址的账户接受。
web-invitation-username = 或用户名
web-invitation-username-hint = 已在本站注册的用户。对方在自己的“邀请”页面答复。
web-invitation-role = 角色
web-invitation-team = 团队
web-invitation-team-hint = 可选：加入组织时一并加入的团队。
web-invitation-no-team = 不加入团队
web-invitation-manager = 担任该团队经理
web-invitation-send = 发送邀请
web-invitation-list = 邀请列表
web-invitation-none = 暂无邀请。
web-invitation-who = 受邀人
web-invitation-state = 状态
web-invitation-expires = 有效期至
web-invitation-as-manager = 经理
web-invitation-resend = 重新发送
web-invitation-revoke = 撤销
web-invitation-state-pending = 等待答复
web-invitation-state-accepted = 已接受
web-invitation-state-declined = 已拒绝
web-invitation-state-revoked = 已撤销
web-invitation-state-expired = 已过期
web-invitation-link-title = 请转交此链接
web-invitation-link-hint = 本站未配置邮件发送，请自行把此链接交给对方。链接只在此显示一次，仅可使用一次，7 天内有效。
web-invitation-mailed = 邀请已发送至 { $who }。
web-invitation-made = 已邀请 { $who }，对方将在自己的“邀请”页面答复。
web-invitation-revoked = 邀请已撤销，其链接已失效。
web-invitation-title = 邀请
web-invitation-heading = 邀请你加入 { $org }
web-invitation-for-address = 此邀请发给 { $email }。
web-invitation-closed = 此邀请已失效：已被答复、撤销或已过期。请向对方索取新的邀请。
web-invitation-accept = 接受
web-invitation-decline = 拒绝
web-invitation-sign-in-first = 第一次来？请用受邀地址注册。已有使用该地址的账户？请登录。完成后会回到此页面答复。
web-invitation-sign-in = 登录
web-invitation-register = 注册
web-invitation-accepted = 欢迎：你已成为该组织的成员。
web-invitation-declined = 已拒绝该邀请。
web-invitations-mine = 邀请
web-invitations-mine-none = 目前没有等待你答复的组织邀请。
web-invitation-until = 有效期至 { $when }
