//! An organisation's wallet: its balance, what it spent in all, the ledger's history (for its
//! admins), and how money gets into it.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::{OrgFrame, load};
use crate::records::ledger::Entry;
use crate::service::orgs;
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{Page, SignedIn};

/// Ledger rows shown.
const ENTRIES_SHOWN: i64 = 100;

#[derive(Template, WebTemplate)]
#[template(path = "orgs/wallet.html")]
pub struct WalletPage {
    page: Page,
    frame: OrgFrame,
    balance: i64,
    used: i64,
    /// The history, for those who may read it (the organisation's admins).
    entries: Option<Vec<Entry>>,
    /// The command that tops the wallet up, for the site's administrators.
    command: String,
}

impl WalletPage {
    fn kind(&self, entry: &Entry) -> String {
        self.page.t(crate::web::format::ledger_key(entry.kind))
    }
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let (view, frame) = load(&state, &page, &user, &slug, "wallet").await?;
    let entries = if frame.manages {
        Some(
            orgs::ledger(&state.ctx, &user.caller(), &view.slug, ENTRIES_SHOWN)
                .await
                .map_err(|e| page.failed(e))?,
        )
    } else {
        None
    };
    Ok(WalletPage {
        balance: view.quota,
        used: view.used_quota,
        entries,
        command: format!(
            "tollgate org topup {} --usd 100 --reason \"Invoice 2026-12\"",
            view.slug
        ),
        frame,
        page,
    }
    .into_response())
}
