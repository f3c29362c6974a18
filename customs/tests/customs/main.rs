//! The one integration-test binary of `bondgate-customs`.

mod fuzz;
mod receipts;
mod samples;
mod signatures;
mod state;
