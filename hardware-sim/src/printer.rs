//! A label printer speaking ESC/POS (PROTOCOLS.md §2), on raw TCP (port
//! 9100) or on a serial port (a pseudo-terminal).
//!
//! [`PrinterSim::start`] listens like a networked thermal printer: whoever
//! connects sends ESC/POS bytes. [`PrinterSim::start_serial`] is the same
//! printer on a serial cable: it keeps the master side of a pty pair and
//! hands out the other side's path ([`PrinterSim::path`]: `/dev/pts/N`, or a
//! stable symlink, [`SerialPrinterOptions::link`]), which the server opens
//! as it opens `/dev/ttyUSB0`, with `tokio_serial::new(path, baud)
//! .open_native_async()`, once per job. Each time the port is opened is one
//! session, exactly as one TCP connection is: the same code decodes it and
//! answers it (only the idle timeout is TCP's alone). Either way the bytes
//! go through `bondgate_protocol::escpos::Decoder`
//! — the same decoder the label tests use — and each cut becomes one
//! [`PrintedLabel`]: its text lines decoded from GB18030, its barcodes and
//! QR codes with the data a scanner would read, and the raw bytes.
//! `DLE EOT n` is answered at once with the status byte of the printer's
//! current state, as a real printer answers real-time requests even while
//! off-line.
//!
//! The test controls what a pack station meets on a bad day:
//! - [`PrinterSim::go_offline`]: the printer is switched off. On TCP the
//!   port is closed (connecting is refused) and open connections are
//!   dropped (a sender sees a reset or end of stream);
//!   [`PrinterSim::come_online`] listens again on the **same** port, as the
//!   printer would after a power cycle with a fixed IP. On a serial port it
//!   is an unplugged USB cable, as [`ScaleControl::unplug`] is: the pty's
//!   master closes, so a port held open is hung up (reads return `Ok(0)`,
//!   end of file, at once and forever; writes fail with `EIO`), the
//!   `/dev/pts/N` node and the link vanish and opening fails with "not
//!   found"; [`PrinterSim::come_online`] plugs a new pty in (its number may
//!   differ: open the link) and points the link at it.
//! - [`PrinterSim::set_paper_out`]: the roll runs out. The status then says
//!   so (`DLE EOT 1` off-line, `DLE EOT 2` stopped at paper end, `DLE EOT 4`
//!   paper end), which is how a server must find out *before* sending. A job
//!   sent anyway is **held, not printed and not discarded**: that is what an
//!   Epson-style printer does (it goes off-line, keeps what it received in
//!   its buffer, and prints it once paper is loaded). So the held labels are
//!   printed when the paper comes back ([`PrinterSim::held`] counts them). A
//!   real printer's buffer is a few kilobytes and then stops reading; here
//!   at most [`HELD_LABELS_MAX`] labels are held, after which the connection
//!   stops reading too (the sender's writes block on TCP backpressure).
//!
//! Text before `ESC @` is decoded with Chinese mode off, and `ESC @` turns
//! it off again: a sender must send `FS &` after initialising, or its
//! Chinese prints as `?` here. Real printers may keep the mode across
//! `ESC @` (unverified); the simulator is strict so the server is explicit.
//! Text that is never followed by a cut (the connection closes first, or
//! the serial port is closed first) is not a label and is dropped, with a
//! warning in the log. (A real serial printer never sees the port close and
//! would keep it in its buffer — until the next job's `ESC @` clears it.)
//!
//! No PNG rendering: [`PrintedLabel::render`] is plain text, which is what
//! snapshot tests want; drawing the barcodes would need an image and a
//! barcode crate for little gain.
//!
//! [`ScaleControl::unplug`]: crate::ScaleControl::unplug

use std::fmt::Write as _;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bondgate_protocol::escpos::{
    encode_reply, Decoder, EscPosCommand, PrinterStatus, QrCommand, StatusRequest,
};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::MissedTickBehavior;
use tokio_serial::SerialStream;

/// The port networked label printers listen on ("raw" / JetDirect).
pub const PORT_DEFAULT: u16 = 9100;

/// Connections served at once. A real printer serves one and leaves the
/// rest in the listen backlog; four lets a test open a status connection
/// beside a print job without the simulator hiding a server that never
/// closes its sockets.
pub const CONNECTIONS_MAX: usize = 4;

/// A connection that sends nothing for this long is closed, as printers do
/// to free their single job slot from a sender that died.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a serial printer looks for a reader while nobody has the port
/// open (as the scale does): a server that opens the port and asks for the
/// status gets its answer within this.
pub const SERIAL_PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// Labels kept while the paper is out, before the printer stops reading.
pub const HELD_LABELS_MAX: usize = 32;

/// Raw bytes kept per label: far above a label (about 2 KiB), and bounded
/// so a sender that never cuts cannot grow the simulator's memory.
pub const RAW_BYTES_MAX: usize = 256 * 1024;

/// Bytes of text kept per line, for the same reason.
const LINE_BYTES_MAX: usize = 4096;

/// Lines kept per label.
const LINES_MAX: usize = 1024;

/// One label, as it came out of the printer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrintedLabel {
    /// Text lines, top to bottom, decoded from GB18030 (Chinese mode) or
    /// ASCII (`?` for other bytes); blank lines where paper was fed.
    pub lines: Vec<String>,
    /// 1D barcodes as `(symbology, data)`, e.g. `("CODE128", "SF123")`.
    pub barcodes: Vec<(String, String)>,
    /// The data of each QR code printed.
    pub qr: Vec<String>,
    /// Every byte received for this label, up to and including the cut
    /// (at most [`RAW_BYTES_MAX`]).
    pub raw: Vec<u8>,
    /// What the decoder could not make sense of, in order (should be empty).
    pub errors: Vec<String>,
    /// Everything in paper order, for [`PrintedLabel::render`].
    order: Vec<Element>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    Line(usize),
    Barcode(usize),
    Qr(usize),
}

impl PrintedLabel {
    /// A plain-text picture of the label, top to bottom: text lines as
    /// printed, barcodes as `[CODE128 SF123]`, QR codes as `[QR SF123]`,
    /// trailing blank lines left out. Made for snapshot tests.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for element in &self.order {
            let _ = match *element {
                Element::Line(i) => writeln!(out, "{}", self.lines[i]),
                Element::Barcode(i) => {
                    let (symbology, data) = &self.barcodes[i];
                    writeln!(out, "[{symbology} {data}]")
                }
                Element::Qr(i) => writeln!(out, "[QR {}]", self.qr[i]),
            };
        }
        let kept = out.trim_end_matches('\n').len();
        out.truncate(kept);
        out.push('\n');
        out
    }

    /// Whether any text line contains `text`.
    pub fn has_line_containing(&self, text: &str) -> bool {
        self.lines.iter().any(|line| line.contains(text))
    }

    fn line(&mut self, line: String) {
        if self.lines.len() < LINES_MAX {
            self.order.push(Element::Line(self.lines.len()));
            self.lines.push(line);
        }
    }
}

/// How to run a serial printer ([`PrinterSim::start_serial`]).
#[derive(Debug, Clone, Default)]
pub struct SerialPrinterOptions {
    /// If set, a symlink kept pointing at the current pty (replaced if it
    /// exists, removed while off-line and when the simulator is dropped),
    /// the way udev keeps `/dev/serial/by-id/…` for a USB adapter. Open this
    /// rather than the pty when the test switches the printer off and on:
    /// the pty number may change.
    pub link: Option<PathBuf>,
}

/// Why the simulator could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum PrinterSimError {
    /// The port could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
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
    /// Fewer labels than awaited were printed in time.
    #[error("waited {waited:?} for {wanted} label(s), {printed} printed")]
    Timeout {
        /// How many were awaited.
        wanted: usize,
        /// How many were printed.
        printed: usize,
        /// How long.
        waited: Duration,
    },
}

/// What the control handle and the connections share.
struct Shared {
    state: Mutex<State>,
    /// The number of labels printed; waiters watch it.
    printed: watch::Sender<usize>,
    /// Woken when the paper comes back, for connections that stopped
    /// reading because the held buffer was full.
    paper_loaded: Notify,
    /// One permit per connection served (and one for the accept loop while
    /// it waits): all free means no connection is open.
    slots: Arc<Semaphore>,
}

#[derive(Default)]
struct State {
    status: PrinterStatus,
    labels: Vec<PrintedLabel>,
    held: Vec<PrintedLabel>,
}

impl Shared {
    /// A ready printer: paper in, cover shut, nothing printed.
    fn new() -> Shared {
        Shared {
            state: Mutex::new(State {
                status: PrinterStatus::READY,
                ..State::default()
            }),
            printed: watch::Sender::new(0),
            paper_loaded: Notify::new(),
            slots: Arc::new(Semaphore::new(CONNECTIONS_MAX)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not wedge the printer: the state is plain
        // data and stays consistent between statements.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A label reached its cut: print it, or hold it while paper is out.
    fn cut(&self, label: PrintedLabel) {
        let mut state = self.lock();
        if state.status.paper_out {
            state.held.push(label);
        } else {
            state.labels.push(label);
            self.printed.send_replace(state.labels.len());
        }
    }

    fn held_full(&self) -> bool {
        self.lock().held.len() >= HELD_LABELS_MAX
    }
}

/// A simulated label printer, networked or serial. Dropping it stops it
/// (and removes a serial printer's link).
pub struct PrinterSim {
    port: Port,
    shared: Arc<Shared>,
    /// `Some` while switched on.
    server: Mutex<Option<Server>>,
}

/// The transport, as fixed at start.
enum Port {
    Tcp(SocketAddr),
    Serial { link: Option<PathBuf> },
}

/// A switched-on printer's task: the accept loop, which owns the
/// connections, or the serial loop, which owns the pty master. Aborting it
/// drops them.
struct Server {
    task: JoinHandle<()>,
    /// Serial: the pty's path.
    pty: Option<PathBuf>,
}

impl PrinterSim {
    /// Starts a ready networked printer (paper in, cover shut) listening on
    /// `bind` (port 0 picks a free one: see [`PrinterSim::local_addr`]).
    pub async fn start(bind: SocketAddr) -> Result<PrinterSim, PrinterSimError> {
        let listener = listen(bind).await?;
        let addr = listener
            .local_addr()
            .map_err(|source| PrinterSimError::Bind { addr: bind, source })?;
        let shared = Arc::new(Shared::new());
        let task = tokio::spawn(serve(listener, Arc::clone(&shared)));
        Ok(PrinterSim {
            port: Port::Tcp(addr),
            shared,
            server: Mutex::new(Some(Server { task, pty: None })),
        })
    }

    /// Starts a ready serial printer on a new pseudo-terminal (and points
    /// the link at it, if asked): open [`PrinterSim::path`] to print.
    pub async fn start_serial(
        options: SerialPrinterOptions,
    ) -> Result<PrinterSim, PrinterSimError> {
        let shared = Arc::new(Shared::new());
        let server = plug(options.link.as_deref(), &shared)?;
        Ok(PrinterSim {
            port: Port::Serial { link: options.link },
            shared,
            server: Mutex::new(Some(server)),
        })
    }

    /// Where a networked printer listens (also while off-line: where it
    /// will listen again).
    ///
    /// # Panics
    ///
    /// If the printer is serial ([`PrinterSim::start_serial`]): it has a
    /// [`PrinterSim::path`] instead.
    #[track_caller]
    pub fn local_addr(&self) -> SocketAddr {
        match self.port {
            Port::Tcp(addr) => addr,
            Port::Serial { .. } => panic!("a serial printer has no address: use PrinterSim::path"),
        }
    }

    /// What a serial printer's user opens: the link if configured (also
    /// while off-line, when it does not exist), else the current pty.
    /// `None` for a networked printer, and while off-line without a link.
    pub fn path(&self) -> Option<PathBuf> {
        match &self.port {
            Port::Tcp(_) => None,
            Port::Serial { link: Some(link) } => Some(link.clone()),
            Port::Serial { link: None } => self.pty_path(),
        }
    }

    /// A serial printer's current pty (`/dev/pts/N`); `None` while off-line
    /// and for a networked printer.
    pub fn pty_path(&self) -> Option<PathBuf> {
        lock(&self.server).as_ref().and_then(|s| s.pty.clone())
    }

    /// Every label printed so far, oldest first.
    pub fn labels(&self) -> Vec<PrintedLabel> {
        self.shared.lock().labels.clone()
    }

    /// Labels received while the paper was out, not yet printed.
    pub fn held(&self) -> usize {
        self.shared.lock().held.len()
    }

    /// Waits until at least `n` labels have been printed; returns them all.
    pub async fn wait_for_labels(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<PrintedLabel>, PrinterSimError> {
        let mut printed = self.shared.printed.subscribe();
        let waited = tokio::time::timeout(timeout, printed.wait_for(|&count| count >= n)).await;
        match waited {
            Ok(Ok(_)) => Ok(self.labels()),
            _ => Err(PrinterSimError::Timeout {
                wanted: n,
                printed: self.labels().len(),
                waited: timeout,
            }),
        }
    }

    /// The status it reports.
    pub fn status(&self) -> PrinterStatus {
        self.shared.lock().status
    }

    /// Runs the roll out (`true`) or loads paper (`false`). Out of paper, the
    /// printer is off-line and holds what it receives; loading paper prints
    /// the held labels.
    pub fn set_paper_out(&self, out: bool) {
        let mut state = self.shared.lock();
        state.status.paper_out = out;
        update_online(&mut state.status);
        if !out {
            let held = std::mem::take(&mut state.held);
            state.labels.extend(held);
            self.shared.printed.send_replace(state.labels.len());
            self.shared.paper_loaded.notify_waiters();
        }
    }

    /// The roll is nearly used up: reported by `DLE EOT 4`; printing goes on.
    pub fn set_paper_near_end(&self, near_end: bool) {
        self.shared.lock().status.paper_near_end = near_end;
    }

    /// Opens or shuts the cover: open, the printer is off-line.
    pub fn set_cover_open(&self, open: bool) {
        let mut state = self.shared.lock();
        state.status.cover_open = open;
        update_online(&mut state.status);
    }

    /// Switches the printer off. Networked: the port closes (connections
    /// are refused) and open connections are dropped. Serial: the cable is
    /// pulled — the link is removed and the pty's master closed, so the pty
    /// vanishes and a port held open is hung up (see the module notes).
    /// Returns once all that is true.
    pub async fn go_offline(&self) {
        let server = {
            let mut server = lock(&self.server);
            if let (Some(_), Port::Serial { link: Some(link) }) = (&*server, &self.port) {
                let _ = std::fs::remove_file(link);
            }
            server.take()
        };
        let Some(server) = server else {
            return;
        };
        server.task.abort();
        // Awaiting the aborted task means its listener (or pty master) has
        // been dropped: the port is closed.
        let _ = server.task.await;
        if let Port::Tcp(_) = self.port {
            // Its connections were aborted with it; each holds a slot until
            // its socket is dropped, so all slots free means all closed.
            let all = u32::try_from(CONNECTIONS_MAX).unwrap_or(u32::MAX);
            drop(self.shared.slots.acquire_many(all).await);
        }
    }

    /// Switches it back on: listening on the same address as before, or
    /// plugged in on a new pty (the link, if any, follows it).
    pub async fn come_online(&self) -> Result<(), PrinterSimError> {
        if self.is_listening() {
            return Ok(());
        }
        match &self.port {
            Port::Tcp(addr) => {
                // Bind without holding the lock across the await; a racing
                // call that got there first wins and this listener is
                // dropped.
                let listener = listen(*addr).await?;
                let mut server = lock(&self.server);
                if server.is_none() {
                    let task = tokio::spawn(serve(listener, Arc::clone(&self.shared)));
                    *server = Some(Server { task, pty: None });
                }
            }
            Port::Serial { link } => {
                let mut server = lock(&self.server);
                if server.is_none() {
                    *server = Some(plug(link.as_deref(), &self.shared)?);
                }
            }
        }
        Ok(())
    }

    /// Whether it is switched on (listening, or plugged in).
    pub fn is_listening(&self) -> bool {
        lock(&self.server).is_some()
    }
}

impl Drop for PrinterSim {
    fn drop(&mut self) {
        if let Some(server) = lock(&self.server).take() {
            server.task.abort();
            if let Port::Serial { link: Some(link) } = &self.port {
                let _ = std::fs::remove_file(link);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn update_online(status: &mut PrinterStatus) {
    status.online = !(status.paper_out || status.cover_open || status.error);
}

async fn listen(addr: SocketAddr) -> Result<TcpListener, PrinterSimError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| PrinterSimError::Bind { addr, source })
}

/// Plugs a serial printer in: a new pty pair, the link pointed at it, and
/// the task that serves it.
fn plug(link: Option<&Path>, shared: &Arc<Shared>) -> Result<Server, PrinterSimError> {
    let (master, pty) = crate::pty::pair()?;
    let pty = pty.ok_or(PrinterSimError::NoPath)?;
    if let Some(link) = link {
        crate::pty::relink(link, &pty).map_err(|source| PrinterSimError::Link {
            path: link.to_owned(),
            source,
        })?;
    }
    let task = tokio::spawn(serve_serial(master, Arc::clone(shared)));
    Ok(Server {
        task,
        pty: Some(pty),
    })
}

/// Serves a pty until aborted: waits for someone to open the port, serves
/// that session as one connection until they close it, and waits again.
///
/// Nobody has the port open while reading the master fails (`EIO`); a
/// reader is there once it would block or gives bytes (those are the
/// session's first). The master cannot simply be awaited meanwhile: with
/// nobody on the other side it is always "ready" with `EIO`. So it is
/// probed every [`SERIAL_PROBE_INTERVAL`], as the scale does.
async fn serve_serial(mut master: SerialStream, shared: Arc<Shared>) {
    let mut probe = tokio::time::interval(SERIAL_PROBE_INTERVAL);
    probe.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut first = [0u8; 4096];
    loop {
        probe.tick().await;
        let n = match master.try_read(&mut first) {
            Ok(n) if n > 0 => n,
            Err(error) if error.kind() == ErrorKind::WouldBlock => 0,
            // EIO: nobody has the port open.
            _ => continue,
        };
        // The session ends with EIO when the reader closes the port.
        if let Err(error) = connection(&mut master, &shared, &first[..n], None).await {
            tracing::debug!(%error, "serial printer port closed");
        }
    }
}

/// Accepts connections until aborted; the connections die with it.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        let Ok(slot) = Arc::clone(&shared.slots).acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                let shared = Arc::clone(&shared);
                connections.spawn(async move {
                    let idle = Some(IDLE_TIMEOUT);
                    if let Err(error) = connection(stream, &shared, &[], idle).await {
                        tracing::debug!(%peer, %error, "printer connection ended");
                    }
                    drop(slot);
                });
            }
            Err(error) => {
                tracing::warn!(%error, "printer accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One sender (a TCP connection, or one opening of the serial port): bytes
/// in, status bytes out, labels at each cut. `received` is what was already
/// read off the stream; a sender silent for `idle` is hung up on.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    shared: &Shared,
    received: &[u8],
    idle: Option<Duration>,
) -> std::io::Result<()> {
    let mut job = Job::default();
    let result = session(&mut stream, &mut job, shared, received, idle).await;
    job.end();
    result
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    job: &mut Job,
    shared: &Shared,
    received: &[u8],
    idle: Option<Duration>,
) -> std::io::Result<()> {
    let mut replies = job.feed(received, shared);
    let mut buf = [0u8; 4096];
    loop {
        if !replies.is_empty() {
            stream.write_all(&replies).await?;
        }
        while shared.held_full() {
            // Paper out and the buffer full: stop reading until paper is in.
            let loaded = shared.paper_loaded.notified();
            if !shared.held_full() {
                break;
            }
            loaded.await;
        }
        let read = stream.read(&mut buf);
        let n = match idle {
            Some(idle) => match tokio::time::timeout(idle, read).await {
                Ok(result) => result?,
                Err(_) => return Ok(()),
            },
            None => read.await?,
        };
        if n == 0 {
            return Ok(());
        }
        replies = job.feed(&buf[..n], shared);
    }
}

/// The label being received on one connection.
#[derive(Default)]
struct Job {
    decoder: Decoder,
    label: PrintedLabel,
    line: Vec<u8>,
    chinese: bool,
}

impl Job {
    /// Feeds bytes one at a time, so each label's `raw` ends exactly at its
    /// cut; returns the status bytes to send back.
    fn feed(&mut self, bytes: &[u8], shared: &Shared) -> Vec<u8> {
        let mut replies = Vec::new();
        for &byte in bytes {
            if self.label.raw.len() < RAW_BYTES_MAX {
                self.label.raw.push(byte);
            }
            for item in self.decoder.feed(&[byte]) {
                match item {
                    Ok(command) => {
                        if let Some(request) = self.command(command, shared) {
                            replies.push(encode_reply(request, &shared.lock().status));
                        }
                    }
                    Err(error) => self.label.errors.push(error.to_string()),
                }
            }
        }
        replies
    }

    /// Applies one command; returns a status request to answer.
    fn command(&mut self, command: EscPosCommand, shared: &Shared) -> Option<StatusRequest> {
        match command {
            EscPosCommand::Init => self.chinese = false,
            EscPosCommand::ChineseMode(on) => self.chinese = on,
            EscPosCommand::Text(text) => {
                let room = LINE_BYTES_MAX.saturating_sub(self.line.len());
                self.line.extend(text.into_iter().take(room));
            }
            EscPosCommand::LineFeed => self.end_line(),
            EscPosCommand::Feed(lines) => {
                self.end_line();
                for _ in 1..lines {
                    self.label.line(String::new());
                }
            }
            EscPosCommand::Barcode(barcode) => {
                let data = String::from_utf8_lossy(&barcode.data).into_owned();
                let label = &mut self.label;
                label.order.push(Element::Barcode(label.barcodes.len()));
                label
                    .barcodes
                    .push((barcode.symbology.name().to_owned(), data));
            }
            EscPosCommand::Qr(QrCommand::Print { data, .. }) => {
                let data = String::from_utf8_lossy(&data.unwrap_or_default()).into_owned();
                let label = &mut self.label;
                label.order.push(Element::Qr(label.qr.len()));
                label.qr.push(data);
            }
            EscPosCommand::Cut(_) => {
                if !self.line.is_empty() {
                    self.end_line();
                }
                shared.cut(std::mem::take(&mut self.label));
            }
            EscPosCommand::StatusRequest(request) => return Some(request),
            _ => {}
        }
        None
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let text = if self.chinese {
            encoding_rs::GB18030.decode(&line).0.into_owned()
        } else {
            line.iter()
                .map(|&b| if b.is_ascii() { char::from(b) } else { '?' })
                .collect()
        };
        self.label.line(text);
    }

    /// The sender hung up (or went silent, or the serial port was closed):
    /// anything after the last cut is not a label.
    fn end(&mut self) {
        for item in self.decoder.finish() {
            if let Err(error) = item {
                self.label.errors.push(error.to_string());
            }
        }
        // Status requests and settings after the last cut are not a label;
        // text or codes are, and they were never cut off.
        if !self.line.is_empty() || !self.label.order.is_empty() {
            tracing::warn!(
                bytes = self.label.raw.len(),
                "connection closed without a cut: nothing printed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared::new()
    }

    #[test]
    fn a_job_split_anywhere_prints_the_same_label() {
        let job = b"\x1b@\x1c&\xd5\xc5**\n\x1dkI\x05{BSF1\x1d(k\x06\x001P0SF1\x1d(k\x03\x001Q0\
\x1bd\x02\x1dVB\x00";
        let whole = {
            let shared = shared();
            Job::default().feed(job, &shared);
            let labels = shared.lock().labels.clone();
            labels
        };
        assert_eq!(
            whole[0].render(),
            "张**\n[CODE128 SF1]\n[QR SF1]\n",
            "{whole:?}"
        );
        assert_eq!(whole[0].raw, job);
        for at in 0..job.len() {
            let shared = shared();
            let mut sender = Job::default();
            sender.feed(&job[..at], &shared);
            sender.feed(&job[at..], &shared);
            assert_eq!(shared.lock().labels, whole, "split at {at}");
        }
    }

    #[test]
    fn chinese_without_fs_ampersand_prints_question_marks() {
        let shared = shared();
        Job::default().feed(b"\x1b@\xd5\xc5**\n\x1dV\x01", &shared);
        assert_eq!(shared.lock().labels[0].lines, ["??**"]);
    }
}
