//! The device task: one pty master, the frames, the commands, the cable.
//!
//! Whether anyone has the port open is read off the master side, as Linux
//! reports it: while no process holds the slave (`/dev/pts/N`) open, reading
//! the master fails with `EIO`; while one does, it would block. So the task
//! probes with a non-blocking read every [`PROBE_INTERVAL`] while nobody
//! listens, sends nothing then, and reads normally (commands) while someone
//! does — until `EIO` says the reader closed the port again.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bondgate_protocol::scale::{
    encode_reading, mtsics_answer, Command, MtSicsAnswer, MtSicsState, Range, ScaleProtocol,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_serial::SerialStream;

use super::{relink, Action, ScaleOptions, ScaleSimError, Shared};

/// How often the task looks for a reader while nobody has the port open,
/// and how finely an MT-SICS `S` waits for stability. A reader that opens
/// the port gets its first frame within this plus one frame interval.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// How long one frame may wait for room in the pty buffer. Only a reader
/// that holds the port open without reading fills it (about 20 KB on
/// Linux); the frame is then dropped and counted, as a UART overrun loses
/// bytes, rather than stalling the simulator and its control handle.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest MT-SICS command line kept; longer ones are answered `ES`.
/// Commands are a few bytes; 64 bounds what a runaway host can make us hold.
const COMMAND_BYTES_MAX: usize = 64;

/// One plugged-in device: the pty master and the slave's path.
#[derive(Debug)]
pub(super) struct Plug {
    master: SerialStream,
    pty: PathBuf,
}

impl Plug {
    /// Creates a pty pair, keeps the master, closes the slave (the reader
    /// opens it by path), and points the link at it.
    pub(super) fn new(options: &ScaleOptions) -> Result<Plug, ScaleSimError> {
        let (master, pty) = crate::pty::pair()?;
        let pty = pty.ok_or(ScaleSimError::NoPath)?;
        if let Some(link) = &options.link {
            relink(link, &pty)?;
        }
        Ok(Plug { master, pty })
    }

    pub(super) fn pty_path(&self) -> &Path {
        &self.pty
    }
}

struct Device {
    options: ScaleOptions,
    plug: Option<Plug>,
    shared: Arc<Shared>,
    listening: bool,
    /// MT-SICS: the command line being received.
    line: Vec<u8>,
    /// MT-SICS: the line overflowed [`COMMAND_BYTES_MAX`]; answer `ES`.
    line_overflow: bool,
    /// MT-SICS: an `S` waiting for stability until this instant.
    pending_weigh: Option<Instant>,
}

/// Runs the device until stopped or every handle is gone.
pub(super) async fn run(
    options: ScaleOptions,
    plug: Plug,
    shared: Arc<Shared>,
    mut actions: mpsc::Receiver<Action>,
) {
    let streamed = !options.protocol.is_request_response();
    let mut frames = tokio::time::interval(options.interval);
    frames.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut probe = tokio::time::interval(PROBE_INTERVAL);
    probe.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut dev = Device {
        options,
        plug: Some(plug),
        shared,
        listening: false,
        line: Vec::with_capacity(COMMAND_BYTES_MAX),
        line_overflow: false,
        pending_weigh: None,
    };
    let mut buf = [0_u8; 256];
    loop {
        tokio::select! {
            action = actions.recv() => match action {
                None => break,
                Some(Action::Stop(ack)) => {
                    dev.unplug();
                    let _ = ack.send(());
                    break;
                }
                Some(action) => dev.act(action).await,
            },
            read = read_port(&mut dev.plug, &mut buf), if dev.listening => match read {
                Ok(n) if n > 0 => dev.received(&buf[..n]).await,
                // EIO: the reader closed the port.
                _ => dev.set_listening(false),
            },
            _ = probe.tick() => dev.probe(&mut buf).await,
            _ = frames.tick(), if streamed => dev.send_frame().await,
        }
    }
    dev.unplug();
}

/// Reads from the master; never completes while unplugged.
async fn read_port(plug: &mut Option<Plug>, buf: &mut [u8]) -> std::io::Result<usize> {
    match plug {
        Some(plug) => plug.master.read(buf).await,
        None => std::future::pending().await,
    }
}

impl Device {
    fn set_listening(&mut self, on: bool) {
        self.listening = on;
        self.shared.listening.store(on, Ordering::Relaxed);
    }

    /// Looks for a reader while none is known; resolves a waiting `S`.
    async fn probe(&mut self, buf: &mut [u8]) {
        if !self.listening {
            if let Some(plug) = self.plug.as_mut() {
                match plug.master.try_read(buf) {
                    Ok(n) if n > 0 => {
                        self.set_listening(true);
                        self.received(&buf[..n]).await;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => self.set_listening(true),
                    // EIO: nobody has the slave open.
                    _ => {}
                }
            }
        }
        if let Some(deadline) = self.pending_weigh {
            let now = Instant::now();
            let ready = {
                let pan = self.shared.pan();
                pan.is_stable(now) || pan.reading_range() != Range::Ok
            };
            if ready || now >= deadline {
                self.pending_weigh = None;
                self.answer(Some(Command::Weigh)).await;
            }
        }
    }

    async fn act(&mut self, action: Action) {
        match action {
            Action::Unplug(ack) => {
                self.unplug();
                let _ = ack.send(());
            }
            Action::Replug(ack) => {
                let result = match &self.plug {
                    Some(plug) => Ok(plug.pty.clone()),
                    None => Plug::new(&self.options).map(|plug| {
                        let path = plug.pty.clone();
                        *self.shared.pty() = Some(path.clone());
                        self.plug = Some(plug);
                        path
                    }),
                };
                let _ = ack.send(result);
            }
            Action::Garbage(bytes, ack) => {
                let sent = self.listening && self.write(&bytes).await;
                let _ = ack.send(sent);
            }
            Action::Stop(ack) => {
                self.unplug();
                let _ = ack.send(());
            }
        }
    }

    /// Closes the master: the reader's port is hung up, the node and the
    /// link disappear.
    fn unplug(&mut self) {
        if self.plug.take().is_some() {
            if let Some(link) = &self.options.link {
                let _ = std::fs::remove_file(link);
            }
        }
        *self.shared.pty() = None;
        self.set_listening(false);
        self.pending_weigh = None;
        self.line.clear();
        self.line_overflow = false;
    }

    /// Bytes from the reader: MT-SICS commands; streamed scales ignore input.
    async fn received(&mut self, bytes: &[u8]) {
        if self.options.protocol != ScaleProtocol::MtSics {
            return;
        }
        for &b in bytes {
            if b == b'\r' || b == b'\n' {
                if !self.line.is_empty() || self.line_overflow {
                    let line = std::mem::take(&mut self.line);
                    let overflow = std::mem::take(&mut self.line_overflow);
                    self.command(&line, overflow).await;
                }
            } else if self.line.len() < COMMAND_BYTES_MAX {
                self.line.push(b);
            } else {
                self.line_overflow = true;
            }
        }
    }

    async fn command(&mut self, line: &[u8], overflow: bool) {
        self.shared
            .commands_received
            .fetch_add(1, Ordering::Relaxed);
        let cmd = if overflow {
            None
        } else {
            Command::parse_line(line).ok()
        };
        if cmd == Some(Command::Weigh) {
            let now = Instant::now();
            let waits = {
                let pan = self.shared.pan();
                !pan.is_stable(now) && pan.reading_range() == Range::Ok
            };
            if waits {
                self.pending_weigh = Some(now + self.options.stable_timeout);
                return;
            }
        }
        self.answer(cmd).await;
    }

    /// Answers one command from the current state and applies its effect.
    async fn answer(&mut self, cmd: Option<Command>) {
        let now = Instant::now();
        let answer = {
            let mut pan = self.shared.pan();
            let state = MtSicsState {
                reading: pan.reading(now),
                tare_grams: pan.tare_grams(),
                serial: &self.options.serial,
            };
            let answer = mtsics_answer(cmd, &state);
            match &answer {
                MtSicsAnswer::Zeroed => pan.zero(now),
                MtSicsAnswer::Tared { tare_grams } => pan.set_tare(*tare_grams),
                MtSicsAnswer::Reset { .. } => pan.reset(),
                _ => {}
            }
            answer
        };
        if matches!(answer, MtSicsAnswer::Reset { .. }) {
            self.pending_weigh = None;
        }
        if self.write(&answer.encode()).await {
            self.shared.frames_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One streamed frame, if someone listens. A reading the format cannot
    /// express (a Yaohua overload) sends nothing.
    async fn send_frame(&mut self) {
        if !self.listening {
            return;
        }
        let reading = self.shared.pan().reading(Instant::now());
        let frame = encode_reading(self.options.protocol, &reading);
        if frame.is_empty() {
            return;
        }
        if self.write(&frame).await {
            self.shared.frames_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes to the master; false if unplugged, not accepted in time
    /// (counted as dropped), or failed.
    async fn write(&mut self, bytes: &[u8]) -> bool {
        let Some(plug) = self.plug.as_mut() else {
            return false;
        };
        match tokio::time::timeout(WRITE_TIMEOUT, plug.master.write_all(bytes)).await {
            Ok(Ok(())) => true,
            Ok(Err(_)) => {
                self.set_listening(false);
                false
            }
            Err(_) => {
                self.shared.frames_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}
