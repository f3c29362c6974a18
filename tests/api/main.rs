//! The one integration-test binary: the store conformance suite on both
//! backends, property tests against the domain model, the HTTP API through
//! a real server, concurrency over HTTP, and the real binary.

mod binary;
mod bridge_health;
mod concurrency;
mod conformance;
mod customs;
mod customs_gw;
mod dashboard;
mod demo;
mod domain_purity;
mod gate;
mod gate_output;
mod helpers;
mod http_api;
mod http_screens;
mod inspection;
mod ledger_props;
mod manifest;
mod mqtt;
mod orders;
mod packing;
mod pda_mqtt;
mod picking;
