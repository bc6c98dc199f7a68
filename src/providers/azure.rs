//! Azure OpenAI: OpenAI's protocol, with the key in `api-key` and two URL styles.
//!
//! - **Deployments** (the classic API): the base URL is the resource
//!   (`https://NAME.openai.azure.com`, optionally with `?api-version=…`), and each request goes
//!   to `/openai/deployments/{deployment}/chat/completions?api-version=…`, the deployment being
//!   the model after the channel's model mapping.
//! - **v1** (Azure's OpenAI-compatible API): a base URL ending in `/openai/v1` takes OpenAI's
//!   paths as they are, with the model (the deployment) in the body.

/// The API version used when the base URL names none: the newest GA version that streams usage.
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

/// The API version for the Responses API when the base URL names none (its first one).
const RESPONSES_API_VERSION: &str = "2025-04-01-preview";

const DEPLOYMENTS: &str = "/openai/deployments";

/// The base URL without its query, and the API version it names.
pub fn split(base_url: &str) -> (&str, &str) {
    let (root, query) = base_url.split_once('?').unwrap_or((base_url, ""));
    let version = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("api-version="))
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_API_VERSION);
    (root.trim_end_matches('/'), version)
}

/// Whether the base URL is Azure's OpenAI-compatible v1 API.
pub fn is_v1(base_url: &str) -> bool {
    split(base_url).0.ends_with("/openai/v1")
}

/// The URL of an endpoint before the deployment is known: `…/openai/deployments{path}?api-version=…`
/// (the deployment goes in by [`with_deployment`]), or the v1 URL.
pub fn endpoint_url(base_url: &str, path: &str) -> String {
    let (root, version) = split(base_url);
    if is_v1(base_url) {
        format!("{root}{path}")
    } else if path == "/responses" {
        // Responses are not per deployment (the model is in the body), and need a newer version.
        let version = if base_url.contains("api-version=") {
            version
        } else {
            RESPONSES_API_VERSION
        };
        format!("{root}/openai/responses?api-version={version}")
    } else {
        format!("{root}{DEPLOYMENTS}{path}?api-version={version}")
    }
}

/// The model list: `/openai/models?api-version=…`, or `/models` under v1.
pub fn models_url(base_url: &str) -> String {
    let (root, version) = split(base_url);
    if is_v1(base_url) {
        format!("{root}/models")
    } else {
        format!("{root}/openai/models?api-version={version}")
    }
}

/// Puts the deployment into a deployments-style URI; a v1 URI is returned as it is.
pub fn with_deployment(uri: &http::Uri, deployment: &str) -> Option<http::Uri> {
    let path = uri.path();
    let Some(at) = path.rfind(DEPLOYMENTS) else {
        return Some(uri.clone());
    };
    if deployment.is_empty()
        || !deployment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return None;
    }
    let (head, tail) = path.split_at(at + DEPLOYMENTS.len());
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let scheme = uri.scheme_str().unwrap_or("https");
    let authority = uri.authority()?.as_str();
    http::Uri::try_from(format!(
        "{scheme}://{authority}{head}/{deployment}{tail}{query}"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_deployment_and_v1_urls() {
        let classic = "https://res.openai.azure.com";
        let uri: http::Uri = endpoint_url(classic, "/chat/completions").parse().unwrap();
        assert_eq!(
            with_deployment(&uri, "gpt-4o-prod").unwrap().to_string(),
            "https://res.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
        );
        let pinned = "https://res.openai.azure.com?api-version=2025-04-01-preview";
        assert_eq!(
            endpoint_url(pinned, "/embeddings"),
            "https://res.openai.azure.com/openai/deployments/embeddings?api-version=2025-04-01-preview"
        );
        assert_eq!(
            models_url(pinned),
            "https://res.openai.azure.com/openai/models?api-version=2025-04-01-preview"
        );
        assert!(with_deployment(&uri, "../admin").is_none());
        let v1 = "https://res.openai.azure.com/openai/v1";
        assert_eq!(
            endpoint_url(v1, "/chat/completions"),
            "https://res.openai.azure.com/openai/v1/chat/completions"
        );
        let uri: http::Uri = endpoint_url(v1, "/chat/completions").parse().unwrap();
        assert_eq!(with_deployment(&uri, "gpt-4o").unwrap(), uri);
        assert_eq!(
            models_url(v1),
            "https://res.openai.azure.com/openai/v1/models"
        );
    }
}
