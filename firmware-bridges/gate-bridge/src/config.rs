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
//! # or a Modbus board, on TCP (addr) or RTU over RS-485 (path):
//! # [relay]
//! # kind = "modbus"
//! # addr = "10.0.0.5:502"            # or: path = "/dev/ttyUSB1", baud = 9600
//! # unit = 1                         # default 1
//! # coil = 0                         # from 0
//! # flash = false                    # the board's self-timed "flash on"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use bondgate_edge::{ConfigError, EdgeConfig};
use bondgate_protocol::relay::LCUS_CHANNELS_MAX;
use bondgate_protocol::GateId;
use serde::Deserialize;

/// Heartbeat age after which the gate is held closed (the server sends one
/// a second).
pub const HEARTBEAT_TIMEOUT_DEFAULT_MS: u64 = 3_000;

/// LCUS boards run at 9600 8N1.
pub const LCUS_BAUD_DEFAULT: u32 = 9_600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    gate: String,
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
        addr: Option<String>,
        path: Option<PathBuf>,
        baud: Option<u32>,
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
    /// A coil on a Modbus RTU board on a serial line (RS-485 adapter).
    ModbusRtu {
        /// The serial port.
        path: PathBuf,
        /// Baud rate (8N1).
        baud: u32,
        /// The unit id (slave address) the board answers to.
        unit: u8,
        /// The coil wired to the controller's "open" input, from 0.
        coil: u16,
        /// Pulse with the board's self-timed "flash on".
        flash: bool,
    },
}

/// A validated configuration; constructible from code (the demo runs the
/// bridge in-process).
#[derive(Debug, Clone)]
pub struct Config {
    /// Broker, site, and the device id (default `gate-bridge-{gate}`).
    pub edge: EdgeConfig,
    /// The gate this bridge drives.
    pub gate: GateId,
    /// Gate held closed once the last heartbeat is this old.
    pub heartbeat_timeout: Duration,
    /// The relay board.
    pub relay: RelayConfig,
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::parse(&bondgate_edge::config::read(path)?)
    }

    /// Validates a configuration's text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let (edge, f) =
            bondgate_edge::config::parse(text, |f: &File| format!("gate-bridge-{}", f.gate))?;
        let gate = GateId::new(&f.gate).map_err(|e| ConfigError::field("gate", e))?;
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
                path,
                baud,
                unit,
                coil,
                flash,
            } => {
                let unit = unit.unwrap_or(1);
                if !(1..=247).contains(&unit) {
                    return Err(ConfigError::Field("relay.unit: must be 1..=247".into()));
                }
                let flash = flash.unwrap_or(false);
                match (addr, path) {
                    (Some(addr), None) if baud.is_none() => RelayConfig::ModbusTcp {
                        addr,
                        unit,
                        coil,
                        flash,
                    },
                    (None, Some(path)) => RelayConfig::ModbusRtu {
                        path,
                        baud: baud.unwrap_or(LCUS_BAUD_DEFAULT),
                        unit,
                        coil,
                        flash,
                    },
                    _ => {
                        return Err(ConfigError::Field(
                            "relay: a Modbus board needs addr = \"host:502\" (TCP) or path = \"/dev/…\" (RTU, with an optional baud), not both"
                                .into(),
                        ))
                    }
                }
            }
        };
        Ok(Config {
            edge,
            gate,
            heartbeat_timeout: Duration::from_millis(timeout_ms),
            relay,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_is_valid() {
        Config::parse(include_str!("../examples/gate-bridge.toml")).unwrap();
    }

    #[test]
    fn a_minimal_lcus_config_takes_the_defaults() {
        let c = Config::parse(
            "broker = \"mqtt://127.0.0.1:1883\"\nsite = \"s1\"\ngate = \"g1\"\n\
             [relay]\nkind = \"lcus\"\npath = \"/dev/ttyUSB0\"\nchannel = 2\n",
        )
        .unwrap();
        assert_eq!(c.edge.device.as_str(), "gate-bridge-g1");
        assert_eq!(c.heartbeat_timeout, Duration::from_secs(3));
        let RelayConfig::Lcus { channel, baud, .. } = c.relay else {
            panic!("an LCUS relay: {:?}", c.relay)
        };
        assert_eq!((channel, baud), (2, 9600));
    }

    #[test]
    fn a_modbus_board_is_on_tcp_or_on_rtu_never_both() {
        let base = "broker = \"mqtt://h:1883\"\nsite = \"s1\"\ngate = \"g1\"\n[relay]\nkind = \"modbus\"\ncoil = 3\n";
        let rtu = Config::parse(&format!("{base}path = \"/dev/ttyUSB1\"\nunit = 2\n")).unwrap();
        let RelayConfig::ModbusRtu {
            baud, unit, coil, ..
        } = rtu.relay
        else {
            panic!("an RTU relay: {:?}", rtu.relay)
        };
        assert_eq!((baud, unit, coil), (9600, 2, 3));
        let tcp = Config::parse(&format!("{base}addr = \"10.0.0.5:502\"\n")).unwrap();
        assert!(matches!(tcp.relay, RelayConfig::ModbusTcp { unit: 1, .. }));
        for bad in [
            format!("{base}addr = \"h:502\"\npath = \"/dev/x\"\n"),
            format!("{base}addr = \"h:502\"\nbaud = 19200\n"),
            base.to_string(),
            format!("{base}path = \"/dev/x\"\nunit = 0\n"),
        ] {
            assert!(Config::parse(&bad).is_err(), "{bad}");
        }
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
