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
    /// same bytes) is a replay: refused, nothing stored.
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

/// Every receipt of one 清单, in returnTime order (arrival breaks ties).
async fn receipts_of(tx: &mut Tx, cop_no: &str) -> StoreResult<Vec<CustomsReceiptRow>> {
    let rows: Vec<CustomsReceiptTuple> = sqlx::query_as(
        "SELECT r.id, r.kind, r.cop_no, r.pre_no, r.invt_no, r.guid, r.return_status, r.return_time,
                r.return_info, m.key_id, m.received_at
         FROM customs_receipts r JOIN customs_messages m ON m.id = r.message_id
         WHERE r.cop_no = $1 ORDER BY r.return_time, r.id",
    )
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
