//! The wire's vocabulary, shared by the relay's pipeline and the providers: endpoints and
//! client protocols, server-sent events, stream translation, OpenAI's error, usage and
//! embeddings shapes, and what a client presents (its key, its address). Pure functions and types: no I/O, no
//! state, no knowledge of a particular upstream.

pub mod client;
pub mod endpoint;
pub mod openai;
pub mod sse;
pub mod translate;
pub mod usage;

pub use endpoint::{ClientProtocol, Endpoint};

/// A request an upstream's API cannot express, and the parameter to fix. The relay answers it
/// with a 400 in the client's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub param: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(param: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            param,
            message: message.into(),
        }
    }
}
