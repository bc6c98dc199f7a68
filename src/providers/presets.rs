//! OpenAI-compatible vendors by name (`presets.json`): a preset is an `openai` channel with the
//! vendor's base URL and main models filled in, so adding DeepSeek or a local vLLM is a name
//! and a key. Everything a preset fills in can be overridden.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

const PRESETS: &str = include_str!("presets.json");

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Preset {
    pub name: String,
    pub display_name: String,
    /// Complete, including the path under which `/chat/completions` lives.
    pub base_url: String,
    pub models: Vec<String>,
    pub docs: Option<String>,
    /// Local servers (vLLM, LM Studio, llama.cpp, Ollama) run without a key.
    pub needs_key: bool,
    /// False when the vendor serves its API at the root of its host, so no `/v1` may be added.
    #[serde(default = "yes")]
    pub path_prefix_ok: bool,
    #[serde(default)]
    pub note: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct PresetsWire {
    presets: Vec<Preset>,
}

static SHIPPED: LazyLock<Vec<Preset>> = LazyLock::new(|| {
    serde_json::from_str::<PresetsWire>(PRESETS)
        .map(|wire| wire.presets)
        .unwrap_or_else(|e| {
            // The tests below parse the same file, so this cannot happen in a tested build.
            tracing::error!("the shipped channel presets are unreadable: {e}");
            Vec::new()
        })
});

pub fn all() -> &'static [Preset] {
    &SHIPPED
}

pub fn find(name: &str) -> Option<&'static Preset> {
    all().iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// The preset names, comma-separated, for help and error messages.
pub fn names() -> String {
    all()
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::kinds::ChannelType;

    #[test]
    fn the_shipped_presets_are_complete() {
        let presets: PresetsWire = serde_json::from_str(PRESETS).expect("presets.json parses");
        let presets = presets.presets;
        for vendor in [
            "deepseek",
            "mistral",
            "groq",
            "xai",
            "openrouter",
            "together",
            "fireworks",
            "perplexity",
            "moonshot",
            "zhipu",
            "qwen",
            "siliconflow",
            "qianfan",
            "hunyuan",
            "ark",
            "minimax",
            "vllm",
            "lmstudio",
            "llamacpp",
            "ollama-openai",
        ] {
            let preset = presets
                .iter()
                .find(|p| p.name == vendor)
                .unwrap_or_else(|| panic!("no preset for {vendor}"));
            let url = reqwest::Url::parse(&preset.base_url).expect("base URL parses");
            assert!(matches!(url.scheme(), "http" | "https"), "{vendor}");
            assert!(!preset.base_url.ends_with('/'), "{vendor}");
            assert!(
                preset.needs_key != preset.base_url.starts_with("http://127.0.0.1"),
                "{vendor}: cloud vendors need keys, local servers do not"
            );
        }
        for preset in &presets {
            assert!(
                ChannelType::parse(&preset.name).is_none(),
                "{} clashes with a channel type",
                preset.name
            );
        }
        assert_eq!(find("DeepSeek").unwrap().name, "deepseek");
        assert!(!find("perplexity").unwrap().path_prefix_ok);
    }
}
