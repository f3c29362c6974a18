//! # bondgate-label
//!
//! Shipping labels: a [`Label`] in, the bytes a printer prints out. Pure
//! rendering — nothing here opens a socket, reads a clock or touches a file;
//! the caller (the server's printer adapter, a bridge, a test) carries the
//! bytes to the printer.
//!
//! Rendering is two steps, so a new printer language is one more backend and
//! not a rewrite (PROTOCOLS.md §2):
//!
//! 1. [`Layout::new`] validates the label ([`Label::validate`]) and decides
//!    what is printed, in which order, and how long text wraps, as a list of
//!    backend-neutral [`Block`]s (text lines, CODE128, QR, rule, feed, cut).
//! 2. A [`LabelBackend`] encodes the blocks. [`EscPos`] is the first; TSPL
//!    (Gprinter, Xprinter, TSC) and ZPL (Zebra) would each implement
//!    [`LabelBackend`] over the same [`Layout`].
//!
//! Chinese text is sent as GB18030 with the printer's Chinese character mode
//! on; the waybill is a CODE128 (code set B) and a QR code (model 2), and is
//! printed as text too, so a label with a damaged barcode is still usable.
//!
//! ```
//! use bondgate_label::{EscPos, Label, LabelBackend};
//!
//! let label = Label {
//!     waybill_no: "SF1234567890123".into(),
//!     order_no: "SO-1".into(),
//!     package_no: "1/1".into(),
//!     consignee: "张**".into(),
//!     phone: "138****5678".into(),
//!     address: "上海市浦东新区富特北路 200 号".into(),
//!     gross_grams: 1234,
//!     station: "P-03".into(),
//!     printed_at: "2024-06-01 14:05".into(),
//!     copy: None,
//! };
//! let bytes = EscPos::default().render(&label)?;
//! assert!(bytes.starts_with(b"\x1b@")); // ESC @: initialise
//!
//! // A control character would be executed by the printer: refused.
//! let bad = Label { consignee: "张\x1b**".into(), ..label };
//! assert_eq!(
//!     EscPos::default().render(&bad).unwrap_err().to_string(),
//!     "consignee contains control character U+001B at position 1",
//! );
//! # Ok::<(), bondgate_label::RenderError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod esc_pos;
pub mod label;
pub mod layout;

pub use esc_pos::{EscPos, EscPosOptions};
pub use label::{Label, RenderError};
pub use layout::{Align, Block, Layout, TextSize};

/// A printer language. Implementations encode a [`Layout`] (normally
/// `Layout::new(label, their width)`) and nothing else: what is on a label is
/// decided once, in [`layout`].
pub trait LabelBackend: Send + Sync {
    /// Short name for logs and configuration (`"escpos"`).
    fn name(&self) -> &'static str;

    /// Validates and renders one label, ending with its cut.
    fn render(&self, label: &Label) -> Result<Vec<u8>, RenderError>;
}
