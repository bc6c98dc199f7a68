//! Invite links: every account may have a code (`/register?invite=CODE`); an account made
//! through it remembers who invited it, and the site may reward both (options
//! `invite_reward_inviter_usd`, `invite_reward_invitee_usd`, `invite_reward_when`). Each reward
//! is a ledger row with an idempotency key naming the invitee, so it is paid at most once per
//! invitee whatever retries or races happen, and never for inviting oneself.

use rand::RngExt;

use super::{Caller, Ctx, ServiceError, ServiceResult, usd_to_quota};
use crate::domain::kinds::LedgerKind;
use crate::domain::money::MicroUsd;
use crate::msg;
use crate::options::RuntimeOptions;
use crate::service::db::ledger::NewEntry;
use crate::service::db::{self, DbError, Tx};

const CODE_CHARS: usize = 10;
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// When the rewards are paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RewardWhen {
    /// As the invited account is made (farmed with mass accounts: off by default).
    Signup,
    /// At the invited account's first paid Stripe top-up (taken back if every paid top-up is).
    FirstTopup,
}

/// The site's invite rewards, in quota units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewards {
    pub inviter: i64,
    pub invitee: i64,
    pub when: RewardWhen,
}

impl Rewards {
    pub fn of(options: &RuntimeOptions) -> ServiceResult<Rewards> {
        let units = |field: &'static str, text: &str| -> ServiceResult<i64> {
            let usd = MicroUsd::parse(text).map_err(super::decimal_err(field))?;
            Ok(usd_to_quota(field, usd, options.quota_per_usd())?.0)
        };
        Ok(Rewards {
            inviter: units(
                "invite_reward_inviter_usd",
                &options.invite_reward_inviter_usd,
            )?,
            invitee: units(
                "invite_reward_invitee_usd",
                &options.invite_reward_invitee_usd,
            )?,
            when: if options.invite_reward_when == "signup" {
                RewardWhen::Signup
            } else {
                RewardWhen::FirstTopup
            },
        })
    }
}

fn random_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_CHARS)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// The account's invite code, made now if it has none (a POST: nothing is made on GET).
pub async fn ensure_code(ctx: &Ctx, user_id: i64) -> ServiceResult<String> {
    for _ in 0..5 {
        let user = super::users::find_id(&ctx.db, user_id).await?;
        if let Some(code) = user.invite_code {
            return Ok(code);
        }
        let code = random_code();
        let set = ctx
            .write(
                &Caller::User(user_id),
                async |tx| match db::users::set_invite_code(tx, user_id, &code).await {
                    // Another account's code (one in 57^10): draw again.
                    Err(DbError::Conflict(_)) => Ok(false),
                    other => Ok(other?),
                },
            )
            .await?;
        if set {
            return Ok(code);
        }
    }
    Err(ServiceError::Conflict {
        field: None,
        message: msg!("invite-code-unavailable"),
    })
}

/// The account an invite code belongs to, if any; a code nobody has is ignored (a stale link
/// must not stop anyone from registering).
pub async fn inviter_of(ctx: &Ctx, code: Option<&str>) -> ServiceResult<Option<i64>> {
    let Some(code) = code
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.len() <= 32)
    else {
        return Ok(None);
    };
    Ok(db::users::find_by_invite_code(&ctx.db, code)
        .await?
        .map(|u| u.id))
}

/// In the new account's transaction: remembers the inviter and, when the site pays at
/// sign-up, credits both. Never for the account itself.
pub async fn on_signup(
    tx: &mut Tx,
    invitee_id: i64,
    inviter_id: i64,
    rewards: Rewards,
) -> ServiceResult<()> {
    if invitee_id == inviter_id || !db::users::set_inviter(tx, invitee_id, inviter_id).await? {
        return Ok(());
    }
    if rewards.when == RewardWhen::Signup {
        pay(tx, invitee_id, inviter_id, rewards).await?;
    }
    Ok(())
}

/// In the transaction that credits an account's first paid top-up: pays its invite's rewards
/// when the site pays them then (once per invitee, whatever retries happen).
pub async fn on_first_topup(tx: &mut Tx, invitee_id: i64, rewards: Rewards) -> ServiceResult<()> {
    if rewards.when != RewardWhen::FirstTopup {
        return Ok(());
    }
    if let Some(inviter_id) = db::users::inviter_in(tx, invitee_id).await?
        && inviter_id != invitee_id
    {
        pay(tx, invitee_id, inviter_id, rewards).await?;
    }
    Ok(())
}

/// Takes back the invite rewards paid for `invitee_id` (its paying top-ups were all refunded or
/// charged back), each once; nothing when none were paid.
pub async fn revoke(tx: &mut Tx, invitee_id: i64) -> ServiceResult<()> {
    let reference = format!("invitee:{invitee_id}");
    for role in ["invitee", "inviter"] {
        let Some(paid) = db::ledger::by_key_in(tx, &format!("invite:{role}:{invitee_id}")).await?
        else {
            continue;
        };
        let key = format!("invite-revoked:{role}:{invitee_id}");
        let entry = NewEntry {
            user_id: paid.user_id,
            kind: LedgerKind::InviteReward,
            amount: -paid.amount,
            actor: "system",
            reference: &reference,
            reason: "revoked: the paying top-up was taken back",
            idempotency_key: &key,
        };
        if db::ledger::insert(tx, &entry).await?.is_none() {
            continue;
        }
        if !db::users::add_quota(tx, paid.user_id, -paid.amount).await? {
            return Err(ServiceError::invalid(
                "amount",
                msg!("balance-out-of-range"),
            ));
        }
    }
    Ok(())
}

/// Credits the invite's rewards for `invitee_id`, each once (keyed by the invitee).
async fn pay(tx: &mut Tx, invitee_id: i64, inviter_id: i64, rewards: Rewards) -> ServiceResult<()> {
    let reference = format!("invitee:{invitee_id}");
    for (user_id, amount, role) in [
        (invitee_id, rewards.invitee, "invitee"),
        (inviter_id, rewards.inviter, "inviter"),
    ] {
        if amount <= 0 {
            continue;
        }
        let key = format!("invite:{role}:{invitee_id}");
        let entry = NewEntry {
            user_id,
            kind: LedgerKind::InviteReward,
            amount,
            actor: "system",
            reference: &reference,
            reason: role,
            idempotency_key: &key,
        };
        if db::ledger::insert(tx, &entry).await?.is_none() {
            continue;
        }
        if !db::users::add_quota(tx, user_id, amount).await? {
            return Err(ServiceError::invalid(
                "amount",
                msg!("balance-out-of-range"),
            ));
        }
    }
    Ok(())
}
