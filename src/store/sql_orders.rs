// The order use cases, compiled once per backend like `sql_impl.rs` (which
// is included first and provides the helpers used here): intake with an
// all-or-nothing FEFO reservation, cancellation, and reads.

#[derive(sqlx::FromRow)]
struct OrderRow {
    order_no: String,
    state: String,
    trade_mode: String,
    ebp_code: String,
    ebc_code: String,
    cop_no: String,
    buyer_name: String,
    buyer_id_masked: String,
    buyer_phone_masked: String,
    consignee_name: String,
    consignee_phone_masked: String,
    consignee_address: String,
    goods_value_fen: i64,
    freight_fen: i64,
    discount_fen: i64,
    tax_fen: i64,
    actual_paid_fen: i64,
    warnings: String,
    created_at: DateTime<Utc>,
    cancelled_at: Option<DateTime<Utc>>,
    cancel_reason: Option<String>,
    wave_no: Option<String>,
    tote: Option<String>,
    exception_reason: Option<String>,
}

/// line_no, lock id, bin, batch, expiry, qty, lock state
type AllocationRow = (i64, i64, String, String, Option<NaiveDate>, i64, String);
/// id, order_no, state, paid (fen), lines, units, created
type OrderSummaryRow = (
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<String>,
);

fn money(fen: i64) -> StoreResult<crate::domain::Money> {
    crate::domain::Money::from_fen(fen).map_err(|e| StoreError::Corrupt(format!("amount: {e}")))
}

/// A holding an order line may take from, as [`fefo_candidates`] reads it.
#[derive(sqlx::FromRow)]
struct FefoRow {
    sku_id: i64,
    location_id: i64,
    lot_id: i64,
    bin: String,
    walk_seq: i64,
    batch: String,
    expiry: Option<NaiveDate>,
    available: i64,
}

/// The holdings the given SKUs' lines may take from, in one read: available
/// units in active storage or pick bins (never quarantine, inspection,
/// defective, dock or pack, and not from a bin waiting to be counted after a
/// short pick). On PostgreSQL the rows stay locked until the transaction
/// commits, so two orders for the same SKU allocate one after the other;
/// every caller locks them in one fixed order (SKU, location, lot), so
/// lockers cannot deadlock.
async fn fefo_candidates(tx: &mut Tx, sku_ids: &[i64]) -> StoreResult<Vec<FefoRow>> {
    let mut ids = sku_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT h.sku_id, h.location_id, h.lot_id, l.code AS bin, l.walk_seq, lot.batch, lot.expiry, h.available
         FROM holdings h JOIN locations l ON l.id = h.location_id JOIN lots lot ON lot.id = h.lot_id
         WHERE h.sku_id IN ({}) AND h.available > 0 AND l.kind IN ('storage', 'pick') AND l.active = $1
           AND NOT EXISTS (SELECT 1 FROM count_requests c
                           WHERE c.sku_id = h.sku_id AND c.location_id = h.location_id AND c.closed_at IS NULL)
         ORDER BY h.sku_id, h.location_id, h.lot_id{}",
        numbered("?", ids.len(), 2),
        for_update!("h")
    );
    let mut q = sqlx::query_as::<_, FefoRow>(&sql).bind(true);
    for id in &ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(&mut **tx).await?)
}

/// The SKUs of an order's lines, in one read, by code: (id, record status).
async fn skus_by_code(
    tx: &mut Tx,
    codes: &[&str],
) -> StoreResult<BTreeMap<String, (i64, RecordStatus)>> {
    let mut out = BTreeMap::new();
    for chunk in codes.chunks(INSERT_ROWS_MAX) {
        let sql = format!(
            "SELECT code, id, record_status FROM skus WHERE code IN ({})",
            numbered("?", chunk.len(), 1)
        );
        let mut q = sqlx::query_as::<_, (String, i64, String)>(&sql);
        for c in chunk {
            q = q.bind(*c);
        }
        for (code, id, status) in q.fetch_all(&mut **tx).await? {
            let status = RecordStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("record status {status}")))?;
            out.insert(code, (id, status));
        }
    }
    Ok(out)
}

async fn order_view(tx: &mut Tx, order_id: i64) -> StoreResult<OrderView> {
    let o: OrderRow = sqlx::query_as(
        "SELECT order_no, state, trade_mode, ebp_code, ebc_code, cop_no, buyer_name, buyer_id_masked,
                buyer_phone_masked, consignee_name, consignee_phone_masked, consignee_address, goods_value_fen,
                freight_fen, discount_fen, tax_fen, actual_paid_fen, warnings, o.created_at, cancelled_at, cancel_reason,
                w.wave_no, tote, exception_reason
         FROM orders o LEFT JOIN waves w ON w.id = o.wave_id WHERE o.id = $1",
    )
    .bind(order_id)
    .fetch_one(&mut **tx)
    .await?;
    let lines: Vec<(i64, String, i64, i64)> = sqlx::query_as(
        "SELECT ol.line_no, s.code, ol.qty, ol.unit_price_fen FROM order_lines ol JOIN skus s ON s.id = ol.sku_id
         WHERE ol.order_id = $1 ORDER BY ol.line_no",
    )
    .bind(order_id)
    .fetch_all(&mut **tx)
    .await?;
    let allocs: Vec<AllocationRow> = sqlx::query_as(
        "SELECT a.line_no, k.id, l.code, lot.batch, lot.expiry, k.qty, k.state
         FROM order_allocations a JOIN locks k ON k.id = a.lock_id JOIN locations l ON l.id = k.location_id
         JOIN lots lot ON lot.id = k.lot_id
         WHERE a.order_id = $1",
    )
    .bind(order_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut line_views = Vec::with_capacity(lines.len());
    for (line_no, sku, qty, price) in lines {
        let mut allocations = allocs
            .iter()
            .filter(|a| a.0 == line_no)
            .map(|a| {
                Ok(AllocationView {
                    lock_id: a.1,
                    bin: a.2.clone(),
                    batch: a.3.clone(),
                    expiry: a.4,
                    qty: a.5,
                    state: LockState::parse(&a.6)
                        .ok_or_else(|| StoreError::Corrupt(format!("lock state {}", a.6)))?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        AllocationView::sort(&mut allocations);
        line_views.push(OrderLineView {
            line_no,
            sku,
            qty,
            unit_price: money(price)?,
            allocations,
        });
    }
    Ok(OrderView {
        order_no: o.order_no,
        state: crate::domain::OrderState::parse(&o.state)
            .ok_or_else(|| StoreError::Corrupt(format!("order state {}", o.state)))?,
        trade_mode: crate::domain::TradeMode::parse(&o.trade_mode)
            .ok_or_else(|| StoreError::Corrupt(format!("trade mode {}", o.trade_mode)))?,
        ebp_code: o.ebp_code,
        ebc_code: o.ebc_code,
        cop_no: o.cop_no,
        buyer: PartyView {
            name: o.buyer_name,
            id_number: Some(o.buyer_id_masked),
            phone: o.buyer_phone_masked,
            address: None,
        },
        consignee: PartyView {
            name: o.consignee_name,
            id_number: None,
            phone: o.consignee_phone_masked,
            address: Some(o.consignee_address),
        },
        goods_value: money(o.goods_value_fen)?,
        freight: money(o.freight_fen)?,
        discount: money(o.discount_fen)?,
        tax: money(o.tax_fen)?,
        actual_paid: money(o.actual_paid_fen)?,
        lines: line_views,
        warnings: serde_json::from_str(&o.warnings)
            .map_err(|e| StoreError::Corrupt(format!("warnings: {e}")))?,
        created_at: o.created_at,
        cancelled_at: o.cancelled_at,
        cancel_reason: o.cancel_reason,
        wave_no: o.wave_no,
        tote: o.tote,
        exception_reason: o.exception_reason,
    })
}

impl SqlStore {
    /// Takes an order and reserves stock for every line, earliest expiry
    /// first, or reserves nothing and says per line what is short. With
    /// group commit the order waits in the intake queue and is taken with
    /// whatever orders queued beside it ([`orders_in`]); otherwise alone, in
    /// its own transaction.
    pub async fn create_order(
        &self,
        actor: &Actor,
        input: &OrderInput,
        ctx: &OrderContext,
    ) -> StoreResult<OrderView> {
        let req = (actor.clone(), input.clone(), ctx.clone());
        if let Some(intake) = &self.intake {
            return intake.take(req).await;
        }
        for _ in 0..IDEMPOTENCY_ATTEMPTS {
            let mut tx = self.write.begin().await?;
            match one_order_in(&mut tx, &req).await? {
                Some(Ok(view)) => {
                    tx.commit().await?;
                    return Ok(view);
                }
                Some(Err(e)) => return Err(e),
                // Claimed by a transaction not committed yet: read its answer.
                None => continue,
            }
        }
        Err(StoreError::Contended)
    }

    pub async fn get_order(&self, order_no: &str) -> StoreResult<OrderView> {
        let mut tx = self.read.begin().await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM orders WHERE order_no = $1")
            .bind(order_no)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("order {order_no}")))?;
        order_view(&mut tx, id).await
    }

    /// Cancels an order and releases exactly the stock reserved for it. A
    /// repeated cancellation answers with the cancelled order.
    pub async fn cancel_order(
        &self,
        actor: &Actor,
        order_no: &str,
        reason: &str,
    ) -> StoreResult<OrderView> {
        let mut tx = self.write.begin().await?;
        let at = now();
        let row: Option<(i64, String)> = sqlx::query_as(concat!(
            "SELECT id, state FROM orders WHERE order_no = $1",
            for_update!()
        ))
        .bind(order_no)
        .fetch_optional(&mut *tx)
        .await?;
        let (id, state) = row.ok_or_else(|| StoreError::NotFound(format!("order {order_no}")))?;
        let state = crate::domain::OrderState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("order state {state}")))?;
        if state == crate::domain::OrderState::Cancelled {
            return order_view(&mut tx, id).await;
        }
        if !state.cancellable() {
            return Err(StoreError::Invalid(format!(
                "order {order_no} is {state} and can no longer be cancelled"
            )));
        }
        // A parcel the gate is letting out right now may already be through
        // it: releasing its stock now would book goods that left as still
        // here. The gate's answer decides; a fault cancels it then if
        // customs still says so (`gate_output`).
        let leaving: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM gate_decisions
             WHERE order_id = $1 AND decision = 'open' AND output = 'pending' LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(decision) = leaving {
            return Err(StoreError::Conflict {
                code: "exit_in_progress",
                detail: format!(
                    "order {order_no} is leaving through a gate right now (decision {decision}); it can be cancelled once the gate has answered"
                ),
            });
        }
        cancel_order_in(&mut tx, actor, at, id, order_no, reason).await?;
        let view = order_view(&mut tx, id).await?;
        tx.commit().await?;
        Ok(view)
    }

    pub async fn list_orders(&self, q: &OrderQuery) -> StoreResult<Vec<OrderSummary>> {
        let rows: Vec<OrderSummaryRow> = sqlx::query_as(
            "SELECT o.id, o.order_no, o.state, o.actual_paid_fen, COUNT(ol.line_no), CAST(COALESCE(SUM(ol.qty), 0) AS BIGINT),
                    o.created_at, COALESCE(o.state_at, o.created_at),
                    CASE o.state WHEN 'cancelled' THEN o.cancel_reason WHEN 'exception' THEN o.exception_reason END
             FROM orders o LEFT JOIN order_lines ol ON ol.order_id = o.id
             WHERE ($1 IS NULL OR o.state = $1) AND ($2 IS NULL OR o.id < $2)
             GROUP BY o.id, o.order_no, o.state, o.actual_paid_fen, o.created_at, o.state_at, o.exception_reason,
                      o.cancel_reason
             ORDER BY o.id DESC LIMIT $3",
        )
        .bind(&q.state)
        .bind(q.before_id)
        .bind(q.limit.unwrap_or(100).clamp(1, MOVEMENT_PAGE_MAX))
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(
                |(id, order_no, state, paid, lines, units, created_at, state_at, reason)| {
                    Ok(OrderSummary {
                        id,
                        order_no,
                        state: crate::domain::OrderState::parse(&state)
                            .ok_or_else(|| StoreError::Corrupt(format!("order state {state}")))?,
                        actual_paid: money(paid)?,
                        lines,
                        units,
                        created_at,
                        state_at,
                        reason,
                    })
                },
            )
            .collect()
    }

    /// Whether a reservation serves an order (and so is released only by
    /// cancelling that order).
    pub async fn lock_order(&self, lock_id: i64) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT o.order_no FROM order_allocations a JOIN orders o ON o.id = a.order_id WHERE a.lock_id = $1",
        )
        .bind(lock_id)
        .fetch_optional(&self.read)
        .await?)
    }
}

/// Cancels order `id` inside `tx`: releases every reservation, cancels its
/// open pick tasks, its label and weight exception, and records why.
pub(crate) async fn cancel_order_in(
    tx: &mut Tx,
    actor: &Actor,
    at: DateTime<Utc>,
    id: i64,
    order_no: &str,
    reason: &str,
) -> StoreResult<()> {
    let locks: Vec<i64> = sqlx::query_scalar(
        "SELECT lock_id FROM order_allocations WHERE order_id = $1 ORDER BY lock_id",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    for lock_id in locks {
        close_lock_in(tx, actor, at, lock_id, None, Some(reason)).await?;
    }
    // Pickers walking this order are sent on to their next task; goods
    // already in its tote are released there, for putting back.
    sqlx::query(
        "UPDATE pick_tasks SET state = 'cancelled', updated_at = $1
         WHERE order_id = $2 AND state IN ('open', 'assigned', 'in_progress')",
    )
    .bind(at)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    // A cancelled parcel gets no label, and its weight exception is closed.
    cancel_packing(tx, actor, at, id).await?;
    sqlx::query("UPDATE orders SET state = 'cancelled', cancelled_at = $1, state_at = $1, cancel_reason = $2 WHERE id = $3")
        .bind(at)
        .bind(reason)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    audit(tx, actor, "order.cancel", order_no, &reason).await?;
    Ok(())
}

/// An order to take: who sends it, the order, and what intake derived.
type OrderRequest = (Actor, OrderInput, OrderContext);

/// An order waiting in the intake queue, with the way back to its caller.
type Queued = (
    OrderRequest,
    tokio::sync::oneshot::Sender<StoreResult<OrderView>>,
);

/// The most orders taken together in one group.
const INTAKE_GROUP_MAX: usize = crate::store::batch::BATCH_MAX;

/// One order's reservations as planned: (line index, candidate row, units).
type OrderTakes = Vec<(usize, usize, i64)>;

/// The orders queued for the group-commit writer. One task takes whatever
/// orders are queued (at most [`INTAKE_GROUP_MAX`], never waiting for more)
/// and hands them to the writer as one unit, [`orders_in`]: a group of 64
/// orders costs the statements of one. Orders a group cannot settle (the
/// same number twice, a key another session holds) and the orders of a
/// group whose statements fail are then taken one by one, each in its own
/// unit, so one bad order cannot sink the others.
#[derive(Clone)]
struct Intake {
    queue: tokio::sync::mpsc::Sender<Queued>,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake").finish_non_exhaustive()
    }
}

impl Intake {
    fn start(batch: Batcher<Pool>) -> Intake {
        let (queue, rx) = tokio::sync::mpsc::channel(1_024);
        tokio::spawn(intake_groups(batch, rx));
        Intake { queue }
    }

    async fn take(&self, req: OrderRequest) -> StoreResult<OrderView> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || StoreError::NotCommitted("the order intake has stopped".into());
        self.queue.send((req, reply)).await.map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

async fn intake_groups(batch: Batcher<Pool>, mut rx: tokio::sync::mpsc::Receiver<Queued>) {
    // The group before, until the writer starts on it.
    let mut waiting: Option<tokio::sync::oneshot::Receiver<()>> = None;
    while let Some(first) = rx.recv().await {
        // Only one group waits for the writer at a time: what arrives while
        // it waits (and while the batch before it commits) forms the next
        // group, so groups grow with the load instead of staying at the
        // handful that happened to be queued together.
        if let Some(started) = waiting.take() {
            let _ = started.await;
        }
        let mut group = vec![first];
        while group.len() < INTAKE_GROUP_MAX {
            match rx.try_recv() {
                Ok(more) => group.push(more),
                Err(_) => break,
            }
        }
        let (tell, started) = tokio::sync::oneshot::channel();
        waiting = Some(started);
        // Settled on its own task, so the next group can form meanwhile.
        tokio::spawn(settle_group(batch.clone(), group, tell));
    }
}

/// Runs one group as one unit of the writer, and answers each caller once
/// the batch holding it committed.
async fn settle_group(
    batch: Batcher<Pool>,
    group: Vec<Queued>,
    started: tokio::sync::oneshot::Sender<()>,
) {
    let (reqs, replies): (Vec<OrderRequest>, Vec<_>) = group.into_iter().unzip();
    let reqs = std::sync::Arc::new(reqs);
    let shared = reqs.clone();
    let outs = match batch
        .run(move |tx| {
            Box::pin(async move {
                let _ = started.send(());
                orders_in(tx, &shared).await
            })
        })
        .await
    {
        Ok(outs) => outs,
        Err(StoreError::NotCommitted(why)) => {
            for reply in replies {
                let _ = reply.send(Err(StoreError::NotCommitted(why.clone())));
            }
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, orders = reqs.len(), "order intake: a group failed as a whole; its orders are taken one by one");
            reqs.iter().map(|_| None).collect()
        }
    };
    let mut alone = Vec::new();
    for ((i, out), reply) in outs.into_iter().enumerate().zip(replies) {
        match out {
            Some(answer) => {
                let _ = reply.send(answer);
            }
            None => alone.push((i, reply)),
        }
    }
    let runs = alone.into_iter().map(|(i, reply)| {
        let (batch, reqs) = (batch.clone(), reqs.clone());
        async move {
            let answer = batch
                .run(move |tx| {
                    Box::pin(async move {
                        one_order_in(tx, &reqs[i])
                            .await?
                            .unwrap_or(Err(StoreError::Contended))
                    })
                })
                .await;
            let _ = reply.send(answer);
        }
    });
    futures_util::future::join_all(runs).await;
}

/// [`orders_in`] for one order taken alone: its answer, or `None` while
/// another session holds its key uncommitted (retry to read that answer).
async fn one_order_in(
    tx: &mut Tx,
    req: &OrderRequest,
) -> StoreResult<Option<StoreResult<OrderView>>> {
    Ok(orders_in(tx, std::slice::from_ref(req))
        .await?
        .pop()
        .flatten())
}

/// Takes a group of orders (at most [`INTAKE_GROUP_MAX`]) inside `tx`, in
/// their queue order, as if one after the other: each order sees the stock
/// and the buyer's year as the orders before it left them. Each gets its
/// answer (a refusal writes nothing), or `None`: take it alone (the same
/// order number earlier in the group, a key another session has claimed and
/// not committed, a group that spans New Year in China).
///
/// Whatever the group's size, about ten statements: claim the keys, read
/// the SKUs, the candidate holdings and the buyers' year, then one
/// multi-row INSERT each for the orders, their lines, the locks, the lock
/// movements and the allocations, and store the answers, which are built
/// from what was written rather than read back. An error of any statement
/// is the whole group's (its savepoint is rolled back).
async fn orders_in(
    tx: &mut Tx,
    reqs: &[OrderRequest],
) -> StoreResult<Vec<Option<StoreResult<OrderView>>>> {
    let n = reqs.len();
    let mut out: Vec<Option<StoreResult<OrderView>>> = (0..n).map(|_| None).collect();
    let Some(year_start) = reqs.first().map(|r| r.2.year_start) else {
        return Ok(out);
    };
    if reqs.iter().any(|r| r.2.year_start != year_start) {
        return Ok(out);
    }
    let at = now();
    let mut first_of: BTreeMap<&str, usize> = BTreeMap::new();
    let fresh: Vec<usize> = (0..n)
        .filter(|&i| *first_of.entry(reqs[i].1.order_no.as_str()).or_insert(i) == i)
        .collect();

    // 1. Claim the order numbers.
    let mut ops: Vec<Option<i64>> = vec![None; n];
    let sql = format!(
        "INSERT INTO operations (scope, key, request_hash, actor, at) VALUES {}
         ON CONFLICT (scope, key) DO NOTHING RETURNING key, id",
        numbered("('order', ?, ?, ?, $1)", fresh.len(), 2)
    );
    let mut q = sqlx::query_as::<_, (String, i64)>(&sql).bind(at);
    for &i in &fresh {
        let (actor, input, ctx) = &reqs[i];
        q = q
            .bind(input.order_no.as_str())
            .bind(&ctx.fingerprint)
            .bind(&actor.username);
    }
    for (key, id) in q.fetch_all(&mut **tx).await? {
        if let Some(&i) = first_of.get(key.as_str()) {
            ops[i] = Some(id);
        }
    }
    let used: Vec<usize> = fresh
        .iter()
        .copied()
        .filter(|&i| ops[i].is_none())
        .collect();
    if !used.is_empty() {
        let sql = format!(
            "SELECT key, request_hash, response FROM operations WHERE scope = 'order' AND key IN ({})",
            numbered("?", used.len(), 1)
        );
        let mut q = sqlx::query_as::<_, (String, String, Option<String>)>(&sql);
        for &i in &used {
            q = q.bind(reqs[i].1.order_no.as_str());
        }
        let found: BTreeMap<String, (String, Option<String>)> = q
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(|(key, hash, response)| (key, (hash, response)))
            .collect();
        for &i in &used {
            let key = reqs[i].1.order_no.as_str();
            out[i] = match found.get(key) {
                Some((hash, _)) if *hash != reqs[i].2.fingerprint => {
                    Some(Err(StoreError::IdempotencyConflict {
                        scope: "order",
                        key: key.to_string(),
                    }))
                }
                Some((_, Some(response))) => Some(decode_response(response)),
                // Claimed by a transaction we cannot see yet.
                _ => None,
            };
        }
    }
    let live: Vec<usize> = (0..n).filter(|&i| ops[i].is_some()).collect();
    if live.is_empty() {
        return Ok(out);
    }

    // 2. The SKUs, and each order's in its lines' order.
    let codes: Vec<&str> = live
        .iter()
        .flat_map(|&i| reqs[i].1.lines.iter().map(|l| l.sku.as_str()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let skus = skus_by_code(tx, &codes).await?;
    let mut sku_ids: Vec<Vec<i64>> = vec![Vec::new(); n];
    for &i in &live {
        match line_skus(&reqs[i].1, &skus) {
            Ok(ids) => sku_ids[i] = ids,
            Err(e) => out[i] = Some(Err(e)),
        }
    }

    // 3. Their candidate holdings, and the buyers' year so far.
    let ok: Vec<usize> = live.iter().copied().filter(|&i| out[i].is_none()).collect();
    let all_skus: Vec<i64> = ok
        .iter()
        .flat_map(|&i| sku_ids[i].iter().copied())
        .collect();
    let rows = fefo_candidates(tx, &all_skus).await?;
    let mut year = buyers_year(
        tx,
        ok.iter().map(|&i| reqs[i].2.sealed.buyer_ref.as_str()),
        year_start,
    )
    .await?;

    // 4. Each order in turn, on what the orders before it left.
    let mut taken = vec![0i64; rows.len()];
    let mut plans: Vec<(usize, OrderTakes, Vec<String>)> = Vec::new();
    for &i in &ok {
        let (_, input, ctx) = &reqs[i];
        match allocate_order(input, ctx, &sku_ids[i], &rows, &mut taken) {
            Ok(takes) => {
                let seen = year.entry(ctx.sealed.buyer_ref.clone()).or_insert(0);
                let warnings =
                    crate::domain::order::annual_limit_warning(money(*seen)?, input.actual_paid)
                        .into_iter()
                        .collect();
                *seen += input.actual_paid.fen();
                plans.push((i, takes, warnings));
            }
            Err(e) => out[i] = Some(Err(e)),
        }
    }
    // A refused order leaves no trace: its key is free again.
    let refused: Vec<i64> = live
        .iter()
        .filter(|&&i| out[i].is_some())
        .filter_map(|&i| ops[i])
        .collect();
    if !refused.is_empty() {
        let sql = format!(
            "DELETE FROM operations WHERE id IN ({})",
            numbered("?", refused.len(), 1)
        );
        let mut q = sqlx::query(&sql);
        for id in &refused {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
    }
    if plans.is_empty() {
        return Ok(out);
    }

    // 5. The orders.
    let sql = format!(
        "INSERT INTO orders (order_no, state, trade_mode, ebp_code, ebc_code, cop_no, buyer_name, buyer_id_sealed,
             buyer_id_masked, buyer_ref, buyer_phone_sealed, buyer_phone_masked, consignee_name,
             consignee_phone_sealed, consignee_phone_masked, consignee_address, goods_value_fen, freight_fen,
             discount_fen, tax_fen, actual_paid_fen, warnings, created_by, created_at, state_at)
         VALUES {} RETURNING order_no, id",
        numbered(
            "(?, 'locked', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, $1, $1)",
            plans.len(),
            2
        )
    );
    let mut q = sqlx::query_as::<_, (String, i64)>(&sql).bind(at);
    for (i, _, warnings) in &plans {
        let (actor, input, ctx) = &reqs[*i];
        let s = &ctx.sealed;
        q = q
            .bind(input.order_no.as_str())
            .bind(input.trade_mode.code())
            .bind(input.ebp_code.trim())
            .bind(input.ebc_code.trim())
            .bind(input.cop_no.as_str())
            .bind(input.buyer.name.trim())
            .bind(&s.buyer_id_sealed)
            .bind(&s.buyer_id_masked)
            .bind(&s.buyer_ref)
            .bind(&s.buyer_phone_sealed)
            .bind(&s.buyer_phone_masked)
            .bind(input.consignee.name.trim())
            .bind(&s.consignee_phone_sealed)
            .bind(&s.consignee_phone_masked)
            .bind(input.consignee.address.trim())
            .bind(input.goods_value.fen())
            .bind(input.freight.fen())
            .bind(input.discount.fen())
            .bind(input.tax.fen())
            .bind(input.actual_paid.fen())
            .bind(serde_json::to_string(warnings).map_err(|e| StoreError::Corrupt(e.to_string()))?)
            .bind(&actor.username);
    }
    let ids: BTreeMap<String, i64> = q
        .fetch_all(&mut **tx)
        .await
        .map_err(map_db)?
        .into_iter()
        .collect();
    let order_id = |i: usize| {
        ids.get(reqs[i].1.order_no.as_str())
            .copied()
            .ok_or_else(|| {
                StoreError::Corrupt("an inserted order is missing from RETURNING".into())
            })
    };

    // 6. Their lines.
    let mut lines: Vec<(i64, i64, i64, &OrderLineInput)> = Vec::new();
    for (i, _, _) in &plans {
        let id = order_id(*i)?;
        for (l, line) in reqs[*i].1.lines.iter().enumerate() {
            lines.push((id, l as i64 + 1, sku_ids[*i][l], line));
        }
    }
    for chunk in lines.chunks(INSERT_ROWS_MAX) {
        let sql = format!(
            "INSERT INTO order_lines (order_id, line_no, sku_id, qty, unit_price_fen) VALUES {}",
            numbered("(?, ?, ?, ?, ?)", chunk.len(), 1)
        );
        let mut q = sqlx::query(&sql);
        for (id, line_no, sku_id, line) in chunk {
            q = q
                .bind(*id)
                .bind(*line_no)
                .bind(*sku_id)
                .bind(line.qty.get())
                .bind(line.unit_price.fen());
        }
        q.execute(&mut **tx).await.map_err(map_db)?;
    }

    // 7. The reservations, and which line each serves.
    let mut reservations = Vec::new();
    let mut serves: Vec<(i64, i64)> = Vec::new();
    for (i, takes, _) in &plans {
        let (op, id) = (ops[*i].unwrap_or_default(), order_id(*i)?);
        for &(line, row, qty) in takes {
            let r = &rows[row];
            reservations.push(Reservation {
                op,
                reference: reqs[*i].1.order_no.as_str(),
                actor: reqs[*i].0.username.as_str(),
                sku_id: r.sku_id,
                location_id: r.location_id,
                lot_id: r.lot_id,
                qty: Quantity::new(qty).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            });
            serves.push((id, line as i64 + 1));
        }
    }
    let lock_ids = reserve_for_lines(tx, at, &reservations, &serves).await?;

    // 8. The answers, stored with the work they describe.
    let mut answers: Vec<(i64, String)> = Vec::with_capacity(plans.len());
    let mut next_lock = lock_ids.iter();
    for (i, takes, warnings) in plans {
        let (_, input, ctx) = &reqs[i];
        let allocations = takes
            .iter()
            .zip(next_lock.by_ref())
            .map(|(&(line, row, qty), &lock_id)| {
                let r = &rows[row];
                let view = AllocationView {
                    lock_id,
                    bin: r.bin.clone(),
                    batch: r.batch.clone(),
                    expiry: r.expiry,
                    qty,
                    state: LockState::Held,
                };
                (line, view)
            })
            .collect();
        let view = OrderView::taken(input, ctx, allocations, warnings, at);
        let text = serde_json::to_string(&view).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        answers.push((ops[i].unwrap_or_default(), text));
        out[i] = Some(Ok(view));
    }
    let sql = format!(
        "UPDATE operations SET response = v.column2 FROM (VALUES {}) AS v WHERE operations.id = v.column1",
        numbered("(CAST(? AS BIGINT), ?)", answers.len(), 1)
    );
    let mut q = sqlx::query(&sql);
    for (op, text) in &answers {
        q = q.bind(*op).bind(text);
    }
    q.execute(&mut **tx).await?;
    Ok(out)
}

/// An order's SKU ids, line by line; refused if one is unknown or its
/// customs record revoked (the first such in SKU order is named).
fn line_skus(
    input: &OrderInput,
    skus: &BTreeMap<String, (i64, RecordStatus)>,
) -> StoreResult<Vec<i64>> {
    let mut by_sku: Vec<usize> = (0..input.lines.len()).collect();
    by_sku.sort_by(|a, b| input.lines[*a].sku.cmp(&input.lines[*b].sku));
    let mut ids = vec![0i64; input.lines.len()];
    for i in by_sku {
        let line = &input.lines[i];
        let (id, status) = *skus
            .get(line.sku.as_str())
            .ok_or_else(|| StoreError::UnknownSku(line.sku.to_string()))?;
        if status == RecordStatus::Revoked {
            return Err(StoreError::Invalid(format!(
                "line {}: SKU {}'s customs record is revoked, so it cannot be sold",
                i + 1,
                line.sku
            )));
        }
        ids[i] = id;
    }
    Ok(ids)
}

/// Plans an order's reservations on the candidate `rows`, line by line in
/// SKU order, earliest expiry first; `taken` is what earlier orders (and
/// lines) have planned from each row, and grows only if every line can be
/// served. Otherwise the order is refused with every short line.
fn allocate_order(
    input: &OrderInput,
    ctx: &OrderContext,
    sku_ids: &[i64],
    rows: &[FefoRow],
    taken: &mut [i64],
) -> StoreResult<OrderTakes> {
    let mut by_sku: Vec<usize> = (0..input.lines.len()).collect();
    by_sku.sort_by(|a, b| input.lines[*a].sku.cmp(&input.lines[*b].sku));
    let mut mine: BTreeMap<usize, i64> = BTreeMap::new();
    let mut takes = Vec::new();
    let mut shortfalls = Vec::new();
    for i in by_sku {
        let line = &input.lines[i];
        // `rows` come ordered by SKU first (`fefo_candidates`): this line's
        // SKU is one run of them.
        let from = rows.partition_point(|r| r.sku_id < sku_ids[i]);
        let to = rows.partition_point(|r| r.sku_id <= sku_ids[i]);
        let candidates: Vec<_> = rows[from..to]
            .iter()
            .zip(from..)
            .map(|(r, n)| crate::domain::fefo::Candidate {
                key: n,
                expiry: r.expiry,
                walk_seq: r.walk_seq,
                bin: r.bin.clone(),
                available: r.available - taken[n] - mine.get(&n).copied().unwrap_or(0),
            })
            .collect();
        match crate::domain::fefo::allocate(&candidates, line.qty.get(), ctx.today) {
            Ok(plan) => {
                for t in plan {
                    *mine.entry(t.key).or_default() += t.qty;
                    takes.push((i, t.key, t.qty));
                }
            }
            Err(s) => shortfalls.push(LineShortfall {
                line_no: i as i64 + 1,
                sku: line.sku.to_string(),
                requested: s.requested,
                available: s.usable,
            }),
        }
    }
    if !shortfalls.is_empty() {
        shortfalls.sort_by_key(|s| s.line_no);
        return Err(StoreError::OrderShortfall(shortfalls));
    }
    for (n, qty) in mine {
        taken[n] += qty;
    }
    Ok(takes)
}

/// What each buyer has paid in orders (not cancelled) since `year_start`,
/// in fen, by keyed fingerprint: the annual limit's running total.
async fn buyers_year(
    tx: &mut Tx,
    buyers: impl Iterator<Item = &str>,
    year_start: DateTime<Utc>,
) -> StoreResult<BTreeMap<String, i64>> {
    let buyers: Vec<&str> = buyers
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if buyers.is_empty() {
        return Ok(BTreeMap::new());
    }
    let sql = format!(
        "SELECT buyer_ref, CAST(COALESCE(SUM(actual_paid_fen), 0) AS BIGINT) FROM orders
         WHERE buyer_ref IN ({}) AND created_at >= $1 AND state <> 'cancelled' GROUP BY buyer_ref",
        numbered("?", buyers.len(), 2)
    );
    let mut q = sqlx::query_as::<_, (String, i64)>(&sql).bind(year_start);
    for b in &buyers {
        q = q.bind(*b);
    }
    Ok(q.fetch_all(&mut **tx).await?.into_iter().collect())
}

/// Reserves FEFO-planned holdings for order lines: the locks and their lock
/// movements ([`reserve_many`]) and, for each, the (order id, line number) it
/// serves (`order_allocations`), one multi-row INSERT each. Returns the
/// locks' ids in the order of `rs`.
async fn reserve_for_lines(
    tx: &mut Tx,
    at: DateTime<Utc>,
    rs: &[Reservation<'_>],
    lines: &[(i64, i64)],
) -> StoreResult<Vec<i64>> {
    let lock_ids = reserve_many(tx, at, "order", rs).await?;
    let allocations: Vec<(i64, i64, i64)> = lock_ids
        .iter()
        .zip(lines)
        .map(|(&lock, &(order, line))| (lock, order, line))
        .collect();
    for chunk in allocations.chunks(INSERT_ROWS_MAX) {
        let sql = format!(
            "INSERT INTO order_allocations (lock_id, order_id, line_no) VALUES {}",
            numbered("(?, ?, ?)", chunk.len(), 1)
        );
        let mut q = sqlx::query(&sql);
        for (lock, order, line) in chunk {
            q = q.bind(*lock).bind(*order).bind(*line);
        }
        q.execute(&mut **tx).await.map_err(map_db)?;
    }
    Ok(lock_ids)
}
