//! The latest health report of each bridge (`devices/{id}/health`,
//! retained, [`DeviceHealth`]), kept in memory: the broker holds the
//! retained report, so a restarted server learns it again as it subscribes.
//! Shown with each device in `GET /api/v1/devices`, so a manager sees a
//! bridge that is connected but whose serial device is unplugged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bondgate_protocol::DeviceHealth;

use crate::store::DeviceHealthView;

#[derive(Debug, Clone)]
struct Entry {
    report: Option<(DeviceHealth, Instant)>,
    refused: u64,
    refused_error: Option<String>,
}

/// Health reports per (site, device); cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct DeviceHealthBook {
    entries: Arc<Mutex<BTreeMap<(String, String), Entry>>>,
}

impl DeviceHealthBook {
    pub fn new() -> DeviceHealthBook {
        DeviceHealthBook::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<(String, String), Entry>) -> R) -> R {
        // Each entry is replaced whole: a poisoned lock holds nothing half-done.
        let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    fn entry<'a>(
        map: &'a mut BTreeMap<(String, String), Entry>,
        site: &str,
        device: &str,
    ) -> &'a mut Entry {
        map.entry((site.to_string(), device.to_string()))
            .or_insert(Entry {
                report: None,
                refused: 0,
                refused_error: None,
            })
    }

    /// A report as the bridge sent it.
    pub fn record(&self, site: &str, device: &str, health: DeviceHealth) {
        self.with(|m| Self::entry(m, site, device).report = Some((health, Instant::now())));
    }

    /// A report that could not be parsed: counted, the last reason kept, the
    /// previous good report left as it was.
    pub fn refuse(&self, site: &str, device: &str, error: &str) {
        self.with(|m| {
            let e = Self::entry(m, site, device);
            e.refused += 1;
            e.refused_error = Some(error.to_string());
        });
    }

    /// What to show for a device; `None` if it never sent a health report.
    pub fn view(&self, site: &str, device: &str) -> Option<DeviceHealthView> {
        self.with(|m| {
            let e = m.get(&(site.to_string(), device.to_string()))?;
            let (report, at) = match &e.report {
                Some((r, at)) => (Some(r), Some(*at)),
                None => (None, None),
            };
            Some(DeviceHealthView {
                reported: report.is_some(),
                ok: report.is_some_and(|r| r.ok),
                last_error: report
                    .and_then(|r| r.last_error.as_ref().map(|t| t.as_str().to_string())),
                bad_input: report.map_or(0, |r| r.bad_input),
                dropped: report.map_or(0, |r| r.dropped),
                reported_ts: report.map(|r| r.ts),
                age_ms: at.map(|at| u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX)),
                refused_reports: e.refused,
                refused_error: e.refused_error.clone(),
            })
        })
    }
}
