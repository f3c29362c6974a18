//! Group commit: one writer task runs the transactions of many callers inside
//! one database transaction and commits them together, so a burst of order
//! intakes or PDA scans pays for one sync instead of one each.
//!
//! A caller hands [`Batcher::run`] a *unit*: a closure that does its use case
//! on the `&mut Tx` it is given and returns its answer. The writer takes the
//! first unit queued and whatever else is already waiting (at most
//! [`BATCH_MAX`]; it never waits for more to arrive), `BEGIN`s, and runs the
//! units one after the other, each inside its own `SAVEPOINT`:
//!
//! - a unit that returns an error is rolled back to its savepoint alone (its
//!   writes are undone, the others' stay) and its caller gets that error;
//! - a later unit sees what the earlier units of its batch wrote (the same
//!   transaction), so an idempotency key claimed earlier in the batch is
//!   found as a replay;
//! - a unit that comes alone runs without a savepoint: if it fails, its
//!   transaction is rolled back whole, which undoes only its own work;
//! - after the last unit, one `COMMIT`; only when it succeeds is each caller
//!   answered with its unit's result. If the `COMMIT` (or `BEGIN`, or a
//!   savepoint statement) fails, every caller of the batch gets
//!   [`StoreError::NotCommitted`]: nothing is acknowledged that was not
//!   committed.
//!
//! A caller that goes away (its HTTP client hung up) does not cancel its
//! unit: the unit runs and commits with the rest, and the answer is dropped;
//! a retry is answered from the idempotency record. A unit that panics is
//! rolled back to its savepoint and answered with an error.
//!
//! The writer holds a connection of the write pool only while a batch runs,
//! so on SQLite the pool's single writer connection is shared with the use
//! cases that do not go through the batcher, as before.

use std::panic::AssertUnwindSafe;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use crate::store::error::{StoreError, StoreResult};

/// The most units committed together. Each unit holds the writer for its
/// own statements, so a larger batch only adds latency to its first units.
pub(crate) const BATCH_MAX: usize = 64;

/// Units that may wait for the writer before callers wait to submit.
const QUEUE_MAX: usize = 1_024;

/// What the writer needs of a database: transactions with one savepoint at a
/// time. Implemented for each backend's pool (`sql_impl.rs`) and by a fake in
/// the tests below.
pub(crate) trait Session: Send + Sync + 'static {
    type Tx: Send + 'static;
    fn begin(&self) -> BoxFuture<'_, Result<Self::Tx, sqlx::Error>>;
    fn savepoint(tx: &mut Self::Tx) -> BoxFuture<'_, Result<(), sqlx::Error>>;
    /// Forgets the savepoint, keeping what was done since.
    fn release(tx: &mut Self::Tx) -> BoxFuture<'_, Result<(), sqlx::Error>>;
    /// Undoes what was done since the savepoint, and forgets it.
    fn rollback_to(tx: &mut Self::Tx) -> BoxFuture<'_, Result<(), sqlx::Error>>;
    fn commit(tx: Self::Tx) -> BoxFuture<'static, Result<(), sqlx::Error>>;
}

/// One caller's unit of work with the way back to its caller, its types
/// erased so that units of different use cases share one queue.
trait Job<Tx>: Send {
    fn run<'t>(self: Box<Self>, tx: &'t mut Tx) -> BoxFuture<'t, Box<dyn Ran>>;
    /// Answers without running: the batch could not start.
    fn refuse(self: Box<Self>, why: &str);
}

/// A unit that has run, holding its result until the batch is settled.
trait Ran: Send {
    fn failed(&self) -> bool;
    /// The batch committed: the caller gets the unit's own result.
    fn answer(self: Box<Self>);
    /// The batch did not commit: the caller gets an error, whatever its unit said.
    fn refuse(self: Box<Self>, why: &str);
}

struct Unit<F, T> {
    work: F,
    reply: oneshot::Sender<StoreResult<T>>,
}

struct Done<T> {
    result: StoreResult<T>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<Tx, F, T> Job<Tx> for Unit<F, T>
where
    Tx: Send + 'static,
    F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, StoreResult<T>> + Send + 'static,
    T: Send + 'static,
{
    fn run<'t>(self: Box<Self>, tx: &'t mut Tx) -> BoxFuture<'t, Box<dyn Ran>> {
        let Unit { work, reply } = *self;
        Box::pin(async move {
            let result = match AssertUnwindSafe(async move { work(tx).await })
                .catch_unwind()
                .await
            {
                Ok(result) => result,
                Err(_) => Err(StoreError::NotCommitted("the operation panicked".into())),
            };
            Box::new(Done { result, reply }) as Box<dyn Ran>
        })
    }

    fn refuse(self: Box<Self>, why: &str) {
        let _ = self
            .reply
            .send(Err(StoreError::NotCommitted(why.to_string())));
    }
}

impl<T: Send + 'static> Ran for Done<T> {
    fn failed(&self) -> bool {
        self.result.is_err()
    }

    fn answer(self: Box<Self>) {
        // A caller that went away is no reason to stop: ignore a closed channel.
        let _ = self.reply.send(self.result);
    }

    fn refuse(self: Box<Self>, why: &str) {
        let _ = self
            .reply
            .send(Err(StoreError::NotCommitted(why.to_string())));
    }
}

/// The handle callers submit units through; cloning it shares the writer.
/// The writer task ends when the last handle is dropped.
pub(crate) struct Batcher<S: Session> {
    queue: mpsc::Sender<Box<dyn Job<S::Tx>>>,
}

impl<S: Session> Clone for Batcher<S> {
    fn clone(&self) -> Self {
        Batcher {
            queue: self.queue.clone(),
        }
    }
}

impl<S: Session> std::fmt::Debug for Batcher<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("queued", &self.queued())
            .finish()
    }
}

impl<S: Session> Batcher<S> {
    /// Starts the writer task on the current tokio runtime.
    pub(crate) fn start(session: S) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(writer(session, rx));
        Batcher { queue }
    }

    /// Units submitted and not yet taken by the writer.
    pub(crate) fn queued(&self) -> usize {
        QUEUE_MAX - self.queue.capacity()
    }

    /// Runs `work` in the next batch and answers once that batch committed.
    pub(crate) async fn run<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: for<'t> FnOnce(&'t mut S::Tx) -> BoxFuture<'t, StoreResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job<S::Tx>> = Box::new(Unit { work, reply });
        if self.queue.send(job).await.is_err() {
            return Err(StoreError::NotCommitted("the writer has stopped".into()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::NotCommitted("the writer has stopped".into())))
    }
}

async fn writer<S: Session>(session: S, mut rx: mpsc::Receiver<Box<dyn Job<S::Tx>>>) {
    while let Some(first) = rx.recv().await {
        // What is already queued joins; nothing waits for more to arrive.
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if batch.len() == 1 {
            run_alone(&session, batch.pop().expect("one unit")).await;
        } else {
            run_batch(&session, batch).await;
        }
    }
}

/// Runs a unit that came alone in its own transaction, without the
/// savepoint a batch needs to undo one unit among others: if it fails, the
/// whole transaction (its work only) is rolled back and its caller gets its
/// own error, as in a batch.
async fn run_alone<S: Session>(session: &S, job: Box<dyn Job<S::Tx>>) {
    let mut tx = match session.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            let why = format!("the transaction could not begin: {e}");
            tracing::error!(units = 1, "group commit: {why}");
            job.refuse(&why);
            return;
        }
    };
    let done = job.run(&mut tx).await;
    if done.failed() {
        // Dropping the transaction rolls it back.
        drop(tx);
        done.answer();
        return;
    }
    match S::commit(tx).await {
        Ok(()) => done.answer(),
        Err(e) => {
            let why = format!("the commit failed: {e}");
            tracing::error!(units = 1, "group commit: {why}");
            done.refuse(&why);
        }
    }
}

/// Runs one batch and answers every one of its callers: with their units'
/// results if it committed, otherwise with [`StoreError::NotCommitted`]
/// (units not yet run when the transaction broke off included, so that a
/// database that keeps failing cannot keep a caller waiting).
async fn run_batch<S: Session>(session: &S, batch: Vec<Box<dyn Job<S::Tx>>>) {
    let mut tx = match session.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            let why = format!("the transaction could not begin: {e}");
            tracing::error!(units = batch.len(), "group commit: {why}");
            for job in batch {
                job.refuse(&why);
            }
            return;
        }
    };
    let mut ran: Vec<Box<dyn Ran>> = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    let mut broken = None;
    for job in jobs.by_ref() {
        if let Err(e) = S::savepoint(&mut tx).await {
            let why = format!("a savepoint failed: {e}");
            job.refuse(&why);
            broken = Some(why);
            break;
        }
        let done = job.run(&mut tx).await;
        let settled = if done.failed() {
            S::rollback_to(&mut tx).await
        } else {
            S::release(&mut tx).await
        };
        ran.push(done);
        if let Err(e) = settled {
            broken = Some(format!("a savepoint could not be closed: {e}"));
            break;
        }
    }
    let outcome = match broken {
        // Dropping the transaction rolls it back.
        Some(why) => {
            for job in jobs {
                job.refuse(&why);
            }
            Err(why)
        }
        None => S::commit(tx)
            .await
            .map_err(|e| format!("the commit failed: {e}")),
    };
    match outcome {
        Ok(()) => ran.into_iter().for_each(|r| r.answer()),
        Err(why) => {
            tracing::error!(units = ran.len(), "group commit: {why}");
            for r in ran {
                r.refuse(&why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A fake database: a transaction is a list of writes; savepoints mark
    /// how far to undo; a commit appends to `committed` unless told to fail.
    #[derive(Default)]
    struct Fake {
        committed: Arc<Mutex<Vec<String>>>,
        fail_commit: Arc<AtomicBool>,
        /// The savepoint (counted from 1 over the fake's life) that fails; 0: none.
        fail_savepoint: Arc<AtomicUsize>,
        savepoints: Arc<AtomicUsize>,
        batches: Arc<Mutex<Vec<usize>>>,
    }

    struct FakeTx {
        writes: Vec<String>,
        mark: Option<usize>,
        committed: Arc<Mutex<Vec<String>>>,
        fail: bool,
        units: usize,
        fail_savepoint: usize,
        savepoints: Arc<AtomicUsize>,
        batches: Arc<Mutex<Vec<usize>>>,
    }

    impl Session for Fake {
        type Tx = FakeTx;
        fn begin(&self) -> BoxFuture<'_, Result<FakeTx, sqlx::Error>> {
            Box::pin(async move {
                Ok(FakeTx {
                    writes: Vec::new(),
                    mark: None,
                    committed: self.committed.clone(),
                    fail: self.fail_commit.load(Ordering::SeqCst),
                    units: 0,
                    fail_savepoint: self.fail_savepoint.load(Ordering::SeqCst),
                    savepoints: self.savepoints.clone(),
                    batches: self.batches.clone(),
                })
            })
        }
        fn savepoint(tx: &mut FakeTx) -> BoxFuture<'_, Result<(), sqlx::Error>> {
            if tx.savepoints.fetch_add(1, Ordering::SeqCst) + 1 == tx.fail_savepoint {
                return Box::pin(async { Err(sqlx::Error::Protocol("connection lost".into())) });
            }
            tx.mark = Some(tx.writes.len());
            Box::pin(async { Ok(()) })
        }
        fn release(tx: &mut FakeTx) -> BoxFuture<'_, Result<(), sqlx::Error>> {
            tx.mark = None;
            Box::pin(async { Ok(()) })
        }
        fn rollback_to(tx: &mut FakeTx) -> BoxFuture<'_, Result<(), sqlx::Error>> {
            let mark = tx.mark.take().expect("a savepoint is open");
            tx.writes.truncate(mark);
            Box::pin(async { Ok(()) })
        }
        fn commit(tx: FakeTx) -> BoxFuture<'static, Result<(), sqlx::Error>> {
            Box::pin(async move {
                tx.batches.lock().unwrap().push(tx.units);
                if tx.fail {
                    return Err(sqlx::Error::Protocol("disk full".into()));
                }
                tx.committed.lock().unwrap().extend(tx.writes);
                Ok(())
            })
        }
    }

    fn write(
        b: &Batcher<Fake>,
        what: &str,
        ok: bool,
    ) -> impl std::future::Future<Output = StoreResult<String>> {
        let b = b.clone();
        let what = what.to_string();
        async move {
            b.run(move |tx: &mut FakeTx| {
                Box::pin(async move {
                    tx.writes.push(what.clone());
                    tx.units += 1;
                    tokio::task::yield_now().await;
                    if ok {
                        Ok(what)
                    } else {
                        Err(StoreError::Invalid(format!("{what} refused")))
                    }
                })
            })
            .await
        }
    }

    #[tokio::test]
    async fn refused_units_leave_nothing_and_the_rest_commit_together() {
        let fake = Fake::default();
        let (committed, batches) = (fake.committed.clone(), fake.batches.clone());
        let b = Batcher::start(fake);
        let calls: Vec<_> = (0..100)
            .map(|i| write(&b, &format!("w{i}"), i % 3 != 0))
            .collect();
        let results = futures_util::future::join_all(calls).await;
        for (i, r) in results.iter().enumerate() {
            match r {
                Ok(w) => assert!(i % 3 != 0 && *w == format!("w{i}")),
                Err(StoreError::Invalid(m)) => assert!(i % 3 == 0 && *m == format!("w{i} refused")),
                Err(e) => panic!("unexpected {e}"),
            }
        }
        let mut got = committed.lock().unwrap().clone();
        got.sort();
        let mut want: Vec<_> = (0..100)
            .filter(|i| i % 3 != 0)
            .map(|i| format!("w{i}"))
            .collect();
        want.sort();
        assert_eq!(got, want);
        // A batch counts its refused units too; a refused unit alone
        // commits nothing.
        let batches = batches.lock().unwrap();
        let units = batches.iter().sum::<usize>();
        assert!((want.len()..=100).contains(&units), "{batches:?}");
        assert!(batches.iter().all(|n| *n <= BATCH_MAX));
        assert!(
            batches.len() < want.len(),
            "units were committed together: {batches:?}"
        );
    }

    #[tokio::test]
    async fn a_unit_alone_needs_no_savepoint_and_fails_alone() {
        let fake = Fake::default();
        let (committed, savepoints) = (fake.committed.clone(), fake.savepoints.clone());
        let b = Batcher::start(fake);
        match write(&b, "refused", false).await {
            Err(StoreError::Invalid(m)) => assert_eq!(m, "refused refused"),
            other => panic!("a refused unit answered {other:?}"),
        }
        assert!(committed.lock().unwrap().is_empty(), "its write was undone");
        assert_eq!(write(&b, "kept", true).await.unwrap(), "kept");
        assert_eq!(*committed.lock().unwrap(), vec!["kept".to_string()]);
        assert_eq!(savepoints.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_failed_commit_answers_every_caller_with_an_error() {
        let fake = Fake::default();
        fake.fail_commit.store(true, Ordering::SeqCst);
        let committed = fake.committed.clone();
        let b = Batcher::start(fake);
        let calls: Vec<_> = (0..20)
            .map(|i| write(&b, &format!("w{i}"), i % 2 == 0))
            .collect();
        for r in futures_util::future::join_all(calls).await {
            match r {
                Err(StoreError::NotCommitted(why)) => assert!(why.contains("disk full"), "{why}"),
                other => panic!("acknowledged without a commit: {other:?}"),
            }
        }
        assert!(committed.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_savepoint_answers_the_whole_batch_run_or_not() {
        let fake = Fake::default();
        fake.fail_savepoint.store(3, Ordering::SeqCst);
        let (committed, batches) = (fake.committed.clone(), fake.batches.clone());
        let b = Batcher::start(fake);
        let calls: Vec<_> = (0..10).map(|i| write(&b, &format!("w{i}"), true)).collect();
        for r in futures_util::future::join_all(calls).await {
            match r {
                Err(StoreError::NotCommitted(why)) => {
                    assert!(why.contains("connection lost"), "{why}")
                }
                other => panic!("acknowledged without a commit: {other:?}"),
            }
        }
        assert!(committed.lock().unwrap().is_empty());
        assert!(batches.lock().unwrap().is_empty(), "nothing was committed");
        // The writer goes on with the next batch.
        assert_eq!(write(&b, "next", true).await.unwrap(), "next");
        assert_eq!(*committed.lock().unwrap(), vec!["next".to_string()]);
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_does_not_break_the_batch() {
        let fake = Fake::default();
        let committed = fake.committed.clone();
        let b = Batcher::start(fake);
        // Submitted, then dropped before its answer.
        let gone = tokio::spawn(write(&b, "gone", true));
        tokio::task::yield_now().await;
        gone.abort();
        let kept = write(&b, "kept", true).await.unwrap();
        assert_eq!(kept, "kept");
        assert!(committed.lock().unwrap().contains(&"kept".to_string()));
    }

    #[tokio::test]
    async fn a_panicking_unit_is_refused_alone() {
        let fake = Fake::default();
        let committed = fake.committed.clone();
        let b = Batcher::start(fake);
        let boom = b.run(|tx: &mut FakeTx| -> BoxFuture<'_, StoreResult<()>> {
            Box::pin(async move {
                tx.writes.push("boom".into());
                panic!("bug in a unit")
            })
        });
        let (boom, ok) = tokio::join!(boom, write(&b, "ok", true));
        assert!(matches!(boom, Err(StoreError::NotCommitted(_))));
        assert_eq!(ok.unwrap(), "ok");
        assert_eq!(*committed.lock().unwrap(), vec!["ok".to_string()]);
    }
}
