//! # bondgate-edge
//!
//! What every edge bridge (gate, scale, scanner) shares, written once:
//!
//! - [`config`]: the part of a bridge's TOML file every bridge has
//!   (`broker`, `site`, `device`), loaded beside the bridge's own keys with
//!   unknown keys refused, as [`EdgeConfig`].
//! - [`session`]: the MQTT session ([`Session`]): client id = device id,
//!   `offline` registered as the retained last will on
//!   `devices/{id}/status`, a poll task that only polls and sleeps a
//!   [`bondgate_protocol::Backoff`] delay between failed attempts, and, on
//!   every ConnAck, the bridge's subscriptions renewed and a retained
//!   `online` published.
//! - [`health`]: [`Health`], the retained `devices/{id}/health` report of
//!   the device behind the bridge (ok, last error, refused input, drops).
//! - [`queue`]: [`OfflineQueue`], the bounded buffer for what a bridge may
//!   send late (drop-oldest with a counter, an optional age limit).
//! - [`serial`]: [`SerialSettings`] (path, baud, data bits, parity, stop
//!   bits) and [`SerialPort`], which opens them and reopens with backoff.
//! - [`scale`]: [`ScaleReader`], a serial scale read by the one set of rules
//!   the server and the scale bridge share (MT-SICS polled, silence and
//!   0-byte reads are disconnects, reopen with backoff), its news on a
//!   channel.
//! - [`runtime`]: tracing on stderr, the SIGTERM/SIGINT [`stop_signal`], and
//!   [`main_with`], the whole of a bridge's `main` after its arguments.
//!
//! Every bridge is a library with `pub async fn run(config, shutdown)` and a
//! thin binary, so the same code runs on a box and in-process (the server's
//! demo runs every bridge as a task).
//!
//! Depends on `bondgate-protocol`, rumqttc, tokio, tokio-serial, serde,
//! toml and tracing only: never the server crate, axum or sqlx.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod health;
pub mod printer;
pub mod queue;
pub mod runtime;
pub mod scale;
pub mod serial;
pub mod session;

pub use config::{ConfigError, EdgeConfig};
pub use health::Health;
pub use queue::OfflineQueue;
pub use runtime::{init_tracing, main_with, stop_signal, unix_millis};
pub use scale::{ScaleNews, ScaleReader};
pub use serial::{DataBits, Parity, SerialError, SerialPort, SerialSettings, StopBits};
pub use session::{Session, SessionEvent};

/// Why a bridge stopped by itself (rather than on its shutdown signal).
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The MQTT poll task ended: the bridge can no longer reach anyone.
    #[error("the MQTT session ended")]
    SessionEnded,
    /// Something the bridge needs before it may run is not there.
    #[error("the bridge cannot start: {0}")]
    Start(String),
}
