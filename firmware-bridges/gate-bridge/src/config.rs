//! The bridge's configuration file (TOML).
//!
//! ```toml
//! broker = "mqtt://127.0.0.1:1883"   # mqtt://[user:password@]host[:port]
//! site = "sh-wgq"                    # the server's site (topic root)
//! gate = "g1"                        # the gate this box drives
//! # device = "gate-bridge-g1"        # presence id; default gate-bridge-{gate}
//! # heartbeat_timeout_ms = 3000      # hold the gate closed after this
//!
//! [relay]
//! kind = "lcus"
//! path = "/dev/ttyUSB0"
//! channel = 1                        # from 1
//! # baud = 9600
//!
//! # or a Modbus TCP board:
//! # [relay]
//! # kind = "modbus"
//! # addr = "10.0.0.5:502"
//! # unit = 1                         # default 1
//! # coil = 0                         # from 0
//! # flash = false                    # the board's self-timed "flash on"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use bondgate_protocol::relay::LCUS_CHANNELS_MAX;
use bondgate_protocol::{BrokerAddr, DeviceId, GateId, Site};
use serde::Deserialize;

/// Heartbeat age after which the gate is held closed (the server sends one
/// a second).
pub const HEARTBEAT_TIMEOUT_DEFAULT_MS: u64 = 3_000;

/// LCUS boards run at 9600 8N1.
pub const LCUS_BAUD_DEFAULT: u32 = 9_600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    broker: String,
    site: String,
    gate: String,
    device: Option<String>,
    heartbeat_timeout_ms: Option<u64>,
    relay: RelayFile,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum RelayFile {
    Lcus {
        path: PathBuf,
        channel: u8,
        baud: Option<u32>,
    },
    Modbus {
        addr: String,
        unit: Option<u8>,
        coil: u16,
        flash: Option<bool>,
    },
}

/// The relay board the bridge drives.
#[derive(Debug, Clone)]
pub enum RelayConfig {
    /// An LCUS serial relay board.
    Lcus {
        /// The serial port (a stable `/dev/serial/by-id/…` link is best).
        path: PathBuf,
        /// The relay wired to the controller's "open" input, from 1.
        channel: u8,
        /// Baud rate.
        baud: u32,
    },
    /// A coil on a Modbus TCP board.
    ModbusTcp {
        /// `host:port` (Modbus TCP is port 502).
        addr: String,
        /// The unit id (slave address) the board answers to.
        unit: u8,
        /// The coil wired to the controller's "open" input, from 0.
        coil: u16,
        /// Pulse with the board's self-timed "flash on" (FC05 at
        /// `0x0200 + coil`) rather than on, wait, off.
        flash: bool,
    },
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The broker the server uses.
    pub broker: BrokerAddr,
    /// The topic root.
    pub site: Site,
    /// The gate this bridge drives.
    pub gate: GateId,
    /// The id this bridge's presence is published under.
    pub device: DeviceId,
    /// Gate held closed once the last heartbeat is this old.
    pub heartbeat_timeout: Duration,
    /// The relay board.
    pub relay: RelayConfig,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or a field missing or misspelled.
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// A field's value is out of bounds.
    #[error("{0}")]
    Field(String),
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text)
    }

    /// Validates a configuration's text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let f: File = toml::from_str(text)?;
        let field =
            |name: &str, e: &dyn std::fmt::Display| ConfigError::Field(format!("{name}: {e}"));
        let broker = BrokerAddr::parse(&f.broker).map_err(|e| field("broker", &e))?;
        let site = Site::new(&f.site).map_err(|e| field("site", &e))?;
        let gate = GateId::new(&f.gate).map_err(|e| field("gate", &e))?;
        let device = f
            .device
            .unwrap_or_else(|| format!("gate-bridge-{}", gate.as_str()));
        let device = DeviceId::new(&device).map_err(|e| field("device", &e))?;
        let timeout_ms = f
            .heartbeat_timeout_ms
            .unwrap_or(HEARTBEAT_TIMEOUT_DEFAULT_MS);
        if timeout_ms == 0 {
            return Err(ConfigError::Field(
                "heartbeat_timeout_ms: must be above 0".into(),
            ));
        }
        let relay = match f.relay {
            RelayFile::Lcus {
                path,
                channel,
                baud,
            } => {
                if channel == 0 || channel > LCUS_CHANNELS_MAX {
                    return Err(ConfigError::Field(format!(
                        "relay.channel: must be 1..={LCUS_CHANNELS_MAX}"
                    )));
                }
                RelayConfig::Lcus {
                    path,
                    channel,
                    baud: baud.unwrap_or(LCUS_BAUD_DEFAULT),
                }
            }
            RelayFile::Modbus {
                addr,
                unit,
                coil,
                flash,
            } => RelayConfig::ModbusTcp {
                addr,
                unit: unit.unwrap_or(1),
                coil,
                flash: flash.unwrap_or(false),
            },
        };
        Ok(Config {
            broker,
            site,
            gate,
            device,
            heartbeat_timeout: Duration::from_millis(timeout_ms),
            relay,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_lcus_config_takes_the_defaults() {
        let c = Config::parse(
            "broker = \"mqtt://127.0.0.1:1883\"\nsite = \"s1\"\ngate = \"g1\"\n\
             [relay]\nkind = \"lcus\"\npath = \"/dev/ttyUSB0\"\nchannel = 2\n",
        )
        .unwrap();
        assert_eq!(c.device.as_str(), "gate-bridge-g1");
        assert_eq!(c.heartbeat_timeout, Duration::from_secs(3));
        let RelayConfig::Lcus { channel, baud, .. } = c.relay else {
            panic!("an LCUS relay: {:?}", c.relay)
        };
        assert_eq!((channel, baud), (2, 9600));
    }

    #[test]
    fn a_bad_channel_or_unknown_field_is_refused() {
        let base = "broker = \"mqtt://h:1883\"\nsite = \"s1\"\ngate = \"g1\"\n";
        let bad_channel = format!("{base}[relay]\nkind = \"lcus\"\npath = \"/x\"\nchannel = 9\n");
        assert!(Config::parse(&bad_channel).is_err());
        let typo =
            format!("{base}hearbeat = 1\n[relay]\nkind = \"lcus\"\npath = \"/x\"\nchannel = 1\n");
        assert!(Config::parse(&typo).is_err());
    }
}
