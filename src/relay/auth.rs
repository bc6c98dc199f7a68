//! API-key authentication against the in-memory directory: no database round-trip for a key
//! seen before.

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderMap;

use super::error::RelayError;
use crate::domain::kinds::Status;
use crate::domain::secret_key;
use crate::protocol::client::presented_key;
use crate::snapshot::{Directory, OrgEntry, TokenEntry, UserEntry};

/// A key that passed every check.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: Arc<UserEntry>,
    pub token: Arc<TokenEntry>,
    /// A team key's organisation, as held when the request arrived.
    pub org: Option<Arc<OrgEntry>>,
}

impl Caller {
    /// The group whose channels serve the request and whose ratio prices it: the key's own
    /// when it has one, else its owner's.
    pub fn group(&self) -> &str {
        if self.token.group.is_empty() {
            &self.user.group
        } else {
            &self.token.group
        }
    }
}

/// Why a key was not accepted.
#[derive(Debug)]
pub enum Denied {
    /// Not a key that may be used: missing, unknown, disabled, expired (or it could not be
    /// looked up). Nothing is known to log it against.
    Key(RelayError),
    /// A good key, used from an address its allow-list does not include: a refusal its owner
    /// sees in the usage log.
    Address(Box<Caller>, RelayError),
}

impl From<Denied> for RelayError {
    fn from(denied: Denied) -> RelayError {
        match denied {
            Denied::Key(error) | Denied::Address(_, error) => error,
        }
    }
}

pub async fn authenticate(
    directory: &Directory,
    headers: &HeaderMap,
    ip: IpAddr,
    now_ms: i64,
) -> Result<Caller, Denied> {
    let key = presented_key(headers).ok_or_else(|| Denied::Key(RelayError::missing_key()))?;
    authenticate_digest(directory, &secret_key::digest(key), ip, now_ms).await
}

/// The checks of [`authenticate`] for a key named by its digest (the portal's playground
/// names the signed-in person's key by id, and the browser never holds the key itself).
pub async fn authenticate_digest(
    directory: &Directory,
    digest: &[u8; 32],
    ip: IpAddr,
    now_ms: i64,
) -> Result<Caller, Denied> {
    let found = directory.find(digest, now_ms).await.map_err(|e| {
        tracing::warn!(error = %e, "could not look an API key up");
        Denied::Key(RelayError::key_check_unavailable())
    })?;
    let refused = |message| Err(Denied::Key(RelayError::invalid_key(message)));
    let Some((token, user)) = found else {
        return refused("Incorrect API key provided.");
    };
    if token.status != Status::Active {
        return refused("This API key has been disabled.");
    }
    if user.status != Status::Active {
        return refused("The account that owns this API key is disabled.");
    }
    if let Some(expires_at) = token.expires_at
        && expires_at <= now_ms
    {
        return refused("This API key has expired.");
    }
    // A team key spends its organisation's wallet only while its owner is in the team: a
    // member removed, a team deleted or an organisation gone stops the key at once.
    let org = if token.org_id == 0 {
        None
    } else {
        let org = directory.org(token.org_id);
        let in_team = org.as_ref().is_some_and(|org| {
            org.teams.contains_key(&token.team_id)
                && org
                    .members
                    .get(&user.id)
                    .is_some_and(|member| member.teams.contains_key(&token.team_id))
        });
        if !in_team {
            return refused(
                "This API key belongs to a team its owner is no longer a member of (or that no longer exists).",
            );
        }
        org
    };
    let caller = Caller { user, token, org };
    if !caller.token.allowed_ips.allows(ip) {
        let error = RelayError::forbidden(
            "ip_not_allowed",
            format!("This API key may not be used from {ip}."),
        );
        return Err(Denied::Address(Box::new(caller), error));
    }
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn finds_the_key_in_any_supported_header() {
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer sk-abc")])),
            Some("sk-abc")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "bearer  sk-abc ")])),
            Some("sk-abc")
        );
        assert_eq!(
            presented_key(&headers(&[("x-api-key", "sk-x")])),
            Some("sk-x")
        );
        assert_eq!(
            presented_key(&headers(&[("api-key", "sk-y")])),
            Some("sk-y")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer ")])),
            None
        );
        assert_eq!(presented_key(&HeaderMap::new()), None);
    }
}
