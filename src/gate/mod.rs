//! The outbound gate's output: the relay that pulses the barrier
//! controller's "open" input (PROTOCOLS.md §4).
//!
//! A driver sends only **self-timed open pulses** and confirms each from the
//! device's own read-back (an MQTT bridge's state report, a relay board's
//! status answer, a Modbus coil read). No answer, a wrong answer or a dead
//! link is an [`OutputFault`]: the gate counts as closed and the parcel has
//! not left. Drivers never decide anything: the decision is the store's
//! (`Store::gate_scan`), and a driver is only ever handed a [`Pulse`] for a
//! decision that found a held release.

pub mod lcus;
pub mod modbus;
pub mod mqtt;
pub mod service;

pub use mqtt::{MqttGateOutput, MqttGateStates};
pub use service::{GateError, GateStatusView, Gates};

use std::sync::{Arc, OnceLock};

/// The pulse, its confirmation and faults are the relay drivers' types
/// (`bondgate-relay-io`, shared with the edge bridges).
pub use bondgate_relay_io::{Confirmation, OutputFault, Pulse, RelayState};

use crate::mqtt::BoxFuture;

/// A gate's output driver: MQTT gate bridge, LCUS serial relay or Modbus
/// coil. Object safe so a gate's driver is chosen from its configuration.
pub trait GateOutput: Send + Sync {
    /// `mqtt`, `lcus` or `modbus`, for status screens and logs.
    fn kind(&self) -> &'static str;

    /// Sends one self-timed open pulse and confirms it from the device's
    /// read-back. Must not start the pulse once `pulse.expires_at` has
    /// passed, and must return (with a fault) rather than hang: every device
    /// call is under a timeout.
    fn pulse<'a>(&'a self, pulse: &'a Pulse) -> BoxFuture<'a, Result<Confirmation, OutputFault>>;

    /// Reads the relay state back without changing it, for the gate's
    /// status and the periodic health check.
    fn probe(&self) -> BoxFuture<'_, Result<RelayState, OutputFault>>;
}

/// Every relay board driver of `bondgate-relay-io` (LCUS, Modbus) is a
/// gate output as it is.
impl<T: bondgate_relay_io::RelayOutput> GateOutput for T {
    fn kind(&self) -> &'static str {
        bondgate_relay_io::RelayOutput::kind(self)
    }

    fn pulse<'a>(&'a self, pulse: &'a Pulse) -> BoxFuture<'a, Result<Confirmation, OutputFault>> {
        Box::pin(bondgate_relay_io::RelayOutput::pulse(self, pulse))
    }

    fn probe(&self) -> BoxFuture<'_, Result<RelayState, OutputFault>> {
        Box::pin(bondgate_relay_io::RelayOutput::probe(self))
    }
}

/// Unix milliseconds now.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What the MQTT link needs of the gates: where bridges' state reports go,
/// and the service that answers gate scanners. The service is set once the
/// link (whose publisher it needs) is up.
pub struct GateLink {
    pub states: Arc<MqttGateStates>,
    pub service: OnceLock<Arc<Gates>>,
}

/// The driver a gate's configuration asks for.
pub fn build_output(
    config: &crate::config::GateConfig,
    publisher: &crate::mqtt::Publisher,
    states: &Arc<MqttGateStates>,
) -> anyhow::Result<Arc<dyn GateOutput>> {
    use crate::config::GateOutputConfig as O;
    Ok(match &config.output {
        O::Mqtt => Arc::new(MqttGateOutput::new(
            bondgate_protocol::GateId::new(&config.id)?,
            publisher.clone(),
            states.clone(),
        )),
        O::Lcus {
            path,
            baud,
            channel,
        } => Arc::new(lcus::LcusOutput::new(path.clone(), *baud, *channel)),
        O::ModbusTcp { addr, modbus } => {
            Arc::new(modbus::ModbusOutput::tcp(addr.clone(), modbus.clone()))
        }
        O::ModbusRtu { path, baud, modbus } => Arc::new(modbus::ModbusOutput::rtu(
            path.clone(),
            *baud,
            modbus.clone(),
        )),
    })
}
