//! A serial scale on a pseudo-terminal (PROTOCOLS.md §1 and §6).
//!
//! [`ScaleSim`] owns the master side of a pty pair and hands out the path of
//! the other side (`/dev/pts/N`, or a stable symlink to it — see
//! [`ScaleOptions::link`]). The server opens that path exactly as it opens
//! `/dev/ttyUSB0` in production, with `tokio_serial::new(path, baud)
//! .open_native_async()`, and may close and reopen it at will. Every byte
//! sent comes from `bondgate_protocol::scale` — [`encode_reading`] for the
//! streamed formats, [`mtsics_answer`] for MT-SICS — so the simulator cannot
//! drift from what the server decodes.
//!
//! [`encode_reading`]: bondgate_protocol::scale::encode_reading
//! [`mtsics_answer`]: bondgate_protocol::scale::mtsics_answer
//!
//! - **Streamed protocols** (`ascii`, `toledo-continuous`, `yaohua-a9`,
//!   `yaohua-a9-eq`) send one frame every [`ScaleOptions::interval`] while
//!   the port is open. While nobody has it open, nothing is sent (as a USB
//!   adapter whose port is closed drops what the scale sends), so a reader
//!   never starts with a backlog of stale readings.
//! - **MT-SICS** answers each command line: `S` waits up to
//!   [`ScaleOptions::stable_timeout`] for stability, then `S S …` (or `S I`);
//!   `SI` answers at once with `S S`/`S D`; `Z`, `T`, `@` as a scale does;
//!   anything else `ES`.
//!
//! The [`ScaleControl`] handle (cloneable, usable while the simulator runs)
//! plays the packer and the cable: [`ScaleControl::set_weight`] puts a
//! parcel on (motion for [`ScaleOptions::settle`], then stable),
//! [`ScaleControl::overload`], [`ScaleControl::garbage`],
//! [`ScaleControl::unplug`] and [`ScaleControl::replug`].
//!
//! **Unplug** closes the master side, which is what the kernel does when a
//! USB serial adapter vanishes: the reader's open port is hung up — reads
//! return `Ok(0)` (end of file) at once and forever, writes fail with `EIO` —
//! the `/dev/pts/N` node disappears, and the symlink (like
//! `/dev/serial/by-id/…` under udev) is removed, so reopening fails with
//! "not found" until [`ScaleControl::replug`] creates a new pair and points
//! the symlink at it. The new pty may get another number: open the link.

mod device;
mod physics;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bondgate_protocol::scale::{Range, ScaleProtocol};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use physics::Pan;
pub use physics::WOBBLE_GRAMS;

/// How often a streamed protocol sends a frame unless configured: 10 per
/// second, about what indicators send at 9600 baud with display filtering.
pub const INTERVAL_DEFAULT: Duration = Duration::from_millis(100);
/// How long a parcel takes to settle unless configured: a typical platform.
pub const SETTLE_DEFAULT: Duration = Duration::from_millis(400);
/// How long MT-SICS `S` waits for stability before `S I`, unless configured.
/// Mettler Toledo balances give up after a few seconds; 3 s.
pub const STABLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(3);
/// Fewest milliseconds between streamed frames: below this a pty pair with
/// a slow reader only fills its buffer.
pub const INTERVAL_MIN: Duration = Duration::from_millis(5);
/// Largest garbage injection, bytes: more than any frame, far less than a
/// pty's buffer, so an injection never blocks the simulator.
pub const GARBAGE_BYTES_MAX: usize = 4096;
/// Control requests queued for the device task (unplug, replug, garbage,
/// stop). A test or a person sends one at a time and waits for it.
const ACTION_QUEUE_DEPTH: usize = 8;

/// How to run a simulated scale.
#[derive(Debug, Clone)]
pub struct ScaleOptions {
    /// The wire format.
    pub protocol: ScaleProtocol,
    /// Gross weight on the pan at start, grams (already settled).
    pub grams: i64,
    /// Streamed protocols: time between frames (at least [`INTERVAL_MIN`]).
    pub interval: Duration,
    /// How long readings stay in motion after [`ScaleControl::set_weight`].
    pub settle: Duration,
    /// MT-SICS: how long `S` waits for stability before answering `S I`.
    pub stable_timeout: Duration,
    /// MT-SICS: the serial number `@` answers with.
    pub serial: String,
    /// If set, a symlink kept pointing at the current pty (replaced if it
    /// exists, removed on unplug and on shutdown), the way udev keeps
    /// `/dev/serial/by-id/…` for a USB adapter. Open this rather than the
    /// pty when the test unplugs and replugs: the pty number may change.
    pub link: Option<PathBuf>,
}

impl ScaleOptions {
    /// Defaults: empty pan, [`INTERVAL_DEFAULT`], [`SETTLE_DEFAULT`],
    /// [`STABLE_TIMEOUT_DEFAULT`], serial `B207696838`, no link.
    pub fn new(protocol: ScaleProtocol) -> ScaleOptions {
        ScaleOptions {
            protocol,
            grams: 0,
            interval: INTERVAL_DEFAULT,
            settle: SETTLE_DEFAULT,
            stable_timeout: STABLE_TIMEOUT_DEFAULT,
            serial: "B207696838".to_owned(),
            link: None,
        }
    }
}

/// Why the simulator could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ScaleSimError {
    /// The pseudo-terminal pair could not be created.
    #[error("cannot create a pseudo-terminal: {0}")]
    Pty(#[from] tokio_serial::Error),
    /// The pty has no name to open it by.
    #[error("the pseudo-terminal has no path")]
    NoPath,
    /// The symlink could not be made or replaced.
    #[error("cannot link {path} to the pty: {source}")]
    Link {
        /// The link.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Options out of bounds.
    #[error("bad scale options: {0}")]
    Options(String),
    /// The simulator has stopped.
    #[error("the scale simulator has stopped")]
    Stopped,
}

/// Counters, for tests and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScaleStats {
    /// Streamed frames written (MT-SICS: replies written).
    pub frames_sent: u64,
    /// Frames not written because the reader stopped reading and the pty
    /// buffer stayed full.
    pub frames_dropped: u64,
    /// MT-SICS command lines received.
    pub commands_received: u64,
    /// Whether the device is plugged in.
    pub plugged: bool,
    /// Whether someone has the port open (as far as the last probe saw).
    pub listening: bool,
}

/// What the device task shares with the handles.
#[derive(Debug)]
struct Shared {
    pan: Mutex<Pan>,
    /// The pty path while plugged in.
    pty: Mutex<Option<PathBuf>>,
    frames_sent: AtomicU64,
    frames_dropped: AtomicU64,
    commands_received: AtomicU64,
    listening: AtomicBool,
}

impl Shared {
    /// The pan; a poisoned lock (a panic elsewhere) still gives the state.
    fn pan(&self) -> MutexGuard<'_, Pan> {
        self.pan.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pty(&self) -> MutexGuard<'_, Option<PathBuf>> {
        self.pty.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What only the device task can do.
#[derive(Debug)]
enum Action {
    Unplug(oneshot::Sender<()>),
    Replug(oneshot::Sender<Result<PathBuf, ScaleSimError>>),
    Garbage(Vec<u8>, oneshot::Sender<bool>),
    Stop(oneshot::Sender<()>),
}

/// A running simulated scale. Dropping it stops the device task (the pty
/// closes, like [`ScaleControl::unplug`]); [`ScaleSim::shutdown`] also waits
/// for that and removes the symlink.
#[derive(Debug)]
pub struct ScaleSim {
    control: ScaleControl,
    task: Option<JoinHandle<()>>,
}

impl ScaleSim {
    /// Creates the pty pair (and the link) and starts sending.
    pub async fn start(options: ScaleOptions) -> Result<ScaleSim, ScaleSimError> {
        if options.interval < INTERVAL_MIN {
            return Err(ScaleSimError::Options(format!(
                "interval must be at least {} ms",
                INTERVAL_MIN.as_millis()
            )));
        }
        let now = Instant::now();
        let shared = Arc::new(Shared {
            pan: Mutex::new(Pan::new(options.grams, options.settle, now)),
            pty: Mutex::new(None),
            frames_sent: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            commands_received: AtomicU64::new(0),
            listening: AtomicBool::new(false),
        });
        let plug = device::Plug::new(&options)?;
        *shared.pty() = Some(plug.pty_path().to_owned());
        let (tx, rx) = mpsc::channel(ACTION_QUEUE_DEPTH);
        let control = ScaleControl {
            tx,
            shared: Arc::clone(&shared),
            link: options.link.clone(),
            protocol: options.protocol,
        };
        let task = tokio::spawn(device::run(options, plug, shared, rx));
        Ok(ScaleSim {
            control,
            task: Some(task),
        })
    }

    /// The path to open: the link if configured, else the current pty.
    /// `None` while unplugged without a link.
    pub fn path(&self) -> Option<PathBuf> {
        self.control.path()
    }

    /// A handle to drive the scale while it runs.
    pub fn control(&self) -> ScaleControl {
        self.control.clone()
    }

    /// Stops the device (closing the pty), removes the link, and waits.
    pub async fn shutdown(mut self) {
        let (ack, done) = oneshot::channel();
        if self.control.tx.send(Action::Stop(ack)).await.is_ok() {
            let _ = done.await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ScaleSim {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            if let Some(link) = &self.control.link {
                let _ = std::fs::remove_file(link);
            }
        }
    }
}

/// Drives a running [`ScaleSim`]: the packer's hands and the cable.
/// Weight changes take effect at once (the next frame or answer shows them);
/// unplug, replug and garbage wait until the device task has done them.
#[derive(Debug, Clone)]
pub struct ScaleControl {
    tx: mpsc::Sender<Action>,
    shared: Arc<Shared>,
    link: Option<PathBuf>,
    protocol: ScaleProtocol,
}

impl ScaleControl {
    /// The protocol spoken.
    pub fn protocol(&self) -> ScaleProtocol {
        self.protocol
    }

    /// The path to open: the link if configured, else the current pty.
    pub fn path(&self) -> Option<PathBuf> {
        self.link.clone().or_else(|| self.pty_path())
    }

    /// The current pty (`/dev/pts/N`), `None` while unplugged.
    pub fn pty_path(&self) -> Option<PathBuf> {
        self.shared.pty().clone()
    }

    /// Puts `grams` (gross) on the pan, as a packer puts a parcel down:
    /// readings are in motion for the settle time, walking from the old
    /// weight to the new one, then stable at exactly `grams` (less zero and
    /// tare). Clears overload and underload.
    pub fn set_weight(&self, grams: i64) {
        self.shared.pan().set_weight(grams, Instant::now());
    }

    /// Forces motion on or off (someone leaning on the platform).
    pub fn set_motion(&self, on: bool) {
        self.shared.pan().set_motion(on);
    }

    /// Over capacity until the next [`ScaleControl::set_weight`].
    pub fn overload(&self) {
        self.shared.pan().set_range(Range::Overload);
    }

    /// Under zero beyond range until the next [`ScaleControl::set_weight`].
    pub fn underload(&self) {
        self.shared.pan().set_range(Range::Underload);
    }

    /// Writes raw bytes (at most [`GARBAGE_BYTES_MAX`]) between frames, as
    /// line noise would. Returns whether they reached an open port (nobody
    /// listening, or unplugged: dropped).
    pub async fn garbage(&self, bytes: &[u8]) -> Result<bool, ScaleSimError> {
        if bytes.len() > GARBAGE_BYTES_MAX {
            return Err(ScaleSimError::Options(format!(
                "at most {GARBAGE_BYTES_MAX} bytes of garbage at once"
            )));
        }
        let (ack, done) = oneshot::channel();
        self.send(Action::Garbage(bytes.to_vec(), ack)).await?;
        done.await.map_err(|_| ScaleSimError::Stopped)
    }

    /// Pulls the cable: closes the pty (see the module notes for what the
    /// reader sees). Idempotent.
    pub async fn unplug(&self) -> Result<(), ScaleSimError> {
        let (ack, done) = oneshot::channel();
        self.send(Action::Unplug(ack)).await?;
        done.await.map_err(|_| ScaleSimError::Stopped)
    }

    /// Plugs back in: a new pty pair (and link). Returns the new pty path.
    /// When already plugged in, returns the current one.
    pub async fn replug(&self) -> Result<PathBuf, ScaleSimError> {
        let (ack, done) = oneshot::channel();
        self.send(Action::Replug(ack)).await?;
        done.await.map_err(|_| ScaleSimError::Stopped)?
    }

    /// The counters now.
    pub fn stats(&self) -> ScaleStats {
        let s = &self.shared;
        ScaleStats {
            frames_sent: s.frames_sent.load(Ordering::Relaxed),
            frames_dropped: s.frames_dropped.load(Ordering::Relaxed),
            commands_received: s.commands_received.load(Ordering::Relaxed),
            plugged: s.pty().is_some(),
            listening: s.listening.load(Ordering::Relaxed),
        }
    }

    async fn send(&self, action: Action) -> Result<(), ScaleSimError> {
        self.tx
            .send(action)
            .await
            .map_err(|_| ScaleSimError::Stopped)
    }
}

/// Replaces `link` with a symlink to `target`.
fn relink(link: &Path, target: &Path) -> Result<(), ScaleSimError> {
    crate::pty::relink(link, target).map_err(|source| ScaleSimError::Link {
        path: link.to_owned(),
        source,
    })
}
