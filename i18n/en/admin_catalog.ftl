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
