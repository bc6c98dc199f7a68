//! Model aliases as stored.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasRow {
    pub name: String,
    pub target: String,
    pub created_at: i64,
}
