//! What the serial and TCP relay drivers share: device I/O that a dropped
//! caller cannot stop half-way, 8N1 serial ports, writes under a timeout.

use std::future::Future;
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio_serial::{SerialPortBuilderExt as _, SerialStream};

use crate::{Confirmation, OutputFault, Pulse, RelayState};

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
/// probed through the methods [`device_output!`] gives it.
pub(crate) trait Device: Send + Sync + 'static {
    /// One pulse, confirmed by read-back (see [`crate::RelayOutput::pulse`]);
    /// `opened` is told when the relay read back on.
    fn pulse(
        &self,
        pulse: &Pulse,
        opened: Option<crate::Opened>,
    ) -> impl Future<Output = Result<Confirmation, OutputFault>> + Send;

    /// Wakes a pulse waiting out its length (see [`crate::RelayOutput::cut_short`]).
    fn cut_short(&self);

    /// The relay state read back (see [`crate::RelayOutput::probe`]).
    fn probe(&self) -> impl Future<Output = Result<RelayState, OutputFault>> + Send;
}

/// Implements [`RelayOutput`](crate::RelayOutput) for a driver `$output`
/// whose [`Device`] is its field `inner: Arc<_>`, named `$kind`: every
/// pulse and probe runs [`detached`], so a pulse ends even if the caller
/// gives up.
macro_rules! device_output {
    ($output:ty, $kind:literal) => {
        impl $crate::RelayOutput for $output {
            fn kind(&self) -> &'static str {
                $kind
            }

            fn pulse(
                &self,
                pulse: &$crate::Pulse,
            ) -> impl ::std::future::Future<
                Output = Result<$crate::Confirmation, $crate::OutputFault>,
            > + Send {
                let device = ::std::sync::Arc::clone(&self.inner);
                let pulse = pulse.clone();
                $crate::device::detached(async move {
                    $crate::device::Device::pulse(&*device, &pulse, None).await
                })
            }

            fn pulse_reporting(
                &self,
                pulse: &$crate::Pulse,
                opened: $crate::Opened,
            ) -> impl ::std::future::Future<
                Output = Result<$crate::Confirmation, $crate::OutputFault>,
            > + Send {
                let device = ::std::sync::Arc::clone(&self.inner);
                let pulse = pulse.clone();
                $crate::device::detached(async move {
                    $crate::device::Device::pulse(&*device, &pulse, Some(opened)).await
                })
            }

            fn cut_short(&self) {
                $crate::device::Device::cut_short(&*self.inner)
            }

            fn probe(
                &self,
            ) -> impl ::std::future::Future<Output = Result<$crate::RelayState, $crate::OutputFault>>
                   + Send {
                let device = ::std::sync::Arc::clone(&self.inner);
                $crate::device::detached(async move {
                    $crate::device::Device::probe(&*device).await
                })
            }
        }
    };
}
pub(crate) use device_output;

/// Waits until `end`, or until the pulse is cut short.
pub(crate) async fn wait_out(end: tokio::time::Instant, cut: &tokio::sync::Notify) {
    tokio::select! {
        () = tokio::time::sleep_until(end) => {}
        () = cut.notified() => {}
    }
}

/// Tells `opened`, if anyone listens, that the relay read back on.
pub(crate) fn tell(opened: &mut Option<crate::Opened>) {
    if let Some(tx) = opened.take() {
        let _ = tx.send(());
    }
}

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
