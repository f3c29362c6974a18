//! A gate bridge on MQTT (DESIGN.md §4, PROTOCOLS.md §4–5).
//!
//! The server publishes `gate/{gate}/command` (QoS 1, never retained, with
//! an id and an expiry) and waits for the bridge's `gate/{gate}/state` with
//! the command's `seq` and `open`: the relay read back energised. A `fault`
//! report, no report before the command expires, or a link that cannot
//! publish is a fault. Every report is also recorded (`gate_events`), so a
//! grant left pending by a restart can be settled from what the bridge said.
//!
//! The server also publishes `gate/{gate}/heartbeat` every second; a bridge
//! that misses them holds its gate closed.
//!
//! The bridge's presence (its retained `online`, and the broker's `offline`
//! last will) is followed under its default device id `gate-bridge-{gate}`:
//! an online bridge that has not pulsed yet reads as closed (it released its
//! relay before it connected), an offline one as a fault, whatever it last
//! reported.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bondgate_protocol::{GateCmd, GateCommand, GateId, GateState, GateStateKind, Heartbeat, Topic};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{now_millis, Confirmation, GateOutput, OutputFault, Pulse, RelayState};
use crate::mqtt::{BoxFuture, Publisher};
use crate::store::{GateEventInput, Store};

/// How often the server tells gate bridges it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// Reports waiting to be written to `gate_events`; beyond this they are
/// dropped (and counted) rather than hold up the MQTT dispatcher.
const EVENT_QUEUE: usize = 1024;

/// The state reports of every MQTT gate bridge: who is waiting for which
/// `seq`, and the last report per gate. Fed by the MQTT dispatcher
/// ([`MqttGateStates::report`], inline, no I/O).
pub struct MqttGateStates {
    waiters: Mutex<HashMap<(String, u64), oneshot::Sender<GateStateKind>>>,
    last: Mutex<HashMap<String, GateState>>,
    /// Each gate's bridge: online or not, as its presence last said.
    presence: Mutex<HashMap<String, bool>>,
    events: mpsc::Sender<GateEventInput>,
}

/// The device id a gate bridge has unless configured otherwise.
pub const BRIDGE_PREFIX: &str = "gate-bridge-";

impl MqttGateStates {
    /// The states hub and the task recording every report in the store.
    pub fn start(
        store: Store,
        mut stop: watch::Receiver<bool>,
    ) -> (Arc<MqttGateStates>, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<GateEventInput>(EVENT_QUEUE);
        let task = tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    e = rx.recv() => match e { Some(e) => e, None => return },
                    _ = stop.changed() => return,
                };
                if let Err(error) = store.gate_event(&event).await {
                    tracing::warn!(gate = %event.gate, seq = event.seq, %error, "gate state report not recorded");
                }
            }
        });
        let states = Arc::new(MqttGateStates {
            waiters: Mutex::new(HashMap::new()),
            last: Mutex::new(HashMap::new()),
            presence: Mutex::new(HashMap::new()),
            events: tx,
        });
        (states, task)
    }

    /// A bridge's report: wakes whoever waits for its `seq` and queues it
    /// for the record.
    pub fn report(&self, gate: &GateId, state: GateState) {
        let name = gate.as_str().to_string();
        if let Ok(mut last) = self.last.lock() {
            last.insert(name.clone(), state);
        }
        if state.state != GateStateKind::Closed {
            let waiter = self
                .waiters
                .lock()
                .ok()
                .and_then(|mut w| w.remove(&(name.clone(), state.seq)));
            if let Some(w) = waiter {
                let _ = w.send(state.state);
            }
        }
        let label = match state.state {
            GateStateKind::Open => "open",
            GateStateKind::Closed => "closed",
            GateStateKind::Fault => "fault",
        };
        let event = GateEventInput {
            gate: name,
            seq: state.seq,
            state: label.into(),
            source: "mqtt".into(),
            detail: "gate bridge report".into(),
        };
        if self.events.try_send(event).is_err() {
            metrics::counter!("bondgate_gate_events_dropped_total").increment(1);
        }
    }

    /// The last report of a gate.
    pub fn last(&self, gate: &str) -> Option<GateState> {
        self.last.lock().ok().and_then(|l| l.get(gate).copied())
    }

    /// A device came online or went offline; a gate bridge's own presence
    /// (`gate-bridge-{gate}`) decides how its gate reads. An offline bridge
    /// forgets its last report: what it said before it left is no read-back.
    pub fn bridge_presence(&self, device: &str, online: bool) {
        let Some(gate) = device.strip_prefix(BRIDGE_PREFIX) else {
            return;
        };
        if let Ok(mut p) = self.presence.lock() {
            p.insert(gate.to_string(), online);
        }
        if !online {
            if let Ok(mut last) = self.last.lock() {
                last.remove(gate);
            }
        }
    }

    fn bridge_online(&self, gate: &str) -> Option<bool> {
        self.presence.lock().ok().and_then(|p| p.get(gate).copied())
    }

    fn wait(&self, gate: &str, seq: u64) -> oneshot::Receiver<GateStateKind> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.insert((gate.to_string(), seq), tx);
        }
        rx
    }

    fn forget(&self, gate: &str, seq: u64) {
        if let Ok(mut w) = self.waiters.lock() {
            w.remove(&(gate.to_string(), seq));
        }
    }
}

/// One gate driven through its MQTT bridge.
pub struct MqttGateOutput {
    gate: GateId,
    publisher: Publisher,
    states: Arc<MqttGateStates>,
}

impl MqttGateOutput {
    pub fn new(gate: GateId, publisher: Publisher, states: Arc<MqttGateStates>) -> MqttGateOutput {
        MqttGateOutput {
            gate,
            publisher,
            states,
        }
    }
}

impl GateOutput for MqttGateOutput {
    fn kind(&self) -> &'static str {
        "mqtt"
    }

    fn pulse<'a>(&'a self, pulse: &'a Pulse) -> BoxFuture<'a, Result<Confirmation, OutputFault>> {
        Box::pin(async move {
            let left = pulse.expires_at - now_millis();
            if left <= 0 {
                return Err(OutputFault::Expired);
            }
            if !self.publisher.is_connected() {
                return Err(OutputFault::Offline(
                    "the MQTT broker is not reachable".into(),
                ));
            }
            let gate = self.gate.as_str();
            let answer = self.states.wait(gate, pulse.seq);
            let command = GateCommand {
                seq: pulse.seq,
                id: pulse.id.clone(),
                cmd: GateCmd::Open,
                pulse_ms: pulse.pulse_ms,
                expires_at: pulse.expires_at,
            };
            let topic = Topic::GateCommand {
                gate: self.gate.clone(),
            };
            if let Err(e) = self.publisher.publish(&topic, command.encode()).await {
                self.states.forget(gate, pulse.seq);
                return Err(OutputFault::Offline(format!("MQTT: {e}")));
            }
            // The bridge drops the command once it expires, so waiting past
            // that would only wait for what can no longer happen.
            let wait = Duration::from_millis(u64::try_from(left).unwrap_or(0));
            match tokio::time::timeout(wait, answer).await {
                Ok(Ok(GateStateKind::Open)) => Ok(Confirmation {
                    detail: format!("gate bridge reported open (seq {})", pulse.seq),
                }),
                Ok(Ok(_)) => Err(OutputFault::Reported(format!(
                    "the gate bridge reported a fault for command {}",
                    pulse.id.as_str()
                ))),
                Ok(Err(_)) | Err(_) => {
                    self.states.forget(gate, pulse.seq);
                    Err(OutputFault::Timeout(u64::try_from(left).unwrap_or(0)))
                }
            }
        })
    }

    fn probe(&self) -> BoxFuture<'_, Result<RelayState, OutputFault>> {
        Box::pin(async move {
            let gate = self.gate.as_str();
            match self.states.bridge_online(gate) {
                Some(false) => {
                    return Err(OutputFault::Offline(format!(
                        "the gate bridge {BRIDGE_PREFIX}{gate} is offline"
                    )))
                }
                // Online and not heard from since: it released its relay
                // before connecting, so the gate is closed and idle.
                Some(true) if self.states.last(gate).is_none() => return Ok(RelayState::Off),
                _ => {}
            }
            match self.states.last(gate) {
                Some(GateState {
                    state: GateStateKind::Open,
                    ..
                }) => Ok(RelayState::On),
                Some(GateState {
                    state: GateStateKind::Closed,
                    ..
                }) => Ok(RelayState::Off),
                Some(GateState {
                    state: GateStateKind::Fault,
                    ..
                }) => Err(OutputFault::Reported(
                    "the gate bridge reports a fault".into(),
                )),
                None => Err(OutputFault::Offline(
                    "no report from the gate bridge yet".into(),
                )),
            }
        })
    }
}

/// Publishes `gate/{gate}/heartbeat` for every MQTT gate each
/// [`HEARTBEAT_EVERY`] until `stop`.
pub fn spawn_heartbeat(
    gates: Vec<GateId>,
    publisher: Publisher,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seq: u64 = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            seq += 1;
            let beat = Heartbeat {
                seq,
                ts: now_millis(),
            };
            for gate in &gates {
                let topic = Topic::GateHeartbeat { gate: gate.clone() };
                if let Err(error) = publisher.publish(&topic, beat.encode()).await {
                    tracing::debug!(gate = %gate.as_str(), %error, "heartbeat not sent");
                }
            }
        }
    })
}
