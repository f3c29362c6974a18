//! Real-time status: `DLE EOT n` and the one byte a printer answers.
//!
//! A host asks before it sends a job (is there paper? is the cover shut?)
//! and the printer answers at once, even while offline or busy: that is
//! the point of the *real-time* commands. Bit layout as in Epson's ESC/POS
//! reference and the manuals of printers that follow it (Epson TM-T88III,
//! TM-L60II; Citizen CT-S2000; Bixolon/Samsung SRP-350; CBM iDP3240), which
//! agree on every bit used here: in every reply bit 0 is 0, bit 1 is 1,
//! bit 4 is 1 and bit 7 is 0. **Unverified** against a real device; the
//! simulator (`bondgate-sim printer`) answers exactly this.
//!
//! | n | reply bits used here |
//! |---|---|
//! | 1 printer | 3: off-line |
//! | 2 off-line cause | 2: cover open, 3: feeding by the button, 5: stopped at paper end, 6: error |
//! | 3 error cause | 3: auto-cutter error, 5: unrecoverable error, 6: auto-recoverable error |
//! | 4 roll paper sensor | 2+3: paper near end, 5+6: paper end |

use std::fmt;

/// `DLE`: starts the real-time commands.
pub const DLE: u8 = 0x10;
/// `EOT`: with `DLE`, "transmit real-time status".
pub const EOT: u8 = 0x04;

/// The bits that are the same in every reply: 1 and 4 set.
const FIXED_ON: u8 = 0b0001_0010;
/// The bits that must be checked to tell a status byte from other data: the
/// fixed ones (0, 1, 4, 7).
const FIXED_MASK: u8 = 0b1001_0011;

/// Which status `DLE EOT n` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusRequest {
    /// n = 1: printer status (on-line or off-line).
    Printer,
    /// n = 2: why the printer is off-line.
    Offline,
    /// n = 3: which error.
    Error,
    /// n = 4: roll paper sensors.
    PaperRoll,
}

impl StatusRequest {
    /// All four, in order of `n`.
    pub const ALL: [StatusRequest; 4] = [
        StatusRequest::Printer,
        StatusRequest::Offline,
        StatusRequest::Error,
        StatusRequest::PaperRoll,
    ];

    /// The `n` of `DLE EOT n`.
    pub fn n(self) -> u8 {
        match self {
            StatusRequest::Printer => 1,
            StatusRequest::Offline => 2,
            StatusRequest::Error => 3,
            StatusRequest::PaperRoll => 4,
        }
    }

    /// The request for `n`, if it is one of the four.
    pub fn from_n(n: u8) -> Option<StatusRequest> {
        StatusRequest::ALL.into_iter().find(|r| r.n() == n)
    }

    /// The three bytes to send: `10 04 n`.
    pub fn encode(self) -> [u8; 3] {
        [DLE, EOT, self.n()]
    }
}

impl fmt::Display for StatusRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StatusRequest::Printer => "printer status",
            StatusRequest::Offline => "off-line cause",
            StatusRequest::Error => "error cause",
            StatusRequest::PaperRoll => "paper roll status",
        })
    }
}

/// What a host wants to know about a printer before sending it a job. Built
/// up from the replies to several requests ([`StatusReply::apply`]), or set
/// by a simulator and encoded with [`encode_reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrinterStatus {
    /// On-line: it will print what it receives. A printer goes off-line by
    /// itself when its cover opens, its paper runs out or an error occurs.
    pub online: bool,
    /// The cover (paper compartment) is open.
    pub cover_open: bool,
    /// No paper: the end sensor sees none, and printing has stopped.
    pub paper_out: bool,
    /// The roll is nearly used up; printing goes on.
    pub paper_near_end: bool,
    /// An error stops printing (cutter jam, head overheated, hardware fault).
    pub error: bool,
}

impl PrinterStatus {
    /// A printer with paper, cover shut, no error: ready.
    pub const READY: PrinterStatus = PrinterStatus {
        online: true,
        cover_open: false,
        paper_out: false,
        paper_near_end: false,
        error: false,
    };

    /// Whether a job sent now would be printed.
    pub fn can_print(&self) -> bool {
        self.online && !self.cover_open && !self.paper_out && !self.error
    }
}

/// The status byte a printer in state `status` sends for `request`.
pub fn encode_reply(request: StatusRequest, status: &PrinterStatus) -> u8 {
    let bit = |on: bool, bits: u8| if on { bits } else { 0 };
    FIXED_ON
        | match request {
            StatusRequest::Printer => bit(!status.online, 1 << 3),
            StatusRequest::Offline => {
                bit(status.cover_open, 1 << 2)
                    | bit(status.paper_out, 1 << 5)
                    | bit(status.error, 1 << 6)
            }
            // A simulated error is reported as unrecoverable: it stops
            // printing until someone clears it.
            StatusRequest::Error => bit(status.error, 1 << 5),
            StatusRequest::PaperRoll => {
                bit(status.paper_near_end, 0b0000_1100) | bit(status.paper_out, 0b0110_0000)
            }
        }
}

/// One decoded status byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusReply {
    /// Reply to n = 1.
    Printer {
        /// Bit 3 clear.
        online: bool,
    },
    /// Reply to n = 2.
    Offline {
        /// Bit 2.
        cover_open: bool,
        /// Bit 3: paper is being fed with the feed button.
        feed_button: bool,
        /// Bit 5: printing stopped at the paper end.
        paper_end_stop: bool,
        /// Bit 6.
        error: bool,
    },
    /// Reply to n = 3.
    Error {
        /// Bit 3 (recoverable with `DLE ENQ` once the jam is cleared).
        autocutter: bool,
        /// Bit 5.
        unrecoverable: bool,
        /// Bit 6 (e.g. the head overheated; clears by itself).
        auto_recoverable: bool,
    },
    /// Reply to n = 4. Either bit of a pair counts: some printers have two
    /// near-end sensors and set one bit each.
    PaperRoll {
        /// Bits 2, 3.
        near_end: bool,
        /// Bits 5, 6.
        paper_out: bool,
    },
}

impl StatusReply {
    /// Updates what `status` says with what this reply tells.
    pub fn apply(&self, status: &mut PrinterStatus) {
        match *self {
            StatusReply::Printer { online } => status.online = online,
            StatusReply::Offline {
                cover_open,
                paper_end_stop,
                error,
                ..
            } => {
                status.cover_open = cover_open;
                status.paper_out |= paper_end_stop;
                status.error = error;
            }
            StatusReply::Error {
                autocutter,
                unrecoverable,
                auto_recoverable,
            } => status.error = autocutter || unrecoverable || auto_recoverable,
            StatusReply::PaperRoll {
                near_end,
                paper_out,
            } => {
                status.paper_near_end = near_end;
                status.paper_out = paper_out;
            }
        }
    }
}

/// A byte that cannot be a status reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{byte:#04x} is not a {request} reply: bits 1 and 4 must be set, bits 0 and 7 clear")]
pub struct StatusReplyError {
    /// What was asked.
    pub request: StatusRequest,
    /// What came back.
    pub byte: u8,
}

/// Decodes the byte a printer sent for `request`. Checks the fixed bits, so
/// a stray byte (an echo, another command's answer) is not taken for a
/// status.
pub fn decode_reply(request: StatusRequest, byte: u8) -> Result<StatusReply, StatusReplyError> {
    if byte & FIXED_MASK != FIXED_ON {
        return Err(StatusReplyError { request, byte });
    }
    let on = |bits: u8| byte & bits != 0;
    Ok(match request {
        StatusRequest::Printer => StatusReply::Printer {
            online: !on(1 << 3),
        },
        StatusRequest::Offline => StatusReply::Offline {
            cover_open: on(1 << 2),
            feed_button: on(1 << 3),
            paper_end_stop: on(1 << 5),
            error: on(1 << 6),
        },
        StatusRequest::Error => StatusReply::Error {
            autocutter: on(1 << 3),
            unrecoverable: on(1 << 5),
            auto_recoverable: on(1 << 6),
        },
        StatusRequest::PaperRoll => StatusReply::PaperRoll {
            near_end: on(0b0000_1100),
            paper_out: on(0b0110_0000),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_printer_replies_match_the_manuals() {
        // A ready printer: only the fixed bits, 0x12, for every request.
        for request in StatusRequest::ALL {
            assert_eq!(encode_reply(request, &PrinterStatus::READY), 0x12);
        }
        let out = PrinterStatus {
            online: false,
            paper_out: true,
            ..PrinterStatus::READY
        };
        assert_eq!(encode_reply(StatusRequest::Printer, &out), 0x1A);
        assert_eq!(encode_reply(StatusRequest::Offline, &out), 0x32);
        assert_eq!(encode_reply(StatusRequest::PaperRoll, &out), 0x72);
        let near = PrinterStatus {
            paper_near_end: true,
            ..PrinterStatus::READY
        };
        assert_eq!(encode_reply(StatusRequest::PaperRoll, &near), 0x1E);
        let cover = PrinterStatus {
            online: false,
            cover_open: true,
            ..PrinterStatus::READY
        };
        assert_eq!(encode_reply(StatusRequest::Offline, &cover), 0x16);
    }

    #[test]
    fn every_state_survives_the_four_replies() {
        for bits in 0u8..32 {
            let status = PrinterStatus {
                online: bits & 1 != 0,
                cover_open: bits & 2 != 0,
                paper_out: bits & 4 != 0,
                paper_near_end: bits & 8 != 0,
                error: bits & 16 != 0,
            };
            let mut seen = PrinterStatus::default();
            for request in StatusRequest::ALL {
                let byte = encode_reply(request, &status);
                decode_reply(request, byte).unwrap().apply(&mut seen);
            }
            assert_eq!(seen, status);
        }
    }

    #[test]
    fn stray_bytes_are_not_status() {
        for byte in [0x00, 0xFF, 0x13, 0x92, b'A'] {
            let error = decode_reply(StatusRequest::Printer, byte).unwrap_err();
            assert_eq!(error.byte, byte);
        }
        assert_eq!(
            decode_reply(StatusRequest::PaperRoll, 0x00)
                .unwrap_err()
                .to_string(),
            "0x00 is not a paper roll status reply: bits 1 and 4 must be set, bits 0 and 7 clear"
        );
    }

    #[test]
    fn requests_encode_as_dle_eot_n() {
        assert_eq!(StatusRequest::PaperRoll.encode(), [0x10, 0x04, 4]);
        assert_eq!(StatusRequest::from_n(2), Some(StatusRequest::Offline));
        assert_eq!(StatusRequest::from_n(5), None);
    }
}
