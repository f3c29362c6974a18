//! Property tests: nothing panics, whatever the bytes; encode ∘ parse is
//! the identity.

use bondgate_customs::{
    encode, parse, Body, InventoryReturn, InvtCancelReturn, Message, MessageReturn, ReturnStatus,
    ReturnTime, TransInfo,
};
use proptest::prelude::*;

use crate::samples::{dxp, CEB622_DEFAULT_NS, CEB622_PREFIXED, CEB624, CEB900};

fn seeds() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [CEB622_PREFIXED, CEB622_DEFAULT_NS, CEB624, CEB900]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    v.push(dxp(CEB622_PREFIXED).into_bytes());
    v.push(dxp(CEB900).into_bytes());
    v
}

/// One edit to a document.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let chunk = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..8),
        prop::sample::select(vec![
            b"<".to_vec(),
            b"</x>".to_vec(),
            b"&amp;".to_vec(),
            b"&lol;".to_vec(),
            b"<!DOCTYPE x>".to_vec(),
            b"<![CDATA[".to_vec(),
            b"xmlns:ceb=\"urn:x\" ".to_vec(),
            b"<ceb:returnStatus>800</ceb:returnStatus>".to_vec(),
            b"\"".to_vec(),
            b"\xe4\xb8".to_vec(),
        ]),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), chunk).prop_map(|(i, c)| Edit::Insert(i, c)),
        (any::<usize>(), 1usize..200).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(doc: &mut Vec<u8>, e: &Edit) {
    let len = doc.len().max(1);
    match e {
        Edit::Flip(i, b) => {
            if !doc.is_empty() {
                let i = i % len;
                doc[i] ^= b | 1;
            }
        }
        Edit::Delete(i, n) => {
            let i = i % len;
            let end = (i + n).min(doc.len());
            if i < end {
                doc.drain(i..end);
            }
        }
        Edit::Insert(i, c) => {
            let i = i % (doc.len() + 1);
            doc.splice(i..i, c.iter().copied());
        }
        Edit::Duplicate(i, n) => {
            let i = i % len;
            let end = (i + n).min(doc.len());
            if i < end {
                let part = doc[i..end].to_vec();
                doc.splice(end..end, part);
            }
        }
        Edit::Truncate(i) => doc.truncate(i % len),
    }
}

/// Text that survives the trip: non-empty, trimmed, printable, with the
/// characters XML must escape.
fn text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9放行查验 &<>\"'\\[\\];:-]{0,30}".prop_filter_map("blank", |s| {
        let t = s.trim().to_owned();
        (!t.is_empty()).then_some(t)
    })
}

fn status() -> impl Strategy<Value = ReturnStatus> {
    (-999_999i64..1000).prop_map(ReturnStatus::new)
}

fn time() -> impl Strategy<Value = ReturnTime> {
    "(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])([01][0-9]|2[0-3])[0-5][0-9][0-5][0-9][0-9]{3}"
        .prop_map(|s| ReturnTime::parse(&s).unwrap())
}

fn inventory_return() -> impl Strategy<Value = InventoryReturn> {
    let o = || prop::option::of(text());
    (
        (o(), o(), o(), o(), o()),
        (text(), o(), o(), status(), time(), o()),
    )
        .prop_map(
            |(
                (guid, customs_code, ebp_code, ebc_code, agent_code),
                (cop_no, pre_no, invt_no, return_status, return_time, return_info),
            )| {
                InventoryReturn {
                    guid,
                    customs_code,
                    ebp_code,
                    ebc_code,
                    agent_code,
                    cop_no,
                    pre_no,
                    invt_no,
                    return_status,
                    return_time,
                    return_info,
                }
            },
        )
}

fn cancel_return() -> impl Strategy<Value = InvtCancelReturn> {
    inventory_return().prop_map(|r| InvtCancelReturn {
        guid: r.guid,
        customs_code: r.customs_code,
        agent_code: r.agent_code,
        ebp_code: r.ebp_code,
        ebc_code: r.ebc_code,
        cop_no: r.cop_no,
        pre_no: r.pre_no,
        invt_no: r.invt_no,
        return_status: r.return_status,
        return_time: r.return_time,
        return_info: r.return_info,
    })
}

fn message_return() -> impl Strategy<Value = MessageReturn> {
    let o = || prop::option::of(text());
    (o(), status(), time(), o(), o()).prop_map(
        |(guid, return_status, return_time, return_info, ori_message_type)| MessageReturn {
            guid,
            return_status,
            return_time,
            return_info,
            ori_message_type,
        },
    )
}

fn message() -> impl Strategy<Value = Message> {
    let body = prop_oneof![
        prop::collection::vec(inventory_return(), 1..4).prop_map(Body::Ceb622),
        prop::collection::vec(cancel_return(), 1..3).prop_map(Body::Ceb624),
        prop::collection::vec(message_return(), 1..3).prop_map(Body::Ceb900),
    ];
    let envelope = prop::option::of(
        (
            prop::option::of(text()),
            prop::option::of(text()),
            prop::collection::vec(text(), 0..3),
            prop::option::of(text()),
            prop::option::of(text()),
        )
            .prop_map(
                |(cop_msg_id, sender_id, receiver_ids, creat_time, msg_type)| TransInfo {
                    cop_msg_id,
                    sender_id,
                    receiver_ids,
                    creat_time,
                    msg_type,
                },
            ),
    );
    (envelope, prop::option::of(text()), body).prop_map(|(envelope, guid, body)| Message {
        envelope,
        guid,
        body,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn arbitrary_xmlish_text_never_panics(s in "[<>/a-zA-Z:=\"' &;!\\[\\]?-]{0,200}") {
        let _ = parse(s.as_bytes());
    }

    #[test]
    fn mutated_documents_never_panic(
        which in 0usize..6,
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let mut doc = seeds().swap_remove(which);
        for e in &edits {
            apply(&mut doc, e);
        }
        if let Err(e) = parse(&doc) {
            // Every refusal is readable.
            prop_assert!(!e.to_string().is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn encode_then_parse_is_identity(m in message()) {
        let bytes = encode(&m);
        prop_assert_eq!(parse(&bytes), Ok(m));
    }
}
