//! The real `printer-bridge` binary against a real broker (an embedded
//! rumqttd per test) and `bondgate_sim::PrinterSim` on raw TCP or a pty,
//! which decodes every label with `bondgate_protocol::escpos`. The test
//! plays the server: it publishes job envelopes and reads the reports.

#[path = "../../test-support/bridge_test.rs"]
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;

use bondgate_protocol::escpos::PrinterStatus;
use bondgate_protocol::{DeviceStatus, PrintJob, PrinterReport, Site, Topic, TopicKind};
use bondgate_sim::{PrinterSim, SerialPrinterOptions};
use rumqttc::QoS;
use support::{embedded_broker, start_bin, Process, Watcher, ONE_AT_A_TIME, WAIT};

const SITE: &str = "s1";
const STATION: &str = "P1";
const DEVICE: &str = "printer-bridge-P1";

fn topic(kind: TopicKind, id: &str) -> String {
    Topic::new(kind, id)
        .unwrap()
        .render(&Site::new(SITE).unwrap())
}

/// A small label: initialise, one line naming the job, partial cut.
fn label(text: &str) -> Vec<u8> {
    let mut bytes = b"\x1b@".to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes.extend_from_slice(b"\n\x1dV\x42\x00");
    bytes
}

struct Rig {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    printer: PrinterSim,
    bridge: Process,
    config: String,
    server: Watcher,
}

enum Transport {
    Tcp,
    Serial,
}

impl Rig {
    async fn start(transport: Transport) -> Rig {
        let serial = ONE_AT_A_TIME.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let (printer, printer_conf) = match transport {
            Transport::Tcp => {
                let p = PrinterSim::start(SocketAddr::from(([127, 0, 0, 1], 0)))
                    .await
                    .unwrap();
                let conf = format!("tcp = \"{}\"\n", p.local_addr());
                (p, conf)
            }
            Transport::Serial => {
                let link: PathBuf = dir.path().join("ttyPrinter");
                let p = PrinterSim::start_serial(SerialPrinterOptions {
                    link: Some(link.clone()),
                })
                .await
                .unwrap();
                (p, format!("[serial]\npath = \"{}\"\n", link.display()))
            }
        };
        let broker = embedded_broker().await;
        let server = Watcher::connect(
            broker,
            &[
                topic(TopicKind::PrinterStatus, STATION),
                topic(TopicKind::DeviceStatus, DEVICE),
            ],
        )
        .await;
        // The printer settings come last: `[serial]` is a table.
        let config = format!(
            "broker = \"mqtt://{broker}\"\nsite = \"{SITE}\"\nstation = \"{STATION}\"\n\
             retry_ms = 200\nprinted_file = \"{}\"\n{printer_conf}",
            dir.path().join("printed").display()
        );
        let bridge = start_bin(env!("CARGO_BIN_EXE_printer-bridge"), dir.path(), &config);
        let mut rig = Rig {
            _serial: serial,
            dir,
            printer,
            bridge,
            config,
            server,
        };
        rig.online().await;
        rig
    }

    async fn online(&mut self) {
        self.server
            .until(WAIT, "the bridge online", |t, p| {
                (t == topic(TopicKind::DeviceStatus, DEVICE)
                    && DeviceStatus::decode(p) == Ok(DeviceStatus::Online))
                .then_some(())
            })
            .await;
    }

    /// SIGKILL, as a power cut of the edge box, then the same bridge again.
    async fn restart(&mut self) {
        let _ = self.bridge.0.kill();
        let _ = self.bridge.0.wait();
        self.bridge = start_bin(
            env!("CARGO_BIN_EXE_printer-bridge"),
            self.dir.path(),
            &self.config,
        );
        self.online().await;
    }

    async fn send(&self, job: u64, bytes: Vec<u8>) {
        let envelope = PrintJob::new(job, bytes).unwrap().encode();
        self.server
            .client
            .publish(
                topic(TopicKind::PrinterJob, STATION),
                QoS::AtLeastOnce,
                false,
                envelope,
            )
            .await
            .unwrap();
    }

    /// Reads reports until `want` picks one.
    async fn report<T>(
        &mut self,
        what: &str,
        mut want: impl FnMut(&PrinterReport) -> Option<T>,
    ) -> T {
        self.server
            .until(WAIT, what, |t, p| {
                if t != topic(TopicKind::PrinterStatus, STATION) {
                    return None;
                }
                want(&PrinterReport::decode(p).expect("a valid report"))
            })
            .await
    }

    async fn printed(&mut self, job: u64) {
        self.report(&format!("printed {job}"), |r| {
            (*r == PrinterReport::Printed { job }).then_some(())
        })
        .await
    }
}

fn texts(printer: &PrinterSim) -> Vec<String> {
    printer.labels().iter().map(|l| l.lines.join("|")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_prints_once_and_a_redelivery_is_answered_not_reprinted() {
    let mut rig = Rig::start(Transport::Tcp).await;
    rig.send(11, label("JOB-11")).await;
    rig.printed(11).await;
    assert_eq!(texts(&rig.printer), ["JOB-11"]);

    // The server did not hear the report and sends job 11 again: answered
    // from memory. Jobs print in order, so once job 12 is out, a reprint of
    // 11 would have come before it.
    rig.send(11, label("JOB-11")).await;
    rig.printed(11).await;
    rig.send(12, label("JOB-12")).await;
    rig.printed(12).await;
    assert_eq!(texts(&rig.printer), ["JOB-11", "JOB-12"]);
    // The same id with other bytes (a server whose database started over)
    // is another label: printed.
    rig.send(11, label("NEW-11")).await;
    rig.printed(11).await;
    assert_eq!(texts(&rig.printer), ["JOB-11", "JOB-12", "NEW-11"]);
    assert!(rig.printer.labels().iter().all(|l| l.errors.is_empty()));
}

/// Killed after printing, before the server heard: the re-sent job is
/// answered from the printed-ids file, not printed a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_killed_after_printing_does_not_print_the_label_again() {
    let mut rig = Rig::start(Transport::Tcp).await;
    rig.send(21, label("JOB-21")).await;
    rig.printed(21).await;
    rig.restart().await;
    rig.send(21, label("JOB-21")).await;
    rig.printed(21).await;
    rig.send(22, label("JOB-22")).await;
    rig.printed(22).await;
    assert_eq!(texts(&rig.printer), ["JOB-21", "JOB-22"]);
    // A torn line at the end (a crash mid-write) is skipped, not fatal.
    let printed = rig.dir.path().join("printed");
    let mut text = std::fs::read_to_string(&printed).unwrap();
    text.push_str("23 00ab");
    std::fs::write(&printed, text).unwrap();
    rig.restart().await;
    rig.send(22, label("JOB-22")).await;
    rig.printed(22).await;
    assert_eq!(texts(&rig.printer), ["JOB-21", "JOB-22"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_out_holds_the_job_until_paper_is_loaded() {
    let mut rig = Rig::start(Transport::Tcp).await;
    rig.printer.set_paper_out(true);
    rig.send(21, label("JOB-21")).await;
    let status = rig
        .report("paper out reported", |r| match r {
            PrinterReport::Status(s) if s.paper_out => Some(*s),
            PrinterReport::Printed { .. } => panic!("printed without paper: {r:?}"),
            _ => None,
        })
        .await;
    assert!(!status.can_print());
    // Never sent to a printer that cannot print: nothing held inside it.
    assert_eq!((rig.printer.labels().len(), rig.printer.held()), (0, 0));
    // A redelivery while held is not queued twice.
    rig.send(21, label("JOB-21")).await;

    rig.printer.set_paper_out(false);
    // The printer is seen ready again, then the held job prints.
    let mut ready = false;
    rig.report("printed 21", |r| match r {
        PrinterReport::Status(s) => {
            ready = *s == PrinterStatus::READY;
            None
        }
        PrinterReport::Printed { job: 21 } => Some(()),
        other => panic!("unexpected {other:?}"),
    })
    .await;
    assert!(ready, "ready reported before the job printed");
    rig.send(22, label("JOB-22")).await;
    rig.printed(22).await;
    assert_eq!(texts(&rig.printer), ["JOB-21", "JOB-22"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_printer_switched_off_prints_its_jobs_once_back_on() {
    let mut rig = Rig::start(Transport::Tcp).await;
    rig.printer.go_offline().await;
    rig.send(31, label("JOB-31")).await;
    rig.send(32, label("JOB-32")).await;
    rig.report("off-line reported", |r| match r {
        PrinterReport::Status(s) if !s.online => Some(()),
        PrinterReport::Printed { .. } => panic!("printed while off: {r:?}"),
        _ => None,
    })
    .await;
    rig.printer.come_online().await.unwrap();
    rig.printed(31).await;
    rig.printed(32).await;
    assert_eq!(texts(&rig.printer), ["JOB-31", "JOB-32"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serial_printer_prints_and_garbage_is_refused() {
    let mut rig = Rig::start(Transport::Serial).await;
    // Raw ESC/POS (the old, unconfirmed format) is not an envelope.
    rig.server
        .client
        .publish(
            topic(TopicKind::PrinterJob, STATION),
            QoS::AtLeastOnce,
            false,
            label("OLD"),
        )
        .await
        .unwrap();
    rig.send(41, label("JOB-41")).await;
    rig.printed(41).await;
    assert_eq!(texts(&rig.printer), ["JOB-41"]);
}
