//! The `printer-bridge` binary: arguments and configuration, then
//! [`bondgate_printer_bridge::run`] until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Prints the label jobs of one pack station, from MQTT, on its printer.
#[derive(Debug, Parser)]
#[command(name = "printer-bridge", version)]
struct Args {
    /// The TOML configuration file.
    #[arg(long, short, env = "PRINTER_BRIDGE_CONFIG")]
    config: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    bondgate_edge::main_with(
        bondgate_printer_bridge::Config::load(&args.config),
        |config| bondgate_printer_bridge::run(config, bondgate_edge::stop_signal()),
    )
}
