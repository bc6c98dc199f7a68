# The console's groups, prices, aliases and settings.

## Service messages
price-import-unreadable = The price table could not be read ({ $reason }).
option-money-needs-confirm = This switches on a feature that moves money ({ $features }); confirm it to go ahead.
mail-test-bad-address = '{ $value }' is not an email address.
mail-test-no-server = No mail server is set (smtp_host), so no mail can be sent.
mail-test-subject = { $site }: test email
mail-test-text = This is a test email from { $site }, sent through { $host }. The mail settings work.
stripe-check-no-key = No Stripe secret key is set.
stripe-check-refused = Stripe did not accept the key ({ $reason }).

## Shared by these pages
admin-catalog-cancel = Cancel
admin-catalog-col-actions = Actions
admin-catalog-col-name = Name
admin-catalog-delete = Delete
admin-catalog-delete-yes = Yes, delete
admin-catalog-save = Save

## Groups
admin-groups-intro = A group's ratio multiplies every price for its members and for keys set to it.
admin-groups-all = All groups
admin-group-new = New group
admin-group-create = Create group
admin-group-created = Group { $name } created.
admin-group-saved = Group { $name } saved.
admin-group-deleted = Group { $name } deleted.
admin-group-edit-named = Edit group { $name }
admin-group-delete-confirm = Delete the group { $name }? Only a group without members can be deleted.
admin-group-ratio-of = Ratio of { $name }
admin-group-description-of = Description of { $name }
admin-group-selectable-of = Members of other groups may pick { $name } for a key
admin-field-ratio = Ratio
admin-field-ratio-hint = A multiplier such as 1, 0.8 or 1.5.
admin-field-description = Description
admin-field-user-selectable = Anyone may pick it for a key

## Prices
admin-prices-intro = Prices are in dollars per 1M tokens, or per request. A model without a price of its own is priced from the shipped list prices when the option list_prices is on.
admin-prices-unpriced = Requested but not priced
admin-prices-unpriced-hint = Requests named these models, and none of them has a price: they are refused unless unpriced models are allowed.
admin-prices-all = Prices set
admin-prices-none = No model has a price of its own yet.
admin-price-new = Set a price
admin-price-form-hint = Give the input and output prices, or a price per request alone.
admin-price-set = Set price
admin-price-saved = The price of { $model } is saved.
admin-price-deleted = The price of { $model } is removed.
admin-price-delete-confirm = Remove the price of { $model }?
admin-price-input-of = Input price of { $model }
admin-price-output-of = Output price of { $model }
admin-price-tokens-is = { $input } in / { $output } out per 1M tokens
admin-price-cached-is = { $price } cached input
admin-price-cache-write-is = { $price } cache write
admin-price-per-request-is = { $price } per request
admin-field-model = Model
admin-field-input = Input
admin-field-output = Output
admin-field-cached-input = Cached input
admin-field-cache-write = Cache write
admin-field-per-request = Per request
admin-field-per-request-hint = Dollars per request, instead of token prices.
admin-field-context-tokens = Context window
admin-field-context-tokens-hint = Tokens; empty: the shipped table's, else the option default_context_tokens.

## Price import
admin-import-title = Import prices
admin-import-intro = Paste another gateway's price table: LiteLLM's model_prices JSON, or One API's model ratios (ratio 1 = $2 per 1M input tokens) with its completion ratios. You see what changes before anything is stored.
admin-field-import-format = Format
admin-import-format-litellm = LiteLLM model_prices JSON
admin-import-format-oneapi = One API model ratio and completion ratio
admin-field-import-data = Table (JSON)
admin-field-import-data-hint = For One API: an object with model_ratio and completion_ratio, or the model ratios alone.
admin-import-preview = Preview
admin-import-preview-title = { $count ->
    [one] 1 price would change
   *[other] { $count } prices would change
}
admin-import-apply = { $count ->
    [one] Apply 1 price
   *[other] Apply { $count } prices
}
admin-import-applied = { $count ->
    [one] 1 price imported.
   *[other] { $count } prices imported.
}
admin-import-col-change = Change
admin-import-col-now = Now
admin-import-col-imported = Imported
admin-import-new = New
admin-import-changed = Changed
admin-import-unchanged = Unchanged
admin-import-no-price = No price
admin-import-skipped-title = { $count ->
    [one] 1 entry left out
   *[other] { $count } entries left out
}
admin-import-skip-mode = not priced per token (mode { $detail })
admin-import-skip-no-price = no price in the entry
admin-import-skip-bad-number = not a usable price ({ $detail })
admin-import-skip-bad-name = not a model name Tollgate takes ({ $detail })
admin-import-skip-not-an-entry = not a price entry

## Aliases
admin-aliases-intro = An alias is a name clients may ask for, served and priced as the model it stands for. Aliases do not chain.
admin-aliases-all = All aliases
admin-aliases-none = No aliases yet.
admin-alias-new = New alias
admin-alias-create = Add alias
admin-alias-saved = { $name } now stands for { $to }.
admin-alias-removed = The alias { $name } is removed.
admin-alias-delete-confirm = Remove the alias { $name }?
admin-alias-to-of = Model { $name } stands for
admin-field-alias-name = Alias
admin-field-alias-name-hint = The name clients ask for, e.g. fast.
admin-field-alias-to = Stands for
admin-field-alias-to-hint = The model that serves and prices it.

## Settings
admin-settings-intro = The server's runtime options; a change applies at once.
admin-settings-root-note = Mail, the Stripe keys, the site's address and sign-in providers are root's alone.
admin-settings-sections = Settings sections
admin-settings-site = Site
admin-settings-signup = Sign-up and sign-in
admin-settings-mail = Mail
admin-settings-payments = Payments
admin-settings-routing = Routing and retries
admin-settings-limits = Limits
admin-settings-logs = Logs
admin-settings-monitoring = Monitoring
admin-settings-providers = Sign-in providers
admin-settings-save = Save { $section }
admin-settings-saved = Saved: { $names }.
admin-settings-unchanged = Nothing was changed.
admin-option-default = default { $value }
admin-option-default-empty = empty by default
admin-secret-set = set (not shown)
admin-secret-not-set = not set
admin-secret-clear = Remove the stored value
admin-money-confirm = Confirmation
admin-money-confirm-hint = Switching on payments, invite rewards or a starting balance for new accounts moves money: type confirm to go ahead.
admin-mail-test = Send a test email
admin-field-mail-to = Send to
admin-field-mail-to-hint = The message goes through the mail settings as saved.
admin-mail-test-send = Send test email
admin-mail-test-sent = A test email was handed to the mail server for { $to }.
admin-stripe-check = Check the Stripe key
admin-stripe-check-hint = A read-only call to Stripe with the saved secret key.
admin-stripe-check-run = Check the key
admin-stripe-check-ok = Stripe accepted the key.
admin-providers-intro = People may sign in with these providers. Register the callback URL with the provider.
admin-providers-none = No sign-in providers yet.
admin-provider-new = Add a provider
admin-provider-add = Add provider
admin-provider-added = Provider { $name } added. Register this callback URL with it: { $callback }
admin-provider-removed = Provider { $name } removed.
admin-provider-delete-confirm = Remove the provider { $name }? Accounts linked to it can no longer sign in with it.
admin-provider-col-kind = Type
admin-provider-col-client = Client
admin-provider-col-callback = Callback URL
admin-provider-kind-github = GitHub
admin-provider-kind-oidc = OpenID Connect
admin-provider-callback-hint = Its callback URL will be { $callback }, with NAME its name.
admin-provider-github-enterprise = GitHub Enterprise addresses
admin-field-provider-name-hint = Letters, digits and dashes; part of the callback URL.
admin-field-provider-display-name = Shown as
admin-field-client-id = Client ID
admin-field-client-secret = Client secret
admin-field-issuer = Issuer
admin-field-issuer-hint = OpenID Connect only: the issuer's URL, e.g. https://accounts.google.com.
admin-field-auth-url = Authorization URL
admin-field-token-url = Token URL
admin-field-api-url = API URL

## Option labels
admin-option-quota-per-usd = Quota units per dollar
admin-option-retry-count = Retries on other channels
admin-option-retry-statuses = Statuses that retry
admin-option-cooldown-after-failures = Failures before a cool-down
admin-option-cooldown-secs = Cool-down (seconds)
admin-option-auto-disable-after-failures = Failures before a channel is disabled
admin-option-auto-disable-statuses = Statuses that disable a channel
admin-option-probe-interval-secs = Probe interval (seconds)
admin-option-first-byte-timeout-secs = First byte timeout (seconds)
admin-option-stream-idle-timeout-secs = Stream idle timeout (seconds)
admin-option-redis-outage-mode = While Redis is unreachable (several nodes)
admin-option-default-max-tokens = Default max tokens
admin-option-default-context-tokens = Default context window
admin-option-list-prices = Use the shipped list prices
admin-option-allow-unpriced-models = Allow unpriced models (free)
admin-option-max-request-body-kb = Largest request body (KiB)
admin-option-usage-ceiling-tokens = Usage ceiling (tokens)
admin-option-site-name = Site name
admin-option-public-url = Public address
admin-option-announcement = Announcement
admin-option-registration-enabled = People may sign up
admin-option-new-user-quota-usd = Starting balance (dollars)
admin-option-invite-reward-inviter-usd = Invite reward for the inviter (dollars)
admin-option-invite-reward-invitee-usd = Invite reward for the invitee (dollars)
admin-option-invite-reward-when = When invite rewards are paid
admin-option-max-keys-per-user = Most keys per person
admin-option-low-balance-default-usd = Low balance warning (dollars)
admin-option-email-verification-required = Email must be verified
admin-option-email-domains-allowed = Email domains allowed
admin-option-email-domains-blocked = Email domains blocked
admin-option-signups-per-ip-per-day = Sign-ups per address per day
admin-option-smtp-host = SMTP server
admin-option-smtp-port = SMTP port
admin-option-smtp-security = SMTP security
admin-option-smtp-username = SMTP user name
admin-option-smtp-password = SMTP password
admin-option-timezone = Time zone
admin-option-smtp-from = Sender
admin-option-stripe-secret-key = Stripe secret key
admin-option-stripe-webhook-secret = Stripe webhook signing secret
admin-option-metrics-token = Metrics token (bearer token for /metrics)
admin-option-stripe-api-base = Stripe API address
admin-option-topup-currency = Currency
admin-option-topup-price-per-usd = Price of one dollar of balance
admin-option-topup-min-usd = Smallest top-up (dollars)
admin-option-topup-max-usd = Largest top-up (dollars)
admin-option-topup-presets-usd = Preset amounts (dollars)
admin-option-topup-bonus-tiers = Bonus tiers
admin-option-topup-max-pending-per-user = Unpaid orders per person
admin-option-topup-daily-cap-usd = Daily top-up cap (dollars)
admin-option-topup-checkout-minutes = Checkout page lifetime (minutes)
admin-option-topup-reconcile-after-secs = Ask Stripe about unpaid orders after (seconds)
