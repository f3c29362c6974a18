//! Property tests: no input makes a decoder panic, and every refusal reads
//! well on a PDA screen. Decoders face bytes from any device on the network
//! (or anyone who can reach the broker), so they must be total functions.
//! Broker URLs come from configuration, which is typed by hand: their parser
//! must not panic either, nor repeat a password in its refusal.

use bondgate_protocol::{
    BrokerAddr, DeviceStatus, GateCommand, GateState, Heartbeat, PayloadError, PrintJob,
    PrinterReport, PromptMsg, PromptText, ScanMsg, Topic, WeightMsg, PROMPT_TEXT_CHARS_MAX,
};
use proptest::prelude::*;

/// Runs every decoder on `bytes` and returns the errors they produced.
fn decode_all(bytes: &[u8]) -> Vec<PayloadError> {
    [
        ScanMsg::decode(bytes).err(),
        PromptMsg::decode(bytes).err(),
        WeightMsg::decode(bytes).err(),
        GateCommand::decode(bytes).err(),
        GateState::decode(bytes).err(),
        Heartbeat::decode(bytes).err(),
        DeviceStatus::decode(bytes).err(),
        PrinterReport::decode(bytes).err(),
        PrintJob::decode(bytes).err().and_then(|e| match e {
            bondgate_protocol::PrintJobError::Header(h) => Some(h),
            _ => None,
        }),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Every error must fit a prompt as is: bounded, no control characters.
fn assert_screen_safe(errors: &[PayloadError]) -> Result<(), TestCaseError> {
    for e in errors {
        let text = e.to_string();
        prop_assert!(
            text.chars().count() <= PROMPT_TEXT_CHARS_MAX,
            "too long: {}",
            text
        );
        prop_assert!(
            PromptText::new(&text).is_ok(),
            "not screen-safe: {:?}",
            text
        );
    }
    Ok(())
}

/// Valid messages of every kind, to mutate.
fn samples() -> Vec<Vec<u8>> {
    [
        r#"{"v":1,"seq":1,"barcode":"SKU-1","ts":1700000000000}"#,
        r#"{"v":1,"seq":7,"ok":true,"tone":"ok","text":"Scan bin","next":"bin"}"#,
        r#"{"v":1,"grams":512,"stable":true,"ts":0}"#,
        r#"{"v":1,"seq":3,"id":"c-42","cmd":"open","pulse_ms":800,"expires_at":1}"#,
        r#"{"v":1,"seq":9,"state":"closed"}"#,
        r#"{"v":1,"seq":1,"ts":-1}"#,
        "online",
    ]
    .into_iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// JSON-ish values, including the awkward ones: floats, huge numbers,
/// nesting, control characters, unknown words.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        Just("18446744073709551616".to_owned()),
        Just("null".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        prop::sample::select(vec!["open", "close", "ok", "bin", "fault", "online"])
            .prop_map(|s| format!("\"{s}\"")),
    ];
    leaf.prop_recursive(4, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(inner, 0..4)
                .prop_map(|v| format!("{{\"x\":{}}}", v.join(",\"y\":"))),
        ]
    })
}

const KEYS: [&str; 21] = [
    "v",
    "seq",
    "barcode",
    "ts",
    "ok",
    "tone",
    "text",
    "next",
    "grams",
    "stable",
    "id",
    "cmd",
    "pulse_ms",
    "expires_at",
    "state",
    "extra",
    "report",
    "job",
    "reason",
    "online",
    "paper_out",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1500)) {
        assert_screen_safe(&decode_all(&bytes))?;
    }

    #[test]
    fn arbitrary_text_never_panics(s in any::<String>()) {
        assert_screen_safe(&decode_all(s.as_bytes()))?;
        let _ = Topic::parse(&s);
    }

    #[test]
    fn broker_urls_never_panic_nor_leak_the_password(
        before in any::<String>(),
        password in "[a-z]{12}",
        after in any::<String>(),
        scheme in prop::sample::select(vec!["", "mqtt://", "tcp://", "mqtts://", "u:"]),
    ) {
        let _ = BrokerAddr::parse(&before);
        let url = format!("{scheme}{before}user:{password}@{after}");
        if let Err(e) = BrokerAddr::parse(&url) {
            prop_assert!(!e.to_string().contains(&password), "{}: {}", url, e);
            prop_assert!(!format!("{e:?}").contains(&password), "{}: {:?}", url, e);
        }
    }

    #[test]
    fn mutated_messages_never_panic(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..6),
    ) {
        let all = samples();
        let mut bytes = all[which.index(all.len())].clone();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 => bytes.insert(i, byte),
                1 if i < bytes.len() => { bytes.remove(i); }
                _ if i < bytes.len() => bytes[i] = byte,
                _ => bytes.push(byte),
            }
        }
        assert_screen_safe(&decode_all(&bytes))?;
    }

    #[test]
    fn arbitrary_objects_never_panic(
        fields in prop::collection::vec((prop::sample::select(KEYS.to_vec()), json_value()), 0..8),
        with_v1 in any::<bool>(),
    ) {
        let mut parts: Vec<String> =
            fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        if with_v1 {
            parts.insert(0, "\"v\":1".to_owned());
        }
        let json = format!("{{{}}}", parts.join(","));
        assert_screen_safe(&decode_all(json.as_bytes()))?;
    }
}

mod relay {
    //! The relay decoders face a serial line or a TCP peer: any bytes, in
    //! any chunking. The status decoder's errors reach the guard's screen
    //! inside the gate's fault text, so they must be screen-safe too.
    use bondgate_protocol::relay::modbus::{Direction, Request, Response, RtuDecoder, TcpDecoder};
    use bondgate_protocol::relay::{CommandDecoder, StatusDecoder};
    use bondgate_protocol::{PromptText, PROMPT_TEXT_CHARS_MAX};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn relay_decoders_take_any_bytes_in_any_chunks(
            bytes in proptest::collection::vec(any::<u8>(), 0..1024),
            chunk in 1_usize..64,
        ) {
            let (mut board, mut status) = (CommandDecoder::new(), StatusDecoder::new());
            let mut rtu = [RtuDecoder::new(Direction::Request), RtuDecoder::new(Direction::Response)];
            let mut tcp = TcpDecoder::new();
            for part in bytes.chunks(chunk) {
                let _ = board.push(part);
                for d in &mut rtu {
                    for event in d.push(part) {
                        if let bondgate_protocol::relay::modbus::RtuEvent::Frame(f) = event {
                            let _ = (Request::decode(&f.pdu), Response::decode(&f.pdu));
                        }
                    }
                }
                if let Ok(frames) = tcp.push(part) {
                    for f in frames {
                        let _ = (Request::decode(&f.pdu), Response::decode(&f.pdu));
                    }
                }
                for error in status.push(part).into_iter().filter_map(Result::err) {
                    let text = error.to_string();
                    prop_assert!(text.chars().count() <= PROMPT_TEXT_CHARS_MAX, "too long: {}", text);
                    prop_assert!(PromptText::new(&text).is_ok(), "not screen-safe: {:?}", text);
                }
            }
            let _ = board.finish();
        }
    }
}
