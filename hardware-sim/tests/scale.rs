//! The scale simulator through a real pseudo-terminal, read the way the
//! server reads a scale: open the path with tokio-serial, read with a
//! timeout, decode with `bondgate_protocol::scale::Decoder`.
//!
//! Every wait is a loop until a condition holds, bounded by a generous
//! deadline ([`PATIENCE`]); no sleep decides an outcome, so a loaded
//! 2-core machine makes the tests slower, not flaky.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bondgate_protocol::scale::{
    request, Command, Decoder, FrameError, Range, Reading, ScaleEvent, ScaleProtocol,
};
use bondgate_sim::{ScaleControl, ScaleOptions, ScaleSim};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::{timeout, Instant};
use tokio_serial::{SerialPortBuilderExt as _, SerialStream};

/// Longest any condition may take to come true.
const PATIENCE: Duration = Duration::from_secs(15);

const STREAMED: [ScaleProtocol; 4] = [
    ScaleProtocol::ContinuousAscii,
    ScaleProtocol::ToledoContinuous,
    ScaleProtocol::YaohuaA9,
    ScaleProtocol::YaohuaA9Eq,
];

type Event = Result<ScaleEvent, FrameError>;

/// A link path of its own for each simulator in this process.
fn link_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "bondgate-scale-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

async fn start(protocol: ScaleProtocol, tweak: impl FnOnce(&mut ScaleOptions)) -> ScaleSim {
    let mut options = ScaleOptions::new(protocol);
    options.interval = Duration::from_millis(20);
    options.settle = Duration::from_millis(200);
    options.link = Some(link_path());
    tweak(&mut options);
    ScaleSim::start(options).await.expect("simulator starts")
}

/// The server's side: a port opened by path, a decoder, events not yet read.
struct Reader {
    port: SerialStream,
    decoder: Decoder,
    events: VecDeque<Event>,
    seen: Vec<String>,
}

/// Opens the path as the server does (exclusive, 9600 8N1), retrying while
/// it does not exist yet.
async fn open_port(path: &Path) -> SerialStream {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match tokio_serial::new(path.to_string_lossy(), 9600).open_native_async() {
            Ok(port) => return port,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot open {}: {e}", path.display()),
        }
    }
}

impl Reader {
    async fn open(control: &ScaleControl) -> Reader {
        let path = control.path().expect("a path to open");
        Reader {
            port: open_port(&path).await,
            decoder: Decoder::new(control.protocol()),
            events: VecDeque::new(),
            seen: Vec::new(),
        }
    }

    /// The next event, reading as needed; `None` at end of file.
    async fn next(&mut self, deadline: Instant) -> Option<Event> {
        let mut buf = [0_u8; 256];
        loop {
            if let Some(event) = self.events.pop_front() {
                self.seen.push(format!("{event:?}"));
                if self.seen.len() > 40 {
                    self.seen.remove(0);
                }
                return Some(event);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.port.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(n)) => self.events.extend(self.decoder.feed(&buf[..n])),
                Err(_) => panic!(
                    "nothing matched in {PATIENCE:?}; last events: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Reads until an event satisfies `want`, and returns it.
    async fn wait_for(&mut self, what: &str, want: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.next(deadline).await {
                Some(event) if want(&event) => return event,
                Some(_) => {}
                None => panic!(
                    "port closed while waiting for {what}; last events: {:#?}",
                    self.seen
                ),
            }
        }
    }

    async fn reading(&mut self, what: &str, want: impl Fn(&Reading) -> bool) -> Reading {
        match self
            .wait_for(what, |e| matches!(e, Ok(ScaleEvent::Reading(r)) if want(r)))
            .await
        {
            Ok(ScaleEvent::Reading(r)) => r,
            _ => unreachable!(),
        }
    }

    /// MT-SICS: sends a command and returns the next event.
    async fn ask(&mut self, cmd: Command) -> Event {
        let bytes = request(ScaleProtocol::MtSics, cmd).expect("MT-SICS takes requests");
        self.port.write_all(&bytes).await.expect("write command");
        let deadline = Instant::now() + PATIENCE;
        match self.next(deadline).await {
            Some(event) => event,
            None => panic!("port closed waiting for the answer to {cmd}"),
        }
    }

    /// Reads until end of file or an error: the device is gone.
    async fn wait_disconnect(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        let mut buf = [0_u8; 256];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.port.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => {}
                Err(_) => panic!("no disconnect seen within {PATIENCE:?}"),
            }
        }
    }
}

fn stable(grams: i64) -> impl Fn(&Reading) -> bool {
    move |r| r.is_usable() && r.grams == grams
}

#[tokio::test]
async fn streamed_parcel_is_unstable_then_stable_at_exactly_its_weight() {
    for protocol in STREAMED {
        let sim = start(protocol, |_| {}).await;
        let control = sim.control();
        let mut reader = Reader::open(&control).await;
        reader.reading("empty pan, stable", stable(0)).await;

        control.set_weight(1_234);
        reader
            .reading("motion after the parcel", |r| !r.stable)
            .await;
        let r = reader
            .reading("the first stable reading", |r| r.stable)
            .await;
        assert_eq!(r, Reading::stable(1_234), "{protocol}");
        assert!(control.stats().frames_sent > 0);
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn streamed_overload_and_forced_motion() {
    for protocol in STREAMED {
        let sim = start(protocol, |o| o.grams = 800).await;
        let control = sim.control();
        let mut reader = Reader::open(&control).await;
        reader.reading("start weight", stable(800)).await;

        control.set_motion(true);
        reader.reading("forced motion", |r| !r.stable).await;
        control.set_motion(false);
        reader.reading("stable again", stable(800)).await;

        control.overload();
        match protocol {
            ScaleProtocol::ContinuousAscii | ScaleProtocol::ToledoContinuous => {
                reader
                    .reading("overload", |r| r.range == Range::Overload)
                    .await;
                control.underload();
                reader
                    .reading("underload", |r| r.range == Range::Underload)
                    .await;
            }
            // Yaohua frames cannot say overload: the simulator goes silent.
            _ => {
                let frames = || control.stats().frames_sent;
                let before = frames();
                let deadline = Instant::now() + PATIENCE;
                // Wait until sending has visibly stopped: no frame for 10 intervals.
                let mut last = (before, Instant::now());
                while last.1.elapsed() < Duration::from_millis(200) {
                    assert!(
                        Instant::now() < deadline,
                        "{protocol}: frames never stopped"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if frames() != last.0 {
                        last = (frames(), Instant::now());
                    }
                }
            }
        }
        control.set_weight(900);
        reader.reading("back in range", stable(900)).await;
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn garbage_is_reported_and_the_stream_recovers() {
    for protocol in ScaleProtocol::ALL {
        let sim = start(protocol, |o| o.grams = 321).await;
        let control = sim.control();
        let mut reader = Reader::open(&control).await;
        if protocol == ScaleProtocol::MtSics {
            assert!(matches!(
                reader.ask(Command::WeighNow).await,
                Ok(ScaleEvent::Reading(_))
            ));
            assert!(control
                .garbage(b"\x00\xffjunk \x80\r\n")
                .await
                .expect("sim runs"));
            let error = reader.wait_for("a frame error", Result::is_err).await;
            assert!(error.is_err());
            let event = reader.ask(Command::WeighNow).await;
            assert_eq!(event, Ok(ScaleEvent::Reading(Reading::stable(321))));
        } else {
            reader.reading("before the garbage", stable(321)).await;
            let noise = b"\x55\xaa#garbage!\x7f\x80";
            // The port is open, so the bytes go out (retry while the
            // simulator has not yet noticed the reader).
            let deadline = Instant::now() + PATIENCE;
            while !control.garbage(noise).await.expect("sim runs") {
                assert!(Instant::now() < deadline);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let error = reader.wait_for("a frame error", Result::is_err).await;
            assert!(error.is_err());
            reader.reading("after the garbage", stable(321)).await;
        }
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn mtsics_answers_commands_like_a_scale() {
    let sim = start(ScaleProtocol::MtSics, |o| {
        o.stable_timeout = Duration::from_millis(300);
        o.grams = 0;
    })
    .await;
    let control = sim.control();
    let mut reader = Reader::open(&control).await;

    // Motion: SI answers at once with a dynamic weight; S waits, gives up.
    control.set_motion(true);
    control.set_weight(2_500);
    let got = reader.ask(Command::WeighNow).await;
    assert!(
        matches!(got, Ok(ScaleEvent::Reading(r)) if !r.stable),
        "{got:?}"
    );
    assert_eq!(
        reader.ask(Command::Weigh).await,
        Ok(ScaleEvent::Busy(Command::Weigh))
    );
    assert_eq!(
        reader.ask(Command::Zero).await,
        Ok(ScaleEvent::Busy(Command::Zero))
    );
    assert_eq!(
        reader.ask(Command::Tare).await,
        Ok(ScaleEvent::Busy(Command::Tare))
    );

    // At rest: S waits for stability and answers the exact weight.
    control.set_motion(false);
    control.set_weight(2_500);
    let stable_timeout_was_short = reader.ask(Command::Weigh).await;
    if stable_timeout_was_short != Ok(ScaleEvent::Reading(Reading::stable(2_500))) {
        // A loaded machine may take longer than the settle time plus the
        // stable timeout; the next S finds it settled.
        assert_eq!(
            stable_timeout_was_short,
            Ok(ScaleEvent::Busy(Command::Weigh))
        );
        assert_eq!(
            reader.ask(Command::Weigh).await,
            Ok(ScaleEvent::Reading(Reading::stable(2_500)))
        );
    }

    // Tare: the net weight is 0; reset clears the tare.
    assert_eq!(
        reader.ask(Command::Tare).await,
        Ok(ScaleEvent::Done(Command::Tare))
    );
    assert_eq!(
        reader.ask(Command::WeighNow).await,
        Ok(ScaleEvent::Reading(Reading::stable(0)))
    );
    assert_eq!(
        reader.ask(Command::Reset).await,
        Ok(ScaleEvent::Done(Command::Reset))
    );
    assert_eq!(
        reader.ask(Command::WeighNow).await,
        Ok(ScaleEvent::Reading(Reading::stable(2_500)))
    );
    // Zero: the load becomes zero.
    assert_eq!(
        reader.ask(Command::Zero).await,
        Ok(ScaleEvent::Done(Command::Zero))
    );
    assert_eq!(
        reader.ask(Command::WeighNow).await,
        Ok(ScaleEvent::Reading(Reading::stable(0)))
    );

    // Overload: S and SI say so; zero is refused with a readable reason.
    control.overload();
    let over = Reading {
        grams: 0,
        stable: false,
        net: false,
        range: Range::Overload,
    };
    assert_eq!(
        reader.ask(Command::Weigh).await,
        Ok(ScaleEvent::Reading(over))
    );
    assert_eq!(
        reader.ask(Command::WeighNow).await,
        Ok(ScaleEvent::Reading(over))
    );
    let refused = reader.ask(Command::Zero).await;
    assert!(
        matches!(&refused, Ok(ScaleEvent::Refused(t)) if t.contains("zero refused")),
        "{refused:?}"
    );

    // An unknown command: ES.
    reader.port.write_all(b"XYZ\r\n").await.expect("write");
    let es = reader.wait_for("ES", |_| true).await;
    assert!(
        matches!(&es, Ok(ScaleEvent::Refused(t)) if t.contains("syntax")),
        "{es:?}"
    );

    // 15 commands, 16 if the stable wait ran out once.
    assert!((15..=16).contains(&control.stats().commands_received));
    sim.shutdown().await;
}

#[tokio::test]
async fn unplug_looks_like_a_vanished_device_and_replug_works_again() {
    for protocol in ScaleProtocol::ALL {
        let sim = start(protocol, |o| o.grams = 555).await;
        let control = sim.control();
        let link = control.path().expect("link");
        let mut reader = Reader::open(&control).await;
        if protocol == ScaleProtocol::MtSics {
            assert!(reader.ask(Command::WeighNow).await.is_ok());
        } else {
            reader.reading("before unplugging", stable(555)).await;
        }

        control.unplug().await.expect("unplug");
        reader.wait_disconnect().await;
        assert!(!control.stats().plugged);
        assert!(
            !link.exists(),
            "{protocol}: the link should be gone while unplugged"
        );
        assert!(
            tokio_serial::new(link.to_string_lossy(), 9600)
                .open_native_async()
                .is_err(),
            "{protocol}: nothing to open while unplugged"
        );
        drop(reader);

        let pty = control.replug().await.expect("replug");
        assert!(pty.exists());
        let mut reader = Reader::open(&control).await;
        if protocol == ScaleProtocol::MtSics {
            let got = reader.ask(Command::WeighNow).await;
            assert_eq!(got, Ok(ScaleEvent::Reading(Reading::stable(555))));
        } else {
            reader.reading("after replugging", stable(555)).await;
        }
        sim.shutdown().await;
        assert!(!link.exists(), "shutdown removes the link");
    }
}

#[tokio::test]
async fn the_server_may_close_and_reopen_the_port() {
    let sim = start(ScaleProtocol::YaohuaA9, |o| o.grams = 42).await;
    let control = sim.control();
    for round in 0..3 {
        let mut reader = Reader::open(&control).await;
        let r = reader.reading("a stable reading", stable(42)).await;
        assert_eq!(r.grams, 42, "round {round}");
        drop(reader);
        // Wait until the simulator has noticed the close, so the next open
        // is a real reopen and not a race with the previous one.
        let deadline = Instant::now() + PATIENCE;
        while control.stats().listening {
            assert!(Instant::now() < deadline, "close not noticed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    sim.shutdown().await;
}
