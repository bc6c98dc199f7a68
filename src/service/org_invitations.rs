//! Invitations into an organisation: by email (a single-use link, mailed, or shown to the
//! inviter when the site sends no mail) or by an existing username. Nobody becomes a member
//! without accepting.
//!
//! - An email invitation is accepted by a signed-in account whose proven (verified) email is
//!   the invited address; a username invitation by the account of that name. Accepting never
//!   skips registration, the site's address rules or verification, and pays no invite reward.
//! - An invitation is pending for seven days; accepting, declining and revoking are
//!   conditional updates of a pending, unexpired row, so of two answers racing, one wins and a
//!   link works once.
//! - Inviting a username that has no account answers exactly as for one that has: the
//!   invitation is kept and simply never accepted, so inviting does not reveal who has an
//!   account.
//! - Admins and the owner invite into any team with either role; a team's managers invite
//!   members into their own team.

use serde::Serialize;
use serde_json::json;

use super::orgs::{Access, access, org_change};
use super::{Caller, Ctx, ServiceError, ServiceResult};
use crate::domain::email;
use crate::domain::kinds::OrgRole;
use crate::domain::secret_key;
use crate::i18n::Lang;
use crate::mail::{self, Email};
use crate::msg;
use crate::service::db::org_invitations::{InvitationRow, NewInvitation};
use crate::service::db::{self, now_ms};
use crate::service::views::timestamp;

/// How long an invitation stays open.
pub const INVITATION_LIFETIME_MS: i64 = 7 * 24 * 3_600_000;

/// Pending invitations one organisation may have open at once: enough for onboarding a
/// department, few enough that a compromised admin cannot use the site as a mailer.
const MAX_PENDING: i64 = 200;

/// What an inviter typed.
#[derive(Debug, Clone, Default)]
pub struct Invite {
    pub email: Option<String>,
    pub username: Option<String>,
    /// `admin` or `member` (default `member`).
    pub role: Option<String>,
    /// A team id, as text from a form; empty: no team.
    pub team: Option<String>,
    pub manager: bool,
}

/// An invitation as its organisation's admins (and its invitee) see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    pub id: i64,
    pub org: String,
    pub org_name: String,
    /// The invited address, or empty for an invitation by username.
    pub email: String,
    /// The invited username, or empty for an invitation by email.
    pub username: String,
    pub role: String,
    pub team: Option<i64>,
    pub team_name: Option<String>,
    pub manager: bool,
    /// `pending`, `accepted`, `declined`, `revoked` or `expired`.
    pub state: String,
    pub created_at: String,
    pub expires_at: String,
}

/// An invitation just made or sent again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Invited {
    pub invitation: InvitationView,
    /// Whether the link went out by mail.
    pub mailed: bool,
    /// The link, when the site sends no mail: the inviter passes it on. Never present when
    /// it was mailed (only the invitee holds it then).
    pub link: Option<String>,
}

fn view(
    access_org: (&str, &str),
    row: &InvitationRow,
    team_name: Option<String>,
) -> InvitationView {
    let state = if row.state == "pending" && row.expires_at <= now_ms() {
        "expired".to_string()
    } else {
        row.state.clone()
    };
    InvitationView {
        id: row.id,
        org: access_org.0.to_string(),
        org_name: access_org.1.to_string(),
        email: row.email.clone(),
        username: row.username.clone(),
        role: row.role.as_str().to_string(),
        team: (row.team_id != 0).then_some(row.team_id),
        team_name,
        manager: row.manager,
        state,
        created_at: timestamp(row.created_at),
        expires_at: timestamp(row.expires_at),
    }
}

fn team_name(access: &Access, team_id: i64) -> Option<String> {
    access
        .tree
        .teams
        .iter()
        .find(|t| t.id == team_id)
        .map(|t| t.name.clone())
}

fn view_in(access: &Access, row: &InvitationRow) -> InvitationView {
    let org = access.org();
    view((&org.slug, &org.name), row, team_name(access, row.team_id))
}

/// The organisation's invitations, newest first: for those who may invite.
pub async fn list(ctx: &Ctx, caller: &Caller, slug: &str) -> ServiceResult<Vec<InvitationView>> {
    let access = access(ctx, caller, slug).await?;
    let managed: Vec<i64> = access
        .tree
        .teams
        .iter()
        .filter(|t| access.manages_team(t.id))
        .map(|t| t.id)
        .collect();
    if !access.manages_org() && managed.is_empty() {
        return Err(ServiceError::Forbidden(msg!("org-admins-only")));
    }
    let rows = db::org_invitations::of_org(&ctx.db, access.org().id, 500).await?;
    Ok(rows
        .iter()
        // A team's manager sees the invitations into their teams.
        .filter(|row| access.manages_org() || managed.contains(&row.team_id))
        .map(|row| view_in(&access, row))
        .collect())
}

/// Invites a person by email or username. `lang` is the language of the mail (the inviter's:
/// the invitee's is not known yet); `listen_url` the base of the link when `public_url` is
/// unset.
pub async fn invite(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    input: Invite,
    lang: Lang,
    listen_url: &str,
) -> ServiceResult<Invited> {
    let access = access(ctx, caller, slug).await?;
    let given = |text: &Option<String>| {
        text.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let (address, username) = match (given(&input.email), given(&input.username)) {
        (Some(_), Some(_)) => {
            return Err(ServiceError::invalid(
                "email",
                msg!("invite-email-or-username"),
            ));
        }
        (None, None) => {
            return Err(ServiceError::invalid(
                "email",
                msg!("invite-email-or-username"),
            ));
        }
        (Some(address), None) => {
            let address = email::parse(&address).map_err(|_| {
                ServiceError::invalid("email", msg!("email-invalid", value = address.as_str()))
            })?;
            (address, String::new())
        }
        (None, Some(username)) => (String::new(), username),
    };
    let role = match given(&input.role).as_deref() {
        None | Some("member") => OrgRole::Member,
        Some("admin") => OrgRole::Admin,
        Some(_) => return Err(ServiceError::invalid("role", msg!("invite-role-invalid"))),
    };
    let team_id = match given(&input.team) {
        None => 0,
        Some(text) => {
            let id = text.parse::<i64>().ok();
            match id.filter(|id| access.tree.teams.iter().any(|t| t.id == *id)) {
                Some(id) => id,
                None => return Err(ServiceError::invalid("team", msg!("invite-team-invalid"))),
            }
        }
    };
    if input.manager && team_id == 0 {
        return Err(ServiceError::invalid(
            "manager",
            msg!("invite-manager-needs-team"),
        ));
    }
    // A team's manager invites members into that team; everything else is the admins'.
    let allowed = access.manages_org()
        || (team_id != 0 && role == OrgRole::Member && access.manages_team(team_id));
    if !allowed {
        return Err(ServiceError::Forbidden(msg!("invite-not-allowed")));
    }
    if !username.is_empty()
        && let Ok(user) = super::users::find(&ctx.db, &username).await
        && access.tree.member(user.id).is_some()
        && team_id == 0
    {
        return Err(ServiceError::conflict(
            "username",
            msg!("org-already-member", name = user.username.as_str()),
        ));
    }
    let secret = (!address.is_empty()).then(|| secret_key::generate(""));
    let org = access.org().clone();
    let team_name = team_name_in(&access.tree, team_id);
    let inviter = match caller {
        Caller::User(id) | Caller::Admin { user_id: id, .. } => *id,
        Caller::Cli | Caller::System => 0,
    };
    let now = now_ms();
    let id = ctx
        .write(caller, async |tx| {
            db::orgs::lock(tx, org.id).await?;
            if db::org_invitations::pending_count_in(tx, org.id, now).await? >= MAX_PENDING {
                return Err(ServiceError::Forbidden(msg!(
                    "invite-too-many",
                    max = MAX_PENDING
                )));
            }
            let id = db::org_invitations::insert(
                tx,
                &NewInvitation {
                    org_id: org.id,
                    token_hash: secret.as_ref().map(|s| s.hash.as_str()),
                    email: &address,
                    username: &username,
                    role,
                    team_id,
                    manager: input.manager,
                    invited_by: inviter,
                    now_ms: now,
                    expires_at: now + INVITATION_LIFETIME_MS,
                },
            )
            .await?;
            tx.audit(org_change(
                "org.invitation.create",
                &org,
                json!({}),
                None,
                Some(json!({
                    "invitation": id,
                    "email": address,
                    "username": username,
                    "role": role.as_str(),
                    "team_id": team_id,
                    "team": team_name,
                    "manager": input.manager,
                })),
            ));
            Ok(id)
        })
        .await?;
    let row = db::org_invitations::find(&ctx.db, org.id, id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("invitation-not-found")))?;
    let (mailed, link) = match secret {
        Some(secret) => send_link(ctx, &access, &row, &secret.plain, lang, listen_url).await?,
        None => (false, None),
    };
    Ok(Invited {
        invitation: view_in(&access, &row),
        mailed,
        link,
    })
}

/// Mails an invitation's link, or hands it back when the site sends no mail.
async fn send_link(
    ctx: &Ctx,
    access: &Access,
    row: &InvitationRow,
    token: &str,
    lang: Lang,
    listen_url: &str,
) -> ServiceResult<(bool, Option<String>)> {
    let options = super::options::current(&ctx.db).await?;
    let link = format!("{}/invitations/{token}", options.base_url(listen_url));
    let Some(settings) = mail::SmtpSettings::from_options(&options) else {
        return Ok((false, Some(link)));
    };
    let org = access.org();
    let days = (INVITATION_LIFETIME_MS / 86_400_000).to_string();
    let message = Email {
        to: row.email.clone(),
        subject: crate::i18n::text(
            lang,
            "mail-org-invite-subject",
            &[("org", &org.name), ("site", &options.site_name)],
        ),
        text: crate::i18n::text(
            lang,
            "mail-org-invite-text",
            &[
                ("org", &org.name),
                ("site", &options.site_name),
                ("role", row.role.as_str()),
                ("link", &link),
                ("days", &days),
            ],
        ),
    };
    match mail::send(&settings, message).await {
        Ok(()) => Ok((true, None)),
        Err(error) => {
            tracing::warn!(%error, invitation = row.id, "an invitation could not be mailed");
            Err(ServiceError::Upstream(msg!(
                "mail-failed",
                reason = error.to_string()
            )))
        }
    }
}

/// A pending invitation of the organisation that the caller may manage.
async fn managed(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    id: i64,
) -> ServiceResult<(Access, InvitationRow)> {
    let access = access(ctx, caller, slug).await?;
    let row = db::org_invitations::find(&ctx.db, access.org().id, id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("invitation-not-found")))?;
    let allowed = access.manages_org() || (row.team_id != 0 && access.manages_team(row.team_id));
    if !allowed {
        return Err(ServiceError::Forbidden(msg!("invite-not-allowed")));
    }
    Ok((access, row))
}

/// Sends an email invitation's link again, with a new link and seven more days (the old link
/// stops working).
pub async fn resend(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    id: i64,
    lang: Lang,
    listen_url: &str,
) -> ServiceResult<Invited> {
    let (access, row) = managed(ctx, caller, slug, id).await?;
    if row.email.is_empty() {
        return Err(ServiceError::invalid(
            "email",
            msg!("invite-resend-email-only"),
        ));
    }
    let secret = secret_key::generate("");
    let now = now_ms();
    let org = access.org().clone();
    ctx.write(caller, async |tx| {
        if !db::org_invitations::renew(
            tx,
            id,
            org.id,
            &secret.hash,
            now + INVITATION_LIFETIME_MS,
            now,
        )
        .await?
        {
            return Err(ServiceError::Conflict {
                field: None,
                message: msg!("invitation-answered"),
            });
        }
        tx.audit(org_change(
            "org.invitation.resend",
            &org,
            json!({}),
            None,
            Some(json!({ "invitation": id, "email": row.email })),
        ));
        Ok(())
    })
    .await?;
    let row = db::org_invitations::find(&ctx.db, org.id, id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("invitation-not-found")))?;
    let (mailed, link) = send_link(ctx, &access, &row, &secret.plain, lang, listen_url).await?;
    Ok(Invited {
        invitation: view_in(&access, &row),
        mailed,
        link,
    })
}

/// Withdraws a pending invitation: its link stops working.
pub async fn revoke(ctx: &Ctx, caller: &Caller, slug: &str, id: i64) -> ServiceResult<()> {
    let (access, row) = managed(ctx, caller, slug, id).await?;
    let org = access.org().clone();
    let by = match caller {
        Caller::User(id) | Caller::Admin { user_id: id, .. } => *id,
        Caller::Cli | Caller::System => 0,
    };
    ctx.write(caller, async |tx| {
        if !db::org_invitations::answer(tx, row.id, "revoked", by, now_ms()).await? {
            return Err(ServiceError::Conflict {
                field: None,
                message: msg!("invitation-answered"),
            });
        }
        tx.audit(org_change(
            "org.invitation.revoke",
            &org,
            json!({}),
            None,
            Some(json!({ "invitation": row.id, "email": row.email, "username": row.username })),
        ));
        Ok(())
    })
    .await
}

/// The invitation a link names, as its holder sees it (anyone holding the link may see which
/// organisation invites them; only the invited account may accept).
pub async fn by_link(ctx: &Ctx, token: &str) -> ServiceResult<InvitationView> {
    let row = row_by_link(ctx, token).await?;
    let org = db::orgs::find(&ctx.db, row.org_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("invitation-not-found")))?;
    let team = if row.team_id == 0 {
        None
    } else {
        db::orgs::team_labels(&ctx.db, &[row.team_id])
            .await?
            .into_iter()
            .next()
            .map(|(_, _, team)| team)
    };
    Ok(view((&org.slug, &org.name), &row, team))
}

async fn row_by_link(ctx: &Ctx, token: &str) -> ServiceResult<InvitationRow> {
    let token = token.trim();
    if token.is_empty() || token.len() > 128 {
        return Err(ServiceError::NotFound(msg!("invitation-not-found")));
    }
    db::org_invitations::by_token_hash(&ctx.db, &secret_key::hash(token))
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("invitation-not-found")))
}

/// Pending invitations by username for the signed-in person, with their organisations.
pub async fn mine(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<InvitationView>> {
    let (Caller::User(user_id) | Caller::Admin { user_id, .. }) = *caller else {
        return Ok(Vec::new());
    };
    let user = super::users::find_id(&ctx.db, user_id).await?;
    let rows = db::org_invitations::pending_for_username(&ctx.db, &user.username, now_ms()).await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(org) = db::orgs::find(&ctx.db, row.org_id).await? {
            views.push(view((&org.slug, &org.name), &row, None));
        }
    }
    Ok(views)
}

/// How an invitation is named by the one answering it.
pub enum Answering<'a> {
    /// The token of an email invitation's link.
    Link(&'a str),
    /// The id of an invitation by username.
    Id(i64),
}

/// Accepts an invitation as the signed-in person; returns the organisation's slug.
pub async fn accept(ctx: &Ctx, caller: &Caller, answering: Answering<'_>) -> ServiceResult<String> {
    answer(ctx, caller, answering, true).await
}

/// Declines an invitation as the signed-in person.
pub async fn decline(ctx: &Ctx, caller: &Caller, answering: Answering<'_>) -> ServiceResult<()> {
    answer(ctx, caller, answering, false).await.map(|_| ())
}

async fn answer(
    ctx: &Ctx,
    caller: &Caller,
    answering: Answering<'_>,
    accepting: bool,
) -> ServiceResult<String> {
    let (Caller::User(user_id) | Caller::Admin { user_id, .. }) = *caller else {
        return Err(ServiceError::Forbidden(msg!("invitation-sign-in")));
    };
    let row = match answering {
        Answering::Link(token) => row_by_link(ctx, token).await?,
        Answering::Id(id) => {
            let rows = db::org_invitations::pending_for_username(
                &ctx.db,
                &super::users::find_id(&ctx.db, user_id).await?.username,
                now_ms(),
            )
            .await?;
            rows.into_iter()
                .find(|row| row.id == id)
                .ok_or_else(|| ServiceError::NotFound(msg!("invitation-not-found")))?
        }
    };
    let user = super::users::find_id(&ctx.db, user_id).await?;
    let invited = if row.email.is_empty() {
        user.username.to_lowercase() == row.username.to_lowercase()
    } else {
        user.email_verified
            && user.email.as_deref().is_some_and(|address| {
                email::comparison_key(address) == email::comparison_key(&row.email)
            })
    };
    if !invited {
        let message = if row.email.is_empty() {
            msg!("invitation-other-account")
        } else if user.email.is_some() && !user.email_verified {
            msg!("invitation-verify-first", email = row.email.as_str())
        } else {
            msg!("invitation-other-address", email = row.email.as_str())
        };
        return Err(ServiceError::Forbidden(message));
    }
    if row.state != "pending" || row.expires_at <= now_ms() {
        return Err(ServiceError::Conflict {
            field: None,
            message: msg!("invitation-answered"),
        });
    }
    let org = db::orgs::find(&ctx.db, row.org_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("invitation-not-found")))?;
    let tree = db::orgs::tree(&ctx.db, org.id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("invitation-not-found")))?;
    let already = tree.member(user_id).is_some();
    let team_exists = tree.teams.iter().any(|t| t.id == row.team_id);
    let team_name = team_name_in(&tree, row.team_id);
    let in_team = tree.membership(row.team_id, user_id).is_some();
    ctx.write(caller, async |tx| {
        let state = if accepting { "accepted" } else { "declined" };
        if !db::org_invitations::answer(tx, row.id, state, user_id, now_ms()).await? {
            return Err(ServiceError::Conflict {
                field: None,
                message: msg!("invitation-answered"),
            });
        }
        if accepting {
            if !already {
                db::orgs::add_member(tx, org.id, user_id, row.role).await?;
            }
            if team_exists && !in_team {
                db::orgs::put_team_member(tx, org.id, row.team_id, user_id, row.manager, None)
                    .await?;
            }
        }
        tx.audit(org_change(
            if accepting {
                "org.invitation.accept"
            } else {
                "org.invitation.decline"
            },
            &org,
            json!({}),
            None,
            Some(json!({
                "invitation": row.id,
                "username": user.username,
                "role": row.role.as_str(),
                "team_id": row.team_id,
                "team": team_name,
                "manager": row.manager,
            })),
        ));
        Ok(())
    })
    .await?;
    Ok(org.slug)
}

/// A team's name for the audit log (empty: no team, or one deleted since).
fn team_name_in(tree: &db::orgs::OrgTree, team_id: i64) -> String {
    tree.teams
        .iter()
        .find(|t| t.id == team_id)
        .map(|t| t.name.clone())
        .unwrap_or_default()
}
