// The picking use cases, compiled once per backend like `sql_impl.rs` and
// `sql_orders.rs` (included before this file, which uses their helpers):
// waves, pick tasks, totes, the PDA scan flow, count requests and devices.

use crate::domain::picking::{self as picking, Action, Decision, ShortReason, Step, TaskView};

#[derive(sqlx::FromRow)]
struct TaskRow {
    id: i64,
    wave_no: String,
    order_no: String,
    line_no: i64,
    lock_id: i64,
    sku: String,
    bin: String,
    walk_seq: i64,
    batch: String,
    expiry: Option<NaiveDate>,
    qty: i64,
    picked_qty: i64,
    short_qty: i64,
    short_reason: Option<String>,
    state: String,
    picker: Option<String>,
    tote: Option<String>,
    updated_at: DateTime<Utc>,
}

const TASK_SELECT: &str = "SELECT t.id, w.wave_no, o.order_no, t.line_no, t.lock_id, s.code AS sku, l.code AS bin,
        t.walk_seq, lot.batch, lot.expiry, t.qty, t.picked_qty, t.short_qty, t.short_reason, t.state,
        u.username AS picker, t.tote, t.updated_at
     FROM pick_tasks t JOIN waves w ON w.id = t.wave_id JOIN orders o ON o.id = t.order_id
     JOIN skus s ON s.id = t.sku_id JOIN locations l ON l.id = t.location_id JOIN lots lot ON lot.id = t.lot_id
     LEFT JOIN users u ON u.id = t.picker_id";

fn task_from_row(r: TaskRow) -> StoreResult<PickTaskView> {
    Ok(PickTaskView {
        id: r.id,
        wave_no: r.wave_no,
        order_no: r.order_no,
        line_no: r.line_no,
        lock_id: r.lock_id,
        sku: r.sku,
        bin: r.bin,
        walk_seq: r.walk_seq,
        batch: r.batch,
        expiry: r.expiry,
        qty: r.qty,
        picked_qty: r.picked_qty,
        short_qty: r.short_qty,
        short_reason: match r.short_reason {
            Some(s) => Some(
                ShortReason::parse(&s)
                    .ok_or_else(|| StoreError::Corrupt(format!("short reason {s}")))?,
            ),
            None => None,
        },
        state: TaskState::parse(&r.state)
            .ok_or_else(|| StoreError::Corrupt(format!("task state {}", r.state)))?,
        picker: r.picker,
        tote: r.tote,
        updated_at: r.updated_at,
    })
}

/// SHA-256 of a badge code: badges are stored like tokens, never as scanned.
fn badge_hash(badge: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(badge.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn wave_view(tx: &mut Tx, wave_id: i64) -> StoreResult<WaveView> {
    let (wave_no, origin, created_by, created_at): (String, String, String, DateTime<Utc>) =
        sqlx::query_as("SELECT wave_no, origin, created_by, created_at FROM waves WHERE id = $1")
            .bind(wave_id)
            .fetch_one(&mut **tx)
            .await?;
    let order_nos: Vec<String> =
        sqlx::query_scalar("SELECT order_no FROM orders WHERE wave_id = $1 ORDER BY id")
            .bind(wave_id)
            .fetch_all(&mut **tx)
            .await?;
    let rows: Vec<TaskRow> = sqlx::query_as(&format!(
        "{TASK_SELECT} WHERE t.wave_id = $1 ORDER BY t.walk_seq, l.code, t.id"
    ))
    .bind(wave_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(WaveView {
        wave_no,
        origin: if origin == "auto" {
            WaveOrigin::Auto
        } else {
            WaveOrigin::Manual
        },
        created_by,
        created_at,
        order_nos,
        tasks: rows
            .into_iter()
            .map(task_from_row)
            .collect::<StoreResult<_>>()?,
    })
}

/// A user who may pick: active, with the picker, manager or admin role.
async fn picker_by_name(tx: &mut Tx, username: &str) -> StoreResult<Actor> {
    let row: Option<(i64, String, String)> =
        sqlx::query_as("SELECT id, username, roles FROM users WHERE username = $1 AND active = $2")
            .bind(username)
            .bind(true)
            .fetch_optional(&mut **tx)
            .await?;
    let (id, username, roles) =
        row.ok_or_else(|| StoreError::NotFound(format!("active user {username}")))?;
    let actor = Actor {
        user_id: id,
        username,
        roles: parse_roles(&roles),
    };
    if !actor.has_any(&[Role::Picker, Role::Manager, Role::Admin]) {
        return Err(StoreError::Invalid(format!(
            "user {} does not have the picker role",
            actor.username
        )));
    }
    Ok(actor)
}

/// How a PDA's user is found: by the id its session or browser login
/// holds, or by the badge scanned.
enum UserBy<'a> {
    Id(i64),
    Badge(&'a str),
}

/// An active user, by id or by badge.
async fn active_user(tx: &mut Tx, by: UserBy<'_>) -> StoreResult<Option<Actor>> {
    let q = match by {
        UserBy::Id(id) => {
            sqlx::query_as("SELECT id, username, roles FROM users WHERE id = $1 AND active = $2")
                .bind(id)
        }
        UserBy::Badge(badge) => {
            sqlx::query_as("SELECT id, username, roles FROM users WHERE badge = $1 AND active = $2")
                .bind(badge_hash(badge))
        }
    };
    let row: Option<(i64, String, String)> = q.bind(true).fetch_optional(&mut **tx).await?;
    Ok(row.map(|(user_id, username, roles)| Actor {
        user_id,
        username,
        roles: parse_roles(&roles),
    }))
}

/// The columns of [`TaskRead`]: `t` a pick task, joined to its order `o`,
/// bin `l`, SKU `k` and lot `lot` by [`task_read_joins!`].
macro_rules! task_read_cols {
    () => {
        concat!(
            "t.id AS task_id, o.order_no, l.code AS bin, k.code AS sku, k.name AS sku_name, lot.batch, t.qty,
             o.tote, t.state AS task_state, o.state AS order_state, ",
            barcodes_of!("t.sku_id"),
            " AS barcodes"
        )
    };
}

/// What [`task_read_cols!`] reads beside the task `t`, joined with `$join`
/// (`JOIN`, or `LEFT JOIN` when there may be no task).
macro_rules! task_read_joins {
    ($join:literal) => {
        concat!(
            " ",
            $join,
            " orders o ON o.id = t.order_id ",
            $join,
            " locations l ON l.id = t.location_id ",
            $join,
            " skus k ON k.id = t.sku_id ",
            $join,
            " lots lot ON lot.id = t.lot_id"
        )
    };
}

/// A pick task as a PDA sees it, with its and its order's state, in one
/// read (the barcodes as a JSON array). Every column is empty when a PDA
/// session has no task.
#[derive(sqlx::FromRow)]
struct TaskRead {
    task_id: Option<i64>,
    order_no: Option<String>,
    bin: Option<String>,
    sku: Option<String>,
    sku_name: Option<String>,
    batch: Option<String>,
    qty: Option<i64>,
    tote: Option<String>,
    task_state: Option<String>,
    order_state: Option<String>,
    barcodes: String,
}

impl TaskRead {
    /// Still there to be picked: the task is the picker's, its order picking.
    fn pickable(&self) -> bool {
        matches!(
            (self.task_state.as_deref(), self.order_state.as_deref()),
            (
                Some("assigned" | "in_progress"),
                Some("picking" | "exception")
            )
        )
    }

    /// The task as the PDA needs it, if it is still there to be picked.
    fn view(&self) -> StoreResult<Option<TaskView>> {
        if !self.pickable() {
            return Ok(None);
        }
        let (
            Some(id),
            Some(order_no),
            Some(bin),
            Some(sku),
            Some(sku_name),
            Some(batch),
            Some(qty),
        ) = (
            self.task_id,
            &self.order_no,
            &self.bin,
            &self.sku,
            &self.sku_name,
            &self.batch,
            self.qty,
        )
        else {
            return Err(StoreError::Corrupt(format!(
                "pick task {:?} is missing its order, bin, SKU or lot",
                self.task_id
            )));
        };
        let barcodes = serde_json::from_str(&self.barcodes)
            .map_err(|e| StoreError::Corrupt(format!("barcodes of SKU {sku}: {e}")))?;
        Ok(Some(TaskView {
            id,
            order_no: order_no.clone(),
            bin: bin.clone(),
            sku: sku.clone(),
            sku_name: sku_name.clone(),
            barcodes,
            batch: batch.clone(),
            qty,
            tote: self.tote.clone(),
        }))
    }
}

/// A PDA's session with its picker (if still active) and its task, read
/// (and on PostgreSQL locked) in one statement.
#[derive(sqlx::FromRow)]
struct SessionRead {
    user_id: Option<i64>,
    step: String,
    session_task: Option<i64>,
    username: Option<String>,
    roles: Option<String>,
    /// The request hash and answer already stored under the scan's key.
    seen_hash: Option<String>,
    seen_answer: Option<String>,
    #[sqlx(flatten)]
    task: TaskRead,
}

/// The picker's next task: one already theirs (walk order within the
/// order), else every open task of the oldest waiting order, claimed.
async fn find_work(
    tx: &mut Tx,
    user_id: i64,
    at: DateTime<Utc>,
) -> StoreResult<(Step, Option<TaskView>)> {
    for _ in 0..IDEMPOTENCY_ATTEMPTS {
        let mine: Option<TaskRead> = sqlx::query_as(concat!(
            "SELECT ",
            task_read_cols!(),
            " FROM pick_tasks t",
            task_read_joins!("JOIN"),
            " WHERE t.picker_id = $1 AND t.state IN ('assigned', 'in_progress') AND o.state IN ('picking', 'exception')
             ORDER BY t.order_id, t.walk_seq, t.id LIMIT 1"
        ))
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(mine) = mine {
            let task = mine.view()?;
            let step = match &task {
                Some(t) if t.tote.is_none() => Step::Tote,
                Some(_) => Step::Bin,
                None => Step::Idle,
            };
            return Ok((step, task));
        }
        let open: Option<i64> = sqlx::query_scalar(concat!(
            "SELECT t.order_id FROM pick_tasks t JOIN orders o ON o.id = t.order_id
             WHERE t.state = 'open' AND t.picker_id IS NULL AND o.state IN ('picking', 'exception')
             ORDER BY t.wave_id, t.order_id LIMIT 1",
            skip_locked!()
        ))
        .fetch_optional(&mut **tx)
        .await?;
        let Some(order_id) = open else {
            return Ok((Step::Idle, None));
        };
        // Another server may claim the same order at the same moment: only
        // still-open tasks are taken, and an empty claim looks again.
        sqlx::query(
            "UPDATE pick_tasks SET picker_id = $1, state = 'assigned', updated_at = $2
             WHERE order_id = $3 AND state = 'open' AND picker_id IS NULL",
        )
        .bind(user_id)
        .bind(at)
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
    }
    Err(StoreError::Contended)
}

/// The location a tote is booked as: a movable bin of kind `pack` in zone
/// `TOTE`, created the first time the tote is used.
async fn ensure_tote(tx: &mut Tx, code: &str, at: DateTime<Utc>) -> StoreResult<i64> {
    ensure_pack_location(tx, code, "TOTE", "a tote", at).await
}

/// A location of kind `pack` (a tote, a station's outbound staging), created
/// in `zone` on first use. A bin of another kind under that code is refused:
/// `what` says what it was expected to be.
async fn ensure_pack_location(
    tx: &mut Tx,
    code: &str,
    zone: &str,
    what: &str,
    at: DateTime<Utc>,
) -> StoreResult<i64> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT id, kind FROM locations WHERE code = $1")
            .bind(code)
            .fetch_optional(&mut **tx)
            .await?;
    match row {
        Some((id, kind)) if kind == "pack" => Ok(id),
        Some((_, kind)) => Err(StoreError::Invalid(format!(
            "{code} is a {kind} bin, not {what}"
        ))),
        None => Ok(sqlx::query_scalar(
            "INSERT INTO locations (code, zone, walk_seq, kind, active, created_at, updated_at)
             VALUES ($1, $2, 0, 'pack', $3, $4, $4) RETURNING id",
        )
        .bind(code)
        .bind(zone)
        .bind(true)
        .bind(at)
        .fetch_one(&mut **tx)
        .await
        .map_err(map_db)?),
    }
}

/// A task with what picking it touches, locked for the change.
struct TaskWork {
    id: i64,
    wave_id: i64,
    order_id: i64,
    order_no: String,
    line_no: i64,
    lock_id: i64,
    sku_id: i64,
    sku: String,
    location_id: i64,
    bin: String,
    lot_id: i64,
    qty: i64,
    tote: Option<String>,
}

/// The columns of [`TaskWork`], then the task's state.
type TaskWorkRow = (
    i64,
    i64,
    i64,
    String,
    i64,
    i64,
    i64,
    String,
    i64,
    String,
    i64,
    i64,
    Option<String>,
    String,
);

impl TaskWork {
    /// The order's tote, which a pick needs.
    fn tote(&self) -> StoreResult<String> {
        self.tote
            .clone()
            .ok_or_else(|| StoreError::Invalid(format!("order {} has no tote yet", self.order_no)))
    }
}

/// A confirmed pick whose stock moves at the very end of its scan's
/// transaction (see [`scan`]).
struct Pick {
    work: TaskWork,
    qty: i64,
    picker: Actor,
}

async fn task_for_work(tx: &mut Tx, task_id: i64) -> StoreResult<TaskWork> {
    let row: Option<TaskWorkRow> =
        sqlx::query_as(concat!(
            "SELECT t.id, t.wave_id, t.order_id, o.order_no, t.line_no, t.lock_id, t.sku_id, s.code, t.location_id,
                    l.code, t.lot_id, t.qty, o.tote, t.state
             FROM pick_tasks t JOIN orders o ON o.id = t.order_id JOIN skus s ON s.id = t.sku_id
             JOIN locations l ON l.id = t.location_id WHERE t.id = $1",
            for_update!("t")
        ))
        .bind(task_id)
        .fetch_optional(&mut **tx)
        .await?;
    let r = row.ok_or_else(|| StoreError::NotFound(format!("pick task {task_id}")))?;
    if !matches!(r.13.as_str(), "assigned" | "in_progress") {
        return Err(StoreError::Invalid(format!(
            "pick task {task_id} is {}",
            r.13
        )));
    }
    Ok(TaskWork {
        id: r.0,
        wave_id: r.1,
        order_id: r.2,
        order_no: r.3,
        line_no: r.4,
        lock_id: r.5,
        sku_id: r.6,
        sku: r.7,
        location_id: r.8,
        bin: r.9,
        lot_id: r.10,
        qty: r.11,
        tote: r.12,
    })
}

/// Moves a whole held reservation from its bin into the order's tote: two
/// `pick` legs, and the reservation now points at the tote.
async fn pick_into_tote(
    tx: &mut Tx,
    (op, actor, at): (i64, &Actor, DateTime<Utc>),
    w: &TaskWork,
    qty: i64,
) -> StoreResult<String> {
    let tote = w.tote()?;
    let tote_id = ensure_tote(tx, &tote, at).await?;
    let lock = lock_for_update(tx, w.lock_id).await?;
    if lock.record.state != LockState::Held || lock.record.qty != qty {
        return Err(StoreError::Corrupt(format!(
            "reservation {} of task {} holds {} ({}), not {qty}",
            w.lock_id, w.id, lock.record.qty, lock.record.state
        )));
    }
    let q = Quantity::new(qty).map_err(|e| StoreError::Invalid(e.to_string()))?;
    for (bin, from, to) in [
        ((w.bin.as_str(), w.location_id), Some(Bucket::Locked), None),
        ((tote.as_str(), tote_id), None, Some(Bucket::Locked)),
    ] {
        let mut m = NewMovement::new(MovementKind::Pick, (&w.sku, w.sku_id), bin, w.lot_id, q)
            .buckets(from, to)
            .doc("pick", &w.order_no);
        m.lock_id = Some(w.lock_id);
        post(tx, Some(op), actor, at, m).await?;
    }
    sqlx::query("UPDATE locks SET location_id = $1 WHERE id = $2")
        .bind(tote_id)
        .bind(w.lock_id)
        .execute(&mut **tx)
        .await?;
    Ok(tote)
}

/// An order whose tasks are all done is picked (an order on the exception
/// list stays there).
async fn order_progress(tx: &mut Tx, order_id: i64, at: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query(
        "UPDATE orders SET state = 'picked', state_at = $2 WHERE id = $1 AND state = 'picking' AND NOT EXISTS (
             SELECT 1 FROM pick_tasks t WHERE t.order_id = $1 AND t.state IN ('open', 'assigned', 'in_progress'))",
    )
    .bind(order_id)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records a short pick: the units found go into the tote, the rest are
/// damaged (→ defective) or not there (released, and the bin is to be
/// counted), and the shortfall is reserved from other bins by FEFO — or the
/// order goes to the exception list. Returns what to tell the picker.
async fn short_pick(
    tx: &mut Tx,
    (op, actor, at): (i64, &Actor, DateTime<Utc>),
    w: &TaskWork,
    found: i64,
    reason: ShortReason,
) -> StoreResult<picking::Said> {
    if !(0..w.qty).contains(&found) {
        return Err(StoreError::Invalid(format!(
            "a short pick of task {} finds 0 to {} units, not {found}",
            w.id,
            w.qty - 1
        )));
    }
    let missing = w.qty - found;
    let lock = lock_for_update(tx, w.lock_id).await?;
    if lock.record.state != LockState::Held || lock.record.qty != w.qty {
        return Err(StoreError::Corrupt(format!(
            "reservation {} of task {} holds {} ({}), not {}",
            w.lock_id, w.id, lock.record.qty, lock.record.state, w.qty
        )));
    }
    let q = Quantity::new(missing).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let why = format!("short pick: {reason}");
    let (kind, to) = match reason {
        ShortReason::Damaged => (MovementKind::Damage, Bucket::Defective),
        ShortReason::Empty | ShortReason::Wrong => (MovementKind::Release, Bucket::Available),
    };
    let mut m = NewMovement::new(
        kind,
        (&w.sku, w.sku_id),
        (&w.bin, w.location_id),
        w.lot_id,
        q,
    )
    .buckets(Some(Bucket::Locked), Some(to))
    .doc("pick", &w.order_no);
    m.lock_id = Some(w.lock_id);
    m.reason = Some(&why);
    post(tx, Some(op), actor, at, m).await?;
    sqlx::query("UPDATE locks SET qty = qty - $1 WHERE id = $2")
        .bind(missing)
        .bind(w.lock_id)
        .execute(&mut **tx)
        .await?;
    if reason.needs_count() {
        sqlx::query(
            "INSERT INTO count_requests (sku_id, location_id, task_id, reason, raised_by, raised_at)
             SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (
                 SELECT 1 FROM count_requests WHERE sku_id = $1 AND location_id = $2 AND closed_at IS NULL)",
        )
        .bind(w.sku_id)
        .bind(w.location_id)
        .bind(w.id)
        .bind(&why)
        .bind(&actor.username)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    }
    let tote = if found > 0 {
        Some(pick_into_tote(tx, (op, actor, at), w, found).await?)
    } else {
        sqlx::query("UPDATE locks SET state = 'released', closed_at = $1 WHERE id = $2")
            .bind(at)
            .bind(w.lock_id)
            .execute(&mut **tx)
            .await?;
        None
    };
    sqlx::query(
        "UPDATE pick_tasks SET state = 'short', picked_qty = $1, short_qty = $2, short_reason = $3, tote = $4,
             updated_at = $5 WHERE id = $6",
    )
    .bind(found)
    .bind(missing)
    .bind(reason.as_str())
    .bind(&tote)
    .bind(at)
    .bind(w.id)
    .execute(&mut **tx)
    .await?;

    // Make the shortfall good from other bins, earliest expiry first.
    let rows = fefo_candidates(tx, &[w.sku_id]).await?;
    let candidates: Vec<_> = rows
        .into_iter()
        .filter(|r| r.location_id != w.location_id)
        .map(|r| crate::domain::fefo::Candidate {
            key: (r.location_id, r.lot_id, r.bin.clone(), r.walk_seq),
            expiry: r.expiry,
            walk_seq: r.walk_seq,
            bin: r.bin,
            available: r.available,
        })
        .collect();
    let note = match crate::domain::fefo::allocate(
        &candidates,
        missing,
        crate::orders::business_dates(at).0,
    ) {
        Ok(takes) => {
            let reservations = takes
                .iter()
                .map(|t| {
                    Ok(Reservation {
                        op,
                        reference: &w.order_no,
                        actor: &actor.username,
                        sku_id: w.sku_id,
                        location_id: t.key.0,
                        lot_id: t.key.1,
                        qty: Quantity::new(t.qty)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let serves = vec![(w.order_id, w.line_no); takes.len()];
            let lock_ids = reserve_for_lines(tx, at, &reservations, &serves).await?;
            let mut bins = Vec::new();
            for (t, lock_id) in takes.into_iter().zip(lock_ids) {
                let (loc, lot, bin, walk_seq) = t.key;
                sqlx::query(
                    "INSERT INTO pick_tasks (wave_id, order_id, line_no, lock_id, sku_id, location_id, lot_id, walk_seq,
                         qty, state, picker_id, tote, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'assigned', $10, $11, $12, $12)",
                )
                .bind(w.wave_id)
                .bind(w.order_id)
                .bind(w.line_no)
                .bind(lock_id)
                .bind(w.sku_id)
                .bind(loc)
                .bind(lot)
                .bind(walk_seq)
                .bind(t.qty)
                .bind(actor.user_id)
                .bind(&w.tote)
                .bind(at)
                .execute(&mut **tx)
                .await?;
                bins.push(bin);
            }
            picking::Said::new(
                format!(
                    "Short {missing} ({reason}): {missing} more from {}",
                    bins.join(", ")
                ),
                format!(
                    "短缺 {missing} 件（{}）：另从 {} 补 {missing} 件",
                    reason.text_zh(),
                    bins.join("、")
                ),
            )
        }
        Err(s) => {
            let text = format!(
                "line {} SKU {}: {missing} short at bin {} ({reason}); only {} elsewhere",
                w.line_no, w.sku, w.bin, s.usable
            );
            sqlx::query(
                "UPDATE orders SET state = 'exception', exception_reason = $1,
                     state_at = CASE WHEN state = 'exception' THEN state_at ELSE $3 END
                 WHERE id = $2 AND state IN ('picking', 'exception')",
            )
            .bind(&text)
            .bind(w.order_id)
            .bind(at)
            .execute(&mut **tx)
            .await?;
            picking::Said::new(
                format!(
                    "Short {missing} ({reason}): no other stock, order {} to exceptions",
                    w.order_no
                ),
                format!(
                    "短缺 {missing} 件（{}）：其他库位无货，订单 {} 转入异常",
                    reason.text_zh(),
                    w.order_no
                ),
            )
        }
    };
    order_progress(tx, w.order_id, at).await?;
    Ok(note)
}

/// The prompt as the PDA receives it: the domain's words in the wire
/// protocol's tone and next-step names (one definition, in
/// `bondgate-protocol`).
fn answer(seq: u64, ok: bool, p: picking::Prompt, text: Option<picking::Said>) -> ScanAnswer {
    use bondgate_protocol::{Next, Tone};
    let tone = match (ok, p.tone) {
        (false, _) | (_, picking::Tone::Error) => Tone::Error,
        (true, picking::Tone::Ok) => Tone::Ok,
        (true, picking::Tone::Warn) => Tone::Warning,
    };
    ScanAnswer {
        seq,
        ok,
        tone,
        text: text.as_ref().map_or(p.text, |t| t.en.clone()),
        text_zh: Some(text.map_or(p.text_zh, |t| t.zh)),
        next: match p.next {
            picking::Next::Login => Next::Login,
            picking::Next::Tote => Next::Tote,
            picking::Next::Bin => Next::Bin,
            picking::Next::Item => Next::Item,
            picking::Next::Lot => Next::Lot,
            picking::Next::Qty => Next::Qty,
            picking::Next::Reason => Next::Reason,
            picking::Next::Done => Next::Done,
        },
    }
}

impl SqlStore {
    // ------------------------------------------------------------------ waves

    /// Puts waiting orders into a wave and writes their pick tasks in bin
    /// walk order. Idempotent on the wave number.
    pub async fn create_wave(
        &self,
        actor: &Actor,
        input: &WaveInput,
        origin: WaveOrigin,
    ) -> StoreResult<WaveView> {
        let max = input.max_orders.unwrap_or(50);
        if !(1..=LINES_MAX as i64).contains(&max) {
            return Err(StoreError::Invalid(format!(
                "max_orders must be 1 to {LINES_MAX}"
            )));
        }
        if let Some(nos) = &input.order_nos {
            check_lines("wave", nos)?;
        }
        idempotent!(
            self,
            actor,
            "wave",
            input.wave_no.as_str(),
            request_hash(input),
            |tx, _op, at| {
                let picker = match &input.picker {
                    Some(p) => Some(picker_by_name(&mut tx, p).await?),
                    None => None,
                };
                let orders: Vec<(i64, String, String)> = match &input.order_nos {
                    Some(nos) => {
                        let mut v = Vec::with_capacity(nos.len());
                        for no in nos {
                            let row: Option<(i64, String, String)> = sqlx::query_as(concat!(
                                "SELECT id, order_no, state FROM orders WHERE order_no = $1",
                                for_update!()
                            ))
                            .bind(no)
                            .fetch_optional(&mut *tx)
                            .await?;
                            v.push(row.ok_or_else(|| StoreError::NotFound(format!("order {no}")))?);
                        }
                        v
                    }
                    None => {
                        sqlx::query_as(concat!(
                            "SELECT id, order_no, state FROM orders WHERE state = 'locked' ORDER BY id LIMIT $1",
                            for_update!()
                        ))
                        .bind(max)
                        .fetch_all(&mut *tx)
                        .await?
                    }
                };
                if let Some((_, no, state)) = orders.iter().find(|o| o.2 != "locked") {
                    return Err(StoreError::Invalid(format!(
                        "order {no} is {state}, not waiting for a wave"
                    )));
                }
                if orders.is_empty() {
                    return Err(StoreError::Invalid(
                        "no orders are waiting for a wave".into(),
                    ));
                }
                let wave_id: i64 = sqlx::query_scalar(
                    "INSERT INTO waves (wave_no, origin, created_by, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(input.wave_no.as_str())
                .bind(origin.as_str())
                .bind(&actor.username)
                .bind(at)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_db)?;
                for (order_id, order_no, _) in &orders {
                    let done = sqlx::query(
                        "UPDATE orders SET state = 'picking', state_at = $3, wave_id = $1 WHERE id = $2 AND state = 'locked'",
                    )
                    .bind(wave_id)
                    .bind(order_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Err(StoreError::Invalid(format!(
                            "order {order_no} was waved or cancelled meanwhile"
                        )));
                    }
                    sqlx::query(
                        "INSERT INTO pick_tasks (wave_id, order_id, line_no, lock_id, sku_id, location_id, lot_id, walk_seq,
                             qty, state, picker_id, created_at, updated_at)
                         SELECT $1, a.order_id, a.line_no, k.id, k.sku_id, k.location_id, k.lot_id, l.walk_seq, k.qty, $2, $3,
                             $4, $4
                         FROM order_allocations a JOIN locks k ON k.id = a.lock_id JOIN locations l ON l.id = k.location_id
                         WHERE a.order_id = $5 AND k.state = 'held' AND k.qty > 0",
                    )
                    .bind(wave_id)
                    .bind(if picker.is_some() { "assigned" } else { "open" })
                    .bind(picker.as_ref().map(|p| p.user_id))
                    .bind(at)
                    .bind(order_id)
                    .execute(&mut *tx)
                    .await?;
                }
                audit(
                    &mut tx,
                    actor,
                    "wave.create",
                    input.wave_no.as_str(),
                    &orders.len(),
                )
                .await?;
                wave_view(&mut tx, wave_id).await?
            }
        )
    }

    /// Cuts a wave if the policy says one is due; the server calls this on a
    /// timer. Several servers may call it at once: each order joins one wave.
    pub async fn auto_wave(&self, policy: picking::WavePolicy) -> StoreResult<Option<WaveView>> {
        let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE state = 'locked'")
            .fetch_one(&self.read)
            .await?;
        let oldest: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT created_at FROM orders WHERE state = 'locked' ORDER BY id LIMIT 1",
        )
        .fetch_optional(&self.read)
        .await?;
        let at = now();
        let wait = oldest.map_or(0, |o| (at - o).num_seconds());
        let Some(n) = picking::wave_due(policy, waiting.max(0) as usize, wait) else {
            return Ok(None);
        };
        let wave_no = format!("AUTO-{}", at.format("%Y%m%d-%H%M%S%.3f")).replace('.', "-");
        let input = WaveInput {
            wave_no: crate::domain::DocumentNo::parse(&wave_no)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            order_nos: None,
            max_orders: Some(n as i64),
            picker: None,
        };
        match self
            .create_wave(&Actor::system(), &input, WaveOrigin::Auto)
            .await
        {
            Ok(w) => Ok(Some(w)),
            // Another server took the orders first.
            Err(StoreError::Invalid(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn get_wave(&self, wave_no: &str) -> StoreResult<WaveView> {
        let mut tx = self.read.begin().await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM waves WHERE wave_no = $1")
            .bind(wave_no)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("wave {wave_no}")))?;
        wave_view(&mut tx, id).await
    }

    pub async fn list_pick_tasks(&self, q: &PickTaskQuery) -> StoreResult<Vec<PickTaskView>> {
        if let Some(s) = &q.state {
            if TaskState::parse(s).is_none() {
                return Err(StoreError::Invalid(format!("unknown task state {s}")));
            }
        }
        let rows: Vec<TaskRow> = sqlx::query_as(&format!(
            "{TASK_SELECT} WHERE ($1 IS NULL OR w.wave_no = $1) AND ($2 IS NULL OR o.order_no = $2)
                 AND ($3 IS NULL OR t.state = $3) AND ($4 IS NULL OR u.username = $4)
             ORDER BY t.wave_id, t.walk_seq, l.code, t.id LIMIT $5"
        ))
        .bind(&q.wave_no)
        .bind(&q.order_no)
        .bind(&q.state)
        .bind(&q.picker)
        .bind(q.limit.unwrap_or(500).clamp(1, MOVEMENT_PAGE_MAX))
        .fetch_all(&self.read)
        .await?;
        rows.into_iter().map(task_from_row).collect()
    }

    /// Hands an order's unfinished tasks to a picker.
    pub async fn assign_order(
        &self,
        actor: &Actor,
        input: &AssignInput,
    ) -> StoreResult<Vec<PickTaskView>> {
        let mut tx = self.write.begin().await?;
        let picker = picker_by_name(&mut tx, &input.picker).await?;
        let order_id: i64 = sqlx::query_scalar("SELECT id FROM orders WHERE order_no = $1")
            .bind(&input.order_no)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("order {}", input.order_no)))?;
        let done = sqlx::query(
            "UPDATE pick_tasks SET picker_id = $1, state = CASE WHEN state = 'open' THEN 'assigned' ELSE state END,
                 updated_at = $2 WHERE order_id = $3 AND state IN ('open', 'assigned', 'in_progress')",
        )
        .bind(picker.user_id)
        .bind(now())
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!(
                "order {} has no unfinished pick tasks",
                input.order_no
            )));
        }
        audit(
            &mut tx,
            actor,
            "pick.assign",
            &input.order_no,
            &input.picker,
        )
        .await?;
        let rows: Vec<TaskRow> = sqlx::query_as(&format!(
            "{TASK_SELECT} WHERE t.order_id = $1 ORDER BY t.walk_seq, l.code, t.id"
        ))
        .bind(order_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter().map(task_from_row).collect()
    }

    /// Sets or clears the badge a user logs in with on a PDA.
    pub async fn set_badge(
        &self,
        actor: &Actor,
        username: &str,
        badge: Option<&str>,
    ) -> StoreResult<()> {
        let badge = badge.map(str::trim).filter(|b| !b.is_empty());
        if let Some(b) = badge {
            if b.starts_with('#') || b.chars().count() > 64 || b.chars().any(char::is_control) {
                return Err(StoreError::Invalid(
                    "a badge is 1 to 64 printable characters and does not start with #".into(),
                ));
            }
        }
        let mut tx = self.write.begin().await?;
        let hash = badge.map(badge_hash);
        if let Some(h) = &hash {
            let other: Option<String> = sqlx::query_scalar(
                "SELECT username FROM users WHERE badge = $1 AND username <> $2",
            )
            .bind(h)
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?;
            if other.is_some() {
                return Err(StoreError::AlreadyExists(
                    "this badge on another user".into(),
                ));
            }
        }
        let done = sqlx::query("UPDATE users SET badge = $1 WHERE username = $2")
            .bind(&hash)
            .bind(username)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {username}")));
        }
        audit(
            &mut tx,
            actor,
            "user.badge",
            username,
            &if hash.is_some() { "set" } else { "cleared" },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    // -------------------------------------------------------------- PDA scans

    /// One scan from a PDA: decides what it means, does it, and says what to
    /// scan next — all in one transaction, stored under the device's
    /// sequence number so that a replay gets the same answer and does nothing.
    pub async fn pda_scan(
        &self,
        input: &ScanInput,
        ctx: &ScanContext<'_>,
    ) -> StoreResult<ScanAnswer> {
        let device = input.device.trim();
        if device.is_empty() || device.len() > 64 || device.contains(':') {
            return Err(StoreError::Invalid(
                "a device id is 1 to 64 characters without ':'".into(),
            ));
        }
        let key = format!("{device}:{}", input.seq);
        let hash = request_hash(&(&input.barcode, ctx.user.map(|u| u.user_id)));
        let Some(batch) = &self.batch else {
            for _ in 0..IDEMPOTENCY_ATTEMPTS {
                let mut tx = self.write.begin().await?;
                match scan(&mut tx, &key, &hash, device, input, ctx).await {
                    // Another transaction answered this scan first: read its answer.
                    Err(StoreError::Contended) => continue,
                    Err(e) => return Err(e),
                    Ok(answer) => {
                        tx.commit().await?;
                        return Ok(answer);
                    }
                }
            }
            return Err(StoreError::Contended);
        };
        let device = device.to_string();
        let input = input.clone();
        let (tote_prefix, user) = (ctx.tote_prefix.to_string(), ctx.user.cloned());
        batch
            .run(move |tx| {
                Box::pin(async move {
                    let ctx = ScanContext {
                        tote_prefix: &tote_prefix,
                        user: user.as_ref(),
                    };
                    scan(tx, &key, &hash, &device, &input, &ctx).await
                })
            })
            .await
    }

    // --------------------------------------------------------- counts, devices

    pub async fn list_count_requests(&self) -> StoreResult<Vec<CountRequestView>> {
        let rows: Vec<(i64, String, String, String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT c.id, s.code, l.code, c.reason, c.raised_by, c.raised_at FROM count_requests c
             JOIN skus s ON s.id = c.sku_id JOIN locations l ON l.id = c.location_id
             WHERE c.closed_at IS NULL ORDER BY c.id",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, sku, bin, reason, raised_by, raised_at)| CountRequestView {
                    id,
                    sku,
                    bin,
                    reason,
                    raised_by,
                    raised_at,
                },
            )
            .collect())
    }

    /// Records a device's online/offline status (from its retained status
    /// topic, or its last will).
    pub async fn device_status(&self, site: &str, device: &str, online: bool) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO devices (site, device, online, changed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (site, device) DO UPDATE SET online = excluded.online, changed_at = excluded.changed_at",
        )
        .bind(site)
        .bind(device)
        .bind(online)
        .bind(now())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn list_devices(&self) -> StoreResult<Vec<DeviceView>> {
        let rows: Vec<(String, String, bool, DateTime<Utc>)> = sqlx::query_as(
            "SELECT site, device, online, changed_at FROM devices ORDER BY site, device",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(site, device, online, changed_at)| DeviceView {
                site,
                device,
                online,
                changed_at,
                health: None,
            })
            .collect())
    }
}

/// A scan's idempotency record (`operations`, scope `pda`, key
/// `device:seq`). It is written once, with the scan's answer, unless the
/// scan books stock: then it is claimed first, for the movements to point at.
struct ScanOp<'a> {
    key: &'a str,
    hash: &'a str,
    actor: String,
    at: DateTime<Utc>,
    id: Option<i64>,
}

impl ScanOp<'_> {
    /// The operation's id, claiming the key if it is not claimed yet.
    async fn id(&mut self, tx: &mut Tx) -> StoreResult<i64> {
        if let Some(id) = self.id {
            return Ok(id);
        }
        let id = self.insert(tx, None).await?;
        self.id = Some(id);
        Ok(id)
    }

    /// Stores the answer beside the work it describes; returns the
    /// operation's id.
    async fn answer(&mut self, tx: &mut Tx, answer: &ScanAnswer) -> StoreResult<i64> {
        match self.id {
            Some(id) => {
                store_answer(tx, id, answer).await?;
                Ok(id)
            }
            None => {
                let text = serde_json::to_string(answer)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let id = self.insert(tx, Some(&text)).await?;
                self.id = Some(id);
                Ok(id)
            }
        }
    }

    async fn insert(&self, tx: &mut Tx, response: Option<&str>) -> StoreResult<i64> {
        let id = claim_key(
            tx,
            ("pda", self.key, self.hash),
            &self.actor,
            self.at,
            response,
        )
        .await?;
        // Another transaction took the key after this one looked: the caller
        // retries and reads that transaction's answer.
        id.ok_or(StoreError::Contended)
    }
}

/// One PDA scan inside its transaction: a replay of a sequence number gets
/// its stored answer and does nothing; a new one is done and answered.
async fn scan(
    tx: &mut Tx,
    key: &str,
    hash: &str,
    device: &str,
    input: &ScanInput,
    ctx: &ScanContext<'_>,
) -> StoreResult<ScanAnswer> {
    let session: Option<SessionRead> = sqlx::query_as(concat!(
        "SELECT s.user_id, s.step, s.task_id AS session_task, u.username, u.roles,
             (SELECT request_hash FROM operations WHERE scope = $3 AND key = $4) AS seen_hash,
             (SELECT response FROM operations WHERE scope = $3 AND key = $4) AS seen_answer, ",
        task_read_cols!(),
        " FROM pda_sessions s LEFT JOIN users u ON u.id = s.user_id AND u.active = $2
         LEFT JOIN pick_tasks t ON t.id = s.task_id",
        task_read_joins!("LEFT JOIN"),
        " WHERE s.device = $1",
        for_update!("s")
    ))
    .bind(device)
    .bind(true)
    .bind("pda")
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    // A device's first scan has no session to read the key with.
    let seen = match &session {
        Some(s) => s.seen_hash.clone().map(|h| (h, s.seen_answer.clone())),
        None => idem_seen(tx, "pda", key).await?,
    };
    if let Some(seen) = seen {
        return match idem_again("pda", key, hash, seen)? {
            Idem::Done(answer) => decode_response(&answer),
            Idem::New(_) | Idem::Race => Err(StoreError::Contended),
        };
    }
    let mut op = ScanOp {
        key,
        hash,
        actor: format!("pda:{device}"),
        at: now(),
        id: None,
    };
    let mut pick = None;
    let answer = scan_in(tx, &mut op, session, device, input, ctx, &mut pick).await?;
    let op_id = op.answer(tx, &answer).await?;
    // The stock moves last. On PostgreSQL the bin's holding row stays locked
    // from its first write to the commit, and every other picker taking from
    // that bin waits on it: only the booking's own statements fall inside.
    if let Some(Pick { work, qty, picker }) = pick {
        pick_into_tote(tx, (op_id, &picker, op.at), &work, qty).await?;
    }
    Ok(answer)
}

/// What a new scan means and does, given the device's session as read. A
/// confirmed pick is left in `pick` for [`scan`] to book.
async fn scan_in(
    tx: &mut Tx,
    op: &mut ScanOp<'_>,
    session: Option<SessionRead>,
    device: &str,
    input: &ScanInput,
    ctx: &ScanContext<'_>,
    pick: &mut Option<Pick>,
) -> StoreResult<ScanAnswer> {
    let (seq, at) = (input.seq, op.at);
    let (mut user_id, mut step, mut task_id) = match &session {
        Some(s) => (
            s.user_id,
            serde_json::from_str::<Step>(&s.step)
                .map_err(|e| StoreError::Corrupt(format!("PDA session step {}: {e}", s.step)))?,
            s.session_task,
        ),
        None => (None, Step::Login, None),
    };
    let mut picker = match &session {
        Some(SessionRead {
            user_id: Some(id),
            username: Some(username),
            roles: Some(roles),
            ..
        }) => Some(Actor {
            user_id: *id,
            username: username.clone(),
            roles: parse_roles(roles),
        }),
        _ => None,
    };
    if let Some(u) = ctx.user {
        // The browser page is logged in already: its user is the picker.
        if user_id != Some(u.user_id) {
            (user_id, step, task_id) = (Some(u.user_id), Step::Idle, None);
            picker = active_user(tx, UserBy::Id(u.user_id)).await?;
        }
    }
    if picker.is_none() {
        (user_id, step, task_id) = (None, Step::Login, None);
    }
    let read = session.map(|s| s.task).filter(|_| task_id.is_some());
    let task = match (step.needs_task(), &read) {
        (true, Some(r)) => r.view()?,
        _ => None,
    };
    let mut note = picking::Said::default();
    if step.needs_task() && task.is_none() {
        if let Some(r) = read
            .as_ref()
            .filter(|r| r.order_state.as_deref() == Some("cancelled"))
        {
            let order_no = r.order_no.as_deref().unwrap_or_default();
            note = picking::Said::new(
                format!("Order {order_no} was cancelled: put its goods back"),
                format!("订单 {order_no} 已取消：请把它的货放回"),
            );
        }
    }
    let mut new_task = task.clone();
    let mut tone_warn = false;
    match picking::on_scan(step, task.as_ref(), &input.barcode, ctx.tote_prefix) {
        Decision::Refuse(text) => {
            return Ok(answer(
                seq,
                false,
                picking::prompt(step, task.as_ref(), &picking::Said::default()),
                Some(text),
            ));
        }
        Decision::Act(action) => match action {
            Action::Advance(next) => {
                // The first scan of a task starts it; later ones find it started.
                let assigned =
                    read.as_ref().and_then(|r| r.task_state.as_deref()) == Some("assigned");
                if let Some(t) = task.as_ref().filter(|_| assigned) {
                    sqlx::query(
                        "UPDATE pick_tasks SET state = 'in_progress', updated_at = $1 WHERE id = $2 AND state = 'assigned'",
                    )
                    .bind(at)
                    .bind(t.id)
                    .execute(&mut **tx)
                    .await?;
                }
                step = next;
            }
            Action::Login { badge } => {
                let who = active_user(tx, UserBy::Badge(&badge))
                    .await?
                    .filter(|a| a.has_any(&[Role::Picker, Role::Manager, Role::Admin]));
                let Some(who) = who else {
                    return Ok(answer(
                        seq,
                        false,
                        picking::prompt(Step::Login, None, &picking::Said::default()),
                        Some(picking::Said::new(
                            "Unknown badge, or not a picker. Scan your badge",
                            "工牌无效或不是拣货员。请扫描你的工牌",
                        )),
                    ));
                };
                note = picking::Said::new(
                    format!("Hello {}", who.username),
                    format!("{}，你好", who.username),
                );
                user_id = Some(who.user_id);
                (step, new_task) = find_work(tx, who.user_id, at).await?;
            }
            Action::Logout => {
                note = picking::Said::new("Logged out", "已退出");
                (user_id, step, new_task) = (None, Step::Login, None);
            }
            Action::FindWork => {
                if let Some(id) = user_id {
                    (step, new_task) = find_work(tx, id, at).await?;
                }
            }
            Action::UseTote { tote } => {
                let t = task
                    .as_ref()
                    .ok_or_else(|| StoreError::Corrupt("tote step without a task".into()))?;
                let busy: Option<String> = sqlx::query_scalar(
                    "SELECT order_no FROM orders WHERE tote = $1 AND order_no <> $2
                     AND state IN ('picking', 'picked', 'exception')",
                )
                .bind(&tote)
                .bind(&t.order_no)
                .fetch_optional(&mut **tx)
                .await?;
                if let Some(other) = busy {
                    return Ok(answer(
                        seq,
                        false,
                        picking::prompt(step, task.as_ref(), &picking::Said::default()),
                        Some(picking::Said::new(
                            format!("{tote} holds order {other}. Scan an empty tote"),
                            format!("{tote} 装着订单 {other}。请扫描一个空周转箱"),
                        )),
                    ));
                }
                if let Err(e) = ensure_tote(tx, &tote, at).await {
                    return Ok(answer(
                        seq,
                        false,
                        picking::prompt(step, task.as_ref(), &picking::Said::default()),
                        Some(picking::Said::new(
                            e.to_string(),
                            format!("周转箱 {tote} 不能使用：{e}"),
                        )),
                    ));
                }
                sqlx::query("UPDATE orders SET tote = $1 WHERE order_no = $2")
                    .bind(&tote)
                    .bind(&t.order_no)
                    .execute(&mut **tx)
                    .await?;
                note = picking::Said::new(
                    format!("{} into {tote}", t.order_no),
                    format!("{} 装入 {tote}", t.order_no),
                );
                new_task = Some(TaskView {
                    tote: Some(tote),
                    ..t.clone()
                });
                step = Step::Bin;
            }
            Action::Confirm { task: id, qty } => {
                let who = picker
                    .as_ref()
                    .ok_or_else(|| StoreError::Corrupt("a pick without a picker".into()))?;
                let w = task_for_work(tx, id).await?;
                let tote = w.tote()?;
                sqlx::query(
                    "UPDATE pick_tasks SET state = 'picked', picked_qty = $1, tote = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(qty)
                .bind(&tote)
                .bind(at)
                .bind(id)
                .execute(&mut **tx)
                .await?;
                order_progress(tx, w.order_id, at).await?;
                note = picking::Said::new(
                    format!("Picked {qty} × {} into {tote}", w.sku),
                    format!("已拣 {qty} × {} 装入 {tote}", w.sku),
                );
                (step, new_task) = find_work(tx, who.user_id, at).await?;
                *pick = Some(Pick {
                    work: w,
                    qty,
                    picker: who.clone(),
                });
            }
            Action::Short {
                task: id,
                found,
                reason,
            } => {
                let who = picker
                    .as_ref()
                    .ok_or_else(|| StoreError::Corrupt("a short pick without a picker".into()))?;
                let w = task_for_work(tx, id).await?;
                let op = op.id(tx).await?;
                note = short_pick(tx, (op, who, at), &w, found, reason).await?;
                tone_warn = true;
                (step, new_task) = find_work(tx, who.user_id, at).await?;
            }
        },
    }
    sqlx::query(
        "INSERT INTO pda_sessions (device, user_id, step, task_id, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (device) DO UPDATE SET user_id = excluded.user_id, step = excluded.step,
             task_id = excluded.task_id, updated_at = excluded.updated_at",
    )
    .bind(device)
    .bind(user_id)
    .bind(serde_json::to_string(&step).map_err(|e| StoreError::Corrupt(e.to_string()))?)
    .bind(new_task.as_ref().map(|t| t.id))
    .bind(at)
    .execute(&mut **tx)
    .await?;
    let mut p = picking::prompt(step, new_task.as_ref(), &note);
    if tone_warn {
        p.tone = picking::Tone::Warn;
    }
    // A prompt must fit the PDA's screen; the instruction is at the end, so
    // an over-long note is what gets cut.
    let bare = picking::prompt(step, new_task.as_ref(), &picking::Said::default());
    for (text, note, instruction) in [
        (&mut p.text, &note.en, bare.text),
        (&mut p.text_zh, &note.zh, bare.text_zh),
    ] {
        if text.chars().count() > 160 {
            let room = 160usize.saturating_sub(instruction.chars().count() + 3);
            let cut: String = note.chars().take(room).collect();
            *text = format!("{cut}… {instruction}");
        }
    }
    Ok(answer(seq, true, p, None))
}
