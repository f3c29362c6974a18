//! Scale frames decoded per second, per protocol.
//!
//! `cargo bench -p bondgate-protocol --bench scale`. For each protocol, a
//! stream of frames from `encode_reading` (weights varying, so nothing is
//! cached by accident) is fed to one `Decoder` in 64-byte chunks, as a
//! serial port delivers them; the figure is frames decoded per second of
//! wall time, best of a few rounds. A plain `Instant` loop, no harness: the
//! question is only whether decoding could ever be the bottleneck of a
//! 9600-baud line (about 50–80 frames per second at most).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bondgate_protocol::scale::{encode_reading, Decoder, Range, Reading, ScaleProtocol};

/// Frames in the stream fed each round.
const FRAMES: usize = 20_000;
/// Bytes per `feed` call: a typical USB-serial read.
const CHUNK_BYTES: usize = 64;
/// Rounds per protocol; the best is reported (the machine is shared).
const ROUNDS: usize = 5;

fn main() {
    println!("| protocol | bytes/frame | frames/s (best of {ROUNDS}) | ns/frame | MB/s |");
    println!("|---|---:|---:|---:|---:|");
    for protocol in ScaleProtocol::ALL {
        let stream: Vec<u8> = (0..FRAMES)
            .flat_map(|i| {
                let grams = (i as i64 * 37) % 150_000 - 1_000;
                let reading = Reading {
                    grams,
                    stable: i % 3 != 0,
                    net: false,
                    range: Range::Ok,
                };
                encode_reading(protocol, &reading)
            })
            .collect();
        let mut best = Duration::MAX;
        let mut decoded = 0;
        for _ in 0..ROUNDS {
            let mut decoder = Decoder::new(protocol);
            let start = Instant::now();
            let mut n = 0;
            for chunk in stream.chunks(CHUNK_BYTES) {
                n += black_box(decoder.feed(black_box(chunk))).len();
            }
            best = best.min(start.elapsed());
            decoded = n;
        }
        // "=" frames end where the next begins: the last one stays open.
        assert!(
            decoded + 1 >= FRAMES,
            "{protocol}: only {decoded} frames decoded"
        );
        let secs = best.as_secs_f64();
        println!(
            "| {protocol} | {} | {:.0} | {:.0} | {:.1} |",
            stream.len() / FRAMES,
            decoded as f64 / secs,
            secs * 1e9 / decoded as f64,
            stream.len() as f64 / secs / 1e6,
        );
    }
}
