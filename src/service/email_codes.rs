//! What the portal proves by email: that an address is one's own (a 6-digit code, also sent
//! as a link carrying it), and that one may set a new password (a single-use link). Codes and
//! links are stored hashed, expire, are spent once and allow a few wrong tries only.

use rand::RngExt;

use super::sessions::Viewer;
use super::{Caller, Ctx, ServiceError, ServiceResult};
use crate::domain::kinds::Status;
use crate::domain::{password, secret_key};
use crate::i18n::{Lang, Message};
use crate::mail::{self, Email, SmtpSettings};
use crate::msg;
use crate::service::db::email_codes::NewEmailCode;
use crate::service::db::users::UserRow;
use crate::service::db::{self, now_ms};

/// A verification code works this long.
pub const CODE_LIFETIME_MS: i64 = 15 * 60 * 1000;
/// A reset link works this long.
pub const RESET_LIFETIME_MS: i64 = 30 * 60 * 1000;
/// A new code or link is sent at most this often per account.
pub const RESEND_AFTER_MS: i64 = 60 * 1000;
/// Wrong tries a code allows before it is spent.
pub const MAX_ATTEMPTS: i64 = 5;

/// How many digits an emailed code has.
const CODE_DIGITS: usize = 6;

const VERIFY: &str = "verify";
const RESET: &str = "reset";

/// The stored form of a 6-digit code: its hash, bound to the account and the purpose (a
/// million codes hash alike otherwise).
fn code_hash(user_id: i64, code: &str) -> String {
    secret_key::hash(&format!("{VERIFY}:{user_id}:{code}"))
}

fn six_digits() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// The site's mail settings, or why the portal cannot send mail.
pub async fn smtp(ctx: &Ctx) -> ServiceResult<(SmtpSettings, crate::options::RuntimeOptions)> {
    let options = super::options::current(&ctx.db).await?;
    match SmtpSettings::from_options(&options) {
        Some(settings) => Ok((settings, options)),
        None => Err(ServiceError::Forbidden(msg!("mail-not-configured"))),
    }
}

/// Whether the site can send mail at all.
pub async fn mail_configured(ctx: &Ctx) -> ServiceResult<bool> {
    Ok(SmtpSettings::from_options(&super::options::current(&ctx.db).await?).is_some())
}

fn mail_failed(error: &mail::MailError) -> ServiceError {
    ServiceError::Upstream(msg!("mail-failed", reason = error.to_string()))
}

/// Seconds until another code may be sent to this account, when one was sent just now.
async fn resend_wait(ctx: &Ctx, user_id: i64, purpose: &str) -> ServiceResult<Option<i64>> {
    let latest = db::email_codes::latest(&ctx.db, user_id, purpose).await?;
    Ok(latest.and_then(|code| {
        let waited = now_ms() - code.created_at;
        (waited < RESEND_AFTER_MS).then(|| (RESEND_AFTER_MS - waited + 999) / 1000)
    }))
}

/// Sends a fresh 6-digit code to the account's address (the earlier one stops working). The
/// link in the mail opens the verification page with the code filled in.
///
/// `listen_url` is where this server listens: the base of the link when `public_url` is unset.
pub async fn send_verification(
    ctx: &Ctx,
    user_id: i64,
    lang: Lang,
    listen_url: &str,
) -> ServiceResult<()> {
    let (settings, options) = smtp(ctx).await?;
    let user = super::users::find_id(&ctx.db, user_id).await?;
    let Some(email) = user.email.clone() else {
        return Err(ServiceError::invalid("email", msg!("field-required")));
    };
    if user.email_verified {
        return Err(ServiceError::Conflict {
            field: None,
            message: msg!("email-already-verified"),
        });
    }
    if let Some(seconds) = resend_wait(ctx, user_id, VERIFY).await? {
        return Err(ServiceError::Forbidden(msg!(
            "code-resend-wait",
            seconds = seconds
        )));
    }
    let code = six_digits();
    let hash = code_hash(user_id, &code);
    let now = now_ms();
    let id = ctx
        .write(&Caller::System, async |tx| {
            Ok(db::email_codes::replace(
                tx,
                &NewEmailCode {
                    user_id,
                    purpose: VERIFY,
                    email: &email,
                    code_hash: &hash,
                    now_ms: now,
                    expires_at: now + CODE_LIFETIME_MS,
                },
            )
            .await?)
        })
        .await?;
    let query = serde_urlencoded::to_string([("email", email.as_str()), ("code", code.as_str())])
        .unwrap_or_default();
    let link = format!("{}/verify-email?{query}", options.base_url(listen_url));
    let minutes = (CODE_LIFETIME_MS / 60_000).to_string();
    let site = options.site_name.as_str();
    let message = Email {
        to: email.clone(),
        subject: crate::i18n::text(
            lang,
            "mail-verify-subject",
            &[("site", site), ("code", &code)],
        ),
        text: crate::i18n::text(
            lang,
            "mail-verify-text",
            &[
                ("site", site),
                ("name", &user.username),
                ("code", &code),
                ("link", &link),
                ("minutes", &minutes),
            ],
        ),
    };
    if let Err(error) = mail::send(&settings, message).await {
        tracing::warn!(error = %error, user_id, "a verification code could not be mailed");
        // Not sent, so it neither works nor holds back the next attempt.
        ctx.write(&Caller::System, async |tx| {
            Ok(db::email_codes::forget(tx, id).await?)
        })
        .await?;
        return Err(mail_failed(&error));
    }
    Ok(())
}

/// Why a code is refused, on the `code` field.
fn refused(message: Message) -> ServiceError {
    ServiceError::invalid("code", message)
}

/// Checks a verification code for the account; right, the address counts as proven. Wrong
/// tries count against the code, and after a few it is spent.
pub async fn verify_email(ctx: &Ctx, user_id: i64, code: &str) -> ServiceResult<Viewer> {
    let user = super::users::find_id(&ctx.db, user_id).await?;
    if user.email_verified {
        return Ok(Viewer::of(&user));
    }
    let code = code.trim();
    // A typo of the wrong shape is not a guess: it costs no try.
    if code.len() != CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused(msg!("code-shape", digits = CODE_DIGITS)));
    }
    let Some(row) = db::email_codes::latest(&ctx.db, user_id, VERIFY).await? else {
        return Err(refused(msg!("code-expired")));
    };
    let now = now_ms();
    if row.used_at.is_some() || row.expires_at <= now || user.email.as_deref() != Some(&row.email) {
        return Err(refused(msg!("code-expired")));
    }
    // The try is counted before it is judged: concurrent guesses get no more tries than
    // guesses one after another.
    let counted = ctx
        .write(&Caller::System, async |tx| {
            Ok(db::email_codes::count_attempt(tx, row.id, MAX_ATTEMPTS).await?)
        })
        .await?;
    if !counted {
        return Err(refused(msg!("code-too-many-tries")));
    }
    if !crate::domain::secret_key::constant_time_eq(
        code_hash(user_id, code).as_bytes(),
        row.code_hash.as_bytes(),
    ) {
        let left = MAX_ATTEMPTS - row.attempts - 1;
        return Err(refused(if left <= 0 {
            msg!("code-too-many-tries")
        } else {
            msg!("code-wrong", left = left)
        }));
    }
    let email = row.email.clone();
    ctx.write(&Caller::System, async |tx| {
        if !db::email_codes::spend(tx, row.id, now).await? {
            return Err(refused(msg!("code-expired")));
        }
        db::users::mark_email_verified(tx, user_id, &email).await?;
        Ok(())
    })
    .await?;
    Ok(Viewer::of(&super::users::find_id(&ctx.db, user_id).await?))
}

/// The active account that uses this email address, if any.
pub async fn account_with_email(ctx: &Ctx, email: &str) -> ServiceResult<Option<Viewer>> {
    let email = email.trim();
    if email.is_empty() {
        return Ok(None);
    }
    let user = db::users::find_by_login(&ctx.db, email).await?;
    Ok(user
        .filter(|u| {
            u.status == Status::Active
                && u.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
        .map(|u| Viewer::of(&u)))
}

/// Mails a single-use link to set a new password, when an active account uses the address.
/// The answer is the same either way, so nobody learns which addresses have accounts; only a
/// site without mail says so (to everybody alike).
pub async fn request_reset(
    ctx: &Ctx,
    email: &str,
    lang: Lang,
    listen_url: &str,
) -> ServiceResult<()> {
    let (settings, options) = smtp(ctx).await?;
    let Some(user) = account_with_email(ctx, email).await? else {
        return Ok(());
    };
    if resend_wait(ctx, user.id, RESET).await?.is_some() {
        return Ok(());
    }
    let address = user.email.clone().unwrap_or_default();
    let secret = secret_key::generate("");
    let now = now_ms();
    let id = ctx
        .write(&Caller::System, async |tx| {
            Ok(db::email_codes::replace(
                tx,
                &NewEmailCode {
                    user_id: user.id,
                    purpose: RESET,
                    email: &address,
                    code_hash: &secret.hash,
                    now_ms: now,
                    expires_at: now + RESET_LIFETIME_MS,
                },
            )
            .await?)
        })
        .await?;
    let link = format!(
        "{}/reset-password?token={}",
        options.base_url(listen_url),
        secret.plain
    );
    let minutes = (RESET_LIFETIME_MS / 60_000).to_string();
    let site = options.site_name.as_str();
    let message = Email {
        to: address,
        subject: crate::i18n::text(lang, "mail-reset-subject", &[("site", site)]),
        text: crate::i18n::text(
            lang,
            "mail-reset-text",
            &[
                ("site", site),
                ("name", &user.username),
                ("link", &link),
                ("minutes", &minutes),
            ],
        ),
    };
    if let Err(error) = mail::send(&settings, message).await {
        // Said only in the log: telling the visitor would tell them the address has an account.
        tracing::warn!(error = %error, user_id = user.id, "a password reset link could not be mailed");
        ctx.write(&Caller::System, async |tx| {
            Ok(db::email_codes::forget(tx, id).await?)
        })
        .await?;
    }
    Ok(())
}

/// The username of the account a reset link is for, while the link works (the page shows it
/// so password managers file the new password under it).
pub async fn reset_link_username(ctx: &Ctx, token: &str) -> ServiceResult<Option<String>> {
    Ok(reset_link_account(ctx, token)
        .await?
        .map(|user| user.username))
}

/// The account a reset link is for, while it works.
async fn reset_link_account(ctx: &Ctx, token: &str) -> ServiceResult<Option<UserRow>> {
    let Some(row) = db::email_codes::find_unspent(&ctx.db, RESET, &secret_key::hash(token)).await?
    else {
        return Ok(None);
    };
    if row.expires_at <= now_ms() {
        return Ok(None);
    }
    let user = super::users::find_id(&ctx.db, row.user_id).await?;
    let same_address = user.email.as_deref() == Some(row.email.as_str());
    Ok((same_address && user.status == Status::Active).then_some(user))
}

/// Sets a new password with a reset link, spending the link in the same transaction. Every
/// session of the account ends (its password changed); the address counts as proven.
pub async fn reset_password(ctx: &Ctx, token: &str, new: &str, confirm: &str) -> ServiceResult<()> {
    let spent = || ServiceError::Forbidden(msg!("reset-link-spent"));
    let Some(user) = reset_link_account(ctx, token).await? else {
        return Err(spent());
    };
    let mut problems = super::Problems::default();
    problems.check(
        password::validate(new)
            .map_err(|e| ServiceError::invalid("password", super::users::password_problem(&e))),
    )?;
    if new != confirm {
        problems.check::<()>(Err(ServiceError::invalid(
            "password_confirm",
            msg!("password-mismatch"),
        )))?;
    }
    problems.finish()?;
    let hash = super::users::hash_password(new.to_string()).await?;
    let token_hash = secret_key::hash(token);
    let now = now_ms();
    let email = user.email.clone().unwrap_or_default();
    ctx.write(&Caller::System, async |tx| {
        let Some(row) = db::email_codes::find_unspent_in(tx, RESET, &token_hash).await? else {
            return Err(spent());
        };
        if !db::email_codes::spend(tx, row.id, now).await? {
            return Err(spent());
        }
        db::users::update(
            tx,
            user.id,
            &db::users::UserPatch {
                password_hash: Some(hash.clone()),
                ..Default::default()
            },
        )
        .await?;
        db::users::mark_email_verified(tx, user.id, &email).await?;
        Ok(())
    })
    .await?;
    super::sessions::end_all_of(ctx, user.id).await
}
