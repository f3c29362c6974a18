//! Customs receipts as they arrive: [`parse`] bytes into a [`Message`].
//!
//! Accepted roots (namespace `http://www.chinaport.gov.cn/ceb`, prefixed or
//! default): `CEB622Message` (清单 receipts, [`InventoryReturn`]),
//! `CEB624Message` (cancellation receipts, [`InvtCancelReturn`]) and
//! `CEB900Message` (format-error receipts, [`MessageReturn`]); or one of
//! those Base64-encoded in the `Data` of a DXP envelope `dxp:DxpMsg`
//! (namespace `http://www.chinaport.gov.cn/dxp`).
//!
//! Unknown elements and attributes are skipped anywhere (local customs
//! offices add their own; `BaseTransfer` and `ds:Signature` are not needed
//! here). Everything else that is not exactly a receipt is refused, with an
//! error naming the element.

use base64::Engine as _;

use crate::status::{ReturnStatus, ReturnTime, ValueError};
use crate::xml::{read_tree, Node, Ns};

/// Largest document accepted, envelope included. Real receipts are a few
/// KiB; a CEB622 holding a few hundred returns is still far below this. It
/// bounds the memory a hostile sender can make us spend on one request.
pub const MESSAGE_BYTES_MAX: usize = 1024 * 1024;

/// Deepest element nesting accepted. Receipts nest 3 levels (4 in an
/// envelope); 32 leaves room for unknown extension elements while keeping
/// recursion and stack use trivially bounded.
pub const DEPTH_MAX: usize = 32;

/// Longest text accepted in one field. `returnInfo` is the longest in
/// practice (a few hundred characters of reasons); codes are under 40.
pub const FIELD_CHARS_MAX: usize = 8 * 1024;

/// Why bytes are not a receipt. Messages name the element at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Over [`MESSAGE_BYTES_MAX`].
    #[error("message of {bytes} bytes is over the {max}-byte limit")]
    TooLarge {
        /// Size received.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Not well-formed XML.
    #[error("malformed XML at byte {position}: {detail}")]
    Malformed {
        /// Byte offset where the reader stopped.
        position: u64,
        /// What was wrong.
        detail: String,
    },
    /// A `<!DOCTYPE …>`: refused outright, so no entity can be defined
    /// (no XXE, no entity expansion).
    #[error("DOCTYPE declarations are not accepted in receipts")]
    DocType,
    /// An XML declaration naming an encoding other than UTF-8.
    #[error("encoding {0:?} is not accepted: receipts are UTF-8")]
    UnsupportedEncoding(String),
    /// Nested deeper than [`DEPTH_MAX`].
    #[error("elements nested deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// No element at all.
    #[error("no root element")]
    NoRoot,
    /// A root that is not one of the accepted messages.
    #[error("root element {found} is not a receipt: expected CEB622Message, CEB624Message, CEB900Message (namespace http://www.chinaport.gov.cn/ceb) or DxpMsg (http://www.chinaport.gov.cn/dxp)")]
    WrongRoot {
        /// The root's name, with its namespace when it is not the expected one.
        found: String,
    },
    /// A DXP envelope inside a DXP envelope.
    #[error("a DXP envelope inside the Data of a DXP envelope is not accepted")]
    NestedEnvelope,
    /// A required element is absent.
    #[error("<{parent}> has no <{element}>")]
    Missing {
        /// The missing element.
        element: &'static str,
        /// Where it was expected.
        parent: &'static str,
    },
    /// A required element is present but blank.
    #[error("<{element}> in <{parent}> is empty")]
    Empty {
        /// The blank element.
        element: &'static str,
        /// Its parent.
        parent: &'static str,
    },
    /// A known field appears twice: which one counts would be a guess.
    #[error("<{element}> appears more than once in <{parent}>")]
    Duplicate {
        /// The repeated element.
        element: &'static str,
        /// Its parent.
        parent: &'static str,
    },
    /// A field over [`FIELD_CHARS_MAX`].
    #[error("<{element}> is longer than {max} characters")]
    FieldTooLong {
        /// The element.
        element: &'static str,
        /// The limit.
        max: usize,
    },
    /// A field whose text is not a valid value.
    #[error("<{element}>: {source}")]
    Invalid {
        /// The element.
        element: &'static str,
        /// Why.
        source: ValueError,
    },
    /// A message with no record in it (e.g. a CEB622 without `InventoryReturn`).
    #[error("<{root}> holds no <{record}>")]
    NoRecords {
        /// The message root.
        root: &'static str,
        /// The record element expected inside.
        record: &'static str,
    },
    /// `Data` of a DXP envelope is not Base64.
    #[error("<Data> of the DXP envelope is not valid Base64: {detail}")]
    BadBase64 {
        /// The decoder's complaint.
        detail: String,
    },
    /// The message inside a DXP envelope was refused.
    #[error("in the DXP envelope's <Data>: {0}")]
    InData(Box<ParseError>),
}

/// A parsed receipt message: the CEB content and, when it came wrapped, the
/// DXP envelope's transport header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The DXP `TransInfo` when the message came in an envelope.
    pub envelope: Option<TransInfo>,
    /// The root's `guid` attribute (the message's own id), when present.
    pub guid: Option<String>,
    /// The records.
    pub body: Body,
}

/// The records of a message, by message type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// CEB622: one or more 清单 receipts.
    Ceb622(Vec<InventoryReturn>),
    /// CEB624: one or more cancellation receipts.
    Ceb624(Vec<InvtCancelReturn>),
    /// CEB900: one or more format-error receipts.
    Ceb900(Vec<MessageReturn>),
}

/// The DXP envelope's `TransInfo`. Every field is optional: bondgate does
/// not route on them, it only keeps them for the record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransInfo {
    /// `CopMsgId`.
    pub cop_msg_id: Option<String>,
    /// `SenderId`.
    pub sender_id: Option<String>,
    /// `ReceiverIds/ReceiverId`, in order.
    pub receiver_ids: Vec<String>,
    /// `CreatTime` (sic), as sent.
    pub creat_time: Option<String>,
    /// `MsgType`, e.g. `CEB622Message`.
    pub msg_type: Option<String>,
}

/// One CEB622 `InventoryReturn`: customs' answer about one 清单.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryReturn {
    /// `guid` of the receipt record.
    pub guid: Option<String>,
    /// `customsCode`.
    pub customs_code: Option<String>,
    /// `ebpCode` (platform).
    pub ebp_code: Option<String>,
    /// `ebcCode` (e-commerce company).
    pub ebc_code: Option<String>,
    /// `agentCode` (declaring agent).
    pub agent_code: Option<String>,
    /// `copNo`, the enterprise's own number: the key. Required.
    pub cop_no: String,
    /// `preNo`, the e-port's number, once assigned.
    pub pre_no: Option<String>,
    /// `invtNo`, customs' 清单 number, once assigned.
    pub invt_no: Option<String>,
    /// `returnStatus`. Required.
    pub return_status: ReturnStatus,
    /// `returnTime`. Required.
    pub return_time: ReturnTime,
    /// `returnInfo`, free text.
    pub return_info: Option<String>,
}

/// One CEB624 `InvtCancelReturn`: customs' answer to a cancellation (CEB623).
///
/// Element names as in the public import beans and mock receipts
/// (`guid`, `customsCode`, `agentCode`, `ebpCode`, `ebcCode`, `copNo`,
/// `preNo`, `invtNo`, `returnStatus`, `returnTime`, `returnInfo`). Which
/// `returnStatus` means "cancelled" is **unverified**: see
/// [`InvtCancelReturn::is_success`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvtCancelReturn {
    /// `guid` of the receipt record.
    pub guid: Option<String>,
    /// `customsCode`.
    pub customs_code: Option<String>,
    /// `agentCode`.
    pub agent_code: Option<String>,
    /// `ebpCode`.
    pub ebp_code: Option<String>,
    /// `ebcCode`.
    pub ebc_code: Option<String>,
    /// `copNo` of the cancellation. Required.
    pub cop_no: String,
    /// `preNo`.
    pub pre_no: Option<String>,
    /// `invtNo` of the cancelled 清单.
    pub invt_no: Option<String>,
    /// `returnStatus`. Required.
    pub return_status: ReturnStatus,
    /// `returnTime`. Required.
    pub return_time: ReturnTime,
    /// `returnInfo`.
    pub return_info: Option<String>,
}

/// The CEB624 `returnStatus` codes read as "cancelled": see
/// [`InvtCancelReturn::is_success`] (**unverified**).
pub const CANCELLED_CODES: [i64; 3] = [399, 800, 899];

impl InvtCancelReturn {
    /// Whether this receipt says the 清单 is cancelled.
    ///
    /// **Unverified**: public mock receipts answer an approved cancellation
    /// with 399 ("审核通过 … 已成功撤单"); 800 and 899 are counted too. For
    /// the gate a false "cancelled" only refuses a parcel (fail closed),
    /// while a missed one would let a cancelled order out, so the wider
    /// reading is the safe one.
    pub fn is_success(&self) -> bool {
        CANCELLED_CODES.contains(&self.return_status.code())
    }
}

/// One CEB900 `MessageReturn`: a message we sent was refused for its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageReturn {
    /// `guid` of the refused message.
    pub guid: Option<String>,
    /// `returnStatus`. Required.
    pub return_status: ReturnStatus,
    /// `returnTime`. Required.
    pub return_time: ReturnTime,
    /// `returnInfo`: what was wrong.
    pub return_info: Option<String>,
    /// `oriMessageType`, e.g. `CEB621Message`.
    pub ori_message_type: Option<String>,
}

/// Parses one receipt message, bare or in a DXP envelope. Never panics.
pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
    parse_at(bytes, true)
}

fn parse_at(bytes: &[u8], envelope_allowed: bool) -> Result<Message, ParseError> {
    if bytes.len() > MESSAGE_BYTES_MAX {
        return Err(ParseError::TooLarge {
            bytes: bytes.len(),
            max: MESSAGE_BYTES_MAX,
        });
    }
    let root = read_tree(bytes)?;
    match (root.ns, root.name.as_str()) {
        (Ns::Dxp, "DxpMsg") if envelope_allowed => parse_envelope(&root),
        (Ns::Dxp, "DxpMsg") => Err(ParseError::NestedEnvelope),
        (Ns::Ceb, _) => parse_ceb(&root).map(|(guid, body)| Message {
            envelope: None,
            guid,
            body,
        }),
        (ns, name) => Err(ParseError::WrongRoot {
            found: match ns {
                Ns::Ceb | Ns::Dxp => name.to_owned(),
                Ns::None => format!("{name} (in no namespace)"),
                Ns::Other => format!("{name} (in another namespace)"),
            },
        }),
    }
}

fn parse_envelope(root: &Node) -> Result<Message, ParseError> {
    const ENV: &str = "DxpMsg";
    let trans_info = match single(root, Ns::Dxp, "TransInfo", ENV)? {
        None => TransInfo::default(),
        Some(t) => {
            let f = Fields {
                node: t,
                ns: Ns::Dxp,
                parent: "TransInfo",
            };
            let receiver_ids = match single(t, Ns::Dxp, "ReceiverIds", "TransInfo")? {
                None => Vec::new(),
                Some(ids) => ids
                    .children_named(Ns::Dxp, "ReceiverId")
                    .map(|r| text_of(r, "ReceiverId"))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .flatten()
                    .collect(),
            };
            TransInfo {
                cop_msg_id: f.opt("CopMsgId")?,
                sender_id: f.opt("SenderId")?,
                receiver_ids,
                creat_time: f.opt("CreatTime")?,
                msg_type: f.opt("MsgType")?,
            }
        }
    };
    let data = single(root, Ns::Dxp, "Data", ENV)?.ok_or(ParseError::Missing {
        element: "Data",
        parent: ENV,
    })?;
    // Base64 from Java encoders is often wrapped at 76 columns.
    let compact: Vec<u8> = data
        .text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(ParseError::Empty {
            element: "Data",
            parent: ENV,
        });
    }
    // Base64 is 4/3 the size of its content; refuse before decoding more
    // than the inner limit could ever allow.
    if compact.len() / 4 * 3 > MESSAGE_BYTES_MAX {
        return Err(ParseError::InData(Box::new(ParseError::TooLarge {
            bytes: compact.len() / 4 * 3,
            max: MESSAGE_BYTES_MAX,
        })));
    }
    let inner = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|err| ParseError::BadBase64 {
            detail: err.to_string(),
        })?;
    let mut message = parse_at(&inner, false).map_err(|err| match err {
        ParseError::NestedEnvelope => err,
        other => ParseError::InData(Box::new(other)),
    })?;
    message.envelope = Some(trans_info);
    Ok(message)
}

fn parse_ceb(root: &Node) -> Result<(Option<String>, Body), ParseError> {
    let guid = root.guid_attr.clone().filter(|g| !g.is_empty());
    let body = match root.name.as_str() {
        "CEB622Message" => Body::Ceb622(records(
            root,
            "CEB622Message",
            "InventoryReturn",
            inventory_return,
        )?),
        "CEB624Message" => Body::Ceb624(records(
            root,
            "CEB624Message",
            "InvtCancelReturn",
            cancel_return,
        )?),
        "CEB900Message" => Body::Ceb900(records(
            root,
            "CEB900Message",
            "MessageReturn",
            message_return,
        )?),
        other => {
            return Err(ParseError::WrongRoot {
                found: other.to_owned(),
            })
        }
    };
    Ok((guid, body))
}

fn records<T>(
    root: &Node,
    root_name: &'static str,
    record: &'static str,
    each: fn(&Fields) -> Result<T, ParseError>,
) -> Result<Vec<T>, ParseError> {
    let out = root
        .children_named(Ns::Ceb, record)
        .map(|node| {
            each(&Fields {
                node,
                ns: Ns::Ceb,
                parent: record,
            })
        })
        .collect::<Result<Vec<T>, _>>()?;
    if out.is_empty() {
        return Err(ParseError::NoRecords {
            root: root_name,
            record,
        });
    }
    Ok(out)
}

fn inventory_return(f: &Fields) -> Result<InventoryReturn, ParseError> {
    Ok(InventoryReturn {
        guid: f.opt("guid")?,
        customs_code: f.opt("customsCode")?,
        ebp_code: f.opt("ebpCode")?,
        ebc_code: f.opt("ebcCode")?,
        agent_code: f.opt("agentCode")?,
        cop_no: f.req("copNo")?,
        pre_no: f.opt("preNo")?,
        invt_no: f.opt("invtNo")?,
        return_status: f.status()?,
        return_time: f.time()?,
        return_info: f.opt("returnInfo")?,
    })
}

fn cancel_return(f: &Fields) -> Result<InvtCancelReturn, ParseError> {
    Ok(InvtCancelReturn {
        guid: f.opt("guid")?,
        customs_code: f.opt("customsCode")?,
        agent_code: f.opt("agentCode")?,
        ebp_code: f.opt("ebpCode")?,
        ebc_code: f.opt("ebcCode")?,
        cop_no: f.req("copNo")?,
        pre_no: f.opt("preNo")?,
        invt_no: f.opt("invtNo")?,
        return_status: f.status()?,
        return_time: f.time()?,
        return_info: f.opt("returnInfo")?,
    })
}

fn message_return(f: &Fields) -> Result<MessageReturn, ParseError> {
    Ok(MessageReturn {
        guid: f.opt("guid")?,
        return_status: f.status()?,
        return_time: f.time()?,
        return_info: f.opt("returnInfo")?,
        ori_message_type: f.opt("oriMessageType")?,
    })
}

/// The one child `name` of `node`, refusing duplicates.
fn single<'a>(
    node: &'a Node,
    ns: Ns,
    name: &'static str,
    parent: &'static str,
) -> Result<Option<&'a Node>, ParseError> {
    let mut found = node.children_named(ns, name);
    let first = found.next();
    if found.next().is_some() {
        return Err(ParseError::Duplicate {
            element: name,
            parent,
        });
    }
    Ok(first)
}

/// A field's trimmed text, `None` when blank.
fn text_of(node: &Node, element: &'static str) -> Result<Option<String>, ParseError> {
    let t = node.text.trim();
    if t.chars().count() > FIELD_CHARS_MAX {
        return Err(ParseError::FieldTooLong {
            element,
            max: FIELD_CHARS_MAX,
        });
    }
    Ok((!t.is_empty()).then(|| t.to_owned()))
}

/// The known fields of one record element.
struct Fields<'a> {
    node: &'a Node,
    ns: Ns,
    parent: &'static str,
}

impl Fields<'_> {
    fn opt(&self, element: &'static str) -> Result<Option<String>, ParseError> {
        match single(self.node, self.ns, element, self.parent)? {
            None => Ok(None),
            Some(n) => text_of(n, element),
        }
    }

    fn req(&self, element: &'static str) -> Result<String, ParseError> {
        match single(self.node, self.ns, element, self.parent)? {
            None => Err(ParseError::Missing {
                element,
                parent: self.parent,
            }),
            Some(n) => text_of(n, element)?.ok_or(ParseError::Empty {
                element,
                parent: self.parent,
            }),
        }
    }

    fn status(&self) -> Result<ReturnStatus, ParseError> {
        const E: &str = "returnStatus";
        ReturnStatus::parse(&self.req(E)?)
            .map_err(|source| ParseError::Invalid { element: E, source })
    }

    fn time(&self) -> Result<ReturnTime, ParseError> {
        const E: &str = "returnTime";
        ReturnTime::parse(&self.req(E)?)
            .map_err(|source| ParseError::Invalid { element: E, source })
    }
}
