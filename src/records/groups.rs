//! Groups as stored.

use crate::domain::money::Ratio;

#[derive(Clone, Debug, PartialEq)]
pub struct GroupRow {
    pub name: String,
    pub ratio: Ratio,
    pub description: String,
    pub user_selectable: bool,
    pub created_at: i64,
    pub updated_at: i64,
}
