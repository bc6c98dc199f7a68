//! What a Stripe top-up costs and credits, and what a refund or dispute takes back: pure
//! integer arithmetic on quota units and the currency's smallest units (cents, yen), never
//! floating point.

use super::money::MicroUsd;

/// Currencies Stripe charges in whole units (no minor unit): an amount of 500 JPY is sent as
/// `500`, not `50000`.
const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];
/// Currencies with three decimals, whose amounts Stripe requires to end in 0.
const THREE_DECIMAL: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];

/// The largest amount Stripe accepts in one charge, in the currency's smallest unit (eight
/// digits).
pub const STRIPE_MAX_AMOUNT: i64 = 99_999_999;

/// A currency as Stripe counts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Currency {
    /// Lowercase ISO 4217 code, as Stripe writes it.
    pub code: String,
    /// Digits after the decimal point in its smallest unit.
    pub decimals: u32,
    /// Amounts must be a multiple of this (10 for three-decimal currencies).
    pub step: i64,
}

impl Currency {
    /// A three-letter code; None for anything else.
    pub fn parse(text: &str) -> Option<Currency> {
        let code = text.trim().to_ascii_lowercase();
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_lowercase()) {
            return None;
        }
        let (decimals, step) = if ZERO_DECIMAL.contains(&code.as_str()) {
            (0, 1)
        } else if THREE_DECIMAL.contains(&code.as_str()) {
            (3, 10)
        } else {
            (2, 1)
        };
        Some(Currency {
            code,
            decimals,
            step,
        })
    }

    /// An amount in smallest units as people read it: `12.50 USD`, `1,500 JPY`.
    pub fn display(&self, minor: i64) -> String {
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        let scale = 10u64.pow(self.decimals);
        let whole = group_thousands(abs / scale);
        let code = self.code.to_ascii_uppercase();
        if self.decimals == 0 {
            format!("{sign}{whole} {code}")
        } else {
            let fraction = abs % scale;
            let width = self.decimals as usize;
            format!("{sign}{whole}.{fraction:0width$} {code}")
        }
    }
}

/// An amount in the smallest unit of the currency named by `code`, as people read it (empty
/// for a code that is not a currency).
pub fn display_amount(code: &str, minor: i64) -> String {
    Currency::parse(code)
        .map(|c| c.display(minor))
        .unwrap_or_default()
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One bonus step: from `from_usd` up, a top-up gets `percent` more balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BonusTier {
    pub from_usd: MicroUsd,
    /// Percent in millionths (10 % is 10_000_000), so `2.5` is exact.
    pub percent_micros: i64,
}

/// Why a list of bonus tiers was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierError(pub String);

/// `100:10,500:15`: +10 % from $100, +15 % from $500. Empty: no bonus.
pub fn parse_tiers(text: &str) -> Result<Vec<BonusTier>, TierError> {
    let mut tiers = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || TierError(part.to_string());
        let (from, percent) = part.split_once(':').ok_or_else(bad)?;
        let from_usd = MicroUsd::parse(from.trim()).map_err(|_| bad())?;
        let percent_micros = MicroUsd::parse(percent.trim()).map_err(|_| bad())?.0;
        if percent_micros > 1_000 * 1_000_000 {
            return Err(bad());
        }
        tiers.push(BonusTier {
            from_usd,
            percent_micros,
        });
    }
    tiers.sort_by_key(|t| t.from_usd.0);
    Ok(tiers)
}

/// `5,10,20,50`: the amounts offered as buttons.
pub fn parse_presets(text: &str) -> Result<Vec<MicroUsd>, TierError> {
    let mut presets = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let usd = MicroUsd::parse(part).map_err(|_| TierError(part.to_string()))?;
        if usd.0 <= 0 {
            return Err(TierError(part.to_string()));
        }
        presets.push(usd);
    }
    presets.sort_by_key(|u| u.0);
    presets.dedup();
    Ok(presets)
}

/// What a top-up of some dollars of balance costs and credits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    /// The dollars of balance asked for.
    pub usd: MicroUsd,
    /// Quota units bought, before the bonus.
    pub base: i64,
    /// Extra units from the bonus tier reached.
    pub bonus: i64,
    /// What the payment credits: `base + bonus`.
    pub quota: i64,
    /// The bonus percent applied, in millionths.
    pub bonus_percent_micros: i64,
    /// The price in the currency's smallest unit.
    pub amount: i64,
    pub currency: Currency,
}

/// Why no quote could be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuoteError {
    /// The balance or the price does not fit 64 bits.
    Overflow,
    /// The price is above what Stripe takes in one charge.
    PriceTooLarge,
    /// The price rounds to nothing.
    PriceTooSmall,
}

/// The quote for `usd` dollars of balance at `price_per_usd` (what one dollar of balance costs
/// in the currency, in millionths of its major unit). The price is rounded half up to the
/// currency's smallest unit (and step); the balance never includes more than was priced.
pub fn quote(
    usd: MicroUsd,
    quota_per_usd: i64,
    price_per_usd: MicroUsd,
    currency: &Currency,
    tiers: &[BonusTier],
) -> Result<Quote, QuoteError> {
    let base = i128::from(usd.0)
        .checked_mul(i128::from(quota_per_usd))
        .ok_or(QuoteError::Overflow)?
        / 1_000_000;
    let bonus_percent_micros = tiers
        .iter()
        .rev()
        .find(|t| usd.0 >= t.from_usd.0)
        .map_or(0, |t| t.percent_micros);
    let bonus = base
        .checked_mul(i128::from(bonus_percent_micros))
        .ok_or(QuoteError::Overflow)?
        / 100_000_000;
    let quota = base.checked_add(bonus).ok_or(QuoteError::Overflow)?;
    // usd (1e-6) × price (1e-6) → 1e-12 of the major unit; to smallest units × 10^decimals.
    let exact = i128::from(usd.0)
        .checked_mul(i128::from(price_per_usd.0))
        .and_then(|v| v.checked_mul(10i128.pow(currency.decimals)))
        .ok_or(QuoteError::Overflow)?;
    let unit = 1_000_000_000_000i128 * i128::from(currency.step);
    let amount = (exact + unit / 2) / unit * i128::from(currency.step);
    let base = i64::try_from(base).map_err(|_| QuoteError::Overflow)?;
    let bonus = i64::try_from(bonus).map_err(|_| QuoteError::Overflow)?;
    let quota = i64::try_from(quota).map_err(|_| QuoteError::Overflow)?;
    if amount > i128::from(STRIPE_MAX_AMOUNT) {
        return Err(QuoteError::PriceTooLarge);
    }
    if amount <= 0 || quota <= 0 {
        return Err(QuoteError::PriceTooSmall);
    }
    Ok(Quote {
        usd,
        base,
        bonus,
        quota,
        bonus_percent_micros,
        amount: i64::try_from(amount).map_err(|_| QuoteError::Overflow)?,
        currency: currency.clone(),
    })
}

/// The share of `credited` quota that `part` of a payment of `whole` (both in the currency's
/// smallest unit) stands for, rounded down, never more than `credited`. Refunds use it with
/// Stripe's cumulative `amount_refunded`, so the shares of several partial refunds add up to
/// exactly the credit when the whole payment is refunded.
pub fn share(credited: i64, part: i64, whole: i64) -> i64 {
    if whole <= 0 || part <= 0 || credited <= 0 {
        return 0;
    }
    if part >= whole {
        return credited;
    }
    let value = i128::from(credited) * i128::from(part) / i128::from(whole);
    i64::try_from(value).unwrap_or(credited).min(credited)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(text: &str) -> MicroUsd {
        MicroUsd::parse(text).unwrap()
    }

    #[test]
    fn prices_round_to_the_currency_smallest_unit() {
        let usd_c = Currency::parse("USD").unwrap();
        let q = quote(usd("10"), 500_000, usd("1"), &usd_c, &[]).unwrap();
        assert_eq!((q.amount, q.quota, q.bonus), (1000, 5_000_000, 0));
        // 7.2345 CNY per dollar: 12.3 dollars → 88.98435 → 88.98
        let cny = Currency::parse("cny").unwrap();
        let q = quote(usd("12.3"), 500_000, usd("7.2345"), &cny, &[]).unwrap();
        assert_eq!(q.amount, 8898);
        // Zero-decimal: 150.5 yen per dollar, $3 → 451.5 → 452 yen, sent as 452.
        let jpy = Currency::parse("jpy").unwrap();
        assert_eq!(jpy.decimals, 0);
        let q = quote(usd("3"), 500_000, usd("150.5"), &jpy, &[]).unwrap();
        assert_eq!(q.amount, 452);
        assert_eq!(jpy.display(452_000), "452,000 JPY");
        // Three decimals, multiples of 10: 0.3771 KWD per dollar, $5 → 1.8855 → 1890 fils.
        let kwd = Currency::parse("kwd").unwrap();
        let q = quote(usd("5"), 500_000, usd("0.3771"), &kwd, &[]).unwrap();
        assert_eq!(q.amount, 1890);
        assert_eq!(kwd.display(1890), "1.890 KWD");
        assert_eq!(usd_c.display(123_456), "1,234.56 USD");
        assert!(Currency::parse("us").is_none() && Currency::parse("u$d").is_none());
    }

    #[test]
    fn bonus_tiers_apply_from_their_threshold() {
        let tiers = parse_tiers("500:15, 100:10").unwrap();
        let c = Currency::parse("usd").unwrap();
        let q = quote(usd("99.99"), 500_000, usd("1"), &c, &tiers).unwrap();
        assert_eq!(q.bonus, 0);
        let q = quote(usd("100"), 500_000, usd("1"), &c, &tiers).unwrap();
        assert_eq!(
            (q.base, q.bonus, q.quota),
            (50_000_000, 5_000_000, 55_000_000)
        );
        assert_eq!(q.amount, 10_000);
        let q = quote(usd("600"), 500_000, usd("1"), &c, &tiers).unwrap();
        assert_eq!(q.bonus, 45_000_000);
        let tiers = parse_tiers("10:2.5").unwrap();
        let q = quote(usd("10"), 500_000, usd("1"), &c, &tiers).unwrap();
        assert_eq!(q.bonus, 125_000);
        assert!(parse_tiers("100").is_err());
        assert!(parse_tiers("100:-5").is_err());
        assert!(parse_tiers("").unwrap().is_empty());
        assert_eq!(
            parse_presets("20, 5,10,5").unwrap(),
            vec![usd("5"), usd("10"), usd("20")]
        );
        assert!(parse_presets("5,0").is_err());
    }

    #[test]
    fn refuses_what_stripe_or_64_bits_cannot_hold() {
        let c = Currency::parse("usd").unwrap();
        assert_eq!(
            quote(usd("1000000"), 500_000, usd("1"), &c, &[]),
            Err(QuoteError::PriceTooLarge)
        );
        assert_eq!(
            quote(usd("999999"), 500_000, usd("1"), &c, &[]).map(|q| q.amount),
            Ok(99_999_900)
        );
        assert_eq!(
            quote(
                usd("999999"),
                1_000_000_000_000,
                usd("0.01"),
                &c,
                &parse_tiers("1:1000").unwrap()
            ),
            Err(QuoteError::Overflow)
        );
        assert_eq!(
            quote(usd("0.001"), 500_000, usd("1"), &c, &[]),
            Err(QuoteError::PriceTooSmall)
        );
    }

    #[test]
    fn cumulative_refund_shares_add_up_to_the_credit() {
        let credited = 5_000_001;
        let (first, second) = (share(credited, 333, 1000), share(credited, 666, 1000));
        assert_eq!(first, 1_665_000);
        let full = share(credited, 1000, 1000);
        assert_eq!(full, credited);
        // What each event takes back is the new cumulative share minus what was taken.
        assert_eq!(first + (second - first) + (full - second), credited);
        assert_eq!(share(credited, 2000, 1000), credited);
        assert_eq!(share(credited, -5, 1000), 0);
        assert!(share(i64::MAX, 99_999_998, 99_999_999) < i64::MAX);
    }
}
