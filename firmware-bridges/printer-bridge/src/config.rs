//! The printer bridge's configuration file (TOML): the shared keys
//! (`broker`, `site`, `device`), the `station`, and exactly one printer,
//! `tcp = "host:port"` or a `[serial]` table (see
//! `examples/printer-bridge.toml`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use bondgate_edge::{ConfigError, EdgeConfig, SerialSettings};
use bondgate_protocol::StationId;
use serde::Deserialize;

/// Jobs held while the printer cannot print, by default.
pub const QUEUE_DEFAULT: usize = 32;
/// Time between attempts while the printer cannot print, by default.
pub const RETRY_DEFAULT: Duration = Duration::from_secs(1);

pub use bondgate_edge::printer::PrinterPort;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    station: String,
    tcp: Option<String>,
    serial: Option<SerialSettings>,
    queue: Option<usize>,
    retry_ms: Option<u64>,
    printed_file: Option<PathBuf>,
}

/// A validated configuration; constructible from code (the demo runs the
/// bridge in-process).
#[derive(Debug, Clone)]
pub struct Config {
    /// Broker, site, and the device id (default `printer-bridge-{station}`).
    pub edge: EdgeConfig,
    /// The station whose `printer/{station}/job` this bridge prints.
    pub station: StationId,
    /// The printer.
    pub printer: PrinterPort,
    /// Jobs accepted and not yet printed, at most (1..=1024). A job that
    /// finds the queue full is not acknowledged with a report; the server
    /// sends it again.
    pub queue: usize,
    /// Time between attempts while the printer cannot print.
    pub retry: Duration,
    /// Where printed job ids are kept across restarts (`printed_file`);
    /// without it they live in memory only, and a bridge restarted between
    /// printing a label and reporting it prints that label again.
    pub printed_file: Option<PathBuf>,
}

impl Config {
    /// A configuration with the defaults.
    pub fn new(edge: EdgeConfig, station: StationId, printer: PrinterPort) -> Config {
        Config {
            edge,
            station,
            printer,
            queue: QUEUE_DEFAULT,
            retry: RETRY_DEFAULT,
            printed_file: None,
        }
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::parse(&bondgate_edge::config::read(path)?)
    }

    /// Validates a configuration's text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let (edge, f) =
            bondgate_edge::config::parse(text, |f: &File| format!("printer-bridge-{}", f.station))?;
        let station = StationId::new(&f.station).map_err(|e| ConfigError::field("station", e))?;
        let printer = match (f.tcp, f.serial) {
            (Some(addr), None)
                if addr.rsplit_once(':').is_some_and(|(h, p)| {
                    !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0)
                }) =>
            {
                PrinterPort::Tcp(addr)
            }
            (Some(addr), None) => {
                return Err(ConfigError::field(
                    "tcp",
                    format!("{addr:?} is not host:port"),
                ))
            }
            (None, Some(serial)) => PrinterPort::Serial(serial),
            _ => {
                return Err(ConfigError::field(
                    "printer",
                    "exactly one of tcp = \"host:9100\" or a [serial] table",
                ))
            }
        };
        let queue = f.queue.unwrap_or(QUEUE_DEFAULT);
        if !(1..=1024).contains(&queue) {
            return Err(ConfigError::field("queue", "must be 1..=1024"));
        }
        let retry_ms = f.retry_ms.unwrap_or(RETRY_DEFAULT.as_millis() as u64);
        if !(100..=60_000).contains(&retry_ms) {
            return Err(ConfigError::field("retry_ms", "must be 100..=60000"));
        }
        Ok(Config {
            edge,
            station,
            printer,
            queue,
            retry: Duration::from_millis(retry_ms),
            printed_file: f.printed_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "broker = \"mqtt://127.0.0.1:1883\"\nsite = \"s1\"\nstation = \"P1\"\n";

    #[test]
    fn the_example_config_is_valid() {
        let c = Config::parse(include_str!("../examples/printer-bridge.toml")).unwrap();
        assert_eq!(c.printer, PrinterPort::Tcp("10.0.0.9:9100".into()));
    }

    #[test]
    fn defaults_and_either_printer() {
        let c = Config::parse(&format!("{BASE}tcp = \"printer-p1:9100\"\n")).unwrap();
        assert_eq!(c.edge.device.as_str(), "printer-bridge-P1");
        assert_eq!((c.queue, c.retry), (QUEUE_DEFAULT, RETRY_DEFAULT));
        let c = Config::parse(&format!("{BASE}[serial]\npath = \"/dev/ttyUSB0\"\n")).unwrap();
        assert_eq!(
            c.printer,
            PrinterPort::Serial(SerialSettings::new("/dev/ttyUSB0"))
        );
    }

    #[test]
    fn bad_input_is_refused() {
        for text in [
            BASE.to_owned(),
            format!("{BASE}tcp = \"h:9100\"\n[serial]\npath = \"/x\"\n"),
            format!("{BASE}tcp = \"h\"\n"),
            format!("{BASE}tcp = \"h:0\"\n"),
            format!("{BASE}tcp = \"h:9100\"\nqueue = 0\n"),
            format!("{BASE}tcp = \"h:9100\"\nretry_ms = 5\n"),
            format!("{BASE}tcp = \"h:9100\"\nprinter = 1\n"),
        ] {
            assert!(Config::parse(&text).is_err(), "{text:?} accepted");
        }
    }
}
