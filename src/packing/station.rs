//! The pack flow driven by the station's own scanner, one scan at a time:
//! tote (or order number) → every item → the box, which weighs and packs.
//!
//! The session (which order, what is already checked off, what to scan next)
//! is one row per station in `pack_sessions`, saved with the answer after
//! every scan, so a restart loses nothing acknowledged and a repeated scan
//! (same `seq`) gets the same answer without doing anything twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bondgate_protocol::Tone;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{pack_lines, PackError, Packing};
use crate::domain::packing::Checklist;
use crate::domain::OrderState;
use crate::store::{Actor, PackOutcome, PackPlan, PackageState, PackageView, StoreError};

/// Control code that drops the parcel in progress.
pub const CANCEL: &str = "#CANCEL";
/// Longest code a station scanner may send.
pub const CODE_CHARS_MAX: usize = 128;

/// One scan from a pack station's scanner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StationScan {
    /// The scanner's sequence number, counting up: a repeat gets the same answer.
    pub seq: u64,
    pub code: String,
}

/// What the station scans next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum StationNext {
    /// A tote or an order number.
    #[default]
    Tote,
    /// The next item of the order.
    Item,
    /// The box label: the parcel is then weighed and packed.
    Box,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChecklistLine {
    pub sku: String,
    pub name: String,
    pub qty: i64,
    pub scanned: i64,
}

/// What the station shows and sounds after a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StationAnswer {
    pub seq: u64,
    pub ok: bool,
    #[schema(value_type = String)]
    pub tone: Tone,
    /// What to do; the code to scan next is in square brackets.
    pub text: String,
    /// The same in Chinese (absent in answers saved before it existed).
    #[serde(default)]
    pub text_zh: Option<String>,
    pub next: StationNext,
    pub order_no: Option<String>,
    pub checklist: Vec<ChecklistLine>,
    /// The parcel, once weighed.
    pub package: Option<PackageView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Session {
    next: StationNext,
    order_no: Option<String>,
    scanned: Vec<i64>,
}

/// One lock per station: a station's scans are handled one after another.
#[derive(Default)]
pub(super) struct StationLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl StationLocks {
    pub(super) fn get(&self, station: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(station.to_string()).or_default().clone()
    }
}

fn checklist_view(plan: &PackPlan, list: &Checklist) -> Vec<ChecklistLine> {
    plan.lines
        .iter()
        .zip(list.scanned())
        .map(|(l, &n)| ChecklistLine {
            sku: l.sku.clone(),
            name: l.name.clone(),
            qty: l.qty,
            scanned: n,
        })
        .collect()
}

/// The barcode to scan next for a checklist: the first line not complete.
fn next_item(plan: &PackPlan, list: &Checklist) -> String {
    plan.lines
        .iter()
        .zip(list.scanned())
        .find(|(l, &n)| n < l.qty)
        .map(|(l, _)| l.barcodes.first().cloned().unwrap_or_else(|| l.sku.clone()))
        .unwrap_or_default()
}

struct Reply {
    ok: bool,
    text: String,
    text_zh: String,
    session: Session,
    checklist: Vec<ChecklistLine>,
    package: Option<PackageView>,
}

impl Reply {
    fn refuse(text: impl Into<String>, text_zh: impl Into<String>, session: Session) -> Reply {
        Reply {
            ok: false,
            text: text.into(),
            text_zh: text_zh.into(),
            session,
            checklist: Vec::new(),
            package: None,
        }
    }
}

impl Packing {
    /// One scan of a pack station's scanner.
    pub async fn station_scan(
        &self,
        actor: &Actor,
        station: &str,
        scan: &StationScan,
    ) -> Result<StationAnswer, PackError> {
        if self.scales.get(station).is_none() {
            return Err(PackError::UnknownStation(station.to_string()));
        }
        let code = scan.code.trim();
        if code.is_empty()
            || code.chars().count() > CODE_CHARS_MAX
            || code.chars().any(|c| c.is_control() && c != '\u{1d}')
        {
            return Err(StoreError::Invalid(format!(
                "a scan is 1 to {CODE_CHARS_MAX} printable characters"
            ))
            .into());
        }
        let seq =
            i64::try_from(scan.seq).map_err(|_| StoreError::Invalid("seq is too large".into()))?;
        let lock = self.station_locks.get(station);
        let _turn = lock.lock().await;
        let saved = self.store.pack_session(station).await?;
        let session = match &saved {
            Some((last, _, answer)) if *last == seq => {
                return serde_json::from_str(answer)
                    .map_err(|e| StoreError::Corrupt(format!("pack session answer: {e}")).into());
            }
            Some((last, _, _)) if *last > seq => {
                return Err(StoreError::Invalid(format!(
                    "scan number {seq} is older than the station's last ({last}): restart the scanner's counter"
                ))
                .into());
            }
            Some((_, state, _)) => serde_json::from_str(state).unwrap_or_default(),
            None => Session::default(),
        };
        let reply = self.decide(actor, station, code, session).await?;
        let answer = StationAnswer {
            seq: scan.seq,
            ok: reply.ok,
            tone: if reply.ok { Tone::Ok } else { Tone::Error },
            text: reply.text,
            text_zh: Some(reply.text_zh),
            next: reply.session.next,
            order_no: reply.session.order_no.clone(),
            checklist: reply.checklist,
            package: reply.package,
        };
        let state = serde_json::to_string(&reply.session)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let text =
            serde_json::to_string(&answer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let saved_now = self
            .store
            .save_pack_session(station, saved.map(|s| s.0), seq, &state, &text)
            .await?;
        if !saved_now {
            return Err(StoreError::Contended.into());
        }
        Ok(answer)
    }

    /// The answer to the station's last scan, as saved with its session.
    pub async fn last_answer(&self, station: &str) -> Result<Option<StationAnswer>, PackError> {
        let Some((_, _, answer)) = self.store.pack_session(station).await? else {
            return Ok(None);
        };
        serde_json::from_str(&answer)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("pack session answer: {e}")).into())
    }

    async fn decide(
        &self,
        actor: &Actor,
        station: &str,
        code: &str,
        session: Session,
    ) -> Result<Reply, PackError> {
        if code.eq_ignore_ascii_case(CANCEL) {
            return Ok(Reply {
                ok: true,
                text: "Cancelled: nothing was packed. Scan a [TOTE]".into(),
                text_zh: "已取消：没有打包。请扫描 [TOTE]".into(),
                session: Session::default(),
                checklist: Vec::new(),
                package: None,
            });
        }
        match (session.next, session.order_no.clone()) {
            (StationNext::Tote, _) | (_, None) => self.on_tote(code).await,
            (StationNext::Item, Some(order_no)) => {
                let plan = self.store.pack_plan(&order_no).await?;
                let mut list = Checklist::resume(pack_lines(&plan), &session.scanned);
                let outcome = list.scan(code);
                let complete = list.complete();
                let scanned = list.scanned().to_vec();
                let checklist = checklist_view(&plan, &list);
                let done: i64 = scanned.iter().sum();
                let all: i64 = plan.lines.iter().map(|l| l.qty).sum();
                Ok(match outcome {
                    Err(refusal) => Reply {
                        checklist,
                        ..Reply::refuse(refusal.to_string(), refusal.text_zh(), session)
                    },
                    Ok(_) if complete => Reply {
                        ok: true,
                        text: format!("All {all} items in. Scan the [BOX] label"),
                        text_zh: format!("{all} 件商品已齐。请扫描 [BOX] 箱子标签"),
                        session: Session {
                            next: StationNext::Box,
                            order_no: Some(order_no),
                            scanned,
                        },
                        checklist,
                        package: None,
                    },
                    Ok(_) => Reply {
                        ok: true,
                        text: format!("{done} of {all} in. Next: [{}]", next_item(&plan, &list)),
                        text_zh: format!(
                            "已装 {done} / {all} 件。下一件：[{}]",
                            next_item(&plan, &list)
                        ),
                        session: Session {
                            next: StationNext::Item,
                            order_no: Some(order_no),
                            scanned,
                        },
                        checklist,
                        package: None,
                    },
                })
            }
            (StationNext::Box, Some(order_no)) => {
                let boxes = self.store.list_box_types().await?;
                if !boxes.iter().any(|b| b.active && b.code == code) {
                    return Ok(Reply::refuse(
                        format!("{code} is not a box label. Scan the [BOX] label"),
                        format!("{code} 不是箱子标签。请扫描 [BOX] 箱子标签"),
                        session,
                    ));
                }
                match self.weigh_and_record(actor, station, &order_no, code).await {
                    Ok(PackOutcome::Packed(p, _)) => Ok(Reply {
                        ok: true,
                        text: format!(
                            "Packed {}: waybill {}, label printing. Scan the next [TOTE]",
                            order_no,
                            p.waybill_no.as_deref().unwrap_or("-")
                        ),
                        text_zh: format!(
                            "{} 已打包：运单 {}，面单打印中。请扫描下一个 [TOTE]",
                            order_no,
                            p.waybill_no.as_deref().unwrap_or("-")
                        ),
                        session: Session::default(),
                        checklist: Vec::new(),
                        package: Some(p),
                    }),
                    Ok(PackOutcome::Mismatch(p)) => {
                        let check = p.weight_check();
                        Ok(Reply {
                            package: Some(p),
                            ..Reply::refuse(
                                format!(
                                    "{}. Check the parcel, then scan the [BOX] label to weigh again, or call a manager",
                                    check.explain()
                                ),
                                format!(
                                    "{}。请检查包裹，然后扫描 [BOX] 箱子标签重新称重，或联系主管",
                                    check.explain_zh()
                                ),
                                session,
                            )
                        })
                    }
                    Err(PackError::Weigh(e)) => Ok(Reply::refuse(
                        format!("{e}. Scan the [BOX] label to weigh again"),
                        format!("{}。请扫描 [BOX] 箱子标签重新称重", e.text_zh()),
                        session,
                    )),
                    Err(PackError::Store(StoreError::Invalid(e) | StoreError::NotFound(e))) => {
                        let zh = format!("无法打包：{e}");
                        Ok(Reply::refuse(e, zh, Session::default()))
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn on_tote(&self, code: &str) -> Result<Reply, PackError> {
        let plan = match self.store.pack_plan(code).await {
            Ok(plan) => plan,
            Err(StoreError::NotFound(_)) => {
                return Ok(Reply::refuse(
                    format!("No order or tote {code}. Scan a [TOTE]"),
                    format!("没有订单或周转箱 {code}。请扫描 [TOTE]"),
                    Session::default(),
                ))
            }
            Err(StoreError::Invalid(e)) => {
                let zh = format!("无法打包：{e}");
                return Ok(Reply::refuse(e, zh, Session::default()));
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(p) = plan
            .package
            .as_ref()
            .filter(|p| p.state == PackageState::Packed)
        {
            return Ok(Reply {
                package: Some(p.clone()),
                ..Reply::refuse(
                    format!(
                        "Order {} is already packed (waybill {}). Scan a [TOTE]",
                        plan.order_no,
                        p.waybill_no.as_deref().unwrap_or("-")
                    ),
                    format!(
                        "订单 {} 已经打包（运单 {}）。请扫描 [TOTE]",
                        plan.order_no,
                        p.waybill_no.as_deref().unwrap_or("-")
                    ),
                    Session::default(),
                )
            });
        }
        if plan.state != OrderState::Picked {
            return Ok(Reply::refuse(
                format!(
                    "Order {} is {}: only a picked order can be packed. Scan a [TOTE]",
                    plan.order_no, plan.state
                ),
                format!(
                    "订单 {} 的状态是 {}：只有已拣货的订单才能打包。请扫描 [TOTE]",
                    plan.order_no, plan.state
                ),
                Session::default(),
            ));
        }
        let list = Checklist::new(pack_lines(&plan));
        let all: i64 = plan.lines.iter().map(|l| l.qty).sum();
        Ok(Reply {
            ok: true,
            text: format!(
                "Order {}: scan its {all} items into the box. Next: [{}]",
                plan.order_no,
                next_item(&plan, &list)
            ),
            text_zh: format!(
                "订单 {}：请把 {all} 件商品逐件扫描装箱。下一件：[{}]",
                plan.order_no,
                next_item(&plan, &list)
            ),
            checklist: checklist_view(&plan, &list),
            session: Session {
                next: StationNext::Item,
                order_no: Some(plan.order_no.clone()),
                scanned: list.scanned().to_vec(),
            },
            package: None,
        })
    }
}
