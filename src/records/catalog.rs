//! Every row the relay's routing view is built from, read together.

use super::channels::{ChannelRow, RouteRow};
use super::groups::GroupRow;
use super::model_aliases::AliasRow;
use super::prices::PriceRow;

pub struct CatalogRows {
    /// Stored runtime options as (name, value).
    pub options: Vec<(String, String)>,
    pub groups: Vec<GroupRow>,
    pub channels: Vec<ChannelRow>,
    pub routes: Vec<RouteRow>,
    pub prices: Vec<PriceRow>,
    pub aliases: Vec<AliasRow>,
}
