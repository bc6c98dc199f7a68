//! The one pricing function. Every hold and every settlement goes through [`cost`].
//!
//! Rules, in the order they are applied:
//! 1. Cached prompt tokens (cache reads) and cache-write tokens are subsets of the prompt tokens
//!    (OpenAI's semantics; Anthropic's `input_tokens` is converted on the way in). Cache reads
//!    are billed at the cached-input price, cache writes at the cache-write price, each at the
//!    input price when the model has no such price; the rest of the prompt at the input price,
//!    completion tokens at the output price. Reads are clamped to the prompt, then writes to
//!    what is left, so no token is billed twice.
//! 2. A per-request price ignores tokens entirely. It is charged once per request, or once per
//!    unit when the upstream bills the request in units (Cohere's rerank search units).
//! 3. The sum is multiplied by the group ratio and converted from dollars to quota units.
//! 4. Rounding happens once, at the very end, and is a ceiling to the next whole unit: a request
//!    that used anything billable never costs zero, and the gateway never bills a fraction less
//!    than the list price. The largest possible rounding error is one unit ($0.000002 at the
//!    default 500,000 units per dollar).
//!
//! All arithmetic is exact 128-bit integer arithmetic; an amount too large to represent is an
//! error, never a wrapped or saturated number.
//!
//! A hold prices the most the request's settlement can bill: [`held_usage`] puts every prompt
//! token at the dearest of the model's prompt rates, and [`UsageBounds`] keeps what an
//! upstream reports within what was held (completion tokens within the request's output
//! limit, an open-ended prompt within the tokens held for it).

use super::money::{MicroUsd, Quota, Ratio};

/// How a model is priced. Token prices are in dollars per one million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelPrice {
    PerToken {
        input: MicroUsd,
        output: MicroUsd,
        cached_input: Option<MicroUsd>,
        /// Writing the prompt cache (Anthropic and Bedrock charge 1.25× input for it).
        cache_write: Option<MicroUsd>,
    },
    PerRequest(MicroUsd),
}

/// Token counts of one request, as reported by the upstream or counted locally.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Prompt tokens served from the provider's cache; included in `prompt_tokens`.
    pub cached_tokens: i64,
    /// Prompt tokens written to the provider's cache; included in `prompt_tokens`.
    pub cache_write_tokens: i64,
    /// Units the upstream billed the request in, for a per-request price (a rerank's search
    /// units); 0 when the request itself is the unit.
    pub units: i64,
}

/// The largest context window a model may be given, in tokens (the largest published today
/// is ten million).
pub const MAX_CONTEXT_TOKENS: i64 = 100_000_000;

/// What an upstream's usage report may claim for one request: completion tokens up to the
/// request's own output limit (per choice, times the choices asked for); prompt tokens, for a
/// request whose prompt is open-ended (files, audio, a conversation stored upstream,
/// server-side tools: the body does not say how long the prompt is), up to the tokens held
/// for it, which are the model's context window; and every figure up to a ceiling. Any other
/// prompt is bounded by the ceiling alone (its cached part and the tokenizer's count of it may
/// legitimately differ from the estimate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageBounds {
    /// The request's `max_tokens` (or its equivalent) times its choices, when it set one.
    pub output_limit: Option<i64>,
    /// The prompt tokens held for an open-ended prompt; None for a prompt the body holds whole.
    /// Cache reads and writes, parts of the prompt, are held to it too.
    pub prompt_limit: Option<i64>,
    /// The most any one figure may be.
    pub ceiling: i64,
}

impl UsageBounds {
    /// `usage` with every figure held to its bound, and, when a figure was over, a note of what
    /// was reported for the log.
    pub fn apply(&self, usage: Usage) -> (Usage, Option<String>) {
        let ceiling = self.ceiling.max(0);
        let completion_bound = self
            .output_limit
            .map_or(ceiling, |limit| limit.clamp(0, ceiling));
        let prompt_bound = self
            .prompt_limit
            .map_or(ceiling, |limit| limit.clamp(0, ceiling));
        let mut notes: Vec<String> = Vec::new();
        let mut bound = |name: &str, value: i64, limit: i64| {
            if value > limit {
                notes.push(format!("{name} {value} (billed {limit})"));
                limit
            } else {
                value.max(0)
            }
        };
        let bounded = Usage {
            prompt_tokens: bound("prompt_tokens", usage.prompt_tokens, prompt_bound),
            completion_tokens: bound(
                "completion_tokens",
                usage.completion_tokens,
                completion_bound,
            ),
            cached_tokens: bound("cached_tokens", usage.cached_tokens, prompt_bound),
            cache_write_tokens: bound("cache_write_tokens", usage.cache_write_tokens, prompt_bound),
            units: bound("units", usage.units, ceiling),
        };
        let note = (!notes.is_empty()).then(|| format!("reported {}", notes.join(", ")));
        (bounded, note)
    }
}

/// The usage to price a hold at, for a request expected to use `usage`: every prompt token
/// counted at the dearest of the model's prompt rates (plain input, cache read, cache write).
/// An upstream reports how its prompt split into those only afterwards, and a cache write can
/// cost more than plain input (Anthropic's is 1.25x), so a hold at the input price alone
/// would fall short of a prompt written to the cache. Per-request prices ignore tokens and
/// are held as they are.
pub fn held_usage(price: ModelPrice, usage: Usage) -> Usage {
    let ModelPrice::PerToken {
        input,
        cached_input,
        cache_write,
        ..
    } = price
    else {
        return usage;
    };
    let read_rate = cached_input.unwrap_or(input);
    let write_rate = cache_write.unwrap_or(input);
    let (cached_tokens, cache_write_tokens) = if write_rate > input.max(read_rate) {
        (0, usage.prompt_tokens)
    } else if read_rate > input {
        (usage.prompt_tokens, 0)
    } else {
        (0, 0)
    };
    Usage {
        cached_tokens,
        cache_write_tokens,
        ..usage
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("the cost of this request is too large to represent")]
    Overflow,
    #[error("token counts must not be negative")]
    NegativeUsage,
    #[error("the quota-per-dollar rate must be positive")]
    BadRate,
}

const TOKENS_PER_PRICE_UNIT: i128 = 1_000_000; // prices are per 1M tokens
const MICROS_PER_USD: i128 = 1_000_000;
const PPM: i128 = 1_000_000;

/// The cost of a request in quota units. See the module documentation for the rules.
pub fn cost(
    price: ModelPrice,
    usage: Usage,
    group_ratio: Ratio,
    quota_per_usd: i64,
) -> Result<Quota, PricingError> {
    if quota_per_usd <= 0 {
        return Err(PricingError::BadRate);
    }
    if usage.prompt_tokens < 0
        || usage.completion_tokens < 0
        || usage.cached_tokens < 0
        || usage.cache_write_tokens < 0
        || usage.units < 0
    {
        return Err(PricingError::NegativeUsage);
    }
    // Numerator in micro-dollars × tokens (per-token) or micro-dollars × 1M (per-request), so both
    // share one denominator.
    let micro_usd_times_mtokens: i128 = match price {
        ModelPrice::PerRequest(per_request) => i128::from(per_request.0)
            .checked_mul(i128::from(usage.units.max(1)))
            .and_then(|n| n.checked_mul(TOKENS_PER_PRICE_UNIT))
            .ok_or(PricingError::Overflow)?,
        ModelPrice::PerToken {
            input,
            output,
            cached_input,
            cache_write,
        } => {
            let cached = usage.cached_tokens.min(usage.prompt_tokens);
            let written = usage.cache_write_tokens.min(usage.prompt_tokens - cached);
            let uncached = usage.prompt_tokens - cached - written;
            [
                (uncached, input),
                (cached, cached_input.unwrap_or(input)),
                (written, cache_write.unwrap_or(input)),
                (usage.completion_tokens, output),
            ]
            .iter()
            .try_fold(0_i128, |sum, &(tokens, price)| {
                i128::from(tokens)
                    .checked_mul(i128::from(price.0))
                    .and_then(|part| sum.checked_add(part))
            })
            .ok_or(PricingError::Overflow)?
        }
    };
    let numerator = micro_usd_times_mtokens
        .checked_mul(i128::from(group_ratio.ppm()))
        .and_then(|n| n.checked_mul(i128::from(quota_per_usd)))
        .ok_or(PricingError::Overflow)?;
    let denominator = TOKENS_PER_PRICE_UNIT * MICROS_PER_USD * PPM;
    let units = ceil_div(numerator, denominator);
    i64::try_from(units)
        .map(Quota)
        .map_err(|_| PricingError::Overflow)
}

fn ceil_div(numerator: i128, denominator: i128) -> i128 {
    debug_assert!(numerator >= 0 && denominator > 0);
    (numerator + denominator - 1) / denominator
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::DEFAULT_QUOTA_PER_USD;

    fn per_token(input: &str, output: &str, cached: Option<&str>) -> ModelPrice {
        ModelPrice::PerToken {
            input: MicroUsd::parse(input).unwrap(),
            output: MicroUsd::parse(output).unwrap(),
            cached_input: cached.map(|c| MicroUsd::parse(c).unwrap()),
            cache_write: None,
        }
    }

    fn usage(prompt: i64, completion: i64, cached: i64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached,
            cache_write_tokens: 0,
            units: 0,
        }
    }

    #[test]
    fn cache_writes_use_the_write_price_or_fall_back_to_input() {
        // Claude Sonnet: $3 input, $0.30 cache read, $3.75 cache write, $15 output. 1M prompt
        // tokens: 200k read from the cache, 300k written to it, 500k plain; 100k output.
        let price = ModelPrice::PerToken {
            input: MicroUsd::parse("3").unwrap(),
            output: MicroUsd::parse("15").unwrap(),
            cached_input: Some(MicroUsd::parse("0.30").unwrap()),
            cache_write: Some(MicroUsd::parse("3.75").unwrap()),
        };
        let used = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 100_000,
            cached_tokens: 200_000,
            cache_write_tokens: 300_000,
            units: 0,
        };
        // $1.50 + $0.06 + $1.125 + $1.50 = $4.185 = 2,092,500 units.
        assert_eq!(cost(price, used, Ratio::ONE, 500_000), Ok(Quota(2_092_500)));
        // Without a write price the writes cost the input price: $1.50 + $0.06 + $0.90 + $1.50.
        let no_write_price = per_token("3", "15", Some("0.30"));
        assert_eq!(
            cost(no_write_price, used, Ratio::ONE, 500_000),
            Ok(Quota(1_980_000))
        );
    }

    #[test]
    fn a_per_request_price_is_charged_per_billed_unit() {
        let price = ModelPrice::PerRequest(MicroUsd::parse("0.002").unwrap());
        let units = |units| Usage {
            units,
            ..Usage::default()
        };
        // No units reported: the request is the unit.
        assert_eq!(cost(price, units(0), Ratio::ONE, 500_000), Ok(Quota(1_000)));
        assert_eq!(cost(price, units(1), Ratio::ONE, 500_000), Ok(Quota(1_000)));
        assert_eq!(cost(price, units(3), Ratio::ONE, 500_000), Ok(Quota(3_000)));
        assert_eq!(
            cost(price, units(-1), Ratio::ONE, 500_000),
            Err(PricingError::NegativeUsage)
        );
        assert_eq!(
            cost(price, units(i64::MAX), Ratio::ONE, i64::MAX),
            Err(PricingError::Overflow)
        );
    }

    #[test]
    fn cache_writes_never_bill_a_token_twice() {
        // Reads and writes claiming more than the prompt: reads first, writes get the rest.
        let price = ModelPrice::PerToken {
            input: MicroUsd::parse("1").unwrap(),
            output: MicroUsd::parse("1").unwrap(),
            cached_input: Some(MicroUsd(0)),
            cache_write: Some(MicroUsd::parse("2").unwrap()),
        };
        let used = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 0,
            cached_tokens: 600_000,
            cache_write_tokens: 900_000,
            units: 0,
        };
        // 600k free reads + 400k writes at $2/M = $0.80.
        assert_eq!(cost(price, used, Ratio::ONE, 1_000_000), Ok(Quota(800_000)));
        let negative = Usage {
            cache_write_tokens: -1,
            ..used
        };
        assert_eq!(
            cost(price, negative, Ratio::ONE, 1_000_000),
            Err(PricingError::NegativeUsage)
        );
    }

    #[test]
    fn matches_one_api_worked_example() {
        // gpt-4o-mini at $0.15 / $0.60 per 1M, 1,000 prompt + 500 completion tokens:
        // $0.00015 + $0.0003 = $0.00045 = 225 units at 500,000 units per dollar.
        let price = per_token("0.15", "0.60", None);
        let cost = cost(
            price,
            usage(1000, 500, 0),
            Ratio::ONE,
            DEFAULT_QUOTA_PER_USD,
        )
        .unwrap();
        assert_eq!(cost, Quota(225));
    }

    #[test]
    fn group_ratio_multiplies_before_rounding() {
        let price = per_token("0.15", "0.60", None);
        let vip = Ratio::parse("0.5").unwrap();
        assert_eq!(
            cost(price, usage(1000, 500, 0), vip, DEFAULT_QUOTA_PER_USD),
            Ok(Quota(113)) // 112.5 rounded up
        );
        let premium = Ratio::parse("1.5").unwrap();
        assert_eq!(
            cost(price, usage(1000, 500, 0), premium, DEFAULT_QUOTA_PER_USD),
            Ok(Quota(338)) // 337.5 rounded up
        );
    }

    #[test]
    fn cached_tokens_use_cached_price_or_fall_back_to_input() {
        // 1M prompt tokens of which 400k cached, at $2.50 input / $1.25 cached / $10 output.
        let price = per_token("2.50", "10", Some("1.25"));
        let c = cost(price, usage(1_000_000, 0, 400_000), Ratio::ONE, 500_000).unwrap();
        // 600k × $2.5/M + 400k × $1.25/M = $1.5 + $0.5 = $2.00 = 1,000,000 units
        assert_eq!(c, Quota(1_000_000));
        let no_cache_price = per_token("2.50", "10", None);
        let c = cost(
            no_cache_price,
            usage(1_000_000, 0, 400_000),
            Ratio::ONE,
            500_000,
        )
        .unwrap();
        assert_eq!(c, Quota(1_250_000));
    }

    #[test]
    fn cached_count_larger_than_prompt_is_clamped() {
        let price = per_token("1", "1", Some("0"));
        let c = cost(price, usage(10, 0, 50), Ratio::ONE, 1_000_000).unwrap();
        assert_eq!(c, Quota(0)); // all 10 prompt tokens cached at $0
    }

    #[test]
    fn per_request_price_ignores_tokens() {
        let price = ModelPrice::PerRequest(MicroUsd::parse("0.01").unwrap());
        assert_eq!(
            cost(price, usage(0, 0, 0), Ratio::ONE, 500_000),
            Ok(Quota(5_000))
        );
        assert_eq!(
            cost(price, usage(9999, 9999, 0), Ratio::ONE, 500_000),
            Ok(Quota(5_000))
        );
        let double = Ratio::parse("2").unwrap();
        assert_eq!(
            cost(price, usage(0, 0, 0), double, 500_000),
            Ok(Quota(10_000))
        );
    }

    #[test]
    fn rounds_up_any_fraction_of_a_unit() {
        // One token at $0.15/M is $0.00000015 = 0.075 units: billed as 1.
        let price = per_token("0.15", "0.60", None);
        assert_eq!(
            cost(price, usage(1, 0, 0), Ratio::ONE, 500_000),
            Ok(Quota(1))
        );
        // Nothing used costs nothing.
        assert_eq!(
            cost(price, usage(0, 0, 0), Ratio::ONE, 500_000),
            Ok(Quota(0))
        );
        // Exactly one unit is not rounded further.
        let one_unit = per_token("2", "2", None); // $2/M → 1 token = 1 unit at 500k/$
        assert_eq!(
            cost(one_unit, usage(1, 0, 0), Ratio::ONE, 500_000),
            Ok(Quota(1))
        );
        assert_eq!(
            cost(one_unit, usage(3, 4, 0), Ratio::ONE, 500_000),
            Ok(Quota(7))
        );
    }

    #[test]
    fn free_models_and_zero_ratio_cost_nothing() {
        let free = per_token("0", "0", None);
        assert_eq!(
            cost(free, usage(1000, 1000, 0), Ratio::ONE, 500_000),
            Ok(Quota(0))
        );
        let price = per_token("1", "1", None);
        assert_eq!(
            cost(price, usage(1000, 1000, 0), Ratio(0), 500_000),
            Ok(Quota(0))
        );
    }

    #[test]
    fn refuses_nonsense_instead_of_wrapping() {
        let price = per_token("1000000", "1000000", None);
        assert_eq!(
            cost(price, usage(i64::MAX, i64::MAX, 0), Ratio::MAX, i64::MAX),
            Err(PricingError::Overflow)
        );
        assert_eq!(
            cost(price, usage(-1, 0, 0), Ratio::ONE, 500_000),
            Err(PricingError::NegativeUsage)
        );
        assert_eq!(
            cost(price, usage(1, 0, 0), Ratio::ONE, 0),
            Err(PricingError::BadRate)
        );
    }

    #[test]
    fn holds_price_the_prompt_at_its_dearest_rate() {
        let expected = Usage {
            prompt_tokens: 100_000,
            completion_tokens: 1_000,
            ..Usage::default()
        };
        // Claude: a cache write (1.25x) is the dearest way to read a prompt.
        let claude = ModelPrice::PerToken {
            input: MicroUsd::parse("3").unwrap(),
            output: MicroUsd::parse("15").unwrap(),
            cached_input: Some(MicroUsd::parse("0.30").unwrap()),
            cache_write: Some(MicroUsd::parse("3.75").unwrap()),
        };
        let held = held_usage(claude, expected);
        assert_eq!(held.cache_write_tokens, 100_000);
        assert_eq!(held.cached_tokens, 0);
        // 100k × $3.75 + 1k × $15 = $0.39 = 195,000 units.
        assert_eq!(cost(claude, held, Ratio::ONE, 500_000), Ok(Quota(195_000)));
        // Whatever split of the prompt the upstream reports, the bill is within the hold.
        let hold = cost(claude, held, Ratio::ONE, 500_000).unwrap();
        for (cached, written) in [(0, 0), (100_000, 0), (0, 100_000), (40_000, 60_000)] {
            let reported = Usage {
                cached_tokens: cached,
                cache_write_tokens: written,
                ..expected
            };
            assert!(cost(claude, reported, Ratio::ONE, 500_000).unwrap() <= hold);
        }
        // Cache reads dearer than input (a mistyped price): held at the read price.
        let odd = per_token("1", "1", Some("2"));
        assert_eq!(held_usage(odd, expected).cached_tokens, 100_000);
        // Input is the dearest (or the only) rate: the usage is held as it is.
        let plain = per_token("2.5", "10", Some("1.25"));
        assert_eq!(held_usage(plain, expected), expected);
        let no_write_price = ModelPrice::PerToken {
            input: MicroUsd::parse("3").unwrap(),
            output: MicroUsd::parse("15").unwrap(),
            cached_input: None,
            cache_write: None,
        };
        assert_eq!(held_usage(no_write_price, expected), expected);
        let per_request = ModelPrice::PerRequest(MicroUsd::parse("0.01").unwrap());
        assert_eq!(held_usage(per_request, expected), expected);
    }

    #[test]
    fn an_open_ended_prompt_is_billed_at_most_what_was_held() {
        let bounds = UsageBounds {
            output_limit: Some(100),
            prompt_limit: Some(128_000),
            ceiling: 2_000_000,
        };
        let reported = Usage {
            prompt_tokens: 500_000,
            completion_tokens: 50,
            cached_tokens: 300_000,
            cache_write_tokens: 200_000,
            units: 0,
        };
        let (billed, note) = bounds.apply(reported);
        assert_eq!(billed.prompt_tokens, 128_000);
        assert_eq!(billed.cached_tokens, 128_000);
        assert_eq!(billed.cache_write_tokens, 128_000);
        assert_eq!(billed.completion_tokens, 50);
        let note = note.expect("noted as implausible");
        assert!(
            note.starts_with("reported prompt_tokens 500000 (billed 128000)"),
            "{note}"
        );
        // The bill never exceeds a hold of the window at the dearest prompt rate.
        let claude = ModelPrice::PerToken {
            input: MicroUsd::parse("3").unwrap(),
            output: MicroUsd::parse("15").unwrap(),
            cached_input: Some(MicroUsd::parse("0.30").unwrap()),
            cache_write: Some(MicroUsd::parse("3.75").unwrap()),
        };
        let hold = cost(
            claude,
            held_usage(
                claude,
                Usage {
                    prompt_tokens: 128_000,
                    completion_tokens: 100,
                    ..Usage::default()
                },
            ),
            Ratio::ONE,
            500_000,
        )
        .unwrap();
        assert!(cost(claude, billed, Ratio::ONE, 500_000).unwrap() <= hold);
        // Within the window nothing changes.
        let fine = Usage {
            prompt_tokens: 128_000,
            completion_tokens: 100,
            ..Usage::default()
        };
        assert_eq!(bounds.apply(fine), (fine, None));
        // A window above the ceiling: the ceiling still bounds.
        let wide = UsageBounds {
            prompt_limit: Some(5_000_000),
            ..bounds
        };
        assert_eq!(wide.apply(reported).0.prompt_tokens, 500_000);
        assert_eq!(
            wide.apply(Usage {
                prompt_tokens: 3_000_000,
                ..Usage::default()
            })
            .0
            .prompt_tokens,
            2_000_000
        );
    }

    #[test]
    fn usage_is_held_to_the_request_and_the_ceiling() {
        let bounds = UsageBounds {
            output_limit: Some(10),
            prompt_limit: None,
            ceiling: 2_000_000,
        };
        let reported = Usage {
            prompt_tokens: 3_000_000,
            completion_tokens: 9_000_000_000_000_000_000,
            cached_tokens: 5,
            cache_write_tokens: -4,
            units: 0,
        };
        let (billed, note) = bounds.apply(reported);
        assert_eq!(billed.prompt_tokens, 2_000_000);
        assert_eq!(billed.completion_tokens, 10);
        assert_eq!(billed.cached_tokens, 5);
        assert_eq!(
            billed.cache_write_tokens, 0,
            "negative figures count as zero"
        );
        assert_eq!(
            note.as_deref(),
            Some(
                "reported prompt_tokens 3000000 (billed 2000000), completion_tokens 9000000000000000000 (billed 10)"
            )
        );
        // Within bounds nothing changes and nothing is noted.
        let fine = Usage {
            prompt_tokens: 100,
            completion_tokens: 10,
            ..Usage::default()
        };
        assert_eq!(bounds.apply(fine), (fine, None));
        // No output limit in the request: only the ceiling.
        let open = UsageBounds {
            output_limit: None,
            prompt_limit: None,
            ceiling: 1_000,
        };
        let (billed, note) = open.apply(Usage {
            completion_tokens: 5_000,
            ..Usage::default()
        });
        assert_eq!(billed.completion_tokens, 1_000);
        assert!(note.is_some());
        // The largest bounded usage is still priced without overflow at any real price.
        let price = ModelPrice::PerToken {
            input: MicroUsd::parse("1000").unwrap(),
            output: MicroUsd::parse("1000").unwrap(),
            cached_input: None,
            cache_write: None,
        };
        let (worst, _) = open.apply(Usage {
            prompt_tokens: i64::MAX,
            completion_tokens: i64::MAX,
            cached_tokens: i64::MAX,
            cache_write_tokens: i64::MAX,
            units: i64::MAX,
        });
        assert!(cost(price, worst, Ratio::parse("100").unwrap(), 500_000).is_ok());
    }

    #[test]
    fn is_additive_up_to_rounding() {
        // Billing two halves separately may cost at most one unit more per half than billing
        // the whole: the ceiling never loses the operator money.
        let price = per_token("0.15", "0.60", Some("0.075"));
        for (p, c, k) in [(1, 1, 0), (333, 777, 100), (123_456, 7_890, 1_000)] {
            let whole = cost(price, usage(2 * p, 2 * c, 2 * k), Ratio::ONE, 500_000).unwrap();
            let half = cost(price, usage(p, c, k), Ratio::ONE, 500_000).unwrap();
            assert!(half.0 * 2 >= whole.0 && half.0 * 2 <= whole.0 + 2);
        }
    }
}
