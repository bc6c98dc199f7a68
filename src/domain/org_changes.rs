//! The kinds of change an organisation's audit page filters by, and the audit actions each
//! kind covers. An action may belong to more than one kind (accepting an invitation adds a
//! member; making a team sets its budget and cap); each has one kind it is shown as.

/// A kind of change in an organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrgChangeKind {
    /// Its name, slug, time zone and group; its creation.
    Settings,
    /// Teams made, renamed and deleted.
    Teams,
    /// The organisation's and teams' budgets.
    Budgets,
    /// Teams' default member caps and members' own caps.
    Caps,
    /// Members' roles, team managers, ownership.
    Roles,
    /// People joining and leaving the organisation and its teams.
    Members,
    Invitations,
    Wallet,
}

impl OrgChangeKind {
    /// Every kind, in the order a page offers them.
    pub const ALL: [OrgChangeKind; 8] = [
        OrgChangeKind::Settings,
        OrgChangeKind::Teams,
        OrgChangeKind::Budgets,
        OrgChangeKind::Caps,
        OrgChangeKind::Roles,
        OrgChangeKind::Members,
        OrgChangeKind::Invitations,
        OrgChangeKind::Wallet,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrgChangeKind::Settings => "settings",
            OrgChangeKind::Teams => "teams",
            OrgChangeKind::Budgets => "budgets",
            OrgChangeKind::Caps => "caps",
            OrgChangeKind::Roles => "roles",
            OrgChangeKind::Members => "members",
            OrgChangeKind::Invitations => "invitations",
            OrgChangeKind::Wallet => "wallet",
        }
    }

    pub fn parse(text: &str) -> Option<OrgChangeKind> {
        OrgChangeKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text.trim())
    }

    /// The audit actions a filter by this kind finds.
    pub fn actions(self) -> &'static [&'static str] {
        match self {
            OrgChangeKind::Settings => &["org.create", "org.update"],
            OrgChangeKind::Teams => &["team.create", "team.update", "team.delete"],
            OrgChangeKind::Budgets => &["org.create", "org.budget", "team.create", "team.budget"],
            OrgChangeKind::Caps => &["team.create", "team.cap", "team.member.cap"],
            OrgChangeKind::Roles => &["org.member.update", "org.transfer", "team.member.manager"],
            OrgChangeKind::Members => &[
                "org.member.add",
                "org.member.remove",
                "org.invitation.accept",
                "team.member.add",
                "team.member.remove",
            ],
            OrgChangeKind::Invitations => &[
                "org.invitation.create",
                "org.invitation.resend",
                "org.invitation.revoke",
                "org.invitation.accept",
                "org.invitation.decline",
            ],
            OrgChangeKind::Wallet => {
                &["org.wallet.adjust", "org.wallet.redeem", "org.wallet.topup"]
            }
        }
    }

    /// The kind an action is shown as (None: an action this page does not know).
    pub fn of_action(action: &str) -> Option<OrgChangeKind> {
        let shown_as = match action {
            "org.create" | "org.update" => OrgChangeKind::Settings,
            "team.create" | "team.update" | "team.delete" => OrgChangeKind::Teams,
            "org.budget" | "team.budget" => OrgChangeKind::Budgets,
            "team.cap" | "team.member.cap" => OrgChangeKind::Caps,
            "org.member.update" | "org.transfer" | "team.member.manager" => OrgChangeKind::Roles,
            "org.member.add" | "org.member.remove" | "team.member.add" | "team.member.remove" => {
                OrgChangeKind::Members
            }
            "org.wallet.adjust" | "org.wallet.redeem" | "org.wallet.topup" => OrgChangeKind::Wallet,
            other if other.starts_with("org.invitation.") => OrgChangeKind::Invitations,
            _ => return None,
        };
        Some(shown_as)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_and_are_found_by_what_they_show() {
        for kind in OrgChangeKind::ALL {
            assert_eq!(OrgChangeKind::parse(kind.as_str()), Some(kind));
            for action in kind.actions() {
                let shown = OrgChangeKind::of_action(action).expect(action);
                assert!(
                    shown.actions().contains(action),
                    "{action} is shown as a kind that finds it"
                );
            }
        }
        assert_eq!(OrgChangeKind::parse("keys"), None);
        assert_eq!(OrgChangeKind::of_action("channel.update"), None);
    }

    #[test]
    fn every_action_shown_as_a_kind_is_found_by_it() {
        let actions = [
            "org.create",
            "org.update",
            "org.budget",
            "org.transfer",
            "org.member.add",
            "org.member.update",
            "org.member.remove",
            "org.wallet.adjust",
            "org.wallet.redeem",
            "org.wallet.topup",
            "org.invitation.create",
            "org.invitation.resend",
            "org.invitation.revoke",
            "org.invitation.accept",
            "org.invitation.decline",
            "team.create",
            "team.update",
            "team.budget",
            "team.cap",
            "team.delete",
            "team.member.add",
            "team.member.manager",
            "team.member.cap",
            "team.member.remove",
        ];
        for action in actions {
            let kind = OrgChangeKind::of_action(action).expect(action);
            assert!(kind.actions().contains(&action), "{action}");
        }
    }
}
