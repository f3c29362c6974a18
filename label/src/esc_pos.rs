//! The ESC/POS backend: a [`Layout`] encoded as the bytes an Epson-compatible
//! thermal printer (and the Chinese printers that copy it) expects.
//!
//! Built on the `escpos` crate's command builder, with a [`Driver`] that only
//! captures bytes: no socket here (its `NetworkDriver` needs an IP literal and
//! never reconnects, PROTOCOLS.md §2; the caller owns the transport). Where the
//! crate is missing a command or gets one wrong, the bytes go through its
//! `custom()` escape hatch, each with a comment saying why:
//!
//! - **Chinese text.** Chinese printers print GB18030 (GBK for the characters
//!   they have glyphs for) once Chinese character mode is on (`FS &`). The
//!   crate has no `FS &`, so that goes through `custom()`; the text itself goes
//!   through the crate's own writer, given an `encoding_rs::GB18030` encoder
//!   and no code page (a code page would send Latin-1 look-alikes as
//!   single bytes, which the printer would read as half a GB character).
//! - **CODE128.** The crate has no CODE128: `GS k 73 n {B…` is written here,
//!   with a literal `{` doubled and `n` counting the `{B` prefix.
//! - **Barcode settings.** Its height/width/HRI commands are private to its
//!   barcode methods, so `GS h`, `GS w`, `GS H` are written here too.
//! - **QR.** Its `qrcode()` defaults to model 1; model 2 is passed explicitly.
//! - **Cut.** Its `partial_cut()` sends `GS V 65 1`, which Epson defines as
//!   feed + *full* cut. The partial cut (`GS V 66 0`) is written here; its
//!   `cut()` (`GS V 65 0`, feed + full cut) is right and used as is. Both
//!   forms feed the paper to the cutter first, so the last printed line is
//!   not cut through (the bare `GS V 0`/`GS V 1` cut where the paper stands).

use std::cell::RefCell;

use escpos::driver::Driver;
use escpos::errors::PrinterError;
use escpos::printer::Printer;
use escpos::printer_options::PrinterOptions;
use escpos::utils::{
    Encoder, JustifyMode, Protocol, QRCodeCorrectionLevel, QRCodeModel, QRCodeOption,
};

use crate::label::{Label, RenderError};
use crate::layout::{Align, Block, Layout, TextSize, COLUMNS_MAX, COLUMNS_MIN};
use crate::LabelBackend;

/// Dots per column of the base font (font A is 12 × 24 dots): 48 columns are
/// the 576 printable dots of an 80 mm roll, 32 the 384 of a 58 mm one.
pub const DOTS_PER_COLUMN: usize = 12;

const GS: u8 = 0x1D;
const FS: u8 = 0x1C;

/// `FS &`: Chinese character mode on. Bytes from 0x80 up are then read as
/// GB double-byte characters instead of a single-byte code page.
const CHINESE_MODE_ON: [u8; 2] = [FS, b'&'];

/// `GS V 66 0`: feed to the cutter, then partial cut (Epson function B).
const PARTIAL_CUT_AFTER_FEED: [u8; 4] = [GS, b'V', 66, 0];

/// `GS k 73`: CODE128, the form with a length byte (function B).
const CODE128: [u8; 3] = [GS, b'k', 73];

/// Modules of a CODE128 symbol besides its data characters: start and check
/// characters (11 each), stop (13) and the quiet zones (10 each side) a
/// scanner needs.
const CODE128_OVERHEAD_MODULES: usize = 11 + 11 + 13 + 2 * 10;

/// How a label is cut off the roll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutMode {
    /// Leave a hinge: the packer tears the label off (`GS V 66 0`), and the
    /// next one cannot fall into the cutter. The default.
    Partial,
    /// Cut through (`GS V 65 0`).
    Full,
}

/// What varies between ESC/POS printers and rolls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscPosOptions {
    /// Characters per line of the base font: 48 for an 80 mm roll, 32 for
    /// 58 mm. From [`COLUMNS_MIN`] to [`COLUMNS_MAX`].
    pub columns: usize,
    /// Side of one QR module, in dots (1..=16). 6 dots make a waybill's QR
    /// about 2 cm wide at 203 dpi: easy for a handheld at arm's length.
    pub qr_module_dots: u8,
    /// Height of the CODE128, in dots (1..=255). 80 dots are 1 cm at 203 dpi.
    pub barcode_height_dots: u8,
    /// Width of the CODE128's narrowest bar, in dots (2..=6, Epson's range).
    /// 2 is the narrowest every printer and scanner handles well.
    pub barcode_module_dots: u8,
    /// Partial or full cut.
    pub cut: CutMode,
}

impl Default for EscPosOptions {
    fn default() -> EscPosOptions {
        EscPosOptions {
            columns: 48,
            qr_module_dots: 6,
            barcode_height_dots: 80,
            barcode_module_dots: 2,
            cut: CutMode::Partial,
        }
    }
}

/// The ESC/POS backend. Stateless apart from its options: share one across
/// threads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EscPos {
    options: EscPosOptions,
}

impl EscPos {
    /// A backend with checked options.
    pub fn new(options: EscPosOptions) -> Result<EscPos, RenderError> {
        let bad = |what: String| Err(RenderError::Options(what));
        if !(COLUMNS_MIN..=COLUMNS_MAX).contains(&options.columns) {
            return bad(format!(
                "{} columns per line; {COLUMNS_MIN} to {COLUMNS_MAX} are supported",
                options.columns
            ));
        }
        if !(1..=16).contains(&options.qr_module_dots) {
            return bad(format!(
                "QR module of {} dots; 1 to 16 are supported",
                options.qr_module_dots
            ));
        }
        if options.barcode_height_dots == 0 {
            return bad("barcode height of 0 dots".to_owned());
        }
        if !(2..=6).contains(&options.barcode_module_dots) {
            return bad(format!(
                "barcode module of {} dots; 2 to 6 are supported",
                options.barcode_module_dots
            ));
        }
        Ok(EscPos { options })
    }

    /// The options in force.
    pub fn options(&self) -> &EscPosOptions {
        &self.options
    }

    /// Encodes a layout (made for this backend's [`EscPosOptions::columns`]).
    pub fn encode(&self, layout: &Layout) -> Result<Vec<u8>, RenderError> {
        let mut printer = Printer::new(
            Capture::default(),
            // No code page: every character goes through the GB18030 encoder.
            Protocol::new(Encoder::new(encoding_rs::GB18030)),
            Some(PrinterOptions::new(None, None, clamp_u8(layout.columns))),
        );
        printer.init()?;
        // The crate has no Chinese character mode command.
        printer.custom(&CHINESE_MODE_ON)?;
        let mut style = Style::AFTER_INIT;
        for block in &layout.blocks {
            self.block(&mut printer, &mut style, block, layout.columns)?;
        }
        printer.print()?;
        Ok(printer.driver().bytes.into_inner())
    }

    fn block(
        &self,
        printer: &mut Printer<Capture>,
        style: &mut Style,
        block: &Block,
        columns: usize,
    ) -> Result<(), RenderError> {
        match block {
            Block::Text {
                text,
                align,
                bold,
                size,
            } => {
                style.set(printer, Style::new(*align, *bold, *size))?;
                printer.writeln(text)?;
            }
            Block::Rule => {
                style.set(printer, Style::new(Align::Left, false, TextSize::Normal))?;
                printer.writeln(&"-".repeat(columns))?;
            }
            Block::Barcode128(data) => {
                style.set(printer, Style::new(Align::Center, false, TextSize::Normal))?;
                self.check_barcode_width(data, columns)?;
                printer.custom(&self.code128(data)?)?;
            }
            Block::Qr(data) => {
                style.set(printer, Style::new(Align::Center, false, TextSize::Normal))?;
                let option = QRCodeOption::new(
                    // The crate's default is model 1; scanners expect model 2.
                    QRCodeModel::Model2,
                    self.options.qr_module_dots,
                    QRCodeCorrectionLevel::M,
                );
                printer.qrcode_option(data, option)?;
            }
            Block::Feed(lines) => {
                printer.feeds(*lines)?;
            }
            Block::Cut => match self.options.cut {
                // The crate's partial_cut() is a full cut: write it here.
                CutMode::Partial => {
                    printer.custom(&PARTIAL_CUT_AFTER_FEED)?;
                }
                CutMode::Full => {
                    printer.cut()?;
                }
            },
        }
        Ok(())
    }

    /// Refuses a barcode the paper cannot hold with its quiet zones: a
    /// printer would clip it, and a clipped CODE128 does not scan.
    fn check_barcode_width(&self, data: &str, columns: usize) -> Result<(), RenderError> {
        let chars = data.chars().count();
        let modules = 11 * chars + CODE128_OVERHEAD_MODULES;
        let dots = modules * usize::from(self.options.barcode_module_dots);
        let max_dots = columns * DOTS_PER_COLUMN;
        if dots > max_dots {
            return Err(RenderError::BarcodeTooWide {
                chars,
                dots,
                max_dots,
            });
        }
        Ok(())
    }

    /// Settings, then `GS k 73 n {B data` (the crate has no CODE128).
    fn code128(&self, data: &str) -> Result<Vec<u8>, RenderError> {
        let payload = code128_payload(data);
        let n = u8::try_from(payload.len()).map_err(|_| RenderError::BarcodeTooWide {
            chars: data.chars().count(),
            dots: usize::MAX,
            max_dots: 0,
        })?;
        let mut bytes = vec![
            GS,
            b'h',
            self.options.barcode_height_dots,
            GS,
            b'w',
            self.options.barcode_module_dots,
            // No printer-drawn digits: the layout prints the waybill larger.
            GS,
            b'H',
            0,
        ];
        bytes.extend_from_slice(&CODE128);
        bytes.push(n);
        bytes.extend_from_slice(&payload);
        Ok(bytes)
    }
}

impl LabelBackend for EscPos {
    fn name(&self) -> &'static str {
        "escpos"
    }

    fn render(&self, label: &Label) -> Result<Vec<u8>, RenderError> {
        self.encode(&Layout::new(label, self.options.columns)?)
    }
}

/// CODE128 data as `GS k 73` takes it: code set B selected by `{B`, and a
/// literal `{` doubled (`{` starts a code-set or function escape).
/// `data` must be printable ASCII ([`Label::validate`] sees to it).
pub fn code128_payload(data: &str) -> Vec<u8> {
    let mut payload = b"{B".to_vec();
    for byte in data.bytes() {
        if byte == b'{' {
            payload.push(b'{');
        }
        payload.push(byte);
    }
    payload
}

fn clamp_u8(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

/// The text style the printer is in, so each command is sent only when it
/// changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Style {
    align: Align,
    bold: bool,
    size: TextSize,
}

impl Style {
    /// What `ESC @` leaves.
    const AFTER_INIT: Style = Style::new(Align::Left, false, TextSize::Normal);

    const fn new(align: Align, bold: bool, size: TextSize) -> Style {
        Style { align, bold, size }
    }

    fn set(&mut self, printer: &mut Printer<Capture>, want: Style) -> Result<(), RenderError> {
        if want.align != self.align {
            printer.justify(match want.align {
                Align::Left => JustifyMode::LEFT,
                Align::Center => JustifyMode::CENTER,
            })?;
        }
        if want.bold != self.bold {
            printer.bold(want.bold)?;
        }
        if want.size != self.size {
            let scale = clamp_u8(want.size.scale());
            printer.size(scale, scale)?;
        }
        *self = want;
        Ok(())
    }
}

/// An `escpos` driver that keeps what it is given.
#[derive(Default)]
struct Capture {
    bytes: RefCell<Vec<u8>>,
}

impl Driver for Capture {
    fn name(&self) -> String {
        "capture".to_owned()
    }

    fn write(&self, data: &[u8]) -> escpos::errors::Result<()> {
        self.bytes.borrow_mut().extend_from_slice(data);
        Ok(())
    }

    fn read(&self, _buf: &mut [u8]) -> escpos::errors::Result<usize> {
        Ok(0)
    }

    fn flush(&self) -> escpos::errors::Result<()> {
        Ok(())
    }
}

impl From<PrinterError> for RenderError {
    fn from(error: PrinterError) -> RenderError {
        RenderError::Encode(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Label;
    fn sample() -> Label {
        Label::sample()
    }

    #[test]
    fn code128_selects_set_b_and_doubles_braces() {
        assert_eq!(code128_payload("SF1"), b"{BSF1");
        assert_eq!(code128_payload("A{B}"), b"{BA{{B}");
        let bytes = EscPos::default().code128("A{B").unwrap();
        assert!(
            bytes.ends_with(&[GS, b'k', 73, 6, b'{', b'B', b'A', b'{', b'{', b'B']),
            "{bytes:?}"
        );
    }

    #[test]
    fn too_long_a_waybill_for_the_roll_is_refused() {
        let mut label = sample();
        label.waybill_no = "1234567890123456789012".into();
        let error = EscPos::default().render(&label).unwrap_err();
        assert_eq!(
            error.to_string(),
            "waybill_no has 22 characters: its CODE128 would be 594 dots wide, \
             the printer prints 576"
        );
        label.waybill_no.pop();
        assert!(EscPos::default().render(&label).is_ok());
    }

    #[test]
    fn options_are_checked() {
        let bad = [
            EscPosOptions {
                columns: 200,
                ..EscPosOptions::default()
            },
            EscPosOptions {
                qr_module_dots: 0,
                ..EscPosOptions::default()
            },
            EscPosOptions {
                barcode_module_dots: 7,
                ..EscPosOptions::default()
            },
            EscPosOptions {
                barcode_height_dots: 0,
                ..EscPosOptions::default()
            },
        ];
        for options in bad {
            assert!(matches!(EscPos::new(options), Err(RenderError::Options(_))));
        }
    }

    #[test]
    fn cuts_feed_to_the_cutter_first() {
        let partial = EscPos::default().render(&sample()).unwrap();
        assert!(partial.ends_with(&[GS, b'V', 66, 0]), "{partial:?}");
        let full = EscPos::new(EscPosOptions {
            cut: CutMode::Full,
            ..EscPosOptions::default()
        })
        .unwrap()
        .render(&sample())
        .unwrap();
        assert!(full.ends_with(&[GS, b'V', 65, 0]), "{full:?}");
    }
}
