//! Pure logic with no I/O: money, pricing, validation, secrets. Exhaustively unit-tested.

pub mod calendar;
pub mod canonical_json;
pub mod client_address;
pub mod csv;
pub mod cursor;
pub mod email;
pub mod id_token;
pub mod ip_allow;
pub mod kinds;
pub mod latency;
pub mod list_prices;
pub mod log_filters;
pub mod money;
pub mod names;
pub mod nul;
pub mod password;
pub mod price_import;
pub mod pricing;
pub mod redirect;
pub mod rollup;
pub mod secret_key;
pub mod signed;
pub mod sliding_window;
pub mod stripe_signature;
pub mod tokenizer;
pub mod topup;
