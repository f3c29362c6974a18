//! The LCUS serial relay board (PROTOCOLS.md §4), on `bondgate_protocol::relay`
//! alone: `A0 ch op sum` commands, read back with the status query `FF`
//! (answered `CHn:ON|OFF`).
//!
//! The bridge drives one pulse in steps ([`Lcus::set`], [`Lcus::read`]) so
//! it can report `open` between the on read-back and the off. Every device
//! call is under [`IO_TIMEOUT`]. After any failure the port is dropped and
//! the next call reopens it (a replugged USB adapter is a new device); a
//! freshly opened port first drives the relay off.

use std::path::PathBuf;
use std::time::Duration;

use bondgate_edge::SerialSettings;
use bondgate_protocol::relay::{LcusCommand, StatusDecoder, LCUS_STATUS_QUERY};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;
use tokio_serial::{SerialPort as _, SerialStream};

/// Longest one write or one status answer may take.
pub const IO_TIMEOUT: Duration = Duration::from_millis(500);

/// Most answer bytes read for one status query: 8 relays of `CHn:OFF\r\n`
/// are 72; much more is a babbling board, not an answer.
const ANSWER_BYTES_MAX: usize = 512;

/// Why the relay could not be driven or confirmed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The port could not be opened or closed under us.
    #[error("relay offline: {0}")]
    Offline(String),
    /// A read or write failed.
    #[error("relay i/o: {0}")]
    Io(String),
    /// The board did not answer in time.
    #[error("relay did not answer within {IO_TIMEOUT:?}")]
    Timeout,
    /// The board answered something else, or the wrong state.
    #[error("relay read-back: {0}")]
    ReadBack(String),
}

/// One LCUS board; `channel` (from 1) is the gate's open input.
#[derive(Debug)]
pub struct Lcus {
    path: PathBuf,
    baud: u32,
    channel: u8,
    port: Option<SerialStream>,
}

impl Lcus {
    /// Does not open the port: the first command does.
    pub fn new(path: PathBuf, baud: u32, channel: u8) -> Lcus {
        Lcus {
            path,
            baud,
            channel,
            port: None,
        }
    }

    /// The relay and where it is, for logs.
    pub fn describe(&self) -> String {
        format!("LCUS {} channel {}", self.path.display(), self.channel)
    }

    /// Switches the relay. On failure the port is dropped.
    pub async fn set(&mut self, on: bool) -> Result<(), RelayError> {
        let result = self.set_inner(on).await;
        self.drop_on_error(result)
    }

    /// Reads the relay back: `true` when energised. On failure the port is
    /// dropped.
    pub async fn read(&mut self) -> Result<bool, RelayError> {
        let result = self.read_inner().await;
        self.drop_on_error(result)
    }

    fn drop_on_error<T>(&mut self, result: Result<T, RelayError>) -> Result<T, RelayError> {
        if result.is_err() {
            self.port = None;
        }
        result
    }

    fn command(&self, on: bool) -> [u8; 4] {
        LcusCommand {
            channel: self.channel,
            on,
        }
        .encode()
    }

    async fn port(&mut self) -> Result<&mut SerialStream, RelayError> {
        if self.port.is_none() {
            // LCUS boards are 8N1.
            let settings = SerialSettings {
                baud: self.baud,
                ..SerialSettings::new(self.path.clone())
            };
            let mut port = settings
                .open()
                .map_err(|e| RelayError::Offline(e.to_string()))?;
            write_timed(&mut port, &self.command(false)).await?;
            self.port = Some(port);
        }
        self.port
            .as_mut()
            .ok_or_else(|| RelayError::Offline(self.path.display().to_string()))
    }

    async fn set_inner(&mut self, on: bool) -> Result<(), RelayError> {
        let frame = self.command(on);
        let port = self.port().await?;
        write_timed(port, &frame).await
    }

    async fn read_inner(&mut self) -> Result<bool, RelayError> {
        let channel = self.channel;
        let path = self.path.display().to_string();
        let port = self.port().await?;
        // A late answer to an earlier query would be read as this one.
        let _ = port.clear(tokio_serial::ClearBuffer::Input);
        write_timed(port, &[LCUS_STATUS_QUERY]).await?;
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut decoder = StatusDecoder::new();
        let mut buf = [0_u8; 128];
        let mut received = 0_usize;
        let mut garbled: Option<String> = None;
        loop {
            let n = match tokio::time::timeout_at(deadline, port.read(&mut buf)).await {
                Err(_) => {
                    return Err(match garbled {
                        Some(what) => RelayError::ReadBack(what),
                        None if received > 0 => RelayError::ReadBack(format!(
                            "{received} bytes that are not a status answer"
                        )),
                        None => RelayError::Timeout,
                    })
                }
                Ok(Err(e)) => return Err(RelayError::Io(format!("read failed: {e}"))),
                Ok(Ok(0)) => {
                    return Err(RelayError::Offline(format!(
                        "{path}: the port closed (unplugged?)"
                    )))
                }
                Ok(Ok(n)) => n,
            };
            received += n;
            for line in decoder.push(&buf[..n]) {
                match line {
                    Ok(s) if s.channel == channel => return Ok(s.on),
                    Ok(_) => {}
                    Err(e) => garbled = Some(e.to_string()),
                }
            }
            if received > ANSWER_BYTES_MAX {
                return Err(RelayError::ReadBack(format!(
                    "no status for channel {channel} in {received} bytes"
                )));
            }
        }
    }
}

/// Writes all of `bytes` within [`IO_TIMEOUT`].
async fn write_timed(port: &mut SerialStream, bytes: &[u8]) -> Result<(), RelayError> {
    let write = async {
        port.write_all(bytes).await?;
        port.flush().await
    };
    match tokio::time::timeout(IO_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(RelayError::Io(format!("write failed: {e}"))),
        Err(_) => Err(RelayError::Timeout),
    }
}
