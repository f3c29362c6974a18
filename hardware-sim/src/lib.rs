//! # bondgate-sim
//!
//! Simulators of the devices bondgate drives, speaking the real protocols over
//! real transports. Every topic and payload comes from `bondgate-protocol`,
//! the same code the server and the edge bridges use, so a simulator cannot
//! drift from what a real device sends (DESIGN.md §2).
//!
//! The PDA, the scale and the label printer exist so far:
//!
//! - [`Pda`] is one handheld on MQTT: it announces itself (`online`
//!   retained, `offline` as its last will), publishes scans with its own
//!   sequence numbers and waits for the prompt that echoes each one
//!   (PROTOCOLS.md §3, DESIGN.md §4).
//! - [`Walker`] is a picker holding that PDA: it scans whatever the server's
//!   prompts ask for (`next` plus the code in `[brackets]`), optionally with
//!   scripted mistakes ([`Fault`]), and returns a [`Transcript`].
//! - [`ScaleSim`] is a serial scale on a pseudo-terminal (PROTOCOLS.md §1
//!   and §6): the server opens its path as it opens `/dev/ttyUSB0`; it
//!   streams frames or answers MT-SICS commands in any of the five
//!   `bondgate_protocol::scale` formats, encoded by that module, and its
//!   [`ScaleControl`] puts parcels on the pan (motion, then stable), forces
//!   overload, injects garbage, and unplugs and replugs the cable.
//! - [`PrinterSim`] is a label printer on raw TCP (port 9100) or, with
//!   [`PrinterSim::start_serial`], on a pseudo-terminal that the server
//!   opens by path once per job, as the scale's: either way it decodes
//!   ESC/POS with `bondgate_protocol::escpos::Decoder`, turns each cut into
//!   a [`PrintedLabel`] (GB18030 text lines, barcode and QR data, raw
//!   bytes), answers `DLE EOT n` from its state, and can be switched off
//!   and on (TCP: same port; serial: an unplugged and replugged cable) or
//!   run out of paper (PROTOCOLS.md §2).
//!
//! - [`GateBridgeSim`] is an MQTT gate bridge: it pulses for `open`
//!   commands that are fresh, unexpired and come while the server's
//!   heartbeat is alive, reports `open`/`closed`/`fault` with the command's
//!   seq, and records every pulse (PROTOCOLS.md §4).
//!
//! The simulator never talks to the server any other way and never depends
//! on the server crate: if the server changes its grammar, a walk fails with a
//! message naming what was sent, what came back and what was expected.
//!
//! ```no_run
//! # use bondgate_sim::{BrokerAddr, Fault, Pda, PdaOptions, Walker};
//! # use bondgate_protocol::{DeviceId, Site};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let options = PdaOptions::new(
//!     BrokerAddr::parse("mqtt://127.0.0.1:1883")?,
//!     Site::new("SH01")?,
//!     DeviceId::new("PDA-01")?,
//! );
//! let mut pda = Pda::connect(options).await?;
//! pda.wait_ready().await?;
//! let transcript = Walker::new("BADGE-alice")
//!     .fault(Fault::WrongBinOnce)
//!     .walk(&mut pda)
//!     .await?;
//! println!("{transcript}");
//! pda.disconnect().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod gate_bridge;
pub mod pda;
pub mod printer;
mod pty;
pub mod scale;
pub mod transcript;
pub mod walker;

/// The broker URL grammar is `bondgate-protocol`'s, the same the server and
/// the bridges parse; re-exported because [`PdaOptions`] takes one.
pub use bondgate_protocol::{BrokerAddr, BrokerAddrError};
pub use gate_bridge::{BridgeMode, GateBridgeOptions, GateBridgeSim, PulseRecord};
pub use pda::{Pda, PdaError, PdaOptions};
pub use printer::{PrintedLabel, PrinterSim, PrinterSimError, SerialPrinterOptions};
pub use scale::{ScaleControl, ScaleOptions, ScaleSim, ScaleSimError, ScaleStats};
pub use transcript::{Step, Transcript};
pub use walker::{codes, Fault, FaultParseError, Reason, WalkError, Walker};
