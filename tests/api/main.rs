//! The integration tests: one binary, the real server over real HTTP.

mod helpers;

mod audio;
mod billing;
mod billing_writer;
mod catalog;
mod claude_code;
mod cli;
mod codes;
mod connections;
mod hostile;
mod id_tokens;
mod images_and_moderations;
mod inbound_messages;
mod inbound_responses;
mod key_budgets;
mod ledger;
mod live_changes;
mod management_api;
mod model_names;
mod portal;
mod portal_email;
mod portal_oauth;
mod provider_anthropic;
mod provider_azure;
mod provider_bedrock;
mod provider_cohere;
mod provider_gemini;
mod provider_ollama;
mod provider_vertex;
mod refusals;
mod relay_basics;
mod routing;
mod sdk;
mod shutdown;
mod streaming;
