//! Reading token usage out of OpenAI-shaped answers, and counting the generated text when an
//! upstream reports none.

use std::borrow::Cow;

use serde::Deserialize;

use crate::domain::pricing::Usage;
use crate::domain::tokenizer::Tokenizer;

#[derive(Deserialize, Debug, Default)]
struct PromptDetails {
    cached_tokens: Option<i64>,
    /// OpenRouter's name for prompt-cache writes.
    cache_write_tokens: Option<i64>,
}

#[derive(Deserialize, Debug, Default)]
pub struct UsageWire {
    /// `input_tokens`/`output_tokens` in the Responses API and image generation.
    #[serde(alias = "input_tokens")]
    prompt_tokens: Option<i64>,
    #[serde(alias = "output_tokens")]
    completion_tokens: Option<i64>,
    total_tokens: Option<i64>,
    prompt_tokens_details: Option<PromptDetails>,
    /// LiteLLM's name for prompt-cache writes (and Tollgate's own, in translated answers).
    cache_creation_input_tokens: Option<i64>,
}

impl UsageWire {
    /// The usage this report states, or None when it states no token counts at all.
    pub fn to_usage(&self) -> Option<Usage> {
        let completion = self.completion_tokens.unwrap_or(0).max(0);
        let prompt = match (self.prompt_tokens, self.total_tokens) {
            (Some(p), _) => p,
            (None, Some(total)) => total.saturating_sub(completion),
            (None, None) if self.completion_tokens.is_some() => 0,
            (None, None) => return None,
        }
        .max(0);
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0)
            .clamp(0, prompt);
        let written = self
            .cache_creation_input_tokens
            .or_else(|| {
                self.prompt_tokens_details
                    .as_ref()
                    .and_then(|d| d.cache_write_tokens)
            })
            .unwrap_or(0)
            .clamp(0, prompt - cached);
        Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached,
            cache_write_tokens: written,
            units: 0,
        })
    }
}

#[derive(Deserialize, Debug, Default)]
struct FunctionWire<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Debug, Default)]
struct ToolCallWire<'a> {
    #[serde(borrow)]
    function: Option<FunctionWire<'a>>,
}

/// `message` in a full answer, `delta` in a stream chunk.
#[derive(Deserialize, Debug, Default)]
struct MessageWire<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolCallWire<'a>>>,
}

#[derive(Deserialize, Debug, Default)]
struct ChoiceWire<'a> {
    #[serde(borrow)]
    message: Option<MessageWire<'a>>,
    #[serde(borrow)]
    delta: Option<MessageWire<'a>>,
    /// Legacy completions.
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
}

/// The parts of an answer (or of one stream chunk) billing cares about.
#[derive(Deserialize, Debug, Default)]
pub struct AnswerWire<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<ChoiceWire<'a>>>,
    usage: Option<UsageWire>,
}

impl<'a> AnswerWire<'a> {
    pub fn parse(json: &'a [u8]) -> Option<AnswerWire<'a>> {
        serde_json::from_slice(json).ok()
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().and_then(UsageWire::to_usage)
    }

    /// A chunk with an empty `choices` list and a usage report: the extra chunk OpenAI sends
    /// when `stream_options.include_usage` is set.
    pub fn is_usage_only(&self) -> bool {
        self.usage.is_some() && self.choices.as_ref().is_some_and(Vec::is_empty)
    }

    /// Calls `each` with every piece of generated text: content, reasoning, tool-call names
    /// and arguments, and legacy completion text.
    pub fn for_each_text(&self, mut each: impl FnMut(&str)) {
        for choice in self.choices.iter().flatten() {
            if let Some(text) = &choice.text {
                each(text);
            }
            for message in [&choice.message, &choice.delta].into_iter().flatten() {
                if let Some(text) = &message.content {
                    each(text);
                }
                if let Some(text) = &message.reasoning_content {
                    each(text);
                }
                // What `TranslatedEvent::count_chat_delta` counts of a delta, read here
                // without building a JSON tree (this is the hot path of OpenAI streams).
                for function in message
                    .tool_calls
                    .iter()
                    .flatten()
                    .flat_map(|c| &c.function)
                {
                    for text in [&function.name, &function.arguments].into_iter().flatten() {
                        each(text);
                    }
                }
            }
        }
    }
}

/// The top-level `usage` report of a whole answer, found without parsing the rest (OpenAI puts
/// it last, after the choices, which can be long). The last `"usage"` key that is not inside a
/// string is read; None when there is none or it is `null`, and the caller parses the answer.
pub fn find_usage(body: &[u8]) -> Option<Usage> {
    let value = usage_value_at(body)?;
    let mut reader = serde_json::Deserializer::from_slice(value);
    serde::Deserialize::deserialize(&mut reader)
        .ok()
        .flatten()
        .and_then(|usage: UsageWire| usage.to_usage())
}

/// The last `"usage"` object of a JSON text (or of its tail: an answer relayed as it arrived
/// keeps only its end), as a value, for protocols whose usage has another shape.
pub fn find_usage_object(body: &[u8]) -> Option<serde_json::Value> {
    let value = usage_value_at(body)?;
    let mut reader = serde_json::Deserializer::from_slice(value);
    let usage: serde_json::Value = serde::Deserialize::deserialize(&mut reader).ok()?;
    usage.is_object().then_some(usage)
}

/// Where the value of the last `"usage"` key starts (the text from there on).
fn usage_value_at(body: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"usage\"";
    let mut end = body.len();
    while let Some(at) = body[..end].windows(KEY.len()).rposition(|w| w == KEY) {
        end = at + KEY.len() - 1;
        // A key follows `{` or `,` (an escaped quote means the text is inside a string).
        let before = body[..at].iter().rev().find(|b| !b.is_ascii_whitespace());
        if !matches!(before, Some(b'{' | b',')) {
            continue;
        }
        let mut value = at + KEY.len();
        while body.get(value).is_some_and(u8::is_ascii_whitespace) {
            value += 1;
        }
        if body.get(value) != Some(&b':') {
            continue;
        }
        return Some(&body[value + 1..]);
    }
    None
}

/// Counts generated text as it arrives, in bounded memory: text is tokenized in slices of a
/// few kilobytes rather than kept whole.
#[derive(Debug, Default)]
pub struct TextCounter {
    pending: String,
    counted: i64,
}

/// Tokenize whenever this much text is waiting. Big enough that splits rarely fall inside a
/// word (a split can only add a token), small enough to keep memory flat on long answers.
const COUNT_SLICE_BYTES: usize = 4096;

impl TextCounter {
    pub fn push(&mut self, text: &str, tokenizer: &Tokenizer) {
        self.pending.push_str(text);
        if self.pending.len() >= COUNT_SLICE_BYTES {
            self.drain(tokenizer);
        }
    }

    fn drain(&mut self, tokenizer: &Tokenizer) {
        if !self.pending.is_empty() {
            self.counted += i64::try_from(tokenizer.count(&self.pending)).unwrap_or(i64::MAX);
            self.pending.clear();
        }
    }

    /// Tokens generated so far.
    pub fn total(&mut self, tokenizer: &Tokenizer) -> i64 {
        self.drain(tokenizer);
        self.counted
    }

    pub fn has_text(&self) -> bool {
        self.counted > 0 || !self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tokenizer;

    #[test]
    fn reads_usage_with_cached_tokens() {
        let a = AnswerWire::parse(
            br#"{"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,
                "prompt_tokens_details":{"cached_tokens":64}}}"#,
        )
        .unwrap();
        assert!(a.is_usage_only());
        assert_eq!(
            a.usage(),
            Some(Usage {
                prompt_tokens: 100,
                completion_tokens: 20,
                cache_write_tokens: 0,
                units: 0,
                cached_tokens: 64
            })
        );
    }

    #[test]
    fn reads_cache_writes_by_litellm_and_openrouter_names() {
        let litellm = AnswerWire::parse(
            br#"{"usage":{"prompt_tokens":100,"completion_tokens":1,
                "prompt_tokens_details":{"cached_tokens":30},"cache_creation_input_tokens":50}}"#,
        )
        .unwrap();
        let usage = litellm.usage().unwrap();
        assert_eq!((usage.cached_tokens, usage.cache_write_tokens), (30, 50));
        let openrouter = AnswerWire::parse(
            br#"{"usage":{"prompt_tokens":100,"completion_tokens":1,
                "prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":40}}}"#,
        )
        .unwrap();
        assert_eq!(openrouter.usage().unwrap().cache_write_tokens, 40);
        // Never more than the prompt left after cache reads.
        let too_many = AnswerWire::parse(
            br#"{"usage":{"prompt_tokens":100,"prompt_tokens_details":{"cached_tokens":80},
                "cache_creation_input_tokens":500}}"#,
        )
        .unwrap();
        assert_eq!(too_many.usage().unwrap().cache_write_tokens, 20);
    }

    #[test]
    fn finds_usage_at_the_end_without_a_full_parse() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"say \"usage\":{\"prompt_tokens\":999}"}}],
            "usage" : {"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}"#;
        assert_eq!(
            find_usage(body),
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 9,
                cache_write_tokens: 0,
                units: 0,
                cached_tokens: 0
            })
        );
        assert_eq!(find_usage(br#"{"choices":[],"usage":null}"#), None);
        assert_eq!(
            find_usage(br#"{"choices":[{"text":"no usage here"}]}"#),
            None
        );
        assert_eq!(find_usage(b"<html>usage</html>"), None);
        // A nested "usage" is only taken when there is no later one.
        let nested = br#"{"data":[{"usage":{"prompt_tokens":1}}],"usage":{"prompt_tokens":5,"total_tokens":5}}"#;
        assert_eq!(find_usage(nested).map(|u| u.prompt_tokens), Some(5));
    }

    #[test]
    fn missing_or_null_usage_is_none() {
        assert_eq!(
            AnswerWire::parse(br#"{"choices":[]}"#).unwrap().usage(),
            None
        );
        assert_eq!(
            AnswerWire::parse(br#"{"usage":null}"#).unwrap().usage(),
            None
        );
        let embeddings = AnswerWire::parse(br#"{"usage":{"prompt_tokens":5,"total_tokens":5}}"#)
            .unwrap()
            .usage()
            .unwrap();
        assert_eq!(embeddings.prompt_tokens, 5);
        assert_eq!(embeddings.completion_tokens, 0);
    }

    #[test]
    fn collects_generated_text() {
        let a = AnswerWire::parse(
            br#"{"choices":[{"delta":{"content":"Hel","reasoning_content":"think",
                "tool_calls":[{"function":{"arguments":"{\"a\":1}"}}]}},{"text":"lo"}]}"#,
        )
        .unwrap();
        let mut parts = Vec::new();
        a.for_each_text(|t| parts.push(t.to_string()));
        assert_eq!(parts, ["Hel", "think", "{\"a\":1}", "lo"]);
    }

    #[test]
    fn counts_text_in_slices() {
        let t = tokenizer::shared();
        let mut counter = TextCounter::default();
        assert!(!counter.has_text());
        for _ in 0..1000 {
            counter.push("hello world ", t);
        }
        assert!(counter.pending.len() < COUNT_SLICE_BYTES);
        let exact = t.count(&"hello world ".repeat(1000)) as i64;
        let counted = counter.total(t);
        assert!((counted - exact).abs() <= 4, "{counted} vs {exact}");
    }
}
