//! Customs receipts from the customs gateway: authenticated (the gateway
//! signs the exact bytes), parsed (`bondgate-customs`), stored for ever, and
//! folded into each 清单's customs state. A rejection (100) or a successful
//! cancellation cancels the order and releases its stock.

use std::sync::Arc;

use bondgate_customs::receipt::Body;
use bondgate_customs::sign::{AuthError, Key, Keyring};
use bondgate_customs::CustomsState;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::config::CustomsConfig;
use crate::store::customs_state::{self, state_name};
use crate::store::{
    Actor, CustomsMessageInput, CustomsReceiptRow, NewCustomsReceipt, Store, StoreError,
};

/// Why a delivery was refused before anything was stored.
#[derive(Debug, thiserror::Error)]
pub enum CustomsError {
    #[error("receipt not authenticated: {0}")]
    Auth(#[from] AuthError),
    #[error("receipt refused: {0}")]
    Parse(#[from] bondgate_customs::ParseError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The customs state of one order, for screens and the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderCustomsView {
    pub order_no: String,
    pub cop_no: String,
    /// `no_receipt`, `pending`, `released`, `held`, `rejected`, `cancelled`,
    /// `processing_error` or `unrecognised`.
    pub state: String,
    /// Whether the gate may open for it as far as customs is concerned.
    pub released: bool,
    /// Why not, in English and Chinese.
    pub refusal: Option<RefusalView>,
    /// Every receipt, in returnTime order.
    pub receipts: Vec<CustomsReceiptRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RefusalView {
    pub code: String,
    pub en: String,
    pub zh: String,
}

/// What a delivery stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct IngestView {
    pub receipts: Vec<CustomsReceiptRow>,
    /// Orders cancelled because customs rejected or cancelled their 清单.
    pub cancelled_orders: Vec<String>,
}

#[derive(Clone)]
pub struct Customs {
    store: Store,
    keyring: Arc<Keyring>,
    /// Managers' screens hear of each stored delivery (the inbox's too).
    events: Option<crate::events::EventHub>,
}

impl Customs {
    /// The gateway's keys from the configuration.
    pub fn new(store: Store, cfg: &CustomsConfig) -> anyhow::Result<Customs> {
        let mut keyring = Keyring::new();
        for k in &cfg.keys {
            let key = match k.kind.as_str() {
                "ed25519" => {
                    let bytes: [u8; 32] = k.bytes.as_slice().try_into().map_err(|_| {
                        anyhow::anyhow!("customs key {}: an Ed25519 public key is 32 bytes", k.id)
                    })?;
                    Key::ed25519(&bytes)
                }
                _ => Key::hmac(&k.bytes),
            }
            .map_err(|e| anyhow::anyhow!("customs key {}: {e}", k.id))?;
            keyring
                .insert(&k.id, key, None)
                .map_err(|e| anyhow::anyhow!("customs key {}: {e}", k.id))?;
        }
        if cfg.keys.is_empty() {
            tracing::warn!(
                "no customs gateway keys (BONDGATE_CUSTOMS_KEYS): every receipt will be refused"
            );
        }
        Ok(Customs {
            store,
            keyring: Arc::new(keyring),
            events: None,
        })
    }

    /// Announces every stored delivery on the screens' live feed.
    pub fn with_events(self, events: crate::events::EventHub) -> Customs {
        Customs {
            events: Some(events),
            ..self
        }
    }

    /// Authenticates, parses and stores one delivery from the gateway, then
    /// applies what customs decided to the orders it is about.
    pub async fn ingest(
        &self,
        actor: &Actor,
        key_id: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<IngestView, CustomsError> {
        if let Err(e) = self
            .keyring
            .verify(key_id, signature, body, chrono::Utc::now())
        {
            tracing::warn!(key_id = key_id.unwrap_or("-"), error = %e, "customs receipt refused: not authenticated");
            return Err(e.into());
        }
        let message = bondgate_customs::parse(body).inspect_err(|e| {
            tracing::warn!(error = %e, "customs receipt refused: malformed");
        })?;
        // CEB622 and CEB624 records carry the same fields under two types.
        macro_rules! stored {
            ($kind:literal, $r:expr) => {
                NewCustomsReceipt {
                    kind: $kind.into(),
                    cop_no: Some($r.cop_no.clone()),
                    pre_no: $r.pre_no.clone(),
                    invt_no: $r.invt_no.clone(),
                    guid: $r.guid.clone(),
                    return_status: $r.return_status.code(),
                    return_time: $r.return_time.to_string(),
                    return_info: $r.return_info.clone(),
                }
            };
        }
        let (kind, receipts): (&str, Vec<NewCustomsReceipt>) = match &message.body {
            Body::Ceb622(list) => (
                "CEB622",
                list.iter().map(|r| stored!("inventory", r)).collect(),
            ),
            Body::Ceb624(list) => (
                "CEB624",
                list.iter().map(|r| stored!("cancellation", r)).collect(),
            ),
            Body::Ceb900(list) => (
                "CEB900",
                list.iter()
                    .map(|r| NewCustomsReceipt {
                        kind: "format_error".into(),
                        cop_no: None,
                        pre_no: None,
                        invt_no: None,
                        guid: r.guid.clone(),
                        return_status: r.return_status.code(),
                        return_time: r.return_time.to_string(),
                        return_info: r.return_info.clone(),
                    })
                    .collect(),
            ),
        };
        let input = CustomsMessageInput {
            body_sha256: Sha256::digest(body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            kind: kind.into(),
            key_id: key_id.unwrap_or_default().to_string(),
            guid: message.guid.clone(),
            receipts,
        };
        let stored = self.store.ingest_customs(actor, &input).await?;
        let mut cop_nos: Vec<&str> = stored.iter().filter_map(|r| r.cop_no.as_deref()).collect();
        cop_nos.sort_unstable();
        cop_nos.dedup();
        let mut cancelled_orders = Vec::new();
        for cop_no in cop_nos {
            let Some((order_no, order_state)) = self.store.order_by_cop_no(cop_no).await? else {
                tracing::warn!(%cop_no, "customs receipt for a declaration with no order here");
                continue;
            };
            let rows = self.store.customs_receipts(cop_no).await?;
            let state = customs_state::fold(cop_no, &rows)?;
            let ends = matches!(
                state,
                CustomsState::Rejected { .. } | CustomsState::Cancelled { .. }
            );
            if ends && !matches!(order_state.as_str(), "cancelled" | "shipped") {
                let reason = format!("customs: {} ({})", state_name(&state), cop_no);
                match self
                    .store
                    .cancel_order(&Actor::system(), &order_no, &reason)
                    .await
                {
                    Ok(_) => {
                        tracing::info!(%order_no, %cop_no, "order cancelled: customs {}", state_name(&state));
                        cancelled_orders.push(order_no);
                    }
                    // Its parcel is at a gate right now: the gate's answer
                    // decides (a fault cancels it then, a confirmed exit
                    // means the goods left and a supervisor must act).
                    Err(StoreError::Conflict {
                        code: "exit_in_progress",
                        detail,
                    }) => {
                        tracing::error!(%order_no, %cop_no, %detail, "ALARM: customs {} while the parcel is at the gate", state_name(&state));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if let Some(events) = &self.events {
            events.publish(crate::events::Event::Changed {
                what: "customs".into(),
                at: chrono::Utc::now(),
            });
        }
        Ok(IngestView {
            receipts: stored,
            cancelled_orders,
        })
    }

    /// An order's customs state and receipt history.
    pub async fn order_state(&self, order_no: &str) -> Result<OrderCustomsView, StoreError> {
        let order = self.store.get_order(order_no).await?;
        let rows = self.store.customs_receipts(&order.cop_no).await?;
        let state = customs_state::fold(&order.cop_no, &rows)?;
        let refusal = bondgate_customs::gate_allows(&state)
            .err()
            .map(|r| RefusalView {
                code: r.code.to_string(),
                en: r.text_en.to_string(),
                zh: r.text_zh.to_string(),
            });
        Ok(OrderCustomsView {
            order_no: order.order_no,
            cop_no: order.cop_no,
            state: state_name(&state).to_string(),
            released: state.is_released(),
            refusal,
            receipts: rows,
        })
    }
}

/// How often the inbox directory is looked at.
pub const INBOX_POLL: std::time::Duration = std::time::Duration::from_millis(500);
/// Largest receipt file taken from the inbox.
pub const INBOX_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// The watched inbox, the way single-window clients exchange messages: the
/// gateway drops `NAME.xml` and then `NAME.xml.sig` (`KEY_ID SIGNATURE`, one
/// line). A file counts only once its `.sig` is there, so a half-written
/// message is never read. Each is moved to `done/` once stored (or found to
/// be stored already: a server that died between storing and moving picks
/// it up again as a replay), or to `failed/` with `NAME.xml.reason` when it
/// is refused. A database fault leaves it where it is, for the next look.
pub fn spawn_inbox(
    customs: Customs,
    dir: std::path::PathBuf,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let actor = Actor {
            user_id: 0,
            username: "customs-inbox".into(),
            roles: vec![crate::domain::Role::Integration],
        };
        for sub in ["done", "failed"] {
            if let Err(e) = tokio::fs::create_dir_all(dir.join(sub)).await {
                tracing::error!(dir = %dir.display(), error = %e, "customs inbox unusable");
                return;
            }
        }
        loop {
            if let Err(e) = sweep_inbox(&customs, &actor, &dir).await {
                tracing::warn!(dir = %dir.display(), error = %e, "customs inbox not read");
            }
            tokio::select! {
                _ = tokio::time::sleep(INBOX_POLL) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

async fn sweep_inbox(
    customs: &Customs,
    actor: &Actor,
    dir: &std::path::Path,
) -> std::io::Result<()> {
    let mut names = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(e) = entries.next_entry().await? {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".xml") && e.file_type().await?.is_file() {
            names.push(name);
        }
    }
    names.sort();
    for name in names {
        let xml = dir.join(&name);
        let sig = dir.join(format!("{name}.sig"));
        let Ok(sig_text) = tokio::fs::read_to_string(&sig).await else {
            continue; // not complete yet
        };
        let outcome = if tokio::fs::metadata(&xml).await?.len() > INBOX_FILE_BYTES_MAX {
            Err(format!("file is larger than {INBOX_FILE_BYTES_MAX} bytes"))
        } else {
            let body = tokio::fs::read(&xml).await?;
            let mut parts = sig_text.split_whitespace();
            let (key_id, signature) = (parts.next(), parts.next());
            match customs.ingest(actor, key_id, signature, &body).await {
                Ok(v) => {
                    tracing::info!(file = %name, receipts = v.receipts.len(), "customs receipt file stored");
                    Ok(())
                }
                Err(CustomsError::Store(StoreError::AlreadyExists(_))) => {
                    tracing::info!(file = %name, "customs receipt file was stored before (a replay)");
                    Ok(())
                }
                Err(CustomsError::Store(e)) => {
                    // The database may be down: keep the file for the next look.
                    tracing::warn!(file = %name, error = %e, "customs receipt file kept for a retry");
                    continue;
                }
                Err(e) => Err(e.to_string()),
            }
        };
        let to = dir.join(if outcome.is_ok() { "done" } else { "failed" });
        if let Err(reason) = &outcome {
            tokio::fs::write(to.join(format!("{name}.reason")), format!("{reason}\n")).await?;
        }
        tokio::fs::rename(&xml, to.join(&name)).await?;
        tokio::fs::rename(&sig, to.join(format!("{name}.sig"))).await?;
    }
    Ok(())
}
