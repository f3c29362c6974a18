//! The real `scanner-bridge` binary against a real broker (an embedded
//! rumqttd per test), with a pseudo-terminal standing in for the scanner:
//! the test holds the master side and types scans into it; the bridge opens
//! the other side by path, as it opens `/dev/ttyACM0`.

#[path = "../../test-support/bridge_test.rs"]
mod support;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bondgate_protocol::{DeviceHealth, DeviceStatus, ScanMsg, Site, Topic, TopicKind};
use support::{embedded_broker, start_bin, terminate, Door, Process, Watcher, ONE_AT_A_TIME, WAIT};
use tokio::io::AsyncWriteExt as _;
use tokio_serial::{SerialPort as _, SerialStream};

const SITE: &str = "s1";
const GATE: &str = "G1";
const DEVICE: &str = "scanner-bridge-G1";

fn topic(kind: TopicKind, id: &str) -> String {
    Topic::new(kind, id)
        .unwrap()
        .render(&Site::new(SITE).unwrap())
}

/// The scanner's end of a pty pair.
struct Scanner {
    master: SerialStream,
    path: PathBuf,
}

impl Scanner {
    fn plug() -> Scanner {
        let (master, slave) = SerialStream::pair().expect("a pty pair");
        let path = PathBuf::from(slave.name().expect("the pty has a name"));
        // Closed here: the bridge opens it by path.
        drop(slave);
        Scanner { master, path }
    }

    /// Waits until someone has the port open: reading the master fails
    /// with EIO while nobody does, and would block once somebody does.
    async fn wait_open(&mut self) {
        let started = Instant::now();
        let mut buf = [0_u8; 64];
        loop {
            match self.master.try_read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Ok(n) if n > 0 => return,
                _ => {}
            }
            assert!(started.elapsed() < WAIT, "the bridge never opened the port");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).await.unwrap();
        self.master.flush().await.unwrap();
    }
}

#[derive(Debug)]
enum Seen {
    Scan(ScanMsg),
    Health(DeviceHealth),
    Status(DeviceStatus),
}

fn seen(t: &str, payload: &[u8]) -> Seen {
    if t == topic(TopicKind::GateScan, GATE) {
        Seen::Scan(ScanMsg::decode(payload).expect("a valid scan"))
    } else if t == topic(TopicKind::DeviceHealth, DEVICE) {
        Seen::Health(DeviceHealth::decode(payload).expect("a valid health report"))
    } else if t == topic(TopicKind::DeviceStatus, DEVICE) {
        Seen::Status(DeviceStatus::decode(payload).expect("a valid status"))
    } else {
        panic!("unexpected topic {t}")
    }
}

async fn watch(broker: std::net::SocketAddr) -> Watcher {
    Watcher::connect(
        broker,
        &[
            topic(TopicKind::GateScan, GATE),
            topic(TopicKind::DeviceHealth, DEVICE),
            topic(TopicKind::DeviceStatus, DEVICE),
        ],
    )
    .await
}

fn config(broker: std::net::SocketAddr, dir: &Path, scanner: &Scanner, extra: &str) -> String {
    format!(
        "broker = \"mqtt://{broker}\"\nsite = \"{SITE}\"\ngate = \"{GATE}\"\n\
         seq_file = \"{}\"\n{extra}[serial]\npath = \"{}\"\n",
        dir.join("g1.seq").display(),
        scanner.path.display()
    )
}

/// The next `n` scans (other messages skipped).
async fn scans(server: &mut Watcher, n: usize) -> Vec<ScanMsg> {
    let mut out = Vec::new();
    while out.len() < n {
        let scan = server
            .until(
                WAIT,
                &format!("scan {} of {n}", out.len() + 1),
                |t, p| match seen(t, p) {
                    Seen::Scan(s) => Some(s),
                    _ => None,
                },
            )
            .await;
        out.push(scan);
    }
    out
}

async fn online(server: &mut Watcher) {
    server
        .until(WAIT, "the bridge online", |t, p| match seen(t, p) {
            Seen::Status(DeviceStatus::Online) => Some(()),
            _ => None,
        })
        .await
}

fn codes(scans: &[ScanMsg]) -> Vec<&str> {
    scans.iter().map(|s| s.barcode.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_go_out_in_order_with_seqs_that_survive_a_restart() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut scanner = Scanner::plug();
    let broker = embedded_broker().await;
    let mut server = watch(broker).await;
    let text = config(broker, dir.path(), &scanner, "");
    let mut bridge: Process = start_bin(env!("CARGO_BIN_EXE_scanner-bridge"), dir.path(), &text);
    online(&mut server).await;
    scanner.wait_open().await;

    // Every suffix, split across writes.
    scanner.send(b"PKG-001\rPKG-0").await;
    scanner.send(b"02\nPKG-003\r\n").await;
    let first = scans(&mut server, 3).await;
    assert_eq!(codes(&first), ["PKG-001", "PKG-002", "PKG-003"]);
    assert!(first.windows(2).all(|w| w[0].seq < w[1].seq), "{first:?}");

    // A control character and an endless line: refused, counted, not sent.
    let mut bad = b"BAD\x07CODE\r".to_vec();
    bad.extend(std::iter::repeat_n(b'9', 2_000));
    bad.extend_from_slice(b"\rPKG-004\r");
    scanner.send(&bad).await;
    let next = scans(&mut server, 1).await;
    assert_eq!(
        codes(&next),
        ["PKG-004"],
        "nothing went out for the bad lines"
    );
    assert!(next[0].seq > first[2].seq);
    let report = server
        .until(WAIT, "two refused lines", |t, p| match seen(t, p) {
            Seen::Health(h) if h.bad_input >= 2 => Some(h),
            Seen::Scan(s) => panic!("unexpected scan {s:?}"),
            _ => None,
        })
        .await;
    assert!(report.ok);

    // A restart continues the count: the server would answer a reused seq
    // from its record.
    terminate(&mut bridge).await;
    let _bridge = start_bin(env!("CARGO_BIN_EXE_scanner-bridge"), dir.path(), &text);
    online(&mut server).await;
    scanner.wait_open().await;
    scanner.send(b"PKG-005\r\n").await;
    let after = scans(&mut server, 1).await;
    assert_eq!(codes(&after), ["PKG-005"]);
    assert!(after[0].seq > next[0].seq, "{after:?} after {next:?}");
}

/// A bridge that cannot reach its broker yet; the scan `EARLY` is made
/// while it is offline, then the broker comes within reach.
async fn scan_while_offline(extra: &str) -> (Watcher, Scanner, Process, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut scanner = Scanner::plug();
    let broker = embedded_broker().await;
    let door = Door::shut(broker).await;
    let mut server = watch(broker).await;
    let text = config(door.addr, dir.path(), &scanner, extra);
    let bridge = start_bin(env!("CARGO_BIN_EXE_scanner-bridge"), dir.path(), &text);
    scanner.wait_open().await;
    scanner.send(b"EARLY\r").await;
    // Nothing can leave: the bridge has no broker.
    assert!(server.next(Duration::from_millis(300)).await.is_none());
    door.open();
    online(&mut server).await;
    (server, scanner, bridge, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_scan_held_offline_is_sent_on_reconnect() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (mut server, _scanner, _bridge, _dir) =
        scan_while_offline("scan_max_age_ms = 30000\n").await;
    let sent = scans(&mut server, 1).await;
    assert_eq!(codes(&sent), ["EARLY"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_gate_scan_is_dropped_never_sent_late() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (mut server, mut scanner, _bridge, _dir) =
        scan_while_offline("scan_max_age_ms = 1\n").await;
    let report = server
        .until(WAIT, "the dropped scan counted", |t, p| match seen(t, p) {
            Seen::Health(h) if h.dropped == 1 => Some(h),
            Seen::Scan(s) => panic!("a stale scan went out: {s:?}"),
            _ => None,
        })
        .await;
    assert!(report.ok);
    // Connected now: a new scan goes straight out, and it is the only one.
    scanner.send(b"LATER\r").await;
    let sent = scans(&mut server, 1).await;
    assert_eq!(codes(&sent), ["LATER"]);
}
