//! Sign-in providers as stored.

use crate::domain::kinds::OAuthKind;

/// A provider as stored. `client_secret` never leaves the service layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderRow {
    pub id: i64,
    /// What it is called in URLs (`/oauth/{name}/start`) and the CLI.
    pub name: String,
    pub kind: OAuthKind,
    /// What the sign-in button says ("GitHub", "Company SSO").
    pub display_name: String,
    pub client_id: String,
    pub client_secret: String,
    /// The OIDC issuer ID tokens must name; empty for GitHub.
    pub issuer: String,
    pub auth_url: String,
    pub token_url: String,
    /// OIDC: the userinfo endpoint (may be empty). GitHub: the REST API's base.
    pub userinfo_url: String,
    pub jwks_url: String,
    pub scopes: String,
    pub created_at: i64,
}
