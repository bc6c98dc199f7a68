//! People's own accounts: registering on the portal, signing in, and the first-run setup of
//! the root account. The portal calls these; what an account may then do is checked by the
//! other services against the caller it becomes.

use std::sync::OnceLock;

use super::sessions::Viewer;
use super::users::{CreateUser, check_email, password_problem};
use super::{Caller, Ctx, FieldProblem, Problems, ServiceError, ServiceResult};
use crate::domain::kinds::{Role, Status};
use crate::domain::{names, password, secret_key};
use crate::msg;
use crate::options::RuntimeOptions;
use crate::service::db::users::UserRow;
use crate::service::db::{self, now_ms};

/// What a person types to create an account (or the root account at first run).
#[derive(Clone, Debug, Default)]
pub struct Registration {
    pub username: String,
    pub email: String,
    pub password: String,
    /// Checked when given: the two must match.
    pub password_confirm: Option<String>,
    /// The invite code of the link the person came by (an unknown one is ignored).
    pub invite: Option<String>,
}

/// Every problem with a registration at once, before anything is written.
fn check_registration(registration: &Registration, email_required: bool) -> ServiceResult<()> {
    let mut problems = Problems::default();
    problems.check(
        names::username(&registration.username)
            .map_err(|e| ServiceError::invalid("username", super::name_problem(&e))),
    )?;
    if registration.email.trim().is_empty() {
        if email_required {
            problems.check::<()>(Err(ServiceError::invalid("email", msg!("field-required"))))?;
        }
    } else {
        problems.check(check_email(registration.email.trim()))?;
    }
    problems.check(
        password::validate(&registration.password)
            .map_err(|e| ServiceError::invalid("password", password_problem(&e))),
    )?;
    if let Some(confirm) = &registration.password_confirm
        && *confirm != registration.password
    {
        problems.check::<()>(Err(ServiceError::invalid(
            "password_confirm",
            msg!("password-mismatch"),
        )))?;
    }
    problems.finish()
}

fn account(
    registration: Registration,
    role: Option<&str>,
    quota_usd: Option<String>,
) -> CreateUser {
    let email = registration.email.trim().to_string();
    CreateUser {
        username: registration.username,
        password: Some(registration.password),
        email: (!email.is_empty()).then_some(email),
        role: role.map(str::to_string),
        group: None,
        quota_usd,
        rate_limits: Default::default(),
    }
}

/// A person creates their own account, when the portal lets them: in the default group,
/// with the starting balance the site gives (a ledger row).
pub async fn register(ctx: &Ctx, registration: Registration) -> ServiceResult<Viewer> {
    let options = super::options::current(&ctx.db).await?;
    if !options.registration_enabled {
        return Err(ServiceError::Forbidden(msg!("registration-closed")));
    }
    check_registration(&registration, true)?;
    check_domain(&options, &registration.email)?;
    let bonus = options.new_user_quota_usd.clone();
    let quota = (bonus != "0" && !bonus.is_empty()).then_some(bonus);
    let inviter = super::invites::inviter_of(ctx, registration.invite.as_deref()).await?;
    let rewards = super::invites::Rewards::of(&options)?;
    let input = account(registration, None, quota);
    // The inviter and any sign-up rewards commit with the account, or not at all.
    let user = super::users::create_with(ctx, &Caller::System, input, async |tx, id| {
        if let Some(inviter) = inviter {
            super::invites::on_signup(tx, id, inviter, rewards).await?;
        }
        Ok(())
    })
    .await?;
    Ok(Viewer::of(&user))
}

/// Refuses an address whose domain the site does not take (options `email_domains_allowed`
/// and `email_domains_blocked`).
pub(crate) fn check_domain(options: &RuntimeOptions, email: &str) -> ServiceResult<()> {
    if names::email_domain_allowed(
        email,
        &options.email_domains_allowed,
        &options.email_domains_blocked,
    ) {
        Ok(())
    } else {
        let domain = email.rsplit_once('@').map_or("", |(_, d)| d).trim();
        Err(ServiceError::invalid(
            "email",
            msg!("email-domain-refused", domain = domain),
        ))
    }
}

/// A PHC hash to verify against when the login names no account, so the answer takes as long
/// either way and does not tell which accounts exist.
fn stand_in_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| password::hash("not anybody's password").unwrap_or_default())
}

/// Who a sign-in attempt is aimed at, for counting its failures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignInTarget {
    /// The account the login names, however it is typed (username or email, any case).
    pub account_id: Option<i64>,
    /// What failures are counted under: the account, so an attacker cannot spread guesses
    /// over spellings; for a login that names no account, the text itself, so guessing at
    /// unknown names is limited all the same.
    pub limit_key: String,
}

pub async fn sign_in_target(ctx: &Ctx, login: &str) -> ServiceResult<SignInTarget> {
    let login = login.trim();
    Ok(match db::users::find_by_login(&ctx.db, login).await? {
        Some(user) => SignInTarget {
            account_id: Some(user.id),
            limit_key: format!("account:{}", user.id),
        },
        None => SignInTarget {
            account_id: None,
            limit_key: format!("login:{}", crate::domain::email::comparison_key(login)),
        },
    })
}

/// Checks a sign-in: by username or email, and password. A wrong login and a wrong password
/// get the same answer.
pub async fn sign_in(ctx: &Ctx, login: &str, plain: &str) -> ServiceResult<Viewer> {
    let user = db::users::find_by_login(&ctx.db, login.trim()).await?;
    let stored = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| stand_in_hash().to_string());
    let plain = plain.to_string();
    let matches = tokio::task::spawn_blocking(move || password::verify(&plain, &stored))
        .await
        .unwrap_or(false);
    let failed = || ServiceError::invalid("login", msg!("sign-in-failed"));
    let user = match user {
        Some(user) if matches && user.password_hash.is_some() => user,
        _ => return Err(failed()),
    };
    if user.status != Status::Active {
        return Err(ServiceError::Forbidden(msg!("account-disabled")));
    }
    Ok(Viewer::of(&user))
}

/// Whether the account must prove its email address before it may sign in: the site requires
/// it and the address is not proven yet. Administrators are never held back (they are the
/// ones who could fix the mail settings).
pub async fn must_verify_email(ctx: &Ctx, user: &Viewer) -> ServiceResult<bool> {
    if user.email_verified || user.role.is_admin() || user.email.is_none() {
        return Ok(false);
    }
    Ok(super::options::current(&ctx.db)
        .await?
        .email_verification_required)
}

/// The token of the first-run link, new at every start while no administrator exists (the
/// previous one stops working); None once one does.
pub async fn setup_token(ctx: &Ctx) -> ServiceResult<Option<String>> {
    if db::users::has_admin(&ctx.db).await? {
        return Ok(None);
    }
    let secret = secret_key::generate("setup-");
    ctx.write(&Caller::System, async |tx| {
        Ok(db::setup_tokens::replace(tx, &secret.hash, now_ms()).await?)
    })
    .await?;
    Ok(Some(secret.plain))
}

/// Whether a first-run link still works.
pub async fn setup_token_works(ctx: &Ctx, token: &str) -> ServiceResult<bool> {
    Ok(!db::users::has_admin(&ctx.db).await?
        && db::setup_tokens::exists(&ctx.db, &secret_key::hash(token)).await?)
}

/// Creates the root account with the first-run link's token, spending it in the same
/// transaction: one link makes one root account, however many people race with it.
pub async fn set_up_root(
    ctx: &Ctx,
    token: &str,
    registration: Registration,
) -> ServiceResult<Viewer> {
    if !setup_token_works(ctx, token).await? {
        return Err(ServiceError::Forbidden(msg!("setup-link-spent")));
    }
    check_registration(&registration, false)?;
    let token_hash = secret_key::hash(token);
    let root = super::users::create_with(
        ctx,
        &Caller::System,
        account(registration, Some(Role::Root.as_str()), None),
        async |tx, _| {
            if !db::setup_tokens::take(tx, &token_hash).await? {
                return Err(ServiceError::Forbidden(msg!("setup-link-spent")));
            }
            db::setup_tokens::clear(tx).await?;
            Ok(())
        },
    )
    .await?;
    Ok(Viewer::of(&root))
}

/// What a person may change of their own profile.
#[derive(Clone, Debug, Default)]
pub struct ProfileChange {
    pub display_name: String,
    pub email: String,
}

/// How a person shows it is really them before their email or password changes, so a stolen
/// session cannot take the account: a sign-in within [`super::sessions::RECENT_SIGN_IN`], or
/// the current password. An account without a password proves itself by signing in again
/// through its provider.
#[derive(Clone, Debug, Default)]
pub struct Reauthentication {
    /// The session signed in (or proved itself again) recently.
    pub recent_sign_in: bool,
    /// The current password as typed (empty when not given).
    pub current_password: String,
}

/// Checks `proof` for a change to `user`'s account; the problem names `current_password`.
async fn check_proof(user: &UserRow, proof: &Reauthentication) -> ServiceResult<()> {
    if proof.recent_sign_in {
        return Ok(());
    }
    let Some(stored) = user.password_hash.clone() else {
        return Err(ServiceError::invalid(
            "current_password",
            msg!("reauth-through-provider"),
        ));
    };
    if proof.current_password.is_empty() {
        return Err(ServiceError::invalid(
            "current_password",
            msg!("reauth-needed"),
        ));
    }
    let current = proof.current_password.clone();
    let matches = tokio::task::spawn_blocking(move || password::verify(&current, &stored))
        .await
        .unwrap_or(false);
    if matches {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "current_password",
            msg!("password-wrong"),
        ))
    }
}

/// The signed-in person proves it is them again with their password (before a sensitive
/// change in the console); the problem names `password`.
pub async fn confirm_password(ctx: &Ctx, caller: &Caller, password: &str) -> ServiceResult<()> {
    let user = super::users::find_id(&ctx.db, caller.own_account()?).await?;
    let proof = Reauthentication {
        recent_sign_in: false,
        current_password: password.to_string(),
    };
    check_proof(&user, &proof)
        .await
        .map_err(|error| match error {
            ServiceError::Invalid(problems) => ServiceError::Invalid(
                problems
                    .into_iter()
                    .map(|p| FieldProblem {
                        field: "password",
                        message: p.message,
                    })
                    .collect(),
            ),
            other => other,
        })
}

/// Changes one's display name and email. A new email address needs `proof` (see
/// [`Reauthentication`]) and is unverified until proven; the name needs none.
pub async fn update_profile(
    ctx: &Ctx,
    caller: &Caller,
    change: ProfileChange,
    proof: &Reauthentication,
) -> ServiceResult<Viewer> {
    let user_id = caller.own_account()?;
    let user = super::users::find_id(&ctx.db, user_id).await?;
    let mut problems = Problems::default();
    let display_name = change.display_name.trim();
    let display_name = if display_name.is_empty() {
        user.username.clone()
    } else {
        problems
            .check(
                names::label("a display name", display_name)
                    .map_err(super::name_err("display_name")),
            )?
            .unwrap_or_default()
    };
    let email = change.email.trim();
    let email = if email.is_empty() {
        None
    } else {
        problems.check(check_email(email))?
    };
    let email_changed = email != user.email;
    if email_changed {
        if let Some(new) = &email {
            let options = super::options::current(&ctx.db).await?;
            problems.check(check_domain(&options, new))?;
        }
        problems.check(check_proof(&user, proof).await)?;
    }
    problems.finish()?;
    let patch = db::users::UserPatch {
        display_name: Some(display_name),
        email: email_changed.then(|| email.clone()),
        email_verified: email_changed.then_some(false),
        ..Default::default()
    };
    ctx.write_own(caller, async |tx| {
        db::users::update(tx, user_id, &patch)
            .await
            .map_err(|e| match e {
                db::DbError::Conflict(_) => ServiceError::conflict("email", msg!("email-taken")),
                other => other.into(),
            })
    })
    .await?;
    Ok(Viewer::of(&super::users::find_id(&ctx.db, user_id).await?))
}

/// Changes (or sets a first) password, with `proof` that it is the account's owner. Every
/// session signed in with the old password ends (the portal keeps the one asking).
pub async fn change_password(
    ctx: &Ctx,
    caller: &Caller,
    new: &str,
    confirm: &str,
    proof: &Reauthentication,
) -> ServiceResult<Viewer> {
    let user_id = caller.own_account()?;
    let user = super::users::find_id(&ctx.db, user_id).await?;
    let mut problems = Problems::default();
    problems.check(check_proof(&user, proof).await)?;
    problems.check(
        password::validate(new)
            .map_err(|e| ServiceError::invalid("password", password_problem(&e))),
    )?;
    if new != confirm {
        problems.check::<()>(Err(ServiceError::invalid(
            "password_confirm",
            msg!("password-mismatch"),
        )))?;
    }
    problems.finish()?;
    let update = super::users::UpdateUser {
        password: Some(new.to_string()),
        ..Default::default()
    };
    let updated = super::users::update(ctx, &Caller::System, &user.username, update).await?;
    Ok(Viewer::of(&updated))
}

/// Deletes one's account, the username typed again as confirmation: personal data wiped,
/// username and email freed, keys, sessions, emailed codes and linked sign-in identities
/// deleted, the invite code retired, their places in organisations and teams given up (an
/// owner of one is refused until they hand it on); the ledger and the logs stay, under an
/// anonymous name, so the books still add up. (A card payment that completes after this is
/// refunded: see `topups`.)
pub async fn delete_account(ctx: &Ctx, caller: &Caller, typed_username: &str) -> ServiceResult<()> {
    let user_id = caller.own_account()?;
    let user = super::users::find_id(&ctx.db, user_id).await?;
    if typed_username.trim() != user.username {
        return Err(ServiceError::invalid(
            "confirm_username",
            msg!("account-delete-confirm"),
        ));
    }
    if user.role == Role::Root {
        return Err(ServiceError::Forbidden(msg!("account-delete-root")));
    }
    // An organisation is never left without an owner: its owner hands it on first.
    super::orgs::check_not_owner(&ctx.db, user_id).await?;
    let name = format!("deleted-{user_id}");
    ctx.write_own(caller, async |tx| {
        db::tokens::delete_all_of(tx, user_id).await?;
        // Checked again under the write lock: ownership accepted meanwhile counts.
        if db::orgs::owned_count_in(tx, user_id).await? > 0 {
            return Err(ServiceError::Forbidden(msg!(
                "account-delete-org-owner-now"
            )));
        }
        db::orgs::remove_person(tx, user_id).await?;
        // The provider identities go too, so signing in with them makes a new account.
        db::oauth::unlink_all(tx, user_id).await?;
        db::email_codes::delete_all_of(tx, user_id).await?;
        db::users::anonymize(tx, user_id, &name).await?;
        db::logs::anonymize_user(tx, user_id, &name).await?;
        Ok(())
    })
    .await?;
    super::sessions::end_all_of(ctx, user_id).await
}

/// Everything Tollgate holds about one's account, for the person to take away.
pub async fn export(ctx: &Ctx, caller: &Caller) -> ServiceResult<serde_json::Value> {
    let user_id = caller.own_account()?;
    // Their own records only, whatever their role.
    let caller = Caller::User(user_id);
    let user = super::users::find_id(&ctx.db, user_id).await?;
    let keys = super::tokens::list_for_user(ctx, &caller, &user.username).await?;
    let ledger = super::ledger::entries(ctx, &caller, &user.username, 1000).await?;
    let (logs, _) = super::logs::query(
        ctx,
        &caller,
        super::logs::LogQuery {
            limit: Some(1000),
            ..Default::default()
        },
    )
    .await?;
    let qpu = super::options::current(&ctx.db).await?.quota_per_usd();
    let keys: Vec<_> = keys
        .iter()
        .map(|k| super::views::TokenView::new(k, qpu))
        .collect();
    let logs: Vec<_> = logs
        .iter()
        .map(|l| super::views::LogView::new(l, qpu))
        .collect();
    Ok(serde_json::json!({
        "account": super::views::UserView::new(&user, qpu),
        "keys": keys,
        "ledger": ledger,
        "requests": logs,
        "exported_at": now_ms(),
    }))
}
