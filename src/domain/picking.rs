//! Picking: what a picker's scan means, and what the PDA should say next.
//!
//! A PDA session walks a small state machine per device: badge → tote → bin →
//! item → (lot) → quantity → next task, with a short-pick branch that asks
//! for a reason. [`on_scan`] decides, from the session's step, the current
//! task and the scanned code, either a refusal (the step stays, nothing
//! changes) or an [`Action`] for the store to carry out in one transaction;
//! [`prompt`] then words what the picker must do in the resulting step. The
//! code the picker must scan next is always written in square brackets, once
//! (the convention `PromptText::expected` reads on the device side).
//!
//! Scans the PDA keys rather than reads (control codes) start with `#`:
//! `#LOGOUT`, `#SHORT`, `#OK` and the reason cards `#EMPTY`, `#DAMAGED`,
//! `#WRONG`. A quantity is keyed as plain digits.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Where a PDA session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Nobody is logged in: scan a badge.
    Login,
    /// Logged in, no work: any scan looks again.
    Idle,
    /// The order has no tote yet: scan one.
    Tote,
    /// Go to the task's bin and scan it.
    Bin,
    /// Scan the item.
    Item,
    /// The item's barcode carried no batch: scan the lot label.
    Lot,
    /// Count: `counted` units scanned or keyed so far.
    Qty { counted: i64 },
    /// Fewer than asked were found: scan a reason card.
    Reason { found: i64 },
}

impl Step {
    pub fn needs_task(self) -> bool {
        !matches!(self, Step::Login | Step::Idle)
    }
}

/// Why a pick came up short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShortReason {
    /// The bin holds fewer than the books say: the rest is released and the
    /// bin is counted before stock is taken from it again.
    Empty,
    /// The missing units are there but damaged: they go to defective.
    Damaged,
    /// The bin holds another item: treated like `Empty`.
    Wrong,
}

impl ShortReason {
    pub const ALL: [ShortReason; 3] =
        [ShortReason::Empty, ShortReason::Damaged, ShortReason::Wrong];
    pub fn as_str(self) -> &'static str {
        match self {
            ShortReason::Empty => "empty",
            ShortReason::Damaged => "damaged",
            ShortReason::Wrong => "wrong",
        }
    }
    pub fn parse(s: &str) -> Option<ShortReason> {
        ShortReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
    /// The reason as a Chinese-speaking floor says it.
    pub fn text_zh(self) -> &'static str {
        match self {
            ShortReason::Empty => "库位为空",
            ShortReason::Damaged => "破损",
            ShortReason::Wrong => "库位内是错货",
        }
    }
    /// Whether the units not found must be counted before the bin is used.
    pub fn needs_count(self) -> bool {
        !matches!(self, ShortReason::Damaged)
    }
}

impl fmt::Display for ShortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the picker is working on, as the PDA needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    pub id: i64,
    pub order_no: String,
    pub bin: String,
    pub sku: String,
    pub sku_name: String,
    /// The SKU's barcodes; the first is the one shown.
    pub barcodes: Vec<String>,
    /// The locked lot's batch; empty when the goods have no batch.
    pub batch: String,
    pub qty: i64,
    /// The tote the order is picked into, once scanned.
    pub tote: Option<String>,
}

/// What the store must do for a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The step changes and nothing else.
    Advance(Step),
    /// Log in whoever holds this badge.
    Login {
        badge: String,
    },
    Logout,
    /// Look for work again.
    FindWork,
    /// Pick the order into this tote.
    UseTote {
        tote: String,
    },
    /// The full quantity is in the tote.
    Confirm {
        task: i64,
        qty: i64,
    },
    /// Only `found` units could be picked.
    Short {
        task: i64,
        found: i64,
        reason: ShortReason,
    },
}

/// A scan's meaning: an action, or why it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Act(Action),
    Refuse(Said),
}

/// Words for the picker, in English and in Chinese; the code to scan is in
/// square brackets in both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Said {
    pub en: String,
    pub zh: String,
}

impl Said {
    pub fn new(en: impl Into<String>, zh: impl Into<String>) -> Said {
        Said {
            en: en.into(),
            zh: zh.into(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.en.is_empty() && self.zh.is_empty()
    }
}

/// How the PDA should sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Ok,
    Warn,
    Error,
}

/// What to scan next (mirrors the wire protocol's `next`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Login,
    Tote,
    Bin,
    Item,
    Lot,
    Qty,
    Reason,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub tone: Tone,
    pub text: String,
    /// The same in Chinese.
    pub text_zh: String,
    pub next: Next,
}

/// The most a picker may key as one quantity: six digits, so a keyed number
/// is never mistaken for a scanned EAN-8/13 barcode.
pub const KEYED_QTY_DIGITS_MAX: usize = 6;

/// Decides what a scan means in `step`. `task` is the session's current task
/// (None in `Login` and `Idle`, or when the task went away, e.g. cancelled).
pub fn on_scan(step: Step, task: Option<&TaskView>, code: &str, tote_prefix: &str) -> Decision {
    let code = code.trim();
    let upper = code.to_ascii_uppercase();
    if upper == "#LOGOUT" && step != Step::Login {
        return Decision::Act(Action::Logout);
    }
    let task = match (step.needs_task(), task) {
        (false, _) => None,
        (true, Some(t)) => Some(t),
        // The task went away under the picker (e.g. its order was
        // cancelled): whatever was scanned, look for the next one.
        (true, None) => return Decision::Act(Action::FindWork),
    };
    match (step, task) {
        (Step::Login, _) => {
            if code.starts_with('#') {
                Decision::Refuse(Said::new("Log in first: scan your badge", "请先扫描工牌登录"))
            } else {
                Decision::Act(Action::Login { badge: code.into() })
            }
        }
        (Step::Idle, _) => Decision::Act(Action::FindWork),
        (Step::Tote, Some(_)) => {
            if is_tote(code, tote_prefix) {
                Decision::Act(Action::UseTote {
                    tote: code.to_ascii_uppercase(),
                })
            } else {
                Decision::Refuse(Said::new(
                    format!(
                        "{} is not a tote. Scan a tote label ({tote_prefix}…)",
                        shown(code)
                    ),
                    format!("{} 不是周转箱。请扫描周转箱标签（{tote_prefix}…）", shown(code)),
                ))
            }
        }
        (Step::Bin, Some(t)) => {
            if upper == "#SHORT" {
                Decision::Act(Action::Advance(Step::Reason { found: 0 }))
            } else if code.eq_ignore_ascii_case(&t.bin) {
                Decision::Act(Action::Advance(Step::Item))
            } else {
                Decision::Refuse(Said::new(
                    format!("Wrong bin {}. Go to [{}]", shown(code), t.bin),
                    format!("库位错误 {}。请去 [{}]", shown(code), t.bin),
                ))
            }
        }
        (Step::Item, Some(t)) => {
            if upper == "#SHORT" {
                return Decision::Act(Action::Advance(Step::Reason { found: 0 }));
            }
            let scan = ItemScan::parse(code);
            if !scan.matches_any(&t.barcodes) {
                let barcode = t.barcodes.first().map_or(t.sku.as_str(), String::as_str);
                return Decision::Refuse(Said::new(
                    format!("Wrong item {}. Pick {} [{barcode}]", shown(code), t.sku),
                    format!("商品错误 {}。请拣 {} [{barcode}]", shown(code), t.sku),
                ));
            }
            match scan.batch {
                Some(b) if b != t.batch => Decision::Refuse(Said::new(
                    format!(
                        "Wrong lot {}: this task is lot {}. Scan an item of lot {}",
                        shown(&b),
                        t.batch,
                        t.batch
                    ),
                    format!(
                        "批次错误 {}：本任务是批次 {}。请扫描批次 {} 的商品",
                        shown(&b),
                        t.batch,
                        t.batch
                    ),
                )),
                None if !t.batch.is_empty() => Decision::Act(Action::Advance(Step::Lot)),
                _ => counted(t, 1),
            }
        }
        (Step::Lot, Some(t)) => {
            if upper == "#SHORT" {
                Decision::Act(Action::Advance(Step::Reason { found: 0 }))
            } else if code == t.batch {
                counted(t, 1)
            } else {
                Decision::Refuse(Said::new(
                    format!("Wrong lot {}. Scan lot [{}]", shown(code), t.batch),
                    format!("批次错误 {}。请扫描批次 [{}]", shown(code), t.batch),
                ))
            }
        }
        (Step::Qty { counted: n }, Some(t)) => {
            if upper == "#SHORT" {
                return Decision::Act(Action::Advance(Step::Reason { found: n }));
            }
            if upper == "#OK" {
                return if n == t.qty {
                    Decision::Act(Action::Confirm { task: t.id, qty: n })
                } else if n > t.qty {
                    counted(t, n)
                } else {
                    Decision::Act(Action::Advance(Step::Reason { found: n }))
                };
            }
            if ItemScan::parse(code).matches_any(&t.barcodes) {
                return counted(t, n + 1);
            }
            match keyed_qty(code) {
                Some(k) if k > t.qty => Decision::Refuse(Said::new(
                    format!(
                        "{k} is more than the task's {}. Key [{}] or fewer",
                        t.qty, t.qty
                    ),
                    format!("{k} 超过任务数量 {}。请输入 [{}] 或更少", t.qty, t.qty),
                )),
                Some(k) if k == t.qty => Decision::Act(Action::Confirm { task: t.id, qty: k }),
                Some(k) => Decision::Act(Action::Advance(Step::Reason { found: k })),
                None => Decision::Refuse(Said::new(
                    format!(
                        "{} is not {} or a quantity. Key [{}]",
                        shown(code),
                        t.sku,
                        t.qty
                    ),
                    format!("{} 不是 {}，也不是数量。请输入 [{}]", shown(code), t.sku, t.qty),
                )),
            }
        }
        (Step::Reason { found }, Some(t)) => match reason_card(&upper) {
            Some(reason) => Decision::Act(Action::Short {
                task: t.id,
                found,
                reason,
            }),
            None => Decision::Refuse(Said::new(
                format!(
                    "Scan a reason card: [#EMPTY], #DAMAGED or #WRONG ({found} of {} found)",
                    t.qty
                ),
                format!(
                    "请扫描原因卡：[#EMPTY] 库位为空、#DAMAGED 破损、#WRONG 错货（找到 {found} / {} 件）",
                    t.qty
                ),
            )),
        },
        (_, None) => Decision::Act(Action::FindWork),
    }
}

fn counted(t: &TaskView, n: i64) -> Decision {
    if n == t.qty {
        Decision::Act(Action::Confirm { task: t.id, qty: n })
    } else if n > t.qty {
        Decision::Refuse(Said::new(
            format!(
                "Too many: the task is for {}. Put one back, key [{}]",
                t.qty, t.qty
            ),
            format!(
                "数量过多：任务为 {} 件。请放回一件，输入 [{}]",
                t.qty, t.qty
            ),
        ))
    } else {
        Decision::Act(Action::Advance(Step::Qty { counted: n }))
    }
}

fn reason_card(upper: &str) -> Option<ShortReason> {
    match upper {
        "#EMPTY" => Some(ShortReason::Empty),
        "#DAMAGED" => Some(ShortReason::Damaged),
        "#WRONG" => Some(ShortReason::Wrong),
        _ => None,
    }
}

/// A keyed quantity: 1 to 6 ASCII digits.
pub fn keyed_qty(code: &str) -> Option<i64> {
    if code.is_empty()
        || code.len() > KEYED_QTY_DIGITS_MAX
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    code.parse().ok()
}

/// Whether a code is a tote label: the prefix, then letters, digits or `-`.
pub fn is_tote(code: &str, prefix: &str) -> bool {
    let upper = code.to_ascii_uppercase();
    upper.len() > prefix.len()
        && upper.len() <= 32
        && upper.starts_with(&prefix.to_ascii_uppercase())
        && upper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A scanned code shown back to the picker: short, and never mistaken for the
/// expected code (no brackets).
fn shown(code: &str) -> String {
    let clean: String = code
        .chars()
        .map(|c| {
            if c.is_control() || c == '[' || c == ']' {
                ' '
            } else {
                c
            }
        })
        .collect();
    if clean.chars().count() > 24 {
        let mut cut: String = clean.chars().take(23).collect();
        cut.push('…');
        cut
    } else {
        clean
    }
}

/// Words the prompt for `step`. `note` is what just happened (e.g. "Picked
/// 2 × SKU-1"), said before the instruction.
pub fn prompt(step: Step, task: Option<&TaskView>, note: &Said) -> Prompt {
    let with_note = |note: &str, s: String, sep: &str| {
        if note.is_empty() {
            s
        } else {
            format!("{note}{sep}{s}")
        }
    };
    let (next, said) = match (step, task) {
        (Step::Login, _) => (
            Next::Login,
            Said::new("Scan your badge to log in", "请扫描工牌登录"),
        ),
        (Step::Idle, _) | (_, None) => (
            Next::Done,
            Said::new(
                "No pick work right now. Scan anything to look again, #LOGOUT to log out",
                "暂无拣货任务。扫描任意码重新查看，扫描 #LOGOUT 退出",
            ),
        ),
        (Step::Tote, Some(t)) => (
            Next::Tote,
            Said::new(
                format!("Order {}: scan an empty tote", t.order_no),
                format!("订单 {}：请扫描一个空周转箱", t.order_no),
            ),
        ),
        (Step::Bin, Some(t)) => (
            Next::Bin,
            Said::new(
                format!("Go to [{}] for {} × {}", t.bin, t.qty, t.sku),
                format!("请去 [{}] 拣 {} × {}", t.bin, t.qty, t.sku),
            ),
        ),
        (Step::Item, Some(t)) => {
            let barcode = t.barcodes.first().map_or(t.sku.as_str(), String::as_str);
            let (lot_en, lot_zh) = if t.batch.is_empty() {
                (String::new(), String::new())
            } else {
                (format!(" lot {}", t.batch), format!(" 批次 {}", t.batch))
            };
            (
                Next::Item,
                Said::new(
                    format!("Scan {} {} [{barcode}]{lot_en}", t.sku, t.sku_name),
                    format!("请扫描 {} {} [{barcode}]{lot_zh}", t.sku, t.sku_name),
                ),
            )
        }
        (Step::Lot, Some(t)) => (
            Next::Lot,
            Said::new(
                format!("Scan the lot label [{}]", t.batch),
                format!("请扫描批次标签 [{}]", t.batch),
            ),
        ),
        (Step::Qty { counted }, Some(t)) => (
            Next::Qty,
            Said::new(
                format!(
                    "{counted} of {} counted. Scan each unit or key the total [{}]",
                    t.qty, t.qty
                ),
                format!(
                    "已点 {counted} / {} 件。逐件扫描或输入总数 [{}]",
                    t.qty, t.qty
                ),
            ),
        ),
        (Step::Reason { found }, Some(t)) => (
            Next::Reason,
            Said::new(
                format!(
                    "Short: {found} of {} found. Scan the reason: [#EMPTY], #DAMAGED, #WRONG",
                    t.qty
                ),
                format!(
                    "短缺：找到 {found} / {} 件。请扫描原因：[#EMPTY] 库位为空、#DAMAGED 破损、#WRONG 错货",
                    t.qty
                ),
            ),
        ),
    };
    let tone = if matches!(step, Step::Reason { .. }) {
        Tone::Warn
    } else {
        Tone::Ok
    };
    Prompt {
        tone,
        text: with_note(&note.en, said.en, ". "),
        text_zh: with_note(&note.zh, said.zh, "。"),
        next,
    }
}

/// An item scan: a plain barcode, or a GS1 element string carrying a GTIN
/// and maybe a batch (AI 10) and expiry (AI 17). Accepts the raw form with
/// group separators (optionally after a symbology identifier such as `]d2`
/// or `]C1`) and the human-readable form with parentheses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemScan {
    /// The GTIN, or the whole code when it is not GS1.
    pub code: String,
    pub batch: Option<String>,
    pub expiry: Option<NaiveDate>,
}

const GS: char = '\u{1d}';

impl ItemScan {
    pub fn parse(raw: &str) -> ItemScan {
        let s = raw
            .strip_prefix("]d2")
            .or_else(|| raw.strip_prefix("]C1"))
            .or_else(|| raw.strip_prefix("]Q3"))
            .or_else(|| raw.strip_prefix("]e0"))
            .unwrap_or(raw)
            .trim_start_matches(GS);
        let parsed = if s.starts_with('(') {
            parse_bracketed(s)
        } else if s.contains(GS) || (s.len() > 16 && s.starts_with("01")) {
            parse_raw(s)
        } else {
            None
        };
        parsed.unwrap_or_else(|| ItemScan {
            code: raw.to_string(),
            ..ItemScan::default()
        })
    }

    /// Whether this scan is one of a SKU's barcodes. GTINs compare by value
    /// whatever their length (`06901234567892` is EAN-13 `6901234567892`).
    pub fn matches_any(&self, barcodes: &[String]) -> bool {
        let mine = gtin14(&self.code);
        barcodes.iter().any(|b| match (&mine, gtin14(b)) {
            (Some(a), Some(b)) => *a == b,
            _ => b.eq_ignore_ascii_case(&self.code),
        })
    }
}

fn gtin14(code: &str) -> Option<String> {
    if matches!(code.len(), 8 | 12 | 13 | 14) && code.bytes().all(|b| b.is_ascii_digit()) {
        Some(format!("{code:0>14}"))
    } else {
        None
    }
}

/// Fixed-length AIs this parser knows, with their data lengths.
fn fixed_len(ai: &str) -> Option<usize> {
    match ai {
        "00" => Some(18),
        "01" | "02" => Some(14),
        "11" | "12" | "13" | "15" | "16" | "17" => Some(6),
        _ => None,
    }
}

fn is_variable(ai: &str) -> bool {
    matches!(ai, "10" | "21" | "22" | "240" | "241" | "30" | "37")
}

fn parse_raw(s: &str) -> Option<ItemScan> {
    let mut out = ItemScan::default();
    let mut rest = s;
    while !rest.is_empty() {
        rest = rest.trim_start_matches(GS);
        if rest.is_empty() {
            break;
        }
        let (ai, data_len) = [2usize, 3]
            .into_iter()
            .filter_map(|n| rest.get(..n))
            .find_map(|ai| {
                fixed_len(ai)
                    .map(|l| (ai, Some(l)))
                    .or_else(|| is_variable(ai).then_some((ai, None)))
            })?;
        rest = &rest[ai.len()..];
        let value = match data_len {
            Some(n) => {
                let v = rest.get(..n)?;
                rest = &rest[n..];
                v
            }
            None => {
                let end = rest.find(GS).unwrap_or(rest.len());
                let v = &rest[..end];
                rest = &rest[end..];
                v
            }
        };
        take_ai(&mut out, ai, value)?;
    }
    (!out.code.is_empty()).then_some(out)
}

fn parse_bracketed(s: &str) -> Option<ItemScan> {
    let mut out = ItemScan::default();
    let mut rest = s;
    while let Some(r) = rest.strip_prefix('(') {
        let close = r.find(')')?;
        let ai = &r[..close];
        let after = &r[close + 1..];
        let end = after.find('(').unwrap_or(after.len());
        take_ai(&mut out, ai, &after[..end])?;
        rest = &after[end..];
    }
    (rest.is_empty() && !out.code.is_empty()).then_some(out)
}

fn take_ai(out: &mut ItemScan, ai: &str, value: &str) -> Option<()> {
    if value.is_empty() || value.chars().count() > 20 && ai == "10" {
        return None;
    }
    match ai {
        "01" | "02" => {
            if value.len() != 14 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            out.code = value.to_string();
        }
        "10" => out.batch = Some(value.to_string()),
        "17" => out.expiry = gs1_date(value),
        _ => {}
    }
    Some(())
}

/// A GS1 YYMMDD date; day 00 means the last day of the month.
fn gs1_date(v: &str) -> Option<NaiveDate> {
    if v.len() != 6 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let yy: i32 = v[0..2].parse().ok()?;
    let mm: u32 = v[2..4].parse().ok()?;
    let dd: u32 = v[4..6].parse().ok()?;
    let year = 2000 + yy;
    if dd == 0 {
        let first_next = if mm == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(year, mm + 1, 1)
        }?;
        first_next.pred_opt()
    } else {
        NaiveDate::from_ymd_opt(year, mm, dd)
    }
}

/// When to cut a wave automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavePolicy {
    /// The most orders in one wave.
    pub max_orders: usize,
    /// The longest an order waits for a wave, in seconds: when the oldest
    /// waiting order has waited this long, a wave is cut with whatever waits.
    pub max_wait_secs: i64,
}

/// How many waiting orders to put in a wave now, if any: a full wave as soon
/// as there are enough, or whatever waits once the oldest has waited too long.
pub fn wave_due(policy: WavePolicy, waiting: usize, oldest_wait_secs: i64) -> Option<usize> {
    if waiting == 0 || policy.max_orders == 0 {
        None
    } else if waiting >= policy.max_orders {
        Some(policy.max_orders)
    } else if oldest_wait_secs >= policy.max_wait_secs {
        Some(waiting)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> TaskView {
        TaskView {
            id: 7,
            order_no: "SO-1".into(),
            bin: "A-01".into(),
            sku: "SKU-1".into(),
            sku_name: "Face cream".into(),
            barcodes: vec!["6901234567892".into()],
            batch: "B1".into(),
            qty: 3,
            tote: Some("TOTE-1".into()),
        }
    }

    fn act(step: Step, code: &str) -> Decision {
        on_scan(step, Some(&task()), code, "TOTE")
    }

    #[test]
    fn the_happy_path_walks_bin_item_lot_qty() {
        assert_eq!(
            act(Step::Bin, "a-01"),
            Decision::Act(Action::Advance(Step::Item))
        );
        assert_eq!(
            act(Step::Item, "6901234567892"),
            Decision::Act(Action::Advance(Step::Lot))
        );
        assert_eq!(
            act(Step::Lot, "B1"),
            Decision::Act(Action::Advance(Step::Qty { counted: 1 }))
        );
        assert_eq!(
            act(Step::Qty { counted: 1 }, "6901234567892"),
            Decision::Act(Action::Advance(Step::Qty { counted: 2 }))
        );
        assert_eq!(
            act(Step::Qty { counted: 2 }, "6901234567892"),
            Decision::Act(Action::Confirm { task: 7, qty: 3 })
        );
        assert_eq!(
            act(Step::Qty { counted: 1 }, "3"),
            Decision::Act(Action::Confirm { task: 7, qty: 3 })
        );
    }

    #[test]
    fn a_gs1_scan_with_the_right_batch_skips_the_lot_label() {
        let raw = "]d20106901234567892\u{1d}10B1\u{1d}17271231";
        assert_eq!(
            act(Step::Item, raw),
            Decision::Act(Action::Advance(Step::Qty { counted: 1 }))
        );
        let wrong = "(01)06901234567892(17)271231(10)B2";
        assert!(
            matches!(act(Step::Item, wrong), Decision::Refuse(m) if m.en.contains("Wrong lot B2") && m.zh.contains("批次错误 B2"))
        );
    }

    #[test]
    fn wrong_scans_are_refused_and_name_the_expected_code() {
        let Decision::Refuse(m) = act(Step::Bin, "A-02") else {
            panic!()
        };
        assert_eq!(m.en, "Wrong bin A-02. Go to [A-01]");
        assert_eq!(m.zh, "库位错误 A-02。请去 [A-01]");
        let Decision::Refuse(m) = act(Step::Item, "4006381333931") else {
            panic!()
        };
        assert!(m.en.ends_with("[6901234567892]"), "{m:?}");
        assert!(m.zh.ends_with("[6901234567892]"), "{m:?}");
        assert!(matches!(
            act(Step::Qty { counted: 1 }, "4"),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            act(Step::Qty { counted: 1 }, "1234567"),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            act(Step::Reason { found: 1 }, "#OK"),
            Decision::Refuse(_)
        ));
        assert!(matches!(act(Step::Tote, "A-01"), Decision::Refuse(_)));
        assert!(matches!(
            on_scan(Step::Login, None, "#SHORT", "TOTE"),
            Decision::Refuse(_)
        ));
    }

    #[test]
    fn short_picks_ask_for_a_reason_then_report_what_was_found() {
        assert_eq!(
            act(Step::Qty { counted: 1 }, "2"),
            Decision::Act(Action::Advance(Step::Reason { found: 2 }))
        );
        assert_eq!(
            act(Step::Bin, "#short"),
            Decision::Act(Action::Advance(Step::Reason { found: 0 }))
        );
        assert_eq!(
            act(Step::Qty { counted: 2 }, "#OK"),
            Decision::Act(Action::Advance(Step::Reason { found: 2 }))
        );
        assert_eq!(
            act(Step::Reason { found: 2 }, "#DAMAGED"),
            Decision::Act(Action::Short {
                task: 7,
                found: 2,
                reason: ShortReason::Damaged
            })
        );
    }

    #[test]
    fn a_vanished_task_sends_the_picker_to_the_next_one() {
        assert_eq!(
            on_scan(Step::Bin, None, "A-01", "TOTE"),
            Decision::Act(Action::FindWork)
        );
        assert_eq!(act(Step::Item, "#LOGOUT"), Decision::Act(Action::Logout));
    }

    #[test]
    fn prompts_bracket_exactly_the_code_to_scan() {
        let t = task();
        for (step, want) in [
            (Step::Bin, "A-01"),
            (Step::Item, "6901234567892"),
            (Step::Lot, "B1"),
            (Step::Qty { counted: 1 }, "3"),
            (Step::Reason { found: 1 }, "#EMPTY"),
        ] {
            let p = prompt(step, Some(&t), &Said::default());
            for text in [&p.text, &p.text_zh] {
                assert_eq!(text.matches('[').count(), 1, "{text}");
                let inner = &text[text.find('[').unwrap() + 1..text.find(']').unwrap()];
                assert_eq!(inner, want);
                assert!(text.chars().count() <= 160);
            }
        }
        let p = prompt(
            Step::Bin,
            Some(&t),
            &Said::new("Picked 3 × SKU-1", "已拣 3 × SKU-1"),
        );
        assert!(p.text.starts_with("Picked 3 × SKU-1. Go to [A-01]"));
        assert!(p.text_zh.starts_with("已拣 3 × SKU-1。请去 [A-01]"));
    }

    #[test]
    fn gs1_parsing_handles_the_common_shapes() {
        let s = ItemScan::parse("0106901234567892\u{1d}10ABC\u{1d}17270100");
        assert_eq!(s.code, "06901234567892");
        assert_eq!(s.batch.as_deref(), Some("ABC"));
        assert_eq!(s.expiry, NaiveDate::from_ymd_opt(2027, 1, 31));
        let s = ItemScan::parse("01069012345678921727123110B9");
        assert_eq!(s.batch.as_deref(), Some("B9"));
        assert_eq!(ItemScan::parse("6901234567892").batch, None);
        assert_eq!(ItemScan::parse("(01)123").code, "(01)123");
        assert!(ItemScan::parse("06901234567892").matches_any(&["6901234567892".into()]));
        assert!(!ItemScan::parse("6901234567893").matches_any(&["6901234567892".into()]));
    }

    #[test]
    fn waves_are_cut_when_full_or_when_the_oldest_waited_too_long() {
        let p = WavePolicy {
            max_orders: 10,
            max_wait_secs: 300,
        };
        assert_eq!(wave_due(p, 0, 1_000), None);
        assert_eq!(wave_due(p, 25, 0), Some(10));
        assert_eq!(wave_due(p, 3, 299), None);
        assert_eq!(wave_due(p, 3, 300), Some(3));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn any_step() -> impl Strategy<Value = Step> {
            prop_oneof![
                Just(Step::Login),
                Just(Step::Idle),
                Just(Step::Tote),
                Just(Step::Bin),
                Just(Step::Item),
                Just(Step::Lot),
                // The steps a session can reach for a task of 3.
                (1i64..3).prop_map(|counted| Step::Qty { counted }),
                (0i64..3).prop_map(|found| Step::Reason { found }),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            /// Whatever is scanned, a pick never confirms more than the task
            /// asks, a short never claims to have found the full quantity,
            /// and a refusal names what to do.
            #[test]
            fn no_scan_over_picks(step in any_step(), code in prop_oneof![
                "[ -~]{0,20}",
                Just("6901234567892".to_string()),
                Just("#OK".to_string()),
                Just("#EMPTY".to_string()),
                "[0-9]{1,7}",
            ]) {
                let t = task();
                match on_scan(step, Some(&t), &code, "TOTE") {
                    Decision::Act(Action::Confirm { qty, .. }) => prop_assert_eq!(qty, t.qty),
                    Decision::Act(Action::Short { found, .. }) => prop_assert!(found < t.qty),
                    Decision::Act(Action::Advance(Step::Qty { counted })) => prop_assert!(counted < t.qty),
                    Decision::Refuse(m) => prop_assert!(!m.en.is_empty() && !m.zh.is_empty()),
                    _ => {}
                }
            }
        }
    }
}
