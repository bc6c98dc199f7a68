//! `GET /v1/models` and `GET /v1/models/{id}`: the models this key may use, i.e. those its
//! group may use that some enabled channel serves, narrowed by the key's own model list.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use serde_json::{Value, json};
use std::net::IpAddr;

use super::error::RelayError;
use super::proxy::{self, CallerKey};
use crate::metrics::{RequestMeter, RequestOutcome, Route};
use crate::protocol::client::ClientAddress;
use crate::state::AppState;

fn model_object(id: &str) -> Value {
    json!({ "id": id, "object": "model", "created": 0, "owned_by": "tollgate" })
}

async fn visible_models(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    request_id: &str,
) -> Result<Vec<String>, RelayError> {
    let caller = proxy::admit(
        state,
        CallerKey::Presented,
        headers,
        ip,
        "models",
        request_id,
    )
    .await?;
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
    ClientAddress(ip): ClientAddress,
    headers: HeaderMap,
) -> Response {
    let request_id = state.request_ids.next();
    let meter = RequestMeter::start(&state.metrics, Route::MODELS);
    let response = match visible_models(&state, ip, &headers, &request_id).await {
        Ok(models) => {
            meter.finish(RequestOutcome::Ok);
            let data: Vec<Value> = models.iter().map(|m| model_object(m)).collect();
            Json(json!({ "object": "list", "data": data })).into_response()
        }
        Err(e) => {
            meter.finish(e.metric_outcome());
            e.into_response()
        }
    };
    super::with_this_request_id(request_id, response)
}

pub async fn get(
    State(state): State<AppState>,
    ClientAddress(ip): ClientAddress,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let request_id = state.request_ids.next();
    let meter = RequestMeter::start(&state.metrics, Route::MODEL);
    let answer = match visible_models(&state, ip, &headers, &request_id).await {
        Ok(models) if models.contains(&id) => Ok(Json(model_object(&id)).into_response()),
        Ok(_) => Err(RelayError::model_not_found(&id)),
        Err(e) => Err(e),
    };
    let response = match answer {
        Ok(response) => {
            meter.finish(RequestOutcome::Ok);
            response
        }
        Err(e) => {
            meter.finish(e.metric_outcome());
            e.into_response()
        }
    };
    super::with_this_request_id(request_id, response)
}
