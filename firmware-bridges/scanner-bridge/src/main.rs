//! The `scanner-bridge` binary: arguments and configuration, then
//! [`bondgate_scanner_bridge::run`] until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Publishes a serial barcode scanner's scans on MQTT.
#[derive(Debug, Parser)]
#[command(name = "scanner-bridge", version)]
struct Args {
    /// The TOML configuration file.
    #[arg(long, short, env = "SCANNER_BRIDGE_CONFIG")]
    config: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    bondgate_edge::main_with(
        bondgate_scanner_bridge::Config::load(&args.config),
        |config| bondgate_scanner_bridge::run(config, bondgate_edge::stop_signal()),
    )
}
