//! The JSON management API under `/api`, authenticated by admin access tokens
//! (`Authorization: Bearer tga-…`, from `tollgate admin-token create`) in one layer over every
//! route. It exposes the same operations as the command line, through the same services,
//! which decide what the caller may do.

mod admin_tokens;
mod audit;
mod channels;
mod codes;
mod doc;
mod error;
mod extract;
mod groups;
mod logs;
mod model_aliases;
mod oauth_providers;
mod options;
mod orders;
mod org_teams;
mod orgs;
mod overview;
mod prices;
mod tokens;
mod users;

use axum::extract::{OriginalUri, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use http::Method;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::protocol::client::{ClientAddress, user_agent};
use crate::service;
use crate::state::AppState;
pub use error::ApiError;

/// Routes under `/api` that answer without an admin token, as (method, path below `/api`):
/// the API's own description. Everything else passes the authentication layer, so a handler
/// cannot forget it.
const PUBLIC_ROUTES: &[(Method, &str)] = &[(Method::GET, "/openapi.json")];

pub fn router(state: AppState) -> Router<AppState> {
    let features = [
        ("users", users::router()),
        ("tokens", tokens::router()),
        ("groups", groups::router()),
        ("channels", channels::router()),
        ("prices", prices::router()),
        ("model-aliases", model_aliases::router()),
        ("logs", logs::router()),
        ("overview", overview::router()),
        ("options", options::router()),
        ("oauth-providers", oauth_providers::router()),
        ("codes", codes::router()),
        ("orders", orders::router()),
        ("orgs", orgs::router()),
        ("org-teams", org_teams::router()),
        ("audit", audit::router()),
        ("admin-tokens", admin_tokens::router()),
        (
            "openapi",
            OpenApiRouter::new().routes(routes!(doc::openapi_json)),
        ),
    ];
    let (api, routes) = features
        .into_iter()
        .fold(OpenApiRouter::new(), |api, (tag, feature)| {
            doc::merge(api, tag, feature)
        })
        .split_for_parts();
    // Rendered once: the document does not change while the server runs.
    let json = serde_json::to_vec(&doc::document(routes))
        .expect("an OpenAPI document always serializes to JSON");
    let api = api
        .layer(axum::Extension(doc::DocumentJson(json.into())))
        .fallback(unknown_route)
        // On routes only: an unknown path is a 404 and a wrong method a 405 to anyone, as the
        // public document lists the routes anyway; the test of the document relies on it. The
        // 405 is set after the layer, which would otherwise wrap it too.
        .route_layer(axum::middleware::from_fn_with_state(state, authenticate))
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn(refuse_nul_in_uri))
        .layer(axum::middleware::from_fn(|request, next| {
            crate::panic_guard::catch_panic(request, next, || {
                ApiError::new(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the server hit an internal error; see its log",
                )
                .into_response()
            })
        }));
    Router::new().nest("/api", api)
}

/// A NUL in the path or the query is refused before anything reads it (see `domain::nul`).
async fn refuse_nul_in_uri(request: Request, next: Next) -> Response {
    if crate::domain::nul::in_uri(&request.uri().to_string()) {
        return ApiError::bad_request(NUL_REFUSED).into_response();
    }
    next.run(request).await
}

/// What a request with a NUL character is told.
const NUL_REFUSED: &str =
    "a value holds a NUL character (\\u0000 or %00), which no field takes; remove it";

/// Finds who is calling (from the admin token) and hands it to the handlers as a [`Caller`],
/// or refuses the request; the public routes pass without one.
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let public = PUBLIC_ROUTES
        .iter()
        .any(|(method, route)| request.method() == method && path == *route);
    if public {
        return next.run(request).await;
    }
    match extract::caller_from_token(&state, request.headers()).await {
        Ok((caller, token_id)) => {
            request.extensions_mut().insert(caller);
            // What the audit log says of the changes this request makes.
            let origin = service::audit::Origin {
                auth: service::audit::Auth::AdminToken(token_id),
                ip: Some(ClientAddress::of(request.extensions()).0),
                user_agent: user_agent(request.headers()),
            };
            service::audit::within(origin, next.run(request)).await
        }
        Err(refused) => refused.into_response(),
    }
}

/// A listing: `{"data": [...]}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Data<T> {
    data: Vec<T>,
}

impl<T> Data<T> {
    fn of(data: Vec<T>) -> Json<Data<T>> {
        Json(Data { data })
    }
}

/// The current quota-per-dollar rate, for views that show dollars: the server's snapshot has
/// it, no database read needed.
fn quota_per_usd(state: &AppState) -> i64 {
    state.snapshot.load().options.quota_per_usd()
}

async fn unknown_route(OriginalUri(uri): OriginalUri) -> Response {
    ApiError::not_found(format!("there is no API route {}", uri.path())).into_response()
}

async fn wrong_method(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    ApiError::new(
        http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not supported on {}", uri.path()),
    )
    .into_response()
}
