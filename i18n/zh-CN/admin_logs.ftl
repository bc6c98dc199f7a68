# 管理控制台的请求日志与总览，以及其背后服务的消息。

log-not-found = 没有编号为 { $id } 的请求日志。

admin-logs-title = 请求日志
admin-logs-user = 用户
admin-logs-key = 密钥编号
admin-logs-key-hint = 密钥的编号，与密钥列表中显示的一致。
admin-logs-channel = 渠道
admin-logs-no-channel = 无（已拒绝）
admin-logs-time-hint = 日期如 2027-01-31，或时刻如 2027-01-31T08:00:00Z。
admin-logs-default-range = 显示最近 30 天；设置“开始”可查看更早的请求。
admin-logs-bad-time = 请使用日期如 2027-01-31，或时刻如 2027-01-31T08:00:00Z。
admin-logs-bad-number = 请输入数字。
admin-logs-bad-cursor = 此分页链接无效；请从最新的请求重新开始。
admin-logs-bad-order = 请选择晚于开始的结束时间。
admin-logs-asked-for = 请求的是 { $model }
admin-logs-first-token = 首个 token { $ttft }
admin-log-title = 请求
admin-log-back = ← 全部请求
admin-log-request-id = 请求 ID
admin-log-group = 分组
admin-log-endpoint = 接口
admin-log-requested-model = 请求的模型
admin-log-served-model = 实际模型
admin-log-attempts = 尝试的渠道数
admin-log-cached = 缓存 { $count }
admin-log-estimated = 本地计数
admin-log-ttft = 首个 token 用时
admin-log-not-streamed = 非流式
admin-log-upstream-id = 上游请求 ID
admin-log-reason = 结束原因
admin-log-implausible = 上游报告的用量超出上限
admin-log-client = 客户端地址
