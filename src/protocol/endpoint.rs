//! What a client called: the endpoint, and the protocol that decides its wire format.

/// The endpoints the relay serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    /// Anthropic's Messages API.
    Messages,
    /// OpenAI's Responses API.
    Responses,
    /// Document reranking in Cohere's and Jina's shape.
    Rerank,
    /// OpenAI's image generation.
    ImageGenerations,
    /// OpenAI's moderation classifier.
    Moderations,
    /// Text to speech.
    AudioSpeech,
    /// Speech to text (a multipart upload).
    AudioTranscriptions,
    /// Speech to English text (a multipart upload).
    AudioTranslations,
    /// Image editing (a multipart upload).
    ImageEdits,
}

impl Endpoint {
    pub const ALL: [Endpoint; 12] = [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Messages,
        Endpoint::Responses,
        Endpoint::Rerank,
        Endpoint::ImageGenerations,
        Endpoint::Moderations,
        Endpoint::AudioSpeech,
        Endpoint::AudioTranscriptions,
        Endpoint::AudioTranslations,
        Endpoint::ImageEdits,
    ];

    /// The protocol a client of this endpoint speaks.
    pub fn protocol(self) -> ClientProtocol {
        match self {
            Endpoint::Messages => ClientProtocol::Anthropic,
            Endpoint::Responses => ClientProtocol::Responses,
            _ => ClientProtocol::OpenAi,
        }
    }

    /// Position in [`Endpoint::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Path under the channel's base URL.
    pub fn upstream_path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Messages => "/messages",
            Endpoint::Responses => "/responses",
            Endpoint::Rerank => "/rerank",
            Endpoint::ImageGenerations => "/images/generations",
            Endpoint::Moderations => "/moderations",
            Endpoint::AudioSpeech => "/audio/speech",
            Endpoint::AudioTranscriptions => "/audio/transcriptions",
            Endpoint::AudioTranslations => "/audio/translations",
            Endpoint::ImageEdits => "/images/edits",
        }
    }

    /// Name recorded in request logs.
    pub fn log_name(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat.completions",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Messages => "messages",
            Endpoint::Responses => "responses",
            Endpoint::Rerank => "rerank",
            Endpoint::ImageGenerations => "images.generations",
            Endpoint::Moderations => "moderations",
            Endpoint::AudioSpeech => "audio.speech",
            Endpoint::AudioTranscriptions => "audio.transcriptions",
            Endpoint::AudioTranslations => "audio.translations",
            Endpoint::ImageEdits => "images.edits",
        }
    }

    /// Whether the endpoint makes images, billed per image.
    pub fn makes_images(self) -> bool {
        matches!(self, Endpoint::ImageGenerations | Endpoint::ImageEdits)
    }

    /// Whether the client sends a multipart form (an upload) rather than JSON.
    pub fn is_form(self) -> bool {
        matches!(
            self,
            Endpoint::AudioTranscriptions | Endpoint::AudioTranslations | Endpoint::ImageEdits
        )
    }

    /// The form fields that carry the upload (an edit takes `image` or several `image[]`).
    pub fn upload_fields(self) -> &'static [&'static str] {
        match self {
            Endpoint::ImageEdits => &["image", "image[]"],
            _ => &["file"],
        }
    }

    /// Whether the endpoint generates output (and so may stream and holds room for it);
    /// embeddings, reranking and moderation only read their input.
    pub fn generates(self) -> bool {
        !matches!(
            self,
            Endpoint::Embeddings | Endpoint::Rerank | Endpoint::Moderations | Endpoint::AudioSpeech
        )
    }

    /// Whether an OpenAI-compatible upstream takes `stream_options` on this endpoint.
    pub fn takes_stream_options(self) -> bool {
        matches!(self, Endpoint::ChatCompletions | Endpoint::Completions)
    }

    /// The field holding what the request is about (its messages, prompt, input, file).
    pub fn input_field(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions | Endpoint::Messages => "messages",
            Endpoint::Completions | Endpoint::ImageGenerations => "prompt",
            Endpoint::Embeddings
            | Endpoint::Responses
            | Endpoint::Moderations
            | Endpoint::AudioSpeech => "input",
            Endpoint::AudioTranscriptions | Endpoint::AudioTranslations => "file",
            Endpoint::ImageEdits => "image",
            Endpoint::Rerank => "documents",
        }
    }
}

/// The protocol a client speaks, decided by the endpoint it called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientProtocol {
    OpenAi,
    Anthropic,
    /// OpenAI's Responses API: OpenAI's error envelope, its own stream events.
    Responses,
}
