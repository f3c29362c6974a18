//! What the serial and TCP relay drivers share: device I/O that a dropped
//! caller cannot stop half-way, 8N1 serial ports, writes under a timeout.

use std::future::Future;
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::sync::{Mutex, Notify};
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

/// A relay driver's device side: its connection behind one lock (which
/// also keeps pulses and probes from interleaving on the wire), the steps
/// of one pulse and one read-back. The lock, the expiry check and dropping
/// a connection after a fault are done once, by [`pulse`] and [`probe`].
pub(crate) trait Device: Send + Sync + 'static {
    /// An open port or connection.
    type Conn: Send;

    /// `None` until first used or after a failure.
    fn conn(&self) -> &Mutex<Option<Self::Conn>>;

    /// Wakes a pulse waiting out its length.
    fn cut(&self) -> &Notify;

    /// One pulse, confirmed by read-back (see [`crate::RelayOutput::pulse`]);
    /// `opened` is told when the relay read back on. Opens the connection
    /// if need be.
    fn pulse_on(
        &self,
        slot: &mut Option<Self::Conn>,
        pulse: &Pulse,
        opened: Option<crate::Opened>,
    ) -> impl Future<Output = Result<Confirmation, OutputFault>> + Send;

    /// The relay state read back, opening the connection if need be.
    fn read(
        &self,
        slot: &mut Option<Self::Conn>,
    ) -> impl Future<Output = Result<RelayState, OutputFault>> + Send;
}

/// One pulse under the device's lock; not started once expired (waiting
/// behind another pulse takes time); the connection dropped after a fault.
pub(crate) async fn pulse<D: Device>(
    device: &D,
    pulse: &Pulse,
    opened: Option<crate::Opened>,
) -> Result<Confirmation, OutputFault> {
    let mut slot = device.conn().lock().await;
    if crate::now_millis() >= pulse.expires_at {
        return Err(OutputFault::Expired);
    }
    let result = device.pulse_on(&mut slot, pulse, opened).await;
    drop_on_fault(&mut slot, result)
}

/// The relay read back under the device's lock; the connection dropped
/// after a fault.
pub(crate) async fn probe<D: Device>(device: &D) -> Result<RelayState, OutputFault> {
    let mut slot = device.conn().lock().await;
    let result = device.read(&mut slot).await;
    drop_on_fault(&mut slot, result)
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
                    $crate::device::pulse(&*device, &pulse, None).await
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
                    $crate::device::pulse(&*device, &pulse, Some(opened)).await
                })
            }

            fn cut_short(&self) {
                $crate::device::Device::cut(&*self.inner).notify_waiters()
            }

            fn probe(
                &self,
            ) -> impl ::std::future::Future<Output = Result<$crate::RelayState, $crate::OutputFault>>
                   + Send {
                let device = ::std::sync::Arc::clone(&self.inner);
                $crate::device::detached(async move {
                    $crate::device::probe(&*device).await
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

/// When a pulse's time starts, given the read-back `during` taken after
/// "on" was `sent`: at the read-back when it says on (the relay was on by
/// then, so it is on for at least the configured length however slow the
/// answer; the caller is told it opened), otherwise at the send, so a fault
/// never holds the relay on longer.
pub(crate) fn pulse_started(
    sent: tokio::time::Instant,
    during: &Result<RelayState, OutputFault>,
    opened: &mut Option<crate::Opened>,
) -> tokio::time::Instant {
    if matches!(during, Ok(RelayState::On)) {
        tell(opened);
        tokio::time::Instant::now()
    } else {
        sent
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
