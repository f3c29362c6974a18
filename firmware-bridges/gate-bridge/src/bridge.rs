//! The bridge itself (PROTOCOLS.md §4–5): MQTT in, relay pulses out.
//!
//! One poll task only polls the event loop (requests from the polling task
//! can deadlock, PROTOCOLS §5) and hands everything to the worker, which
//! re-subscribes and republishes `online` on every ConnAck and executes
//! commands one at a time:
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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bondgate_protocol::{
    Backoff, DeviceStatus, GateCmd, GateCommand, GateState, GateStateKind, Heartbeat, Topic,
    TopicKind,
};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::Config;
use crate::lcus::RelayError;
use crate::relay::Relay;

/// Command ids remembered for the at-most-once rule. The server sends a
/// handful a minute per gate; 4096 is hours of traffic, bounded.
pub const REMEMBERED_IDS_MAX: usize = 4096;

/// Requests queued for the MQTT client.
const REQUEST_CAPACITY: usize = 64;

/// Messages queued from the poll task to the worker.
const INCOMING_CAPACITY: usize = 256;

/// MQTT keep-alive.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What the poll task hands the worker.
enum Incoming {
    Connected,
    Publish(rumqttc::Publish),
    Lost,
}

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
    status: String,
}

/// Runs the bridge until the process is stopped.
pub async fn run(config: Config, mut relay: Relay) {
    let gate_topic = |kind| {
        Topic::new(kind, config.gate.as_str())
            .expect("a GateId is a valid topic id")
            .render(&config.site)
    };
    let topics = Topics {
        command: gate_topic(TopicKind::GateCommand),
        heartbeat: gate_topic(TopicKind::GateHeartbeat),
        state: gate_topic(TopicKind::GateState),
        status: Topic::new(TopicKind::DeviceStatus, config.device.as_str())
            .expect("a DeviceId is a valid topic id")
            .render(&config.site),
    };

    // The relay off before anything else: a crash mid-pulse may have left it on.
    match relay.release().await {
        Ok(()) => tracing::info!(relay = relay.describe(), "relay released at start"),
        Err(error) => {
            tracing::error!(relay = relay.describe(), %error, "relay not released at start; retried on the next command")
        }
    }

    // The device id as the client id, stable across restarts: a restarted
    // bridge takes over its old session at the broker, so the old session's
    // `offline` will cannot land after the new `online`.
    let mut mqtt = MqttOptions::new(
        config.device.as_str(),
        config.broker.host(),
        config.broker.port(),
    );
    mqtt.set_keep_alive(KEEP_ALIVE)
        .set_clean_session(true)
        .set_last_will(LastWill::new(
            &topics.status,
            DeviceStatus::Offline.encode(),
            QoS::AtLeastOnce,
            TopicKind::DeviceStatus.retained(),
        ));
    if let Some((user, password)) = config.broker.credentials() {
        mqtt.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(mqtt, REQUEST_CAPACITY);
    // Small packets someone waits on: no Nagle delay.
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);

    let (tx, mut rx) = mpsc::channel::<Incoming>(INCOMING_CAPACITY);
    let broker = format!("{}:{}", config.broker.host(), config.broker.port());
    tokio::spawn(async move {
        let mut backoff = Backoff::new();
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
                    tracing::info!(broker, "connected");
                    if tx.send(Incoming::Connected).await.is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.try_send(Incoming::Publish(p)).is_err() {
                        tracing::warn!("incoming queue full; message dropped");
                    }
                }
                Ok(_) => {}
                Err(rumqttc::ConnectionError::RequestsDone) => return,
                Err(error) => {
                    let _ = tx.try_send(Incoming::Lost);
                    let random = u64::from(
                        SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map(|d| d.subsec_nanos())
                            .unwrap_or(0),
                    ) << 32;
                    let delay = backoff.next_delay_with(random);
                    tracing::warn!(broker, %error, ?delay, "connection failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    });

    let mut seen = SeenIds::default();
    let mut last_heartbeat: Option<Instant> = None;
    while let Some(incoming) = rx.recv().await {
        match incoming {
            Incoming::Connected => {
                // Heartbeats count per connection: the server may be gone.
                last_heartbeat = None;
                let filters = [&topics.command, &topics.heartbeat]
                    .map(|t| rumqttc::SubscribeFilter::new(t.to_string(), QoS::AtLeastOnce));
                let _ = client.subscribe_many(filters).await;
                let _ = client
                    .publish(
                        &topics.status,
                        QoS::AtLeastOnce,
                        TopicKind::DeviceStatus.retained(),
                        DeviceStatus::Online.encode(),
                    )
                    .await;
            }
            Incoming::Lost => last_heartbeat = None,
            Incoming::Publish(p) if p.topic == topics.heartbeat => {
                if Heartbeat::decode(&p.payload).is_ok() {
                    last_heartbeat = Some(Instant::now());
                }
            }
            Incoming::Publish(p) if p.topic == topics.command => {
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
                } else if command.is_expired(now_millis()) {
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
                pulse(&mut relay, &client, &topics.state, &command).await;
            }
            Incoming::Publish(_) => {}
        }
    }
}

/// One self-timed pulse with its reports.
async fn pulse(relay: &mut Relay, client: &AsyncClient, state_topic: &str, command: &GateCommand) {
    let seq = command.seq;
    let length = Duration::from_millis(u64::from(command.pulse_ms.get()));
    let result = async {
        relay.on(command.pulse_ms.get()).await?;
        let started = Instant::now();
        if !relay.read().await? {
            return Err(RelayError::ReadBack("relay off right after on".into()));
        }
        report(client, state_topic, seq, GateStateKind::Open).await;
        tokio::time::sleep_until(started + length).await;
        relay.finish().await
    }
    .await;
    match result {
        Ok(()) => {
            tracing::info!(
                seq,
                id = command.id.as_str(),
                pulse_ms = command.pulse_ms.get(),
                "pulsed"
            );
            report(client, state_topic, seq, GateStateKind::Closed).await;
        }
        Err(error) => {
            tracing::error!(seq, id = command.id.as_str(), %error, relay = relay.describe(), "pulse failed");
            // Best effort: never leave the barrier held open.
            let _ = relay.off().await;
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
