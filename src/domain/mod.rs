//! The domain core: the rules of a bonded warehouse with no I/O.
//!
//! Nothing in here talks to a database, a socket, a clock or a file; a test in
//! `tests/` checks that this module imports none of tokio, sqlx, axum or
//! serde_json. Adapters (`store`, `http`) depend on this module, never the
//! reverse.

pub mod codes;
pub mod ledger;
pub mod reconcile;
pub mod role;

pub use codes::{BatchNo, BinCode, DocumentNo, Quantity, SkuCode};
pub use ledger::{Balance, Bucket, LedgerError, LockState, MovementKind};
pub use role::Role;
