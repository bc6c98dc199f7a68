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
web-error-dashboard = Back to your dashboard
web-error-title-too-many = Too many attempts
web-error-title-forbidden = Not allowed
web-error-title-not-found = Page not found
web-wrong-method = This address does not take that kind of request. Go back and use the page's links and buttons.
web-not-found = This page does not exist. Check the address, or carry on from the links at the top of the page.
web-internal-error = The server could not complete this. Please try again; if it keeps happening, tell the operator.
web-form-expired = This form has expired or did not come from this site. Go back, reload the page and try again.
web-form-too-large = The form is too large.
web-form-too-slow = The form arrived too slowly; send it again.
web-form-unreadable = The form could not be read.
web-too-many-attempts = Too many attempts. Wait a few minutes and try again.
web-copy = Copy
web-copied = Copied
web-oauth-or = Or continue with:
web-oauth-continue = Continue with { $provider }
web-oauth-stale = This sign-in attempt is not valid any more (it was used, expired after ten minutes, or began in another browser). Start again from the sign-in page.
web-oauth-declined = The provider did not sign you in ({ $reason }).
web-oauth-failed = Signing in with { $provider } did not work: the provider's answer could not be checked. Try again, or sign in with your password.
web-oauth-linked = { $provider } is now linked: you can sign in with it.
web-oauth-unlinked = The account is unlinked.
web-profile-identities = Sign-in providers
web-profile-identities-none = No provider is linked to your account.
web-profile-link = Link { $provider }
web-profile-unlink = Unlink
web-profile-no-password-yet = Your account has no password yet: choose one to also sign in without your provider.

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
web-field-password-hint = At least { $min } characters, and not one of the most common passwords.
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
web-dashboard-today = Spent today
web-dashboard-week = Last 7 days
web-dashboard-month = Last 30 days
web-dashboard-n-requests = { $count ->
    [one] 1 request
   *[other] { $count } requests
}
web-dashboard-runway-days = About { $days } days at your last 7 days' rate.
web-dashboard-runway-none = No spending in the last 7 days.
web-dashboard-runway-long = More than a year at your last 7 days' rate.
web-dashboard-chart-title = Spend per day, last 30 days
web-dashboard-chart-caption = Spend per day
web-dashboard-bar = { $day }: { $usd }, { $requests ->
    [one] 1 request
   *[other] { $requests } requests
}
web-dashboard-by-model = By model, last 30 days
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
web-col-budget = Budget
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
web-field-key-group = Group
web-field-key-group-hint = The group decides which channels serve the key and its price ratio (×1 is list price).
web-field-key-budget = Budget that starts over
web-field-key-budget-hint = At most this much per day, week (from Monday), month or quarter (from 1 January, April, July, October), on top of the limit above. It starts over at midnight in the site's time zone, for a team key too (the team's budget and your cap start over in the organisation's). Leave the amount empty for none.
web-field-key-budget-amount = Amount in dollars
web-field-key-budget-period = Starts over
web-budget-none = Never (no budget)
web-budget-daily = Every day
web-budget-weekly = Every week
web-budget-monthly = Every month
web-budget-quarterly = Every quarter
web-budget-per-day = { $spent } of { $limit } today
web-budget-per-week = { $spent } of { $limit } this week
web-budget-per-month = { $spent } of { $limit } this month
web-budget-per-quarter = { $spent } of { $limit } this quarter
web-key-group-own = { $group } (your group, ×{ $ratio })
web-key-edit = Edit
web-key-edit-title = Edit a key
web-key-edit-heading = Edit the key “{ $name }”
web-key-save = Save
web-key-saved = The key is saved.
web-cancel = Cancel
web-field-key-remaining = Still to spend (USD)
web-field-key-remaining-hint = What this key may still spend. Empty: no limit of its own (the balance it draws on still applies: yours, or the organisation's wallet for a team key).
web-key-delete-confirm = Delete the key “{ $name }”? Programs using it stop working at once.
web-key-delete-yes = Delete the key
web-key-disabled = The key is disabled.
web-key-enabled = The key is enabled again.
web-key-deleted = The key is deleted.
web-field-key-name = Name
web-field-key-limit = Spending limit in dollars (optional)
web-field-key-limit-hint = Leave empty to let the key spend up to the balance it draws on: yours, or the organisation's wallet for a team key.
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
web-logs-requests = { $count ->
    [one] request
   *[other] requests
}
web-logs-tokens = tokens in / out
web-logs-none = No requests match.
web-logs-older = Older requests →

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
web-ledger-redemption = Redemption code
web-code-title = Redeem a code
web-code-label = Redemption code
web-code-hint = A code begins with tgc-. Its value is added to your balance at once.
web-code-submit = Redeem
web-code-redeemed = The code added { $amount } to your balance.
web-ledger-invite-reward = Invite reward
web-invite-title = Invite people
web-invite-make = Make my invite link
web-invite-no-rewards = Share your link: accounts made through it are linked to yours.
web-invite-terms-signup = For each account made through your link you get { $inviter }, and the new account gets { $invitee }.
web-invite-terms-topup = When an account made through your link pays its first top-up, you get { $inviter } and it gets { $invitee }.
web-invite-arrived = You were invited: registering through this link links your account to the person who invited you.

web-nav-profile = Profile
web-profile-details = Your details
web-profile-username = Your username is { $name } (it cannot be changed).
web-field-display-name = Display name
web-profile-save = Save
web-profile-saved = Saved.
web-profile-language = Language
web-profile-low-balance = Low-balance warning
web-field-low-balance = Email me when my balance falls below (USD)
web-field-low-balance-hint = One email each time the balance crosses the line. Empty: the site's default; 0: never.
web-profile-language-browser = As my browser asks
web-profile-password = Password
web-field-current-password = Current password
web-field-new-password = New password
web-profile-change-password = Change password
web-profile-password-changed = Your password is changed. Every other session is signed out.
web-profile-sessions = Where you are signed in
web-profile-device = Device
web-profile-ip = IP address
web-profile-this-session = This session
web-profile-end-session = Sign out
web-profile-end-others = Sign out everywhere else
web-profile-sessions-ended = Every other session is signed out.
web-profile-session-ended = That session is signed out.
web-profile-your-data = Your data
web-profile-export = Download a copy of your data (JSON)
web-profile-delete = Delete your account…
web-profile-delete-explain = Your personal data is wiped and your keys are deleted at once; your username and email become free. What you spent stays in the books under an anonymous name. This cannot be undone.
web-profile-delete-type = Type your username, { $name }, to confirm
web-profile-delete-yes = Delete my account

# Email: proving an address, resetting a password
web-sign-in-forgot = Forgot your password?
web-verify-title = Verify your email
web-verify-intro = We sent a 6-digit code to { $email }. Enter it here, or open the link in the email.
web-field-code = Code
web-verify-submit = Verify
web-verify-no-code = No email?
web-verify-resend = Send a new code
web-code-sent = A code is on its way to { $email }.
web-email-verified = Your email address is verified.
web-email-verified-sign-in = Your email address is verified. Sign in to continue.
web-email-unverified = Your email address is not verified yet.
web-email-verify-now = Verify it now
web-forgot-title = Forgot your password?
web-forgot-intro = Enter the email address of your account and we will send you a link to choose a new password.
web-forgot-submit = Send the link
web-forgot-sent = If an account uses { $email }, a link to choose a new password is on its way. It works once, for 30 minutes.
web-reset-title = Choose a new password
web-reset-intro = A new password for { $name }. Every device signed in to this account will be signed out.
web-reset-submit = Set the new password
web-password-reset-done = Your password is changed. Sign in with the new one.

# The playground
web-nav-playground = Playground
web-playground-intro = Chat with any model your account can use. It is billed to the key you pick and appears in your usage log like any other request.
web-playground-no-keys = The playground bills one of your API keys; you have none that is active yet.
web-playground-key = Key to bill
web-playground-system = System message (optional)
web-playground-message = Your message
web-playground-send = Send
web-playground-waiting = Waiting for the answer…
web-playground-usage = { $input } input and { $output } output tokens, { $cost }.

# Top-ups and orders
web-ledger-topup = Card top-up
web-ledger-refund = Refund
web-ledger-dispute = Disputed payment
web-ledger-dispute-reversal = Dispute won
web-topup-title = Add balance
web-topup-amount = Amount in dollars of balance
web-topup-amount-hint = Between { $min } and { $max }.
web-topup-see-price = See the price
web-topup-tier = +{ $percent } from { $from }
web-topup-bonus = includes a bonus of { $bonus }, +{ $percent }
web-topup-you-get = You get
web-topup-you-pay = You pay
web-topup-how = You pay on Stripe's secure page. The balance is added as soon as Stripe confirms the payment, usually within seconds.
web-topup-pay = Pay { $price } with Stripe
web-topup-change = Change the amount
web-orders-title = Top-up orders
web-order-number = Order
web-order-balance = Balance
web-order-price = Price
web-order-status = Status
web-order-pending = Waiting for payment
web-order-paid = Paid and credited
web-order-closed = Closed, not paid
web-order-held = Paid, being checked
web-order-pending-hint = Stripe has not confirmed a payment yet. This page updates by itself; if you already paid, the balance arrives within a minute or two.
web-order-paid-hint = The payment went through and the balance was added to your account.
web-order-closed-hint = No payment was made before the payment page expired. Nothing was charged.
web-order-held-hint = Stripe reported a payment that differs from the quote, so an administrator checks it before the balance is added.
web-order-title = Order #{ $id }
web-order-cancelled = You left the payment page without paying. Nothing was charged; you can still pay until { $expires }.
web-order-credited = Credited
web-order-refunded = Refunded
web-order-continue = Continue to payment
web-order-back = Back to the wallet
web-oauth-not-yours = That { $provider } account is not linked to yours. Sign in again with the one you linked.
web-reauth-done = You are signed in again: you can change your email or password for the next 10 minutes.
web-profile-email-needs-password = Needed to change your email address.
web-profile-reauth-explain = To change your email address or set a password, sign in again with your provider first.
web-profile-reauth = Sign in again with { $provider }
web-nul-refused = Something you sent holds a NUL character, which no field here takes. Remove it and send again.

# Forms that come back with problems
web-errors-title = Please correct the following
web-errors-line = { $label }: { $message }

# The header's menu on a phone
web-nav-menu = Menu

# The keys list
web-key-never-used = Not used yet
web-key-expires-on = Expires { $date }
web-key-edit-named = Edit { $name }

# The usage tables
web-col-time-zone = Time ({ $zone })
web-col-latency = Latency
web-log-streamed = streamed
web-log-streamed-first = streamed · first token { $ttft }
web-log-whole = whole answer
web-logs-filters-set = Filters ({ $count } set)
web-logs-clear = Clear the filters
web-dashboard-day = Day

# The playground's conversation and settings
web-playground-conversation = Conversation
web-playground-empty = Nothing said yet: write a message below.
web-playground-trimmed = The oldest messages were left out to keep the conversation short.
web-playground-you = You
web-playground-model-said = Model
web-playground-new = New conversation
web-playground-settings = Settings: system message, temperature, most tokens
web-playground-model-hint = The cheapest first; prices per 1M tokens in and out, after your group's ratio.
web-playground-model-per-token = { $model } · { $input } in / { $output } out
web-playground-model-per-request = { $model } · { $price } per request
web-playground-temperature = Temperature (optional)
web-playground-temperature-hint = From 0 (steady) to 2 (varied). Empty: the model's default.
web-playground-temperature-range = Write a number from 0 to 2, such as 0.7.
web-playground-max-tokens = Most tokens in the answer (optional)
web-playground-max-tokens-hint = Empty: the model's default.
web-playground-max-tokens-range = Write a whole number from 1 to { $max }.
web-playground-message-empty = Write a message to send.

# A site nobody has set up yet, and the operator's first steps
web-home-setup-needed = This site is not set up yet
web-home-setup-needed-text = No administrator exists yet. When the server started, it printed a link that sets the site up: find the line below in its output (or its log), open the link and create the root account.
web-steps-title = Set up your site
web-steps-lead = Three steps make the site useful. There is no admin console yet: each step is one command on the server, or a call to the management API with an admin token, which this command makes.
web-step-done = Done
web-step-todo = To do
web-step-channel = Add a channel
web-step-channel-text = A channel is an upstream account (OpenAI, Anthropic, Gemini or a compatible vendor) whose models people call through this site.
web-step-price = Price its models
web-step-price-text = Requests are billed at their model's price. The shipped list prices cover most current models (option list_prices); set a price for any other model, or to charge something else.
web-step-balance = Give someone balance
web-step-balance-text = People spend their balance. Add balance to an account, or make redemption codes to hand out: they are redeemed on the wallet page.
web-step-cli = On the server:
web-step-api = Or through the management API:
web-step-guide = How this works, in the operator's guide
web-guide-title = Operator's guide
web-guide-lead = The README of the version this server runs.
web-docs-model = The examples call { $model }, the cheapest model you can use.
web-docs-model-visitor = The examples call { $model }, the cheapest model a new account can use.
web-docs-no-model-yet = No model is available to you yet, so the examples say { $placeholder }. Replace it with a model from the pricing page once there is one.
web-wallet-no-card = Card payments are not available on { $site }, so balance comes another way.
web-wallet-no-card-code = Redeem a code below, if you have one.
web-wallet-no-card-ask = Ask the administrator of { $site } to add balance to your account.

# Who is signed in, in the header
web-nav-signed-in-as = Signed in as { $name }

# The usage log's filters
web-logs-bad-date = Use a date such as 2027-01-31.
web-logs-bad-key = Choose one of your keys.
web-logs-bad-outcome = Choose one of the listed outcomes.
