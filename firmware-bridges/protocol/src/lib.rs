//! # bondgate-protocol
//!
//! The one definition of each bondgate wire format. The server, the edge
//! bridges (scale → MQTT, MQTT → gate relay, MQTT → printer) and the hardware
//! simulators all encode and decode through this crate, so two programs that
//! talk to each other cannot drift apart: there is no second, hand-kept copy
//! of a topic name or a payload field anywhere (DESIGN.md §2).
//!
//! **Bytes in, values out.** Nothing here does I/O, spawns, awaits, opens a
//! socket, reads a clock or draws random numbers (callers pass `now` where
//! time matters, e.g. [`GateCommand::is_expired`], and the jitter where
//! chance does, e.g. [`Backoff::next_delay_with`]). That keeps every rule
//! testable exhaustively and keeps the crate small enough to build for a
//! Raspberry Pi bridge.
//!
//! **Dependencies.** This crate must never depend on tokio, axum, sqlx, an
//! MQTT client or any other runtime or transport crate: the bridges must not
//! pull those in (DESIGN.md §2), and a wire format has no business knowing how
//! it is carried. Its dependencies are serde, serde_json and thiserror; a test
//! below fails if that list grows a forbidden name.
//!
//! ## What is here
//!
//! MQTT, the first layer (DESIGN.md §4, PROTOCOLS.md §5):
//! - [`id`]: validated topic segment ids ([`Site`], [`DeviceId`],
//!   [`StationId`], [`GateId`]) that cannot smuggle `/`, `+`, `#` or control
//!   characters into a topic.
//! - [`topic`]: the topic tree, [`Topic::render`] / [`Topic::parse`] and
//!   subscription filters ([`TopicKind::filter`]).
//! - [`payload`]: versioned (`"v": 1`) JSON payloads with strict decoding and
//!   errors fit to show on a PDA screen, plus the plain-text [`DeviceStatus`]
//!   and a bridge's [`DeviceHealth`]; the printer job envelope
//!   ([`PrintJob`]: a JSON header line, then the raw ESC/POS bytes) and the
//!   printer bridge's [`PrinterReport`].
//!
//! Connecting, shared by every MQTT client (server link, bridges,
//! simulators) so they agree on the URL and on how politely they retry:
//! - [`broker`]: [`BrokerAddr`], the `mqtt://[user:password@]host[:port]`
//!   grammar, parsed (no name resolution, no socket), with a `Debug` and
//!   `Display` that never show the password.
//! - [`backoff`]: [`Backoff`], the reconnect delays (exponential, capped,
//!   jittered) as pure state: the caller sleeps and supplies the randomness.
//!
//! Serial devices, the second layer (PROTOCOLS.md §1):
//! - [`scale`]: scale frames of five wire formats (MT-SICS, continuous ASCII,
//!   Toledo continuous, Yaohua A9 and its reversed "=" format): a
//!   [`scale::Decoder`] that turns bytes in any chunking into readings in
//!   exact integer grams and resynchronises after garbage, the encoders the
//!   simulator sends with, and the MT-SICS command/answer rules.
//! - [`scanner`]: serial barcode scanners' lines (CR, LF or CR LF) as
//!   [`Barcode`]s, with a bounded line and a reason for every refusal.
//!
//! Label printers (PROTOCOLS.md §2):
//! - [`escpos`]: a streaming ESC/POS [`escpos::Decoder`] (what a printer
//!   makes of the bytes it receives: text, styles, CODE128 and QR data,
//!   cuts, status requests), and the real-time status bytes
//!   ([`escpos::StatusRequest`], [`escpos::PrinterStatus`],
//!   [`escpos::encode_reply`], [`escpos::decode_reply`]).
//!
//! Gate relays (PROTOCOLS.md §4):
//! - [`relay`]: LCUS serial relay commands (`A0 ch op sum`) and status
//!   lines, and [`relay::modbus`]: FC05/FC01 PDUs, exceptions, RTU framing
//!   with CRC-16 and TCP (MBAP) framing, each with a streaming decoder.
//!
//! ## Example: a gate pulse from server to bridge
//!
//! ```
//! use bondgate_protocol::{
//!     CommandId, GateCmd, GateCommand, PromptText, PulseMs, ScanMsg, Site, Topic, TopicKind,
//! };
//!
//! // Server: subscribe to every PDA's scans, publish a short open pulse.
//! let site = Site::new("sh-01")?;
//! assert_eq!(TopicKind::PdaScan.filter(&site), "bondgate/sh-01/pda/+/scan");
//! let topic = Topic::new(TopicKind::GateCommand, "g1")?;
//! let cmd = GateCommand {
//!     seq: 1,
//!     id: CommandId::new("c-0001")?,
//!     cmd: GateCmd::Open,
//!     pulse_ms: PulseMs::new(800)?,
//!     expires_at: 1_700_000_005_000,
//! };
//! assert!(!TopicKind::GateCommand.retained()); // publish with retain = false
//! let (name, bytes) = (topic.render(&site), cmd.encode());
//!
//! // Bridge: parse what arrived, drop it if stale, then pulse the relay.
//! let (_site, Topic::GateCommand { gate }) = Topic::parse(&name)? else { unreachable!() };
//! let got = GateCommand::decode(&bytes)?;
//! assert_eq!((gate.as_str(), got.is_expired(1_700_000_000_000)), ("g1", false));
//!
//! // A refused scan: the error text is made to be shown on the PDA.
//! let err = ScanMsg::decode(br#"{"v":1,"seq":5,"barcode":"","ts":0}"#).unwrap_err();
//! assert_eq!(PromptText::new(&err.to_string())?.as_str(), "barcode is empty");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backoff;
pub mod broker;
pub mod escpos;
pub mod id;
pub mod payload;
pub mod relay;
pub mod scale;
pub mod scanner;
pub mod topic;

pub use backoff::Backoff;
pub use broker::{BrokerAddr, BrokerAddrError};
pub use id::{DeviceId, GateId, IdError, Site, StationId, ID_CHARS_MAX};
pub use payload::{
    Barcode, CommandId, DeviceHealth, DeviceStatus, FieldError, GateCmd, GateCommand, GateOutcome,
    GateResultMsg, GateState, GateStateKind, Heartbeat, Next, PayloadError, PrintJob,
    PrintJobError, PrinterReport, PromptMsg, PromptText, PulseMs, ScanMsg, Tone, WeightMsg,
    BARCODE_CHARS_MAX, JOB_BYTES_MAX, JOB_HEADER_BYTES_MAX, PAYLOAD_BYTES_MAX,
    PROMPT_TEXT_CHARS_MAX, PULSE_MS_MAX, VERSION,
};
pub use topic::{Topic, TopicError, TopicKind, ROOT};
