//! The console's batch work on channels: bulk actions on those checked in the list, copying
//! settings from one channel to others, and export and import — each previewed first, as
//! `/api/channels/{bulk,sync,import}` answer with `dry_run`.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{BulkTyped, ChannelsPage, Pairs, channel_views, lines, list_text, number};
use crate::service::ServiceError;
use crate::service::channel_batches::{
    self, BatchOutcome, BulkInput, ChannelExport, ImportInput, SYNC_FIELDS, SyncInput,
};
use crate::service::views::ChannelView;
use crate::state::AppState;
use crate::web::admin::AdminPage;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::page::{Page, flash};

#[derive(Template, WebTemplate)]
#[template(path = "admin/channel_preview.html")]
pub struct PreviewPage {
    page: Page,
    /// What the batch is, for the heading.
    title_key: &'static str,
    action: &'static str,
    outcome: BatchOutcome,
    /// The request's fields, sent again with `dry_run=false` to apply it.
    carried: Vec<(String, String)>,
    errors: FieldErrors,
}

impl PreviewPage {
    fn kind_key(&self, change: &channel_batches::ChannelChange) -> &'static str {
        match change.kind {
            channel_batches::ChangeKind::Create => "admin-channels-change-create",
            channel_batches::ChangeKind::Update => "admin-channels-change-update",
            channel_batches::ChangeKind::Delete => "admin-channels-change-delete",
            channel_batches::ChangeKind::Unchanged => "admin-channels-change-none",
        }
    }

    fn shown(&self, value: &serde_json::Value) -> String {
        match value {
            serde_json::Value::Null => "—".into(),
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(", "),
            serde_json::Value::Object(map) => map
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", "),
            other => other.to_string(),
        }
    }

    fn problems(&self, change: &channel_batches::ChannelChange) -> Vec<String> {
        change.problem_texts(self.page.lang)
    }
}

/// Shows a batch's preview, or applies it (`dry_run=false`) and goes back to the list. A
/// refused batch shows its preview again with why.
async fn run_batch<F, Fut>(
    admin: AdminPage,
    session: &Session,
    form: &Pairs,
    title_key: &'static str,
    action: &'static str,
    done_key: &'static str,
    run: F,
) -> Result<Response, WebError>
where
    F: Fn(bool) -> Fut,
    Fut: std::future::Future<Output = Result<BatchOutcome, ServiceError>>,
{
    let lang = admin.page.lang;
    let dry_run = form.get("dry_run") != Some("false");
    let (outcome, errors, status) = match run(dry_run).await {
        Ok(outcome) if outcome.applied => {
            flash(
                session,
                crate::i18n::text(lang, done_key, &[("count", &outcome.changed().to_string())]),
            )
            .await?;
            return Ok(Redirect::to("/admin/channels").into_response());
        }
        Ok(outcome) => {
            let status = if outcome.has_problems() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            (outcome, FieldErrors::default(), status)
        }
        Err(error @ (ServiceError::Invalid(_) | ServiceError::Conflict { .. })) => {
            let status = if matches!(error, ServiceError::Conflict { .. }) {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let errors = FieldErrors::from_service(&error, lang, &[]);
            // What the batch would do now, to look at again.
            match run(true).await {
                Ok(outcome) => (outcome, errors, status),
                Err(_) => (
                    BatchOutcome {
                        applied: false,
                        changes: Vec::new(),
                    },
                    errors,
                    status,
                ),
            }
        }
        Err(error) => return Err(admin.page.failed(error)),
    };
    let mut carried = form.carried();
    // A sync applied later refuses a target changed since this preview.
    if action == "/admin/channels/sync" {
        carried.retain(|(n, _)| n != "updated_at");
        let stamps: Vec<String> = outcome
            .changes
            .iter()
            .filter_map(|c| Some(format!("{}={}", c.id?, c.updated_at?)))
            .collect();
        carried.push(("updated_at".into(), stamps.join("\n")));
    }
    Ok((
        status,
        PreviewPage {
            page: admin.page,
            title_key,
            action,
            outcome,
            carried,
            errors,
        },
    )
        .into_response())
}

/// A bulk action on the channels checked in the list (`ids`): previewed first.
pub async fn bulk(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Posted(form): Posted<Pairs>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let lang = admin.page.lang;
    let mut errors = FieldErrors::default();
    let priority = number(&mut errors, lang, "priority", &form.text("priority"));
    if !errors.is_empty() {
        return list_with_errors(&state, admin, &form, errors).await;
    }
    let groups = Some(form.text("groups")).filter(|g| !g.is_empty());
    let input = BulkInput {
        ids: form.ids("ids"),
        action: form.text("action"),
        priority,
        groups: groups.map(|g| list_text(&g.replace(',', "\n"))),
        dry_run: true,
    };
    // Problems with the request itself belong on the list's form.
    if let Err(error @ ServiceError::Invalid(_)) =
        channel_batches::bulk(&state.ctx, &caller, input.clone()).await
        && error
            .fields()
            .iter()
            .all(|p| ["ids", "action", "priority", "groups"].contains(&p.field))
    {
        let errors = FieldErrors::from_service(&error, lang, &[]);
        return list_with_errors(&state, admin, &form, errors).await;
    }
    let ctx = state.ctx.clone();
    run_batch(
        admin,
        &session,
        &form,
        "admin-channels-bulk-title",
        "/admin/channels/bulk",
        "admin-channels-bulk-done",
        |dry_run| {
            let input = BulkInput {
                dry_run,
                ..input.clone()
            };
            let ctx = ctx.clone();
            async move { channel_batches::bulk(&ctx, &caller, input).await }
        },
    )
    .await
}

async fn list_with_errors(
    state: &AppState,
    admin: AdminPage,
    form: &Pairs,
    errors: FieldErrors,
) -> Result<Response, WebError> {
    let bulk = BulkTyped {
        ids: form.ids("ids"),
        action: form.text("action"),
        priority: form.text("priority"),
        groups: form.text("groups"),
    };
    let channels = channel_views(state, &admin).await?;
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        ChannelsPage {
            page: admin.page,
            channels,
            errors,
            actions: &channel_batches::BULK_ACTIONS,
            tested: Vec::new(),
            bulk,
        },
    )
        .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/channel_sync.html")]
pub struct SyncPage {
    page: Page,
    channels: Vec<ChannelView>,
    fields: &'static [&'static str],
    /// What was chosen: the source, the targets, the fields.
    from: String,
    to: Vec<i64>,
    chosen: Vec<String>,
    errors: FieldErrors,
}

impl SyncPage {
    fn is_chosen(&self, field: &str) -> bool {
        self.chosen.iter().any(|c| c == field)
    }

    fn field_key(&self, field: &str) -> String {
        format!("admin-channels-field-{}", field.replace('_', "-"))
    }
}

pub async fn sync_form(
    State(state): State<AppState>,
    admin: AdminPage,
) -> Result<Response, WebError> {
    let channels = channel_views(&state, &admin).await?;
    Ok(SyncPage {
        page: admin.page,
        channels,
        fields: &SYNC_FIELDS,
        from: String::new(),
        to: Vec::new(),
        chosen: Vec::new(),
        errors: FieldErrors::default(),
    }
    .into_response())
}

/// Copies chosen settings from one channel (`from`) to others (`to`): previewed first, each
/// target's change and its `updated_at`; applying refuses a target changed since.
pub async fn sync(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Posted(form): Posted<Pairs>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let lang = admin.page.lang;
    let updated_at: BTreeMap<i64, i64> = lines(&form.text("updated_at"))
        .iter()
        .filter_map(|line| {
            let (id, at) = line.split_once('=')?;
            Some((id.trim().parse().ok()?, at.trim().parse().ok()?))
        })
        .collect();
    let input = SyncInput {
        from: form.text("from"),
        to: form.ids("to"),
        fields: form.all("fields"),
        updated_at,
        dry_run: true,
    };
    if let Err(error @ ServiceError::Invalid(_)) =
        channel_batches::sync(&state.ctx, &caller, input.clone()).await
        && error
            .fields()
            .iter()
            .all(|p| ["from", "to", "fields"].contains(&p.field))
    {
        let channels = channel_views(&state, &admin).await?;
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            SyncPage {
                page: admin.page,
                channels,
                fields: &SYNC_FIELDS,
                from: input.from.clone(),
                to: input.to.clone(),
                chosen: input.fields.clone(),
                errors: FieldErrors::from_service(&error, lang, &[]),
            },
        )
            .into_response());
    }
    let ctx = state.ctx.clone();
    run_batch(
        admin,
        &session,
        &form,
        "admin-channels-sync-title",
        "/admin/channels/sync",
        "admin-channels-sync-done",
        |dry_run| {
            let input = SyncInput {
                dry_run,
                ..input.clone()
            };
            let ctx = ctx.clone();
            async move { channel_batches::sync(&ctx, &caller, input).await }
        },
    )
    .await
}

/// Every channel as a JSON file, keys masked.
pub async fn export(State(state): State<AppState>, admin: AdminPage) -> Result<Response, WebError> {
    let channels = channel_batches::export(&state.ctx, &admin.caller())
        .await
        .map_err(|e| admin.page.failed(e))?;
    let body = serde_json::to_string_pretty(&serde_json::json!({ "channels": channels }))
        .map_err(|e| WebError::internal(admin.page.lang, &e))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"channels.json\"",
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/channel_import.html")]
pub struct ImportPage {
    page: Page,
    channels: String,
    errors: FieldErrors,
}

pub async fn import_form(admin: AdminPage) -> ImportPage {
    ImportPage {
        page: admin.page,
        channels: String::new(),
        errors: FieldErrors::default(),
    }
}

/// The pasted export (`{"channels": [...]}` or the bare list): previewed first.
pub async fn import(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Posted(form): Posted<Pairs>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let lang = admin.page.lang;
    let text = form.text("channels");
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Document {
        channels: Vec<ChannelExport>,
    }
    let parsed: Result<Vec<ChannelExport>, String> = serde_json::from_str::<Document>(&text)
        .map(|d| d.channels)
        .or_else(|_| serde_json::from_str::<Vec<ChannelExport>>(&text))
        .map_err(|e| e.to_string());
    let channels = match parsed {
        Ok(channels) => channels,
        Err(reason) => {
            let mut errors = FieldErrors::default();
            errors.add(
                "channels",
                crate::i18n::text(
                    lang,
                    "admin-channels-import-unreadable",
                    &[("reason", &reason)],
                ),
            );
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                ImportPage {
                    page: admin.page,
                    channels: text,
                    errors,
                },
            )
                .into_response());
        }
    };
    let input = ImportInput {
        channels,
        dry_run: true,
    };
    if let Err(error @ ServiceError::Invalid(_)) =
        channel_batches::import(&state.ctx, &caller, input.clone()).await
        && error.fields().iter().all(|p| p.field == "channels")
        && error.fields().len() == 1
    {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            ImportPage {
                page: admin.page,
                channels: text,
                errors: FieldErrors::from_service(&error, lang, &[]),
            },
        )
            .into_response());
    }
    let ctx = state.ctx.clone();
    run_batch(
        admin,
        &session,
        &form,
        "admin-channels-import-title",
        "/admin/channels/import",
        "admin-channels-import-done",
        |dry_run| {
            let input = ImportInput {
                dry_run,
                ..input.clone()
            };
            let ctx = ctx.clone();
            async move { channel_batches::import(&ctx, &caller, input).await }
        },
    )
    .await
}
