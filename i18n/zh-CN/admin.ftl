# 管理控制台：各页面共用的文字。
admin-console = 控制台
admin-nav-label = 控制台栏目
admin-nav-overview = 概览
admin-nav-channels = 渠道
admin-nav-users = 用户
admin-nav-groups = 分组
admin-nav-prices = 价格
admin-nav-aliases = 模型别名
admin-nav-codes = 兑换码
admin-nav-orders = 订单
admin-nav-logs = 日志
admin-nav-audit = 审计日志
admin-nav-tokens = 管理令牌
admin-nav-settings = 设置
web-nav-console = 控制台

# 审计日志页面。
admin-audit-lead = 管理员、root、命令行或管理令牌所做的每一项变更，最新的在前。每一行都与前一行链接；tollgate audit verify 会校验这条链。
admin-audit-filters = 筛选审计日志
admin-audit-actor = 操作者
admin-audit-actor-hint = 管理员的用户名，或 cli。
admin-audit-action = 操作
admin-audit-action-hint = 例如 channel.update、user.balance 或 option.set。
admin-audit-target = 对象
admin-audit-target-hint = 例如 channel:12、user:alice 或 org:3（含其团队）。
admin-audit-from = 开始
admin-audit-to = 结束
admin-audit-time-hint = 日期如 2026-12-01，或时间如 2026-12-01T09:30:00+08:00。
admin-audit-apply = 显示
admin-audit-clear = 清除筛选
admin-audit-export = 下载为 JSON Lines
admin-audit-none = 没有符合这些筛选条件的变更。
admin-audit-id = 行号
admin-audit-change = 变更
admin-audit-before = 之前
admin-audit-after = 之后
admin-audit-ledger = 账本行
admin-audit-older = 更早的变更
filter-time-invalid = 值“{ $value }”不是日期或时间：请使用 2026-12-01 或 2026-12-01T09:30:00+08:00。
filter-limit-range = 请求的行数应在 1 到 { $max } 之间。

# 敏感变更前再次确认身份。
admin-reauth-title = 确认是你本人
admin-reauth-lead = 此变更需要在最近 10 分钟内登录过。请再次输入密码；你在表单中填写的内容会被保留。
admin-reauth-confirm = 确认
admin-reauth-or-provider = 或通过你的登录服务商再次登录：
admin-reauth-provider = 通过你的登录服务商再次登录：
admin-resume-title = 提交你的变更
admin-resume-lead = 你已再次登录。以下是你填写的内容；提交即可完成变更。
admin-resume-send = 提交变更
admin-resume-cancel = 取消
admin-resume-empty = （空）

# 设置：日志保留多久。
admin-option-log-retention-days = 请求日志保留天数（0 = 永久）
admin-option-audit-retention-days = 审计日志保留天数（0 = 永久）
