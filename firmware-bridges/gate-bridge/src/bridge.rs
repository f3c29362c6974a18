//! The bridge itself (PROTOCOLS.md §4–5): MQTT in, relay pulses out.
//!
//! The MQTT session is `bondgate_edge::Session` (poll task with backoff,
//! subscriptions renewed and `online` republished on every ConnAck,
//! `offline` will); this worker executes commands one at a time:
//!
//! - a command id seen before is ignored (a redelivered QoS 1 command must
//!   not pulse twice);
//! - a command that is not `open`, has expired, or arrives while the
//!   heartbeat is stale (or before the first one on this connection) is
//!   answered `fault` and nothing is switched;
//! - otherwise: relay on, read back (must be on) → `open`; wait out
//!   `pulse_ms` from the on; relay off, read back (must be off) → `closed`.
//!   Any device error → relay off (best effort) and `fault`.

use std::collections::{HashSet, VecDeque};

use bondgate_edge::{unix_millis, BridgeError, Session, SessionEvent};
use bondgate_protocol::{
    GateCmd, GateCommand, GateState, GateStateKind, Heartbeat, Topic, TopicKind,
};
use rumqttc::{AsyncClient, QoS};
use tokio::time::Instant;

use crate::config::Config;
use crate::relay::Relay;
use bondgate_relay_io::{Pulse, RelayState};

/// Command ids remembered for the at-most-once rule. The server sends a
/// handful a minute per gate; 4096 is hours of traffic, bounded.
pub const REMEMBERED_IDS_MAX: usize = 4096;

/// Ids executed (or refused) recently, oldest dropped first.
#[derive(Debug, Default)]
struct SeenIds {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl SeenIds {
    /// `true` if `id` is new (and now remembered).
    fn insert(&mut self, id: &str) -> bool {
        if !self.set.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        if self.order.len() > REMEMBERED_IDS_MAX {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

struct Topics {
    command: String,
    heartbeat: String,
    state: String,
}

/// Runs the bridge until its MQTT session ends.
pub async fn run(config: Config, relay: &Relay) -> Result<(), BridgeError> {
    let gate_topic = |kind| {
        Topic::new(kind, config.gate.as_str())
            .expect("a GateId is a valid topic id")
            .render(&config.edge.site)
    };
    let topics = Topics {
        command: gate_topic(TopicKind::GateCommand),
        heartbeat: gate_topic(TopicKind::GateHeartbeat),
        state: gate_topic(TopicKind::GateState),
    };

    // The relay off before anything else: a crash mid-pulse may have left it on.
    match relay.probe().await {
        Ok(RelayState::Off) => tracing::info!(relay = ?config.relay, "relay released at start"),
        Ok(RelayState::On) => {
            tracing::error!(relay = ?config.relay, "relay still on after off at start")
        }
        Err(error) => {
            tracing::error!(relay = ?config.relay, %error, "relay not released at start; retried on the next command")
        }
    }

    let mut session = Session::start(
        &config.edge,
        vec![topics.command.clone(), topics.heartbeat.clone()],
    );
    let client = session.client().clone();
    let mut seen = SeenIds::default();
    let mut last_heartbeat: Option<Instant> = None;
    while let Some(incoming) = session.next().await {
        match incoming {
            // Heartbeats count per connection: the server may be gone.
            SessionEvent::Connected | SessionEvent::Lost => last_heartbeat = None,
            SessionEvent::Publish(p) if p.topic == topics.heartbeat => {
                if Heartbeat::decode(&p.payload).is_ok() {
                    last_heartbeat = Some(Instant::now());
                }
            }
            SessionEvent::Publish(p) if p.topic == topics.command => {
                let command = match GateCommand::decode(&p.payload) {
                    Ok(c) => c,
                    Err(error) => {
                        tracing::warn!(%error, "malformed command ignored");
                        continue;
                    }
                };
                if !seen.insert(command.id.as_str()) {
                    tracing::info!(
                        seq = command.seq,
                        id = command.id.as_str(),
                        "command already seen; ignored"
                    );
                    continue;
                }
                let heartbeat_ok =
                    last_heartbeat.is_some_and(|t| t.elapsed() <= config.heartbeat_timeout);
                let refusal = if command.cmd != GateCmd::Open {
                    Some("not an open command")
                } else if command.is_expired(unix_millis()) {
                    Some("command expired")
                } else if !heartbeat_ok {
                    Some("no heartbeat from the server: gate held closed")
                } else {
                    None
                };
                if let Some(why) = refusal {
                    tracing::warn!(seq = command.seq, id = command.id.as_str(), why, "refused");
                    report(&client, &topics.state, command.seq, GateStateKind::Fault).await;
                    continue;
                }
                pulse(relay, &client, &topics.state, &command).await;
            }
            SessionEvent::Publish(_) => {}
        }
    }
    Err(BridgeError::SessionEnded)
}

/// One self-timed pulse with its reports: `open` as soon as the relay read
/// back on, `closed` once it read back off, `fault` if either failed.
async fn pulse(relay: &Relay, client: &AsyncClient, state_topic: &str, command: &GateCommand) {
    let seq = command.seq;
    let order = Pulse {
        seq,
        id: command.id.clone(),
        pulse_ms: command.pulse_ms,
        expires_at: command.expires_at,
    };
    let (opened, on) = tokio::sync::oneshot::channel();
    let mut run = Box::pin(relay.pulse(&order, opened));
    let result = tokio::select! {
        r = &mut run => r,
        Ok(()) = on => {
            report(client, state_topic, seq, GateStateKind::Open).await;
            run.await
        }
    };
    match result {
        Ok(confirmation) => {
            tracing::info!(
                seq,
                id = command.id.as_str(),
                pulse_ms = command.pulse_ms.get(),
                detail = confirmation.detail,
                "pulsed"
            );
            report(client, state_topic, seq, GateStateKind::Closed).await;
        }
        Err(error) => {
            tracing::error!(seq, id = command.id.as_str(), %error, "pulse failed");
            // Never leave the barrier held open: a new connection drives
            // the relay off (the driver dropped the failed one).
            let _ = relay.probe().await;
            report(client, state_topic, seq, GateStateKind::Fault).await;
        }
    }
}

/// Publishes the gate's state (QoS 1, never retained).
async fn report(client: &AsyncClient, topic: &str, seq: u64, state: GateStateKind) {
    let payload = GateState { seq, state }.encode();
    if let Err(error) = client
        .publish(topic, QoS::AtLeastOnce, false, payload)
        .await
    {
        tracing::warn!(%error, seq, ?state, "state report not queued");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_remembered_and_the_oldest_forgotten() {
        let mut seen = SeenIds::default();
        assert!(seen.insert("a"));
        assert!(!seen.insert("a"));
        for i in 0..REMEMBERED_IDS_MAX {
            assert!(seen.insert(&format!("x{i}")));
        }
        assert!(
            seen.insert("a"),
            "the oldest id is forgotten past the bound"
        );
        assert_eq!(seen.order.len(), REMEMBERED_IDS_MAX);
    }
}
