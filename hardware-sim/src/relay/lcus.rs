//! An LCUS serial relay board on a pseudo-terminal.

use std::path::PathBuf;
use std::sync::Arc;

use bondgate_protocol::relay::{encode_status, BoardEvent, CommandDecoder};
use tokio::sync::mpsc;

use super::board::{RelayFault, Shared, GARBAGE};
use super::serial::{self, Protocol};
use super::{BoardTask, RelayControl, RelayOptions, RelaySimError, ACTION_QUEUE_DEPTH};

struct Lcus {
    decoder: CommandDecoder,
}

impl Protocol for Lcus {
    fn received(&mut self, shared: &Arc<Shared>, bytes: &[u8]) -> Vec<u8> {
        let mut answer = Vec::new();
        for event in self.decoder.push(bytes) {
            let mut board = shared.board();
            if board.fault == RelayFault::Silent {
                continue;
            }
            match event {
                BoardEvent::Command(cmd) => {
                    board.requests += 1;
                    let index = usize::from(cmd.channel) - 1;
                    board.switch(index, u16::from(cmd.channel), cmd.on, false);
                }
                BoardEvent::StatusQuery => {
                    board.requests += 1;
                    if board.fault == RelayFault::Garbage {
                        answer.extend_from_slice(GARBAGE);
                    } else {
                        answer.extend(encode_status(&board.relays));
                    }
                }
                BoardEvent::Noise(n) => tracing::debug!(bytes = n, "LCUS board: noise dropped"),
            }
        }
        answer
    }

    fn reset(&mut self) {
        let _ = self.decoder.finish();
    }
}

/// A running LCUS relay board. Dropping it stops the device (the pty
/// closes); [`LcusRelaySim::shutdown`] also waits and removes the link.
#[derive(Debug)]
pub struct LcusRelaySim {
    board: BoardTask,
    pty: Arc<std::sync::Mutex<Option<PathBuf>>>,
}

impl LcusRelaySim {
    /// Creates the pty (and link) and starts listening. Channels count
    /// from 1 to `options.relays` (at most 8 on an LCUS board).
    pub async fn start(options: RelayOptions) -> Result<LcusRelaySim, RelaySimError> {
        options.check()?;
        if options.relays > u16::from(bondgate_protocol::relay::LCUS_CHANNELS_MAX) {
            return Err(RelaySimError::Options(
                "an LCUS board has at most 8 relays".into(),
            ));
        }
        let shared = Shared::new(options.relays);
        let (tx, rx) = mpsc::channel(ACTION_QUEUE_DEPTH);
        let link = options.link.clone();
        let protocol = Lcus {
            decoder: CommandDecoder::new(),
        };
        let running = serial::start(options, Arc::clone(&shared), protocol, rx)?;
        Ok(LcusRelaySim {
            board: BoardTask {
                control: RelayControl { tx, shared },
                task: Some(running.task),
                link,
            },
            pty: running.pty,
        })
    }

    /// The path to open: the link if configured, else the current pty.
    pub fn path(&self) -> Option<PathBuf> {
        self.board.path(&self.pty)
    }

    /// A handle to inspect and disturb the board while it runs.
    pub fn control(&self) -> RelayControl {
        self.board.control.clone()
    }

    /// Stops the device (closing the pty), removes the link, and waits.
    pub async fn shutdown(self) {
        self.board.shutdown().await;
    }
}
