//! The relay board simulators over their real transports: a host opens the
//! LCUS and Modbus RTU boards' pseudo-terminals by path (through the stable
//! link) and the Modbus TCP board's port, sends the frames
//! `bondgate_protocol::relay` encodes, and checks the answers, the recorded
//! pulses and the faults.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bondgate_protocol::relay::modbus::{
    encode_rtu, encode_tcp, Direction, ExceptionCode, Request, Response, RtuDecoder, RtuEvent,
    TcpDecoder,
};
use bondgate_protocol::relay::{LcusCommand, StatusDecoder, LCUS_STATUS_QUERY};
use bondgate_sim::{LcusRelaySim, ModbusRelaySim, RelayControl, RelayFault, RelayOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_serial::{SerialPortBuilderExt as _, SerialStream};

/// How long a test waits for an answer that should come.
const ANSWER_WAIT: Duration = Duration::from_millis(500);
/// How long a test listens to be sure no answer comes.
const SILENCE_WAIT: Duration = Duration::from_millis(300);

fn open(path: &Path) -> SerialStream {
    tokio_serial::new(path.to_string_lossy(), 9600)
        .open_native_async()
        .expect("open the simulated board's port")
}

/// Reads whatever arrives within `wait` (stops early at `enough` bytes).
async fn read_for(
    io: &mut (impl tokio::io::AsyncRead + Unpin),
    wait: Duration,
    enough: usize,
) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0_u8; 256];
    while got.len() < enough {
        match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    got
}

async fn lcus_status(port: &mut SerialStream) -> Vec<(u8, bool)> {
    port.write_all(&[LCUS_STATUS_QUERY]).await.unwrap();
    // Four relays: "CHn:OFF\r\n" at most 9 bytes each.
    let bytes = read_for(port, ANSWER_WAIT, 4 * 8).await;
    StatusDecoder::new()
        .push(&bytes)
        .into_iter()
        .map(|l| l.map(|s| (s.channel, s.on)).expect("a status line"))
        .collect()
}

fn lcus(channel: u8, on: bool) -> [u8; 4] {
    LcusCommand { channel, on }.encode()
}

async fn lcus_board(dir: &Path) -> (LcusRelaySim, std::path::PathBuf) {
    let link = dir.join("lcus");
    let sim = LcusRelaySim::start(RelayOptions {
        link: Some(link.clone()),
        ..RelayOptions::default()
    })
    .await
    .expect("LCUS simulator");
    (sim, link)
}

#[tokio::test]
async fn lcus_board_switches_answers_status_and_records_the_pulse() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, link) = lcus_board(dir.path()).await;
    let relay = sim.control();
    let mut port = open(&link);
    assert_eq!(
        lcus_status(&mut port).await,
        [(1, false), (2, false), (3, false), (4, false)]
    );
    // The documented frame, split across two writes, after line noise.
    port.write_all(&[0x00, 0x13, 0xA0, 0x01]).await.unwrap();
    port.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    port.write_all(&[0x01, 0xA2]).await.unwrap();
    assert_eq!(lcus_status(&mut port).await[0], (1, true));
    assert_eq!(relay.relays(), [true, false, false, false]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Off and on of another channel merged into one write.
    let mut merged = lcus(1, false).to_vec();
    merged.extend_from_slice(&lcus(3, true));
    port.write_all(&merged).await.unwrap();
    assert_eq!(
        lcus_status(&mut port).await,
        [(1, false), (2, false), (3, true), (4, false)]
    );
    port.write_all(&lcus(3, false)).await.unwrap();
    let pulses = relay.wait_pulses(2, ANSWER_WAIT).await;
    assert_eq!(pulses.len(), 2, "{pulses:?}");
    assert_eq!((pulses[0].relay, pulses[1].relay), (1, 3));
    let first = pulses[0].length().expect("ended");
    assert!(
        first >= Duration::from_millis(200) && first < Duration::from_millis(600),
        "{first:?}"
    );
    assert!(!pulses[0].flash);
    sim.shutdown().await;
    assert!(!link.exists(), "the link is removed on shutdown");
}

#[tokio::test]
async fn lcus_board_faults_silence_garbage_and_unplug() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, link) = lcus_board(dir.path()).await;
    let relay = sim.control();
    let mut port = open(&link);

    relay.set_fault(RelayFault::Silent);
    port.write_all(&lcus(1, true)).await.unwrap();
    port.write_all(&[LCUS_STATUS_QUERY]).await.unwrap();
    assert!(read_for(&mut port, SILENCE_WAIT, 1).await.is_empty());
    assert!(!relay.relays()[0], "a silent board does not switch");
    assert!(relay.pulses().is_empty());

    relay.set_fault(RelayFault::Garbage);
    port.write_all(&lcus(2, true)).await.unwrap();
    port.write_all(&[LCUS_STATUS_QUERY]).await.unwrap();
    let answer = read_for(&mut port, ANSWER_WAIT, 4).await;
    assert!(!answer.is_empty());
    assert!(
        StatusDecoder::new()
            .push(&answer)
            .iter()
            .all(|l| l.is_err()),
        "{answer:02X?}"
    );
    assert!(relay.relays()[1], "a garbling board still switches");

    relay.set_fault(RelayFault::None);
    relay.unplug().await.unwrap();
    assert!(!link.exists(), "unplugged: the link is gone");
    // The host's open port is hung up: reads end or fail.
    let mut buf = [0_u8; 8];
    let read = tokio::time::timeout(ANSWER_WAIT, port.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    drop(port);
    assert!(tokio_serial::new(link.to_string_lossy(), 9600)
        .open_native_async()
        .is_err());

    relay.replug().await.unwrap();
    let mut port = open(&link);
    port.write_all(&lcus(4, true)).await.unwrap();
    assert_eq!(lcus_status(&mut port).await[3], (4, true));
    sim.shutdown().await;
}

/// One Modbus TCP request and its answer's PDU (`None` if none came).
async fn tcp_call(
    stream: &mut TcpStream,
    transaction: u16,
    unit: u8,
    request: Request,
) -> Option<Response> {
    stream
        .write_all(&encode_tcp(transaction, unit, &request.encode()))
        .await
        .unwrap();
    let bytes = read_for(stream, SILENCE_WAIT, 9).await;
    let frames = TcpDecoder::new().push(&bytes).expect("Modbus TCP framing");
    let frame = frames.into_iter().next()?;
    assert_eq!((frame.transaction, frame.unit), (transaction, unit));
    Some(Response::decode(&frame.pdu).expect("a Modbus response"))
}

/// A Modbus TCP board with default options on a free local port, its
/// control, its address, and one connection to it.
async fn modbus_tcp_board() -> (ModbusRelaySim, RelayControl, SocketAddr, TcpStream) {
    let sim = ModbusRelaySim::start_tcp("127.0.0.1:0".parse().unwrap(), RelayOptions::default())
        .await
        .expect("Modbus simulator");
    let relay = sim.control();
    let addr = sim.addr().unwrap();
    let s = TcpStream::connect(addr).await.unwrap();
    (sim, relay, addr, s)
}

#[tokio::test]
async fn modbus_tcp_board_writes_reads_flashes_and_refuses() {
    let (sim, relay, _, mut s) = modbus_tcp_board().await;

    let on = Request::write_coil(1, true);
    assert_eq!(
        tcp_call(&mut s, 1, 1, on).await,
        Some(Response::WriteCoil {
            addr: 1,
            value: 0xFF00
        })
    );
    let read = tcp_call(&mut s, 2, 1, Request::ReadCoils { addr: 0, count: 4 })
        .await
        .unwrap();
    assert_eq!(
        (read.coil(0), read.coil(1), read.coil(2)),
        (Some(false), Some(true), Some(false))
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    tcp_call(&mut s, 3, 1, Request::write_coil(1, false))
        .await
        .unwrap();

    // Flash on: the board times 3 × 100 ms itself.
    let flash = Request::flash_on(2, 300).unwrap();
    assert_eq!(
        tcp_call(&mut s, 4, 1, flash).await,
        Some(Response::WriteCoil {
            addr: 0x0202,
            value: 3
        })
    );
    assert!(relay.relays()[2]);
    let pulses = relay.wait_pulses(2, Duration::from_secs(1)).await;
    assert_eq!(pulses.len(), 2, "{pulses:?}");
    let (plain, flashed) = (&pulses[0], &pulses[1]);
    assert_eq!((plain.relay, plain.flash), (1, false));
    assert!(plain.length().unwrap() >= Duration::from_millis(150));
    assert_eq!((flashed.relay, flashed.flash), (2, true));
    let flash_len = flashed.length().unwrap();
    assert!(
        flash_len >= Duration::from_millis(300) && flash_len < Duration::from_millis(450),
        "{flash_len:?}"
    );

    // Exceptions.
    let refused = |code| move |function| Some(Response::Exception { function, code });
    assert_eq!(
        tcp_call(&mut s, 5, 1, Request::write_coil(9, true)).await,
        refused(ExceptionCode::IllegalDataAddress)(5)
    );
    assert_eq!(
        tcp_call(
            &mut s,
            6,
            1,
            Request::WriteCoil {
                addr: 0,
                value: 0x1234
            }
        )
        .await,
        refused(ExceptionCode::IllegalDataValue)(5)
    );
    assert_eq!(
        tcp_call(&mut s, 7, 1, Request::ReadCoils { addr: 3, count: 2 }).await,
        refused(ExceptionCode::IllegalDataAddress)(1)
    );
    // FC03 (read holding registers) is not spoken.
    s.write_all(&encode_tcp(8, 1, &[0x03, 0, 0, 0, 1]))
        .await
        .unwrap();
    let frames = TcpDecoder::new()
        .push(&read_for(&mut s, ANSWER_WAIT, 9).await)
        .unwrap();
    assert_eq!(
        Response::decode(&frames[0].pdu),
        Ok(Response::Exception {
            function: 3,
            code: ExceptionCode::IllegalFunction
        })
    );
    // Another unit's request is not answered.
    assert_eq!(
        tcp_call(&mut s, 9, 7, Request::ReadCoils { addr: 0, count: 1 }).await,
        None
    );
    assert_eq!(relay.pulses().len(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn modbus_tcp_board_faults_silence_garbage_and_unplug() {
    let (sim, relay, addr, mut s) = modbus_tcp_board().await;

    relay.set_fault(RelayFault::Silent);
    assert_eq!(
        tcp_call(&mut s, 1, 1, Request::write_coil(0, true)).await,
        None
    );
    assert!(!relay.relays()[0]);

    relay.set_fault(RelayFault::Garbage);
    s.write_all(&encode_tcp(2, 1, &Request::write_coil(0, true).encode()))
        .await
        .unwrap();
    let bytes = read_for(&mut s, ANSWER_WAIT, 4).await;
    assert!(!bytes.is_empty());
    assert!(TcpDecoder::new()
        .push(&bytes)
        .map(|f| f.is_empty())
        .unwrap_or(true));
    assert!(relay.relays()[0], "a garbling board still switches");

    relay.set_fault(RelayFault::None);
    relay.unplug().await.unwrap();
    let mut buf = [0_u8; 8];
    let read = tokio::time::timeout(ANSWER_WAIT, s.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "dropped: {read:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "refused while unplugged"
    );

    relay.replug().await.unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        tcp_call(&mut s, 3, 1, Request::write_coil(0, false)).await,
        Some(Response::WriteCoil { addr: 0, value: 0 })
    );
    let pulses = relay.pulses();
    assert_eq!(pulses.len(), 1, "{pulses:?}");
    assert!(pulses[0].length().is_some());
    sim.shutdown().await;
}

#[tokio::test]
async fn modbus_rtu_board_on_a_pty_answers_the_documented_frame() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("rtu");
    let sim = ModbusRelaySim::start_rtu(RelayOptions {
        link: Some(link.clone()),
        ..RelayOptions::default()
    })
    .await
    .expect("Modbus RTU simulator");
    assert_eq!(sim.path(), Some(link.clone()));
    let relay = sim.control();
    let mut port = open(&link);

    // Slave 1, coil 0, on: the board echoes the very bytes.
    let on = [0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A];
    port.write_all(&on).await.unwrap();
    assert_eq!(read_for(&mut port, ANSWER_WAIT, 8).await, on);

    // Garbage, then a read split in two: still framed by length and CRC.
    let read = encode_rtu(1, &Request::ReadCoils { addr: 0, count: 2 }.encode());
    port.write_all(&[0x55, 0x01]).await.unwrap();
    port.write_all(&read[..3]).await.unwrap();
    port.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    port.write_all(&read[3..]).await.unwrap();
    let mut decoder = RtuDecoder::new(Direction::Response);
    let frames: Vec<_> = decoder
        .push(&read_for(&mut port, ANSWER_WAIT, 6).await)
        .into_iter()
        .filter_map(|e| match e {
            RtuEvent::Frame(f) => Some(f),
            RtuEvent::Noise(_) => None,
        })
        .collect();
    assert_eq!(frames.len(), 1, "{frames:?}");
    let answer = Response::decode(&frames[0].pdu).unwrap();
    assert_eq!((answer.coil(0), answer.coil(1)), (Some(true), Some(false)));

    // A frame with a bad CRC is not answered.
    let mut bad = encode_rtu(1, &Request::write_coil(0, false).encode());
    bad[7] ^= 0xFF;
    port.write_all(&bad).await.unwrap();
    assert!(read_for(&mut port, SILENCE_WAIT, 1).await.is_empty());
    assert!(relay.relays()[0]);
    sim.shutdown().await;
}
