//! The gate's relay outputs end to end: the real server with a `[[gate]]`
//! whose output is an LCUS board on a pseudo-terminal or a Modbus TCP
//! board, both simulated by `bondgate-sim` over the real transport. A
//! released parcel scanned at the gate → exactly one pulse of the
//! configured length on the board → the parcel shipped. A board that does
//! not answer → the scan is a fault, nothing ships, the gate reads as a
//! fault (closed), and the parcel can be scanned again once it answers.

use std::path::PathBuf;
use std::time::Duration;

use bondgate::config::{GateConfig, GateOutputConfig, ModbusCoil};
use bondgate_protocol::scale::ScaleProtocol;
use bondgate_protocol::PulseMs;
use bondgate_sim::{LcusRelaySim, ModbusRelaySim, RelayControl, RelayFault, RelayOptions};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::customs::{ceb622, signed};
use crate::helpers::Backend;
use crate::packing::{ready_with_gates, Station};

/// The configured pulse. Long enough that the read-back during the pulse
/// (a few ms) fits well inside it.
const PULSE_MS: u32 = 400;
/// How far a measured pulse may be from the configured length: the off is
/// sent after the on's read-back and a timer, on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(150);

fn gate(output: GateOutputConfig) -> GateConfig {
    GateConfig {
        id: "G1".into(),
        pulse: PulseMs::new(PULSE_MS).expect("pulse"),
        confirm_timeout: Duration::from_secs(2),
        output,
    }
}

/// A station whose order ORD-1 is packed as parcel BG0000000001 and
/// released by customs (800), ready to be scanned at G1.
async fn released(output: GateOutputConfig) -> (Station, String) {
    let (st, packer) = ready_with_gates(
        Backend::Sqlite,
        ScaleProtocol::YaohuaA9,
        Duration::from_millis(200),
        "ORD-1",
        1,
        vec![gate(output)],
    )
    .await
    .expect("SQLite is always available");
    st.place(215).await;
    let (s, p) = st.pack(&packer, 1).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let gateway = st.app.user("gw", "integration").await;
    let (s, b) = signed(
        &st.app,
        &gateway,
        ceb622("COP-ORD-1", 800, "20261123110000000"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let guard = st.app.user("gus", "guard").await;
    (st, guard)
}

async fn scan(st: &Station, guard: &str) -> Value {
    let (s, d) = st
        .app
        .call_as(
            Some(guard),
            Method::POST,
            "/api/v1/gates/G1/scans",
            Some(json!({"code": "BG0000000001"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    d
}

async fn order_state(st: &Station) -> Value {
    st.app.get("/api/v1/orders/ORD-1").await.1["state"].clone()
}

/// The scan opened, the board saw exactly one pulse of the configured
/// length, and the parcel shipped.
async fn assert_opened_once(st: &Station, d: &Value, relay: &RelayControl, kind: &str) {
    assert_eq!(
        (d["result"].as_str(), d["output"].as_str()),
        (Some("open"), Some("confirmed")),
        "{d}"
    );
    assert_eq!(d["output_kind"], kind, "{d}");
    let pulses = relay.wait_pulses(1, Duration::from_secs(2)).await;
    assert_eq!(pulses.len(), 1, "{pulses:?}");
    let length = pulses[0].length().expect("the relay was released");
    let want = Duration::from_millis(u64::from(PULSE_MS));
    assert!(
        length >= want - Duration::from_millis(20) && length <= want + SLACK,
        "pulse of {length:?}, configured {want:?}"
    );
    assert_eq!(relay.relays().iter().filter(|&&on| on).count(), 0);
    assert_eq!(order_state(st).await, "shipped");
    st.app.integrity_clean().await;
}

/// The scan is a fault, nothing shipped, the gate shows the fault.
async fn assert_fault(st: &Station, d: &Value) {
    assert_eq!(
        (d["result"].as_str(), d["output"].as_str()),
        (Some("fault"), Some("fault")),
        "{d}"
    );
    assert_eq!(d["reason_code"], "gate.output_fault", "{d}");
    assert_eq!(order_state(st).await, "packed");
    let (_, gates) = st.app.get("/api/v1/gates").await;
    assert_eq!(gates[0]["state"], "fault", "{gates}");
    assert!(gates[0]["fault"].is_string(), "{gates}");
}

/// An LCUS board on a pty, linked as `name` in a new temporary directory
/// (kept for as long as the link is used), and the link.
async fn lcus_sim(name: &str) -> (tempfile::TempDir, LcusRelaySim, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join(name);
    let sim = LcusRelaySim::start(RelayOptions {
        link: Some(link.clone()),
        ..RelayOptions::default()
    })
    .await
    .expect("LCUS simulator");
    (dir, sim, link)
}

/// A Modbus TCP board on a free local port.
async fn modbus_tcp_sim() -> ModbusRelaySim {
    ModbusRelaySim::start_tcp("127.0.0.1:0".parse().unwrap(), RelayOptions::default())
        .await
        .expect("Modbus simulator")
}

fn lcus_output(path: PathBuf) -> GateOutputConfig {
    GateOutputConfig::Lcus {
        path,
        baud: 9600,
        channel: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lcus_relay_pulses_once_and_the_parcel_ships() {
    let (_dir, sim, link) = lcus_sim("relay-G1").await;
    let (st, guard) = released(lcus_output(link)).await;
    let d = scan(&st, &guard).await;
    assert_opened_once(&st, &d, &sim.control(), "lcus").await;
    assert_eq!(sim.control().pulses()[0].relay, 1);
    // Scanned again: refused, and the relay stays still.
    assert_eq!(scan(&st, &guard).await["reason_code"], "already_exited");
    assert_eq!(sim.control().pulses().len(), 1);
    let (_, gates) = st.app.get("/api/v1/gates").await;
    assert_eq!(
        (
            gates[0]["state"].as_str(),
            gates[0]["pulses_confirmed"].as_u64()
        ),
        (Some("closed"), Some(1)),
        "{gates}"
    );
    st.finish().await;
    sim.shutdown().await;
}

/// The previous server died mid-pulse with the relay on (nothing else
/// would ever switch it off): the new server drives it off at start,
/// before any scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_left_on_is_released_when_the_server_starts() {
    use tokio::io::AsyncWriteExt as _;
    use tokio_serial::SerialPortBuilderExt as _;
    let (_dir, sim, link) = lcus_sim("relay-G1").await;
    {
        let mut port = tokio_serial::new(link.to_string_lossy(), 9600)
            .open_native_async()
            .expect("the board's port");
        let on = bondgate_protocol::relay::LcusCommand {
            channel: 1,
            on: true,
        }
        .encode();
        port.write_all(&on).await.unwrap();
        port.flush().await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while sim.control().relays().first() != Some(&true) {
            assert!(std::time::Instant::now() < deadline, "the relay went on");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (st, _packer) = ready_with_gates(
        Backend::Sqlite,
        ScaleProtocol::YaohuaA9,
        Duration::from_millis(200),
        "ORD-1",
        1,
        vec![gate(lcus_output(link))],
    )
    .await
    .expect("SQLite is always available");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sim.control().relays().first() != Some(&false) {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never released the relay"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    st.finish().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_lcus_relay_is_a_fault_and_nothing_ships() {
    let (_dir, sim, link) = lcus_sim("relay-G1").await;
    let relay = sim.control();
    relay.set_fault(RelayFault::Silent);
    let (st, guard) = released(lcus_output(link)).await;
    let d = scan(&st, &guard).await;
    assert_fault(&st, &d).await;
    assert!(relay.pulses().is_empty(), "{:?}", relay.pulses());

    // The board answers again: the same parcel opens the gate once.
    relay.set_fault(RelayFault::None);
    let d = scan(&st, &guard).await;
    assert_opened_once(&st, &d, &relay, "lcus").await;
    st.finish().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modbus_tcp_coil_pulses_once_and_the_parcel_ships() {
    for flash in [false, true] {
        let sim = modbus_tcp_sim().await;
        let addr = sim.addr().expect("TCP address").to_string();
        let output = GateOutputConfig::ModbusTcp {
            addr,
            modbus: ModbusCoil {
                unit: 1,
                coil: 2,
                flash,
            },
        };
        let (st, guard) = released(output).await;
        let d = scan(&st, &guard).await;
        assert_opened_once(&st, &d, &sim.control(), "modbus").await;
        let pulse = &sim.control().pulses()[0];
        assert_eq!((pulse.relay, pulse.flash), (2, flash));
        st.finish().await;
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplugged_modbus_board_is_a_fault_and_nothing_ships() {
    let sim = modbus_tcp_sim().await;
    let relay = sim.control();
    let output = GateOutputConfig::ModbusTcp {
        addr: sim.addr().expect("TCP address").to_string(),
        modbus: ModbusCoil {
            unit: 1,
            coil: 0,
            flash: false,
        },
    };
    let (st, guard) = released(output).await;
    relay.set_fault(RelayFault::Silent);
    assert_fault(&st, &scan(&st, &guard).await).await;
    relay.set_fault(RelayFault::None);
    relay.unplug().await.expect("unplug");
    assert_fault(&st, &scan(&st, &guard).await).await;
    assert!(relay.pulses().is_empty(), "{:?}", relay.pulses());
    // Plugged back in: the driver reconnects on the next pulse.
    relay.replug().await.expect("replug");
    let d = scan(&st, &guard).await;
    assert_opened_once(&st, &d, &relay, "modbus").await;
    st.finish().await;
    sim.shutdown().await;
}

/// The drivers on their own, against the same simulators: what the scan
/// path cannot show (a dropped caller, an expired command, reconnecting,
/// garbage, Modbus RTU).
mod drivers {
    use super::*;
    use bondgate::gate::lcus::LcusOutput;
    use bondgate::gate::modbus::ModbusOutput;
    use bondgate::gate::{now_millis, GateOutput, OutputFault, Pulse, RelayState};
    use bondgate_protocol::CommandId;

    fn pulse(expires_in_ms: i64) -> Pulse {
        Pulse {
            seq: 1,
            id: CommandId::new("c-test").unwrap(),
            pulse_ms: PulseMs::new(PULSE_MS).unwrap(),
            expires_at: now_millis() + expires_in_ms,
        }
    }

    async fn lcus_board() -> (tempfile::TempDir, LcusRelaySim, LcusOutput) {
        let (dir, sim, link) = lcus_sim("relay").await;
        let output = LcusOutput::new(link, 9600, 2);
        (dir, sim, output)
    }

    #[tokio::test]
    async fn a_dropped_caller_still_ends_the_pulse() {
        let (_dir, sim, output) = lcus_board().await;
        let relay = sim.control();
        // The caller gives up mid-pulse; the spawned I/O carries on.
        let gave_up =
            tokio::time::timeout(Duration::from_millis(100), output.pulse(&pulse(2_000))).await;
        assert!(gave_up.is_err(), "the pulse cannot be over yet");
        assert!(relay.relays()[1], "on while the pulse runs");
        let pulses = relay.wait_pulses(1, Duration::from_secs(2)).await;
        assert_eq!(pulses.len(), 1, "{pulses:?}");
        let length = pulses[0]
            .length()
            .expect("released although the caller left");
        assert!(
            length >= Duration::from_millis(u64::from(PULSE_MS)),
            "{length:?}"
        );
        assert_eq!(output.probe().await, Ok(RelayState::Off));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn an_expired_command_is_never_started() {
        let (_dir, sim, output) = lcus_board().await;
        assert_eq!(output.pulse(&pulse(-1)).await, Err(OutputFault::Expired));
        assert_eq!(sim.control().requests(), 0, "not even a status query");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn lcus_garbage_unplug_and_replug() {
        let (_dir, sim, output) = lcus_board().await;
        let relay = sim.control();
        relay.set_fault(RelayFault::Garbage);
        let fault = output.pulse(&pulse(2_000)).await;
        assert!(matches!(fault, Err(OutputFault::ReadBack(_))), "{fault:?}");
        // The off was still sent: the board saw a whole pulse.
        assert!(relay.pulses()[0].length().is_some());
        relay.set_fault(RelayFault::None);

        relay.unplug().await.unwrap();
        let fault = output.probe().await;
        assert!(
            matches!(fault, Err(OutputFault::Io(_) | OutputFault::Offline(_))),
            "{fault:?}"
        );
        let fault = output.pulse(&pulse(2_000)).await;
        assert!(matches!(fault, Err(OutputFault::Offline(_))), "{fault:?}");
        relay.replug().await.unwrap();
        let ok = output.pulse(&pulse(2_000)).await;
        assert!(ok.is_ok(), "reopened after the replug: {ok:?}");
        assert_eq!(relay.pulses().len(), 2);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn modbus_rtu_on_a_pty_pulses_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("rtu");
        let sim = ModbusRelaySim::start_rtu(RelayOptions {
            link: Some(link.clone()),
            unit: 3,
            ..RelayOptions::default()
        })
        .await
        .expect("Modbus RTU simulator");
        let relay = sim.control();
        for flash in [false, true] {
            let coil = ModbusCoil {
                unit: 3,
                coil: 1,
                flash,
            };
            let output = ModbusOutput::rtu(link.clone(), 9600, coil);
            let ok = output.pulse(&pulse(2_000)).await;
            assert!(ok.is_ok(), "flash {flash}: {ok:?}");
            assert_eq!(output.probe().await, Ok(RelayState::Off));
        }
        let pulses = relay.pulses();
        assert_eq!(pulses.len(), 2, "{pulses:?}");
        assert_eq!(
            pulses
                .iter()
                .map(|p| (p.relay, p.flash))
                .collect::<Vec<_>>(),
            [(1, false), (1, true)]
        );
        // Wrong unit: the board stays silent and the driver times out.
        let wrong = ModbusOutput::rtu(
            link.clone(),
            9600,
            ModbusCoil {
                unit: 4,
                coil: 1,
                flash: false,
            },
        );
        assert_eq!(wrong.probe().await, Err(OutputFault::Timeout(300)));
        drop(wrong);
        relay.set_fault(RelayFault::Garbage);
        let output = ModbusOutput::rtu(
            link,
            9600,
            ModbusCoil {
                unit: 3,
                coil: 1,
                flash: false,
            },
        );
        let fault = output.probe().await;
        assert!(matches!(fault, Err(OutputFault::ReadBack(_))), "{fault:?}");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_modbus_exception_is_reported() {
        let sim = modbus_tcp_sim().await;
        // Coil 9 does not exist on a 4-coil board.
        let output = ModbusOutput::tcp(
            sim.addr().unwrap().to_string(),
            ModbusCoil {
                unit: 1,
                coil: 9,
                flash: false,
            },
        );
        let fault = output.pulse(&pulse(2_000)).await;
        assert!(
            matches!(&fault, Err(OutputFault::Reported(t)) if t.contains("illegal data address")),
            "{fault:?}"
        );
        sim.shutdown().await;
    }
}
