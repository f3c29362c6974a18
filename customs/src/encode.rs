//! Writing receipts, for the customs gateway simulator and for tests:
//! [`encode`] turns a [`Message`] back into bytes that [`crate::parse`]
//! reads as the same message.
//!
//! The output uses the `ceb:` and `dxp:` prefixes, UTF-8, no signature
//! element (the gateway's signature travels beside the body, see
//! [`crate::sign`]).

use base64::Engine as _;
use quick_xml::escape::escape;

use crate::receipt::{Body, InventoryReturn, InvtCancelReturn, Message, MessageReturn, TransInfo};
use crate::xml::{CEB_NS, DXP_NS};

/// The bytes of `message`: a bare CEB document, or the same Base64-encoded
/// in a DXP envelope when `message.envelope` is set.
pub fn encode(message: &Message) -> Vec<u8> {
    let ceb = encode_ceb(message.guid.as_deref(), &message.body);
    match &message.envelope {
        None => ceb.into_bytes(),
        Some(info) => wrap_dxp(info, ceb.as_bytes()),
    }
}

/// Wraps CEB bytes in a DXP envelope with the given transport header.
pub fn wrap_dxp(info: &TransInfo, ceb: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    w.raw(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<dxp:DxpMsg xmlns:dxp=\"{DXP_NS}\" ver=\"1.0\">\n"
    ));
    w.raw("<dxp:TransInfo>\n");
    w.field("dxp:CopMsgId", info.cop_msg_id.as_deref());
    w.field("dxp:SenderId", info.sender_id.as_deref());
    if !info.receiver_ids.is_empty() {
        w.raw("<dxp:ReceiverIds>\n");
        for id in &info.receiver_ids {
            w.field("dxp:ReceiverId", Some(id));
        }
        w.raw("</dxp:ReceiverIds>\n");
    }
    w.field("dxp:CreatTime", info.creat_time.as_deref());
    w.field("dxp:MsgType", info.msg_type.as_deref());
    w.raw("</dxp:TransInfo>\n");
    let data = base64::engine::general_purpose::STANDARD.encode(ceb);
    w.field("dxp:Data", Some(&data));
    w.raw("</dxp:DxpMsg>\n");
    w.0.into_bytes()
}

fn encode_ceb(guid: Option<&str>, body: &Body) -> String {
    let root = match body {
        Body::Ceb622(_) => "CEB622Message",
        Body::Ceb624(_) => "CEB624Message",
        Body::Ceb900(_) => "CEB900Message",
    };
    let mut w = Writer::default();
    w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    w.raw(&format!("<ceb:{root}"));
    if let Some(g) = guid {
        w.raw(&format!(" guid=\"{}\"", escape(g)));
    }
    w.raw(&format!(" version=\"1.0\" xmlns:ceb=\"{CEB_NS}\">\n"));
    match body {
        Body::Ceb622(rs) => rs.iter().for_each(|r| inventory_return(&mut w, r)),
        Body::Ceb624(rs) => rs.iter().for_each(|r| cancel_return(&mut w, r)),
        Body::Ceb900(rs) => rs.iter().for_each(|r| message_return(&mut w, r)),
    }
    w.raw(&format!("</ceb:{root}>\n"));
    w.0
}

fn inventory_return(w: &mut Writer, r: &InventoryReturn) {
    w.raw("<ceb:InventoryReturn>\n");
    w.field("ceb:guid", r.guid.as_deref());
    w.field("ceb:customsCode", r.customs_code.as_deref());
    w.field("ceb:ebpCode", r.ebp_code.as_deref());
    w.field("ceb:ebcCode", r.ebc_code.as_deref());
    w.field("ceb:agentCode", r.agent_code.as_deref());
    w.field("ceb:copNo", Some(&r.cop_no));
    w.field("ceb:preNo", r.pre_no.as_deref());
    w.field("ceb:invtNo", r.invt_no.as_deref());
    w.field("ceb:returnStatus", Some(&r.return_status.to_string()));
    w.field("ceb:returnTime", Some(&r.return_time.to_string()));
    w.field("ceb:returnInfo", r.return_info.as_deref());
    w.raw("</ceb:InventoryReturn>\n");
}

fn cancel_return(w: &mut Writer, r: &InvtCancelReturn) {
    w.raw("<ceb:InvtCancelReturn>\n");
    w.field("ceb:guid", r.guid.as_deref());
    w.field("ceb:customsCode", r.customs_code.as_deref());
    w.field("ceb:agentCode", r.agent_code.as_deref());
    w.field("ceb:ebpCode", r.ebp_code.as_deref());
    w.field("ceb:ebcCode", r.ebc_code.as_deref());
    w.field("ceb:copNo", Some(&r.cop_no));
    w.field("ceb:preNo", r.pre_no.as_deref());
    w.field("ceb:invtNo", r.invt_no.as_deref());
    w.field("ceb:returnStatus", Some(&r.return_status.to_string()));
    w.field("ceb:returnTime", Some(&r.return_time.to_string()));
    w.field("ceb:returnInfo", r.return_info.as_deref());
    w.raw("</ceb:InvtCancelReturn>\n");
}

fn message_return(w: &mut Writer, r: &MessageReturn) {
    w.raw("<ceb:MessageReturn>\n");
    w.field("ceb:guid", r.guid.as_deref());
    w.field("ceb:returnStatus", Some(&r.return_status.to_string()));
    w.field("ceb:returnTime", Some(&r.return_time.to_string()));
    w.field("ceb:returnInfo", r.return_info.as_deref());
    w.field("ceb:oriMessageType", r.ori_message_type.as_deref());
    w.raw("</ceb:MessageReturn>\n");
}

#[derive(Default)]
struct Writer(String);

impl Writer {
    fn raw(&mut self, s: &str) {
        self.0.push_str(s);
    }

    /// `<name>text</name>`, escaped; nothing when `None`.
    fn field(&mut self, name: &str, text: Option<&str>) {
        if let Some(t) = text {
            self.0
                .push_str(&format!("<{name}>{}</{name}>\n", escape(t)));
        }
    }
}
