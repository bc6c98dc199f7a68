//! The integration tests: one binary, the real server over real HTTP.

mod helpers;

mod refusals;
mod relay_basics;
