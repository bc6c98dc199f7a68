# The admin console's logs and overview, and the messages of the services behind them.

log-not-found = There is no request log with id { $id }.
