//! Printer traffic: `printer/{station}/job` (server → printer bridge) and
//! `printer/{station}/status` (bridge → server).
//!
//! ## The job envelope
//!
//! A label is a few KiB of ESC/POS, which is binary (NUL, ESC, GB18030
//! bytes, raw barcode data), so the job is **one JSON header line, a `\n`,
//! then the raw bytes**:
//!
//! ```text
//! {"v":1,"job":42,"len":1873}\n<1873 bytes of ESC/POS>
//! ```
//!
//! Chosen over JSON with base64 because the body stays byte-for-byte what
//! the printer receives (a `mosquitto_sub` dump can be piped to a printer
//! or to the decoder as is), costs no 33 % inflation and no second copy on
//! a Pi, and the header is still a strict, versioned JSON object decoded
//! like every other payload. The header is at most
//! [`JOB_HEADER_BYTES_MAX`] bytes and ends at the first `\n` (JSON never
//! holds a raw newline inside a value, and the body follows it). `len` must
//! equal the number of bytes after the newline, so a truncated or padded
//! message is refused, and the body is at most [`JOB_BYTES_MAX`].
//!
//! `job` is the server's `print_jobs` id. The server re-sends a job it has
//! no answer for **with the same id**, and the bridge prints each id at
//! most once, answering a repeat with `printed` again: a label is never
//! lost and never doubled.
//!
//! ## The bridge's reports
//!
//! JSON, one of:
//!
//! ```text
//! {"v":1,"report":"printed","job":42}
//! {"v":1,"report":"failed","job":42,"reason":"label bytes refused"}
//! {"v":1,"report":"status","online":true,"cover_open":false,"paper_out":false,"paper_near_end":false,"error":false}
//! ```
//!
//! `printed` means the printer answered ready to a status request sent
//! after the job's last byte. `failed` is final (the job will never print
//! as sent: the server records the error and stops); a printer that is out
//! of paper, open or off is not a failure but a `status`, and the bridge
//! holds the job until it prints.

use serde::{Deserialize, Serialize};

use super::{check_bytes, decode_json, encode_json, FieldError, PayloadError, PromptText, VERSION};
use crate::escpos::PrinterStatus;

/// Largest ESC/POS body a job may carry. A shipping label with a QR code
/// and a logo-free layout is about 2 KiB; 128 KiB leaves room for a raster
/// logo and stays well under the server's MQTT packet limit (256 KiB).
pub const JOB_BYTES_MAX: usize = 128 * 1024;

/// Largest header line, newline excluded. The header holds two numbers.
pub const JOB_HEADER_BYTES_MAX: usize = 256;

/// One label job on `printer/{station}/job`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintJob {
    /// The `print_jobs` id: the same on every re-send. At least 1.
    pub job: u64,
    /// The ESC/POS bytes, exactly as the printer receives them.
    pub bytes: Vec<u8>,
}

/// Why a job envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrintJobError {
    /// No `\n` within [`JOB_HEADER_BYTES_MAX`] + 1 bytes: not an envelope
    /// (for instance the raw ESC/POS an older server sent).
    #[error("print job has no header line (at most {max} bytes then a newline)")]
    NoHeader {
        /// [`JOB_HEADER_BYTES_MAX`].
        max: usize,
    },
    /// The header line is not a valid v1 header.
    #[error("print job header: {0}")]
    Header(PayloadError),
    /// The body is longer than [`JOB_BYTES_MAX`].
    #[error("print job too large ({len} bytes, at most {max})")]
    TooLarge {
        /// Body size received (or declared).
        len: usize,
        /// [`JOB_BYTES_MAX`].
        max: usize,
    },
    /// `len` says one size, the body is another (truncated or padded).
    #[error("print job body is {actual} bytes but its header says {declared}")]
    LengthMismatch {
        /// From the header.
        declared: u64,
        /// Received.
        actual: usize,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobHeader {
    v: u64,
    job: u64,
    len: u64,
}

impl PrintJob {
    /// The envelope: header line, `\n`, the bytes. Panics if the body is
    /// over [`JOB_BYTES_MAX`] or the id is 0 (a caller's bug: check with
    /// [`PrintJob::new`]).
    pub fn encode(&self) -> Vec<u8> {
        assert!(self.job >= 1 && self.bytes.len() <= JOB_BYTES_MAX);
        let mut out = encode_json(&JobHeader {
            v: VERSION,
            job: self.job,
            len: self.bytes.len() as u64,
        });
        out.push(b'\n');
        out.extend_from_slice(&self.bytes);
        out
    }

    /// A job whose id and size are within the rules.
    pub fn new(job: u64, bytes: Vec<u8>) -> Result<PrintJob, PrintJobError> {
        if job == 0 {
            return Err(PrintJobError::Header(PayloadError::Field(
                job_out_of_range(0),
            )));
        }
        if bytes.len() > JOB_BYTES_MAX {
            return Err(PrintJobError::TooLarge {
                len: bytes.len(),
                max: JOB_BYTES_MAX,
            });
        }
        Ok(PrintJob { job, bytes })
    }

    /// Parses an envelope.
    pub fn decode(msg: &[u8]) -> Result<PrintJob, PrintJobError> {
        let window = &msg[..msg.len().min(JOB_HEADER_BYTES_MAX + 1)];
        let nl = window
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(PrintJobError::NoHeader {
                max: JOB_HEADER_BYTES_MAX,
            })?;
        let (header, body) = (&msg[..nl], &msg[nl + 1..]);
        let h: JobHeader = decode_json(header).map_err(PrintJobError::Header)?;
        if h.job == 0 {
            return Err(PrintJobError::Header(PayloadError::Field(
                job_out_of_range(0),
            )));
        }
        if h.len > JOB_BYTES_MAX as u64 || body.len() > JOB_BYTES_MAX {
            return Err(PrintJobError::TooLarge {
                len: usize::try_from(h.len).unwrap_or(usize::MAX).max(body.len()),
                max: JOB_BYTES_MAX,
            });
        }
        if h.len != body.len() as u64 {
            return Err(PrintJobError::LengthMismatch {
                declared: h.len,
                actual: body.len(),
            });
        }
        Ok(PrintJob {
            job: h.job,
            bytes: body.to_vec(),
        })
    }
}

fn job_out_of_range(value: i64) -> FieldError {
    FieldError::OutOfRange {
        field: "job",
        value,
        min: 1,
        max: i64::MAX,
    }
}

/// What a printer bridge reports on `printer/{station}/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrinterReport {
    /// The job's bytes were sent and the printer answered ready after the
    /// last of them (or the job was printed before, and this is a repeat).
    Printed {
        /// The job id.
        job: u64,
    },
    /// The job will never print as sent (the bridge could not take it);
    /// final.
    Failed {
        /// The job id.
        job: u64,
        /// Why, for people.
        reason: PromptText,
    },
    /// The printer's state, on connect, on every change and while a job is
    /// held.
    Status(PrinterStatus),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ReportKind {
    Printed,
    Failed,
    Status,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportWire {
    v: u64,
    report: ReportKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    job: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<PromptText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    online: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cover_open: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    paper_out: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    paper_near_end: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<bool>,
}

impl ReportWire {
    fn bare(report: ReportKind, job: Option<u64>) -> ReportWire {
        ReportWire {
            v: VERSION,
            report,
            job,
            reason: None,
            online: None,
            cover_open: None,
            paper_out: None,
            paper_near_end: None,
            error: None,
        }
    }
}

fn shape(detail: &str) -> PayloadError {
    PayloadError::Shape {
        detail: detail.to_owned(),
    }
}

impl PrinterReport {
    /// JSON bytes (see the module notes).
    pub fn encode(&self) -> Vec<u8> {
        let wire = match self {
            PrinterReport::Printed { job } => ReportWire::bare(ReportKind::Printed, Some(*job)),
            PrinterReport::Failed { job, reason } => ReportWire {
                reason: Some(reason.clone()),
                ..ReportWire::bare(ReportKind::Failed, Some(*job))
            },
            PrinterReport::Status(s) => ReportWire {
                online: Some(s.online),
                cover_open: Some(s.cover_open),
                paper_out: Some(s.paper_out),
                paper_near_end: Some(s.paper_near_end),
                error: Some(s.error),
                ..ReportWire::bare(ReportKind::Status, None)
            },
        };
        encode_json(&wire)
    }

    /// Parses a report: each kind with exactly its own fields.
    pub fn decode(bytes: &[u8]) -> Result<PrinterReport, PayloadError> {
        check_bytes(bytes)?;
        let w: ReportWire = decode_json(bytes)?;
        let status_fields = [
            w.online,
            w.cover_open,
            w.paper_out,
            w.paper_near_end,
            w.error,
        ];
        let job = |job: Option<u64>| match job {
            None => Err(shape("missing field `job`")),
            Some(0) => Err(PayloadError::Field(job_out_of_range(0))),
            Some(j) => Ok(j),
        };
        match w.report {
            ReportKind::Printed | ReportKind::Failed
                if status_fields.iter().any(Option::is_some) =>
            {
                Err(shape("a job report carries no printer status"))
            }
            ReportKind::Printed if w.reason.is_some() => {
                Err(shape("a printed report carries no reason"))
            }
            ReportKind::Printed => Ok(PrinterReport::Printed { job: job(w.job)? }),
            ReportKind::Failed => Ok(PrinterReport::Failed {
                job: job(w.job)?,
                reason: w.reason.ok_or_else(|| shape("missing field `reason`"))?,
            }),
            ReportKind::Status if w.job.is_some() || w.reason.is_some() => {
                Err(shape("a status report carries no job"))
            }
            ReportKind::Status => {
                let [Some(online), Some(cover_open), Some(paper_out), Some(paper_near_end), Some(error)] =
                    status_fields
                else {
                    return Err(shape("a status report needs online, cover_open, paper_out, paper_near_end and error"));
                };
                Ok(PrinterReport::Status(PrinterStatus {
                    online,
                    cover_open,
                    paper_out,
                    paper_near_end,
                    error,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_a_header_line_and_the_raw_bytes() {
        let job = PrintJob::new(42, vec![0x1B, 0x40, 0, b'\n', 0xFF]).unwrap();
        let bytes = job.encode();
        assert_eq!(
            bytes,
            b"{\"v\":1,\"job\":42,\"len\":5}\n\x1b\x40\x00\n\xff".to_vec()
        );
        assert_eq!(PrintJob::decode(&bytes), Ok(job));
        let empty = PrintJob::new(1, Vec::new()).unwrap();
        assert_eq!(PrintJob::decode(&empty.encode()), Ok(empty));
    }

    #[test]
    fn bad_jobs_are_refused_with_a_reason() {
        let raw_escpos = b"\x1b@\x1c&hello\x1dV\x42\x00";
        assert_eq!(
            PrintJob::decode(raw_escpos),
            Err(PrintJobError::NoHeader {
                max: JOB_HEADER_BYTES_MAX
            })
        );
        assert!(matches!(
            PrintJob::decode(b"{\"v\":2,\"job\":1,\"len\":0}\n"),
            Err(PrintJobError::Header(
                PayloadError::UnsupportedVersion { .. }
            ))
        ));
        assert!(matches!(
            PrintJob::decode(b"{\"v\":1,\"job\":0,\"len\":0}\n"),
            Err(PrintJobError::Header(PayloadError::Field(_)))
        ));
        assert!(matches!(
            PrintJob::decode(b"{\"v\":1,\"job\":1,\"len\":0,\"x\":1}\n"),
            Err(PrintJobError::Header(PayloadError::Shape { .. }))
        ));
        assert_eq!(
            PrintJob::decode(b"{\"v\":1,\"job\":1,\"len\":3}\nab"),
            Err(PrintJobError::LengthMismatch {
                declared: 3,
                actual: 2
            })
        );
        assert_eq!(
            PrintJob::decode(b"{\"v\":1,\"job\":1,\"len\":1}\nab"),
            Err(PrintJobError::LengthMismatch {
                declared: 1,
                actual: 2
            })
        );
        assert!(matches!(
            PrintJob::decode(b"{\"v\":1,\"job\":1,\"len\":99999999999}\n"),
            Err(PrintJobError::TooLarge { .. })
        ));
        let mut big = b"{\"v\":1,\"job\":1,\"len\":1}\n".to_vec();
        big.resize(big.len() + JOB_BYTES_MAX + 1, b'x');
        assert!(matches!(
            PrintJob::decode(&big),
            Err(PrintJobError::TooLarge { .. })
        ));
        assert!(PrintJob::new(1, vec![0; JOB_BYTES_MAX + 1]).is_err());
        assert!(PrintJob::new(0, Vec::new()).is_err());
        // A header that never ends within the limit.
        let long = vec![b' '; JOB_HEADER_BYTES_MAX + 10];
        assert!(matches!(
            PrintJob::decode(&long),
            Err(PrintJobError::NoHeader { .. })
        ));
    }

    #[test]
    fn reports_round_trip_in_their_documented_form() {
        let printed = PrinterReport::Printed { job: 42 };
        assert_eq!(printed.encode(), br#"{"v":1,"report":"printed","job":42}"#);
        let failed = PrinterReport::Failed {
            job: 7,
            reason: PromptText::new("label bytes refused").unwrap(),
        };
        assert_eq!(
            failed.encode(),
            br#"{"v":1,"report":"failed","job":7,"reason":"label bytes refused"}"#
        );
        let status = PrinterReport::Status(PrinterStatus {
            online: false,
            paper_out: true,
            ..PrinterStatus::READY
        });
        assert_eq!(
            status.encode(),
            br#"{"v":1,"report":"status","online":false,"cover_open":false,"paper_out":true,"paper_near_end":false,"error":false}"#
        );
        for r in [printed, failed, status] {
            assert_eq!(PrinterReport::decode(&r.encode()), Ok(r));
        }
    }

    #[test]
    fn reports_with_foreign_fields_are_refused() {
        for json in [
            r#"{"v":1,"report":"printed"}"#,
            r#"{"v":1,"report":"printed","job":0}"#,
            r#"{"v":1,"report":"printed","job":1,"reason":"x"}"#,
            r#"{"v":1,"report":"printed","job":1,"online":true}"#,
            r#"{"v":1,"report":"failed","job":1}"#,
            r#"{"v":1,"report":"status","online":true}"#,
            r#"{"v":1,"report":"status","job":1,"online":true,"cover_open":false,"paper_out":false,"paper_near_end":false,"error":false}"#,
            r#"{"v":1,"report":"jammed","job":1}"#,
            r#"{"v":1,"report":"printed","job":-1}"#,
            r#"{"v":1,"report":"printed","job":1.0}"#,
            r#"{"v":1,"report":"printed","job":1,"extra":1}"#,
        ] {
            assert!(PrinterReport::decode(json.as_bytes()).is_err(), "{json}");
        }
    }
}
