//! How the portal writes times.

/// Milliseconds since the epoch as `2026-11-30 21:04` (UTC).
pub fn minute(ms: i64) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else {
        return String::new();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// A price in micro-dollars (per 1M tokens, or per request) after a group's ratio, by the one
/// rule for money ([`display_usd`]): `$0.15`, `$0.075`, `$2.40`.
///
/// [`display_usd`]: crate::domain::money::display_usd
pub fn price(micros: crate::domain::money::MicroUsd, ratio: crate::domain::money::Ratio) -> String {
    crate::domain::money::display_usd(
        i128::from(micros.0) * i128::from(ratio.ppm()),
        1_000_000_000_000,
    )
}

/// A browser's user agent, shortened to what a person recognises: `Firefox on Linux`.
pub fn device(user_agent: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(marker, _)| user_agent.contains(marker))
    .map(|(_, name)| *name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| user_agent.contains(marker))
    .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} · {s}"),
        (Some(b), None) => b.to_string(),
        (None, Some(s)) => s.to_string(),
        (None, None) => user_agent.chars().take(40).collect(),
    }
}

/// Milliseconds since the epoch as a date, `2026-11-30` (UTC).
pub fn date(ms: i64) -> String {
    minute(ms).chars().take(10).collect()
}

/// Quota units as a dollar amount to edit in a form (see [`Quota::usd_editable`]).
///
/// [`Quota::usd_editable`]: crate::domain::money::Quota::usd_editable
/// Units as exact dollars for a spreadsheet: `0.000450`.
pub fn exact_usd(units: i64, quota_per_usd: i64) -> String {
    crate::domain::money::Quota(units)
        .usd_string(quota_per_usd)
        .replacen('$', "", 1)
}

pub fn editable_usd(units: i64, quota_per_usd: i64) -> String {
    crate::domain::money::Quota(units).usd_editable(quota_per_usd)
}

/// The text key naming a kind of balance change.
pub fn ledger_key(kind: crate::domain::kinds::LedgerKind) -> &'static str {
    use crate::domain::kinds::LedgerKind;
    match kind {
        LedgerKind::Opening => "web-ledger-opening",
        LedgerKind::Grant => "web-ledger-grant",
        LedgerKind::Adjustment => "web-ledger-adjustment",
        LedgerKind::Redemption => "web-ledger-redemption",
        LedgerKind::InviteReward => "web-ledger-invite-reward",
        LedgerKind::TopUp => "web-ledger-topup",
        LedgerKind::Refund => "web-ledger-refund",
        LedgerKind::Dispute => "web-ledger-dispute",
        LedgerKind::DisputeReversal => "web-ledger-dispute-reversal",
    }
}

/// The text key naming how a request ended.
pub fn outcome_key(outcome: crate::domain::kinds::Outcome) -> &'static str {
    use crate::domain::kinds::Outcome;
    match outcome {
        Outcome::Success => "web-outcome-success",
        Outcome::ClientClosed => "web-outcome-client-closed",
        Outcome::StreamError => "web-outcome-stream-error",
        Outcome::UpstreamError => "web-outcome-upstream-error",
        Outcome::Refused => "web-outcome-refused",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_prices_with_the_digits_they_have() {
        use crate::domain::money::{MicroUsd, Ratio};
        assert_eq!(super::price(MicroUsd(150_000), Ratio::ONE), "$0.15");
        assert_eq!(super::price(MicroUsd(75_000), Ratio::ONE), "$0.075");
        assert_eq!(super::price(MicroUsd(3_000_000), Ratio(800_000)), "$2.40");
        assert_eq!(super::price(MicroUsd(10_000_000), Ratio::ONE), "$10.00");
        // The one rule: from $1 cents rounded half up, below $1 rounded up.
        assert_eq!(super::price(MicroUsd(1_375_000), Ratio::ONE), "$1.38");
        assert_eq!(super::price(MicroUsd(1), Ratio(500_000)), "$0.000001");
    }

    #[test]
    fn writes_dollars_to_edit_as_typed() {
        assert_eq!(super::editable_usd(1_000_000, 500_000), "2");
        assert_eq!(super::editable_usd(250_000, 500_000), "0.5");
        assert_eq!(super::editable_usd(1, 500_000), "0.000002");
        assert_eq!(super::editable_usd(0, 500_000), "0");
    }

    #[test]
    fn writes_minutes_and_dates() {
        assert_eq!(super::minute(1_798_761_600_000), "2027-01-01 00:00");
        assert_eq!(super::date(1_798_761_660_000), "2027-01-01");
    }
}
