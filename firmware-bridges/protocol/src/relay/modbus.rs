//! Modbus relay boards, RTU (serial, CRC-16) and TCP (MBAP header)
//! (PROTOCOLS.md §4). Only what a relay gate needs:
//!
//! - **FC05 write single coil**: `FF00` on, `0000` off. The board echoes
//!   the request.
//! - **"Flash on"**: many relay boards time a pulse themselves when FC05
//!   writes to `0x0200 + coil` with the length in 100 ms units as the value
//!   — not a standard FC05 value (only `FF00`/`0000` are), which is why
//!   generic clients refuse to send it ([`Request::flash_on`]).
//! - **FC01 read coils**, answered with a byte count and packed bits.
//! - **Exception responses**: the function with its top bit set and one
//!   code byte.
//!
//! A PDU is the function code and its data; [`Request`] and [`Response`]
//! encode and decode PDUs. [`encode_rtu`] / [`RtuDecoder`] add and find the
//! RTU framing (unit, PDU, CRC-16 low byte first: slave 1 coil 0 on is
//! `01 05 00 00 FF 00 8C 3A`); [`encode_tcp`] / [`TcpDecoder`] the TCP
//! framing (transaction id, protocol 0, length, unit, PDU).

/// FC01, read coils.
pub const FC_READ_COILS: u8 = 0x01;
/// FC05, write single coil.
pub const FC_WRITE_COIL: u8 = 0x05;
/// The FC05 value that energises a coil.
pub const COIL_ON: u16 = 0xFF00;
/// The FC05 value that releases a coil.
pub const COIL_OFF: u16 = 0x0000;
/// Where the "flash on" registers of a relay board start: coil `n` flashes
/// when FC05 writes to `FLASH_BASE + n`.
pub const FLASH_BASE: u16 = 0x0200;
/// The unit of a "flash on" value, milliseconds.
pub const FLASH_UNIT_MS: u32 = 100;
/// Most coils one FC01 may read (the Modbus specification's limit).
pub const READ_COILS_MAX: u16 = 2000;
/// Longest PDU (the specification: 253 bytes).
pub const PDU_BYTES_MAX: usize = 253;
/// Longest RTU frame: unit, PDU, CRC.
pub const RTU_FRAME_BYTES_MAX: usize = 1 + PDU_BYTES_MAX + 2;
/// Bytes in an MBAP header (transaction, protocol, length, unit).
pub const MBAP_BYTES: usize = 7;
/// Longest TCP frame: MBAP header and PDU.
pub const TCP_FRAME_BYTES_MAX: usize = MBAP_BYTES + PDU_BYTES_MAX;

/// A request, as a host sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// FC01: `count` coils from `addr`.
    ReadCoils {
        /// First coil, 0-based.
        addr: u16,
        /// How many, 1..=2000.
        count: u16,
    },
    /// FC05: one coil. `value` is `FF00`, `0000`, or (flash on) a length.
    WriteCoil {
        /// Coil address, 0-based (or `FLASH_BASE + coil`).
        addr: u16,
        /// What to write.
        value: u16,
    },
}

impl Request {
    /// FC05 `FF00` or `0000` on `coil`.
    pub fn write_coil(coil: u16, on: bool) -> Request {
        Request::WriteCoil {
            addr: coil,
            value: if on { COIL_ON } else { COIL_OFF },
        }
    }

    /// FC05 at `0x0200 + coil` with the pulse length in 100 ms units,
    /// rounded up and at least 1 (a board reads 0 as "off"). `None` if the
    /// address overflows.
    pub fn flash_on(coil: u16, pulse_ms: u32) -> Option<Request> {
        let units = pulse_ms.div_ceil(FLASH_UNIT_MS).max(1);
        Some(Request::WriteCoil {
            addr: FLASH_BASE.checked_add(coil)?,
            value: u16::try_from(units).ok()?,
        })
    }

    /// The function code.
    pub fn function(&self) -> u8 {
        match self {
            Request::ReadCoils { .. } => FC_READ_COILS,
            Request::WriteCoil { .. } => FC_WRITE_COIL,
        }
    }

    /// The PDU bytes.
    pub fn encode(&self) -> Vec<u8> {
        let (a, b) = match *self {
            Request::ReadCoils { addr, count } => (addr, count),
            Request::WriteCoil { addr, value } => (addr, value),
        };
        let mut pdu = vec![self.function()];
        pdu.extend_from_slice(&a.to_be_bytes());
        pdu.extend_from_slice(&b.to_be_bytes());
        pdu
    }

    /// Reads a request PDU. An unknown function is
    /// [`ModbusError::Function`] (a board answers it with exception 01).
    pub fn decode(pdu: &[u8]) -> Result<Request, ModbusError> {
        let (&function, data) = pdu.split_first().ok_or(ModbusError::Empty)?;
        if function != FC_READ_COILS && function != FC_WRITE_COIL {
            return Err(ModbusError::Function(function));
        }
        let &[a0, a1, b0, b1] = data else {
            return Err(ModbusError::Length {
                function,
                got: pdu.len(),
            });
        };
        let (a, b) = (u16::from_be_bytes([a0, a1]), u16::from_be_bytes([b0, b1]));
        Ok(match function {
            FC_READ_COILS => {
                if b == 0 || b > READ_COILS_MAX {
                    return Err(ModbusError::Count(b));
                }
                Request::ReadCoils { addr: a, count: b }
            }
            _ => Request::WriteCoil { addr: a, value: b },
        })
    }
}

/// A response, as a board sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// FC01: the coils, packed 8 to a byte, first coil in bit 0.
    ReadCoils {
        /// The packed bits as sent (trailing bits of the last byte are 0).
        bits: Vec<u8>,
    },
    /// FC05: the echo of the request.
    WriteCoil {
        /// As written.
        addr: u16,
        /// As written.
        value: u16,
    },
    /// The request was refused.
    Exception {
        /// The request's function code (without the top bit).
        function: u8,
        /// Why.
        code: ExceptionCode,
    },
}

impl Response {
    /// A read-coils answer for these coil states.
    pub fn read_coils(coils: &[bool]) -> Response {
        let mut bits = vec![0_u8; coils.len().div_ceil(8)];
        for (i, &on) in coils.iter().enumerate() {
            if on {
                bits[i / 8] |= 1 << (i % 8);
            }
        }
        Response::ReadCoils { bits }
    }

    /// Coil `i` (0-based from the first coil read) of a read-coils answer.
    pub fn coil(&self, i: usize) -> Option<bool> {
        match self {
            Response::ReadCoils { bits } => bits.get(i / 8).map(|b| b & (1 << (i % 8)) != 0),
            _ => None,
        }
    }

    /// The PDU bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Response::ReadCoils { bits } => {
                let mut pdu = vec![FC_READ_COILS, u8::try_from(bits.len()).unwrap_or(u8::MAX)];
                pdu.extend_from_slice(bits);
                pdu
            }
            Response::WriteCoil { addr, value } => Request::WriteCoil {
                addr: *addr,
                value: *value,
            }
            .encode(),
            Response::Exception { function, code } => vec![function | 0x80, code.byte()],
        }
    }

    /// Reads a response PDU.
    pub fn decode(pdu: &[u8]) -> Result<Response, ModbusError> {
        let (&function, data) = pdu.split_first().ok_or(ModbusError::Empty)?;
        let length = || ModbusError::Length {
            function,
            got: pdu.len(),
        };
        if function & 0x80 != 0 {
            let &[code] = data else { return Err(length()) };
            return Ok(Response::Exception {
                function: function & 0x7F,
                code: ExceptionCode::from_byte(code),
            });
        }
        match function {
            FC_READ_COILS => {
                let (&count, bits) = data.split_first().ok_or_else(length)?;
                if bits.len() != usize::from(count) || count == 0 {
                    return Err(length());
                }
                Ok(Response::ReadCoils {
                    bits: bits.to_vec(),
                })
            }
            FC_WRITE_COIL => {
                let &[a0, a1, b0, b1] = data else {
                    return Err(length());
                };
                Ok(Response::WriteCoil {
                    addr: u16::from_be_bytes([a0, a1]),
                    value: u16::from_be_bytes([b0, b1]),
                })
            }
            other => Err(ModbusError::Function(other)),
        }
    }
}

/// Why a board refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionCode {
    /// 01: the function is not supported.
    IllegalFunction,
    /// 02: no such coil.
    IllegalDataAddress,
    /// 03: a value the board does not accept.
    IllegalDataValue,
    /// 04: the board failed.
    ServerDeviceFailure,
    /// Any other code.
    Other(u8),
}

impl ExceptionCode {
    /// The code byte.
    pub fn byte(self) -> u8 {
        match self {
            ExceptionCode::IllegalFunction => 1,
            ExceptionCode::IllegalDataAddress => 2,
            ExceptionCode::IllegalDataValue => 3,
            ExceptionCode::ServerDeviceFailure => 4,
            ExceptionCode::Other(b) => b,
        }
    }

    /// From the code byte.
    pub fn from_byte(b: u8) -> ExceptionCode {
        match b {
            1 => ExceptionCode::IllegalFunction,
            2 => ExceptionCode::IllegalDataAddress,
            3 => ExceptionCode::IllegalDataValue,
            4 => ExceptionCode::ServerDeviceFailure,
            other => ExceptionCode::Other(other),
        }
    }
}

impl std::fmt::Display for ExceptionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            ExceptionCode::IllegalFunction => "illegal function",
            ExceptionCode::IllegalDataAddress => "illegal data address",
            ExceptionCode::IllegalDataValue => "illegal data value",
            ExceptionCode::ServerDeviceFailure => "server device failure",
            ExceptionCode::Other(_) => "exception",
        };
        write!(f, "{text} ({:02X})", self.byte())
    }
}

/// Why bytes are not a Modbus request or response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModbusError {
    /// No function code.
    #[error("an empty Modbus PDU")]
    Empty,
    /// A function this code does not speak.
    #[error("Modbus function {0:02X} is not supported")]
    Function(u8),
    /// The PDU has the wrong length for its function.
    #[error("Modbus function {function:02X}: a PDU of {got} bytes has the wrong length")]
    Length {
        /// The function code.
        function: u8,
        /// The PDU's length.
        got: usize,
    },
    /// FC01 count out of 1..=2000.
    #[error("Modbus read of {0} coils (1..=2000 allowed)")]
    Count(u16),
}

/// CRC-16/MODBUS: initial `FFFF`, reflected polynomial `A001`. Sent low
/// byte first.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// One RTU frame: the unit and PDU, CRC checked and stripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtuFrame {
    /// The slave address.
    pub unit: u8,
    /// Function code and data.
    pub pdu: Vec<u8>,
}

/// Unit, PDU and CRC (low byte first).
pub fn encode_rtu(unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(pdu.len() + 3);
    frame.push(unit);
    frame.extend_from_slice(pdu);
    let crc = crc16(&frame);
    frame.extend_from_slice(&crc.to_le_bytes());
    frame
}

/// Which way the frames go: RTU has no length field, so the length of a
/// frame follows from its function and whether it is a request or an
/// answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Host to board (what a board decodes).
    Request,
    /// Board to host (what a host decodes).
    Response,
}

/// What an [`RtuDecoder`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtuEvent {
    /// A frame with a good CRC.
    Frame(RtuFrame),
    /// Bytes dropped: a bad CRC, an unknown function, or line noise.
    Noise(usize),
}

/// RTU frames from bytes in any chunking. Real RTU separates frames by
/// 3.5 character times of silence; a pty has no timing, so this decoder
/// frames by length (from the function code) and CRC instead, and on a bad
/// frame drops one byte and tries again from the next. It holds at most
/// [`RTU_FRAME_BYTES_MAX`] bytes.
#[derive(Debug, Clone)]
pub struct RtuDecoder {
    direction: Direction,
    buf: Vec<u8>,
    noise: usize,
}

impl RtuDecoder {
    /// A decoder for frames going `direction`.
    pub fn new(direction: Direction) -> RtuDecoder {
        RtuDecoder {
            direction,
            buf: Vec::with_capacity(RTU_FRAME_BYTES_MAX),
            noise: 0,
        }
    }

    /// Feeds bytes; returns what they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<RtuEvent> {
        let mut events = Vec::new();
        for &b in bytes {
            self.buf.push(b);
            self.scan(&mut events);
        }
        events
    }

    /// Forgets a partial frame (after reopening the port) and reports noise.
    pub fn reset(&mut self) -> Option<RtuEvent> {
        let noise = self.noise + self.buf.len();
        self.buf.clear();
        self.noise = 0;
        (noise > 0).then_some(RtuEvent::Noise(noise))
    }

    fn scan(&mut self, events: &mut Vec<RtuEvent>) {
        loop {
            match self.frame_len() {
                Ok(None) => return,
                Ok(Some(len)) if self.buf.len() < len => return,
                Ok(Some(len)) => {
                    let (body, crc) = self.buf[..len].split_at(len - 2);
                    if crc16(body).to_le_bytes() == [crc[0], crc[1]] {
                        if self.noise > 0 {
                            events.push(RtuEvent::Noise(self.noise));
                            self.noise = 0;
                        }
                        events.push(RtuEvent::Frame(RtuFrame {
                            unit: body[0],
                            pdu: body[1..].to_vec(),
                        }));
                        self.buf.drain(..len);
                    } else {
                        self.buf.remove(0);
                        self.noise += 1;
                    }
                }
                Err(()) => {
                    self.buf.remove(0);
                    self.noise += 1;
                }
            }
        }
    }

    /// The length of the frame at the start of the buffer: `Ok(None)` if
    /// not yet known, `Err` if no frame can start here.
    fn frame_len(&self) -> Result<Option<usize>, ()> {
        let Some(&function) = self.buf.get(1) else {
            return Ok(None);
        };
        if function & 0x80 != 0 {
            return match self.direction {
                Direction::Response => Ok(Some(5)),
                Direction::Request => Err(()),
            };
        }
        match (self.direction, function) {
            // Address + value/count: unit, fc, 4 bytes, CRC. Functions
            // 02–06 have the same shape, so a board can answer them with
            // exception 01 instead of losing sync.
            (Direction::Request, 0x01..=0x06) => Ok(Some(8)),
            (Direction::Response, FC_WRITE_COIL) => Ok(Some(8)),
            (Direction::Response, FC_READ_COILS) => match self.buf.get(2) {
                None => Ok(None),
                Some(0) => Err(()),
                Some(&n) => Ok(Some(3 + usize::from(n) + 2)),
            },
            _ => Err(()),
        }
    }
}

/// One TCP frame: the MBAP header's transaction and unit, and the PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpFrame {
    /// Echoed by the board; pairs an answer with its request.
    pub transaction: u16,
    /// The unit id (the slave address behind a gateway).
    pub unit: u8,
    /// Function code and data.
    pub pdu: Vec<u8>,
}

/// MBAP header and PDU.
pub fn encode_tcp(transaction: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(MBAP_BYTES + pdu.len());
    frame.extend_from_slice(&transaction.to_be_bytes());
    frame.extend_from_slice(&0_u16.to_be_bytes());
    let len = u16::try_from(pdu.len() + 1).unwrap_or(u16::MAX);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.push(unit);
    frame.extend_from_slice(pdu);
    frame
}

/// Why a TCP stream is not Modbus. Unlike RTU there is no resync: a TCP
/// stream that breaks framing is closed and reconnected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TcpFrameError {
    /// The protocol id is not 0.
    #[error("MBAP protocol id {0:04X} (Modbus is 0000)")]
    Protocol(u16),
    /// The length field is out of 2..=254.
    #[error("MBAP length {0} (2..=254 allowed)")]
    Length(u16),
}

/// TCP frames from bytes in any chunking. Holds at most
/// [`TCP_FRAME_BYTES_MAX`] bytes of an unfinished frame.
#[derive(Debug, Clone, Default)]
pub struct TcpDecoder {
    buf: Vec<u8>,
}

impl TcpDecoder {
    /// An empty decoder.
    pub fn new() -> TcpDecoder {
        TcpDecoder::default()
    }

    /// Feeds bytes; returns the frames they completed. After an error the
    /// stream is broken: drop the connection (the decoder is reset).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<TcpFrame>, TcpFrameError> {
        let mut frames = Vec::new();
        for &b in bytes {
            self.buf.push(b);
            if self.buf.len() < MBAP_BYTES {
                continue;
            }
            let protocol = u16::from_be_bytes([self.buf[2], self.buf[3]]);
            let len = u16::from_be_bytes([self.buf[4], self.buf[5]]);
            if protocol != 0 {
                self.buf.clear();
                return Err(TcpFrameError::Protocol(protocol));
            }
            if !(2..=254).contains(&len) {
                self.buf.clear();
                return Err(TcpFrameError::Length(len));
            }
            if self.buf.len() == MBAP_BYTES - 1 + usize::from(len) {
                frames.push(TcpFrame {
                    transaction: u16::from_be_bytes([self.buf[0], self.buf[1]]),
                    unit: self.buf[6],
                    pdu: self.buf[MBAP_BYTES..].to_vec(),
                });
                self.buf.clear();
            }
        }
        Ok(frames)
    }
}

#[cfg(test)]
mod tests;
