//! A serial device behind a bridge: settings from the config file, opened
//! and reopened with backoff.
//!
//! ```toml
//! [serial]
//! path = "/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0"
//! # baud = 9600
//! # data_bits = 8        # 7 or 8
//! # parity = "none"      # none, even or odd
//! # stop_bits = 1        # 1 or 2
//! ```
//!
//! A USB adapter that is pulled out hangs up the open port (reads return 0
//! bytes for ever) and its `/dev/serial/by-id/…` link disappears until it is
//! plugged in again. So a bridge treats a 0-byte read, a read error or
//! silence as a disconnect, drops the port and calls [`SerialPort::open`]
//! again, which waits a [`Backoff`] delay between attempts (none before the
//! first; the delays start over after a connection that lasted
//! [`Backoff::RESET_AFTER`]).

use std::hash::{BuildHasher as _, RandomState};
use std::path::PathBuf;

use bondgate_protocol::Backoff;
use serde::Deserialize;
use tokio::time::Instant;
use tokio_serial::{SerialPortBuilderExt as _, SerialStream};

/// Most serial devices on a warehouse floor (scales, scanners, relay
/// boards) ship at 9600 baud.
pub const BAUD_DEFAULT: u32 = 9_600;

/// Bits per character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "u8")]
pub enum DataBits {
    /// 7 (older scales, often with even parity).
    Seven,
    /// 8, the usual.
    #[default]
    Eight,
}

impl TryFrom<u8> for DataBits {
    type Error = String;
    fn try_from(n: u8) -> Result<DataBits, String> {
        match n {
            7 => Ok(DataBits::Seven),
            8 => Ok(DataBits::Eight),
            _ => Err(format!("data_bits must be 7 or 8, not {n}")),
        }
    }
}

/// Parity bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    /// None, the usual.
    #[default]
    None,
    /// Even.
    Even,
    /// Odd.
    Odd,
}

/// Stop bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "u8")]
pub enum StopBits {
    /// 1, the usual.
    #[default]
    One,
    /// 2.
    Two,
}

impl TryFrom<u8> for StopBits {
    type Error = String;
    fn try_from(n: u8) -> Result<StopBits, String> {
        match n {
            1 => Ok(StopBits::One),
            2 => Ok(StopBits::Two),
            _ => Err(format!("stop_bits must be 1 or 2, not {n}")),
        }
    }
}

fn baud_default() -> u32 {
    BAUD_DEFAULT
}

/// How to open a serial device (the `[serial]` table of a bridge's file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialSettings {
    /// The port; a stable `/dev/serial/by-id/…` link survives replugs and
    /// reboots where `/dev/ttyUSB0` may become `/dev/ttyUSB1`.
    pub path: PathBuf,
    /// Baud rate (default 9600).
    #[serde(default = "baud_default")]
    pub baud: u32,
    /// Data bits (default 8).
    #[serde(default)]
    pub data_bits: DataBits,
    /// Parity (default none).
    #[serde(default)]
    pub parity: Parity,
    /// Stop bits (default 1).
    #[serde(default)]
    pub stop_bits: StopBits,
}

impl SerialSettings {
    /// `path` at 9600 8N1.
    pub fn new(path: impl Into<PathBuf>) -> SerialSettings {
        SerialSettings {
            path: path.into(),
            baud: BAUD_DEFAULT,
            data_bits: DataBits::Eight,
            parity: Parity::None,
            stop_bits: StopBits::One,
        }
    }

    /// Opens the port once (no flow control).
    pub fn open(&self) -> Result<SerialStream, SerialError> {
        tokio_serial::new(self.path.to_string_lossy(), self.baud)
            .data_bits(match self.data_bits {
                DataBits::Seven => tokio_serial::DataBits::Seven,
                DataBits::Eight => tokio_serial::DataBits::Eight,
            })
            .parity(match self.parity {
                Parity::None => tokio_serial::Parity::None,
                Parity::Even => tokio_serial::Parity::Even,
                Parity::Odd => tokio_serial::Parity::Odd,
            })
            .stop_bits(match self.stop_bits {
                StopBits::One => tokio_serial::StopBits::One,
                StopBits::Two => tokio_serial::StopBits::Two,
            })
            .flow_control(tokio_serial::FlowControl::None)
            .open_native_async()
            .map_err(|e| SerialError {
                path: self.path.clone(),
                reason: e.to_string(),
            })
    }
}

/// A port that could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot open {}: {reason}", path.display())]
pub struct SerialError {
    /// The port.
    pub path: PathBuf,
    /// What the system said.
    pub reason: String,
}

/// A serial device opened again and again, with backoff in between.
#[derive(Debug)]
pub struct SerialPort {
    settings: SerialSettings,
    backoff: Backoff,
    /// When the last port was handed out; `None` before the first.
    opened_at: Option<Instant>,
}

impl SerialPort {
    /// Nothing is opened yet.
    pub fn new(settings: SerialSettings) -> SerialPort {
        SerialPort {
            settings,
            backoff: Backoff::new(),
            opened_at: None,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &SerialSettings {
        &self.settings
    }

    /// Opens the port, retrying until it opens: at once the first time;
    /// after a port was handed out (and has since failed), after a backoff
    /// delay, and between failed attempts. `failed` hears each failure (to
    /// log it or report it).
    pub async fn open(&mut self, mut failed: impl FnMut(&SerialError)) -> SerialStream {
        if let Some(at) = self.opened_at.take() {
            if at.elapsed() >= Backoff::RESET_AFTER {
                self.backoff.reset();
            }
            self.sleep().await;
        }
        loop {
            match self.settings.open() {
                Ok(port) => {
                    self.opened_at = Some(Instant::now());
                    return port;
                }
                Err(error) => {
                    failed(&error);
                    self.sleep().await;
                }
            }
        }
    }

    async fn sleep(&mut self) {
        let delay = self
            .backoff
            .next_delay_with(RandomState::new().hash_one(0_u8));
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        serial: SerialSettings,
    }

    #[test]
    fn defaults_are_9600_8n1() {
        let f: File = toml::from_str("[serial]\npath = \"/dev/ttyUSB0\"\n").unwrap();
        assert_eq!(f.serial, SerialSettings::new("/dev/ttyUSB0"));
        let f: File = toml::from_str(
            "[serial]\npath = \"/x\"\nbaud = 4800\ndata_bits = 7\nparity = \"even\"\nstop_bits = 2\n",
        )
        .unwrap();
        assert_eq!(
            (
                f.serial.baud,
                f.serial.data_bits,
                f.serial.parity,
                f.serial.stop_bits
            ),
            (4800, DataBits::Seven, Parity::Even, StopBits::Two)
        );
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        for (text, why) in [
            ("data_bits = 9", "data_bits must be 7 or 8"),
            ("stop_bits = 0", "stop_bits must be 1 or 2"),
            ("parity = \"mark\"", "unknown variant"),
            ("speed = 1", "unknown field"),
        ] {
            let err = toml::from_str::<File>(&format!("[serial]\npath = \"/x\"\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_port_is_retried_with_backoff() {
        let dir = std::env::temp_dir().join(format!("bondgate-edge-{}", std::process::id()));
        let mut port = SerialPort::new(SerialSettings::new(dir.join("ttyNONE")));
        let mut failures = Vec::new();
        let opened = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            port.open(|e| failures.push(e.clone())),
        )
        .await;
        assert!(opened.is_err(), "a missing port never opens");
        // 30 s of paused time with delays from 50 ms growing to 5 s.
        assert!(
            (6..=40).contains(&failures.len()),
            "{} attempts",
            failures.len()
        );
        assert!(
            failures[0].to_string().contains("ttyNONE"),
            "{}",
            failures[0]
        );
    }
}
