//! The store's errors: domain refusals carry the figures a person needs
//! ("insufficient stock for SKU X at bin Y: 3 available, 5 requested");
//! database faults carry nothing a client should see.

use crate::domain::{Bucket, LockState};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unknown SKU {0}")]
    UnknownSku(String),
    #[error("unknown bin {0}")]
    UnknownLocation(String),
    #[error("SKU {sku} has no batch '{batch}' at bin {bin}")]
    UnknownLot {
        sku: String,
        batch: String,
        bin: String,
    },
    #[error("batch '{batch}' of SKU {sku} expires on {stored}; this request says {given}")]
    LotExpiryMismatch {
        sku: String,
        batch: String,
        stored: String,
        given: String,
    },
    #[error(
        "insufficient {bucket} stock for SKU {sku} at bin {bin}: {have} {bucket}, {want} requested"
    )]
    InsufficientStock {
        sku: String,
        bin: String,
        bucket: Bucket,
        have: i64,
        want: i64,
    },
    #[error("not enough stock for {}", describe_shortfall(.0))]
    OrderShortfall(Vec<crate::store::types::LineShortfall>),
    #[error("reservation {0} does not exist")]
    LockNotFound(i64),
    #[error("reservation {id} is already {state}")]
    LockClosed { id: i64, state: LockState },
    #[error("{scope} {key} was already used for a different request")]
    IdempotencyConflict { scope: &'static str, key: String },
    #[error("{0} already exists with different content")]
    AlreadyExists(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    /// A refusal because of the state things are in, with a stable code
    /// (`task_closed`, `wrong_bin_kind`, `not_exited`, `manifest_closed`…).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("the database refused the change: {0}")]
    Constraint(String),
    #[error("the operation kept colliding with concurrent writers; retry it")]
    Contended,
    #[error("database error")]
    Db(#[from] sqlx::Error),
    /// The group-commit transaction this operation ran in did not commit
    /// (`store::batch`): nothing of it was kept, and it may be retried.
    #[error("the operation was not committed: {0}")]
    NotCommitted(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

fn describe_shortfall(lines: &[crate::store::types::LineShortfall]) -> String {
    lines
        .iter()
        .map(|l| {
            format!(
                "line {} (SKU {}: {} requested, {} available)",
                l.line_no, l.sku, l.requested, l.available
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub type StoreResult<T> = Result<T, StoreError>;
