// The outbound gate's decision, compiled once per backend like the other
// `sql_*.rs` files. One transaction decides and, on open, ships: the
// parcel's reservations leave the books in the same commit as the decision
// that let it out, and the unique index on open decisions refuses a second
// exit whatever the checks above it said.

type GateDecisionTuple = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    String,
    DateTime<Utc>,
);

const GATE_DECISION_SELECT: &str = "SELECT d.id, d.gate, d.code, d.decision, d.reason_code, d.reason_en, d.reason_zh,
        o.order_no, p.package_no, d.evidence_receipt_id, d.decided_by, d.decided_at
     FROM gate_decisions d LEFT JOIN orders o ON o.id = d.order_id LEFT JOIN packages p ON p.id = d.package_id";

fn gate_view(r: GateDecisionTuple) -> GateDecisionView {
    GateDecisionView {
        id: r.0,
        gate: r.1,
        code: r.2,
        decision: r.3,
        reason_code: r.4,
        reason_en: r.5,
        reason_zh: r.6,
        order_no: r.7,
        package_no: r.8,
        evidence_receipt_id: r.9,
        decided_by: r.10,
        decided_at: r.11,
    }
}

/// What the checks found: open with the release receipt, or refuse why.
enum Verdict {
    Open(i64),
    Refuse(&'static str, String, String),
}

fn refuse(code: &'static str, en: impl Into<String>, zh: impl Into<String>) -> Verdict {
    Verdict::Refuse(code, en.into(), zh.into())
}

impl SqlStore {
    /// Decides one scan at a gate (DESIGN §4): open only for a known,
    /// packed parcel (weight matched or overridden) whose order is neither
    /// cancelled nor shipped and whose 清单's latest customs state is a
    /// release with no later hold. On open, the parcel's stock is shipped in
    /// the same transaction. Every decision is stored with its evidence.
    pub async fn gate_scan(
        &self,
        actor: &Actor,
        gate: &str,
        input: &GateScanInput,
    ) -> StoreResult<GateDecisionView> {
        let code = input.code.trim();
        if code.is_empty() || code.chars().count() > 64 || code.chars().any(char::is_control) {
            return Err(StoreError::Invalid(
                "a gate scan is 1 to 64 printable characters".into(),
            ));
        }
        let mut tx = self.write.begin().await?;
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
        let (package_id, order_id, order_no, verdict) = match parcel {
            None => (
                None,
                None,
                None,
                refuse(
                    "unknown_parcel",
                    format!("Unknown parcel {code}: not packed here"),
                    format!("未知包裹 {code}：不是本仓打包的包裹"),
                ),
            ),
            Some((pid, package_no, pstate, oid, order_no, ostate, cop_no)) => {
                let verdict = if ostate == "shipped" {
                    refuse(
                        "already_exited",
                        format!("Parcel {package_no} has already left"),
                        format!("包裹 {package_no} 已出库"),
                    )
                } else if ostate == "cancelled" {
                    refuse(
                        "order_cancelled",
                        format!("Order {order_no} was cancelled: hold the parcel"),
                        format!("订单 {order_no} 已取消：扣下包裹"),
                    )
                } else if pstate != "packed" || ostate != "packed" {
                    refuse(
                        "not_packed",
                        format!("Parcel {package_no} was not packed with an accepted weight"),
                        format!("包裹 {package_no} 未通过称重复核"),
                    )
                } else {
                    let rows = receipts_of(&mut tx, &cop_no).await?;
                    let state = crate::store::customs_state::fold(&cop_no, &rows)?;
                    match (bondgate_customs::gate_allows(&state), &state) {
                        (Ok(()), bondgate_customs::CustomsState::Released { receipt, .. }) => {
                            Verdict::Open(i64::try_from(receipt.arrival).unwrap_or(0))
                        }
                        (Ok(()), _) => refuse(
                            "customs.not_released",
                            "No customs release held for this parcel",
                            "未取得海关放行",
                        ),
                        (Err(r), _) => Verdict::Refuse(r.code, r.text_en, r.text_zh),
                    }
                };
                (Some(pid), Some(oid), Some(order_no), verdict)
            }
        };
        let (decision, reason_code, en, zh, evidence) = match verdict {
            Verdict::Open(receipt_id) => {
                let order_id =
                    order_id.ok_or_else(|| StoreError::Corrupt("open without an order".into()))?;
                let locks: Vec<i64> = sqlx::query_scalar(
                    "SELECT a.lock_id FROM order_allocations a JOIN locks k ON k.id = a.lock_id
                     WHERE a.order_id = $1 AND k.state = 'held' ORDER BY a.lock_id",
                )
                .bind(order_id)
                .fetch_all(&mut *tx)
                .await?;
                let doc = order_no.clone().unwrap_or_default();
                for lock_id in locks {
                    close_lock_in(&mut tx, actor, at, lock_id, Some(&doc), None).await?;
                }
                sqlx::query("UPDATE orders SET state = 'shipped' WHERE id = $1")
                    .bind(order_id)
                    .execute(&mut *tx)
                    .await?;
                (
                    "open",
                    "released",
                    "Released: open".to_string(),
                    "海关已放行：开闸".to_string(),
                    Some(receipt_id),
                )
            }
            Verdict::Refuse(code, en, zh) => ("refuse", code, en, zh, None),
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO gate_decisions (gate, code, package_id, order_id, decision, reason_code, reason_en, reason_zh,
                 evidence_receipt_id, decided_by, decided_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
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
        .fetch_one(&mut *tx)
        .await
        .map_err(map_db)?;
        let row: GateDecisionTuple =
            sqlx::query_as(&format!("{GATE_DECISION_SELECT} WHERE d.id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(gate_view(row))
    }

    /// A gate's latest decisions, newest first.
    pub async fn gate_decisions(
        &self,
        gate: &str,
        limit: i64,
    ) -> StoreResult<Vec<GateDecisionView>> {
        let rows: Vec<GateDecisionTuple> = sqlx::query_as(&format!(
            "{GATE_DECISION_SELECT} WHERE d.gate = $1 ORDER BY d.id DESC LIMIT $2"
        ))
        .bind(gate)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(gate_view).collect())
    }
}
