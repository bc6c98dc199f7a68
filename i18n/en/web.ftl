## The portal's pages. Service messages live in service.ftl.

web-skip-to-content = Skip to content
web-nav-label = Main
web-nav-dashboard = Dashboard
web-nav-keys = API keys
web-nav-sign-in = Sign in
web-nav-sign-out = Sign out
web-nav-register = Create account
web-other-language = 中文

web-error-title = Something went wrong
web-error-home = Back to the home page
web-not-found = This page does not exist.
web-internal-error = The server could not complete this. Please try again; if it keeps happening, tell the operator.
web-form-expired = This form has expired or did not come from this site. Go back, reload the page and try again.
web-form-too-large = The form is too large.
web-form-unreadable = The form could not be read.
web-too-many-attempts = Too many attempts. Wait a few minutes and try again.

web-home-lead = One API key for many AI models. Pay for what you use, down to the token.
web-home-open-dashboard = Open your dashboard
web-home-one-endpoint = One endpoint
web-home-one-endpoint-text = OpenAI- and Anthropic-compatible: point your SDK or Claude Code at this site.
web-home-own-keys = Your own keys
web-home-own-keys-text = Make as many keys as you need, each with its own limit, expiry and allowed models.
web-home-exact-billing = Exact billing
web-home-exact-billing-text = Every request is logged with its tokens and its cost, so you always know where your balance went.

web-sign-in-title = Sign in
web-sign-in-submit = Sign in
web-sign-in-no-account = No account yet?
web-register-title = Create your account
web-register-submit = Create account
web-register-have-account = Already have an account?
web-welcome = Welcome, { $name }! Make an API key to start.
web-setup-title = Set up { $site }
web-setup-lead = No administrator exists yet. Create the root account: it manages this site, its channels, prices and users.
web-setup-submit = Create the root account

web-field-login = Username or email
web-field-password = Password
web-field-password-hint = At least 8 characters.
web-field-password-confirm = Repeat the password
web-field-username = Username
web-field-username-hint = Letters, digits, _ - and . (up to 32).
web-field-email = Email
web-field-email-optional = Email (optional)

web-dashboard-summary = Summary
web-dashboard-balance = Balance
web-dashboard-spent = Spent so far
web-dashboard-requests = Requests
web-dashboard-recent = Recent requests
web-dashboard-no-requests = No requests yet.
web-onboarding-title = Get started
web-onboarding-make-key = Make an API key
web-onboarding-call = Call the API with it, as you would call OpenAI:

web-col-time = Time
web-col-model = Model
web-col-key = Key
web-col-tokens = Tokens (in / out)
web-col-cost = Cost
web-col-outcome = Outcome
web-col-name = Name
web-col-spent = Spent
web-col-limit = Limit left
web-col-expires = Expires
web-col-last-used = Last used
web-col-status = Status
web-col-actions = Actions

web-outcome-success = Success
web-outcome-client-closed = Client left
web-outcome-stream-error = Stream broke
web-outcome-upstream-error = Upstream failed
web-outcome-refused = Refused

web-keys-yours = Your keys
web-keys-none = You have no API keys yet.
web-key-new = New key
web-key-create = Create key
web-key-created = Your new key
web-key-shown-once = Copy it now: it is shown only this once. If you lose it, delete it and make another.
web-key-no-limit = No own limit
web-key-active = Active
web-key-off = Disabled
web-key-disable = Disable
web-key-enable = Enable
web-key-delete = Delete…
web-key-delete-confirm = Delete the key “{ $name }”? Programs using it stop working at once.
web-key-delete-yes = Delete the key
web-key-disabled = The key is disabled.
web-key-enabled = The key is enabled again.
web-key-deleted = The key is deleted.
web-key-cap = You have the most keys allowed ({ $max }). Delete one to make another.
web-field-key-name = Name
web-field-key-limit = Spending limit in dollars (optional)
web-field-key-limit-hint = Leave empty to let the key spend up to your balance.
web-field-key-expires = Expires on (optional)
web-field-key-models = Allowed models (optional)
web-field-key-models-hint = Comma-separated, e.g. gpt-4o-mini, claude-sonnet-4-5. Empty allows every model you can use.
web-field-key-ips = Allowed IP addresses (optional)
web-field-key-ips-hint = Comma-separated addresses or ranges, e.g. 203.0.113.7, 10.0.0.0/8. Empty allows any.

web-nav-logs = Usage
web-nav-wallet = Wallet
web-nav-pricing = Pricing
web-nav-docs = Docs

web-logs-filters = Filters
web-logs-from = From
web-logs-to = To
web-logs-any = Any
web-logs-apply = Apply
web-logs-csv = Download CSV
web-logs-totals = Matching
web-logs-requests = requests
web-logs-tokens = tokens in / out
web-logs-none = No requests match.
web-logs-older = Older requests →
web-logs-bad-filter = The filter “{ $field }” is not valid.

web-pricing-lead = What each model costs, in US dollars per million tokens (or per request).
web-pricing-ratio = Your group's prices are the list prices × { $ratio }; shown here already applied.
web-pricing-none = No models are available yet.
web-pricing-input = Input / 1M
web-pricing-cached = Cached input / 1M
web-pricing-output = Output / 1M
web-pricing-per-request = Per request
web-pricing-group = Prices for the group “{ $group }”.

web-docs-lead = This site speaks the OpenAI API (and Anthropic's Messages API): use any SDK or tool that lets you set a base URL, with a key from the API keys page.
web-docs-base-url = Base URL:
web-docs-claude-code = Claude Code: point it at this site and give it one of your keys.
web-docs-more = Which models and at what price:

web-wallet-history = History
web-wallet-history-hint = Every change to your balance besides what your requests spend.
web-wallet-none = No changes yet.
web-wallet-kind = Kind
web-wallet-amount = Amount
web-wallet-reason = Note
web-ledger-opening = Opening balance
web-ledger-grant = Starting balance
web-ledger-adjustment = Adjustment
