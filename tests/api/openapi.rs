//! The OpenAPI document of `/api` (`GET /api/openapi.json`): served without a token; every
//! operation it names is routed (a call without a token is refused by the authentication
//! layer, never a 404 or 405); its operations are exactly the ones listed here and in the
//! README, so a route added without being documented, or one removed, fails; every operation
//! names the error envelope, and the ones that take JSON describe their body.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, db_test};

/// Every operation of `/api`, as the README lists them.
const OPERATIONS: &[&str] = &[
    "GET /api/openapi.json",
    // users
    "GET /api/users",
    "POST /api/users",
    "GET /api/users/{username}",
    "PATCH /api/users/{username}",
    "POST /api/users/{username}/quota",
    "GET /api/users/{username}/sessions",
    "DELETE /api/users/{username}/sessions",
    "DELETE /api/users/{username}/sessions/{id}",
    // keys
    "GET /api/users/{username}/tokens",
    "POST /api/users/{username}/tokens",
    "GET /api/tokens/{id}",
    "PATCH /api/tokens/{id}",
    "DELETE /api/tokens/{id}",
    // groups
    "GET /api/groups",
    "POST /api/groups",
    "GET /api/groups/{name}",
    "PATCH /api/groups/{name}",
    "DELETE /api/groups/{name}",
    // channels
    "GET /api/channels",
    "POST /api/channels",
    "GET /api/channels/{channel}",
    "PATCH /api/channels/{channel}",
    "DELETE /api/channels/{channel}",
    "POST /api/channels/{channel}/clone",
    "POST /api/channels/{channel}/test",
    "GET /api/channels/{channel}/models",
    "GET /api/channel-presets",
    "POST /api/channel-tests",
    "POST /api/channels/bulk",
    "POST /api/channels/sync",
    "GET /api/channels/export",
    "POST /api/channels/import",
    // prices
    "GET /api/prices",
    "GET /api/prices/{model}",
    "PUT /api/prices/{model}",
    "DELETE /api/prices/{model}",
    "POST /api/prices/import",
    // model aliases
    "GET /api/model-aliases",
    "POST /api/model-aliases",
    "DELETE /api/model-aliases/{name}",
    // logs, overview, audit
    "GET /api/logs",
    "GET /api/overview",
    "GET /api/audit",
    // options and site checks
    "GET /api/options",
    "PUT /api/options/{name}",
    "DELETE /api/options/{name}",
    "POST /api/mail/test",
    "POST /api/stripe/check",
    // redemption codes
    "GET /api/codes",
    "POST /api/codes",
    "GET /api/codes/{id}",
    "POST /api/codes/disable",
    // top-up orders
    "GET /api/orders",
    "GET /api/orders/{id}",
    "POST /api/orders/{id}/credit",
    "POST /api/orders/{id}/refund",
    "POST /api/orders/reconcile",
    // organisations
    "GET /api/orgs",
    "POST /api/orgs",
    "GET /api/orgs/{slug}",
    "PATCH /api/orgs/{slug}",
    "DELETE /api/orgs/{slug}",
    "POST /api/orgs/{slug}/quota",
    "GET /api/orgs/{slug}/members",
    "POST /api/orgs/{slug}/members",
    "PATCH /api/orgs/{slug}/members/{username}",
    "DELETE /api/orgs/{slug}/members/{username}",
    "GET /api/orgs/{slug}/invitations",
    "POST /api/orgs/{slug}/invitations",
    "DELETE /api/orgs/{slug}/invitations/{id}",
    "POST /api/orgs/{slug}/invitations/{id}/resend",
    "POST /api/orgs/{slug}/transfer",
    // teams of organisations
    "GET /api/orgs/{slug}/teams",
    "POST /api/orgs/{slug}/teams",
    "GET /api/orgs/{slug}/teams/{id}",
    "PATCH /api/orgs/{slug}/teams/{id}",
    "DELETE /api/orgs/{slug}/teams/{id}",
    "PUT /api/orgs/{slug}/teams/{id}/members/{username}",
    "DELETE /api/orgs/{slug}/teams/{id}/members/{username}",
    // admin tokens
    "GET /api/admin-tokens",
    "POST /api/admin-tokens",
    "DELETE /api/admin-tokens/{id}",
    // sign-in providers
    "GET /api/oauth-providers",
    "POST /api/oauth-providers",
    "DELETE /api/oauth-providers/{name}",
];

/// The query parameters of the listings that take them.
const QUERIES: &[(&str, &[&str])] = &[
    ("GET /api/users", &["q", "limit", "offset"]),
    (
        "GET /api/logs",
        &[
            "user",
            "key",
            "model",
            "channel",
            "outcome",
            "request_id",
            "from",
            "to",
            "before",
            "before_id",
            "limit",
        ],
    ),
    ("GET /api/overview", &["range"]),
    (
        "GET /api/audit",
        &["actor", "action", "target", "from", "to", "before", "limit"],
    ),
    ("GET /api/codes", &["name", "state"]),
    ("GET /api/orders", &["q", "user", "status", "limit"]),
    ("DELETE /api/orgs/{slug}", &["force", "reason"]),
];

/// POST operations that take no body: actions on what the path names.
const WITHOUT_BODY: &[&str] = &[
    "POST /api/channel-tests",
    "POST /api/stripe/check",
    "POST /api/orgs/{slug}/invitations/{id}/resend",
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Every operation of the document: ("GET /api/users", operation).
fn operations(doc: &Value) -> Vec<(String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(*method) {
                found.push((format!("{} {path}", method.to_uppercase()), operation));
            }
        }
    }
    found
}

/// Whether an operation is public: its own `security` holds an empty requirement.
fn public(operation: &Value) -> bool {
    operation["security"].as_array().is_some_and(|s| {
        s.iter()
            .any(|r| r.as_object().is_some_and(|r| r.is_empty()))
    })
}

/// A path with sample values for its parameters; `{model}` gets a slash, as model names may.
fn sample(path: &str) -> String {
    path.replace("{username}", "alice")
        .replace("{id}", "1")
        .replace("{channel}", "main")
        .replace("{name}", "fast")
        .replace("{model}", "openai/gpt-4o-mini")
}

/// The response an operation answers for `status`, following a `$ref` to the shared ones.
fn response<'a>(doc: &'a Value, operation: &'a Value, status: &str) -> Option<&'a Value> {
    let response = operation["responses"].get(status)?;
    match response["$ref"].as_str() {
        Some(reference) => {
            let name = reference.strip_prefix("#/components/responses/")?;
            doc["components"]["responses"].get(name)
        }
        None => Some(response),
    }
}

/// Every `$ref` anywhere in the document.
fn references(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => {
                        found.insert(reference.clone());
                    }
                    _ => references(value, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

async fn document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(content_type, "application/json");
    serde_json::from_str(&response.text().await.unwrap()).expect("the document is JSON")
}

db_test! {
    /// The document is public JSON in OpenAPI 3.1 with the API's title, the crate's version and
    /// the admin token as a bearer scheme; every reference in it resolves.
    async fn document_is_served_without_a_token(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let doc = document(&app).await;
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "Tollgate admin API");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(doc["components"]["securitySchemes"]["admin_token"]["type"], "http");
        assert_eq!(doc["components"]["securitySchemes"]["admin_token"]["scheme"], "bearer");
        assert_eq!(doc["security"], json!([{"admin_token": []}]));

        let mut refs = BTreeSet::new();
        references(&doc, &mut refs);
        assert!(refs.contains("#/components/schemas/ApiErrorBody"), "{refs:?}");
        for reference in &refs {
            let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("external {reference}"));
            assert!(doc.pointer(pointer).is_some(), "{reference} does not resolve");
        }
        // OpenAPI templates paths with `{name}`; axum's catch-all spelling must not leak.
        for path in doc["paths"].as_object().unwrap().keys() {
            assert!(!path.contains("{*"), "{path}");
        }
    }
}

db_test! {
    /// The document's operations are exactly the list above: a route served without being
    /// documented, documented without being served, or removed, fails here. Each names the
    /// error envelope, and each that takes JSON describes its body.
    async fn document_names_every_operation_and_its_shapes(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let doc = document(&app).await;
        let documented: BTreeSet<String> = operations(&doc).into_iter().map(|(name, _)| name).collect();
        let listed: BTreeSet<String> = OPERATIONS.iter().map(|s| s.to_string()).collect();
        assert_eq!(OPERATIONS.len(), listed.len(), "an operation is listed twice");
        let missing: Vec<_> = listed.difference(&documented).collect();
        let unlisted: Vec<_> = documented.difference(&listed).collect();
        assert!(missing.is_empty() && unlisted.is_empty(), "not documented: {missing:?}; not listed: {unlisted:?}");

        let mut ids = BTreeSet::new();
        for (name, operation) in operations(&doc) {
            let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{name} has no operationId"));
            assert!(ids.insert(id.to_string()), "{name}: operationId {id} is taken");
            assert!(operation["tags"].as_array().is_some_and(|t| !t.is_empty()), "{name} has no tag");
            let ok = operation["responses"].as_object().unwrap().keys().any(|s| s.starts_with('2'));
            assert!(ok, "{name} documents no success");

            let errors: Vec<&str> = operation["responses"]
                .as_object()
                .unwrap()
                .keys()
                .filter(|status| status.starts_with('4') || status.starts_with('5'))
                .filter(|status| {
                    response(&doc, operation, status).is_some_and(|r| {
                        r["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ApiErrorBody"
                    })
                })
                .map(String::as_str)
                .collect();
            if public(operation) {
                assert!(!errors.contains(&"401"), "{name} is public but documents a 401");
            } else {
                assert!(errors.contains(&"401"), "{name} does not document the 401 envelope: {errors:?}");
            }
            assert!(errors.contains(&"400"), "{name} does not document the 400 envelope: {errors:?}");

            let parameters = |place: &str| -> BTreeSet<String> {
                operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == place)
                    .map(|p| p["name"].as_str().unwrap().to_string())
                    .collect()
            };
            let (method, path) = name.split_once(' ').unwrap();
            let templated: BTreeSet<String> = path
                .split('/')
                .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
                .map(str::to_string)
                .collect();
            assert_eq!(parameters("path"), templated, "{name}: its path parameters");
            let queries = QUERIES.iter().find(|(n, _)| *n == name).map_or(&[][..], |(_, q)| *q);
            let queries: BTreeSet<String> = queries.iter().map(|q| q.to_string()).collect();
            assert_eq!(parameters("query"), queries, "{name}: its query parameters");

            let body = &operation["requestBody"]["content"]["application/json"]["schema"];
            if ["POST", "PUT", "PATCH"].contains(&method) && !WITHOUT_BODY.contains(&name.as_str()) {
                assert!(!body.is_null(), "{name} takes JSON but documents no body");
            } else {
                assert!(body.is_null(), "{name} takes no body but documents one");
            }
        }
    }
}

db_test! {
    /// Every documented operation is routed: without a token each answers the authentication
    /// layer's 401 in the error envelope (the document itself answers 200), never a 404 or 405.
    async fn every_documented_operation_is_routed(db: TestDb) {
        let app = TestApp::spawn(db).await;
        // What this test relies on: without a token, a path no route serves is a 404 and a
        // method a path does not take is a 405, not the authentication layer's 401.
        let unknown = app.client.get(app.url("/api/no-such-route")).send().await.unwrap();
        assert_eq!(unknown.status(), 404);
        assert_eq!(unknown.json::<Value>().await.unwrap()["error"]["code"], "not_found");
        let wrong = app.client.put(app.url("/api/users")).json(&json!({})).send().await.unwrap();
        assert_eq!(wrong.status(), 405);
        assert_eq!(wrong.json::<Value>().await.unwrap()["error"]["code"], "method_not_allowed");

        let doc = document(&app).await;
        for (name, operation) in operations(&doc) {
            let (method, path) = name.split_once(' ').unwrap();
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut request = app.client.request(method.clone(), app.url(&sample(path)));
            if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
                request = request.json(&json!({}));
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
            if public(operation) {
                assert_eq!(status, 200, "{name}: {body}");
            } else {
                assert_eq!(status, 401, "{name}: {body}");
                assert_eq!(body["error"]["code"], "unauthorized", "{name}: {body}");
                assert!(body["error"]["message"].is_string(), "{name}: {body}");
                assert!(body["error"]["field"].is_null(), "{name}: {body}");
                assert_eq!(body["error"]["fields"], json!([]), "{name}: {body}");
            }
        }
    }
}

/// Every `/api` route comes from `routes!`, which takes its path and method from the
/// handler's description: a plain `Router::route` would serve a route the document omits.
#[test]
fn every_api_route_is_registered_through_its_description() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        for call in [".route(", ".route_service(", ".nest_service("] {
            assert!(
                !source.contains(call),
                "{} calls {call}: register it with routes!",
                path.display()
            );
        }
    }
}
