//! The outbound gate's rules (DESIGN.md §4 "Gate decision", CUSTOMS.md §2).
//!
//! Two pure pieces, both used by the store:
//!
//! - [`decide`]: open only for a known parcel, packed with an accepted
//!   weight, whose order is neither cancelled nor already out, that is not
//!   already leaving, and whose 清单's customs state is a release with no
//!   later hold. Anything else is a [`Refusal`] a guard can read.
//! - [`Exit`] and [`Exit::apply`]: what happens to an open decision after it
//!   is made. An open is only a *grant* until the gate's output confirms the
//!   pulse; the parcel's stock ships in the commit that records the
//!   confirmation, so "shipped" and "the gate opened for it" are one fact.
//!   A fault (no answer, wrong read-back, dead link, expired command) ends
//!   the grant with nothing shipped, and the parcel may be scanned again.
//!
//! The property test below drives both through random interleavings of
//! receipts, scans, output answers, faults and crashes, and checks them
//! against an oracle written from CUSTOMS.md §2 directly.

use bondgate_customs::{gate_allows, CustomsState};

/// What the store knows about a scanned parcel when it decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParcelFacts {
    pub package_no: String,
    /// `packed`, `mismatch`, … (the package row's state).
    pub package_state: String,
    pub order_no: String,
    /// The order's state (`packed`, `shipped`, `cancelled`, …).
    pub order_state: String,
    /// The parcel's latest open decision that did not fail, if any.
    pub exit: Option<Exit>,
}

/// Why the gate stays shut: a stable code and the guard's text in English
/// and Chinese.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub en: String,
    pub zh: String,
}

impl Refusal {
    fn new(code: &'static str, en: impl Into<String>, zh: impl Into<String>) -> Refusal {
        Refusal {
            code,
            en: en.into(),
            zh: zh.into(),
        }
    }

    /// The output did not confirm an open: the gate counts as closed.
    pub fn output_fault(detail: &str) -> Refusal {
        Refusal::new(
            "gate.output_fault",
            format!("The gate did not confirm opening ({detail}); the parcel has not left. Scan again or call the supervisor"),
            format!("闸机未确认开闸（{detail}）；包裹未出库。请重新扫描或联系主管"),
        )
    }
}

/// The decision on one scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Grant an exit, resting on this release receipt (its arrival id).
    Open {
        release: u64,
    },
    Refuse(Refusal),
}

/// The checks that need no customs data. `None` means: go on and ask
/// customs.
pub fn parcel_refusal(code: &str, parcel: Option<&ParcelFacts>) -> Option<Refusal> {
    let Some(p) = parcel else {
        return Some(Refusal::new(
            "unknown_parcel",
            format!("Unknown parcel {code}: not packed here"),
            format!("未知包裹 {code}：不是本仓打包的包裹"),
        ));
    };
    let no = &p.package_no;
    match p.exit {
        Some(Exit::Confirmed) => {
            return Some(Refusal::new(
                "already_exited",
                format!("Parcel {no} has already left"),
                format!("包裹 {no} 已出库"),
            ))
        }
        Some(Exit::Pending) => {
            return Some(Refusal::new(
                "exit_in_progress",
                format!("Parcel {no} is being let out at a gate right now"),
                format!("包裹 {no} 正在出闸"),
            ))
        }
        Some(Exit::Fault) | None => {}
    }
    if p.order_state == "shipped" {
        Some(Refusal::new(
            "already_exited",
            format!("Parcel {no} has already left"),
            format!("包裹 {no} 已出库"),
        ))
    } else if p.order_state == "cancelled" {
        Some(Refusal::new(
            "order_cancelled",
            format!("Order {} was cancelled: hold the parcel", p.order_no),
            format!("订单 {} 已取消：扣下包裹", p.order_no),
        ))
    } else if p.package_state != "packed" || p.order_state != "packed" {
        Some(Refusal::new(
            "not_packed",
            format!("Parcel {no} was not packed with an accepted weight"),
            format!("包裹 {no} 未通过称重复核"),
        ))
    } else {
        None
    }
}

/// The customs half: open only on a release held now.
pub fn customs_verdict(state: &CustomsState) -> Verdict {
    match (gate_allows(state), state) {
        (Ok(()), CustomsState::Released { receipt, .. }) => Verdict::Open {
            release: receipt.arrival,
        },
        // `gate_allows` says yes only to a release; anything else is a
        // refusal here too, whatever it says.
        (Ok(()), _) => Verdict::Refuse(Refusal::new(
            "customs.not_released",
            "No customs release held for this parcel",
            "未取得海关放行",
        )),
        (Err(r), _) => Verdict::Refuse(Refusal {
            code: r.code,
            en: r.text_en,
            zh: r.text_zh,
        }),
    }
}

/// Both halves: the parcel's facts, then its 清单's customs state.
pub fn decide(code: &str, parcel: Option<&ParcelFacts>, customs: &CustomsState) -> Verdict {
    match parcel_refusal(code, parcel) {
        Some(r) => Verdict::Refuse(r),
        None => customs_verdict(customs),
    }
}

/// Where an open decision stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// Granted; the pulse is under way and not yet confirmed.
    Pending,
    /// The output confirmed the pulse: the parcel left and its stock shipped.
    Confirmed,
    /// The output did not confirm: nothing shipped, the gate counts as closed.
    Fault,
}

/// What can happen to a granted exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitEvent {
    /// The output read back the pulse.
    Confirm,
    /// The output failed, or the grant expired unconfirmed.
    Fault,
}

/// A transition [`Exit::apply`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExitError {
    #[error("the exit already failed; a late confirmation does not ship it")]
    AlreadyFaulted,
    #[error("the exit was already confirmed")]
    AlreadyConfirmed,
}

impl Exit {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Exit::Pending => "pending",
            Exit::Confirmed => "confirmed",
            Exit::Fault => "fault",
        }
    }

    /// From the stored text.
    pub fn parse(s: &str) -> Option<Exit> {
        match s {
            "pending" => Some(Exit::Pending),
            "confirmed" => Some(Exit::Confirmed),
            "fault" => Some(Exit::Fault),
            _ => None,
        }
    }

    /// The next state, and whether the parcel ships with it. A grant ends
    /// once: confirmed (ships) or faulted (does not). Confirming twice is
    /// harmless (`Ok((Confirmed, false))`); a confirmation after a fault is
    /// refused — the exit was already reported as not having happened and
    /// a supervisor must look (see `ExitError::AlreadyFaulted`).
    pub fn apply(self, event: ExitEvent) -> Result<(Exit, bool), ExitError> {
        match (self, event) {
            (Exit::Pending, ExitEvent::Confirm) => Ok((Exit::Confirmed, true)),
            (Exit::Pending, ExitEvent::Fault) => Ok((Exit::Fault, false)),
            (Exit::Confirmed, ExitEvent::Confirm) => Ok((Exit::Confirmed, false)),
            (Exit::Confirmed, ExitEvent::Fault) => Err(ExitError::AlreadyConfirmed),
            (Exit::Fault, ExitEvent::Fault) => Ok((Exit::Fault, false)),
            (Exit::Fault, ExitEvent::Confirm) => Err(ExitError::AlreadyFaulted),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Fail closed, as a property (issue 5 §6): random interleavings of
    //! receipts (any code, any returnTime, duplicates, out of order),
    //! cancellations, scans, output confirmations, faults, a database that
    //! refuses, a broker that is down and crashes between decision and
    //! output. After every step:
    //!
    //! - a pulse was sent ⇒ at that moment the oracle saw a release held
    //!   for that parcel's own 清单;
    //! - shipped ⇔ the output confirmed an open for it; at most once.
    //!
    //! The oracle is written from CUSTOMS.md §2, not from the fold.

    use super::*;
    use bondgate_customs::state::ReceiptKind;
    use bondgate_customs::{Receipt, ReturnStatus, ReturnTime};
    use proptest::prelude::*;

    const PARCELS: usize = 3;
    const CODES: [i64; 16] = [
        1, 2, 3, 100, 120, 300, 399, 500, 501, 599, 700, 800, 899, -621001, 42, 800,
    ];

    #[derive(Debug, Clone)]
    enum Step {
        /// A CEB622 receipt for parcel p: code index, returnTime offset.
        Receipt(usize, usize, u8),
        /// A successful CEB624 cancellation for parcel p.
        Cancel(usize, u8),
        /// A guard scans parcel p; `db_up` false means the database refuses.
        Scan(usize, bool),
        /// The output answers the oldest pulse in flight, or fails it.
        Output(bool),
        /// The broker drops: pulses in flight are lost (never executed).
        BrokerDown,
        /// The server dies: in-flight state is lost; restart sweeps.
        Crash,
        /// An unknown code is scanned.
        ScanUnknown,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0..PARCELS, 0..CODES.len(), any::<u8>()).prop_map(|(p, c, t)| Step::Receipt(p, c, t)),
            1 => (0..PARCELS, any::<u8>()).prop_map(|(p, t)| Step::Cancel(p, t)),
            4 => (0..PARCELS, prop::bool::weighted(0.9)).prop_map(|(p, up)| Step::Scan(p, up)),
            3 => any::<bool>().prop_map(Step::Output),
            1 => Just(Step::BrokerDown),
            1 => Just(Step::Crash),
            1 => Just(Step::ScanUnknown),
        ]
    }

    fn time(offset: u8) -> ReturnTime {
        let base = chrono::NaiveDate::from_ymd_opt(2026, 11, 23)
            .and_then(|d| d.and_hms_opt(8, 0, 0))
            .unwrap();
        ReturnTime::from_china_time(base + chrono::Duration::minutes(i64::from(offset))).unwrap()
    }

    /// CUSTOMS.md §2 read directly: sort by returnTime (arrival breaks
    /// ties); a release (800/899) holds until a later hold
    /// (500/50x/599/700), rejection (100) or successful cancellation (which
    /// is final); pending codes and processing errors after a release do
    /// not revoke it; before any release nothing opens.
    fn oracle_released(receipts: &[Receipt]) -> bool {
        let mut sorted: Vec<&Receipt> = receipts.iter().collect();
        sorted.sort_by_key(|r| (r.time, r.arrival));
        let mut released = false;
        let mut dead = false;
        for r in sorted {
            let code = r.status.code();
            if r.kind == ReceiptKind::Cancellation {
                if code == 899 || code == 800 || code == 399 {
                    dead = true;
                    released = false;
                }
                continue;
            }
            match code {
                // Rejected: no release now. The 清单 may be corrected and
                // declared again under the same copNo, so a release dated
                // after it counts (the order itself is cancelled at 100, so
                // the parcel is refused as cancelled anyway).
                100 => released = false,
                800 | 899 if !dead => released = true,
                500..=599 | 700 => released = false,
                // Pending codes and processing errors (negative): "a late
                // lower code never downgrades an 800"; none gives a release.
                c if c < 0 || matches!(c, 1..=4 | 120 | 300 | 399 | 400 | 600) => {}
                // A code CUSTOMS.md does not list is never a release, and
                // after one it shuts the gate: fail closed.
                _ => released = false,
            }
        }
        released
    }

    struct Parcel {
        receipts: Vec<Receipt>,
        cancelled: bool,
        /// The order is cancelled (rejection or cancellation receipt).
        shipped: bool,
        exit: Option<Exit>,
    }

    struct World {
        parcels: Vec<Parcel>,
        /// Pulses the output has been asked for and not answered: parcel.
        in_flight: Vec<usize>,
        arrivals: u64,
        confirmed_opens: Vec<usize>,
    }

    impl World {
        fn facts(&self, p: usize) -> ParcelFacts {
            let parcel = &self.parcels[p];
            ParcelFacts {
                package_no: format!("P{p}"),
                package_state: "packed".into(),
                order_no: format!("O{p}"),
                order_state: if parcel.shipped {
                    "shipped".into()
                } else if parcel.cancelled {
                    "cancelled".into()
                } else {
                    "packed".into()
                },
                exit: parcel.exit,
            }
        }

        /// What the customs service does on ingest: a rejection or a
        /// successful cancellation cancels an order that has not left.
        fn after_receipt(&mut self, p: usize) {
            let state = CustomsState::from_receipts(&self.parcels[p].receipts);
            let parcel = &mut self.parcels[p];
            if matches!(
                state,
                CustomsState::Rejected { .. } | CustomsState::Cancelled { .. }
            ) && !parcel.shipped
                && parcel.exit != Some(Exit::Pending)
            {
                parcel.cancelled = true;
            }
        }
    }

    fn run(steps: &[Step]) -> Result<(), TestCaseError> {
        let mut w = World {
            parcels: (0..PARCELS)
                .map(|_| Parcel {
                    receipts: Vec::new(),
                    cancelled: false,
                    shipped: false,
                    exit: None,
                })
                .collect(),
            in_flight: Vec::new(),
            arrivals: 0,
            confirmed_opens: Vec::new(),
        };
        for s in steps {
            match *s {
                Step::Receipt(p, c, t) => {
                    w.arrivals += 1;
                    w.parcels[p].receipts.push(Receipt {
                        kind: ReceiptKind::Inventory,
                        cop_no: format!("C{p}"),
                        guid: None,
                        status: ReturnStatus::new(CODES[c]),
                        time: time(t),
                        arrival: w.arrivals,
                    });
                    w.after_receipt(p);
                }
                Step::Cancel(p, t) => {
                    w.arrivals += 1;
                    w.parcels[p].receipts.push(Receipt {
                        kind: ReceiptKind::Cancellation,
                        cop_no: format!("C{p}"),
                        guid: None,
                        status: ReturnStatus::new(899),
                        time: time(t),
                        arrival: w.arrivals,
                    });
                    w.after_receipt(p);
                }
                Step::ScanUnknown => {
                    let v = decide("X", None, &CustomsState::NoReceipt);
                    prop_assert!(matches!(v, Verdict::Refuse(ref r) if r.code == "unknown_parcel"));
                }
                Step::Scan(p, db_up) => {
                    if !db_up {
                        // The transaction fails: no decision, no pulse.
                        continue;
                    }
                    let facts = w.facts(p);
                    let state = CustomsState::from_receipts(&w.parcels[p].receipts);
                    if let Verdict::Open { release } = decide("P", Some(&facts), &state) {
                        // The invariant at the moment the pulse is asked for.
                        prop_assert!(
                            oracle_released(&w.parcels[p].receipts),
                            "opened without a release: {:?}",
                            w.parcels[p].receipts
                        );
                        prop_assert!(w.parcels[p]
                            .receipts
                            .iter()
                            .any(|r| r.arrival == release && matches!(r.status.code(), 800 | 899)));
                        prop_assert!(!w.parcels[p].shipped && !w.parcels[p].cancelled);
                        w.parcels[p].exit = Some(Exit::Pending);
                        w.in_flight.push(p);
                    }
                }
                Step::Output(ok) => {
                    if w.in_flight.is_empty() {
                        continue;
                    }
                    let p = w.in_flight.remove(0);
                    let event = if ok {
                        ExitEvent::Confirm
                    } else {
                        ExitEvent::Fault
                    };
                    let exit = w.parcels[p].exit.unwrap_or(Exit::Pending);
                    match exit.apply(event) {
                        Ok((next, ship)) => {
                            w.parcels[p].exit = Some(next);
                            if ship {
                                prop_assert!(!w.parcels[p].shipped, "shipped twice");
                                w.parcels[p].shipped = true;
                                w.confirmed_opens.push(p);
                            }
                        }
                        Err(e) => prop_assert!(false, "in-flight pulse in state {exit:?}: {e}"),
                    }
                }
                Step::BrokerDown | Step::Crash => {
                    // Pulses not yet answered never happen (a command past
                    // its expiry is dropped by the bridge); the sweep faults
                    // their grants.
                    for p in std::mem::take(&mut w.in_flight) {
                        let exit = w.parcels[p].exit.unwrap_or(Exit::Pending);
                        let (next, ship) = exit
                            .apply(ExitEvent::Fault)
                            .map_err(|e| TestCaseError::fail(format!("sweeping {exit:?}: {e}")))?;
                        prop_assert!(!ship);
                        w.parcels[p].exit = Some(next);
                    }
                }
            }
            // shipped ⇔ a confirmed open, once.
            for (i, parcel) in w.parcels.iter().enumerate() {
                let opens = w.confirmed_opens.iter().filter(|&&p| p == i).count();
                prop_assert_eq!(parcel.shipped, opens == 1);
                prop_assert!(opens <= 1);
                prop_assert_eq!(parcel.shipped, parcel.exit == Some(Exit::Confirmed));
            }
        }
        Ok(())
    }

    proptest! {
        // 100,000 sequences in every test run (issue 5 §6); more with
        // PROPTEST_CASES set, e.g. 10,000,000 in a long run.
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(100_000),
            failure_persistence: None,
            .. ProptestConfig::default()
        })]
        #[test]
        fn the_gate_fails_closed(steps in prop::collection::vec(step(), 1..40)) {
            run(&steps)?;
        }
    }

    #[test]
    fn exits_end_once() {
        assert_eq!(
            Exit::Pending.apply(ExitEvent::Confirm),
            Ok((Exit::Confirmed, true))
        );
        assert_eq!(
            Exit::Pending.apply(ExitEvent::Fault),
            Ok((Exit::Fault, false))
        );
        assert_eq!(
            Exit::Confirmed.apply(ExitEvent::Confirm),
            Ok((Exit::Confirmed, false))
        );
        assert_eq!(
            Exit::Fault.apply(ExitEvent::Confirm),
            Err(ExitError::AlreadyFaulted)
        );
        assert_eq!(
            Exit::Confirmed.apply(ExitEvent::Fault),
            Err(ExitError::AlreadyConfirmed)
        );
        for e in [Exit::Pending, Exit::Confirmed, Exit::Fault] {
            assert_eq!(Exit::parse(e.as_str()), Some(e));
        }
    }

    #[test]
    fn refusals_come_first() {
        let facts = |order_state: &str, exit| ParcelFacts {
            package_no: "P1".into(),
            package_state: "packed".into(),
            order_no: "O1".into(),
            order_state: order_state.into(),
            exit,
        };
        let released = CustomsState::from_receipts(&[Receipt {
            kind: ReceiptKind::Inventory,
            cop_no: "C".into(),
            guid: None,
            status: ReturnStatus::new(800),
            time: time(1),
            arrival: 7,
        }]);
        assert_eq!(
            decide("P1", Some(&facts("packed", None)), &released),
            Verdict::Open { release: 7 }
        );
        let code = |f: ParcelFacts| match decide("P1", Some(&f), &released) {
            Verdict::Refuse(r) => r.code,
            Verdict::Open { .. } => "open",
        };
        assert_eq!(
            code(facts("packed", Some(Exit::Pending))),
            "exit_in_progress"
        );
        assert_eq!(
            code(facts("packed", Some(Exit::Confirmed))),
            "already_exited"
        );
        assert_eq!(code(facts("packed", Some(Exit::Fault))), "open");
        assert_eq!(code(facts("shipped", None)), "already_exited");
        assert_eq!(code(facts("cancelled", None)), "order_cancelled");
        assert_eq!(code(facts("picking", None)), "not_packed");
        assert!(matches!(
            decide("P1", Some(&facts("packed", None)), &CustomsState::NoReceipt),
            Verdict::Refuse(r) if r.code == "customs.no_receipt"
        ));
    }
}
