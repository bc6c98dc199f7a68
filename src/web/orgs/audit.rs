//! `/orgs/{slug}/audit`: the organisation's changes — budgets, caps, roles, members,
//! invitations, the wallet, its settings — newest first, a page at a time, filtered by kind:
//! who made each, when (in the organisation's zone), what and what it was before and after,
//! in words. For its admins and owner (and site administrators); to anyone else the page does
//! not exist, as the service answers.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{OrgFrame, per_period, role_key};
use crate::domain::calendar::SiteCalendar;
use crate::domain::kinds::{BudgetPeriod, OrgRole};
use crate::domain::org_changes::OrgChangeKind;
use crate::service::ServiceError;
use crate::service::orgs::{self, FieldChange, HistoryQuery, OrgChange};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::FieldErrors;
use crate::web::page::{Page, SignedIn, urlencode};

/// The page's address: the kind it shows and where it starts.
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    kind: String,
    before: Option<i64>,
}

/// A field's change in words: "Budget: $500.00 a month → $800.00 a month".
pub struct Detail {
    label: String,
    /// Empty for a creation.
    before: String,
    /// Empty for a deletion.
    after: String,
}

/// One change as the page lists it.
pub struct Line {
    id: i64,
    time: String,
    datetime: String,
    who: String,
    kind: String,
    what: String,
    details: Vec<Detail>,
}

#[derive(Template, WebTemplate)]
#[template(path = "orgs/audit.html")]
pub struct AuditPage {
    page: Page,
    frame: OrgFrame,
    kind: String,
    /// (value, text) of each kind.
    kinds: Vec<(&'static str, String)>,
    lines: Vec<Line>,
    /// The zone the times are in.
    zone: String,
    /// The next, older page's address.
    older: Option<String>,
    /// The newest page's address, when this is not it.
    newest: Option<String>,
    errors: FieldErrors,
}

/// The text key of a kind of change.
fn kind_key(kind: OrgChangeKind) -> &'static str {
    match kind {
        OrgChangeKind::Settings => "org-audit-kind-settings",
        OrgChangeKind::Teams => "org-audit-kind-teams",
        OrgChangeKind::Budgets => "org-audit-kind-budgets",
        OrgChangeKind::Caps => "org-audit-kind-caps",
        OrgChangeKind::Roles => "org-audit-kind-roles",
        OrgChangeKind::Members => "org-audit-kind-members",
        OrgChangeKind::Invitations => "org-audit-kind-invitations",
        OrgChangeKind::Wallet => "org-audit-kind-wallet",
    }
}

pub async fn page(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Query(filters): Query<Filters>,
) -> Result<Response, WebError> {
    let caller = user.caller();
    let query = HistoryQuery {
        kind: Some(filters.kind.clone()),
        before: filters.before,
        limit: None,
    };
    // The history is asked first: to a member who may not read it, the organisation does
    // not exist, before anything of it is shown.
    let (history, errors) = match orgs::history(&state.ctx, &caller, &slug, &query).await {
        Ok(history) => (Some(history), FieldErrors::default()),
        Err(error @ ServiceError::Invalid(_)) => {
            (None, FieldErrors::from_service(&error, page.lang, &[]))
        }
        Err(error) => return Err(page.failed(error)),
    };
    let (view, frame) = super::load(&state, &page, &user, &slug, "audit").await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let base = format!("/orgs/{}/audit", view.slug);
    let kind_query = match filters.kind.trim() {
        "" => String::new(),
        kind => format!("kind={}", urlencode(kind)),
    };
    let address = |before: Option<i64>| {
        let parts: Vec<String> = [
            Some(kind_query.clone()).filter(|q| !q.is_empty()),
            before.map(|id| format!("before={id}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            base.clone()
        } else {
            format!("{base}?{}", parts.join("&"))
        }
    };
    let (lines, zone, older) = match &history {
        Some(history) => {
            let calendar = SiteCalendar::new(&history.zone);
            let lines = history
                .changes
                .iter()
                .map(|change| line_of(&page, &calendar, change))
                .collect();
            let older = history.older.map(|id| address(Some(id)));
            (lines, history.zone.clone(), older)
        }
        None => (Vec::new(), view.effective_timezone.clone(), None),
    };
    let newest = filters.before.map(|_| address(None));
    let kinds = OrgChangeKind::ALL
        .iter()
        .map(|kind| (kind.as_str(), page.t(kind_key(*kind))))
        .collect();
    let rendered = AuditPage {
        kind: filters.kind.trim().to_string(),
        kinds,
        lines,
        zone,
        older,
        newest,
        errors,
        frame,
        page,
    };
    Ok((status, rendered).into_response())
}

fn line_of(page: &Page, calendar: &SiteCalendar, change: &OrgChange) -> Line {
    let who = if change.actor == "cli" {
        page.t("org-audit-cli")
    } else {
        change.actor.clone()
    };
    Line {
        id: change.id,
        time: calendar.local_time(change.at),
        datetime: calendar.rfc3339(change.at),
        who,
        kind: change
            .kind
            .map(|kind| page.t(kind_key(kind)))
            .unwrap_or_default(),
        what: what(page, change),
        details: details(page, change),
    }
}

/// What was done, in a sentence naming whom or which team it was about.
fn what(page: &Page, change: &OrgChange) -> String {
    let team = change.team.clone().unwrap_or_default();
    let name = change.username.clone().unwrap_or_default();
    // An invitation is to an address or a username.
    let invited = change
        .field("email")
        .and_then(|f| f.after.as_ref().or(f.before.as_ref()))
        .and_then(Value::as_str)
        .filter(|email| !email.is_empty())
        .map_or_else(|| name.clone(), str::to_string);
    let key = match change.action.as_str() {
        "org.create" => "org-audit-org-create",
        "org.update" => "org-audit-org-update",
        "org.budget" => "org-audit-org-budget",
        "org.delete" => "org-audit-org-delete",
        "org.transfer" => match change.field("owner") {
            Some(_) => "org-audit-org-transfer-done",
            None => match change.field("offered_to").and_then(|f| f.after.as_ref()) {
                Some(Value::String(_)) => "org-audit-org-transfer-offer",
                _ => "org-audit-org-transfer-cancel",
            },
        },
        "org.member.add" => "org-audit-member-add",
        "org.member.update" => "org-audit-member-role",
        // Leaving is taking oneself out.
        "org.member.remove" if change.actor == name => "org-audit-member-left",
        "org.member.remove" => "org-audit-member-remove",
        "org.wallet.adjust" => "org-audit-wallet-adjust",
        "org.wallet.redeem" => "org-audit-wallet-redeem",
        "org.wallet.topup" => "org-audit-wallet-topup",
        "org.invitation.create" => "org-audit-invitation-create",
        "org.invitation.resend" => "org-audit-invitation-resend",
        "org.invitation.revoke" => "org-audit-invitation-revoke",
        "org.invitation.accept" => "org-audit-invitation-accept",
        "org.invitation.decline" => "org-audit-invitation-decline",
        "team.create" => "org-audit-team-create",
        "team.update" => "org-audit-team-update",
        "team.budget" => "org-audit-team-budget",
        "team.cap" => "org-audit-team-cap",
        "team.delete" => "org-audit-team-delete",
        "team.member.add" => "org-audit-team-member-add",
        "team.member.manager" => "org-audit-team-member-manager",
        "team.member.cap" => "org-audit-team-member-cap",
        "team.member.remove" if change.actor == name => "org-audit-team-member-left",
        "team.member.remove" => "org-audit-team-member-remove",
        _ => "org-audit-other",
    };
    crate::i18n::text(
        page.lang,
        key,
        &[
            ("name", &name),
            ("team", &team),
            ("who", &invited),
            ("action", &change.action),
        ],
    )
}

/// The fields a change set, each in words; a budget's period and amount as one.
fn details(page: &Page, change: &OrgChange) -> Vec<Detail> {
    // A deletion keeps the settings of what it deleted in one object: its fields are listed.
    let mut fields: Vec<FieldChange> = Vec::new();
    for field in &change.fields {
        match (&field.name[..], &field.before, &field.after) {
            ("settings", Some(Value::Object(inner)), None) => {
                fields.extend(inner.iter().map(|(name, value)| FieldChange {
                    name: name.clone(),
                    before: Some(value.clone()),
                    after: None,
                }));
            }
            _ => fields.push(field.clone()),
        }
    }
    fields.sort_by_key(|f| FIELD_ORDER.iter().position(|name| *name == f.name));
    // A budget's period and amount on one side, in words ("$500.00 a month").
    let budget = |after: bool| {
        let side = |name: &str| {
            let field = fields.iter().find(|f| f.name == name)?;
            if after {
                field.after.clone()
            } else {
                field.before.clone()
            }
        };
        let period = side("budget_period")?;
        Some(budget_text(page, &period, side("budget_quota").as_ref()))
    };
    let label = |key: &str| page.t1("org-audit-field-label", "label", &page.t(key));
    let mut out = Vec::new();
    // An invitation's team is part of what it offers.
    if change.action.starts_with("org.invitation.")
        && let Some(team) = &change.team
    {
        out.push(Detail {
            label: label("org-audit-field-team"),
            before: String::new(),
            after: team.clone(),
        });
    }
    if fields.iter().any(|f| f.name.starts_with("budget_")) {
        out.push(Detail {
            label: label("org-audit-field-budget"),
            before: budget(false).unwrap_or_default(),
            after: budget(true).unwrap_or_default(),
        });
    }
    for field in &fields {
        let Some(key) = label_key(&field.name) else {
            continue;
        };
        let say = |value: &Option<Value>| {
            value
                .as_ref()
                .map(|v| value_text(page, &field.name, v))
                .unwrap_or_default()
        };
        out.push(Detail {
            label: label(key),
            before: say(&field.before),
            after: say(&field.after),
        });
    }
    out
}

/// The order a change's fields are listed in: what it is, then who, then money.
const FIELD_ORDER: [&str; 19] = [
    "name",
    "slug",
    "owner",
    "offered_to",
    "email",
    "role",
    "manager",
    "budget_period",
    "budget_quota",
    "member_cap_quota",
    "cap_quota",
    "groups",
    "group",
    "timezone",
    "quota",
    "amount",
    "reason",
    "code",
    "keys_deleted",
];

/// The text key of a field's label; None for fields the page does not show (ids, the budget
/// shown as one, the context).
fn label_key(name: &str) -> Option<&'static str> {
    let key = match name {
        "name" => "org-audit-field-name",
        "slug" => "org-audit-field-slug",
        "timezone" => "org-audit-field-timezone",
        "group" => "org-audit-field-group",
        "groups" => "org-audit-field-groups",
        "owner" => "org-audit-field-owner",
        "offered_to" => "org-audit-field-offered-to",
        "role" => "org-audit-field-role",
        "manager" => "org-audit-field-manager",
        "member_cap_quota" => "org-audit-field-member-cap",
        "cap_quota" => "org-audit-field-cap",
        "quota" => "org-audit-field-balance",
        "amount" => "org-audit-field-amount",
        "reason" => "org-audit-field-reason",
        "code" => "org-audit-field-code",
        "email" => "org-audit-field-email",
        "keys_deleted" => "org-audit-field-keys-deleted",
        _ => return None,
    };
    Some(key)
}

/// "$500.00 a month", or "No budget".
fn budget_text(page: &Page, period: &Value, quota: Option<&Value>) -> String {
    let period = period.as_str().and_then(BudgetPeriod::parse);
    match (period, quota.and_then(Value::as_i64)) {
        (Some(period), Some(quota)) => per_period(page, quota, period),
        _ => page.t("web-org-no-budget"),
    }
}

/// A field's value in words: money in dollars, roles and flags in the reader's language.
fn value_text(page: &Page, name: &str, value: &Value) -> String {
    let none = |key: &str| page.t(key);
    match (name, value) {
        ("member_cap_quota", Value::Null) => none("web-org-no-cap"),
        ("cap_quota", Value::Null) => none("org-audit-team-default"),
        ("member_cap_quota" | "cap_quota" | "quota" | "amount", value) => value
            .as_i64()
            .map(|units| page.usd(&units))
            .unwrap_or_default(),
        ("timezone", Value::String(zone_name)) if zone_name.is_empty() => {
            // Empty is the site's zone, whatever it is now.
            page.t1("org-audit-site-zone", "zone", page.calendar.zone_name())
        }
        ("groups", Value::String(groups)) if groups.is_empty() => none("org-audit-org-group"),
        ("role", Value::String(role)) => OrgRole::parse(role)
            .map(|r| page.t(role_key(r)))
            .unwrap_or_else(|| role.clone()),
        ("manager", Value::Bool(true)) => none("org-audit-yes"),
        ("manager", Value::Bool(false)) => none("org-audit-no"),
        ("keys_deleted", Value::Array(keys)) => keys.len().to_string(),
        ("owner" | "offered_to", Value::Null) => none("org-audit-nobody"),
        (_, Value::Null) => none("org-audit-none"),
        (_, Value::String(text)) => text.clone(),
        (_, other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_shown_has_a_label_and_ids_none() {
        for name in [
            "name",
            "slug",
            "role",
            "manager",
            "cap_quota",
            "quota",
            "reason",
        ] {
            assert!(label_key(name).is_some(), "{name}");
        }
        for name in [
            "invitation",
            "team_id",
            "org",
            "team",
            "username",
            "budget_quota",
        ] {
            assert!(label_key(name).is_none(), "{name}");
        }
    }
}
