//! LCUS serial relay boards: the driver is `bondgate_relay_io::lcus` (shared with the
//! edge bridges); it is a [`super::GateOutput`] like every relay-io driver.

pub use bondgate_relay_io::lcus::LcusOutput;
