//! Sample receipts written for these tests, shaped like the public samples
//! (CUSTOMS.md §5): placeholder codes, our own numbers.

/// A CEB622 with the `ceb:` prefix, two returns, `BaseTransfer`, an unknown
/// local element, an unknown attribute and an XML-DSig block.
pub const CEB622_PREFIXED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ceb:CEB622Message guid="4F1C2B3A-0D9E-4C8B-9A7F-112233445566" version="1.0" xmlns:ceb="http://www.chinaport.gov.cn/ceb" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <ceb:InventoryReturn localFlag="x">
    <ceb:guid>0A1B2C3D-0000-4000-8000-000000000001</ceb:guid>
    <ceb:customsCode>2924</ceb:customsCode>
    <ceb:ebpCode>1234560001</ceb:ebpCode>
    <ceb:ebcCode>1234560002</ceb:ebcCode>
    <ceb:agentCode>1234560003</ceb:agentCode>
    <ceb:copNo>WH202506010001</ceb:copNo>
    <ceb:preNo>B20250601000000123</ceb:preNo>
    <ceb:invtNo>29242025I000000123</ceb:invtNo>
    <ceb:statisticsFlag>A</ceb:statisticsFlag>
    <ceb:returnStatus>800</ceb:returnStatus>
    <ceb:returnTime>20250601101500123</ceb:returnTime>
    <ceb:returnInfo>[Code:2600;Desc:放行]</ceb:returnInfo>
  </ceb:InventoryReturn>
  <ceb:InventoryReturn>
    <ceb:guid>0A1B2C3D-0000-4000-8000-000000000002</ceb:guid>
    <ceb:copNo>WH202506010002</ceb:copNo>
    <ceb:returnStatus>120</ceb:returnStatus>
    <ceb:returnTime>20250601101500456</ceb:returnTime>
    <ceb:returnInfo>新增申报成功 &amp; 入库</ceb:returnInfo>
  </ceb:InventoryReturn>
  <ceb:BaseTransfer>
    <ceb:copCode>1234560003</ceb:copCode>
    <ceb:copName>Sample Warehouse Ltd</ceb:copName>
    <ceb:dxpMode>DXP</ceb:dxpMode>
    <ceb:dxpId>DXPENT0000000001</ceb:dxpId>
    <ceb:note/>
  </ceb:BaseTransfer>
  <ceb:LocalExtension><ceb:copNo>NOT-A-RECORD</ceb:copNo></ceb:LocalExtension>
  <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
    <ds:SignedInfo><ds:Reference URI=""><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo>
    <ds:SignatureValue>BBBB</ds:SignatureValue>
  </ds:Signature>
</ceb:CEB622Message>
"#;

/// The same shape with the CEB namespace as the default namespace.
pub const CEB622_DEFAULT_NS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<CEB622Message xmlns="http://www.chinaport.gov.cn/ceb" guid="9C9C9C9C-1111-4222-8333-444455556666" version="1.0">
  <InventoryReturn>
    <guid>0A1B2C3D-0000-4000-8000-000000000003</guid>
    <customsCode>2924</customsCode>
    <copNo>	WH202506010003 </copNo>
    <preNo>B20250601000000124</preNo>
    <invtNo></invtNo>
    <returnStatus>2</returnStatus>
    <returnTime>20250601093000001</returnTime>
    <returnInfo><![CDATA[电子口岸申报中 <ok>]]></returnInfo>
  </InventoryReturn>
</CEB622Message>
"#;

/// A cancellation receipt, default namespace.
pub const CEB624: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CEB624Message xmlns="http://www.chinaport.gov.cn/ceb" guid="7E7E7E7E-2222-4333-8444-555566667777" version="1.0">
  <InvtCancelReturn>
    <guid>0A1B2C3D-0000-4000-8000-000000000010</guid>
    <customsCode>2924</customsCode>
    <agentCode>1234560003</agentCode>
    <ebpCode>1234560001</ebpCode>
    <ebcCode>1234560002</ebcCode>
    <copNo>WH202506010001</copNo>
    <preNo>C20250602000000001</preNo>
    <invtNo>29242025I000000123</invtNo>
    <msgSeqNo>1</msgSeqNo>
    <returnStatus>399</returnStatus>
    <returnTime>20250602080000000</returnTime>
    <returnInfo>[Code:2300;Desc:审核通过]</returnInfo>
  </InvtCancelReturn>
</CEB624Message>
"#;

/// A format-error receipt.
pub const CEB900: &str = r#"<ceb:CEB900Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="5D5D5D5D-3333-4444-8555-666677778888" version="1.0">
  <ceb:MessageReturn>
    <ceb:guid>4F1C2B3A-0D9E-4C8B-9A7F-000000000099</ceb:guid>
    <ceb:returnStatus>-621001</ceb:returnStatus>
    <ceb:returnTime>20250601120000999</ceb:returnTime>
    <ceb:returnInfo>报文格式错误</ceb:returnInfo>
    <ceb:oriMessageType>CEB621Message</ceb:oriMessageType>
  </ceb:MessageReturn>
</ceb:CEB900Message>"#;

/// A DXP envelope around `ceb` (Base64, wrapped at 76 columns as Java does).
pub fn dxp(ceb: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(ceb.as_bytes());
    let wrapped: Vec<String> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<dxp:DxpMsg ver="1.0" xmlns:dxp="http://www.chinaport.gov.cn/dxp" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <dxp:TransInfo>
    <dxp:CopMsgId>6B6B6B6B-4444-4555-8666-777788889999</dxp:CopMsgId>
    <dxp:SenderId>DXPEDCCEB0000002</dxp:SenderId>
    <dxp:ReceiverIds>
      <dxp:ReceiverId>DXPENT0000000001</dxp:ReceiverId>
      <dxp:ReceiverId>DXPENT0000000002</dxp:ReceiverId>
    </dxp:ReceiverIds>
    <dxp:CreatTime>2025-06-01T10:15:01</dxp:CreatTime>
    <dxp:MsgType>CEB622Message</dxp:MsgType>
  </dxp:TransInfo>
  <dxp:Data>{}</dxp:Data>
  <dxp:AddInfo><dxp:FileName>x.xml</dxp:FileName></dxp:AddInfo>
</dxp:DxpMsg>
"#,
        wrapped.join("\n")
    )
}
