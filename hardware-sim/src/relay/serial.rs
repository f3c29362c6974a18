//! A relay board on a pseudo-terminal: the master side, the cable, and a
//! protocol that turns the bytes the host sends into the bytes it answers.
//!
//! While nobody holds the slave open, reading the master fails with `EIO`
//! at once; the task then waits [`IDLE_POLL`] and tries again, so a host
//! that opens the port is heard within that time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_serial::SerialStream;

use super::board::Shared;
use super::{Action, RelayOptions, RelaySimError};

/// How often the task looks for a host while nobody has the port open.
const IDLE_POLL: Duration = Duration::from_millis(10);
/// How long one answer may wait for room in the pty buffer (only a host
/// that never reads fills it); then it is dropped, as a UART overruns.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Bytes from the host in, bytes to answer out. Decoders keep state across
/// calls; `reset` forgets it when the cable is pulled.
pub(super) trait Protocol: Send + 'static {
    fn received(&mut self, shared: &Arc<Shared>, bytes: &[u8]) -> Vec<u8>;
    fn reset(&mut self);
}

/// One plugged-in pty: the master and the slave's path.
struct Plug {
    master: SerialStream,
}

/// The running serial board's handle pieces.
pub(super) struct Running {
    pub(super) task: JoinHandle<()>,
    pub(super) pty: Arc<std::sync::Mutex<Option<PathBuf>>>,
}

fn plug(options: &RelayOptions) -> Result<(Plug, PathBuf), RelaySimError> {
    let (master, pty) = crate::pty::pair()?;
    let pty = pty.ok_or(RelaySimError::NoPath)?;
    if let Some(link) = &options.link {
        crate::pty::relink(link, &pty)?;
    }
    Ok((Plug { master }, pty))
}

/// Creates the pty (and link) and starts the device task.
pub(super) fn start<P: Protocol>(
    options: RelayOptions,
    shared: Arc<Shared>,
    protocol: P,
    actions: mpsc::Receiver<Action>,
) -> Result<Running, RelaySimError> {
    let (first, path) = plug(&options)?;
    let pty = Arc::new(std::sync::Mutex::new(Some(path)));
    let task = tokio::spawn(run(
        options,
        shared,
        protocol,
        actions,
        Some(first),
        Arc::clone(&pty),
    ));
    Ok(Running { task, pty })
}

async fn run<P: Protocol>(
    options: RelayOptions,
    shared: Arc<Shared>,
    mut protocol: P,
    mut actions: mpsc::Receiver<Action>,
    mut current: Option<Plug>,
    pty: Arc<std::sync::Mutex<Option<PathBuf>>>,
) {
    let set_pty = |p: Option<PathBuf>| *pty.lock().unwrap_or_else(|e| e.into_inner()) = p;
    let unplug = |current: &mut Option<Plug>, protocol: &mut P| {
        if current.take().is_some() {
            if let Some(link) = &options.link {
                let _ = std::fs::remove_file(link);
            }
        }
        protocol.reset();
    };
    let mut buf = [0_u8; 256];
    loop {
        tokio::select! {
            action = actions.recv() => match action {
                None | Some(Action::Stop(_)) => {
                    unplug(&mut current, &mut protocol);
                    set_pty(None);
                    if let Some(Action::Stop(ack)) = action {
                        let _ = ack.send(());
                    }
                    return;
                }
                Some(Action::Unplug(ack)) => {
                    unplug(&mut current, &mut protocol);
                    set_pty(None);
                    let _ = ack.send(());
                }
                Some(Action::Replug(ack)) => {
                    let result = if current.is_some() {
                        Ok(())
                    } else {
                        plug(&options).map(|(p, path)| {
                            current = Some(p);
                            set_pty(Some(path));
                        })
                    };
                    let _ = ack.send(result);
                }
            },
            read = read_master(&mut current, &mut buf) => match read {
                Ok(n) if n > 0 => {
                    let answer = protocol.received(&shared, &buf[..n]);
                    if let (false, Some(p)) = (answer.is_empty(), current.as_mut()) {
                        let _ = tokio::time::timeout(WRITE_TIMEOUT, p.master.write_all(&answer)).await;
                    }
                }
                // EIO (nobody has the port open) or end of file: the host
                // closed it; anything half-received is gone with it.
                _ => {
                    protocol.reset();
                    tokio::time::sleep(IDLE_POLL).await;
                }
            },
        }
    }
}

/// Reads from the master; never completes while unplugged.
async fn read_master(current: &mut Option<Plug>, buf: &mut [u8]) -> std::io::Result<usize> {
    match current {
        Some(p) => p.master.read(buf).await,
        None => std::future::pending().await,
    }
}
