//! The `gate-bridge` binary: arguments and configuration, then
//! [`bondgate_gate_bridge::run`] until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Drives a gate's relay from the server's MQTT gate commands.
#[derive(Debug, Parser)]
#[command(name = "gate-bridge", version)]
struct Args {
    /// The TOML configuration file.
    #[arg(long, short, env = "GATE_BRIDGE_CONFIG")]
    config: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    bondgate_edge::main_with(bondgate_gate_bridge::Config::load(&args.config), |config| {
        bondgate_gate_bridge::run(config, bondgate_edge::stop_signal())
    })
}
