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
         WHERE a.order_id = $1 ORDER BY a.line_no, lot.expiry NULLS LAST, k.id",
    )
    .bind(order_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut line_views = Vec::with_capacity(lines.len());
    for (line_no, sku, qty, price) in lines {
        let allocations = allocs
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
    /// first, or reserves nothing and says per line what is short.
    pub async fn create_order(
        &self,
        actor: &Actor,
        input: &OrderInput,
        ctx: &OrderContext,
    ) -> StoreResult<OrderView> {
        let Some(batch) = &self.batch else {
            return idempotent!(
                self,
                actor,
                "order",
                input.order_no.as_str(),
                ctx.fingerprint.clone(),
                |tx, op, at| order_in(&mut tx, op, at, actor, input, ctx).await?
            );
        };
        let (actor, input, ctx) = (actor.clone(), input.clone(), ctx.clone());
        batch
            .run(move |tx| {
                Box::pin(async move {
                    idempotent_in!(
                        tx,
                        &actor,
                        "order",
                        input.order_no.as_str(),
                        ctx.fingerprint.clone(),
                        |op, at| order_in(tx, op, at, &actor, &input, &ctx).await?
                    )
                })
            })
            .await
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

/// The body of [`SqlStore::create_order`], inside its transaction (its own,
/// or its savepoint in a group commit). Whatever the number of lines it makes
/// ten round trips: the SKUs, the candidate holdings, the buyer's year, the
/// order, its lines, the locks, their movements and the allocations (one
/// statement each), plus the key's claim and the stored answer around it.
/// The answer is built from what was written, not read back.
async fn order_in(
    tx: &mut Tx,
    op: i64,
    at: DateTime<Utc>,
    actor: &Actor,
    input: &OrderInput,
    ctx: &OrderContext,
) -> StoreResult<OrderView> {
    // Lines are allocated in SKU order, and the first unknown or revoked
    // SKU in that order is the one reported.
    let mut by_sku: Vec<usize> = (0..input.lines.len()).collect();
    by_sku.sort_by(|a, b| input.lines[*a].sku.cmp(&input.lines[*b].sku));
    let codes: Vec<&str> = by_sku
        .iter()
        .map(|&i| input.lines[i].sku.as_str())
        .collect();
    let skus = skus_by_code(tx, &codes).await?;
    let mut sku_ids = vec![0i64; input.lines.len()];
    for &i in &by_sku {
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
        sku_ids[i] = id;
    }
    let rows = fefo_candidates(tx, &sku_ids).await?;
    // Units already planned from each candidate row by earlier lines.
    let mut taken = vec![0i64; rows.len()];
    let mut shortfalls = Vec::new();
    // (line index, candidate row, units)
    let mut takes: Vec<(usize, usize, i64)> = Vec::new();
    for &i in &by_sku {
        let line = &input.lines[i];
        let candidates: Vec<_> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.sku_id == sku_ids[i])
            .map(|(n, r)| crate::domain::fefo::Candidate {
                key: n,
                expiry: r.expiry,
                walk_seq: r.walk_seq,
                bin: r.bin.clone(),
                available: r.available - taken[n],
            })
            .collect();
        match crate::domain::fefo::allocate(&candidates, line.qty.get(), ctx.today) {
            Ok(plan) => {
                for t in plan {
                    taken[t.key] += t.qty;
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
    let seen_fen: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(actual_paid_fen), 0) AS BIGINT) FROM orders
                 WHERE buyer_ref = $1 AND created_at >= $2 AND state <> 'cancelled'",
    )
    .bind(&ctx.sealed.buyer_ref)
    .bind(ctx.year_start)
    .fetch_one(&mut **tx)
    .await?;
    let warnings: Vec<String> =
        crate::domain::order::annual_limit_warning(money(seen_fen)?, input.actual_paid)
            .into_iter()
            .collect();
    let s = &ctx.sealed;
    let order_id: i64 = sqlx::query_scalar(
        "INSERT INTO orders (order_no, state, trade_mode, ebp_code, ebc_code, cop_no, buyer_name, buyer_id_sealed,
             buyer_id_masked, buyer_ref, buyer_phone_sealed, buyer_phone_masked, consignee_name,
             consignee_phone_sealed, consignee_phone_masked, consignee_address, goods_value_fen, freight_fen,
             discount_fen, tax_fen, actual_paid_fen, warnings, created_by, created_at, state_at)
         VALUES ($1, 'locked', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
             $20, $21, $22, $23, $23) RETURNING id",
    )
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
    .bind(serde_json::to_string(&warnings).map_err(|e| StoreError::Corrupt(e.to_string()))?)
    .bind(&actor.username)
    .bind(at)
    .fetch_one(&mut **tx)
    .await
    .map_err(map_db)?;
    let lines: Vec<(usize, &OrderLineInput)> = input.lines.iter().enumerate().collect();
    for chunk in lines.chunks(INSERT_ROWS_MAX) {
        let sql = format!(
            "INSERT INTO order_lines (order_id, line_no, sku_id, qty, unit_price_fen) VALUES {}",
            numbered("($1, ?, ?, ?, ?)", chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql).bind(order_id);
        for (i, line) in chunk {
            q = q
                .bind(*i as i64 + 1)
                .bind(sku_ids[*i])
                .bind(line.qty.get())
                .bind(line.unit_price.fen());
        }
        q.execute(&mut **tx).await.map_err(map_db)?;
    }
    let reservations = takes
        .iter()
        .map(|&(_, n, qty)| {
            Ok(Reservation {
                sku_id: rows[n].sku_id,
                location_id: rows[n].location_id,
                lot_id: rows[n].lot_id,
                qty: Quantity::new(qty).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let lock_ids = reserve_many(
        tx,
        (op, actor, at),
        ("order", input.order_no.as_str()),
        &reservations,
    )
    .await?;
    allocate_locks(
        tx,
        order_id,
        takes
            .iter()
            .zip(&lock_ids)
            .map(|(&(i, _, _), &id)| (id, i as i64 + 1)),
    )
    .await?;
    let allocations = takes
        .iter()
        .zip(&lock_ids)
        .map(|(&(i, n, qty), &lock_id)| {
            let r = &rows[n];
            (
                i,
                AllocationView {
                    lock_id,
                    bin: r.bin.clone(),
                    batch: r.batch.clone(),
                    expiry: r.expiry,
                    qty,
                    state: LockState::Held,
                },
            )
        })
        .collect();
    Ok(OrderView::taken(input, ctx, allocations, warnings, at))
}

/// Records which reservation serves which line of order `order_id`:
/// (lock id, line number) pairs, one multi-row INSERT.
async fn allocate_locks(
    tx: &mut Tx,
    order_id: i64,
    pairs: impl Iterator<Item = (i64, i64)>,
) -> StoreResult<()> {
    let pairs: Vec<(i64, i64)> = pairs.collect();
    for chunk in pairs.chunks(INSERT_ROWS_MAX) {
        let sql = format!(
            "INSERT INTO order_allocations (lock_id, order_id, line_no) VALUES {}",
            numbered("(?, $1, ?)", chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql).bind(order_id);
        for (lock_id, line_no) in chunk {
            q = q.bind(*lock_id).bind(*line_no);
        }
        q.execute(&mut **tx).await.map_err(map_db)?;
    }
    Ok(())
}
