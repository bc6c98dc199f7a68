//! The list prices Tollgate ships (`price_table.json`): providers' published prices in dollars
//! per million tokens for their main current models, so a new gateway can bill the usual
//! models without typing in a price list, and each model's published context window (the
//! largest prompt it takes, which a request with a file or a stored conversation holds). A
//! price an admin sets wins over the table; the runtime option `list_prices` turns the
//! table's prices off (its windows still apply to models whose price sets none). Models in
//! neither stay refused (unless `allow_unpriced_models`).
//!
//! The table is data, read once at first use. Each entry is checked by the unit tests below,
//! so a malformed edit fails the build's tests rather than a running server.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

use super::money::MicroUsd;
use super::pricing::{MAX_CONTEXT_TOKENS, ModelPrice};

const TABLE: &str = include_str!("price_table.json");

#[derive(Deserialize)]
struct TableWire {
    as_of: String,
    models: Vec<EntryWire>,
}

#[derive(Deserialize)]
struct EntryWire {
    model: String,
    provider: String,
    input: String,
    output: String,
    cached_input: Option<String>,
    cache_write: Option<String>,
    context_tokens: i64,
}

/// One model's list price.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPrice {
    pub model: String,
    pub provider: String,
    pub price: ModelPrice,
    /// The provider's published context window, in tokens.
    pub context_tokens: i64,
}

#[derive(Debug)]
pub struct ListPrices {
    /// When the prices were read off the providers' pages (`YYYY-MM`).
    pub as_of: String,
    pub entries: Vec<ListPrice>,
    by_model: HashMap<String, usize>,
}

impl ListPrices {
    pub fn get(&self, model: &str) -> Option<&ListPrice> {
        self.by_model.get(model).map(|&i| &self.entries[i])
    }

    /// Whether the table prices what a channel lists: the name, the name without its release
    /// date, or for a pattern (`gpt-*`) some name it serves.
    pub fn covers(&self, listed: &str) -> bool {
        match super::names::pattern_prefix(listed) {
            Some(prefix) => self.entries.iter().any(|e| e.model.starts_with(prefix)),
            None => {
                self.get(listed).is_some()
                    || super::names::undated(listed).is_some_and(|name| self.get(name).is_some())
            }
        }
    }
}

fn parse(text: &str) -> Result<ListPrices, String> {
    let wire: TableWire = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let money = |model: &str, field: &str, value: &str| {
        MicroUsd::parse(value).map_err(|e| format!("{model}: {field} '{value}': {e}"))
    };
    let mut entries = Vec::with_capacity(wire.models.len());
    let mut by_model = HashMap::new();
    for entry in wire.models {
        let price = ModelPrice::PerToken {
            input: money(&entry.model, "input", &entry.input)?,
            output: money(&entry.model, "output", &entry.output)?,
            cached_input: entry
                .cached_input
                .as_deref()
                .map(|v| money(&entry.model, "cached_input", v))
                .transpose()?,
            cache_write: entry
                .cache_write
                .as_deref()
                .map(|v| money(&entry.model, "cache_write", v))
                .transpose()?,
        };
        if !(1..=MAX_CONTEXT_TOKENS).contains(&entry.context_tokens) {
            return Err(format!(
                "{}: context_tokens {} is not a window",
                entry.model, entry.context_tokens
            ));
        }
        if by_model
            .insert(entry.model.clone(), entries.len())
            .is_some()
        {
            return Err(format!("{} is listed twice", entry.model));
        }
        entries.push(ListPrice {
            model: entry.model,
            provider: entry.provider,
            price,
            context_tokens: entry.context_tokens,
        });
    }
    Ok(ListPrices {
        as_of: wire.as_of,
        entries,
        by_model,
    })
}

static SHIPPED: LazyLock<ListPrices> = LazyLock::new(|| {
    parse(TABLE).unwrap_or_else(|e| {
        // The tests below parse the same file, so this cannot happen in a tested build.
        tracing::error!("the shipped price table is unreadable: {e}");
        ListPrices {
            as_of: String::new(),
            entries: Vec::new(),
            by_model: HashMap::new(),
        }
    })
});

/// The shipped table.
pub fn shipped() -> &'static ListPrices {
    &SHIPPED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_names_dated_names_and_patterns() {
        let table = shipped();
        assert!(table.covers("gpt-4o-mini"));
        assert!(table.covers("claude-sonnet-4-5-20250929"));
        assert!(table.covers("claude-sonnet-4-5@20250929"));
        assert!(table.covers("gpt-*"));
        assert!(table.covers("*"));
        assert!(!table.covers("my-own-model"));
        assert!(!table.covers("my-own-*"));
    }

    #[test]
    fn the_shipped_table_parses_with_sane_prices() {
        let table = parse(TABLE).expect("price_table.json parses");
        assert!(table.entries.len() >= 50, "{} entries", table.entries.len());
        assert_eq!(table.as_of.len(), 7, "as_of is YYYY-MM");
        for entry in &table.entries {
            let ModelPrice::PerToken {
                input,
                output,
                cached_input,
                cache_write,
            } = entry.price
            else {
                panic!("{} is not per token", entry.model);
            };
            assert!(input.0 > 0, "{} has no input price", entry.model);
            assert!(output.0 >= 0);
            if let Some(cached) = cached_input {
                assert!(cached <= input, "{}: cached input above input", entry.model);
            }
            if let Some(write) = cache_write {
                assert!(write >= input, "{}: cache write below input", entry.model);
            }
            assert!(!entry.provider.is_empty());
            // Embedding models read a few hundred tokens; chat models at least 32k.
            assert!(
                entry.context_tokens >= 512,
                "{}: a window of {}",
                entry.model,
                entry.context_tokens
            );
        }

        let mini = table.get("gpt-4o-mini").expect("gpt-4o-mini is listed");
        assert_eq!(
            mini.price,
            ModelPrice::PerToken {
                input: MicroUsd(150_000),
                output: MicroUsd(600_000),
                cached_input: Some(MicroUsd(75_000)),
                cache_write: None,
            }
        );
        assert_eq!(mini.context_tokens, 128_000);
        let sonnet = table
            .get("claude-sonnet-4-5")
            .expect("claude-sonnet-4-5 is listed");
        assert!(
            matches!(sonnet.price, ModelPrice::PerToken { cache_write: Some(w), .. } if w == MicroUsd(3_750_000)),
            "{:?}",
            sonnet.price
        );
        assert_eq!(
            table.get("gemini-2.5-flash").map(|e| e.context_tokens),
            Some(1_048_576)
        );
    }

    #[test]
    fn refuses_a_malformed_table() {
        let twice = r#"{"as_of":"2026-11","models":[
            {"model":"a","provider":"p","input":"1","output":"2","context_tokens":1000},
            {"model":"a","provider":"p","input":"1","output":"2","context_tokens":1000}]}"#;
        assert!(parse(twice).unwrap_err().contains("twice"));
        let bad = r#"{"as_of":"2026-11","models":[{"model":"a","provider":"p","input":"x","output":"2","context_tokens":1000}]}"#;
        assert!(parse(bad).unwrap_err().contains("a: input"));
        let no_window = r#"{"as_of":"2026-11","models":[{"model":"a","provider":"p","input":"1","output":"2"}]}"#;
        assert!(parse(no_window).unwrap_err().contains("context_tokens"));
        let zero = r#"{"as_of":"2026-11","models":[{"model":"a","provider":"p","input":"1","output":"2","context_tokens":0}]}"#;
        assert!(parse(zero).unwrap_err().contains("a: context_tokens"));
    }
}
