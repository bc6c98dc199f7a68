//! Sign-in through OAuth providers: administrators add and remove providers; a person signs
//! in with an identity linked to their account, signs up with a new one (under the same rules
//! as registering), or links and unlinks identities on their profile.
//!
//! Accounts are found by the provider's subject, never by email: an address a provider has not
//! verified proves nothing, and even a verified one that belongs to an existing account is not
//! merged into it (its owner signs in and links the identity from the profile instead).

use super::sessions::Viewer;
use super::users::CreateUser;
use super::{Caller, Ctx, Problems, ServiceError, ServiceResult};
use crate::domain::kinds::{OAuthKind, Status};
use crate::domain::names;
use crate::msg;
use crate::oauth::{FlowSecrets, OAuthClient, ProviderIdentity};
use crate::service::db::oauth::{IdentityRow, ProviderRow};
use crate::service::db::{self, DbError, now_ms};

const GITHUB_AUTH_URL: &str = "https://github.com/login/oauth/authorize";
const GITHUB_TOKEN_URL: &str = "https://github.com/login/oauth/access_token";
const GITHUB_API_URL: &str = "https://api.github.com";
const GITHUB_SCOPES: &str = "read:user user:email";
const OIDC_SCOPES: &str = "openid email profile";

/// A provider to add. GitHub needs only the client; GitHub Enterprise also its three URLs; an
/// OpenID Connect provider its issuer, whose discovery document gives the rest.
#[derive(Clone, Debug, Default)]
pub struct NewProvider {
    pub kind: String,
    pub name: String,
    /// What the sign-in button says; default "GitHub" or the name.
    pub display_name: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub issuer: Option<String>,
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
    pub api_url: Option<String>,
}

fn required(field: &'static str, value: &str) -> ServiceResult<String> {
    let value = value.trim();
    if value.is_empty() {
        Err(ServiceError::invalid(field, msg!("field-required")))
    } else {
        Ok(value.to_string())
    }
}

fn url(field: &'static str, value: Option<&str>, default: &str) -> ServiceResult<String> {
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    let value = value.unwrap_or(default);
    if value.starts_with("https://") || value.starts_with("http://") {
        Ok(value.trim_end_matches('/').to_string())
    } else {
        Err(ServiceError::invalid(
            field,
            msg!("url-not-http", value = value),
        ))
    }
}

/// Adds a provider. An OIDC provider's discovery document is read now, so a wrong issuer is
/// said at once rather than at someone's first sign-in.
pub async fn add_provider(
    ctx: &Ctx,
    caller: &Caller,
    client: &OAuthClient,
    input: NewProvider,
) -> ServiceResult<ProviderRow> {
    // A provider decides who may sign in as whom: root's alone.
    caller.require_root()?;
    let mut problems = Problems::default();
    let kind = problems.check(OAuthKind::parse(&input.kind).ok_or_else(|| {
        ServiceError::invalid(
            "type",
            msg!(
                "choice-invalid",
                value = input.kind.as_str(),
                choices = OAuthKind::choices()
            ),
        )
    }))?;
    let name = problems.check(
        names::group_name(&input.name)
            .map(|n| n.to_ascii_lowercase())
            .map_err(super::name_err("name")),
    )?;
    let client_id = problems.check(required("client_id", &input.client_id))?;
    let client_secret = problems.check(required("client_secret", &input.client_secret))?;
    let issuer = match kind {
        Some(OAuthKind::Oidc) => problems.check(url("issuer", input.issuer.as_deref(), ""))?,
        _ => None,
    };
    problems.finish()?;
    let (Some(kind), Some(name), Some(client_id), Some(client_secret)) =
        (kind, name, client_id, client_secret)
    else {
        return Err(ServiceError::invalid("name", msg!("field-required")));
    };
    let mut provider = ProviderRow {
        id: 0,
        display_name: input
            .display_name
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| match kind {
                OAuthKind::GitHub => "GitHub".into(),
                OAuthKind::Oidc => name.clone(),
            }),
        name,
        kind,
        client_id,
        client_secret,
        issuer: String::new(),
        auth_url: String::new(),
        token_url: String::new(),
        userinfo_url: String::new(),
        jwks_url: String::new(),
        scopes: String::new(),
        created_at: 0,
    };
    match kind {
        OAuthKind::GitHub => {
            provider.auth_url = url("auth_url", input.auth_url.as_deref(), GITHUB_AUTH_URL)?;
            provider.token_url = url("token_url", input.token_url.as_deref(), GITHUB_TOKEN_URL)?;
            provider.userinfo_url = url("api_url", input.api_url.as_deref(), GITHUB_API_URL)?;
            provider.scopes = GITHUB_SCOPES.into();
        }
        OAuthKind::Oidc => {
            let issuer = issuer.unwrap_or_default();
            let found = client.discover(&issuer).await.map_err(|e| {
                ServiceError::invalid(
                    "issuer",
                    msg!("oauth-discovery-failed", reason = e.to_string()),
                )
            })?;
            provider.issuer = found.issuer;
            provider.auth_url = found.authorization_endpoint;
            provider.token_url = found.token_endpoint;
            provider.userinfo_url = found.userinfo_endpoint.unwrap_or_default();
            provider.jwks_url = found.jwks_uri;
            provider.scopes = OIDC_SCOPES.into();
        }
    }
    let name = provider.name.clone();
    ctx.write(caller, async |tx| {
        db::oauth::insert_provider(tx, &provider)
            .await
            .map_err(|e| match e {
                DbError::Conflict(_) => ServiceError::conflict(
                    "name",
                    msg!("oauth-provider-exists", name = name.as_str()),
                ),
                other => ServiceError::from(other),
            })?;
        tx.audit(super::audit::change(
            "oauth_provider.create",
            format!("oauth_provider:{name}"),
            None,
            Some(serde_json::json!({
                "kind": provider.kind.as_str(),
                "client_id": provider.client_id,
                "client_secret": provider.client_secret,
                "issuer": provider.issuer,
            })),
            &["client_secret"],
        ));
        Ok(())
    })
    .await?;
    provider_named(ctx, &provider.name).await
}

/// Every provider, for administrators (the secret stays inside: views mask it).
pub async fn list_providers(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<ProviderRow>> {
    caller.require_admin()?;
    Ok(db::oauth::providers(&ctx.db).await?)
}

pub async fn remove_provider(ctx: &Ctx, caller: &Caller, name: &str) -> ServiceResult<()> {
    caller.require_root()?;
    let removed = ctx
        .write(caller, async |tx| {
            let removed = db::oauth::delete_provider(tx, name).await?;
            tx.audit(super::audit::entry(
                "oauth_provider.delete",
                format!("oauth_provider:{name}"),
            ));
            Ok(removed)
        })
        .await?;
    if removed {
        Ok(())
    } else {
        Err(ServiceError::NotFound(msg!(
            "oauth-provider-not-found",
            name = name
        )))
    }
}

/// The providers people may sign in with, as (name, what the button says).
pub async fn sign_in_choices(ctx: &Ctx) -> ServiceResult<Vec<(String, String)>> {
    Ok(db::oauth::providers(&ctx.db)
        .await?
        .into_iter()
        .map(|p| (p.name, p.display_name))
        .collect())
}

/// A provider by name, for a sign-in on its way.
async fn provider_named(ctx: &Ctx, name: &str) -> ServiceResult<ProviderRow> {
    db::oauth::provider(&ctx.db, name)
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("oauth-provider-not-found", name = name)))
}

/// A sign-in at a provider about to start: where to send the visitor, and the attempt's
/// secrets to keep until they come back.
#[derive(Debug)]
pub struct Authorization {
    /// The provider's name, as its callback path spells it.
    pub provider: String,
    pub url: String,
    pub secrets: FlowSecrets,
}

/// Starts a sign-in at the provider named `name`; its answer comes back to `callback_url`.
pub async fn authorize(ctx: &Ctx, name: &str, callback_url: &str) -> ServiceResult<Authorization> {
    let provider = provider_named(ctx, name).await?;
    let secrets = FlowSecrets::new();
    let url = crate::oauth::authorize_url(&provider, callback_url, &secrets);
    Ok(Authorization {
        provider: provider.name,
        url,
        secrets,
    })
}

/// Who the provider says signed in: the code it sent back is exchanged with the attempt's
/// secrets. A provider that fails or answers nonsense is an upstream failure naming it.
pub async fn identify(
    ctx: &Ctx,
    client: &OAuthClient,
    name: &str,
    code: &str,
    callback_url: &str,
    secrets: &FlowSecrets,
) -> ServiceResult<ProviderIdentity> {
    let provider = provider_named(ctx, name).await?;
    client
        .identity(&provider, code, callback_url, secrets, now_ms() / 1000)
        .await
        .map_err(|e| {
            tracing::warn!(provider = %provider.name, error = %e, "an OAuth sign-in failed");
            ServiceError::Upstream(msg!(
                "web-oauth-failed",
                provider = provider.display_name.as_str()
            ))
        })
}

/// Whether this identity at the provider named `name` belongs to an account already.
pub async fn is_linked(ctx: &Ctx, name: &str, subject: &str) -> ServiceResult<bool> {
    Ok(db::oauth::identity(&ctx.db, name, subject).await?.is_some())
}

/// Whether this identity at the provider named `name` is one of the caller's own (a signed-in
/// person proving it is them again).
pub async fn is_own(ctx: &Ctx, caller: &Caller, name: &str, subject: &str) -> ServiceResult<bool> {
    let Some(user_id) = caller.account_id() else {
        return Ok(false);
    };
    Ok(db::oauth::identity(&ctx.db, name, subject)
        .await?
        .is_some_and(|identity| identity.user_id == user_id))
}

/// What a completed provider sign-in led to.
#[derive(Debug)]
pub enum Completion {
    /// The identity was linked already: its account signs in.
    SignedIn(Viewer),
    /// A new account was made for it.
    Registered(Viewer),
    /// It was linked to the signed-in person's account.
    Linked,
}

/// Finishes a sign-in the provider vouched for. With `link_to`, the identity is linked to
/// that (signed-in) account; otherwise its account signs in, or a new one is made under the
/// registration rules (with the inviter of `invite`, when the newcomer came by an invite link).
pub async fn complete(
    ctx: &Ctx,
    name: &str,
    identity: ProviderIdentity,
    link_to: Option<i64>,
    invite: Option<&str>,
) -> ServiceResult<Completion> {
    let provider = provider_named(ctx, name).await?;
    let provider = &provider;
    let known = db::oauth::identity(&ctx.db, &provider.name, &identity.subject).await?;
    let linked = |user_id: i64| IdentityRow {
        id: 0,
        user_id,
        provider: provider.name.clone(),
        subject: identity.subject.clone(),
        email: identity.email.clone().unwrap_or_default(),
        login: identity.login.clone().unwrap_or_default(),
        created_at: 0,
    };
    if let Some(user_id) = link_to {
        return match known {
            Some(existing) if existing.user_id == user_id => Ok(Completion::Linked),
            Some(_) => Err(ServiceError::conflict(
                "provider",
                msg!(
                    "oauth-identity-taken",
                    provider = provider.display_name.as_str()
                ),
            )),
            None => {
                let row = linked(user_id);
                ctx.write(&Caller::System, async |tx| {
                    Ok(db::oauth::link(tx, &row).await?)
                })
                .await
                .map_err(|e| match e {
                    ServiceError::Db(DbError::Conflict(_)) => ServiceError::conflict(
                        "provider",
                        msg!(
                            "oauth-identity-taken",
                            provider = provider.display_name.as_str()
                        ),
                    ),
                    other => other,
                })?;
                Ok(Completion::Linked)
            }
        };
    }
    if let Some(existing) = known {
        let user = super::users::find_id(&ctx.db, existing.user_id).await?;
        if user.status != Status::Active {
            return Err(ServiceError::Forbidden(msg!("account-disabled")));
        }
        return Ok(Completion::SignedIn(Viewer::of(&user)));
    }
    let inviter = super::invites::inviter_of(ctx, invite).await?;
    register(ctx, provider, &identity, linked, inviter).await
}

/// A first sign-in with an identity no account has: a new account, under the registration
/// rules, with a free username made from the provider's, and the address only when the
/// provider verified it.
async fn register(
    ctx: &Ctx,
    provider: &ProviderRow,
    identity: &ProviderIdentity,
    linked: impl Fn(i64) -> IdentityRow,
    inviter: Option<i64>,
) -> ServiceResult<Completion> {
    let options = super::options::current(&ctx.db).await?;
    if !options.registration_enabled {
        return Err(ServiceError::Forbidden(msg!("registration-closed")));
    }
    let email = identity
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| identity.email_verified && !e.is_empty())
        .and_then(|e| super::users::check_email(e).ok());
    if let Some(address) = &email {
        super::accounts::check_domain(&options, address)?;
        if db::users::find_by_login(&ctx.db, address).await?.is_some() {
            return Err(ServiceError::conflict(
                "email",
                msg!(
                    "oauth-email-has-account",
                    provider = provider.display_name.as_str()
                ),
            ));
        }
    } else if options.email_verification_required {
        return Err(ServiceError::Forbidden(msg!(
            "oauth-needs-verified-email",
            provider = provider.display_name.as_str()
        )));
    }
    let username = free_username(ctx, identity).await?;
    let rewards = super::invites::Rewards::of(&options)?;
    let bonus = options.new_user_quota_usd.clone();
    let quota = (bonus != "0" && !bonus.is_empty()).then_some(bonus);
    let input = CreateUser {
        username,
        password: None,
        email: email.clone(),
        role: None,
        group: None,
        quota_usd: quota,
        rate_limits: Default::default(),
    };
    let user = super::users::create_with(ctx, &Caller::System, input, async |tx, id| {
        if let Some(address) = &email {
            db::users::mark_email_verified(tx, id, address).await?;
        }
        db::oauth::link(tx, &linked(id)).await?;
        if let Some(inviter) = inviter {
            super::invites::on_signup(tx, id, inviter, rewards).await?;
        }
        Ok(())
    })
    .await?;
    Ok(Completion::Registered(Viewer::of(&user)))
}

/// A username no account has, from the provider's handle, the address's local part or the
/// name, kept to the characters usernames allow; a number is added while it is taken.
async fn free_username(ctx: &Ctx, identity: &ProviderIdentity) -> ServiceResult<String> {
    let candidates = [
        identity.login.clone(),
        identity
            .email
            .as_deref()
            .and_then(|e| e.split_once('@'))
            .map(|(local, _)| local.to_string()),
        identity.name.clone(),
    ];
    let base = candidates
        .into_iter()
        .flatten()
        .map(|c| username_from(&c))
        .find(|c| c.len() >= 2)
        .unwrap_or_else(|| "user".to_string());
    for attempt in 0..1000u32 {
        let candidate = if attempt == 0 {
            base.clone()
        } else {
            let suffix = attempt.to_string();
            let keep = 32usize.saturating_sub(suffix.len());
            format!("{}{suffix}", &base[..base.len().min(keep)])
        };
        if db::users::find_by_username(&ctx.db, &candidate)
            .await?
            .is_none()
        {
            return Ok(candidate);
        }
    }
    // A thousand taken variants: a random tail ends it.
    let tail: u32 = rand::random::<u32>() % 1_000_000;
    Ok(format!("{}{tail}", &base[..base.len().min(24)]))
}

/// Keeps what a username may hold (ASCII letters, digits, `_`, `-`, `.`), at most 32.
fn username_from(text: &str) -> String {
    text.chars()
        .map(|c| if c == ' ' { '_' } else { c })
        .filter(|c| c.is_ascii_alphanumeric() || "_-.".contains(*c))
        .take(32)
        .collect::<String>()
        .trim_matches(|c| c == '.' || c == '-')
        .to_string()
}

/// One identity linked to one's account, as the profile lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityView {
    pub id: i64,
    pub provider: String,
    /// How the person is known there: their handle, else their address, else the id.
    pub label: String,
}

/// The identities linked to the caller's own account.
pub async fn identities(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<IdentityView>> {
    let Some(user_id) = caller.account_id() else {
        return Ok(Vec::new());
    };
    identities_by_id(ctx, user_id).await
}

/// The identities linked to an account (administrators).
pub async fn identities_of(
    ctx: &Ctx,
    caller: &Caller,
    username: &str,
) -> ServiceResult<Vec<IdentityView>> {
    caller.require_admin()?;
    let user = super::users::find(&ctx.db, username).await?;
    identities_by_id(ctx, user.id).await
}

async fn identities_by_id(ctx: &Ctx, user_id: i64) -> ServiceResult<Vec<IdentityView>> {
    Ok(db::oauth::identities_of(&ctx.db, user_id)
        .await?
        .into_iter()
        .map(|identity| IdentityView {
            id: identity.id,
            label: [identity.login, identity.email, identity.subject]
                .into_iter()
                .find(|text| !text.is_empty())
                .unwrap_or_default(),
            provider: identity.provider,
        })
        .collect())
}

/// Unlinks one of the caller's own identities; another person's id is not found. The last
/// way into an account without a password stays: unlinking it would lock the person out.
pub async fn unlink(ctx: &Ctx, caller: &Caller, identity_id: i64) -> ServiceResult<()> {
    let Some(user_id) = caller.account_id() else {
        return Err(ServiceError::NotFound(msg!("oauth-identity-not-found")));
    };
    let has_password = super::users::find_id(&ctx.db, user_id)
        .await?
        .password_hash
        .is_some();
    ctx.write_own(caller, async |tx| {
        if !has_password && db::oauth::count_of(tx, user_id).await? <= 1 {
            return Err(ServiceError::Forbidden(msg!("oauth-last-way-in")));
        }
        if db::oauth::unlink(tx, identity_id, user_id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(msg!("oauth-identity-not-found")))
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_keep_what_usernames_allow() {
        assert_eq!(username_from("octo cat"), "octo_cat");
        assert_eq!(username_from("李雷 lei"), "_lei");
        assert_eq!(username_from("-.dots.-"), "dots");
        assert_eq!(username_from(&"x".repeat(40)).len(), 32);
        assert!(names::username(&username_from("a.b-c_d")).is_ok());
    }
}
