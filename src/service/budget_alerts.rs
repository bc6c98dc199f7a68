//! Budget alerts: an email when an organisation's budget or one of its teams' has spent 80 %
//! of what its period may, and again at 100 %, to the organisation's owner and admins (and,
//! for a team, the team's managers); and an email to a member whose cap in a team is spent.
//! Each reader gets each alert once per period, in their own language.
//!
//! A background round reads the periods' spending as the billing writer stored it
//! (`budget_spend`), so every server sees the same figures. A period is the one the relay
//! holds requests in, in the organisation's time zone: when it starts over, the alerts do
//! too. Each alert is claimed before it is mailed by inserting its row, so with several
//! servers (or two rounds at once) one email goes out; a failed mail gives the claim up for
//! the next round. While the site sends no mail nothing is claimed, so nothing is lost.

use std::collections::{HashMap, HashSet};

use super::{Caller, Ctx, ServiceResult};
use crate::domain::budget_alerts::Threshold;
use crate::domain::calendar::{DAY_MS, SiteCalendar};
use crate::domain::kinds::BudgetPeriod;
use crate::domain::money::Quota;
use crate::i18n::{Lang, text};
use crate::mail::{self, Email, SmtpSettings};
use crate::options::RuntimeOptions;
use crate::service::db;
use crate::service::db::budget_alerts::{AlertKey, NearLimit, Recipient};

/// How far back a current period may have begun: longer than a quarter, with room for a
/// change of daylight-saving time. Older spending is never read, and older claims are
/// dropped.
const LOOKBACK_MS: i64 = 100 * DAY_MS;

/// A budget whose current period has reached a threshold.
struct Due {
    budget: NearLimit,
    threshold: Threshold,
    period: BudgetPeriod,
    calendar: SiteCalendar,
    /// When the period ends and the budget starts over (UTC ms).
    resets_at: i64,
}

impl Due {
    fn key(&self, user_id: i64) -> AlertKey {
        AlertKey {
            kind: self.budget.kind,
            scope_id: self.budget.scope_id,
            window_start: self.budget.window_start,
            threshold: self.threshold.percent(),
            user_id,
        }
    }
}

/// The budgets whose stored period is the current one and has reached a threshold. A member
/// cap is due only when spent, the rest from 80 %.
fn due_now(near: Vec<NearLimit>, site_zone: &str, now_ms: i64) -> Vec<Due> {
    near.into_iter()
        .filter_map(|budget| {
            let zone = if budget.timezone.is_empty() {
                site_zone
            } else {
                &budget.timezone
            };
            // The relay holds a cap without a team budget in its own period; read it there.
            let period = budget
                .period
                .unwrap_or(BudgetPeriod::CAP_WITHOUT_TEAM_BUDGET);
            let calendar = SiteCalendar::new(zone);
            let (start, resets_at) = calendar.budget_window(period, now_ms);
            if budget.window_start != start {
                return None;
            }
            let threshold = Threshold::reached(budget.spent, budget.limit)?;
            if budget.kind == "member" && threshold != Threshold::Reached {
                return None;
            }
            Some(Due {
                budget,
                threshold,
                period,
                calendar,
                resets_at,
            })
        })
        .collect()
}

/// One round at `now_ms`: mails every alert that is due and was not sent yet. Returns how
/// many emails went out. Does nothing (and claims nothing) while the site sends no mail.
pub async fn alert_budgets(ctx: &Ctx, listen_url: &str, now_ms: i64) -> ServiceResult<usize> {
    let options = super::options::current(&ctx.db).await?;
    let Some(settings) = SmtpSettings::from_options(&options) else {
        return Ok(0);
    };
    let since = now_ms.saturating_sub(LOOKBACK_MS);
    let due = due_now(
        db::budget_alerts::near_limits(&ctx.db, since).await?,
        &options.timezone,
        now_ms,
    );
    if due.is_empty() {
        return Ok(0);
    }
    // Only a round with something to send writes, so an idle site's database stays quiet.
    ctx.write(&Caller::System, async |tx| {
        Ok(db::budget_alerts::forget_before(tx, since).await?)
    })
    .await?;
    let scopes: Vec<_> = due
        .iter()
        .map(|d| (d.budget.kind, d.budget.scope_id, d.budget.window_start))
        .collect();
    let sent_before: HashSet<AlertKey> = db::budget_alerts::claimed(&ctx.db, &scopes)
        .await?
        .into_iter()
        .collect();
    let mut readers: HashMap<(i64, i64), Vec<Recipient>> = HashMap::new();
    let mut sent = 0;
    for alert in &due {
        let recipients = if alert.budget.kind == "member" {
            db::budget_alerts::member_recipient(&ctx.db, alert.budget.user_id)
                .await?
                .into_iter()
                .collect()
        } else {
            let of = (alert.budget.org_id, alert.budget.team_id);
            match readers.get(&of) {
                Some(found) => found.clone(),
                None => {
                    let found = db::budget_alerts::budget_recipients(&ctx.db, of.0, of.1).await?;
                    readers.insert(of, found.clone());
                    found
                }
            }
        };
        for reader in recipients {
            let key = alert.key(reader.user_id);
            if sent_before.contains(&key) {
                continue;
            }
            let claimed = ctx
                .write(&Caller::System, async |tx| {
                    Ok(db::budget_alerts::claim(tx, &key, now_ms).await?)
                })
                .await?;
            if !claimed {
                continue;
            }
            let message = email(&options, alert, &reader, listen_url);
            if let Err(error) = mail::send(&settings, message).await {
                tracing::warn!(
                    error = %error,
                    user_id = reader.user_id,
                    scope = alert.budget.kind,
                    scope_id = alert.budget.scope_id,
                    "a budget alert could not be mailed; it is tried again next round"
                );
                ctx.write(&Caller::System, async |tx| {
                    Ok(db::budget_alerts::release(tx, &key).await?)
                })
                .await?;
                continue;
            }
            sent += 1;
        }
    }
    Ok(sent)
}

fn period_word(lang: Lang, period: BudgetPeriod) -> String {
    let key = match period {
        BudgetPeriod::Daily => "mail-budget-period-daily",
        BudgetPeriod::Weekly => "mail-budget-period-weekly",
        BudgetPeriod::Monthly => "mail-budget-period-monthly",
        BudgetPeriod::Quarterly => "mail-budget-period-quarterly",
    };
    text(lang, key, &[])
}

/// The alert in the reader's language.
fn email(options: &RuntimeOptions, alert: &Due, reader: &Recipient, listen_url: &str) -> Email {
    let lang = Lang::from_tag(&reader.locale).unwrap_or(Lang::En);
    let qpu = options.quota_per_usd();
    let budget = &alert.budget;
    let base = options.base_url(listen_url);
    let link = if budget.kind == "org" {
        format!("{base}/orgs/{}", budget.org_slug)
    } else {
        format!("{base}/orgs/{}/teams/{}", budget.org_slug, budget.team_id)
    };
    let spent = Quota(budget.spent).usd_display(qpu);
    let limit = Quota(budget.limit).usd_display(qpu);
    let percent = alert.threshold.percent().to_string();
    let period = period_word(lang, alert.period);
    // The day it starts over on, as the relay's refusals name it.
    let resets: String = alert
        .calendar
        .local_time(alert.resets_at)
        .chars()
        .take(10)
        .collect();
    let level = match alert.threshold {
        Threshold::Near => "near",
        Threshold::Reached => "full",
    };
    let args = [
        ("site", options.site_name.as_str()),
        ("name", reader.username.as_str()),
        ("org", budget.org_name.as_str()),
        ("team", budget.team_name.as_str()),
        ("period", period.as_str()),
        ("percent", percent.as_str()),
        ("spent", spent.as_str()),
        ("limit", limit.as_str()),
        ("resets", resets.as_str()),
        ("zone", alert.calendar.zone_name()),
        ("link", link.as_str()),
        ("level", level),
    ];
    let (subject, body) = match budget.kind {
        "org" => ("mail-budget-org-subject", "mail-budget-org-text"),
        "team" => ("mail-budget-team-subject", "mail-budget-team-text"),
        _ => ("mail-budget-cap-subject", "mail-budget-cap-text"),
    };
    Email {
        to: reader.email.clone(),
        subject: text(lang, subject, &args),
        text: text(lang, body, &args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn near(kind: &'static str, spent: i64, limit: i64, window_start: i64) -> NearLimit {
        NearLimit {
            kind,
            scope_id: 7,
            window_start,
            spent,
            limit,
            period: Some(BudgetPeriod::Monthly),
            org_id: 1,
            org_name: "Acme".into(),
            org_slug: "acme".into(),
            timezone: "Europe/Berlin".into(),
            team_id: if kind == "org" { 0 } else { 3 },
            team_name: if kind == "org" {
                String::new()
            } else {
                "Research".into()
            },
            user_id: if kind == "member" { 9 } else { 0 },
        }
    }

    /// 2026-12-15T12:00:00Z: December's period in Berlin began 2026-11-30T23:00:00Z.
    const NOW: i64 = 1_797_336_000_000;
    const DECEMBER: i64 = 1_796_079_600_000;

    #[test]
    fn only_the_current_period_past_a_threshold_is_due() {
        let due = due_now(
            vec![
                near("team", 400, 500, DECEMBER),
                near("team", 500, 500, DECEMBER - 31 * DAY_MS),
                near("org", 500, 500, DECEMBER),
                near("member", 499, 500, DECEMBER),
                near("member", 500, 500, DECEMBER),
            ],
            "UTC",
            NOW,
        );
        let found: Vec<_> = due.iter().map(|d| (d.budget.kind, d.threshold)).collect();
        assert_eq!(
            found,
            [
                ("team", Threshold::Near),
                ("org", Threshold::Reached),
                ("member", Threshold::Reached)
            ]
        );
        assert_eq!(due[0].calendar.zone_name(), "Europe/Berlin");
        // The organisation's zone, not the site's: in UTC the period began an hour later.
        let in_utc = NearLimit {
            timezone: String::new(),
            ..near("team", 400, 500, DECEMBER)
        };
        assert!(due_now(vec![in_utc], "UTC", NOW).is_empty());
    }

    #[test]
    fn every_alert_reads_whole_in_both_languages() {
        let options = RuntimeOptions::default();
        for kind in ["org", "team", "member"] {
            for (spent, want) in [(400, "80"), (500, "100")] {
                let Some(alert) = due_now(vec![near(kind, spent, 500, DECEMBER)], "UTC", NOW).pop()
                else {
                    assert_eq!(kind, "member", "a cap is due only when spent");
                    continue;
                };
                for (locale, word) in [("", "monthly"), ("zh-CN", "每月")] {
                    let reader = Recipient {
                        user_id: 9,
                        username: "ada".into(),
                        email: "ada@example.com".into(),
                        locale: locale.into(),
                    };
                    let mail = email(&options, &alert, &reader, "http://tg.test");
                    let whole = format!("{}\n{}", mail.subject, mail.text);
                    assert!(!whole.contains("mail-") && !whole.contains('{'), "{whole}");
                    assert!(whole.contains("Acme") && whole.contains(word), "{whole}");
                    assert!(
                        whole.contains("2027-01-01 (Europe/Berlin)")
                            || whole.contains("2027-01-01（Europe/Berlin）"),
                        "{whole}"
                    );
                    if kind != "member" {
                        assert!(
                            mail.subject.contains(&format!("{want}%")),
                            "{}",
                            mail.subject
                        );
                    }
                    let link = if kind == "org" {
                        "http://tg.test/orgs/acme\n"
                    } else {
                        "http://tg.test/orgs/acme/teams/3\n"
                    };
                    assert!(format!("{}\n", mail.text).contains(link), "{}", mail.text);
                }
            }
        }
    }
}
