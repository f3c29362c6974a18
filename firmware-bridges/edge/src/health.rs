//! [`Health`]: the retained `devices/{id}/health` report of the device
//! behind a bridge ([`bondgate_protocol::DeviceHealth`]).
//!
//! A change of `ok` is published at once; other changes (a counter, a new
//! error text while already failing) at most once per [`HEALTH_INTERVAL`],
//! so a scale spewing garbage ten frames a second costs one message a
//! second, not ten. The whole report is republished on every connect, as
//! presence is.

use std::time::Duration;

use bondgate_protocol::{DeviceHealth, PromptText, Topic, TopicKind};
use tokio::time::Instant;

use crate::config::EdgeConfig;
use crate::runtime::unix_millis;
use crate::session::Session;

/// Least time between two health reports that do not flip `ok`.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// The device's state as the bridge sees it, and what was last published.
#[derive(Debug)]
pub struct Health {
    topic: Topic,
    ok: bool,
    last_error: Option<String>,
    bad_input: u64,
    dropped: u64,
    /// Something changed since the last report.
    dirty: bool,
    /// `ok` flipped since the last report: send now.
    urgent: bool,
    last_sent: Option<Instant>,
}

impl Health {
    /// Not ok (nothing heard from the device yet), no errors.
    pub fn new(config: &EdgeConfig) -> Health {
        Health {
            topic: Topic::new(TopicKind::DeviceHealth, config.device.as_str())
                .expect("a DeviceId is a valid topic id"),
            ok: false,
            last_error: None,
            bad_input: 0,
            dropped: 0,
            dirty: true,
            urgent: true,
            last_sent: None,
        }
    }

    /// The device talks.
    pub fn set_ok(&mut self) {
        if !self.ok {
            self.ok = true;
            self.urgent = true;
        }
    }

    /// The device is gone (port closed, silent, cannot be opened).
    pub fn fail(&mut self, error: &str) {
        if self.ok {
            self.ok = false;
            self.urgent = true;
        }
        self.note(error);
    }

    /// An error while the device still talks (a scale in overload).
    pub fn note(&mut self, error: &str) {
        if self.last_error.as_deref() != Some(error) {
            self.last_error = Some(error.to_owned());
            self.dirty = true;
        }
    }

    /// Input that was refused (a bad frame, a line that is no barcode).
    pub fn bad_input(&mut self, error: &str) {
        self.bad_input += 1;
        self.last_error = Some(error.to_owned());
        self.dirty = true;
    }

    /// Messages dropped in total (the offline queue's counter).
    pub fn set_dropped(&mut self, dropped: u64) {
        if dropped != self.dropped {
            self.dropped = dropped;
            self.dirty = true;
        }
    }

    /// Whether the device talks.
    pub fn ok(&self) -> bool {
        self.ok
    }

    /// The report as it would be published now.
    pub fn report(&self) -> DeviceHealth {
        DeviceHealth {
            ok: self.ok,
            last_error: self.last_error.as_deref().map(PromptText::clamp),
            bad_input: self.bad_input,
            dropped: self.dropped,
            ts: unix_millis(),
        }
    }

    /// Publishes the report if it is due (see the module notes), or
    /// whatever its state when `force` (on connect). Nothing is queued on a
    /// dead link: the next connect republishes.
    pub async fn flush(&mut self, session: &Session, force: bool) {
        let due = self.urgent
            || (self.dirty
                && self
                    .last_sent
                    .is_none_or(|t| t.elapsed() >= HEALTH_INTERVAL));
        if !(force || due) || !session.is_connected() {
            return;
        }
        if session.publish(&self.topic, self.report().encode()).await {
            self.dirty = false;
            self.urgent = false;
            self.last_sent = Some(Instant::now());
        }
    }
}
