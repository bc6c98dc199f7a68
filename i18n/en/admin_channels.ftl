# The console's channels pages, and what the channel services say of many channels at once.
admin-channels-enable-needs-keys = This channel has no keys yet: add its keys before enabling it.
admin-channels-batch-refused = Channel { $name } cannot take this change.
admin-channels-changed-since = Channel { $name } changed since the preview: look at the preview again.
admin-channels-none-selected = Select at least one channel.
admin-channels-action-unknown = '{ $value }' is not an action; choose one of { $actions }.
admin-channels-sync-field-unknown = '{ $value }' is not a setting a sync copies; choose among { $fields }.
admin-channels-sync-no-fields = Choose at least one setting to copy.
admin-channels-sync-to-itself = A channel cannot be copied onto itself.
admin-channels-import-empty = The import holds no channels.
admin-channels-import-twice = Channel { $name } is named twice in the import.
admin-channels-reason-admin = Disabled by an administrator.
admin-channels-reason-keys-needed = Keys needed.
