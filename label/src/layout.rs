//! What goes on a label, in which order, and how long text is wrapped —
//! decided once, for every printer language.
//!
//! [`Layout::new`] turns a [`Label`] into a list of [`Block`]s: text lines
//! already wrapped to the paper's width, the waybill as CODE128 and as QR, a
//! rule, feeds, the cut. A backend (ESC/POS today; TSPL and ZPL are one more
//! [`LabelBackend`](crate::LabelBackend) each) only encodes blocks, so two
//! printers of different makes print the same label.
//!
//! Widths are counted in **columns** of the printer's base font: an ASCII
//! character takes one, any other character two. That is how Chinese
//! printers lay text out (a GB character is a full-width 24-dot glyph beside
//! 12-dot ASCII) and how TSPL/ZPL fonts with CJK glyphs behave.

use crate::label::{Label, RenderError};

/// Fewest columns a layout accepts: narrower than a 58 mm roll's 32 makes
/// every field wrap after a word or two.
pub const COLUMNS_MIN: usize = 24;

/// Most columns a layout accepts: a 112 mm roll in a small font has 69; 96
/// leaves room, and bounds the work per line.
pub const COLUMNS_MAX: usize = 96;

/// Indent of a field's continuation lines, so a wrapped address reads as
/// one block under its heading.
const HANGING_INDENT: &str = "  ";

/// Horizontal placement of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Flush left.
    Left,
    /// Centred.
    Center,
}

/// Character size of a text line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextSize {
    /// The base font: one column per ASCII character.
    Normal,
    /// Double width and double height: two columns per ASCII character.
    Double,
}

impl TextSize {
    /// How many base-font columns one column of this size takes.
    pub fn scale(self) -> usize {
        match self {
            TextSize::Normal => 1,
            TextSize::Double => 2,
        }
    }
}

/// One element of a label, top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// One line of text, already wrapped: it fits the paper at its size.
    Text {
        /// The line (never contains a control character).
        text: String,
        /// Placement.
        align: Align,
        /// Emphasised.
        bold: bool,
        /// Character size.
        size: TextSize,
    },
    /// A CODE128 barcode of printable ASCII (code set B), centred, without
    /// the printer's own human-readable line (the layout prints the text).
    Barcode128(String),
    /// A QR code (model 2), centred.
    Qr(String),
    /// A horizontal rule across the paper.
    Rule,
    /// Blank paper, in lines.
    Feed(u8),
    /// The end of the label: cut (or tear) here.
    Cut,
}

/// A label laid out for a paper `columns` wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Width of the paper in base-font columns.
    pub columns: usize,
    /// The blocks, top to bottom; the last is [`Block::Cut`].
    pub blocks: Vec<Block>,
}

impl Layout {
    /// Validates `label` and lays it out for `columns` columns
    /// ([`COLUMNS_MIN`]..=[`COLUMNS_MAX`]).
    pub fn new(label: &Label, columns: usize) -> Result<Layout, RenderError> {
        if !(COLUMNS_MIN..=COLUMNS_MAX).contains(&columns) {
            return Err(RenderError::Options(format!(
                "{columns} columns per line; {COLUMNS_MIN} to {COLUMNS_MAX} are supported"
            )));
        }
        label.validate()?;
        let mut layout = Layout {
            columns,
            blocks: Vec::new(),
        };
        if let Some(copy) = label.copy {
            layout.text(
                &format!("REPRINT {copy} / 补打 {copy}"),
                Align::Center,
                true,
                TextSize::Double,
            );
        }
        layout
            .blocks
            .push(Block::Barcode128(label.waybill_no.clone()));
        layout.text(&label.waybill_no, Align::Center, true, TextSize::Double);
        layout.blocks.push(Block::Rule);
        layout.field("收件人 To", &label.consignee, true);
        layout.field("电话 Tel", &label.phone, true);
        layout.field("地址 Address", &label.address, true);
        layout.blocks.push(Block::Rule);
        layout.field("订单 Order", &label.order_no, false);
        layout.field("包裹 Package", &label.package_no, false);
        layout.field("毛重 Gross", &label.gross_kg(), false);
        layout.field("工作站 Station", &label.station, false);
        layout.field("打印 Printed", &label.printed_at, false);
        layout.blocks.push(Block::Qr(label.waybill_no.clone()));
        layout.blocks.push(Block::Feed(1));
        layout.blocks.push(Block::Cut);
        Ok(layout)
    }

    /// The text lines of the layout in order (what a reader of the paper
    /// sees, barcodes aside).
    pub fn text_lines(&self) -> impl Iterator<Item = &str> {
        self.blocks.iter().filter_map(|block| match block {
            Block::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
    }

    fn text(&mut self, text: &str, align: Align, bold: bool, size: TextSize) {
        let width = self.columns / size.scale();
        for line in wrap(text, width, "") {
            self.blocks.push(Block::Text {
                text: line,
                align,
                bold,
                size,
            });
        }
    }

    /// `heading: value`, wrapped with a hanging indent.
    fn field(&mut self, heading: &str, value: &str, bold: bool) {
        let text = format!("{heading}: {value}");
        for line in wrap(&text, self.columns, HANGING_INDENT) {
            self.blocks.push(Block::Text {
                text: line,
                align: Align::Left,
                bold,
                size: TextSize::Normal,
            });
        }
    }
}

/// Columns one character takes: one for ASCII, two for anything else (a
/// full-width GB glyph on a Chinese printer).
pub fn char_columns(ch: char) -> usize {
    if ch.is_ascii() {
        1
    } else {
        2
    }
}

/// Columns a string takes.
pub fn text_columns(text: &str) -> usize {
    text.chars().map(char_columns).sum()
}

/// Wraps `text` into lines of at most `width` columns. Continuation lines
/// start with `indent` (ignored if it would leave less than half the width).
/// Breaks at a space inside Latin text where it can, anywhere between
/// Chinese characters, and inside a word only when the word alone is longer
/// than a line. The spaces a break falls on are dropped; nothing else is.
/// Returns at least one line (empty for empty text).
pub fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
    let width = width.max(1);
    let indent = if text_columns(indent) * 2 <= width {
        indent
    } else {
        ""
    };
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for ch in text.chars() {
        let columns = char_columns(ch);
        if used + columns > width {
            if line.trim().is_empty() {
                // Only blanks so far: drop them rather than push the text
                // off the paper.
                line = if lines.is_empty() {
                    String::new()
                } else {
                    indent.to_owned()
                };
            } else {
                let room = width.saturating_sub(text_columns(indent) + columns);
                let carried = carry_word(&mut line, ch, room);
                lines.push(line.trim_end().to_owned());
                line = format!("{indent}{carried}");
            }
            used = text_columns(&line);
            if ch == ' ' {
                continue;
            }
        }
        line.push(ch);
        used += columns;
    }
    let last = line.trim_end();
    if !last.trim().is_empty() || lines.is_empty() {
        lines.push(last.to_owned());
    }
    lines
}

/// When a line overflows in the middle of a Latin word, takes the start of
/// that word off the line (to move it to the next one), if the line keeps
/// something and the word fits in `room` columns. Otherwise returns "" and
/// the word is broken where the line ends.
fn carry_word(line: &mut String, next: char, room: usize) -> String {
    let in_word = |c: char| c.is_ascii() && c != ' ';
    if !in_word(next) || !line.ends_with(in_word) {
        return String::new();
    }
    let Some(space) = line.rfind(' ') else {
        return String::new();
    };
    let word = &line[space + 1..];
    if line[..space].trim().is_empty() || text_columns(word) > room {
        return String::new();
    }
    let word = word.to_owned();
    line.truncate(space);
    word
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Label;
    fn sample() -> Label {
        Label::sample()
    }
    use proptest::prelude::*;

    #[test]
    fn latin_wraps_at_spaces_and_chinese_anywhere() {
        assert_eq!(
            wrap("Room 501 Building 3 Pudong", 12, ""),
            ["Room 501", "Building 3", "Pudong"]
        );
        // Two columns per Chinese character: five fit in ten columns.
        assert_eq!(
            wrap("上海市浦东新区外高桥", 10, ""),
            ["上海市浦东", "新区外高桥"]
        );
        assert_eq!(
            wrap("地址: 上海市浦东新区", 10, "  "),
            ["地址: 上海", "  市浦东新", "  区"]
        );
        // A word longer than the line is broken where the line ends.
        assert_eq!(wrap("SF1234567890", 5, ""), ["SF123", "45678", "90"]);
        assert_eq!(wrap("", 5, ""), [""]);
    }

    #[test]
    fn sample_layout_reads_top_to_bottom() {
        let layout = Layout::new(&sample(), 48).unwrap();
        let lines: Vec<_> = layout.text_lines().collect();
        assert_eq!(
            lines,
            [
                "SF1234567890123",
                "收件人 To: 张**",
                "电话 Tel: 138****5678",
                "地址 Address: 上海市浦东新区外高桥保税区富特北路",
                "  200 号 3 号楼 5 层 501 室（保税仓收货部）",
                "订单 Order: SO-20240601-0001",
                "包裹 Package: PKG-1/2",
                "毛重 Gross: 1.234 kg",
                "工作站 Station: 打包台 P-03",
                "打印 Printed: 2024-06-01 14:05 CST",
            ]
        );
        assert_eq!(
            layout.blocks[0],
            Block::Barcode128("SF1234567890123".into())
        );
        assert_eq!(layout.blocks.last(), Some(&Block::Cut));
        assert!(layout.blocks.contains(&Block::Qr("SF1234567890123".into())));
    }

    #[test]
    fn reprint_is_announced_first() {
        let mut label = sample();
        label.copy = Some(3);
        let layout = Layout::new(&label, 48).unwrap();
        assert_eq!(layout.text_lines().next(), Some("REPRINT 3 / 补打 3"));
    }

    #[test]
    fn columns_are_bounded() {
        assert!(matches!(
            Layout::new(&sample(), 8),
            Err(RenderError::Options(_))
        ));
    }

    proptest! {
        /// Every line fits; only spaces are lost; nothing is reordered.
        #[test]
        fn wrapped_lines_fit_and_keep_the_text(
            text in "[a-z 上海市 ]{0,80}",
            width in 2usize..40,
        ) {
            let lines = wrap(&text, width, "  ");
            for line in &lines {
                prop_assert!(text_columns(line) <= width, "{:?} wider than {}", line, width);
            }
            let kept: String = lines.concat().chars().filter(|c| *c != ' ').collect();
            let given: String = text.chars().filter(|c| *c != ' ').collect();
            prop_assert_eq!(kept, given);
        }
    }
}
