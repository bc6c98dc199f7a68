# The admin console: what every console page shares.
admin-console = Console
admin-nav-label = Console sections
admin-nav-overview = Overview
admin-nav-channels = Channels
admin-nav-users = Users
admin-nav-groups = Groups
admin-nav-prices = Prices
admin-nav-aliases = Aliases
admin-nav-codes = Codes
admin-nav-orders = Orders
admin-nav-logs = Logs
admin-nav-audit = Audit log
admin-nav-tokens = Admin tokens
admin-nav-settings = Settings
web-nav-console = Console
