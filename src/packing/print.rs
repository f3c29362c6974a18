//! The label print queue's workers: one per station with a printer. Jobs are
//! rows in `print_jobs` (written in the pack transaction), so a printer that
//! is off, out of paper or unplugged loses nothing: the worker keeps the job
//! queued and tries again. A job counts as printed only when the printer
//! answered a status request sent after the job's last byte (it handles its
//! input in order), so a connection cut half-way prints the label again
//! rather than never.
//!
//! The one window left: the server dying after the printer answered and
//! before the row is marked printed reprints that label at restart. It is a
//! few milliseconds wide and inherent to printers that keep no job ids.
//!
//! A printer behind a printer bridge (`PrinterTarget::Mqtt`) does keep job
//! ids: the job goes out as a `bondgate_protocol::PrintJob` envelope
//! carrying its `print_jobs` id on `printer/{station}/job`, and counts as
//! printed only when the bridge reports `printed` for that id on
//! `printer/{station}/status` (the bridge's own confirmation is the
//! printer's status after the last byte). No report within
//! [`MQTT_CONFIRM_TIMEOUT`] (bridge down, link down, printer out of paper)
//! leaves the job queued, and it is sent again with the **same** id: the
//! bridge prints an id at most once and answers a repeat from memory, so a
//! label is neither lost nor doubled. A `failed` report cancels the job
//! with the bridge's reason. The bridge's status reports are the printer's
//! status on screens.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bondgate_edge::printer::{self, PrinterPort};
use bondgate_edge::SerialSettings;
use bondgate_label::{EscPos, EscPosOptions, LabelBackend};
use bondgate_protocol::escpos::PrinterStatus;
use bondgate_protocol::{Backoff, PrintJob, PrinterReport, Topic};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::config::{PrinterTarget, StationConfig};
use crate::mqtt::Publisher;
use crate::store::{PrintOutcome, Store};

/// How often an idle worker looks at the queue even without being woken
/// (a job written by another server instance).
pub const IDLE_POLL: Duration = Duration::from_secs(2);

/// How often an idle worker asks a TCP or serial printer how it is, so
/// screens show a printer that is off or out of paper before a label waits.
pub const STATUS_PROBE: Duration = Duration::from_secs(15);

/// How long a printer bridge has to report a job printed before it is sent
/// again (same id). A label prints in a second or two; the bridge answers
/// a repeat of a printed id at once.
pub const MQTT_CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// Bridge reports about jobs remembered per station, for a report that
/// comes after its wait timed out.
const BRIDGE_OUTCOMES_MAX: usize = 1024;

/// Where a TCP or serial printer is, for `bondgate_edge::printer`; None
/// for a printer behind a bridge.
fn port(target: &PrinterTarget) -> Option<PrinterPort> {
    match target {
        PrinterTarget::Tcp(addr) => Some(PrinterPort::Tcp(addr.clone())),
        PrinterTarget::Serial { path, baud } => Some(PrinterPort::Serial(SerialSettings {
            baud: *baud,
            ..SerialSettings::new(path.clone())
        })),
        PrinterTarget::Mqtt => None,
    }
}

/// Asks an idle printer for its status; None for MQTT printers, whose
/// bridge reports by itself.
async fn probe(target: &PrinterTarget) -> Option<Result<PrinterStatus, String>> {
    let port = port(target)?;
    Some(printer::probe(&port).await.map_err(|e| e.error))
}

fn record_status(p: &StationPrinter, result: Result<PrinterStatus, String>) {
    let mut v = lock(&p.view);
    match result {
        Ok(s) => {
            v.online = Some(s.online);
            v.paper_out = s.paper_out;
            v.cover_open = s.cover_open;
            v.last_error = (!s.can_print()).then(|| "printer reports it cannot print".to_string());
        }
        Err(e) => {
            v.online = Some(false);
            v.last_error = Some(e);
        }
    }
}

/// A station printer as screens show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PrinterView {
    /// `tcp 10.0.0.5:9100`, `serial /dev/ttyUSB1`, `mqtt`.
    pub target: String,
    /// Whether the last contact succeeded; None before the first.
    pub online: Option<bool>,
    pub paper_out: bool,
    pub cover_open: bool,
    pub last_error: Option<String>,
    pub last_printed_at: Option<DateTime<Utc>>,
}

struct StationPrinter {
    station: String,
    target: PrinterTarget,
    view: Mutex<PrinterView>,
    wake: Notify,
    /// What a printer bridge said about job ids (MQTT only).
    bridge: Mutex<BridgeOutcomes>,
    /// Bumped on every bridge report about a job, for the waiting worker.
    reports: watch::Sender<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum BridgeOutcome {
    Printed,
    Failed(String),
}

#[derive(Default)]
struct BridgeOutcomes {
    by_job: std::collections::HashMap<u64, BridgeOutcome>,
    order: std::collections::VecDeque<u64>,
}

impl BridgeOutcomes {
    fn record(&mut self, job: u64, outcome: BridgeOutcome) {
        if self.by_job.insert(job, outcome).is_none() {
            self.order.push_back(job);
            if self.order.len() > BRIDGE_OUTCOMES_MAX {
                if let Some(old) = self.order.pop_front() {
                    self.by_job.remove(&old);
                }
            }
        }
    }
}

/// Every station's printer and its worker.
#[derive(Clone, Default)]
pub struct PrinterHub {
    stations: Arc<BTreeMap<String, Arc<StationPrinter>>>,
}

fn target_text(t: &PrinterTarget) -> String {
    match t {
        PrinterTarget::Tcp(a) => format!("tcp {a}"),
        PrinterTarget::Serial { path, .. } => format!("serial {}", path.display()),
        PrinterTarget::Mqtt => "mqtt".into(),
    }
}

impl PrinterHub {
    /// Starts one worker per station printer; they run until `stop`.
    pub fn start(
        stations: &[StationConfig],
        store: Store,
        publisher: Option<Publisher>,
        stop: watch::Receiver<bool>,
    ) -> (PrinterHub, Vec<JoinHandle<()>>) {
        let mut map = BTreeMap::new();
        let mut tasks = Vec::new();
        for st in stations {
            let Some(target) = &st.printer else { continue };
            let p = Arc::new(StationPrinter {
                station: st.id.clone(),
                target: target.clone(),
                view: Mutex::new(PrinterView {
                    target: target_text(target),
                    online: None,
                    paper_out: false,
                    cover_open: false,
                    last_error: None,
                    last_printed_at: None,
                }),
                wake: Notify::new(),
                bridge: Mutex::new(BridgeOutcomes::default()),
                reports: watch::channel(0).0,
            });
            tasks.push(tokio::spawn(run_worker(
                p.clone(),
                store.clone(),
                publisher.clone(),
                stop.clone(),
            )));
            map.insert(st.id.clone(), p);
        }
        (
            PrinterHub {
                stations: Arc::new(map),
            },
            tasks,
        )
    }

    /// A job was queued for `station`: print it now rather than at the next poll.
    pub fn wake(&self, station: &str) {
        if let Some(p) = self.stations.get(station) {
            p.wake.notify_one();
        }
    }

    /// A printer bridge's report on `printer/{station}/status`.
    pub fn bridge_report(&self, station: &str, report: PrinterReport) {
        let Some(p) = self.stations.get(station) else {
            tracing::debug!(station, "printer report for a station without a printer");
            return;
        };
        if p.target != PrinterTarget::Mqtt {
            tracing::warn!(
                station,
                "printer report for a printer that is not behind a bridge"
            );
            return;
        }
        match report {
            PrinterReport::Printed { job } => {
                lock(&p.bridge).record(job, BridgeOutcome::Printed);
                p.reports.send_modify(|n| *n += 1);
            }
            PrinterReport::Failed { job, reason } => {
                lock(&p.bridge).record(job, BridgeOutcome::Failed(reason.as_str().to_owned()));
                p.reports.send_modify(|n| *n += 1);
            }
            PrinterReport::Status(s) => record_status(p, Ok(s)),
        }
    }

    /// A device's presence changed. A station's printer bridge, known by
    /// its default device id `printer-bridge-{station}`, going offline (its
    /// last will) takes that printer offline at once, rather than when a
    /// job next goes unanswered; back online, its next status report says
    /// how the printer is.
    pub fn bridge_presence(&self, device: &str, online: bool) {
        let Some(station) = device.strip_prefix("printer-bridge-") else {
            return;
        };
        match self.stations.get(station) {
            Some(p) if p.target == PrinterTarget::Mqtt && !online => {
                record_status(p, Err(format!("the printer bridge {device} went offline")))
            }
            _ => {}
        }
    }

    pub fn has(&self, station: &str) -> bool {
        self.stations.contains_key(station)
    }

    pub fn views(&self) -> BTreeMap<String, PrinterView> {
        self.stations
            .iter()
            .map(|(k, p)| (k.clone(), lock(&p.view).clone()))
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn run_worker(
    p: Arc<StationPrinter>,
    store: Store,
    publisher: Option<Publisher>,
    mut stop: watch::Receiver<bool>,
) {
    let backend = EscPos::new(EscPosOptions::default()).ok();
    let mut backoff = Backoff::new();
    let mut last_probe = tokio::time::Instant::now()
        .checked_sub(STATUS_PROBE)
        .unwrap_or_else(tokio::time::Instant::now);
    loop {
        if *stop.borrow() {
            return;
        }
        let job = match store.next_print_job(&p.station).await {
            Ok(job) => job,
            Err(e) => {
                tracing::warn!(station = %p.station, error = %e, "print queue unreadable");
                None
            }
        };
        let Some(job) = job else {
            if last_probe.elapsed() >= STATUS_PROBE {
                last_probe = tokio::time::Instant::now();
                let probed = tokio::select! {
                    r = probe(&p.target) => r,
                    _ = stop.changed() => return,
                };
                if let Some(result) = probed {
                    record_status(&p, result);
                }
            }
            tokio::select! {
                _ = p.wake.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = stop.changed() => return,
            }
            continue;
        };
        let rendered = match &backend {
            Some(b) => b.render(&job.label).map_err(|e| e.to_string()),
            None => Err("the ESC/POS renderer's options are invalid".into()),
        };
        let outcome = match rendered {
            Err(e) => {
                tracing::error!(station = %p.station, job = job.id, error = %e, "label cannot be rendered");
                PrintOutcome::Failed(format!("cannot render the label: {e}"))
            }
            Ok(bytes) => {
                let sent = tokio::select! {
                    r = send(&p, publisher.as_ref(), job.id, &bytes) => r,
                    _ = stop.changed() => return,
                };
                let mut v = lock(&p.view);
                match sent {
                    Ok(status) => {
                        v.online = Some(true);
                        v.paper_out = status.paper_out;
                        v.cover_open = status.cover_open;
                        v.last_error = None;
                        v.last_printed_at = Some(Utc::now());
                        PrintOutcome::Printed
                    }
                    Err(SendError {
                        error,
                        status,
                        fatal,
                    }) => {
                        v.online = Some(status.is_some_and(|s| s.online));
                        if let Some(s) = status {
                            v.paper_out = s.paper_out;
                            v.cover_open = s.cover_open;
                        }
                        v.last_error = Some(error.clone());
                        if fatal {
                            PrintOutcome::Failed(error)
                        } else {
                            PrintOutcome::Retry(error)
                        }
                    }
                }
            }
        };
        if let Err(e) = store.print_attempt(job.id, &outcome).await {
            tracing::error!(station = %p.station, job = job.id, error = %e, "print result not recorded");
        }
        match outcome {
            PrintOutcome::Printed => {
                backoff.reset();
                tracing::info!(station = %p.station, job = job.id, waybill = %job.label.waybill_no, "label printed");
            }
            PrintOutcome::Failed(e) => {
                tracing::error!(station = %p.station, job = job.id, error = %e, "label will not print");
            }
            PrintOutcome::Retry(e) => {
                tracing::warn!(station = %p.station, job = job.id, error = %e, "label not printed; will retry");
                let delay = backoff.next_delay_with(rand::random());
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

struct SendError {
    error: String,
    /// What the printer said about itself, if it said anything.
    status: Option<PrinterStatus>,
    /// The job will never print: cancel it rather than retry.
    fatal: bool,
}

impl SendError {
    fn plain(error: impl Into<String>) -> SendError {
        SendError {
            error: error.into(),
            status: None,
            fatal: false,
        }
    }
}

async fn send(
    p: &StationPrinter,
    publisher: Option<&Publisher>,
    job: i64,
    bytes: &[u8],
) -> Result<PrinterStatus, SendError> {
    let Some(port) = port(&p.target) else {
        return send_to_bridge(p, publisher, job, bytes).await;
    };
    printer::print(&port, bytes).await.map_err(|e| SendError {
        error: e.error,
        status: e.status,
        fatal: false,
    })
}

/// The printer's status as the bridge last reported it.
fn bridge_status(p: &StationPrinter) -> PrinterStatus {
    let v = lock(&p.view);
    PrinterStatus {
        online: v.online.unwrap_or(false),
        paper_out: v.paper_out,
        cover_open: v.cover_open,
        ..PrinterStatus::READY
    }
}

/// What the bridge said about `job`, as the send's result.
fn bridge_outcome(p: &StationPrinter, job: u64) -> Option<Result<PrinterStatus, SendError>> {
    let outcome = lock(&p.bridge).by_job.get(&job).cloned()?;
    Some(match outcome {
        BridgeOutcome::Printed => Ok(PrinterStatus {
            online: true,
            ..bridge_status(p)
        }),
        BridgeOutcome::Failed(reason) => Err(SendError {
            error: format!("printer bridge: {reason}"),
            status: Some(bridge_status(p)),
            fatal: true,
        }),
    })
}

/// Publishes the job's envelope (its id, the bytes) and waits for the
/// bridge's report on that id (see the module notes).
async fn send_to_bridge(
    p: &StationPrinter,
    publisher: Option<&Publisher>,
    id: i64,
    bytes: &[u8],
) -> Result<PrinterStatus, SendError> {
    let envelope = u64::try_from(id)
        .map_err(|_| SendError::plain(format!("job id {id} cannot travel")))
        .and_then(|job| {
            PrintJob::new(job, bytes.to_vec()).map_err(|e| SendError {
                error: e.to_string(),
                status: None,
                fatal: true,
            })
        })?;
    let job = envelope.job;
    let mut reports = p.reports.subscribe();
    // A report that came after the last wait gave up.
    if let Some(done) = bridge_outcome(p, job) {
        return done;
    }
    let publisher =
        publisher.ok_or_else(|| SendError::plain("no MQTT link for the printer bridge"))?;
    let topic = Topic::new(bondgate_protocol::TopicKind::PrinterJob, &p.station)
        .map_err(|e| SendError::plain(e.to_string()))?;
    publisher
        .publish(&topic, envelope.encode())
        .await
        .map_err(|e| SendError::plain(format!("MQTT publish failed: {e}")))?;
    let deadline = tokio::time::Instant::now() + MQTT_CONFIRM_TIMEOUT;
    loop {
        if let Some(done) = bridge_outcome(p, job) {
            return done;
        }
        match tokio::time::timeout_at(deadline, reports.changed()).await {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
    let status = bridge_status(p);
    let why = if status.paper_out {
        " (it reports the printer out of paper)"
    } else if status.cover_open {
        " (it reports the printer's cover open)"
    } else if !status.online {
        " (it reports the printer off-line, or has not reported)"
    } else {
        ""
    };
    Err(SendError {
        error: format!(
            "no report from the printer bridge within {} s{why}; the job is sent again",
            MQTT_CONFIRM_TIMEOUT.as_secs()
        ),
        status: Some(status),
        fatal: false,
    })
}
