//! Order intake between the edge (HTTP today, MQTT or files later) and the
//! store: the domain's checks, then the personal data sealed, then the
//! business dates fixed in China Standard Time.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc};

use crate::crypto::PiiCipher;
use crate::domain::idcard::{mask_phone, IdNumber};
use crate::domain::order::{check_amounts, Amounts, LineSpec};
use crate::store::{OrderContext, OrderInput, SealedParties, StoreError};

/// Customs days and years run on Beijing time (UTC+8, no daylight saving).
const CST_OFFSET_SECONDS: i32 = 8 * 3600;
const NAME_CHARS_MAX: usize = 100;
const ADDRESS_CHARS_MAX: usize = 500;
const PARTNER_CODE_CHARS_MAX: usize = 64;

/// China Standard Time, the zone of every business date and printed time.
pub fn cst() -> FixedOffset {
    FixedOffset::east_opt(CST_OFFSET_SECONDS).expect("UTC+8 is a valid offset")
}

/// Today and the start of this year in China Standard Time.
pub fn business_dates(now: DateTime<Utc>) -> (NaiveDate, DateTime<Utc>) {
    let local = now.with_timezone(&cst());
    let year_start = cst()
        .with_ymd_and_hms(local.year(), 1, 1, 0, 0, 0)
        .single()
        .expect("1 January midnight exists at a fixed offset")
        .with_timezone(&Utc);
    (local.date_naive(), year_start)
}

fn invalid(s: impl Into<String>) -> StoreError {
    StoreError::Invalid(s.into())
}

fn check_text(what: &str, s: &str, max: usize) -> Result<(), StoreError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(invalid(format!("{what} must not be empty")));
    }
    if t.chars().count() > max {
        return Err(invalid(format!("{what} is longer than {max} characters")));
    }
    if t.chars().any(char::is_control) {
        return Err(invalid(format!("{what} contains control characters")));
    }
    Ok(())
}

/// Phone numbers as platforms send them: digits, with `+`, `-` or spaces;
/// 5 to 20 digits (a landline with area code to an international mobile).
fn check_phone(what: &str, s: &str) -> Result<String, StoreError> {
    let t = s.trim();
    let digits = t.chars().filter(char::is_ascii_digit).count();
    let ok = (5..=20).contains(&digits)
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '));
    if ok {
        Ok(t.to_string())
    } else {
        Err(invalid(format!("{what} is not a phone number")))
    }
}

/// Everything checkable without the database, then the sealed form of the
/// personal data. Refusals name the field, never its value.
pub fn prepare(
    input: &OrderInput,
    pii: &PiiCipher,
    now: DateTime<Utc>,
) -> Result<OrderContext, StoreError> {
    check_text("ebp_code", &input.ebp_code, PARTNER_CODE_CHARS_MAX)?;
    check_text("ebc_code", &input.ebc_code, PARTNER_CODE_CHARS_MAX)?;
    check_text("buyer name", &input.buyer.name, NAME_CHARS_MAX)?;
    check_text("consignee name", &input.consignee.name, NAME_CHARS_MAX)?;
    check_text(
        "consignee address",
        &input.consignee.address,
        ADDRESS_CHARS_MAX,
    )?;
    let id = IdNumber::parse(&input.buyer.id_number)
        .map_err(|e| invalid(format!("buyer ID number: {e}")))?;
    let buyer_phone = check_phone("buyer phone", &input.buyer.phone)?;
    let consignee_phone = check_phone("consignee phone", &input.consignee.phone)?;
    let lines: Vec<LineSpec> = input
        .lines
        .iter()
        .map(|l| LineSpec {
            sku: l.sku.clone(),
            qty: l.qty,
            unit_price: l.unit_price,
        })
        .collect();
    let amounts = Amounts {
        goods_value: input.goods_value,
        freight: input.freight,
        discount: input.discount,
        tax: input.tax,
        actual_paid: input.actual_paid,
    };
    check_amounts(&lines, &amounts).map_err(|e| invalid(e.to_string()))?;

    let sealed = SealedParties {
        buyer_id_sealed: pii.seal(id.expose()),
        buyer_id_masked: id.masked(),
        buyer_ref: pii.fingerprint(id.expose().as_bytes()),
        buyer_phone_sealed: pii.seal(&buyer_phone),
        buyer_phone_masked: mask_phone(&buyer_phone),
        consignee_phone_sealed: pii.seal(&consignee_phone),
        consignee_phone_masked: mask_phone(&consignee_phone),
    };
    // The idempotency fingerprint covers the whole request, personal data
    // included, under the secret key: a replay matches, a guess cannot.
    let canonical = serde_json::to_vec(input).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let (today, year_start) = business_dates(now);
    Ok(OrderContext {
        sealed,
        fingerprint: pii.fingerprint(&canonical),
        today,
        year_start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_dates_follow_beijing_time() {
        // 2026-12-31 17:00 UTC is already 1 January 2027 in Beijing.
        let now: DateTime<Utc> = "2026-12-31T17:00:00Z".parse().unwrap();
        let (today, year_start) = business_dates(now);
        assert_eq!(today, "2027-01-01".parse::<NaiveDate>().unwrap());
        assert_eq!(
            year_start,
            "2026-12-31T16:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn phones_are_checked_loosely_but_checked() {
        assert_eq!(
            check_phone("p", " 138-1234-5678 ").unwrap(),
            "138-1234-5678"
        );
        assert!(check_phone("p", "1234").is_err());
        assert!(check_phone("p", "call me").is_err());
    }
}
