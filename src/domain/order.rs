//! The rules an order must meet before stock is reserved for it
//! (CUSTOMS.md §4): its amounts add up, it is within the per-transaction
//! limit, and the buyer's annual limit is watched.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::codes::{Quantity, SkuCode};
use super::money::{Money, MoneyError};

/// Per-transaction limit for cross-border e-commerce retail imports (since 2019).
pub const TRANSACTION_LIMIT_YUAN: i64 = 5_000;
/// Per-person annual limit. Customs holds the authoritative total across
/// platforms; a warehouse can only warn from what it has seen.
pub const ANNUAL_LIMIT_YUAN: i64 = 26_000;
/// Lines in one order. Real cross-border orders have a handful.
pub const ORDER_LINES_MAX: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TradeMode {
    /// 1210 bonded import: goods already in the bonded warehouse.
    #[serde(rename = "1210")]
    BondedImport,
    /// 9610 direct purchase: parcels shipped from abroad per order.
    #[serde(rename = "9610")]
    DirectPurchase,
}

impl TradeMode {
    pub fn code(self) -> &'static str {
        match self {
            TradeMode::BondedImport => "1210",
            TradeMode::DirectPurchase => "9610",
        }
    }
    pub fn parse(s: &str) -> Option<TradeMode> {
        match s {
            "1210" => Some(TradeMode::BondedImport),
            "9610" => Some(TradeMode::DirectPurchase),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Stock is reserved for every line, waiting for a wave.
    Locked,
    /// In a wave: pick tasks exist and pickers are walking them.
    Picking,
    /// Every pick task is done; the goods are in a tote for the pack station.
    Picked,
    /// Packed, weighed and labelled.
    Packed,
    /// Left through the gate.
    Shipped,
    /// A short pick could not be made good from other bins: a manager decides.
    Exception,
    /// Cancelled; its reservations were released.
    Cancelled,
}

impl OrderState {
    pub const ALL: [OrderState; 7] = [
        OrderState::Locked,
        OrderState::Picking,
        OrderState::Picked,
        OrderState::Packed,
        OrderState::Shipped,
        OrderState::Exception,
        OrderState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Locked => "locked",
            OrderState::Picking => "picking",
            OrderState::Picked => "picked",
            OrderState::Packed => "packed",
            OrderState::Shipped => "shipped",
            OrderState::Exception => "exception",
            OrderState::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<OrderState> {
        OrderState::ALL.into_iter().find(|o| o.as_str() == s)
    }
    /// Whether a cancellation may release this order's stock. Anything not
    /// yet through the gate can be cancelled: picked goods come back to stock
    /// from the tote they wait in.
    pub fn cancellable(self) -> bool {
        !matches!(self, OrderState::Shipped | OrderState::Cancelled)
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSpec {
    pub sku: SkuCode,
    pub qty: Quantity,
    pub unit_price: Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amounts {
    pub goods_value: Money,
    pub freight: Money,
    pub discount: Money,
    pub tax: Money,
    pub actual_paid: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("an order needs at least one line")]
    NoLines,
    #[error("an order has at most {ORDER_LINES_MAX} lines, this one has {0}")]
    TooManyLines(usize),
    #[error("goods value is {declared} but the lines add up to {lines}")]
    GoodsValueMismatch { declared: Money, lines: Money },
    #[error("actual paid is {declared} but goods + freight + tax − discount = {expected}")]
    PaidMismatch { declared: Money, expected: String },
    #[error("actual paid {0} is over the {TRANSACTION_LIMIT_YUAN} CNY per-transaction limit")]
    OverTransactionLimit(Money),
    #[error("{0}")]
    Money(#[from] MoneyError),
}

/// Checks the amounts of an order: goods value is the sum of its lines,
/// `actual_paid = goods_value + freight + tax − discount` exactly, and the
/// order is within the per-transaction limit.
pub fn check_amounts(lines: &[LineSpec], a: &Amounts) -> Result<(), OrderError> {
    if lines.is_empty() {
        return Err(OrderError::NoLines);
    }
    if lines.len() > ORDER_LINES_MAX {
        return Err(OrderError::TooManyLines(lines.len()));
    }
    let mut sum = Money::ZERO;
    for l in lines {
        sum = sum.checked_add(l.unit_price.times(l.qty.get())?)?;
    }
    if sum != a.goods_value {
        return Err(OrderError::GoodsValueMismatch {
            declared: a.goods_value,
            lines: sum,
        });
    }
    let expected =
        a.goods_value.decimal() + a.freight.decimal() + a.tax.decimal() - a.discount.decimal();
    if expected != a.actual_paid.decimal() {
        return Err(OrderError::PaidMismatch {
            declared: a.actual_paid,
            expected: expected.to_string(),
        });
    }
    if a.actual_paid > Money::yuan(TRANSACTION_LIMIT_YUAN) {
        return Err(OrderError::OverTransactionLimit(a.actual_paid));
    }
    Ok(())
}

/// A warning when this order takes the buyer's total seen here this calendar
/// year over the annual limit. Not a refusal: customs decides.
pub fn annual_limit_warning(seen_this_year: Money, this_order: Money) -> Option<String> {
    let total = seen_this_year.decimal() + this_order.decimal();
    (total > Money::yuan(ANNUAL_LIMIT_YUAN).decimal()).then(|| {
        format!(
            "the buyer's orders seen here this year total {total} CNY with this one, over the {ANNUAL_LIMIT_YUAN} CNY annual limit; customs may reject the declaration"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }
    fn line(price: &str, qty: i64) -> LineSpec {
        LineSpec {
            sku: SkuCode::parse("S").unwrap(),
            qty: Quantity::new(qty).unwrap(),
            unit_price: m(price),
        }
    }
    fn amounts(goods: &str, freight: &str, discount: &str, tax: &str, paid: &str) -> Amounts {
        Amounts {
            goods_value: m(goods),
            freight: m(freight),
            discount: m(discount),
            tax: m(tax),
            actual_paid: m(paid),
        }
    }

    #[test]
    fn a_consistent_order_passes() {
        let lines = [line("99.90", 2), line("0.20", 1)];
        assert_eq!(
            check_amounts(&lines, &amounts("200.00", "10", "5.50", "18.20", "222.70")),
            Ok(())
        );
    }

    #[test]
    fn amounts_that_do_not_add_up_are_refused() {
        let lines = [line("100", 1)];
        assert!(matches!(
            check_amounts(&lines, &amounts("90", "0", "0", "0", "90")),
            Err(OrderError::GoodsValueMismatch { .. })
        ));
        let e = check_amounts(&lines, &amounts("100", "10", "0", "9.10", "119.00")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "actual paid is 119.00 but goods + freight + tax − discount = 119.10"
        );
        assert_eq!(
            check_amounts(&[], &amounts("0", "0", "0", "0", "0")),
            Err(OrderError::NoLines)
        );
    }

    #[test]
    fn the_transaction_limit_is_5000_inclusive() {
        assert_eq!(
            check_amounts(&[line("5000", 1)], &amounts("5000", "0", "0", "0", "5000")),
            Ok(())
        );
        assert!(matches!(
            check_amounts(
                &[line("5000.01", 1)],
                &amounts("5000.01", "0", "0", "0", "5000.01")
            ),
            Err(OrderError::OverTransactionLimit(_))
        ));
    }

    #[test]
    fn the_annual_limit_warns_only_above_26000() {
        assert_eq!(annual_limit_warning(m("25000"), m("1000")), None);
        let w = annual_limit_warning(m("25000"), m("1000.01")).unwrap();
        assert!(w.contains("26000.01"), "{w}");
    }
}
