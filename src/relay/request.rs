//! Reading a client's request without changing it: the fields the gateway needs (model,
//! stream, output limit), the prompt-size estimate for the hold (and whether the prompt is
//! open-ended: files, audio, stored conversations, server-side tools), and the body sent upstream,
//! which is the client's own bytes unless the model is mapped or usage must be requested. Even
//! then only those two fields change: every other value is copied byte for byte, so fields
//! Tollgate does not know still reach the upstream exactly as sent.

use std::borrow::Cow;

use bytes::Bytes;
use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::RelayError;
use crate::domain::tokenizer::Tokenizer;
use crate::protocol::Endpoint;

/// The shapes of the fields the gateway reads, checked before any upstream is called: a
/// lenient upstream would otherwise answer (and charge for) a request no real API takes.
mod shape {
    use indexmap::IndexMap;
    use rustc_hash::FxBuildHasher;
    use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::value::RawValue;

    use super::{Endpoint, JsonStr, RelayError};

    fn wrong(name: &'static str, expected: &str) -> RelayError {
        RelayError::bad_request(format!("'{name}' must be {expected}.")).with_param(name)
    }

    /// The JSON type a raw value starts with.
    fn first(raw: &RawValue) -> u8 {
        raw.get().as_bytes().first().copied().unwrap_or(b' ')
    }

    /// An element of a list that must be an object, with (for messages) a string `role` and
    /// a `content` that is a string, a list or null. Read without keeping anything.
    struct Element {
        role: Option<bool>,
        content: Option<u8>,
    }

    impl<'de> serde::Deserialize<'de> for Element {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Element, D::Error> {
            struct ElementVisitor;
            impl<'de> Visitor<'de> for ElementVisitor {
                type Value = Element;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element, A::Error> {
                    let mut element = Element {
                        role: None,
                        content: None,
                    };
                    while let Some(key) = map.next_key::<JsonStr<'de>>()? {
                        match &*key.0 {
                            "role" => {
                                let role: &RawValue = map.next_value()?;
                                element.role = Some(first(role) == b'"');
                            }
                            "content" => {
                                let content: &RawValue = map.next_value()?;
                                element.content = Some(first(content));
                            }
                            _ => {
                                map.next_value::<IgnoredAny>()?;
                            }
                        }
                    }
                    Ok(element)
                }
            }
            deserializer.deserialize_map(ElementVisitor)
        }
    }

    /// A list whose every element passes `check`; anything else is refused.
    fn list_of<T: for<'a> serde::Deserialize<'a>>(
        raw: &RawValue,
        name: &'static str,
        expected: &str,
        check: impl Fn(&T) -> bool,
    ) -> Result<(), RelayError> {
        let items: Vec<T> = serde_json::from_str(raw.get()).map_err(|_| wrong(name, expected))?;
        if items.iter().all(check) {
            Ok(())
        } else {
            Err(wrong(name, expected))
        }
    }

    /// A list whose every element is a JSON value starting with one of `starts`.
    fn items_start_with(
        raw: &RawValue,
        name: &'static str,
        expected: &str,
        starts: &[u8],
    ) -> Result<(), RelayError> {
        let items: Vec<&RawValue> =
            serde_json::from_str(raw.get()).map_err(|_| wrong(name, expected))?;
        if items.iter().all(|item| starts.contains(&first(item))) {
            Ok(())
        } else {
            Err(wrong(name, expected))
        }
    }

    /// A list element of a prompt: a string, a token id, or a list of token ids.
    struct PromptItem;

    impl<'de> serde::Deserialize<'de> for PromptItem {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PromptItem, D::Error> {
            struct ItemVisitor;
            impl<'de> Visitor<'de> for ItemVisitor {
                type Value = PromptItem;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a string, a token id or a list of token ids")
                }
                fn visit_str<E: de::Error>(self, _: &str) -> Result<PromptItem, E> {
                    Ok(PromptItem)
                }
                fn visit_u64<E: de::Error>(self, _: u64) -> Result<PromptItem, E> {
                    Ok(PromptItem)
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PromptItem, A::Error> {
                    while seq.next_element::<u64>()?.is_some() {}
                    Ok(PromptItem)
                }
            }
            deserializer.deserialize_any(ItemVisitor)
        }
    }

    /// The endpoint's input field, present and not null.
    pub(super) fn check_input(
        endpoint: Endpoint,
        name: &'static str,
        raw: &RawValue,
    ) -> Result<(), RelayError> {
        let is_string = first(raw) == b'"';
        match endpoint {
            Endpoint::ChatCompletions => list_of(
                raw,
                name,
                "an array of message objects, each with a string 'role'",
                |m: &Element| m.role == Some(true),
            ),
            Endpoint::Messages => list_of(
                raw,
                name,
                "an array of message objects, each with a string 'role' and 'content' that is a string or an array of blocks",
                |m: &Element| m.role == Some(true) && matches!(m.content, Some(b'"' | b'[') | None),
            ),
            Endpoint::Completions | Endpoint::Embeddings if !is_string => list_of(
                raw,
                name,
                "a string, an array of strings, or an array of token ids",
                |_: &PromptItem| true,
            ),
            Endpoint::Responses if !is_string => list_of(
                raw,
                name,
                "a string or an array of input item objects",
                |_: &Element| true,
            ),
            Endpoint::Moderations if !is_string => items_start_with(
                raw,
                name,
                "a string, or an array of strings or content objects",
                b"\"{",
            ),
            Endpoint::Rerank => {
                items_start_with(raw, name, "an array of strings or document objects", b"\"{")
            }
            Endpoint::ImageGenerations | Endpoint::AudioSpeech if !is_string => {
                Err(wrong(name, "a string"))
            }
            _ => Ok(()),
        }
    }

    /// Optional fields the gateway reads or translates, when present and not null.
    pub(super) fn check_optional(
        endpoint: Endpoint,
        fields: &IndexMap<JsonStr<'_>, &RawValue, FxBuildHasher>,
    ) -> Result<(), RelayError> {
        let present = |name: &str| fields.get(name).copied().filter(|raw| raw.get() != "null");
        if matches!(
            endpoint,
            Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::Responses
        ) && let Some(tools) = present("tools")
            && first(tools) != b'['
        {
            // Only the array is checked: tool definitions can be tens of kilobytes (Claude
            // Code's), and the translators read each tool themselves.
            return Err(wrong("tools", "an array of tool objects"));
        }
        if endpoint == Endpoint::Messages
            && let Some(system) = present("system")
            && first(system) != b'"'
        {
            list_of(
                system,
                "system",
                "a string or an array of text blocks",
                |_: &Element| true,
            )?;
        }
        if endpoint == Endpoint::Responses
            && let Some(instructions) = present("instructions")
            && !matches!(first(instructions), b'"' | b'[')
        {
            return Err(wrong("instructions", "a string"));
        }
        if endpoint == Endpoint::Rerank
            && let Some(query) = present("query")
            && first(query) != b'"'
        {
            return Err(wrong("query", "a string"));
        }
        Ok(())
    }
}

/// Token cost assumed for one image in a prompt (a 1024×1024 high-detail image on GPT-4o).
const IMAGE_TOKENS: i64 = 765;
/// Tokens assumed for one audio input part.
const AUDIO_TOKENS: i64 = 256;
/// Chat framing per message and per reply, as OpenAI documents for its models.
const TOKENS_PER_MESSAGE: i64 = 3;
const TOKENS_PER_REPLY: i64 = 3;

/// A JSON string borrowed from the body unless it contains escapes. (serde's own `Cow<str>`
/// always copies.) Used for field names and prompt text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonStr<'b>(Cow<'b, str>);

impl std::borrow::Borrow<str> for JsonStr<'_> {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'de: 'b, 'b> serde::Deserialize<'de> for JsonStr<'b> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = JsonStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<JsonStr<'de>, E> {
                Ok(JsonStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<JsonStr<'de>, E> {
                Ok(JsonStr(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A parsed client request, borrowing the body.
#[derive(Debug)]
pub struct ClientRequest<'b> {
    pub endpoint: Endpoint,
    fields: IndexMap<JsonStr<'b>, &'b RawValue, FxBuildHasher>,
    pub model: String,
    pub stream: bool,
    /// The client asked for the usage chunk itself (`stream_options.include_usage`).
    pub client_wants_usage: bool,
    /// `max_completion_tokens` or `max_tokens`, when given.
    pub max_output_tokens: Option<i64>,
    /// Number of choices requested.
    pub choices: i64,
    /// For a multipart upload: where its parts are (the JSON fields are empty then).
    pub form: Option<FormRequest>,
}

/// What the relay needs of a multipart upload.
#[derive(Debug, Clone)]
pub struct FormRequest {
    /// The client's content type, boundary included, sent upstream unchanged.
    pub content_type: String,
    /// Where the model's value is in the body, to replace it when a channel maps it.
    pub model_value: std::ops::Range<usize>,
    /// The uploaded files' size in bytes.
    pub file_bytes: usize,
    /// The form's text fields (model, prompt, n, size, …), by name.
    pub texts: Vec<(String, String)>,
}

fn field<'a, T: serde::Deserialize<'a>>(
    fields: &IndexMap<JsonStr<'_>, &'a RawValue, FxBuildHasher>,
    name: &'static str,
    expected: &str,
) -> Result<Option<T>, RelayError> {
    match fields.get(name) {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => serde_json::from_str(raw.get()).map(Some).map_err(|_| {
            RelayError::bad_request(format!("'{name}' must be {expected}.")).with_param(name)
        }),
    }
}

impl<'b> ClientRequest<'b> {
    pub fn parse(endpoint: Endpoint, body: &'b [u8]) -> Result<ClientRequest<'b>, RelayError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(RelayError::bad_request(
                "The request body is empty; send a JSON object.".into(),
            ));
        }
        let fields: IndexMap<JsonStr<'b>, &'b RawValue, FxBuildHasher> =
            serde_json::from_slice(body).map_err(|e| {
                if e.is_data() {
                    RelayError::bad_request("The request body must be a JSON object.".into())
                } else {
                    RelayError::bad_request(format!(
                        "We could not parse the JSON body of your request: {e}."
                    ))
                }
            })?;
        let model: String =
            field(&fields, "model", "a string")?.ok_or(RelayError::missing_field("model"))?;
        if model.trim().is_empty() {
            return Err(RelayError::missing_field("model"));
        }
        let input = endpoint.input_field();
        match fields.get(input) {
            Some(raw) if raw.get() != "null" => shape::check_input(endpoint, input, raw)?,
            _ => return Err(RelayError::missing_field(input)),
        }
        if endpoint == Endpoint::Rerank
            && field::<&RawValue>(&fields, "query", "a string")?.is_none()
        {
            return Err(RelayError::missing_field("query"));
        }
        shape::check_optional(endpoint, &fields)?;
        let stream = field::<bool>(&fields, "stream", "a boolean")?.unwrap_or(false);
        if stream && !endpoint.generates() {
            return Err(RelayError::bad_request(format!(
                "The {} endpoint cannot stream.",
                endpoint.log_name()
            ))
            .with_param("stream"));
        }
        #[derive(serde::Deserialize)]
        struct StreamOptions {
            include_usage: Option<bool>,
        }
        let client_wants_usage = field::<StreamOptions>(&fields, "stream_options", "an object")?
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        // The most output the request allows. Anthropic's protocol has `max_tokens` alone;
        // elsewhere an upstream may read whichever of the fields the client sent, so the
        // largest one bounds the hold and the bill.
        let limit_fields: &[&'static str] = match endpoint {
            Endpoint::Messages => &["max_tokens"],
            Endpoint::Responses => &["max_output_tokens", "max_completion_tokens", "max_tokens"],
            _ => &["max_completion_tokens", "max_tokens"],
        };
        let mut max_output_tokens: Option<i64> = None;
        for &name in limit_fields {
            if let Some(limit) = field::<i64>(&fields, name, "a non-negative integer")? {
                if limit < 0 {
                    return Err(RelayError::bad_request(format!(
                        "'{name}' must be a non-negative integer."
                    ))
                    .with_param(name));
                }
                max_output_tokens = Some(max_output_tokens.map_or(limit, |m| m.max(limit)));
            }
        }
        // Legacy completions generate `best_of` candidates and bill them all.
        let n = field::<i64>(&fields, "n", "a positive integer")?.unwrap_or(1);
        let best_of = match endpoint {
            Endpoint::Completions => field::<i64>(&fields, "best_of", "a positive integer")?,
            _ => None,
        };
        let choices = n.max(best_of.unwrap_or(1)).clamp(1, 128);
        Ok(ClientRequest {
            endpoint,
            fields,
            model,
            stream,
            client_wants_usage,
            max_output_tokens,
            choices,
            form: None,
        })
    }

    /// Reads a multipart upload: its model and text fields, the size of its files, and where
    /// the model's value is.
    pub fn parse_form(
        endpoint: Endpoint,
        body: &'b [u8],
        content_type: Option<&str>,
    ) -> Result<ClientRequest<'b>, RelayError> {
        let refuse = |message: String| RelayError::bad_request(message);
        let content_type = content_type.unwrap_or_default();
        let boundary = super::multipart::boundary(content_type).ok_or_else(|| {
            refuse("Send the upload as multipart/form-data, with its file and a 'model'.".into())
        })?;
        let parts = super::multipart::parts(body, boundary)
            .map_err(|e| refuse(format!("The form could not be read: {e}.")))?;
        let model_part = parts
            .iter()
            .find(|p| p.name == "model" && !p.is_file)
            .ok_or(RelayError::missing_field("model"))?;
        let model = std::str::from_utf8(&body[model_part.value.clone()])
            .map_err(|_| refuse("'model' must be text.".into()))?
            .trim()
            .to_string();
        if model.is_empty() {
            return Err(RelayError::missing_field("model"));
        }
        let upload_fields = endpoint.upload_fields();
        let file_bytes: usize = parts
            .iter()
            .filter(|p| p.is_file && upload_fields.contains(&p.name.as_str()))
            .map(|p| p.value.len())
            .sum();
        if !parts
            .iter()
            .any(|p| p.is_file && upload_fields.contains(&p.name.as_str()))
        {
            return Err(RelayError::missing_field(upload_fields[0]));
        }
        let texts: Vec<(String, String)> = parts
            .iter()
            .filter(|p| !p.is_file)
            .filter_map(|p| {
                let value = std::str::from_utf8(&body[p.value.clone()]).ok()?;
                Some((p.name.clone(), value.trim().to_string()))
            })
            .collect();
        let text = |name: &str| {
            texts
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let stream = matches!(text("stream"), Some("true" | "1"));
        let choices = text("n")
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(1)
            .clamp(1, 128);
        Ok(ClientRequest {
            endpoint,
            fields: IndexMap::default(),
            model,
            stream,
            client_wants_usage: false,
            max_output_tokens: None,
            choices,
            form: Some(FormRequest {
                content_type: content_type.to_string(),
                model_value: model_part.value.clone(),
                file_bytes,
                texts,
            }),
        })
    }

    /// A field of the request, parsed (None when absent or not JSON of that shape).
    pub fn json_field(&self, name: &str) -> Option<Value> {
        serde_json::from_str(self.fields.get(name)?.get()).ok()
    }

    /// A text parameter: a JSON string field, or a form's text field.
    pub fn param(&self, name: &str) -> Option<&str> {
        match &self.form {
            Some(form) => form
                .texts
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str()),
            None => self.text_field(name),
        }
    }

    /// A string field of the request as sent (None when absent, not a string, or escaped).
    pub fn text_field(&self, name: &str) -> Option<&'b str> {
        let raw: &'b RawValue = self.fields.get(name)?;
        serde_json::from_str::<&'b str>(raw.get()).ok()
    }

    /// The body to send upstream: the client's bytes unchanged when nothing needs to change,
    /// otherwise the same fields with `model` replaced and, for streams, usage requested.
    pub fn upstream_body(
        &self,
        original: &Bytes,
        upstream_model: &str,
        request_usage: bool,
    ) -> Result<Bytes, RelayError> {
        if let Some(form) = &self.form {
            return Ok(if upstream_model == self.model {
                original.clone()
            } else {
                super::multipart::replace(original, form.model_value.clone(), upstream_model)
            });
        }
        let inject_usage = request_usage && self.stream && !self.client_wants_usage;
        if upstream_model == self.model && !inject_usage {
            return Ok(original.clone());
        }
        let internal = |_| RelayError::internal();
        let model_raw = serde_json::value::to_raw_value(upstream_model).map_err(internal)?;
        let options_raw = if inject_usage {
            let mut options = match self.fields.get("stream_options") {
                Some(raw) => match serde_json::from_str::<Value>(raw.get()) {
                    Ok(Value::Object(map)) => map,
                    _ => serde_json::Map::new(),
                },
                None => serde_json::Map::new(),
            };
            options.insert("include_usage".into(), Value::Bool(true));
            Some(serde_json::value::to_raw_value(&options).map_err(internal)?)
        } else {
            None
        };
        let mut out: IndexMap<&str, &RawValue, FxBuildHasher> =
            IndexMap::with_capacity_and_hasher(self.fields.len() + 1, FxBuildHasher);
        for (name, raw) in &self.fields {
            out.insert(name.0.as_ref(), raw);
        }
        out.insert("model", &model_raw);
        if let Some(options) = &options_raw {
            out.insert("stream_options", options);
        }
        serde_json::to_vec(&out).map(Bytes::from).map_err(internal)
    }

    /// Estimated prompt tokens, for the hold and for billing when the upstream reports none,
    /// and whether the prompt is open-ended. Reads the input in place (strings are borrowed
    /// from the body, not copied), in the one pass that counts it.
    pub fn estimate_prompt(&self, tokenizer: &Tokenizer) -> PromptEstimate {
        let mut reader = PromptReader {
            tokenizer,
            open_ended: false,
        };
        let tokens = self.read_prompt(&mut reader);
        PromptEstimate {
            tokens,
            open_ended: reader.open_ended,
        }
    }

    /// [`ClientRequest::estimate_prompt`]'s token count alone.
    pub fn estimate_prompt_tokens(&self, tokenizer: &Tokenizer) -> i64 {
        self.estimate_prompt(tokenizer).tokens
    }

    fn read_prompt(&self, reader: &mut PromptReader<'_>) -> i64 {
        if self.form.is_some() {
            // An upload's own content is not text, and an upstream that prices it in tokens
            // (audio, images) counts them itself; an edit's prompt is text.
            reader.open_ended = true;
            return self.param("prompt").map_or(0, |prompt| reader.text(prompt));
        }
        let present = |name: &str| self.fields.get(name).filter(|raw| raw.get() != "null");
        // Content the upstream adds from what it stores or fetches: a stored conversation, a
        // stored prompt, results of tools it runs itself.
        let replays_stored = match self.endpoint {
            Endpoint::Responses => ["previous_response_id", "conversation", "prompt"]
                .iter()
                .any(|name| present(name).is_some()),
            Endpoint::ChatCompletions => present("web_search_options").is_some(),
            Endpoint::Messages => present("mcp_servers").is_some(),
            _ => false,
        };
        if replays_stored {
            reader.open_ended = true;
        }
        let Some(input) = self.fields.get(self.endpoint.input_field()) else {
            return 0;
        };
        match self.endpoint {
            Endpoint::ChatCompletions => {
                let mut total = TOKENS_PER_REPLY + reader.messages(input);
                // Tool and function definitions are part of the prompt the model reads.
                if let Some(tools) = self.fields.get("tools") {
                    total += reader.tools(tools);
                }
                if let Some(functions) = self.fields.get("functions") {
                    total += reader.text(functions.get());
                }
                total
            }
            Endpoint::Completions
            | Endpoint::Embeddings
            | Endpoint::ImageGenerations
            | Endpoint::Moderations
            | Endpoint::AudioSpeech => reader.inputs(input),
            // Forms are read above, from their text fields.
            Endpoint::AudioTranscriptions | Endpoint::AudioTranslations | Endpoint::ImageEdits => 0,
            Endpoint::Rerank => {
                let query = self.fields.get("query").map_or(0, |q| reader.blocks(q));
                // Each document is read with the query.
                reader.documents(input) + query
            }
            Endpoint::Responses => {
                let mut total = TOKENS_PER_REPLY;
                if let Some(instructions) = self.fields.get("instructions") {
                    total += reader.blocks(instructions);
                }
                total += match input.get().as_bytes().first() {
                    Some(b'"') => reader.blocks(input),
                    _ => reader.response_items(input),
                };
                if let Some(tools) = self.fields.get("tools") {
                    total += reader.tools(tools);
                }
                total
            }
            Endpoint::Messages => {
                let mut total = TOKENS_PER_REPLY;
                if let Some(system) = self.fields.get("system") {
                    total += reader.blocks(system);
                }
                total += reader.anthropic_turns(input);
                if let Some(tools) = self.fields.get("tools") {
                    total += reader.tools(tools);
                }
                total
            }
        }
    }
}

/// A prompt as the hold sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PromptEstimate {
    /// Tokens counted in the body.
    pub tokens: i64,
    /// The upstream will read more into the prompt than the body spells out, by an amount the
    /// body does not tell: a file, a document or audio (whatever its encoded size), a
    /// conversation or prompt stored upstream, a tool the upstream runs itself (searching
    /// files or the web, fetching pages, running code, calling MCP servers), or an upload.
    /// Such a prompt is held, and billed at most, as the model's whole context window.
    pub open_ended: bool,
}

/// Content parts whose tokens the body does not tell: files and documents (a PDF's pages are
/// read as text and images), and audio.
fn is_open_ended_part(kind: &str) -> bool {
    matches!(kind, "file" | "input_file" | "document" | "input_audio")
}

/// Tools an upstream runs itself, adding what they find to the prompt: OpenAI's file search,
/// web search, code interpreter and remote MCP; Anthropic's web search, web fetch, code
/// execution and MCP toolsets. Versioned names (`web_search_20250305`) count by their prefix.
fn is_server_tool(kind: &str) -> bool {
    const PREFIXES: [&str; 6] = [
        "file_search",
        "web_search",
        "web_fetch",
        "code_interpreter",
        "code_execution",
        "mcp",
    ];
    PREFIXES.iter().any(|prefix| kind.starts_with(prefix))
}

/// Counts a prompt's tokens and notes, on the way, whether it is open-ended
/// ([`PromptEstimate::open_ended`]). A list that cannot be read as its protocol's shape is
/// counted as nothing and taken as open-ended: an upstream reading it more leniently could
/// still bill for what is in it.
struct PromptReader<'t> {
    tokenizer: &'t Tokenizer,
    open_ended: bool,
}

impl PromptReader<'_> {
    fn text(&self, text: &str) -> i64 {
        i64::try_from(self.tokenizer.count(text)).unwrap_or(i64::MAX)
    }

    /// What a list that could not be read counts for.
    fn unreadable(&mut self) -> i64 {
        self.open_ended = true;
        0
    }

    /// A `tools` list: its definitions are read by the model; a tool the upstream runs itself
    /// makes the prompt open-ended.
    fn tools(&mut self, tools: &RawValue) -> i64 {
        #[derive(serde::Deserialize)]
        struct ToolWire<'a> {
            #[serde(rename = "type", borrow)]
            kind: Option<JsonStr<'a>>,
        }
        match serde_json::from_str::<Vec<ToolWire<'_>>>(tools.get()) {
            Ok(list) => {
                if list
                    .iter()
                    .any(|tool| tool.kind.as_ref().is_some_and(|k| is_server_tool(&k.0)))
                {
                    self.open_ended = true;
                }
            }
            Err(_) => self.open_ended = true,
        }
        self.text(tools.get())
    }

    /// Responses input items: messages (content as a string or typed parts), function calls
    /// and their outputs, and references to items stored upstream.
    fn response_items(&mut self, items: &RawValue) -> i64 {
        #[derive(serde::Deserialize)]
        struct ItemWire<'a> {
            #[serde(rename = "type", borrow)]
            kind: Option<Cow<'a, str>>,
            #[serde(borrow)]
            content: Option<&'a RawValue>,
            #[serde(borrow)]
            name: Option<Cow<'a, str>>,
            #[serde(borrow)]
            arguments: Option<Cow<'a, str>>,
            #[serde(borrow)]
            output: Option<&'a RawValue>,
        }
        let Ok(items) = serde_json::from_str::<Vec<ItemWire<'_>>>(items.get()) else {
            return self.unreadable();
        };
        let mut total = 0;
        for item in &items {
            if item.kind.as_deref() == Some("item_reference") {
                // An item stored upstream, replayed by its id.
                self.open_ended = true;
            }
            total += TOKENS_PER_MESSAGE
                + item.content.map_or(0, |c| self.blocks(c))
                + item.output.map_or(0, |o| self.blocks(o))
                + [&item.name, &item.arguments]
                    .into_iter()
                    .flatten()
                    .map(|text| self.text(text))
                    .sum::<i64>();
        }
        total
    }

    /// Rerank documents: strings, or objects whose `text` is read.
    fn documents(&self, documents: &RawValue) -> i64 {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum DocumentWire<'a> {
            #[serde(borrow)]
            Text(JsonStr<'a>),
            Object {
                #[serde(borrow)]
                text: Option<JsonStr<'a>>,
            },
        }
        serde_json::from_str::<Vec<DocumentWire<'_>>>(documents.get()).map_or(0, |documents| {
            documents
                .iter()
                .map(|document| match document {
                    DocumentWire::Text(text) | DocumentWire::Object { text: Some(text) } => {
                        self.text(&text.0)
                    }
                    DocumentWire::Object { text: None } => 0,
                })
                .sum()
        })
    }

    /// Anthropic turns: a role and content that is a string or a list of blocks.
    fn anthropic_turns(&mut self, turns: &RawValue) -> i64 {
        #[derive(serde::Deserialize)]
        struct TurnWire<'a> {
            #[serde(borrow)]
            content: Option<&'a RawValue>,
        }
        let Ok(turns) = serde_json::from_str::<Vec<TurnWire<'_>>>(turns.get()) else {
            return self.unreadable();
        };
        turns
            .iter()
            .map(|turn| TOKENS_PER_MESSAGE + turn.content.map_or(0, |c| self.blocks(c)))
            .sum()
    }

    /// Anthropic and Responses content: a string, or blocks of text, images, documents, tool
    /// calls and results (whose own content is read the same way).
    fn blocks(&mut self, content: &RawValue) -> i64 {
        #[derive(serde::Deserialize)]
        struct BlockWire<'a> {
            #[serde(rename = "type", borrow)]
            kind: Option<Cow<'a, str>>,
            #[serde(borrow)]
            text: Option<Cow<'a, str>>,
            #[serde(borrow)]
            thinking: Option<Cow<'a, str>>,
            #[serde(borrow)]
            name: Option<Cow<'a, str>>,
            #[serde(borrow)]
            input: Option<&'a RawValue>,
            #[serde(borrow)]
            content: Option<&'a RawValue>,
        }
        match content.get().as_bytes().first() {
            Some(b'"') => serde_json::from_str::<JsonStr<'_>>(content.get())
                .map_or(0, |text| self.text(&text.0)),
            Some(b'[') => {
                let Ok(blocks) = serde_json::from_str::<Vec<BlockWire<'_>>>(content.get()) else {
                    return self.unreadable();
                };
                let mut total = 0;
                for block in &blocks {
                    let kind = block.kind.as_deref().unwrap_or_default();
                    if is_open_ended_part(kind) {
                        self.open_ended = true;
                    }
                    total += match kind {
                        // What a file or document really holds, the hold does not guess:
                        // the prompt is open-ended (above).
                        "image" | "input_image" | "document" | "input_file" | "file" => {
                            IMAGE_TOKENS
                        }
                        "input_audio" => AUDIO_TOKENS,
                        _ => {
                            [&block.text, &block.thinking, &block.name]
                                .into_iter()
                                .flatten()
                                .map(|text| self.text(text))
                                .sum::<i64>()
                                + block.input.map_or(0, |input| self.text(input.get()))
                                + block.content.map_or(0, |c| self.blocks(c))
                        }
                    };
                }
                total
            }
            _ => 0,
        }
    }

    fn messages(&mut self, messages: &RawValue) -> i64 {
        let Ok(messages) = serde_json::from_str::<Vec<MessageWire<'_>>>(messages.get()) else {
            return self.unreadable();
        };
        let mut total = 0;
        for message in &messages {
            total += TOKENS_PER_MESSAGE;
            if let Some(role) = &message.role {
                total += self.text(role);
            }
            if let Some(name) = &message.name {
                total += 1 + self.text(name);
            }
            if let Some(content) = message.content {
                total += self.content(content);
            }
            for call in message.tool_calls.iter().flatten() {
                if let Some(function) = &call.function {
                    for text in [&function.name, &function.arguments].into_iter().flatten() {
                        total += self.text(text);
                    }
                }
            }
        }
        total
    }

    /// A chat message's content: a string, or a list of typed parts.
    fn content(&mut self, content: &RawValue) -> i64 {
        match content.get().as_bytes().first() {
            Some(b'"') => serde_json::from_str::<JsonStr<'_>>(content.get())
                .map_or(0, |text| self.text(&text.0)),
            Some(b'[') => {
                let Ok(parts) = serde_json::from_str::<Vec<PartWire<'_>>>(content.get()) else {
                    return self.unreadable();
                };
                let mut total = 0;
                for part in &parts {
                    let kind = part.kind.as_deref().unwrap_or_default();
                    if is_open_ended_part(kind) {
                        self.open_ended = true;
                    }
                    total += match kind {
                        "text" | "input_text" => part.text.as_deref().map_or(0, |t| self.text(t)),
                        "image_url" | "input_image" | "image" => IMAGE_TOKENS,
                        "input_audio" => AUDIO_TOKENS,
                        _ => 0,
                    };
                }
                total
            }
            _ => 0,
        }
    }

    /// `prompt` / `input`: a string, a list of strings, a list of token ids, or a list of
    /// lists of token ids.
    fn inputs(&self, input: &RawValue) -> i64 {
        match input.get().as_bytes().first() {
            Some(b'"') => serde_json::from_str::<JsonStr<'_>>(input.get())
                .map_or(0, |text| self.text(&text.0)),
            Some(b'[') => serde_json::from_str::<Vec<&RawValue>>(input.get())
                .map(|items| items.iter().map(|i| self.inputs(i)).sum())
                .unwrap_or(0),
            Some(b'-' | b'0'..=b'9') => 1,
            _ => 0,
        }
    }
}

#[derive(serde::Deserialize)]
struct FunctionWire<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct ToolCallWire<'a> {
    #[serde(borrow)]
    function: Option<FunctionWire<'a>>,
}

#[derive(serde::Deserialize)]
struct MessageWire<'a> {
    #[serde(borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolCallWire<'a>>>,
}

#[derive(serde::Deserialize)]
struct PartWire<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tokenizer;

    fn parse(endpoint: Endpoint, body: &str) -> Result<ClientRequest<'_>, RelayError> {
        ClientRequest::parse(endpoint, body.as_bytes())
    }

    #[test]
    fn reads_the_fields_the_gateway_needs() {
        let r = parse(
            Endpoint::ChatCompletions,
            r#"{"model":"gpt-4o-mini","messages":[],"stream":true,"max_tokens":64,"n":2}"#,
        )
        .unwrap();
        assert_eq!(r.model, "gpt-4o-mini");
        assert!(r.stream);
        assert!(!r.client_wants_usage);
        assert_eq!(r.max_output_tokens, Some(64));
        assert_eq!(r.choices, 2);
        let r = parse(
            Endpoint::ChatCompletions,
            r#"{"model":"m","messages":[],"max_completion_tokens":10,"max_tokens":99,
                "stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .unwrap();
        // An upstream may read either field: the larger bounds the bill.
        assert_eq!(r.max_output_tokens, Some(99));
        assert!(r.client_wants_usage);
        let r = parse(
            Endpoint::Messages,
            r#"{"model":"m","messages":[],"max_tokens":64000,"max_completion_tokens":1}"#,
        )
        .unwrap();
        assert_eq!(
            r.max_output_tokens,
            Some(64000),
            "Anthropic's protocol reads max_tokens"
        );
        let r = parse(
            Endpoint::Completions,
            r#"{"model":"m","prompt":"x","max_tokens":5,"n":2,"best_of":4}"#,
        )
        .unwrap();
        assert_eq!(r.choices, 4);
    }

    #[test]
    fn refuses_bad_bodies_with_clear_messages() {
        let missing_model = parse(Endpoint::ChatCompletions, r#"{"messages":[]}"#).unwrap_err();
        assert_eq!(missing_model.code, "missing_required_parameter");
        assert_eq!(missing_model.param, Some("model"));
        let missing_messages = parse(Endpoint::ChatCompletions, r#"{"model":"m"}"#).unwrap_err();
        assert_eq!(missing_messages.param, Some("messages"));
        assert!(parse(Endpoint::ChatCompletions, "{not json").is_err());
        assert!(parse(Endpoint::ChatCompletions, "[1,2]").is_err());
        assert!(parse(Endpoint::ChatCompletions, "").is_err());
        let bad_stream = parse(
            Endpoint::ChatCompletions,
            r#"{"model":"m","messages":[],"stream":"yes"}"#,
        )
        .unwrap_err();
        assert_eq!(bad_stream.param, Some("stream"));
        assert!(
            parse(
                Endpoint::Embeddings,
                r#"{"model":"m","input":"x","stream":true}"#
            )
            .is_err()
        );
        assert!(
            parse(
                Endpoint::ChatCompletions,
                r#"{"model":"m","messages":[],"max_tokens":-1}"#
            )
            .is_err()
        );
    }

    #[test]
    fn forwards_original_bytes_when_nothing_changes() {
        let body = Bytes::from_static(
            br#"{"model":"gpt-4o-mini", "messages":[], "x_unknown":{"deep":[1.50,2e3]}}"#,
        );
        let r = ClientRequest::parse(Endpoint::ChatCompletions, &body).unwrap();
        let out = r.upstream_body(&body, "gpt-4o-mini", true).unwrap();
        assert_eq!(out, body);
    }

    #[test]
    fn rewrites_only_model_and_stream_options() {
        let body = Bytes::from_static(
            br#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}],"x_unknown":{"deep":[1.50,2e3,12345678901234567890]},"stream_options":{"other":1}}"#,
        );
        let r = ClientRequest::parse(Endpoint::ChatCompletions, &body).unwrap();
        let out = r.upstream_body(&body, "gpt-4o-2024-08-06", true).unwrap();
        let text = std::str::from_utf8(&out).unwrap();
        // Unknown values are copied byte for byte (numbers keep their spelling).
        assert!(
            text.contains(r#""x_unknown":{"deep":[1.50,2e3,12345678901234567890]}"#),
            "{text}"
        );
        assert!(text.contains(r#""model":"gpt-4o-2024-08-06""#));
        assert!(
            text.contains(r#""stream_options":{"include_usage":true,"other":1}"#),
            "{text}"
        );
        // Field order is kept.
        assert!(text.starts_with(r#"{"model":"#));
    }

    #[test]
    fn estimates_prompt_tokens() {
        let t = tokenizer::shared();
        let r = parse(
            Endpoint::ChatCompletions,
            r#"{"model":"m","messages":[
                {"role":"system","content":"You are a helpful assistant."},
                {"role":"user","content":[{"type":"text","text":"Hello there"},
                                          {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#,
        )
        .unwrap();
        // 3 reply + 2×3 framing + "system"(1) + 6 + "user"(1) + 2 + 765 image
        assert_eq!(
            r.estimate_prompt_tokens(t),
            3 + 6 + 1 + 6 + 1 + 2 + IMAGE_TOKENS
        );
        let r = parse(
            Endpoint::Embeddings,
            r#"{"model":"m","input":["hello","world"]}"#,
        )
        .unwrap();
        assert_eq!(r.estimate_prompt_tokens(t), 2);
        let r = parse(
            Endpoint::Completions,
            r#"{"model":"m","prompt":[[1,2,3],[4]]}"#,
        )
        .unwrap();
        assert_eq!(r.estimate_prompt_tokens(t), 4);
    }

    #[test]
    fn tells_open_ended_prompts() {
        let t = tokenizer::shared();
        let open = |endpoint: Endpoint, body: &str| {
            let request = parse(endpoint, body).unwrap();
            request.estimate_prompt(t).open_ended
        };
        let chat = Endpoint::ChatCompletions;
        let file = r#"{"type":"file","file":{"file_data":"data:application/pdf;base64,AAAA"}}"#;
        let audio = r#"{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}"#;
        for part in [file, audio] {
            let body = format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":[{{"type":"text","text":"Summarise"}},{part}]}}]}}"#
            );
            assert!(open(chat, &body), "{body}");
        }
        assert!(open(
            chat,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"web_search_options":{}}"#
        ));
        assert!(!open(
            chat,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"},
                {"type":"image_url","image_url":{"url":"https://x.test/a.png"}}]}],
                "tools":[{"type":"function","function":{"name":"f"}}],"web_search_options":null}"#
        ));
        // A content list no protocol has (the upstream may still read it): open-ended.
        assert!(open(
            chat,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"},7]}]}"#
        ));

        let responses = Endpoint::Responses;
        assert!(open(
            responses,
            r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"}]}]}"#
        ));
        // A function's output may carry a file too.
        assert!(open(
            responses,
            r#"{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_file","file_url":"https://x.test/a.pdf"}]}]}"#
        ));
        for stored in [
            r#""previous_response_id":"resp_1""#,
            r#""conversation":"conv_1""#,
            r#""prompt":{"id":"pmpt_1"}"#,
        ] {
            let body = format!(r#"{{"model":"m","input":"hi",{stored}}}"#);
            assert!(open(responses, &body), "{body}");
        }
        assert!(open(
            responses,
            r#"{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}"#
        ));
        for tool in [
            "file_search",
            "web_search_preview",
            "web_search",
            "code_interpreter",
            "mcp",
        ] {
            let body = format!(r#"{{"model":"m","input":"hi","tools":[{{"type":"{tool}"}}]}}"#);
            assert!(open(responses, &body), "{body}");
        }
        // An escaped name is the same name to the upstream.
        assert!(open(
            responses,
            r#"{"model":"m","input":"hi","tools":[{"type":"web\u005fsearch"}]}"#
        ));
        assert!(!open(
            responses,
            r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]}],
                "tools":[{"type":"function","name":"f","parameters":{}}],"previous_response_id":null}"#
        ));

        let messages = Endpoint::Messages;
        assert!(open(
            messages,
            r#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[
                {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"AAAA"}}]}]}"#
        ));
        // Inside a tool's result.
        assert!(open(
            messages,
            r#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[
                {"type":"tool_result","tool_use_id":"t","content":[{"type":"document","source":{"type":"file","file_id":"f"}}]}]}]}"#
        ));
        for tool in [
            "web_search_20250305",
            "web_fetch_20250910",
            "code_execution_20250825",
        ] {
            let body = format!(
                r#"{{"model":"m","max_tokens":10,"messages":[{{"role":"user","content":"hi"}}],"tools":[{{"type":"{tool}","name":"x"}}]}}"#
            );
            assert!(open(messages, &body), "{body}");
        }
        assert!(open(
            messages,
            r#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"mcp_servers":[{"type":"url","url":"https://x.test"}]}"#
        ));
        assert!(!open(
            messages,
            r#"{"model":"m","max_tokens":10,"system":[{"type":"text","text":"be brief"}],
                "messages":[{"role":"user","content":[{"type":"text","text":"hi"},
                {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}],
                "tools":[{"name":"f","input_schema":{}}]}"#
        ));
        // Other endpoints have no parts.
        assert!(!open(Endpoint::Embeddings, r#"{"model":"m","input":"hi"}"#));

        // An upload is open-ended; its text prompt is counted.
        let body = "--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n\
                    --b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF\r\n--b--\r\n";
        let form = ClientRequest::parse_form(
            Endpoint::AudioTranscriptions,
            body.as_bytes(),
            Some("multipart/form-data; boundary=b"),
        )
        .unwrap();
        assert_eq!(
            form.estimate_prompt(t),
            PromptEstimate {
                tokens: 0,
                open_ended: true
            }
        );
    }
}
