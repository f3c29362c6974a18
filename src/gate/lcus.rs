//! LCUS serial relay boards (PROTOCOLS.md §4). Placeholder until the relay
//! driver lands: every pulse is a fault, so the gate stays shut.

use std::path::PathBuf;

use super::{Confirmation, GateOutput, OutputFault, Pulse, RelayState};
use crate::mqtt::BoxFuture;

pub struct LcusOutput;

impl LcusOutput {
    pub fn new(_path: PathBuf, _baud: u32, _channel: u8) -> LcusOutput {
        LcusOutput
    }
}

impl GateOutput for LcusOutput {
    fn kind(&self) -> &'static str {
        "lcus"
    }
    fn pulse<'a>(&'a self, _p: &'a Pulse) -> BoxFuture<'a, Result<Confirmation, OutputFault>> {
        Box::pin(async { Err(OutputFault::Offline("LCUS driver not built".into())) })
    }
    fn probe(&self) -> BoxFuture<'_, Result<RelayState, OutputFault>> {
        Box::pin(async { Err(OutputFault::Offline("LCUS driver not built".into())) })
    }
}
