//! Modbus relay coils over TCP or RTU (PROTOCOLS.md §4): FC05 to switch,
//! FC01 to read back.
//!
//! A pulse with `flash` is one FC05 "flash on" (`0x0200 + coil`, the length
//! in 100 ms units): the board times it, so not even a server killed
//! mid-pulse can leave the relay on. Then the coil is read back on, and
//! again after the pulse until it reads off. Without `flash` the server
//! writes on, reads back on, waits, writes off, reads back off. Either way
//! the I/O runs in a spawned task the caller only awaits (so the off, or
//! the read-back, still happens if the caller's future is dropped), every
//! request is under [`IO_TIMEOUT`], and any failure closes the connection
//! so the next call reconnects.
//!
//! **Why not tokio-modbus.** The frames come from
//! `bondgate_protocol::relay::modbus`, the codec the relay simulator also
//! decodes with (one definition of each wire format, never two drifting
//! copies). tokio-modbus (0.17) models FC05 as `Request::WriteSingleCoil(
//! Address, bool)` and its answer as `Response::WriteSingleCoil(Address,
//! bool)`, so "flash on" (FC05 with a length as the value) cannot be sent
//! or its echo read through it; an earlier attempt found it refused. It
//! would have needed `Request::Custom` for flash beside the typed calls for
//! on/off/read, i.e. two encoders for one board, and it has no timeouts of
//! its own. The two requests a relay needs are a few lines over the shared
//! codec, and the server keeps one dependency tree (and build) fewer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bondgate_protocol::relay::modbus::{
    encode_rtu, encode_tcp, Direction, Request, Response, RtuDecoder, RtuEvent, TcpDecoder,
    FLASH_UNIT_MS,
};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_serial::{SerialPort as _, SerialStream};

use crate::device::{
    device_output, open_serial, pulse_started, tell, timeout_fault, wait_out, write_timed, Device,
    IO_TIMEOUT,
};
use crate::{Confirmation, ModbusCoil, OutputFault, Pulse, RelayState};

/// How often a flash pulse's coil is read after its length, until it reads
/// off. Boards time flashes in 100 ms steps.
const FLASH_POLL: Duration = Duration::from_millis(50);

/// How long past its length a flash pulse may still read on: one 100 ms
/// step of the board's timer plus a read.
const FLASH_GRACE: Duration = Duration::from_millis(400);

/// Most bytes read while waiting for one answer: the longest Modbus frame
/// is 260 bytes; more is noise, not an answer.
const ANSWER_BYTES_MAX: usize = 1024;

enum Transport {
    Tcp(String),
    Rtu { path: PathBuf, baud: u32 },
}

/// One open connection and its framing.
enum Conn {
    Tcp {
        stream: TcpStream,
        decoder: TcpDecoder,
        transaction: u16,
    },
    Rtu {
        port: SerialStream,
        decoder: RtuDecoder,
    },
}

/// One coil of a Modbus relay board, on TCP or RTU.
pub struct ModbusOutput {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    coil: ModbusCoil,
    /// `None` until first used or after a failure; the lock also keeps
    /// requests from interleaving.
    conn: Mutex<Option<Conn>>,
    /// Wakes a pulse waiting out its length.
    cut: tokio::sync::Notify,
}

impl ModbusOutput {
    /// A board at `host:port`; connects on first use.
    pub fn tcp(addr: String, coil: ModbusCoil) -> ModbusOutput {
        ModbusOutput::with(Transport::Tcp(addr), coil)
    }

    /// A board on a serial line; opens it on first use.
    pub fn rtu(path: PathBuf, baud: u32, coil: ModbusCoil) -> ModbusOutput {
        ModbusOutput::with(Transport::Rtu { path, baud }, coil)
    }

    fn with(transport: Transport, coil: ModbusCoil) -> ModbusOutput {
        ModbusOutput {
            inner: Arc::new(Inner {
                transport,
                coil,
                conn: Mutex::new(None),
                cut: tokio::sync::Notify::new(),
            }),
        }
    }
}

device_output!(ModbusOutput, "modbus");

impl Device for Inner {
    type Conn = Conn;

    fn conn(&self) -> &Mutex<Option<Conn>> {
        &self.conn
    }

    fn cut(&self) -> &tokio::sync::Notify {
        &self.cut
    }

    async fn pulse_on(
        &self,
        slot: &mut Option<Conn>,
        pulse: &Pulse,
        opened: Option<crate::Opened>,
    ) -> Result<Confirmation, OutputFault> {
        if self.coil.flash {
            self.flash(slot, pulse, opened).await
        } else {
            self.on_off(slot, pulse, opened).await
        }
    }

    async fn read(&self, slot: &mut Option<Conn>) -> Result<RelayState, OutputFault> {
        self.read_coil(slot).await
    }
}

impl Inner {
    async fn flash(
        &self,
        slot: &mut Option<Conn>,
        pulse: &Pulse,
        mut opened: Option<crate::Opened>,
    ) -> Result<Confirmation, OutputFault> {
        let ms = pulse.pulse_ms.get();
        let request = Request::flash_on(self.coil.coil, ms).ok_or_else(|| {
            OutputFault::Io(format!("coil {} has no flash address", self.coil.coil))
        })?;
        self.write(slot, request).await?;
        let started = Instant::now();
        if self.read_coil(slot).await? != RelayState::On {
            return Err(OutputFault::ReadBack(format!(
                "coil {} off right after flash on",
                self.coil.coil
            )));
        }
        tell(&mut opened);
        // The board rounds up to its 100 ms step.
        let steps = ms.div_ceil(FLASH_UNIT_MS).max(1);
        let end = started + Duration::from_millis(u64::from(steps * FLASH_UNIT_MS));
        wait_out(end, &self.cut).await;
        if Instant::now() < end {
            // Cut short: the board would go on timing its flash.
            self.write(slot, Request::write_coil(self.coil.coil, false))
                .await?;
        }
        loop {
            if self.read_coil(slot).await? == RelayState::Off {
                return Ok(Confirmation {
                    detail: format!(
                        "Modbus coil {} flashed {} ms: read back on, then off",
                        self.coil.coil,
                        steps * FLASH_UNIT_MS
                    ),
                });
            }
            if Instant::now() >= end + FLASH_GRACE {
                return Err(OutputFault::ReadBack(format!(
                    "coil {} still on after its flash pulse",
                    self.coil.coil
                )));
            }
            tokio::time::sleep(FLASH_POLL).await;
        }
    }

    async fn on_off(
        &self,
        slot: &mut Option<Conn>,
        pulse: &Pulse,
        mut opened: Option<crate::Opened>,
    ) -> Result<Confirmation, OutputFault> {
        let coil = self.coil.coil;
        if let Err(e) = self.write(slot, Request::write_coil(coil, true)).await {
            // The "on" may have arrived although its answer did not:
            // release, best effort, on a fresh connection if need be.
            if matches!(e, OutputFault::Timeout(_)) {
                *slot = None;
            }
            let _ = self.write(slot, Request::write_coil(coil, false)).await;
            return Err(e);
        }
        let sent = Instant::now();
        let during = self.read_coil(slot).await;
        let started = pulse_started(sent, &during, &mut opened);
        wait_out(started + pulse.length(), &self.cut).await;
        if during.is_err() {
            // The connection may be broken: the off matters more than it.
            *slot = None;
        }
        self.write(slot, Request::write_coil(coil, false)).await?;
        let after = self.read_coil(slot).await;
        match (during?, after?) {
            (RelayState::On, RelayState::Off) => Ok(Confirmation {
                detail: format!(
                    "Modbus coil {coil} read back on, then off after {} ms",
                    pulse.pulse_ms.get()
                ),
            }),
            (RelayState::Off, _) => Err(OutputFault::ReadBack(format!(
                "coil {coil} off during the pulse"
            ))),
            (_, RelayState::On) => Err(OutputFault::ReadBack(format!(
                "coil {coil} still on after the pulse"
            ))),
        }
    }

    /// FC05, checking the echo.
    async fn write(&self, slot: &mut Option<Conn>, request: Request) -> Result<(), OutputFault> {
        let Request::WriteCoil { addr, value } = request else {
            return Err(OutputFault::Io("not a coil write".into()));
        };
        match self.call(slot, request).await? {
            Response::WriteCoil { addr: a, value: v } if (a, v) == (addr, value) => Ok(()),
            other => Err(OutputFault::ReadBack(format!(
                "answer {other:?} to a write of {value:04X} at {addr:04X}"
            ))),
        }
    }

    /// FC01 for this one coil.
    async fn read_coil(&self, slot: &mut Option<Conn>) -> Result<RelayState, OutputFault> {
        let request = Request::ReadCoils {
            addr: self.coil.coil,
            count: 1,
        };
        let response = self.call(slot, request).await?;
        match response.coil(0) {
            Some(true) => Ok(RelayState::On),
            Some(false) => Ok(RelayState::Off),
            None => Err(OutputFault::ReadBack(format!(
                "answer {response:?} to a read of coil {}",
                self.coil.coil
            ))),
        }
    }

    /// One request and its answer, connecting first if need be.
    async fn call(
        &self,
        slot: &mut Option<Conn>,
        request: Request,
    ) -> Result<Response, OutputFault> {
        if slot.is_none() {
            let mut conn = self.connect().await?;
            // A new connection may follow a server restart or a link lost
            // mid-pulse, with the coil still on: drive it off first, so
            // nothing latches the barrier open.
            let off = Request::write_coil(self.coil.coil, false);
            match no_exception(conn.call(self.coil.unit, off).await?)? {
                Response::WriteCoil { .. } => {}
                other => {
                    return Err(OutputFault::ReadBack(format!(
                        "answer {other:?} to releasing coil {}",
                        self.coil.coil
                    )))
                }
            }
            *slot = Some(conn);
        }
        let Some(conn) = slot.as_mut() else {
            return Err(OutputFault::Offline("not connected".into()));
        };
        no_exception(conn.call(self.coil.unit, request).await?)
    }

    async fn connect(&self) -> Result<Conn, OutputFault> {
        match &self.transport {
            Transport::Tcp(addr) => {
                match tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr.as_str())).await {
                    Ok(Ok(stream)) => {
                        let _ = stream.set_nodelay(true);
                        Ok(Conn::Tcp {
                            stream,
                            decoder: TcpDecoder::new(),
                            transaction: 0,
                        })
                    }
                    Ok(Err(e)) => Err(OutputFault::Offline(format!("{addr}: {e}"))),
                    Err(_) => Err(OutputFault::Offline(format!(
                        "{addr}: no connection within {} ms",
                        IO_TIMEOUT.as_millis()
                    ))),
                }
            }
            Transport::Rtu { path, baud } => Ok(Conn::Rtu {
                port: open_serial(path, *baud)?,
                decoder: RtuDecoder::new(Direction::Response),
            }),
        }
    }
}

impl Conn {
    /// Sends one request and reads until its answer, within [`IO_TIMEOUT`].
    async fn call(&mut self, unit: u8, request: Request) -> Result<Response, OutputFault> {
        let pdu = request.encode();
        match self {
            Conn::Tcp {
                stream,
                decoder,
                transaction,
            } => {
                *transaction = transaction.wrapping_add(1);
                let t = *transaction;
                write_timed(stream, &encode_tcp(t, unit, &pdu)).await?;
                read_answer(stream, |bytes| {
                    let frames = decoder.push(bytes).map_err(|e| {
                        OutputFault::ReadBack(format!("not a Modbus TCP answer: {e}"))
                    })?;
                    Ok(frames
                        .into_iter()
                        .find(|f| f.transaction == t && f.unit == unit)
                        .map(|f| f.pdu))
                })
                .await
            }
            Conn::Rtu { port, decoder } => {
                // A late answer to an earlier request would pass for this one.
                let _ = port.clear(tokio_serial::ClearBuffer::Input);
                let _ = decoder.reset();
                write_timed(port, &encode_rtu(unit, &pdu)).await?;
                read_answer(port, |bytes| {
                    Ok(decoder.push(bytes).into_iter().find_map(|e| match e {
                        RtuEvent::Frame(f) if f.unit == unit => Some(f.pdu),
                        _ => None,
                    }))
                })
                .await
            }
        }
    }
}

/// Reads until `feed` finds the answer's PDU, within [`IO_TIMEOUT`] and
/// [`ANSWER_BYTES_MAX`].
async fn read_answer(
    io: &mut (impl tokio::io::AsyncRead + Unpin),
    mut feed: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, OutputFault>,
) -> Result<Response, OutputFault> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut buf = [0_u8; 256];
    let mut received = 0_usize;
    loop {
        let n = match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
            Err(_) => return Err(no_answer(received)),
            Ok(Err(e)) => return Err(OutputFault::Io(format!("read failed: {e}"))),
            Ok(Ok(0)) => {
                return Err(OutputFault::Offline(
                    "the board closed the connection (unplugged?)".into(),
                ))
            }
            Ok(Ok(n)) => n,
        };
        received += n;
        if let Some(pdu) = feed(&buf[..n])? {
            return decode(&pdu);
        }
        if received > ANSWER_BYTES_MAX {
            return Err(no_answer(received));
        }
    }
}

/// A board's exception answer as the fault it reports.
fn no_exception(response: Response) -> Result<Response, OutputFault> {
    if let Response::Exception { function, code } = response {
        return Err(OutputFault::Reported(format!(
            "Modbus exception {code} to function {function:02X}"
        )));
    }
    Ok(response)
}

fn decode(pdu: &[u8]) -> Result<Response, OutputFault> {
    Response::decode(pdu).map_err(|e| OutputFault::ReadBack(format!("bad Modbus answer: {e}")))
}

fn no_answer(received: usize) -> OutputFault {
    if received == 0 {
        timeout_fault()
    } else {
        OutputFault::ReadBack(format!("{received} bytes that are not a Modbus answer"))
    }
}
