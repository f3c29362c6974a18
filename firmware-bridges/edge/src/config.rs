//! The part of every bridge's TOML file that is the same for all of them:
//!
//! ```toml
//! broker = "mqtt://bridge:secret@10.0.0.2:1883"  # mqtt://[user:password@]host[:port]
//! site = "sh-wgq"                # the server's site (topic root)
//! # device = "…"                 # presence id and MQTT client id; each bridge has a default
//! ```
//!
//! [`parse`] takes these three keys out of the file and hands the rest to
//! the bridge's own `#[serde(deny_unknown_fields)]` struct, so a misspelled
//! key is refused wherever it is, and no bridge declares them again.

use std::path::Path;

use bondgate_protocol::{BrokerAddr, DeviceId, Site};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Who the bridge is on MQTT. Constructible from code (the demo builds it
/// without a file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeConfig {
    /// The broker the server uses.
    pub broker: BrokerAddr,
    /// The topic root.
    pub site: Site,
    /// The id presence is published under, and the MQTT client id: a
    /// restarted bridge takes over its old session at the broker.
    pub device: DeviceId,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or a field missing or misspelled.
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// A field's value is out of bounds.
    #[error("{0}")]
    Field(String),
}

impl ConfigError {
    /// `name: why`, for a value that breaks its rules.
    pub fn field(name: &str, why: impl std::fmt::Display) -> ConfigError {
        ConfigError::Field(format!("{name}: {why}"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgeFile {
    broker: String,
    site: String,
    device: Option<String>,
}

/// The text of the file at `path`, for [`parse`].
pub fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Splits a bridge's file into the shared keys, validated as an
/// [`EdgeConfig`], and the bridge's own keys, parsed as `T` (which should
/// deny unknown fields). `default_device` names the device when the file
/// does not.
pub fn parse<T: DeserializeOwned>(
    text: &str,
    default_device: impl FnOnce(&T) -> String,
) -> Result<(EdgeConfig, T), ConfigError> {
    let mut own: toml::Table = toml::from_str(text)?;
    let mut shared = toml::Table::new();
    for key in ["broker", "site", "device"] {
        if let Some(value) = own.remove(key) {
            shared.insert(key.to_owned(), value);
        }
    }
    let edge: EdgeFile = shared.try_into()?;
    let own: T = own.try_into()?;
    let broker = BrokerAddr::parse(&edge.broker).map_err(|e| ConfigError::field("broker", e))?;
    let site = Site::new(&edge.site).map_err(|e| ConfigError::field("site", e))?;
    let device = edge.device.unwrap_or_else(|| default_device(&own));
    let device = DeviceId::new(&device).map_err(|e| ConfigError::field("device", e))?;
    Ok((
        EdgeConfig {
            broker,
            site,
            device,
        },
        own,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Own {
        gate: String,
    }

    #[test]
    fn shared_keys_are_taken_and_the_rest_is_the_bridges() {
        let (edge, own) = parse::<Own>(
            "broker = \"mqtt://u:p@h:1884\"\nsite = \"s1\"\ngate = \"g1\"\n",
            |o| format!("x-{}", o.gate),
        )
        .unwrap();
        assert_eq!(edge.device.as_str(), "x-g1");
        assert_eq!(edge.site.as_str(), "s1");
        assert_eq!((edge.broker.host(), edge.broker.port()), ("h", 1884));
        assert_eq!(own.gate, "g1");
        let (edge, _) = parse::<Own>(
            "broker = \"mqtt://h\"\nsite = \"s1\"\ngate = \"g1\"\ndevice = \"d-7\"\n",
            |_| unreachable!(),
        )
        .unwrap();
        assert_eq!(edge.device.as_str(), "d-7");
    }

    #[test]
    fn unknown_keys_missing_keys_and_bad_values_are_refused() {
        let cases = [
            "broker = \"mqtt://h\"\nsite = \"s1\"\ngate = \"g1\"\ngat = 1\n",
            "site = \"s1\"\ngate = \"g1\"\n",
            "broker = \"mqtt://h\"\ngate = \"g1\"\n",
            "broker = \"http://h\"\nsite = \"s1\"\ngate = \"g1\"\n",
            "broker = \"mqtt://h\"\nsite = \"s/1\"\ngate = \"g1\"\n",
            "broker = \"mqtt://h\"\nsite = \"s1\"\ngate = \"g1\"\ndevice = \"a b\"\n",
            "broker = 1\nsite = \"s1\"\ngate = \"g1\"\n",
        ];
        for text in cases {
            assert!(
                parse::<Own>(text, |o| o.gate.clone()).is_err(),
                "{text:?} accepted"
            );
        }
        let err = parse::<Own>(
            "broker = \"mqtt://h\"\nsite = \"s/1\"\ngate = \"g1\"\n",
            |o| o.gate.clone(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("site: "), "{err}");
    }
}
