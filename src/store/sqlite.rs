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
const GROUP_COMMIT_DEFAULT: bool = crate::store::GROUP_COMMIT_SQLITE;

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
}
