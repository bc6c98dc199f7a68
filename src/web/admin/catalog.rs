//! `/admin/groups`, `/admin/prices`, `/admin/aliases`: what the command line's `group`,
//! `price` and `alias` commands do, as tables edited in place. A row's change that is refused
//! comes back as the page's form, holding what was typed with each problem marked.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

use super::AdminPage;
use crate::service::groups::GroupInput;
use crate::service::prices::PriceInput;
use crate::service::rate_limits::{RateLimitInput, editable};
use crate::service::views::{AliasView, GroupView, PriceFigures, PriceImportView, PriceView};
use crate::service::{self, ServiceError};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::page::{Page, flash};

/// The largest import form: LiteLLM's whole price file (about 1.5 MB) percent-encoded.
const MAX_IMPORT_FORM_BYTES: usize = 8 * 1024 * 1024;

/// Pages and forms that need only an administrator.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/groups", get(groups_page).post(create_group))
        .route("/admin/groups/{name}", get(group_page).post(update_group))
        .route("/admin/groups/{name}/delete", post(delete_group))
        .route("/admin/prices", get(prices_page).post(set_price))
        .route("/admin/prices/delete", post(delete_price))
        .route(
            "/admin/prices/import",
            post(import_prices).layer(DefaultBodyLimit::max(MAX_IMPORT_FORM_BYTES)),
        )
        .route("/admin/aliases", get(aliases_page).post(add_alias))
        .route("/admin/aliases/delete", post(remove_alias))
}

/// Forms that need a sign-in within the last minutes too (see `reauth`).
pub fn sensitive_routes() -> Router<AppState> {
    Router::new()
}

/// A posted form's fields as sent. A checkbox comes after its hidden `false`, so the last
/// value of a name is the one meant.
#[derive(Deserialize, Default)]
#[serde(transparent)]
pub(super) struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The last value sent for `name`, or "".
    pub(super) fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Whether `name` was sent at all.
    pub(super) fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }
}

fn blank(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

async fn done(session: &Session, text: String, to: &str) -> Result<Response, WebError> {
    flash(session, text).await?;
    Ok(Redirect::to(to).into_response())
}

/// The status of a form that comes back: 422 for wrong values, 409 for a name taken, 404
/// when what it changes is gone.
fn refused_status(error: &ServiceError) -> StatusCode {
    match error {
        ServiceError::Conflict { .. } => StatusCode::CONFLICT,
        ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

// ---- Groups ----

#[derive(Template, WebTemplate)]
#[template(path = "admin/groups.html")]
pub struct GroupsPage {
    page: Page,
    groups: Vec<GroupView>,
    form: GroupForm,
    errors: FieldErrors,
    /// The group the form changes; None: the form makes one.
    editing: Option<String>,
}

#[derive(Default, Clone)]
pub struct GroupForm {
    name: String,
    ratio: String,
    description: String,
    user_selectable: bool,
    /// Rate limits of each key of the group: whole numbers, empty for none.
    rpm: String,
    tpm: String,
    max_concurrent: String,
    /// Whether the form has the rate-limit fields (a row of the table does not: its limits
    /// stay as they are).
    limits_sent: bool,
}

impl GroupForm {
    fn of(fields: &Fields) -> GroupForm {
        GroupForm {
            name: fields.get("name").to_string(),
            ratio: fields.get("ratio").to_string(),
            description: fields.get("description").to_string(),
            user_selectable: fields.get("user_selectable") == "true",
            rpm: fields.get("rpm").to_string(),
            tpm: fields.get("tpm").to_string(),
            max_concurrent: fields.get("max_concurrent").to_string(),
            limits_sent: ["rpm", "tpm", "max_concurrent"]
                .iter()
                .any(|name| fields.has(name)),
        }
    }

    fn input(&self) -> GroupInput {
        let limit = |text: &str| self.limits_sent.then(|| text.trim().to_string());
        GroupInput {
            ratio: Some(self.ratio.trim().to_string()),
            description: Some(self.description.trim().to_string()),
            user_selectable: Some(self.user_selectable),
            rate_limits: RateLimitInput {
                rpm: limit(&self.rpm),
                tpm: limit(&self.tpm),
                max_concurrent: limit(&self.max_concurrent),
            },
        }
    }
}

impl GroupsPage {
    /// A group's limits per key as the table reads them; empty for none.
    fn limits(&self, group: &GroupView) -> String {
        let limits = group.rate_limits;
        crate::web::keys::rate_limits_text(
            &self.page,
            crate::domain::rate_limits::RateLimits {
                rpm: limits.rpm,
                tpm: limits.tpm,
                max_concurrent: limits.max_concurrent,
            },
        )
    }
}

async fn groups_view(
    state: &AppState,
    admin: AdminPage,
    form: GroupForm,
    errors: FieldErrors,
    editing: Option<String>,
) -> Result<GroupsPage, WebError> {
    let groups = service::groups::list(&state.ctx, &admin.caller())
        .await
        .map_err(|e| admin.page.failed(e))?;
    Ok(GroupsPage {
        page: admin.page,
        groups: groups.iter().map(GroupView::new).collect(),
        form,
        errors,
        editing,
    })
}

pub async fn groups_page(
    State(state): State<AppState>,
    admin: AdminPage,
) -> Result<GroupsPage, WebError> {
    let form = GroupForm {
        ratio: "1".into(),
        ..GroupForm::default()
    };
    groups_view(&state, admin, form, FieldErrors::default(), None).await
}

/// One group's form alone (where a row's change comes back, and a page of its own without
/// the table's inline fields).
pub async fn group_page(
    State(state): State<AppState>,
    admin: AdminPage,
    Path(name): Path<String>,
) -> Result<GroupsPage, WebError> {
    let group = service::groups::get(&state.ctx, &admin.caller(), &name)
        .await
        .map_err(|e| admin.page.failed(e))?;
    let view = GroupView::new(&group);
    let form = GroupForm {
        name: view.name,
        ratio: group.ratio.to_string(),
        description: view.description,
        user_selectable: view.user_selectable,
        rpm: editable(group.rate_limits.rpm),
        tpm: editable(group.rate_limits.tpm),
        max_concurrent: editable(group.rate_limits.max_concurrent),
        limits_sent: true,
    };
    groups_view(&state, admin, form, FieldErrors::default(), Some(name)).await
}

pub async fn create_group(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Posted(fields): Posted<Fields>,
) -> Result<Response, WebError> {
    let form = GroupForm::of(&fields);
    match service::groups::create(&state.ctx, &admin.caller(), &form.name, form.input()).await {
        Ok(group) => {
            let text = admin.page.t1("admin-group-created", "name", &group.name);
            done(&session, text, "/admin/groups").await
        }
        Err(error) => {
            let errors = FieldErrors::from_service(&error, admin.page.lang, &[]);
            let status = refused_status(&error);
            Ok((
                status,
                groups_view(&state, admin, form, errors, None).await?,
            )
                .into_response())
        }
    }
}

pub async fn update_group(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(name): Path<String>,
    Posted(fields): Posted<Fields>,
) -> Result<Response, WebError> {
    let mut form = GroupForm::of(&fields);
    form.name = name.clone();
    match service::groups::update(&state.ctx, &admin.caller(), &name, form.input()).await {
        Ok(_) => {
            let text = admin.page.t1("admin-group-saved", "name", &name);
            done(&session, text, "/admin/groups").await
        }
        Err(ServiceError::NotFound(message)) => {
            Err(admin.page.error(StatusCode::NOT_FOUND, message))
        }
        Err(error) => {
            let errors = FieldErrors::from_service(&error, admin.page.lang, &[]);
            let status = refused_status(&error);
            let page = groups_view(&state, admin, form, errors, Some(name)).await?;
            Ok((status, page).into_response())
        }
    }
}

pub async fn delete_group(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(name): Path<String>,
    Posted(_): Posted<Fields>,
) -> Result<Response, WebError> {
    service::groups::delete(&state.ctx, &admin.caller(), &name)
        .await
        .map_err(|e| admin.page.failed(e))?;
    let text = admin.page.t1("admin-group-deleted", "name", &name);
    done(&session, text, "/admin/groups").await
}

// ---- Prices ----

#[derive(Template, WebTemplate)]
#[template(path = "admin/prices.html")]
pub struct PricesPage {
    page: Page,
    /// Models requests named that have no price, listed first.
    unpriced: Vec<String>,
    prices: Vec<PriceView>,
    form: PriceForm,
    errors: FieldErrors,
    import: ImportForm,
    import_errors: FieldErrors,
    /// What the import would change, after a preview.
    preview: Option<PriceImportView>,
    formats: &'static [(&'static str, &'static str)],
}

impl PricesPage {
    /// A row's editable figures: (field, label key, value as the form takes it back).
    fn cells(&self, price: &PriceView) -> [(&'static str, &'static str, String); 5] {
        let figure = |value: Option<f64>| value.map(|v| v.to_string()).unwrap_or_default();
        [
            (
                "input",
                "admin-field-input",
                figure(price.input_usd_per_mtok),
            ),
            (
                "output",
                "admin-field-output",
                figure(price.output_usd_per_mtok),
            ),
            (
                "cached_input",
                "admin-field-cached-input",
                figure(price.cached_input_usd_per_mtok),
            ),
            (
                "cache_write",
                "admin-field-cache-write",
                figure(price.cache_write_usd_per_mtok),
            ),
            (
                "per_request",
                "admin-field-per-request",
                figure(price.per_request_usd),
            ),
        ]
    }

    /// A price's figures in a sentence: "$3 in / $15 out" or "$0.002 per request".
    fn describe(&self, price: &PriceFigures) -> String {
        let usd = |v: Option<f64>| format!("${}", v.unwrap_or_default());
        match price.per_request_usd {
            Some(each) => self
                .page
                .t1("admin-price-per-request-is", "price", &usd(Some(each))),
            None => {
                let mut text = crate::i18n::text(
                    self.page.lang,
                    "admin-price-tokens-is",
                    &[
                        ("input", &usd(price.input_usd_per_mtok)),
                        ("output", &usd(price.output_usd_per_mtok)),
                    ],
                );
                if let Some(cached) = price.cached_input_usd_per_mtok {
                    text.push_str(" · ");
                    text.push_str(&self.page.t1(
                        "admin-price-cached-is",
                        "price",
                        &usd(Some(cached)),
                    ));
                }
                if let Some(write) = price.cache_write_usd_per_mtok {
                    text.push_str(" · ");
                    text.push_str(&self.page.t1(
                        "admin-price-cache-write-is",
                        "price",
                        &usd(Some(write)),
                    ));
                }
                text
            }
        }
    }

    fn skip_reason(&self, reason: &str, detail: &str) -> String {
        let key = match reason {
            "mode" => "admin-import-skip-mode",
            "no_price" => "admin-import-skip-no-price",
            "bad_number" => "admin-import-skip-bad-number",
            "bad_name" => "admin-import-skip-bad-name",
            _ => "admin-import-skip-not-an-entry",
        };
        self.page.t1(key, "detail", detail)
    }

    /// A text counting `count` things, in the plural form the language needs.
    fn counted(&self, key: &'static str, count: impl std::borrow::Borrow<usize>) -> String {
        let count =
            i64::try_from(*std::borrow::Borrow::<usize>::borrow(&count)).unwrap_or(i64::MAX);
        self.page.tn(key, count)
    }

    fn change(&self, change: &str) -> String {
        self.page.t(match change {
            "new" => "admin-import-new",
            "changed" => "admin-import-changed",
            _ => "admin-import-unchanged",
        })
    }
}

/// The price form: the API's fields of `PUT /api/prices/{model}`, with the model.
#[derive(Deserialize, Default, Clone)]
pub struct PriceForm {
    #[serde(default)]
    model: String,
    #[serde(default)]
    input: String,
    #[serde(default)]
    output: String,
    #[serde(default)]
    cached_input: String,
    #[serde(default)]
    cache_write: String,
    #[serde(default)]
    per_request: String,
    #[serde(default)]
    context_tokens: String,
}

impl PriceForm {
    fn input(&self) -> PriceInput {
        PriceInput {
            input: blank(&self.input),
            output: blank(&self.output),
            cached_input: blank(&self.cached_input),
            cache_write: blank(&self.cache_write),
            per_request: blank(&self.per_request),
            context_tokens: blank(&self.context_tokens),
        }
    }
}

/// The import form: the API's fields of `POST /api/prices/import`.
#[derive(Deserialize, Clone)]
pub struct ImportForm {
    #[serde(default = "default_format")]
    format: String,
    #[serde(default)]
    data: String,
    #[serde(default)]
    dry_run: String,
}

fn default_format() -> String {
    "litellm".into()
}

impl Default for ImportForm {
    fn default() -> ImportForm {
        ImportForm {
            format: default_format(),
            data: String::new(),
            dry_run: "true".into(),
        }
    }
}

/// The formats an import reads: (value, label key).
const IMPORT_FORMATS: [(&str, &str); 2] = [
    ("litellm", "admin-import-format-litellm"),
    ("oneapi", "admin-import-format-oneapi"),
];

#[derive(Default)]
struct PricesState {
    form: PriceForm,
    errors: FieldErrors,
    import: ImportForm,
    import_errors: FieldErrors,
    preview: Option<PriceImportView>,
}

async fn prices_view(
    state: &AppState,
    admin: AdminPage,
    with: PricesState,
) -> Result<PricesPage, WebError> {
    let caller = admin.caller();
    let prices = service::prices::list(&state.ctx, &caller)
        .await
        .map_err(|e| admin.page.failed(e))?;
    let unpriced = service::prices::unpriced_seen(&state.ctx, &caller)
        .await
        .map_err(|e| admin.page.failed(e))?;
    Ok(PricesPage {
        page: admin.page,
        unpriced,
        prices: prices.iter().map(PriceView::new).collect(),
        form: with.form,
        errors: with.errors,
        import: with.import,
        import_errors: with.import_errors,
        preview: with.preview,
        formats: &IMPORT_FORMATS,
    })
}

pub async fn prices_page(
    State(state): State<AppState>,
    admin: AdminPage,
) -> Result<PricesPage, WebError> {
    prices_view(&state, admin, PricesState::default()).await
}

pub async fn set_price(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Posted(form): Posted<PriceForm>,
) -> Result<Response, WebError> {
    let model = form.model.trim().to_string();
    match service::prices::set(&state.ctx, &admin.caller(), &model, &form.input()).await {
        Ok(price) => {
            let text = admin.page.t1("admin-price-saved", "model", &price.model);
            done(&session, text, "/admin/prices").await
        }
        Err(error) => {
            let errors = FieldErrors::from_service(&error, admin.page.lang, &[]);
            let status = refused_status(&error);
            let with = PricesState {
                form,
                errors,
                ..PricesState::default()
            };
            Ok((status, prices_view(&state, admin, with).await?).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct ModelForm {
    model: String,
}

pub async fn delete_price(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Posted(form): Posted<ModelForm>,
) -> Result<Response, WebError> {
    service::prices::delete(&state.ctx, &admin.caller(), &form.model)
        .await
        .map_err(|e| admin.page.failed(e))?;
    let text = admin.page.t1("admin-price-deleted", "model", &form.model);
    done(&session, text, "/admin/prices").await
}

/// Previews an import (`dry_run=true`: the page comes back with what would change and an
/// apply button), or applies it.
pub async fn import_prices(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Posted(import): Posted<ImportForm, MAX_IMPORT_FORM_BYTES>,
) -> Result<Response, WebError> {
    let dry_run = import.dry_run.trim() != "false";
    let result = service::prices::import(
        &state.ctx,
        &admin.caller(),
        &import.format,
        &import.data,
        dry_run,
    )
    .await;
    match result {
        Ok(done_import) if !dry_run => {
            let count = PriceImportView::new(&done_import).changes;
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            let text = admin
                .page
                .say(&crate::i18n::Message::new("admin-import-applied").with("count", count));
            done(&session, text, "/admin/prices").await
        }
        Ok(preview) => {
            let with = PricesState {
                preview: Some(PriceImportView::new(&preview)),
                import,
                ..PricesState::default()
            };
            Ok(prices_view(&state, admin, with).await?.into_response())
        }
        Err(error) => {
            let import_errors = FieldErrors::from_service(&error, admin.page.lang, &[]);
            let status = refused_status(&error);
            let with = PricesState {
                import,
                import_errors,
                ..PricesState::default()
            };
            Ok((status, prices_view(&state, admin, with).await?).into_response())
        }
    }
}

// ---- Aliases ----

#[derive(Template, WebTemplate)]
#[template(path = "admin/aliases.html")]
pub struct AliasesPage {
    page: Page,
    aliases: Vec<AliasView>,
    form: AliasForm,
    errors: FieldErrors,
}

/// The API's fields of `POST /api/model-aliases`.
#[derive(Deserialize, Default, Clone)]
pub struct AliasForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    to: String,
}

async fn aliases_view(
    state: &AppState,
    admin: AdminPage,
    form: AliasForm,
    errors: FieldErrors,
) -> Result<AliasesPage, WebError> {
    let aliases = service::model_aliases::list(&state.ctx, &admin.caller())
        .await
        .map_err(|e| admin.page.failed(e))?;
    Ok(AliasesPage {
        page: admin.page,
        aliases: aliases.iter().map(AliasView::new).collect(),
        form,
        errors,
    })
}

pub async fn aliases_page(
    State(state): State<AppState>,
    admin: AdminPage,
) -> Result<AliasesPage, WebError> {
    aliases_view(&state, admin, AliasForm::default(), FieldErrors::default()).await
}

/// Adds an alias, or points an existing one elsewhere (the table's rows post here with
/// `replace`): the old alias goes and the new one comes in the same step of the page.
pub async fn add_alias(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Posted(fields): Posted<Fields>,
) -> Result<Response, WebError> {
    let form = AliasForm {
        name: fields.get("name").trim().to_string(),
        to: fields.get("to").trim().to_string(),
    };
    let caller = admin.caller();
    let result = if fields.has("replace") {
        service::model_aliases::retarget(&state.ctx, &caller, &form.name, &form.to).await
    } else {
        service::model_aliases::add(&state.ctx, &caller, &form.name, &form.to).await
    };
    match result {
        Ok(alias) => {
            let text = crate::i18n::text(
                admin.page.lang,
                "admin-alias-saved",
                &[("name", &alias.name), ("to", &alias.target)],
            );
            done(&session, text, "/admin/aliases").await
        }
        Err(error) => {
            let errors = FieldErrors::from_service(&error, admin.page.lang, &[]);
            let status = refused_status(&error);
            Ok((status, aliases_view(&state, admin, form, errors).await?).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct AliasNameForm {
    name: String,
}

pub async fn remove_alias(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Posted(form): Posted<AliasNameForm>,
) -> Result<Response, WebError> {
    service::model_aliases::remove(&state.ctx, &admin.caller(), &form.name)
        .await
        .map_err(|e| admin.page.failed(e))?;
    let text = admin.page.t1("admin-alias-removed", "name", &form.name);
    done(&session, text, "/admin/aliases").await
}
