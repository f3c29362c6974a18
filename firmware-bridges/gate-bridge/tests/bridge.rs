//! The real `gate-bridge` binary against a real broker (an embedded rumqttd
//! per test) and a simulated LCUS relay board on a pty. The test plays the
//! server: it publishes heartbeats and commands with `bondgate_protocol`'s
//! encoders and reads the bridge's state reports.

#[path = "../../test-support/bridge_test.rs"]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bondgate_protocol::{
    CommandId, DeviceStatus, GateCmd, GateCommand, GateState, GateStateKind, Heartbeat, PulseMs,
    Topic, TopicKind,
};
use bondgate_sim::{LcusRelaySim, ModbusRelaySim};
use bondgate_sim::{RelayFault, RelayOptions};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use support::{embedded_broker, start_bin, terminate, Process, ONE_AT_A_TIME, WAIT};
use tokio::sync::mpsc;

const SITE: &str = "s1";
const GATE: &str = "g1";
/// The relay channel the bridge drives.
const CHANNEL: u8 = 2;

fn now_millis() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn start_bridge(dir: &Path, broker: SocketAddr, relay: &str) -> Process {
    start_bin(
        env!("CARGO_BIN_EXE_gate-bridge"),
        dir,
        &format!(
            "broker = \"mqtt://{broker}\"\nsite = \"{SITE}\"\ngate = \"{GATE}\"\n\
             heartbeat_timeout_ms = 1000\n{relay}",
        ),
    )
}

fn topic(kind: TopicKind, id: &str) -> String {
    Topic::new(kind, id)
        .unwrap()
        .render(&bondgate_protocol::Site::new(SITE).unwrap())
}

/// The test's side: the server's client.
struct Server {
    client: AsyncClient,
    states: mpsc::UnboundedReceiver<GateState>,
    statuses: mpsc::UnboundedReceiver<DeviceStatus>,
    heartbeats: Arc<AtomicBool>,
}

impl Server {
    async fn connect(broker: SocketAddr) -> Server {
        let mut mqtt = MqttOptions::new(
            format!("test-server-{}", now_millis()),
            broker.ip().to_string(),
            broker.port(),
        );
        mqtt.set_keep_alive(Duration::from_secs(10));
        let (client, mut eventloop) = AsyncClient::new(mqtt, 64);
        let (state_tx, states) = mpsc::unbounded_channel();
        let (status_tx, statuses) = mpsc::unbounded_channel();
        let (sub_tx, mut subscribed) = mpsc::unbounded_channel();
        let state_topic = topic(TopicKind::GateState, GATE);
        let status_topic = topic(TopicKind::DeviceStatus, &format!("gate-bridge-{GATE}"));
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = sub_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) if p.topic == state_topic => {
                        let _ = state_tx.send(GateState::decode(&p.payload).unwrap());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) if p.topic == status_topic => {
                        let _ = status_tx.send(DeviceStatus::decode(&p.payload).unwrap());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        for t in [
            topic(TopicKind::GateState, GATE),
            topic(TopicKind::DeviceStatus, &format!("gate-bridge-{GATE}")),
        ] {
            client.subscribe(t, QoS::AtLeastOnce).await.unwrap();
        }
        for _ in 0..2 {
            tokio::time::timeout(WAIT, subscribed.recv())
                .await
                .expect("subscribed");
        }
        let heartbeats = Arc::new(AtomicBool::new(true));
        let on = heartbeats.clone();
        let hb_client = client.clone();
        tokio::spawn(async move {
            let mut seq = 0;
            loop {
                if on.load(Ordering::SeqCst) {
                    seq += 1;
                    let hb = Heartbeat {
                        seq,
                        ts: now_millis(),
                    };
                    let _ = hb_client
                        .publish(
                            topic(TopicKind::GateHeartbeat, GATE),
                            QoS::AtLeastOnce,
                            false,
                            hb.encode(),
                        )
                        .await;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Server {
            client,
            states,
            statuses,
            heartbeats,
        }
    }

    /// Waits for the bridge's retained `online` (published after it
    /// subscribed), then for a few heartbeats to reach it.
    async fn wait_online(&mut self) {
        let deadline = Instant::now() + WAIT * 2;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.statuses.recv()).await {
                Ok(Some(DeviceStatus::Online)) => break,
                Ok(Some(_)) => continue,
                _ => panic!("the bridge never came online"),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    async fn command(&self, seq: u64, id: &str, pulse_ms: u32, expires_at: i64) {
        let c = GateCommand {
            seq,
            id: CommandId::new(id).unwrap(),
            cmd: GateCmd::Open,
            pulse_ms: PulseMs::new(pulse_ms).unwrap(),
            expires_at,
        };
        self.client
            .publish(
                topic(TopicKind::GateCommand, GATE),
                QoS::AtLeastOnce,
                false,
                c.encode(),
            )
            .await
            .unwrap();
    }

    async fn next_state(&mut self, within: Duration) -> Option<GateState> {
        tokio::time::timeout(within, self.states.recv())
            .await
            .ok()
            .flatten()
    }
}

struct Rig {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    _dir: tempfile::TempDir,
    relay: LcusRelaySim,
    bridge: Process,
    server: Server,
}

async fn rig() -> Rig {
    let serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let link: PathBuf = dir.path().join("ttyLCUS");
    let relay = LcusRelaySim::start(RelayOptions {
        link: Some(link.clone()),
        ..RelayOptions::default()
    })
    .await
    .expect("relay sim");
    let broker = embedded_broker().await;
    let mut server = Server::connect(broker).await;
    let relay_config = format!(
        "[relay]\nkind = \"lcus\"\npath = \"{}\"\nchannel = {CHANNEL}\n",
        link.display()
    );
    let bridge = start_bridge(dir.path(), broker, &relay_config);
    server.wait_online().await;
    Rig {
        _serial: serial,
        _dir: dir,
        relay,
        bridge,
        server,
    }
}

fn soon() -> i64 {
    now_millis() + 10_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_command_pulses_once_and_reports_open_then_closed() {
    let mut rig = rig().await;
    let control = rig.relay.control();
    rig.server.command(7, "cmd-7", 300, soon()).await;
    let open = rig.server.next_state(WAIT).await.expect("a report");
    assert_eq!(
        open,
        GateState {
            seq: 7,
            state: GateStateKind::Open
        }
    );
    let closed = rig.server.next_state(WAIT).await.expect("a second report");
    assert_eq!(
        closed,
        GateState {
            seq: 7,
            state: GateStateKind::Closed
        }
    );
    let pulses = control.wait_pulses(1, WAIT).await;
    assert_eq!(pulses.len(), 1, "{pulses:?}");
    assert_eq!(pulses[0].relay, u16::from(CHANNEL));
    let length = pulses[0].length().expect("off again");
    assert!(
        length >= Duration::from_millis(280) && length < Duration::from_millis(1_500),
        "pulse of {length:?}"
    );

    // The same id again (a QoS 1 redelivery): nothing.
    rig.server.command(7, "cmd-7", 300, soon()).await;
    assert_eq!(rig.server.next_state(Duration::from_secs(1)).await, None);
    assert_eq!(control.pulses().len(), 1);

    // A new id pulses again.
    rig.server.command(8, "cmd-8", 200, soon()).await;
    assert_eq!(
        rig.server.next_state(WAIT).await.map(|s| (s.seq, s.state)),
        Some((8, GateStateKind::Open))
    );
    assert_eq!(
        rig.server.next_state(WAIT).await.map(|s| (s.seq, s.state)),
        Some((8, GateStateKind::Closed))
    );
    assert_eq!(control.wait_pulses(2, WAIT).await.len(), 2);
    assert!(!control.relays()[usize::from(CHANNEL) - 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_command_is_a_fault_without_a_pulse() {
    let mut rig = rig().await;
    rig.server
        .command(3, "cmd-old", 300, now_millis() - 1)
        .await;
    assert_eq!(
        rig.server.next_state(WAIT).await,
        Some(GateState {
            seq: 3,
            state: GateStateKind::Fault
        })
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rig.relay.control().pulses().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_heartbeats_the_gate_is_held_closed() {
    let mut rig = rig().await;
    rig.server.heartbeats.store(false, Ordering::SeqCst);
    // The bridge's timeout is 1 s in this config.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    rig.server.command(4, "cmd-nohb", 300, soon()).await;
    assert_eq!(
        rig.server.next_state(WAIT).await,
        Some(GateState {
            seq: 4,
            state: GateStateKind::Fault
        })
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rig.relay.control().pulses().is_empty());

    // Heartbeats back: the gate works again.
    rig.server.heartbeats.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    rig.server.command(5, "cmd-hb", 200, soon()).await;
    assert_eq!(
        rig.server.next_state(WAIT).await.map(|s| s.state),
        Some(GateStateKind::Open)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_relay_is_a_fault() {
    let mut rig = rig().await;
    let control = rig.relay.control();
    control.set_fault(RelayFault::Silent);
    rig.server.command(9, "cmd-silent", 300, soon()).await;
    assert_eq!(
        rig.server.next_state(WAIT).await,
        Some(GateState {
            seq: 9,
            state: GateStateKind::Fault
        })
    );
    assert!(control.pulses().is_empty());

    // The board answers again: the next command works (the port reopened).
    control.set_fault(RelayFault::None);
    rig.server.command(10, "cmd-back", 200, soon()).await;
    assert_eq!(
        rig.server.next_state(WAIT).await.map(|s| (s.seq, s.state)),
        Some((10, GateStateKind::Open))
    );
    assert_eq!(
        rig.server.next_state(WAIT).await.map(|s| (s.seq, s.state)),
        Some((10, GateStateKind::Closed))
    );
    assert_eq!(control.wait_pulses(1, WAIT).await.len(), 1);
}

/// A Modbus TCP board: a fresh command pulses the coil once (on, wait,
/// off), or with `flash` once as the board's own timed flash.
async fn modbus_pulse(flash: bool, rtu: bool) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let relay = if rtu {
        ModbusRelaySim::start_rtu(RelayOptions {
            link: Some(dir.path().join("ttyRS485")),
            ..RelayOptions::default()
        })
        .await
    } else {
        ModbusRelaySim::start_tcp("127.0.0.1:0".parse().unwrap(), RelayOptions::default()).await
    }
    .expect("modbus sim");
    let control = relay.control();
    let broker = embedded_broker().await;
    let mut server = Server::connect(broker).await;
    let board = match relay.addr() {
        Some(addr) => format!("addr = \"{addr}\""),
        None => format!("path = \"{}\"", relay.path().unwrap().display()),
    };
    let relay_config =
        format!("[relay]\nkind = \"modbus\"\n{board}\nunit = 1\ncoil = 1\nflash = {flash}\n");
    let _bridge = start_bridge(dir.path(), broker, &relay_config);
    server.wait_online().await;
    server.command(21, "cmd-mb", 300, soon()).await;
    assert_eq!(
        server.next_state(WAIT).await.map(|s| (s.seq, s.state)),
        Some((21, GateStateKind::Open))
    );
    assert_eq!(
        server.next_state(WAIT).await.map(|s| (s.seq, s.state)),
        Some((21, GateStateKind::Closed))
    );
    let pulses = control.wait_pulses(1, WAIT).await;
    assert_eq!(pulses.len(), 1, "{pulses:?}");
    assert_eq!((pulses[0].relay, pulses[0].flash), (1, flash));
    let length = pulses[0].length().expect("off again");
    assert!(
        length >= Duration::from_millis(280) && length < Duration::from_millis(1_500),
        "pulse of {length:?}"
    );

    // Redelivered: nothing. Then the board goes silent: fault, no pulse.
    server.command(21, "cmd-mb", 300, soon()).await;
    assert_eq!(server.next_state(Duration::from_millis(700)).await, None);
    control.set_fault(RelayFault::Silent);
    server.command(22, "cmd-mb-silent", 300, soon()).await;
    assert_eq!(
        server.next_state(WAIT).await.map(|s| (s.seq, s.state)),
        Some((22, GateStateKind::Fault))
    );
    assert_eq!(control.pulses().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modbus_tcp_coil_is_pulsed_on_wait_off() {
    modbus_pulse(false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modbus_rtu_coil_on_a_serial_line_is_pulsed() {
    modbus_pulse(false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modbus_tcp_coil_is_pulsed_with_the_boards_flash() {
    modbus_pulse(true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_pulse_releases_the_relay_and_leaves_offline() {
    let mut rig = rig().await;
    let control = rig.relay.control();
    rig.server.command(30, "cmd-long", 5_000, soon()).await;
    assert_eq!(
        rig.server.next_state(WAIT).await.map(|s| (s.seq, s.state)),
        Some((30, GateStateKind::Open))
    );
    terminate(&mut rig.bridge).await;
    let pulses = control.wait_pulses(1, WAIT).await;
    let length = pulses[0].length().expect("released on stop");
    assert!(length < Duration::from_secs(3), "pulse of {length:?}");
    assert!(!control.relays()[usize::from(CHANNEL) - 1]);
    let offline = tokio::time::timeout(WAIT, rig.server.statuses.recv()).await;
    assert_eq!(offline.ok().flatten(), Some(DeviceStatus::Offline));
}
