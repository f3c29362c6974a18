//! The `scale-bridge` binary: arguments and configuration, then
//! [`bondgate_scale_bridge::run`] until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Publishes a serial scale's readings on MQTT.
#[derive(Debug, Parser)]
#[command(name = "scale-bridge", version)]
struct Args {
    /// The TOML configuration file.
    #[arg(long, short, env = "SCALE_BRIDGE_CONFIG")]
    config: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    bondgate_edge::main_with(
        bondgate_scale_bridge::Config::load(&args.config),
        |config| bondgate_scale_bridge::run(config, bondgate_edge::stop_signal()),
    )
}
