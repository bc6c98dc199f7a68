# 速率限制：每分钟请求数、每分钟令牌数、同时进行的请求数。

rate-limit-invalid = “{ $value }”不是有效的限制：请填 1 到 1000000000000 之间的整数，或留空（或填 none）表示不限。

web-field-rate-limits = 速率限制
web-field-key-rate-limits-hint = 按最近一分钟计算，只计这个密钥。留空表示密钥本身不设限制：此时适用其分组设置的限制。
web-field-rpm = 每分钟请求数
web-field-tpm = 每分钟令牌数
web-field-max-concurrent = 同时进行的请求数
web-rate-rpm = 每分钟 { $count } 次请求
web-rate-tpm = 每分钟 { $count } 个令牌
web-rate-concurrent = 同时 { $count } 个
admin-field-group-rate-limits-hint = 分组中未自行设置限制的每个密钥都使用这些限制，按密钥分别计算。留空表示不限。
admin-field-user-rate-limits-hint = 按该账户所有密钥合计。留空表示不限。
admin-col-rate-limits = 每个密钥的限制
