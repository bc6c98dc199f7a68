//! The console's redemption codes: make a batch (shown once, on a page or as a CSV file in the
//! answer to the form), list batches with where their codes stand, see who redeemed each code
//! and when, and disable a code or a batch.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

use super::AdminPage;
use super::users::local_time;
use crate::service::codes::{CodeState, CreateCodes, NewCodeShown};
use crate::service::views::{CodeBatchView, CodeView, RedemptionView};
use crate::service::{self, Caller};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::page::{Page, flash, urlencode};

/// Pages and forms that need only an administrator.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/codes", get(list).post(generate))
        .route("/admin/codes/{id}", get(detail))
        .route("/admin/codes/disable", post(disable))
}

/// Forms that need a sign-in within the last minutes too (see `reauth`).
pub fn sensitive_routes() -> Router<AppState> {
    Router::new()
}

/// The generate form: the field names of `POST /api/codes`, and how to answer.
#[derive(Deserialize, Clone)]
pub struct GenerateForm {
    #[serde(default = "one")]
    count: String,
    #[serde(default)]
    usd: String,
    #[serde(default = "one")]
    uses: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    name: String,
    /// `page` shows the new codes on a page; `csv` answers them as a file.
    #[serde(default)]
    output: String,
}

fn one() -> String {
    "1".into()
}

impl Default for GenerateForm {
    fn default() -> Self {
        GenerateForm {
            count: one(),
            usd: String::new(),
            uses: one(),
            expires: String::new(),
            name: String::new(),
            output: String::new(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/codes.html")]
pub struct CodesPage {
    page: Page,
    batches: Vec<CodeBatchView>,
    /// The batch looked at (Some("") is the batch without a name), with its codes.
    batch: Option<String>,
    codes: Vec<CodeView>,
    /// A batch just made: shown this once.
    new_codes: Vec<NewCodeShown>,
    form: GenerateForm,
    errors: FieldErrors,
}

impl CodesPage {
    fn at(&self, text: &str) -> String {
        local_time(&self.page, text)
    }

    fn batch_href(&self, name: &str) -> String {
        format!("/admin/codes?batch={}", urlencode(name))
    }

    fn batch_label(&self, name: &str) -> String {
        if name.is_empty() {
            self.page.t("admin-codes-unnamed")
        } else {
            name.to_string()
        }
    }

    fn state(&self, code: &CodeView) -> String {
        state_label(&self.page, code.state)
    }

    fn code_href(&self, code: &CodeView) -> String {
        format!("/admin/codes/{}", code.id)
    }

    /// Redemptions of a code of several uses beyond the last one shown in the list.
    fn others(&self, code: &CodeView) -> i64 {
        (code.uses - code.uses_left - 1).max(0)
    }

    fn usable(&self, code: &CodeView) -> bool {
        matches!(code.state, CodeState::Unused | CodeState::PartlyUsed)
    }

    fn usd(&self, code: &CodeView) -> String {
        self.page.usd(&code.amount)
    }
}

fn state_label(page: &Page, state: CodeState) -> String {
    page.t(match state {
        CodeState::Unused => "admin-code-unused",
        CodeState::PartlyUsed => "admin-code-partly-used",
        CodeState::Used => "admin-code-used",
        CodeState::Disabled => "admin-code-disabled",
        CodeState::Expired => "admin-code-expired",
    })
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    batch: Option<String>,
}

/// The page: every batch, and the codes of the one asked for.
async fn codes_page(
    state: &AppState,
    page: Page,
    caller: &Caller,
    batch: Option<String>,
) -> Result<CodesPage, WebError> {
    let (qpu, now) = (page.quota_per_usd, crate::clock::now_ms());
    let all = service::codes::list(&state.ctx, caller, None, None)
        .await
        .map_err(|e| page.failed(e))?;
    let views: Vec<CodeView> = all.iter().map(|c| CodeView::new(c, qpu, now)).collect();
    let batches = CodeBatchView::batches(&views);
    let codes = match &batch {
        Some(name) => views.into_iter().filter(|c| &c.name == name).collect(),
        None => Vec::new(),
    };
    Ok(CodesPage {
        page,
        batches,
        batch,
        codes,
        new_codes: Vec::new(),
        form: GenerateForm::default(),
        errors: FieldErrors::default(),
    })
}

async fn list(
    State(state): State<AppState>,
    admin: AdminPage,
    Query(query): Query<ListQuery>,
) -> Result<CodesPage, WebError> {
    let caller = admin.caller();
    codes_page(&state, admin.page, &caller, query.batch).await
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/code.html")]
pub struct CodePage {
    page: Page,
    code: CodeView,
    redemptions: Vec<RedemptionView>,
    /// Redemptions beyond those listed (a code of very many uses).
    more: i64,
}

impl CodePage {
    fn at(&self, text: &str) -> String {
        local_time(&self.page, text)
    }

    fn batch_href(&self) -> String {
        format!("/admin/codes?batch={}", urlencode(&self.code.name))
    }

    fn batch_label(&self) -> String {
        if self.code.name.is_empty() {
            self.page.t("admin-codes-unnamed")
        } else {
            self.code.name.clone()
        }
    }

    fn state(&self) -> String {
        state_label(&self.page, self.code.state)
    }

    fn usd(&self, amount: &i64) -> String {
        self.page.usd(amount)
    }
}

/// One code: what it is worth, where it stands, and everyone who redeemed it, newest first.
async fn detail(
    State(state): State<AppState>,
    admin: AdminPage,
    Path(id): Path<String>,
) -> Result<CodePage, WebError> {
    let Ok(id) = id.parse::<i64>() else {
        return Err(WebError::not_found(admin.page.lang));
    };
    let caller = admin.caller();
    let page = admin.page;
    let detail = service::codes::detail(&state.ctx, &caller, id)
        .await
        .map_err(|e| page.failed(e))?;
    let author =
        service::users::actor_names(&state.ctx, &caller, [detail.code.created_by.as_str()])
            .await
            .map_err(|e| page.failed(e))?;
    let (qpu, now) = (page.quota_per_usd, crate::clock::now_ms());
    let mut code = CodeView::new(&detail.code, qpu, now);
    if let Some(name) = author.get(&code.created_by) {
        code.created_by = name.clone();
    }
    Ok(CodePage {
        page,
        code,
        redemptions: detail
            .redemptions
            .iter()
            .map(|r| RedemptionView::new(r, qpu))
            .collect(),
        more: detail.more,
    })
}

fn blank(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

async fn generate(
    State(state): State<AppState>,
    admin: AdminPage,
    Posted(form): Posted<GenerateForm>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let page = admin.page;
    let mut errors = FieldErrors::default();
    let count = form.count.trim().parse::<u32>().unwrap_or(0);
    let uses = match blank(&form.uses) {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(uses) => Some(uses),
            Err(_) => {
                errors.add("uses", page.t("admin-people-field-whole-number"));
                None
            }
        },
    };
    let input = CreateCodes {
        count,
        usd: form.usd.trim().to_string(),
        uses,
        expires: blank(&form.expires),
        name: blank(&form.name),
    };
    let made = if errors.is_empty() {
        match service::codes::create(&state.ctx, &caller, input).await {
            Ok(made) => Some(made),
            Err(error) => {
                errors = FieldErrors::from_service(&error, page.lang, &[]);
                None
            }
        }
    } else {
        None
    };
    let Some(made) = made else {
        let mut again = codes_page(&state, page, &caller, None).await?;
        again.form = form;
        again.errors = errors;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, again).into_response());
    };
    if form.output == "csv" {
        return Ok(csv_answer(&form, &made));
    }
    let name = blank(&form.name).unwrap_or_default();
    let mut shown = codes_page(&state, page, &caller, Some(name)).await?;
    shown.new_codes = made;
    Ok((StatusCode::CREATED, shown).into_response())
}

/// A CSV cell: quoted when it holds a separator, a quote or a line break; a leading `=`, `+`,
/// `-` or `@` is kept from a spreadsheet's formulas by a leading `'`.
fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The new batch as a CSV attachment: the only copy there will be (only hashes are kept).
fn csv_answer(form: &GenerateForm, made: &[NewCodeShown]) -> Response {
    let mut body = String::from("code,usd,uses,expires,name\r\n");
    for code in made {
        let cells = [
            code.code.as_str(),
            form.usd.trim(),
            form.uses.trim(),
            form.expires.trim(),
            form.name.trim(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        body.push_str(&line.join(","));
        body.push_str("\r\n");
    }
    let safe_name: String = form
        .name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(60)
        .collect();
    let file = if safe_name.is_empty() {
        "codes.csv".to_string()
    } else {
        format!("codes-{safe_name}.csv")
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}

/// Disables one code (`id`) or a whole batch (`name`): the field names of
/// `POST /api/codes/disable`.
#[derive(Deserialize, Default)]
pub struct DisableForm {
    #[serde(default)]
    id: String,
    name: Option<String>,
}

async fn disable(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Posted(form): Posted<DisableForm>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let page = admin.page;
    let id = form.id.trim().parse::<i64>().ok();
    let batch = form.name.clone().unwrap_or_default();
    // The batch without a name is disabled by its codes' ids alone: an empty name means none.
    let name = form.name.as_deref().filter(|n| !n.trim().is_empty());
    let disabled = service::codes::disable(&state.ctx, &caller, id, name)
        .await
        .map_err(|e| page.failed(e))?;
    flash(
        &session,
        page.t1("admin-codes-disabled", "count", &disabled.to_string()),
    )
    .await?;
    Ok(Redirect::to(&format!("/admin/codes?batch={}", urlencode(&batch))).into_response())
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn csv_cells_are_quoted_and_kept_from_formulas() {
        assert_eq!(csv_cell("tgc-abc"), "tgc-abc");
        assert_eq!(csv_cell("spring, 2027"), "\"spring, 2027\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("-2"), "'-2");
        assert_eq!(csv_cell(""), "");
    }
}
