//! Modbus relay coils (PROTOCOLS.md §4). Placeholder until the relay
//! driver lands: every pulse is a fault, so the gate stays shut.

use std::path::PathBuf;

use super::{Confirmation, GateOutput, OutputFault, Pulse, RelayState};
use crate::mqtt::BoxFuture;

pub struct ModbusOutput;

impl ModbusOutput {
    pub fn tcp(_addr: String, _coil: crate::config::ModbusCoil) -> ModbusOutput {
        ModbusOutput
    }
    pub fn rtu(_path: PathBuf, _baud: u32, _coil: crate::config::ModbusCoil) -> ModbusOutput {
        ModbusOutput
    }
}

impl GateOutput for ModbusOutput {
    fn kind(&self) -> &'static str {
        "modbus"
    }
    fn pulse<'a>(&'a self, _p: &'a Pulse) -> BoxFuture<'a, Result<Confirmation, OutputFault>> {
        Box::pin(async { Err(OutputFault::Offline("Modbus driver not built".into())) })
    }
    fn probe(&self) -> BoxFuture<'_, Result<RelayState, OutputFault>> {
        Box::pin(async { Err(OutputFault::Offline("Modbus driver not built".into())) })
    }
}
