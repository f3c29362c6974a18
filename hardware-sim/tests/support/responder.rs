//! A scripted stand-in for the server, to test the simulator client: it
//! answers scans on `bondgate/{site}/pda/+/scan` from a linear script, echoes
//! seqs, answers a replayed seq with the original prompt, and answers a
//! malformed payload with an error prompt carrying seq 0 — the grammar the
//! real server implements, in a dozen lines instead of a warehouse.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bondgate_protocol::{
    DeviceId, Next, PromptMsg, PromptText, ScanMsg, Site, Tone, Topic, TopicKind,
};
use bondgate_sim::BrokerAddr;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the responder answers, in order: scanning the expected code of the
/// current line gets its reply and moves on; anything else gets an error
/// prompt (without the code, as terse servers do) asking the same `next`.
#[derive(Debug, Clone)]
pub struct Script {
    start: Next,
    lines: Vec<(String, PromptMsg)>,
    /// Codes never answered (to test timeouts).
    silent: Vec<String>,
    /// Codes answered after a prompt for some other seq (to test skipping).
    noisy: Vec<String>,
}

impl Script {
    /// A script whose first scan answers a prompt asking for `start`.
    pub fn new(start: Next) -> Script {
        Script {
            start,
            lines: Vec::new(),
            silent: Vec::new(),
            noisy: Vec::new(),
        }
    }

    /// Scanning `expect` gets this reply.
    pub fn then(mut self, expect: &str, tone: Tone, text: &str, next: Next) -> Script {
        let reply = PromptMsg {
            seq: 0, // replaced by the scan's seq
            ok: tone != Tone::Error,
            tone,
            text: PromptText::new(text).unwrap(),
            next,
        };
        self.lines.push((expect.to_owned(), reply));
        self
    }

    pub fn silent(mut self, code: &str) -> Script {
        self.silent.push(code.to_owned());
        self
    }

    pub fn noisy(mut self, code: &str) -> Script {
        self.noisy.push(code.to_owned());
        self
    }
}

/// Where one device stands in the script.
#[derive(Default)]
struct DeviceState {
    line: usize,
    answers: HashMap<u64, PromptMsg>,
}

/// The running responder; every scan it decoded is in `scans`.
pub struct Responder {
    pub scans: Arc<Mutex<Vec<(DeviceId, ScanMsg)>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Responder {
    /// Connects, subscribes and returns once the subscription is acknowledged.
    pub async fn spawn(broker: &BrokerAddr, site: &Site, script: Script) -> Responder {
        let mut options =
            MqttOptions::new(super::unique("responder"), broker.host(), broker.port());
        options.set_keep_alive(Duration::from_secs(10));
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let mut network = eventloop.network_options();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let (incoming_tx, mut incoming) = mpsc::channel::<Publish>(64);
        let (acked_tx, mut acked) = mpsc::channel(1);
        // The poll task only polls; answers are published by the other task.
        let poll = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = incoming_tx.send(p).await;
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = acked_tx.try_send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        let scans = Arc::new(Mutex::new(Vec::new()));
        let log = scans.clone();
        let answerer = tokio::spawn({
            let client = client.clone();
            async move {
                let mut devices: HashMap<DeviceId, DeviceState> = HashMap::new();
                while let Some(publish) = incoming.recv().await {
                    let Ok((site, Topic::PdaScan { device })) = Topic::parse(&publish.topic) else {
                        continue;
                    };
                    let state = devices.entry(device.clone()).or_default();
                    let answers = answer(&script, state, &log, &device, &publish.payload);
                    let topic = Topic::PdaPrompt { device }.render(&site);
                    for prompt in answers {
                        client
                            .publish(&topic, QoS::AtLeastOnce, false, prompt.encode())
                            .await
                            .unwrap();
                    }
                }
            }
        });
        client
            .subscribe(TopicKind::PdaScan.filter(site), QoS::AtLeastOnce)
            .await
            .unwrap();
        tokio::time::timeout(super::WAIT, acked.recv())
            .await
            .expect("responder subscribed in time");
        Responder {
            scans,
            tasks: vec![poll, answerer],
        }
    }

    /// The (seq, barcode) of every scan received, replays included.
    pub fn received(&self) -> Vec<(u64, String)> {
        let scans = self.scans.lock().unwrap();
        scans
            .iter()
            .map(|(_, s)| (s.seq, s.barcode.as_str().to_owned()))
            .collect()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The prompts answering one payload (usually one; none for a silent code).
fn answer(
    script: &Script,
    state: &mut DeviceState,
    log: &Mutex<Vec<(DeviceId, ScanMsg)>>,
    device: &DeviceId,
    payload: &[u8],
) -> Vec<PromptMsg> {
    let scan = match ScanMsg::decode(payload) {
        Ok(scan) => scan,
        Err(error) => {
            return vec![PromptMsg {
                seq: 0,
                ok: false,
                tone: Tone::Error,
                text: PromptText::clamp(&error.to_string()),
                next: Next::Bin,
            }]
        }
    };
    log.lock().unwrap().push((device.clone(), scan.clone()));
    if let Some(original) = state.answers.get(&scan.seq) {
        return vec![original.clone()];
    }
    let code = scan.barcode.as_str();
    let mut out = Vec::new();
    if script.noisy.iter().any(|c| c == code) {
        out.push(PromptMsg {
            seq: scan.seq + 1000,
            ok: true,
            tone: Tone::Ok,
            text: PromptText::new("an answer to some other scan").unwrap(),
            next: Next::Item,
        });
    }
    if script.silent.iter().any(|c| c == code) {
        return out;
    }
    let reply = match script.lines.get(state.line) {
        Some((expect, reply)) if expect == code => {
            state.line += 1;
            reply.clone()
        }
        _ => {
            let asked = match state.line {
                0 => script.start,
                n => script.lines[n - 1].1.next,
            };
            PromptMsg {
                seq: 0,
                ok: false,
                tone: Tone::Error,
                text: PromptText::clamp(&format!("Not what was asked: {code}")),
                next: asked,
            }
        }
    };
    let reply = PromptMsg {
        seq: scan.seq,
        ..reply
    };
    state.answers.insert(scan.seq, reply.clone());
    out.push(reply);
    out
}
