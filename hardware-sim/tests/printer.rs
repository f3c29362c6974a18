//! The printer simulator over real TCP and over a real pseudo-terminal, fed
//! the bytes `bondgate-label` renders for a real label: what comes out of
//! the "printer" (text decoded from GB18030, the waybill in the CODE128 and
//! the QR), the status bytes it answers, and the bad days — switched off,
//! back on (the same port, or a replugged cable), out of paper.
//!
//! No sleep decides an outcome: every wait is for a reply or a label,
//! bounded by a generous timeout, so a loaded machine is slower, not flaky.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bondgate_label::{EscPos, Label, LabelBackend};
use bondgate_sim::{PrinterSim, SerialPrinterOptions};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_serial::{SerialPortBuilderExt as _, SerialStream};

const WAIT: Duration = Duration::from_secs(15);

fn label(waybill_no: &str) -> Label {
    Label {
        waybill_no: waybill_no.into(),
        package_no: "PKG-1/1".into(),
        ..Label::sample()
    }
}

fn render(waybill_no: &str) -> Vec<u8> {
    EscPos::default().render(&label(waybill_no)).unwrap()
}

async fn printer() -> PrinterSim {
    PrinterSim::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

/// Sends `DLE EOT n` for n = 1, 2, 4 and returns the three replies.
async fn statuses(stream: &mut TcpStream) -> [u8; 3] {
    stream
        .write_all(b"\x10\x04\x01\x10\x04\x02\x10\x04\x04")
        .await
        .unwrap();
    let mut replies = [0; 3];
    tokio::time::timeout(WAIT, stream.read_exact(&mut replies))
        .await
        .expect("status replies in time")
        .unwrap();
    replies
}

#[tokio::test]
async fn prints_a_real_label() {
    let sim = printer().await;
    let bytes = render("SF1234567890123");
    let mut stream = TcpStream::connect(sim.local_addr()).await.unwrap();
    // In two writes, split inside a Chinese character and a command.
    let (head, tail) = bytes.split_at(bytes.len() / 2 + 1);
    stream.write_all(head).await.unwrap();
    stream.write_all(tail).await.unwrap();
    let labels = sim.wait_for_labels(1, WAIT).await.unwrap();
    let printed = &labels[0];
    assert_eq!(
        printed.barcodes,
        [("CODE128".to_owned(), "SF1234567890123".to_owned())]
    );
    assert_eq!(printed.qr, ["SF1234567890123"]);
    assert!(
        printed.has_line_containing("收件人 To: 张**"),
        "{printed:?}"
    );
    assert!(printed.errors.is_empty(), "{:?}", printed.errors);
    assert_eq!(printed.raw, bytes);
    insta::assert_snapshot!(printed.render());
}

#[tokio::test]
async fn each_cut_is_one_label() {
    let sim = printer().await;
    let mut stream = TcpStream::connect(sim.local_addr()).await.unwrap();
    let mut job = render("SF1");
    job.extend(render("SF2"));
    stream.write_all(&job).await.unwrap();
    let labels = sim.wait_for_labels(2, WAIT).await.unwrap();
    let waybills: Vec<_> = labels.iter().map(|l| l.qr[0].as_str()).collect();
    assert_eq!(waybills, ["SF1", "SF2"]);
}

#[tokio::test]
async fn answers_status_from_its_state() {
    let sim = printer().await;
    let mut stream = TcpStream::connect(sim.local_addr()).await.unwrap();
    // Ready: only the fixed bits (1 and 4).
    assert_eq!(statuses(&mut stream).await, [0x12, 0x12, 0x12]);
    sim.set_paper_near_end(true);
    assert_eq!(statuses(&mut stream).await, [0x12, 0x12, 0x1E]);
    sim.set_paper_out(true);
    // Off-line; stopped at paper end; paper end (and near end) sensors.
    assert_eq!(statuses(&mut stream).await, [0x1A, 0x32, 0x7E]);
    sim.set_paper_out(false);
    sim.set_paper_near_end(false);
    sim.set_cover_open(true);
    assert_eq!(statuses(&mut stream).await, [0x1A, 0x16, 0x12]);
}

#[tokio::test]
async fn out_of_paper_holds_the_job_until_paper_is_loaded() {
    let sim = printer().await;
    sim.set_paper_out(true);
    let mut stream = TcpStream::connect(sim.local_addr()).await.unwrap();
    // What a server should do first: ask, and see paper end.
    let [printer_status, _, paper] = statuses(&mut stream).await;
    assert_ne!(printer_status & 0x08, 0, "off-line");
    assert_eq!(paper & 0x60, 0x60, "paper end");
    // Sent anyway: held, not printed. The status reply after it is only
    // written once the job before it has been taken in.
    stream.write_all(&render("SF9")).await.unwrap();
    statuses(&mut stream).await;
    assert_eq!((sim.labels().len(), sim.held()), (0, 1));
    sim.set_paper_out(false);
    let labels = sim.wait_for_labels(1, WAIT).await.unwrap();
    assert_eq!(labels[0].qr, ["SF9"]);
    assert_eq!(sim.held(), 0);
}

#[tokio::test]
async fn offline_refuses_connections_and_comes_back_on_the_same_port() {
    let sim = printer().await;
    let addr = sim.local_addr();
    let mut open = TcpStream::connect(addr).await.unwrap();
    assert_eq!(statuses(&mut open).await, [0x12, 0x12, 0x12]);

    sim.go_offline().await;
    assert!(!sim.is_listening());
    let refused = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    // The open connection was dropped: end of stream or reset.
    let mut byte = [0; 1];
    let read = tokio::time::timeout(WAIT, open.read(&mut byte))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    sim.come_online().await.unwrap();
    assert_eq!(sim.local_addr(), addr);
    let mut again = TcpStream::connect(addr).await.unwrap();
    again.write_all(&render("SF7")).await.unwrap();
    let labels = sim.wait_for_labels(1, WAIT).await.unwrap();
    assert_eq!(labels[0].barcodes[0].1, "SF7");
}

#[tokio::test]
async fn waiting_for_a_label_that_never_comes_times_out() {
    let sim = printer().await;
    let error = sim
        .wait_for_labels(1, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "waited 50ms for 1 label(s), 0 printed");
}

// ── Serial ──────────────────────────────────────────────────────────────

/// A link path of its own for each serial printer in this process.
fn link_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "bondgate-printer-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

async fn serial_printer(link: Option<PathBuf>) -> PrinterSim {
    PrinterSim::start_serial(SerialPrinterOptions { link })
        .await
        .expect("serial printer starts")
}

/// Opens the port as the server does (exclusive, raw, 9600 8N1).
fn open(path: &Path) -> tokio_serial::Result<SerialStream> {
    tokio_serial::new(path.to_string_lossy(), 9600).open_native_async()
}

/// Asks one status byte, as the server does: the request, then one byte.
async fn ask<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, n: u8) -> u8 {
    io.write_all(&[0x10, 0x04, n]).await.unwrap();
    let mut byte = [0; 1];
    let read = tokio::time::timeout(WAIT, io.read(&mut byte))
        .await
        .expect("a status reply in time")
        .unwrap();
    assert_eq!(read, 1, "the printer hung up");
    byte[0]
}

/// The server's serial print: open, `DLE EOT 1/2/4` one at a time, the
/// job, `DLE EOT 1` again, close. Returns the four status bytes.
async fn print_serial(path: &Path, job: &[u8]) -> [u8; 4] {
    let mut port = open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let before = [
        ask(&mut port, 1).await,
        ask(&mut port, 2).await,
        ask(&mut port, 4).await,
    ];
    port.write_all(job).await.unwrap();
    let after = ask(&mut port, 1).await;
    drop(port);
    [before[0], before[1], before[2], after]
}

#[tokio::test]
async fn serial_prints_a_label_per_opening_of_the_port() {
    let link = link_path();
    let sim = serial_printer(Some(link.clone())).await;
    assert_eq!(sim.path().as_deref(), Some(link.as_path()));
    let pty = sim.pty_path().expect("a pty");
    assert!(pty.starts_with("/dev/pts"), "{}", pty.display());
    // Status only, a few times: the port is opened and closed per request.
    for _ in 0..3 {
        let mut port = open(&link).unwrap();
        assert_eq!(ask(&mut port, 1).await, 0x12);
    }
    // Two labels, each its own opening, as the server prints them.
    for (i, waybill) in ["SF1234567890123", "SF9876543210987"]
        .into_iter()
        .enumerate()
    {
        let job = render(waybill);
        assert_eq!(print_serial(&link, &job).await, [0x12; 4]);
        // The last reply came after the cut: the label is already out.
        let labels = sim.wait_for_labels(i + 1, WAIT).await.unwrap();
        let printed = &labels[i];
        assert_eq!(
            printed.barcodes,
            [("CODE128".to_owned(), waybill.to_owned())]
        );
        assert_eq!(printed.qr, [waybill]);
        assert!(
            printed.has_line_containing("收件人 To: 张**"),
            "{printed:?}"
        );
        assert!(printed.errors.is_empty(), "{:?}", printed.errors);
        // Raw holds every byte since the last cut: the status requests too.
        assert!(printed.raw.ends_with(&job));
    }
    assert_eq!(sim.labels().len(), 2);
}

#[tokio::test]
async fn serial_without_a_link_is_opened_by_its_pty() {
    let sim = serial_printer(None).await;
    let pty = sim.pty_path().expect("a pty");
    assert_eq!(sim.path(), Some(pty.clone()));
    assert_eq!(print_serial(&pty, &render("SF5")).await, [0x12; 4]);
    assert_eq!(sim.wait_for_labels(1, WAIT).await.unwrap()[0].qr, ["SF5"]);
}

#[tokio::test]
async fn serial_answers_status_from_its_state() {
    let link = link_path();
    let sim = serial_printer(Some(link.clone())).await;
    sim.set_paper_out(true);
    let mut port = open(&link).unwrap();
    // Off-line; stopped at paper end; paper end sensors.
    let replies = [
        ask(&mut port, 1).await,
        ask(&mut port, 2).await,
        ask(&mut port, 4).await,
    ];
    assert_eq!(replies, [0x1A, 0x32, 0x72]);
    // Sent anyway: held, and printed once paper is loaded.
    port.write_all(&render("SF9")).await.unwrap();
    assert_eq!(ask(&mut port, 1).await, 0x1A);
    assert_eq!((sim.labels().len(), sim.held()), (0, 1));
    drop(port);
    sim.set_paper_out(false);
    assert_eq!(sim.wait_for_labels(1, WAIT).await.unwrap()[0].qr, ["SF9"]);
}

#[tokio::test]
async fn serial_offline_is_an_unplugged_cable() {
    let link = link_path();
    let sim = serial_printer(Some(link.clone())).await;
    let mut held_open = open(&link).unwrap();
    assert_eq!(ask(&mut held_open, 1).await, 0x12);

    sim.go_offline().await;
    assert!(!sim.is_listening());
    assert_eq!(sim.pty_path(), None);
    assert_eq!(sim.path().as_deref(), Some(link.as_path()));
    // The port held open is hung up: end of file (or an error), at once.
    let mut byte = [0; 1];
    let read = tokio::time::timeout(WAIT, held_open.read(&mut byte))
        .await
        .expect("a hung-up port answers at once");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(held_open.write_all(&[0x10, 0x04, 0x01]).await.is_err());
    drop(held_open);
    // Opening fails: the link (and the pty) are gone.
    assert!(std::fs::symlink_metadata(&link).is_err(), "link removed");
    let error = open(&link).unwrap_err();
    assert_eq!(
        error.kind(),
        tokio_serial::ErrorKind::Io(std::io::ErrorKind::NotFound),
        "{error}"
    );

    sim.come_online().await.unwrap();
    assert!(sim.is_listening());
    assert!(sim.pty_path().is_some());
    assert_eq!(print_serial(&link, &render("SF7")).await, [0x12; 4]);
    let labels = sim.wait_for_labels(1, WAIT).await.unwrap();
    assert_eq!(labels[0].barcodes[0].1, "SF7");
    drop(sim);
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "link removed on drop"
    );
}
