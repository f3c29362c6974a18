//! The customs gateway: the enterprise's adapter on the single-window host
//! that forwards customs receipts to bondgate, signed (CUSTOMS.md §1,
//! DESIGN.md "Customs receipts").
//!
//! Every byte comes from `bondgate-customs`: receipts are built as its
//! [`Message`] values and written by its [`encode`] (bare, or Base64 in a DXP
//! envelope), and signed by its `sign` functions, so the simulator cannot
//! drift from what the server parses and verifies.
//!
//! - [`GatewayKey`]: an Ed25519 or HMAC-SHA256 key under a configurable id
//!   (a second key with a new id is a key rotation).
//! - [`Declaration`]: the 清单 the receipts are about (`copNo`, `preNo`,
//!   `invtNo`), and the CEB622 / CEB624 records for it.
//! - [`Gateway`]: turns receipts into signed [`Delivery`]s, and makes the
//!   deliberately bad ones tests need (forged, unknown key, unsigned,
//!   malformed).
//! - [`transport`]: delivers over HTTP (`POST /api/v1/customs/receipts`) or
//!   into the watched inbox directory, and reports what the server answered.
//! - [`script`]: scripted receipt sequences (normal, inspection then
//!   release, rejection, detention, out of order, duplicates, …) whose
//!   `returnTime`s the script sets, run over either transport.

use std::fmt;

use bondgate_customs::receipt::{Body, InventoryReturn, InvtCancelReturn, MessageReturn};
use bondgate_customs::sign::{self, HmacSecret, Key, KeyError};
use bondgate_customs::{encode, Message, ReturnStatus, ReturnTime, TransInfo};
use ed25519_dalek::SigningKey;

pub mod script;
#[cfg(test)]
mod tests;
pub mod transport;

pub use script::{Run, Script, ScriptName, ScriptStep, Spoil, StepAnswer, StepKind};
pub use transport::{Answer, GatewayError, HttpTarget, Inbox, InboxOutcome, Target};

/// The DXP `SenderId` the simulated single-window client sends as: the
/// customs data exchange platform's own id form (`DXPENT` + 10 digits).
const DXP_SENDER_ID: &str = "DXPENT0000000001";
/// The DXP `ReceiverId` of the enterprise (placeholder of the same form).
const DXP_RECEIVER_ID: &str = "DXPENT0000099999";

/// A gateway signing key and the id it signs under.
///
/// `Debug` never shows secret bytes.
#[derive(Clone)]
pub struct GatewayKey {
    id: String,
    secret: Secret,
}

#[derive(Clone)]
enum Secret {
    Ed25519(SigningKey),
    Hmac { secret: HmacSecret, bytes: Vec<u8> },
}

impl GatewayKey {
    /// An Ed25519 key from 32 secret bytes (the caller draws them; tests use
    /// fixed bytes so the server can be configured with the public half).
    pub fn ed25519(id: &str, secret: &[u8; 32]) -> GatewayKey {
        GatewayKey {
            id: id.to_owned(),
            secret: Secret::Ed25519(sign::ed25519_signing_key(secret)),
        }
    }

    /// An HMAC-SHA256 key; the secret is at least
    /// [`sign::HMAC_SECRET_BYTES_MIN`] bytes.
    pub fn hmac(id: &str, secret: &[u8]) -> Result<GatewayKey, KeyError> {
        Ok(GatewayKey {
            id: id.to_owned(),
            secret: Secret::Hmac {
                secret: HmacSecret::new(secret)?,
                bytes: secret.to_vec(),
            },
        })
    }

    /// The key id sent beside each signature.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The same key under another id: what a gateway sends when its key
    /// was not (or no longer) configured on the server under that id.
    pub fn with_id(&self, id: &str) -> GatewayKey {
        GatewayKey {
            id: id.to_owned(),
            secret: self.secret.clone(),
        }
    }

    /// `ed25519` or `hmac`, as the server's key configuration names them.
    pub fn kind(&self) -> &'static str {
        match self.secret {
            Secret::Ed25519(_) => "ed25519",
            Secret::Hmac { .. } => "hmac",
        }
    }

    /// What the server is configured with: the Ed25519 public key (32
    /// bytes), or the shared HMAC secret.
    pub fn server_bytes(&self) -> Vec<u8> {
        match &self.secret {
            Secret::Ed25519(k) => k.verifying_key().to_bytes().to_vec(),
            Secret::Hmac { bytes, .. } => bytes.clone(),
        }
    }

    /// The verifying half, for a [`sign::Keyring`].
    pub fn verifier(&self) -> Key {
        match &self.secret {
            Secret::Ed25519(k) => Key::Ed25519(k.verifying_key()),
            Secret::Hmac { secret, .. } => Key::Hmac(secret.clone()),
        }
    }

    /// The Base64 signature of exactly `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        match &self.secret {
            Secret::Ed25519(k) => sign::sign_ed25519(k, body),
            Secret::Hmac { secret, .. } => sign::sign_hmac(secret, body),
        }
    }
}

impl fmt::Debug for GatewayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GatewayKey({} {})", self.id, self.kind())
    }
}

/// One 清单 (import inventory declaration) as customs numbers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// `copNo`: the enterprise's own number, known before customs answers.
    pub cop_no: String,
    /// `preNo`: `B` + 8-digit date + 9-digit serial, assigned by the e-port.
    pub pre_no: String,
    /// `invtNo`: customs code + year + `I` + 9-digit serial, assigned by
    /// customs once the 清单 is accepted (120).
    pub invt_no: String,
    /// `customsCode`: the customs office (4 digits).
    pub customs_code: String,
    /// `ebpCode`: the platform.
    pub ebp_code: String,
    /// `ebcCode`: the e-commerce company.
    pub ebc_code: String,
    /// `agentCode`: the declaring agent (here the bonded warehouse).
    pub agent_code: String,
}

impl Declaration {
    /// Numbers for `cop_no` declared at `declared` (China time) with a
    /// serial, in the documented formats (CUSTOMS.md §1), at customs office
    /// 2924 with the test platform codes the API tests use.
    pub fn new(cop_no: &str, declared: ReturnTime, serial: u32) -> Declaration {
        let day = declared.china_time().format("%Y%m%d").to_string();
        let year = &day[..4];
        Declaration {
            cop_no: cop_no.to_owned(),
            pre_no: format!("B{day}{serial:09}"),
            invt_no: format!("2924{year}I{serial:09}"),
            customs_code: "2924".into(),
            ebp_code: "3301964J31".into(),
            ebc_code: "3301964J31".into(),
            agent_code: "3301980B01".into(),
        }
    }

    /// A CEB622 record. `invtNo` appears once customs has taken the 清单
    /// in: not on e-port codes (1–4) nor on a rejection before entry (100).
    pub fn inventory_return(
        &self,
        guid: String,
        status: ReturnStatus,
        time: ReturnTime,
    ) -> InventoryReturn {
        let numbered = !matches!(status.code(), 1..=4 | 100) && status.code() > 0;
        InventoryReturn {
            guid: Some(guid),
            customs_code: Some(self.customs_code.clone()),
            ebp_code: Some(self.ebp_code.clone()),
            ebc_code: Some(self.ebc_code.clone()),
            agent_code: Some(self.agent_code.clone()),
            cop_no: self.cop_no.clone(),
            pre_no: Some(self.pre_no.clone()),
            invt_no: numbered.then(|| self.invt_no.clone()),
            return_status: status,
            return_time: time,
            return_info: Some(return_info(status)),
        }
    }

    /// A CEB624 record answering a cancellation (CEB623) of this 清单.
    pub fn cancel_return(
        &self,
        guid: String,
        status: ReturnStatus,
        time: ReturnTime,
    ) -> InvtCancelReturn {
        InvtCancelReturn {
            guid: Some(guid),
            customs_code: Some(self.customs_code.clone()),
            agent_code: Some(self.agent_code.clone()),
            ebp_code: Some(self.ebp_code.clone()),
            ebc_code: Some(self.ebc_code.clone()),
            cop_no: self.cop_no.clone(),
            pre_no: Some(self.pre_no.clone()),
            invt_no: Some(self.invt_no.clone()),
            return_status: status,
            return_time: time,
            return_info: Some(if status.code() == 399 {
                "[Code:399;Desc:审核通过,已成功撤单]".into()
            } else {
                return_info(status)
            }),
        }
    }
}

/// `[Code:N;Desc:…]` with the Chinese words of the code's meaning.
fn return_info(status: ReturnStatus) -> String {
    let meaning = status.meaning();
    let desc = meaning
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(meaning);
    format!("[Code:{};Desc:{desc}]", status.code())
}

/// What the gateway hands to a transport: the exact bytes and the signature
/// line that travels beside them.
#[derive(Clone, PartialEq, Eq)]
pub struct Delivery {
    /// A short name for logs and inbox file names (letters, digits, `-`).
    pub label: String,
    /// The exact body.
    pub body: Vec<u8>,
    /// The key id sent (`None`: header / `.sig` field left out).
    pub key_id: Option<String>,
    /// The Base64 signature sent.
    pub signature: Option<String>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("label", &self.label)
            .field("bytes", &self.body.len())
            .field("key_id", &self.key_id)
            .field("signed", &self.signature.is_some())
            .finish()
    }
}

/// The simulated gateway: one signing key at a time, its own message ids.
#[derive(Debug, Clone)]
pub struct Gateway {
    key: GatewayKey,
    /// Wrap each message in a DXP envelope, as the single-window client
    /// hands them over.
    pub envelope: bool,
    /// State of the id generator: guids are deterministic per seed, so a
    /// run can be repeated byte for byte.
    ids: u64,
}

impl Gateway {
    /// A gateway signing with `key`, bare messages, ids from `seed`.
    pub fn new(key: GatewayKey, seed: u64) -> Gateway {
        Gateway {
            key,
            envelope: false,
            ids: seed,
        }
    }

    /// The key it signs with now.
    pub fn key(&self) -> &GatewayKey {
        &self.key
    }

    /// Switches to another key (a rotation): later deliveries use it.
    pub fn rotate(&mut self, key: GatewayKey) {
        self.key = key;
    }

    /// A fresh upper-case UUID-shaped id (36 characters), as customs'
    /// `guid`s are.
    pub fn next_guid(&mut self) -> String {
        let a = splitmix64(&mut self.ids);
        let b = splitmix64(&mut self.ids);
        let hex = format!("{a:016X}{b:016X}");
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }

    /// The message's bytes: bare CEB, or in a DXP envelope when
    /// [`Gateway::envelope`] is set.
    pub fn encode(&mut self, body: Body, time: ReturnTime) -> Vec<u8> {
        let guid = self.next_guid();
        let msg_type = match &body {
            Body::Ceb622(_) => "CEB622Message",
            Body::Ceb624(_) => "CEB624Message",
            Body::Ceb900(_) => "CEB900Message",
        };
        let envelope = self.envelope.then(|| TransInfo {
            cop_msg_id: Some(guid.clone()),
            sender_id: Some(DXP_SENDER_ID.into()),
            receiver_ids: vec![DXP_RECEIVER_ID.into()],
            // yyyyMMddHHmmss: the returnTime without its milliseconds.
            creat_time: Some(time.to_string()[..14].to_owned()),
            msg_type: Some(msg_type.into()),
        });
        encode(&Message {
            envelope,
            guid: Some(guid),
            body,
        })
    }

    /// A CEB622 with one receipt about `decl`, signed.
    pub fn inventory(
        &mut self,
        decl: &Declaration,
        status: ReturnStatus,
        time: ReturnTime,
    ) -> Delivery {
        let record = decl.inventory_return(self.next_guid(), status, time);
        let body = self.encode(Body::Ceb622(vec![record]), time);
        self.signed(format!("ceb622-{}", status.code()), body)
    }

    /// A CEB624 cancellation receipt about `decl`, signed.
    pub fn cancellation(
        &mut self,
        decl: &Declaration,
        status: ReturnStatus,
        time: ReturnTime,
    ) -> Delivery {
        let record = decl.cancel_return(self.next_guid(), status, time);
        let body = self.encode(Body::Ceb624(vec![record]), time);
        self.signed(format!("ceb624-{}", status.code()), body)
    }

    /// A CEB900 format-error receipt about a message of type
    /// `ori_message_type` (e.g. `CEB621Message`), signed.
    pub fn format_error(
        &mut self,
        ori_message_type: &str,
        status: ReturnStatus,
        time: ReturnTime,
    ) -> Delivery {
        let record = MessageReturn {
            guid: Some(self.next_guid()),
            return_status: status,
            return_time: time,
            return_info: Some("[Code:-1;Desc:报文格式错误: 节点 orderNo 不能为空]".into()),
            ori_message_type: Some(ori_message_type.into()),
        };
        let body = self.encode(Body::Ceb900(vec![record]), time);
        self.signed(format!("ceb900-{}", status.code()), body)
    }

    /// `body` signed with the current key.
    pub fn signed(&self, label: String, body: Vec<u8>) -> Delivery {
        Delivery {
            label,
            signature: Some(self.key.sign(&body)),
            key_id: Some(self.key.id.clone()),
            body,
        }
    }

    /// `delivery`'s bytes with a signature by another key under the right
    /// id: what an attacker without the key sends.
    pub fn forged(&self, delivery: &Delivery) -> Delivery {
        let impostor = GatewayKey::ed25519(&self.key.id, &[0xA5; 32]);
        Delivery {
            label: format!("{}-forged", delivery.label),
            signature: Some(impostor.sign(&delivery.body)),
            key_id: Some(self.key.id.clone()),
            body: delivery.body.clone(),
        }
    }

    /// `delivery` correctly signed with the current key, but naming a key id
    /// the server does not have.
    pub fn unknown_key(&self, delivery: &Delivery, key_id: &str) -> Delivery {
        Delivery {
            label: format!("{}-unknown-key", delivery.label),
            signature: Some(self.key.sign(&delivery.body)),
            key_id: Some(key_id.to_owned()),
            body: delivery.body.clone(),
        }
    }

    /// `delivery` with no key id and no signature.
    pub fn unsigned(&self, delivery: &Delivery) -> Delivery {
        Delivery {
            label: format!("{}-unsigned", delivery.label),
            signature: None,
            key_id: None,
            body: delivery.body.clone(),
        }
    }

    /// A CEB622 cut off mid-element, correctly signed: the signature holds,
    /// the XML does not.
    pub fn malformed(&self, delivery: &Delivery) -> Delivery {
        let cut = delivery.body.len() / 2;
        self.signed(
            format!("{}-malformed", delivery.label),
            delivery.body[..cut].to_vec(),
        )
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny deterministic generator for
/// ids and shuffles. Not for secrets.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
