//! Scale frames through the public API: every MT-SICS reply, each
//! protocol's documented examples, frames split, merged, garbled and cut
//! short, and property tests — encode → feed in random chunks → the same
//! reading, and arbitrary bytes never panic nor grow the buffer.

use bondgate_protocol::scale::{
    encode_reading, mtsics_answer, mtsics_reply, request, try_encode_reading, Command, Decoder,
    EncodeError, FrameError, MtSicsAnswer, MtSicsState, Range, Reading, ScaleEvent, ScaleProtocol,
    DERIVED_STABLE_FRAMES, FRAME_BYTES_MAX, GRAMS_ABS_MAX,
};
use proptest::prelude::*;

type Events = Vec<Result<ScaleEvent, FrameError>>;

fn feed(protocol: ScaleProtocol, bytes: &[u8]) -> Events {
    Decoder::new(protocol).feed(bytes)
}

fn reading(grams: i64, stable: bool, net: bool, range: Range) -> Reading {
    Reading {
        grams,
        stable,
        net,
        range,
    }
}

fn ok_reading(grams: i64, stable: bool) -> Result<ScaleEvent, FrameError> {
    Ok(ScaleEvent::Reading(reading(
        grams,
        stable,
        false,
        Range::Ok,
    )))
}

// ---------------------------------------------------------------- MT-SICS

#[test]
fn mtsics_every_reply_status() {
    use Command::*;
    let cases: Vec<(&str, Result<ScaleEvent, FrameError>)> = vec![
        ("S S     100.00 g", ok_reading(100, true)),
        ("S D      0.512 kg", ok_reading(512, false)),
        ("S S     -0.010 kg", ok_reading(-10, true)),
        ("S S    1500 mg", ok_reading(2, true)),
        (
            "S +",
            Ok(ScaleEvent::Reading(reading(
                0,
                false,
                false,
                Range::Overload,
            ))),
        ),
        (
            "S -",
            Ok(ScaleEvent::Reading(reading(
                0,
                false,
                false,
                Range::Underload,
            ))),
        ),
        ("S I", Ok(ScaleEvent::Busy(Weigh))),
        ("Z A", Ok(ScaleEvent::Done(Zero))),
        ("Z I", Ok(ScaleEvent::Busy(Zero))),
        ("T S      2.486 g", Ok(ScaleEvent::Done(Tare))),
        ("T A      2.486 kg", Ok(ScaleEvent::Done(Tare))),
        ("T I", Ok(ScaleEvent::Busy(Tare))),
        ("I4 A \"B207696838\"", Ok(ScaleEvent::Done(Reset))),
    ];
    for (line, want) in cases {
        let got = feed(ScaleProtocol::MtSics, format!("{line}\r\n").as_bytes());
        assert_eq!(got, vec![want], "{line:?}");
    }
    // Refusals: readable text, one event each.
    for (line, words) in [
        ("ES", "syntax error"),
        ("ET", "transmission error"),
        ("EL", "logical error"),
        ("S L", "S refused"),
        ("Z +", "zero refused"),
        ("Z -", "zero refused"),
        ("T +", "tare refused"),
        ("T -", "tare refused"),
    ] {
        let got = feed(ScaleProtocol::MtSics, format!("{line}\r\n").as_bytes());
        match got.as_slice() {
            [Ok(ScaleEvent::Refused(text))] => assert!(text.contains(words), "{line}: {text}"),
            other => panic!("{line}: {other:?}"),
        }
    }
}

#[test]
fn mtsics_errors_and_power_up_noise() {
    let got = feed(
        ScaleProtocol::MtSics,
        b"\x00\xff\x00I4 A \"B207696838\"\r\nS S 1.0 lb\r\nS Q 1 kg\r\nS S 1.2.3 kg\r\n\r\nS S      1.000 kg\r\n",
    );
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[0], Ok(ScaleEvent::Done(Command::Reset)));
    assert_eq!(got[1], Err(FrameError::NotMetric { unit: "lb".into() }));
    assert!(matches!(got[2], Err(FrameError::UnknownHeader { .. })));
    assert!(matches!(got[3], Err(FrameError::BadNumber { .. })));
    assert_eq!(got[4], ok_reading(1000, true));
}

#[test]
fn mtsics_over_long_line_is_reported_once_and_skipped() {
    let mut bytes = vec![b'S'; 1000];
    bytes.extend_from_slice(b"\r\nS S      0.001 kg\r\n");
    let got = feed(ScaleProtocol::MtSics, &bytes);
    assert_eq!(
        got,
        vec![Err(FrameError::TooLong { max: 128 }), ok_reading(1, true)]
    );
}

#[test]
fn mtsics_answers_like_a_scale() {
    let state = |r: Reading| MtSicsState {
        reading: r,
        tare_grams: 100,
        serial: "B207696838",
    };
    let stable = state(Reading::stable(1234));
    let moving = state(reading(1234, false, false, Range::Ok));
    let over = state(reading(0, false, false, Range::Overload));
    assert_eq!(mtsics_reply(b"S\r\n", &stable), b"S S      1.234 kg\r\n");
    assert_eq!(mtsics_reply(b"S\r\n", &moving), b"S I\r\n");
    assert_eq!(mtsics_reply(b"SI\r\n", &moving), b"S D      1.234 kg\r\n");
    assert_eq!(mtsics_reply(b"SI\r\n", &over), b"S +\r\n");
    assert_eq!(mtsics_reply(b"S\r\n", &over), b"S +\r\n");
    assert_eq!(mtsics_reply(b"Z\r\n", &stable), b"Z A\r\n");
    assert_eq!(mtsics_reply(b"Z\r\n", &moving), b"Z I\r\n");
    assert_eq!(mtsics_reply(b"Z\r\n", &over), b"Z +\r\n");
    assert_eq!(mtsics_reply(b"T\r\n", &stable), b"T S      1.334 kg\r\n");
    assert_eq!(mtsics_reply(b"T\r\n", &moving), b"T I\r\n");
    assert_eq!(mtsics_reply(b"@\r\n", &stable), b"I4 A \"B207696838\"\r\n");
    assert_eq!(mtsics_reply(b"XYZ\r\n", &stable), b"ES\r\n");
    assert_eq!(
        mtsics_answer(Some(Command::Tare), &stable),
        MtSicsAnswer::Tared { tare_grams: 1334 }
    );
    // Whatever the simulator answers, the decoder reads.
    for line in ["S", "SI", "Z", "T", "@", "nonsense"] {
        for s in [stable, moving, over] {
            let reply = mtsics_reply(line.as_bytes(), &s);
            let got = feed(ScaleProtocol::MtSics, &reply);
            assert!(matches!(got.as_slice(), [Ok(_)]), "{line} → {got:?}");
        }
    }
    assert_eq!(
        request(ScaleProtocol::MtSics, Command::Weigh),
        Some(b"S\r\n".to_vec())
    );
}

// ---------------------------------------------------------- other formats

#[test]
fn ascii_examples() {
    let got = feed(
        ScaleProtocol::ContinuousAscii,
        b"ST,GS,+0000.512kg\r\nUS,NT,-0000.010 kg\r\nOL,GS,+9999.999kg\r\nST,+0001.234 kg\r\nST,GS,+0001.000lb\r\n",
    );
    assert_eq!(
        got,
        vec![
            ok_reading(512, true),
            Ok(ScaleEvent::Reading(reading(-10, false, true, Range::Ok))),
            Ok(ScaleEvent::Reading(reading(
                9_999_999,
                false,
                false,
                Range::Overload
            ))),
            ok_reading(1234, true),
            Err(FrameError::NotMetric { unit: "lb".into() }),
        ]
    );
}

#[test]
fn yaohua_manual_example_and_derived_stability() {
    let example = [
        0x02, 0x2B, 0x30, 0x30, 0x30, 0x35, 0x30, 0x30, 0x33, 0x31, 0x44, 0x03,
    ];
    assert_eq!(
        encode_reading(ScaleProtocol::YaohuaA9, &Reading::stable(500)),
        example
    );
    let stream: Vec<u8> = example.repeat(DERIVED_STABLE_FRAMES as usize);
    let got = feed(ScaleProtocol::YaohuaA9, &stream);
    let last = DERIVED_STABLE_FRAMES as usize - 1;
    for (i, event) in got.iter().enumerate() {
        assert_eq!(*event, ok_reading(500, i == last), "frame {i}");
    }
}

#[test]
fn yaohua_eq_is_reversed_not_misread() {
    // `=0.50000` is 5.0 kg; reading it forwards (0.5 kg) is the classic bug.
    let got = feed(ScaleProtocol::YaohuaA9Eq, b"=0.50000=0.50000\r\n");
    assert_eq!(
        got,
        vec![ok_reading(5_000, false), ok_reading(5_000, false)]
    );
    let got = feed(ScaleProtocol::YaohuaA9Eq, b"=000.3000=00.1000-\r\n");
    assert_eq!(
        got,
        vec![ok_reading(3_000, false), ok_reading(-1_000, false)]
    );
}

#[test]
fn yaohua_eq_refuses_a_frame_cut_short() {
    // `=570.000-` (-0.075 kg) cut after `=570` would read as +75 g.
    let got = feed(ScaleProtocol::YaohuaA9Eq, b"=570.000-=570=570.000-=");
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], ok_reading(-75, false));
    assert!(matches!(&got[1], Err(FrameError::Malformed { why }) if why.contains("cut short")));
    assert_eq!(got[2], ok_reading(-75, false));
    // A display that really changes width is believed after two frames.
    let got = feed(
        ScaleProtocol::YaohuaA9Eq,
        b"=570.000-=0.50000=0.50000=0.50000=",
    );
    assert!(got[1].is_err());
    assert_eq!(
        got[2..],
        [ok_reading(5_000, false), ok_reading(5_000, false)]
    );
}

#[test]
fn toledo_with_and_without_checksum() {
    let frame = encode_reading(ScaleProtocol::ToledoContinuous, &Reading::stable(12_345));
    assert_eq!(frame.len(), 18);
    assert_eq!(
        feed(ScaleProtocol::ToledoContinuous, &frame),
        vec![ok_reading(12_345, true)]
    );
    // Without CHK: the first frame waits for the next STX, then every frame
    // comes out as soon as its CR arrives.
    let body = &frame[..17];
    let mut d = Decoder::new(ScaleProtocol::ToledoContinuous);
    assert_eq!(d.feed(body), vec![]);
    let two = vec![ok_reading(12_345, true), ok_reading(12_345, true)];
    assert_eq!(d.feed(body), two);
    assert_eq!(d.feed(body), vec![ok_reading(12_345, true)]);
    // A wrong checksum is reported with both values.
    let mut bad = frame.clone();
    bad[17] ^= 0x01;
    let got = feed(ScaleProtocol::ToledoContinuous, &bad);
    assert!(
        matches!(got.as_slice(), [Err(FrameError::BadChecksum { .. })]),
        "{got:?}"
    );
    let text = got[0].as_ref().unwrap_err().to_string();
    assert!(text.starts_with("bad checksum: expected 0x"), "{text}");
}

#[test]
fn encode_refuses_what_a_format_cannot_say() {
    let over = reading(0, false, false, Range::Overload);
    assert!(matches!(
        try_encode_reading(ScaleProtocol::YaohuaA9, &over),
        Err(EncodeError::NoRangeFlag { .. })
    ));
    assert_eq!(
        encode_reading(ScaleProtocol::YaohuaA9Eq, &over),
        Vec::<u8>::new()
    );
    assert!(matches!(
        try_encode_reading(ScaleProtocol::YaohuaA9, &Reading::stable(1_234_567)),
        Err(EncodeError::NotRepresentable { .. })
    ));
    assert!(
        try_encode_reading(ScaleProtocol::ToledoContinuous, &Reading::stable(1_234_560)).is_ok()
    );
    assert!(
        try_encode_reading(ScaleProtocol::MtSics, &Reading::stable(GRAMS_ABS_MAX + 1)).is_err()
    );
}

// ---------------------------------------- split, merged, garbled, truncated

/// Bytes that are noise to every protocol's framing, yet contain none of
/// the frame starts or line ends (so the next frame is not swallowed).
const GARBAGE: &[u8] = b"\x55\xaa#garbage!\x7f\x80";

#[test]
fn every_protocol_splits_merges_and_recovers() {
    for protocol in ScaleProtocol::ALL {
        let a = encode_reading(protocol, &Reading::stable(1_250));
        let b = encode_reading(protocol, &Reading::stable(-75));
        // A trailing frame completes an "=" frame and is harmless elsewhere.
        let tail = encode_reading(protocol, &Reading::stable(-75));

        // One byte at a time equals all at once.
        let mut merged = [a.clone(), b.clone(), tail.clone()].concat();
        let at_once = feed(protocol, &merged);
        let mut d = Decoder::new(protocol);
        let by_byte: Events = merged.iter().flat_map(|byte| d.feed(&[*byte])).collect();
        assert_eq!(at_once, by_byte, "{protocol}");
        assert!(
            at_once.len() >= 2 && at_once.iter().all(Result::is_ok),
            "{protocol}: {at_once:?}"
        );

        // Garbage between frames: an error, then frames again.
        merged = [a.clone(), GARBAGE.to_vec(), b.clone(), tail.clone()].concat();
        let got = feed(protocol, &merged);
        assert!(got.iter().any(Result::is_err), "{protocol}: {got:?}");
        assert!(
            matches!(got.last(), Some(Ok(ScaleEvent::Reading(r))) if r.grams == -75),
            "{protocol}: {got:?}"
        );

        // A frame cut short by the next one: an error, then the next frame.
        let cut = &b[..b.len() / 2];
        let mut d = Decoder::new(protocol);
        let mut got = d.feed(&a);
        got.extend(d.feed(cut));
        got.extend(d.feed(&b));
        got.extend(d.feed(&tail));
        assert!(got.iter().any(Result::is_err), "{protocol}: {got:?}");
        assert!(
            matches!(got.last(), Some(Ok(ScaleEvent::Reading(r))) if r.grams == -75),
            "{protocol}: {got:?}"
        );
    }
}

// ---------------------------------------------------------------- proptest

/// A weight with at most six significant digits (what every binary format
/// holds at some decimal position), scaled by up to 1000.
fn six_digit_grams() -> impl Strategy<Value = i64> {
    (-999_999_i64..=999_999, 0_u32..=3).prop_map(|(k, e)| k * 10_i64.pow(e))
}

/// Readings each protocol can express, paired with what its decoder reports
/// (the flags a format does not carry are dropped).
fn representable(protocol: ScaleProtocol) -> BoxedStrategy<Reading> {
    let flags = (any::<bool>(), any::<bool>());
    let out_of_range = prop_oneof![Just(Range::Overload), Just(Range::Underload)];
    match protocol {
        ScaleProtocol::MtSics => prop_oneof![
            (-GRAMS_ABS_MAX..=GRAMS_ABS_MAX, any::<bool>()).prop_map(|(g, stable)| reading(
                g,
                stable,
                false,
                Range::Ok
            )),
            out_of_range.prop_map(|range| reading(0, false, false, range)),
        ]
        .boxed(),
        ScaleProtocol::ContinuousAscii | ScaleProtocol::ToledoContinuous => {
            let grams: BoxedStrategy<i64> = if protocol == ScaleProtocol::ContinuousAscii {
                (-GRAMS_ABS_MAX..=GRAMS_ABS_MAX).boxed()
            } else {
                six_digit_grams().boxed()
            };
            prop_oneof![
                (grams.clone(), flags).prop_map(|(g, (s, n))| reading(g, s, n, Range::Ok)),
                (grams, any::<bool>(), out_of_range).prop_map(|(g, net, range)| {
                    let g = if range == Range::Overload {
                        g.abs()
                    } else {
                        -g.abs()
                    };
                    reading(g, false, net, range)
                }),
            ]
            .boxed()
        }
        ScaleProtocol::YaohuaA9 => six_digit_grams()
            .prop_map(|g| reading(g, false, false, Range::Ok))
            .boxed(),
        ScaleProtocol::YaohuaA9Eq => prop_oneof![
            (0_i64..=9_999_999).prop_map(|g| g),
            (-999_999_i64..=0).prop_map(|g| g),
            six_digit_grams(),
        ]
        .prop_map(|g| reading(g, false, false, Range::Ok))
        .boxed(),
    }
}

fn protocol() -> impl Strategy<Value = ScaleProtocol> {
    prop::sample::select(ScaleProtocol::ALL.to_vec())
}

/// Feeds `bytes` cut at the given chunk sizes (cycled).
fn feed_chunked(d: &mut Decoder, bytes: &[u8], cuts: &[usize]) -> Events {
    let mut out = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < bytes.len() {
        let n = cuts.get(i % cuts.len().max(1)).copied().unwrap_or(1).max(1);
        let end = (at + n).min(bytes.len());
        out.extend(d.feed(&bytes[at..end]));
        at = end;
        i += 1;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// encode → feed in random chunks → the same reading, for every
    /// protocol. Yaohua frames repeat until stability is derived.
    #[test]
    fn round_trip_in_any_chunking(
        (protocol, want) in protocol().prop_flat_map(|p| (Just(p), representable(p))),
        cuts in prop::collection::vec(1_usize..24, 1..8),
    ) {
        let frame = try_encode_reading(protocol, &want).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let repeats = DERIVED_STABLE_FRAMES as usize + 1;
        let mut d = Decoder::new(protocol);
        let got = feed_chunked(&mut d, &frame.repeat(repeats), &cuts);
        prop_assert!(d.buffered() <= FRAME_BYTES_MAX);
        match protocol {
            ScaleProtocol::YaohuaA9 | ScaleProtocol::YaohuaA9Eq => {
                // "=" frames end where the next begins: one fewer event.
                let n = if protocol == ScaleProtocol::YaohuaA9Eq { repeats - 1 } else { repeats };
                prop_assert_eq!(got.len(), n);
                for (i, event) in got.iter().enumerate() {
                    let stable = i + 1 >= DERIVED_STABLE_FRAMES as usize;
                    prop_assert_eq!(event, &Ok(ScaleEvent::Reading(Reading { stable, ..want })));
                }
            }
            _ => {
                prop_assert_eq!(got.len(), repeats);
                for event in &got {
                    prop_assert_eq!(event, &Ok(ScaleEvent::Reading(want)));
                }
            }
        }
    }

    /// Any bytes, any chunking: no panic, the buffer stays bounded, and a
    /// clean frame afterwards (behind a frame end) still decodes.
    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        protocol in protocol(),
        noise in prop::collection::vec(any::<u8>(), 0..2048),
        cuts in prop::collection::vec(1_usize..64, 1..8),
    ) {
        let mut d = Decoder::new(protocol);
        let mut at = 0;
        for (i, n) in cuts.iter().cycle().enumerate() {
            if at >= noise.len() || i > noise.len() { break; }
            let end = (at + n).min(noise.len());
            for e in d.feed(&noise[at..end]) {
                if let Err(e) = e {
                    let text = e.to_string();
                    prop_assert!(!text.is_empty() && text.chars().count() < 160, "{}", text);
                }
            }
            prop_assert!(d.buffered() <= FRAME_BYTES_MAX);
            at = end;
        }
        // Recovery: end whatever line or frame the noise left open, then
        // send frames; the last complete one must decode.
        let frame = encode_reading(protocol, &Reading::stable(4_321));
        let mut tail = b"\r\n".to_vec();
        tail.extend(frame.repeat(DERIVED_STABLE_FRAMES as usize + 2));
        let got = d.feed(&tail);
        prop_assert!(
            matches!(got.last(), Some(Ok(ScaleEvent::Reading(r))) if r.grams == 4_321),
            "{:?}", got
        );
    }
}
