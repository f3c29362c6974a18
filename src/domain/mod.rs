//! The domain core: the rules of a bonded warehouse with no I/O.
//!
//! Nothing in here talks to a database, a socket, a clock or a file; a test in
//! `tests/` checks that this module imports none of tokio, sqlx, axum or
//! serde_json. Adapters (`store`, `http`) depend on this module, never the
//! reverse.

pub mod codes;
pub mod fefo;
pub mod gate;
pub mod idcard;
pub mod ledger;
pub mod manifest;
pub mod money;
pub mod order;
pub mod packing;
pub mod picking;
pub mod reconcile;
pub mod role;

pub use codes::{BatchNo, BinCode, DocumentNo, Quantity, SkuCode};
pub use idcard::IdNumber;
pub use ledger::{Balance, Bucket, LedgerError, LockState, MovementKind};
pub use money::Money;
pub use order::{OrderState, TradeMode};
pub use role::Role;
