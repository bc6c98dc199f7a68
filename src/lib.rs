//! Tollgate: a self-hosted LLM API gateway and resale portal.

pub mod db;
pub mod domain;
pub mod options;
