//! Redemption codes: administrators make them in batches (each shown once, stored hashed);
//! a person redeems one for balance. A redemption is one transaction: one use taken by a
//! conditional update whose row count decides, the account's redemption recorded (once per
//! account and code), a ledger row, and the balance credited.

use serde_json::json;

use super::tokens::parse_expiry;
use super::{Caller, Ctx, Problems, ServiceError, ServiceResult, decimal_err, usd_to_quota};
use crate::domain::kinds::{LedgerKind, Status};
use crate::domain::money::MicroUsd;
use crate::domain::{names, secret_key};
use crate::msg;
use crate::records::orgs::OrgRow;
use crate::service::db::codes::{CodeRow, NewCode, RedemptionRow};
use crate::service::db::ledger::NewEntry;
use crate::service::db::{self, DbError};

/// What every code begins with, so people (and secret scanners) recognise one.
pub const CODE_PREFIX: &str = "tgc-";
/// Codes made at once at most.
pub const MAX_BATCH: u32 = 10_000;
/// Uses of one gift code at most.
pub const MAX_USES: i64 = 1_000_000;
/// How many characters of a code stay on record to recognise it.
const SHOWN_CHARS: usize = 10;

#[derive(Clone, Debug, Default)]
pub struct CreateCodes {
    pub count: u32,
    /// What one use credits, in dollars.
    pub usd: String,
    /// How many accounts may each redeem it once (default 1).
    pub uses: Option<i64>,
    /// `2027-01-31` (start of that day, UTC) or an RFC 3339 time.
    pub expires: Option<String>,
    /// The batch's label.
    pub name: Option<String>,
}

/// A code just made: the only time it is shown.
#[derive(Clone, Debug)]
pub struct NewCodeShown {
    pub id: i64,
    pub code: String,
}

pub async fn create(
    ctx: &Ctx,
    caller: &Caller,
    input: CreateCodes,
) -> ServiceResult<Vec<NewCodeShown>> {
    caller.require_admin()?;
    let mut problems = Problems::default();
    if input.count == 0 || input.count > MAX_BATCH {
        problems.check::<()>(Err(ServiceError::invalid(
            "count",
            msg!("code-count-range", max = MAX_BATCH),
        )))?;
    }
    let options = super::options::current(&ctx.db).await?;
    let amount = problems.check(
        MicroUsd::parse(&input.usd)
            .map_err(decimal_err("usd"))
            .and_then(|usd| usd_to_quota("usd", usd, options.quota_per_usd()))
            .and_then(|units| {
                if units.0 > 0 {
                    Ok(units.0)
                } else {
                    Err(ServiceError::invalid("usd", msg!("code-amount-positive")))
                }
            }),
    )?;
    let uses = input.uses.unwrap_or(1);
    if !(1..=MAX_USES).contains(&uses) {
        problems.check::<()>(Err(ServiceError::invalid(
            "uses",
            msg!("code-uses-range", max = MAX_USES),
        )))?;
    }
    let expires_at = problems.check(
        input
            .expires
            .as_deref()
            .map(|text| match parse_expiry(text) {
                Ok(at) if at <= db::now_ms() => {
                    Err(ServiceError::invalid("expires", msg!("expiry-in-the-past")))
                }
                other => other,
            })
            .transpose(),
    )?;
    let name = match input
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(name) => problems.check(
            names::label("a batch name", name)
                .map(Some)
                .map_err(super::name_err("name")),
        )?,
        None => Some(None),
    };
    problems.finish()?;
    let (Some(amount), Some(expires_at), Some(name)) = (amount, expires_at, name) else {
        return Err(ServiceError::invalid("usd", msg!("field-required")));
    };
    let name = name.unwrap_or_default();
    let actor = caller.actor();
    let secrets: Vec<secret_key::NewSecret> = (0..input.count)
        .map(|_| secret_key::generate(CODE_PREFIX))
        .collect();
    let ids = ctx
        .write(caller, async |tx| {
            let mut ids = Vec::with_capacity(secrets.len());
            for secret in &secrets {
                let prefix: String = secret.plain.chars().take(SHOWN_CHARS).collect();
                let code = NewCode {
                    code_hash: &secret.hash,
                    prefix: &prefix,
                    name: &name,
                    amount,
                    uses,
                    expires_at,
                    created_by: &actor,
                };
                ids.push(db::codes::insert(tx, &code).await?);
            }
            tx.audit(super::audit::change(
                "code.generate",
                format!("code_batch:{name}"),
                None,
                Some(serde_json::json!({
                    "count": ids.len(),
                    "amount": amount,
                    "uses": uses,
                    "expires_at": expires_at,
                    "first_id": ids.first(),
                    "last_id": ids.last(),
                })),
                &[],
            ));
            Ok::<_, ServiceError>(ids)
        })
        .await?;
    Ok(ids
        .into_iter()
        .zip(secrets)
        .map(|(id, secret)| NewCodeShown {
            id,
            code: secret.plain,
        })
        .collect())
}

/// Where a code stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeState {
    Unused,
    /// Some uses of a gift code are taken, some left.
    PartlyUsed,
    Used,
    Disabled,
    Expired,
}

impl CodeState {
    pub fn of(code: &CodeRow, now_ms: i64) -> CodeState {
        if code.status != Status::Active {
            CodeState::Disabled
        } else if code.uses_left <= 0 {
            CodeState::Used
        } else if code.expires_at.is_some_and(|at| at <= now_ms) {
            CodeState::Expired
        } else if code.uses_left < code.uses {
            CodeState::PartlyUsed
        } else {
            CodeState::Unused
        }
    }

    pub fn parse(text: &str) -> Option<CodeState> {
        match text.trim() {
            "unused" => Some(CodeState::Unused),
            "partly_used" => Some(CodeState::PartlyUsed),
            "used" => Some(CodeState::Used),
            "disabled" => Some(CodeState::Disabled),
            "expired" => Some(CodeState::Expired),
            _ => None,
        }
    }
}

/// Codes, newest first: a batch by name, and those in one state.
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    name: Option<&str>,
    state: Option<&str>,
) -> ServiceResult<Vec<CodeRow>> {
    caller.require_admin()?;
    let state = state
        .map(|s| {
            CodeState::parse(s).ok_or_else(|| {
                ServiceError::invalid(
                    "state",
                    msg!(
                        "choice-invalid",
                        value = s,
                        choices = "unused, partly_used, used, disabled, expired"
                    ),
                )
            })
        })
        .transpose()?;
    let now = db::now_ms();
    Ok(db::codes::list(&ctx.db, name, 10_000)
        .await?
        .into_iter()
        .filter(|code| state.is_none_or(|s| CodeState::of(code, now) == s))
        .collect())
}

/// How many of a code's redemptions its page and `/api` show, newest first; a code of more
/// uses says how many there were in all.
pub const REDEMPTIONS_SHOWN: i64 = 500;

/// One code with who redeemed it, for its page and `/api/codes/{id}` alike.
pub struct CodeDetail {
    pub code: CodeRow,
    /// Newest first, at most [`REDEMPTIONS_SHOWN`].
    pub redemptions: Vec<RedemptionRow>,
    /// Earlier redemptions not listed.
    pub more: i64,
}

/// One code with who redeemed it and when, newest first.
pub async fn detail(ctx: &Ctx, caller: &Caller, id: i64) -> ServiceResult<CodeDetail> {
    caller.require_admin()?;
    let code = db::codes::find(&ctx.db, id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("code-not-found")))?;
    let redemptions = db::codes::redemptions(&ctx.db, id, REDEMPTIONS_SHOWN).await?;
    let listed = i64::try_from(redemptions.len()).unwrap_or(i64::MAX);
    let more = (code.uses - code.uses_left - listed).max(0);
    Ok(CodeDetail {
        code,
        redemptions,
        more,
    })
}

/// Disables a code by id, or a whole batch by name; how many were active.
pub async fn disable(
    ctx: &Ctx,
    caller: &Caller,
    id: Option<i64>,
    name: Option<&str>,
) -> ServiceResult<u64> {
    caller.require_admin()?;
    if id.is_none() && name.is_none_or(|n| n.trim().is_empty()) {
        return Err(ServiceError::invalid("id", msg!("code-disable-what")));
    }
    let name = name.map(str::trim);
    ctx.write(caller, async |tx| {
        let disabled = db::codes::disable(tx, id, name).await?;
        let target = match (id, name) {
            (Some(id), _) => format!("code:{id}"),
            (None, name) => format!("code_batch:{}", name.unwrap_or_default()),
        };
        tx.audit(super::audit::change(
            "code.disable",
            target,
            None,
            Some(serde_json::json!({ "disabled": disabled })),
            &[],
        ));
        Ok(disabled)
    })
    .await
}

/// Redeems a code for `user_id`; the units credited. Every refusal says why, in words the
/// person can act on, and changes nothing.
/// Refuses what cannot be a code at all (empty, or not `tgc-` and 48 letters and digits)
/// before anything is looked up: such a typo is not a guess, so callers need not count it.
pub fn check_shape(plain: &str) -> ServiceResult<()> {
    let plain = plain.trim();
    if plain.is_empty() {
        return Err(ServiceError::invalid("code", msg!("field-required")));
    }
    if !secret_key::has_shape(plain, CODE_PREFIX) {
        return Err(ServiceError::invalid(
            "code",
            msg!("redeem-shape", prefix = CODE_PREFIX),
        ));
    }
    Ok(())
}

pub async fn redeem(ctx: &Ctx, user_id: i64, plain: &str) -> ServiceResult<i64> {
    redeem_into(ctx, &Caller::System, user_id, None, plain).await
}

/// Redeems a code into an organisation's wallet: for its owner and admins. The code still
/// credits each person once, whichever wallet receives it, so one person cannot redeem a
/// code for themselves and again for each organisation they manage.
pub async fn redeem_for_org(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    plain: &str,
) -> ServiceResult<i64> {
    let access = super::orgs::access(ctx, caller, slug).await?;
    access.require_manages_org()?;
    let user_id = caller
        .account_id()
        .ok_or_else(|| ServiceError::Forbidden(msg!("org-admins-only")))?;
    redeem_into(ctx, caller, user_id, Some(access.org()), plain).await
}

/// Credits the code's amount to `user_id`'s balance, or to `org`'s wallet, once per person.
async fn redeem_into(
    ctx: &Ctx,
    caller: &Caller,
    user_id: i64,
    org: Option<&OrgRow>,
    plain: &str,
) -> ServiceResult<i64> {
    let plain = plain.trim();
    check_shape(plain)?;
    let Some(code) = db::codes::by_hash(&ctx.db, &secret_key::hash(plain)).await? else {
        return Err(ServiceError::invalid("code", msg!("redeem-unknown")));
    };
    let now = db::now_ms();
    match CodeState::of(&code, now) {
        CodeState::Disabled => return Err(ServiceError::invalid("code", msg!("redeem-disabled"))),
        CodeState::Expired => return Err(ServiceError::invalid("code", msg!("redeem-expired"))),
        CodeState::Used => return Err(ServiceError::invalid("code", msg!("redeem-used"))),
        CodeState::Unused | CodeState::PartlyUsed => {}
    }
    // One key per code and person, whichever wallet: the ledger refuses a second credit even
    // if the redemption's own once-per-person row were somehow missed.
    let idempotency_key = format!("redeem:{}:{user_id}", code.id);
    let reference = format!("code:{}", code.id);
    // The code's first characters, in no language: the wallet shows it beside the kind.
    let reason = format!("{}…", code.prefix);
    let org_id = org.map_or(0, |org| org.id);
    let actor = match org {
        // Who redeemed it, for the organisation's history.
        Some(_) => caller.actor(),
        None => "self".to_string(),
    };
    let outcome = ctx
        .write(caller, async |tx| {
            if !db::codes::take_use(tx, code.id, now).await? {
                // Taken by another redemption between the read and now.
                return Err(ServiceError::invalid("code", msg!("redeem-used")));
            }
            match db::codes::record_redemption(tx, code.id, user_id, org_id, code.amount).await {
                Err(DbError::Conflict(_)) => {
                    return Err(ServiceError::invalid(
                        "code",
                        msg!("redeem-already-redeemed"),
                    ));
                }
                other => other?,
            }
            let entry = NewEntry {
                user_id: if org.is_some() { 0 } else { user_id },
                kind: LedgerKind::Redemption,
                amount: code.amount,
                actor: &actor,
                reference: &reference,
                reason: &reason,
                idempotency_key: &idempotency_key,
            };
            let inserted = match org {
                Some(org) => db::ledger::insert_for_org(tx, org.id, &entry).await?,
                None => db::ledger::insert(tx, &entry).await?,
            };
            let Some(ledger_id) = inserted else {
                return Err(ServiceError::invalid(
                    "code",
                    msg!("redeem-already-redeemed"),
                ));
            };
            let added = match org {
                Some(org) => db::orgs::add_quota(tx, org.id, code.amount).await?,
                None => db::users::add_quota(tx, user_id, code.amount).await?,
            };
            if !added {
                return Err(ServiceError::invalid("code", msg!("balance-out-of-range")));
            }
            if let Some(org) = org {
                let mut entry = super::orgs::org_change(
                    "org.wallet.redeem",
                    org,
                    json!({}),
                    None,
                    Some(json!({ "amount": code.amount, "code": reason })),
                );
                entry.ledger_id = Some(ledger_id);
                tx.audit(entry);
            }
            Ok(code.amount)
        })
        .await?;
    Ok(outcome)
}
