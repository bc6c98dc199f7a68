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
