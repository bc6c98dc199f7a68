//! Prices brought over from another gateway's table: One API's model ratios (with its
//! completion ratios) and LiteLLM's `model_prices` JSON. Reading them is pure: each model
//! becomes a price in dollars per 1M tokens (or per request), and what cannot be used is
//! listed with the reason, for the preview an administrator sees before anything is stored.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::money::MicroUsd;
use super::pricing::{MAX_CONTEXT_TOKENS, ModelPrice};

/// One API's ratio 1 is $0.002 per 1K tokens: $2 per 1M input tokens.
const ONE_API_RATIO_USD_PER_MTOK: f64 = 2.0;

/// The table's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    /// `{"model_ratio": {...}, "completion_ratio": {...}}`, or a bare model-ratio map.
    OneApi,
    /// LiteLLM's `model_prices_and_context_window.json`.
    LiteLlm,
}

impl SkipReason {
    /// A stable code for the reason (`mode`, `no_price`, `bad_number`, `not_an_entry`,
    /// `bad_name`), and what it is about.
    pub fn code(&self) -> (&'static str, &str) {
        match self {
            SkipReason::Mode(mode) => ("mode", mode),
            SkipReason::NoPrice => ("no_price", ""),
            SkipReason::BadNumber(value) => ("bad_number", value),
            SkipReason::NotAnEntry => ("not_an_entry", ""),
            SkipReason::BadName(why) => ("bad_name", why),
        }
    }
}

impl ImportFormat {
    pub fn parse(text: &str) -> Option<ImportFormat> {
        match text.trim().to_ascii_lowercase().as_str() {
            "oneapi" | "one-api" | "one_api" => Some(ImportFormat::OneApi),
            "litellm" => Some(ImportFormat::LiteLlm),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ImportFormat::OneApi => "oneapi",
            ImportFormat::LiteLlm => "litellm",
        }
    }

    pub const CHOICES: &'static str = "oneapi, litellm";
}

/// A price read from the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedPrice {
    pub model: String,
    pub price: ModelPrice,
    /// The model's context window, when the table gives one.
    pub context_tokens: Option<i64>,
}

/// Why an entry of the table was left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// LiteLLM's mode is not one Tollgate prices per token (image generation, audio, rerank…).
    Mode(String),
    /// No token price (and no price per request) in the entry.
    NoPrice,
    /// A price that is not a non-negative number, or too large to hold.
    BadNumber(String),
    /// The entry is not an object (LiteLLM) or its ratio not a number (One API).
    NotAnEntry,
    /// The model's name is not one Tollgate takes (said by the caller, which checks names).
    BadName(String),
}

/// What a table holds: the prices to import, sorted by model, and the entries left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportTable {
    pub prices: Vec<ImportedPrice>,
    pub skipped: Vec<(String, SkipReason)>,
}

/// Why a table could not be read at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("the data is not JSON: {0}")]
    NotJson(String),
    #[error("the data is not a JSON object of models")]
    NotAnObject,
}

/// Reads a table of `format` from its JSON text.
pub fn parse(format: ImportFormat, text: &str) -> Result<ImportTable, ImportError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| ImportError::NotJson(e.to_string()))?;
    read(format, &value)
}

/// Reads a table of `format` from parsed JSON.
pub fn read(format: ImportFormat, value: &Value) -> Result<ImportTable, ImportError> {
    let object = value.as_object().ok_or(ImportError::NotAnObject)?;
    let mut table = match format {
        ImportFormat::OneApi => one_api(object)?,
        ImportFormat::LiteLlm => lite_llm(object),
    };
    table.prices.sort_by(|a, b| a.model.cmp(&b.model));
    table.skipped.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(table)
}

/// Dollars (a JSON number, or its digits in a string) scaled to micro-dollars after
/// multiplying by `scale`, rounded to the nearest micro-dollar.
fn micro_usd(value: &Value, scale: f64) -> Result<MicroUsd, SkipReason> {
    let number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let bad = || SkipReason::BadNumber(value.to_string());
    let number = number
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(bad)?;
    let micros = (number * scale * 1_000_000.0).round();
    // Far above any real price ($100,000 per 1M tokens), and well inside i64.
    if micros > 100_000.0 * 1_000_000.0 {
        return Err(bad());
    }
    Ok(MicroUsd(micros as i64))
}

/// One API: `model_ratio` (ratio 1 = $2 per 1M input tokens) and `completion_ratio` (output
/// price over input price, 1 when not given). Its option names `ModelRatio` and
/// `CompletionRatio` are taken too, and a bare map is read as model ratios.
fn one_api(object: &Map<String, Value>) -> Result<ImportTable, ImportError> {
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| object.get(*name))
            .map(|v| match v {
                // One API stores its options as JSON text.
                Value::String(text) => serde_json::from_str::<Value>(text).ok(),
                other => Some(other.clone()),
            })
    };
    let ratios = find(&["model_ratio", "ModelRatio"]);
    let completions = find(&["completion_ratio", "CompletionRatio"]);
    let (ratios, completions) = match (ratios, completions) {
        (None, None) => (Value::Object(object.clone()), None),
        (Some(ratios), completions) => (ratios.ok_or(ImportError::NotAnObject)?, completions),
        (None, Some(_)) => return Err(ImportError::NotAnObject),
    };
    let ratios = ratios.as_object().ok_or(ImportError::NotAnObject)?;
    let completions: BTreeMap<String, Value> = match completions {
        Some(Some(Value::Object(map))) => map.into_iter().collect(),
        Some(_) => return Err(ImportError::NotAnObject),
        None => BTreeMap::new(),
    };
    let mut table = ImportTable::default();
    for (model, ratio) in ratios {
        if !ratio.is_number() && !ratio.is_string() {
            table.skipped.push((model.clone(), SkipReason::NotAnEntry));
            continue;
        }
        let completion = completions.get(model).cloned().unwrap_or(Value::from(1));
        let priced = micro_usd(ratio, ONE_API_RATIO_USD_PER_MTOK).and_then(|input| {
            let factor = match &completion {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
            .filter(|f| f.is_finite() && *f >= 0.0)
            .ok_or_else(|| SkipReason::BadNumber(completion.to_string()))?;
            let output = micro_usd(&Value::from(input.0 as f64 / 1_000_000.0), factor)?;
            Ok(ModelPrice::PerToken {
                input,
                output,
                cached_input: None,
                cache_write: None,
            })
        });
        match priced {
            Ok(price) => table.prices.push(ImportedPrice {
                model: model.clone(),
                price,
                context_tokens: None,
            }),
            Err(reason) => table.skipped.push((model.clone(), reason)),
        }
    }
    Ok(table)
}

/// The LiteLLM modes priced per token.
const LITELLM_MODES: &[&str] = &["chat", "completion", "embedding"];

/// LiteLLM: per model, dollars per token (`input_cost_per_token`, `output_cost_per_token`,
/// `cache_read_input_token_cost`, `cache_creation_input_token_cost`), the window
/// (`max_input_tokens`) and the mode; a model with no token price but a price per request
/// (`input_cost_per_request`, `input_cost_per_query`) is priced per request.
fn lite_llm(object: &Map<String, Value>) -> ImportTable {
    let mut table = ImportTable::default();
    for (model, entry) in object {
        // The file's first entry documents its fields.
        if model == "sample_spec" {
            continue;
        }
        let Some(entry) = entry.as_object() else {
            table.skipped.push((model.clone(), SkipReason::NotAnEntry));
            continue;
        };
        if let Some(mode) = entry.get("mode").and_then(Value::as_str)
            && !LITELLM_MODES.contains(&mode)
        {
            table
                .skipped
                .push((model.clone(), SkipReason::Mode(mode.to_string())));
            continue;
        }
        match lite_llm_price(entry) {
            Ok(price) => table.prices.push(ImportedPrice {
                model: model.clone(),
                price,
                context_tokens: entry
                    .get("max_input_tokens")
                    .and_then(Value::as_i64)
                    .filter(|t| (1..=MAX_CONTEXT_TOKENS).contains(t)),
            }),
            Err(reason) => table.skipped.push((model.clone(), reason)),
        }
    }
    table
}

/// Per token to per 1M tokens.
const PER_MTOK: f64 = 1_000_000.0;

fn lite_llm_price(entry: &Map<String, Value>) -> Result<ModelPrice, SkipReason> {
    let field = |name: &str| entry.get(name).filter(|v| !v.is_null());
    let per_token = |name: &str| field(name).map(|v| micro_usd(v, PER_MTOK)).transpose();
    let input = per_token("input_cost_per_token")?;
    let output = per_token("output_cost_per_token")?;
    match (input, output) {
        (Some(input), output) => Ok(ModelPrice::PerToken {
            input,
            // An embedding model bills its input alone.
            output: output.unwrap_or_default(),
            cached_input: per_token("cache_read_input_token_cost")?,
            cache_write: per_token("cache_creation_input_token_cost")?,
        }),
        (None, _) => {
            let per_request = ["input_cost_per_request", "input_cost_per_query"]
                .iter()
                .find_map(|name| field(name))
                .map(|v| micro_usd(v, 1.0))
                .transpose()?;
            per_request
                .map(ModelPrice::PerRequest)
                .ok_or(SkipReason::NoPrice)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn per_token(input: i64, output: i64) -> ModelPrice {
        ModelPrice::PerToken {
            input: MicroUsd(input),
            output: MicroUsd(output),
            cached_input: None,
            cache_write: None,
        }
    }

    #[test]
    fn formats_are_named_as_the_api_names_them() {
        assert_eq!(ImportFormat::parse("oneapi"), Some(ImportFormat::OneApi));
        assert_eq!(
            ImportFormat::parse(" LiteLLM "),
            Some(ImportFormat::LiteLlm)
        );
        assert_eq!(ImportFormat::parse("csv"), None);
        assert_eq!(ImportFormat::LiteLlm.as_str(), "litellm");
    }

    #[test]
    fn one_api_ratio_one_is_two_dollars_per_million_input_tokens() {
        let table = read(
            ImportFormat::OneApi,
            &json!({
                "model_ratio": {"gpt-4o-mini": 0.075, "gpt-4": 15, "broken": "lots", "odd": [1]},
                "completion_ratio": {"gpt-4o-mini": 4, "gpt-4": 2}
            }),
        )
        .unwrap();
        assert_eq!(
            table.prices,
            vec![
                ImportedPrice {
                    model: "gpt-4".into(),
                    price: per_token(30_000_000, 60_000_000),
                    context_tokens: None
                },
                ImportedPrice {
                    model: "gpt-4o-mini".into(),
                    price: per_token(150_000, 600_000),
                    context_tokens: None
                },
            ]
        );
        assert_eq!(
            table.skipped,
            vec![
                ("broken".into(), SkipReason::BadNumber("\"lots\"".into())),
                ("odd".into(), SkipReason::NotAnEntry),
            ]
        );
    }

    #[test]
    fn one_api_takes_a_bare_map_and_its_option_names_as_json_text() {
        let bare = read(ImportFormat::OneApi, &json!({"m": 1})).unwrap();
        assert_eq!(bare.prices[0].price, per_token(2_000_000, 2_000_000));
        let options = read(
            ImportFormat::OneApi,
            &json!({"ModelRatio": "{\"m\": 0.5}", "CompletionRatio": "{\"m\": 3}"}),
        )
        .unwrap();
        assert_eq!(options.prices[0].price, per_token(1_000_000, 3_000_000));
        assert_eq!(
            read(ImportFormat::OneApi, &json!({"completion_ratio": {"m": 1}})),
            Err(ImportError::NotAnObject)
        );
        assert_eq!(
            read(ImportFormat::OneApi, &json!([1, 2])),
            Err(ImportError::NotAnObject)
        );
        assert!(matches!(
            parse(ImportFormat::OneApi, "{not json"),
            Err(ImportError::NotJson(_))
        ));
    }

    #[test]
    fn litellm_prices_per_token_become_prices_per_million() {
        let table = read(
            ImportFormat::LiteLlm,
            &json!({
                "sample_spec": {"mode": "one of chat, embedding…", "input_cost_per_token": 0},
                "claude-sonnet-4-5": {
                    "mode": "chat", "max_input_tokens": 200000,
                    "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                    "cache_read_input_token_cost": 3e-07, "cache_creation_input_token_cost": 3.75e-06
                },
                "text-embedding-3-small": {"mode": "embedding", "input_cost_per_token": 2e-08},
                "rerank-v3.5": {"mode": "chat", "input_cost_per_query": 0.002},
                "dall-e-3": {"mode": "image_generation", "output_cost_per_image": 0.04},
                "free-lunch": {"mode": "chat"},
                "negative": {"input_cost_per_token": -1, "output_cost_per_token": 0},
                "not-an-object": 3
            }),
        )
        .unwrap();
        let models: Vec<&str> = table.prices.iter().map(|p| p.model.as_str()).collect();
        assert_eq!(
            models,
            ["claude-sonnet-4-5", "rerank-v3.5", "text-embedding-3-small"]
        );
        assert_eq!(
            table.prices[0],
            ImportedPrice {
                model: "claude-sonnet-4-5".into(),
                price: ModelPrice::PerToken {
                    input: MicroUsd(3_000_000),
                    output: MicroUsd(15_000_000),
                    cached_input: Some(MicroUsd(300_000)),
                    cache_write: Some(MicroUsd(3_750_000)),
                },
                context_tokens: Some(200_000),
            }
        );
        assert_eq!(
            table.prices[1].price,
            ModelPrice::PerRequest(MicroUsd(2_000))
        );
        assert_eq!(table.prices[2].price, per_token(20_000, 0));
        assert_eq!(
            table.skipped,
            vec![
                (
                    "dall-e-3".into(),
                    SkipReason::Mode("image_generation".into())
                ),
                ("free-lunch".into(), SkipReason::NoPrice),
                ("negative".into(), SkipReason::BadNumber("-1".into())),
                ("not-an-object".into(), SkipReason::NotAnEntry),
            ]
        );
    }

    #[test]
    fn absurd_prices_are_refused_not_wrapped() {
        let table = read(
            ImportFormat::LiteLlm,
            &json!({"m": {"input_cost_per_token": 1e300, "output_cost_per_token": 0}}),
        )
        .unwrap();
        assert!(table.prices.is_empty());
        assert!(matches!(table.skipped[0].1, SkipReason::BadNumber(_)));
    }
}
