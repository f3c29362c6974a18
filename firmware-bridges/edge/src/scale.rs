//! [`ScaleReader`]: a serial scale read the one way both the server (a
//! scale on one of its own ports, `ScaleHub`) and the scale bridge read it.
//!
//! - Frames of any `bondgate_protocol::scale` protocol are decoded by its
//!   `Decoder`; MT-SICS is asked `SI` every [`MTSICS_POLL`], the streamed
//!   protocols are just read.
//! - A 0-byte read (the other end hung up: a pulled USB adapter, a closed
//!   pty), a read or write error, or [`SERIAL_SILENCE`] without a byte is a
//!   disconnect: the port is dropped and reopened with backoff
//!   ([`SerialPort`]).
//! - Everything the reader learns goes to an `mpsc` channel as
//!   [`ScaleNews`], in order; the reader waits for room, so a consumer that
//!   must never hold the port up drains it promptly (or drops news itself).

use std::time::Duration;

use bondgate_protocol::scale::{self, Command, Decoder, Reading, ScaleEvent, ScaleProtocol};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_serial::SerialStream;

use crate::serial::{SerialPort, SerialSettings};

/// A scale that sends nothing for this long is treated as gone (a USB
/// adapter that vanished can keep an open descriptor that never reads).
pub const SERIAL_SILENCE: Duration = Duration::from_secs(2);

/// How often an MT-SICS scale is asked for its weight (`SI`): five
/// readings a second.
pub const MTSICS_POLL: Duration = Duration::from_millis(200);

/// Bytes read from the port at once: several frames of any protocol.
const READ_BYTES: usize = 256;

/// What the reader tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleNews {
    /// A reading, exactly as the scale sent it (stable flag and range
    /// included: deciding what is usable is the owner's business).
    Reading(Reading),
    /// The scale talks (an MT-SICS `Z A`, `S I`, …) without a weight.
    Alive,
    /// A frame or answer that could not be used; the port stays open.
    Bad(String),
    /// The port failed, fell silent or could not be opened (the reason); it
    /// is being reopened.
    Offline(String),
}

/// One serial scale: where it is and what it speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleReader {
    settings: SerialSettings,
    protocol: ScaleProtocol,
}

impl ScaleReader {
    /// The scale on `settings`, speaking `protocol`. Nothing is opened yet.
    pub fn new(settings: SerialSettings, protocol: ScaleProtocol) -> ScaleReader {
        ScaleReader { settings, protocol }
    }

    /// The port's settings.
    pub fn settings(&self) -> &SerialSettings {
        &self.settings
    }

    /// The protocol.
    pub fn protocol(&self) -> ScaleProtocol {
        self.protocol
    }

    /// Reads the scale until `news` is closed (or this future is dropped),
    /// reopening the port after each failure: opened at once the first
    /// time, then after a backoff delay (see [`SerialPort::open`]). Each
    /// failure, of opening or of an open port, is one
    /// [`ScaleNews::Offline`] with the reason.
    pub async fn run(self, news: mpsc::Sender<ScaleNews>) {
        let path = self.settings.path.display().to_string();
        let protocol = self.protocol;
        let mut port = SerialPort::new(self.settings);
        loop {
            let stream = tokio::select! {
                stream = port.open(|error| {
                    let _ = news.try_send(ScaleNews::Offline(error.to_string()));
                }) => stream,
                () = news.closed() => return,
            };
            tracing::info!(%path, %protocol, "scale port open");
            let reason = read_port(stream, protocol, &path, &news).await;
            tracing::warn!(%path, %reason, "scale port lost; reopening");
            if news.send(ScaleNews::Offline(reason)).await.is_err() {
                return;
            }
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
                            return "the reader's owner stopped".into();
                        }
                    }
                }
                Err(e) => return format!("read from {path} failed: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_missing_port_is_reported_offline_and_the_reader_stops_with_its_owner() {
        let dir = std::env::temp_dir().join(format!("bondgate-edge-scale-{}", std::process::id()));
        let reader = ScaleReader::new(
            SerialSettings::new(dir.join("ttyNONE")),
            ScaleProtocol::MtSics,
        );
        let (tx, mut rx) = mpsc::channel(4);
        let task = tokio::spawn(reader.run(tx));
        match rx.recv().await {
            Some(ScaleNews::Offline(why)) => assert!(why.contains("ttyNONE"), "{why}"),
            other => panic!("expected offline, got {other:?}"),
        }
        drop(rx);
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the reader ends once its owner is gone")
            .unwrap();
    }
}
