//! The models a group can call, the cheapest first: the playground's list, and the model the
//! examples on `/docs` and the dashboard name, so a reader can paste them and they work.

use crate::domain::pricing::ModelPrice;
use crate::snapshot::Snapshot;

/// How dear a model is, to list the cheapest first: priced per token by input and output per
/// 1M tokens, then priced per request, then models that cannot be used without a price; one
/// the site lets through unpriced costs nothing.
fn dearness(price: Option<ModelPrice>, unpriced_allowed: bool) -> (u8, i64) {
    match price {
        Some(ModelPrice::PerToken { input, output, .. }) => (0, input.0.saturating_add(output.0)),
        Some(ModelPrice::PerRequest(each)) => (1, each.0),
        None if unpriced_allowed => (0, 0),
        None => (2, 0),
    }
}

/// The models `group` can call with their prices (before the group's ratio), the cheapest
/// first, then by name.
pub fn cheapest_first(snapshot: &Snapshot, group: &str) -> Vec<(String, Option<ModelPrice>)> {
    let unpriced_allowed = snapshot.options.allow_unpriced_models;
    let mut models: Vec<(String, Option<ModelPrice>)> = snapshot
        .group_models(group)
        .into_iter()
        .map(|name| {
            let resolved = snapshot
                .resolve_model(name)
                .unwrap_or_else(|| name.to_string());
            (name.to_string(), snapshot.price(&resolved))
        })
        .collect();
    models.sort_by(|a, b| {
        dearness(a.1, unpriced_allowed)
            .cmp(&dearness(b.1, unpriced_allowed))
            .then_with(|| a.0.cmp(&b.0))
    });
    models
}

/// Whether a model answers chat: billed per token for its output too (an embedding model
/// bills only its input, image and reranking models per request), or let through unpriced.
fn chats(price: Option<ModelPrice>, unpriced_allowed: bool) -> bool {
    match price {
        Some(ModelPrice::PerToken { output, .. }) => output.0 > 0,
        Some(ModelPrice::PerRequest(_)) => false,
        None => unpriced_allowed,
    }
}

/// The model examples name for a reader of `group`: its cheapest chat model, as the playground
/// orders them; None when the group can call none.
pub fn example_model(snapshot: &Snapshot, group: &str) -> Option<String> {
    let unpriced_allowed = snapshot.options.allow_unpriced_models;
    cheapest_first(snapshot, group)
        .into_iter()
        .find(|(_, price)| chats(*price, unpriced_allowed))
        .map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::MicroUsd;

    fn per_token(input: i64, output: i64) -> Option<ModelPrice> {
        Some(ModelPrice::PerToken {
            input: MicroUsd(input),
            output: MicroUsd(output),
            cached_input: None,
            cache_write: None,
        })
    }

    #[test]
    fn the_cheapest_model_comes_first() {
        assert!(
            dearness(per_token(150_000, 600_000), false)
                < dearness(per_token(2_500_000, 10_000_000), false)
        );
        assert!(
            dearness(per_token(9, 9), false)
                < dearness(Some(ModelPrice::PerRequest(MicroUsd(1))), false)
        );
        assert!(dearness(None, false) > dearness(Some(ModelPrice::PerRequest(MicroUsd(1))), false));
        assert_eq!(
            dearness(None, true),
            (0, 0),
            "an unpriced model the site allows is free"
        );
    }

    #[test]
    fn examples_name_a_chat_model() {
        assert!(chats(per_token(150_000, 600_000), false));
        assert!(!chats(per_token(20_000, 0), false), "an embedding model");
        assert!(!chats(
            Some(ModelPrice::PerRequest(MicroUsd(40_000))),
            false
        ));
        assert!(!chats(None, false), "an unpriced model is refused");
        assert!(chats(None, true), "unless the site lets it through");
    }
}
