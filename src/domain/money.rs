//! Exact money types. Nothing here uses floating point: balances are integer quota units,
//! prices are integer micro-dollars, and ratios are integer parts per million.

use std::fmt;

/// An amount of quota units, the currency balances and costs are kept in.
/// By default 500,000 units are one US dollar (One API's `QuotaPerUnit`), so One API price
/// ratios and balances import unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quota(pub i64);

/// The default exchange rate between quota units and dollars.
pub const DEFAULT_QUOTA_PER_USD: i64 = 500_000;

impl Quota {
    pub const ZERO: Quota = Quota(0);

    pub fn units(self) -> i64 {
        self.0
    }

    /// Converts a dollar amount to units, rounding toward zero (a top-up never grants more
    /// than was paid for).
    pub fn from_usd(usd: MicroUsd, quota_per_usd: i64) -> Option<Quota> {
        let units = i128::from(usd.0).checked_mul(i128::from(quota_per_usd))? / 1_000_000;
        i64::try_from(units).ok().map(Quota)
    }

    /// Formats the amount in dollars with six decimals, e.g. `$0.000450`.
    pub fn usd_string(self, quota_per_usd: i64) -> String {
        if quota_per_usd <= 0 {
            return format!("{} units", self.0);
        }
        // Work in micro-dollars, rounded half away from zero: display only, never billed.
        let micros = i128::from(self.0) * 1_000_000;
        let qpu = i128::from(quota_per_usd);
        let rounded = if micros >= 0 {
            (micros + qpu / 2) / qpu
        } else {
            (micros - qpu / 2) / qpu
        };
        let sign = if rounded < 0 { "-" } else { "" };
        let abs = rounded.unsigned_abs();
        format!("{sign}${}.{:06}", abs / 1_000_000, abs % 1_000_000)
    }

    /// The amount as a person types it back into a form: `2`, `0.5`, no sign, no trailing
    /// zeros (the same micro-dollars as [`Quota::usd_string`]).
    pub fn usd_editable(self, quota_per_usd: i64) -> String {
        let text = self.usd_string(quota_per_usd).replacen('$', "", 1);
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    }

    /// The amount as people read it (see [`display_usd`]).
    pub fn usd_display(self, quota_per_usd: i64) -> String {
        if quota_per_usd <= 0 {
            return format!("{} units", self.0);
        }
        display_usd(i128::from(self.0), i128::from(quota_per_usd))
    }

    /// The amount as a dollar figure for JSON output (display only).
    pub fn usd_f64(self, quota_per_usd: i64) -> f64 {
        if quota_per_usd <= 0 {
            return 0.0;
        }
        self.0 as f64 / quota_per_usd as f64
    }
}

/// The one rule for showing dollars to people, on every page and in every mail: the amount
/// `numerator / denominator` dollars (`denominator` > 0), exact until written here.
///
/// - From $1 up: cents, rounded half up (`$1.005` is `$1.01`), thousands grouped.
/// - Below $1: up to six decimals (a quota unit is $0.000002 at the default rate) rounded
///   up, so a cost that is not zero never reads `$0.00`; trailing zeros are trimmed down to
///   cents (`$0.15`, `$0.000045`). An amount that rounds up to $1 reads `$1.00`.
/// - Zero is `$0.00`; a negative amount is the same rule on its size, with a minus first.
pub fn display_usd(numerator: i128, denominator: i128) -> String {
    const MICROS: i128 = 1_000_000;
    let denominator = denominator.max(1);
    let sign = if numerator < 0 { "-" } else { "" };
    let size = numerator.saturating_abs();
    let (dollars, fraction, digits) = if size == 0 {
        (0, 0, 2)
    } else if size >= denominator {
        let cents = (size.saturating_mul(200) / denominator).saturating_add(1) / 2;
        (cents / 100, cents % 100, 2)
    } else {
        let micros = size.saturating_mul(MICROS).saturating_add(denominator - 1) / denominator;
        if micros >= MICROS {
            (1, 0, 2)
        } else {
            let mut micros = micros;
            let mut digits = 6;
            while digits > 2 && micros % 10 == 0 {
                micros /= 10;
                digits -= 1;
            }
            (0, micros, digits)
        }
    };
    let whole = dollars.to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{sign}${grouped}.{fraction:0digits$}")
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An exact amount of US dollars in millionths. Prices are kept in this unit: a price of
/// $0.15 per million tokens is `MicroUsd(150_000)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MicroUsd(pub i64);

/// Why a decimal amount typed by a person was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("'{0}' is not a number (use digits with an optional decimal point, e.g. 0.15)")]
    NotANumber(String),
    #[error("'{0}' has more than {1} decimal places")]
    TooPrecise(String, u32),
    #[error("'{0}' must not be negative")]
    Negative(String),
    #[error("'{0}' is too large")]
    TooLarge(String),
}

/// Parses a non-negative decimal such as `0.15`, `2`, `.5` or `1e-3`-free plain notation
/// into an integer scaled by 10^`scale`, refusing anything that would need rounding.
pub fn parse_scaled_decimal(text: &str, scale: u32) -> Result<i64, DecimalError> {
    let original = text;
    let text = text.trim().trim_start_matches('$');
    if text.starts_with('-') {
        return Err(DecimalError::Negative(original.to_string()));
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits_ok(whole) || !digits_ok(frac) {
        return Err(DecimalError::NotANumber(original.to_string()));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > scale as usize {
        return Err(DecimalError::TooPrecise(original.to_string(), scale));
    }
    let too_large = || DecimalError::TooLarge(original.to_string());
    let whole_value: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let mut frac_value: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| too_large())?
    };
    for _ in frac.len()..scale as usize {
        frac_value *= 10;
    }
    whole_value
        .checked_mul(10_i64.pow(scale))
        .and_then(|w| w.checked_add(frac_value))
        .ok_or_else(too_large)
}

/// Formats an integer scaled by 10^`scale` as the shortest exact decimal, e.g. `150000`
/// at scale 6 is `0.15`.
pub fn format_scaled_decimal(value: i64, scale: u32) -> String {
    let unit = 10_i64.pow(scale);
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let unit = unit as u64;
    let whole = abs / unit;
    let frac = abs % unit;
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let frac = format!("{frac:0width$}", width = scale as usize);
    format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
}

impl MicroUsd {
    /// Parses a dollar amount typed by a person (`0.15`, `$2`, `0.000075`).
    pub fn parse(text: &str) -> Result<MicroUsd, DecimalError> {
        parse_scaled_decimal(text, 6).map(MicroUsd)
    }

    /// The amount as people read it in a sentence: `$5`, `$12.5`, `-$0.25`.
    pub fn dollars(self) -> String {
        let text = self.to_string();
        match text.strip_prefix('-') {
            Some(abs) => format!("-${abs}"),
            None => format!("${text}"),
        }
    }
}

impl fmt::Display for MicroUsd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_scaled_decimal(self.0, 6))
    }
}

/// A price multiplier in parts per million: `Ratio(1_500_000)` is ×1.5. Group ratios use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ratio(pub i64);

impl Ratio {
    pub const ONE: Ratio = Ratio(1_000_000);
    /// The largest ratio accepted from an admin; keeps every cost computation far from overflow.
    pub const MAX: Ratio = Ratio(1_000 * 1_000_000);

    pub fn parse(text: &str) -> Result<Ratio, DecimalError> {
        let ppm = parse_scaled_decimal(text, 6)?;
        if ppm > Ratio::MAX.0 {
            return Err(DecimalError::TooLarge(text.to_string()));
        }
        Ok(Ratio(ppm))
    }

    pub fn ppm(self) -> i64 {
        self.0
    }
}

impl Default for Ratio {
    fn default() -> Self {
        Ratio::ONE
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_scaled_decimal(self.0, 6))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn displays_dollars_people_can_read() {
        let qpu = 500_000;
        assert_eq!(Quota(0).usd_display(qpu), "$0.00");
        assert_eq!(Quota(2_500_000).usd_display(qpu), "$5.00");
        assert_eq!(Quota(617_283_950).usd_display(qpu), "$1,234.57");
        assert_eq!(Quota(225).usd_display(qpu), "$0.00045");
        assert_eq!(Quota(-2_500_000).usd_display(qpu), "-$5.00");
        assert_eq!(Quota(5_000).usd_display(qpu), "$0.01");
        assert_eq!(Quota(75_000).usd_display(qpu), "$0.15");
    }

    #[test]
    fn one_rule_for_money_at_its_edges() {
        let qpu = 500_000;
        // One unit is $0.000002: never $0.00.
        assert_eq!(Quota(1).usd_display(qpu), "$0.000002");
        assert_eq!(Quota(-1).usd_display(qpu), "-$0.000002");
        // Below $1 rounds up to the millionth: $0.9999991 and $0.99999999 read $1.00, while
        // $0.999999 stays as it is.
        assert_eq!(display_usd(9_999_991, 10_000_000), "$1.00");
        assert_eq!(display_usd(99_999_999, 100_000_000), "$1.00");
        assert_eq!(Quota(499_999).usd_display(qpu), "$0.999998");
        assert_eq!(display_usd(999_999, 1_000_000), "$0.999999");
        // A third of a millionth rounds up; trailing zeros stop at cents.
        assert_eq!(display_usd(1, 3_000_000), "$0.000001");
        assert_eq!(display_usd(1, 2), "$0.50");
        assert_eq!(display_usd(1, 10), "$0.10");
        // From $1, cents rounded half up.
        assert_eq!(Quota(502_500).usd_display(qpu), "$1.01", "$1.005");
        assert_eq!(Quota(502_499).usd_display(qpu), "$1.00", "$1.004998");
        assert_eq!(Quota(2_499_999).usd_display(qpu), "$5.00", "$4.999998");
        assert_eq!(display_usd(1, 1), "$1.00");
        // Negative amounts follow the same rule on their size.
        assert_eq!(Quota(-502_500).usd_display(qpu), "-$1.01");
        assert_eq!(Quota(-225).usd_display(qpu), "-$0.00045");
        assert_eq!(display_usd(-1, 3_000_000), "-$0.000001");
        // Large amounts are grouped and do not overflow.
        assert_eq!(Quota(i64::MAX).usd_display(qpu), "$18,446,744,073,709.55");
        assert!(
            Quota(i64::MIN)
                .usd_display(qpu)
                .starts_with("-$18,446,744,073,709.55")
        );
        assert_eq!(Quota(7).usd_display(0), "7 units");
    }

    use super::*;

    #[test]
    fn parses_dollar_amounts_exactly() {
        assert_eq!(MicroUsd::parse("0.15"), Ok(MicroUsd(150_000)));
        assert_eq!(MicroUsd::parse("$2"), Ok(MicroUsd(2_000_000)));
        assert_eq!(MicroUsd::parse(".5"), Ok(MicroUsd(500_000)));
        assert_eq!(MicroUsd::parse("0.000075"), Ok(MicroUsd(75)));
        assert_eq!(MicroUsd::parse(" 10.500000 "), Ok(MicroUsd(10_500_000)));
        assert_eq!(MicroUsd::parse("0"), Ok(MicroUsd(0)));
    }

    #[test]
    fn refuses_amounts_that_would_need_rounding_or_are_not_numbers() {
        assert!(matches!(
            MicroUsd::parse("0.0000001"),
            Err(DecimalError::TooPrecise(..))
        ));
        assert!(matches!(
            MicroUsd::parse("-1"),
            Err(DecimalError::Negative(..))
        ));
        assert!(matches!(
            MicroUsd::parse("abc"),
            Err(DecimalError::NotANumber(..))
        ));
        assert!(matches!(
            MicroUsd::parse(""),
            Err(DecimalError::NotANumber(..))
        ));
        assert!(matches!(
            MicroUsd::parse("."),
            Err(DecimalError::NotANumber(..))
        ));
        assert!(matches!(
            MicroUsd::parse("1e5"),
            Err(DecimalError::NotANumber(..))
        ));
        assert!(matches!(
            MicroUsd::parse("99999999999999999999"),
            Err(DecimalError::TooLarge(..))
        ));
    }

    #[test]
    fn formats_shortest_exact_decimal() {
        assert_eq!(MicroUsd(150_000).to_string(), "0.15");
        assert_eq!(MicroUsd(2_000_000).to_string(), "2");
        assert_eq!(MicroUsd(75).to_string(), "0.000075");
        assert_eq!(Ratio(1_500_000).to_string(), "1.5");
        assert_eq!(format_scaled_decimal(-1_250_000, 6), "-1.25");
    }

    #[test]
    fn ratio_bounds() {
        assert_eq!(Ratio::parse("0.8"), Ok(Ratio(800_000)));
        assert!(Ratio::parse("1001").is_err());
        assert_eq!(Ratio::parse("1000"), Ok(Ratio::MAX));
    }

    #[test]
    fn quota_in_dollars() {
        assert_eq!(Quota(225).usd_string(500_000), "$0.000450");
        assert_eq!(Quota(500_000).usd_string(500_000), "$1.000000");
        assert_eq!(Quota(-250_000).usd_string(500_000), "-$0.500000");
        assert_eq!(
            Quota::from_usd(MicroUsd(5_000_000), 500_000),
            Some(Quota(2_500_000))
        );
        // $0.000001 is half a unit: rounded toward zero.
        assert_eq!(Quota::from_usd(MicroUsd(1), 500_000), Some(Quota(0)));
    }
}
