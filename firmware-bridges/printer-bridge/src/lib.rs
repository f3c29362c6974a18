//! `printer-bridge`: a pack station's label printer behind MQTT. The server
//! publishes each label as a [`PrintJob`] (its `print_jobs` id and the
//! ESC/POS bytes) on `printer/{station}/job`; the bridge prints it on a
//! printer on raw TCP (port 9100) or a serial port and answers on
//! `printer/{station}/status` with a [`PrinterReport`]:
//!
//! - `printed {job}` only once the printer answered on-line to a
//!   `DLE EOT 1` sent after the job's last byte ([`bondgate_edge::printer::print`]);
//! - the printer's status (on connect, on every change): a printer out of
//!   paper, open or off is asked again every `retry` and its jobs are held
//!   in order in a bounded queue until they print;
//! - **each job id printed at most once**: the last
//!   [`REMEMBERED_IDS_MAX`] printed ids are remembered, and a job whose id
//!   was printed (the server's re-send after a lost report, a QoS 1
//!   redelivery) is answered `printed` again without printing; one still
//!   queued is ignored (its report will come). An id is remembered with a
//!   digest of its bytes: the same id with other bytes (a server whose
//!   database was reset and counts from 1 again) is a new label and
//!   prints.
//!
//! Reports are published only while connected and otherwise dropped: the
//! server re-sends a job it has no answer for, with the same id, and gets
//! `printed` from memory. A job that finds the queue full is dropped
//! unanswered, for the same reason.
//!
//! Presence (`online`, `offline` will) and the retained health report
//! (whether the printer answers, the last error, refused envelopes) come
//! from `bondgate-edge`. A library with a thin binary: [`run`] is the whole
//! bridge, so the server's demo can run it in-process.

#![forbid(unsafe_code)]

pub mod config;
pub use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bondgate_edge::printer;
use bondgate_edge::{Health, Session, SessionEvent};
use bondgate_protocol::escpos::PrinterStatus;
use bondgate_protocol::{PrintJob, PrinterReport, Topic};
use tokio::sync::mpsc;

pub use bondgate_edge::{BridgeError, EdgeConfig};
pub use config::{Config, PrinterPort};

/// Printed job ids remembered for the at-most-once rule: a station prints
/// a few labels a minute, so 4096 is a shift's worth, bounded.
pub const REMEMBERED_IDS_MAX: usize = 4096;

/// How often an idle bridge asks the printer how it is, so the server
/// sees paper out or a printer switched off before a label waits.
pub const STATUS_PROBE: Duration = Duration::from_secs(5);

/// Ids printed recently, each with a digest of its bytes, oldest
/// forgotten first.
#[derive(Debug, Default)]
struct RecentIds {
    digests: HashMap<u64, u64>,
    order: VecDeque<u64>,
}

/// A digest of a job's bytes: 64-bit FNV-1a, stable across builds and
/// runs, since the printed-ids file outlives both. It tells a re-sent job
/// from another label that reuses its id; it is no defence against
/// forgery (the broker's ACL is).
fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The printed ids on disk (`printed_file`): one `id digest` line per
/// printed job, synced before the `printed` report, so a bridge restarted
/// (or killed) after printing still answers a re-sent job from memory
/// instead of printing the label twice. Rewritten compactly at start and
/// whenever it holds twice [`REMEMBERED_IDS_MAX`] lines.
struct PrintedLog {
    path: PathBuf,
    file: std::fs::File,
    lines: usize,
}

impl PrintedLog {
    /// Reads what an earlier run printed into `ids` (a torn last line, from
    /// a crash mid-write, is skipped), then rewrites the file compactly.
    fn open(path: &Path, ids: &mut RecentIds) -> std::io::Result<PrintedLog> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for line in text.lines() {
                    let mut words = line.split_whitespace();
                    let id = words.next().and_then(|w| w.parse::<u64>().ok());
                    let d = words
                        .next()
                        .filter(|w| w.len() == 16)
                        .and_then(|w| u64::from_str_radix(w, 16).ok());
                    if let (Some(id), Some(d), None) = (id, d, words.next()) {
                        ids.insert(id, d);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let mut log = PrintedLog {
            path: path.to_path_buf(),
            file,
            lines: 0,
        };
        log.compact(ids)?;
        Ok(log)
    }

    /// Writes the remembered ids to a new file and puts it in place.
    fn compact(&mut self, ids: &RecentIds) -> std::io::Result<()> {
        use std::io::Write as _;
        let tmp = self.path.with_extension("compacting");
        let mut f = std::fs::File::create(&tmp)?;
        for id in &ids.order {
            if let Some(d) = ids.digests.get(id) {
                writeln!(f, "{id} {d:016x}")?;
            }
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        self.file = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        self.lines = ids.order.len();
        Ok(())
    }

    /// Records a printed job, synced.
    fn record(&mut self, ids: &RecentIds, id: u64, digest: u64) -> std::io::Result<()> {
        use std::io::Write as _;
        writeln!(self.file, "{id} {digest:016x}")?;
        self.file.sync_data()?;
        self.lines += 1;
        if self.lines > 2 * REMEMBERED_IDS_MAX {
            self.compact(ids)?;
        }
        Ok(())
    }
}

impl RecentIds {
    /// Whether this very job (id and bytes) was printed.
    fn contains(&self, job: &PrintJob) -> bool {
        self.digests.get(&job.job) == Some(&digest(&job.bytes))
    }

    fn insert(&mut self, id: u64, digest: u64) {
        if self.digests.insert(id, digest).is_none() {
            self.order.push_back(id);
            if self.order.len() > REMEMBERED_IDS_MAX {
                if let Some(old) = self.order.pop_front() {
                    self.digests.remove(&old);
                }
            }
        }
    }
}

/// What the printer worker tells the bridge.
#[derive(Debug)]
enum News {
    Printed(u64, u64),
    Status(PrinterStatus),
    Unreachable(String),
}

/// Runs the bridge until `shutdown` resolves (or the MQTT session ends).
/// The MQTT session is dropped without a clean disconnect on the way out,
/// so the broker publishes the `offline` will; a job being sent at that
/// moment is abandoned and, unreported, sent again by the server.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), BridgeError> {
    let job_topic = Topic::PrinterJob {
        station: config.station.clone(),
    };
    let status_topic = Topic::PrinterStatus {
        station: config.station.clone(),
    };
    let job_name = job_topic.render(&config.edge.site);
    let mut session = Session::start(&config.edge, vec![job_name.clone()]);
    let mut health = Health::new(&config.edge);
    let (job_tx, job_rx) = mpsc::channel::<PrintJob>(config.queue);
    let (news_tx, mut news) = mpsc::channel(64);
    let worker = work(config.printer.clone(), config.retry, job_rx, news_tx);
    tracing::info!(printer = %config.printer.describe(), station = %config.station, "printer bridge starting");

    let mut printed = RecentIds::default();
    let mut log = match &config.printed_file {
        Some(path) => match PrintedLog::open(path, &mut printed) {
            Ok(log) => {
                tracing::info!(file = %path.display(), remembered = printed.order.len(), "printed ids loaded");
                Some(log)
            }
            Err(e) => {
                return Err(BridgeError::Start(format!(
                    "printed ids file {}: {e} (the bridge does not start rather than print labels twice)",
                    path.display()
                )))
            }
        },
        None => {
            tracing::warn!("no printed_file: printed ids are kept in memory only, so a restart between printing and reporting prints that label again");
            None
        }
    };
    let mut queued: HashSet<u64> = HashSet::new();
    let mut last_status: Option<PrinterStatus> = None;
    let mut dropped = 0_u64;
    let mut tick = tokio::time::interval(bondgate_edge::health::HEALTH_INTERVAL);
    tokio::pin!(shutdown, worker);
    loop {
        tokio::select! {
            () = &mut shutdown => {
                tracing::info!("stopping");
                return Ok(());
            }
            () = &mut worker => unreachable!("the worker ends only when the job queue is dropped"),
            event = session.next() => match event {
                Some(SessionEvent::Connected) => {
                    health.flush(&session, true).await;
                    if let Some(s) = last_status {
                        session.publish(&status_topic, PrinterReport::Status(s).encode()).await;
                    }
                }
                Some(SessionEvent::Publish(p)) if p.topic == job_name => {
                    match PrintJob::decode(&p.payload) {
                        Err(error) => {
                            tracing::warn!(%error, "print job refused");
                            health.bad_input(&error.to_string());
                        }
                        Ok(job) if printed.contains(&job) => {
                            tracing::info!(job = job.job, "job printed before; answered, not printed again");
                            report(&session, &status_topic, PrinterReport::Printed { job: job.job }).await;
                        }
                        Ok(job) if queued.contains(&job.job) => {
                            tracing::debug!(job = job.job, "job already queued");
                        }
                        Ok(job) => {
                            let id = job.job;
                            match job_tx.try_send(job) {
                                Ok(()) => {
                                    queued.insert(id);
                                    tracing::info!(job = id, "job queued");
                                }
                                Err(_) => {
                                    tracing::warn!(job = id, "job queue full; dropped unanswered (the server sends it again)");
                                    dropped += 1;
                                    health.set_dropped(dropped);
                                }
                            }
                        }
                    }
                    health.flush(&session, false).await;
                }
                Some(_) => {}
                None => return Err(BridgeError::SessionEnded),
            },
            Some(item) = news.recv() => {
                match item {
                    News::Printed(job, digest) => {
                        queued.remove(&job);
                        printed.insert(job, digest);
                        if let Some(log) = &mut log {
                            if let Err(e) = log.record(&printed, job, digest) {
                                tracing::error!(job, error = %e, "printed id not recorded on disk");
                                health.note(&format!("printed ids file: {e}"));
                            }
                        }
                        tracing::info!(job, "label printed");
                        report(&session, &status_topic, PrinterReport::Printed { job }).await;
                    }
                    News::Status(s) => {
                        health.set_ok();
                        if !s.can_print() {
                            health.note(printer::why_not(&s));
                        }
                        if last_status != Some(s) {
                            last_status = Some(s);
                            report(&session, &status_topic, PrinterReport::Status(s)).await;
                        }
                    }
                    News::Unreachable(error) => {
                        health.fail(&error);
                        let off = PrinterStatus { online: false, ..PrinterStatus::default() };
                        if last_status != Some(off) {
                            last_status = Some(off);
                            report(&session, &status_topic, PrinterReport::Status(off)).await;
                        }
                    }
                }
                health.flush(&session, false).await;
            }
            _ = tick.tick() => health.flush(&session, false).await,
        }
    }
}

/// Publishes a report if connected; dropped otherwise (see the crate notes).
async fn report(session: &Session, topic: &Topic, report: PrinterReport) {
    if session.is_connected() {
        session.publish(topic, report.encode()).await;
    } else {
        tracing::debug!(?report, "not connected; report dropped");
    }
}

/// The printer worker: jobs in order, each until it prints; the printer
/// probed while idle.
async fn work(
    port: PrinterPort,
    retry: Duration,
    mut jobs: mpsc::Receiver<PrintJob>,
    news: mpsc::Sender<News>,
) {
    let tell = |result: &Result<PrinterStatus, printer::AttemptError>| match result {
        Ok(s) => News::Status(*s),
        Err(printer::AttemptError {
            status: Some(s), ..
        }) => News::Status(*s),
        Err(printer::AttemptError { error, .. }) => News::Unreachable(error.clone()),
    };
    let probed = printer::probe(&port).await;
    let _ = news.send(tell(&probed)).await;
    loop {
        let job = tokio::select! {
            job = jobs.recv() => job,
            () = tokio::time::sleep(STATUS_PROBE) => {
                let probed = printer::probe(&port).await;
                let _ = news.send(tell(&probed)).await;
                continue;
            }
        };
        let Some(job) = job else { return };
        loop {
            let result = printer::print(&port, &job.bytes).await;
            let _ = news.send(tell(&result)).await;
            match result {
                Ok(_) => {
                    let _ = news.send(News::Printed(job.job, digest(&job.bytes))).await;
                    break;
                }
                Err(e) => {
                    tracing::warn!(job = job.job, error = %e.error, "label not printed; held and retried");
                    tokio::time::sleep(retry).await;
                }
            }
        }
    }
}
