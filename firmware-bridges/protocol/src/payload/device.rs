//! What station devices report about themselves: scale readings on
//! `scale/{station}/weight`, presence on `devices/{id}/status`, and the
//! health of the device behind a bridge on `devices/{id}/health`.

use serde::{Deserialize, Serialize};

use super::{check_bytes, decode_json, encode_json, PayloadError, PromptText, VERSION};

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

/// `devices/{id}/health`, retained: how the device behind a bridge (a
/// scale, a scanner on a serial port) is doing. Presence
/// ([`DeviceStatus`]) says whether the bridge is connected; this says
/// whether what it bridges works, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceHealth {
    /// The device is there and talking (its port is open and data arrives).
    pub ok: bool,
    /// The last error seen, kept after recovery so whoever looks later
    /// still sees what happened (at most 160 characters, one line).
    pub last_error: Option<PromptText>,
    /// Input refused since the bridge started: frames that failed to
    /// decode, lines that are no barcode.
    pub bad_input: u64,
    /// Messages dropped rather than sent late since the bridge started
    /// (its offline buffer full, or too old to send).
    pub dropped: u64,
    /// When the bridge wrote the report, Unix milliseconds (bridge clock).
    pub ts: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthWire {
    v: u64,
    ok: bool,
    last_error: Option<PromptText>,
    bad_input: u64,
    dropped: u64,
    ts: i64,
}

impl DeviceHealth {
    /// JSON bytes,
    /// `{"v":1,"ok":…,"last_error":…|null,"bad_input":…,"dropped":…,"ts":…}`.
    pub fn encode(&self) -> Vec<u8> {
        encode_json(&HealthWire {
            v: VERSION,
            ok: self.ok,
            last_error: self.last_error.clone(),
            bad_input: self.bad_input,
            dropped: self.dropped,
            ts: self.ts,
        })
    }

    /// Parses a health report.
    pub fn decode(bytes: &[u8]) -> Result<DeviceHealth, PayloadError> {
        let w: HealthWire = decode_json(bytes)?;
        Ok(DeviceHealth {
            ok: w.ok,
            last_error: w.last_error,
            bad_input: w.bad_input,
            dropped: w.dropped,
            ts: w.ts,
        })
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

    #[test]
    fn health_round_trips_and_has_the_documented_shape() {
        let h = DeviceHealth {
            ok: false,
            last_error: Some(PromptText::clamp("/dev/ttyUSB0 closed\n(unplugged?)")),
            bad_input: 3,
            dropped: 0,
            ts: 5,
        };
        assert_eq!(
            h.encode(),
            br#"{"v":1,"ok":false,"last_error":"/dev/ttyUSB0 closed (unplugged?)","bad_input":3,"dropped":0,"ts":5}"#
        );
        assert_eq!(DeviceHealth::decode(&h.encode()), Ok(h));
        let fine = DeviceHealth {
            ok: true,
            last_error: None,
            bad_input: 0,
            dropped: 0,
            ts: 0,
        };
        assert_eq!(DeviceHealth::decode(&fine.encode()), Ok(fine));
    }

    #[test]
    fn health_refuses_bad_text_and_shapes() {
        for json in [
            r#"{"v":1,"ok":true,"last_error":"a\u0007b","bad_input":0,"dropped":0,"ts":0}"#,
            r#"{"v":1,"ok":true,"last_error":null,"bad_input":-1,"dropped":0,"ts":0}"#,
            r#"{"v":1,"ok":true,"bad_input":0,"dropped":0,"ts":0,"x":1}"#,
            r#"{"v":1,"ok":"yes","last_error":null,"bad_input":0,"dropped":0,"ts":0}"#,
        ] {
            assert!(DeviceHealth::decode(json.as_bytes()).is_err(), "{json}");
        }
    }
}
