//! `gate-bridge`: the edge box beside a barrier controller. It takes the
//! server's gate commands over MQTT and pulses a relay wired in parallel
//! with the controller's "open" push-button (see firmware-bridges/README.md).
//!
//! A library with a thin binary: [`run`] is the whole bridge, so the server's
//! demo can run it in-process as a task.

#![forbid(unsafe_code)]

mod bridge;
pub mod config;
mod relay;

use std::future::Future;

pub use bondgate_edge::BridgeError;
pub use config::{Config, RelayConfig};

/// Runs the bridge until `shutdown` resolves (or the MQTT session ends).
///
/// The relay is driven off at start and again on the way out, even when
/// `shutdown` comes mid-pulse. The MQTT session is dropped without a clean
/// disconnect, so the broker publishes the bridge's `offline` will.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), BridgeError> {
    let relay = relay::Relay::from_config(&config.relay);
    let result = tokio::select! {
        r = bridge::run(config, &relay) => r,
        () = shutdown => {
            tracing::info!("stopping");
            Ok(())
        }
    };
    // Perhaps mid-pulse: end it now (off, read back) through the same
    // driver, which holds the port, before going.
    relay.cut_short();
    match tokio::time::timeout(STOP_RELEASE, relay.probe()).await {
        Ok(Ok(relay::RelayState::Off)) => {}
        Ok(Ok(relay::RelayState::On)) => tracing::error!("relay still on at stop"),
        Ok(Err(error)) => tracing::error!(%error, "relay not released on stop"),
        Err(_) => tracing::error!("relay not released on stop: no answer"),
    }
    result
}

/// How long the bridge may take to release its relay when told to stop.
const STOP_RELEASE: std::time::Duration = std::time::Duration::from_secs(2);
