//! Gate traffic: `gate/{gate}/command` (server → bridge), `gate/{gate}/state`
//! (bridge → server) and `gate/{gate}/heartbeat` (server → bridge).
//!
//! The rules come from how barrier controllers are built (PROTOCOLS.md §4):
//! the server only ever sends short, self-timed pulses, so a crashed server
//! cannot latch a gate open; each command has an id (the bridge executes an id
//! at most once) and an expiry (a command delayed in a queue or a broker is
//! dropped, not executed late); commands are never retained; and a bridge that
//! stops hearing heartbeats holds its gate closed.

use serde::{Deserialize, Serialize};

use super::{decode_json, encode_json, FieldError, PayloadError, VERSION};
use crate::id::check_id;

/// Longest relay pulse, in milliseconds. A barrier controller needs a pulse of
/// a few hundred ms to latch its own open cycle; ten seconds is already far
/// more than any needs, and anything longer starts to look like holding the
/// gate open from the server, which the design forbids.
pub const PULSE_MS_MAX: u32 = 10_000;

/// A command id: 1..=64 characters of `A-Z a-z 0-9 _ -`, the same rules as
/// topic ids (a UUID or ULID fits). Kept that strict because the bridge logs
/// it and keys its "already executed" memory on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommandId(String);

impl CommandId {
    /// Validates a command id.
    pub fn new(id: &str) -> Result<CommandId, FieldError> {
        check_id(id).map_err(|error| FieldError::BadId {
            field: "command id",
            error,
        })?;
        Ok(CommandId(id.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CommandId {
    type Error = FieldError;
    fn try_from(id: String) -> Result<CommandId, FieldError> {
        check_id(&id).map_err(|error| FieldError::BadId {
            field: "command id",
            error,
        })?;
        Ok(CommandId(id))
    }
}

impl From<CommandId> for String {
    fn from(id: CommandId) -> String {
        id.0
    }
}

/// A relay pulse length: 1..=[`PULSE_MS_MAX`] milliseconds. Zero is refused
/// because some relay boards read "0" as "on until told otherwise".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct PulseMs(u32);

impl PulseMs {
    /// Validates a pulse length.
    pub fn new(ms: u32) -> Result<PulseMs, FieldError> {
        if ms == 0 || ms > PULSE_MS_MAX {
            return Err(FieldError::OutOfRange {
                field: "pulse_ms",
                value: i64::from(ms),
                min: 1,
                max: i64::from(PULSE_MS_MAX),
            });
        }
        Ok(PulseMs(ms))
    }

    /// The length in milliseconds.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for PulseMs {
    type Error = FieldError;
    fn try_from(ms: u32) -> Result<PulseMs, FieldError> {
        PulseMs::new(ms)
    }
}

impl From<PulseMs> for u32 {
    fn from(p: PulseMs) -> u32 {
        p.0
    }
}

/// Which input of the barrier controller to pulse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateCmd {
    /// Pulse the "open" input; the controller closes by itself after the vehicle.
    Open,
    /// Pulse the "close" input (e.g. a guard cancelling an open).
    Close,
}

/// `gate/{gate}/command`: pulse one input of a gate's relay. QoS 1, never retained.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GateCommand {
    /// The server's command sequence for this gate.
    pub seq: u64,
    /// Unique id; the bridge executes each id at most once.
    pub id: CommandId,
    /// What to pulse.
    pub cmd: GateCmd,
    /// How long to pulse.
    pub pulse_ms: PulseMs,
    /// Unix milliseconds after which the bridge must drop the command unexecuted.
    pub expires_at: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandWire {
    v: u64,
    seq: u64,
    id: String,
    cmd: GateCmd,
    pulse_ms: u32,
    expires_at: i64,
}

impl GateCommand {
    /// JSON bytes, `{"v":1,"seq":…,"id":…,"cmd":…,"pulse_ms":…,"expires_at":…}`.
    pub fn encode(&self) -> Vec<u8> {
        encode_json(&CommandWire {
            v: VERSION,
            seq: self.seq,
            id: self.id.as_str().to_owned(),
            cmd: self.cmd,
            pulse_ms: self.pulse_ms.get(),
            expires_at: self.expires_at,
        })
    }

    /// Parses and validates a command. Expiry is not judged here (decoding
    /// has no clock): call [`GateCommand::is_expired`] before acting.
    pub fn decode(bytes: &[u8]) -> Result<GateCommand, PayloadError> {
        let w: CommandWire = decode_json(bytes)?;
        Ok(GateCommand {
            seq: w.seq,
            id: CommandId::try_from(w.id)?,
            cmd: w.cmd,
            pulse_ms: PulseMs::new(w.pulse_ms)?,
            expires_at: w.expires_at,
        })
    }

    /// Whether the command must be dropped at `now_millis` (Unix ms). The
    /// expiry instant itself counts as expired: when in doubt, a gate stays shut.
    pub fn is_expired(&self, now_millis: i64) -> bool {
        now_millis >= self.expires_at
    }
}

/// What the relay reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateStateKind {
    /// The gate is open (or its open pulse is active).
    Open,
    /// The gate is closed.
    Closed,
    /// The bridge cannot tell or cannot drive the relay; treat as not open.
    Fault,
}

/// `gate/{gate}/state`: a bridge reports its gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GateState {
    /// The bridge's report sequence, so the server can ignore stale reports.
    pub seq: u64,
    /// What the relay reads back.
    pub state: GateStateKind,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateWire {
    v: u64,
    seq: u64,
    state: GateStateKind,
}

impl GateState {
    /// JSON bytes, `{"v":1,"seq":…,"state":…}`.
    pub fn encode(&self) -> Vec<u8> {
        encode_json(&StateWire {
            v: VERSION,
            seq: self.seq,
            state: self.state,
        })
    }

    /// Parses a state report.
    pub fn decode(bytes: &[u8]) -> Result<GateState, PayloadError> {
        let w: StateWire = decode_json(bytes)?;
        Ok(GateState {
            seq: w.seq,
            state: w.state,
        })
    }
}

/// `gate/{gate}/heartbeat`: the server is alive. A bridge that misses them
/// closes its gate and keeps it closed until they resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Heartbeat {
    /// The server's heartbeat sequence.
    pub seq: u64,
    /// When it was sent, Unix milliseconds (server clock).
    pub ts: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeartbeatWire {
    v: u64,
    seq: u64,
    ts: i64,
}

impl Heartbeat {
    /// JSON bytes, `{"v":1,"seq":…,"ts":…}`.
    pub fn encode(&self) -> Vec<u8> {
        encode_json(&HeartbeatWire {
            v: VERSION,
            seq: self.seq,
            ts: self.ts,
        })
    }

    /// Parses a heartbeat.
    pub fn decode(bytes: &[u8]) -> Result<Heartbeat, PayloadError> {
        let w: HeartbeatWire = decode_json(bytes)?;
        Ok(Heartbeat {
            seq: w.seq,
            ts: w.ts,
        })
    }
}

/// What the gate's screen and scanner are told of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateOutcome {
    /// The output confirmed the pulse: the parcel may pass.
    Open,
    /// Refused: the reason says why.
    Refused,
    /// Granted, but the output did not confirm: the gate counts as closed.
    Fault,
}

/// `gate/{gate}/result`: the server's decision on a `gate/{gate}/scan`,
/// echoing the scan's `seq`. QoS 1, never retained.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GateResultMsg {
    /// The scan's sequence number (0 answers a malformed scan).
    pub seq: u64,
    /// What happened.
    pub outcome: GateOutcome,
    /// A stable reason code, e.g. `released`, `customs.pending`.
    pub code: String,
    /// The guard's text in English.
    pub text_en: String,
    /// The guard's text in Chinese.
    pub text_zh: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultWire {
    v: u64,
    seq: u64,
    outcome: GateOutcome,
    code: String,
    text_en: String,
    text_zh: String,
}

impl GateResultMsg {
    /// JSON bytes, `{"v":1,"seq":…,"outcome":…,"code":…,"text_en":…,"text_zh":…}`.
    pub fn encode(&self) -> Vec<u8> {
        encode_json(&ResultWire {
            v: VERSION,
            seq: self.seq,
            outcome: self.outcome,
            code: self.code.clone(),
            text_en: self.text_en.clone(),
            text_zh: self.text_zh.clone(),
        })
    }

    /// Parses a result.
    pub fn decode(bytes: &[u8]) -> Result<GateResultMsg, PayloadError> {
        let w: ResultWire = decode_json(bytes)?;
        Ok(GateResultMsg {
            seq: w.seq,
            outcome: w.outcome,
            code: w.code,
            text_en: w.text_en,
            text_zh: w.text_zh,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::IdError;

    const GOOD: &str =
        r#"{"v":1,"seq":3,"id":"c-42","cmd":"open","pulse_ms":800,"expires_at":1700000005000}"#;

    fn command(json: &str) -> Result<GateCommand, PayloadError> {
        GateCommand::decode(json.as_bytes())
    }

    #[test]
    fn result_round_trips() {
        let r = GateResultMsg {
            seq: 9,
            outcome: GateOutcome::Refused,
            code: "customs.pending".into(),
            text_en: "not released".into(),
            text_zh: "未放行".into(),
        };
        assert_eq!(GateResultMsg::decode(&r.encode()).unwrap(), r);
        assert!(GateResultMsg::decode(br#"{"v":1,"seq":1}"#).is_err());
    }

    #[test]
    fn command_round_trips_and_has_the_documented_shape() {
        let m = command(GOOD).unwrap();
        assert_eq!(m.id.as_str(), "c-42");
        assert_eq!(m.cmd, GateCmd::Open);
        assert_eq!(m.pulse_ms.get(), 800);
        assert_eq!(m.encode(), GOOD.as_bytes());
    }

    #[test]
    fn command_refuses_zero_pulse() {
        let err = command(&GOOD.replace("800", "0")).unwrap_err();
        assert_eq!(
            err,
            PayloadError::Field(FieldError::OutOfRange {
                field: "pulse_ms",
                value: 0,
                min: 1,
                max: 10_000
            })
        );
        assert_eq!(
            err.to_string(),
            "pulse_ms must be between 1 and 10000, got 0"
        );
    }

    #[test]
    fn command_refuses_long_pulse() {
        assert!(command(&GOOD.replace("800", "10000")).is_ok());
        for ms in ["10001", "4294967295"] {
            let err = command(&GOOD.replace("800", ms)).unwrap_err();
            assert!(
                matches!(err, PayloadError::Field(FieldError::OutOfRange { .. })),
                "{ms}: {err}"
            );
        }
        // Beyond u32 (or negative) is a shape error: the number does not fit the field.
        for ms in ["4294967296", "-1", "800.5"] {
            let err = command(&GOOD.replace("800", ms)).unwrap_err();
            assert!(matches!(err, PayloadError::Shape { .. }), "{ms}: {err}");
        }
    }

    #[test]
    fn command_refuses_bad_ids() {
        let bad = |s: &str| command(&GOOD.replace("c-42", s)).unwrap_err();
        assert_eq!(
            bad(""),
            PayloadError::Field(FieldError::BadId {
                field: "command id",
                error: IdError::Empty
            })
        );
        assert_eq!(
            bad("c/42").to_string(),
            "command id contains '/' at position 2; only letters, digits, '_' and '-' are allowed"
        );
        assert!(matches!(
            bad(&"c".repeat(65)),
            PayloadError::Field(FieldError::BadId { .. })
        ));
    }

    #[test]
    fn command_refuses_other_cmds_and_duplicates() {
        for cmd in ["hold", "OPEN", "latch"] {
            let err = command(&GOOD.replace("open", cmd)).unwrap_err();
            assert!(err.to_string().contains("unknown variant"), "{err}");
        }
        // Two readers must never disagree on what a command says.
        let twice = GOOD.replace(r#""cmd":"open""#, r#""cmd":"close","cmd":"open""#);
        assert!(command(&twice)
            .unwrap_err()
            .to_string()
            .contains("duplicate field `cmd`"));
    }

    #[test]
    fn command_requires_an_expiry() {
        let err = command(&GOOD.replace(r#","expires_at":1700000005000"#, "")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "message has the wrong shape: missing field `expires_at`"
        );
    }

    #[test]
    fn expiry_is_inclusive() {
        let m = command(GOOD).unwrap();
        assert!(!m.is_expired(1_700_000_004_999));
        assert!(m.is_expired(1_700_000_005_000));
        assert!(m.is_expired(i64::MAX));
        assert!(!m.is_expired(i64::MIN));
    }

    #[test]
    fn state_and_heartbeat_have_the_documented_shape() {
        let s = GateState {
            seq: 9,
            state: GateStateKind::Fault,
        };
        assert_eq!(s.encode(), br#"{"v":1,"seq":9,"state":"fault"}"#);
        assert_eq!(GateState::decode(&s.encode()), Ok(s));
        let h = Heartbeat { seq: 1, ts: -1 };
        assert_eq!(h.encode(), br#"{"v":1,"seq":1,"ts":-1}"#);
        assert_eq!(Heartbeat::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn state_refuses_unknown_states_and_fields() {
        for json in [
            r#"{"v":1,"seq":1,"state":"ajar"}"#,
            r#"{"v":1,"seq":1,"state":"open","pulse_ms":5}"#,
            r#"{"v":1,"seq":1}"#,
        ] {
            assert!(
                matches!(
                    GateState::decode(json.as_bytes()),
                    Err(PayloadError::Shape { .. })
                ),
                "{json}"
            );
        }
    }

    #[test]
    fn heartbeat_refuses_other_versions() {
        let err = Heartbeat::decode(br#"{"v":2,"seq":1,"ts":0}"#).unwrap_err();
        assert_eq!(err, PayloadError::UnsupportedVersion { found: "2".into() });
    }

    #[test]
    fn newtypes_validate_through_serde() {
        assert!(serde_json::from_str::<PulseMs>("0").is_err());
        assert_eq!(serde_json::from_str::<PulseMs>("500").unwrap().get(), 500);
        assert!(serde_json::from_str::<CommandId>(r#""a b""#).is_err());
    }
}
