use super::*;
use proptest::prelude::*;

/// Everything the decoder interprets, once, as a printer would receive it.
const STREAM: &[u8] = b"\x1b@\x1c&\x1ba\x01\x1bE\x01\x1d!\x11\xd5\xc5**\n\
\x1bt\x00\x1bR\x0f\x1bd\x03\r\
\x1dhP\x1dw\x02\x1dH\x00\x1dkI\x07{BSF{{1\
\x1dk\x04CODE39\x00\
\x1d(k\x04\x001A2\x00\x1d(k\x03\x001C\x06\x1d(k\x03\x001E1\
\x1d(k\x06\x001P0SF1\x1d(k\x03\x001Q0\
\x10\x04\x04\x1c.\x1dV\x01\x1dVB\x00\x1dVA\x03\x1dV0";

fn decode_whole(bytes: &[u8]) -> Vec<Decoded> {
    let mut decoder = Decoder::new();
    let mut out = decoder.feed(bytes);
    out.extend(decoder.finish());
    out
}

fn decode_chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Decoded> {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    let mut from = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    for cut in cuts.into_iter().chain([bytes.len()]) {
        out.extend(decoder.feed(&bytes[from..cut]));
        assert!(decoder.buffered() <= COMMAND_BYTES_MAX);
        from = cut;
    }
    out.extend(decoder.finish());
    out
}

#[test]
fn every_interpreted_command() {
    use EscPosCommand as C;
    let commands: Vec<_> = decode_whole(STREAM)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let cut = |partial, form| C::Cut(Cut { partial, form });
    assert_eq!(
        commands,
        [
            C::Init,
            C::ChineseMode(true),
            C::Align(Align::Center),
            C::Bold(true),
            C::CharSize {
                width: 2,
                height: 2
            },
            C::Text(b"\xd5\xc5**".to_vec()),
            C::LineFeed,
            C::CodePage(0),
            C::CharacterSet(15),
            C::Feed(3),
            C::CarriageReturn,
            C::BarcodeHeight(80),
            C::BarcodeModuleWidth(2),
            C::BarcodeHri(0),
            C::Barcode(Barcode {
                symbology: Symbology::Code128,
                data: b"SF{1".to_vec()
            }),
            C::Barcode(Barcode {
                symbology: Symbology::Code39,
                data: b"CODE39".to_vec()
            }),
            C::Qr(QrCommand::Model(QrModel::Model2)),
            C::Qr(QrCommand::ModuleSize(6)),
            C::Qr(QrCommand::ErrorLevel(QrErrorLevel::M)),
            C::Qr(QrCommand::Store(b"SF1".to_vec())),
            C::Qr(QrCommand::Print {
                data: Some(b"SF1".to_vec()),
                model: Some(QrModel::Model2)
            }),
            C::StatusRequest(StatusRequest::PaperRoll),
            C::ChineseMode(false),
            cut(true, CutForm::Here),
            cut(true, CutForm::FeedThenCut(0)),
            cut(false, CutForm::FeedThenCut(3)),
            cut(false, CutForm::Here),
        ]
    );
}

#[test]
fn split_anywhere_decodes_the_same() {
    let whole = decode_whole(STREAM);
    for at in 0..=STREAM.len() {
        assert_eq!(decode_chunks(STREAM, &[at]), whole, "split at {at}");
    }
    let bytewise: Vec<usize> = (0..STREAM.len()).collect();
    assert_eq!(decode_chunks(STREAM, &bytewise), whole);
}

#[test]
fn init_forgets_the_stored_qr() {
    let out = decode_whole(b"\x1d(k\x04\x001P0A\x1b@\x1d(k\x03\x001Q0");
    assert_eq!(
        out.last(),
        Some(&Ok(EscPosCommand::Qr(QrCommand::Print {
            data: None,
            model: None
        })))
    );
}

#[test]
fn unknown_commands_of_known_length_are_kept_whole() {
    let out = decode_whole(b"\x1b!\x08\x1bp\x00\x19\xfa\x1d(L\x02\x000p\x1c(A\x01\x00\x01x");
    assert_eq!(
        out,
        [
            Ok(EscPosCommand::Unknown(b"\x1b!\x08".to_vec())),
            Ok(EscPosCommand::Unknown(b"\x1bp\x00\x19\xfa".to_vec())),
            Ok(EscPosCommand::Unknown(b"\x1d(L\x02\x000p".to_vec())),
            Ok(EscPosCommand::Unknown(b"\x1c(A\x01\x00\x01".to_vec())),
            Ok(EscPosCommand::Text(b"x".to_vec())),
        ]
    );
}

#[test]
fn unknowable_commands_resynchronise() {
    let out = decode_whole(b"\x1b\xffAB\n");
    assert_eq!(
        out,
        [
            Err(EscPosError::UnknownCommand {
                bytes: vec![0x1b, 0xff]
            }),
            Ok(EscPosCommand::Text(b"AB".to_vec())),
            Ok(EscPosCommand::LineFeed),
        ]
    );
    assert_eq!(
        out[0].as_ref().unwrap_err().to_string(),
        "unknown command 1B FF: resynchronised after it"
    );
}

#[test]
fn oversized_images_are_skipped_as_they_stream() {
    // GS v 0: 100 bytes × 200 dots = 20,000 bytes of image.
    let mut stream = b"\x1dv0\x00\x64\x00\xc8\x00".to_vec();
    stream.extend(std::iter::repeat_n(0x1b, 20_000));
    stream.extend_from_slice(b"after\n");
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for chunk in stream.chunks(1000) {
        out.extend(decoder.feed(chunk));
        assert!(decoder.buffered() <= COMMAND_BYTES_MAX);
    }
    assert!(matches!(
        &out[0],
        Err(EscPosError::Oversized { len: 20_008, .. })
    ));
    assert_eq!(
        out[1..],
        [
            Ok(EscPosCommand::Text(b"after".to_vec())),
            Ok(EscPosCommand::LineFeed)
        ]
    );
}

#[test]
fn bad_barcodes_are_refused() {
    let out = decode_whole(b"\x1dkI\x03SF1\x1dk\x04AB");
    assert_eq!(
        out[0],
        Err(EscPosError::InvalidBarcode {
            symbology: Symbology::Code128,
            reason: "CODE128 data must start with {A, {B or {C"
        })
    );
    // Form A without NUL: the stream ended inside it.
    assert!(matches!(out[1], Err(EscPosError::Truncated { .. })));
    // … and 255 bytes without NUL resynchronise.
    let mut long = b"\x1dk\x04".to_vec();
    long.extend(std::iter::repeat_n(b'A', 300));
    let out = decode_whole(&long);
    assert!(matches!(out[0], Err(EscPosError::UnknownCommand { .. })));
    assert_eq!(out[1], Ok(EscPosCommand::Text(vec![b'A'; 300])));
}

#[test]
fn long_text_comes_in_bounded_runs() {
    let out = decode_whole(&[b'x'; TEXT_RUN_BYTES_MAX * 2 + 5]);
    let lens: Vec<_> = out
        .iter()
        .map(|item| match item {
            Ok(EscPosCommand::Text(t)) => t.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(lens, [TEXT_RUN_BYTES_MAX, TEXT_RUN_BYTES_MAX, 5]);
}

#[test]
fn truncated_stream_is_reported_and_the_decoder_reset() {
    let mut decoder = Decoder::new();
    assert!(decoder.feed(b"\x1d(k\x10\x001P0SF").is_empty());
    assert_eq!(
        decoder.finish(),
        [Err(EscPosError::Truncated {
            bytes: b"\x1d(k\x10\x001P0SF".to_vec()
        })]
    );
    assert_eq!(decoder.buffered(), 0);
    assert_eq!(decoder.feed(b"\x1b@"), [Ok(EscPosCommand::Init)]);
}

proptest! {
    /// Any bytes, split anywhere: no panic, the same items as decoding the
    /// whole, and never more than the bound held.
    #[test]
    fn any_bytes_any_split(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        prop_assert_eq!(decode_chunks(&bytes, &cuts), decode_whole(&bytes));
    }

    /// Command-heavy input: random pieces of real commands glued together.
    #[test]
    fn command_soup_any_split(
        pieces in prop::collection::vec(
            prop_oneof![
                Just(b"\x1b".to_vec()), Just(b"\x1d".to_vec()), Just(b"\x1c".to_vec()),
                Just(b"\x10\x04".to_vec()), Just(b"\x1d(k".to_vec()), Just(b"\x1dk".to_vec()),
                Just(b"\x1dV".to_vec()), Just(b"{B".to_vec()), Just(b"{{".to_vec()),
                prop::collection::vec(any::<u8>(), 0..6),
            ],
            0..60,
        ),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let bytes = pieces.concat();
        prop_assert_eq!(decode_chunks(&bytes, &cuts), decode_whole(&bytes));
    }
}
