# 管理操作的提示（命令行、/api、网页）。参数写作 { $like_this }；提示显示在对应字段旁，
# 所以提示里不重复字段名。每条提示都是完整的句子，以全角句号“。”结尾（邮件标题和正文除外）。

## 输入的值

field-required = 此项必填。
name-empty = 此项不能为空。
name-too-long = 最多 { $max } 个字符。
name-bad-character = “{ $value }”只能包含字母、数字和 { $allowed }。
decimal-not-a-number = “{ $value }”不是数字（请用数字，可带小数点，例如 0.15）。
decimal-too-precise = “{ $value }”的小数位超过 { $places } 位。
decimal-negative = “{ $value }”不能为负数。
decimal-too-large = “{ $value }”太大。
amount-too-large = 金额太大。
amount-usd-or-units = 金额请用美元（usd）或额度单位（units）二选一给出，不要同时给出。
balance-out-of-range = 这次变动会使余额超出可存储的范围。
balance-reason-needed = 请说明余额变动的原因：原因会记录在账本和审计日志中。
number-between = 必须在 { $min } 到 { $max } 之间。
number-at-least = 至少为 { $min }。
number-at-most = 最多为 { $max }。
choice-invalid = “{ $value }”不是以下之一：{ $choices }。
date-invalid = “{ $value }”不是日期（请用 2027-01-01 或 2027-01-01T12:00:00Z）。
email-invalid = “{ $value }”不是电子邮件地址。
ip-range-invalid = { $count ->
    [one] 这不是 IP 地址或 CIDR 网段：{ $values }（例如 10.0.0.0/8 或 203.0.113.7）。
   *[other] 这些不是 IP 地址或 CIDR 网段：{ $values }（例如 10.0.0.0/8 或 203.0.113.7）。
}
url-invalid = “{ $value }”不是网址（例如 https://api.openai.com/v1）。
url-not-http = “{ $value }”必须是 http:// 或 https:// 网址。
url-has-query = 基础网址不能带查询参数或片段。
url-azure-query = 基础网址只能带“?api-version=…”（例如 https://NAME.openai.azure.com?api-version=2024-10-21）。
url-vertex-invalid = 这不是 Vertex AI 的基础网址（{ $reason }）。
file-unreadable = 无法读取文件 { $path }（{ $reason }）。

## 用户与密码

user-not-found = 没有名为“{ $name }”的用户。
user-id-not-found = 没有 ID 为 { $id } 的用户。
user-exists = 名为“{ $name }”的用户已存在。
user-disabled = “{ $name }”已被停用。
email-taken = 该电子邮件已被其他用户使用。
password-too-short = 密码至少需要 { $min } 个字符。
password-too-long = 密码最多 { $max } 个字符。
password-hashing-failed = 无法处理该密码。

## API 密钥与管理令牌

key-not-found = 没有 ID 为 { $id } 的 API 密钥。
key-cap-reached = 密钥数量已达上限（{ $max } 个），请先删除一个再创建。
key-group-unavailable = 分组“{ $group }”不存在或不可选择。
key-quota-and-unlimited = 密钥不能既有额度又不受限。
key-budget-needs-period = 请选择预算的重置周期（每天、每周、每月或每季度），或将金额留空。
key-budget-needs-amount = 请填写每个周期可花费的金额，需大于 $0。
expiry-in-the-past = 过期时间已经过去。
admin-token-needs-admin = “{ $name }”是 { $role } 账户；只有管理员和 root 用户可以获得管理令牌。
admin-token-not-found = 没有 ID 为 { $id } 的管理令牌。

## 分组

group-not-found = 没有名为“{ $name }”的分组。
group-unknown = 没有名为“{ $name }”的分组（现有分组：{ $existing }；可用 `tollgate group create { $name }` 创建）。
group-exists = 名为“{ $name }”的分组已存在。
group-default-undeletable = 不能删除“default”分组：新用户会加入该分组。
group-has-users = 分组“{ $name }”仍有 { $count } 个用户；请先把他们移到其他分组。

## 渠道

channel-not-found = 没有名为“{ $name }”的渠道。
channel-id-not-found = 没有 ID 为 { $id } 的渠道。
channel-exists = 名为“{ $name }”的渠道已存在。
channel-type-unknown = “{ $value }”不是受支持的渠道类型（类型：{ $types }；OpenAI 兼容服务商：{ $presets }）。
channel-key-missing = 请至少提供一个上游密钥。
channel-key-spaces = 上游密钥含有空格或控制字符。
channel-key-unusable = 上游密钥无法使用（{ $reason }）。
channel-models-empty = 请至少列出一个该渠道提供的模型。
channel-groups-empty = 请至少列出一个分组。
channel-timeout-range = 必须在 0（服务器默认值）到 3600 之间。
channel-status-invalid = “{ $value }”不是管理员可设置的状态（请用 enabled 或 disabled）。
channel-test-needs-model = 该渠道没有按名称列出模型（只有通配模式）；请指定一个模型来测试。
model-map-pair-invalid = “{ $value }”不是“请求名=上游名”的格式。
model-not-in-url = “{ $model }”不能作为上游网址的一部分。
header-name-invalid = “{ $name }”不是有效的请求头名称。
header-reserved = “{ $name }”由 Tollgate 设置，不能覆盖。
header-value-invalid = “{ $name }”的值不是有效的请求头值。
header-line-invalid = “{ $value }”不是“名称: 值”的格式。
vertex-has-no-model-list = Vertex AI 没有项目可调用模型的列表；请自行填写该渠道的模型。
upstream-request-failed = 无法构建发往上游的请求（{ $reason }）。
upstream-unreachable = 无法连接上游（{ $reason }）。
upstream-answered-error = 上游返回 HTTP { $status }（{ $reason }）。
upstream-model-list-not-json = 上游的模型列表不是 JSON。

## 价格与模型别名

price-not-found = 模型“{ $model }”没有价格。
price-too-large = 最多为 100,000 美元。
price-missing = 请给出输入和输出价格（每百万 token 的美元价格），或按次价格。
price-output-missing = 请同时给出输出价格（每百万 token 的美元价格）。
price-per-request-and-tokens = 按次价格会取代 token 价格；两者不要同时给出。
alias-not-found = 没有名为“{ $name }”的模型别名。
alias-exists = 别名“{ $name }”已存在；要指向别的模型请先删除它。
alias-points-at-itself = 别名不能指向自己。
alias-target-is-alias = “{ $target }”本身就是别名（指向“{ $model }”）；请直接指向该模型，别名不能连环。
alias-name-is-target = 别名“{ $alias }”指向“{ $name }”；别名不能作为另一个别名的目标。

## 运行时选项

option-unknown = 没有名为“{ $name }”的选项（已知选项：{ $known }）。
option-not-a-number = “{ $value }”不是整数。
option-not-a-bool = “{ $value }”不是 true 或 false。
option-not-a-status = “{ $value }”不是 HTTP 状态码（100-599）。
option-not-a-url = “{ $value }”不是以 http:// 或 https:// 开头的完整地址。
option-range-backwards = 范围“{ $value }”的顺序反了。
option-one-of = “{ $value }”不是以下之一：{ $choices }。
option-not-a-zone = “{ $value }”不是时区名称（例如 UTC 或 Asia/Shanghai）。
option-not-a-host = “{ $value }”不是主机名（不带协议和端口）。
option-not-a-sender = “{ $value }”不是邮箱地址（a@example.com 或 名称 <a@example.com>）。
option-verification-needs-smtp = 邮箱验证需要邮件服务器：请先设置 smtp_host（以及 smtp_from）。

## Balance changes

idempotency-key-reused = 此幂等键已用于另一笔不同的变更；新的变更请使用新的键。

## Permissions

admins-only = 仅管理员可执行此操作。
root-only = 仅超级管理员（root）可以创建或修改管理员账户。

## 账户

password-mismatch = 两次输入的密码不一致。
registration-closed = 目前无法在此创建新账户。
sign-in-failed = 用户名、邮箱或密码错误。
account-disabled = 此账户已被停用。
oauth-discovery-failed = 无法读取该提供方的发现文档（{ $reason }）。
oauth-provider-exists = 已存在名为“{ $name }”的登录提供方。
oauth-provider-not-found = 没有名为“{ $name }”的登录提供方。
oauth-identity-taken = 该 { $provider } 账号已关联到本站的另一个账户。
oauth-email-has-account = 本站已有账户使用该 { $provider } 账号的邮箱。请先用密码登录该账户，再在个人资料中关联 { $provider }。
oauth-needs-verified-email = 本站要求已验证的邮箱，而 { $provider } 未提供。请先在 { $provider } 验证邮箱，或在本站用邮箱注册。
oauth-last-way-in = 这是登录你账户的唯一方式：请先设置密码，再取消关联。
oauth-identity-not-found = 未找到该关联账号。
code-count-range = 每次可生成 1 到 { $max } 个兑换码。
code-amount-positive = 兑换码的面值必须大于 $0。
code-uses-range = 兑换码可使用 1 到 { $max } 次。
code-disable-what = 请用 ID 指定兑换码，或用名称指定一批。
code-not-found = 没有这个编号的兑换码。
redeem-unknown = 该兑换码不存在，请确认已完整复制。
redeem-used = 该兑换码已用完。
redeem-disabled = 该兑换码已被本站停用。
redeem-expired = 该兑换码已过期。
redeem-already-redeemed = 你已兑换过该兑换码。
invite-code-unavailable = 未能生成可用的邀请码，请重试。
setup-link-spent = 此初始化链接已失效：本站已完成初始化，或服务器重启后已打印了新的链接。
password-wrong = 当前密码不正确。
account-delete-confirm = 请准确输入你的用户名以确认。
account-delete-root = 超级管理员账户不能在此删除。

# Email: verification codes and password reset links
email-domain-refused = { $domain } 的邮箱不能在此注册。
email-already-verified = 此邮箱已验证。
mail-not-configured = 本站尚未配置邮件发送，请联系管理员
mail-failed = 邮件发送失败（{ $reason }），请稍后再试或联系管理员
code-resend-wait = 验证码刚刚已发送，{ $seconds } 秒后可再次获取。
code-expired = 此验证码已过期或已被新的验证码取代，请重新获取。
code-too-many-tries = 此验证码错误次数过多，请重新获取。
code-wrong = 验证码不正确（还可尝试 { $left } 次）。
reset-link-spent = 此重置链接已过期或已使用，请重新申请。
mail-verify-subject = { $code } 是你的 { $site } 验证码
mail-verify-text =
    { $name }，你好：

    你的 { $site } 验证码是：{ $code }

    也可以打开此链接：{ $link }

    验证码 { $minutes } 分钟内有效。如果不是你本人操作，请忽略本邮件。
mail-reset-subject = 设置新的 { $site } 密码
mail-reset-text =
    { $name }，你好：

    有人（希望是你本人）申请为你的 { $site } 账户设置新密码。
    请在此设置：{ $link }

    链接仅可使用一次，{ $minutes } 分钟内有效。如果不是你本人操作，请忽略本邮件，你的密码不会改变。
mail-low-balance-subject = 你的 { $site } 余额不足：{ $balance }
mail-low-balance-text =
    { $name }，你好：

    你的 { $site } 余额为 { $balance }，已低于提醒线 { $line }。
    余额用完后，使用你密钥的请求将被拒绝。

    在此充值：{ $link }

    在余额回到提醒线以上之前，不会再发送此邮件。你可以在个人资料中修改提醒线。

# Stripe 充值
option-not-a-currency = “{ $value }”不是三个字母的货币代码（如 usd、eur、cny、jpy）。
option-bad-list-item = “{ $value }”在此处无效。
amount-positive = 金额必须大于 0。
topup-off = 本站暂不支持银行卡充值。
topup-form-expired = 此付款表单已过期，请重新打开充值。
topup-amount-range = 请输入 { $min } 到 { $max } 之间的金额。
topup-price-too-large = 金额超过单笔银行卡付款的上限，请选择较小的金额。
topup-price-too-small = 金额太小，无法用银行卡支付，请选择较大的金额。
topup-too-many-pending = 你已有 { $max } 笔未支付的充值订单，请先支付或等待其过期。
topup-daily-cap = 每天最多充值 { $cap }，今天还可充值 { $left }。
topup-stripe-refused = Stripe 拒绝了这笔付款（{ $message }）。
topup-stripe-unreachable = 暂时无法连接 Stripe，未产生任何扣款，请一分钟后重试。
order-not-found = 没有这个订单。
order-not-held = 只有被暂扣的订单可以手动入账；此订单的状态是 { $status }。
order-not-paid = 此订单没有可退款的已付款项。
order-refund-range = 退款金额须在 $0 到订单余额 { $max } 之间。
order-refund-left = 这笔付款只剩 { $left } 可以退款。
mail-receipt-subject = { $site } 收据：余额已增加 { $credited }
mail-receipt-text =
    { $name }，你好：

    感谢你支付 { $paid }（订单 { $order }）。
    你的 { $site } 余额已增加 { $credited }，当前余额为 { $balance }。

    订单详情：{ $link }
option-topup-bounds-backwards = topup_min_usd 不能大于 topup_max_usd。
order-held-refunded = 这笔付款已在 Stripe 上退款或发生争议，不能入账。
order-dispute-unknown = Stripe 关闭了一个尚未记录开启的争议；它会再次送达。
option-not-a-secret = 密钥只能包含字母、数字和符号，不能有空格；请检查粘贴的内容。
code-shape = 验证码为 { $digits } 位数字，请检查输入（本次不计入尝试次数）。
reauth-needed = 请输入当前密码以修改此项（或重新登录）。
reauth-through-provider = 请先通过登录服务商重新登录，然后在 10 分钟内完成此修改。
session-not-found = 没有这个会话。
own-account-only = 此操作只能由登录自己账户的用户完成。
redeem-shape = 兑换码以 { $prefix } 开头，后接 48 个字母和数字。请检查是否完整复制。
channel-moved-needs-keys = 将渠道指向其他主机或更改类型时，需要在同一次修改中重新填写密钥。
channel-moved-needs-headers = 将渠道指向其他主机或更改类型时，需要在同一次修改中重新填写请求头的值。
root-only-change = 只有 root 用户可以修改此项：它包含密钥，或决定密钥发往何处。
password-common = 此密码属于最常见的 10,000 个密码之一，攻击者会最先尝试；请换一个。
key-models-not-served = { $models } 不对分组“{ $group }”提供；请从价格页面选择模型。
key-form-already-sent = 此表单提交了两次：密钥在第一次提交时已创建，其密钥内容已在当时显示。如果没有看到，请删除该密钥后重新创建。
key-form-expired = 此表单已过期，请刷新页面后重试。
