//! SQLite, the embedded default: one file under the data directory, WAL
//! journal, one writer connection and a few readers.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

type Db = sqlx::Sqlite;

/// SQLite has one writer at a time, so row locks do not exist: the single
/// writer connection already serialises every read-modify-write.
/// Claims the first row of `t` nobody else is claiming: pickers logging in
/// together each take a different order instead of queueing for the same one.
macro_rules! skip_locked {
    () => {
        ""
    };
}

/// A timestamp column's clock hour in UTC, as text: `YYYY-MM-DDTHH`.
macro_rules! hour_of {
    ($col:literal) => {
        concat!("substr(", $col, ", 1, 13)")
    };
}

/// A SKU's barcodes as one JSON array of text, in barcode order (`[]` when
/// it has none): `$sku` names the SKU id column of the outer query.
macro_rules! barcodes_of {
    ($sku:literal) => {
        concat!(
            "(SELECT json_group_array(b.barcode ORDER BY b.barcode) FROM sku_barcodes b WHERE b.sku_id = ",
            $sku,
            ")"
        )
    };
}

macro_rules! for_update {
    () => {
        ""
    };
    ($table:literal) => {
        ""
    };
}

/// How long a connection waits for a lock held by another process (a backup,
/// the `sqlite3` shell) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Readers run beside the writer under WAL; four covers the dashboards
/// without holding many file handles.
const READ_CONNECTIONS: u32 = 4;

/// How often the background checkpointer copies committed WAL frames into
/// the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL pages after which the writer checkpoints by itself (SQLite's own
/// automatic checkpoint, in the committing connection): only if the
/// background checkpointer has fallen this far behind (about 40 MB).
const WRITER_CHECKPOINT_PAGES: u32 = 10_000;

/// The WAL file is cut back to this size whenever it starts over.
const WAL_SIZE_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Keeps the background checkpointer alive: it stops once the last clone of
/// the store holding this is dropped.
type Housekeeping = Option<std::sync::Arc<tokio::sync::oneshot::Sender<()>>>;

async fn connect_pools(url: &str, opts: &StoreOptions) -> StoreResult<(Pool, Pool, Housekeeping)> {
    let base = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(if opts.sqlite_sync_full {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        })
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        .pragma("journal_size_limit", WAL_SIZE_LIMIT_BYTES.to_string());
    // SQLite's automatic checkpoint runs inside the commit that crosses 1,000
    // WAL pages, so every thousandth page or so one writer's transaction (and
    // every scan queued behind it) waits for the database file to be written
    // and synced. A connection of its own does that beside the writer
    // instead; the writer keeps a far-off automatic checkpoint as a backstop.
    let writer = if opts.sqlite_background_checkpoint {
        base.clone()
            .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string())
    } else {
        base.clone()
    };
    // One writer: writers queue for the connection instead of failing with
    // SQLITE_BUSY half-way through a transaction.
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(opts.acquire_timeout)
        .connect_with(writer)
        .await?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&write)
        .await
        .map_err(|e| StoreError::Db(e.into()))?;
    let read = SqlitePoolOptions::new()
        .max_connections(READ_CONNECTIONS)
        .acquire_timeout(opts.acquire_timeout)
        .connect_with(base.clone().read_only(true))
        .await?;
    let housekeeping = if opts.sqlite_background_checkpoint {
        use sqlx::ConnectOptions;
        let conn = base.connect().await?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(checkpointer(conn, stopped));
        Some(std::sync::Arc::new(stop))
    } else {
        None
    };
    Ok((write, read, housekeeping))
}

/// Copies the WAL's committed frames into the database file every
/// [`CHECKPOINT_EVERY`], without waiting for readers or the writer
/// (`PASSIVE`): what a reader still needs stays in the WAL for the next
/// round. A failure is logged and retried; the writer's own automatic
/// checkpoint catches up if this falls far behind.
async fn checkpointer(
    mut conn: sqlx::SqliteConnection,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let mut failing = false;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tokio::time::sleep(CHECKPOINT_EVERY) => {}
        }
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut conn)
            .await
        {
            Ok((_, wal_pages, copied)) => {
                if failing {
                    tracing::info!(wal_pages, copied, "WAL checkpoints work again");
                    failing = false;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "WAL checkpoint failed; retrying every {CHECKPOINT_EVERY:?}");
                    failing = true;
                }
            }
        }
    }
    let _ = sqlx::Connection::close(conn).await;
}

/// Whether order intake and PDA scans use the group-commit writer unless
/// `StoreOptions::group_commit` says otherwise.
const GROUP_COMMIT_DEFAULT: crate::store::GroupCommit = crate::store::GROUP_COMMIT_SQLITE;

include!("sql_impl.rs");
include!("sql_orders.rs");
include!("sql_picking.rs");
include!("sql_packing.rs");
include!("sql_customs.rs");
include!("sql_gate.rs");
include!("sql_manifest.rs");
include!("sql_dashboard.rs");

#[cfg(test)]
mod tests {
    //! The group-commit writer on a real SQLite file: units are held behind a
    //! first one so that the next ones are certainly committed together.

    use tokio::sync::oneshot;

    use super::*;

    async fn store(dir: &tempfile::TempDir) -> SqlStore {
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let opts = StoreOptions {
            group_commit: Some(true),
            ..StoreOptions::default()
        };
        SqlStore::connect(&url, &opts).await.unwrap()
    }

    /// Occupies the writer until the returned sender fires; returns once the
    /// writer is inside it.
    async fn hold_writer(b: &Batcher<Pool>) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let (go, wait) = oneshot::channel::<()>();
        let (inside, entered) = oneshot::channel::<()>();
        let b2 = b.clone();
        let held = tokio::spawn(async move {
            b2.run(move |_tx| {
                Box::pin(async move {
                    let _ = inside.send(());
                    let _ = wait.await;
                    Ok(())
                })
            })
            .await
            .unwrap()
        });
        entered.await.unwrap();
        (go, held)
    }

    async fn until_queued(b: &Batcher<Pool>, n: usize) {
        while b.queued() < n {
            tokio::task::yield_now().await;
        }
    }

    fn actor() -> Actor {
        Actor {
            user_id: 0,
            username: "test".into(),
            roles: Vec::new(),
        }
    }

    /// [`idempotent!`] inside a unit of the group-commit writer: `$body`
    /// runs on the batch's transaction `$tx`, and its answer is stored beside
    /// its work, so a key claimed earlier in the same batch is found as a
    /// replay.
    macro_rules! idempotent_in {
        ($tx:ident, $actor:expr, $scope:expr, $key:expr, $hash:expr, |$op:ident, $at:ident| $body:expr) => {{
            let hash: String = $hash;
            let $at = now();
            match idem_begin($tx, $scope, $key, &hash, $actor, $at).await? {
                Idem::Done(resp) => decode_response(&resp),
                Idem::Race => Err(StoreError::Contended),
                Idem::New($op) => {
                    let out = $body;
                    store_answer($tx, $op, &out).await?;
                    Ok(out)
                }
            }
        }};
    }

    /// Claims `key` and answers `value`, or (with `refuse`) writes an audit
    /// row after the claim and then refuses.
    fn unit(
        b: &Batcher<Pool>,
        key: &'static str,
        hash: &'static str,
        value: i64,
        refuse: bool,
    ) -> tokio::task::JoinHandle<StoreResult<i64>> {
        let b = b.clone();
        tokio::spawn(async move {
            b.run(move |tx| {
                Box::pin(async move {
                    let actor = actor();
                    idempotent_in!(tx, &actor, "test", key, hash.to_string(), |_op, _at| {
                        audit(tx, &actor, "test", key, &value).await?;
                        if refuse {
                            Err::<(), _>(StoreError::Invalid(format!("{key} refused")))?;
                        }
                        value
                    })
                })
            })
            .await
        })
    }

    #[tokio::test]
    async fn one_batch_keeps_order_refusals_and_replays_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let b = store.batch.clone().unwrap();
        let (go, held) = hold_writer(&b).await;
        let units = [
            unit(&b, "K", "h", 1, false),
            unit(&b, "K", "h", 2, false), // a replay of the first
            unit(&b, "R", "h", 3, true),  // refused after its claim and a write
            unit(&b, "R", "h", 4, false), // the refused one's key is free again
            unit(&b, "K", "other", 5, false),
        ];
        until_queued(&b, units.len()).await;
        go.send(()).unwrap();
        held.await.unwrap();
        let mut got = Vec::new();
        for u in units {
            got.push(u.await.unwrap());
        }
        assert_eq!(got[0].as_ref().unwrap(), &1);
        assert_eq!(got[1].as_ref().unwrap(), &1, "the replay answers the first");
        assert!(matches!(&got[2], Err(StoreError::Invalid(m)) if m == "R refused"));
        assert_eq!(got[3].as_ref().unwrap(), &4);
        assert!(matches!(
            &got[4],
            Err(StoreError::IdempotencyConflict { .. })
        ));
        let ops: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT key, response FROM operations WHERE scope = 'test' ORDER BY key",
        )
        .fetch_all(&store.read)
        .await
        .unwrap();
        assert_eq!(
            ops,
            vec![
                ("K".into(), Some("1".into())),
                ("R".into(), Some("4".into()))
            ]
        );
        let audited: Vec<String> =
            sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'test' ORDER BY id")
                .fetch_all(&store.read)
                .await
                .unwrap();
        assert_eq!(
            audited,
            vec!["1", "4"],
            "the refused unit's write is undone"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn a_batch_whose_commit_fails_answers_every_caller_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let b = store.batch.clone().unwrap();
        let (go, held) = hold_writer(&b).await;
        let good = unit(&b, "A", "h", 1, false);
        // Statements succeed, but the foreign keys are checked at COMMIT,
        // which then fails for the whole batch.
        let b2 = b.clone();
        let poison = tokio::spawn(async move {
            b2.run(|tx| {
                Box::pin(async move {
                    sqlx::query("PRAGMA defer_foreign_keys = ON")
                        .execute(&mut **tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO order_allocations (lock_id, order_id, line_no) VALUES (999, 999, 1)",
                    )
                    .execute(&mut **tx)
                    .await?;
                    Ok(())
                })
            })
            .await
        });
        until_queued(&b, 2).await;
        go.send(()).unwrap();
        held.await.unwrap();
        let good = good.await.unwrap();
        assert!(
            matches!(&good, Err(StoreError::NotCommitted(why)) if why.contains("commit")),
            "acknowledged without a commit: {good:?}"
        );
        let poison = poison.await.unwrap();
        assert!(
            matches!(poison, Err(StoreError::NotCommitted(_))),
            "{poison:?}"
        );
        let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM operations WHERE scope = 'test'")
            .fetch_one(&store.read)
            .await
            .unwrap();
        assert_eq!(kept, 0, "nothing of the failed batch was kept");
        // The writer goes on: the next batch commits.
        assert_eq!(unit(&b, "A", "h", 7, false).await.unwrap().unwrap(), 7);
        store.close().await;
    }

    /// An order request as the HTTP handler builds it: `qty` units of `sku`
    /// for 4,900.00 CNY in all, from one buyer.
    fn order(no: &str, sku: &str, qty: i64) -> OrderRequest {
        let paid = "4900.00";
        let price = rust_decimal::Decimal::new(490_000 / qty, 2).to_string();
        let input: OrderInput = serde_json::from_value(serde_json::json!({
            "order_no": no, "trade_mode": "1210", "ebp_code": "3301964J31", "ebc_code": "3301964J31",
            "cop_no": format!("COP-{no}"),
            "buyer": {"name": "张三", "id_number": "11010519491231002X", "phone": "13812345678"},
            "consignee": {"name": "张三", "phone": "13912345678", "address": "杭州市西湖区文三路 1 号"},
            "lines": [{"sku": sku, "qty": qty, "unit_price": price}],
            "goods_value": paid, "freight": "0", "discount": "0", "tax": "0", "actual_paid": paid,
        }))
        .unwrap();
        let pii = crate::crypto::PiiCipher::from_key(&[7u8; 32]);
        let ctx = crate::orders::prepare(&input, &pii, Utc::now()).unwrap();
        (Actor::system_named("platform"), input, ctx)
    }

    /// A store with one storage bin A-01 holding `qty` units of SKU-1 (batch
    /// B1, in date).
    async fn stocked(dir: &tempfile::TempDir, qty: i64) -> SqlStore {
        use serde_json::json;
        let store = store(dir).await;
        let admin = Actor::system();
        let bin = json!({"code": "A-01", "zone": "A", "walk_seq": 1, "kind": "storage"});
        let sku = json!({"code": "SKU-1", "name": "Serum", "unit_weight_grams": 95});
        let receipt = json!({"receipt_no": "R-1", "customs_doc_no": "QD-1", "lines": [
            {"sku": "SKU-1", "bin": "A-01", "batch": "B1", "expiry": "2030-01-01", "qty": qty}]});
        fn from<T: DeserializeOwned>(v: serde_json::Value) -> T {
            serde_json::from_value(v).unwrap()
        }
        store.create_location(&admin, &from(bin)).await.unwrap();
        store.create_sku(&admin, &from(sku)).await.unwrap();
        store.receive(&admin, &from(receipt)).await.unwrap();
        store
    }

    /// Exactly these order numbers are taken (a refused order leaves no key
    /// behind), `locked` units are reserved, and the ledger adds up.
    async fn books_hold(store: &SqlStore, keys: &[&str], locked: i64) {
        let taken: Vec<String> =
            sqlx::query_scalar("SELECT key FROM operations WHERE scope = 'order' ORDER BY key")
                .fetch_all(&store.read)
                .await
                .unwrap();
        assert_eq!(taken, keys);
        let held: i64 = sqlx::query_scalar("SELECT SUM(locked) FROM holdings")
            .fetch_one(&store.read)
            .await
            .unwrap();
        assert_eq!(held, locked);
        assert!(store.integrity().await.unwrap().is_clean());
    }

    #[tokio::test]
    async fn one_intake_group_takes_its_orders_as_if_one_after_another() {
        let dir = tempfile::tempdir().unwrap();
        let store = stocked(&dir, 8).await;
        // Two orders taken before the group: one sent again as it was, one
        // sent again under the same number with other content.
        let old = order("O-OLD", "SKU-1", 1);
        let (a, i, c) = &old;
        let old_view = store.create_order(a, i, c).await.unwrap();
        let (a, i, c) = &order("O-OLD2", "SKU-1", 1);
        store.create_order(a, i, c).await.unwrap();

        let group = vec![
            order("O-1", "SKU-1", 1),
            order("O-BIG", "SKU-1", 100), // short (5 left after O-1): refused, writes nothing
            order("O-2", "SKU-1", 1),
            order("O-1", "SKU-1", 1), // the same number again in the group: taken alone
            old.clone(),              // a replay
            order("O-OLD2", "SKU-1", 2), // another order under a used number
            order("O-X", "SKU-NONE", 1), // unknown SKU
            order("O-3", "SKU-1", 1),
            order("O-4", "SKU-1", 1),
            order("O-5", "SKU-1", 1),
            order("O-6", "SKU-1", 1),
            order("O-7", "SKU-1", 1), // no stock left: 8 received, 2 + 6 taken
        ];
        let mut tx = store.write.begin().await.unwrap();
        let out = orders_in(&mut tx, &group).await.unwrap();
        tx.commit().await.unwrap();

        let ok = |n: usize| out[n].as_ref().unwrap().as_ref().unwrap();
        let refused = |n: usize| out[n].as_ref().unwrap().as_ref().unwrap_err();
        assert!(
            matches!(refused(1), StoreError::OrderShortfall(s) if s[0].available == 5),
            "{:?}",
            out[1]
        );
        assert!(
            out[3].is_none(),
            "a number seen earlier in the group is left for later"
        );
        assert_eq!(ok(4), &old_view, "a replay gets the stored answer");
        assert!(matches!(refused(5), StoreError::IdempotencyConflict { .. }));
        assert!(matches!(refused(6), StoreError::UnknownSku(s) if s == "SKU-NONE"));
        assert!(matches!(refused(11), StoreError::OrderShortfall(s) if s[0].available == 0));
        for n in [0, 2, 7, 8, 9, 10] {
            let view = ok(n);
            assert_eq!(
                view,
                &store.get_order(&view.order_no).await.unwrap(),
                "{}",
                view.order_no
            );
        }
        // The buyer's year counts the orders before each in the group: with
        // 2 × 4,900 before the group and O-1 to O-3 in it, O-4 makes 29,400
        // CNY, past the 26,000 of the annual limit.
        let warned: Vec<&str> = [0, 2, 7, 8, 9, 10]
            .into_iter()
            .filter(|&n| !ok(n).warnings.is_empty())
            .map(|n| ok(n).order_no.as_str())
            .collect();
        assert_eq!(warned, vec!["O-4", "O-5", "O-6"]);
        // Refused orders leave no key behind; every unit is reserved once.
        books_hold(
            &store,
            &["O-1", "O-2", "O-3", "O-4", "O-5", "O-6", "O-OLD", "O-OLD2"],
            8,
        )
        .await;
        store.close().await;
    }

    #[tokio::test]
    async fn a_group_that_fails_as_a_whole_is_taken_order_by_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = stocked(&dir, 5).await;
        // The database refuses one order of the group: the group's INSERT
        // fails, so the whole unit is rolled back.
        sqlx::query(
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON orders WHEN NEW.order_no = 'O-BAD'
             BEGIN SELECT RAISE(ABORT, 'O-BAD is refused by the database'); END",
        )
        .execute(&store.write)
        .await
        .unwrap();
        let mut answers = Vec::new();
        let mut group = Vec::new();
        for no in ["O-1", "O-BAD", "O-2"] {
            let (reply, answer) = oneshot::channel();
            group.push((order(no, "SKU-1", 1), reply));
            answers.push(answer);
        }
        let (started, _) = oneshot::channel();
        settle_group(store.batch.clone().unwrap(), group, started).await;
        let mut got = Vec::new();
        for a in answers {
            got.push(a.await.unwrap());
        }
        assert_eq!(got[0].as_ref().unwrap().order_no, "O-1");
        assert!(
            format!("{:?}", got[1]).contains("O-BAD is refused"),
            "{:?}",
            got[1]
        );
        assert_eq!(got[2].as_ref().unwrap().order_no, "O-2");
        for n in [0, 2] {
            let view = got[n].as_ref().unwrap();
            assert_eq!(view, &store.get_order(&view.order_no).await.unwrap());
        }
        books_hold(&store, &["O-1", "O-2"], 2).await;
        store.close().await;
    }
}
