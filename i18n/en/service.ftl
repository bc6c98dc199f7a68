# Messages of the management operations (command line, /api, pages). Arguments are named
# { $like_this }; the field a message belongs to is shown beside it, so messages do not repeat it.

## Values typed by people

field-required = is required
name-empty = must not be empty
name-too-long = must be at most { $max } characters
name-bad-character = '{ $value }' may only contain letters, digits and { $allowed }
decimal-not-a-number = '{ $value }' is not a number (use digits with an optional decimal point, e.g. 0.15)
decimal-too-precise = '{ $value }' has more than { $places } decimal places
decimal-negative = '{ $value }' must not be negative
decimal-too-large = '{ $value }' is too large
amount-too-large = the amount is too large
amount-usd-or-units = give the amount either in dollars (usd) or in quota units (units), not both
balance-out-of-range = this change would carry the balance beyond what can be stored
number-between = must be between { $min } and { $max }
number-at-least = must be at least { $min }
number-at-most = must be at most { $max }
choice-invalid = '{ $value }' is not one of { $choices }
date-invalid = '{ $value }' is not a date (use 2027-01-01 or 2027-01-01T12:00:00Z)
email-invalid = '{ $value }' is not an email address
ip-range-invalid = { $count ->
    [one] { $values } is not an IP address or CIDR range (e.g. 10.0.0.0/8 or 203.0.113.7)
   *[other] { $values } are not IP addresses or CIDR ranges (e.g. 10.0.0.0/8 or 203.0.113.7)
}
url-invalid = '{ $value }' is not a URL (e.g. https://api.openai.com/v1)
url-not-http = '{ $value }' must be an http:// or https:// URL
url-has-query = the base URL must not have a query or fragment
url-azure-query = the base URL may carry only '?api-version=…' (e.g. https://NAME.openai.azure.com?api-version=2024-10-21)
url-vertex-invalid = not a Vertex AI base URL: { $reason }
file-unreadable = cannot read { $path }: { $reason }

## Users and passwords

user-not-found = there is no user named '{ $name }'
user-id-not-found = there is no user with id { $id }
user-exists = a user named '{ $name }' already exists
user-disabled = '{ $name }' is disabled
email-taken = another user already has that email
password-too-short = the password must be at least { $min } characters long
password-too-long = the password must be at most { $max } characters long
password-hashing-failed = the password could not be hashed

## API keys and admin tokens

key-not-found = there is no API key with id { $id }
key-cap-reached = you have the most keys allowed ({ $max }); delete one to make another
key-group-unavailable = the group '{ $group }' does not exist or is not one you can choose
key-quota-and-unlimited = a key cannot have a quota and be unlimited
key-budget-needs-period = choose how often the budget starts over (daily, weekly or monthly), or leave the amount empty
key-budget-needs-amount = give the amount the key may spend each period, more than $0
expiry-in-the-past = the expiry is in the past
admin-token-needs-admin = '{ $name }' is a { $role } account; only admin and root users get admin tokens
admin-token-not-found = there is no admin token with id { $id }

## Groups

group-not-found = there is no group named '{ $name }'
group-unknown = there is no group named '{ $name }' (existing: { $existing }; create it with `tollgate group create { $name }`)
group-exists = a group named '{ $name }' already exists
group-default-undeletable = the 'default' group cannot be deleted: new users join it
group-has-users = the group '{ $name }' still has { $count } user(s); move them to another group first

## Channels

channel-not-found = there is no channel named '{ $name }'
channel-id-not-found = there is no channel with id { $id }
channel-exists = a channel named '{ $name }' already exists
channel-type-unknown = '{ $value }' is not a supported channel type (types: { $types }; OpenAI-compatible vendors: { $presets })
channel-key-missing = give at least one upstream key
channel-key-spaces = an upstream key contains spaces or control characters
channel-key-unusable = an upstream key cannot be used: { $reason }
channel-models-empty = list at least one model the channel serves
channel-groups-empty = list at least one group
channel-timeout-range = must be between 0 (the server's default) and 3600
channel-status-invalid = '{ $value }' is not a status an admin can set (use enabled or disabled)
channel-test-needs-model = the channel lists no model by name (only patterns); name one to test
model-map-pair-invalid = '{ $value }' is not requested=upstream
model-not-in-url = '{ $model }' cannot be part of the upstream's URL
header-name-invalid = '{ $name }' is not a valid header name
header-reserved = '{ $name }' is set by Tollgate and cannot be overridden
header-value-invalid = the value of '{ $name }' is not a valid header value
header-line-invalid = '{ $value }' is not 'Name: value'
vertex-has-no-model-list = Vertex AI has no list of the models a project may call; give the channel's models yourself
upstream-request-failed = the request to the upstream could not be built: { $reason }
upstream-unreachable = the upstream could not be reached: { $reason }
upstream-answered-error = the upstream answered HTTP { $status }: { $reason }
upstream-model-list-not-json = the upstream's model list is not JSON

## Prices and model aliases

price-not-found = the model '{ $model }' has no price
price-too-large = must be at most $100,000
price-missing = give the input and output prices (dollars per 1M tokens) or a per-request price
price-output-missing = give the output price too (dollars per 1M tokens)
price-per-request-and-tokens = a per-request price replaces token prices; do not give both
alias-not-found = there is no model alias named '{ $name }'
alias-exists = the alias '{ $name }' exists already; remove it first to point it elsewhere
alias-points-at-itself = an alias cannot point at itself
alias-target-is-alias = '{ $target }' is itself an alias (of '{ $model }'); point at that model instead, aliases do not chain
alias-name-is-target = the alias '{ $alias }' points at '{ $name }'; an alias cannot be the target of another

## Runtime options

option-unknown = there is no option named '{ $name }' (known: { $known })
option-not-a-number = '{ $value }' is not a whole number
option-not-a-bool = '{ $value }' is not true or false
option-not-a-status = '{ $value }' is not an HTTP status code (100-599)
option-not-a-url = '{ $value }' is not an absolute http:// or https:// address
option-range-backwards = the range '{ $value }' is backwards
option-one-of = '{ $value }' is not one of: { $choices }
option-not-a-zone = '{ $value }' is not a time zone name (like UTC or Asia/Shanghai)
option-not-a-host = '{ $value }' is not a host name (no scheme, no port)
option-not-a-sender = '{ $value }' is not an email address (a@example.com or Name <a@example.com>)
option-verification-needs-smtp = email verification needs a mail server: set smtp_host (and smtp_from) first

## Balance changes

idempotency-key-reused = this idempotency key was used for a different change; use a new key for a new change

## Permissions

admins-only = only admins may do this
root-only = only the root user may make or change admin accounts

## Accounts

password-mismatch = the two passwords differ
registration-closed = New accounts cannot be created here right now.
sign-in-failed = the username, email or password is wrong
account-disabled = This account is disabled.
oauth-discovery-failed = the provider's discovery document could not be read: { $reason }
oauth-provider-exists = there is already a sign-in provider named '{ $name }'
oauth-provider-not-found = there is no sign-in provider named '{ $name }'
oauth-identity-taken = This { $provider } account is already linked to another account here.
oauth-email-has-account = An account here already uses the email address of this { $provider } account. Sign in to it with your password, then link { $provider } on your profile.
oauth-needs-verified-email = This site needs a verified email address, and { $provider } did not give one. Verify your address there, or register with your email here.
oauth-last-way-in = This is the only way to sign in to your account: set a password first, then unlink it.
oauth-identity-not-found = That linked account was not found.
code-count-range = make between 1 and { $max } codes at a time
code-amount-positive = a code must be worth more than $0
code-uses-range = a code may be used between 1 and { $max } times
code-disable-what = name a code by its id, or a batch by its name
redeem-unknown = This code does not exist. Check that it was copied whole.
redeem-used = This code has been used up.
redeem-disabled = This code has been disabled by the site.
redeem-expired = This code has expired.
redeem-already-redeemed = You have already redeemed this code.
invite-code-unavailable = no free invite code could be drawn; try again
setup-link-spent = This setup link does not work: the site is set up already, or the server has started since and printed a new link.
password-wrong = this is not your current password
account-delete-confirm = type your username exactly to confirm
account-delete-root = The root account cannot be deleted here.

# Email: verification codes and password reset links
email-domain-refused = addresses at { $domain } cannot register here
email-already-verified = this address is already verified
mail-not-configured = this site does not send email yet; ask its administrator
mail-failed = the email could not be sent ({ $reason }); try again later or ask the administrator
code-resend-wait = a code was sent just now; you can ask for another in { $seconds } s
code-expired = this code has expired or was replaced by a newer one; ask for a new code
code-too-many-tries = too many wrong tries for this code; ask for a new code
code-wrong = that code is not right ({ $left } tries left)
reset-link-spent = this reset link has expired or was already used; ask for a new one
mail-verify-subject = { $code } is your { $site } code
mail-verify-text =
    Hello { $name },

    Your { $site } verification code is: { $code }

    Or open this link: { $link }

    The code works for { $minutes } minutes. If you did not ask for it, ignore this email.
mail-reset-subject = Set a new { $site } password
mail-reset-text =
    Hello { $name },

    Someone (hopefully you) asked to set a new password for your { $site } account.
    Choose it here: { $link }

    The link works once, for { $minutes } minutes. If you did not ask for it, ignore this
    email: your password stays as it is.
mail-low-balance-subject = Your { $site } balance is low: { $balance }
mail-low-balance-text =
    Hello { $name },

    Your { $site } balance is { $balance }, below your warning line of { $line }.
    When it runs out, requests with your keys are refused.

    Add balance here: { $link }

    This is the only email until your balance is back above the line. You can change the line
    on your profile.

# Stripe top-ups
option-not-a-currency = '{ $value }' is not a three-letter currency code (like usd, eur, cny, jpy)
option-bad-list-item = '{ $value }' is not a valid entry here
amount-positive = the amount must be more than 0
topup-off = card top-ups are not available on this site
topup-form-expired = this payment form is out of date; open the top-up again
topup-amount-range = enter an amount between { $min } and { $max }
topup-price-too-large = that is more than one card payment can be; choose a smaller amount
topup-price-too-small = that amount is too small to pay by card; choose a larger one
topup-too-many-pending = you have { $max } unpaid top-ups open; pay or wait for one to expire first
topup-daily-cap = top-ups are limited to { $cap } a day; { $left } is left today
topup-stripe-refused = Stripe refused the payment: { $message }
topup-stripe-unreachable = Stripe could not be reached just now; nothing was charged, please try again in a minute
order-not-found = there is no such order
order-not-held = only a held order can be credited by hand; this one is { $status }
order-not-paid = this order has no paid payment to refund
order-refund-range = a refund is between $0 and { $max } of the order's balance
order-refund-left = only { $left } of this payment is left to refund
mail-receipt-subject = { $site } receipt: { $credited } added to your balance
mail-receipt-text =
    Hello { $name },

    Thank you for your payment of { $paid } (order { $order }).
    { $credited } was added to your { $site } balance, which is now { $balance }.

    The order: { $link }
option-topup-bounds-backwards = topup_min_usd must not be more than topup_max_usd
order-held-refunded = this payment was refunded or disputed on Stripe; it cannot be credited
order-dispute-unknown = Stripe closed a dispute whose opening has not been applied yet; it will be delivered again
option-not-a-secret = a key is letters, digits and symbols without spaces; check what was pasted
code-shape = a code is { $digits } digits; check what was typed (this did not count as a try)
reauth-needed = enter your current password to change this (or sign in again)
reauth-through-provider = sign in again with your sign-in provider, then make this change within 10 minutes
session-not-found = there is no such session of yours
own-account-only = this is done by a person signed in to their own account
redeem-shape = A code starts with { $prefix } followed by 48 letters and digits. Check that it was copied whole.
channel-moved-needs-keys = a channel pointed at another host or given another type needs its keys again in the same change
channel-moved-needs-headers = a channel pointed at another host or given another type needs its header values again in the same change
root-only-change = only the root user may change this: it holds a secret or decides where one is sent
password-common = this password is one of the 10,000 most common, which attackers try first; choose another
key-models-not-served = { $count ->
    [one] { $models } is not served to the group '{ $group }'; pick a model from the pricing page
   *[other] { $models } are not served to the group '{ $group }'; pick models from the pricing page
}
key-form-already-sent = This form was sent twice: the key was made the first time, and its secret was shown then. If you did not see it, delete that key and make a new one.
key-form-expired = This form has expired. Reload the page and try again.
