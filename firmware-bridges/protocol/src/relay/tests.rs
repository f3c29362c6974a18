use proptest::prelude::*;

use super::*;

fn cmd(channel: u8, on: bool) -> LcusCommand {
    LcusCommand { channel, on }
}

#[test]
fn encodes_the_documented_frames() {
    assert_eq!(cmd(1, true).encode(), [0xA0, 0x01, 0x01, 0xA2]);
    assert_eq!(cmd(1, false).encode(), [0xA0, 0x01, 0x00, 0xA1]);
    assert_eq!(cmd(4, true).encode(), [0xA0, 0x04, 0x01, 0xA5]);
}

#[test]
fn decode_refuses_bad_frames_with_a_reason() {
    assert_eq!(LcusCommand::decode(&[0xA0, 1, 1, 0xA2]), Ok(cmd(1, true)));
    assert_eq!(
        LcusCommand::decode(&[0xA0, 1, 1]),
        Err(LcusError::Length(3))
    );
    assert_eq!(
        LcusCommand::decode(&[0xA1, 1, 1, 0xA3]),
        Err(LcusError::Head(0xA1))
    );
    assert_eq!(
        LcusCommand::decode(&[0xA0, 1, 1, 0xA3]),
        Err(LcusError::Checksum {
            expected: 0xA2,
            got: 0xA3
        })
    );
    assert_eq!(
        LcusCommand::decode(&[0xA0, 1, 2, 0xA3]),
        Err(LcusError::Op(2))
    );
    assert_eq!(
        LcusCommand::decode(&[0xA0, 0, 1, 0xA1]),
        Err(LcusError::Channel(0))
    );
    assert_eq!(
        LcusCommand::decode(&[0xA0, 1, 1, 0xA3])
            .unwrap_err()
            .to_string(),
        "LCUS checksum A3, expected A2"
    );
}

#[test]
fn board_decodes_split_frames() {
    let mut d = CommandDecoder::new();
    assert!(d.push(&[0xA0]).is_empty());
    assert!(d.push(&[0x01, 0x01]).is_empty());
    assert_eq!(d.push(&[0xA2]), vec![BoardEvent::Command(cmd(1, true))]);
}

#[test]
fn board_decodes_merged_frames_and_queries() {
    let mut d = CommandDecoder::new();
    let mut bytes = cmd(1, true).encode().to_vec();
    bytes.push(LCUS_STATUS_QUERY);
    bytes.extend_from_slice(&cmd(1, false).encode());
    assert_eq!(
        d.push(&bytes),
        vec![
            BoardEvent::Command(cmd(1, true)),
            BoardEvent::StatusQuery,
            BoardEvent::Command(cmd(1, false)),
        ]
    );
}

#[test]
fn board_resyncs_after_garbage_and_a_cut_frame() {
    let mut d = CommandDecoder::new();
    // Noise, then a frame cut short by the next one (A0 01 | A0 01 00 A1).
    let bytes = [0x13, 0x37, 0xA0, 0x01, 0xA0, 0x01, 0x00, 0xA1];
    assert_eq!(
        d.push(&bytes),
        vec![BoardEvent::Noise(4), BoardEvent::Command(cmd(1, false))]
    );
    // A bad sum costs only its own head byte's frame.
    assert_eq!(
        d.push(&[0xA0, 0x01, 0x01, 0x00, 0xA0, 0x02, 0x01, 0xA3]),
        vec![BoardEvent::Noise(4), BoardEvent::Command(cmd(2, true))]
    );
    assert!(d.push(&[0xA0, 0x01]).is_empty());
    assert_eq!(d.finish(), Some(BoardEvent::Noise(2)));
}

#[test]
fn status_round_trips() {
    let bytes = encode_status(&[true, false]);
    assert_eq!(bytes, b"CH1:ON\r\nCH2:OFF\r\n");
    let mut d = StatusDecoder::new();
    assert_eq!(
        d.push(&bytes),
        vec![
            Ok(ChannelStatus {
                channel: 1,
                on: true
            }),
            Ok(ChannelStatus {
                channel: 2,
                on: false
            })
        ]
    );
}

#[test]
fn status_survives_split_garbled_and_long_lines() {
    let mut d = StatusDecoder::new();
    assert!(d.push(b"ch 1").is_empty());
    assert_eq!(
        d.push(b" : on\n"),
        vec![Ok(ChannelStatus {
            channel: 1,
            on: true
        })]
    );
    assert_eq!(
        d.push(b"\x00garbage\r\nCH1:OFF\r\n"),
        vec![
            Err(StatusError::Line("\0garbage".into())),
            Ok(ChannelStatus {
                channel: 1,
                on: false
            })
        ]
    );
    let long = vec![b'x'; STATUS_LINE_BYTES_MAX + 10];
    assert_eq!(d.push(&long), vec![Err(StatusError::TooLong)]);
    assert_eq!(d.push(b"\nCH9:ON\nCH2:ON\n").len(), 2);
}

proptest! {
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = CommandDecoder::new().push(&bytes);
        let _ = StatusDecoder::new().push(&bytes);
        let _ = LcusCommand::decode(&bytes);
    }

    #[test]
    fn commands_survive_noise_and_any_chunking(
        channel in 1_u8..=8,
        on: bool,
        noise in proptest::collection::vec(0_u8..0xA0, 0..32),
        cut in 0_usize..40,
    ) {
        let mut bytes = noise.clone();
        bytes.extend_from_slice(&cmd(channel, on).encode());
        let cut = cut.min(bytes.len());
        let mut d = CommandDecoder::new();
        let mut events = d.push(&bytes[..cut]);
        events.extend(d.push(&bytes[cut..]));
        let commands: Vec<_> = events
            .iter()
            .filter_map(|e| match e { BoardEvent::Command(c) => Some(*c), _ => None })
            .collect();
        prop_assert_eq!(commands, vec![cmd(channel, on)]);
    }

    #[test]
    fn status_round_trips_any_board(relays in proptest::collection::vec(any::<bool>(), 1..=8)) {
        let got: Vec<_> = StatusDecoder::new().push(&encode_status(&relays));
        let want: Vec<_> = relays
            .iter()
            .enumerate()
            .map(|(i, &on)| Ok(ChannelStatus { channel: i as u8 + 1, on }))
            .collect();
        prop_assert_eq!(got, want);
    }
}
