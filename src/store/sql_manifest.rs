// The outbound vehicle manifest, compiled once per backend like the other
// `sql_*.rs` files: parcels that left through the gate, loaded onto one
// vehicle, with what the outbound 核注清单 and 核放单 need of them. A
// closed manifest never changes: the checks here refuse first with a code,
// the triggers of migration 0009 are the backstop.

#[derive(sqlx::FromRow)]
struct ManifestRow {
    id: i64,
    manifest_no: String,
    plate: String,
    seal_no: Option<String>,
    state: String,
    created_by: String,
    created_at: DateTime<Utc>,
    closed_by: Option<String>,
    closed_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ManifestParcelRow {
    invt_no: Option<String>,
    cop_no: String,
    order_no: String,
    package_no: String,
    waybill_no: Option<String>,
    gross_grams: i64,
    added_by: String,
    added_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ManifestSummaryRow {
    manifest_no: String,
    plate: String,
    seal_no: Option<String>,
    state: String,
    created_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    parcel_count: i64,
    total_gross_grams: i64,
}

const MANIFEST_SELECT: &str =
    "SELECT id, manifest_no, plate, seal_no, state, created_by, created_at, closed_by,
        closed_at FROM vehicle_manifests";

fn manifest_closed(no: &str) -> StoreError {
    StoreError::Conflict {
        code: "manifest_closed",
        detail: format!("vehicle manifest {no} is closed; it cannot change"),
    }
}

async fn manifest_in(tx: &mut Tx, manifest_no: &str) -> StoreResult<ManifestView> {
    let m: ManifestRow = sqlx::query_as(&format!("{MANIFEST_SELECT} WHERE manifest_no = $1"))
        .bind(manifest_no)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("vehicle manifest {manifest_no}")))?;
    // The 清单 number is customs': the latest receipt that carries one.
    let rows: Vec<ManifestParcelRow> = sqlx::query_as(
        "SELECT (SELECT r.invt_no FROM customs_receipts r WHERE r.cop_no = o.cop_no AND r.invt_no IS NOT NULL
                 ORDER BY r.return_time DESC, r.id DESC LIMIT 1) AS invt_no,
                o.cop_no, o.order_no, p.package_no, p.waybill_no, p.gross_grams, mp.added_by, mp.added_at
         FROM manifest_parcels mp JOIN packages p ON p.id = mp.package_id JOIN orders o ON o.id = p.order_id
         WHERE mp.manifest_id = $1 ORDER BY mp.id",
    )
    .bind(m.id)
    .fetch_all(&mut **tx)
    .await?;
    let parcels: Vec<ManifestParcelView> = rows
        .into_iter()
        .map(|r| ManifestParcelView {
            invt_no: r.invt_no,
            cop_no: r.cop_no,
            order_no: r.order_no,
            package_no: r.package_no,
            waybill_no: r.waybill_no,
            gross_grams: r.gross_grams,
            added_by: r.added_by,
            added_at: r.added_at,
        })
        .collect();
    Ok(ManifestView {
        manifest_no: m.manifest_no,
        plate: m.plate,
        seal: m.seal_no,
        state: m.state,
        created_by: m.created_by,
        created_at: m.created_at,
        closed_by: m.closed_by,
        closed_at: m.closed_at,
        parcel_count: i64::try_from(parcels.len()).unwrap_or(i64::MAX),
        total_gross_grams: parcels.iter().map(|p| p.gross_grams).sum(),
        parcels,
    })
}

/// [`map_db`], but a unique-key violation (a concurrent insert won the
/// race) is answered with `conflict()`.
fn unique_violation_as(e: sqlx::Error, conflict: impl FnOnce() -> StoreError) -> StoreError {
    match map_db(e) {
        StoreError::Db(sqlx::Error::Database(d))
            if d.kind() == sqlx::error::ErrorKind::UniqueViolation =>
        {
            conflict()
        }
        other => other,
    }
}

/// Audits a change to manifest `manifest_no`, reads it back and commits.
async fn audited_manifest(
    mut tx: Tx,
    actor: &Actor,
    action: &str,
    manifest_no: &str,
    detail: &impl Serialize,
) -> StoreResult<ManifestView> {
    audit(&mut tx, actor, action, manifest_no, detail).await?;
    let view = manifest_in(&mut tx, manifest_no).await?;
    tx.commit().await?;
    Ok(view)
}

/// The manifest taken for a change: its id, refused if closed.
async fn open_manifest_for_update(tx: &mut Tx, manifest_no: &str) -> StoreResult<ManifestRow> {
    let m: ManifestRow = sqlx::query_as(&format!(
        "{MANIFEST_SELECT} WHERE manifest_no = $1{}",
        for_update!()
    ))
    .bind(manifest_no)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("vehicle manifest {manifest_no}")))?;
    if m.state == "closed" {
        return Err(manifest_closed(manifest_no));
    }
    Ok(m)
}

impl SqlStore {
    /// Creates a manifest; the same number with the same vehicle again
    /// answers the manifest as it is, with a different vehicle is refused.
    pub async fn create_manifest(
        &self,
        actor: &Actor,
        input: &ManifestInput,
    ) -> StoreResult<(ManifestView, bool)> {
        let mut tx = self.write.begin().await?;
        let at = now();
        let existing: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT plate, seal_no FROM vehicle_manifests WHERE manifest_no = $1")
                .bind(&input.manifest_no)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((plate, seal)) = existing {
            let same_seal = input.seal.is_none() || input.seal == seal;
            if plate == input.plate && same_seal {
                return Ok((manifest_in(&mut tx, &input.manifest_no).await?, false));
            }
            return Err(StoreError::AlreadyExists(format!(
                "vehicle manifest {}",
                input.manifest_no
            )));
        }
        sqlx::query(
            "INSERT INTO vehicle_manifests (manifest_no, plate, seal_no, state, created_by, created_at)
             VALUES ($1, $2, $3, 'open', $4, $5)",
        )
        .bind(&input.manifest_no)
        .bind(&input.plate)
        .bind(&input.seal)
        .bind(&actor.username)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            unique_violation_as(e, || {
                StoreError::AlreadyExists(format!("vehicle manifest {}", input.manifest_no))
            })
        })?;
        let view =
            audited_manifest(tx, actor, "manifest.create", &input.manifest_no, input).await?;
        Ok((view, true))
    }

    /// Manifests, newest first, optionally only open or closed ones.
    pub async fn list_manifests(&self, state: Option<&str>) -> StoreResult<Vec<ManifestSummary>> {
        if let Some(s) = state {
            if !matches!(s, "open" | "closed") {
                return Err(StoreError::Invalid(format!(
                    "manifest state must be open or closed (got {s})"
                )));
            }
        }
        let rows: Vec<ManifestSummaryRow> = sqlx::query_as(
            "SELECT m.manifest_no, m.plate, m.seal_no, m.state, m.created_at, m.closed_at,
                    COUNT(p.id) AS parcel_count,
                    CAST(COALESCE(SUM(p.gross_grams), 0) AS BIGINT) AS total_gross_grams
             FROM vehicle_manifests m LEFT JOIN manifest_parcels mp ON mp.manifest_id = m.id
             LEFT JOIN packages p ON p.id = mp.package_id
             WHERE ($1 IS NULL OR m.state = $1)
             GROUP BY m.id, m.manifest_no, m.plate, m.seal_no, m.state, m.created_at, m.closed_at
             ORDER BY m.id DESC LIMIT $2",
        )
        .bind(state)
        .bind(MANIFESTS_MAX)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ManifestSummary {
                manifest_no: r.manifest_no,
                plate: r.plate,
                seal: r.seal_no,
                state: r.state,
                created_at: r.created_at,
                closed_at: r.closed_at,
                parcel_count: r.parcel_count,
                total_gross_grams: r.total_gross_grams,
            })
            .collect())
    }

    pub async fn get_manifest(&self, manifest_no: &str) -> StoreResult<ManifestView> {
        let mut tx = self.read.begin().await?;
        manifest_in(&mut tx, manifest_no).await
    }

    /// Loads a parcel (by package or waybill number) onto an open manifest.
    /// Only a parcel that exited through the gate (an open decision whose
    /// output was confirmed) goes on a vehicle, and on one vehicle only;
    /// the same parcel onto the same manifest again changes nothing.
    pub async fn add_manifest_parcel(
        &self,
        actor: &Actor,
        manifest_no: &str,
        code: &str,
    ) -> StoreResult<ManifestView> {
        let code = code.trim();
        if code.is_empty() || code.chars().count() > 64 {
            return Err(StoreError::Invalid(
                "a parcel is named by its package or waybill number (1 to 64 characters)".into(),
            ));
        }
        let mut tx = self.write.begin().await?;
        let at = now();
        let m = open_manifest_for_update(&mut tx, manifest_no).await?;
        let parcel: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, package_no FROM packages WHERE package_no = $1 OR waybill_no = $1 ORDER BY id LIMIT 1",
        )
        .bind(code)
        .fetch_optional(&mut *tx)
        .await?;
        let (package_id, package_no) =
            parcel.ok_or_else(|| StoreError::NotFound(format!("parcel {code}")))?;
        let exited: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM gate_decisions
             WHERE package_id = $1 AND decision = 'open' AND output = 'confirmed'",
        )
        .bind(package_id)
        .fetch_one(&mut *tx)
        .await?;
        if exited == 0 {
            return Err(StoreError::Conflict {
                code: "not_exited",
                detail: format!(
                    "parcel {package_no} has not exited through the gate (no confirmed gate open): it cannot be loaded"
                ),
            });
        }
        let on: Option<String> = sqlx::query_scalar(
            "SELECT m.manifest_no FROM manifest_parcels mp JOIN vehicle_manifests m ON m.id = mp.manifest_id
             WHERE mp.package_id = $1",
        )
        .bind(package_id)
        .fetch_optional(&mut *tx)
        .await?;
        match on {
            Some(other) if other == m.manifest_no => {
                return manifest_in(&mut tx, manifest_no).await;
            }
            Some(other) => {
                return Err(StoreError::Conflict {
                    code: "on_other_manifest",
                    detail: format!("parcel {package_no} is already on vehicle manifest {other}"),
                })
            }
            None => {}
        }
        sqlx::query(
            "INSERT INTO manifest_parcels (manifest_id, package_id, added_by, added_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(m.id)
        .bind(package_id)
        .bind(&actor.username)
        .bind(at)
        .execute(&mut *tx)
        .await
        // A unique violation: loaded onto another manifest by a concurrent request.
        .map_err(|e| {
            unique_violation_as(e, || StoreError::Conflict {
                code: "on_other_manifest",
                detail: format!("parcel {package_no} is already on another vehicle manifest"),
            })
        })?;
        audited_manifest(tx, actor, "manifest.add", manifest_no, &package_no).await
    }

    /// Takes a parcel (package or waybill number) off an open manifest.
    pub async fn remove_manifest_parcel(
        &self,
        actor: &Actor,
        manifest_no: &str,
        package: &str,
    ) -> StoreResult<ManifestView> {
        let mut tx = self.write.begin().await?;
        let m = open_manifest_for_update(&mut tx, manifest_no).await?;
        let removed = sqlx::query(
            "DELETE FROM manifest_parcels WHERE manifest_id = $1 AND package_id IN
                 (SELECT id FROM packages WHERE package_no = $2 OR waybill_no = $2)",
        )
        .bind(m.id)
        .bind(package.trim())
        .execute(&mut *tx)
        .await
        .map_err(map_db)?
        .rows_affected();
        if removed == 0 {
            return Err(StoreError::NotFound(format!(
                "parcel {} on vehicle manifest {manifest_no}",
                package.trim()
            )));
        }
        audited_manifest(tx, actor, "manifest.remove", manifest_no, &package.trim()).await
    }

    /// Closes a manifest for good: it needs its seal (given now or at
    /// creation) and at least one parcel.
    pub async fn close_manifest(
        &self,
        actor: &Actor,
        manifest_no: &str,
        seal: Option<&str>,
    ) -> StoreResult<ManifestView> {
        let mut tx = self.write.begin().await?;
        let at = now();
        let m = open_manifest_for_update(&mut tx, manifest_no).await?;
        let Some(seal) = seal.map(str::to_string).or(m.seal_no) else {
            return Err(StoreError::Conflict {
                code: "seal_required",
                detail: format!(
                    "vehicle manifest {manifest_no} has no seal number: give it to close"
                ),
            });
        };
        let parcels: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM manifest_parcels WHERE manifest_id = $1")
                .bind(m.id)
                .fetch_one(&mut *tx)
                .await?;
        if parcels == 0 {
            return Err(StoreError::Conflict {
                code: "empty_manifest",
                detail: format!("vehicle manifest {manifest_no} has no parcels"),
            });
        }
        sqlx::query(
            "UPDATE vehicle_manifests SET state = 'closed', seal_no = $1, closed_by = $2, closed_at = $3
             WHERE id = $4",
        )
        .bind(&seal)
        .bind(&actor.username)
        .bind(at)
        .bind(m.id)
        .execute(&mut *tx)
        .await
        .map_err(map_db)?;
        audited_manifest(tx, actor, "manifest.close", manifest_no, &seal).await
    }
}
