//! Barcodes (`GS k`) and QR codes (`GS ( k`), as the decoder reports them.

use std::fmt;

/// A 1D symbology, by its `GS k` number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Symbology {
    /// UPC-A (`m` = 0 or 65).
    UpcA,
    /// UPC-E (1 or 66).
    UpcE,
    /// EAN-13 / JAN-13 (2 or 67).
    Ean13,
    /// EAN-8 / JAN-8 (3 or 68).
    Ean8,
    /// CODE39 (4 or 69).
    Code39,
    /// Interleaved 2 of 5 (5 or 70).
    Itf,
    /// CODABAR / NW-7 (6 or 71).
    Codabar,
    /// CODE93 (72).
    Code93,
    /// CODE128 (73): data starts with a code set (`{A`, `{B`, `{C`).
    Code128,
    /// GS1-128 (74).
    Gs1_128,
    /// A GS1 DataBar variant (75 to 78), with its number.
    Gs1DataBar(u8),
    /// CODE128 with automatic code sets (79, newer printers).
    Code128Auto,
}

impl Symbology {
    /// The symbology of `GS k m`, either form.
    pub fn from_m(m: u8) -> Option<Symbology> {
        Some(match m {
            0 | 65 => Symbology::UpcA,
            1 | 66 => Symbology::UpcE,
            2 | 67 => Symbology::Ean13,
            3 | 68 => Symbology::Ean8,
            4 | 69 => Symbology::Code39,
            5 | 70 => Symbology::Itf,
            6 | 71 => Symbology::Codabar,
            72 => Symbology::Code93,
            73 => Symbology::Code128,
            74 => Symbology::Gs1_128,
            75..=78 => Symbology::Gs1DataBar(m),
            79 => Symbology::Code128Auto,
            _ => return None,
        })
    }

    /// Its usual name, as a label's rendering shows it (`CODE128`).
    pub fn name(self) -> &'static str {
        match self {
            Symbology::UpcA => "UPC-A",
            Symbology::UpcE => "UPC-E",
            Symbology::Ean13 => "EAN13",
            Symbology::Ean8 => "EAN8",
            Symbology::Code39 => "CODE39",
            Symbology::Itf => "ITF",
            Symbology::Codabar => "CODABAR",
            Symbology::Code93 => "CODE93",
            Symbology::Code128 => "CODE128",
            Symbology::Gs1_128 => "GS1-128",
            Symbology::Gs1DataBar(_) => "GS1-DATABAR",
            Symbology::Code128Auto => "CODE128",
        }
    }
}

impl fmt::Display for Symbology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A printed 1D barcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Barcode {
    /// Which symbology.
    pub symbology: Symbology,
    /// What a scanner reads. For [`Symbology::Code128`] the code-set
    /// selections (`{A`, `{B`, `{C`), shift (`{S`) and function characters
    /// (`{1`…`{4`) are removed, `{{` is one `{`, and code set C's values
    /// are written out as two digits each. For the others, the bytes sent.
    pub data: Vec<u8>,
}

/// Why CODE128 data is malformed.
pub(crate) fn decode_code128(raw: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut bytes = raw.iter().copied();
    let mut set_c = match (bytes.next(), bytes.next()) {
        (Some(b'{'), Some(b'A' | b'B')) => false,
        (Some(b'{'), Some(b'C')) => true,
        _ => return Err("CODE128 data must start with {A, {B or {C"),
    };
    let mut data = Vec::with_capacity(raw.len());
    while let Some(byte) = bytes.next() {
        if byte == b'{' {
            match bytes.next() {
                Some(b'{') => data.push(b'{'),
                Some(b'A' | b'B') => set_c = false,
                Some(b'C') => set_c = true,
                // Shift and function characters carry no data of their own.
                Some(b'S' | b'1'..=b'4') => {}
                _ => return Err("CODE128 data has a { not followed by {, A, B, C, S or 1-4"),
            }
        } else if set_c {
            if byte > 99 {
                return Err("CODE128 code set C takes values 0 to 99 only");
            }
            data.push(b'0' + byte / 10);
            data.push(b'0' + byte % 10);
        } else {
            data.push(byte);
        }
    }
    Ok(data)
}

/// QR code model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrModel {
    /// Model 1 (obsolete; many phone scanners refuse it).
    Model1,
    /// Model 2, what everything reads. Epson's default.
    Model2,
    /// Micro QR.
    Micro,
    /// Another value of `n1`.
    Other(u8),
}

impl QrModel {
    fn from_n1(n1: u8) -> QrModel {
        match n1 {
            49 => QrModel::Model1,
            50 => QrModel::Model2,
            51 => QrModel::Micro,
            other => QrModel::Other(other),
        }
    }
}

/// QR error correction level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrErrorLevel {
    /// About 7 % recoverable.
    L,
    /// About 15 %.
    M,
    /// About 25 %.
    Q,
    /// About 30 %.
    H,
    /// Another value.
    Other(u8),
}

impl QrErrorLevel {
    fn from_n(n: u8) -> QrErrorLevel {
        match n {
            48 => QrErrorLevel::L,
            49 => QrErrorLevel::M,
            50 => QrErrorLevel::Q,
            51 => QrErrorLevel::H,
            other => QrErrorLevel::Other(other),
        }
    }
}

/// One QR function of `GS ( k pL pH 49 fn …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrCommand {
    /// fn 65: select the model.
    Model(QrModel),
    /// fn 67: module size in dots.
    ModuleSize(u8),
    /// fn 69: error correction level.
    ErrorLevel(QrErrorLevel),
    /// fn 80: store data in the symbol storage area.
    Store(Vec<u8>),
    /// fn 81: print the stored symbol.
    Print {
        /// The data stored last (since the last `ESC @`), if any: what the
        /// printed symbol holds.
        data: Option<Vec<u8>>,
        /// The model selected last, if any (`None`: the printer's default,
        /// model 2 on Epson).
        model: Option<QrModel>,
    },
    /// Another function (e.g. fn 82, transmit size information), with its
    /// parameters.
    Other {
        /// The function number.
        function: u8,
        /// Its parameter bytes.
        params: Vec<u8>,
    },
}

/// What the decoder keeps between QR functions: the symbol storage.
#[derive(Debug, Clone, Default)]
pub(crate) struct QrState {
    data: Option<Vec<u8>>,
    model: Option<QrModel>,
}

impl QrState {
    /// Decodes `fn` and its parameters (everything after `cn` = 49), or
    /// `None` if the parameters are too short for the function.
    pub(crate) fn apply(&mut self, function: u8, params: &[u8]) -> Option<QrCommand> {
        Some(match function {
            65 => {
                let model = QrModel::from_n1(*params.first()?);
                self.model = Some(model);
                QrCommand::Model(model)
            }
            67 => QrCommand::ModuleSize(*params.first()?),
            69 => QrCommand::ErrorLevel(QrErrorLevel::from_n(*params.first()?)),
            80 => {
                // m = 48, then the data.
                let data = params.get(1..)?.to_vec();
                self.data = Some(data.clone());
                QrCommand::Store(data)
            }
            81 => QrCommand::Print {
                data: self.data.clone(),
                model: self.model,
            },
            _ => QrCommand::Other {
                function,
                params: params.to_vec(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code128_prefix_and_escapes_are_removed() {
        assert_eq!(decode_code128(b"{BSF123").unwrap(), b"SF123");
        assert_eq!(decode_code128(b"{BA{{B}").unwrap(), b"A{B}");
        assert_eq!(decode_code128(b"{C\x0c\x22\x38").unwrap(), b"123456");
        assert_eq!(decode_code128(b"{A{1AB{BC").unwrap(), b"ABC");
        assert!(decode_code128(b"SF123").is_err());
        assert!(decode_code128(b"{BSF{X").is_err());
        assert!(decode_code128(b"{BSF{").is_err());
        assert!(decode_code128(b"{C\x64").is_err());
        assert!(decode_code128(b"").is_err());
    }
}
