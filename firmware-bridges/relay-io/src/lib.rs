//! Relay boards that pulse a barrier controller's "open" input
//! (PROTOCOLS.md §4): an LCUS serial board ([`lcus::LcusOutput`]) and a
//! Modbus TCP/RTU coil ([`modbus::ModbusOutput`]), moved out of the server
//! so the edge bridges can share them. The frames are
//! `bondgate_protocol::relay`'s; this crate is the device I/O.
//!
//! A driver sends only **self-timed open pulses** and confirms each from the
//! device's own read-back (a relay board's status answer, a Modbus coil
//! read). No answer, a wrong answer or a dead link is an [`OutputFault`].
//! Every pulse and probe runs in a task of its own, so a pulse ends with
//! "off" even if its caller gives up.

pub mod device;
pub mod lcus;
pub mod modbus;

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bondgate_protocol::{CommandId, PulseMs};

/// One open pulse for one gate decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulse {
    /// The decision's id: increasing, so usable as the command `seq`.
    pub seq: u64,
    /// Unique per command; a bridge executes an id at most once.
    pub id: CommandId,
    /// How long the relay stays energised.
    pub pulse_ms: PulseMs,
    /// Unix milliseconds after which the pulse must not be started.
    pub expires_at: i64,
}

impl Pulse {
    /// The pulse length as a duration.
    pub fn length(&self) -> Duration {
        Duration::from_millis(u64::from(self.pulse_ms.get()))
    }
}

/// What a driver saw when it confirmed a pulse, for the decision's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// e.g. "relay read back on, then off" or "bridge state open (seq 42)".
    pub detail: String,
}

/// The relay as last read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayState {
    /// Not energised: the barrier controller's open input is idle.
    Off,
    /// Energised (a pulse in progress).
    On,
}

/// Why a pulse did not happen or could not be confirmed. The gate counts
/// as closed and the guard is shown this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputFault {
    #[error("the gate output did not answer within {0} ms")]
    Timeout(u64),
    #[error("the gate output is not connected: {0}")]
    Offline(String),
    #[error("the relay read back {0}")]
    ReadBack(String),
    #[error("the gate reported a fault: {0}")]
    Reported(String),
    #[error("the open command expired before it could be sent")]
    Expired,
    #[error("the gate output failed: {0}")]
    Io(String),
}

/// Which coil of which Modbus unit, and how it is pulsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModbusCoil {
    /// The slave / unit id, 1..=247.
    pub unit: u8,
    /// The coil address (0-based).
    pub coil: u16,
    /// The board times the pulse itself ("flash on", FC05 at 0x0200 + coil
    /// with the length in 100 ms units), so a caller that dies mid-pulse
    /// cannot leave the relay on. Otherwise the driver writes on, then off.
    pub flash: bool,
}

/// A relay driver: [`lcus::LcusOutput`] or [`modbus::ModbusOutput`].
pub trait RelayOutput: Send + Sync {
    /// `lcus` or `modbus`, for status screens and logs.
    fn kind(&self) -> &'static str;

    /// Sends one self-timed open pulse and confirms it from the device's
    /// read-back. Does not start the pulse once `pulse.expires_at` has
    /// passed, and returns (with a fault) rather than hang: every device
    /// call is under [`device::IO_TIMEOUT`]. The I/O runs in its own task:
    /// dropping the future does not stop a pulse before its "off".
    fn pulse(
        &self,
        pulse: &Pulse,
    ) -> impl Future<Output = Result<Confirmation, OutputFault>> + Send;

    /// [`RelayOutput::pulse`], also sending on `opened` the moment the
    /// relay has read back on — before the pulse ends — so a gate bridge
    /// can report `open` while the barrier opens and `closed` once it is
    /// off again. Nothing is sent if the relay never read back on.
    fn pulse_reporting(
        &self,
        pulse: &Pulse,
        opened: Opened,
    ) -> impl Future<Output = Result<Confirmation, OutputFault>> + Send;

    /// Ends a pulse in progress now rather than at its length (off, then
    /// read back, as at the end of any pulse; its confirmation says so).
    /// For a bridge told to stop mid-pulse: an early off is always safe.
    fn cut_short(&self);

    /// Reads the relay state back without changing it. A connection opened
    /// for it (the first call, or the first after a failure) first drives
    /// the relay off, so a probe at start releases a relay a crash left on.
    fn probe(&self) -> impl Future<Output = Result<RelayState, OutputFault>> + Send;
}

/// Told once when a pulse's relay has read back on.
pub type Opened = tokio::sync::oneshot::Sender<()>;

/// Unix milliseconds now.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
