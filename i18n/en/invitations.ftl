# Invitations into an organisation.
invite-email-or-username = Give either an email address or a username to invite, not both.
invite-role-invalid = The role must be admin or member.
invite-team-invalid = Choose one of the organisation's teams, or none.
invite-manager-needs-team = Only a member of a team can manage it: choose the team too.
invite-not-allowed = Only the organisation's admins invite people (a team's managers invite members into their own team).
invite-too-many = This organisation has { $max } invitations waiting already. Revoke some, or wait for them to be answered.
invite-resend-email-only = Only an invitation by email has a link to send again.
invitation-not-found = This invitation does not exist or is no longer open.
invitation-answered = This invitation has already been answered, revoked, or has expired.
invitation-sign-in = Sign in to answer the invitation.
invitation-other-account = This invitation is for another account.
invitation-verify-first = This invitation is for { $email }. Verify that address on your profile first, then open the link again.
invitation-other-address = This invitation is for { $email }. Sign in with the account that uses that address, or register with it.
mail-org-invite-subject = You are invited to join { $org } on { $site }
mail-org-invite-text =
    Hello,

    You are invited to join the organisation { $org } on { $site } as { $role }.
    Accept or decline here: { $link }

    The link works once, for { $days } days. Sign in (or register) with this email address to
    accept it. If you did not expect this invitation, ignore this email.
web-invitation-new = Invite someone
web-invitation-email = Email address
web-invitation-email-hint = They get a link that works once, for 7 days, for an account with this address.
web-invitation-username = Or a username
web-invitation-username-hint = Someone who already has an account here. They answer on their Invitations page.
web-invitation-role = Role
web-invitation-team = Team
web-invitation-team-hint = Optional: the team they join with the organisation.
web-invitation-no-team = No team
web-invitation-manager = They manage this team
web-invitation-send = Send the invitation
web-invitation-list = Invitations
web-invitation-none = No invitations yet.
web-invitation-who = Invited
web-invitation-state = State
web-invitation-expires = Open until
web-invitation-as-manager = manager
web-invitation-resend = Send again
web-invitation-revoke = Revoke
web-invitation-state-pending = Waiting
web-invitation-state-accepted = Accepted
web-invitation-state-declined = Declined
web-invitation-state-revoked = Revoked
web-invitation-state-expired = Expired
web-invitation-link-title = Pass this link on
web-invitation-link-hint = This site sends no mail, so give the person this link yourself. It is shown only now and works once, for 7 days.
web-invitation-mailed = The invitation is on its way to { $who }.
web-invitation-made = { $who } is invited. They answer on their Invitations page.
web-invitation-revoked = The invitation is revoked; its link no longer works.
web-invitation-title = Invitation
web-invitation-heading = You are invited to join { $org }
web-invitation-for-address = This invitation is for { $email }.
web-invitation-closed = This invitation is no longer open: it was answered, revoked or has expired. Ask for a new one.
web-invitation-accept = Accept
web-invitation-decline = Decline
web-invitation-sign-in-first = New here? Register with the invited address. Have an account with it already? Sign in. Either way you come back here to answer.
web-invitation-sign-in = Sign in
web-invitation-register = Register
web-invitation-accepted = Welcome: you are a member of the organisation now.
web-invitation-declined = The invitation is declined.
web-invitations-mine = Invitations
web-invitations-mine-none = No organisation is waiting for your answer.
web-invitation-until = Open until { $when }
