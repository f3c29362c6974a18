//! Each station's scale, wherever its readings come from: a serial port of
//! this server (any protocol `bondgate_protocol::scale` decodes) or a scale
//! bridge on MQTT. A serial port is read by `bondgate_edge::ScaleReader`,
//! the reader the scale bridge runs too. Readings feed the station's [`ScaleTracker`]; a pack asks
//! for a stable reading of a fresh placement and waits for one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bondgate_edge::{ScaleNews, ScaleReader};
use bondgate_protocol::scale::{Range, Reading};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{ScaleSource, SerialScale, StationConfig};
use crate::domain::packing::{NotYet, Observed, ScaleTracker, Weighed};

/// How often an MT-SICS scale is asked for its weight (`SI`).
pub use bondgate_edge::scale::MTSICS_POLL;
/// A serial scale that sends nothing for this long is treated as gone: the
/// port is closed and opened again (a USB adapter that vanished keeps an open
/// descriptor that never reads). The shared reader's value.
pub use bondgate_edge::scale::SERIAL_SILENCE;
/// A reading older than this does not describe the plate any more: the scale
/// (or its bridge) counts as silent.
pub const READING_MAX_AGE: Duration = Duration::from_secs(3);

/// What a station's scale shows, for screens and `GET /pack-stations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ScaleStatus {
    /// `serial /dev/ttyUSB0 (mt-sics)` or `mqtt`.
    pub source: String,
    pub online: bool,
    /// The latest reading, stable or not.
    pub grams: Option<i64>,
    pub stable: bool,
    /// The latest stable weight.
    pub last_stable_grams: Option<i64>,
    /// Milliseconds since the latest reading.
    pub reading_age_ms: Option<u64>,
    pub last_error: Option<String>,
    /// Frames that could not be trusted since start.
    pub bad_frames: u64,
}

/// Why no weight could be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeighError {
    #[error("station {0} has no scale configured")]
    NoScale(String),
    #[error("the scale of station {station} is offline: {reason}")]
    Offline { station: String, reason: String },
    #[error("no usable weight on the scale of station {station} within {secs} s: {why}")]
    Timeout {
        station: String,
        secs: u64,
        why: NotYet,
    },
    #[error(
        "the scale of station {station} reports {range}: take the load off and check the scale"
    )]
    OutOfRange {
        station: String,
        range: &'static str,
    },
}

impl WeighError {
    /// The error in Chinese, for the pack station's screen.
    pub fn text_zh(&self) -> String {
        match self {
            WeighError::NoScale(station) => format!("打包台 {station} 没有配置电子秤"),
            WeighError::Offline { station, reason } => {
                format!("打包台 {station} 的电子秤离线：{reason}")
            }
            WeighError::Timeout { station, secs, why } => format!(
                "打包台 {station} 的电子秤 {secs} 秒内没有可用的重量：{}",
                why.text_zh()
            ),
            WeighError::OutOfRange { station, range } => {
                format!("打包台 {station} 的电子秤显示{range}：请拿下货物并检查电子秤")
            }
        }
    }
}

struct State {
    tracker: ScaleTracker,
    online: bool,
    last: Option<(Reading, Instant)>,
    last_error: Option<String>,
    bad_frames: u64,
    /// A pack may only use a placement that started at or after this.
    armed_ms: u64,
}

/// What a screen is told of a scale: `(online, grams, stable)`.
type Shown = (bool, Option<i64>, bool);

/// One station's scale.
pub struct StationScale {
    station: String,
    source: String,
    epoch: Instant,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    events: crate::events::EventHub,
    /// What was last published, and when.
    published: Mutex<Option<(Shown, Instant)>>,
}

impl StationScale {
    fn new(
        station: &str,
        source: String,
        noise_grams: i64,
        events: crate::events::EventHub,
    ) -> StationScale {
        StationScale {
            station: station.to_string(),
            source,
            epoch: Instant::now(),
            state: Mutex::new(State {
                tracker: ScaleTracker::new(noise_grams),
                online: false,
                last: None,
                last_error: None,
                bad_frames: 0,
                armed_ms: 0,
            }),
            changed: watch::channel(0).0,
            events,
            published: Mutex::new(None),
        }
    }

    /// Tells the screens what the plate shows: on every change, and the
    /// same reading again at most every [`crate::events::SCALE_REPEAT_MS`].
    fn publish(&self) {
        let now = self.status();
        let shown = (now.online, now.grams, now.stable);
        let mut last = self.published.lock().unwrap_or_else(|p| p.into_inner());
        let repeat = std::time::Duration::from_millis(crate::events::SCALE_REPEAT_MS as u64);
        if last.is_some_and(|(was, at)| was == shown && at.elapsed() < repeat) {
            return;
        }
        *last = Some((shown, Instant::now()));
        drop(last);
        self.events.publish(crate::events::Event::Scale {
            station: self.station.clone(),
            online: now.online,
            grams: now.grams,
            stable: now.stable,
            at: chrono::Utc::now(),
        });
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A panic while holding this lock cannot leave the state half-done
        // in a way that matters (each field is replaced whole): keep going.
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let r = f(&mut guard);
        drop(guard);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        self.publish();
        r
    }

    /// Takes in one reading as the scale sent it.
    pub fn observe(&self, r: Reading) {
        let at_ms = self.now_ms();
        self.with(|s| {
            s.online = true;
            s.last = Some((r, Instant::now()));
            // Over- or underload is not a weight: treat it like motion, so
            // the next stable weight starts a new placement.
            let stable = r.stable && r.range == Range::Ok;
            s.tracker.observe(Observed {
                grams: r.grams,
                stable,
                at_ms,
            });
            if r.range == Range::Ok {
                if s.last_error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("scale reports"))
                {
                    s.last_error = None;
                }
            } else {
                s.last_error = Some(format!("scale reports {}", range_text(r.range)));
            }
        });
    }

    /// The connection is gone (port vanished, bridge offline).
    pub fn offline(&self, reason: &str) {
        let at_ms = self.now_ms();
        self.with(|s| {
            if s.online {
                tracing::warn!(station = %self.station, %reason, "scale offline");
            }
            s.online = false;
            s.last_error = Some(reason.to_string());
            // Whatever lay on the plate may have changed unseen.
            s.tracker.observe(Observed {
                grams: 0,
                stable: false,
                at_ms,
            });
        });
    }

    /// A frame or answer that could not be used; the connection stays.
    pub fn bad_frame(&self, error: &str) {
        self.with(|s| {
            s.bad_frames += 1;
            s.last_error = Some(error.to_string());
        });
    }

    pub fn status(&self) -> ScaleStatus {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let age = s.last.map(|(_, at)| at.elapsed());
        ScaleStatus {
            source: self.source.clone(),
            online: s.online && age.is_some_and(|a| a <= READING_MAX_AGE),
            grams: s.last.map(|(r, _)| r.grams),
            stable: s.last.is_some_and(|(r, _)| r.is_usable()),
            last_stable_grams: s.tracker.last_stable().map(|o| o.grams),
            reading_age_ms: age.map(|a| u64::try_from(a.as_millis()).unwrap_or(u64::MAX)),
            last_error: s.last_error.clone(),
            bad_frames: s.bad_frames,
        }
    }

    /// Waits for a stable reading of a load placed since the station's last
    /// pack, up to `timeout`. Fails at once if the scale is offline.
    pub async fn weigh(&self, min_grams: i64, timeout: Duration) -> Result<Weighed, WeighError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.changed.subscribe();
        loop {
            let verdict = {
                let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                let fresh = s
                    .last
                    .is_some_and(|(_, at)| at.elapsed() <= READING_MAX_AGE);
                if !s.online || !fresh {
                    Err(Err(WeighError::Offline {
                        station: self.station.clone(),
                        reason: s
                            .last_error
                            .clone()
                            .unwrap_or_else(|| "no readings from the scale".into()),
                    }))
                } else if let Some((r, _)) = s.last.filter(|(r, _)| r.range != Range::Ok) {
                    Err(Err(WeighError::OutOfRange {
                        station: self.station.clone(),
                        range: range_text(r.range),
                    }))
                } else {
                    match s.tracker.usable(s.armed_ms, min_grams) {
                        Ok(w) => Ok(w),
                        Err(why) => Err(Ok(why)),
                    }
                }
            };
            let why = match verdict {
                Ok(w) => return Ok(w),
                Err(Err(e)) => return Err(e),
                Err(Ok(why)) => why,
            };
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => {
                    return Err(WeighError::Timeout {
                        station: self.station.clone(),
                        secs: timeout.as_secs(),
                        why,
                    })
                }
            }
        }
    }

    /// A package used this placement: the next pack needs a new one.
    pub fn consume(&self, placement: u64) {
        let now = self.now_ms();
        self.with(|s| {
            s.tracker.mark_used(placement);
            s.armed_ms = now;
        });
    }
}

fn range_text(r: Range) -> &'static str {
    match r {
        Range::Ok => "a weight in range",
        Range::Overload => "overload",
        Range::Underload => "underload",
    }
}

/// Every station's scale, and the tasks reading serial ones.
#[derive(Clone, Default)]
pub struct ScaleHub {
    stations: Arc<BTreeMap<String, Arc<StationScale>>>,
    /// Scale bridges' device ids → their station (MQTT scales only).
    bridges: Arc<BTreeMap<String, String>>,
}

impl ScaleHub {
    /// The scales of the configured stations; serial ones start being read
    /// now, on their own tasks, until `stop` turns true.
    pub fn start(
        stations: &[StationConfig],
        noise_grams: i64,
        events: crate::events::EventHub,
        stop: watch::Receiver<bool>,
    ) -> (ScaleHub, Vec<JoinHandle<()>>) {
        let mut map = BTreeMap::new();
        let mut bridges = BTreeMap::new();
        let mut tasks = Vec::new();
        for st in stations {
            let Some(source) = &st.scale else { continue };
            let text = match source {
                ScaleSource::Serial(s) => format!("serial {} ({})", s.path.display(), s.protocol),
                ScaleSource::Mqtt { .. } => "mqtt".to_string(),
            };
            let scale = Arc::new(StationScale::new(&st.id, text, noise_grams, events.clone()));
            match source {
                ScaleSource::Serial(cfg) => tasks.push(tokio::spawn(run_serial(
                    scale.clone(),
                    cfg.clone(),
                    stop.clone(),
                ))),
                ScaleSource::Mqtt { bridge } => {
                    scale.offline("no reading from the scale bridge yet");
                    bridges.insert(bridge.clone(), st.id.clone());
                }
            }
            map.insert(st.id.clone(), scale);
        }
        (
            ScaleHub {
                stations: Arc::new(map),
                bridges: Arc::new(bridges),
            },
            tasks,
        )
    }

    pub fn get(&self, station: &str) -> Option<&Arc<StationScale>> {
        self.stations.get(station)
    }

    /// A reading from a scale bridge (`scale/{station}/weight`). Readings for
    /// stations without an MQTT scale are ignored (and logged once per call).
    pub fn bridge_reading(&self, station: &str, grams: i64, stable: bool) {
        match self.stations.get(station) {
            Some(s) if s.source == "mqtt" => s.observe(Reading {
                grams,
                stable,
                net: false,
                range: Range::Ok,
            }),
            _ => tracing::debug!(%station, "weight for a station without an MQTT scale dropped"),
        }
    }

    /// The station whose scale bridge is `device`, if any.
    fn bridge_station(&self, device: &str) -> Option<&Arc<StationScale>> {
        let station = self.bridges.get(device)?;
        self.stations.get(station).filter(|s| s.source == "mqtt")
    }

    /// A device's presence changed (`devices/{device}/status`). When it is
    /// a station's scale bridge going `offline` (its last will: the box or
    /// its link died), the scale is offline at once rather than after
    /// [`READING_MAX_AGE`] without readings. `online` changes nothing: the
    /// scale is back with its first reading.
    pub fn bridge_status(&self, device: &str, online: bool) {
        if online {
            return;
        }
        if let Some(s) = self.bridge_station(device) {
            s.offline(&format!("the scale bridge {device} went offline"));
        }
    }

    /// A device's health report (`devices/{device}/health`). When it is a
    /// station's scale bridge saying its scale does not talk (port closed,
    /// silent, cannot be opened), the scale is offline at once with the
    /// bridge's reason. A report that the scale talks changes nothing: the
    /// scale is back with its first reading.
    pub fn bridge_health(&self, device: &str, ok: bool, last_error: Option<&str>) {
        if ok {
            return;
        }
        if let Some(s) = self.bridge_station(device) {
            let why = last_error.unwrap_or("the scale does not answer");
            s.offline(&format!("scale bridge {device}: {why}"));
        }
    }

    pub fn statuses(&self) -> BTreeMap<String, ScaleStatus> {
        self.stations
            .iter()
            .map(|(k, v)| (k.clone(), v.status()))
            .collect()
    }
}

/// The server's settings of a serial scale as the shared reader takes them
/// (the values were checked when the configuration was read).
fn serial_settings(cfg: &SerialScale) -> bondgate_edge::SerialSettings {
    use bondgate_edge::{DataBits, Parity, StopBits};
    bondgate_edge::SerialSettings {
        path: cfg.path.clone(),
        baud: cfg.baud,
        data_bits: if cfg.data_bits == 7 {
            DataBits::Seven
        } else {
            DataBits::Eight
        },
        parity: match cfg.parity.as_str() {
            "even" => Parity::Even,
            "odd" => Parity::Odd,
            _ => Parity::None,
        },
        stop_bits: if cfg.stop_bits == 2 {
            StopBits::Two
        } else {
            StopBits::One
        },
    }
}

/// News queued between the reader and the station's scale: the station
/// takes each at once, so this only smooths a burst of frames.
const NEWS_CAPACITY: usize = 64;

/// Reads one serial scale for as long as the server runs, with the reader
/// the scale bridge uses too (`bondgate_edge::ScaleReader`: MT-SICS polled,
/// 0-byte reads, errors and silence are disconnects, reopen with backoff);
/// its news feed the station's scale.
async fn run_serial(scale: Arc<StationScale>, cfg: SerialScale, mut stop: watch::Receiver<bool>) {
    if *stop.borrow() {
        return;
    }
    let (tx, mut news) = mpsc::channel(NEWS_CAPACITY);
    let reader = ScaleReader::new(serial_settings(&cfg), cfg.protocol).run(tx);
    let apply = async {
        while let Some(item) = news.recv().await {
            match item {
                ScaleNews::Reading(r) => scale.observe(r),
                ScaleNews::Alive => {}
                ScaleNews::Bad(error) => scale.bad_frame(&error),
                ScaleNews::Offline(reason) => scale.offline(&reason),
            }
        }
    };
    tokio::select! {
        () = reader => {}
        () = apply => {}
        _ = stop.changed() => {}
    }
}
