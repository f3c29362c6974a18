//! The real `scale-bridge` binary against a real broker (an embedded
//! rumqttd per test) and a simulated scale on a pty (`bondgate_sim`'s
//! `ScaleSim`, which speaks through `bondgate_protocol::scale` only). The
//! test plays the server: it reads the weights and health reports.

#[path = "../../test-support/bridge_test.rs"]
mod support;

use std::path::PathBuf;

use bondgate_protocol::scale::ScaleProtocol;
use bondgate_protocol::{DeviceHealth, DeviceStatus, Site, Topic, TopicKind, WeightMsg};
use bondgate_sim::{ScaleOptions, ScaleSim};
use support::{embedded_broker, start_bin, terminate, Process, Watcher, ONE_AT_A_TIME, WAIT};

const SITE: &str = "s1";
const STATION: &str = "P1";
const DEVICE: &str = "scale-bridge-P1";

fn topic(kind: TopicKind, id: &str) -> String {
    Topic::new(kind, id)
        .unwrap()
        .render(&Site::new(SITE).unwrap())
}

/// What the server would see.
#[derive(Debug)]
enum Seen {
    Weight(WeightMsg),
    Health(DeviceHealth),
    Status(DeviceStatus),
}

fn seen(t: &str, payload: &[u8]) -> Seen {
    if t == topic(TopicKind::ScaleWeight, STATION) {
        Seen::Weight(WeightMsg::decode(payload).expect("a valid weight"))
    } else if t == topic(TopicKind::DeviceHealth, DEVICE) {
        Seen::Health(DeviceHealth::decode(payload).expect("a valid health report"))
    } else if t == topic(TopicKind::DeviceStatus, DEVICE) {
        Seen::Status(DeviceStatus::decode(payload).expect("a valid status"))
    } else {
        panic!("unexpected topic {t}")
    }
}

struct Rig {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    _dir: tempfile::TempDir,
    scale: ScaleSim,
    bridge: Process,
    server: Watcher,
    /// Every weight the server received, in order.
    weights: Vec<WeightMsg>,
}

impl Rig {
    async fn start(protocol: ScaleProtocol) -> Rig {
        let serial = ONE_AT_A_TIME.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let link: PathBuf = dir.path().join("ttyScale");
        let scale = ScaleSim::start(ScaleOptions {
            link: Some(link.clone()),
            ..ScaleOptions::new(protocol)
        })
        .await
        .expect("scale sim");
        let broker = embedded_broker().await;
        let server = Watcher::connect(
            broker,
            &[
                topic(TopicKind::ScaleWeight, STATION),
                topic(TopicKind::DeviceHealth, DEVICE),
                topic(TopicKind::DeviceStatus, DEVICE),
            ],
        )
        .await;
        let bridge = start_bin(
            env!("CARGO_BIN_EXE_scale-bridge"),
            dir.path(),
            &format!(
                "broker = \"mqtt://{broker}\"\nsite = \"{SITE}\"\nstation = \"{STATION}\"\n\
                 protocol = \"{protocol}\"\n[serial]\npath = \"{}\"\n",
                link.display()
            ),
        );
        let mut rig = Rig {
            _serial: serial,
            _dir: dir,
            scale,
            bridge,
            server,
            weights: Vec::new(),
        };
        rig.health(|h| h.ok, "the scale reported ok").await;
        rig
    }

    /// Reads until a health report satisfies `want`, keeping the weights.
    async fn health(&mut self, want: impl Fn(&DeviceHealth) -> bool, what: &str) -> DeviceHealth {
        let weights = &mut self.weights;
        self.server
            .until(WAIT, what, |t, p| match seen(t, p) {
                Seen::Weight(w) => {
                    weights.push(w);
                    None
                }
                Seen::Health(h) => want(&h).then_some(h),
                Seen::Status(_) => None,
            })
            .await
    }

    /// Reads until a stable weight of `grams`, keeping every weight.
    async fn stable(&mut self, grams: i64) {
        let weights = &mut self.weights;
        self.server
            .until(WAIT, &format!("a stable {grams} g"), |t, p| {
                match seen(t, p) {
                    Seen::Weight(w) => {
                        weights.push(w);
                        (w.stable && w.grams == grams).then_some(())
                    }
                    _ => None,
                }
            })
            .await
    }

    /// Every stable weight received was one of `placed`.
    fn assert_stable_only(&self, placed: &[i64]) {
        for w in &self.weights {
            assert!(
                !w.stable || placed.contains(&w.grams),
                "a stable {} g that was never placed: {:?}",
                w.grams,
                self.weights
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtsics_readings_arrive_in_exact_grams_and_stable_only_at_rest() {
    let mut rig = Rig::start(ScaleProtocol::MtSics).await;
    rig.stable(0).await;
    rig.scale.control().set_weight(1_234);
    rig.stable(1_234).await;
    rig.scale.control().set_weight(567);
    rig.stable(567).await;
    rig.assert_stable_only(&[0, 1_234, 567]);
    assert!(
        rig.weights.iter().any(|w| !w.stable),
        "the parcels' motion came through as unstable readings: {:?}",
        rig.weights
    );
    // The bridge asked: MT-SICS sends nothing unasked.
    assert!(rig.scale.control().stats().commands_received >= 3);

    // SIGTERM: the bridge leaves without a goodbye; the broker says offline.
    terminate(&mut rig.bridge).await;
    rig.server
        .until(WAIT, "the offline will", |t, p| match seen(t, p) {
            Seen::Status(DeviceStatus::Offline) => Some(()),
            _ => None,
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplugged_scale_is_reported_and_recovers_after_replug() {
    let mut rig = Rig::start(ScaleProtocol::ContinuousAscii).await;
    rig.stable(0).await;
    let control = rig.scale.control();
    control.unplug().await.unwrap();
    let down = rig.health(|h| !h.ok, "the scale reported gone").await;
    let error = down.last_error.expect("a reason").as_str().to_owned();
    assert!(error.contains("ttyScale"), "{error}");

    control.replug().await.unwrap();
    rig.health(|h| h.ok, "the scale reported back").await;
    control.set_weight(750);
    rig.stable(750).await;
    rig.assert_stable_only(&[0, 750]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_frames_are_counted_and_never_published() {
    let mut rig = Rig::start(ScaleProtocol::ContinuousAscii).await;
    rig.scale.control().set_weight(1_000);
    rig.stable(1_000).await;
    let sent = rig
        .scale
        .control()
        .garbage(b"ST,GS,+00X9.999kg\r\nST,GS,+0009.999lb\r\nXX,GS,+0009.999kg\r\n")
        .await
        .unwrap();
    assert!(sent, "the bridge had the port open");
    let report = rig
        .health(|h| h.bad_input >= 3, "three refused frames")
        .await;
    assert!(report.ok, "garbage does not make the scale offline");
    // Readings go on after the garbage, and none came from it.
    rig.stable(1_000).await;
    for w in &rig.weights {
        assert_ne!(w.grams, 9_999, "a garbage frame was published: {w:?}");
    }
    rig.assert_stable_only(&[0, 1_000]);
}
