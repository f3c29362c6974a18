//! Each station's scale, wherever its readings come from: a serial port of
//! this server (any protocol `bondgate_protocol::scale` decodes) or a scale
//! bridge on MQTT. Readings feed the station's [`ScaleTracker`]; a pack asks
//! for a stable reading of a fresh placement and waits for one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bondgate_protocol::scale::{self, Command, Decoder, Range, Reading, ScaleEvent};
use bondgate_protocol::Backoff;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_serial::SerialPortBuilderExt;

use crate::config::{ScaleSource, SerialScale, StationConfig};
use crate::domain::packing::{NotYet, Observed, ScaleTracker, Weighed};

/// A serial scale that sends nothing for this long is treated as gone: the
/// port is closed and opened again (a USB adapter that vanished keeps an open
/// descriptor that never reads).
pub const SERIAL_SILENCE: Duration = Duration::from_secs(2);
/// How often an MT-SICS scale is asked for its weight (`SI`).
pub const MTSICS_POLL: Duration = Duration::from_millis(200);
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
        let mut tasks = Vec::new();
        for st in stations {
            let Some(source) = &st.scale else { continue };
            let text = match source {
                ScaleSource::Serial(s) => format!("serial {} ({})", s.path.display(), s.protocol),
                ScaleSource::Mqtt => "mqtt".to_string(),
            };
            let scale = Arc::new(StationScale::new(&st.id, text, noise_grams, events.clone()));
            if let ScaleSource::Serial(cfg) = source {
                tasks.push(tokio::spawn(run_serial(
                    scale.clone(),
                    cfg.clone(),
                    stop.clone(),
                )));
            } else {
                scale.offline("no reading from the scale bridge yet");
            }
            map.insert(st.id.clone(), scale);
        }
        (
            ScaleHub {
                stations: Arc::new(map),
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

    /// A scale bridge's presence changed.
    pub fn bridge_offline(&self, station: &str) {
        if let Some(s) = self.stations.get(station).filter(|s| s.source == "mqtt") {
            s.offline("the scale bridge went offline");
        }
    }

    pub fn statuses(&self) -> BTreeMap<String, ScaleStatus> {
        self.stations
            .iter()
            .map(|(k, v)| (k.clone(), v.status()))
            .collect()
    }
}

fn open_port(cfg: &SerialScale) -> Result<tokio_serial::SerialStream, String> {
    let data_bits = if cfg.data_bits == 7 {
        tokio_serial::DataBits::Seven
    } else {
        tokio_serial::DataBits::Eight
    };
    let parity = match cfg.parity.as_str() {
        "even" => tokio_serial::Parity::Even,
        "odd" => tokio_serial::Parity::Odd,
        _ => tokio_serial::Parity::None,
    };
    let stop_bits = if cfg.stop_bits == 2 {
        tokio_serial::StopBits::Two
    } else {
        tokio_serial::StopBits::One
    };
    let path = cfg.path.to_string_lossy().into_owned();
    tokio_serial::new(&path, cfg.baud)
        .data_bits(data_bits)
        .parity(parity)
        .stop_bits(stop_bits)
        .flow_control(tokio_serial::FlowControl::None)
        .open_native_async()
        .map_err(|e| format!("cannot open {path}: {e}"))
}

/// Reads one serial scale for as long as the server runs: open, read until
/// the port fails or falls silent, mark the scale offline, back off, open
/// again.
async fn run_serial(scale: Arc<StationScale>, cfg: SerialScale, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new();
    loop {
        if *stop.borrow() {
            return;
        }
        let failure = match open_port(&cfg) {
            Err(e) => e,
            Ok(port) => {
                let started = Instant::now();
                let reason = tokio::select! {
                    r = read_port(&scale, port, &cfg) => r,
                    _ = stop.changed() => return,
                };
                if started.elapsed() >= Backoff::RESET_AFTER {
                    backoff.reset();
                }
                reason
            }
        };
        scale.offline(&failure);
        let delay = backoff.next_delay_with(rand::random());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Reads frames until the port fails; returns why.
async fn read_port(
    scale: &StationScale,
    port: tokio_serial::SerialStream,
    cfg: &SerialScale,
) -> String {
    let (mut rx, mut tx) = tokio::io::split(port);
    let mut decoder = Decoder::new(cfg.protocol);
    let mut buf = [0u8; 256];
    let poll = scale::request(cfg.protocol, Command::WeighNow);
    let mut ticker = tokio::time::interval(MTSICS_POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_data = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Some(req) = &poll {
                    if let Err(e) = tx.write_all(req).await {
                        return format!("write to {} failed: {e}", cfg.path.display());
                    }
                }
                if last_data.elapsed() > SERIAL_SILENCE {
                    return format!("no data from {} for {} s", cfg.path.display(), SERIAL_SILENCE.as_secs());
                }
            }
            read = rx.read(&mut buf) => match read {
                // A pseudo-terminal or USB adapter whose other end is gone
                // reads 0 bytes for ever: that is a disconnect.
                Ok(0) => return format!("{} closed (cable or adapter unplugged?)", cfg.path.display()),
                Ok(n) => {
                    last_data = tokio::time::Instant::now();
                    for event in decoder.feed(&buf[..n]) {
                        match event {
                            Ok(ScaleEvent::Reading(r)) => scale.observe(r),
                            Ok(ScaleEvent::Busy(_)) | Ok(ScaleEvent::Done(_)) => {}
                            Ok(ScaleEvent::Refused(text)) => scale.bad_frame(&format!("scale refused: {text}")),
                            Err(e) => scale.bad_frame(&e.to_string()),
                        }
                    }
                }
                Err(e) => return format!("read from {} failed: {e}", cfg.path.display()),
            }
        }
    }
}
