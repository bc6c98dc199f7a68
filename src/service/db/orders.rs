//! Stripe top-up orders, their disputes, and the Stripe events applied to them (see migrations
//! 0013 and 0014). Every state change is a conditional update whose row count the caller
//! checks.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, DbResult, Tx, Value, now_ms, opt_text, text};
use crate::domain::kinds::OrderStatus;
pub use crate::records::orders::OrderRow;

const COLUMNS: &str = "o.id, o.user_id, u.username, o.status, o.usd_micros, o.quota, o.bonus, \
     o.amount, o.currency, o.session_id, o.checkout_url, o.payment_intent, o.expires_at, \
     o.credited, o.refunded, o.disputed, o.refund_taken, o.dispute_taken, o.note, o.created_at, \
     o.updated_at, o.paid_at, o.org_id, g.slug AS org_slug";
const FROM: &str =
    "topup_orders o JOIN users u ON u.id = o.user_id LEFT JOIN orgs g ON g.id = o.org_id";
/// What `note` holds at most (its column is 512 characters): a longer one is cut.
const NOTE_CHARS: usize = 500;

fn from_row(row: &AnyRow) -> DbResult<OrderRow> {
    let status: String = text(row, "status")?;
    Ok(OrderRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        username: text(row, "username")?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| DbError::Corrupt(format!("order status '{status}'")))?,
        usd_micros: row.try_get("usd_micros")?,
        quota: row.try_get("quota")?,
        bonus: row.try_get("bonus")?,
        amount: row.try_get("amount")?,
        currency: text(row, "currency")?,
        session_id: opt_text(row, "session_id")?,
        checkout_url: opt_text(row, "checkout_url")?,
        payment_intent: opt_text(row, "payment_intent")?,
        expires_at: row.try_get("expires_at")?,
        credited: row.try_get("credited")?,
        refunded: row.try_get("refunded")?,
        disputed: row.try_get("disputed")?,
        refund_taken: row.try_get("refund_taken")?,
        dispute_taken: row.try_get("dispute_taken")?,
        note: text(row, "note")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        paid_at: row.try_get("paid_at")?,
        org_id: row.try_get("org_id")?,
        org_slug: opt_text(row, "org_slug")?,
    })
}

/// An order to write before any payment exists.
pub struct NewOrder<'a> {
    pub user_id: i64,
    /// The organisation whose wallet the payment credits; 0 for the purchaser's own balance.
    pub org_id: i64,
    pub usd_micros: i64,
    pub quota: i64,
    pub bonus: i64,
    pub amount: i64,
    pub currency: &'a str,
    /// The form's one-time value: a second submission of the same form finds this order.
    pub request_key: &'a str,
}

/// Writes a pending order; `DbError::Conflict` when the account already has one for
/// `request_key`.
pub async fn insert(tx: &mut Tx, order: &NewOrder<'_>) -> DbResult<i64> {
    let now = now_ms();
    tx.insert_returning_id(
        "INSERT INTO topup_orders (user_id, org_id, status, usd_micros, quota, bonus, amount, \
         currency, request_key, created_at, updated_at) \
         VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            Value::Int(order.user_id),
            Value::Int(order.org_id),
            Value::Int(order.usd_micros),
            Value::Int(order.quota),
            Value::Int(order.bonus),
            Value::Int(order.amount),
            Value::Text(order.currency.to_string()),
            Value::Text(order.request_key.to_string()),
            Value::Int(now),
            Value::Int(now),
        ],
    )
    .await
}

async fn one(db: &Db, filter: &str, values: &[Value]) -> DbResult<Option<OrderRow>> {
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE {filter}");
    db.fetch_all_with(&sql, values)
        .await?
        .first()
        .map(from_row)
        .transpose()
}

pub async fn find(db: &Db, id: i64) -> DbResult<Option<OrderRow>> {
    one(db, "o.id = ?", &[Value::Int(id)]).await
}

/// The order only when `user_id` owns it.
pub async fn find_owned(db: &Db, user_id: i64, id: i64) -> DbResult<Option<OrderRow>> {
    one(
        db,
        "o.id = ? AND o.user_id = ?",
        &[Value::Int(id), Value::Int(user_id)],
    )
    .await
}

pub async fn by_request_key(db: &Db, user_id: i64, key: &str) -> DbResult<Option<OrderRow>> {
    one(
        db,
        "o.user_id = ? AND o.request_key = ?",
        &[Value::Int(user_id), Value::Text(key.to_string())],
    )
    .await
}

pub async fn by_session(db: &Db, session_id: &str) -> DbResult<Option<OrderRow>> {
    one(
        db,
        "o.session_id = ?",
        &[Value::Text(session_id.to_string())],
    )
    .await
}

pub async fn by_payment_intent(db: &Db, payment_intent: &str) -> DbResult<Option<OrderRow>> {
    one(
        db,
        "o.payment_intent = ?",
        &[Value::Text(payment_intent.to_string())],
    )
    .await
}

/// Locks the order's row for the rest of the transaction and reads it: concurrent events for
/// one order then apply one after another, each seeing what the previous one committed (the
/// lock comes before the transaction's first read, so MySQL's snapshot starts after it).
pub async fn lock(tx: &mut Tx, id: i64) -> DbResult<Option<OrderRow>> {
    tx.execute(
        "UPDATE topup_orders SET updated_at = ? WHERE id = ?",
        &[Value::Int(now_ms()), Value::Int(id)],
    )
    .await?;
    find_in(tx, id).await
}

/// The order's row as the transaction sees it (after its own changes).
pub async fn find_in(tx: &mut Tx, id: i64) -> DbResult<Option<OrderRow>> {
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE o.id = ?");
    tx.fetch_all(&sql, &[Value::Int(id)])
        .await?
        .first()
        .map(from_row)
        .transpose()
}

/// Orders, newest first; one account's (or one organisation's wallet's), and in one state, when
/// asked.
pub async fn list(
    db: &Db,
    owner: OrdersOf,
    status: Option<OrderStatus>,
    limit: i64,
) -> DbResult<Vec<OrderRow>> {
    let mut filters = Vec::new();
    let mut values = Vec::new();
    match owner {
        OrdersOf::Everyone => {}
        OrdersOf::User(user_id) => {
            filters.push("o.user_id = ?");
            values.push(Value::Int(user_id));
        }
        OrdersOf::Org(org_id) => {
            filters.push("o.org_id = ?");
            values.push(Value::Int(org_id));
        }
    }
    if let Some(status) = status {
        filters.push("o.status = ?");
        values.push(Value::Text(status.as_str().to_string()));
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    };
    values.push(Value::Int(limit.clamp(1, 10_000)));
    let sql = format!("SELECT {COLUMNS} FROM {FROM}{filter} ORDER BY o.id DESC LIMIT ?");
    db.fetch_all_with(&sql, &values)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Whose orders a list holds.
#[derive(Clone, Copy, Debug)]
pub enum OrdersOf {
    Everyone,
    /// What one person bought, for themselves or an organisation.
    User(i64),
    /// What was bought for one organisation's wallet, by whoever.
    Org(i64),
}

/// How many of the organisation's orders are still open (pending payment, or held for an
/// administrator): money may yet arrive for its wallet.
pub async fn open_for_org(tx: &mut Tx, org_id: i64) -> DbResult<i64> {
    let rows = tx
        .fetch_all(
            "SELECT COUNT(*) AS n FROM topup_orders WHERE org_id = ? \
             AND status IN ('pending', 'held')",
            &[Value::Int(org_id)],
        )
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| DbError::Corrupt("no count row".into()))?;
    Ok(row.try_get("n")?)
}

/// Pending orders made before `before_ms`, oldest first: what reconciliation asks Stripe about.
pub async fn pending_before(db: &Db, before_ms: i64, limit: i64) -> DbResult<Vec<OrderRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE o.status = 'pending' AND o.created_at < ? \
         ORDER BY o.id LIMIT ?"
    );
    db.fetch_all_with(&sql, &[Value::Int(before_ms), Value::Int(limit)])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Held orders of deleted accounts (or, for an organisation's wallet, deleted organisations)
/// whose payment has not been refunded yet: each is to be refunded through Stripe (asked again
/// each round until Stripe's refund event arrives).
pub async fn held_for_deleted_accounts(db: &Db, limit: i64) -> DbResult<Vec<OrderRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE o.status = 'held' AND o.refunded = 0 \
         AND o.credited = 0 AND o.payment_intent IS NOT NULL \
         AND (u.deleted_at IS NOT NULL OR (o.org_id <> 0 AND g.id IS NULL)) \
         ORDER BY o.id LIMIT ?"
    );
    db.fetch_all_with(&sql, &[Value::Int(limit)])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// How many pending orders the account has, and the dollars (millionths) of its pending and
/// paid orders made since `since_ms`: the per-person limits, read in the transaction that
/// writes the next order.
pub async fn recent_totals(tx: &mut Tx, user_id: i64, since_ms: i64) -> DbResult<(i64, i64)> {
    let total = match tx.backend() {
        super::Backend::MySql => "CAST(COALESCE(SUM(usd_micros), 0) AS SIGNED)",
        _ => "CAST(COALESCE(SUM(usd_micros), 0) AS BIGINT)",
    };
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM topup_orders WHERE user_id = ? AND status = 'pending') \
         AS pending, (SELECT {total} FROM topup_orders WHERE user_id = ? AND created_at >= ? \
         AND status IN ('pending', 'paid', 'held')) AS recent"
    );
    let rows = tx
        .fetch_all(
            &sql,
            &[
                Value::Int(user_id),
                Value::Int(user_id),
                Value::Int(since_ms),
            ],
        )
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| DbError::Corrupt("no totals row".into()))?;
    Ok((row.try_get("pending")?, row.try_get("recent")?))
}

/// Records the Checkout Session made for a pending order that has none yet.
pub async fn set_session(
    tx: &mut Tx,
    id: i64,
    session_id: &str,
    url: &str,
    expires_at: i64,
) -> DbResult<bool> {
    Ok(tx
        .execute(
            "UPDATE topup_orders SET session_id = ?, checkout_url = ?, expires_at = ?, \
             updated_at = ? WHERE id = ? AND session_id IS NULL",
            &[
                Value::Text(session_id.to_string()),
                Value::Text(url.to_string()),
                Value::Int(expires_at),
                Value::Int(now_ms()),
                Value::Int(id),
            ],
        )
        .await?
        == 1)
}

/// Moves an order from one of `from` to `to`, with its payment and note; false when it was in
/// none of them (another delivery got there first).
pub async fn transition(
    tx: &mut Tx,
    id: i64,
    from: &[OrderStatus],
    to: OrderStatus,
    change: &Transition<'_>,
) -> DbResult<bool> {
    let placeholders = vec!["?"; from.len()].join(", ");
    let sql = format!(
        "UPDATE topup_orders SET status = ?, credited = credited + ?, \
         payment_intent = COALESCE(?, payment_intent), session_id = COALESCE(session_id, ?), \
         note = ?, paid_at = COALESCE(?, paid_at), updated_at = ? \
         WHERE id = ? AND status IN ({placeholders})"
    );
    let mut values = vec![
        Value::Text(to.as_str().to_string()),
        Value::Int(change.credit),
        Value::OptText(change.payment_intent.map(str::to_string)),
        Value::OptText(change.session_id.map(str::to_string)),
        Value::Text(change.note.chars().take(NOTE_CHARS).collect()),
        Value::OptInt(change.paid_at),
        Value::Int(now_ms()),
        Value::Int(id),
    ];
    values.extend(from.iter().map(|s| Value::Text(s.as_str().to_string())));
    Ok(tx.execute(&sql, &values).await? == 1)
}

/// What a state change brings with it.
#[derive(Default)]
pub struct Transition<'a> {
    /// Quota credited now.
    pub credit: i64,
    pub payment_intent: Option<&'a str>,
    /// The session, when the order did not know it yet (its creation was cut short).
    pub session_id: Option<&'a str>,
    pub note: &'a str,
    pub paid_at: Option<i64>,
}

/// Raises the cumulative refunded amount to `refunded` and adds `taken` to what refunds took
/// back; false when the order already knew of as much (an older or repeated event).
pub async fn record_refund(tx: &mut Tx, id: i64, refunded: i64, taken: i64) -> DbResult<bool> {
    Ok(tx
        .execute(
            "UPDATE topup_orders SET refunded = ?, refund_taken = refund_taken + ?, \
             updated_at = ? WHERE id = ? AND refunded < ?",
            &[
                Value::Int(refunded),
                Value::Int(taken),
                Value::Int(now_ms()),
                Value::Int(id),
                Value::Int(refunded),
            ],
        )
        .await?
        == 1)
}

/// Adds (a dispute opened) or removes (a dispute won) a disputed amount and the quota it took.
pub async fn record_dispute(tx: &mut Tx, id: i64, disputed: i64, taken: i64) -> DbResult<()> {
    tx.execute(
        "UPDATE topup_orders SET disputed = disputed + ?, dispute_taken = dispute_taken + ?, \
         updated_at = ? WHERE id = ?",
        &[
            Value::Int(disputed),
            Value::Int(taken),
            Value::Int(now_ms()),
            Value::Int(id),
        ],
    )
    .await?;
    Ok(())
}

/// Records a dispute as it opened, with its amount in smallest units (once: the caller has
/// just written the dispute's ledger row, whose key is unique).
pub async fn insert_dispute(tx: &mut Tx, id: &str, order_id: i64, amount: i64) -> DbResult<()> {
    tx.execute(
        "INSERT INTO topup_disputes (id, order_id, amount, created_at) VALUES (?, ?, ?, ?)",
        &[
            Value::Text(id.to_string()),
            Value::Int(order_id),
            Value::Int(amount),
            Value::Int(now_ms()),
        ],
    )
    .await?;
    Ok(())
}

/// The amount a dispute opened with, when it was recorded (disputes opened before migration
/// 0014 were not).
pub async fn dispute_amount(tx: &mut Tx, id: &str) -> DbResult<Option<i64>> {
    let rows = tx
        .fetch_all(
            "SELECT amount FROM topup_disputes WHERE id = ?",
            &[Value::Text(id.to_string())],
        )
        .await?;
    rows.first()
        .map(|row| row.try_get("amount"))
        .transpose()
        .map_err(DbError::from)
}

/// Whether the account has a paid top-up of its own balance other than `except` that is not
/// taken back in full. (What a person paid into an organisation's wallet is not their top-up.)
pub async fn has_other_standing(tx: &mut Tx, user_id: i64, except: i64) -> DbResult<bool> {
    let rows = tx
        .fetch_all(
            "SELECT id FROM topup_orders WHERE user_id = ? AND org_id = 0 AND id <> ? \
             AND status = 'paid' AND credited > refund_taken + dispute_taken LIMIT 1",
            &[Value::Int(user_id), Value::Int(except)],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// A Stripe event as recorded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EventRow {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub order_id: Option<i64>,
    pub outcome: String,
    pub created_at: i64,
}

/// Records an event by its id, first thing in the transaction that applies it; false when it
/// was recorded before (this delivery is a repeat: the caller changes nothing). A concurrent
/// delivery of the same event waits here for the first to commit or roll back. The refused
/// insert is undone to a savepoint, which keeps a PostgreSQL transaction usable.
pub async fn record_event(
    tx: &mut Tx,
    id: &str,
    kind: &str,
    order_id: Option<i64>,
) -> DbResult<bool> {
    tx.execute_raw("SAVEPOINT stripe_event").await?;
    let inserted = tx
        .execute(
            "INSERT INTO stripe_events (id, type, order_id, outcome, created_at) \
             VALUES (?, ?, ?, 'received', ?)",
            &[
                Value::Text(id.to_string()),
                Value::Text(kind.to_string()),
                Value::OptInt(order_id),
                Value::Int(now_ms()),
            ],
        )
        .await;
    match inserted {
        Ok(_) => {
            tx.execute_raw("RELEASE SAVEPOINT stripe_event").await?;
            Ok(true)
        }
        Err(DbError::Conflict(_)) => {
            tx.execute_raw("ROLLBACK TO SAVEPOINT stripe_event").await?;
            tx.execute_raw("RELEASE SAVEPOINT stripe_event").await?;
            Ok(false)
        }
        Err(other) => Err(other),
    }
}

/// What applying the event did.
pub async fn set_event_outcome(tx: &mut Tx, id: &str, outcome: &str) -> DbResult<()> {
    tx.execute(
        "UPDATE stripe_events SET outcome = ? WHERE id = ?",
        &[
            Value::Text(outcome.to_string()),
            Value::Text(id.to_string()),
        ],
    )
    .await?;
    Ok(())
}

pub async fn events_of(db: &Db, order_id: i64) -> DbResult<Vec<EventRow>> {
    db.fetch_all_with(
        "SELECT id, type, order_id, outcome, created_at FROM stripe_events WHERE order_id = ? \
         ORDER BY created_at, id",
        &[Value::Int(order_id)],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(EventRow {
            id: text(row, "id")?,
            kind: text(row, "type")?,
            order_id: row.try_get("order_id")?,
            outcome: text(row, "outcome")?,
            created_at: row.try_get("created_at")?,
        })
    })
    .collect()
}
