//! The shapes of stored records, as the services hand them out: the relay's log rows, its
//! directory's keys and accounts, the billing writer's batches, the routing view's rows, the
//! ledger and orders the pages list. Plain data only — reading and writing them is the
//! services' work (`service::db` holds the SQL, and only the services reach it).

pub mod audit;
pub mod catalog;
pub mod channels;
pub mod error;
pub mod feed;
pub mod groups;
pub mod ledger;
pub mod logs;
pub mod model_aliases;
pub mod oauth;
pub mod orders;
pub mod orgs;
pub mod prices;
pub mod rollups;
pub mod scopes;
pub mod tokens;
pub mod users;

pub use error::{DbError, DbResult};
pub use feed::Change;
