//! LCUS serial relay boards (PROTOCOLS.md §4): `A0 ch op sum` commands at
//! 9600 8N1, read back with the status query `FF` (answered `CHn:ON|OFF`;
//! see `bondgate_protocol::relay` for why that is an assumption about the
//! board).
//!
//! A pulse is: on, read back (must be on), wait out the pulse, off, read
//! back (must be off). The device I/O runs in a spawned task that the
//! caller only awaits, so the off is sent even if the caller gives up (its
//! future dropped by a timeout or a closed HTTP request): a relay left on
//! would hold the barrier open. Every device call is under [`IO_TIMEOUT`].
//! After any failure the port is closed and reopened by the next call (a
//! replugged USB adapter is a new device).

use std::path::PathBuf;
use std::sync::Arc;

use bondgate_protocol::relay::{LcusCommand, StatusDecoder, LCUS_STATUS_QUERY};
use tokio::io::AsyncReadExt as _;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_serial::{SerialPort as _, SerialStream};

use crate::device::{
    device_output, open_serial, pulse_started, timeout_fault, wait_out, write_timed, Device,
    IO_TIMEOUT,
};
use crate::{Confirmation, OutputFault, Pulse, RelayState};

/// Most answer bytes read for one status query: 8 relays of `CHn:OFF\r\n`
/// are 72; anything much longer is a babbling board, not an answer.
const ANSWER_BYTES_MAX: usize = 512;

/// An LCUS relay board on a serial port; one relay (channel, from 1) is
/// the gate's open input.
pub struct LcusOutput {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    baud: u32,
    channel: u8,
    /// The open port, `None` until first used or after a failure. The lock
    /// also keeps pulses and probes from interleaving on the wire.
    port: Mutex<Option<SerialStream>>,
    /// Wakes a pulse waiting out its length.
    cut: tokio::sync::Notify,
}

impl LcusOutput {
    /// Does not open the port: the first pulse or probe does, so a server
    /// starts even while the board is unplugged.
    pub fn new(path: PathBuf, baud: u32, channel: u8) -> LcusOutput {
        LcusOutput {
            inner: Arc::new(Inner {
                path,
                baud,
                channel,
                port: Mutex::new(None),
                cut: tokio::sync::Notify::new(),
            }),
        }
    }
}

device_output!(LcusOutput, "lcus");

impl Device for Inner {
    type Conn = SerialStream;

    fn conn(&self) -> &Mutex<Option<SerialStream>> {
        &self.port
    }

    fn cut(&self) -> &tokio::sync::Notify {
        &self.cut
    }

    async fn pulse_on(
        &self,
        slot: &mut Option<SerialStream>,
        pulse: &Pulse,
        opened: Option<crate::Opened>,
    ) -> Result<Confirmation, OutputFault> {
        self.pulse_steps(slot, pulse, opened).await
    }

    async fn read(&self, slot: &mut Option<SerialStream>) -> Result<RelayState, OutputFault> {
        let port = self.open(slot).await?;
        self.read_state(port).await
    }
}

impl Inner {
    /// The port, opened if need be. A freshly opened port first drives the
    /// relay off: after a server restart, or a port lost mid-pulse, it may
    /// still be on, and nothing else would ever switch it off.
    async fn open<'s>(
        &self,
        slot: &'s mut Option<SerialStream>,
    ) -> Result<&'s mut SerialStream, OutputFault> {
        if slot.is_none() {
            let mut port = open_serial(&self.path, self.baud)?;
            let off = LcusCommand {
                channel: self.channel,
                on: false,
            }
            .encode();
            write_timed(&mut port, &off).await?;
            *slot = Some(port);
        }
        slot.as_mut()
            .ok_or_else(|| OutputFault::Offline(self.path.display().to_string()))
    }

    async fn pulse_steps(
        &self,
        slot: &mut Option<SerialStream>,
        pulse: &Pulse,
        mut opened: Option<crate::Opened>,
    ) -> Result<Confirmation, OutputFault> {
        let port = self.open(slot).await?;
        let on = LcusCommand {
            channel: self.channel,
            on: true,
        }
        .encode();
        let off = LcusCommand {
            channel: self.channel,
            on: false,
        }
        .encode();
        if let Err(e) = write_timed(port, &on).await {
            // Part of "on" may have gone out: release, best effort.
            let _ = write_timed(port, &off).await;
            return Err(e);
        }
        let sent = Instant::now();
        let during = self.read_state(port).await;
        let started = pulse_started(sent, &during, &mut opened);
        wait_out(started + pulse.length(), &self.cut).await;
        write_timed(port, &off).await?;
        let after = self.read_state(port).await;
        match (during?, after?) {
            (RelayState::On, RelayState::Off) => Ok(Confirmation {
                detail: format!(
                    "LCUS channel {} read back on, then off after {} ms",
                    self.channel,
                    pulse.pulse_ms.get()
                ),
            }),
            (RelayState::Off, _) => Err(OutputFault::ReadBack(format!(
                "channel {} off during the pulse",
                self.channel
            ))),
            (_, RelayState::On) => Err(OutputFault::ReadBack(format!(
                "channel {} still on after the pulse",
                self.channel
            ))),
        }
    }

    /// Sends the status query and reads lines until this channel's, within
    /// [`IO_TIMEOUT`].
    async fn read_state(&self, port: &mut SerialStream) -> Result<RelayState, OutputFault> {
        // Stale bytes (a late answer to an earlier query) would be read as
        // this answer.
        let _ = port.clear(tokio_serial::ClearBuffer::Input);
        write_timed(port, &[LCUS_STATUS_QUERY]).await?;
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut decoder = StatusDecoder::new();
        let mut buf = [0_u8; 128];
        let mut received = 0_usize;
        let mut garbled: Option<String> = None;
        loop {
            let n = match tokio::time::timeout_at(deadline, port.read(&mut buf)).await {
                Err(_) => {
                    return Err(match garbled {
                        Some(what) => OutputFault::ReadBack(what),
                        None if received > 0 => OutputFault::ReadBack(format!(
                            "{received} bytes that are not a status answer"
                        )),
                        None => timeout_fault(),
                    })
                }
                Ok(Err(e)) => return Err(OutputFault::Io(format!("read failed: {e}"))),
                Ok(Ok(0)) => {
                    return Err(OutputFault::Offline(format!(
                        "{}: the port closed (unplugged?)",
                        self.path.display()
                    )))
                }
                Ok(Ok(n)) => n,
            };
            received += n;
            for line in decoder.push(&buf[..n]) {
                match line {
                    Ok(s) if s.channel == self.channel => {
                        return Ok(if s.on {
                            RelayState::On
                        } else {
                            RelayState::Off
                        })
                    }
                    Ok(_) => {}
                    Err(e) => garbled = Some(e.to_string()),
                }
            }
            if received > ANSWER_BYTES_MAX {
                return Err(OutputFault::ReadBack(format!(
                    "no status for channel {} in {received} bytes",
                    self.channel
                )));
            }
        }
    }
}
