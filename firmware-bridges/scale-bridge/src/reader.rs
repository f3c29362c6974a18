//! Reading the scale's serial port, by the server's own rules for a scale
//! on one of its ports (`src/packing/scale.rs`): MT-SICS is asked `SI`
//! every [`MTSICS_POLL`]; a 0-byte read, a read or write error, or
//! [`SERIAL_SILENCE`] without a byte is a disconnect: the port is dropped
//! and reopened with backoff ([`bondgate_edge::SerialPort`]). Frames are
//! decoded by `bondgate_protocol::scale::Decoder`, the server's decoder.

use std::time::Duration;

use bondgate_edge::{SerialPort, SerialSettings};
use bondgate_protocol::scale::{self, Command, Decoder, Reading, ScaleEvent, ScaleProtocol};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_serial::SerialStream;

/// A scale that sends nothing for this long is treated as gone (a USB
/// adapter that vanished can keep an open descriptor that never reads).
/// The server's value for its own serial scales.
pub const SERIAL_SILENCE: Duration = Duration::from_secs(2);

/// How often an MT-SICS scale is asked for its weight (`SI`): five
/// readings a second, the server's rate for its own serial scales.
pub const MTSICS_POLL: Duration = Duration::from_millis(200);

/// Bytes read from the port at once: several frames of any protocol.
const READ_BYTES: usize = 256;

/// What the reader tells the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleNews {
    /// A reading, exactly as the scale sent it.
    Reading(Reading),
    /// The scale talks (an MT-SICS `Z A`, `S I`, …) without a weight.
    Alive,
    /// A frame or answer that could not be used; the port stays open.
    Bad(String),
    /// The port failed or could not be opened; it is being reopened.
    Offline(String),
}

/// Reads the scale for ever (until dropped), reopening the port after each
/// failure; everything it learns goes to `news`.
pub async fn read_scale(
    settings: SerialSettings,
    protocol: ScaleProtocol,
    news: mpsc::Sender<ScaleNews>,
) {
    let path = settings.path.display().to_string();
    let mut port = SerialPort::new(settings);
    loop {
        let stream = port
            .open(|error| {
                let _ = news.try_send(ScaleNews::Offline(error.to_string()));
            })
            .await;
        tracing::info!(%path, %protocol, "scale port open");
        let reason = read_port(stream, protocol, &path, &news).await;
        tracing::warn!(%path, %reason, "scale port lost; reopening");
        if news.send(ScaleNews::Offline(reason)).await.is_err() {
            return;
        }
    }
}

/// Reads frames until the port fails; returns why.
async fn read_port(
    port: SerialStream,
    protocol: ScaleProtocol,
    path: &str,
    news: &mpsc::Sender<ScaleNews>,
) -> String {
    let (mut rx, mut tx) = tokio::io::split(port);
    let mut decoder = Decoder::new(protocol);
    let mut buf = [0_u8; READ_BYTES];
    let poll = scale::request(protocol, Command::WeighNow);
    let mut ticker = tokio::time::interval(MTSICS_POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_data = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Some(request) = &poll {
                    if let Err(e) = tx.write_all(request).await {
                        return format!("write to {path} failed: {e}");
                    }
                }
                if last_data.elapsed() > SERIAL_SILENCE {
                    return format!("no data from {path} for {} s", SERIAL_SILENCE.as_secs());
                }
            }
            read = rx.read(&mut buf) => match read {
                // A pseudo-terminal or USB adapter whose other end is gone
                // reads 0 bytes for ever: that is a disconnect.
                Ok(0) => return format!("{path} closed (cable or adapter unplugged?)"),
                Ok(n) => {
                    last_data = tokio::time::Instant::now();
                    for event in decoder.feed(&buf[..n]) {
                        let item = match event {
                            Ok(ScaleEvent::Reading(r)) => ScaleNews::Reading(r),
                            Ok(ScaleEvent::Busy(_) | ScaleEvent::Done(_)) => ScaleNews::Alive,
                            Ok(ScaleEvent::Refused(text)) => ScaleNews::Bad(format!("scale refused: {text}")),
                            Err(e) => ScaleNews::Bad(e.to_string()),
                        };
                        if news.send(item).await.is_err() {
                            return "the bridge stopped".into();
                        }
                    }
                }
                Err(e) => return format!("read from {path} failed: {e}"),
            }
        }
    }
}
