// The outbound gate's decision, compiled once per backend like the other
// `sql_*.rs` files. The rules are the domain's (`domain::gate`); this file
// gathers their facts and records what came of them.
//
// An open is two commits. The first decides and grants (`output` pending,
// with the command id and its expiry); the gate service then pulses the
// output. The second records the output's answer: confirmed ships the
// parcel's reservations in that same commit, a fault ships nothing. So a
// parcel is shipped exactly when the gate confirmed opening for it, and the
// unique index on open decisions refuses a second grant for a parcel whose
// first has not failed, whatever the checks above it said.

/// One decision row as selected by `GATE_DECISION_SELECT`.
#[derive(sqlx::FromRow)]
struct GateDecisionRow {
    id: i64,
    gate: String,
    code: String,
    decision: String,
    reason_code: String,
    reason_en: String,
    reason_zh: String,
    order_no: Option<String>,
    package_no: Option<String>,
    evidence_receipt_id: Option<i64>,
    decided_by: String,
    decided_at: DateTime<Utc>,
    output: Option<String>,
    output_kind: Option<String>,
    command_id: Option<String>,
    output_detail: Option<String>,
    expires_at: Option<DateTime<Utc>>,
}

const GATE_DECISION_SELECT: &str = "SELECT d.id, d.gate, d.code, d.decision, d.reason_code, d.reason_en, d.reason_zh,
        o.order_no, p.package_no, d.evidence_receipt_id, d.decided_by, d.decided_at,
        d.output, d.output_kind, d.command_id, d.output_detail, d.expires_at
     FROM gate_decisions d LEFT JOIN orders o ON o.id = d.order_id LEFT JOIN packages p ON p.id = d.package_id";

fn gate_view(r: GateDecisionRow) -> GateDecisionView {
    let result = match (r.decision.as_str(), r.output.as_deref()) {
        ("open", Some("confirmed")) => "open",
        ("open", Some("pending")) => "pending",
        ("open", _) => "fault",
        _ => "refused",
    };
    GateDecisionView {
        id: r.id,
        gate: r.gate,
        code: r.code,
        result: result.into(),
        decision: r.decision,
        reason_code: r.reason_code,
        reason_en: r.reason_en,
        reason_zh: r.reason_zh,
        order_no: r.order_no,
        package_no: r.package_no,
        evidence_receipt_id: r.evidence_receipt_id,
        decided_by: r.decided_by,
        decided_at: r.decided_at,
        output: r.output,
        output_kind: r.output_kind,
        command_id: r.command_id,
        output_detail: r.output_detail,
        expires_at: r.expires_at,
    }
}

async fn gate_decision_in(tx: &mut Tx, id: i64) -> StoreResult<GateDecisionView> {
    let row: GateDecisionRow = sqlx::query_as(&format!("{GATE_DECISION_SELECT} WHERE d.id = $1"))
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(gate_view(row))
}

/// Ships every held reservation of the order and marks it shipped: the
/// parcel has physically left through the gate.
async fn ship_order_in(
    tx: &mut Tx,
    actor: &Actor,
    at: DateTime<Utc>,
    order_id: i64,
) -> StoreResult<()> {
    let (order_no, state): (String, String) = sqlx::query_as(concat!(
        "SELECT order_no, state FROM orders WHERE id = $1",
        for_update!()
    ))
    .bind(order_id)
    .fetch_one(&mut **tx)
    .await?;
    if state == "cancelled" {
        // Cancelled while the pulse was in flight (a customs rejection
        // arriving in that second): its stock was already released. The
        // parcel is out; say so loudly rather than ship what is not held.
        tracing::error!(%order_no, "the gate confirmed an exit for an order cancelled meanwhile: check the parcel");
        return Ok(());
    }
    let locks: Vec<i64> = sqlx::query_scalar(
        "SELECT a.lock_id FROM order_allocations a JOIN locks k ON k.id = a.lock_id
         WHERE a.order_id = $1 AND k.state = 'held' ORDER BY a.lock_id",
    )
    .bind(order_id)
    .fetch_all(&mut **tx)
    .await?;
    for lock_id in locks {
        close_lock_in(tx, actor, at, lock_id, Some(&order_no), None).await?;
    }
    sqlx::query("UPDATE orders SET state = 'shipped', state_at = $1 WHERE id = $2")
        .bind(at)
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// After a failed exit: an order whose 清单 customs rejected or cancelled
/// while the pulse was under way (its cancellation waited for the gate's
/// answer, see `cancel_order`) is cancelled now, its stock released.
async fn cancel_if_customs_ended(
    tx: &mut Tx,
    actor: &Actor,
    at: DateTime<Utc>,
    order_id: i64,
) -> StoreResult<()> {
    let (order_no, state, cop_no): (String, String, String) = sqlx::query_as(concat!(
        "SELECT order_no, state, cop_no FROM orders WHERE id = $1",
        for_update!()
    ))
    .bind(order_id)
    .fetch_one(&mut **tx)
    .await?;
    if matches!(state.as_str(), "cancelled" | "shipped") {
        return Ok(());
    }
    let rows = receipts_of(tx, &cop_no).await?;
    let customs = crate::store::customs_state::fold(&cop_no, &rows)?;
    let ended = match customs {
        bondgate_customs::CustomsState::Rejected { .. } => "rejected",
        bondgate_customs::CustomsState::Cancelled { .. } => "cancelled",
        _ => return Ok(()),
    };
    let reason = format!("customs: {ended} ({cop_no}), after a failed gate exit");
    tracing::info!(%order_no, %cop_no, "order cancelled: customs {ended} while its exit was under way");
    cancel_order_in(tx, actor, at, order_id, &order_no, &reason).await
}

impl SqlStore {
    /// Decides one scan at a gate (DESIGN §4, `domain::gate::decide`) and
    /// records it with its evidence. An open is a grant: `output` pending,
    /// with `grant`'s command id and expiry; nothing ships until
    /// [`gate_output`](Self::gate_output) records the output's confirmation.
    /// A `scan_key` seen before answers the decision it made then.
    pub async fn gate_scan(
        &self,
        actor: &Actor,
        gate: &str,
        input: &GateScanInput,
        grant: &GateGrant,
        scan_key: Option<&str>,
    ) -> StoreResult<GateDecisionView> {
        let code = input.code.trim();
        if code.is_empty() || code.chars().count() > 64 || code.chars().any(char::is_control) {
            return Err(StoreError::Invalid(
                "a gate scan is 1 to 64 printable characters".into(),
            ));
        }
        let mut tx = self.write.begin().await?;
        if let Some(key) = scan_key {
            let seen: Option<i64> =
                sqlx::query_scalar("SELECT id FROM gate_decisions WHERE scan_key = $1")
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(id) = seen {
                let view = gate_decision_in(&mut tx, id).await?;
                tx.commit().await?;
                return Ok(view);
            }
        }
        let at = now();
        let parcel: Option<(i64, String, String, i64, String, String, String)> =
            sqlx::query_as(concat!(
                "SELECT p.id, p.package_no, p.state, o.id, o.order_no, o.state, o.cop_no
             FROM packages p JOIN orders o ON o.id = p.order_id
             WHERE p.package_no = $1 OR p.waybill_no = $1",
                for_update!("o")
            ))
            .bind(code)
            .fetch_optional(&mut *tx)
            .await?;
        let (package_id, order_id, verdict) = match parcel {
            None => (
                None,
                None,
                crate::domain::gate::decide(code, None, &bondgate_customs::CustomsState::NoReceipt),
            ),
            Some((pid, package_no, package_state, oid, order_no, order_state, cop_no)) => {
                let exit: Option<String> = sqlx::query_scalar(
                    "SELECT output FROM gate_decisions
                     WHERE package_id = $1 AND decision = 'open' AND output <> 'fault'",
                )
                .bind(pid)
                .fetch_optional(&mut *tx)
                .await?;
                let facts = crate::domain::gate::ParcelFacts {
                    package_no,
                    package_state,
                    order_no,
                    order_state,
                    exit: exit.as_deref().and_then(crate::domain::gate::Exit::parse),
                };
                let verdict = match crate::domain::gate::parcel_refusal(code, Some(&facts)) {
                    Some(r) => crate::domain::gate::Verdict::Refuse(r),
                    None => {
                        let rows = receipts_of(&mut tx, &cop_no).await?;
                        let state = crate::store::customs_state::fold(&cop_no, &rows)?;
                        crate::domain::gate::customs_verdict(&state)
                    }
                };
                (Some(pid), Some(oid), verdict)
            }
        };
        let (decision, reason_code, en, zh, evidence, output) = match verdict {
            crate::domain::gate::Verdict::Open { release } => (
                "open",
                "released",
                "Released: open".to_string(),
                "海关已放行：开闸".to_string(),
                Some(i64::try_from(release).map_err(|_| StoreError::Corrupt("receipt id".into()))?),
                Some(crate::domain::gate::Exit::Pending.as_str()),
            ),
            crate::domain::gate::Verdict::Refuse(r) => ("refuse", r.code, r.en, r.zh, None, None),
        };
        let (kind, command, expires) = match output {
            Some(_) => (
                Some(grant.output_kind.as_str()),
                Some(grant.command_id.as_str()),
                Some(grant.expires_at),
            ),
            None => (None, None, None),
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO gate_decisions (gate, code, package_id, order_id, decision, reason_code, reason_en, reason_zh,
                 evidence_receipt_id, decided_by, decided_at, scan_key, output, output_kind, command_id, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
        )
        .bind(gate)
        .bind(code)
        .bind(package_id)
        .bind(order_id)
        .bind(decision)
        .bind(reason_code)
        .bind(&en)
        .bind(&zh)
        .bind(evidence)
        .bind(&actor.username)
        .bind(at)
        .bind(scan_key)
        .bind(output)
        .bind(kind)
        .bind(command)
        .bind(expires)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_db)?;
        let view = gate_decision_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Records what the output said of a granted exit. A confirmation ships
    /// the parcel in this commit (once: a second confirmation changes
    /// nothing); a fault ships nothing and shows the guard why. A
    /// confirmation after a fault is refused (the exit was already reported
    /// as not having happened) and left for a supervisor.
    pub async fn gate_output(
        &self,
        actor: &Actor,
        decision_id: i64,
        event: crate::domain::gate::ExitEvent,
        detail: &str,
    ) -> StoreResult<GateDecisionView> {
        use crate::domain::gate::{Exit, ExitEvent, Refusal};
        let mut tx = self.write.begin().await?;
        let row: Option<(Option<String>, Option<i64>)> = sqlx::query_as(concat!(
            "SELECT output, order_id FROM gate_decisions WHERE id = $1",
            for_update!()
        ))
        .bind(decision_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((Some(output), Some(order_id))) = row else {
            return Err(StoreError::NotFound(format!(
                "no open gate decision {decision_id}"
            )));
        };
        let current = Exit::parse(&output)
            .ok_or_else(|| StoreError::Corrupt(format!("gate output state {output:?}")))?;
        let (next, ship) = current
            .apply(event)
            .map_err(|e| StoreError::Invalid(format!("gate decision {decision_id}: {e}")))?;
        let at = now();
        if ship {
            ship_order_in(&mut tx, actor, at, order_id).await?;
        }
        if next != current {
            let detail: String = detail.chars().take(500).collect();
            match event {
                ExitEvent::Confirm => {
                    sqlx::query(
                        "UPDATE gate_decisions SET output = $2, output_detail = $3, output_at = $4 WHERE id = $1",
                    )
                    .bind(decision_id)
                    .bind(next.as_str())
                    .bind(&detail)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                ExitEvent::Fault => {
                    let r = Refusal::output_fault(&detail);
                    sqlx::query(
                        "UPDATE gate_decisions SET output = $2, output_detail = $3, output_at = $4,
                             reason_code = $5, reason_en = $6, reason_zh = $7 WHERE id = $1",
                    )
                    .bind(decision_id)
                    .bind(next.as_str())
                    .bind(&detail)
                    .bind(at)
                    .bind(r.code)
                    .bind(&r.en)
                    .bind(&r.zh)
                    .execute(&mut *tx)
                    .await?;
                    cancel_if_customs_ended(&mut tx, actor, at, order_id).await?;
                }
            }
        }
        let view = gate_decision_in(&mut tx, decision_id).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Granted exits whose command expired more than `grace` ago without
    /// an answer: the server stopped, or lost the output, mid-pulse. Each is
    /// settled from the output's recorded reports: an `open` report for its
    /// command confirms it (the parcel left), anything else faults it (the
    /// command expired, so no bridge will still execute it). `skip` are
    /// decisions the service is still settling itself.
    pub async fn gate_sweep(
        &self,
        actor: &Actor,
        grace: chrono::Duration,
        skip: &[i64],
    ) -> StoreResult<Vec<GateDecisionView>> {
        let cutoff = now() - grace;
        let pending: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, gate FROM gate_decisions WHERE output = 'pending' AND expires_at < $1 ORDER BY id",
        )
        .bind(cutoff)
        .fetch_all(&self.read)
        .await?;
        let mut settled = Vec::new();
        for (id, gate) in pending {
            if skip.contains(&id) {
                continue;
            }
            let opened: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM gate_events WHERE gate = $1 AND seq = $2 AND state = 'open' LIMIT 1",
            )
            .bind(&gate)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
            let (event, detail) = match opened {
                Some(_) => (
                    crate::domain::gate::ExitEvent::Confirm,
                    "the output reported the pulse; settled after a restart",
                ),
                None => (
                    crate::domain::gate::ExitEvent::Fault,
                    "no confirmation before the command expired",
                ),
            };
            match self.gate_output(actor, id, event, detail).await {
                Ok(v) => settled.push(v),
                // Settled by someone else in between.
                Err(StoreError::Invalid(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(settled)
    }

    /// Records a state a gate output reported.
    pub async fn gate_event(&self, e: &GateEventInput) -> StoreResult<()> {
        let seq =
            i64::try_from(e.seq).map_err(|_| StoreError::Invalid("gate seq too large".into()))?;
        let at = now();
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO gate_events (gate, seq, state, source, detail, at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&e.gate)
        .bind(seq)
        .bind(&e.state)
        .bind(&e.source)
        .bind(&e.detail)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        // The output says it opened for an exit already recorded as a
        // fault (its answer came after the command's deadline): the barrier
        // may have let a parcel out that the books still hold. Nothing is
        // shipped on a late word; the decision says so for a supervisor.
        if e.state == "open" && seq > 0 {
            let late = sqlx::query(
                "UPDATE gate_decisions
                 SET output_detail = COALESCE(output_detail, '') || $3
                 WHERE id = $1 AND gate = $2 AND output = 'fault'
                   AND COALESCE(output_detail, '') NOT LIKE '%LATE OPEN%'",
            )
            .bind(seq)
            .bind(&e.gate)
            .bind(format!(
                " | LATE OPEN reported by the output at {}: the parcel may have left without being booked; check it",
                at.format("%Y-%m-%d %H:%M:%S UTC")
            ))
            .execute(&mut *tx)
            .await?;
            if late.rows_affected() > 0 {
                metrics::counter!("bondgate_gate_late_opens_total", "gate" => e.gate.clone())
                    .increment(1);
                tracing::error!(gate = %e.gate, decision = seq, "ALARM: the gate output reported open after the exit was recorded as a fault");
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// A gate's latest decisions, newest first.
    pub async fn gate_decisions(
        &self,
        gate: &str,
        limit: i64,
    ) -> StoreResult<Vec<GateDecisionView>> {
        let rows: Vec<GateDecisionRow> = sqlx::query_as(&format!(
            "{GATE_DECISION_SELECT} WHERE d.gate = $1 ORDER BY d.id DESC LIMIT $2"
        ))
        .bind(gate)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(gate_view).collect())
    }

    /// One decision.
    pub async fn gate_decision(&self, id: i64) -> StoreResult<GateDecisionView> {
        let row: Option<GateDecisionRow> =
            sqlx::query_as(&format!("{GATE_DECISION_SELECT} WHERE d.id = $1"))
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
        row.map(gate_view)
            .ok_or_else(|| StoreError::NotFound(format!("gate decision {id}")))
    }
}
