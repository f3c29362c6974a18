//! The raw-SQL twin of `Store::pda_scan` for the `pda` bench's walk: a first
//! scan that finds work, then per one-unit order its tote, bin, item and lot,
//! each scan one transaction of hand-written SQL doing what the store's
//! transaction does (the session read with the picker, task, barcodes and
//! any earlier answer; the step's own writes; the session and the answer
//! stored; a pick's stock booked last). The domain's decisions (which step
//! comes next, the prompt's words) are known from the script instead of
//! decided, which is the store's extra cost this twin leaves out.
//!
//! Written once and expanded per backend by [`raw_walk!`], as the store's SQL
//! is included once per sqlx driver.

/// Expands to `walk` for one sqlx driver. `$barcodes`: a SKU's barcodes as
/// a JSON array of text; `$lock_s`, `$lock_t`, `$lock_k`, `$lock`: the row
/// locks the store takes on PostgreSQL (session, task, reservation,
/// holding), empty on SQLite; `$skip`: the claim's `SKIP LOCKED`.
macro_rules! raw_walk {
    ($db:ty, $barcodes:literal, $lock_s:literal, $lock_t:literal, $lock_k:literal, $lock:literal, $skip:literal) => {
        use std::time::{Duration, Instant};

        use anyhow::{ensure, Context, Result};
        use chrono::{DateTime, Utc};
        use sqlx::Row;

        type Tx = sqlx::Transaction<'static, $db>;

        /// What the walk scans next.
        enum Scan {
            Start,
            Tote(String),
            Bin,
            Item,
            Lot,
        }

        /// Walks `orders` orders as device `device` of picker `user`, one
        /// scan at a time; returns each scan's time.
        pub async fn walk(
            pool: &sqlx::Pool<$db>,
            device: &str,
            user: i64,
            orders: usize,
        ) -> Result<Vec<Duration>> {
            let mut took = Vec::with_capacity(orders * 4 + 1);
            let mut scan = Scan::Start;
            let mut picked = 0;
            let mut seq = 0u64;
            while picked < orders {
                seq += 1;
                let started = Instant::now();
                let mut tx = pool.begin().await?;
                let next = one(&mut tx, device, seq, user, &scan).await?;
                tx.commit().await?;
                took.push(started.elapsed());
                scan = match scan {
                    Scan::Start | Scan::Lot => {
                        if matches!(scan, Scan::Lot) {
                            picked += 1;
                        }
                        Scan::Tote(format!("TOTE-TX-{seq}"))
                    }
                    Scan::Tote(_) => Scan::Bin,
                    Scan::Bin => Scan::Item,
                    Scan::Item => Scan::Lot,
                };
                ensure!(next.is_some() || picked == orders, "ran out of pick work");
            }
            Ok(took)
        }

        fn now() -> DateTime<Utc> {
            let t = Utc::now();
            DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
        }

        /// One scan's transaction; returns the task the device is on after it.
        async fn one(
            tx: &mut Tx,
            device: &str,
            seq: u64,
            user: i64,
            scan: &Scan,
        ) -> Result<Option<i64>> {
            let at = now();
            let key = format!("{device}:{seq}");
            let session = sqlx::query(concat!(
                "SELECT s.user_id, s.step, s.task_id AS session_task, u.username, u.roles,
                     (SELECT request_hash FROM operations WHERE scope = $3 AND key = $4) AS seen_hash,
                     (SELECT response FROM operations WHERE scope = $3 AND key = $4) AS seen_answer, t.id AS task_id,
                     o.order_no, l.code AS bin, k.code AS sku, k.name AS sku_name, lot.batch, t.qty, o.tote,
                     t.state AS task_state, o.state AS order_state, ",
                $barcodes,
                " AS barcodes FROM pda_sessions s LEFT JOIN users u ON u.id = s.user_id AND u.active = $2
                 LEFT JOIN pick_tasks t ON t.id = s.task_id LEFT JOIN orders o ON o.id = t.order_id
                 LEFT JOIN locations l ON l.id = t.location_id LEFT JOIN skus k ON k.id = t.sku_id
                 LEFT JOIN lots lot ON lot.id = t.lot_id WHERE s.device = $1",
                $lock_s
            ))
            .bind(device)
            .bind(true)
            .bind("pda")
            .bind(&key)
            .fetch_optional(&mut **tx)
            .await?;
            let (task, order_no, task_state) = match &session {
                Some(r) => {
                    ensure!(r.try_get::<Option<String>, _>("seen_hash")?.is_none(), "a replay");
                    (
                        r.try_get::<Option<i64>, _>("session_task")?,
                        r.try_get::<Option<String>, _>("order_no")?,
                        r.try_get::<Option<String>, _>("task_state")?,
                    )
                }
                None => {
                    let seen: Option<(String, Option<String>)> = sqlx::query_as(
                        "SELECT request_hash, response FROM operations WHERE scope = $1 AND key = $2",
                    )
                    .bind("pda")
                    .bind(&key)
                    .fetch_optional(&mut **tx)
                    .await?;
                    ensure!(seen.is_none(), "a replay");
                    (None, None, None)
                }
            };
            let (step, now_on, pick) = match scan {
                Scan::Start => ("tote", find_work(tx, user, at).await?, None),
                Scan::Tote(code) => {
                    let order_no = order_no.context("a tote without an order")?;
                    let busy: Option<String> = sqlx::query_scalar(
                        "SELECT order_no FROM orders WHERE tote = $1 AND order_no <> $2
                         AND state IN ('picking', 'picked', 'exception')",
                    )
                    .bind(code)
                    .bind(&order_no)
                    .fetch_optional(&mut **tx)
                    .await?;
                    ensure!(busy.is_none(), "tote {code} is busy");
                    tote_location(tx, code, at).await?;
                    sqlx::query("UPDATE orders SET tote = $1 WHERE order_no = $2")
                        .bind(code)
                        .bind(&order_no)
                        .execute(&mut **tx)
                        .await?;
                    ("bin", task, None)
                }
                Scan::Bin => {
                    if task_state.as_deref() == Some("assigned") {
                        sqlx::query(
                            "UPDATE pick_tasks SET state = 'in_progress', updated_at = $1 WHERE id = $2 AND state = 'assigned'",
                        )
                        .bind(at)
                        .bind(task)
                        .execute(&mut **tx)
                        .await?;
                    }
                    ("item", task, None)
                }
                Scan::Item => ("lot", task, None),
                Scan::Lot => {
                    let w = sqlx::query(concat!(
                        "SELECT t.id, t.wave_id, t.order_id, o.order_no, t.line_no, t.lock_id, t.sku_id, s.code, t.location_id,
                                l.code AS bin, t.lot_id, t.qty, o.tote, t.state
                         FROM pick_tasks t JOIN orders o ON o.id = t.order_id JOIN skus s ON s.id = t.sku_id
                         JOIN locations l ON l.id = t.location_id WHERE t.id = $1",
                        $lock_t
                    ))
                    .bind(task)
                    .fetch_one(&mut **tx)
                    .await?;
                    let (task_id, order_id): (i64, i64) = (w.try_get("id")?, w.try_get("order_id")?);
                    let qty: i64 = w.try_get("qty")?;
                    let tote: String = w.try_get::<Option<String>, _>("tote")?.context("no tote")?;
                    sqlx::query(
                        "UPDATE pick_tasks SET state = 'picked', picked_qty = $1, tote = $2, updated_at = $3 WHERE id = $4",
                    )
                    .bind(qty)
                    .bind(&tote)
                    .bind(at)
                    .bind(task_id)
                    .execute(&mut **tx)
                    .await?;
                    sqlx::query(
                        "UPDATE orders SET state = 'picked', state_at = $2 WHERE id = $1 AND state = 'picking' AND NOT EXISTS (
                             SELECT 1 FROM pick_tasks t WHERE t.order_id = $1 AND t.state IN ('open', 'assigned', 'in_progress'))",
                    )
                    .bind(order_id)
                    .bind(at)
                    .execute(&mut **tx)
                    .await?;
                    let next = find_work(tx, user, at).await?;
                    ("tote", next, Some((w, tote)))
                }
            };
            sqlx::query(
                "INSERT INTO pda_sessions (device, user_id, step, task_id, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (device) DO UPDATE SET user_id = excluded.user_id, step = excluded.step,
                     task_id = excluded.task_id, updated_at = excluded.updated_at",
            )
            .bind(device)
            .bind(user)
            .bind(format!("\"{step}\""))
            .bind(now_on)
            .bind(at)
            .execute(&mut **tx)
            .await?;
            // An answer of the store's size: seq, tone, both languages, next step.
            let answer = format!(
                r#"{{"seq":{seq},"ok":true,"tone":"ok","text":"Scan the {step} for order on task {now_on:?} [CODE-{seq}]","text_zh":"请扫描 {step} [CODE-{seq}]","next":"{step}"}}"#
            );
            let op: i64 = sqlx::query_scalar(
                "INSERT INTO operations (scope, key, request_hash, actor, at, response) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (scope, key) DO NOTHING RETURNING id",
            )
            .bind("pda")
            .bind(&key)
            .bind(format!("raw-{seq}"))
            .bind(format!("pda:{device}"))
            .bind(at)
            .bind(answer)
            .fetch_one(&mut **tx)
            .await?;
            if let Some((w, tote)) = pick {
                book(tx, op, at, &w, &tote).await?;
            }
            Ok(now_on)
        }

        /// The picker's next task: their own, else the oldest open order's,
        /// claimed (as the store's `find_work`).
        async fn find_work(tx: &mut Tx, user: i64, at: DateTime<Utc>) -> Result<Option<i64>> {
            let mine = concat!(
                "SELECT ",
                "t.id AS task_id, o.order_no, l.code AS bin, k.code AS sku, k.name AS sku_name, lot.batch, t.qty,
                 o.tote, t.state AS task_state, o.state AS order_state, ",
                $barcodes,
                " AS barcodes FROM pick_tasks t JOIN orders o ON o.id = t.order_id JOIN locations l ON l.id = t.location_id
                 JOIN skus k ON k.id = t.sku_id JOIN lots lot ON lot.id = t.lot_id
                 WHERE t.picker_id = $1 AND t.state IN ('assigned', 'in_progress') AND o.state IN ('picking', 'exception')
                 ORDER BY t.order_id, t.walk_seq, t.id LIMIT 1"
            );
            if let Some(r) = sqlx::query(mine).bind(user).fetch_optional(&mut **tx).await? {
                return Ok(Some(r.try_get("task_id")?));
            }
            let open: Option<i64> = sqlx::query_scalar(concat!(
                "SELECT t.order_id FROM pick_tasks t JOIN orders o ON o.id = t.order_id
                 WHERE t.state = 'open' AND t.picker_id IS NULL AND o.state IN ('picking', 'exception')
                 ORDER BY t.wave_id, t.order_id LIMIT 1",
                $skip
            ))
            .fetch_optional(&mut **tx)
            .await?;
            let Some(order_id) = open else {
                return Ok(None);
            };
            sqlx::query(
                "UPDATE pick_tasks SET picker_id = $1, state = 'assigned', updated_at = $2
                 WHERE order_id = $3 AND state = 'open' AND picker_id IS NULL",
            )
            .bind(user)
            .bind(at)
            .bind(order_id)
            .execute(&mut **tx)
            .await?;
            let r = sqlx::query(mine).bind(user).fetch_optional(&mut **tx).await?;
            r.map(|r| r.try_get("task_id")).transpose().map_err(Into::into)
        }

        /// The tote's location, created on first use.
        async fn tote_location(tx: &mut Tx, code: &str, at: DateTime<Utc>) -> Result<i64> {
            let row: Option<(i64, String)> = sqlx::query_as("SELECT id, kind FROM locations WHERE code = $1")
                .bind(code)
                .fetch_optional(&mut **tx)
                .await?;
            if let Some((id, _)) = row {
                return Ok(id);
            }
            Ok(sqlx::query_scalar(
                "INSERT INTO locations (code, zone, walk_seq, kind, active, created_at, updated_at)
                 VALUES ($1, 'TOTE', 0, 'pack', $2, $3, $3) RETURNING id",
            )
            .bind(code)
            .bind(true)
            .bind(at)
            .fetch_one(&mut **tx)
            .await?)
        }

        /// The pick's stock: the reservation and the bin's holding read (and on
        /// PostgreSQL locked), two `pick` legs, the reservation moved to the tote.
        async fn book(
            tx: &mut Tx,
            op: i64,
            at: DateTime<Utc>,
            w: &<$db as sqlx::Database>::Row,
            tote: &str,
        ) -> Result<()> {
            let (lock_id, sku_id, location_id, lot_id, qty): (i64, i64, i64, i64, i64) = (
                w.try_get("lock_id")?,
                w.try_get("sku_id")?,
                w.try_get("location_id")?,
                w.try_get("lot_id")?,
                w.try_get("qty")?,
            );
            let order_no: String = w.try_get("order_no")?;
            let lock = sqlx::query(concat!(
                "SELECT k.id, k.reference, s.code, l.code, lot.batch, lot.expiry, k.qty, k.state, k.created_at,
                        k.closed_at, k.sku_id, k.location_id, k.lot_id
                 FROM locks k JOIN skus s ON s.id = k.sku_id JOIN locations l ON l.id = k.location_id
                 JOIN lots lot ON lot.id = k.lot_id WHERE k.id = $1",
                $lock_k
            ))
            .bind(lock_id)
            .fetch_one(&mut **tx)
            .await?;
            ensure!(lock.try_get::<String, _>("state")? == "held", "lock {lock_id} not held");
            let tote_id = tote_location(tx, tote, at).await?;
            let (_, locked, _): (i64, i64, i64) = sqlx::query_as(concat!(
                "SELECT available, locked, defective FROM holdings WHERE sku_id = $1 AND location_id = $2 AND lot_id = $3",
                $lock
            ))
            .bind(sku_id)
            .bind(location_id)
            .bind(lot_id)
            .fetch_one(&mut **tx)
            .await?;
            ensure!(locked >= qty, "not enough locked");
            for (loc, from, to) in [(location_id, Some("locked"), None), (tote_id, None, Some("locked"))] {
                sqlx::query(
                    "INSERT INTO movements (operation_id, kind, sku_id, location_id, lot_id, qty, from_bucket, to_bucket,
                         doc_type, doc_no, customs_doc_no, reason, actor, approver, lock_id, at)
                     VALUES ($1, 'pick', $2, $3, $4, $5, $6, $7, 'pick', $8, NULL, NULL, $9, NULL, $10, $11) RETURNING id",
                )
                .bind(op)
                .bind(sku_id)
                .bind(loc)
                .bind(lot_id)
                .bind(qty)
                .bind(from)
                .bind(to)
                .bind(&order_no)
                .bind("raw-picker")
                .bind(lock_id)
                .bind(at)
                .fetch_one(&mut **tx)
                .await?;
            }
            sqlx::query("UPDATE locks SET location_id = $1 WHERE id = $2")
                .bind(tote_id)
                .bind(lock_id)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
    };
}

pub mod sqlite {
    raw_walk!(
        sqlx::Sqlite,
        "(SELECT json_group_array(b.barcode ORDER BY b.barcode) FROM sku_barcodes b WHERE b.sku_id = t.sku_id)",
        "",
        "",
        "",
        "",
        ""
    );
}

pub mod postgres {
    raw_walk!(
        sqlx::Postgres,
        "(SELECT COALESCE(json_agg(b.barcode ORDER BY b.barcode)::text, '[]') FROM sku_barcodes b WHERE b.sku_id = t.sku_id)",
        " FOR UPDATE OF s",
        " FOR UPDATE OF t",
        " FOR UPDATE OF k",
        " FOR UPDATE",
        " FOR UPDATE OF t SKIP LOCKED"
    );
}
