# 控制台的渠道页面，以及渠道服务对多个渠道同时操作时的说明。
admin-channels-enable-needs-keys = 此渠道还没有密钥：请先添加密钥再启用。
admin-channels-batch-refused = 渠道 { $name } 无法接受此更改。
admin-channels-changed-since = 渠道 { $name } 在预览之后已被更改：请重新查看预览。
admin-channels-none-selected = 请至少选择一个渠道。
admin-channels-action-unknown = “{ $value }”不是可用的操作；请从 { $actions } 中选择。
admin-channels-sync-field-unknown = “{ $value }”不是可同步的设置；请从 { $fields } 中选择。
admin-channels-sync-no-fields = 请至少选择一项要复制的设置。
admin-channels-sync-to-itself = 渠道不能同步到它自己。
admin-channels-import-empty = 导入内容中没有渠道。
admin-channels-import-twice = 导入内容中渠道 { $name } 出现了两次。
admin-channels-reason-admin = 由管理员停用。
admin-channels-reason-keys-needed = 需要密钥。
