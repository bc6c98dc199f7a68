# Rate limits: requests per minute, tokens per minute, requests in flight.

rate-limit-invalid = The value '{ $value }' is not a limit: use a whole number from 1 to 1000000000000, or leave it empty (or none) for no limit.

web-field-rate-limits = Rate limits
web-field-key-rate-limits-hint = Counted over the last minute for this key alone. Leave a field empty for no limit of the key's own: a limit its group sets then applies.
web-field-rpm = Requests per minute
web-field-tpm = Tokens per minute
web-field-max-concurrent = Requests at once
web-rate-rpm = { $count } requests/min
web-rate-tpm = { $count } tokens/min
web-rate-concurrent = { $count } at once
admin-field-group-rate-limits-hint = Each key of the group that sets none of its own gets these, counted per key. Leave a field empty for no limit.
admin-field-user-rate-limits-hint = Counted over all of the account's keys together. Leave a field empty for no limit.
admin-col-rate-limits = Limits per key
