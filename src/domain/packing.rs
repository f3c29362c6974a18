//! The pack station's rules: which scanned items belong in the parcel, what
//! the parcel should weigh, whether the scale's reading is close enough, and
//! which reading counts at all (PROTOCOLS.md §1: only a stable reading taken
//! after the parcel was placed).
//!
//! All of it is pure: the caller passes the readings and their instants; the
//! adapters (`src/packing.rs`) own the serial ports, the broker and the clock.

use std::fmt;

use super::picking::ItemScan;

/// Most grams anything on a bench scale weighs: 1,000 kg. Keeps every sum
/// here far from overflow.
pub const GRAMS_MAX: i64 = 1_000_000_000;

/// How far a parcel's weight may be from what it should weigh: the larger of
/// an absolute floor and a share of the expected weight. A 200 g parcel of
/// cosmetics and a 20 kg carton of milk powder need different allowances;
/// the floor covers the scale's own resolution and a label's weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tolerance {
    /// Always allowed, grams.
    pub grams: i64,
    /// Allowed as a share of the expected weight, in basis points (1 % = 100).
    pub basis_points: i64,
}

impl Default for Tolerance {
    /// 30 g or 3 %, whichever is more.
    fn default() -> Self {
        Tolerance {
            grams: 30,
            basis_points: 300,
        }
    }
}

impl Tolerance {
    /// The allowance for a parcel expected to weigh `expected` grams, rounded
    /// down to whole grams (an allowance is never more generous than set).
    pub fn allowed(self, expected: i64) -> i64 {
        let share = (i128::from(expected.max(0)) * i128::from(self.basis_points.max(0))) / 10_000;
        let share = i64::try_from(share).unwrap_or(i64::MAX);
        self.grams.max(0).max(share)
    }

    /// Parses a percentage such as `3`, `2.5` or `0.25` into basis points;
    /// finer than 0.01 % or negative is refused.
    pub fn percent_to_basis_points(text: &str) -> Result<i64, String> {
        let t = text.trim().trim_end_matches('%').trim();
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (!frac.is_empty() && !digits(frac)) || frac.len() > 2 {
            return Err(format!(
                "tolerance percent must be like 3 or 2.5 (at most two decimals), got {text:?}"
            ));
        }
        let whole: i64 = whole
            .parse()
            .map_err(|_| format!("tolerance percent {text:?} is too large"))?;
        let frac: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
        let bp = whole.saturating_mul(100).saturating_add(frac);
        if bp > 10_000 {
            return Err(format!("tolerance percent {text:?} is over 100 %"));
        }
        Ok(bp)
    }
}

/// What a parcel should weigh: every unit's weight plus the box's tare.
/// `None` when a figure is negative or the sum leaves [`GRAMS_MAX`].
pub fn expected_grams(lines: &[(i64, i64)], tare: i64) -> Option<i64> {
    let mut total = Some(tare).filter(|t| *t >= 0)?;
    for &(unit_grams, qty) in lines {
        if unit_grams < 0 || qty < 0 {
            return None;
        }
        total = total.checked_add(unit_grams.checked_mul(qty)?)?;
    }
    (total <= GRAMS_MAX).then_some(total)
}

/// The verdict on a weighed parcel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightCheck {
    pub expected: i64,
    pub actual: i64,
    /// `actual - expected`: positive is heavier than it should be.
    pub diff: i64,
    pub allowed: i64,
}

impl WeightCheck {
    pub fn new(expected: i64, actual: i64, tolerance: Tolerance) -> WeightCheck {
        WeightCheck {
            expected,
            actual,
            diff: actual.saturating_sub(expected),
            allowed: tolerance.allowed(expected),
        }
    }

    pub fn matches(&self) -> bool {
        self.diff.unsigned_abs() <= self.allowed.unsigned_abs()
    }

    /// What the packer reads when it does not match: which way, by how much,
    /// and the likely cause.
    pub fn explain(&self) -> String {
        let way = if self.diff > 0 { "heavier" } else { "lighter" };
        let hint = if self.diff > 0 {
            "an extra item or the wrong box?"
        } else {
            "an item missing?"
        };
        format!(
            "Parcel weighs {} g, expected {} g: {} g {way} than allowed ±{} g ({hint})",
            self.actual,
            self.expected,
            self.diff.unsigned_abs(),
            self.allowed
        )
    }

    /// [`WeightCheck::explain`] in Chinese.
    pub fn explain_zh(&self) -> String {
        let (way, hint) = if self.diff > 0 {
            ("重", "是否多放了商品或用错了箱子？")
        } else {
            ("轻", "是否少放了商品？")
        };
        format!(
            "包裹实称 {} 克，应为 {} 克：比允许范围 ±{} 克{way}了 {} 克（{hint}）",
            self.actual,
            self.expected,
            self.allowed,
            self.diff.unsigned_abs()
        )
    }
}

/// One order line as the pack station sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackLine {
    pub sku: String,
    pub qty: i64,
    pub barcodes: Vec<String>,
    /// The batches reserved for this line (a GS1 scan's batch must be one).
    pub batches: Vec<String>,
    pub unit_grams: i64,
}

/// Why a scanned item is refused at the pack station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemRefusal {
    /// No line of the order has this barcode.
    NotInOrder { code: String },
    /// The SKU is in the order, but all of it has been scanned already.
    Extra { sku: String, qty: i64 },
    /// The right SKU from a batch the order did not reserve.
    WrongBatch { sku: String, batch: String },
}

impl fmt::Display for ItemRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemRefusal::NotInOrder { code } => {
                write!(f, "{code} is not in this order: take it out")
            }
            ItemRefusal::Extra { sku, qty } => write!(
                f,
                "Extra {sku}: the order has only {qty}; take the extra one out"
            ),
            ItemRefusal::WrongBatch { sku, batch } => write!(
                f,
                "{sku} from batch {batch} was not picked for this order: take it out"
            ),
        }
    }
}

impl ItemRefusal {
    /// The refusal in Chinese.
    pub fn text_zh(&self) -> String {
        match self {
            ItemRefusal::NotInOrder { code } => format!("{code} 不在本订单中：请取出"),
            ItemRefusal::Extra { sku, qty } => {
                format!("{sku} 多了：订单只有 {qty} 件，请取出多余的")
            }
            ItemRefusal::WrongBatch { sku, batch } => {
                format!("批次 {batch} 的 {sku} 不是为本订单拣的：请取出")
            }
        }
    }
}

/// The items of one order checked off as the packer scans them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checklist {
    lines: Vec<PackLine>,
    scanned: Vec<i64>,
}

impl Checklist {
    pub fn new(lines: Vec<PackLine>) -> Checklist {
        let scanned = vec![0; lines.len()];
        Checklist { lines, scanned }
    }

    /// A checklist with units already checked off (a station's saved
    /// session). Counts that do not fit the lines start again from zero.
    pub fn resume(lines: Vec<PackLine>, scanned: &[i64]) -> Checklist {
        let fits = scanned.len() == lines.len()
            && lines
                .iter()
                .zip(scanned)
                .all(|(l, &n)| (0..=l.qty).contains(&n));
        let scanned = if fits {
            scanned.to_vec()
        } else {
            vec![0; lines.len()]
        };
        Checklist { lines, scanned }
    }

    /// Checks one unit off: which line it belongs to, or why it does not.
    pub fn scan(&mut self, code: &str) -> Result<usize, ItemRefusal> {
        let item = ItemScan::parse(code);
        let mut full = None;
        for (i, line) in self.lines.iter().enumerate() {
            if !item.matches_any(&line.barcodes) && line.sku != code.trim() {
                continue;
            }
            if let Some(batch) = &item.batch {
                if !line.batches.iter().any(|b| b == batch) {
                    return Err(ItemRefusal::WrongBatch {
                        sku: line.sku.clone(),
                        batch: batch.clone(),
                    });
                }
            }
            if self.scanned[i] < line.qty {
                self.scanned[i] += 1;
                return Ok(i);
            }
            full.get_or_insert(i);
        }
        match full {
            Some(i) => Err(ItemRefusal::Extra {
                sku: self.lines[i].sku.clone(),
                qty: self.lines[i].qty,
            }),
            None => Err(ItemRefusal::NotInOrder {
                code: code.trim().chars().take(64).collect(),
            }),
        }
    }

    pub fn complete(&self) -> bool {
        self.lines
            .iter()
            .zip(&self.scanned)
            .all(|(l, &n)| n == l.qty)
    }

    /// `(sku, still to scan)` for every line not yet complete.
    pub fn missing(&self) -> Vec<(String, i64)> {
        self.lines
            .iter()
            .zip(&self.scanned)
            .filter(|(l, &n)| n < l.qty)
            .map(|(l, &n)| (l.sku.clone(), l.qty - n))
            .collect()
    }

    pub fn lines(&self) -> &[PackLine] {
        &self.lines
    }

    pub fn scanned(&self) -> &[i64] {
        &self.scanned
    }

    /// The content weight of the order (without the box).
    pub fn content_grams(&self) -> Option<i64> {
        let lines: Vec<(i64, i64)> = self.lines.iter().map(|l| (l.unit_grams, l.qty)).collect();
        expected_grams(&lines, 0)
    }
}

/// One reading as the server keeps it: grams, whether stable, and when it
/// arrived (milliseconds on the server's monotonic clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub grams: i64,
    pub stable: bool,
    pub at_ms: u64,
}

/// Follows a station's scale to tell a fresh parcel from a stale reading.
///
/// A *placement* starts each time the load changes: motion is seen, or a
/// stable weight differs from the last stable weight by more than the
/// scale's noise. A pack may only use a stable reading of a placement that
/// started after the pack began and that no earlier package at this station
/// used. So the reading from before the parcel was placed, the previous
/// parcel still on the plate and the same reading seen twice all fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleTracker {
    /// Grams two stable readings may differ by and still be the same load.
    noise: i64,
    placement: u64,
    placement_at_ms: u64,
    last_stable: Option<Observed>,
    used_placement: Option<u64>,
}

/// A reading a pack may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weighed {
    pub grams: i64,
    pub placement: u64,
    pub at_ms: u64,
}

/// Why no usable reading is there yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotYet {
    /// Nothing stable since the pack began: the load is still moving, or
    /// the parcel has not been put on the scale.
    WaitingForStable,
    /// The stable load was there before the pack began (or was used by the
    /// previous parcel): lift it and place the parcel.
    StaleLoad,
    /// The scale shows nothing on its plate.
    Empty,
}

impl fmt::Display for NotYet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotYet::WaitingForStable => "waiting for a stable weight",
            NotYet::StaleLoad => {
                "the weight on the scale was there before this parcel: lift it and place the parcel again"
            }
            NotYet::Empty => "the scale is empty: place the parcel",
        })
    }
}

impl NotYet {
    /// Why, in Chinese.
    pub fn text_zh(self) -> &'static str {
        match self {
            NotYet::WaitingForStable => "等待重量稳定",
            NotYet::StaleLoad => "秤上的重量在放包裹之前就有了：请拿起包裹重新放上",
            NotYet::Empty => "秤上没有东西：请放上包裹",
        }
    }
}

impl ScaleTracker {
    pub fn new(noise_grams: i64) -> ScaleTracker {
        ScaleTracker {
            noise: noise_grams.max(0),
            placement: 0,
            placement_at_ms: 0,
            last_stable: None,
            used_placement: None,
        }
    }

    /// Takes in one reading in arrival order.
    pub fn observe(&mut self, r: Observed) {
        if !r.stable {
            // Motion: whatever lies on the plate is being changed.
            if self.last_stable.is_some() {
                self.placement += 1;
                self.placement_at_ms = r.at_ms;
                self.last_stable = None;
            }
            return;
        }
        let changed = match self.last_stable {
            None => true,
            Some(prev) => (r.grams - prev.grams).abs() > self.noise,
        };
        if changed && self.last_stable.is_some() {
            self.placement += 1;
            self.placement_at_ms = r.at_ms;
        } else if self.last_stable.is_none() && self.placement_at_ms == 0 {
            self.placement_at_ms = r.at_ms;
        }
        self.last_stable = Some(r);
    }

    /// The reading a pack that began at `since_ms` may use, if any. A load
    /// whose placement started before `since_ms` is stale, unless motion was
    /// seen after `since_ms` (then the placement is a new one anyway).
    pub fn usable(&self, since_ms: u64, min_grams: i64) -> Result<Weighed, NotYet> {
        let Some(last) = self.last_stable else {
            return Err(NotYet::WaitingForStable);
        };
        if last.grams < min_grams.max(1) {
            return Err(NotYet::Empty);
        }
        if self.placement_at_ms < since_ms || self.used_placement == Some(self.placement) {
            return Err(NotYet::StaleLoad);
        }
        Ok(Weighed {
            grams: last.grams,
            placement: self.placement,
            at_ms: last.at_ms,
        })
    }

    /// Marks the current placement as used by a package.
    pub fn mark_used(&mut self, placement: u64) {
        self.used_placement = Some(placement);
    }

    pub fn last_stable(&self) -> Option<Observed> {
        self.last_stable
    }
}

/// A name as labels and screens show it: the first character, the rest
/// starred (`张三丰` → `张**`), so a parcel on the belt names nobody.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.trim().chars();
    match chars.next() {
        None => String::new(),
        Some(first) => {
            let rest = chars.count().max(1);
            std::iter::once(first)
                .chain(std::iter::repeat_n('*', rest))
                .collect()
        }
    }
}

/// A kilogram figure for documents (`1.234`), from grams, without floats.
pub fn kg_text(grams: i64) -> String {
    let sign = if grams < 0 { "-" } else { "" };
    let g = grams.unsigned_abs();
    format!("{sign}{}.{:03}", g / 1000, g % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(sku: &str, qty: i64, barcode: &str, grams: i64) -> PackLine {
        PackLine {
            sku: sku.into(),
            qty,
            barcodes: vec![barcode.into()],
            batches: vec!["B1".into()],
            unit_grams: grams,
        }
    }

    #[test]
    fn tolerance_is_the_larger_of_floor_and_share() {
        let t = Tolerance {
            grams: 30,
            basis_points: 300,
        };
        assert_eq!(t.allowed(500), 30);
        assert_eq!(t.allowed(2_000), 60);
        assert_eq!(t.allowed(2_010), 60, "rounded down, never more generous");
        assert!(WeightCheck::new(2_000, 2_060, t).matches());
        assert!(!WeightCheck::new(2_000, 2_061, t).matches());
        assert!(WeightCheck::new(2_000, 1_940, t).matches());
        assert!(!WeightCheck::new(2_000, 1_939, t).matches());
    }

    #[test]
    fn percent_text_becomes_basis_points() {
        assert_eq!(Tolerance::percent_to_basis_points("3"), Ok(300));
        assert_eq!(Tolerance::percent_to_basis_points("2.5%"), Ok(250));
        assert_eq!(Tolerance::percent_to_basis_points("0.25"), Ok(25));
        assert!(Tolerance::percent_to_basis_points("0.125").is_err());
        assert!(Tolerance::percent_to_basis_points("-1").is_err());
        assert!(Tolerance::percent_to_basis_points("150").is_err());
        assert!(Tolerance::percent_to_basis_points("1e3").is_err());
    }

    #[test]
    fn expected_weight_sums_units_and_tare() {
        assert_eq!(expected_grams(&[(250, 2), (1_000, 1)], 120), Some(1_620));
        assert_eq!(expected_grams(&[(i64::MAX, 2)], 0), None);
        assert_eq!(expected_grams(&[(-1, 2)], 0), None);
        assert_eq!(expected_grams(&[], -5), None);
    }

    #[test]
    fn mismatch_explains_which_way() {
        let c = WeightCheck::new(1_000, 1_250, Tolerance::default());
        assert!(!c.matches());
        assert!(c.explain().contains("250 g heavier"), "{}", c.explain());
        let c = WeightCheck::new(1_000, 700, Tolerance::default());
        assert!(c.explain().contains("300 g lighter"), "{}", c.explain());
    }

    #[test]
    fn checklist_refuses_wrong_extra_and_wrong_batch() {
        let mut c = Checklist::new(vec![
            line("SKU-1", 2, "6901234567892", 100),
            line("SKU-2", 1, "4006381333931", 50),
        ]);
        assert_eq!(c.scan("6901234567892"), Ok(0));
        assert!(!c.complete());
        assert_eq!(
            c.scan("0000000000000"),
            Err(ItemRefusal::NotInOrder {
                code: "0000000000000".into()
            })
        );
        assert_eq!(c.scan("(01)06901234567892(10)B1"), Ok(0));
        assert_eq!(
            c.scan("6901234567892"),
            Err(ItemRefusal::Extra {
                sku: "SKU-1".into(),
                qty: 2
            })
        );
        assert_eq!(
            c.scan("(01)04006381333931(10)B9"),
            Err(ItemRefusal::WrongBatch {
                sku: "SKU-2".into(),
                batch: "B9".into()
            })
        );
        assert_eq!(c.missing(), vec![("SKU-2".to_string(), 1)]);
        assert_eq!(c.scan("SKU-2"), Ok(1), "the SKU code itself is accepted");
        assert!(c.complete());
        assert_eq!(c.content_grams(), Some(250));
    }

    fn obs(grams: i64, stable: bool, at_ms: u64) -> Observed {
        Observed {
            grams,
            stable,
            at_ms,
        }
    }

    #[test]
    fn only_a_load_placed_after_the_pack_began_counts() {
        let mut t = ScaleTracker::new(2);
        t.observe(obs(0, true, 10));
        assert_eq!(t.usable(50, 1), Err(NotYet::Empty));
        // The previous parcel lies on the plate before the pack begins.
        t.observe(obs(0, false, 20));
        t.observe(obs(900, true, 30));
        assert_eq!(t.usable(50, 1), Err(NotYet::StaleLoad));
        // Lifted (motion), the new parcel placed and settled.
        t.observe(obs(400, false, 60));
        assert_eq!(t.usable(50, 1), Err(NotYet::WaitingForStable));
        t.observe(obs(1_200, true, 70));
        let w = t.usable(50, 1).expect("fresh placement");
        assert_eq!(w.grams, 1_200);
        // Noise on the same load is the same placement.
        t.observe(obs(1_201, true, 80));
        assert_eq!(t.usable(50, 1).map(|w| w.placement), Ok(w.placement));
        // Once used, the same parcel cannot be weighed for the next pack.
        t.mark_used(w.placement);
        assert_eq!(t.usable(90, 1), Err(NotYet::StaleLoad));
        assert_eq!(t.usable(0, 1), Err(NotYet::StaleLoad));
    }

    #[test]
    fn a_stable_jump_without_motion_is_a_new_placement() {
        // Some indicators never report motion at their sampling rate.
        let mut t = ScaleTracker::new(2);
        t.observe(obs(0, true, 10));
        t.observe(obs(750, true, 100));
        assert_eq!(t.usable(50, 1).map(|w| w.grams), Ok(750));
    }

    #[test]
    fn names_are_masked_after_the_first_character() {
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_name("李"), "李*");
        assert_eq!(mask_name(" Alice "), "A****");
        assert_eq!(mask_name(""), "");
    }

    #[test]
    fn kilograms_without_floats() {
        assert_eq!(kg_text(1_234), "1.234");
        assert_eq!(kg_text(5), "0.005");
        assert_eq!(kg_text(-20), "-0.020");
    }

    proptest! {
        #[test]
        fn a_used_or_older_placement_never_counts(
            readings in proptest::collection::vec((0i64..5_000, any::<bool>()), 0..60),
            since in 0u64..60,
        ) {
            let mut t = ScaleTracker::new(3);
            for (i, (g, s)) in readings.iter().enumerate() {
                t.observe(obs(*g, *s, i as u64));
            }
            if let Ok(w) = t.usable(since, 1) {
                prop_assert!(w.grams >= 1);
                prop_assert!(t.placement_at_ms >= since);
                let mut used = t.clone();
                used.mark_used(w.placement);
                prop_assert_eq!(used.usable(since, 1), Err(NotYet::StaleLoad));
            }
        }

        #[test]
        fn checklist_never_counts_more_than_ordered(codes in proptest::collection::vec(0usize..4, 0..20)) {
            let mut c = Checklist::new(vec![line("A", 2, "111", 1), line("B", 1, "222", 1)]);
            let pool = ["111", "222", "333", "(01)00000000000111(10)X"];
            for i in codes {
                let _ = c.scan(pool[i]);
            }
            prop_assert!(c.scanned()[0] <= 2 && c.scanned()[1] <= 1);
        }
    }
}
