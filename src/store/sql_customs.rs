// The customs receipts, compiled once per backend like the other `sql_*.rs`
// files: every signed message and every receipt in it, kept for ever.

type CustomsReceiptTuple = (
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    String,
    Option<String>,
    String,
    DateTime<Utc>,
);

impl SqlStore {
    /// Stores one message and its receipts. The same message again (the
    /// same bytes) is a replay: refused, nothing stored. A 清单 the
    /// receipts leave held for inspection or detention gets its task in
    /// the same commit (`hold_tasks_in`).
    pub async fn ingest_customs(
        &self,
        actor: &Actor,
        m: &CustomsMessageInput,
    ) -> StoreResult<Vec<CustomsReceiptRow>> {
        let mut tx = self.write.begin().await?;
        let at = now();
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO customs_messages (body_sha256, kind, key_id, guid, received_by, received_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (body_sha256) DO NOTHING RETURNING id",
        )
        .bind(&m.body_sha256)
        .bind(&m.kind)
        .bind(&m.key_id)
        .bind(&m.guid)
        .bind(&actor.username)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_db)?;
        let Some(message_id) = id else {
            return Err(StoreError::AlreadyExists(format!(
                "customs message {} (a replay: these exact bytes were received before)",
                &m.body_sha256[..16.min(m.body_sha256.len())]
            )));
        };
        for r in &m.receipts {
            sqlx::query(
                "INSERT INTO customs_receipts (message_id, kind, cop_no, pre_no, invt_no, guid, return_status,
                     return_time, return_info)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(message_id)
            .bind(&r.kind)
            .bind(&r.cop_no)
            .bind(&r.pre_no)
            .bind(&r.invt_no)
            .bind(&r.guid)
            .bind(r.return_status)
            .bind(&r.return_time)
            .bind(&r.return_info)
            .execute(&mut *tx)
            .await
            .map_err(map_db)?;
        }
        hold_tasks_in(&mut tx, at, &m.receipts).await?;
        audit(&mut tx, actor, "customs.receipt", &m.kind, m).await?;
        let rows: Vec<CustomsReceiptTuple> = sqlx::query_as(
            "SELECT r.id, r.kind, r.cop_no, r.pre_no, r.invt_no, r.guid, r.return_status, r.return_time,
                    r.return_info, m.key_id, m.received_at
             FROM customs_receipts r JOIN customs_messages m ON m.id = r.message_id
             WHERE r.message_id = $1 ORDER BY r.id",
        )
        .bind(message_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(customs_row).collect())
    }

    /// Every receipt of one 清单, in returnTime order (arrival breaks ties).
    pub async fn customs_receipts(&self, cop_no: &str) -> StoreResult<Vec<CustomsReceiptRow>> {
        let mut tx = self.read.begin().await?;
        receipts_of(&mut tx, cop_no).await
    }

    /// The order declared under this `copNo`, if any.
    pub async fn order_by_cop_no(&self, cop_no: &str) -> StoreResult<Option<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT order_no, state FROM orders WHERE cop_no = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(cop_no)
        .fetch_optional(&self.read)
        .await?)
    }
}

/// A stored receipt as [`CustomsReceiptTuple`] reads it (`r` the receipt,
/// `m` its message).
macro_rules! receipt_columns {
    () => {
        "r.id, r.kind, r.cop_no, r.pre_no, r.invt_no, r.guid, r.return_status, r.return_time, r.return_info,
         m.key_id, m.received_at"
    };
}

/// Every receipt of one 清单, in returnTime order (arrival breaks ties).
async fn receipts_of(tx: &mut Tx, cop_no: &str) -> StoreResult<Vec<CustomsReceiptRow>> {
    let rows: Vec<CustomsReceiptTuple> = sqlx::query_as(concat!(
        "SELECT ",
        receipt_columns!(),
        " FROM customs_receipts r JOIN customs_messages m ON m.id = r.message_id
         WHERE r.cop_no = $1 ORDER BY r.return_time, r.id"
    ))
    .bind(cop_no)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(customs_row).collect())
}

fn customs_row(r: CustomsReceiptTuple) -> CustomsReceiptRow {
    CustomsReceiptRow {
        id: r.0,
        kind: r.1,
        cop_no: r.2,
        pre_no: r.3,
        invt_no: r.4,
        guid: r.5,
        return_status: r.6,
        return_time: r.7,
        return_info: r.8,
        key_id: r.9,
        received_at: r.10,
    }
}

/// The follow-up of a hold (CUSTOMS.md §2): for each 清单 these receipts
/// are about whose folded state is now held for inspection (500) or
/// detained (501–503, 599), a task to bring the parcel to the inspection
/// area or to quarantine. The hold receipt is the task's identity (unique
/// `cop_no`, status, returnTime: what the fold counts as the same
/// receipt), so a replayed or re-sent receipt finds its task already there.
/// Orders already gone (shipped, cancelled) get none: nothing is left to
/// move.
async fn hold_tasks_in(
    tx: &mut Tx,
    at: DateTime<Utc>,
    receipts: &[NewCustomsReceipt],
) -> StoreResult<()> {
    use bondgate_customs::state::HoldReason;
    use bondgate_customs::CustomsState;
    let mut cop_nos: Vec<&str> = receipts
        .iter()
        .filter(|r| r.kind == "inventory")
        .filter_map(|r| r.cop_no.as_deref())
        .collect();
    cop_nos.sort_unstable();
    cop_nos.dedup();
    for cop_no in cop_nos {
        let order: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, state FROM orders WHERE cop_no = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(cop_no)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((order_id, order_state)) = order else {
            continue;
        };
        if matches!(order_state.as_str(), "shipped" | "cancelled") {
            continue;
        }
        let rows = receipts_of(tx, cop_no).await?;
        let CustomsState::Held { reason, receipt } =
            crate::store::customs_state::fold(cop_no, &rows)?
        else {
            continue;
        };
        let kind = match reason {
            HoldReason::Inspection => "inspection",
            HoldReason::Detained => "quarantine",
            // Goods going back are the return flow's, not a task here.
            HoldReason::ReturnShipment => continue,
        };
        let created: Option<i64> = sqlx::query_scalar(
            "INSERT INTO customs_tasks (kind, order_id, cop_no, receipt_id, return_status, return_time, state,
                 created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'open', $7)
             ON CONFLICT (cop_no, return_status, return_time) DO NOTHING RETURNING id",
        )
        .bind(kind)
        .bind(order_id)
        .bind(cop_no)
        .bind(i64::try_from(receipt.arrival).unwrap_or(i64::MAX))
        .bind(receipt.status.code())
        .bind(receipt.time.to_string())
        .bind(at)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_db)?;
        if let Some(id) = created {
            tracing::info!(task = id, %cop_no, kind, "customs hold: task created");
        }
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct CustomsTaskRow {
    id: i64,
    kind: String,
    state: String,
    order_no: String,
    package_no: Option<String>,
    cop_no: String,
    receipt_id: i64,
    return_status: i64,
    return_time: String,
    bin: Option<String>,
    created_at: DateTime<Utc>,
    moved_by: Option<String>,
    moved_at: Option<DateTime<Utc>>,
    closed_by: Option<String>,
    closed_at: Option<DateTime<Utc>>,
    note: Option<String>,
}

const CUSTOMS_TASK_SELECT: &str = "SELECT t.id, t.kind, t.state, o.order_no, p.package_no, t.cop_no, t.receipt_id,
        t.return_status, t.return_time, l.code AS bin, t.created_at, t.moved_by, t.moved_at, t.closed_by,
        t.closed_at, t.note
     FROM customs_tasks t JOIN orders o ON o.id = t.order_id
     LEFT JOIN packages p ON p.order_id = t.order_id LEFT JOIN locations l ON l.id = t.location_id";

fn customs_task_view(r: CustomsTaskRow) -> CustomsTaskView {
    CustomsTaskView {
        id: r.id,
        kind: r.kind,
        state: r.state,
        order_no: r.order_no,
        package_no: r.package_no,
        cop_no: r.cop_no,
        receipt_id: r.receipt_id,
        return_status: r.return_status,
        return_time: r.return_time,
        bin: r.bin,
        created_at: r.created_at,
        moved_by: r.moved_by,
        moved_at: r.moved_at,
        closed_by: r.closed_by,
        closed_at: r.closed_at,
        note: r.note,
    }
}

async fn customs_task_in(tx: &mut Tx, id: i64) -> StoreResult<CustomsTaskView> {
    let row: Option<CustomsTaskRow> =
        sqlx::query_as(&format!("{CUSTOMS_TASK_SELECT} WHERE t.id = $1"))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    row.map(customs_task_view)
        .ok_or_else(|| StoreError::NotFound(format!("customs task {id}")))
}

/// A task taken for a change: its kind and state, refused if closed.
async fn open_task_for_update(tx: &mut Tx, id: i64) -> StoreResult<(String, i64)> {
    let row: Option<(String, String, i64)> = sqlx::query_as(concat!(
        "SELECT kind, state, order_id FROM customs_tasks WHERE id = $1",
        for_update!()
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let (kind, state, order_id) =
        row.ok_or_else(|| StoreError::NotFound(format!("customs task {id}")))?;
    if state == "closed" {
        return Err(StoreError::Conflict {
            code: "task_closed",
            detail: format!("customs task {id} is closed; it cannot change"),
        });
    }
    Ok((kind, order_id))
}

impl SqlStore {
    /// Customs tasks, newest first, optionally only those in one state.
    pub async fn list_customs_tasks(
        &self,
        state: Option<&str>,
    ) -> StoreResult<Vec<CustomsTaskView>> {
        if let Some(s) = state {
            if !matches!(s, "open" | "moved" | "closed") {
                return Err(StoreError::Invalid(format!(
                    "task state must be open, moved or closed (got {s})"
                )));
            }
        }
        let rows: Vec<CustomsTaskRow> = sqlx::query_as(&format!(
            "{CUSTOMS_TASK_SELECT} WHERE ($1 IS NULL OR t.state = $1) ORDER BY t.id DESC LIMIT $2"
        ))
        .bind(state)
        .bind(CUSTOMS_TASKS_MAX)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(customs_task_view).collect())
    }

    pub async fn get_customs_task(&self, id: i64) -> StoreResult<CustomsTaskView> {
        let mut tx = self.read.begin().await?;
        customs_task_in(&mut tx, id).await
    }

    /// Brings the held parcel to `bin` on the books: every reservation the
    /// order still holds moves there as two `inspect` legs (locked out of
    /// where it is, locked into the bin), and the reservation follows, so
    /// the ledger stays balanced and the gate later ships from the right
    /// bin. An inspection task goes only to an inspection bin, a quarantine
    /// task only to a quarantine bin; the order must be picked (its goods
    /// out of the storage bins) and not gone. Any refusal changes nothing.
    pub async fn move_customs_task(
        &self,
        actor: &Actor,
        id: i64,
        bin: &str,
    ) -> StoreResult<CustomsTaskView> {
        let mut tx = self.write.begin().await?;
        let at = now();
        let (kind, order_id) = open_task_for_update(&mut tx, id).await?;
        let loc: Option<(i64, String, String, bool)> =
            sqlx::query_as("SELECT id, code, kind, active FROM locations WHERE code = $1")
                .bind(bin.trim())
                .fetch_optional(&mut *tx)
                .await?;
        let (loc_id, loc_code, loc_kind, active) =
            loc.ok_or_else(|| StoreError::UnknownLocation(bin.trim().to_string()))?;
        if loc_kind != kind {
            return Err(StoreError::Conflict {
                code: "wrong_bin_kind",
                detail: format!(
                    "bin {loc_code} is a {loc_kind} bin; a held parcel of task {id} goes only to a {kind} bin"
                ),
            });
        }
        if !active {
            return Err(StoreError::Conflict {
                code: "bin_inactive",
                detail: format!("bin {loc_code} is not active"),
            });
        }
        let (order_no, order_state): (String, String) = sqlx::query_as(concat!(
            "SELECT order_no, state FROM orders WHERE id = $1",
            for_update!()
        ))
        .bind(order_id)
        .fetch_one(&mut *tx)
        .await?;
        match order_state.as_str() {
            "locked" | "picking" => {
                return Err(StoreError::Conflict {
                    code: "not_picked",
                    detail: format!(
                    "order {order_no} is not picked yet: its goods are still in the storage bins"
                ),
                })
            }
            "shipped" | "cancelled" => {
                return Err(StoreError::Conflict {
                    code: "nothing_to_move",
                    detail: format!("order {order_no} is {order_state}: it holds no stock to move"),
                })
            }
            _ => {}
        }
        let locks: Vec<i64> = sqlx::query_scalar(
            "SELECT a.lock_id FROM order_allocations a JOIN locks k ON k.id = a.lock_id
             WHERE a.order_id = $1 AND k.state = 'held' ORDER BY a.lock_id",
        )
        .bind(order_id)
        .fetch_all(&mut *tx)
        .await?;
        for lock_id in locks {
            let lock = lock_for_update(&mut tx, lock_id).await?;
            let Ok(q) = Quantity::new(lock.record.qty) else {
                continue;
            };
            if lock.location_id == loc_id {
                continue;
            }
            for (leg_bin, from, to) in [
                (
                    (lock.record.bin.as_str(), lock.location_id),
                    Some(Bucket::Locked),
                    None,
                ),
                ((loc_code.as_str(), loc_id), None, Some(Bucket::Locked)),
            ] {
                let mut m = NewMovement::new(
                    MovementKind::Inspect,
                    (&lock.record.sku, lock.sku_id),
                    leg_bin,
                    lock.lot_id,
                    q,
                )
                .buckets(from, to)
                .doc("customs_task", &order_no);
                m.lock_id = Some(lock_id);
                post(&mut tx, None, actor, at, m).await?;
            }
            sqlx::query("UPDATE locks SET location_id = $1 WHERE id = $2")
                .bind(loc_id)
                .bind(lock_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE customs_tasks SET state = 'moved', location_id = $1, moved_by = $2, moved_at = $3
             WHERE id = $4",
        )
        .bind(loc_id)
        .bind(&actor.username)
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_db)?;
        audit(
            &mut tx,
            actor,
            "customs.task.move",
            &id.to_string(),
            &(&order_no, &loc_code),
        )
        .await?;
        let view = customs_task_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Closes a task with what came of it. The parcel stays where it is:
    /// a later release lets it through the gate from there.
    pub async fn close_customs_task(
        &self,
        actor: &Actor,
        id: i64,
        note: &str,
    ) -> StoreResult<CustomsTaskView> {
        let note = note.trim();
        if note.is_empty() || note.chars().count() > TASK_NOTE_CHARS_MAX {
            return Err(StoreError::Invalid(format!(
                "a task is closed with a note of 1 to {TASK_NOTE_CHARS_MAX} characters"
            )));
        }
        let mut tx = self.write.begin().await?;
        let at = now();
        open_task_for_update(&mut tx, id).await?;
        sqlx::query(
            "UPDATE customs_tasks SET state = 'closed', closed_by = $1, closed_at = $2, note = $3
             WHERE id = $4",
        )
        .bind(&actor.username)
        .bind(at)
        .bind(note)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_db)?;
        audit(&mut tx, actor, "customs.task.close", &id.to_string(), &note).await?;
        let view = customs_task_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(view)
    }
}
