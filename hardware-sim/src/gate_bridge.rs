//! A gate bridge on MQTT (PROTOCOLS.md §4–5, DESIGN.md §4): the edge box
//! beside the barrier controller whose relay pulses the controller's "open"
//! input.
//!
//! It subscribes to `gate/{gate}/command` and `gate/{gate}/heartbeat`. For
//! an `open` command it energises the relay for the command's `pulse_ms`
//! (self-timed: nobody has to tell it to stop), reporting `open` with the
//! command's `seq` on `gate/{gate}/state` and `closed` when the pulse ends.
//! It holds the gate closed, answering `fault`, when:
//!
//! - the command has expired (`expires_at` in the past);
//! - it has not heard the server's heartbeat for [`GateBridgeOptions::heartbeat_timeout`]
//!   (and before the first one);
//! - the test switched it to [`BridgeMode::Fault`].
//!
//! A command id it has executed before is ignored: a redelivered QoS 1
//! command must not pulse twice. In [`BridgeMode::Silent`] it receives and
//! records nothing, like a bridge whose relay board hangs.
//!
//! Every pulse is recorded ([`GateBridgeSim::pulses`]) for tests.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bondgate_protocol::{
    Backoff, Barcode, GateCmd, GateCommand, GateId, GateResultMsg, GateState, GateStateKind,
    Heartbeat, ScanMsg, Site, Topic, TopicKind,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::BrokerAddr;

/// How long a bridge keeps the gate usable after the server's last
/// heartbeat (the server sends one a second).
pub const HEARTBEAT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(3);

/// Options for [`GateBridgeSim::start`].
#[derive(Debug, Clone)]
pub struct GateBridgeOptions {
    /// The broker the server uses.
    pub broker: BrokerAddr,
    /// The topic root (the server's site).
    pub site: Site,
    /// The gate this bridge drives.
    pub gate: GateId,
    /// Gate held closed once the heartbeat is this old.
    pub heartbeat_timeout: Duration,
}

impl GateBridgeOptions {
    /// A bridge for `gate` with the default heartbeat timeout.
    pub fn new(broker: BrokerAddr, site: Site, gate: GateId) -> GateBridgeOptions {
        GateBridgeOptions {
            broker,
            site,
            gate,
            heartbeat_timeout: HEARTBEAT_TIMEOUT_DEFAULT,
        }
    }
}

/// How the simulated bridge behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeMode {
    /// Pulses and reports as a healthy bridge.
    Normal,
    /// Answers every command with `fault` (relay read-back failed).
    Fault,
    /// Ignores commands altogether (a hung bridge).
    Silent,
}

/// One pulse the bridge gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulseRecord {
    /// The command's seq (the server's decision id).
    pub seq: u64,
    /// The command's id.
    pub id: String,
    /// How long the relay was energised.
    pub pulse_ms: u32,
    /// Unix milliseconds when the relay was energised.
    pub at: i64,
}

/// Something the bridge refused, for tests that expect a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The command's seq.
    pub seq: u64,
    /// Why, in words.
    pub why: String,
}

#[derive(Debug)]
struct Shared {
    mode: Mutex<BridgeMode>,
    pulses: Mutex<Vec<PulseRecord>>,
    refused: Mutex<Vec<Refused>>,
    executed: Mutex<HashSet<String>>,
    last_heartbeat: Mutex<Option<Instant>>,
    /// Connections made so far, and whether the current one is subscribed
    /// to both topics.
    link: Mutex<(u64, bool)>,
    /// Bumped on every pulse, refusal or heartbeat, for waiters.
    changed: watch::Sender<u64>,
}

impl Shared {
    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Adds `item` to `list` (one of this state's records) and bumps.
    fn record<T>(&self, list: &Mutex<Vec<T>>, item: T) {
        if let Ok(mut l) = list.lock() {
            l.push(item);
        }
        self.bump();
    }
}

/// A simulated MQTT gate bridge; see the module docs.
#[derive(Debug)]
pub struct GateBridgeSim {
    shared: Arc<Shared>,
    subscribed: watch::Receiver<bool>,
    client: AsyncClient,
    tasks: Vec<JoinHandle<()>>,
}

/// What the poll task hands the worker.
enum Incoming {
    Connected,
    Subscribed,
    Publish(rumqttc::Publish),
    Lost,
}

/// A client for a simulated gate device and its poll task, which only
/// polls (PROTOCOLS.md §5: requests from the polling task can deadlock),
/// backs off between failed connections, and hands everything to the
/// device's own task.
fn connect(
    broker: &BrokerAddr,
    client_id: String,
) -> (AsyncClient, mpsc::Receiver<Incoming>, JoinHandle<()>) {
    let mut mqtt = MqttOptions::new(client_id, broker.host(), broker.port());
    mqtt.set_keep_alive(Duration::from_secs(10))
        .set_clean_session(true);
    if let Some((user, password)) = broker.credentials() {
        mqtt.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(mqtt, 64);
    // One small packet someone waits on: Nagle's algorithm would hold it
    // behind the previous packet's delayed ACK (as in the PDA sim).
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    let (tx, rx) = mpsc::channel::<Incoming>(256);
    let poll = tokio::spawn(async move {
        let mut backoff = Backoff::new();
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
                    if tx.send(Incoming::Connected).await.is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = tx.send(Incoming::Subscribed).await;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.try_send(Incoming::Publish(p)).is_err() {
                        tracing::warn!("simulated gate device: queue full; message dropped");
                    }
                }
                Ok(_) => {}
                Err(rumqttc::ConnectionError::RequestsDone) => return,
                Err(error) => {
                    tracing::debug!(%error, "simulated gate device: connection failed; retrying");
                    let _ = tx.try_send(Incoming::Lost);
                    tokio::time::sleep(backoff.next_delay_with(0)).await;
                }
            }
        }
    });
    (client, rx, poll)
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl GateBridgeSim {
    /// Connects and starts answering commands in the background.
    pub async fn start(options: GateBridgeOptions) -> GateBridgeSim {
        let render = |kind| {
            Topic::new(kind, options.gate.as_str())
                .expect("a GateId is a valid topic id")
                .render(&options.site)
        };
        let command_topic = render(TopicKind::GateCommand);
        let heartbeat_topic = render(TopicKind::GateHeartbeat);
        let state_topic = render(TopicKind::GateState);
        let client_id = format!("gate-bridge-{}-{}", options.gate.as_str(), now_millis());
        let (client, mut rx, poll) = connect(&options.broker, client_id);
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            mode: Mutex::new(BridgeMode::Normal),
            pulses: Mutex::new(Vec::new()),
            refused: Mutex::new(Vec::new()),
            executed: Mutex::new(HashSet::new()),
            last_heartbeat: Mutex::new(None),
            link: Mutex::new((0, false)),
            changed,
        });
        let (sub_tx, subscribed) = watch::channel(false);
        let worker_shared = shared.clone();
        let worker_client = client.clone();
        let heartbeat_timeout = options.heartbeat_timeout;
        let worker = tokio::spawn(async move {
            let shared = worker_shared;
            let client = worker_client;
            while let Some(incoming) = rx.recv().await {
                match incoming {
                    Incoming::Connected => {
                        sub_tx.send_replace(false);
                        if let Ok(mut l) = shared.link.lock() {
                            *l = (l.0 + 1, false);
                        }
                        if let Ok(mut h) = shared.last_heartbeat.lock() {
                            *h = None;
                        }
                        shared.bump();
                        let filters = [&command_topic, &heartbeat_topic].map(|t| {
                            rumqttc::SubscribeFilter::new(t.to_string(), QoS::AtLeastOnce)
                        });
                        let _ = client.subscribe_many(filters).await;
                    }
                    Incoming::Subscribed => {
                        sub_tx.send_replace(true);
                        if let Ok(mut l) = shared.link.lock() {
                            l.1 = true;
                        }
                        shared.bump();
                    }
                    Incoming::Publish(p) if p.topic == heartbeat_topic => {
                        if Heartbeat::decode(&p.payload).is_ok() {
                            if let Ok(mut h) = shared.last_heartbeat.lock() {
                                *h = Some(Instant::now());
                            }
                            shared.bump();
                        }
                    }
                    Incoming::Publish(p) if p.topic == command_topic => {
                        let command = match GateCommand::decode(&p.payload) {
                            Ok(c) => c,
                            Err(error) => {
                                tracing::warn!(%error, "gate bridge: malformed command ignored");
                                continue;
                            }
                        };
                        handle(&shared, &client, &state_topic, heartbeat_timeout, command).await;
                    }
                    Incoming::Publish(_) => {}
                    Incoming::Lost => {
                        sub_tx.send_replace(false);
                    }
                }
            }
        });
        GateBridgeSim {
            shared,
            subscribed,
            client,
            tasks: vec![poll, worker],
        }
    }

    /// Waits until the bridge is subscribed and has heard a heartbeat (it
    /// holds the gate closed before that).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let mut sub = self.subscribed.clone();
        let mut changed = self.shared.changed.subscribe();
        let ready = async {
            let _ = sub.wait_for(|s| *s).await;
            loop {
                if self.heartbeat_age().is_some() {
                    return;
                }
                if changed.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, ready)
            .await
            .map_err(|_| format!("gate bridge not ready after {timeout:?}"))?;
        if *self.subscribed.borrow() && self.heartbeat_age().is_some() {
            Ok(())
        } else {
            Err("gate bridge lost its connection".into())
        }
    }

    /// How many times the bridge has connected to the broker.
    pub fn connects(&self) -> u64 {
        self.shared.link.lock().map(|l| l.0).unwrap_or(0)
    }

    /// Waits until the bridge has connected again after `connects`
    /// connections, subscribed, and heard a heartbeat on the new connection.
    pub async fn wait_reconnected(&self, connects: u64, timeout: Duration) -> Result<(), String> {
        let mut changed = self.shared.changed.subscribe();
        let wait = async {
            loop {
                let (n, subscribed) = self.shared.link.lock().map(|l| *l).unwrap_or((0, false));
                if n > connects && subscribed && self.heartbeat_age().is_some() {
                    return;
                }
                if changed.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| format!("gate bridge not back within {timeout:?}"))
    }

    /// How long since the last heartbeat on this connection, if any came.
    pub fn heartbeat_age(&self) -> Option<Duration> {
        self.shared
            .last_heartbeat
            .lock()
            .ok()
            .and_then(|h| h.map(|t| t.elapsed()))
    }

    /// Switches the bridge's behaviour.
    pub fn set_mode(&self, mode: BridgeMode) {
        if let Ok(mut m) = self.shared.mode.lock() {
            *m = mode;
        }
    }

    /// Every pulse so far, oldest first.
    pub fn pulses(&self) -> Vec<PulseRecord> {
        self.shared
            .pulses
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// Every command refused so far, oldest first.
    pub fn refused(&self) -> Vec<Refused> {
        self.shared
            .refused
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// Waits until at least `n` pulses were given; returns them all.
    pub async fn wait_for_pulses(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<PulseRecord>, String> {
        let mut changed = self.shared.changed.subscribe();
        let wait = async {
            loop {
                let p = self.pulses();
                if p.len() >= n {
                    return p;
                }
                if changed.changed().await.is_err() {
                    return p;
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(p) if p.len() >= n => Ok(p),
            _ => Err(format!(
                "expected {n} pulses within {timeout:?}, saw {:?}",
                self.pulses()
            )),
        }
    }

    /// Disconnects cleanly and stops.
    pub async fn shutdown(self) {
        let _ = self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for GateBridgeSim {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn handle(
    shared: &Arc<Shared>,
    client: &AsyncClient,
    state_topic: &str,
    heartbeat_timeout: Duration,
    command: GateCommand,
) {
    let mode = shared.mode.lock().map(|m| *m).unwrap_or(BridgeMode::Fault);
    if mode == BridgeMode::Silent {
        return;
    }
    let fresh = shared
        .executed
        .lock()
        .map(|mut e| e.insert(command.id.as_str().to_string()))
        .unwrap_or(false);
    if !fresh {
        tracing::info!(
            id = command.id.as_str(),
            "gate bridge: command already executed; ignored"
        );
        return;
    }
    let heartbeat_ok = shared
        .last_heartbeat
        .lock()
        .ok()
        .and_then(|h| *h)
        .is_some_and(|t| t.elapsed() <= heartbeat_timeout);
    let refusal = if command.cmd != GateCmd::Open {
        Some("not an open command".to_string())
    } else if command.is_expired(now_millis()) {
        Some("command expired".to_string())
    } else if !heartbeat_ok {
        Some("no heartbeat from the server: gate held closed".to_string())
    } else if mode == BridgeMode::Fault {
        Some("relay read-back failed".to_string())
    } else {
        None
    };
    let report = |state| GateState {
        seq: command.seq,
        state,
    };
    if let Some(why) = refusal {
        shared.record(
            &shared.refused,
            Refused {
                seq: command.seq,
                why,
            },
        );
        publish_state(client, state_topic, report(GateStateKind::Fault)).await;
        return;
    }
    let pulse_ms = command.pulse_ms.get();
    shared.record(
        &shared.pulses,
        PulseRecord {
            seq: command.seq,
            id: command.id.as_str().to_string(),
            pulse_ms,
            at: now_millis(),
        },
    );
    publish_state(client, state_topic, report(GateStateKind::Open)).await;
    // The relay times itself: closed again after the pulse whatever the
    // server does meanwhile.
    let client = client.clone();
    let topic = state_topic.to_string();
    let closed = report(GateStateKind::Closed).encode();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(u64::from(pulse_ms))).await;
        let _ = client.publish(topic, QoS::AtLeastOnce, false, closed).await;
    });
}

/// Publishes the gate's state on `topic` (QoS 1, not retained), best effort.
async fn publish_state(client: &AsyncClient, topic: &str, state: GateState) {
    let _ = client
        .publish(topic, QoS::AtLeastOnce, false, state.encode())
        .await;
}

/// The scanner at a gate on MQTT: publishes scans on `gate/{gate}/scan`
/// (the PDA scan payload, its own seq) and reads the server's answer on
/// `gate/{gate}/result`: open, refused (with the reason) or fault, for the
/// guard's display.
#[derive(Debug)]
pub struct GateScanner {
    client: AsyncClient,
    scan_topic: String,
    results: mpsc::Receiver<Result<GateResultMsg, String>>,
    subscribed: watch::Receiver<bool>,
    next_seq: u64,
    tasks: [JoinHandle<()>; 2],
}

impl GateScanner {
    /// Connects, subscribes to the result topic and waits until subscribed.
    pub async fn connect(
        broker: &BrokerAddr,
        site: &Site,
        gate: &GateId,
        timeout: Duration,
    ) -> Result<GateScanner, String> {
        let render = |kind| {
            Topic::new(kind, gate.as_str())
                .expect("a GateId is a valid topic id")
                .render(site)
        };
        let scan_topic = render(TopicKind::GateScan);
        let result_topic = render(TopicKind::GateResult);
        let client_id = format!("gate-scanner-{}-{}", gate.as_str(), now_millis());
        let (client, mut incoming, poll) = connect(broker, client_id);
        let (tx, results) = mpsc::channel(64);
        let (sub_tx, subscribed) = watch::channel(false);
        let sub_client = client.clone();
        let worker = tokio::spawn(async move {
            while let Some(i) = incoming.recv().await {
                match i {
                    Incoming::Connected => {
                        let _ = sub_client.subscribe(&result_topic, QoS::AtLeastOnce).await;
                    }
                    Incoming::Subscribed => {
                        sub_tx.send_replace(true);
                    }
                    Incoming::Publish(p) if p.topic == result_topic => {
                        let r = GateResultMsg::decode(&p.payload).map_err(|e| e.to_string());
                        let _ = tx.try_send(r);
                    }
                    Incoming::Publish(_) => {}
                    Incoming::Lost => {
                        sub_tx.send_replace(false);
                    }
                }
            }
        });
        let scanner = GateScanner {
            client,
            scan_topic,
            results,
            subscribed,
            next_seq: 1,
            tasks: [poll, worker],
        };
        let mut sub = scanner.subscribed.clone();
        let ok = tokio::time::timeout(timeout, sub.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok());
        match ok {
            true => Ok(scanner),
            false => Err(format!("gate scanner not subscribed after {timeout:?}")),
        }
    }

    /// Scans `code` with the next seq; the answer echoing that seq.
    pub async fn scan(&mut self, code: &str, timeout: Duration) -> Result<GateResultMsg, String> {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.scan_with_seq(seq, code, timeout).await
    }

    /// Scans `code` with `seq` (an old one replays a scan).
    pub async fn scan_with_seq(
        &mut self,
        seq: u64,
        code: &str,
        timeout: Duration,
    ) -> Result<GateResultMsg, String> {
        let barcode = Barcode::new(code).map_err(|e| format!("barcode {code:?}: {e}"))?;
        let scan = ScanMsg {
            seq,
            barcode,
            ts: now_millis(),
        };
        self.publish_raw(scan.encode(), seq, timeout).await
    }

    /// Publishes any bytes on the scan topic and waits for the result with
    /// `seq` (a malformed scan is answered with seq 0).
    pub async fn publish_raw(
        &mut self,
        payload: Vec<u8>,
        seq: u64,
        timeout: Duration,
    ) -> Result<GateResultMsg, String> {
        self.client
            .publish(&self.scan_topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| e.to_string())?;
        let wait = async {
            while let Some(r) = self.results.recv().await {
                match r {
                    Ok(m) if m.seq == seq => return Ok(m),
                    Ok(_) => continue,
                    Err(e) => return Err(format!("malformed result: {e}")),
                }
            }
            Err("the scanner's connection task ended".to_string())
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| format!("no result for seq {seq} within {timeout:?}"))?
    }
}

impl Drop for GateScanner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
