## 门户页面。服务消息见 service.ftl。

web-skip-to-content = 跳到正文
web-nav-label = 主导航
web-nav-dashboard = 概览
web-nav-keys = API 密钥
web-nav-sign-in = 登录
web-nav-sign-out = 退出登录
web-nav-register = 注册账户
web-other-language = English

web-error-title = 出错了
web-error-home = 返回首页
web-not-found = 页面不存在。
web-internal-error = 服务器未能完成此操作。请重试；如果问题持续，请联系管理员。
web-form-expired = 此表单已过期或并非来自本站。请返回、刷新页面后重试。
web-form-too-large = 表单内容过大。
web-form-unreadable = 无法读取此表单。
web-too-many-attempts = 尝试次数过多，请几分钟后再试。

web-home-lead = 一个 API 密钥，调用众多 AI 模型。按实际用量付费，精确到每个 token。
web-home-open-dashboard = 打开概览
web-home-one-endpoint = 统一接口
web-home-one-endpoint-text = 兼容 OpenAI 与 Anthropic：把 SDK 或 Claude Code 指向本站即可。
web-home-own-keys = 自助管理密钥
web-home-own-keys-text = 按需创建多个密钥，每个密钥可单独设置额度、有效期和可用模型。
web-home-exact-billing = 精确计费
web-home-exact-billing-text = 每次请求都记录 token 数和费用，余额去向一目了然。

web-sign-in-title = 登录
web-sign-in-submit = 登录
web-sign-in-no-account = 还没有账户？
web-register-title = 创建账户
web-register-submit = 创建账户
web-register-have-account = 已有账户？
web-welcome = 欢迎，{ $name }！创建一个 API 密钥即可开始使用。
web-setup-title = 初始化 { $site }
web-setup-lead = 尚无管理员。请创建超级管理员（root）账户：它负责管理本站的渠道、价格和用户。
web-setup-submit = 创建超级管理员账户

web-field-login = 用户名或邮箱
web-field-password = 密码
web-field-password-hint = 至少 8 个字符。
web-field-password-confirm = 再次输入密码
web-field-username = 用户名
web-field-username-hint = 字母、数字及 _ - .（最多 32 个）。
web-field-email = 邮箱
web-field-email-optional = 邮箱（可选）

web-dashboard-summary = 摘要
web-dashboard-balance = 余额
web-dashboard-spent = 累计消费
web-dashboard-requests = 请求数
web-dashboard-recent = 最近的请求
web-dashboard-no-requests = 暂无请求。
web-onboarding-title = 快速开始
web-onboarding-make-key = 创建一个 API 密钥
web-onboarding-call = 像调用 OpenAI 一样用它调用接口：

web-col-time = 时间
web-col-model = 模型
web-col-key = 密钥
web-col-tokens = Token（输入 / 输出）
web-col-cost = 费用
web-col-outcome = 结果
web-col-name = 名称
web-col-spent = 已用
web-col-limit = 剩余额度
web-col-expires = 到期
web-col-last-used = 最近使用
web-col-status = 状态
web-col-actions = 操作

web-outcome-success = 成功
web-outcome-client-closed = 客户端已断开
web-outcome-stream-error = 流中断
web-outcome-upstream-error = 上游失败
web-outcome-refused = 已拒绝

web-keys-yours = 你的密钥
web-keys-none = 你还没有 API 密钥。
web-key-new = 新建密钥
web-key-create = 创建密钥
web-key-created = 你的新密钥
web-key-shown-once = 请立即复制：密钥只显示这一次。如果遗失，请删除后重新创建。
web-key-no-limit = 无单独额度
web-key-active = 启用
web-key-off = 已停用
web-key-disable = 停用
web-key-enable = 启用
web-key-delete = 删除…
web-key-delete-confirm = 删除密钥“{ $name }”？使用它的程序将立即无法访问。
web-key-delete-yes = 删除此密钥
web-key-disabled = 密钥已停用。
web-key-enabled = 密钥已重新启用。
web-key-deleted = 密钥已删除。
web-key-cap = 你的密钥数量已达上限（{ $max } 个）。请先删除一个再创建。
web-field-key-name = 名称
web-field-key-limit = 消费额度（美元，可选）
web-field-key-limit-hint = 留空表示该密钥最多可用到你的余额。
web-field-key-expires = 到期日（可选）
web-field-key-models = 允许的模型（可选）
web-field-key-models-hint = 用逗号分隔，例如 gpt-4o-mini, claude-sonnet-4-5。留空表示可用你的全部模型。
web-field-key-ips = 允许的 IP 地址（可选）
web-field-key-ips-hint = 用逗号分隔的地址或网段，例如 203.0.113.7, 10.0.0.0/8。留空表示不限。

web-nav-logs = 用量
web-nav-wallet = 钱包
web-nav-pricing = 价格
web-nav-docs = 文档

web-logs-filters = 筛选
web-logs-from = 开始日期
web-logs-to = 结束日期
web-logs-any = 全部
web-logs-apply = 应用
web-logs-csv = 下载 CSV
web-logs-totals = 符合条件
web-logs-requests = 次请求
web-logs-tokens = 输入 / 输出 token
web-logs-none = 没有符合条件的请求。
web-logs-older = 更早的请求 →
web-logs-bad-filter = 筛选条件“{ $field }”无效。

web-pricing-lead = 各模型的价格，单位为美元每百万 token（或每次请求）。
web-pricing-ratio = 你所在分组的价格为标价 × { $ratio }，下表已按此计算。
web-pricing-none = 暂无可用模型。
web-pricing-input = 输入 / 百万
web-pricing-cached = 缓存输入 / 百万
web-pricing-output = 输出 / 百万
web-pricing-per-request = 每次请求
web-pricing-group = 分组“{ $group }”的价格。

web-docs-lead = 本站兼容 OpenAI API（以及 Anthropic Messages API）：任何可设置 base URL 的 SDK 或工具都可使用，配合你在 API 密钥页创建的密钥。
web-docs-base-url = Base URL：
web-docs-claude-code = Claude Code：将其指向本站，并使用你的一个密钥。
web-docs-more = 可用模型及价格：

web-wallet-history = 记录
web-wallet-history-hint = 除请求消费以外的每一笔余额变动。
web-wallet-none = 暂无变动。
web-wallet-kind = 类型
web-wallet-amount = 金额
web-wallet-reason = 备注
web-ledger-opening = 期初余额
web-ledger-grant = 初始余额
web-ledger-adjustment = 调整
