# Messages of the management operations (command line, /api, pages). Arguments are named
# { $like_this }; the field a message belongs to is shown beside it, so messages do not repeat it.
# Every message is a sentence: a capital letter first, a full stop last (mail subjects and
# bodies excepted).

## Values typed by people

field-required = This is required.
name-empty = This must not be empty.
name-too-long = Use at most { $max } characters.
name-bad-character = Use only letters, digits and { $allowed } ('{ $value }' has other characters).
decimal-not-a-number = The value '{ $value }' is not a number: use digits with an optional decimal point, e.g. 0.15.
decimal-too-precise = The value '{ $value }' has more than { $places } decimal places.
decimal-negative = The value '{ $value }' must not be negative.
decimal-too-large = The value '{ $value }' is too large.
amount-too-large = The amount is too large.
amount-usd-or-units = Give the amount either in dollars (usd) or in quota units (units), not both.
balance-out-of-range = This change would carry the balance beyond what can be stored.
balance-reason-needed = Say why the balance changes: the reason is kept in the ledger and the audit log.
number-between = Use a number between { $min } and { $max }.
number-at-least = Use a number of at least { $min }.
number-at-most = Use a number of at most { $max }.
choice-invalid = The value '{ $value }' is not one of { $choices }.
date-invalid = The value '{ $value }' is not a date: use 2027-01-01 or 2027-01-01T12:00:00Z.
email-invalid = The address '{ $value }' is not an email address.
ip-range-invalid = { $count ->
    [one] This is not an IP address or CIDR range: { $values } (use e.g. 10.0.0.0/8 or 203.0.113.7).
   *[other] These are not IP addresses or CIDR ranges: { $values } (use e.g. 10.0.0.0/8 or 203.0.113.7).
}
url-invalid = The value '{ $value }' is not a URL (e.g. https://api.openai.com/v1).
url-not-http = The URL '{ $value }' must begin with http:// or https://.
url-has-query = The base URL must not have a query or fragment.
url-azure-query = The base URL may carry only '?api-version=…' (e.g. https://NAME.openai.azure.com?api-version=2024-10-21).
url-vertex-invalid = This is not a Vertex AI base URL ({ $reason }).
file-unreadable = The file { $path } cannot be read ({ $reason }).

## Users and passwords

user-not-found = There is no user named '{ $name }'.
user-id-not-found = There is no user with id { $id }.
user-exists = A user named '{ $name }' already exists.
user-disabled = The user '{ $name }' is disabled.
email-taken = Another user already has that email.
password-too-short = The password must be at least { $min } characters long.
password-too-long = The password must be at most { $max } characters long.
password-hashing-failed = The password could not be hashed.

## API keys and admin tokens

key-not-found = There is no API key with id { $id }.
key-cap-reached = You have the most keys allowed ({ $max }). Delete one to make another.
key-group-unavailable = The group '{ $group }' does not exist or is not one you can choose.
key-quota-and-unlimited = A key cannot have a quota and be unlimited.
key-budget-needs-period = Choose how often the budget starts over (daily, weekly, monthly or quarterly), or leave the amount empty.
key-budget-needs-amount = Give the amount the key may spend each period, more than $0.
expiry-in-the-past = The expiry is in the past.
admin-token-needs-admin = The account '{ $name }' is a { $role } account; only admin and root users get admin tokens.
admin-token-not-found = There is no admin token with id { $id }.

## Groups

group-not-found = There is no group named '{ $name }'.
group-unknown = There is no group named '{ $name }' (existing: { $existing }; create it with `tollgate group create { $name }`).
group-exists = A group named '{ $name }' already exists.
group-default-undeletable = The 'default' group cannot be deleted: new users join it.
group-has-users = The group '{ $name }' still has { $count } user(s). Move them to another group first.

## Channels

channel-not-found = There is no channel named '{ $name }'.
channel-id-not-found = There is no channel with id { $id }.
channel-exists = A channel named '{ $name }' already exists.
channel-type-unknown = The type '{ $value }' is not a supported channel type (types: { $types }; OpenAI-compatible vendors: { $presets }).
channel-key-missing = Give at least one upstream key.
channel-key-spaces = An upstream key contains spaces or control characters.
channel-key-unusable = An upstream key cannot be used ({ $reason }).
channel-models-empty = List at least one model the channel serves.
channel-groups-empty = List at least one group.
channel-timeout-range = Use a number between 0 (the server's default) and 3600.
channel-status-invalid = The status '{ $value }' is not one an admin can set: use enabled or disabled.
channel-test-needs-model = The channel lists no model by name (only patterns). Name one to test.
model-map-pair-invalid = The pair '{ $value }' is not requested=upstream.
model-not-in-url = The model '{ $model }' cannot be part of the upstream's URL.
header-name-invalid = The name '{ $name }' is not a valid header name.
header-reserved = The header '{ $name }' is set by Tollgate and cannot be overridden.
header-value-invalid = The value of '{ $name }' is not a valid header value.
header-line-invalid = The line '{ $value }' is not 'Name: value'.
vertex-has-no-model-list = Vertex AI has no list of the models a project may call. Give the channel's models yourself.
upstream-request-failed = The request to the upstream could not be built ({ $reason }).
upstream-unreachable = The upstream could not be reached ({ $reason }).
upstream-answered-error = The upstream answered HTTP { $status } ({ $reason }).
upstream-model-list-not-json = The upstream's model list is not JSON.

## Prices and model aliases

price-not-found = The model '{ $model }' has no price.
price-too-large = Use a price of at most $100,000.
price-missing = Give the input and output prices (dollars per 1M tokens) or a per-request price.
price-output-missing = Give the output price too (dollars per 1M tokens).
price-per-request-and-tokens = A per-request price replaces token prices; do not give both.
alias-not-found = There is no model alias named '{ $name }'.
alias-exists = The alias '{ $name }' exists already. Remove it first to point it elsewhere.
alias-points-at-itself = An alias cannot point at itself.
alias-target-is-alias = The model '{ $target }' is itself an alias (of '{ $model }'). Point at that model instead: aliases do not chain.
alias-name-is-target = The alias '{ $alias }' points at '{ $name }'; an alias cannot be the target of another.

## Runtime options

option-unknown = There is no option named '{ $name }' (known: { $known }).
option-not-a-number = The value '{ $value }' is not a whole number.
option-not-a-bool = The value '{ $value }' is not true or false.
option-not-a-status = The value '{ $value }' is not an HTTP status code (100-599).
option-not-a-url = The value '{ $value }' is not an absolute http:// or https:// address.
option-range-backwards = The range '{ $value }' is backwards.
option-one-of = The value '{ $value }' is not one of: { $choices }.
option-not-a-zone = The value '{ $value }' is not a time zone name (like UTC or Asia/Shanghai).
option-not-a-host = The value '{ $value }' is not a host name (no scheme, no port).
option-not-a-sender = The value '{ $value }' is not an email address (a@example.com or Name <a@example.com>).
option-verification-needs-smtp = Email verification needs a mail server: set smtp_host (and smtp_from) first.

## Balance changes

idempotency-key-reused = This idempotency key was used for a different change. Use a new key for a new change.

## Permissions

admins-only = Only admins may do this.
root-only = Only the root user may make or change admin accounts.

## Accounts

password-mismatch = The two passwords differ.
registration-closed = New accounts cannot be created here right now.
sign-in-failed = The username, email or password is wrong.
account-disabled = This account is disabled.
oauth-discovery-failed = The provider's discovery document could not be read ({ $reason }).
oauth-provider-exists = There is already a sign-in provider named '{ $name }'.
oauth-provider-not-found = There is no sign-in provider named '{ $name }'.
oauth-identity-taken = This { $provider } account is already linked to another account here.
oauth-email-has-account = An account here already uses the email address of this { $provider } account. Sign in to it with your password, then link { $provider } on your profile.
oauth-needs-verified-email = This site needs a verified email address, and { $provider } did not give one. Verify your address there, or register with your email here.
oauth-last-way-in = This is the only way to sign in to your account: set a password first, then unlink it.
oauth-identity-not-found = That linked account was not found.
code-count-range = Make between 1 and { $max } codes at a time.
code-amount-positive = A code must be worth more than $0.
code-uses-range = A code may be used between 1 and { $max } times.
code-disable-what = Name a code by its id, or a batch by its name.
code-not-found = There is no code with that id.
redeem-unknown = This code does not exist. Check that it was copied whole.
redeem-used = This code has been used up.
redeem-disabled = This code has been disabled by the site.
redeem-expired = This code has expired.
redeem-already-redeemed = You have already redeemed this code.
invite-code-unavailable = No free invite code could be drawn. Try again.
setup-link-spent = This setup link does not work: the site is set up already, or the server has started since and printed a new link.
password-wrong = This is not your current password.
account-delete-confirm = Type your username exactly to confirm.
account-delete-root = The root account cannot be deleted here.

# Email: verification codes and password reset links
email-domain-refused = Addresses at { $domain } cannot register here.
email-already-verified = This address is already verified.
mail-not-configured = This site does not send email yet. Ask its administrator.
mail-failed = The email could not be sent ({ $reason }). Try again later or ask the administrator.
code-resend-wait = A code was sent just now. You can ask for another in { $seconds } s.
code-expired = This code has expired or was replaced by a newer one. Ask for a new code.
code-too-many-tries = There were too many wrong tries for this code. Ask for a new code.
code-wrong = That code is not right ({ $left } tries left).
reset-link-spent = This reset link has expired or was already used. Ask for a new one.
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
option-not-a-currency = The value '{ $value }' is not a three-letter currency code (like usd, eur, cny, jpy).
option-bad-list-item = The entry '{ $value }' is not valid here.
amount-positive = The amount must be more than 0.
topup-off = Card top-ups are not available on this site.
topup-form-expired = This payment form is out of date. Open the top-up again.
topup-amount-range = Enter an amount between { $min } and { $max }.
topup-price-too-large = That is more than one card payment can be. Choose a smaller amount.
topup-price-too-small = That amount is too small to pay by card. Choose a larger one.
topup-too-many-pending = You have { $max } unpaid top-ups open. Pay or wait for one to expire first.
topup-daily-cap = Top-ups are limited to { $cap } a day; { $left } is left today.
topup-stripe-refused = Stripe refused the payment ({ $message }).
topup-stripe-unreachable = Stripe could not be reached just now. Nothing was charged; please try again in a minute.
order-not-found = There is no such order.
order-not-held = Only a held order can be credited by hand; this one is { $status }.
order-not-paid = This order has no paid payment to refund.
order-refund-range = A refund is between $0 and { $max } of the order's balance.
order-refund-left = Only { $left } of this payment is left to refund.
mail-receipt-subject = { $site } receipt: { $credited } added to your balance
mail-receipt-text =
    Hello { $name },

    Thank you for your payment of { $paid } (order { $order }).
    { $credited } was added to your { $site } balance, which is now { $balance }.

    The order: { $link }
option-topup-bounds-backwards = The option topup_min_usd must not be more than topup_max_usd.
order-held-refunded = This payment was refunded or disputed on Stripe; it cannot be credited.
order-dispute-unknown = Stripe closed a dispute whose opening has not been applied yet; it will be delivered again.
option-not-a-secret = A key is letters, digits and symbols without spaces. Check what was pasted.
code-shape = A code is { $digits } digits. Check what was typed (this did not count as a try).
reauth-needed = Enter your current password to change this (or sign in again).
reauth-through-provider = Sign in again with your sign-in provider, then make this change within 10 minutes.
session-not-found = There is no such session of yours.
own-account-only = This is done by a person signed in to their own account.
redeem-shape = A code starts with { $prefix } followed by 48 letters and digits. Check that it was copied whole.
channel-moved-needs-keys = A channel pointed at another host or given another type needs its keys again in the same change.
channel-moved-needs-headers = A channel pointed at another host or given another type needs its header values again in the same change.
root-only-change = Only the root user may change this: it holds a secret or decides where one is sent.
password-common = This password is one of the 10,000 most common, which attackers try first. Choose another.
key-models-not-served = { $count ->
    [one] The model { $models } is not served to the group '{ $group }'. Pick a model from the pricing page.
   *[other] The models { $models } are not served to the group '{ $group }'. Pick models from the pricing page.
}
key-form-already-sent = This form was sent twice: the key was made the first time, and its secret was shown then. If you did not see it, delete that key and make a new one.
key-form-expired = This form has expired. Reload the page and try again.
