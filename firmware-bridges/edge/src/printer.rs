//! A label printer on raw TCP or a serial port: one connection (TCP) or
//! one opening of the port (serial) per attempt. The one copy of this I/O,
//! used by the server for its own printers and by the printer bridge.
//!
//! An attempt asks `DLE EOT 1/2/4` first and sends nothing to a printer
//! that cannot print (out of paper, cover open, off-line, in error), so a
//! job is never left in a stopped printer's buffer; then it sends the
//! bytes and asks `DLE EOT 1` again. A printer handles its input in order,
//! so an on-line answer to a request sent after the last byte means the
//! label is out. Anything else is a failed attempt: the job stays queued.

use std::time::Duration;

use bondgate_protocol::escpos::{decode_reply, PrinterStatus, StatusRequest};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::serial::SerialSettings;

/// Where the printer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrinterPort {
    /// Raw TCP, `host:port` (port 9100 on nearly every label printer).
    Tcp(String),
    /// A serial port.
    Serial(SerialSettings),
}

impl PrinterPort {
    /// `tcp 10.0.0.9:9100`, `serial /dev/ttyUSB0`, for logs.
    pub fn describe(&self) -> String {
        match self {
            PrinterPort::Tcp(addr) => format!("tcp {addr}"),
            PrinterPort::Serial(s) => format!("serial {}", s.path.display()),
        }
    }
}

/// How long connecting to a network printer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a printer may take to answer a status request: after a whole
/// label it answers when it is done printing.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptError {
    /// Why, for logs and the health report.
    pub error: String,
    /// What the printer said about itself, if it answered at all.
    pub status: Option<PrinterStatus>,
}

impl AttemptError {
    /// A failure before the printer said anything about itself.
    pub fn plain(error: impl Into<String>) -> AttemptError {
        AttemptError {
            error: error.into(),
            status: None,
        }
    }
}

/// Why a printer that answered cannot print, in words.
pub fn why_not(status: &PrinterStatus) -> &'static str {
    if status.paper_out {
        "printer is out of paper"
    } else if status.cover_open {
        "printer cover is open"
    } else if status.error {
        "printer is in error"
    } else if !status.online {
        "printer is off-line"
    } else {
        "printer is ready"
    }
}

async fn connect(port: &PrinterPort) -> Result<Box<dyn Io>, AttemptError> {
    match port {
        PrinterPort::Tcp(addr) => {
            let stream =
                tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
                    .await
                    .map_err(|_| AttemptError::plain(format!("printer {addr} did not answer")))?
                    .map_err(|e| AttemptError::plain(format!("printer {addr} unreachable: {e}")))?;
            let _ = stream.set_nodelay(true);
            Ok(Box::new(stream))
        }
        PrinterPort::Serial(settings) => settings
            .open()
            .map(|p| Box::new(p) as Box<dyn Io>)
            .map_err(|e| AttemptError::plain(e.to_string())),
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Asks the printer how it is.
pub async fn probe(port: &PrinterPort) -> Result<PrinterStatus, AttemptError> {
    let mut io = connect(port).await?;
    let status = ask_all(&mut io).await.map_err(AttemptError::plain)?;
    let _ = io.shutdown().await;
    Ok(status)
}

/// One attempt at printing `bytes` (see the module notes).
pub async fn print(port: &PrinterPort, bytes: &[u8]) -> Result<PrinterStatus, AttemptError> {
    let mut io = connect(port).await?;
    let fail = |error: String, status: PrinterStatus| AttemptError {
        error,
        status: Some(status),
    };
    let mut status = ask_all(&mut io).await.map_err(AttemptError::plain)?;
    if !status.can_print() {
        return Err(fail(why_not(&status).into(), status));
    }
    io.write_all(bytes).await.map_err(|e| {
        fail(
            format!("printer connection lost while printing: {e}"),
            status,
        )
    })?;
    ask(&mut io, StatusRequest::Printer, &mut status)
        .await
        .map_err(|e| fail(e, status))?;
    let _ = io.shutdown().await;
    if status.online {
        Ok(status)
    } else {
        Err(fail("printer went off-line while printing".into(), status))
    }
}

async fn ask<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    io: &mut S,
    request: StatusRequest,
    status: &mut PrinterStatus,
) -> Result<(), String> {
    io.write_all(&request.encode())
        .await
        .map_err(|e| format!("printer connection lost: {e}"))?;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(STATUS_TIMEOUT, io.read(&mut byte)).await {
        Err(_) => Err(format!(
            "printer did not answer a {request} request within {} s",
            STATUS_TIMEOUT.as_secs()
        )),
        Ok(Ok(0)) => Err("printer closed the connection".into()),
        Ok(Err(e)) => Err(format!("printer connection lost: {e}")),
        Ok(Ok(_)) => {
            decode_reply(request, byte[0])
                .map_err(|e| format!("printer sent a bad status byte: {e}"))?
                .apply(status);
            Ok(())
        }
    }
}

async fn ask_all<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    io: &mut S,
) -> Result<PrinterStatus, String> {
    let mut status = PrinterStatus::READY;
    for request in [
        StatusRequest::Printer,
        StatusRequest::Offline,
        StatusRequest::PaperRoll,
    ] {
        ask(io, request, &mut status).await?;
    }
    Ok(status)
}
