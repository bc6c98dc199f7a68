//! `/admin`: the console's overview.

use askama::Template;
use askama_web::WebTemplate;

use super::AdminPage;
use crate::web::page::Page;

#[derive(Template, WebTemplate)]
#[template(path = "admin/overview.html")]
pub struct OverviewPage {
    page: Page,
}

pub async fn page(admin: AdminPage) -> OverviewPage {
    OverviewPage { page: admin.page }
}
