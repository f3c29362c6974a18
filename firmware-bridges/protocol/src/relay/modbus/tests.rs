use proptest::prelude::*;

use super::*;

fn rtu_request(unit: u8, req: Request) -> Vec<u8> {
    encode_rtu(unit, &req.encode())
}

fn frames(events: &[RtuEvent]) -> Vec<RtuFrame> {
    events
        .iter()
        .filter_map(|e| match e {
            RtuEvent::Frame(f) => Some(f.clone()),
            RtuEvent::Noise(_) => None,
        })
        .collect()
}

#[test]
fn slave_1_coil_0_on_is_the_documented_vector() {
    assert_eq!(
        rtu_request(1, Request::write_coil(0, true)),
        [0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A]
    );
    assert_eq!(crc16(&[0x01, 0x05, 0x00, 0x00, 0xFF, 0x00]), 0x3A8C);
}

#[test]
fn flash_on_writes_the_length_in_100_ms_units_at_0x0200() {
    assert_eq!(
        Request::flash_on(0, 800),
        Some(Request::WriteCoil {
            addr: 0x0200,
            value: 8
        })
    );
    // Rounded up, and never 0 (which a board reads as off).
    assert_eq!(
        Request::flash_on(3, 150),
        Some(Request::WriteCoil {
            addr: 0x0203,
            value: 2
        })
    );
    assert_eq!(
        Request::flash_on(0, 0),
        Some(Request::WriteCoil {
            addr: 0x0200,
            value: 1
        })
    );
    assert_eq!(Request::flash_on(0xFFFF, 800), None);
    assert_eq!(
        Request::flash_on(0, 800).map(|r| r.encode()),
        Some(vec![0x05, 0x02, 0x00, 0x00, 0x08])
    );
}

#[test]
fn requests_and_responses_round_trip() {
    for req in [
        Request::write_coil(7, false),
        Request::ReadCoils { addr: 0, count: 9 },
    ] {
        assert_eq!(Request::decode(&req.encode()), Ok(req));
    }
    let read = Response::read_coils(&[true, false, false, false, false, false, false, false, true]);
    assert_eq!(read.encode(), vec![0x01, 0x02, 0x01, 0x01]);
    assert_eq!(read.coil(0), Some(true));
    assert_eq!(read.coil(1), Some(false));
    assert_eq!(read.coil(8), Some(true));
    assert_eq!(read.coil(16), None);
    for resp in [
        read,
        Response::WriteCoil {
            addr: 0x0200,
            value: 8,
        },
        Response::Exception {
            function: 5,
            code: ExceptionCode::IllegalDataAddress,
        },
    ] {
        assert_eq!(Response::decode(&resp.encode()), Ok(resp));
    }
}

#[test]
fn exceptions_and_bad_pdus_have_clear_errors() {
    assert_eq!(
        Response::decode(&[0x85, 0x02]),
        Ok(Response::Exception {
            function: 5,
            code: ExceptionCode::IllegalDataAddress
        })
    );
    assert_eq!(
        ExceptionCode::IllegalDataValue.to_string(),
        "illegal data value (03)"
    );
    assert_eq!(Request::decode(&[]), Err(ModbusError::Empty));
    assert_eq!(
        Request::decode(&[0x03, 0, 0, 0, 1]),
        Err(ModbusError::Function(3))
    );
    assert_eq!(
        Request::decode(&[0x05, 0, 0]).unwrap_err().to_string(),
        "Modbus function 05: a PDU of 3 bytes has the wrong length"
    );
    assert_eq!(
        Request::decode(&[0x01, 0, 0, 0, 0]),
        Err(ModbusError::Count(0))
    );
    assert!(Response::decode(&[0x01, 0x02, 0x01]).is_err());
}

#[test]
fn rtu_decodes_split_merged_and_garbled_frames() {
    let on = rtu_request(1, Request::write_coil(0, true));
    let read = rtu_request(1, Request::ReadCoils { addr: 0, count: 1 });
    let mut d = RtuDecoder::new(Direction::Request);
    // Split.
    assert!(d.push(&on[..3]).is_empty());
    assert_eq!(
        frames(&d.push(&on[3..])),
        vec![RtuFrame {
            unit: 1,
            pdu: Request::write_coil(0, true).encode()
        }]
    );
    // Merged, with garbage before and a corrupted frame between.
    let mut bytes = vec![0xFF, 0x00, 0x13];
    bytes.extend_from_slice(&on);
    let mut bad = read.clone();
    bad[7] ^= 0x55;
    bytes.extend_from_slice(&bad);
    bytes.extend_from_slice(&read);
    let events = d.push(&bytes);
    assert_eq!(frames(&events).len(), 2, "{events:?}");
    assert_eq!(frames(&events)[1].pdu, vec![0x01, 0, 0, 0, 1]);
    assert!(events
        .iter()
        .any(|e| matches!(e, RtuEvent::Noise(n) if *n >= 3)));
}

#[test]
fn rtu_response_lengths_follow_the_function() {
    let mut d = RtuDecoder::new(Direction::Response);
    let mut bytes = encode_rtu(1, &Response::read_coils(&[true; 10]).encode());
    bytes.extend(encode_rtu(
        1,
        &Response::Exception {
            function: 5,
            code: ExceptionCode::IllegalDataValue,
        }
        .encode(),
    ));
    bytes.extend(encode_rtu(
        1,
        &Response::WriteCoil {
            addr: 0,
            value: COIL_OFF,
        }
        .encode(),
    ));
    let got = frames(&d.push(&bytes));
    assert_eq!(got.len(), 3);
    assert_eq!(
        Response::decode(&got[0].pdu).map(|r| r.coil(9)),
        Ok(Some(true))
    );
    assert!(matches!(
        Response::decode(&got[1].pdu),
        Ok(Response::Exception { .. })
    ));
    assert_eq!(d.reset(), None);
}

#[test]
fn tcp_frames_split_and_merged() {
    let a = encode_tcp(1, 1, &Request::write_coil(0, true).encode());
    assert_eq!(a, [0, 1, 0, 0, 0, 6, 1, 0x05, 0, 0, 0xFF, 0]);
    let b = encode_tcp(2, 1, &Request::ReadCoils { addr: 0, count: 1 }.encode());
    let mut d = TcpDecoder::new();
    assert_eq!(d.push(&a[..5]), Ok(vec![]));
    let mut rest = a[5..].to_vec();
    rest.extend_from_slice(&b);
    let got = d.push(&rest).unwrap_or_default();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].transaction, got[1].transaction, got[1].unit),
        (1, 2, 1)
    );
}

#[test]
fn tcp_garbage_breaks_the_stream_with_a_reason() {
    let mut d = TcpDecoder::new();
    assert_eq!(
        d.push(b"GET / HTTP/1.1\r\n"),
        Err(TcpFrameError::Protocol(0x5420))
    );
    assert_eq!(
        d.push(&[0, 1, 0, 0, 0x10, 0, 1]),
        Err(TcpFrameError::Length(0x1000))
    );
    assert_eq!(
        TcpFrameError::Length(0x1000).to_string(),
        "MBAP length 4096 (2..=254 allowed)"
    );
}

proptest! {
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = RtuDecoder::new(Direction::Request).push(&bytes);
        let _ = RtuDecoder::new(Direction::Response).push(&bytes);
        let _ = TcpDecoder::new().push(&bytes);
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes);
    }

    #[test]
    fn rtu_finds_a_frame_after_noise_in_any_chunking(
        unit in 1_u8..=247,
        coil: u16,
        on: bool,
        noise in proptest::collection::vec(any::<u8>(), 0..24),
        cut in 0_usize..40,
    ) {
        let frame = rtu_request(unit, Request::write_coil(coil, on));
        let mut bytes = noise;
        bytes.extend_from_slice(&frame);
        let cut = cut.min(bytes.len());
        let mut d = RtuDecoder::new(Direction::Request);
        let mut events = d.push(&bytes[..cut]);
        events.extend(d.push(&bytes[cut..]));
        let got = frames(&events);
        // Noise may itself happen to hold a valid frame; ours is the last.
        prop_assert_eq!(got.last().map(|f| (f.unit, f.pdu.clone())), Some((unit, Request::write_coil(coil, on).encode())));
    }

    #[test]
    fn tcp_round_trips(transaction: u16, unit: u8, addr: u16, value: u16) {
        let req = Request::WriteCoil { addr, value };
        let got = TcpDecoder::new().push(&encode_tcp(transaction, unit, &req.encode()));
        prop_assert_eq!(got, Ok(vec![TcpFrame { transaction, unit, pdu: req.encode() }]));
    }
}
