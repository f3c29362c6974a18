//! The scanner bridge's configuration file (TOML).
//!
//! ```toml
//! broker = "mqtt://bridge:secret@10.0.0.2:1883"
//! site = "sh-wgq"
//! gate = "G1"                    # scans go to gate/{gate}/scan
//! # device = "scanner-bridge-G1" # presence id; default scanner-bridge-{gate}
//! seq_file = "/var/lib/bondgate/scanner-bridge-G1.seq"  # survives restarts
//! # scan_max_age_ms = 3000       # a scan held offline longer is dropped
//! # offline_capacity = 16        # scans held while offline
//!
//! [serial]
//! path = "/dev/serial/by-id/usb-Honeywell_Imaging___Mobility_1900-if00"
//! # baud = 9600
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use bondgate_edge::{ConfigError, EdgeConfig, SerialSettings};
use bondgate_protocol::GateId;
use serde::Deserialize;

/// How old a gate scan held while offline may be and still be sent: a few
/// seconds is the guard still standing at the gate with the parcel; later,
/// the barrier could open with nobody in front of it.
pub const SCAN_MAX_AGE_DEFAULT: Duration = Duration::from_secs(3);

/// The longest `scan_max_age_ms` accepted: a minute is already too late
/// for a gate; more is a misconfiguration.
pub const SCAN_MAX_AGE_MAX: Duration = Duration::from_secs(60);

/// Scans held while offline unless configured: a burst at one gate.
pub const OFFLINE_CAPACITY_DEFAULT: usize = 16;

/// The most scans `offline_capacity` may ask to hold.
pub const OFFLINE_CAPACITY_MAX: usize = 1_024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    gate: String,
    seq_file: PathBuf,
    scan_max_age_ms: Option<u64>,
    offline_capacity: Option<usize>,
    serial: SerialSettings,
}

/// A validated configuration; constructible from code (the demo runs the
/// bridge in-process).
#[derive(Debug, Clone)]
pub struct Config {
    /// Broker, site, and the device id (default `scanner-bridge-{gate}`).
    pub edge: EdgeConfig,
    /// The gate whose `gate/{gate}/scan` the scans go to.
    pub gate: GateId,
    /// Where the scan sequence numbers' high-water mark is kept, so a
    /// restarted bridge never reuses one (the server answers a reused seq
    /// from its record instead of deciding the scan).
    pub seq_file: PathBuf,
    /// A scan held offline longer than this is dropped, never sent.
    pub scan_max_age: Duration,
    /// Scans held while offline (the oldest dropped past it).
    pub offline_capacity: usize,
    /// The scanner's serial port.
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
            bondgate_edge::config::parse(text, |f: &File| format!("scanner-bridge-{}", f.gate))?;
        let gate = GateId::new(&f.gate).map_err(|e| ConfigError::field("gate", e))?;
        let scan_max_age = match f.scan_max_age_ms {
            None => SCAN_MAX_AGE_DEFAULT,
            Some(ms) if ms >= 1 && Duration::from_millis(ms) <= SCAN_MAX_AGE_MAX => {
                Duration::from_millis(ms)
            }
            Some(_) => {
                return Err(ConfigError::field(
                    "scan_max_age_ms",
                    format!("must be 1..={}", SCAN_MAX_AGE_MAX.as_millis()),
                ))
            }
        };
        let offline_capacity = f.offline_capacity.unwrap_or(OFFLINE_CAPACITY_DEFAULT);
        if !(1..=OFFLINE_CAPACITY_MAX).contains(&offline_capacity) {
            return Err(ConfigError::field(
                "offline_capacity",
                format!("must be 1..={OFFLINE_CAPACITY_MAX}"),
            ));
        }
        Ok(Config {
            edge,
            gate,
            seq_file: f.seq_file,
            scan_max_age,
            offline_capacity,
            serial: f.serial,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "broker = \"mqtt://127.0.0.1:1883\"\nsite = \"s1\"\ngate = \"G1\"\n\
                        seq_file = \"/tmp/g1.seq\"\n";

    #[test]
    fn the_example_config_is_valid() {
        Config::parse(include_str!("../examples/scanner-bridge.toml")).unwrap();
    }

    #[test]
    fn a_minimal_config_takes_the_defaults() {
        let c = Config::parse(&format!("{BASE}[serial]\npath = \"/dev/ttyACM0\"\n")).unwrap();
        assert_eq!(c.edge.device.as_str(), "scanner-bridge-G1");
        assert_eq!(c.scan_max_age, SCAN_MAX_AGE_DEFAULT);
        assert_eq!(c.offline_capacity, OFFLINE_CAPACITY_DEFAULT);
        assert_eq!(c.serial, SerialSettings::new("/dev/ttyACM0"));
    }

    #[test]
    fn bad_input_is_refused() {
        for extra in [
            "scan_max_age_ms = 0\n",
            "scan_max_age_ms = 60001\n",
            "offline_capacity = 0\n",
            "offline_capacity = 100000\n",
            "pda = \"x\"\n",
        ] {
            let text = format!("{BASE}{extra}[serial]\npath = \"/x\"\n");
            assert!(Config::parse(&text).is_err(), "{extra:?} accepted");
        }
        let no_seq =
            "broker = \"mqtt://h\"\nsite = \"s1\"\ngate = \"G1\"\n[serial]\npath = \"/x\"\n";
        assert!(Config::parse(no_seq).is_err());
    }
}
