//! The ESC/POS bytes of a label: a snapshot of the whole job for a sample
//! Chinese label (so any change to what reaches the printer shows up in
//! review), the commands PROTOCOLS.md §2 says the `escpos` crate gets wrong,
//! and a property test that no label makes rendering panic.

use bondgate_label::{EscPos, Label, LabelBackend, RenderError};
use proptest::prelude::*;

fn sample() -> Label {
    Label {
        waybill_no: "SF{12345}678".into(),
        package_no: "PKG-1/2".into(),
        copy: Some(2),
        ..Label::sample()
    }
}

/// Bytes as text a reviewer can read: printable ASCII as is, everything else
/// as `\xNN`, a new line after each line feed (LF, `ESC d n`) and before
/// each command.
fn dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, &byte) in bytes.iter().enumerate() {
        let after_feed = i >= 3 && bytes[i - 3..i - 1] == [0x1B, b'd'];
        let command = matches!(byte, 0x10 | 0x1B | 0x1C | 0x1D);
        if (command || after_feed) && !out.ends_with('\n') && !out.is_empty() {
            out.push('\n');
        }
        match byte {
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7E => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\x{byte:02X}")),
        }
        if byte == b'\n' {
            out.push('\n');
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn sample_chinese_label_bytes() {
    let bytes = EscPos::default().render(&sample()).unwrap();
    insta::assert_snapshot!(dump(&bytes));
}

#[test]
fn chinese_text_is_gb18030_in_chinese_mode() {
    let bytes = EscPos::default().render(&sample()).unwrap();
    // ESC @, then FS & before any text.
    assert!(bytes.starts_with(b"\x1b@\x1c&"), "{:?}", &bytes[..8]);
    // 张 is D5 C5 in GB18030 (and GBK); 补打 is B2 B9 B4 F2.
    assert!(find(&bytes, b"\xd5\xc5**").is_some());
    assert!(find(&bytes, b"REPRINT 2 / \xb2\xb9\xb4\xf2 2").is_some());
    // No UTF-8 leaks through: 张 in UTF-8 is E5 BC A0.
    assert!(find(&bytes, "张".as_bytes()).is_none());
}

#[test]
fn code128_is_set_b_with_braces_doubled() {
    let bytes = EscPos::default().render(&sample()).unwrap();
    // "SF{12345}678": 12 characters, one brace doubled, plus "{B" = 15.
    let expected = b"\x1dkI\x0f{BSF{{12345}678";
    assert!(find(&bytes, expected).is_some(), "{}", dump(&bytes));
}

#[test]
fn qr_is_model_2_and_stores_the_waybill() {
    let bytes = EscPos::default().render(&sample()).unwrap();
    // GS ( k 4 0 49 65 50 0: model 2.
    assert!(find(&bytes, b"\x1d(k\x04\x001A2\x00").is_some());
    assert!(find(&bytes, b"\x1d(k\x04\x001A1\x00").is_none());
    // GS ( k pL pH 49 80 48 data: store, then GS ( k 3 0 49 81 48: print.
    let waybill = b"SF{12345}678";
    let mut store = vec![0x1d, b'(', b'k', 3 + waybill.len() as u8, 0, 49, 80, 48];
    store.extend_from_slice(waybill);
    let stored = find(&bytes, &store).expect("QR store");
    let printed = find(&bytes, b"\x1d(k\x03\x001Q0").expect("QR print");
    assert!(stored < printed);
}

#[test]
fn nothing_is_rendered_for_an_invalid_label() {
    let mut label = sample();
    label.waybill_no = String::new();
    assert_eq!(
        EscPos::default().render(&label),
        Err(RenderError::Empty {
            field: "waybill_no"
        })
    );
    label.waybill_no = "SF１２３".into(); // full-width digits
    assert!(matches!(
        EscPos::default().render(&label),
        Err(RenderError::WaybillChar {
            ch: '１',
            position: 2
        })
    ));
    label.waybill_no = "SF123".into();
    label.address = "a".repeat(201);
    assert!(matches!(
        EscPos::default().render(&label),
        Err(RenderError::TooLong {
            field: "address",
            ..
        })
    ));
}

/// Any text at all, control characters, 4-byte characters and all.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,80}",
        "[A-Za-z0-9 {}]{0,30}",
        "[上海市浦东新区 0-9]{0,120}",
        prop::collection::vec(any::<char>(), 0..300).prop_map(String::from_iter),
    ]
}

fn any_label() -> impl Strategy<Value = Label> {
    (
        (any_text(), any_text(), any_text(), any_text(), any_text()),
        (any_text(), any::<i64>(), any_text(), any_text()),
        prop::option::of(any::<u32>()),
    )
        .prop_map(
            |(
                (waybill_no, order_no, package_no, consignee, phone),
                (address, gross_grams, station, printed_at),
                copy,
            )| Label {
                waybill_no,
                order_no,
                package_no,
                consignee,
                phone,
                address,
                gross_grams,
                station,
                printed_at,
                copy,
            },
        )
}

proptest! {
    /// Rendering is total: a label is printed or refused, never a panic.
    /// What is printed ends with the cut and never with a half command.
    #[test]
    fn any_label_renders_or_is_refused(label in any_label(), columns in 24usize..=96) {
        let backend = EscPos::new(bondgate_label::EscPosOptions {
            columns,
            ..Default::default()
        }).unwrap();
        if let Ok(bytes) = backend.render(&label) {
            prop_assert!(bytes.starts_with(b"\x1b@\x1c&"));
            prop_assert!(bytes.ends_with(&[0x1d, b'V', 66, 0]));
        }
    }
}
