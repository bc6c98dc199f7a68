//! An organisation's history: the audit log's rows about it and its teams (budgets, caps,
//! roles, members, invitations, the wallet, its settings), newest first, for its admins, its
//! owner and platform administrators. The rows name the organisation and its teams by id,
//! so renaming either keeps the history whole; the names they had are kept in the rows.

use serde_json::Value;

use super::{access, calendar_of, not_found};
use crate::domain::org_changes::OrgChangeKind;
use crate::msg;
use crate::service::{Caller, Ctx, ServiceError, ServiceResult, db};

/// Rows on a page unless asked otherwise, and the most one page holds.
const PAGE_ROWS: i64 = 50;
const MAX_ROWS: i64 = 200;

/// The fields of a row that say what a change was about rather than what it changed.
const CONTEXT: [&str; 3] = ["org", "team", "username"];

/// Which changes a page wants.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// A kind of change (`budgets`, `members`, …); empty: every kind.
    pub kind: Option<String>,
    /// Rows older than this id (the next page).
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

/// A field a change set, with its value before and after (None: the side has none, as
/// for a creation or a deletion).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub name: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// One change in the organisation.
#[derive(Debug, Clone)]
pub struct OrgChange {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// A username, or `cli`.
    pub actor: String,
    /// How they were signed in: `session`, `admin_token:ID`, `cli`.
    pub auth: String,
    pub action: String,
    /// The kind it is shown as (None: an action the page does not know).
    pub kind: Option<OrgChangeKind>,
    /// The team it was about, by the name it had then.
    pub team: Option<String>,
    /// The member (or invited username) it was about.
    pub username: Option<String>,
    /// What it set: the fields that differ, or every field of a creation or deletion.
    pub fields: Vec<FieldChange>,
    /// The wallet's ledger row it wrote.
    pub ledger_id: Option<i64>,
}

impl OrgChange {
    /// The field named `name`, if the change set it.
    pub fn field(&self, name: &str) -> Option<&FieldChange> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A page of the history.
#[derive(Debug, Clone)]
pub struct OrgHistory {
    pub changes: Vec<OrgChange>,
    /// What to ask as `before` for the next, older page (None: this is the last).
    pub older: Option<i64>,
    /// The zone the organisation's days are in.
    pub zone: String,
}

/// The organisation's changes, newest first: for its admins, its owner and platform
/// administrators; anyone else is told it does not exist.
pub async fn history(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    query: &HistoryQuery,
) -> ServiceResult<OrgHistory> {
    let access = access(ctx, caller, slug).await?;
    if !access.manages_org() {
        return Err(not_found(slug));
    }
    let kind = match query.kind.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(OrgChangeKind::parse(text).ok_or_else(|| {
            let choices = OrgChangeKind::ALL.map(OrgChangeKind::as_str).join(", ");
            ServiceError::invalid(
                "kind",
                msg!("choice-invalid", value = text, choices = choices),
            )
        })?),
    };
    let limit = query.limit.unwrap_or(PAGE_ROWS);
    if !(1..=MAX_ROWS).contains(&limit) {
        return Err(ServiceError::invalid(
            "limit",
            msg!("filter-limit-range", max = MAX_ROWS),
        ));
    }
    let org = access.org();
    // One row more than the page tells whether an older page exists.
    let mut rows = db::audit::list_for_org(
        &ctx.db,
        org.id,
        kind.map(OrgChangeKind::actions),
        query.before,
        limit + 1,
    )
    .await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let older = more.then(|| rows.last().map(|r| r.id)).flatten();
    let changes = rows
        .into_iter()
        .map(|row| {
            let team = context(&row.before, &row.after, "team").or_else(|| {
                // Rows that name no team: its name now, from the id in the target.
                let id = row.target.rsplit_once("/team:")?.1.parse::<i64>().ok()?;
                access
                    .tree
                    .teams
                    .iter()
                    .find(|t| t.id == id)
                    .map(|t| t.name.clone())
            });
            OrgChange {
                id: row.id,
                at: row.at,
                kind: OrgChangeKind::of_action(&row.action),
                team,
                username: context(&row.before, &row.after, "username"),
                fields: fields_of(row.before.as_ref(), row.after.as_ref()),
                actor: row.actor,
                auth: row.auth,
                action: row.action,
                ledger_id: row.ledger_id,
            }
        })
        .collect();
    Ok(OrgHistory {
        changes,
        older,
        zone: calendar_of(&ctx.db, org).await?.zone_name().to_string(),
    })
}

/// A context field's text, from whichever side has it.
fn context(before: &Option<Value>, after: &Option<Value>, name: &str) -> Option<String> {
    [after, before]
        .into_iter()
        .flatten()
        .find_map(|side| side.get(name)?.as_str().map(str::to_string))
        .filter(|text| !text.is_empty())
}

/// The fields a change set, in the order the row has them: those that differ between the
/// sides (all of them for a creation or deletion), the context aside. A budget's period and
/// amount go together: when either changed, both are there to say the whole budget.
fn fields_of(before: Option<&Value>, after: Option<&Value>) -> Vec<FieldChange> {
    let mut names: Vec<&String> = Vec::new();
    for side in [before, after].into_iter().flatten() {
        if let Value::Object(fields) = side {
            for name in fields.keys() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    let side = |value: Option<&Value>, name: &str| value.and_then(|v| v.get(name)).cloned();
    let both = before.is_some() && after.is_some();
    let differs = |name: &str| !both || side(before, name) != side(after, name);
    let budget_changed = names
        .iter()
        .any(|name| name.starts_with("budget_") && differs(name));
    names
        .into_iter()
        .filter(|name| !CONTEXT.contains(&name.as_str()))
        .filter(|name| differs(name) || (budget_changed && name.starts_with("budget_")))
        .map(|name| FieldChange {
            name: name.clone(),
            before: side(before, name),
            after: side(after, name),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_what_changed_without_the_context() {
        let before = json!({"org": "acme", "username": "bob", "role": "member", "same": 1});
        let after = json!({"org": "acme", "username": "bob", "role": "admin", "same": 1});
        assert_eq!(
            fields_of(Some(&before), Some(&after)),
            vec![FieldChange {
                name: "role".into(),
                before: Some(json!("member")),
                after: Some(json!("admin")),
            }]
        );
        let created = json!({"org": "acme", "team": "Research", "budget_quota": 5});
        assert_eq!(
            fields_of(None, Some(&created)),
            vec![FieldChange {
                name: "budget_quota".into(),
                before: None,
                after: Some(json!(5)),
            }]
        );
        assert_eq!(
            context(&None, &Some(created), "team").as_deref(),
            Some("Research")
        );
        let before = json!({"budget_period": "monthly", "budget_quota": 5});
        let after = json!({"budget_period": "monthly", "budget_quota": 8});
        let names: Vec<String> = fields_of(Some(&before), Some(&after))
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["budget_period", "budget_quota"]);
    }
}
