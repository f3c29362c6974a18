//! A Modbus TCP relay board (PROTOCOLS.md §4), on
//! `bondgate_protocol::relay::modbus` alone: FC05 write single coil
//! (`FF00` on, `0000` off), read back with FC01, and optionally the board's
//! self-timed "flash on" (FC05 at `0x0200 + coil`, the length in 100 ms
//! units).
//!
//! Every request is under [`IO_TIMEOUT`]; after any failure the connection
//! is dropped and the next request reconnects, first driving the coil off.

use std::time::Duration;

use bondgate_protocol::relay::modbus::{encode_tcp, Request, Response, TcpDecoder};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::lcus::{RelayError, IO_TIMEOUT};

/// A coil on a Modbus TCP board.
#[derive(Debug)]
pub struct ModbusTcp {
    addr: String,
    unit: u8,
    coil: u16,
    flash: bool,
    stream: Option<TcpStream>,
    transaction: u16,
}

impl ModbusTcp {
    /// Does not connect: the first request does.
    pub fn new(addr: String, unit: u8, coil: u16, flash: bool) -> ModbusTcp {
        ModbusTcp {
            addr,
            unit,
            coil,
            flash,
            stream: None,
            transaction: 0,
        }
    }

    /// Whether the board times the pulse itself.
    pub fn flash(&self) -> bool {
        self.flash
    }

    /// The relay and where it is, for logs.
    pub fn describe(&self) -> String {
        format!(
            "Modbus TCP {} unit {} coil {}{}",
            self.addr,
            self.unit,
            self.coil,
            if self.flash { " (flash)" } else { "" }
        )
    }

    /// Switches the coil on (a flash of `pulse_ms` if configured) or off.
    pub async fn set(&mut self, on: bool, pulse_ms: u32) -> Result<(), RelayError> {
        let request = if on && self.flash {
            Request::flash_on(self.coil, pulse_ms).ok_or_else(|| {
                RelayError::ReadBack(format!("coil {} has no flash address", self.coil))
            })?
        } else {
            Request::write_coil(self.coil, on)
        };
        match self.request(request).await? {
            Response::WriteCoil { .. } => Ok(()),
            other => Err(RelayError::ReadBack(format!(
                "unexpected answer to a coil write: {other:?}"
            ))),
        }
    }

    /// Reads the coil back: `true` when energised.
    pub async fn read(&mut self) -> Result<bool, RelayError> {
        let response = self
            .request(Request::ReadCoils {
                addr: self.coil,
                count: 1,
            })
            .await?;
        response.coil(0).ok_or_else(|| {
            RelayError::ReadBack(format!("unexpected answer to a coil read: {response:?}"))
        })
    }

    async fn request(&mut self, request: Request) -> Result<Response, RelayError> {
        let result = self.request_inner(request).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn connect(&mut self) -> Result<(), RelayError> {
        if self.stream.is_some() {
            return Ok(());
        }
        let stream = match tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(&self.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(RelayError::Offline(format!("{}: {e}", self.addr))),
            Err(_) => return Err(RelayError::Timeout),
        };
        let _ = stream.set_nodelay(true);
        self.stream = Some(stream);
        // A fresh connection first drives the coil off: a coil left on by a
        // crash or a lost connection mid-pulse would hold the barrier open.
        let off = Request::write_coil(self.coil, false);
        self.exchange(off).await.map(|_| ())
    }

    async fn request_inner(&mut self, request: Request) -> Result<Response, RelayError> {
        self.connect().await?;
        self.exchange(request).await
    }

    async fn exchange(&mut self, request: Request) -> Result<Response, RelayError> {
        self.transaction = self.transaction.wrapping_add(1);
        let transaction = self.transaction;
        let frame = encode_tcp(transaction, self.unit, &request.encode());
        let addr = self.addr.clone();
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| RelayError::Offline(addr.clone()))?;
        let deadline = Instant::now() + IO_TIMEOUT;
        match tokio::time::timeout_at(deadline, stream.write_all(&frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(RelayError::Io(format!("write failed: {e}"))),
            Err(_) => return Err(RelayError::Timeout),
        }
        let mut decoder = TcpDecoder::new();
        let mut buf = [0_u8; 260];
        loop {
            let n = match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Err(_) => return Err(RelayError::Timeout),
                Ok(Err(e)) => return Err(RelayError::Io(format!("read failed: {e}"))),
                Ok(Ok(0)) => {
                    return Err(RelayError::Offline(format!(
                        "{addr}: the board closed the connection"
                    )))
                }
                Ok(Ok(n)) => n,
            };
            let frames = decoder
                .push(&buf[..n])
                .map_err(|e| RelayError::ReadBack(e.to_string()))?;
            for f in frames {
                // A late answer to an earlier request is skipped.
                if f.transaction != transaction || f.unit != self.unit {
                    continue;
                }
                return match Response::decode(&f.pdu) {
                    Ok(Response::Exception { function, code }) => Err(RelayError::ReadBack(
                        format!("exception {code:?} to function {function:#04x}"),
                    )),
                    Ok(r) => Ok(r),
                    Err(e) => Err(RelayError::ReadBack(e.to_string())),
                };
            }
        }
    }
}

/// How long past its length a flash pulse may still read on: one 100 ms
/// step of the board's timer and a little more.
pub const FLASH_GRACE: Duration = Duration::from_millis(300);
