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
