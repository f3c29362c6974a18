// The manager's dashboard: the order pipeline with its ages, work done per
// hour, open orders by customs state, and the exceptions that wait for a
// person. Reads only, on the read pool; included after the other `sql_*`
// files by both backends (`hour_of!` is each backend's own).

/// The stages an order waits in, in pipeline order, with the order states
/// they come from. `packed` is split by customs state below.
const WAITING_STAGES: [&str; 3] = ["locked", "picking", "picked"];

/// Orders not yet out and not cancelled.
const OPEN_STATES: &str = "('locked', 'picking', 'picked', 'packed', 'exception')";

/// How far back the dashboard looks for shipped and cancelled orders,
/// throughput, gate refusals and customs rejections.
pub const DASHBOARD_WINDOW_HOURS: i64 = 24;

/// Exceptions of one kind listed at most (the oldest first for work lists,
/// the newest first for events); the counts are of what was listed.
const EXCEPTIONS_MAX: i64 = 500;

impl SqlStore {
    /// The dashboard's summary at `now`: one consistent read.
    pub async fn dashboard(&self, now: DateTime<Utc>) -> StoreResult<DashboardView> {
        let since = now - chrono::Duration::hours(DASHBOARD_WINDOW_HOURS);
        let mut tx = self.read.begin().await?;
        let mut pipeline = Vec::new();
        for stage in WAITING_STAGES {
            pipeline.push(stage_of(&mut tx, stage, stage).await?);
        }
        let (awaiting, released, customs) = packed_by_customs(&mut tx).await?;
        pipeline.push(awaiting);
        pipeline.push(released);
        pipeline.push(stage_of(&mut tx, "exception", "exception").await?);
        for stage in ["shipped", "cancelled"] {
            let (count, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
                "SELECT COUNT(*), MIN(state_at) FROM orders WHERE state = $1 AND state_at >= $2",
            )
            .bind(stage)
            .bind(since)
            .fetch_one(&mut *tx)
            .await?;
            pipeline.push(PipelineStage {
                stage: stage.to_string(),
                count,
                oldest_at: oldest,
                oldest_order_no: None,
            });
        }
        let throughput = throughput_in(&mut tx, now).await?;
        let items = exceptions_in(&mut tx, since).await?;
        let mut exceptions: Vec<ExceptionCount> = Vec::new();
        for item in &items {
            match exceptions.iter_mut().find(|c| c.kind == item.kind) {
                Some(c) => c.count += 1,
                None => exceptions.push(ExceptionCount {
                    kind: item.kind.clone(),
                    count: 1,
                }),
            }
        }
        tx.commit().await?;
        Ok(DashboardView {
            generated_at: now,
            pipeline,
            throughput,
            customs,
            exceptions,
        })
    }

    /// Everything that waits for a person, each with what can be done
    /// (see [`ExceptionItem`]), as of `now`.
    pub async fn exceptions(&self, now: DateTime<Utc>) -> StoreResult<Vec<ExceptionItem>> {
        let since = now - chrono::Duration::hours(DASHBOARD_WINDOW_HOURS);
        let mut tx = self.read.begin().await?;
        let items = exceptions_in(&mut tx, since).await?;
        tx.commit().await?;
        Ok(items)
    }
}

/// How many orders are in `state`, and the one that has been there longest.
async fn stage_of(tx: &mut Tx, stage: &str, state: &str) -> StoreResult<PipelineStage> {
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM orders WHERE state = $1")
        .bind(state)
        .fetch_one(&mut **tx)
        .await?;
    let oldest: Option<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT order_no, state_at FROM orders WHERE state = $1 ORDER BY state_at, id LIMIT 1",
    )
    .bind(state)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(PipelineStage {
        stage: stage.to_string(),
        count,
        oldest_at: oldest.as_ref().map(|o| o.1),
        oldest_order_no: oldest.map(|o| o.0),
    })
}

/// Packed orders split into waiting for customs and released (ready for
/// the gate), and every open order counted by its customs state: each
/// 清单's receipts folded exactly as the gate folds them.
async fn packed_by_customs(
    tx: &mut Tx,
) -> StoreResult<(PipelineStage, PipelineStage, Vec<CustomsCount>)> {
    let orders: Vec<(String, String, String, DateTime<Utc>)> = sqlx::query_as(&format!(
        "SELECT order_no, cop_no, state, state_at FROM orders WHERE state IN {OPEN_STATES} ORDER BY id"
    ))
    .fetch_all(&mut **tx)
    .await?;
    let rows: Vec<CustomsReceiptTuple> = sqlx::query_as(&format!(
        "SELECT {} FROM customs_receipts r JOIN customs_messages m ON m.id = r.message_id
         WHERE r.cop_no IN (SELECT cop_no FROM orders WHERE state IN {OPEN_STATES})
         ORDER BY r.return_time, r.id",
        receipt_columns!()
    ))
    .fetch_all(&mut **tx)
    .await?;
    let mut receipts: BTreeMap<String, Vec<CustomsReceiptRow>> = BTreeMap::new();
    for r in rows {
        let row = customs_row(r);
        receipts
            .entry(row.cop_no.clone().unwrap_or_default())
            .or_default()
            .push(row);
    }
    let mut awaiting = PipelineStage {
        stage: "awaiting_release".into(),
        count: 0,
        oldest_at: None,
        oldest_order_no: None,
    };
    let mut released = PipelineStage {
        stage: "released".into(),
        ..awaiting.clone()
    };
    let mut by_state: BTreeMap<&'static str, i64> = BTreeMap::new();
    for (order_no, cop_no, state, at) in orders {
        let rows = receipts.get(&cop_no).cloned().unwrap_or_default();
        let customs = crate::store::customs_state::fold(&cop_no, &rows)?;
        *by_state.entry(customs.name()).or_default() += 1;
        if state != "packed" {
            continue;
        }
        let stage = if customs.is_released() {
            &mut released
        } else {
            &mut awaiting
        };
        stage.count += 1;
        if stage.oldest_at.is_none_or(|o| at < o) {
            stage.oldest_at = Some(at);
            stage.oldest_order_no = Some(order_no);
        }
    }
    let customs = by_state
        .into_iter()
        .map(|(state, count)| CustomsCount {
            state: state.to_string(),
            count,
        })
        .collect();
    Ok((awaiting, released, customs))
}

/// Work per clock hour over the window ending at `now`, oldest first, an
/// entry for every hour (zeros included) so a chart has no gaps.
async fn throughput_in(tx: &mut Tx, now: DateTime<Utc>) -> StoreResult<Vec<HourThroughput>> {
    use chrono::{DurationRound, TimeDelta};
    let this_hour = now
        .duration_trunc(TimeDelta::hours(1))
        .map_err(|e| StoreError::Invalid(format!("dashboard hour: {e}")))?;
    let first = this_hour - TimeDelta::hours(DASHBOARD_WINDOW_HOURS - 1);
    let mut hours: Vec<HourThroughput> = (0..DASHBOARD_WINDOW_HOURS)
        .map(|i| HourThroughput {
            hour: first + TimeDelta::hours(i),
            pick_lines: 0,
            units_picked: 0,
            parcels: 0,
            exits: 0,
        })
        .collect();
    let index = |key: &str| -> Option<usize> {
        // `YYYY-MM-DDTHH`, UTC, from `hour_of!`.
        let at =
            chrono::NaiveDateTime::parse_from_str(&format!("{key}:00:00"), "%Y-%m-%dT%H:%M:%S")
                .ok()?
                .and_utc();
        let i = (at - first).num_hours();
        (0..DASHBOARD_WINDOW_HOURS)
            .contains(&i)
            .then_some(i as usize)
    };
    let picks: Vec<(String, i64, i64)> = sqlx::query_as(concat!(
        "SELECT ",
        hour_of!("updated_at"),
        " AS h, COUNT(*), CAST(COALESCE(SUM(picked_qty), 0) AS BIGINT) FROM pick_tasks
         WHERE state IN ('picked', 'short') AND updated_at >= $1 GROUP BY h"
    ))
    .bind(first)
    .fetch_all(&mut **tx)
    .await?;
    for (h, lines, units) in picks {
        if let Some(i) = index(&h) {
            hours[i].pick_lines += lines;
            hours[i].units_picked += units;
        }
    }
    let parcels: Vec<(String, i64)> = sqlx::query_as(concat!(
        "SELECT ",
        hour_of!("packed_at"),
        " AS h, COUNT(*) FROM packages WHERE packed_at >= $1 GROUP BY h"
    ))
    .bind(first)
    .fetch_all(&mut **tx)
    .await?;
    for (h, n) in parcels {
        if let Some(i) = index(&h) {
            hours[i].parcels += n;
        }
    }
    let exits: Vec<(String, i64)> = sqlx::query_as(concat!(
        "SELECT ",
        hour_of!("output_at"),
        " AS h, COUNT(*) FROM gate_decisions WHERE output = 'confirmed' AND output_at >= $1 GROUP BY h"
    ))
    .bind(first)
    .fetch_all(&mut **tx)
    .await?;
    for (h, n) in exits {
        if let Some(i) = index(&h) {
            hours[i].exits += n;
        }
    }
    Ok(hours)
}

#[allow(clippy::too_many_arguments)]
fn exception(
    kind: &str,
    id: i64,
    order_no: Option<String>,
    package_no: Option<String>,
    at: DateTime<Utc>,
    detail: String,
    detail_zh: String,
    actions: &[&str],
) -> ExceptionItem {
    ExceptionItem {
        kind: kind.to_string(),
        id,
        order_no,
        package_no,
        sku: None,
        bin: None,
        at,
        detail,
        detail_zh,
        actions: actions.iter().map(|a| a.to_string()).collect(),
    }
}

/// The exception lists, one kind after another, each oldest first except
/// the gate's and customs' events of the window (newest first).
async fn exceptions_in(tx: &mut Tx, since: DateTime<Utc>) -> StoreResult<Vec<ExceptionItem>> {
    let mut items = Vec::new();
    let shorts: Vec<(i64, String, DateTime<Utc>, Option<String>)> = sqlx::query_as(
        "SELECT id, order_no, state_at, exception_reason FROM orders WHERE state = 'exception'
         ORDER BY state_at, id LIMIT $1",
    )
    .bind(EXCEPTIONS_MAX)
    .fetch_all(&mut **tx)
    .await?;
    // The Chinese wording from the order's latest short pick (the stored
    // reason is the English sentence).
    let short_tasks: Vec<(i64, i64, String, String, i64, Option<String>)> = sqlx::query_as(
        "SELECT t.order_id, t.line_no, s.code, l.code, t.short_qty, t.short_reason
         FROM pick_tasks t JOIN orders o ON o.id = t.order_id JOIN skus s ON s.id = t.sku_id
              JOIN locations l ON l.id = t.location_id
         WHERE o.state = 'exception' AND t.state = 'short' ORDER BY t.updated_at, t.id",
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut short_zh = std::collections::HashMap::new();
    for (order_id, line, sku, bin, qty, reason) in short_tasks {
        let why = reason
            .as_deref()
            .and_then(crate::domain::picking::ShortReason::parse)
            .map_or("短缺", |r| r.text_zh());
        short_zh.insert(
            order_id,
            format!("第 {line} 行 {sku}：库位 {bin} 短缺 {qty} 件（{why}），其他库位没有可用库存"),
        );
    }
    for (id, order_no, at, reason) in shorts {
        items.push(exception(
            "short_pick",
            id,
            Some(order_no),
            None,
            at,
            reason.unwrap_or_else(|| "short pick".into()),
            short_zh.remove(&id).unwrap_or_else(|| "拣货短缺".into()),
            &["cancel_order", "view_customs"],
        ));
    }
    type MismatchRow = (
        i64,
        String,
        String,
        i64,
        i64,
        i64,
        String,
        String,
        DateTime<Utc>,
    );
    let mismatches: Vec<MismatchRow> = sqlx::query_as(
        "SELECT e.id, p.package_no, o.order_no, e.expected_grams, e.gross_grams, e.allowed_grams, e.station,
                e.packer, e.at
         FROM pack_exceptions e JOIN packages p ON p.id = e.package_id JOIN orders o ON o.id = p.order_id
         WHERE e.resolution IS NULL ORDER BY e.id LIMIT $1",
    )
    .bind(EXCEPTIONS_MAX)
    .fetch_all(&mut **tx)
    .await?;
    for (id, package_no, order_no, expected, gross, allowed, station, packer, at) in mismatches {
        items.push(exception(
            "weight_mismatch",
            id,
            Some(order_no),
            Some(package_no),
            at,
            format!(
                "weighed {gross} g, expected {expected} g ± {allowed} g (at {station}, by {packer})"
            ),
            format!("称得 {gross} 克，应为 {expected} ± {allowed} 克（{station}，{packer}）"),
            &["override_weight", "cancel_order"],
        ));
    }
    type GateRow = (
        i64,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        DateTime<Utc>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let gate: Vec<GateRow> = sqlx::query_as(
        "SELECT d.id, d.gate, d.code, d.decision, d.reason_en, d.reason_zh, d.output, d.output_detail, d.decided_at,
                o.order_no, p.package_no, o.state
         FROM gate_decisions d LEFT JOIN orders o ON o.id = d.order_id LEFT JOIN packages p ON p.id = d.package_id
         WHERE d.decided_at >= $1 AND (d.decision = 'refuse' OR d.output = 'fault')
         ORDER BY d.id DESC LIMIT $2",
    )
    .bind(since)
    .bind(EXCEPTIONS_MAX)
    .fetch_all(&mut **tx)
    .await?;
    let mut seen = std::collections::HashSet::new();
    for (
        id,
        gate,
        code,
        decision,
        reason,
        reason_zh,
        output,
        detail,
        at,
        order_no,
        package_no,
        state,
    ) in gate
    {
        // Only the latest refusal of a parcel, and none for a parcel that
        // has left since or whose order is cancelled.
        if matches!(state.as_deref(), Some("shipped" | "cancelled"))
            || !seen.insert(package_no.clone().unwrap_or_else(|| code.clone()))
        {
            continue;
        }
        let (kind, text, text_zh) = if decision == "refuse" {
            (
                "gate_refusal",
                format!("gate {gate} refused {code}: {reason}"),
                format!("闸口 {gate} 拒绝 {code}：{reason_zh}"),
            )
        } else {
            let why = detail.or(output).unwrap_or_default();
            (
                "gate_fault",
                format!("gate {gate} did not open for {code}: {why}"),
                format!("闸口 {gate} 未能为 {code} 开闸，未出库：{why}"),
            )
        };
        let actions: &[&str] = if order_no.is_some() {
            &["view_customs"]
        } else {
            &[]
        };
        items.push(exception(
            kind, id, order_no, package_no, at, text, text_zh, actions,
        ));
    }
    let rejected: Vec<(i64, String, DateTime<Utc>, Option<String>)> = sqlx::query_as(
        "SELECT id, order_no, cancelled_at, cancel_reason FROM orders
         WHERE state = 'cancelled' AND cancelled_at >= $1 AND cancel_reason LIKE 'customs:%'
         ORDER BY cancelled_at DESC, id DESC LIMIT $2",
    )
    .bind(since)
    .bind(EXCEPTIONS_MAX)
    .fetch_all(&mut **tx)
    .await?;
    for (id, order_no, at, reason) in rejected {
        let reason = reason.unwrap_or_default();
        // `customs: {state} ({cop_no})`, as the customs service words it.
        let zh = match reason
            .strip_prefix("customs: ")
            .and_then(|r| r.split_once(' '))
        {
            Some(("rejected", cop)) => format!("订单已取消：海关退单 {cop}"),
            Some(("cancelled", cop)) => format!("订单已取消：清单已撤销 {cop}"),
            _ => format!("订单已取消：{reason}"),
        };
        items.push(exception(
            "customs_rejection",
            id,
            Some(order_no),
            None,
            at,
            format!("order cancelled: {reason}"),
            zh,
            &["view_customs"],
        ));
    }
    let tasks: Vec<(i64, String, String, i64, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT t.id, o.order_no, t.kind, t.return_status, t.state, t.created_at
         FROM customs_tasks t JOIN orders o ON o.id = t.order_id
         WHERE t.state IN ('open', 'moved') ORDER BY t.id LIMIT $1",
    )
    .bind(EXCEPTIONS_MAX)
    .fetch_all(&mut **tx)
    .await?;
    for (id, order_no, kind, status, state, at) in tasks {
        let kind_zh = if kind == "quarantine" {
            "隔离"
        } else {
            "查验"
        };
        let (text, text_zh, actions): (String, String, &[&str]) = if state == "open" {
            (
                format!("customs {status}: {kind} — move the parcel to the {kind} bin"),
                format!("海关 {status}：{kind_zh}——请将包裹移至{kind_zh}库位"),
                &["move_to_inspection", "close_task", "view_customs"],
            )
        } else {
            (
                format!("customs {status}: {kind} — in the {kind} bin, close when customs is done"),
                format!("海关 {status}：{kind_zh}——包裹已在{kind_zh}库位，海关完成后结束"),
                &["close_task", "view_customs"],
            )
        };
        items.push(exception(
            "customs_inspection",
            id,
            Some(order_no),
            None,
            at,
            text,
            text_zh,
            actions,
        ));
    }
    let counts: Vec<(i64, String, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT c.id, s.code, l.code, c.reason, c.raised_at
         FROM count_requests c JOIN skus s ON s.id = c.sku_id JOIN locations l ON l.id = c.location_id
         WHERE c.closed_at IS NULL ORDER BY c.id LIMIT $1",
    )
    .bind(EXCEPTIONS_MAX)
    .fetch_all(&mut **tx)
    .await?;
    for (id, sku, bin, reason, at) in counts {
        let why_zh = match reason
            .strip_prefix("short pick: ")
            .and_then(crate::domain::picking::ShortReason::parse)
        {
            Some(r) => format!("拣货短缺（{}）", r.text_zh()),
            None => reason.clone(),
        };
        let mut item = exception(
            "count_request",
            id,
            None,
            None,
            at,
            format!("count {sku} in bin {bin}: {reason}"),
            format!("盘点库位 {bin} 中的 {sku}：{why_zh}"),
            &["count_bin"],
        );
        item.sku = Some(sku);
        item.bin = Some(bin);
        items.push(item);
    }
    Ok(items)
}
