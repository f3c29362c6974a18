//! `scale-bridge`: a pack station's scale on the edge box's serial port,
//! published on `scale/{station}/weight` as [`WeightMsg`]s in exact
//! integer grams (PROTOCOLS.md §1). The server takes these readings as the
//! station's scale (`ScaleHub`), exactly as if the scale were on its own
//! port.
//!
//! - Frames of any of the five `bondgate_protocol::scale` protocols are
//!   decoded by that module; MT-SICS is polled with `SI`. The port is read
//!   by `bondgate_edge::ScaleReader`, the very reader the server uses for a
//!   scale on its own port.
//! - `stable` is true only for a stable, in-range reading: an overload or
//!   underload goes out as an unstable reading, and the health report says
//!   which.
//! - **No offline buffering**: a reading is published only while connected
//!   and is otherwise dropped. A weight is about the plate *now*; replayed
//!   late it could be taken for a parcel that is no longer there.
//! - Frames that cannot be trusted are counted and never published.
//! - `devices/{device}/health` (retained) says whether the scale talks,
//!   the last error and the count of refused frames; `devices/{device}/status`
//!   is the bridge's presence (`online`, `offline` as its will).
//!
//! A library with a thin binary: [`run`] is the whole bridge, so the
//! server's demo can run it in-process as a task.

#![forbid(unsafe_code)]

pub mod config;

use std::future::Future;

use bondgate_edge::{
    unix_millis, BridgeError, Health, ScaleNews, ScaleReader, Session, SessionEvent,
};
use bondgate_protocol::scale::Range;
use bondgate_protocol::{Topic, WeightMsg};
use tokio::sync::mpsc;

pub use config::Config;

/// Reader news queued for the publisher: a few seconds of the fastest
/// streaming scale, so a slow broker write never stalls the port.
const NEWS_CAPACITY: usize = 64;

/// Runs the bridge until `shutdown` resolves (or the MQTT session ends).
/// The port is closed and the MQTT session dropped without a clean
/// disconnect on the way out, so the broker publishes the `offline` will.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), BridgeError> {
    let mut session = Session::start(&config.edge, Vec::new());
    let weight_topic = Topic::ScaleWeight {
        station: config.station.clone(),
    };
    let mut health = Health::new(&config.edge);
    let (tx, mut news) = mpsc::channel(NEWS_CAPACITY);
    let reader = ScaleReader::new(config.serial.clone(), config.protocol).run(tx);
    let mut tick = tokio::time::interval(bondgate_edge::health::HEALTH_INTERVAL);
    tokio::pin!(shutdown, reader);
    loop {
        tokio::select! {
            () = &mut shutdown => {
                tracing::info!("stopping");
                return Ok(());
            }
            // It ends only when `news` is dropped, which is held here.
            () = &mut reader => unreachable!("the scale reader never ends while the bridge listens"),
            event = session.next() => match event {
                Some(SessionEvent::Connected) => health.flush(&session, true).await,
                Some(_) => {}
                None => return Err(BridgeError::SessionEnded),
            },
            Some(item) = news.recv() => {
                match item {
                    ScaleNews::Reading(r) => {
                        health.set_ok();
                        if r.range != Range::Ok {
                            health.note(range_text(r.range));
                        }
                        // Never queued on a dead link, nor behind a full
                        // queue: a late weight lies, and the port must be
                        // read on.
                        if session.is_connected() {
                            let msg = WeightMsg { grams: r.grams, stable: r.is_usable(), ts: unix_millis() };
                            if !session.try_publish(&weight_topic, msg.encode()) {
                                tracing::debug!(grams = r.grams, "reading dropped: MQTT queue full");
                            }
                        }
                    }
                    ScaleNews::Alive => health.set_ok(),
                    ScaleNews::Bad(error) => {
                        tracing::debug!(%error, "scale frame refused");
                        health.bad_input(&error);
                    }
                    ScaleNews::Offline(error) => health.fail(&error),
                }
                health.flush(&session, false).await;
            }
            _ = tick.tick() => health.flush(&session, false).await,
        }
    }
}

fn range_text(range: Range) -> &'static str {
    match range {
        Range::Ok => "in range",
        Range::Overload => "scale reports overload",
        Range::Underload => "scale reports underload",
    }
}
