//! MQTT: the embedded broker and the server's client link (DESIGN.md §4,
//! PROTOCOLS.md §5).
//!
//! Two halves, both optional in the sense that the server can run with an
//! external broker instead of the embedded one:
//!
//! - [`Broker`] runs rumqttd inside the server process, so a fresh machine
//!   works with one command (DESIGN.md §5). Production points the link at
//!   Mosquitto or EMQX instead.
//! - [`MqttLink`] is the server's own client, to either broker. It keeps the
//!   connection alive (reconnecting with capped, jittered backoff), subscribes
//!   to the site's device traffic after every connect, announces the server's
//!   presence (`online` retained, `offline` as the last will) and hands each
//!   incoming message to a [`DeviceHandler`], in order per device.
//!
//! Topic names and payloads come only from `bondgate-protocol`; nothing in
//! this module builds a topic string by hand. So do the broker URL grammar
//! ([`BrokerAddr`]) and the reconnect delays ([`Backoff`]), which every MQTT
//! client of the site shares.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use bondgate::mqtt::{Broker, BrokerAddr, DeviceHandler, LinkOptions, MqttLink};
//! # use bondgate_protocol::{DeviceId, Site};
//! # async fn demo(handler: Arc<dyn DeviceHandler>) -> anyhow::Result<()> {
//! let broker = Broker::start("127.0.0.1:1883".parse()?).await?;
//! let options = LinkOptions::new(
//!     Site::new("sh-01")?,
//!     DeviceId::new("bondgate-1")?,
//!     BrokerAddr::from(broker.addr()),
//! );
//! let link = MqttLink::start(options, handler);
//! // … serve …
//! link.shutdown().await; // publishes `offline`, disconnects cleanly
//! # Ok(()) }
//! ```

mod broker;
mod dispatch;
mod link;

use std::future::Future;
use std::pin::Pin;

use bondgate_protocol::{
    DeviceHealth, DeviceId, DeviceStatus, GateId, GateResultMsg, GateState, PayloadError,
    PrinterReport, PromptMsg, ScanMsg, Site, StationId, WeightMsg,
};

/// The broker URL and the reconnect delays live in `bondgate-protocol`, shared
/// with the bridges and simulators; re-exported so `bondgate::mqtt::BrokerAddr`
/// and `bondgate::mqtt::Backoff` keep working.
pub use bondgate_protocol::{Backoff, BrokerAddr, BrokerAddrError};
pub use broker::{Broker, BrokerError, CONNECTIONS_MAX};
pub use dispatch::{
    malformed_gate_scan_result, malformed_scan_prompt, HANDLERS_IN_FLIGHT_MAX, MALFORMED_SCAN_NEXT,
    MALFORMED_SCAN_SEQ,
};
pub use link::{
    LinkError, LinkOptions, MqttLink, Publisher, BACKPRESSURE_WAIT_MAX, INCOMING_QUEUE_DEPTH,
    KEEP_ALIVE, SHUTDOWN_GRACE,
};

/// Largest MQTT packet the broker accepts and the link sends or receives.
///
/// 256 KiB because label jobs travel as ESC/POS (behind a one-line header,
/// `bondgate_protocol::PrintJob`) on `printer/{station}/job`:
/// a 100 × 150 mm label rasterised at 203 dpi is 800 × 1200 dots, 120 KB at
/// one bit per dot, and twice that leaves room for a second image or text
/// commands. rumqttc's default (10 KiB) would drop the connection on the first
/// label. JSON payloads stay far smaller (`bondgate_protocol::PAYLOAD_BYTES_MAX`).
pub const PACKET_BYTES_MAX: usize = 256 * 1024;

/// A boxed, sendable future: what [`DeviceHandler`] methods return, so the
/// trait stays object safe (`Arc<dyn DeviceHandler>`) without an
/// `async-trait` or `futures` dependency.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the server does with device traffic; implemented by the picking flow.
///
/// The link calls these from its own tasks: concurrently for different
/// devices, strictly one after another for the same device (keyed by site and
/// device id), so an implementation may assume a PDA's scans arrive in the
/// order the broker delivered them and that the previous one was answered.
/// Malformed payloads never reach the handler: the link answers a malformed
/// scan itself and drops a malformed status. The server's own status topic is
/// not reported either.
pub trait DeviceHandler: Send + Sync + 'static {
    /// A scan from a PDA; the answer is published on that PDA's prompt topic
    /// (QoS 1, not retained). The prompt should echo `scan.seq`.
    fn on_scan(&self, site: &Site, device: &DeviceId, scan: ScanMsg) -> BoxFuture<'_, PromptMsg>;

    /// A device's retained online/offline status changed.
    fn on_status(&self, site: &Site, device: &DeviceId, status: DeviceStatus) -> BoxFuture<'_, ()>;

    /// A scale bridge's reading (`scale/{station}/weight`). Called inline by
    /// the dispatcher, in arrival order: keep it quick and free of I/O.
    fn on_weight(&self, _site: &Site, _station: &StationId, _weight: WeightMsg) {}

    /// A bridge's health report (`devices/{id}/health`, retained). Called
    /// inline by the dispatcher, in arrival order (with the scale readings):
    /// keep it quick and free of I/O.
    fn on_health(&self, _site: &Site, _device: &DeviceId, _health: DeviceHealth) {}

    /// A health report that could not be parsed (it was refused and counted
    /// by the link). Called inline: keep it quick and free of I/O.
    fn on_health_refused(&self, _site: &Site, _device: &DeviceId, _error: &PayloadError) {}

    /// A gate bridge's state report (`gate/{gate}/state`). Called inline by
    /// the dispatcher, in arrival order: keep it quick and free of I/O.
    fn on_gate_state(&self, _site: &Site, _gate: &GateId, _state: GateState) {}

    /// A printer bridge's report (`printer/{station}/status`): a job
    /// printed or failed, or the printer's status. Called inline by the
    /// dispatcher, in arrival order: keep it quick and free of I/O.
    fn on_printer_report(&self, _site: &Site, _station: &StationId, _report: PrinterReport) {}

    /// A parcel scanned by a gate's scanner (`gate/{gate}/scan`); the answer
    /// is published on `gate/{gate}/result`. `None`: nothing to answer (no
    /// gate service here).
    fn on_gate_scan(
        &self,
        _site: &Site,
        _gate: &GateId,
        _scan: ScanMsg,
    ) -> BoxFuture<'_, Option<GateResultMsg>> {
        Box::pin(async { None })
    }
}
