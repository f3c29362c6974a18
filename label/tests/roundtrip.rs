//! Round trip: label → ESC/POS bytes → `bondgate_protocol::escpos::Decoder`
//! → the same content. The decoder is what the printer simulator runs, so
//! this is the promise that what we render is what a printer would print:
//! every byte understood, the waybill in the CODE128 and in the QR (model 2),
//! and every text line of the layout present, in order, in GB18030.

use bondgate_label::{EscPos, EscPosOptions, Label, LabelBackend, Layout};
use bondgate_protocol::escpos::{Decoder, EscPosCommand, QrCommand, QrModel, Symbology};
use proptest::prelude::*;

/// What a reader of the paper would find.
#[derive(Debug, Default)]
struct Printed {
    lines: Vec<String>,
    code128: Vec<String>,
    qr: Vec<(String, Option<QrModel>)>,
    cuts: usize,
}

fn print(bytes: &[u8]) -> Printed {
    let mut decoder = Decoder::new();
    let mut items = decoder.feed(bytes);
    items.extend(decoder.finish());
    let mut printed = Printed::default();
    let mut line = Vec::new();
    let mut chinese = false;
    let end_line = |line: &mut Vec<u8>, printed: &mut Printed| {
        let (text, _, bad) = encoding_rs::GB18030.decode(line);
        assert!(!bad, "not GB18030: {line:?}");
        printed.lines.push(text.into_owned());
        line.clear();
    };
    for item in items {
        match item.expect("every byte understood") {
            EscPosCommand::Text(text) => {
                assert!(chinese || text.is_ascii(), "GB bytes outside Chinese mode");
                line.extend(text);
            }
            EscPosCommand::ChineseMode(on) => chinese = on,
            EscPosCommand::LineFeed | EscPosCommand::Feed(_) if !line.is_empty() => {
                end_line(&mut line, &mut printed)
            }
            EscPosCommand::Barcode(barcode) => {
                assert_eq!(barcode.symbology, Symbology::Code128);
                printed
                    .code128
                    .push(String::from_utf8(barcode.data).unwrap());
            }
            EscPosCommand::Qr(QrCommand::Print { data, model }) => printed
                .qr
                .push((String::from_utf8(data.unwrap()).unwrap(), model)),
            EscPosCommand::Cut(_) => printed.cuts += 1,
            EscPosCommand::Unknown(bytes) => panic!("unknown command {bytes:?}"),
            _ => {}
        }
    }
    assert!(line.is_empty(), "text after the last line feed: {line:?}");
    printed
}

fn sample() -> Label {
    Label {
        waybill_no: "JD{0012}3456".into(),
        order_no: "SO-20240601-0001".into(),
        package_no: "PKG-1/2".into(),
        consignee: "欧阳**".into(),
        phone: "138****5678".into(),
        address: "浙江省宁波市北仑区保税东区兴业大道 8 号 Building C, Room 1203 (前台代收)".into(),
        gross_grams: 20_050,
        station: "打包台 P-03".into(),
        printed_at: "2024-06-01 14:05 CST".into(),
        copy: Some(1),
    }
}

fn assert_round_trip(label: &Label, columns: usize) -> Result<(), TestCaseError> {
    let backend = EscPos::new(EscPosOptions {
        columns,
        ..EscPosOptions::default()
    })
    .unwrap();
    let bytes = backend.render(label).unwrap();
    let printed = print(&bytes);
    let layout = Layout::new(label, columns).unwrap();
    let expected: Vec<String> = layout.text_lines().map(str::to_owned).collect();
    // Rules (a full line of dashes) are text on paper but not in
    // `text_lines`; a short run of dashes is real text (a waybill "-").
    let lines: Vec<String> = printed
        .lines
        .iter()
        .filter(|l| !(l.chars().count() == columns && l.chars().all(|c| c == '-')))
        .cloned()
        .collect();
    prop_assert_eq!(lines, expected);
    prop_assert_eq!(printed.code128, vec![label.waybill_no.clone()]);
    prop_assert_eq!(
        &printed.qr,
        &[(label.waybill_no.clone(), Some(QrModel::Model2))]
    );
    prop_assert_eq!(printed.cuts, 1);
    Ok(())
}

#[test]
fn sample_label_reads_back() {
    let label = sample();
    assert_round_trip(&label, 48).unwrap();
    let printed = print(&EscPos::default().render(&label).unwrap());
    assert_eq!(printed.lines[0], "REPRINT 1 / 补打 1");
    assert!(printed.lines.contains(&"收件人 To: 欧阳**".to_owned()));
    assert!(printed.lines.contains(&"毛重 Gross: 20.050 kg".to_owned()));
    assert_eq!(printed.code128, ["JD{0012}3456"]);
}

#[test]
fn narrow_roll_reads_back() {
    let mut label = sample();
    label.waybill_no = "SF1234567890".into();
    assert_round_trip(&label, 32).unwrap();
}

/// Printable text with Chinese, Latin, digits, braces, and characters
/// outside GBK (4-byte GB18030).
fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::char::range('a', 'z'),
            2 => Just(' '),
            4 => prop::char::range('一', '龥'),
            1 => Just('{'),
            1 => Just('𠮷'),
            1 => Just('€'),
        ],
        min..=max,
    )
    .prop_map(String::from_iter)
    .prop_filter("not blank", |s| !s.trim().is_empty())
}

proptest! {
    #[test]
    fn any_valid_label_reads_back(
        // 12 characters: the most a 58 mm roll fits (module 2, quiet zones).
        waybill_no in "[!-~]{1,12}",
        consignee in text(1, 20),
        address in text(1, 200),
        station in text(1, 30),
        gross_grams in 0i64..=10_000_000,
        copy in prop::option::of(1u32..=999),
        columns in prop::sample::select(vec![32usize, 48, 64]),
    ) {
        let label = Label {
            waybill_no,
            consignee,
            address,
            station,
            gross_grams,
            copy,
            ..sample()
        };
        assert_round_trip(&label, columns)?;
    }
}
