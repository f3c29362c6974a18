//! A Modbus relay board on TCP or on a pseudo-terminal (RTU).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bondgate_protocol::relay::modbus::{
    encode_rtu, encode_tcp, Direction, ExceptionCode, ModbusError, Request, Response, RtuDecoder,
    RtuEvent, TcpDecoder,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::board::{modbus_request, RelayFault, Shared, GARBAGE};
use super::serial::{self, Protocol};
use super::{Action, BoardTask, RelayControl, RelayOptions, RelaySimError, ACTION_QUEUE_DEPTH};

/// Most TCP connections served at once; a gate has one server. More are
/// accepted and closed at once, as small boards do.
const CONNECTIONS_MAX: usize = 4;

/// The answer to one PDU addressed to this board, or `None` for none.
fn answer_pdu(shared: &Arc<Shared>, pdu: &[u8]) -> Option<Vec<u8>> {
    let fault = {
        let mut board = shared.board();
        if board.fault == RelayFault::Silent {
            return None;
        }
        board.requests += 1;
        board.fault
    };
    let response = match Request::decode(pdu) {
        Ok(request) => modbus_request(shared, request),
        Err(ModbusError::Function(function)) => Response::Exception {
            function,
            code: ExceptionCode::IllegalFunction,
        },
        Err(e) => {
            tracing::debug!("Modbus board: bad request: {e}");
            Response::Exception {
                function: pdu.first().copied().unwrap_or(0) & 0x7F,
                code: ExceptionCode::IllegalDataValue,
            }
        }
    };
    if fault == RelayFault::Garbage {
        return Some(GARBAGE.to_vec());
    }
    Some(response.encode())
}

struct Rtu {
    unit: u8,
    decoder: RtuDecoder,
}

impl Protocol for Rtu {
    fn received(&mut self, shared: &Arc<Shared>, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for event in self.decoder.push(bytes) {
            match event {
                RtuEvent::Frame(frame) if frame.unit == self.unit => {
                    match answer_pdu(shared, &frame.pdu) {
                        Some(pdu) if shared.board().fault == RelayFault::Garbage => {
                            out.extend(pdu);
                        }
                        Some(pdu) => out.extend(encode_rtu(self.unit, &pdu)),
                        None => {}
                    }
                }
                // Another unit's frame on a shared line: not ours to answer.
                RtuEvent::Frame(_) => {}
                RtuEvent::Noise(n) => tracing::debug!(bytes = n, "Modbus RTU board: noise"),
            }
        }
        out
    }

    fn reset(&mut self) {
        let _ = self.decoder.reset();
    }
}

/// A running Modbus relay board. Dropping it stops the device.
#[derive(Debug)]
pub struct ModbusRelaySim {
    board: BoardTask,
    addr: Option<SocketAddr>,
    pty: Option<Arc<std::sync::Mutex<Option<PathBuf>>>>,
}

impl ModbusRelaySim {
    /// Listens on `addr` (port 0 picks one: see [`ModbusRelaySim::addr`]).
    pub async fn start_tcp(
        addr: SocketAddr,
        options: RelayOptions,
    ) -> Result<ModbusRelaySim, RelaySimError> {
        options.check()?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Shared::new(options.relays);
        let (tx, rx) = mpsc::channel(ACTION_QUEUE_DEPTH);
        let task = tokio::spawn(run_tcp(
            addr,
            options.unit,
            Some(listener),
            Arc::clone(&shared),
            rx,
        ));
        Ok(ModbusRelaySim {
            board: BoardTask {
                control: RelayControl { tx, shared },
                task: Some(task),
                link: None,
            },
            addr: Some(addr),
            pty: None,
        })
    }

    /// An RTU board on a pseudo-terminal (and `options.link`).
    pub async fn start_rtu(options: RelayOptions) -> Result<ModbusRelaySim, RelaySimError> {
        options.check()?;
        let shared = Shared::new(options.relays);
        let (tx, rx) = mpsc::channel(ACTION_QUEUE_DEPTH);
        let link = options.link.clone();
        let protocol = Rtu {
            unit: options.unit,
            decoder: RtuDecoder::new(Direction::Request),
        };
        let running = serial::start(options, Arc::clone(&shared), protocol, rx)?;
        Ok(ModbusRelaySim {
            board: BoardTask {
                control: RelayControl { tx, shared },
                task: Some(running.task),
                link,
            },
            addr: None,
            pty: Some(running.pty),
        })
    }

    /// TCP: the address listened on (kept across unplug and replug).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// RTU: the path to open (the link if configured, else the pty).
    pub fn path(&self) -> Option<PathBuf> {
        self.board.path(self.pty.as_ref()?)
    }

    /// A handle to inspect and disturb the board while it runs.
    pub fn control(&self) -> RelayControl {
        self.board.control.clone()
    }

    /// Stops the board and waits.
    pub async fn shutdown(self) {
        self.board.shutdown().await;
    }
}

/// Accepts connections and serves each in its own task; unplug drops the
/// listener (connections are refused) and every connection.
async fn run_tcp(
    addr: SocketAddr,
    unit: u8,
    mut listener: Option<TcpListener>,
    shared: Arc<Shared>,
    mut actions: mpsc::Receiver<Action>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            action = actions.recv() => match action {
                None | Some(Action::Stop(_)) => {
                    connections.shutdown().await;
                    if let Some(Action::Stop(ack)) = action {
                        let _ = ack.send(());
                    }
                    return;
                }
                Some(Action::Unplug(ack)) => {
                    listener = None;
                    connections.shutdown().await;
                    let _ = ack.send(());
                }
                Some(Action::Replug(ack)) => {
                    let result = match listener {
                        Some(_) => Ok(()),
                        None => TcpListener::bind(addr).await.map(|l| listener = Some(l)).map_err(RelaySimError::from),
                    };
                    let _ = ack.send(result);
                }
            },
            accepted = accept(&listener) => {
                if let Ok((stream, _)) = accepted {
                    if connections.len() < CONNECTIONS_MAX {
                        connections.spawn(serve(stream, unit, Arc::clone(&shared)));
                    }
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {},
        }
    }
}

async fn accept(listener: &Option<TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// One connection: frames in, answers out, until the host closes it or
/// breaks the framing.
async fn serve(mut stream: TcpStream, unit: u8, shared: Arc<Shared>) {
    let mut decoder = TcpDecoder::new();
    let mut buf = [0_u8; 512];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let frames = match decoder.push(&buf[..n]) {
            Ok(frames) => frames,
            Err(e) => {
                tracing::debug!("Modbus TCP board: {e}; closing");
                return;
            }
        };
        for frame in frames {
            if frame.unit != unit {
                continue;
            }
            let Some(pdu) = answer_pdu(&shared, &frame.pdu) else {
                continue;
            };
            let out = if shared.board().fault == RelayFault::Garbage {
                pdu
            } else {
                encode_tcp(frame.transaction, unit, &pdu)
            };
            if stream.write_all(&out).await.is_err() {
                return;
            }
        }
    }
}
