//! `gate-bridge`: the edge box beside a barrier controller. It takes the
//! server's gate commands over MQTT and pulses a relay wired in parallel
//! with the controller's "open" push-button (see firmware-bridges/README.md).

mod bridge;
mod config;
mod lcus;
mod modbus;
mod relay;

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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = match config::Config::load(&args.config) {
        Ok(c) => c,
        Err(error) => {
            tracing::error!(%error, "bad configuration");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(error) => {
            tracing::error!(%error, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    let relay = relay::Relay::from_config(&config.relay);
    let relay_config = config.relay.clone();
    runtime.block_on(async {
        tokio::select! {
            () = bridge::run(config, relay) => {}
            () = stop_signal() => tracing::info!("stopping"),
        }
        // The bridge (and its port) is dropped here, perhaps mid-pulse:
        // release the relay before going.
        if let Err(error) = relay::Relay::from_config(&relay_config).release().await {
            tracing::error!(%error, "relay not released on stop");
        }
    });
    ExitCode::SUCCESS
}

/// SIGINT, or SIGTERM (systemd's stop).
async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(%error, "no SIGTERM handler; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
