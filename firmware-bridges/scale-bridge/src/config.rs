//! The scale bridge's configuration file (TOML).
//!
//! ```toml
//! broker = "mqtt://bridge:secret@10.0.0.2:1883"
//! site = "sh-wgq"
//! station = "P1"                 # the pack station the scale belongs to
//! # device = "scale-bridge-P1"   # presence id; default scale-bridge-{station}
//! protocol = "mt-sics"           # mt-sics, ascii, toledo-continuous, yaohua-a9, yaohua-a9-eq
//!
//! [serial]
//! path = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"
//! # baud = 9600
//! # data_bits = 8
//! # parity = "none"
//! # stop_bits = 1
//! ```
//!
//! The protocol names and the default (`mt-sics`) are the server's own for
//! a scale on one of its serial ports (`scale = { serial = …, protocol = … }`
//! of a `[[station]]` in its config).

use std::path::Path;

use bondgate_edge::{ConfigError, EdgeConfig, SerialSettings};
use bondgate_protocol::scale::ScaleProtocol;
use bondgate_protocol::StationId;
use serde::Deserialize;

/// What a scale speaks unless configured: the server's default too.
pub const PROTOCOL_DEFAULT: ScaleProtocol = ScaleProtocol::MtSics;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    station: String,
    protocol: Option<String>,
    serial: SerialSettings,
}

/// A validated configuration; constructible from code (the demo runs the
/// bridge in-process).
#[derive(Debug, Clone)]
pub struct Config {
    /// Broker, site, and the device id (default `scale-bridge-{station}`).
    pub edge: EdgeConfig,
    /// The station whose `scale/{station}/weight` the readings go to.
    pub station: StationId,
    /// The scale's wire format.
    pub protocol: ScaleProtocol,
    /// The scale's serial port.
    pub serial: SerialSettings,
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::parse(&bondgate_edge::config::read(path)?)
    }

    /// Validates a configuration's text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let (edge, f) =
            bondgate_edge::config::parse(text, |f: &File| format!("scale-bridge-{}", f.station))?;
        let station = StationId::new(&f.station).map_err(|e| ConfigError::field("station", e))?;
        let protocol = match f.protocol {
            None => PROTOCOL_DEFAULT,
            Some(p) => p.parse().map_err(|e| ConfigError::field("protocol", e))?,
        };
        Ok(Config {
            edge,
            station,
            protocol,
            serial: f.serial,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "broker = \"mqtt://127.0.0.1:1883\"\nsite = \"s1\"\nstation = \"P1\"\n";

    #[test]
    fn the_example_config_is_valid() {
        Config::parse(include_str!("../examples/scale-bridge.toml")).unwrap();
    }

    #[test]
    fn a_minimal_config_takes_the_defaults() {
        let c = Config::parse(&format!("{BASE}[serial]\npath = \"/dev/ttyUSB0\"\n")).unwrap();
        assert_eq!(c.edge.device.as_str(), "scale-bridge-P1");
        assert_eq!(c.protocol, ScaleProtocol::MtSics);
        assert_eq!(c.serial, SerialSettings::new("/dev/ttyUSB0"));
    }

    #[test]
    fn every_protocol_name_is_accepted_and_others_refused() {
        for p in ScaleProtocol::ALL {
            let c = Config::parse(&format!(
                "{BASE}protocol = \"{p}\"\n[serial]\npath = \"/x\"\n"
            ))
            .unwrap();
            assert_eq!(c.protocol, p);
        }
        let err = Config::parse(&format!(
            "{BASE}protocol = \"toledo\"\n[serial]\npath = \"/x\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("protocol: unknown scale protocol"), "{err}");
    }

    #[test]
    fn bad_input_is_refused() {
        for text in [
            BASE.to_owned(),
            format!("{BASE}[serial]\npath = \"/x\"\nbaud = \"fast\"\n"),
            format!("{BASE}stations = 1\n[serial]\npath = \"/x\"\n"),
            "broker = \"mqtt://h\"\nsite = \"s1\"\nstation = \"P 1\"\n[serial]\npath = \"/x\"\n"
                .to_owned(),
        ] {
            assert!(Config::parse(&text).is_err(), "{text:?} accepted");
        }
    }
}
