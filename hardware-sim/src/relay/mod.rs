//! Gate relay boards (PROTOCOLS.md §4): what the server's gate output
//! drivers pulse.
//!
//! - [`LcusRelaySim`]: an LCUS serial relay board on a pseudo-terminal, with
//!   a stable symlink as udev gives a USB adapter. Decodes `A0 ch op sum`
//!   commands and answers the status query `FF` with `CHn:ON|OFF` lines,
//!   all through `bondgate_protocol::relay`.
//! - [`ModbusRelaySim`]: a Modbus relay board on TCP
//!   ([`ModbusRelaySim::start_tcp`]) or RTU on a pseudo-terminal
//!   ([`ModbusRelaySim::start_rtu`]): FC05 write coil (`FF00`/`0000`, and
//!   "flash on" at `0x0200 + coil` which the board times itself), FC01
//!   read coils, exceptions for anything else, all through
//!   `bondgate_protocol::relay::modbus`.
//!
//! Both record every pulse ([`RelayPulse`]: which relay, when it went on
//! and off, and so its measured length) and take faults through their
//! [`RelayControl`]: [`RelayFault::Silent`] (a board that hears nothing and
//! answers nothing), [`RelayFault::Garbage`] (switches, but answers noise),
//! and [`RelayControl::unplug`] / [`RelayControl::replug`] (the pty and its
//! link vanish; the TCP port refuses connections).

mod board;
mod lcus;
mod modbus;
mod serial;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use board::{RelayFault, RelayPulse};
pub use lcus::LcusRelaySim;
pub use modbus::ModbusRelaySim;

use board::Shared;

/// Relays on a board unless configured: the common LCUS-4 / 4-coil board.
pub const RELAYS_DEFAULT: u16 = 4;
/// Most relays a simulated board has. Real boards have up to 32 coils; 64
/// bounds what a test can make the simulator hold.
pub const RELAYS_MAX: u16 = 64;
/// Most pulses kept for inspection; older ones are dropped. A test pulses a
/// handful of times; 10 000 bounds a long CLI session.
pub const PULSES_KEPT_MAX: usize = 10_000;
/// Control requests queued for the device task. A test sends one at a time.
const ACTION_QUEUE_DEPTH: usize = 8;

/// How to run a simulated relay board.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// How many relays (LCUS channels 1..=n, Modbus coils 0..n).
    pub relays: u16,
    /// Modbus: the unit id the board answers to (others are ignored, as on
    /// a shared RS-485 line).
    pub unit: u8,
    /// Serial boards: a symlink kept pointing at the current pty (removed
    /// on unplug and shutdown). Open this, not the pty, across replugs.
    pub link: Option<PathBuf>,
}

impl Default for RelayOptions {
    fn default() -> RelayOptions {
        RelayOptions {
            relays: RELAYS_DEFAULT,
            unit: 1,
            link: None,
        }
    }
}

/// Why the simulator could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RelaySimError {
    /// The pseudo-terminal pair could not be created.
    #[error("cannot create a pseudo-terminal: {0}")]
    Pty(#[from] tokio_serial::Error),
    /// The pty has no name to open it by.
    #[error("the pseudo-terminal has no path")]
    NoPath,
    /// The symlink could not be made, or the port not bound.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Options out of bounds.
    #[error("bad relay options: {0}")]
    Options(String),
    /// The simulator has stopped.
    #[error("the relay simulator has stopped")]
    Stopped,
}

impl RelayOptions {
    fn check(&self) -> Result<(), RelaySimError> {
        if self.relays == 0 || self.relays > RELAYS_MAX {
            return Err(RelaySimError::Options(format!(
                "relays must be 1..={RELAYS_MAX}"
            )));
        }
        Ok(())
    }
}

/// What only the device task can do.
#[derive(Debug)]
enum Action {
    Unplug(oneshot::Sender<()>),
    Replug(oneshot::Sender<Result<(), RelaySimError>>),
    Stop(oneshot::Sender<()>),
}

/// What both boards hold while they run: the control handle, the device
/// task, and the serial link (if any). Dropping it aborts the task and
/// removes the link; [`BoardTask::shutdown`] stops the task and waits.
#[derive(Debug)]
struct BoardTask {
    control: RelayControl,
    task: Option<JoinHandle<()>>,
    link: Option<PathBuf>,
}

impl BoardTask {
    /// The path to open: the link if configured, else the current `pty`.
    fn path(&self, pty: &std::sync::Mutex<Option<PathBuf>>) -> Option<PathBuf> {
        self.link
            .clone()
            .or_else(|| pty.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    async fn shutdown(mut self) {
        self.control.stop().await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for BoardTask {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            if let Some(link) = &self.link {
                let _ = std::fs::remove_file(link);
            }
        }
    }
}

/// Drives a running relay simulator and reads what it saw. Cloneable.
#[derive(Debug, Clone)]
pub struct RelayControl {
    tx: mpsc::Sender<Action>,
    shared: Arc<Shared>,
}

impl RelayControl {
    /// Every pulse so far (oldest first; at most [`PULSES_KEPT_MAX`]). A
    /// pulse still on has no `off_at`.
    pub fn pulses(&self) -> Vec<RelayPulse> {
        self.shared.board().pulses.iter().cloned().collect()
    }

    /// Waits until at least `n` pulses have ended (relay off again), up to
    /// `timeout`; returns all pulses seen either way.
    pub async fn wait_pulses(&self, n: usize, timeout: Duration) -> Vec<RelayPulse> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pulses = self.pulses();
            let done = pulses.iter().filter(|p| p.off_at.is_some()).count();
            if done >= n || tokio::time::Instant::now() >= deadline {
                return pulses;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The relays now (index 0 is LCUS channel 1 / Modbus coil 0).
    pub fn relays(&self) -> Vec<bool> {
        self.shared.board().relays.clone()
    }

    /// Requests received and decoded (commands, status queries, Modbus
    /// requests), whatever the fault.
    pub fn requests(&self) -> u64 {
        self.shared.board().requests
    }

    /// Sets how the board misbehaves from now on.
    pub fn set_fault(&self, fault: RelayFault) {
        self.shared.board().fault = fault;
    }

    /// Pulls the cable: the pty (and link) vanish, or the TCP port closes
    /// and drops its connections. Idempotent.
    pub async fn unplug(&self) -> Result<(), RelaySimError> {
        let (ack, done) = oneshot::channel();
        self.send(Action::Unplug(ack)).await?;
        done.await.map_err(|_| RelaySimError::Stopped)
    }

    /// Plugs back in: a new pty (the link follows it) or the same TCP port
    /// listening again.
    pub async fn replug(&self) -> Result<(), RelaySimError> {
        let (ack, done) = oneshot::channel();
        self.send(Action::Replug(ack)).await?;
        done.await.map_err(|_| RelaySimError::Stopped)?
    }

    async fn stop(&self) {
        let (ack, done) = oneshot::channel();
        if self.send(Action::Stop(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    async fn send(&self, action: Action) -> Result<(), RelaySimError> {
        self.tx
            .send(action)
            .await
            .map_err(|_| RelaySimError::Stopped)
    }
}
