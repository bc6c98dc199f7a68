//! The OpenAPI 3.1 document of `/api`, served at `GET /api/openapi.json`. Every route is
//! registered through `utoipa_axum::routes!`, which takes the route's path and method from the
//! handler's `#[utoipa::path]`, so a route cannot be served without being described.

use axum::Extension;
use axum::body::Bytes;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr};
use utoipa_axum::router::OpenApiRouter;

use super::error::ApiErrorBody;
use crate::state::AppState;

/// The name of the security scheme every operation but the document itself requires.
const ADMIN_TOKEN: &str = "admin_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tollgate admin API",
        description = "The management API of a Tollgate gateway: the operations of the command \
                       line, for scripts. Every route but this document takes an admin token \
                       (`Authorization: Bearer tga-…`, from `tollgate admin-token create`). \
                       Money is in quota units unless a field says dollars (`usd`)."
    ),
    modifiers(&AdminTokenScheme),
    components(schemas(ApiErrorBody))
)]
struct ApiDoc;

/// Declares how `/api` authenticates, an admin token as a bearer token, and requires it of
/// every operation that does not say otherwise.
struct AdminTokenScheme;

impl utoipa::Modify for AdminTokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("tga-…")
            .description(Some(
                "An admin token, made with `tollgate admin-token create --user <admin>` or \
                 `POST /api/admin-tokens`. It acts as its administrator.",
            ))
            .build();
        components.add_security_scheme(ADMIN_TOKEN, SecurityScheme::Http(scheme));
        openapi.security = Some(vec![SecurityRequirement::new::<_, _, String>(
            ADMIN_TOKEN,
            [],
        )]);
    }
}

/// Errors any operation may answer, because the layers over every route give them: a request
/// without a valid token (401), a NUL in the URI (400), a panic or a database failure (500).
/// Each is a reusable response in `components.responses`, referenced from every operation.
const COMMON_ERRORS: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "The request is not valid: the body is not JSON, a field is wrong (each one named in \
         `fields`), or a value holds a NUL character.",
    ),
    (
        "401",
        "Unauthorized",
        "No admin token, or one that is unknown, revoked, or whose owner is no longer an \
         active administrator.",
    ),
    (
        "500",
        "InternalError",
        "The server hit an internal error; its log says which.",
    ),
];

/// Adds a feature's routes to `api`, with its operations tagged `tag` and their ids made
/// unique across the document (`users_list`, `tokens_list`): handlers in different files share
/// names.
///
/// Schemas are named by their type's name alone, and a name seen twice keeps one of the
/// definitions silently; two features that each name a different body `CreateBody` would
/// describe one of them wrongly. That is a mistake in the code, the same on every start, so it
/// stops the server (and every test) with the name to change.
pub(super) fn merge(
    api: OpenApiRouter<AppState>,
    tag: &str,
    mut feature: OpenApiRouter<AppState>,
) -> OpenApiRouter<AppState> {
    for item in feature.get_openapi_mut().paths.paths.values_mut() {
        for operation in operations(item) {
            operation.tags = Some(vec![tag.to_string()]);
            let id = operation.operation_id.take().unwrap_or_default();
            operation.operation_id = Some(format!("{}_{id}", tag.replace('-', "_")));
        }
    }
    if let (Some(have), Some(new)) = (
        &api.get_openapi().components,
        &feature.get_openapi().components,
    ) {
        for (name, schema) in &new.schemas {
            let clash = have.schemas.get(name).is_some_and(|known| known != schema);
            assert!(
                !clash,
                "two different schemas are named {name} in /api's document; rename one ({tag})"
            );
        }
    }
    api.merge(feature)
}

/// The finished document: the features' paths under `/api`, the error responses every
/// operation shares, and paths written the way OpenAPI templates them.
pub(super) fn document(routes: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi().nest("/api", routes);
    let components = doc.components.get_or_insert_with(Default::default);
    for (_, name, description) in COMMON_ERRORS {
        let response = ResponseBuilder::new()
            .description(*description)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ApiErrorBody"))),
            )
            .build();
        components
            .responses
            .insert(name.to_string(), response.into());
    }
    // axum's catch-all segments (`{*model}`: model names hold slashes) are plain
    // parameters in OpenAPI; the parameter's own description says it may hold slashes.
    let paths = std::mem::take(&mut doc.paths.paths);
    for (path, mut item) in paths {
        for operation in operations(&mut item) {
            let public = operation
                .security
                .as_ref()
                .is_some_and(|s| s.contains(&SecurityRequirement::default()));
            for (status, name, _) in COMMON_ERRORS {
                if public && *status == "401" {
                    continue;
                }
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
            }
        }
        doc.paths.paths.insert(path.replace("{*", "{"), item);
    }
    doc
}

/// The operations of a path, whichever methods it has.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
        &mut item.query,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// The document as served: rendered once when the router is built.
#[derive(Clone)]
pub(super) struct DocumentJson(pub Bytes);

/// This document. It is public: a client generator or Swagger UI reads it without a token.
#[utoipa::path(
    get,
    path = "/openapi.json",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of `/api`.",
         content_type = "application/json", body = serde_json::Value)
    )
)]
pub(super) async fn openapi_json(Extension(json): Extension<DocumentJson>) -> impl IntoResponse {
    ([(http::header::CONTENT_TYPE, "application/json")], json.0)
}
