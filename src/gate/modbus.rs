//! Modbus TCP/RTU relay boards: the driver is `bondgate_relay_io::modbus`
//! (shared with the edge bridges); here it is a [`GateOutput`].

pub use bondgate_relay_io::modbus::ModbusOutput;
use bondgate_relay_io::RelayOutput;

use super::{Confirmation, GateOutput, OutputFault, Pulse, RelayState};
use crate::mqtt::BoxFuture;

impl GateOutput for ModbusOutput {
    fn kind(&self) -> &'static str {
        RelayOutput::kind(self)
    }

    fn pulse<'a>(&'a self, pulse: &'a Pulse) -> BoxFuture<'a, Result<Confirmation, OutputFault>> {
        Box::pin(RelayOutput::pulse(self, pulse))
    }

    fn probe(&self) -> BoxFuture<'_, Result<RelayState, OutputFault>> {
        Box::pin(RelayOutput::probe(self))
    }
}
