//! What station devices report about themselves: scale readings on
//! `scale/{station}/weight`, and presence on `devices/{id}/status`.

use serde::{Deserialize, Serialize};

use super::{check_bytes, decode_json, encode_json, PayloadError, VERSION};

/// `scale/{station}/weight`: one reading from a scale bridge.
///
/// Integer grams, never a float: the bridge converts the scale's decimal
/// text (`+0000.512kg`) exactly, and comparisons against a parcel's expected
/// weight stay exact. Negative values are real (a tared scale lifted, an
/// underload) and are passed on; deciding what they mean is the server's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeightMsg {
    /// Net weight in grams.
    pub grams: i64,
    /// Whether the scale reported the reading as stable; only stable readings
    /// count towards a pack decision (DESIGN.md §4 "Serial").
    pub stable: bool,
    /// When the bridge read it, Unix milliseconds (bridge clock).
    pub ts: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightWire {
    v: u64,
    grams: i64,
    stable: bool,
    ts: i64,
}

impl WeightMsg {
    /// JSON bytes, `{"v":1,"grams":…,"stable":…,"ts":…}`.
    pub fn encode(&self) -> Vec<u8> {
        encode_json(&WeightWire {
            v: VERSION,
            grams: self.grams,
            stable: self.stable,
            ts: self.ts,
        })
    }

    /// Parses a reading. A float weight (`0.512`) is refused, not rounded.
    pub fn decode(bytes: &[u8]) -> Result<WeightMsg, PayloadError> {
        let w: WeightWire = decode_json(bytes)?;
        Ok(WeightMsg {
            grams: w.grams,
            stable: w.stable,
            ts: w.ts,
        })
    }
}

/// `devices/{id}/status`: retained presence, the plain text `online` or
/// `offline` (not JSON, so the broker's last-will message, set once at
/// connect, can carry it, and `mosquitto_sub` shows it as is). A device
/// publishes `online` after connecting and registers `offline` as its will.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceStatus {
    /// Connected.
    Online,
    /// Disconnected (usually published by the broker as the device's last will).
    Offline,
}

impl DeviceStatus {
    /// The text on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Online => "online",
            DeviceStatus::Offline => "offline",
        }
    }

    /// The bytes to publish (retained), or to register as the last will.
    pub fn encode(&self) -> Vec<u8> {
        self.as_str().as_bytes().to_vec()
    }

    /// Parses presence. Exact and case-sensitive, no surrounding whitespace:
    /// there is one spelling, so every reader agrees.
    pub fn decode(bytes: &[u8]) -> Result<DeviceStatus, PayloadError> {
        match check_bytes(bytes)? {
            "online" => Ok(DeviceStatus::Online),
            "offline" => Ok(DeviceStatus::Offline),
            _ => Err(PayloadError::UnknownStatus),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::PAYLOAD_BYTES_MAX;

    #[test]
    fn weight_round_trips_and_has_the_documented_shape() {
        let m = WeightMsg {
            grams: 512,
            stable: true,
            ts: 1_700_000_000_000,
        };
        assert_eq!(
            m.encode(),
            br#"{"v":1,"grams":512,"stable":true,"ts":1700000000000}"#
        );
        assert_eq!(WeightMsg::decode(&m.encode()), Ok(m));
        let tared = WeightMsg {
            grams: -3,
            stable: false,
            ts: 0,
        };
        assert_eq!(WeightMsg::decode(&tared.encode()), Ok(tared));
    }

    #[test]
    fn weight_refuses_floats() {
        for grams in ["0.512", "512.0", "5e2", "-0.0"] {
            let json = format!(r#"{{"v":1,"grams":{grams},"stable":true,"ts":0}}"#);
            let err = WeightMsg::decode(json.as_bytes()).unwrap_err();
            assert!(matches!(err, PayloadError::Shape { .. }), "{grams}: {err}");
            assert!(err.to_string().contains("floating point"), "{err}");
        }
    }

    #[test]
    fn weight_refuses_other_shapes() {
        for json in [
            r#"{"v":1,"grams":512,"stable":"yes","ts":0}"#,
            r#"{"v":1,"grams":512,"stable":1,"ts":0}"#,
            r#"{"v":1,"grams":512,"ts":0}"#,
            r#"{"v":1,"grams":512,"stable":true,"ts":0,"unit":"g"}"#,
            r#"{"v":1,"grams":"512","stable":true,"ts":0}"#,
            r#"{"v":1,"grams":9223372036854775808,"stable":true,"ts":0}"#,
        ] {
            let err = WeightMsg::decode(json.as_bytes()).unwrap_err();
            assert!(matches!(err, PayloadError::Shape { .. }), "{json}: {err}");
        }
    }

    #[test]
    fn weight_refuses_missing_version() {
        let err = WeightMsg::decode(br#"{"grams":512,"stable":true,"ts":0}"#).unwrap_err();
        assert_eq!(err, PayloadError::MissingVersion);
    }

    #[test]
    fn status_is_plain_text() {
        assert_eq!(DeviceStatus::Online.encode(), b"online");
        assert_eq!(DeviceStatus::Offline.encode(), b"offline");
        for s in [DeviceStatus::Online, DeviceStatus::Offline] {
            assert_eq!(DeviceStatus::decode(&s.encode()), Ok(s));
        }
    }

    #[test]
    fn status_refuses_other_spellings() {
        for text in [
            &b""[..],
            b"Online",
            b"ONLINE",
            b"online\n",
            b" offline",
            b"\"online\"",
            br#"{"v":1,"status":"online"}"#,
            b"on",
        ] {
            assert_eq!(
                DeviceStatus::decode(text),
                Err(PayloadError::UnknownStatus),
                "{text:?}"
            );
        }
        let err = DeviceStatus::decode(b"up").unwrap_err();
        assert_eq!(
            err.to_string(),
            "device status must be \"online\" or \"offline\""
        );
    }

    #[test]
    fn status_refuses_non_utf8_and_oversize() {
        assert_eq!(
            DeviceStatus::decode(b"onl\xffne"),
            Err(PayloadError::NotUtf8 { at: 3 })
        );
        let big = vec![b'o'; PAYLOAD_BYTES_MAX + 1];
        assert!(matches!(
            DeviceStatus::decode(&big),
            Err(PayloadError::TooLarge { .. })
        ));
    }
}
