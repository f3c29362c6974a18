//! `gate-bridge`: the edge box beside a barrier controller. It takes the
//! server's gate commands over MQTT and pulses a relay wired in parallel
//! with the controller's "open" push-button (see firmware-bridges/README.md).
//!
//! A library with a thin binary: [`run`] is the whole bridge, so the server's
//! demo can run it in-process as a task.

#![forbid(unsafe_code)]

mod bridge;
pub mod config;
mod lcus;
mod modbus;
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
    let relay_config = config.relay.clone();
    let result = tokio::select! {
        r = bridge::run(config, relay::Relay::from_config(&relay_config)) => r,
        () = shutdown => {
            tracing::info!("stopping");
            Ok(())
        }
    };
    // The bridge (and its port) is dropped here, perhaps mid-pulse: release
    // the relay before going.
    if let Err(error) = relay::Relay::from_config(&relay_config).release().await {
        tracing::error!(%error, "relay not released on stop");
    }
    result
}
