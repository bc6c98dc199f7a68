use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Change, Db, DbError, DbResult, Tx, Value, now_ms, text, upsert_sql};
use crate::domain::money::MicroUsd;
use crate::domain::pricing::ModelPrice;
pub use crate::records::prices::PriceRow;

fn from_row(row: &AnyRow) -> DbResult<PriceRow> {
    let model: String = text(row, "model")?;
    let input: Option<i64> = row.try_get("input_price")?;
    let output: Option<i64> = row.try_get("output_price")?;
    let cached: Option<i64> = row.try_get("cached_input_price")?;
    let cache_write: Option<i64> = row.try_get("cache_write_price")?;
    let per_request: Option<i64> = row.try_get("per_request_price")?;
    let price = match (per_request, input, output) {
        (Some(p), _, _) => ModelPrice::PerRequest(MicroUsd(p)),
        (None, Some(i), Some(o)) => ModelPrice::PerToken {
            input: MicroUsd(i),
            output: MicroUsd(o),
            cached_input: cached.map(MicroUsd),
            cache_write: cache_write.map(MicroUsd),
        },
        _ => {
            return Err(DbError::Corrupt(format!(
                "price of '{model}' has no amounts"
            )));
        }
    };
    Ok(PriceRow {
        model,
        price,
        context_tokens: row.try_get("context_tokens")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn list(db: &Db) -> DbResult<Vec<PriceRow>> {
    let rows = sqlx::query(
        "SELECT model, input_price, output_price, cached_input_price, cache_write_price, \
         per_request_price, context_tokens, updated_at \
         FROM prices ORDER BY model",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Sets a model's price and context window (None: the shipped table's, else the default).
pub async fn upsert(
    tx: &mut Tx,
    model: &str,
    price: ModelPrice,
    context_tokens: Option<i64>,
) -> DbResult<()> {
    let (input, output, cached, cache_write, per_request) = match price {
        ModelPrice::PerToken {
            input,
            output,
            cached_input,
            cache_write,
        } => (
            Some(input.0),
            Some(output.0),
            cached_input.map(|c| c.0),
            cache_write.map(|c| c.0),
            None,
        ),
        ModelPrice::PerRequest(p) => (None, None, None, None, Some(p.0)),
    };
    let sql = upsert_sql(
        tx.backend(),
        "prices",
        &[
            "model",
            "input_price",
            "output_price",
            "cached_input_price",
            "cache_write_price",
            "per_request_price",
            "context_tokens",
            "updated_at",
        ],
        &["model"],
    );
    tx.execute(
        &sql,
        &[
            Value::Text(model.to_string()),
            Value::OptInt(input),
            Value::OptInt(output),
            Value::OptInt(cached),
            Value::OptInt(cache_write),
            Value::OptInt(per_request),
            Value::OptInt(context_tokens),
            Value::Int(now_ms()),
        ],
    )
    .await?;
    tx.changed(Change::Price(model.to_string()));
    Ok(())
}

pub async fn delete(tx: &mut Tx, model: &str) -> DbResult<bool> {
    let changed = tx
        .execute(
            "DELETE FROM prices WHERE model = ?",
            &[Value::Text(model.to_string())],
        )
        .await?;
    tx.changed(Change::Price(model.to_string()));
    Ok(changed > 0)
}
