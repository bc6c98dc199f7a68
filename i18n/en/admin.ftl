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

# The audit log page.
admin-audit-lead = Every change an administrator, root, the command line or an admin token made, newest first. Each row is chained to the one before it; tollgate audit verify checks the chain.
admin-audit-filters = Filter the audit log
admin-audit-actor = Who
admin-audit-actor-hint = An administrator's username, or cli.
admin-audit-action = Action
admin-audit-action-hint = For example channel.update, user.balance or option.set.
admin-audit-target = Target
admin-audit-target-hint = For example channel:12, user:alice or org:3 (with its teams).
admin-audit-from = From
admin-audit-to = To
admin-audit-time-hint = A date such as 2026-12-01, or a time such as 2026-12-01T09:30:00+08:00.
admin-audit-apply = Show
admin-audit-clear = Clear the filters
admin-audit-export = Download as JSON lines
admin-audit-none = No change matches these filters.
admin-audit-id = Row
admin-audit-change = Change
admin-audit-before = Before
admin-audit-after = After
admin-audit-ledger = Ledger row
admin-audit-older = Older changes
filter-time-invalid = The value '{ $value }' is not a date or a time: use 2026-12-01 or 2026-12-01T09:30:00+08:00.
filter-limit-range = Ask for between 1 and { $max } rows.

# Proving it is you again before a sensitive change.
admin-reauth-title = Confirm it is you
admin-reauth-lead = This change needs a sign-in within the last 10 minutes. Enter your password again; what you typed in the form is kept.
admin-reauth-confirm = Confirm
admin-reauth-or-provider = Or sign in again with your provider:
admin-reauth-provider = Sign in again with your provider:
admin-resume-title = Send your change
admin-resume-lead = You are signed in again. This is what you typed; send it to make the change.
admin-resume-send = Send the change
admin-resume-cancel = Cancel
admin-resume-empty = (empty)

# Settings: how long logs are kept.
admin-option-log-retention-days = Keep request logs for (days, 0 = forever)
admin-option-audit-retention-days = Keep the audit log for (days, 0 = forever)
