//! Pseudo-terminal plumbing shared by the serial simulators (the scale and
//! the serial label printer): a pty pair whose master the device keeps, and
//! the udev-like symlink that follows it across unplug and replug.
//!
//! Whether anyone has the port open is read off the master, as Linux
//! reports it: while no process holds the slave (`/dev/pts/N`) open,
//! reading the master fails with `EIO`; while one does, it would block.

use std::io;
use std::path::{Path, PathBuf};

use tokio_serial::{SerialPort as _, SerialStream};

/// Creates a pty pair and returns the master and the slave's path (`None`
/// if the system gave it no name). The slave is closed: holding it open
/// would keep the master from ever seeing a reader come and go, and two
/// openers would steal each other's bytes. The reader opens it by path.
pub(crate) fn pair() -> Result<(SerialStream, Option<PathBuf>), tokio_serial::Error> {
    let (master, slave) = SerialStream::pair()?;
    let pty = slave.name().map(PathBuf::from);
    drop(slave);
    Ok((master, pty))
}

/// Replaces `link` with a symlink to `target`.
pub(crate) fn relink(link: &Path, target: &Path) -> io::Result<()> {
    match std::fs::remove_file(link) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::os::unix::fs::symlink(target, link)
}
