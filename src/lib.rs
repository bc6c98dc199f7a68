//! Tollgate: a self-hosted LLM API gateway and resale portal.

pub mod api;
pub mod app;
pub mod billing;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod health;
pub mod i18n;
pub mod jobs;
pub mod mail;
pub mod metrics;
pub mod oauth;
pub mod oneapi;
pub mod ops;
pub mod options;
mod panic_guard;
pub mod payments;
pub mod protocol;
pub mod providers;
pub mod records;
pub mod relay;
pub mod service;
pub mod snapshot;
pub mod state;
pub mod telemetry;
pub mod upstream;
pub mod web;
pub mod webhooks;

pub use app::App;
pub use config::Config;
