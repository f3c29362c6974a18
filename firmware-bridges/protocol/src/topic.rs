//! The MQTT topic tree under `bondgate/{site}/` (DESIGN.md §4).
//!
//! Every bondgate topic has exactly five levels,
//! `bondgate/{site}/{group}/{id}/{leaf}`, so rendering is one `format!` and
//! parsing is one split; there is no escaping because every id is a validated
//! [`crate::id`] type. Code never builds topic strings by hand: it renders a
//! [`Topic`] to publish, renders a [`TopicKind`] filter to subscribe, and parses
//! what arrives.
//!
//! | topic                        | direction           | payload                         |
//! |------------------------------|---------------------|---------------------------------|
//! | `pda/{device}/scan`          | PDA → server        | [`crate::ScanMsg`]              |
//! | `pda/{device}/prompt`        | server → PDA        | [`crate::PromptMsg`]            |
//! | `scale/{station}/weight`     | scale bridge → srv  | [`crate::WeightMsg`]            |
//! | `printer/{station}/job`      | server → bridge     | [`crate::PrintJob`]: JSON header line + raw ESC/POS |
//! | `printer/{station}/status`   | bridge → server     | [`crate::PrinterReport`]: printed / failed / status |
//! | `gate/{gate}/command`        | server → bridge     | [`crate::GateCommand`]          |
//! | `gate/{gate}/state`          | bridge → server     | [`crate::GateState`]            |
//! | `gate/{gate}/heartbeat`      | server → bridge     | [`crate::Heartbeat`]            |
//! | `gate/{gate}/scan`           | gate scanner → srv  | [`crate::ScanMsg`]              |
//! | `gate/{gate}/result`         | server → gate display | [`crate::GateResultMsg`]      |
//! | `devices/{id}/status`        | device → all, retained | [`crate::DeviceStatus`]      |
//! | `devices/{id}/health`        | bridge → all, retained | [`crate::DeviceHealth`]      |

use crate::id::{DeviceId, GateId, IdError, Site, StationId};

/// First level of every bondgate topic. A fixed root keeps bondgate's traffic
/// apart from anything else on a shared broker and makes ACLs one-liners.
pub const ROOT: &str = "bondgate";

/// One concrete topic below `bondgate/{site}/`, with its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `pda/{device}/scan`: a PDA reports a scan.
    PdaScan {
        /// The PDA.
        device: DeviceId,
    },
    /// `pda/{device}/prompt`: the server answers a scan.
    PdaPrompt {
        /// The PDA.
        device: DeviceId,
    },
    /// `scale/{station}/weight`: a scale bridge reports a reading.
    ScaleWeight {
        /// The station the scale belongs to.
        station: StationId,
    },
    /// `printer/{station}/job`: a [`crate::PrintJob`] (id + ESC/POS bytes).
    PrinterJob {
        /// The station the printer belongs to.
        station: StationId,
    },
    /// `printer/{station}/status`: a printer bridge's [`crate::PrinterReport`].
    PrinterStatus {
        /// The station the printer belongs to.
        station: StationId,
    },
    /// `gate/{gate}/command`: the server pulses a gate relay.
    GateCommand {
        /// The gate.
        gate: GateId,
    },
    /// `gate/{gate}/state`: a gate bridge reports what the relay reads back.
    GateState {
        /// The gate.
        gate: GateId,
    },
    /// `gate/{gate}/heartbeat`: the server tells a gate bridge it is alive.
    GateHeartbeat {
        /// The gate.
        gate: GateId,
    },
    /// `devices/{id}/status`: retained `online`/`offline` of any device.
    DeviceStatus {
        /// The device.
        device: DeviceId,
    },
    /// `gate/{gate}/scan`: the gate's scanner reports a parcel.
    GateScan {
        /// The gate.
        gate: GateId,
    },
    /// `gate/{gate}/result`: the server's decision on that scan.
    GateResult {
        /// The gate.
        gate: GateId,
    },
    /// `devices/{id}/health`: retained state of the device behind a bridge.
    DeviceHealth {
        /// The bridge.
        device: DeviceId,
    },
}

/// The kind of a [`Topic`] without its id: what a subscription filter selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicKind {
    /// `pda/+/scan`
    PdaScan,
    /// `pda/+/prompt`
    PdaPrompt,
    /// `scale/+/weight`
    ScaleWeight,
    /// `printer/+/job`
    PrinterJob,
    /// `printer/+/status`
    PrinterStatus,
    /// `gate/+/command`
    GateCommand,
    /// `gate/+/state`
    GateState,
    /// `gate/+/heartbeat`
    GateHeartbeat,
    /// `devices/+/status`
    DeviceStatus,
    /// `gate/+/scan`
    GateScan,
    /// `gate/+/result`
    GateResult,
    /// `devices/+/health`
    DeviceHealth,
}

/// Why a string is not a bondgate topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The first level is not [`ROOT`].
    #[error("topic is not under \"bondgate/\"")]
    WrongRoot,
    /// Under the root, but not one of the topics in the tree.
    #[error(
        "topic is not one of bondgate's (expected bondgate/{{site}}/{{group}}/{{id}}/{{leaf}})"
    )]
    Unknown,
    /// A known topic whose site or id segment breaks the id rules.
    #[error("topic has a bad {segment} id: {segment} id {error}")]
    BadId {
        /// Which segment: "site", "device", "station" or "gate".
        segment: &'static str,
        /// What is wrong with it.
        error: IdError,
    },
}

impl TopicKind {
    /// Every kind, for iterating (e.g. a simulator subscribing to all of them).
    pub const ALL: [TopicKind; 12] = [
        TopicKind::PdaScan,
        TopicKind::PdaPrompt,
        TopicKind::ScaleWeight,
        TopicKind::PrinterJob,
        TopicKind::PrinterStatus,
        TopicKind::GateCommand,
        TopicKind::GateState,
        TopicKind::GateHeartbeat,
        TopicKind::DeviceStatus,
        TopicKind::GateScan,
        TopicKind::GateResult,
        TopicKind::DeviceHealth,
    ];

    /// The `(group, leaf)` levels around the id. This table is the single
    /// source of truth for topic names: render, parse and filters all use it.
    pub const fn levels(self) -> (&'static str, &'static str) {
        match self {
            TopicKind::PdaScan => ("pda", "scan"),
            TopicKind::PdaPrompt => ("pda", "prompt"),
            TopicKind::ScaleWeight => ("scale", "weight"),
            TopicKind::PrinterJob => ("printer", "job"),
            TopicKind::PrinterStatus => ("printer", "status"),
            TopicKind::GateCommand => ("gate", "command"),
            TopicKind::GateState => ("gate", "state"),
            TopicKind::GateHeartbeat => ("gate", "heartbeat"),
            TopicKind::DeviceStatus => ("devices", "status"),
            TopicKind::GateScan => ("gate", "scan"),
            TopicKind::GateResult => ("gate", "result"),
            TopicKind::DeviceHealth => ("devices", "health"),
        }
    }

    /// What the id segment names, for error messages.
    pub const fn id_name(self) -> &'static str {
        match self {
            TopicKind::PdaScan
            | TopicKind::PdaPrompt
            | TopicKind::DeviceStatus
            | TopicKind::DeviceHealth => "device",
            TopicKind::ScaleWeight | TopicKind::PrinterJob | TopicKind::PrinterStatus => "station",
            TopicKind::GateCommand
            | TopicKind::GateState
            | TopicKind::GateHeartbeat
            | TopicKind::GateScan
            | TopicKind::GateResult => "gate",
        }
    }

    /// Whether messages on this topic are published with the MQTT retain flag.
    ///
    /// Only device presence and health are retained, so a newcomer learns
    /// who is online, and what ails them, at once. Everything else must not be: a retained gate command would be
    /// replayed to a bridge on every reconnect and could open a gate long after
    /// the decision was made (PROTOCOLS.md §4–5).
    pub const fn retained(self) -> bool {
        matches!(self, TopicKind::DeviceStatus | TopicKind::DeviceHealth)
    }

    /// Subscription filter for this kind from every device of one site,
    /// e.g. `bondgate/sh-01/pda/+/scan`.
    pub fn filter(self, site: &Site) -> String {
        let (group, leaf) = self.levels();
        format!("{ROOT}/{site}/{group}/+/{leaf}")
    }

    /// Subscription filter for this kind across all sites,
    /// e.g. `bondgate/+/pda/+/scan` (a server or broker bridge serving many sites).
    pub fn filter_all_sites(self) -> String {
        let (group, leaf) = self.levels();
        format!("{ROOT}/+/{group}/+/{leaf}")
    }

    fn from_levels(group: &str, leaf: &str) -> Option<TopicKind> {
        TopicKind::ALL
            .into_iter()
            .find(|k| k.levels() == (group, leaf))
    }
}

impl Topic {
    /// Builds the topic of `kind` for the device, station or gate named `id`.
    pub fn new(kind: TopicKind, id: &str) -> Result<Topic, TopicError> {
        let bad = |error| TopicError::BadId {
            segment: kind.id_name(),
            error,
        };
        let device = || DeviceId::new(id).map_err(bad);
        let station = || StationId::new(id).map_err(bad);
        let gate = || GateId::new(id).map_err(bad);
        Ok(match kind {
            TopicKind::PdaScan => Topic::PdaScan { device: device()? },
            TopicKind::PdaPrompt => Topic::PdaPrompt { device: device()? },
            TopicKind::ScaleWeight => Topic::ScaleWeight {
                station: station()?,
            },
            TopicKind::PrinterJob => Topic::PrinterJob {
                station: station()?,
            },
            TopicKind::PrinterStatus => Topic::PrinterStatus {
                station: station()?,
            },
            TopicKind::GateCommand => Topic::GateCommand { gate: gate()? },
            TopicKind::GateState => Topic::GateState { gate: gate()? },
            TopicKind::GateHeartbeat => Topic::GateHeartbeat { gate: gate()? },
            TopicKind::DeviceStatus => Topic::DeviceStatus { device: device()? },
            TopicKind::GateScan => Topic::GateScan { gate: gate()? },
            TopicKind::GateResult => Topic::GateResult { gate: gate()? },
            TopicKind::DeviceHealth => Topic::DeviceHealth { device: device()? },
        })
    }

    /// The kind of this topic.
    pub fn kind(&self) -> TopicKind {
        match self {
            Topic::PdaScan { .. } => TopicKind::PdaScan,
            Topic::PdaPrompt { .. } => TopicKind::PdaPrompt,
            Topic::ScaleWeight { .. } => TopicKind::ScaleWeight,
            Topic::PrinterJob { .. } => TopicKind::PrinterJob,
            Topic::PrinterStatus { .. } => TopicKind::PrinterStatus,
            Topic::GateCommand { .. } => TopicKind::GateCommand,
            Topic::GateState { .. } => TopicKind::GateState,
            Topic::GateHeartbeat { .. } => TopicKind::GateHeartbeat,
            Topic::DeviceStatus { .. } => TopicKind::DeviceStatus,
            Topic::GateScan { .. } => TopicKind::GateScan,
            Topic::GateResult { .. } => TopicKind::GateResult,
            Topic::DeviceHealth { .. } => TopicKind::DeviceHealth,
        }
    }

    /// The device, station or gate id, as text.
    pub fn id(&self) -> &str {
        match self {
            Topic::PdaScan { device }
            | Topic::PdaPrompt { device }
            | Topic::DeviceStatus { device }
            | Topic::DeviceHealth { device } => device.as_str(),
            Topic::ScaleWeight { station }
            | Topic::PrinterJob { station }
            | Topic::PrinterStatus { station } => station.as_str(),
            Topic::GateCommand { gate }
            | Topic::GateState { gate }
            | Topic::GateHeartbeat { gate }
            | Topic::GateScan { gate }
            | Topic::GateResult { gate } => gate.as_str(),
        }
    }

    /// The full topic string, e.g. `bondgate/sh-01/gate/g1/command`.
    pub fn render(&self, site: &Site) -> String {
        let (group, leaf) = self.kind().levels();
        format!("{ROOT}/{site}/{group}/{}/{leaf}", self.id())
    }

    /// Parses a received topic. Exact inverse of [`Topic::render`]: whatever
    /// parses renders back to the same string, and filters (`+`, `#`) never parse.
    pub fn parse(s: &str) -> Result<(Site, Topic), TopicError> {
        let mut levels = s.split('/');
        if levels.next() != Some(ROOT) {
            return Err(TopicError::WrongRoot);
        }
        // Exactly four more levels; `split` on a too-long topic yields a fifth.
        let (Some(site), Some(group), Some(id), Some(leaf), None) = (
            levels.next(),
            levels.next(),
            levels.next(),
            levels.next(),
            levels.next(),
        ) else {
            return Err(TopicError::Unknown);
        };
        let site = Site::new(site).map_err(|error| TopicError::BadId {
            segment: "site",
            error,
        })?;
        let kind = TopicKind::from_levels(group, leaf).ok_or(TopicError::Unknown)?;
        Ok((site, Topic::new(kind, id)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site::new("sh-01").unwrap()
    }

    #[test]
    fn renders_every_kind() {
        let want = [
            "bondgate/sh-01/pda/x/scan",
            "bondgate/sh-01/pda/x/prompt",
            "bondgate/sh-01/scale/x/weight",
            "bondgate/sh-01/printer/x/job",
            "bondgate/sh-01/printer/x/status",
            "bondgate/sh-01/gate/x/command",
            "bondgate/sh-01/gate/x/state",
            "bondgate/sh-01/gate/x/heartbeat",
            "bondgate/sh-01/devices/x/status",
            "bondgate/sh-01/gate/x/scan",
            "bondgate/sh-01/gate/x/result",
            "bondgate/sh-01/devices/x/health",
        ];
        assert_eq!(want.len(), TopicKind::ALL.len());
        for (kind, want) in TopicKind::ALL.into_iter().zip(want) {
            let topic = Topic::new(kind, "x").unwrap();
            assert_eq!(topic.render(&site()), want);
            assert_eq!(Topic::parse(want), Ok((site(), topic)));
        }
    }

    #[test]
    fn renders_filters() {
        assert_eq!(
            TopicKind::PdaScan.filter(&site()),
            "bondgate/sh-01/pda/+/scan"
        );
        assert_eq!(
            TopicKind::DeviceStatus.filter_all_sites(),
            "bondgate/+/devices/+/status"
        );
    }

    #[test]
    fn only_device_status_and_health_are_retained() {
        let retained: Vec<_> = TopicKind::ALL
            .into_iter()
            .filter(|k| k.retained())
            .collect();
        assert_eq!(retained, [TopicKind::DeviceStatus, TopicKind::DeviceHealth]);
    }

    #[test]
    fn refuses_other_roots() {
        for s in [
            "",
            "bondgatex/s/pda/d/scan",
            "$SYS/broker/uptime",
            "/bondgate/s/pda/d/scan",
        ] {
            assert_eq!(Topic::parse(s), Err(TopicError::WrongRoot), "{s:?}");
        }
    }

    #[test]
    fn refuses_unknown_shapes() {
        for s in [
            "bondgate",
            "bondgate/s",
            "bondgate/s/pda/d",
            "bondgate/s/pda/d/scan/",
            "bondgate/s/pda/d/scan/extra",
            "bondgate/s/pda/d/weight",
            "bondgate/s/printer/p/scan",
            "bondgate/s/device/d/status",
            "bondgate/s/PDA/d/scan",
        ] {
            assert_eq!(Topic::parse(s), Err(TopicError::Unknown), "{s:?}");
        }
    }

    #[test]
    fn refuses_bad_ids_naming_the_segment() {
        let cases = [
            ("bondgate//pda/d/scan", "site", IdError::Empty),
            (
                "bondgate/+/pda/d/scan",
                "site",
                IdError::BadChar { ch: '+', at: 1 },
            ),
            (
                "bondgate/s/pda/+/scan",
                "device",
                IdError::BadChar { ch: '+', at: 1 },
            ),
            (
                "bondgate/s/scale/#/weight",
                "station",
                IdError::BadChar { ch: '#', at: 1 },
            ),
            (
                "bondgate/s/gate/g\u{0}/command",
                "gate",
                IdError::BadChar { ch: '\0', at: 2 },
            ),
            ("bondgate/s/devices//status", "device", IdError::Empty),
        ];
        for (s, segment, error) in cases {
            assert_eq!(
                Topic::parse(s),
                Err(TopicError::BadId { segment, error }),
                "{s:?}"
            );
        }
    }

    #[test]
    fn new_refuses_bad_ids() {
        let err = Topic::new(TopicKind::GateCommand, "g/1").unwrap_err();
        assert_eq!(err.to_string(), "topic has a bad gate id: gate id contains '/' at position 2; only letters, digits, '_' and '-' are allowed");
    }

    #[test]
    fn filters_are_not_topics() {
        for kind in TopicKind::ALL {
            assert!(Topic::parse(&kind.filter(&site())).is_err());
            assert!(Topic::parse(&kind.filter_all_sites()).is_err());
        }
        assert!(Topic::parse("bondgate/s/#").is_err());
    }

    #[test]
    fn id_and_kind_accessors() {
        let t = Topic::new(TopicKind::ScaleWeight, "pack-3").unwrap();
        assert_eq!(t.kind(), TopicKind::ScaleWeight);
        assert_eq!(t.id(), "pack-3");
        assert_eq!(TopicKind::ScaleWeight.id_name(), "station");
    }
}
