// The packing use cases, compiled once per backend like the other `sql_*.rs`
// files (included after them; uses their helpers): box types, waybill
// ranges, the pack transaction (weight decision, waybill, tote → outbound
// staging, label queued), overrides, reprints and the print queue.

use crate::domain::packing::{self as packing, Tolerance, WeightCheck};

#[derive(sqlx::FromRow)]
struct PackageRow {
    id: i64,
    package_no: String,
    order_no: String,
    state: String,
    station: String,
    packer: String,
    box_code: String,
    tare_grams: i64,
    expected_grams: i64,
    gross_grams: i64,
    allowed_grams: i64,
    weighed_at: DateTime<Utc>,
    waybill_no: Option<String>,
    override_by: Option<String>,
    override_reason: Option<String>,
    packed_at: Option<DateTime<Utc>>,
}

const PACKAGE_SELECT: &str =
    "SELECT p.id, p.package_no, o.order_no, p.state, p.station, p.packer, p.box_code,
        p.tare_grams, p.expected_grams, p.gross_grams, p.allowed_grams, p.weighed_at, p.waybill_no,
        p.override_by, p.override_reason, p.packed_at
     FROM packages p JOIN orders o ON o.id = p.order_id";

#[derive(sqlx::FromRow)]
struct PrintJobRow {
    id: i64,
    station: String,
    package_no: String,
    copy: i64,
    state: String,
    attempts: i64,
    last_error: Option<String>,
    requested_by: String,
    reason: Option<String>,
    created_at: DateTime<Utc>,
    printed_at: Option<DateTime<Utc>>,
}

const PRINT_JOB_SELECT: &str =
    "SELECT j.id, j.station, p.package_no, j.copy, j.state, j.attempts, j.last_error,
        j.requested_by, j.reason, j.created_at, j.printed_at
     FROM print_jobs j JOIN packages p ON p.id = j.package_id";

fn print_job_from_row(r: PrintJobRow) -> StoreResult<PrintJobView> {
    Ok(PrintJobView {
        id: r.id,
        station: r.station,
        package_no: r.package_no,
        copy: r.copy,
        state: PrintState::parse(&r.state)
            .ok_or_else(|| StoreError::Corrupt(format!("print job state {}", r.state)))?,
        attempts: r.attempts,
        last_error: r.last_error,
        requested_by: r.requested_by,
        reason: r.reason,
        created_at: r.created_at,
        printed_at: r.printed_at,
    })
}

async fn package_view_where(
    tx: &mut Tx,
    clause: &str,
    key: &str,
) -> StoreResult<Option<PackageView>> {
    let row: Option<PackageRow> = sqlx::query_as(&format!("{PACKAGE_SELECT} WHERE {clause}"))
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(r) = row else { return Ok(None) };
    let prints: Vec<PrintJobRow> = sqlx::query_as(&format!(
        "{PRINT_JOB_SELECT} WHERE j.package_id = $1 ORDER BY j.copy"
    ))
    .bind(r.id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(Some(PackageView {
        package_no: r.package_no,
        order_no: r.order_no,
        state: PackageState::parse(&r.state)
            .ok_or_else(|| StoreError::Corrupt(format!("package state {}", r.state)))?,
        station: r.station,
        packer: r.packer,
        box_code: r.box_code,
        tare_grams: r.tare_grams,
        expected_grams: r.expected_grams,
        gross_grams: r.gross_grams,
        diff_grams: r.gross_grams - r.expected_grams,
        allowed_grams: r.allowed_grams,
        weighed_at: r.weighed_at,
        waybill_no: r.waybill_no,
        override_by: r.override_by,
        override_reason: r.override_reason,
        packed_at: r.packed_at,
        prints: prints
            .into_iter()
            .map(print_job_from_row)
            .collect::<StoreResult<_>>()?,
    }))
}

async fn package_view(tx: &mut Tx, package_no: &str) -> StoreResult<PackageView> {
    package_view_where(tx, "p.package_no = $1", package_no)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("package {package_no}")))
}

/// The parcel number of an order: one parcel per order, named after it so a
/// guard can read which order a parcel is.
fn package_no_of(order_no: &str) -> String {
    format!("PKG-{order_no}")
}

/// The station's outbound staging, where packed parcels wait for the gate:
/// a location of kind `pack` in zone `OUTBOUND`, created on first use.
async fn ensure_outbound(
    tx: &mut Tx,
    station: &str,
    at: DateTime<Utc>,
) -> StoreResult<(i64, String)> {
    let code = format!("OUT-{station}");
    let id = ensure_pack_location(
        tx,
        &code,
        "OUTBOUND",
        "a pack station's outbound staging",
        at,
    )
    .await?;
    Ok((id, code))
}

/// The next number of a waybill range, taken under the transaction: the
/// number is used exactly when the pack commits.
async fn take_waybill(tx: &mut Tx, range: &str) -> StoreResult<String> {
    let row: Option<(i64, String, i64)> = sqlx::query_as(
        "UPDATE waybill_ranges SET next_no = next_no + 1 WHERE name = $1 AND next_no <= last_no
         RETURNING next_no - 1, prefix, width",
    )
    .bind(range)
    .fetch_optional(&mut **tx)
    .await?;
    let (n, prefix, width) = row.ok_or_else(|| {
        StoreError::Invalid(format!(
            "waybill range {range} is used up (or not configured): configure the carrier's next range"
        ))
    })?;
    Ok(format!("{prefix}{n:0width$}", width = width as usize))
}

/// The order an order number or a tote names, for packing.
async fn pack_order_id(tx: &mut Tx, code: &str) -> StoreResult<i64> {
    let code = code.trim();
    if let Some(id) = sqlx::query_scalar::<_, i64>("SELECT id FROM orders WHERE order_no = $1")
        .bind(code)
        .fetch_optional(&mut **tx)
        .await?
    {
        return Ok(id);
    }
    let in_tote: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT id, order_no, state FROM orders WHERE tote = $1
         ORDER BY CASE WHEN state IN ('picked', 'picking', 'exception') THEN 0 ELSE 1 END, id DESC LIMIT 1",
    )
    .bind(code)
    .fetch_optional(&mut **tx)
    .await?;
    match in_tote {
        // A packed order's tote answers with that parcel: a retried pack
        // (or a tote scanned twice) is told it is done, not refused.
        Some((id, _, state)) if matches!(state.as_str(), "picked" | "packed" | "shipped") => Ok(id),
        Some((_, order_no, state)) if matches!(state.as_str(), "picking" | "exception") => {
            Err(StoreError::Invalid(format!(
                "tote {code} holds order {order_no}, which is still {state}: finish picking it first"
            )))
        }
        Some((_, order_no, state)) => Err(StoreError::Invalid(format!(
            "tote {code} holds no order to pack (its last order {order_no} is {state})"
        ))),
        None => Err(StoreError::NotFound(format!("order or tote {code}"))),
    }
}

async fn pack_plan_in(tx: &mut Tx, order_id: i64) -> StoreResult<PackPlan> {
    let (order_no, state, tote): (String, String, Option<String>) =
        sqlx::query_as("SELECT order_no, state, tote FROM orders WHERE id = $1")
            .bind(order_id)
            .fetch_one(&mut **tx)
            .await?;
    let lines: Vec<(i64, i64, String, String, i64, i64)> = sqlx::query_as(
        "SELECT ol.line_no, s.id, s.code, s.name, ol.qty, s.unit_weight_grams
         FROM order_lines ol JOIN skus s ON s.id = ol.sku_id WHERE ol.order_id = $1 ORDER BY ol.line_no",
    )
    .bind(order_id)
    .fetch_all(&mut **tx)
    .await?;
    let batches: Vec<(i64, String)> = sqlx::query_as(
        "SELECT DISTINCT a.line_no, lot.batch FROM order_allocations a JOIN locks k ON k.id = a.lock_id
         JOIN lots lot ON lot.id = k.lot_id WHERE a.order_id = $1 AND k.state IN ('held', 'shipped')
         ORDER BY a.line_no, lot.batch",
    )
    .bind(order_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut plan_lines = Vec::with_capacity(lines.len());
    for (line_no, sku_id, sku, name, qty, unit_grams) in lines {
        let barcodes: Vec<String> = sqlx::query_scalar(
            "SELECT barcode FROM sku_barcodes WHERE sku_id = $1 ORDER BY barcode",
        )
        .bind(sku_id)
        .fetch_all(&mut **tx)
        .await?;
        plan_lines.push(PackPlanLine {
            sku,
            name,
            qty,
            barcodes,
            batches: batches
                .iter()
                .filter(|b| b.0 == line_no)
                .map(|b| b.1.clone())
                .collect(),
            unit_grams,
        });
    }
    let package = package_by_order(tx, order_id).await?;
    Ok(PackPlan {
        order_no,
        state: crate::domain::OrderState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("order state {state}")))?,
        tote,
        lines: plan_lines,
        package,
    })
}

async fn package_by_order(tx: &mut Tx, order_id: i64) -> StoreResult<Option<PackageView>> {
    let no: Option<String> =
        sqlx::query_scalar("SELECT package_no FROM packages WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(&mut **tx)
            .await?;
    match no {
        Some(no) => Ok(Some(package_view(tx, &no).await?)),
        None => Ok(None),
    }
}

/// The label of a package, from the order's masked consignee.
async fn label_for(
    tx: &mut Tx,
    package_id: i64,
    printed_at: &str,
    copy: Option<u32>,
) -> StoreResult<(String, LabelData)> {
    let row: (String, String, String, String, String, i64, Option<String>, String) = sqlx::query_as(
        "SELECT p.station, p.package_no, o.order_no, o.consignee_name, o.consignee_phone_masked, p.gross_grams,
                p.waybill_no, o.consignee_address
         FROM packages p JOIN orders o ON o.id = p.order_id WHERE p.id = $1",
    )
    .bind(package_id)
    .fetch_one(&mut **tx)
    .await?;
    let (station, package_no, order_no, name, phone, gross, waybill, address) = row;
    let waybill_no = waybill
        .ok_or_else(|| StoreError::Invalid(format!("package {package_no} has no waybill yet")))?;
    Ok((
        station.clone(),
        LabelData {
            waybill_no,
            order_no,
            package_no,
            consignee: packing::mask_name(&name),
            phone,
            address,
            gross_grams: gross,
            station,
            printed_at: printed_at.to_string(),
            copy,
        },
    ))
}

async fn queue_label(
    tx: &mut Tx,
    actor: &Actor,
    at: DateTime<Utc>,
    package_id: i64,
    printed_at: &str,
    reason: Option<&str>,
) -> StoreResult<i64> {
    let copy: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(copy), 0) + 1 FROM print_jobs WHERE package_id = $1",
    )
    .bind(package_id)
    .fetch_one(&mut **tx)
    .await?;
    // Copy 2 is the first reprint.
    let reprint = (copy > 1).then(|| u32::try_from(copy - 1).unwrap_or(u32::MAX));
    let (station, label) = label_for(tx, package_id, printed_at, reprint).await?;
    let text = serde_json::to_string(&label).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let id = sqlx::query_scalar(
        "INSERT INTO print_jobs (station, package_id, copy, label, state, attempts, requested_by, reason, created_at)
         VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7) RETURNING id",
    )
    .bind(station)
    .bind(package_id)
    .bind(copy)
    .bind(text)
    .bind(&actor.username)
    .bind(reason)
    .bind(at)
    .fetch_one(&mut **tx)
    .await
    .map_err(map_db)?;
    Ok(id)
}

/// Completes a parcel whose weight is accepted: waybill, the goods from the
/// tote to the station's outbound staging, the order packed, exceptions
/// resolved, the label queued.
#[allow(clippy::too_many_arguments)]
async fn finish_pack(
    tx: &mut Tx,
    actor: &Actor,
    at: DateTime<Utc>,
    order: (i64, &str),
    package_id: i64,
    station: &str,
    waybill: &WaybillChoice,
    printed_at: &str,
    resolution: &str,
) -> StoreResult<()> {
    let waybill_no = match waybill {
        WaybillChoice::Range(name) => take_waybill(tx, name).await?,
        WaybillChoice::Given(no) => no.clone(),
    };
    let (out_id, out_code) = ensure_outbound(tx, station, at).await?;
    let locks: Vec<i64> = sqlx::query_scalar(
        "SELECT a.lock_id FROM order_allocations a JOIN locks k ON k.id = a.lock_id
         WHERE a.order_id = $1 AND k.state = 'held' ORDER BY a.lock_id",
    )
    .bind(order.0)
    .fetch_all(&mut **tx)
    .await?;
    for lock_id in locks {
        let lock = lock_for_update(tx, lock_id).await?;
        let Ok(q) = Quantity::new(lock.record.qty) else {
            continue;
        };
        if lock.location_id == out_id {
            continue;
        }
        for (bin, from, to) in [
            (
                (lock.record.bin.as_str(), lock.location_id),
                Some(Bucket::Locked),
                None,
            ),
            ((out_code.as_str(), out_id), None, Some(Bucket::Locked)),
        ] {
            let mut m = NewMovement::new(
                MovementKind::Pack,
                (&lock.record.sku, lock.sku_id),
                bin,
                lock.lot_id,
                q,
            )
            .buckets(from, to)
            .doc("pack", order.1);
            m.lock_id = Some(lock_id);
            post(tx, None, actor, at, m).await?;
        }
        sqlx::query("UPDATE locks SET location_id = $1 WHERE id = $2")
            .bind(out_id)
            .bind(lock_id)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query(
        "UPDATE packages SET state = 'packed', waybill_no = $1, packed_at = $2 WHERE id = $3",
    )
    .bind(&waybill_no)
    .bind(at)
    .bind(package_id)
    .execute(&mut **tx)
    .await
    .map_err(|e| match map_db(e) {
        StoreError::Db(sqlx::Error::Database(d))
            if d.kind() == sqlx::error::ErrorKind::UniqueViolation =>
        {
            StoreError::Invalid(format!("waybill {waybill_no} is already on another parcel"))
        }
        other => other,
    })?;
    sqlx::query("UPDATE orders SET state = 'packed', state_at = $1 WHERE id = $2")
        .bind(at)
        .bind(order.0)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE pack_exceptions SET resolution = $1, resolved_by = $2, resolved_at = $3
         WHERE package_id = $4 AND resolution IS NULL",
    )
    .bind(resolution)
    .bind(&actor.username)
    .bind(at)
    .bind(package_id)
    .execute(&mut **tx)
    .await?;
    queue_label(tx, actor, at, package_id, printed_at, None).await?;
    Ok(())
}

/// On cancellation: no label for the parcel, its weight exception closed.
async fn cancel_packing(
    tx: &mut Tx,
    actor: &Actor,
    at: DateTime<Utc>,
    order_id: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE print_jobs SET state = 'cancelled' WHERE state = 'queued'
         AND package_id IN (SELECT id FROM packages WHERE order_id = $1)",
    )
    .bind(order_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE pack_exceptions SET resolution = 'cancelled', resolved_by = $1, resolved_at = $2
         WHERE resolution IS NULL AND package_id IN (SELECT id FROM packages WHERE order_id = $3)",
    )
    .bind(&actor.username)
    .bind(at)
    .bind(order_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl SqlStore {
    /// Creates a box type or changes its name, tare or active flag.
    pub async fn upsert_box_type(&self, actor: &Actor, b: &BoxTypeInput) -> StoreResult<BoxType> {
        let code = b.code.trim();
        if code.is_empty() || code.len() > 32 || code.chars().any(char::is_control) {
            return Err(StoreError::Invalid(
                "box code must be 1 to 32 printable characters".into(),
            ));
        }
        if b.name.trim().is_empty() || b.name.len() > 100 {
            return Err(StoreError::Invalid(
                "box name must be 1 to 100 characters".into(),
            ));
        }
        if !(0..=packing::GRAMS_MAX).contains(&b.tare_grams) {
            return Err(StoreError::Invalid(format!(
                "tare_grams must be between 0 and {}",
                packing::GRAMS_MAX
            )));
        }
        let mut tx = self.write.begin().await?;
        let at = now();
        let active = b.active.unwrap_or(true);
        sqlx::query(
            "INSERT INTO box_types (code, name, tare_grams, active, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (code) DO UPDATE SET name = $2, tare_grams = $3, active = $4, updated_at = $5",
        )
        .bind(code)
        .bind(b.name.trim())
        .bind(b.tare_grams)
        .bind(active)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(map_db)?;
        audit(&mut tx, actor, "box_type.upsert", code, b).await?;
        tx.commit().await?;
        Ok(BoxType {
            code: code.to_string(),
            name: b.name.trim().to_string(),
            tare_grams: b.tare_grams,
            active,
        })
    }

    pub async fn list_box_types(&self) -> StoreResult<Vec<BoxType>> {
        let rows: Vec<(String, String, i64, bool)> =
            sqlx::query_as("SELECT code, name, tare_grams, active FROM box_types ORDER BY code")
                .fetch_all(&self.read)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(code, name, tare_grams, active)| BoxType {
                code,
                name,
                tare_grams,
                active,
            })
            .collect())
    }

    /// Makes a configured waybill range known. A range already known keeps
    /// its position (numbers handed out are never handed out again); its
    /// end may be extended.
    pub async fn ensure_waybill_range(&self, r: &WaybillRange) -> StoreResult<()> {
        if r.first < 0 || r.last < r.first || !(1..=18).contains(&r.width) {
            return Err(StoreError::Invalid(format!(
                "waybill range {}: need 0 <= first <= last and a width of 1 to 18 digits",
                r.name
            )));
        }
        if r.last.to_string().len() > r.width as usize {
            return Err(StoreError::Invalid(format!(
                "waybill range {}: {} does not fit in {} digits",
                r.name, r.last, r.width
            )));
        }
        let mut tx = self.write.begin().await?;
        let known: Option<(String, i64, i64)> = sqlx::query_as(concat!(
            "SELECT prefix, next_no, last_no FROM waybill_ranges WHERE name = $1",
            for_update!()
        ))
        .bind(&r.name)
        .fetch_optional(&mut *tx)
        .await?;
        match known {
            None => {
                sqlx::query(
                    "INSERT INTO waybill_ranges (name, prefix, next_no, last_no, width) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&r.name)
                .bind(&r.prefix)
                .bind(r.first)
                .bind(r.last)
                .bind(r.width)
                .execute(&mut *tx)
                .await
                .map_err(map_db)?;
            }
            Some((prefix, next, _)) => {
                if prefix != r.prefix {
                    return Err(StoreError::Invalid(format!(
                        "waybill range {} was configured with prefix {prefix}; name a new range for a new prefix",
                        r.name
                    )));
                }
                sqlx::query("UPDATE waybill_ranges SET next_no = $1, last_no = $2, width = $3 WHERE name = $4")
                    .bind(next.max(r.first))
                    .bind(r.last.max(next - 1))
                    .bind(r.width)
                    .bind(&r.name)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_db)?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// What to check when packing the order this code names (an order
    /// number, or a tote holding a picked order).
    pub async fn pack_plan(&self, code: &str) -> StoreResult<PackPlan> {
        let mut tx = self.read.begin().await?;
        let id = pack_order_id(&mut tx, code).await?;
        pack_plan_in(&mut tx, id).await
    }

    /// Records a weighed parcel: packed if the weight matches, else kept as
    /// a mismatch on the exception list. Packing an order that is already
    /// packed answers with its parcel and does nothing.
    pub async fn pack(&self, actor: &Actor, rec: &PackRecord) -> StoreResult<PackOutcome> {
        let mut tx = self.write.begin().await?;
        let at = now();
        let row: Option<(i64, String)> = sqlx::query_as(concat!(
            "SELECT id, state FROM orders WHERE order_no = $1",
            for_update!()
        ))
        .bind(&rec.order_no)
        .fetch_optional(&mut *tx)
        .await?;
        let (order_id, state) =
            row.ok_or_else(|| StoreError::NotFound(format!("order {}", rec.order_no)))?;
        let package_no = package_no_of(&rec.order_no);
        if state == "packed" || state == "shipped" {
            let view = package_view(&mut tx, &package_no).await?;
            return Ok(PackOutcome::Packed(view, false));
        }
        if state != "picked" {
            return Err(StoreError::Invalid(format!(
                "order {} is {state}: only a picked order can be packed",
                rec.order_no
            )));
        }
        let tare: Option<(i64, bool)> =
            sqlx::query_as("SELECT tare_grams, active FROM box_types WHERE code = $1")
                .bind(&rec.box_code)
                .fetch_optional(&mut *tx)
                .await?;
        let tare = match tare {
            Some((t, true)) => t,
            Some((_, false)) => {
                return Err(StoreError::Invalid(format!(
                    "box {} is no longer in use",
                    rec.box_code
                )))
            }
            None => return Err(StoreError::NotFound(format!("box type {}", rec.box_code))),
        };
        let lines: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT s.unit_weight_grams, ol.qty FROM order_lines ol JOIN skus s ON s.id = ol.sku_id
             WHERE ol.order_id = $1",
        )
        .bind(order_id)
        .fetch_all(&mut *tx)
        .await?;
        let expected = packing::expected_grams(&lines, tare).ok_or_else(|| {
            StoreError::Invalid(format!(
                "order {}: expected weight out of range",
                rec.order_no
            ))
        })?;
        let tolerance = Tolerance {
            grams: rec.tolerance_grams,
            basis_points: rec.tolerance_basis_points,
        };
        let check = WeightCheck::new(expected, rec.gross_grams, tolerance);
        let package_id: i64 = sqlx::query_scalar(
            "INSERT INTO packages (package_no, order_id, state, station, packer, box_code, tare_grams, expected_grams,
                 gross_grams, allowed_grams, weighed_at, created_at)
             VALUES ($1, $2, 'mismatch', $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (order_id) DO UPDATE SET station = $3, packer = $4, box_code = $5, tare_grams = $6,
                 expected_grams = $7, gross_grams = $8, allowed_grams = $9, weighed_at = $10
             RETURNING id",
        )
        .bind(&package_no)
        .bind(order_id)
        .bind(&rec.station)
        .bind(&actor.username)
        .bind(&rec.box_code)
        .bind(tare)
        .bind(expected)
        .bind(rec.gross_grams)
        .bind(check.allowed)
        .bind(rec.weighed_at)
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_db)?;
        if !check.matches() {
            sqlx::query(
                "INSERT INTO pack_exceptions (package_id, kind, expected_grams, gross_grams, allowed_grams, station,
                     packer, at)
                 VALUES ($1, 'weight_mismatch', $2, $3, $4, $5, $6, $7)",
            )
            .bind(package_id)
            .bind(expected)
            .bind(rec.gross_grams)
            .bind(check.allowed)
            .bind(&rec.station)
            .bind(&actor.username)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            audit(
                &mut tx,
                actor,
                "package.weight_mismatch",
                &package_no,
                &check.explain(),
            )
            .await?;
            let view = package_view(&mut tx, &package_no).await?;
            tx.commit().await?;
            return Ok(PackOutcome::Mismatch(view));
        }
        finish_pack(
            &mut tx,
            actor,
            at,
            (order_id, &rec.order_no),
            package_id,
            &rec.station,
            &rec.waybill,
            &rec.printed_at_text,
            "reweighed",
        )
        .await?;
        audit(&mut tx, actor, "package.pack", &package_no, rec).await?;
        let view = package_view(&mut tx, &package_no).await?;
        tx.commit().await?;
        Ok(PackOutcome::Packed(view, true))
    }

    /// A manager accepts a parcel whose weight did not match, with a reason.
    pub async fn override_package(
        &self,
        actor: &Actor,
        package_no: &str,
        reason: &str,
        waybill: &WaybillChoice,
        printed_at: &str,
    ) -> StoreResult<PackageView> {
        let reason = reason.trim();
        if reason.chars().count() < 3 {
            return Err(StoreError::Invalid(
                "an override needs a reason a colleague can understand".into(),
            ));
        }
        let mut tx = self.write.begin().await?;
        let at = now();
        let row: Option<(i64, String, i64, String, String)> = sqlx::query_as(concat!(
            "SELECT p.id, p.state, o.id, o.order_no, o.state FROM packages p JOIN orders o ON o.id = p.order_id
             WHERE p.package_no = $1",
            for_update!()
        ))
        .bind(package_no)
        .fetch_optional(&mut *tx)
        .await?;
        let (package_id, state, order_id, order_no, order_state) =
            row.ok_or_else(|| StoreError::NotFound(format!("package {package_no}")))?;
        if state == "packed" {
            return Err(StoreError::Invalid(format!(
                "package {package_no} is already packed; nothing to override"
            )));
        }
        if order_state != "picked" {
            return Err(StoreError::Invalid(format!(
                "order {order_no} is {order_state}: its parcel cannot be overridden"
            )));
        }
        let station: String = sqlx::query_scalar("SELECT station FROM packages WHERE id = $1")
            .bind(package_id)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("UPDATE packages SET override_by = $1, override_reason = $2 WHERE id = $3")
            .bind(&actor.username)
            .bind(reason)
            .bind(package_id)
            .execute(&mut *tx)
            .await?;
        finish_pack(
            &mut tx,
            actor,
            at,
            (order_id, &order_no),
            package_id,
            &station,
            waybill,
            printed_at,
            "override",
        )
        .await?;
        audit(&mut tx, actor, "package.override", package_no, &reason).await?;
        let view = package_view(&mut tx, package_no).await?;
        tx.commit().await?;
        Ok(view)
    }

    pub async fn get_package(&self, package_no: &str) -> StoreResult<PackageView> {
        let mut tx = self.read.begin().await?;
        package_view(&mut tx, package_no).await
    }

    /// Weight exceptions, newest first; only unresolved ones when `open`.
    pub async fn list_pack_exceptions(&self, open: bool) -> StoreResult<Vec<PackExceptionView>> {
        type Row = (
            i64,
            String,
            String,
            String,
            i64,
            i64,
            i64,
            String,
            String,
            DateTime<Utc>,
            Option<String>,
            Option<String>,
            Option<DateTime<Utc>>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT e.id, p.package_no, o.order_no, e.kind, e.expected_grams, e.gross_grams, e.allowed_grams,
                    e.station, e.packer, e.at, e.resolution, e.resolved_by, e.resolved_at
             FROM pack_exceptions e JOIN packages p ON p.id = e.package_id JOIN orders o ON o.id = p.order_id
             WHERE ($1 = FALSE OR e.resolution IS NULL) ORDER BY e.id DESC LIMIT 1000",
        )
        .bind(open)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| PackExceptionView {
                id: r.0,
                package_no: r.1,
                order_no: r.2,
                kind: r.3,
                expected_grams: r.4,
                gross_grams: r.5,
                allowed_grams: r.6,
                station: r.7,
                packer: r.8,
                at: r.9,
                resolution: r.10,
                resolved_by: r.11,
                resolved_at: r.12,
            })
            .collect())
    }

    /// Queues another copy of a packed parcel's label, with the reason in
    /// the audit log.
    pub async fn reprint(
        &self,
        actor: &Actor,
        package_no: &str,
        reason: &str,
        printed_at: &str,
    ) -> StoreResult<PrintJobView> {
        let reason = reason.trim();
        if reason.is_empty() || reason.len() > 500 {
            return Err(StoreError::Invalid(
                "a reprint needs a reason (up to 500 characters)".into(),
            ));
        }
        let mut tx = self.write.begin().await?;
        let at = now();
        let row: Option<(i64, String)> = sqlx::query_as(concat!(
            "SELECT id, state FROM packages WHERE package_no = $1",
            for_update!()
        ))
        .bind(package_no)
        .fetch_optional(&mut *tx)
        .await?;
        let (package_id, state) =
            row.ok_or_else(|| StoreError::NotFound(format!("package {package_no}")))?;
        if state != "packed" {
            return Err(StoreError::Invalid(format!(
                "package {package_no} is not packed: it has no label to reprint"
            )));
        }
        let job = queue_label(&mut tx, actor, at, package_id, printed_at, Some(reason)).await?;
        audit(&mut tx, actor, "package.reprint", package_no, &reason).await?;
        let row: PrintJobRow = sqlx::query_as(&format!("{PRINT_JOB_SELECT} WHERE j.id = $1"))
            .bind(job)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        print_job_from_row(row)
    }

    /// The oldest label waiting for a station's printer.
    pub async fn next_print_job(&self, station: &str) -> StoreResult<Option<PrintJob>> {
        let row: Option<(i64, String, String)> = sqlx::query_as(
            "SELECT id, station, label FROM print_jobs WHERE station = $1 AND state = 'queued' ORDER BY id LIMIT 1",
        )
        .bind(station)
        .fetch_optional(&self.write)
        .await?;
        row.map(|(id, station, label)| {
            Ok(PrintJob {
                id,
                station,
                label: decode_response(&label)?,
            })
        })
        .transpose()
    }

    /// Records a print attempt. Only a queued job changes: one printed or
    /// cancelled meanwhile stays as it is.
    pub async fn print_attempt(&self, id: i64, outcome: &PrintOutcome) -> StoreResult<()> {
        let at = now();
        let (state, error) = match outcome {
            PrintOutcome::Printed => ("printed", None),
            PrintOutcome::Retry(e) => ("queued", Some(e)),
            PrintOutcome::Failed(e) => ("cancelled", Some(e)),
        };
        sqlx::query(
            "UPDATE print_jobs SET state = $1, attempts = attempts + 1, last_error = $2,
                 printed_at = CASE WHEN $1 = 'printed' THEN $3 ELSE printed_at END
             WHERE id = $4 AND state = 'queued'",
        )
        .bind(state)
        .bind(error.map(|e| e.chars().take(500).collect::<String>()))
        .bind(at)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Print jobs, newest first, optionally of one station or state.
    pub async fn list_print_jobs(
        &self,
        station: Option<&str>,
        state: Option<PrintState>,
    ) -> StoreResult<Vec<PrintJobView>> {
        let state = state.map(|s| match s {
            PrintState::Queued => "queued",
            PrintState::Printed => "printed",
            PrintState::Cancelled => "cancelled",
        });
        let rows: Vec<PrintJobRow> = sqlx::query_as(&format!(
            "{PRINT_JOB_SELECT} WHERE ($1 IS NULL OR j.station = $1) AND ($2 IS NULL OR j.state = $2)
             ORDER BY j.id DESC LIMIT 1000"
        ))
        .bind(station)
        .bind(state)
        .fetch_all(&self.read)
        .await?;
        rows.into_iter().map(print_job_from_row).collect()
    }

    /// A pack station scanner's session: its last sequence number, its
    /// state and the answer it was given (JSON, the service's own shapes).
    pub async fn pack_session(&self, station: &str) -> StoreResult<Option<(i64, String, String)>> {
        Ok(
            sqlx::query_as("SELECT seq, state, answer FROM pack_sessions WHERE station = $1")
                .bind(station)
                .fetch_optional(&self.write)
                .await?,
        )
    }

    /// Saves a session after a scan, only if nobody saved a later scan
    /// meanwhile (`prev_seq` is the sequence number it was read at; None:
    /// there was no session). Returns whether it was saved.
    pub async fn save_pack_session(
        &self,
        station: &str,
        prev_seq: Option<i64>,
        seq: i64,
        state: &str,
        answer: &str,
    ) -> StoreResult<bool> {
        let at = now();
        let done = match prev_seq {
            None => sqlx::query(
                "INSERT INTO pack_sessions (station, seq, state, answer, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (station) DO NOTHING",
            )
            .bind(station)
            .bind(seq)
            .bind(state)
            .bind(answer)
            .bind(at)
            .execute(&self.write)
            .await?,
            Some(prev) => sqlx::query(
                "UPDATE pack_sessions SET seq = $1, state = $2, answer = $3, updated_at = $4
                 WHERE station = $5 AND seq = $6",
            )
            .bind(seq)
            .bind(state)
            .bind(answer)
            .bind(at)
            .bind(station)
            .bind(prev)
            .execute(&self.write)
            .await?,
        };
        Ok(done.rows_affected() == 1)
    }

    /// The CEB511 waybill record of a packed parcel.
    pub async fn waybill_record(
        &self,
        package_no: &str,
        logistics: (&str, &str),
    ) -> StoreResult<WaybillRecord> {
        /// waybill, order, freight (fen), consignee, address, phone (masked),
        /// gross grams, phone (sealed)
        type Row = (
            Option<String>,
            String,
            i64,
            String,
            String,
            String,
            i64,
            String,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT p.waybill_no, o.order_no, o.freight_fen, o.consignee_name, o.consignee_address,
                        o.consignee_phone_masked, p.gross_grams, o.consignee_phone_sealed
                 FROM packages p JOIN orders o ON o.id = p.order_id WHERE p.package_no = $1",
        )
        .bind(package_no)
        .fetch_optional(&self.read)
        .await?;
        let (waybill, order_no, freight, consignee, address, phone, gross, sealed) =
            row.ok_or_else(|| StoreError::NotFound(format!("package {package_no}")))?;
        let logistics_no = waybill.ok_or_else(|| {
            StoreError::Invalid(format!("package {package_no} has no waybill yet"))
        })?;
        Ok(WaybillRecord {
            logistics_code: logistics.0.to_string(),
            logistics_name: logistics.1.to_string(),
            logistics_no,
            order_no,
            freight: money(freight)?.to_string(),
            weight: packing::kg_text(gross),
            pack_no: 1,
            consignee,
            consignee_address: address,
            consignee_telephone: phone,
            consignee_telephone_sealed: sealed,
        })
    }
}
