//! The relay the bridge drives, whichever board it is: `bondgate-relay-io`'s
//! drivers, the same the server uses for a relay on its own ports, so each
//! board's frames, read-backs and "off first on every new connection" exist
//! once.

use bondgate_relay_io::lcus::LcusOutput;
use bondgate_relay_io::modbus::ModbusOutput;
pub use bondgate_relay_io::RelayState;
use bondgate_relay_io::{Confirmation, ModbusCoil, Opened, OutputFault, Pulse, RelayOutput};

use crate::config::RelayConfig;

/// One relay board.
pub enum Relay {
    /// An LCUS serial board.
    Lcus(LcusOutput),
    /// A Modbus board, TCP or RTU.
    Modbus(ModbusOutput),
}

impl Relay {
    /// The relay the configuration names (nothing opened yet).
    pub fn from_config(config: &RelayConfig) -> Relay {
        match config.clone() {
            RelayConfig::Lcus {
                path,
                channel,
                baud,
            } => Relay::Lcus(LcusOutput::new(path, baud, channel)),
            RelayConfig::ModbusTcp {
                addr,
                unit,
                coil,
                flash,
            } => Relay::Modbus(ModbusOutput::tcp(addr, ModbusCoil { unit, coil, flash })),
            RelayConfig::ModbusRtu {
                path,
                baud,
                unit,
                coil,
                flash,
            } => Relay::Modbus(ModbusOutput::rtu(
                path,
                baud,
                ModbusCoil { unit, coil, flash },
            )),
        }
    }

    /// One self-timed pulse, confirmed by read-back; `opened` is told when
    /// the relay read back on.
    pub async fn pulse(&self, pulse: &Pulse, opened: Opened) -> Result<Confirmation, OutputFault> {
        match self {
            Relay::Lcus(r) => r.pulse_reporting(pulse, opened).await,
            Relay::Modbus(r) => r.pulse_reporting(pulse, opened).await,
        }
    }

    /// Reads the relay back; a new connection (at start, after a failure)
    /// first drives it off.
    pub async fn probe(&self) -> Result<RelayState, OutputFault> {
        match self {
            Relay::Lcus(r) => r.probe().await,
            Relay::Modbus(r) => r.probe().await,
        }
    }

    /// Ends a pulse in progress now (off, read back).
    pub fn cut_short(&self) {
        match self {
            Relay::Lcus(r) => r.cut_short(),
            Relay::Modbus(r) => r.cut_short(),
        }
    }
}
