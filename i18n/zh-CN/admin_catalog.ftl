# 控制台的分组、价格、别名与设置。

## 服务消息
price-import-unreadable = 无法读取价格表（{ $reason }）。
option-money-needs-confirm = 此更改会开启涉及资金的功能（{ $features }）；请确认后再继续。
mail-test-bad-address = “{ $value }”不是电子邮件地址。
mail-test-no-server = 尚未设置邮件服务器（smtp_host），无法发送邮件。
mail-test-subject = { $site }：测试邮件
mail-test-text = 这是一封来自 { $site } 的测试邮件，经由 { $host } 发送。邮件设置可以正常工作。
stripe-check-no-key = 尚未设置 Stripe 密钥。
stripe-check-refused = Stripe 未接受该密钥（{ $reason }）。
