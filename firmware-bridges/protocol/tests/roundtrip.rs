//! Property tests: everything this crate encodes, it decodes back to the same
//! value, every topic it renders parses back to the same topic, and every
//! broker address it shows parses back to the same address. These are what
//! let the server, bridges and simulators trust each other's bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use bondgate_protocol::{
    Barcode, BrokerAddr, CommandId, DeviceStatus, GateCmd, GateCommand, GateState, GateStateKind,
    Heartbeat, Next, PromptMsg, PromptText, PulseMs, ScanMsg, Site, Tone, Topic, TopicKind,
    WeightMsg, BARCODE_CHARS_MAX, PAYLOAD_BYTES_MAX, PROMPT_TEXT_CHARS_MAX, PULSE_MS_MAX,
};
use proptest::prelude::*;
use proptest::sample::select;

/// Any text of `min..=max` characters without control characters: the whole
/// of Unicode otherwise, including quotes, backslashes and 4-byte characters
/// that stress JSON escaping and the size limit.
fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        any::<char>().prop_filter("no control", |c| !c.is_control()),
        min..=max,
    )
    .prop_map(String::from_iter)
}

fn barcode() -> impl Strategy<Value = Barcode> {
    text(1, BARCODE_CHARS_MAX).prop_map(|s| Barcode::new(&s).unwrap())
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,64}"
}

fn tone() -> impl Strategy<Value = Tone> {
    select(vec![Tone::Ok, Tone::Error, Tone::Warning])
}

fn next() -> impl Strategy<Value = Next> {
    select(vec![
        Next::Bin,
        Next::Item,
        Next::Qty,
        Next::Done,
        Next::Login,
    ])
}

/// A broker host as `BrokerAddr` keeps it: a name, an IPv4 or an IPv6 address.
fn broker_host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9][A-Za-z0-9._-]{0,30}",
        any::<Ipv4Addr>().prop_map(|a| a.to_string()),
        any::<Ipv6Addr>().prop_map(|a| a.to_string()),
    ]
}

/// Does an MQTT filter match a topic? (MQTT 3.1.1 §4.7; enough for `+` and `#`.)
fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut t = topic.split('/');
    for f in filter.split('/') {
        match (f, t.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(level)) if f == level => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

proptest! {
    #[test]
    fn scan_round_trips(seq in any::<u64>(), barcode in barcode(), ts in any::<i64>()) {
        let m = ScanMsg { seq, barcode, ts };
        let bytes = m.encode();
        prop_assert!(bytes.len() <= PAYLOAD_BYTES_MAX);
        prop_assert_eq!(ScanMsg::decode(&bytes), Ok(m));
    }

    #[test]
    fn scan_trims_any_cr_lf_suffix_and_prefix(
        code in text(1, BARCODE_CHARS_MAX),
        prefix in "[\r\n]{0,3}",
        suffix in "[\r\n]{0,3}",
    ) {
        let raw = format!("{prefix}{code}{suffix}");
        let trimmed = Barcode::new(&raw).unwrap();
        prop_assert_eq!(trimmed.as_str(), code.as_str());
    }

    #[test]
    fn prompt_round_trips(
        seq in any::<u64>(),
        ok in any::<bool>(),
        tone in tone(),
        text in text(0, PROMPT_TEXT_CHARS_MAX),
        next in next(),
    ) {
        let m = PromptMsg { seq, ok, tone, text: PromptText::new(&text).unwrap(), next };
        let bytes = m.encode();
        prop_assert!(bytes.len() <= PAYLOAD_BYTES_MAX);
        prop_assert_eq!(PromptMsg::decode(&bytes), Ok(m));
    }

    #[test]
    fn clamp_fits_any_text(s in any::<String>()) {
        let t = PromptText::clamp(&s);
        prop_assert!(PromptText::new(t.as_str()).is_ok());
    }

    #[test]
    fn weight_round_trips(grams in any::<i64>(), stable in any::<bool>(), ts in any::<i64>()) {
        let m = WeightMsg { grams, stable, ts };
        prop_assert_eq!(WeightMsg::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn gate_command_round_trips(
        seq in any::<u64>(),
        id in id(),
        open in any::<bool>(),
        pulse in 1..=PULSE_MS_MAX,
        expires_at in any::<i64>(),
    ) {
        let cmd = if open { GateCmd::Open } else { GateCmd::Close };
        let m = GateCommand {
            seq,
            id: CommandId::new(&id).unwrap(),
            cmd,
            pulse_ms: PulseMs::new(pulse).unwrap(),
            expires_at,
        };
        prop_assert_eq!(GateCommand::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn pulse_outside_range_is_refused(ms in prop_oneof![Just(0u32), (PULSE_MS_MAX + 1)..]) {
        prop_assert!(PulseMs::new(ms).is_err());
    }

    #[test]
    fn gate_state_round_trips(
        seq in any::<u64>(),
        state in select(vec![GateStateKind::Open, GateStateKind::Closed, GateStateKind::Fault]),
    ) {
        let m = GateState { seq, state };
        prop_assert_eq!(GateState::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn heartbeat_round_trips(seq in any::<u64>(), ts in any::<i64>()) {
        let m = Heartbeat { seq, ts };
        prop_assert_eq!(Heartbeat::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn device_status_round_trips(online in any::<bool>()) {
        let m = if online { DeviceStatus::Online } else { DeviceStatus::Offline };
        prop_assert_eq!(DeviceStatus::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn topic_round_trips(site in id(), kind in select(TopicKind::ALL.to_vec()), id in id()) {
        let site = Site::new(&site).unwrap();
        let topic = Topic::new(kind, &id).unwrap();
        let rendered = topic.render(&site);
        prop_assert_eq!(topic.id(), id.as_str());
        prop_assert!(filter_matches(&kind.filter(&site), &rendered));
        prop_assert!(filter_matches(&kind.filter_all_sites(), &rendered));
        for other in TopicKind::ALL.into_iter().filter(|&k| k != kind) {
            prop_assert!(!filter_matches(&other.filter(&site), &rendered));
        }
        prop_assert_eq!(Topic::parse(&rendered), Ok((site, topic)));
    }

    /// Parsing is the exact inverse of rendering: nothing parses that does
    /// not render back to itself, so there is one spelling of each topic.
    #[test]
    fn whatever_parses_renders_back(
        levels in prop::collection::vec(
            prop_oneof![
                // Real level names, so a good share of inputs are valid topics…
                prop::sample::select(vec![
                    "bondgate", "pda", "scale", "printer", "gate", "devices", "scan", "prompt",
                    "weight", "job", "status", "command", "state", "heartbeat",
                ]).prop_map(str::to_owned),
                // …and near misses around them.
                "[A-Za-z0-9_+#$ -]{0,6}",
            ],
            0..7,
        ),
    ) {
        let s = levels.join("/");
        if let Ok((site, topic)) = Topic::parse(&s) {
            prop_assert_eq!(topic.render(&site), s);
        }
    }

    /// A broker URL parses to what it says, and what `Display` shows (the
    /// credentials left out) parses back to the same place.
    #[test]
    fn broker_addr_round_trips(
        host in broker_host(),
        port in 1u16..,
        // Anything printable but the URL delimiters `/ ? #` in the password
        // (there is no percent-decoding), `@` and `:` included.
        credentials in proptest::option::of(
            ("[A-Za-z0-9_.-]{1,16}", "[ -\"$-.0->@-~]{0,16}"),
        ),
    ) {
        let bracketed = if host.contains(':') { format!("[{host}]") } else { host.clone() };
        let userinfo = credentials.as_ref().map(|(u, p)| format!("{u}:{p}@")).unwrap_or_default();
        let addr = BrokerAddr::parse(&format!("mqtt://{userinfo}{bracketed}:{port}")).unwrap();
        prop_assert_eq!((addr.host(), addr.port()), (host.as_str(), port));
        let want = credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        prop_assert_eq!(addr.credentials(), want);
        let shown = addr.to_string();
        prop_assert_eq!(&shown, &format!("mqtt://{bracketed}:{port}"));
        let again = BrokerAddr::parse(&shown).unwrap();
        prop_assert_eq!(
            (again.host(), again.port(), again.credentials()),
            (host.as_str(), port, None)
        );
    }

    /// No character outside the id alphabet gets into a topic, wherever it sits.
    #[test]
    fn ids_refuse_any_foreign_character(
        id in id(),
        bad in any::<char>().prop_filter("outside the alphabet", |c| {
            !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        }),
        at in any::<prop::sample::Index>(),
    ) {
        let mut chars: Vec<char> = id.chars().collect();
        chars.insert(at.index(chars.len() + 1), bad);
        let s = String::from_iter(chars);
        prop_assert!(Site::new(&s).is_err());
        prop_assert!(Topic::new(TopicKind::GateCommand, &s).is_err());
        prop_assert!(CommandId::new(&s).is_err());
    }
}

mod printer {
    //! The printer bridge's envelope and reports: whatever is encoded
    //! decodes back, any byte of the body included, and a cut or padded
    //! envelope is refused rather than printed short.
    use bondgate_protocol::escpos::PrinterStatus;
    use bondgate_protocol::{PrintJob, PrintJobError, PrinterReport, PromptText};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn job_round_trips(job in 1u64.., bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let j = PrintJob::new(job, bytes).unwrap();
            prop_assert_eq!(PrintJob::decode(&j.encode()), Ok(j));
        }

        #[test]
        fn a_cut_or_padded_job_is_refused(
            job in 1u64..,
            bytes in prop::collection::vec(any::<u8>(), 1..512),
            cut in any::<prop::sample::Index>(),
            pad in prop::collection::vec(any::<u8>(), 1..16),
        ) {
            let full = PrintJob::new(job, bytes).unwrap().encode();
            let short = &full[..cut.index(full.len())];
            prop_assert!(PrintJob::decode(short).is_err());
            let mut long = full.clone();
            long.extend(pad);
            let padded_refused = matches!(PrintJob::decode(&long), Err(PrintJobError::LengthMismatch { .. }));
            prop_assert!(padded_refused);
        }

        #[test]
        fn report_round_trips(
            job in 1u64..,
            reason in any::<String>(),
            bits in any::<[bool; 5]>(),
            which in 0..3u8,
        ) {
            let r = match which {
                0 => PrinterReport::Printed { job },
                1 => PrinterReport::Failed { job, reason: PromptText::clamp(&reason) },
                _ => PrinterReport::Status(PrinterStatus {
                    online: bits[0],
                    cover_open: bits[1],
                    paper_out: bits[2],
                    paper_near_end: bits[3],
                    error: bits[4],
                }),
            };
            prop_assert_eq!(PrinterReport::decode(&r.encode()), Ok(r));
        }
    }
}
