//! Parsing the sample shapes, and every refusal.

use bondgate_customs::receipt::{DEPTH_MAX, MESSAGE_BYTES_MAX};
use bondgate_customs::status::ValueError;
use bondgate_customs::{encode, parse, Body, Message, ParseError, StatusClass, TransInfo};

use crate::samples::{dxp, CEB622_DEFAULT_NS, CEB622_PREFIXED, CEB624, CEB900};

fn ceb622(m: &Message) -> &[bondgate_customs::InventoryReturn] {
    match &m.body {
        Body::Ceb622(r) => r,
        other => panic!("expected CEB622, got {other:?}"),
    }
}

#[test]
fn ceb622_prefixed_with_unknown_elements() {
    let m = parse(CEB622_PREFIXED.as_bytes()).unwrap();
    assert_eq!(m.envelope, None);
    assert_eq!(
        m.guid.as_deref(),
        Some("4F1C2B3A-0D9E-4C8B-9A7F-112233445566")
    );
    let r = ceb622(&m);
    assert_eq!(r.len(), 2, "LocalExtension is not a record");
    assert_eq!(r[0].cop_no, "WH202506010001");
    assert_eq!(r[0].pre_no.as_deref(), Some("B20250601000000123"));
    assert_eq!(r[0].invt_no.as_deref(), Some("29242025I000000123"));
    assert_eq!(r[0].customs_code.as_deref(), Some("2924"));
    assert_eq!(r[0].ebp_code.as_deref(), Some("1234560001"));
    assert_eq!(r[0].ebc_code.as_deref(), Some("1234560002"));
    assert_eq!(r[0].agent_code.as_deref(), Some("1234560003"));
    assert_eq!(r[0].return_status.code(), 800);
    assert_eq!(r[0].return_status.class(), StatusClass::Released);
    assert_eq!(r[0].return_time.to_string(), "20250601101500123");
    assert_eq!(r[0].return_info.as_deref(), Some("[Code:2600;Desc:放行]"));
    assert_eq!(r[1].return_status.code(), 120);
    assert_eq!(r[1].return_info.as_deref(), Some("新增申报成功 & 入库"));
    assert_eq!(r[1].pre_no, None);
}

#[test]
fn ceb622_default_namespace_trims_and_reads_cdata() {
    let m = parse(CEB622_DEFAULT_NS.as_bytes()).unwrap();
    let r = &ceb622(&m)[0];
    assert_eq!(
        r.cop_no, "WH202506010003",
        "whitespace around copNo trimmed"
    );
    assert_eq!(r.invt_no, None, "empty invtNo is absent");
    assert_eq!(r.return_status.class(), StatusClass::Pending);
    assert_eq!(r.return_info.as_deref(), Some("电子口岸申报中 <ok>"));
}

#[test]
fn unqualified_children_under_a_prefixed_root() {
    let xml = r#"<ceb:CEB622Message xmlns:ceb="http://www.chinaport.gov.cn/ceb"><InventoryReturn><copNo>A</copNo><returnStatus>399</returnStatus><returnTime>20250101000000000</returnTime></InventoryReturn></ceb:CEB622Message>"#;
    let m = parse(xml.as_bytes()).unwrap();
    assert_eq!(ceb622(&m)[0].return_status.code(), 399);
    assert!(!ceb622(&m)[0].return_status.class().is_release());
}

#[test]
fn ceb624() {
    let m = parse(CEB624.as_bytes()).unwrap();
    let Body::Ceb624(r) = &m.body else { panic!() };
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].cop_no, "WH202506010001");
    assert_eq!(r[0].invt_no.as_deref(), Some("29242025I000000123"));
    assert_eq!(r[0].agent_code.as_deref(), Some("1234560003"));
    assert_eq!(r[0].return_status.code(), 399);
    assert!(r[0].is_success());
}

#[test]
fn ceb900() {
    let m = parse(CEB900.as_bytes()).unwrap();
    let Body::Ceb900(r) = &m.body else { panic!() };
    assert_eq!(r[0].return_status.code(), -621001);
    assert_eq!(r[0].return_status.class(), StatusClass::ProcessingError);
    assert_eq!(r[0].ori_message_type.as_deref(), Some("CEB621Message"));
    assert_eq!(
        r[0].guid.as_deref(),
        Some("4F1C2B3A-0D9E-4C8B-9A7F-000000000099")
    );
}

#[test]
fn dxp_wrapped_each_message() {
    for sample in [CEB622_PREFIXED, CEB622_DEFAULT_NS, CEB624, CEB900] {
        let bare = parse(sample.as_bytes()).unwrap();
        let wrapped = parse(dxp(sample).as_bytes()).unwrap();
        let env = wrapped.envelope.clone().expect("envelope kept");
        assert_eq!(env.sender_id.as_deref(), Some("DXPEDCCEB0000002"));
        assert_eq!(env.receiver_ids, ["DXPENT0000000001", "DXPENT0000000002"]);
        assert_eq!(env.msg_type.as_deref(), Some("CEB622Message"));
        assert_eq!(
            env.cop_msg_id.as_deref(),
            Some("6B6B6B6B-4444-4555-8666-777788889999")
        );
        assert_eq!(env.creat_time.as_deref(), Some("2025-06-01T10:15:01"));
        assert_eq!(wrapped.body, bare.body);
        assert_eq!(wrapped.guid, bare.guid);
    }
}

#[test]
fn dxp_default_namespace_without_trans_info() {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(CEB900);
    let xml =
        format!(r#"<DxpMsg xmlns="http://www.chinaport.gov.cn/dxp"><Data>{data}</Data></DxpMsg>"#);
    let m = parse(xml.as_bytes()).unwrap();
    assert_eq!(m.envelope, Some(TransInfo::default()));
}

#[test]
fn encode_round_trips_the_samples() {
    for sample in [CEB622_PREFIXED, CEB622_DEFAULT_NS, CEB624, CEB900] {
        let mut m = parse(sample.as_bytes()).unwrap();
        assert_eq!(parse(&encode(&m)).unwrap(), m);
        m.envelope = Some(TransInfo {
            cop_msg_id: Some("id <&>".into()),
            receiver_ids: vec!["R1".into()],
            ..TransInfo::default()
        });
        assert_eq!(parse(&encode(&m)).unwrap(), m);
    }
}

fn err(xml: &str) -> ParseError {
    parse(xml.as_bytes()).expect_err(xml)
}

const NS: &str = r#"xmlns="http://www.chinaport.gov.cn/ceb""#;

fn ret(fields: &str) -> String {
    format!(r#"<CEB622Message {NS}><InventoryReturn>{fields}</InventoryReturn></CEB622Message>"#)
}

const OK_FIELDS: &str =
    "<copNo>A</copNo><returnStatus>800</returnStatus><returnTime>20250101000000000</returnTime>";

#[test]
fn refuses_malformed_xml() {
    assert!(parse(ret(OK_FIELDS).as_bytes()).is_ok());
    for bad in [
        "",
        "   ",
        "not xml",
        "<CEB622Message",
        &format!("<CEB622Message {NS}><InventoryReturn></CEB622Message>"),
        &format!("<CEB622Message {NS}></CEB622Message><CEB622Message {NS}/>"),
        &format!("<CEB622Message {NS}></CEB622Message>trailing"),
        &ret("<copNo>A &bogus; B</copNo>"),
        &ret("<copNo a=\"1\" a=\"2\">A</copNo>"),
        &ret("<x:copNo>A</x:copNo>"),
        &format!("<CEB622Message {NS}><InventoryReturn>"),
    ] {
        let e = err(bad);
        assert!(
            matches!(e, ParseError::Malformed { .. } | ParseError::NoRoot),
            "{bad:?}: {e:?}"
        );
        assert!(!e.to_string().is_empty());
    }
    // Not UTF-8.
    let mut bytes = ret(OK_FIELDS).into_bytes();
    let at = bytes.iter().position(|&b| b == b'A').unwrap();
    bytes[at] = 0xFF;
    assert!(matches!(parse(&bytes), Err(ParseError::Malformed { .. })));
}

#[test]
fn refuses_doctype_and_entities() {
    let xxe = format!(
        r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><CEB622Message {NS}><InventoryReturn><copNo>&x;</copNo></InventoryReturn></CEB622Message>"#
    );
    assert_eq!(err(&xxe), ParseError::DocType);
    let laughs = r#"<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><lolz>&lol2;</lolz>"#;
    assert_eq!(err(laughs), ParseError::DocType);
    let e = err(&ret("<copNo>&lol;</copNo>"));
    assert!(matches!(e, ParseError::Malformed { .. }), "{e:?}");
}

#[test]
fn refuses_other_encodings() {
    let xml = format!(r#"<?xml version="1.0" encoding="GBK"?>{}"#, ret(OK_FIELDS));
    assert_eq!(err(&xml), ParseError::UnsupportedEncoding("GBK".into()));
}

#[test]
fn refuses_wrong_roots() {
    for (xml, found) in [
        (format!("<CEB621Message {NS}/>"), "CEB621Message"),
        (
            "<CEB622Message/>".to_string(),
            "CEB622Message (in no namespace)",
        ),
        (
            r#"<CEB622Message xmlns="urn:other"/>"#.to_string(),
            "CEB622Message (in another namespace)",
        ),
        (
            r#"<DxpMsg xmlns="http://www.chinaport.gov.cn/ceb"/>"#.to_string(),
            "DxpMsg",
        ),
    ] {
        assert_eq!(
            err(&xml),
            ParseError::WrongRoot {
                found: found.into()
            },
            "{xml}"
        );
    }
    let e = err(&format!("<CEB621Message {NS}/>"));
    assert!(e.to_string().contains("CEB621Message"), "{e}");
}

#[test]
fn refuses_missing_empty_duplicate_and_invalid_fields() {
    let cases: Vec<(String, ParseError)> = vec![
        (
            ret("<returnStatus>800</returnStatus><returnTime>20250101000000000</returnTime>"),
            ParseError::Missing { element: "copNo", parent: "InventoryReturn" },
        ),
        (
            ret("<copNo>A</copNo><returnTime>20250101000000000</returnTime>"),
            ParseError::Missing { element: "returnStatus", parent: "InventoryReturn" },
        ),
        (
            ret("<copNo>A</copNo><returnStatus>800</returnStatus>"),
            ParseError::Missing { element: "returnTime", parent: "InventoryReturn" },
        ),
        (
            ret("<copNo> </copNo><returnStatus>800</returnStatus><returnTime>20250101000000000</returnTime>"),
            ParseError::Empty { element: "copNo", parent: "InventoryReturn" },
        ),
        (
            ret(&format!("{OK_FIELDS}<returnStatus>500</returnStatus>")),
            ParseError::Duplicate { element: "returnStatus", parent: "InventoryReturn" },
        ),
        (
            ret("<copNo>A</copNo><returnStatus>OK</returnStatus><returnTime>20250101000000000</returnTime>"),
            ParseError::Invalid {
                element: "returnStatus",
                source: ValueError::NotAStatus { text: "OK".into() },
            },
        ),
        (
            ret("<copNo>A</copNo><returnStatus>800</returnStatus><returnTime>2025-01-01</returnTime>"),
            ParseError::Invalid {
                element: "returnTime",
                source: ValueError::TimeShape { text: "2025-01-01".into() },
            },
        ),
        (
            format!("<CEB622Message {NS}><BaseTransfer/></CEB622Message>"),
            ParseError::NoRecords { root: "CEB622Message", record: "InventoryReturn" },
        ),
        (
            format!("<CEB624Message {NS}><InvtCancelReturn><returnStatus>399</returnStatus><returnTime>20250101000000000</returnTime></InvtCancelReturn></CEB624Message>"),
            ParseError::Missing { element: "copNo", parent: "InvtCancelReturn" },
        ),
        (
            format!("<CEB900Message {NS}><MessageReturn><returnStatus>-1</returnStatus></MessageReturn></CEB900Message>"),
            ParseError::Missing { element: "returnTime", parent: "MessageReturn" },
        ),
        (
            ret(&format!("{OK_FIELDS}<returnInfo>{}</returnInfo>", "x".repeat(9000))),
            ParseError::FieldTooLong { element: "returnInfo", max: 8192 },
        ),
    ];
    for (xml, want) in cases {
        let got = err(&xml);
        assert_eq!(got, want, "{}", &xml[..xml.len().min(200)]);
    }
    let msg = err(&ret(
        "<copNo>A</copNo><returnTime>20250101000000000</returnTime>",
    ))
    .to_string();
    assert_eq!(msg, "<InventoryReturn> has no <returnStatus>");
}

#[test]
fn refuses_bad_envelopes() {
    let env = |data: &str| {
        format!(
            r#"<dxp:DxpMsg xmlns:dxp="http://www.chinaport.gov.cn/dxp"><dxp:Data>{data}</dxp:Data></dxp:DxpMsg>"#
        )
    };
    assert!(matches!(
        err(&env("!!not base64!!")),
        ParseError::BadBase64 { .. }
    ));
    assert_eq!(
        err(&env(" ")),
        ParseError::Empty {
            element: "Data",
            parent: "DxpMsg"
        }
    );
    assert_eq!(
        err(r#"<dxp:DxpMsg xmlns:dxp="http://www.chinaport.gov.cn/dxp"/>"#),
        ParseError::Missing {
            element: "Data",
            parent: "DxpMsg"
        }
    );
    // Nested envelope.
    let inner = dxp(CEB622_PREFIXED);
    assert_eq!(err(&dxp(&inner)), ParseError::NestedEnvelope);
    // Bad content inside: the error says it was inside.
    let bad_inner = dxp(&ret("<copNo>A</copNo>"));
    let e = err(&bad_inner);
    assert!(matches!(e, ParseError::InData(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("in the DXP envelope's <Data>: <InventoryReturn> has no"),
        "{e}"
    );
    // Two Data elements.
    use base64::Engine as _;
    let d = base64::engine::general_purpose::STANDARD.encode(CEB900);
    let two = format!(
        r#"<dxp:DxpMsg xmlns:dxp="http://www.chinaport.gov.cn/dxp"><dxp:Data>{d}</dxp:Data><dxp:Data>{d}</dxp:Data></dxp:DxpMsg>"#
    );
    assert_eq!(
        err(&two),
        ParseError::Duplicate {
            element: "Data",
            parent: "DxpMsg"
        }
    );
}

#[test]
fn refuses_size_and_depth() {
    let big = ret(&format!(
        "{OK_FIELDS}<pad>{}</pad>",
        "x".repeat(MESSAGE_BYTES_MAX)
    ));
    assert!(matches!(err(&big), ParseError::TooLarge { .. }));
    let deep = ret(&format!(
        "{OK_FIELDS}{}{}",
        "<x>".repeat(DEPTH_MAX),
        "</x>".repeat(DEPTH_MAX)
    ));
    assert_eq!(err(&deep), ParseError::TooDeep { max: DEPTH_MAX });
    // Just inside the limit is fine: root + record + (DEPTH_MAX - 2) levels.
    let ok = ret(&format!(
        "{OK_FIELDS}{}{}",
        "<x>".repeat(DEPTH_MAX - 2),
        "</x>".repeat(DEPTH_MAX - 2)
    ));
    assert!(parse(ok.as_bytes()).is_ok());
    // A huge Base64 Data is refused before decoding.
    let data = "QUFB".repeat(MESSAGE_BYTES_MAX / 3 + 10);
    let env =
        format!(r#"<DxpMsg xmlns="http://www.chinaport.gov.cn/dxp"><Data>{data}</Data></DxpMsg>"#);
    assert!(matches!(
        err(&env),
        ParseError::TooLarge { .. } | ParseError::InData(_)
    ));
}
