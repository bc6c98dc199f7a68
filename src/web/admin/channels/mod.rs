//! The console's channels pages: the list (with tests and the bulk form), a channel's form
//! (new, from a vendor preset, a copy, edit) and the upstream's model list to pick from; the
//! previewed batch work (bulk, sync, export, import) is in `batches`. Every page calls the
//! services `/api/channels` calls, with the same field names.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

mod batches;

use super::AdminPage;
use crate::domain::kinds::{ChannelStatus, ChannelType};
use crate::i18n::Lang;
use crate::msg;
use crate::providers::presets::{self, Preset};
use crate::service::channel_batches;
use crate::service::channels::{self, ChannelInput};
use crate::service::views::ChannelView;
use crate::service::{self, ServiceError};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::page::{Page, flash};

/// Pages and forms that need only an administrator.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/channels", get(list))
        .route("/admin/channels/new", get(new_form).post(create))
        .route("/admin/channels/test", post(test_all))
        .route("/admin/channels/bulk", post(batches::bulk))
        .route(
            "/admin/channels/sync",
            get(batches::sync_form).post(batches::sync),
        )
        .route("/admin/channels/export", get(batches::export))
        .route(
            "/admin/channels/import",
            get(batches::import_form).post(batches::import),
        )
        .route("/admin/channels/{id}", get(edit_form).post(edit))
        .route("/admin/channels/{id}/delete", post(delete))
        .route("/admin/channels/{id}/test", post(test_one))
        .route("/admin/channels/{id}/fetch-models", post(fetch_models))
        .route("/admin/channels/{id}/models", post(save_models))
}

/// Forms that need a sign-in within the last minutes too (see `reauth`): none of a channel's.
pub fn sensitive_routes() -> Router<AppState> {
    Router::new()
}

/// A posted form read as its pairs, for fields sent more than once (checked boxes).
#[derive(Deserialize)]
#[serde(transparent)]
pub struct Pairs(Vec<(String, String)>);

impl Pairs {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().trim().to_string()
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }

    fn ids(&self, name: &str) -> Vec<i64> {
        self.all(name)
            .iter()
            .filter_map(|v| v.parse().ok())
            .collect()
    }

    /// The pairs to send again from a preview's form (its token and `dry_run` left out).
    fn carried(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(n, _)| n != "csrf_token" && n != "dry_run")
            .cloned()
            .collect()
    }
}

/// A whole number typed in a form: None when empty.
fn number(errors: &mut FieldErrors, lang: Lang, field: &str, text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match text.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.add(
                field,
                msg!("option-not-a-number", value = text).render(lang),
            );
            None
        }
    }
}

// ---------------------------------------------------------------------------------------
// The list

#[derive(Template, WebTemplate)]
#[template(path = "admin/channels.html")]
pub struct ChannelsPage {
    page: Page,
    channels: Vec<ChannelView>,
    errors: FieldErrors,
    actions: &'static [&'static str],
    /// Each channel's test just run, when the page shows "test all".
    tested: Vec<service::channel_tools::TestOutcome>,
    /// The bulk form as typed, when it comes back refused.
    bulk: BulkTyped,
}

/// What was typed in the list's bulk form.
#[derive(Default)]
pub struct BulkTyped {
    ids: Vec<i64>,
    action: String,
    priority: String,
    groups: String,
}

impl ChannelsPage {
    /// Why a channel has its status: in the reader's words when an admin or an import decided
    /// it, else as the server recorded it (the failures, the upstream's answer).
    fn reason(&self, channel: &ChannelView) -> String {
        match channel_batches::reason_key(&channel.status_reason) {
            Some(key) => self.page.t(key),
            None => channel.status_reason.clone(),
        }
    }

    fn status_key(&self, channel: &ChannelView) -> &'static str {
        status_key(channel.status)
    }

    /// When the status last changed, on the site's clock (the view gives it in RFC 3339).
    fn changed_at(&self, channel: &ChannelView) -> String {
        use time::format_description::well_known::Rfc3339;
        time::OffsetDateTime::parse(&channel.status_changed_at, &Rfc3339)
            .ok()
            .and_then(|at| i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok())
            .map_or_else(
                || channel.status_changed_at.clone(),
                |ms| self.page.time(&ms),
            )
    }

    /// Whether the refused bulk form had `action` chosen.
    fn bulk_chose(&self, action: &str) -> bool {
        self.bulk.action == action
    }

    fn enabled(&self, channel: &ChannelView) -> bool {
        channel.status == ChannelStatus::Enabled
    }
}

fn status_key(status: ChannelStatus) -> &'static str {
    match status {
        ChannelStatus::Enabled => "admin-channels-status-enabled",
        ChannelStatus::Disabled => "admin-channels-status-disabled",
        ChannelStatus::AutoDisabled => "admin-channels-status-auto-disabled",
    }
}

async fn channel_views(state: &AppState, admin: &AdminPage) -> Result<Vec<ChannelView>, WebError> {
    let rows = channels::list(&state.ctx, &admin.caller())
        .await
        .map_err(|e| admin.page.failed(e))?;
    let qpu = admin.page.quota_per_usd;
    Ok(rows.iter().map(|c| ChannelView::new(c, qpu)).collect())
}

pub async fn list(State(state): State<AppState>, admin: AdminPage) -> Result<Response, WebError> {
    let channels = channel_views(&state, &admin).await?;
    Ok(ChannelsPage {
        page: admin.page,
        channels,
        errors: FieldErrors::default(),
        actions: &channel_batches::BULK_ACTIONS,
        tested: Vec::new(),
        bulk: BulkTyped::default(),
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct EmptyForm {}

/// Tests every channel (eight at a time, each within 30 s) and shows the list with each
/// outcome.
pub async fn test_all(
    State(state): State<AppState>,
    admin: AdminPage,
    Posted(_): Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let tested = service::channel_tools::test_all(&state.ctx, &admin.caller(), &state.http)
        .await
        .map_err(|e| admin.page.failed(e))?;
    let channels = channel_views(&state, &admin).await?;
    Ok(ChannelsPage {
        page: admin.page,
        channels,
        errors: FieldErrors::default(),
        actions: &channel_batches::BULK_ACTIONS,
        tested,
        bulk: BulkTyped::default(),
    }
    .into_response())
}

pub async fn test_one(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(id): Path<i64>,
    Posted(_): Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let page = &admin.page;
    let channel = channels::by_id(&state.ctx, &caller, id)
        .await
        .map_err(|e| page.failed(e))?;
    let notice = match service::channel_tools::test(
        &state.ctx,
        &caller,
        &state.http,
        &channel.id.to_string(),
        None,
    )
    .await
    {
        Ok(outcome) => crate::i18n::text(
            page.lang,
            if outcome.ok {
                "admin-channels-test-passed"
            } else {
                "admin-channels-test-failed"
            },
            &[
                ("name", &outcome.channel),
                ("latency", &outcome.latency_ms.to_string()),
                ("answer", &outcome.message),
            ],
        ),
        Err(error @ ServiceError::Invalid(_)) => {
            error.message().map(|m| page.say(m)).unwrap_or_default()
        }
        Err(error) => return Err(page.failed(error)),
    };
    flash(&session, notice).await?;
    Ok(Redirect::to(&format!("/admin/channels/{id}")).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(id): Path<i64>,
    Posted(_): Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let channel = channels::by_id(&state.ctx, &caller, id)
        .await
        .map_err(|e| admin.page.failed(e))?;
    channels::delete(&state.ctx, &caller, &channel.id.to_string())
        .await
        .map_err(|e| admin.page.failed(e))?;
    flash(
        &session,
        admin
            .page
            .t1("admin-channels-deleted", "name", &channel.name),
    )
    .await?;
    Ok(Redirect::to("/admin/channels").into_response())
}

// ---------------------------------------------------------------------------------------
// A channel's form

/// The form's fields, named as `/api/channels` names them. Lists are one per line or comma
/// separated; `model_mapping` is lines of `from=to`, `extra_headers` lines of `Name: value`.
/// Keys and header values are never shown back: an empty field keeps them, `clear_…` removes.
#[derive(Default, Clone)]
pub struct ChannelForm {
    name: String,
    channel_type: String,
    base_url: String,
    keys: String,
    clear_keys: String,
    models: String,
    model_mapping: String,
    groups: String,
    priority: String,
    weight: String,
    timeout_secs: String,
    extra_headers: String,
    clear_extra_headers: String,
    status: String,
    /// The channel a new one copies (its keys and header values when none are typed).
    from: String,
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// A list typed one per line or comma-separated, as the services take it.
fn list_text(text: &str) -> String {
    lines(text).join(",")
}

impl ChannelForm {
    /// The form as posted: a checkbox sends `true` after its hidden `false`, so the last
    /// value of a field counts.
    fn posted(pairs: &Pairs) -> ChannelForm {
        let raw = |name: &str| pairs.get(name).unwrap_or_default().to_string();
        ChannelForm {
            name: raw("name"),
            channel_type: raw("type"),
            base_url: raw("base_url"),
            keys: raw("keys"),
            clear_keys: raw("clear_keys"),
            models: raw("models"),
            model_mapping: raw("model_mapping"),
            groups: raw("groups"),
            priority: raw("priority"),
            weight: raw("weight"),
            timeout_secs: raw("timeout_secs"),
            extra_headers: raw("extra_headers"),
            clear_extra_headers: raw("clear_extra_headers"),
            status: raw("status"),
            from: raw("from"),
        }
    }

    /// The form filled with a channel as it is (secrets left out).
    fn of(channel: &ChannelView) -> ChannelForm {
        ChannelForm {
            name: channel.name.clone(),
            channel_type: channel.channel_type.as_str().to_string(),
            base_url: channel.base_url.clone(),
            models: channel.models.join("\n"),
            model_mapping: channel
                .model_mapping
                .iter()
                .map(|(from, to)| format!("{from}={to}"))
                .collect::<Vec<_>>()
                .join("\n"),
            groups: channel.groups.join(", "),
            priority: channel.priority.to_string(),
            weight: channel.weight.to_string(),
            timeout_secs: channel.timeout_secs.to_string(),
            status: match channel.status {
                ChannelStatus::Disabled => "disabled".into(),
                _ => "enabled".into(),
            },
            ..ChannelForm::default()
        }
    }

    fn of_preset(preset: &Preset) -> ChannelForm {
        ChannelForm {
            channel_type: preset.name.clone(),
            base_url: preset.base_url.clone(),
            models: preset.models.join("\n"),
            ..ChannelForm::default()
        }
    }

    /// What the form asks of the service; `editing` sends every field (an empty one clears
    /// it), a new channel leaves empty fields to the service's defaults and the preset's.
    fn input(&self, editing: bool, errors: &mut FieldErrors, lang: Lang) -> ChannelInput {
        let given = |text: &str| {
            let text = text.trim();
            (editing || !text.is_empty()).then(|| text.to_string())
        };
        let keys = if self.clear_keys == "true" {
            Some(Vec::new())
        } else {
            let keys = lines(&self.keys);
            (!keys.is_empty()).then_some(keys)
        };
        let model_mapping = match given(&self.model_mapping) {
            Some(text) => match channels::parse_mapping_pairs(&lines(&text)) {
                Ok(map) => Some(map),
                Err(error) => {
                    errors.add(
                        "model_mapping",
                        error.message().map(|m| m.render(lang)).unwrap_or_default(),
                    );
                    None
                }
            },
            None => None,
        };
        let extra_headers = if self.clear_extra_headers == "true" {
            Some(BTreeMap::new())
        } else if self.extra_headers.trim().is_empty() {
            None
        } else {
            match channels::parse_header_lines(&lines(&self.extra_headers)) {
                Ok(map) => Some(map),
                Err(error) => {
                    errors.add(
                        "extra_headers",
                        error.message().map(|m| m.render(lang)).unwrap_or_default(),
                    );
                    None
                }
            }
        };
        ChannelInput {
            name: given(&self.name),
            channel_type: Some(self.channel_type.trim().to_string()).filter(|t| !t.is_empty()),
            base_url: given(&self.base_url),
            keys,
            models: given(&self.models).map(|m| list_text(&m.replace(',', "\n"))),
            groups: given(&self.groups).map(|g| list_text(&g.replace(',', "\n"))),
            priority: number(errors, lang, "priority", &self.priority),
            weight: number(errors, lang, "weight", &self.weight),
            model_mapping,
            timeout_secs: number(errors, lang, "timeout_secs", &self.timeout_secs),
            extra_headers,
            status: (editing && !self.status.is_empty()).then(|| self.status.clone()),
        }
    }
}

/// Which form a channel's page shows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    New,
    Copy,
    Edit,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/channel_form.html")]
pub struct ChannelFormPage {
    page: Page,
    kind: FormKind,
    /// The channel edited, or the one copied.
    channel: Option<ChannelView>,
    form: ChannelForm,
    errors: FieldErrors,
    types: Vec<(String, String)>,
    presets: &'static [Preset],
}

impl ChannelFormPage {
    fn action(&self) -> String {
        match (self.kind, &self.channel) {
            (FormKind::Edit, Some(channel)) => format!("/admin/channels/{}", channel.id),
            _ => "/admin/channels/new".to_string(),
        }
    }

    fn editing(&self) -> bool {
        self.kind == FormKind::Edit
    }

    fn copying(&self) -> bool {
        self.kind == FormKind::Copy
    }

    /// The keys as the channel has them, masked, for the hint under the keys field.
    fn masked_keys(&self) -> String {
        self.channel
            .as_ref()
            .map(|c| c.keys.join(", "))
            .unwrap_or_default()
    }

    fn header_names(&self) -> String {
        self.channel
            .as_ref()
            .map(|c| c.extra_headers.join(", "))
            .unwrap_or_default()
    }

    fn reason(&self, channel: &ChannelView) -> String {
        match channel_batches::reason_key(&channel.status_reason) {
            Some(key) => self.page.t(key),
            None => channel.status_reason.clone(),
        }
    }

    fn status_key(&self, channel: &ChannelView) -> &'static str {
        status_key(channel.status)
    }
}

/// The types a channel may have, then the vendor presets: (value, label).
fn type_choices() -> Vec<(String, String)> {
    let mut choices: Vec<(String, String)> = ChannelType::ALL
        .iter()
        .map(|t| (t.as_str().to_string(), t.as_str().to_string()))
        .collect();
    choices.extend(
        presets::all()
            .iter()
            .map(|p| (p.name.clone(), format!("{} ({})", p.display_name, p.name))),
    );
    choices
}

fn form_page(
    page: Page,
    kind: FormKind,
    channel: Option<ChannelView>,
    form: ChannelForm,
    errors: FieldErrors,
) -> ChannelFormPage {
    ChannelFormPage {
        page,
        kind,
        channel,
        form,
        errors,
        types: type_choices(),
        presets: presets::all(),
    }
}

#[derive(Deserialize)]
pub struct NewQuery {
    preset: Option<String>,
    from: Option<i64>,
}

/// A blank form; `?preset=NAME` fills in the vendor's base URL and models, `?from=ID` a copy
/// of a channel (its keys stay on the server).
pub async fn new_form(
    State(state): State<AppState>,
    admin: AdminPage,
    Query(query): Query<NewQuery>,
) -> Result<Response, WebError> {
    if let Some(from) = query.from {
        let source = channels::by_id(&state.ctx, &admin.caller(), from)
            .await
            .map_err(|e| admin.page.failed(e))?;
        let view = ChannelView::new(&source, admin.page.quota_per_usd);
        let mut form = ChannelForm::of(&view);
        form.name = admin
            .page
            .t1("admin-channels-copy-name", "name", &view.name);
        form.from = view.id.to_string();
        return Ok(form_page(
            admin.page,
            FormKind::Copy,
            Some(view),
            form,
            FieldErrors::default(),
        )
        .into_response());
    }
    let form = query
        .preset
        .as_deref()
        .and_then(presets::find)
        .map(ChannelForm::of_preset)
        .unwrap_or_else(|| ChannelForm {
            channel_type: "openai".into(),
            ..ChannelForm::default()
        });
    Ok(form_page(
        admin.page,
        FormKind::New,
        None,
        form,
        FieldErrors::default(),
    )
    .into_response())
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Posted(pairs): Posted<Pairs>,
) -> Result<Response, WebError> {
    let form = ChannelForm::posted(&pairs);
    let caller = admin.caller();
    let lang = admin.page.lang;
    let mut errors = FieldErrors::default();
    let input = form.input(false, &mut errors, lang);
    let source = match form.from.trim().parse::<i64>() {
        Ok(id) => Some(
            channels::by_id(&state.ctx, &caller, id)
                .await
                .map_err(|e| admin.page.failed(e))?,
        ),
        Err(_) => None,
    };
    let created = if !errors.is_empty() {
        None
    } else {
        let made = match &source {
            Some(source) => {
                channels::clone(&state.ctx, &caller, &source.id.to_string(), input).await
            }
            None => channels::create(&state.ctx, &caller, input).await,
        };
        match made {
            Ok(channel) => Some(channel),
            Err(error @ (ServiceError::Invalid(_) | ServiceError::Conflict { .. })) => {
                errors = FieldErrors::from_service(&error, lang, &[]);
                None
            }
            Err(error) => return Err(admin.page.failed(error)),
        }
    };
    if let Some(channel) = created {
        flash(
            &session,
            admin
                .page
                .t1("admin-channels-created", "name", &channel.name),
        )
        .await?;
        return Ok(Redirect::to(&format!("/admin/channels/{}", channel.id)).into_response());
    }
    let qpu = admin.page.quota_per_usd;
    let (kind, view) = match source {
        Some(source) => (FormKind::Copy, Some(ChannelView::new(&source, qpu))),
        None => (FormKind::New, None),
    };
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        form_page(admin.page, kind, view, form, errors),
    )
        .into_response())
}

pub async fn edit_form(
    State(state): State<AppState>,
    admin: AdminPage,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let channel = channels::by_id(&state.ctx, &admin.caller(), id)
        .await
        .map_err(|e| admin.page.failed(e))?;
    let view = ChannelView::new(&channel, admin.page.quota_per_usd);
    let form = ChannelForm::of(&view);
    Ok(form_page(
        admin.page,
        FormKind::Edit,
        Some(view),
        form,
        FieldErrors::default(),
    )
    .into_response())
}

pub async fn edit(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(id): Path<i64>,
    Posted(pairs): Posted<Pairs>,
) -> Result<Response, WebError> {
    let form = ChannelForm::posted(&pairs);
    let caller = admin.caller();
    let lang = admin.page.lang;
    let channel = channels::by_id(&state.ctx, &caller, id)
        .await
        .map_err(|e| admin.page.failed(e))?;
    let mut errors = FieldErrors::default();
    let input = form.input(true, &mut errors, lang);
    if errors.is_empty() {
        match channels::update(&state.ctx, &caller, &channel.id.to_string(), input).await {
            Ok(saved) => {
                flash(
                    &session,
                    admin.page.t1("admin-channels-saved", "name", &saved.name),
                )
                .await?;
                return Ok(Redirect::to(&format!("/admin/channels/{id}")).into_response());
            }
            Err(error @ (ServiceError::Invalid(_) | ServiceError::Conflict { .. })) => {
                errors = FieldErrors::from_service(&error, lang, &[]);
            }
            Err(error) => return Err(admin.page.failed(error)),
        }
    }
    let view = ChannelView::new(&channel, admin.page.quota_per_usd);
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        form_page(admin.page, FormKind::Edit, Some(view), form, errors),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------
// The upstream's models

#[derive(Template, WebTemplate)]
#[template(path = "admin/channel_models.html")]
pub struct ModelsPage {
    page: Page,
    channel: ChannelView,
    /// Every model to choose from (the upstream's and those served already) and whether the
    /// channel serves it.
    choices: Vec<(String, bool)>,
}

/// Asks the upstream for its models and shows them to pick from, those served checked.
pub async fn fetch_models(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(id): Path<i64>,
    Posted(_): Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let channel = channels::by_id(&state.ctx, &caller, id)
        .await
        .map_err(|e| admin.page.failed(e))?;
    let listed = match service::channel_tools::fetch_models(
        &state.ctx,
        &caller,
        &state.http,
        &channel.id.to_string(),
    )
    .await
    {
        Ok(models) => models,
        Err(error @ (ServiceError::Upstream(_) | ServiceError::Invalid(_))) => {
            let text = error
                .message()
                .map(|m| admin.page.say(m))
                .unwrap_or_default();
            flash(&session, text).await?;
            return Ok(Redirect::to(&format!("/admin/channels/{id}")).into_response());
        }
        Err(error) => return Err(admin.page.failed(error)),
    };
    let mut choices: Vec<(String, bool)> = listed
        .into_iter()
        .map(|m| {
            let served = channel.models.contains(&m);
            (m, served)
        })
        .collect();
    for served in &channel.models {
        if !choices.iter().any(|(m, _)| m == served) {
            choices.push((served.clone(), true));
        }
    }
    let view = ChannelView::new(&channel, admin.page.quota_per_usd);
    Ok(ModelsPage {
        page: admin.page,
        channel: view,
        choices,
    }
    .into_response())
}

/// Serves the models picked (`models`, one per checked box).
pub async fn save_models(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(id): Path<i64>,
    Posted(form): Posted<Pairs>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let channel = channels::by_id(&state.ctx, &caller, id)
        .await
        .map_err(|e| admin.page.failed(e))?;
    let input = ChannelInput {
        models: Some(form.all("models").join(",")),
        ..ChannelInput::default()
    };
    match channels::update(&state.ctx, &caller, &channel.id.to_string(), input).await {
        Ok(saved) => {
            flash(
                &session,
                admin.page.t1("admin-channels-saved", "name", &saved.name),
            )
            .await?;
        }
        Err(error @ ServiceError::Invalid(_)) => {
            let text = error
                .message()
                .map(|m| admin.page.say(m))
                .unwrap_or_default();
            flash(&session, text).await?;
        }
        Err(error) => return Err(admin.page.failed(error)),
    }
    Ok(Redirect::to(&format!("/admin/channels/{id}")).into_response())
}
