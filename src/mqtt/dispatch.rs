//! From incoming publish to handler to prompt: concurrent across devices, in
//! order per device.
//!
//! Each accepted message becomes a task that first waits for the previous
//! message *of the same device* to finish (a chain of oneshot channels, one
//! link per message), then runs. Different devices never wait for each other,
//! and one device's messages run strictly in arrival order — a PDA's second
//! scan is answered after its first, never before. The total number of
//! messages in flight is bounded by a semaphore; when it is exhausted the
//! dispatcher waits, the incoming queue fills, and the poll task feels the
//! backpressure (see `link::BACKPRESSURE_WAIT_MAX`).

use std::collections::HashMap;
use std::sync::Arc;

use bondgate_protocol::{
    DeviceHealth, DeviceId, DeviceStatus, GateId, GateOutcome, GateResultMsg, GateState, Next,
    PayloadError, PrinterReport, PromptMsg, PromptText, ScanMsg, Site, Tone, Topic, WeightMsg,
};
use rumqttc::{AsyncClient, Publish};
use tokio::sync::oneshot::error::TryRecvError;
use tokio::sync::{mpsc, oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};

use super::link::{kind_label, publish, stopped};
use super::DeviceHandler;

/// Messages being handled at once, across all devices. The handlers do
/// database work, and SQLite has a single writer: more concurrency would only
/// queue in the pool. 64 keeps every core busy on PostgreSQL and bounds the
/// memory and connections a burst can take.
pub const HANDLERS_IN_FLIGHT_MAX: usize = 64;

/// Device chains kept before finished ones are swept out. Each is a few dozen
/// bytes; sweeping is O(n), so it happens only when the map has doubled.
const CHAINS_SWEEP_MIN: usize = 1024;

/// `next` of the prompt answering a malformed scan. We cannot know what the
/// PDA was waiting for, so send it back to the start of a pick line: scan the
/// bin. That re-establishes where the picker stands and counts nothing, where
/// `item` or `qty` would skip a check and `done` would end a task unfinished
/// (`login` would throw away a valid session over a garbled read).
pub const MALFORMED_SCAN_NEXT: Next = Next::Bin;

/// The `seq` of that prompt. Devices count from 1, so 0 answers no real scan
/// and cannot be taken for the answer to one.
pub const MALFORMED_SCAN_SEQ: u64 = 0;

/// The prompt answering a scan whose payload was refused.
pub fn malformed_scan_prompt(error: &PayloadError) -> PromptMsg {
    PromptMsg {
        seq: MALFORMED_SCAN_SEQ,
        ok: false,
        tone: Tone::Error,
        text: PromptText::clamp(&error.to_string()),
        next: MALFORMED_SCAN_NEXT,
    }
}

/// The result answering a gate scan whose payload was refused.
pub fn malformed_gate_scan_result(error: &PayloadError) -> GateResultMsg {
    GateResultMsg {
        seq: MALFORMED_SCAN_SEQ,
        outcome: GateOutcome::Refused,
        code: "malformed_scan".into(),
        text_en: format!("Scan not understood ({error}): scan again"),
        text_zh: format!("扫描内容无法识别（{error}）：请重新扫描"),
    }
}

/// One unit of work for a device.
enum Job {
    Scan(Result<ScanMsg, PayloadError>),
    Status(DeviceStatus),
    GateScan(GateId, Result<ScanMsg, PayloadError>),
}

/// What the spawned tasks share.
struct Shared {
    handler: Arc<dyn DeviceHandler>,
    client: AsyncClient,
}

pub(super) struct Dispatcher {
    site: Site,
    own_id: DeviceId,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    /// Per device, the completion signal of its latest message: the next
    /// message of that device waits on it. Resolves (with an error) when the
    /// sender is dropped, which happens when the task ends, even by panic.
    chains: HashMap<DeviceId, oneshot::Receiver<()>>,
    sweep_at: usize,
    reassert_online: Arc<Notify>,
}

impl Dispatcher {
    pub(super) fn new(
        site: Site,
        own_id: DeviceId,
        client: AsyncClient,
        handler: Arc<dyn DeviceHandler>,
        permits: Arc<Semaphore>,
        reassert_online: Arc<Notify>,
    ) -> Dispatcher {
        Dispatcher {
            site,
            own_id,
            shared: Arc::new(Shared { handler, client }),
            permits,
            chains: HashMap::new(),
            sweep_at: CHAINS_SWEEP_MIN,
            reassert_online,
        }
    }

    pub(super) async fn run(
        mut self,
        mut incoming: mpsc::Receiver<Publish>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let publish = tokio::select! {
                biased;
                _ = stopped(&mut stop) => return,
                next = incoming.recv() => match next {
                    Some(publish) => publish,
                    None => return,
                },
            };
            let Some((device, job)) = self.classify(&publish) else {
                continue;
            };
            let permit = tokio::select! {
                biased;
                _ = stopped(&mut stop) => return,
                permit = self.permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
            };
            self.spawn(device, job, permit);
        }
    }

    /// Parses topic and payload. Anything that is not for a handler is
    /// logged, counted and dropped here.
    fn classify(&self, publish: &Publish) -> Option<(DeviceId, Job)> {
        let (site, topic) = match Topic::parse(&publish.topic) {
            Ok(parsed) => parsed,
            Err(error) => {
                metrics::counter!("bondgate_mqtt_malformed_total", "kind" => "topic").increment(1);
                tracing::warn!(topic = ?publish.topic, %error, "MQTT message on an unknown topic dropped");
                return None;
            }
        };
        if site != self.site {
            tracing::warn!(topic = ?publish.topic, "MQTT message for another site dropped");
            return None;
        }
        match topic {
            Topic::PdaScan { device } => {
                Some((device, Job::Scan(ScanMsg::decode(&publish.payload))))
            }
            // An empty retained payload is how MQTT deletes a retained
            // message (a tidy-up of old devices), not a malformed status.
            Topic::DeviceStatus { .. } if publish.payload.is_empty() => None,
            Topic::DeviceStatus { device } => match DeviceStatus::decode(&publish.payload) {
                Ok(status) if device == self.own_id => {
                    // Our own presence. A *live* `offline` while we are
                    // connected is a stale connection's will arriving late:
                    // say `online` again. (A retained one is just the last
                    // run's goodbye, replayed as we subscribe.)
                    if status == DeviceStatus::Offline && !publish.retain {
                        self.reassert_online.notify_one();
                    }
                    None
                }
                Ok(status) => Some((device, Job::Status(status))),
                Err(error) => {
                    metrics::counter!("bondgate_mqtt_malformed_total", "kind" => "status")
                        .increment(1);
                    tracing::warn!(%device, %error, "MQTT device status refused");
                    None
                }
            },
            // As for status: an empty retained payload deletes the report.
            Topic::DeviceHealth { .. } if publish.payload.is_empty() => None,
            Topic::DeviceHealth { device } => {
                match DeviceHealth::decode(&publish.payload) {
                    Ok(health) => self.shared.handler.on_health(&site, &device, health),
                    Err(error) => {
                        metrics::counter!("bondgate_mqtt_malformed_total", "kind" => "health")
                            .increment(1);
                        tracing::warn!(%device, %error, "device health report refused");
                        self.shared
                            .handler
                            .on_health_refused(&site, &device, &error);
                    }
                }
                None
            }
            Topic::ScaleWeight { station } => {
                match WeightMsg::decode(&publish.payload) {
                    Ok(weight) => self.shared.handler.on_weight(&site, &station, weight),
                    Err(error) => {
                        metrics::counter!("bondgate_mqtt_malformed_total", "kind" => "weight")
                            .increment(1);
                        tracing::warn!(station = %station.as_str(), %error, "scale reading refused");
                    }
                }
                None
            }
            Topic::PrinterStatus { station } => {
                match PrinterReport::decode(&publish.payload) {
                    Ok(report) => self
                        .shared
                        .handler
                        .on_printer_report(&site, &station, report),
                    Err(error) => {
                        metrics::counter!("bondgate_mqtt_malformed_total", "kind" => "printer_report")
                            .increment(1);
                        tracing::warn!(station = %station.as_str(), %error, "printer report refused");
                    }
                }
                None
            }
            Topic::GateState { gate } => {
                match GateState::decode(&publish.payload) {
                    Ok(state) => self.shared.handler.on_gate_state(&site, &gate, state),
                    Err(error) => {
                        metrics::counter!("bondgate_mqtt_malformed_total", "kind" => "gate_state")
                            .increment(1);
                        tracing::warn!(gate = %gate.as_str(), %error, "gate state refused");
                    }
                }
                None
            }
            // A gate's scans run in order, on a chain of their own (the id
            // alphabets are the same, so a gate id is a valid chain key).
            Topic::GateScan { gate } => match DeviceId::new(&format!("gate_{}", gate.as_str()))
                .or_else(|_| DeviceId::new(gate.as_str()))
            {
                Ok(key) => Some((key, Job::GateScan(gate, ScanMsg::decode(&publish.payload)))),
                Err(_) => None,
            },
            other => {
                tracing::debug!(topic = ?publish.topic, kind = kind_label(other.kind()), "MQTT message the link does not handle dropped");
                None
            }
        }
    }

    /// Runs `job` after the device's previous job, holding `permit` throughout.
    fn spawn(&mut self, device: DeviceId, job: Job, permit: OwnedSemaphorePermit) {
        let (done, done_rx) = oneshot::channel::<()>();
        let previous = self.chains.insert(device.clone(), done_rx);
        self.sweep();
        let shared = self.shared.clone();
        let site = self.site.clone();
        tokio::spawn(async move {
            if let Some(previous) = previous {
                // Err just means "finished": the sender is dropped, never used.
                let _ = previous.await;
            }
            shared.run(&site, &device, job).await;
            drop(done);
            drop(permit);
        });
    }

    /// Forgets chains whose last task has finished, once the map has doubled.
    fn sweep(&mut self) {
        if self.chains.len() < self.sweep_at {
            return;
        }
        self.chains
            .retain(|_, last| matches!(last.try_recv(), Err(TryRecvError::Empty)));
        self.sweep_at = (self.chains.len() * 2).max(CHAINS_SWEEP_MIN);
    }
}

impl Shared {
    async fn run(&self, site: &Site, device: &DeviceId, job: Job) {
        match job {
            Job::Scan(Ok(scan)) => {
                let prompt = self.handler.on_scan(site, device, scan).await;
                self.answer(site, device, &prompt).await;
            }
            Job::Scan(Err(error)) => {
                metrics::counter!("bondgate_mqtt_malformed_total", "kind" => "scan").increment(1);
                tracing::warn!(%device, %error, "malformed scan refused");
                self.answer(site, device, &malformed_scan_prompt(&error))
                    .await;
            }
            Job::Status(status) => self.handler.on_status(site, device, status).await,
            Job::GateScan(gate, scan) => {
                let result = match scan {
                    Ok(scan) => self.handler.on_gate_scan(site, &gate, scan).await,
                    Err(error) => {
                        metrics::counter!("bondgate_mqtt_malformed_total", "kind" => "gate_scan")
                            .increment(1);
                        tracing::warn!(gate = %gate.as_str(), %error, "malformed gate scan refused");
                        Some(malformed_gate_scan_result(&error))
                    }
                };
                if let Some(result) = result {
                    let topic = Topic::GateResult { gate: gate.clone() };
                    if let Err(error) = publish(&self.client, site, &topic, result.encode()).await {
                        tracing::warn!(gate = %gate.as_str(), seq = result.seq, %error, "gate result not sent");
                    }
                }
            }
        }
    }

    async fn answer(&self, site: &Site, device: &DeviceId, prompt: &PromptMsg) {
        let topic = Topic::PdaPrompt {
            device: device.clone(),
        };
        if let Err(error) = publish(&self.client, site, &topic, prompt.encode()).await {
            tracing::warn!(%device, seq = prompt.seq, %error, "prompt not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_scans_get_a_safe_error_prompt() {
        let error = ScanMsg::decode(b"{\"v\":1,\"seq\":3,\"barcode\":\"\",\"ts\":0}").unwrap_err();
        let prompt = malformed_scan_prompt(&error);
        assert_eq!(prompt.seq, 0);
        assert!(!prompt.ok);
        assert_eq!(prompt.tone, Tone::Error);
        assert_eq!(prompt.text.as_str(), "barcode is empty");
        assert_eq!(prompt.next, Next::Bin);
        assert_eq!(PromptMsg::decode(&prompt.encode()), Ok(prompt));
    }
}
