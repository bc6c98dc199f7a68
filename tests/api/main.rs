//! The integration tests: one binary, the real server over real HTTP.

mod helpers;

mod billing;
mod refusals;
mod relay_basics;
mod routing;
mod streaming;
