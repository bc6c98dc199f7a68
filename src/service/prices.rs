use super::{Caller, Ctx, ServiceError, ServiceResult, audit, decimal_err, name_err};
use crate::domain::list_prices;
use crate::domain::money::MicroUsd;
use crate::domain::names;
use crate::domain::price_import::{self, ImportFormat, SkipReason};
use crate::domain::pricing::{MAX_CONTEXT_TOKENS, ModelPrice};
use crate::msg;
use crate::service::db::prices::PriceRow;
use crate::service::db::{self, Db};

/// Prices as typed: dollars per 1M tokens, or dollars per request.
#[derive(Debug, Clone, Default)]
pub struct PriceInput {
    pub input: Option<String>,
    pub output: Option<String>,
    pub cached_input: Option<String>,
    /// Writing the prompt cache.
    pub cache_write: Option<String>,
    pub per_request: Option<String>,
    /// The model's context window in tokens (None: the shipped table's, else the option
    /// `default_context_tokens`).
    pub context_tokens: Option<String>,
}

/// Largest price accepted, in dollars per 1M tokens or per request.
const MAX_PRICE: MicroUsd = MicroUsd(100_000 * 1_000_000);

fn amount(field: &'static str, text: &str) -> ServiceResult<MicroUsd> {
    let value = MicroUsd::parse(text).map_err(decimal_err(field))?;
    if value > MAX_PRICE {
        return Err(ServiceError::invalid(field, msg!("price-too-large")));
    }
    Ok(value)
}

/// A context window as typed: a whole number of tokens, from 1 to
/// [`MAX_CONTEXT_TOKENS`].
pub fn parse_context_tokens(text: &str) -> ServiceResult<i64> {
    const FIELD: &str = "context_tokens";
    let text = text.trim();
    let tokens: i64 = text
        .parse()
        .map_err(|_| ServiceError::invalid(FIELD, msg!("option-not-a-number", value = text)))?;
    if !(1..=MAX_CONTEXT_TOKENS).contains(&tokens) {
        return Err(ServiceError::invalid(
            FIELD,
            msg!("number-between", min = 1_i64, max = MAX_CONTEXT_TOKENS),
        ));
    }
    Ok(tokens)
}

pub fn parse(input: &PriceInput) -> ServiceResult<ModelPrice> {
    match (&input.per_request, &input.input, &input.output) {
        (Some(per_request), None, None)
            if input.cached_input.is_none() && input.cache_write.is_none() =>
        {
            Ok(ModelPrice::PerRequest(amount("per_request", per_request)?))
        }
        (Some(_), _, _) => Err(ServiceError::invalid(
            "per_request",
            msg!("price-per-request-and-tokens"),
        )),
        (None, Some(i), Some(o)) => Ok(ModelPrice::PerToken {
            input: amount("input", i)?,
            output: amount("output", o)?,
            cached_input: input
                .cached_input
                .as_deref()
                .map(|c| amount("cached_input", c))
                .transpose()?,
            cache_write: input
                .cache_write
                .as_deref()
                .map(|c| amount("cache_write", c))
                .transpose()?,
        }),
        (None, None, _) => Err(ServiceError::invalid("input", msg!("price-missing"))),
        (None, Some(_), None) => Err(ServiceError::invalid(
            "output",
            msg!("price-output-missing"),
        )),
    }
}

pub async fn set(
    ctx: &Ctx,
    caller: &Caller,
    model: &str,
    input: &PriceInput,
) -> ServiceResult<PriceRow> {
    caller.require_admin()?;
    let model = names::model_name(model).map_err(name_err("model"))?;
    let price = parse(input)?;
    let context_tokens = input
        .context_tokens
        .as_deref()
        .map(parse_context_tokens)
        .transpose()?;
    let before = find(&ctx.db, &model).await.ok();
    let after = PriceRow {
        model: model.clone(),
        price,
        context_tokens,
        updated_at: 0,
    };
    ctx.write(caller, async |tx| {
        db::prices::upsert(tx, &model, price, context_tokens).await?;
        tx.audit(audit::change(
            "price.set",
            format!("price:{model}"),
            before.as_ref().map(audit::fields::price),
            Some(audit::fields::price(&after)),
            &[],
        ));
        Ok(())
    })
    .await?;
    find(&ctx.db, &model).await
}

pub async fn get(ctx: &Ctx, caller: &Caller, model: &str) -> ServiceResult<PriceRow> {
    caller.require_admin()?;
    find(&ctx.db, model).await
}

async fn find(db: &Db, model: &str) -> ServiceResult<PriceRow> {
    db::prices::list(db)
        .await?
        .into_iter()
        .find(|p| p.model == model)
        .ok_or_else(|| ServiceError::NotFound(msg!("price-not-found", model = model)))
}

pub async fn list(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<PriceRow>> {
    caller.require_admin()?;
    Ok(db::prices::list(&ctx.db).await?)
}

pub async fn delete(ctx: &Ctx, caller: &Caller, model: &str) -> ServiceResult<()> {
    caller.require_admin()?;
    let before = find(&ctx.db, model).await.ok();
    let deleted = ctx
        .write(caller, async |tx| {
            let deleted = db::prices::delete(tx, model).await?;
            tx.audit(audit::change(
                "price.delete",
                format!("price:{model}"),
                before.as_ref().map(audit::fields::price),
                None,
                &[],
            ));
            Ok(deleted)
        })
        .await?;
    if !deleted {
        return Err(ServiceError::NotFound(msg!(
            "price-not-found",
            model = model
        )));
    }
    Ok(())
}

/// The models requests named that have no price: neither one the admin set nor, while the
/// option `list_prices` is on, one from the shipped list-price table. The console lists them
/// first on its price page, since requests for them are refused (or free, when unpriced
/// models are allowed).
pub async fn unpriced_seen(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<String>> {
    caller.require_admin()?;
    let seen = super::logs::models_seen(ctx, caller).await?;
    let priced: std::collections::HashSet<String> = db::prices::list(&ctx.db)
        .await?
        .into_iter()
        .map(|p| p.model)
        .collect();
    let list_prices = super::options::current(&ctx.db).await?.list_prices;
    Ok(seen
        .into_iter()
        .filter(|model| {
            let listed = list_prices && list_prices::shipped().get(model).is_some();
            !model.is_empty() && !priced.contains(model) && !listed
        })
        .collect())
}

/// One model of an import: what it is priced now and what the table says.
#[derive(Debug, Clone)]
pub struct ImportedModel {
    pub model: String,
    pub before: Option<PriceRow>,
    pub price: ModelPrice,
    pub context_tokens: Option<i64>,
}

/// Whether an import changes a model's price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportChange {
    New,
    Changed,
    Unchanged,
}

impl ImportChange {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportChange::New => "new",
            ImportChange::Changed => "changed",
            ImportChange::Unchanged => "unchanged",
        }
    }
}

impl ImportedModel {
    pub fn change(&self) -> ImportChange {
        match &self.before {
            None => ImportChange::New,
            Some(before)
                if before.price == self.price && before.context_tokens == self.context_tokens =>
            {
                ImportChange::Unchanged
            }
            Some(_) => ImportChange::Changed,
        }
    }
}

/// What an import does (or, as a dry run, would do): every model read, against its price
/// now, and the entries left out with the reason.
#[derive(Debug, Clone)]
pub struct PriceImport {
    pub format: ImportFormat,
    pub models: Vec<ImportedModel>,
    pub skipped: Vec<(String, SkipReason)>,
    /// False for a dry run: nothing was stored.
    pub applied: bool,
}

/// Reads another gateway's price table (`format` `oneapi` or `litellm`, `data` its JSON) and
/// compares it with the prices set now; unless `dry_run`, sets every new or changed price in
/// one transaction, each audited as `price.set`. A model the table gives no window keeps the
/// one it has.
pub async fn import(
    ctx: &Ctx,
    caller: &Caller,
    format: &str,
    data: &str,
    dry_run: bool,
) -> ServiceResult<PriceImport> {
    caller.require_admin()?;
    let format = ImportFormat::parse(format).ok_or_else(|| {
        ServiceError::invalid(
            "format",
            msg!(
                "choice-invalid",
                value = format,
                choices = ImportFormat::CHOICES
            ),
        )
    })?;
    let table = price_import::parse(format, data).map_err(|e| {
        ServiceError::invalid(
            "data",
            msg!("price-import-unreadable", reason = e.to_string()),
        )
    })?;
    let now: std::collections::HashMap<String, PriceRow> = db::prices::list(&ctx.db)
        .await?
        .into_iter()
        .map(|p| (p.model.clone(), p))
        .collect();
    let mut skipped = table.skipped;
    let mut models = Vec::with_capacity(table.prices.len());
    for imported in table.prices {
        let model = match names::model_name(&imported.model) {
            Ok(model) => model,
            Err(e) => {
                skipped.push((imported.model, SkipReason::BadName(e.to_string())));
                continue;
            }
        };
        let dearest = match imported.price {
            ModelPrice::PerToken {
                input,
                output,
                cached_input,
                cache_write,
            } => input
                .max(output)
                .max(cached_input.unwrap_or_default())
                .max(cache_write.unwrap_or_default()),
            ModelPrice::PerRequest(price) => price,
        };
        if dearest > MAX_PRICE {
            skipped.push((model, SkipReason::BadNumber(dearest.dollars())));
            continue;
        }
        let before = now.get(&model).cloned();
        let context_tokens = imported
            .context_tokens
            .or_else(|| before.as_ref().and_then(|b| b.context_tokens));
        models.push(ImportedModel {
            model,
            before,
            price: imported.price,
            context_tokens,
        });
    }
    skipped.sort_by(|a, b| a.0.cmp(&b.0));
    let changes: Vec<&ImportedModel> = models
        .iter()
        .filter(|m| m.change() != ImportChange::Unchanged)
        .collect();
    if !dry_run && !changes.is_empty() {
        ctx.write(caller, async |tx| {
            for change in &changes {
                db::prices::upsert(tx, &change.model, change.price, change.context_tokens).await?;
                let after = PriceRow {
                    model: change.model.clone(),
                    price: change.price,
                    context_tokens: change.context_tokens,
                    updated_at: 0,
                };
                tx.audit(audit::change(
                    "price.set",
                    format!("price:{}", change.model),
                    change.before.as_ref().map(audit::fields::price),
                    Some(audit::fields::price(&after)),
                    &[],
                ));
            }
            Ok(())
        })
        .await?;
    }
    Ok(PriceImport {
        format,
        models,
        skipped,
        applied: !dry_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(i: Option<&str>, o: Option<&str>, c: Option<&str>, r: Option<&str>) -> PriceInput {
        PriceInput {
            input: i.map(String::from),
            output: o.map(String::from),
            cached_input: c.map(String::from),
            cache_write: None,
            per_request: r.map(String::from),
            context_tokens: None,
        }
    }

    #[test]
    fn parses_token_and_request_prices() {
        assert_eq!(
            parse(&input(Some("0.15"), Some("0.60"), Some("0.075"), None)).unwrap(),
            ModelPrice::PerToken {
                input: MicroUsd(150_000),
                output: MicroUsd(600_000),
                cached_input: Some(MicroUsd(75_000)),
                cache_write: None,
            }
        );
        assert_eq!(
            parse(&input(None, None, None, Some("0.01"))).unwrap(),
            ModelPrice::PerRequest(MicroUsd(10_000))
        );
        assert!(parse(&input(Some("1"), None, None, None)).is_err());
        assert!(parse(&input(Some("1"), Some("1"), None, Some("1"))).is_err());
        assert!(parse(&input(None, None, None, None)).is_err());
        assert!(parse(&input(Some("-1"), Some("1"), None, None)).is_err());
        assert!(parse(&input(Some("100001"), Some("1"), None, None)).is_err());
    }

    #[test]
    fn context_windows_are_whole_positive_numbers() {
        assert_eq!(parse_context_tokens("128000").unwrap(), 128_000);
        assert_eq!(parse_context_tokens(" 1 ").unwrap(), 1);
        assert_eq!(
            parse_context_tokens("100000000").unwrap(),
            MAX_CONTEXT_TOKENS
        );
        for bad in [
            "0",
            "-5",
            "1.5",
            "lots",
            "",
            "100000001",
            "99999999999999999999",
        ] {
            let error = parse_context_tokens(bad).unwrap_err();
            assert_eq!(error.fields()[0].field, "context_tokens", "{bad}");
        }
    }
}
