//! The relays themselves, shared by every transport: their states, the
//! pulse log, the fault, and what a Modbus request does to them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bondgate_protocol::relay::modbus::{
    ExceptionCode, Request, Response, COIL_OFF, COIL_ON, FLASH_BASE, FLASH_UNIT_MS,
};

use super::PULSES_KEPT_MAX;

/// One pulse as the board saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayPulse {
    /// LCUS channel (from 1) or Modbus coil (from 0).
    pub relay: u16,
    /// When the relay was energised.
    pub on_at: Instant,
    /// When it was released; `None` while still on.
    pub off_at: Option<Instant>,
    /// Timed by the board itself (Modbus "flash on").
    pub flash: bool,
}

impl RelayPulse {
    /// How long the relay was on, once it is off again.
    pub fn length(&self) -> Option<Duration> {
        self.off_at.map(|off| off.duration_since(self.on_at))
    }
}

/// How the board misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelayFault {
    /// Works.
    #[default]
    None,
    /// Hears nothing: no switching, no answers (a dead board, a cut RX
    /// line, the wrong baud rate).
    Silent,
    /// Switches the relays but answers every request with noise (a wrong
    /// board, a failing adapter).
    Garbage,
}

/// The noise a [`RelayFault::Garbage`] board answers with: no `A0`, no
/// line end, no valid Modbus frame.
pub(crate) const GARBAGE: &[u8] = &[0x13, 0x37, 0x00, 0xFE, 0x55, 0x42, 0x7F];

#[derive(Debug)]
pub(crate) struct Board {
    pub(crate) relays: Vec<bool>,
    pub(crate) pulses: VecDeque<RelayPulse>,
    pub(crate) fault: RelayFault,
    pub(crate) requests: u64,
    /// Bumped on every switch, so a flash timer only ends its own pulse.
    generation: Vec<u64>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    board: Mutex<Board>,
}

impl Shared {
    pub(crate) fn new(relays: u16) -> Arc<Shared> {
        let n = usize::from(relays);
        Arc::new(Shared {
            board: Mutex::new(Board {
                relays: vec![false; n],
                pulses: VecDeque::new(),
                fault: RelayFault::None,
                requests: 0,
                generation: vec![0; n],
            }),
        })
    }

    /// The board; a poisoned lock (a panic elsewhere) still gives the state.
    pub(crate) fn board(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Board {
    /// Switches relay `index` (0-based); `relay` is its name in the log.
    /// Returns the new generation.
    pub(crate) fn switch(&mut self, index: usize, relay: u16, on: bool, flash: bool) -> u64 {
        let Some(state) = self.relays.get_mut(index) else {
            return 0;
        };
        let now = Instant::now();
        if on && !*state {
            if self.pulses.len() >= PULSES_KEPT_MAX {
                self.pulses.pop_front();
            }
            self.pulses.push_back(RelayPulse {
                relay,
                on_at: now,
                off_at: None,
                flash,
            });
        } else if !on && *state {
            if let Some(p) = self
                .pulses
                .iter_mut()
                .rev()
                .find(|p| p.relay == relay && p.off_at.is_none())
            {
                p.off_at = Some(now);
            }
        }
        *state = on;
        self.generation[index] += 1;
        self.generation[index]
    }

    /// Ends a flash pulse, unless the relay was switched since.
    fn flash_done(&mut self, index: usize, generation: u64) {
        if self.generation.get(index) == Some(&generation) {
            let relay = u16::try_from(index).unwrap_or(u16::MAX);
            self.switch(index, relay, false, true);
        }
    }
}

/// What a Modbus board does with a request addressed to it. "Flash on"
/// starts a timer task that releases the coil after the value × 100 ms.
pub(crate) fn modbus_request(shared: &Arc<Shared>, request: Request) -> Response {
    let mut board = shared.board();
    let coils = board.relays.len();
    let refuse = |function, code| Response::Exception { function, code };
    match request {
        Request::ReadCoils { addr, count } => {
            let (start, end) = (usize::from(addr), usize::from(addr) + usize::from(count));
            match board.relays.get(start..end) {
                Some(states) => Response::read_coils(states),
                None => refuse(request.function(), ExceptionCode::IllegalDataAddress),
            }
        }
        Request::WriteCoil { addr, value } => {
            let echo = Response::WriteCoil { addr, value };
            if usize::from(addr) < coils {
                match value {
                    COIL_ON | COIL_OFF => {
                        board.switch(usize::from(addr), addr, value == COIL_ON, false);
                        echo
                    }
                    _ => refuse(request.function(), ExceptionCode::IllegalDataValue),
                }
            } else if let Some(index) = addr
                .checked_sub(FLASH_BASE)
                .map(usize::from)
                .filter(|&i| i < coils)
            {
                if value == 0 {
                    return refuse(request.function(), ExceptionCode::IllegalDataValue);
                }
                let relay = addr - FLASH_BASE;
                let generation = board.switch(index, relay, true, true);
                let length = Duration::from_millis(u64::from(value) * u64::from(FLASH_UNIT_MS));
                let shared = Arc::clone(shared);
                tokio::spawn(async move {
                    tokio::time::sleep(length).await;
                    shared.board().flash_done(index, generation);
                });
                echo
            } else {
                refuse(request.function(), ExceptionCode::IllegalDataAddress)
            }
        }
    }
}
