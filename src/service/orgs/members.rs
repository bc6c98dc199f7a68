//! Who belongs to an organisation, and in what role.

use serde_json::json;

use super::{Access, OrgView, access, org_change, show_by_id, team_change};
use crate::domain::kinds::OrgRole;
use crate::msg;
use crate::service::{Caller, Ctx, ServiceError, ServiceResult, audit, db};

/// A person put into an organisation directly.
#[derive(Debug, Clone, Default)]
pub struct AddMember {
    pub username: String,
    /// `admin` or `member` (default).
    pub role: Option<String>,
    /// A team (by name) to put them in as well.
    pub team: Option<String>,
    /// Whether they manage that team.
    pub manager: bool,
}

/// `admin` or `member`: an organisation gets its owner by a transfer, never by a role change.
fn parse_role(text: &str) -> ServiceResult<OrgRole> {
    match OrgRole::parse(text) {
        Some(OrgRole::Owner) => Err(ServiceError::invalid(
            "role",
            msg!("org-role-owner-by-transfer"),
        )),
        Some(role) => Ok(role),
        None => Err(ServiceError::invalid(
            "role",
            msg!(
                "choice-invalid",
                value = text.trim(),
                choices = "admin, member"
            ),
        )),
    }
}

/// Puts a person into an organisation (and a team) at once. Platform administrators only:
/// people join an organisation by accepting an invitation, so nobody is made a member of
/// one without agreeing to it.
pub async fn add_member(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    input: AddMember,
) -> ServiceResult<OrgView> {
    let access = access(ctx, caller, slug).await?;
    if !access.platform {
        return Err(ServiceError::Forbidden(msg!("org-add-member-admins-only")));
    }
    let role = match input.role.as_deref().map(str::trim) {
        Some(text) if !text.is_empty() => parse_role(text)?,
        _ => OrgRole::Member,
    };
    let user = crate::service::users::find(&ctx.db, input.username.trim())
        .await
        .map_err(|e| match e {
            ServiceError::NotFound(message) => ServiceError::invalid("username", message),
            other => other,
        })?;
    if access.tree.member(user.id).is_some() {
        return Err(ServiceError::conflict(
            "username",
            msg!("org-already-member", name = user.username.as_str()),
        ));
    }
    let team = match input.team.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => Some(access.team(name)?.clone()),
        _ => None,
    };
    let org = access.org().clone();
    ctx.write(caller, async |tx| {
        db::orgs::add_member(tx, org.id, user.id, role)
            .await
            .map_err(crate::service::conflict(
                "username",
                msg!("org-already-member", name = user.username.as_str()),
            ))?;
        tx.audit(org_change(
            "org.member.add",
            &org,
            json!({ "username": user.username }),
            None,
            Some(json!({ "role": role.as_str() })),
        ));
        if let Some(team) = &team {
            db::orgs::put_team_member(tx, org.id, team.id, user.id, input.manager, None).await?;
            tx.audit(team_change(
                "team.member.add",
                &org,
                (team.id, &team.name),
                json!({ "username": user.username }),
                None,
                Some(json!({ "manager": input.manager, "cap_quota": null })),
            ));
        }
        Ok(())
    })
    .await?;
    show_by_id(ctx, caller, org.id).await
}

/// Changes a member's role (`admin` or `member`); the owner's changes only by a transfer.
pub async fn update_member(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    username: &str,
    role: &str,
) -> ServiceResult<OrgView> {
    let access = access(ctx, caller, slug).await?;
    access.require_manages_org()?;
    let role = parse_role(role)?;
    let member = access.member_named(username)?.clone();
    if member.role == OrgRole::Owner {
        return Err(ServiceError::Forbidden(msg!("org-owner-role-fixed")));
    }
    let org = access.org().clone();
    if member.role != role {
        ctx.write(caller, async |tx| {
            db::orgs::set_role(tx, org.id, member.user_id, role).await?;
            tx.audit(org_change(
                "org.member.update",
                &org,
                json!({ "username": member.username }),
                Some(json!({ "role": member.role.as_str() })),
                Some(json!({ "role": role.as_str() })),
            ));
            Ok(())
        })
        .await?;
    }
    show_by_id(ctx, caller, org.id).await
}

async fn take_out(
    ctx: &Ctx,
    caller: &Caller,
    access: &Access,
    member: &db::orgs::OrgMemberRow,
    action: &'static str,
) -> ServiceResult<()> {
    if member.role == OrgRole::Owner {
        return Err(ServiceError::Forbidden(msg!("org-owner-cannot-leave")));
    }
    let org = access.org().clone();
    ctx.write(caller, async |tx| {
        let keys = db::orgs::remove_member(tx, org.id, member.user_id).await?;
        tx.audit(org_change(
            action,
            &org,
            json!({ "username": member.username }),
            Some(json!({ "role": member.role.as_str(), "keys_deleted": keys })),
            None,
        ));
        for id in keys {
            tx.audit(audit::change(
                "key.delete",
                format!("key:{id}"),
                Some(json!({ "user": member.username, "org": org.slug })),
                None,
                &[],
            ));
        }
        Ok(())
    })
    .await
}

/// Takes a member out of the organisation, with their team memberships and team keys. The
/// owner cannot be removed: they hand the organisation on first.
pub async fn remove_member(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    username: &str,
) -> ServiceResult<()> {
    let access = access(ctx, caller, slug).await?;
    access.require_manages_org()?;
    let member = access.member_named(username)?.clone();
    take_out(ctx, caller, &access, &member, "org.member.remove").await
}

/// The caller leaves the organisation (anyone but the owner).
pub async fn leave(ctx: &Ctx, caller: &Caller, slug: &str) -> ServiceResult<()> {
    let access = access(ctx, caller, slug).await?;
    let Some(me) = access.me.clone() else {
        return Err(super::not_found(slug));
    };
    take_out(ctx, caller, &access, &me, "org.member.remove").await
}
