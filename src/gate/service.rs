//! The gate service: a scan is decided by the store, a grant is pulsed on
//! the gate's output, and the output's answer is recorded (shipping the
//! parcel when it confirmed).
//!
//! Fail closed: a scan at a gate with no configured output is refused
//! before anything is decided; a grant whose pulse is not confirmed becomes
//! a fault and ships nothing; a grant left pending by a crash is settled by
//! the sweeper once its command has expired (see `Store::gate_sweep`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bondgate_protocol::{CommandId, GateId, GateOutcome, GateResultMsg};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use super::{GateOutput, OutputFault, Pulse, RelayState};
use crate::config::{GateConfig, GateOutputConfig};
use crate::domain::gate::ExitEvent;
use crate::store::{Actor, GateDecisionView, GateGrant, GateScanInput, Store, StoreError};

/// How long after a command's expiry the sweeper settles its grant: room
/// for a confirmation already on its way to be recorded first.
const SWEEP_GRACE_SECS: i64 = 5;

/// How often the sweeper looks for unsettled grants.
const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// Why a scan could not be decided at all.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("no gate {0} is configured")]
    UnknownGate(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A gate as the guard's and the manager's screens show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GateStatusView {
    pub id: String,
    /// `mqtt`, `lcus` or `modbus`.
    pub output: String,
    pub pulse_ms: u32,
    /// `closed`, `open`, `fault` or `unknown` (nothing read back yet).
    pub state: String,
    /// The last fault, until a pulse is confirmed again.
    pub fault: Option<String>,
    pub last_pulse_at: Option<DateTime<Utc>>,
    pub pulses_confirmed: u64,
    pub faults: u64,
}

struct Gate {
    config: GateConfig,
    output: Arc<dyn GateOutput>,
    status: Mutex<GateStatusView>,
}

/// Every configured gate and its output.
pub struct Gates {
    store: Store,
    gates: HashMap<String, Gate>,
    /// Grants this process is still settling: the sweeper leaves them alone.
    settling: Arc<Mutex<HashSet<i64>>>,
    /// Decisions and state changes go to the screens.
    events: crate::events::EventHub,
}

impl Gates {
    /// Gates from the configuration, each with its driver.
    pub fn new(
        store: Store,
        gates: Vec<(GateConfig, Arc<dyn GateOutput>)>,
        events: crate::events::EventHub,
    ) -> Arc<Gates> {
        let gates = gates
            .into_iter()
            .map(|(c, out)| {
                let status = GateStatusView {
                    id: c.id.clone(),
                    output: out.kind().into(),
                    pulse_ms: c.pulse.get(),
                    state: "unknown".into(),
                    fault: None,
                    last_pulse_at: None,
                    pulses_confirmed: 0,
                    faults: 0,
                };
                (
                    c.id.clone(),
                    Gate {
                        config: c,
                        output: out,
                        status: Mutex::new(status),
                    },
                )
            })
            .collect();
        Arc::new(Gates {
            store,
            gates,
            settling: Arc::new(Mutex::new(HashSet::new())),
            events,
        })
    }

    /// The gates' ids whose output is an MQTT bridge (they get heartbeats).
    pub fn mqtt_gates(configs: &[GateConfig]) -> Vec<GateId> {
        configs
            .iter()
            .filter(|c| c.output == GateOutputConfig::Mqtt)
            .filter_map(|c| GateId::new(&c.id).ok())
            .collect()
    }

    /// Decides a scan and, on a grant, pulses the output and records its
    /// answer. The view returned is final: `open` (confirmed, shipped),
    /// `refused` or `fault`.
    pub async fn scan(
        &self,
        actor: &Actor,
        gate: &str,
        input: &GateScanInput,
        scan_key: Option<&str>,
    ) -> Result<GateDecisionView, GateError> {
        let view = self.decide(actor, gate, input, scan_key).await?;
        self.publish_decision(&view);
        Ok(view)
    }

    fn publish_decision(&self, view: &GateDecisionView) {
        self.events.publish(crate::events::Event::GateDecision {
            decision: Box::new(view.clone()),
        });
    }

    async fn decide(
        &self,
        actor: &Actor,
        gate: &str,
        input: &GateScanInput,
        scan_key: Option<&str>,
    ) -> Result<GateDecisionView, GateError> {
        let g = self
            .gates
            .get(gate)
            .ok_or_else(|| GateError::UnknownGate(gate.to_string()))?;
        let confirm = g.config.confirm_timeout;
        let expires_at = Utc::now()
            + chrono::Duration::from_std(confirm).unwrap_or_else(|_| chrono::Duration::seconds(2));
        let command_id = format!("c{}", uuid::Uuid::new_v4().simple());
        let grant = GateGrant {
            output_kind: g.output.kind().into(),
            command_id: command_id.clone(),
            expires_at,
        };
        let view = self
            .store
            .gate_scan(actor, gate, input, &grant, scan_key)
            .await?;
        // A refusal, or a replayed scan answered from the record.
        if view.output.as_deref() != Some("pending")
            || view.command_id.as_deref() != Some(&command_id)
        {
            return Ok(view);
        }
        self.settling_insert(view.id);
        let pulse = Pulse {
            seq: u64::try_from(view.id).unwrap_or(0),
            id: CommandId::new(&command_id)
                .map_err(|e| StoreError::Corrupt(format!("command id: {e}")))?,
            pulse_ms: g.config.pulse,
            expires_at: expires_at.timestamp_millis(),
        };
        // The driver bounds every call itself; this is the backstop.
        let bound = confirm + pulse.length() + Duration::from_secs(1);
        let outcome = match tokio::time::timeout(bound, g.output.pulse(&pulse)).await {
            Ok(r) => r,
            Err(_) => Err(OutputFault::Timeout(
                u64::try_from(bound.as_millis()).unwrap_or(u64::MAX),
            )),
        };
        let (event, detail) = match &outcome {
            Ok(c) => (ExitEvent::Confirm, c.detail.clone()),
            Err(f) => (ExitEvent::Fault, f.to_string()),
        };
        self.note(g, &outcome);
        let result = self.settle(actor, view.id, event, &detail).await;
        match result {
            Ok(v) => {
                self.settling_remove(view.id);
                Ok(v)
            }
            Err(e) => {
                if event == ExitEvent::Confirm {
                    // The gate opened but the record failed: keep trying in
                    // the background (the sweeper leaves it alone meanwhile).
                    self.retry_confirm(actor.clone(), view.id, detail);
                } else {
                    // A fault not recorded: the sweeper faults the grant
                    // once its command has expired.
                    self.settling_remove(view.id);
                }
                Err(e.into())
            }
        }
    }

    async fn settle(
        &self,
        actor: &Actor,
        id: i64,
        event: ExitEvent,
        detail: &str,
    ) -> Result<GateDecisionView, StoreError> {
        let mut delay = Duration::from_millis(50);
        for attempt in 0..5 {
            match self.store.gate_output(actor, id, event, detail).await {
                Ok(v) => return Ok(v),
                Err(StoreError::Db(e)) if attempt < 4 => {
                    tracing::warn!(decision = id, error = %e, "recording the gate output failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Corrupt("unreachable retry loop end".into()))
    }

    fn retry_confirm(self: &Gates, actor: Actor, id: i64, detail: String) {
        let store = self.store.clone();
        tracing::error!(
            decision = id,
            "the gate opened but its exit is not recorded yet; retrying in the background"
        );
        let settling = self.settling_handle();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(500);
            loop {
                match store
                    .gate_output(&actor, id, ExitEvent::Confirm, &detail)
                    .await
                {
                    Ok(_) | Err(StoreError::Invalid(_)) | Err(StoreError::NotFound(_)) => break,
                    Err(e) => {
                        tracing::warn!(decision = id, error = %e, "exit still not recorded");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(10));
                    }
                }
            }
            if let Some(s) = settling.upgrade() {
                if let Ok(mut s) = s.lock() {
                    s.remove(&id);
                }
            }
        });
    }

    fn note(&self, g: &Gate, outcome: &Result<super::Confirmation, OutputFault>) {
        self.events.publish(crate::events::Event::GateState {
            gate: g.config.id.clone(),
            state: if outcome.is_ok() { "closed" } else { "fault" }.into(),
            fault: outcome.as_ref().err().map(|f| f.to_string()),
            source: "pulse".into(),
            at: Utc::now(),
        });
        if let Ok(mut s) = g.status.lock() {
            match outcome {
                Ok(_) => {
                    s.state = "closed".into();
                    s.fault = None;
                    s.last_pulse_at = Some(Utc::now());
                    s.pulses_confirmed += 1;
                    metrics::counter!("bondgate_gate_pulses_total", "gate" => g.config.id.clone(), "result" => "confirmed").increment(1);
                }
                Err(f) => {
                    s.state = "fault".into();
                    s.fault = Some(f.to_string());
                    s.faults += 1;
                    metrics::counter!("bondgate_gate_pulses_total", "gate" => g.config.id.clone(), "result" => "fault").increment(1);
                    tracing::error!(gate = %g.config.id, fault = %f, "ALARM: gate output fault; the gate counts as closed");
                }
            }
        }
    }

    /// Every gate's status, probing each output's read-back.
    pub async fn status(&self) -> Vec<GateStatusView> {
        let mut out = Vec::new();
        let mut ids: Vec<&String> = self.gates.keys().collect();
        ids.sort();
        for id in ids {
            let g = &self.gates[id];
            let probe = tokio::time::timeout(Duration::from_secs(1), g.output.probe()).await;
            let mut s = match g.status.lock() {
                Ok(s) => s.clone(),
                Err(_) => continue,
            };
            match probe {
                Ok(Ok(RelayState::Off)) => s.state = "closed".into(),
                Ok(Ok(RelayState::On)) => s.state = "open".into(),
                Ok(Err(f)) => {
                    s.state = "fault".into();
                    s.fault = Some(f.to_string());
                }
                Err(_) => {
                    s.state = "fault".into();
                    s.fault = Some(OutputFault::Timeout(1000).to_string());
                }
            }
            out.push(s);
        }
        out
    }

    /// Whether `gate` is configured.
    pub fn has(&self, gate: &str) -> bool {
        self.gates.contains_key(gate)
    }

    /// Answers a scan from a gate's MQTT scanner: decided like an HTTP
    /// scan, keyed by `mqtt/{gate}/{seq}` so a replay gets the same answer.
    pub async fn mqtt_scan(&self, gate: &GateId, seq: u64, barcode: &str) -> GateResultMsg {
        let actor = Actor::system_named(&format!("gate-scanner:{}", gate.as_str()));
        let key = format!("mqtt/{}/{seq}", gate.as_str());
        let input = GateScanInput {
            code: barcode.to_string(),
        };
        match self.scan(&actor, gate.as_str(), &input, Some(&key)).await {
            Ok(v) => GateResultMsg {
                seq,
                outcome: match v.result.as_str() {
                    "open" => GateOutcome::Open,
                    "refused" => GateOutcome::Refused,
                    _ => GateOutcome::Fault,
                },
                code: v.reason_code,
                text_en: v.reason_en,
                text_zh: v.reason_zh,
            },
            Err(e) => GateResultMsg {
                seq,
                outcome: GateOutcome::Refused,
                code: "server_error".into(),
                text_en: format!("The server could not decide ({e}); the gate stays shut"),
                text_zh: format!("服务器无法判定（{e}）；闸机保持关闭"),
            },
        }
    }

    /// Settles expired grants every few seconds (and once at start: the
    /// ones a previous run left behind).
    pub fn spawn_sweeper(self: &Arc<Gates>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let gates = self.clone();
        tokio::spawn(async move {
            let actor = Actor::system_named("gate-sweeper");
            // Reach every output once at start: a relay driver drives its
            // relay off when it connects, so one left on by a crash of the
            // previous run is released now, not at the first scan.
            for s in gates.status().await {
                // A bridge reports only when commanded: no word yet is normal.
                if s.output == "mqtt" {
                    continue;
                }
                if let Some(fault) = s.fault {
                    tracing::error!(gate = %s.id, %fault, "ALARM: gate output not reachable at start");
                }
            }
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                let skip: Vec<i64> = gates
                    .settling
                    .lock()
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                match gates
                    .store
                    .gate_sweep(&actor, chrono::Duration::seconds(SWEEP_GRACE_SECS), &skip)
                    .await
                {
                    Ok(settled) => {
                        for v in settled {
                            gates.publish_decision(&v);
                            tracing::warn!(decision = v.id, gate = %v.gate, result = %v.result, detail = ?v.output_detail, "unsettled gate grant settled");
                        }
                    }
                    Err(error) => tracing::warn!(%error, "gate sweep failed"),
                }
            }
        })
    }

    fn settling_insert(&self, id: i64) {
        if let Ok(mut s) = self.settling.lock() {
            s.insert(id);
        }
    }

    fn settling_remove(&self, id: i64) {
        if let Ok(mut s) = self.settling.lock() {
            s.remove(&id);
        }
    }

    /// The set, held weakly by a detached retry so it does not keep a
    /// stopped server's service alive.
    fn settling_handle(&self) -> std::sync::Weak<Mutex<HashSet<i64>>> {
        Arc::downgrade(&self.settling)
    }
}
