//! The PDA simulator against real MQTT brokers: an embedded rumqttd per test
//! and, where marked, the shared Mosquitto too. The server is stood in for by
//! a scripted responder (see `support/responder.rs`); everything between the
//! two is real MQTT.

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bondgate_protocol::{DeviceStatus, Next, Tone};
use bondgate_sim::{
    codes, BrokerAddr, Fault, Pda, PdaError, PdaOptions, Reason, WalkError, Walker,
};
use support::broker::embedded;
use support::{Rig, Script, StatusWatch};

/// Declares one test on the embedded broker and one on the shared Mosquitto
/// from one body taking the broker's address.
macro_rules! on_both_brokers {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded_rumqttd() {
                ($body)(embedded().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mosquitto() {
                if let Some(broker) = support::broker::mosquitto().await {
                    ($body)(broker).await
                }
            }
        }
    };
}

const BADGE: &str = "BADGE-alice";

/// Two pick tasks the way the server lays them out: login, tote, then bin,
/// item, (lot,) quantity per line; a task for one unit is confirmed by its
/// item (here lot) scan, with no quantity step.
fn two_tasks() -> Script {
    Script::new(Next::Login)
        .then(
            BADGE,
            Tone::Ok,
            "Hello alice. Scan an empty tote",
            Next::Tote,
        )
        .then("TOTE-PDA-01-1", Tone::Ok, "Go to [A-01-01]", Next::Bin)
        .then("A-01-01", Tone::Ok, "Scan item [6901234567892]", Next::Item)
        .then(
            "6901234567892",
            Tone::Ok,
            "Pick [2] x Milk powder 800g",
            Next::Qty,
        )
        .then("2", Tone::Ok, "Go to [A-01-02]", Next::Bin)
        .then("A-01-02", Tone::Ok, "Scan item [6901234567893]", Next::Item)
        .then(
            "6901234567893",
            Tone::Ok,
            "Scan the batch label [L2024-07]",
            Next::Lot,
        )
        .then(
            "L2024-07",
            Tone::Ok,
            "Picked 1 x Infant formula. Nothing more to pick",
            Next::Done,
        )
}

const TWO_TASK_PATH: [&str; 8] = [
    BADGE,
    "TOTE-PDA-01-1",
    "A-01-01",
    "6901234567892",
    "2",
    "A-01-02",
    "6901234567893",
    "L2024-07",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_round_trip_echoes_the_seq() {
    let rig = Rig::start(embedded().await, two_tasks()).await;
    let mut pda = rig.pda().await;
    assert_eq!(pda.last_seq(), None);

    let hello = pda.scan(BADGE).await.unwrap();
    assert_eq!(
        (hello.seq, hello.ok, hello.tone, hello.next),
        (1, true, Tone::Ok, Next::Tote)
    );
    let bin = pda.scan("TOTE-PDA-01-1").await.unwrap();
    assert_eq!((bin.seq, bin.text.expected()), (2, Some("A-01-01")));
    assert_eq!(pda.last_seq(), Some(2));
    assert_eq!(
        rig.responder.received(),
        [(1, BADGE.to_owned()), (2, "TOTE-PDA-01-1".to_owned())]
    );
    pda.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_seq_gets_the_original_answer_and_scan_never_reuses_it() {
    let rig = Rig::start(embedded().await, two_tasks()).await;
    let mut options = rig.options();
    options.first_seq = 41;
    let mut pda = Pda::connect(options).await.unwrap();
    pda.wait_ready().await.unwrap();

    let first = pda.scan(BADGE).await.unwrap();
    let second = pda.scan("TOTE-PDA-01-1").await.unwrap();
    let replayed = pda.scan_with_seq(41, BADGE).await.unwrap();
    assert_eq!(replayed, first, "a replay gets the original prompt");
    assert_eq!(pda.last_seq(), Some(41));
    let third = pda.scan("A-01-01").await.unwrap();
    assert_eq!((first.seq, second.seq, third.seq), (41, 42, 43));
    assert_eq!(third.next, Next::Item, "the replay had no second effect");
    let seqs: Vec<u64> = rig.responder.received().iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [41, 42, 41, 43]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_nobody_answers_times_out_saying_what_was_sent_and_expected() {
    let rig = Rig::start(embedded().await, Script::new(Next::Login).silent("SILENT")).await;
    let mut pda = rig.pda().await;
    pda.set_timeout(Duration::from_millis(300));

    let started = Instant::now();
    let err = pda.scan("SILENT").await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(matches!(err, PdaError::Timeout { seq: 1, .. }), "{err:?}");
    let site = rig.site.as_str();
    assert_eq!(
        err.to_string(),
        format!(
            "sent scan seq 1 \"SILENT\" on bondgate/{site}/pda/PDA-01/scan; \
             expected a prompt with seq 1 on bondgate/{site}/pda/PDA-01/prompt within 300ms; \
             got nothing"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_for_other_seqs_are_skipped_and_named_in_a_timeout() {
    let script = Script::new(Next::Login)
        .noisy(BADGE)
        .then(BADGE, Tone::Ok, "Hello. Scan a tote", Next::Tote)
        .noisy("LOST")
        .silent("LOST");
    let rig = Rig::start(embedded().await, script).await;
    let mut pda = rig.pda().await;

    let hello = pda.scan(BADGE).await.unwrap();
    assert_eq!(
        (hello.seq, hello.next),
        (1, Next::Tote),
        "not the seq-1001 noise"
    );
    pda.set_timeout(Duration::from_millis(300));
    let err = pda.scan("LOST").await.unwrap_err().to_string();
    assert!(
        err.ends_with(
            "got only 1 other message(s): [seq 1002 ok  \"an answer to some other scan\" next=item]"
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_get_an_error_prompt_with_seq_zero() {
    let rig = Rig::start(embedded().await, two_tasks()).await;
    let mut pda = rig.pda().await;

    pda.publish_raw(&br#"{"v":1,"seq":1,"ts":0}"#[..])
        .await
        .unwrap();
    let refused = pda.next_prompt().await.unwrap();
    assert_eq!(
        (refused.seq, refused.ok, refused.tone),
        (0, false, Tone::Error)
    );
    assert_eq!(
        refused.text.as_str(),
        "message has the wrong shape: missing field `barcode`"
    );
    pda.publish_raw("not json").await.unwrap();
    assert_eq!(pda.next_prompt().await.unwrap().seq, 0);

    // A code that cannot be a barcode is refused before anything is sent.
    let err = pda.scan("A\tB").await.unwrap_err();
    assert!(matches!(err, PdaError::BadBarcode { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(
            "cannot send \"A\\tB\" as a scan: barcode contains a control character at position 2"
        ),
        "{err}"
    );
    assert_eq!(pda.last_seq(), None);
    assert!(rig.responder.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_broker_wait_ready_fails_naming_the_broker_and_the_error() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free); // nothing listens there now
    let mut options = PdaOptions::new(
        BrokerAddr::from(addr),
        "SH01".parse().unwrap(),
        "PDA-01".parse().unwrap(),
    );
    options.timeout = Duration::from_millis(500);
    let mut pda = Pda::connect(options).await.unwrap();
    let err = pda.wait_ready().await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "sent nothing: not connected to mqtt://{addr} and subscribed to bondgate/SH01/pda/PDA-01/prompt after 500ms"
        )),
        "{err}"
    );
    assert!(err.contains("refused"), "names the connection error: {err}");
    assert!(matches!(
        pda.scan("X").await,
        Err(PdaError::NotReady { .. })
    ));
}

on_both_brokers!(walker_completes_a_two_task_pick, |broker| async move {
    let rig = Rig::start(broker, two_tasks()).await;
    let mut pda = rig.pda().await;
    let transcript = Walker::new(BADGE).walk(&mut pda).await.unwrap();
    assert_eq!(transcript.codes(), TWO_TASK_PATH);
    assert_eq!(transcript.tasks_completed(), 2);
    assert_eq!(
        transcript.steps[3].to_string(),
        "→ 6901234567892  ← ok  \"Pick [2] x Milk powder 800g\" next=qty"
    );
    assert!(transcript
        .to_string()
        .ends_with("2 task(s) completed in 8 scan(s)"));
    pda.disconnect().await.unwrap();
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walker_sends_every_scan_twice_and_a_wrong_bin_once() {
    let rig = Rig::start(embedded().await, two_tasks()).await;
    let mut pda = rig.pda().await;
    let walker = Walker::new(BADGE).faults([Fault::DuplicateEveryScan, Fault::WrongBinOnce]);
    let transcript = walker.walk(&mut pda).await.unwrap();

    let mut path = TWO_TASK_PATH.to_vec();
    path.insert(2, codes::WRONG_BIN);
    assert_eq!(transcript.codes(), path);
    assert_eq!(
        transcript.tasks_completed(),
        2,
        "replays count no task twice"
    );
    let refused = &transcript.steps[4].prompt;
    assert_eq!((refused.tone, refused.next), (Tone::Error, Next::Bin));
    for pair in transcript.steps.chunks(2) {
        assert!(!pair[0].replay && pair[1].replay);
        assert_eq!(
            (pair[0].seq, &pair[0].prompt),
            (pair[1].seq, &pair[1].prompt)
        );
    }
    // Each seq reached the responder exactly twice, in a row.
    let received = rig.responder.received();
    assert_eq!(received.len(), 2 * path.len());
    for (i, pair) in received.chunks(2).enumerate() {
        assert_eq!(pair[0], pair[1]);
        assert_eq!(pair[0], (i as u64 + 1, path[i].to_owned()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walker_short_picks_then_logs_out_and_back_in() {
    let script = Script::new(Next::Login)
        .then(
            BADGE,
            Tone::Ok,
            "Hello alice. Scan an empty tote",
            Next::Tote,
        )
        .then("TOTE-PDA-01-1", Tone::Ok, "Go to [A-01-01]", Next::Bin)
        .then("A-01-01", Tone::Ok, "Scan item [6901234567892]", Next::Item)
        .then(
            "6901234567892",
            Tone::Ok,
            "Pick [3] x Milk powder",
            Next::Qty,
        )
        .then("1", Tone::Warning, "Counted 1 of [3]", Next::Qty)
        .then(
            codes::SHORT,
            Tone::Warning,
            "Short pick: scan a reason card",
            Next::Reason,
        )
        .then(
            codes::DAMAGED,
            Tone::Warning,
            "Noted. Go to [A-01-02]",
            Next::Bin,
        )
        .then(codes::LOGOUT, Tone::Ok, "Logged out", Next::Login)
        .then(BADGE, Tone::Ok, "Welcome back. Go to [A-01-02]", Next::Bin)
        .then("A-01-02", Tone::Ok, "Scan item [6901234567893]", Next::Item)
        .then(
            "6901234567893",
            Tone::Ok,
            "Pick [1] x Infant formula",
            Next::Qty,
        )
        .then("1", Tone::Ok, "Order complete", Next::Done);
    let rig = Rig::start(embedded().await, script).await;
    let mut pda = rig.pda().await;
    let short = Fault::ShortAt {
        task_index: 0,
        found: 1,
        reason: Reason::Damaged,
    };
    let walker = Walker::new(BADGE).faults([short, Fault::LogoutAfter(1)]);
    let transcript = walker.walk(&mut pda).await.unwrap();
    assert_eq!(transcript.tasks_completed(), 2);
    assert_eq!(
        transcript.codes()[4..9],
        ["1", "#SHORT", "#DAMAGED", "#LOGOUT", BADGE]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walker_fails_when_the_server_accepts_a_wrong_bin() {
    let script = Script::new(Next::Login)
        .then(BADGE, Tone::Ok, "Hello. Scan a tote", Next::Tote)
        .then("TOTE-PDA-01-1", Tone::Ok, "Go to [A-01-01]", Next::Bin)
        .then(
            codes::WRONG_BIN,
            Tone::Ok,
            "Scan item [6901234567892]",
            Next::Item,
        );
    let rig = Rig::start(embedded().await, script).await;
    let mut pda = rig.pda().await;
    let err = Walker::new(BADGE)
        .fault(Fault::WrongBinOnce)
        .walk(&mut pda)
        .await
        .unwrap_err();
    assert!(matches!(err, WalkError::Unexpected { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "sent \"SIM-NO-SUCH-BIN\" (fault wrong-bin-once); \
             expected a refusal (tone error) asking again: next=bin; \
             got ok  \"Scan item [6901234567892]\" next=item\nlast steps:\n  → BADGE-alice"
        ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walker_stops_at_the_step_limit_showing_the_last_prompts() {
    let rig = Rig::start(embedded().await, two_tasks()).await;
    let mut pda = rig.pda().await;
    let err = Walker::new(BADGE)
        .step_limit(3)
        .walk(&mut pda)
        .await
        .unwrap_err();
    assert!(
        matches!(err, WalkError::StepLimit { limit: 3, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "sent 3 scans; expected next=done before that (is the server sending the walker in circles?)\n\
         last steps:\n  \
         → BADGE-alice  ← ok  \"Hello alice. Scan an empty tote\" next=tote\n  \
         → TOTE-PDA-01-1  ← ok  \"Go to [A-01-01]\" next=bin\n  \
         → A-01-01  ← ok  \"Scan item [6901234567892]\" next=item"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walker_fails_when_a_scripted_fault_never_applies() {
    let rig = Rig::start(embedded().await, two_tasks()).await;
    let mut pda = rig.pda().await;
    let err = Walker::new(BADGE)
        .fault(Fault::LogoutAfter(5))
        .walk(&mut pda)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "fault logout-after=5 was scripted but never applied; got next=done after 2 task(s) \
         and 8 scan(s); expected a prompt where it applies"
    );
}

on_both_brokers!(
    dropping_the_pda_leaves_the_offline_will,
    |broker| async move {
        let rig = Rig::start(broker, two_tasks()).await;
        let pda = rig.pda().await;
        let mut watch = StatusWatch::start(&rig.broker, &rig.site, &rig.device).await;
        assert_eq!(
            watch.next().await,
            (DeviceStatus::Online, true),
            "retained online"
        );

        drop(pda); // no DISCONNECT: the broker must publish the will
        assert_eq!(watch.next().await.0, DeviceStatus::Offline);
        let mut later = StatusWatch::start(&rig.broker, &rig.site, &rig.device).await;
        assert_eq!(
            later.next().await,
            (DeviceStatus::Offline, true),
            "the will is retained"
        );
        later.clear().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_publishes_offline_itself() {
    let rig = Rig::start(embedded().await, two_tasks()).await;
    let pda = rig.pda().await;
    let mut watch = StatusWatch::start(&rig.broker, &rig.site, &rig.device).await;
    assert_eq!(watch.next().await.0, DeviceStatus::Online);
    pda.disconnect().await.unwrap();
    assert_eq!(watch.next().await.0, DeviceStatus::Offline);
    let mut later = StatusWatch::start(&rig.broker, &rig.site, &rig.device).await;
    assert_eq!(later.next().await, (DeviceStatus::Offline, true));
}

/// Runs the binary with `args` and `stdin`; returns (success, stdout, stderr).
async fn run_cli(args: Vec<String>, stdin: &'static str) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bondgate-sim"))
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (out.status.success(), text(out.stdout), text(out.stderr))
    })
    .await
    .unwrap()
}

fn cli_args(rig: &Rig, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "pda".to_owned(),
        "--broker".to_owned(),
        rig.broker.to_string(),
        "--site".to_owned(),
        rig.site.to_string(),
        "--device".to_owned(),
        rig.device.to_string(),
        "--client-id".to_owned(),
        support::unique("cli"),
        "--badge".to_owned(),
        BADGE.to_owned(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_walk_prints_the_transcript() {
    let rig = Rig::start(embedded().await, two_tasks()).await;
    let args = cli_args(&rig, &["--walk", "--fault", "wrong-bin-once"]);
    let (ok, stdout, stderr) = run_cli(args, "").await;
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 10, "{stdout}");
    assert_eq!(
        lines[0],
        "→ BADGE-alice  ← ok  \"Hello alice. Scan an empty tote\" next=tote"
    );
    assert_eq!(
        lines[2],
        "→ SIM-NO-SUCH-BIN  ← ERROR  \"Not what was asked: SIM-NO-SUCH-BIN\" next=bin"
    );
    assert_eq!(lines[9], "2 task(s) completed in 9 scan(s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_reads_codes_from_stdin_and_fails_on_an_unanswered_one() {
    let script = two_tasks().silent("SILENT");
    let rig = Rig::start(embedded().await, script).await;
    // Long enough for the answered scans on a loaded machine, short enough
    // not to slow the suite: only the silent scan waits it out.
    let args = cli_args(&rig, &["--timeout-ms", "1500"]);
    let (ok, stdout, stderr) = run_cli(args, "TOTE-PDA-01-1\n\nSILENT\nA-01-01\n").await;
    assert!(!ok, "an unanswered scan makes the exit code non-zero");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "→ BADGE-alice  ← ok  \"Hello alice. Scan an empty tote\" next=tote",
            "→ TOTE-PDA-01-1  ← ok  \"Go to [A-01-01]\" next=bin",
            "→ A-01-01  ← ok  \"Scan item [6901234567892]\" next=item",
        ]
    );
    assert!(stderr.contains("sent scan seq 3 \"SILENT\""), "{stderr}");
    assert!(stderr.contains("error: 1 scan(s) failed"), "{stderr}");
}
