//! bondgate: warehouse management for bonded warehouses in cross-border
//! e-commerce import. See ARCHITECTURE.md for the map.

pub mod app;
pub mod config;
pub mod crypto;
pub mod customs;
pub mod device_health;
pub mod domain;
pub mod events;
pub mod gate;
pub mod http;
pub mod mqtt;
pub mod orders;
pub mod packing;
pub mod picking;
pub mod store;
