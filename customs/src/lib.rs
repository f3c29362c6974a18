//! # bondgate-customs
//!
//! What customs says about a 清单, and whether the gate may open for it.
//!
//! **Bytes in, values out.** Nothing here does I/O, reads a clock or draws
//! random numbers: callers pass `now` ([`sign::verify`]) and key bytes
//! ([`sign::ed25519_signing_key`]). Parsing never panics on any input
//! (fuzzed by property tests).
//!
//! - [`receipt`]: [`parse`] CEB622 / CEB624 / CEB900 receipts, bare or in a
//!   DXP envelope, refusing anything malformed, oversized, too deep, with a
//!   DOCTYPE, or missing a required field.
//! - [`encode`]: the reverse, for the customs gateway simulator.
//! - [`sign`]: the customs gateway's signature over the exact bytes
//!   (Ed25519 or HMAC-SHA256, rotatable [`sign::Keyring`]).
//! - [`status`]: [`ReturnStatus`] and its [`StatusClass`], [`ReturnTime`].
//! - [`state`]: [`CustomsState`] folded from a 清单's receipts in
//!   `returnTime` order, and [`gate_allows`].
//!
//! Facts come from `CUSTOMS.md`; where a fact is unverified the item says so
//! (see [`receipt::InvtCancelReturn::is_success`]).
//!
//! ## Example
//!
//! ```
//! use bondgate_customs::{parse, Body, CustomsState, Receipt, gate_allows};
//!
//! let xml = r#"<CEB622Message xmlns="http://www.chinaport.gov.cn/ceb" guid="A" version="1.0">
//!   <InventoryReturn>
//!     <copNo>WH20250601001</copNo>
//!     <returnStatus>800</returnStatus>
//!     <returnTime>20250601101500123</returnTime>
//!     <returnInfo>[Code:2600;Desc:放行]</returnInfo>
//!   </InventoryReturn>
//! </CEB622Message>"#;
//! let message = parse(xml.as_bytes()).unwrap();
//! let Body::Ceb622(returns) = message.body else { panic!() };
//! let receipts: Vec<Receipt> = returns.iter().map(|r| Receipt::inventory(r, 1)).collect();
//! assert!(gate_allows(&CustomsState::from_receipts(&receipts)).is_ok());
//! ```

#![warn(missing_docs)]

pub mod encode;
pub mod receipt;
pub mod sign;
pub mod state;
pub mod status;
mod xml;

pub use encode::encode;
pub use receipt::{
    parse, Body, InventoryReturn, InvtCancelReturn, Message, MessageReturn, ParseError, TransInfo,
};
pub use state::{gate_allows, CustomsState, Receipt, Refusal};
pub use status::{ReturnStatus, ReturnTime, StatusClass};
pub use xml::{CEB_NS, DXP_NS};

#[cfg(test)]
mod tests {
    /// The crate stays pure: no runtime, transport, database, clock or
    /// random-source crate among its dependencies.
    #[test]
    fn no_io_dependencies() {
        let manifest = include_str!("../Cargo.toml");
        let deps = manifest
            .split("[dependencies]")
            .nth(1)
            .and_then(|s| s.split("[dev-dependencies]").next())
            .expect("a [dependencies] table");
        let names: Vec<&str> = deps
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split('=').next())
            .map(str::trim)
            .collect();
        assert!(names.contains(&"quick-xml"), "{names:?}");
        for name in &names {
            for forbidden in [
                "tokio",
                "axum",
                "sqlx",
                "rumqtt",
                "serde_json",
                "rand",
                "reqwest",
            ] {
                assert!(
                    !name.starts_with(forbidden),
                    "bondgate-customs must not depend on {name}"
                );
            }
        }
        assert!(!deps.contains("\"clock\""), "chrono without its clock");
    }
}
