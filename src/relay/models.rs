//! `GET /v1/models` and `GET /v1/models/{id}`: the models this key may use, i.e. those its
//! group may use that some enabled channel serves, narrowed by the key's own model list.

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use serde_json::{Value, json};
use std::net::SocketAddr;

use super::auth;
use super::error::RelayError;
use crate::db::now_ms;
use crate::state::AppState;

fn model_object(id: &str) -> Value {
    json!({ "id": id, "object": "model", "created": 0, "owned_by": "tollgate" })
}

async fn visible_models(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Vec<String>, RelayError> {
    let ip = auth::client_ip(peer, headers, state.config.server.trust_forwarded_for);
    let caller = auth::authenticate(&state.directory, headers, ip, now_ms()).await?;
    let snapshot = state.snapshot.load();
    Ok(snapshot
        .group_models(caller.group())
        .into_iter()
        .filter(|m| caller.token.allows_model(m))
        .map(str::to_string)
        .collect())
}

pub async fn list(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let response = match visible_models(&state, peer, &headers).await {
        Ok(models) => {
            let data: Vec<Value> = models.iter().map(|m| model_object(m)).collect();
            Json(json!({ "object": "list", "data": data })).into_response()
        }
        Err(e) => e.into_response(),
    };
    super::with_request_id(&state, response)
}

pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let response = match visible_models(&state, peer, &headers).await {
        Ok(models) if models.contains(&id) => Json(model_object(&id)).into_response(),
        Ok(_) => RelayError::model_not_found(&id).into_response(),
        Err(e) => e.into_response(),
    };
    super::with_request_id(&state, response)
}
