//! `scanner-bridge`: a barcode scanner on the edge box's serial port (or a
//! USB scanner in serial/CDC-ACM mode), published as scans on MQTT. The
//! gate's scanner: each line becomes a [`ScanMsg`] on `gate/{gate}/scan`,
//! which the server's gate service decides and answers on
//! `gate/{gate}/result` (logged here).
//!
//! - Lines end in CR, LF or CR LF and are framed by
//!   `bondgate_protocol::scanner::LineDecoder`: empty lines are skipped,
//!   lines with control characters, invalid UTF-8 or over the length bound
//!   are refused and counted (health report), never published.
//! - Every scan carries the bridge's own `seq`, counting up across restarts
//!   ([`seq`]): the server answers a seq it has seen from its record.
//! - **Offline**: scans are held in a small [`OfflineQueue`] and sent in
//!   order on reconnect, but a scan older than `scan_max_age` (default 3 s)
//!   is dropped and counted, never sent: replayed late, it could open the
//!   barrier with no parcel in front of it.
//! - `devices/{device}/health` (retained) says whether the port is open,
//!   the last error, refused lines and dropped scans.
//!
//! A library with a thin binary: [`run`] is the whole bridge, so the
//! server's demo can run it in-process as a task.

#![forbid(unsafe_code)]

pub mod config;
pub mod seq;

use std::future::Future;

use bondgate_edge::{
    unix_millis, BridgeError, Health, OfflineQueue, SerialPort, SerialSettings, Session,
    SessionEvent,
};
use bondgate_protocol::scanner::{LineDecoder, LineError};
use bondgate_protocol::{Barcode, GateResultMsg, ScanMsg, Topic, TopicKind};
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;

pub use config::Config;
pub use seq::{SeqError, SeqFile};

/// Reader news queued for the publisher: a burst of scans.
const NEWS_CAPACITY: usize = 64;

/// Bytes read from the port at once: a few scans.
const READ_BYTES: usize = 256;

/// Why the bridge stopped.
#[derive(Debug, thiserror::Error)]
pub enum ScannerBridgeError {
    /// The seq file cannot be read: the bridge does not start rather than
    /// reuse seqs.
    #[error(transparent)]
    Seq(#[from] SeqError),
    /// The MQTT session ended.
    #[error(transparent)]
    Bridge(#[from] BridgeError),
}

/// What the port reader tells the bridge.
#[derive(Debug)]
enum ScannerNews {
    Opened,
    Line(Result<Barcode, LineError>),
    Offline(String),
}

/// Runs the bridge until `shutdown` resolves (or the MQTT session ends).
/// Refuses to start if the seq file cannot be read.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ScannerBridgeError> {
    let mut seqs = SeqFile::open(&config.seq_file)?;
    let scan_topic = Topic::GateScan {
        gate: config.gate.clone(),
    };
    let result_topic = Topic::new(TopicKind::GateResult, config.gate.as_str())
        .expect("a GateId is a valid topic id")
        .render(&config.edge.site);
    let mut session = Session::start(&config.edge, vec![result_topic.clone()]);
    let mut health = Health::new(&config.edge);
    let mut queue: OfflineQueue<ScanMsg> =
        OfflineQueue::new(config.offline_capacity, Some(config.scan_max_age));
    let (tx, mut news) = mpsc::channel(NEWS_CAPACITY);
    let reader = read_scanner(config.serial.clone(), tx);
    let mut tick = tokio::time::interval(bondgate_edge::health::HEALTH_INTERVAL);
    tokio::pin!(shutdown, reader);
    loop {
        tokio::select! {
            () = &mut shutdown => {
                tracing::info!("stopping");
                return Ok(());
            }
            // It ends only when `news` is dropped, which is held here.
            () = &mut reader => unreachable!("the scanner reader never ends while the bridge listens"),
            event = session.next() => match event {
                Some(SessionEvent::Connected) => {
                    for scan in queue.drain(std::time::Instant::now()) {
                        tracing::info!(seq = scan.seq, "scan held offline sent");
                        session.publish(&scan_topic, scan.encode()).await;
                    }
                    health.set_dropped(queue.dropped());
                    health.flush(&session, true).await;
                }
                Some(SessionEvent::Publish(p)) if p.topic == result_topic => {
                    match GateResultMsg::decode(&p.payload) {
                        Ok(r) => tracing::info!(seq = r.seq, outcome = ?r.outcome, code = %r.code, text = %r.text_en, "gate result"),
                        Err(error) => tracing::warn!(%error, "malformed gate result"),
                    }
                }
                Some(_) => {}
                None => return Err(BridgeError::SessionEnded.into()),
            },
            Some(item) = news.recv() => {
                match item {
                    ScannerNews::Opened => health.set_ok(),
                    ScannerNews::Offline(error) => health.fail(&error),
                    ScannerNews::Line(Err(error)) => {
                        tracing::warn!(%error, "scanner line refused");
                        health.bad_input(&error.to_string());
                    }
                    ScannerNews::Line(Ok(barcode)) => {
                        let seq = match seqs.take() {
                            Ok(seq) => seq,
                            Err(error) => {
                                // Without a seq that is surely new, the scan
                                // could be answered from an old record.
                                tracing::error!(%error, "scan dropped: no seq");
                                health.note(&error.to_string());
                                continue;
                            }
                        };
                        let scan = ScanMsg { seq, barcode, ts: unix_millis() };
                        if session.is_connected() {
                            tracing::info!(seq, code = scan.barcode.as_str(), "scan");
                            session.publish(&scan_topic, scan.encode()).await;
                        } else {
                            tracing::warn!(seq, code = scan.barcode.as_str(), "offline: scan held");
                            queue.push(scan, std::time::Instant::now());
                            health.set_dropped(queue.dropped());
                        }
                    }
                }
                health.flush(&session, false).await;
            }
            _ = tick.tick() => health.flush(&session, false).await,
        }
    }
}

/// Reads the scanner for ever (until dropped), reopening the port after
/// each failure. A scanner is silent until someone scans, so silence is
/// not a disconnect here; a 0-byte read (the adapter is gone) or a read
/// error is.
async fn read_scanner(settings: SerialSettings, news: mpsc::Sender<ScannerNews>) {
    let path = settings.path.display().to_string();
    let mut port = SerialPort::new(settings);
    let mut lines = LineDecoder::new();
    let mut buf = [0_u8; READ_BYTES];
    loop {
        let mut stream = port
            .open(|error| {
                let _ = news.try_send(ScannerNews::Offline(error.to_string()));
            })
            .await;
        tracing::info!(%path, "scanner port open");
        lines.reset();
        if news.send(ScannerNews::Opened).await.is_err() {
            return;
        }
        let reason = loop {
            match stream.read(&mut buf).await {
                Ok(0) => break format!("{path} closed (cable or adapter unplugged?)"),
                Ok(n) => {
                    for line in lines.feed(&buf[..n]) {
                        if news.send(ScannerNews::Line(line)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => break format!("read from {path} failed: {e}"),
            }
        };
        tracing::warn!(%path, %reason, "scanner port lost; reopening");
        if news.send(ScannerNews::Offline(reason)).await.is_err() {
            return;
        }
    }
}
