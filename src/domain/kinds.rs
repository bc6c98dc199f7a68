//! The closed sets of states stored as short strings in the database.

use std::fmt;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text.trim() { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The accepted spellings, for error messages.
            pub fn choices() -> String {
                $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        // Documented in `/api/openapi.json` as the strings it is written as.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&text).ok_or_else(|| {
                    serde::de::Error::custom(format!("'{text}' is not one of {}", $name::choices()))
                })
            }
        }
    };
}

string_enum!(
    /// What a user may do. Admins manage users and channels; root also manages admins.
    Role { User => "user", Admin => "admin", Root => "root" }
);

impl Role {
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Admin | Role::Root)
    }
}

string_enum!(
    /// Whether an account or API key may be used.
    Status { Active => "active", Disabled => "disabled" }
);

string_enum!(
    /// A channel is `enabled`, switched off by an admin (`disabled`, stays off), or switched off
    /// by Tollgate after upstream failures (`auto_disabled`, re-probed and re-enabled).
    ChannelStatus { Enabled => "enabled", Disabled => "disabled", AutoDisabled => "auto_disabled" }
);

string_enum!(
    /// How Tollgate talks to a channel's upstream.
    ChannelType { OpenAi => "openai", Azure => "azure", Anthropic => "anthropic", Gemini => "gemini", Ollama => "ollama", Cohere => "cohere", Vertex => "vertex", Bedrock => "bedrock" }
);

string_enum!(
    /// How a relayed request ended, as recorded in its log row.
    Outcome {
        Success => "success",
        /// The client went away mid-answer; it pays for what was generated until then.
        ClientClosed => "client_closed",
        /// The upstream failed after the answer had started streaming.
        StreamError => "stream_error",
        /// Every channel tried failed; the hold was refunded.
        UpstreamError => "upstream_error",
        /// Refused before any upstream call (quota, permissions, no channel, bad input).
        Refused => "refused"
    }
);

string_enum!(
    /// Why a balance changed, in the ledger. Relay spend is not a ledger row: it is summed in
    /// the user's `used_quota`.
    LedgerKind {
        /// What a user had (balance plus spend) when the ledger began.
        Opening => "opening",
        /// The balance an account was created with.
        Grant => "grant",
        /// An administrator's top-up or deduction.
        Adjustment => "adjustment",
        /// A redemption code redeemed by the account.
        Redemption => "redemption",
        /// A reward for inviting someone, or for being invited.
        InviteReward => "invite_reward",
        /// A paid Stripe top-up.
        TopUp => "topup",
        /// Balance taken back for a refunded payment.
        Refund => "refund",
        /// Balance taken back while a payment is disputed.
        Dispute => "dispute",
        /// Balance given back when a dispute is won.
        DisputeReversal => "dispute_reversal"
    }
);

string_enum!(
    /// Where a Stripe top-up order stands.
    OrderStatus {
        /// Written, its Checkout Session made or being made; no payment seen yet.
        Pending => "pending",
        /// Paid and credited.
        Paid => "paid",
        /// Expired or failed without payment (a late payment still credits it).
        Closed => "closed",
        /// Paid, but not as quoted (amount or currency): waits for an administrator.
        Held => "held"
    }
);

string_enum!(
    /// How often a budget starts over: a key's in the site's time zone, an organisation's and
    /// its teams' in the organisation's. Weeks start on Monday, quarters on 1 January, April,
    /// July and October.
    BudgetPeriod { Daily => "daily", Weekly => "weekly", Monthly => "monthly", Quarterly => "quarterly" }
);

impl BudgetPeriod {
    /// The period a member cap starts over in when its team has no budget of its own: the
    /// relay holds it and the budget alerts read it in the same one.
    pub const CAP_WITHOUT_TEAM_BUDGET: BudgetPeriod = BudgetPeriod::Monthly;
}

string_enum!(
    /// A person's place in an organisation: one owner, any number of admins and members.
    OrgRole { Owner => "owner", Admin => "admin", Member => "member" }
);

string_enum!(
    /// How Tollgate signs people in through an OAuth provider: GitHub's API, or OpenID Connect
    /// with a verified ID token.
    OAuthKind { GitHub => "github", Oidc => "oidc" }
);
