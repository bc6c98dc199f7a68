//! `/admin/settings`: the runtime options in sections (site, sign-up and sign-in, mail,
//! payments, routing and retries, limits, logs, monitoring), each field named after its option; a test
//! email, a check of the Stripe key, and the sign-in providers. Administrators see the
//! options the services leave to them; mail, the Stripe keys, the site's address and the
//! providers are root's (the services refuse the rest with 403). Secrets are never shown:
//! an empty field keeps one, `clear_NAME` removes it.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

use super::AdminPage;
use super::catalog::Fields;
use crate::options::{RuntimeOptions, WRITE_ONLY, is_root_only};
use crate::service::oauth::NewProvider;
use crate::service::views::OAuthProviderView;
use crate::service::{self, ServiceError};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::page::{Page, flash};

/// Pages and forms that need only an administrator.
pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/settings", get(page))
}

/// Forms that need a sign-in within the last minutes too (see `reauth`): every change of a
/// setting, the checks that use the secrets, and the sign-in providers.
pub fn sensitive_routes() -> Router<AppState> {
    Router::new()
        .route("/admin/settings", post(save))
        .route("/admin/settings/mail/test", post(test_email))
        .route("/admin/settings/stripe/check", post(check_stripe))
        .route("/admin/settings/providers", post(add_provider))
        .route(
            "/admin/settings/providers/{name}/delete",
            post(remove_provider),
        )
}

/// The sections, in order: (id, its options). An option no section names is shown under
/// limits, so none is out of reach.
const SECTIONS: &[(&str, &[&str])] = &[
    (
        "site",
        &[
            "site_name",
            "public_url",
            "announcement",
            "timezone",
            "quota_per_usd",
        ],
    ),
    (
        "signup",
        &[
            "registration_enabled",
            "email_verification_required",
            "email_domains_allowed",
            "email_domains_blocked",
            "signups_per_ip_per_day",
            "new_user_quota_usd",
            "invite_reward_inviter_usd",
            "invite_reward_invitee_usd",
            "invite_reward_when",
        ],
    ),
    (
        "mail",
        &[
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "smtp_username",
            "smtp_password",
            "smtp_from",
        ],
    ),
    (
        "payments",
        &[
            "stripe_secret_key",
            "stripe_webhook_secret",
            "stripe_api_base",
            "topup_currency",
            "topup_price_per_usd",
            "topup_min_usd",
            "topup_max_usd",
            "topup_presets_usd",
            "topup_bonus_tiers",
            "topup_max_pending_per_user",
            "topup_daily_cap_usd",
            "topup_checkout_minutes",
            "topup_reconcile_after_secs",
        ],
    ),
    (
        "routing",
        &[
            "retry_count",
            "retry_statuses",
            "cooldown_after_failures",
            "cooldown_secs",
            "auto_disable_after_failures",
            "auto_disable_statuses",
            "probe_interval_secs",
            "first_byte_timeout_secs",
            "stream_idle_timeout_secs",
            "redis_outage_mode",
        ],
    ),
    (
        "limits",
        &[
            "max_request_body_kb",
            "usage_ceiling_tokens",
            "default_max_tokens",
            "default_context_tokens",
            "list_prices",
            "allow_unpriced_models",
            "max_keys_per_user",
            "low_balance_default_usd",
        ],
    ),
    ("logs", &["log_retention_days", "audit_retention_days"]),
    ("monitoring", &["metrics_token"]),
];

/// The options that switch on a feature moving money: a change of one that does so needs the
/// typed confirmation.
const MONEY_OPTIONS: &[&str] = &[
    "new_user_quota_usd",
    "invite_reward_inviter_usd",
    "invite_reward_invitee_usd",
    "stripe_secret_key",
    "stripe_webhook_secret",
];

/// Options chosen from a list: (option, choices).
const CHOICES: &[(&str, &[&str])] = &[
    ("smtp_security", &["starttls", "tls", "none"]),
    ("invite_reward_when", &["first_topup", "signup"]),
    ("redis_outage_mode", &["closed", "local_share"]),
];

/// The section an option is shown in.
fn section_of(name: &str) -> &'static str {
    SECTIONS
        .iter()
        .find(|(_, names)| names.contains(&name))
        .map(|(id, _)| *id)
        .unwrap_or(if name.starts_with("log") {
            "logs"
        } else {
            "limits"
        })
}

/// The text key of an option's label.
fn label_key(name: &str) -> String {
    format!("admin-option-{}", name.replace('_', "-"))
}

/// One option's field.
pub struct OptionField {
    name: &'static str,
    label: String,
    /// `text`, `bool`, `secret`, `choice` or `textarea`.
    kind: &'static str,
    /// What the field holds: the value (as typed, after a refusal); empty for a secret.
    value: String,
    /// A secret's: whether one is stored.
    is_set: bool,
    choices: &'static [&'static str],
    default: &'static str,
}

pub struct Section {
    id: &'static str,
    fields: Vec<OptionField>,
    /// Whether the section has an option that can switch a money feature on.
    money: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/settings.html")]
pub struct SettingsPage {
    page: Page,
    is_root: bool,
    sections: Vec<Section>,
    /// The section whose form came back, with its problems.
    posted: Option<&'static str>,
    errors: FieldErrors,
    mail_to: String,
    mail_errors: FieldErrors,
    stripe_errors: FieldErrors,
    providers: Vec<OAuthProviderView>,
    provider_form: ProviderForm,
    provider_errors: FieldErrors,
    /// Where a new provider sends people back, with NAME for its name.
    callback_pattern: String,
    provider_kinds: &'static [(&'static str, &'static str)],
}

impl SettingsPage {
    fn title_key(&self, section: &str) -> String {
        format!("admin-settings-{section}")
    }

    /// The confirmation field's id: `confirm` in the form that came back (its problem and the
    /// summary's link name it), else one of the section's own.
    fn confirm_id(&self, section: &str) -> String {
        if self.posted == Some(section) {
            "confirm".into()
        } else {
            format!("confirm-{section}")
        }
    }
}

/// What the page shows beyond the options: a form that came back, or a check's refusal.
#[derive(Default)]
struct Shown {
    posted: Option<&'static str>,
    typed: Vec<(String, String)>,
    errors: FieldErrors,
    mail_to: String,
    mail_errors: FieldErrors,
    stripe_errors: FieldErrors,
    provider_form: ProviderForm,
    provider_errors: FieldErrors,
}

fn base_url(state: &AppState) -> String {
    state.snapshot.load().options.base_url(&state.listen_url)
}

async fn build(state: &AppState, admin: AdminPage, shown: Shown) -> Result<SettingsPage, WebError> {
    let caller = admin.caller();
    let is_root = admin.is_root();
    let described = service::options::list(&state.ctx, &caller)
        .await
        .map_err(|e| admin.page.failed(e))?;
    let mut sections: Vec<Section> = SECTIONS
        .iter()
        .map(|(id, _)| Section {
            id,
            fields: Vec::new(),
            money: false,
        })
        .collect();
    for option in described {
        let name = option.name;
        if is_root_only(name) && !is_root {
            continue;
        }
        let secret = WRITE_ONLY.contains(&name);
        let typed = shown
            .typed
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone());
        let choices = CHOICES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&[][..], |(_, c)| *c);
        let is_bool = matches!(option.default, "true" | "false");
        let kind = if secret {
            "secret"
        } else if is_bool {
            "bool"
        } else if !choices.is_empty() {
            "choice"
        } else if name == "announcement" {
            "textarea"
        } else {
            "text"
        };
        let field = OptionField {
            name,
            label: admin.page.t(&label_key(name)),
            kind,
            value: if secret {
                String::new()
            } else {
                typed.unwrap_or(option.value.clone())
            },
            is_set: secret && !option.value.is_empty(),
            choices,
            default: option.default,
        };
        let id = section_of(name);
        if let Some(section) = sections.iter_mut().find(|s| s.id == id) {
            section.money |= MONEY_OPTIONS.contains(&name);
            section.fields.push(field);
        }
    }
    sections.retain(|s| !s.fields.is_empty());
    // Each section in its own order (related options together), unlisted ones last.
    for section in &mut sections {
        let order = SECTIONS
            .iter()
            .find(|(id, _)| *id == section.id)
            .map_or(&[][..], |(_, names)| *names);
        section.fields.sort_by_key(|f| {
            order
                .iter()
                .position(|n| *n == f.name)
                .unwrap_or(usize::MAX)
        });
    }
    let providers = if is_root {
        let base = base_url(state);
        service::oauth::list_providers(&state.ctx, &caller)
            .await
            .map_err(|e| admin.page.failed(e))?
            .iter()
            .map(|p| OAuthProviderView::new(p, &base))
            .collect()
    } else {
        Vec::new()
    };
    Ok(SettingsPage {
        page: admin.page,
        is_root,
        sections,
        posted: shown.posted,
        errors: shown.errors,
        mail_to: shown.mail_to,
        mail_errors: shown.mail_errors,
        stripe_errors: shown.stripe_errors,
        providers,
        provider_form: shown.provider_form,
        provider_errors: shown.provider_errors,
        callback_pattern: format!("{}/oauth/NAME/callback", base_url(state)),
        provider_kinds: &PROVIDER_KINDS,
    })
}

pub async fn page(
    State(state): State<AppState>,
    admin: AdminPage,
) -> Result<SettingsPage, WebError> {
    build(&state, admin, Shown::default()).await
}

/// The status of a form that comes back.
fn refused_status(error: &ServiceError) -> StatusCode {
    match error {
        ServiceError::Upstream(_) => StatusCode::BAD_GATEWAY,
        ServiceError::Conflict { .. } => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// Whether the typed confirmation was given: the word `confirm` (or `true`, as `/api` takes
/// it).
fn confirmed(fields: &Fields) -> bool {
    let typed = fields.get("confirm").trim().to_ascii_lowercase();
    typed == "confirm" || typed == "true"
}

/// Saves a section: every option field sent, a secret only when something was typed in it
/// (or its `clear_` box is ticked). Options left as they are change nothing.
pub async fn save(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Posted(fields): Posted<Fields>,
) -> Result<Response, WebError> {
    let mut values = Vec::new();
    for name in RuntimeOptions::names() {
        let secret = WRITE_ONLY.contains(&name);
        if secret && fields.get(&format!("clear_{name}")) == "true" {
            values.push((name.to_string(), String::new()));
        } else if fields.has(name) && !(secret && fields.get(name).trim().is_empty()) {
            values.push((name.to_string(), fields.get(name).to_string()));
        }
    }
    let section = values
        .first()
        .map(|(name, _)| section_of(name))
        .or_else(|| {
            SECTIONS
                .iter()
                .map(|(id, _)| *id)
                .find(|id| *id == fields.get("section"))
        });
    match service::options::set_many(&state.ctx, &admin.caller(), &values, confirmed(&fields)).await
    {
        Ok(changed) => {
            let text = if changed.is_empty() {
                admin.page.t("admin-settings-unchanged")
            } else {
                admin
                    .page
                    .t1("admin-settings-saved", "names", &changed.join(", "))
            };
            flash(&session, text).await?;
            let anchor = section.map(|s| format!("#{s}")).unwrap_or_default();
            Ok(Redirect::to(&format!("/admin/settings{anchor}")).into_response())
        }
        Err(
            error @ (ServiceError::Forbidden(_) | ServiceError::NotFound(_) | ServiceError::Db(_)),
        ) => Err(admin.page.failed(error)),
        Err(error) => {
            let errors = FieldErrors::from_service(&error, admin.page.lang, &[]);
            let status = refused_status(&error);
            let shown = Shown {
                posted: section,
                typed: values,
                errors,
                ..Shown::default()
            };
            Ok((status, build(&state, admin, shown).await?).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct TestEmailForm {
    #[serde(default)]
    to: String,
}

pub async fn test_email(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Posted(form): Posted<TestEmailForm>,
) -> Result<Response, WebError> {
    match service::site_checks::send_test_email(&state.ctx, &admin.caller(), &form.to).await {
        Ok(()) => {
            let text = admin.page.t1("admin-mail-test-sent", "to", form.to.trim());
            flash(&session, text).await?;
            Ok(Redirect::to("/admin/settings#mail").into_response())
        }
        Err(error @ ServiceError::Forbidden(_)) => Err(admin.page.failed(error)),
        Err(error) => {
            let mail_errors = FieldErrors::from_service(&error, admin.page.lang, &[]);
            let status = refused_status(&error);
            let shown = Shown {
                mail_to: form.to,
                mail_errors,
                ..Shown::default()
            };
            Ok((status, build(&state, admin, shown).await?).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct NoFields {}

pub async fn check_stripe(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Posted(_): Posted<NoFields>,
) -> Result<Response, WebError> {
    match service::site_checks::check_stripe(&state.ctx, &admin.caller()).await {
        Ok(()) => {
            flash(&session, admin.page.t("admin-stripe-check-ok")).await?;
            Ok(Redirect::to("/admin/settings#payments").into_response())
        }
        Err(error @ ServiceError::Forbidden(_)) => Err(admin.page.failed(error)),
        Err(error) => {
            let mut stripe_errors = FieldErrors::from_service(&error, admin.page.lang, &[]);
            // The check has no field of its own: its refusal is said above its button.
            if let Some(message) = stripe_errors.list().first().map(|(_, m)| m.clone()) {
                stripe_errors = FieldErrors::default();
                stripe_errors.general = Some(message);
            }
            let status = refused_status(&error);
            let shown = Shown {
                stripe_errors,
                ..Shown::default()
            };
            Ok((status, build(&state, admin, shown).await?).into_response())
        }
    }
}

/// The kinds of sign-in provider: (value, label key).
const PROVIDER_KINDS: [(&str, &str); 2] = [
    ("github", "admin-provider-kind-github"),
    ("oidc", "admin-provider-kind-oidc"),
];

/// The API's fields of `POST /api/oauth-providers` (the secret is never shown back).
#[derive(Deserialize, Default, Clone)]
pub struct ProviderForm {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    auth_url: String,
    #[serde(default)]
    token_url: String,
    #[serde(default)]
    api_url: String,
}

fn blank(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

pub async fn add_provider(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Posted(form): Posted<ProviderForm>,
) -> Result<Response, WebError> {
    let input = NewProvider {
        kind: form.kind.trim().to_string(),
        name: form.name.trim().to_string(),
        display_name: blank(&form.display_name),
        client_id: form.client_id.trim().to_string(),
        client_secret: form.client_secret.trim().to_string(),
        issuer: blank(&form.issuer),
        auth_url: blank(&form.auth_url),
        token_url: blank(&form.token_url),
        api_url: blank(&form.api_url),
    };
    match service::oauth::add_provider(&state.ctx, &admin.caller(), &state.oauth, input).await {
        Ok(provider) => {
            let view = OAuthProviderView::new(&provider, &base_url(&state));
            let text = crate::i18n::text(
                admin.page.lang,
                "admin-provider-added",
                &[("name", &view.name), ("callback", &view.callback_url)],
            );
            flash(&session, text).await?;
            Ok(Redirect::to("/admin/settings#providers").into_response())
        }
        Err(error @ ServiceError::Forbidden(_)) => Err(admin.page.failed(error)),
        Err(error) => {
            let provider_errors = FieldErrors::from_service(&error, admin.page.lang, &[]);
            let status = refused_status(&error);
            let shown = Shown {
                provider_form: ProviderForm {
                    client_secret: String::new(),
                    ..form
                },
                provider_errors,
                ..Shown::default()
            };
            Ok((status, build(&state, admin, shown).await?).into_response())
        }
    }
}

pub async fn remove_provider(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(name): Path<String>,
    Posted(_): Posted<NoFields>,
) -> Result<Response, WebError> {
    service::oauth::remove_provider(&state.ctx, &admin.caller(), &name)
        .await
        .map_err(|e| admin.page.failed(e))?;
    flash(
        &session,
        admin.page.t1("admin-provider-removed", "name", &name),
    )
    .await?;
    Ok(Redirect::to("/admin/settings#providers").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_has_a_section_and_a_label() {
        for name in RuntimeOptions::names() {
            let section = section_of(name);
            assert!(SECTIONS.iter().any(|(id, _)| *id == section), "{name}");
            let key = label_key(name);
            assert_ne!(
                crate::i18n::text(crate::i18n::Lang::En, &key, &[]),
                key,
                "{name} has no label"
            );
        }
        for (_, names) in SECTIONS {
            for name in *names {
                assert!(
                    RuntimeOptions::names().contains(name),
                    "{name} is no option"
                );
            }
        }
        for name in MONEY_OPTIONS {
            assert!(RuntimeOptions::names().contains(name), "{name}");
        }
    }
}
