//! The relay the bridge drives, whichever board it is.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::RelayConfig;
use crate::lcus::{Lcus, RelayError};
use crate::modbus::{ModbusTcp, FLASH_GRACE};

/// How often a flash pulse's coil is read after its length, until off.
const FLASH_POLL: Duration = Duration::from_millis(50);

/// One relay board.
#[derive(Debug)]
pub enum Relay {
    /// An LCUS serial board.
    Lcus(Lcus),
    /// A Modbus TCP board.
    ModbusTcp(ModbusTcp),
}

impl Relay {
    /// The relay the configuration names (nothing opened yet).
    pub fn from_config(config: &RelayConfig) -> Relay {
        match config.clone() {
            RelayConfig::Lcus {
                path,
                channel,
                baud,
            } => Relay::Lcus(Lcus::new(path, baud, channel)),
            RelayConfig::ModbusTcp {
                addr,
                unit,
                coil,
                flash,
            } => Relay::ModbusTcp(ModbusTcp::new(addr, unit, coil, flash)),
        }
    }

    /// The relay and where it is, for logs.
    pub fn describe(&self) -> String {
        match self {
            Relay::Lcus(r) => r.describe(),
            Relay::ModbusTcp(r) => r.describe(),
        }
    }

    async fn set(&mut self, on: bool, pulse_ms: u32) -> Result<(), RelayError> {
        match self {
            Relay::Lcus(r) => r.set(on).await,
            Relay::ModbusTcp(r) => r.set(on, pulse_ms).await,
        }
    }

    /// Reads the relay back: `true` when energised.
    pub async fn read(&mut self) -> Result<bool, RelayError> {
        match self {
            Relay::Lcus(r) => r.read().await,
            Relay::ModbusTcp(r) => r.read().await,
        }
    }

    /// Energises the relay for a pulse of `pulse_ms` (a self-timed flash on
    /// a board configured for it).
    pub async fn on(&mut self, pulse_ms: u32) -> Result<(), RelayError> {
        self.set(true, pulse_ms).await
    }

    /// Drives the relay off, best effort (after a failure).
    pub async fn off(&mut self) -> Result<(), RelayError> {
        self.set(false, 0).await
    }

    /// Drives the relay off and reads it back off (at start).
    pub async fn release(&mut self) -> Result<(), RelayError> {
        self.set(false, 0).await?;
        match self.read().await? {
            false => Ok(()),
            true => Err(RelayError::ReadBack("still on after off".into())),
        }
    }

    /// Ends a pulse whose length has passed: off and read back off; a
    /// flashing board switches off by itself and is read until it has.
    pub async fn finish(&mut self) -> Result<(), RelayError> {
        let flash = matches!(self, Relay::ModbusTcp(r) if r.flash());
        if !flash {
            return self.release().await;
        }
        let deadline = Instant::now() + FLASH_GRACE;
        loop {
            if !self.read().await? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = self.off().await;
                return Err(RelayError::ReadBack(
                    "still on after its flash pulse".into(),
                ));
            }
            tokio::time::sleep(FLASH_POLL).await;
        }
    }
}
