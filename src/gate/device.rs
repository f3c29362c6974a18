//! What the serial and TCP relay drivers share: device I/O that a dropped
//! caller cannot stop half-way, 8N1 serial ports, writes under a timeout.

use std::future::Future;
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio_serial::{SerialPortBuilderExt as _, SerialStream};

use super::{Confirmation, OutputFault, Pulse, RelayState};

/// How long one device call (a write, or a status query and its answer)
/// may take. An LCUS board answers within a few ms at 9600 baud; 300 ms
/// is generous for a loaded USB hub and still short next to a guard's
/// patience and the gate's confirm timeout.
pub const IO_TIMEOUT: Duration = Duration::from_millis(300);

/// Runs device I/O in its own task and awaits it: dropping the returned
/// future does not stop the I/O half-way (a pulse still ends with "off").
pub(crate) async fn detached<T: Send + 'static>(
    io: impl std::future::Future<Output = Result<T, OutputFault>> + Send + 'static,
) -> Result<T, OutputFault> {
    match tokio::spawn(io).await {
        Ok(result) => result,
        Err(e) => Err(OutputFault::Io(format!("the gate output task failed: {e}"))),
    }
}

/// A relay driver's device side: its connection behind one lock, pulsed and
/// probed through the [`GateOutput`](super::GateOutput) that
/// [`device_output!`] implements.
pub(crate) trait Device: Send + Sync + 'static {
    /// One pulse, confirmed by read-back (see [`super::GateOutput::pulse`]).
    fn pulse(
        &self,
        pulse: &Pulse,
    ) -> impl Future<Output = Result<Confirmation, OutputFault>> + Send;

    /// The relay state read back (see [`super::GateOutput::probe`]).
    fn probe(&self) -> impl Future<Output = Result<RelayState, OutputFault>> + Send;
}

/// Implements [`super::GateOutput`] for a driver `$output` whose
/// [`Device`] is its field `inner: Arc<_>`, named `$kind`: every pulse and
/// probe runs [`detached`], so a pulse ends even if the caller gives up.
macro_rules! device_output {
    ($output:ty, $kind:literal) => {
        impl $crate::gate::GateOutput for $output {
            fn kind(&self) -> &'static str {
                $kind
            }

            fn pulse<'a>(
                &'a self,
                pulse: &'a $crate::gate::Pulse,
            ) -> $crate::mqtt::BoxFuture<
                'a,
                Result<$crate::gate::Confirmation, $crate::gate::OutputFault>,
            > {
                let device = ::std::sync::Arc::clone(&self.inner);
                let pulse = pulse.clone();
                Box::pin($crate::gate::device::detached(async move {
                    $crate::gate::device::Device::pulse(&*device, &pulse).await
                }))
            }

            fn probe(
                &self,
            ) -> $crate::mqtt::BoxFuture<
                '_,
                Result<$crate::gate::RelayState, $crate::gate::OutputFault>,
            > {
                let device = ::std::sync::Arc::clone(&self.inner);
                Box::pin($crate::gate::device::detached(async move {
                    $crate::gate::device::Device::probe(&*device).await
                }))
            }
        }
    };
}
pub(crate) use device_output;

/// Passes `result` on; after a failure first drops the connection in
/// `slot`, so the next call opens a new one.
pub(crate) fn drop_on_fault<C, T>(
    slot: &mut Option<C>,
    result: Result<T, OutputFault>,
) -> Result<T, OutputFault> {
    if result.is_err() {
        *slot = None;
    }
    result
}

/// Opens a serial port 8N1 without flow control, as relay boards use.
pub(crate) fn open_serial(path: &std::path::Path, baud: u32) -> Result<SerialStream, OutputFault> {
    tokio_serial::new(path.to_string_lossy(), baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .flow_control(tokio_serial::FlowControl::None)
        .open_native_async()
        .map_err(|e| OutputFault::Offline(format!("{}: {e}", path.display())))
}

/// Writes all of `bytes` within [`IO_TIMEOUT`].
pub(crate) async fn write_timed(
    port: &mut (impl tokio::io::AsyncWrite + Unpin),
    bytes: &[u8],
) -> Result<(), OutputFault> {
    let write = async {
        port.write_all(bytes).await?;
        port.flush().await
    };
    match tokio::time::timeout(IO_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(OutputFault::Io(format!("write failed: {e}"))),
        Err(_) => Err(timeout_fault()),
    }
}

pub(crate) fn timeout_fault() -> OutputFault {
    OutputFault::Timeout(u64::try_from(IO_TIMEOUT.as_millis()).unwrap_or(u64::MAX))
}
