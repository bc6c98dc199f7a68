# The admin console's logs and overview, and the messages of the services behind them.

log-not-found = There is no request log with id { $id }.

admin-logs-title = Request logs
admin-logs-user = User
admin-logs-key = Key number
admin-logs-key-hint = The key's number, as the keys list shows it.
admin-logs-channel = Channel
admin-logs-no-channel = None (refused)
admin-logs-time-hint = A date such as 2027-01-31, or an instant such as 2027-01-31T08:00:00Z.
admin-logs-default-range = Showing the last 30 days; set From to see older requests.
admin-logs-bad-time = Use a date such as 2027-01-31 or an instant such as 2027-01-31T08:00:00Z.
admin-logs-bad-number = Use a number.
admin-logs-bad-cursor = This page link is not valid; start again from the newest requests.
admin-logs-bad-order = Choose an end after the start.
admin-logs-asked-for = asked for { $model }
admin-logs-first-token = first token { $ttft }
admin-log-title = Request
admin-log-back = ← All requests
admin-log-request-id = Request ID
admin-log-group = Group
admin-log-endpoint = Endpoint
admin-log-requested-model = Requested model
admin-log-served-model = Served model
admin-log-attempts = Channels tried
admin-log-cached = { $count } cached
admin-log-estimated = counted locally
admin-log-ttft = Time to first token
admin-log-not-streamed = not streamed
admin-log-upstream-id = Upstream request ID
admin-log-reason = Why it ended so
admin-log-implausible = Usage reported beyond bounds
admin-log-client = Client address
