# Organisations, their members, teams and team keys: what the services say about them.
org-not-found = There is no organisation '{ $slug }'.
org-admins-only = Only the organisation's owner and admins may do this.
org-owner-only = Only the organisation's owner may do this.
org-name-control = A name must not contain control characters.
org-slug-invalid = The short name '{ $value }' must be 2 to 32 lowercase letters, digits and '-'.
org-slug-reserved = The short name '{ $value }' is reserved: choose another.
org-slug-taken = The short name '{ $slug }' is taken: choose another.
org-owner-self = You can only create organisations that you own.
org-creation-closed = Only administrators create organisations on this site.
org-creation-unverified = Prove your email address on your profile before you create an organisation.
org-group-admins-only = Only site administrators choose an organisation's group.
org-cap-reached = You own { $max } organisations already, as many as one person may own here.
budget-needs-period = Choose how often the budget starts over (daily, weekly, monthly or quarterly), or leave the amount empty.
budget-needs-amount = Give the amount that may be spent each period, more than $0.
org-delete-reason-needed = Say why the organisation is deleted with money in its wallet: the reason is kept in the ledger and the audit log.
org-delete-has-money = The organisation's wallet still holds { $usd }: it cannot be deleted until that is spent or refunded.
org-delete-has-orders = { $count ->
    [one] A card payment into the wallet is still open
   *[other] { $count } card payments into the wallet are still open
}: the organisation can be deleted once they are paid or closed.
org-transfer-not-member = '{ $name }' is not a member of this organisation: ownership goes to a member.
org-transfer-to-owner = '{ $name }' owns this organisation already.
org-no-transfer-offered = Ownership of this organisation has not been offered to you.
org-role-owner-by-transfer = An organisation gets a new owner by a transfer of ownership, not by a role: choose admin or member.
org-add-member-admins-only = People join an organisation by accepting an invitation; only site administrators add them directly.
org-already-member = '{ $name }' is a member of this organisation already.
org-member-not-found = '{ $name }' is not a member of this organisation.
org-owner-role-fixed = The owner's role changes only by a transfer of ownership.
org-owner-cannot-leave = The owner cannot leave the organisation or be removed: hand ownership to another member first.
org-wallet-zero = Give an amount other than zero.
team-not-found = The organisation has no team '{ $name }'.
team-exists = The organisation has a team named '{ $name }' already.
team-member-not-found = '{ $name }' is not in the team '{ $team }'.
team-managers-only = Only the organisation's admins and the team's managers may do this.
team-managers-by-admins = Only the organisation's owner and admins choose a team's managers.
team-groups-unavailable = { $count ->
    [one] The group { $groups } is not one the organisation may use: use its own group or one people may choose.
   *[other] The groups { $groups } are not ones the organisation may use: use its own group or ones people may choose.
}
team-cap-needs-budget = A member cap counts per the team's budget period: give the team a budget first.
team-cap-over-budget = A member cap cannot be more than the team's budget.
team-budget-under-member-caps = Some members' own caps are more than this budget (or need one): lower them first.
team-key-needs-team = Choose the team the key belongs to.
team-key-needs-org = Choose the organisation of the team.
team-key-not-member = The key's owner is not a member of the team '{ $team }'.
team-key-group-unavailable = The team '{ $team }' cannot use the group '{ $group }'; its keys may use { $groups }.
account-delete-org-owner = You own { $orgs }: hand each organisation to another member before you delete your account.
account-delete-org-owner-now = You own an organisation now: hand it to another member before you delete your account.
admin-option-max-orgs-per-user = Most organisations one person may own
admin-option-org-creation-enabled = People may create organisations
