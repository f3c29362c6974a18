//! The in-process event hub the screens listen to (`GET /api/v1/events`).
//!
//! Services publish what happened — a gate decision, a gate's state, a
//! device going on- or offline, a scale reading, a pack, a pick scan — and
//! every connected screen receives it. Publishing never waits: the hub is a
//! bounded `tokio::sync::broadcast` channel, so a screen that cannot keep up
//! loses its oldest events and is told to `resync` (refetch what it shows)
//! instead of slowing the gate or the PDA down.
//!
//! Events are facts the screens could also read from the API, and each
//! names the roles that may read that API: a listener only receives the
//! events its roles admit, so the stream leaks nothing the endpoints would
//! not show.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{broadcast, watch, Semaphore};
use utoipa::ToSchema;

use crate::domain::Role;
use crate::store::{GateDecisionView, PackageView, ScanAnswer};

/// Events held for slow listeners. A screen is a few events per second at
/// most; 1024 covers a burst of a full wave of scans while a tab is busy.
pub const EVENTS_BUFFER: usize = 1024;

/// Screens connected at once. Every screen holds one stream; a warehouse
/// has tens of them. The bound keeps a misbehaving client from holding
/// unbounded tasks and buffers.
pub const LISTENERS_MAX: usize = 256;

/// A scale sends readings 5–20 times a second; screens need a few. A
/// reading is published when it changes, and the same reading again no
/// more often than this.
pub const SCALE_REPEAT_MS: i64 = 1000;

const GUARDS: &[Role] = &[Role::Guard, Role::Manager, Role::Admin];
const PICKERS: &[Role] = &[Role::Picker, Role::Manager, Role::Admin];
const PACKERS: &[Role] = &[Role::Packer, Role::Manager, Role::Admin];
const MANAGERS: &[Role] = &[Role::Manager, Role::Admin];

/// One thing that happened, as a screen receives it: the SSE `event:` name
/// is the `type`, the `data:` line this JSON.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A gate scan was decided (refused, or its output answered), also
    /// from the gate's MQTT scanner and the sweeper.
    GateDecision {
        #[serde(flatten)]
        decision: Box<GateDecisionView>,
    },
    /// A gate output's state: after a pulse (`closed` or `fault`), or as
    /// its bridge reported it (`open`, `closed`, `fault`).
    GateState {
        gate: String,
        /// `open`, `closed` or `fault`.
        state: String,
        /// The fault, when `state` is `fault`.
        fault: Option<String>,
        /// `pulse` (the server's own check) or `bridge` (the bridge's report).
        source: String,
        at: DateTime<Utc>,
    },
    /// A device (PDA, bridge) came online or went offline on the broker.
    Device {
        site: String,
        device: String,
        online: bool,
        at: DateTime<Utc>,
    },
    /// What a pack station's scale shows.
    Scale {
        station: String,
        online: bool,
        grams: Option<i64>,
        stable: bool,
        at: DateTime<Utc>,
    },
    /// A parcel was weighed at a pack station: `packed` or `mismatch`.
    Pack {
        result: String,
        package: Box<PackageView>,
    },
    /// A PDA scan was answered (MQTT or the browser PDA page).
    PickScan {
        device: String,
        /// The browser page's user; None for an MQTT PDA (badge login).
        user: Option<String>,
        #[serde(flatten)]
        answer: ScanAnswer,
    },
    /// Something a manager's screen shows changed: a write went through the
    /// API (`what` is its resource: `orders`, `receipts`, `inventory`,
    /// `waves`, `customs`, …), or the customs inbox or the automatic waves
    /// did one. Carries no data: the screen refetches what it shows.
    Changed { what: String, at: DateTime<Utc> },
    /// Sent to one listener that fell behind: events were lost, refetch.
    Resync { missed: u64 },
}

impl Event {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::GateDecision { .. } => "gate_decision",
            Event::GateState { .. } => "gate_state",
            Event::Device { .. } => "device",
            Event::Scale { .. } => "scale",
            Event::Pack { .. } => "pack",
            Event::PickScan { .. } => "pick_scan",
            Event::Changed { .. } => "changed",
            Event::Resync { .. } => "resync",
        }
    }

    /// Whether `roles` may receive this event: the roles of the endpoint
    /// that shows the same facts.
    pub fn visible_to(&self, username: &str, roles: &[Role]) -> bool {
        let any = |allowed: &[Role]| roles.iter().any(|r| allowed.contains(r));
        match self {
            Event::GateDecision { .. } | Event::GateState { .. } => any(GUARDS),
            Event::Device { .. } | Event::Changed { .. } => any(MANAGERS),
            Event::Scale { .. } | Event::Pack { .. } => any(PACKERS),
            // A picker hears their own scans; managers hear every PDA.
            Event::PickScan { user, .. } => {
                any(MANAGERS) || (any(PICKERS) && user.as_deref() == Some(username))
            }
            Event::Resync { .. } => true,
        }
    }
}

/// The hub. Cheap to clone; every clone publishes to the same listeners.
#[derive(Clone)]
pub struct EventHub {
    tx: broadcast::Sender<Arc<Event>>,
    listeners: Arc<Semaphore>,
    /// Turns true when the server stops: open streams end, so a graceful
    /// shutdown is not held up by screens that never hang up.
    stop: Option<watch::Receiver<bool>>,
}

impl EventHub {
    pub fn new(stop: watch::Receiver<bool>) -> EventHub {
        EventHub {
            tx: broadcast::channel(EVENTS_BUFFER).0,
            listeners: Arc::new(Semaphore::new(LISTENERS_MAX)),
            stop: Some(stop),
        }
    }

    /// A hub with no stop signal (for services built by hand, in tools and
    /// tests): its listeners end only when dropped.
    pub fn detached() -> EventHub {
        EventHub {
            tx: broadcast::channel(EVENTS_BUFFER).0,
            listeners: Arc::new(Semaphore::new(LISTENERS_MAX)),
            stop: None,
        }
    }

    /// Publishes without waiting; with no listener the event is dropped.
    pub fn publish(&self, event: Event) {
        metrics::counter!("bondgate_events_total", "type" => event.name()).increment(1);
        let _ = self.tx.send(Arc::new(event));
    }

    /// A new listener, or None when [`LISTENERS_MAX`] are connected.
    pub fn subscribe(&self) -> Option<Listener> {
        let permit = self.listeners.clone().try_acquire_owned().ok()?;
        Some(Listener {
            rx: self.tx.subscribe(),
            stop: self.stop.clone(),
            _permit: permit,
        })
    }
}

/// One screen's subscription; holds a listener slot until dropped.
pub struct Listener {
    rx: broadcast::Receiver<Arc<Event>>,
    stop: Option<watch::Receiver<bool>>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Listener {
    /// The next event, a `resync` if this listener fell behind, or None
    /// once the server stops.
    pub async fn next(&mut self) -> Option<Arc<Event>> {
        if self.stop.as_ref().is_some_and(|s| *s.borrow()) {
            return None;
        }
        let stopped = async {
            match &mut self.stop {
                // A dropped sender is a stopped server too.
                Some(s) => {
                    let _ = s.wait_for(|stop| *stop).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            r = self.rx.recv() => match r {
                Ok(e) => Some(e),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    metrics::counter!("bondgate_events_lagged_total").increment(1);
                    Some(Arc::new(Event::Resync { missed }))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            },
            _ = stopped => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(online: bool) -> Event {
        Event::Device {
            site: "SH01".into(),
            device: "PDA-1".into(),
            online,
            at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_lagging_listener_gets_resync_and_never_blocks_publishers() {
        let hub = EventHub::detached();
        let mut slow = hub.subscribe().unwrap();
        for i in 0..(EVENTS_BUFFER + 10) {
            hub.publish(device(i % 2 == 0));
        }
        match slow.next().await.as_deref() {
            Some(Event::Resync { missed }) => assert_eq!(*missed, 10),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            slow.next().await.as_deref(),
            Some(Event::Device { .. })
        ));
    }

    #[tokio::test]
    async fn listeners_are_bounded_and_end_when_the_server_stops() {
        let (tx, rx) = watch::channel(false);
        let hub = EventHub::new(rx);
        let mut held: Vec<Listener> = (0..LISTENERS_MAX)
            .map(|_| hub.subscribe().unwrap())
            .collect();
        assert!(hub.subscribe().is_none());
        held.pop();
        let mut l = hub.subscribe().unwrap();
        tx.send(true).unwrap();
        assert!(l.next().await.is_none());
    }

    #[test]
    fn events_reach_only_the_roles_that_may_read_them() {
        let d = device(true);
        assert!(d.visible_to("m", &[Role::Manager]));
        assert!(!d.visible_to("p", &[Role::Picker]));
        let scan = Event::PickScan {
            device: "web-1".into(),
            user: Some("pia".into()),
            answer: ScanAnswer {
                seq: 1,
                ok: true,
                tone: bondgate_protocol::Tone::Ok,
                text: "Go to [A-01]".into(),
                text_zh: Some("请去 [A-01]".into()),
                next: bondgate_protocol::Next::Bin,
            },
        };
        assert!(scan.visible_to("pia", &[Role::Picker]));
        assert!(!scan.visible_to("pete", &[Role::Picker]));
        assert!(scan.visible_to("mia", &[Role::Manager]));
        assert!(!scan.visible_to("gus", &[Role::Guard]));
        let json = serde_json::to_value(&scan).unwrap();
        assert_eq!(
            (json["type"].as_str(), json["next"].as_str()),
            (Some("pick_scan"), Some("bin"))
        );
    }
}
