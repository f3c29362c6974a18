//! Modbus TCP/RTU relay boards: the driver is `bondgate_relay_io::modbus` (shared with the
//! edge bridges); it is a [`super::GateOutput`] like every relay-io driver.

pub use bondgate_relay_io::modbus::ModbusOutput;
