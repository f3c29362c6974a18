//! One simulated handheld on MQTT (PROTOCOLS.md §3 and §5, DESIGN.md §4).
//!
//! A [`Pda`] publishes scans on `pda/{device}/scan` (QoS 1, never retained)
//! and waits for the prompt on `pda/{device}/prompt` that echoes the scan's
//! `seq`. It announces itself with `online` (retained) on
//! `devices/{device}/status` after every connect and registers `offline`
//! (retained) as its last will, so dropping it without
//! [`Pda::disconnect`] looks to the broker like a PDA whose battery died.
//!
//! Two background tasks, wired by bounded channels (see `pda/link.rs`): one polls
//! rumqttc's event loop and does nothing else, one re-subscribes and
//! re-announces after every ConnAck. The [`Pda`] value itself only publishes
//! and reads prompts, so it can be scripted step by step from a test.

mod link;

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bondgate_protocol::{
    Barcode, DeviceId, DeviceStatus, FieldError, PayloadError, PromptMsg, ScanMsg, Site, Topic,
    TopicKind,
};
use rumqttc::{AsyncClient, LastWill, MqttOptions, QoS};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::transcript::PromptLine;
use crate::BrokerAddr;
use link::{LinkState, Poller, Received, Session};

/// How long a scan waits for its prompt, and [`Pda::wait_ready`] for the
/// connection, unless configured otherwise. The server answers in
/// milliseconds; 5 s is about when a real picker gives up and rescans, and
/// leaves room for a loaded CI machine.
pub const TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// How often an idle PDA pings the broker. The broker declares it gone (and
/// publishes the `offline` will) after 1.5 × this without a packet, so a
/// simulated PDA that hangs shows up as offline within 15 s, as the server's
/// own link does.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Largest MQTT packet sent or received. Prompts are at most
/// `bondgate_protocol::PAYLOAD_BYTES_MAX` (1 KiB); 64 KiB also lets
/// [`Pda::publish_raw`] send deliberately oversized payloads to test the
/// server's size limit, while staying under the server's own packet limit
/// (256 KiB), which would otherwise drop our connection instead.
pub const PACKET_BYTES_MAX: usize = 64 * 1024;

/// Prompts received and not yet read. A PDA has one scan outstanding at a
/// time, so a handful would do; 64 absorbs stray prompts (late answers to
/// timed-out scans, replays) without letting a misbehaving server grow our
/// memory. When full, new prompts are dropped with a warning (the poll task
/// must never block: it also keeps the connection alive).
pub const PROMPT_QUEUE_DEPTH: usize = 64;

/// Requests (publishes, subscribes) waiting for the poll task. One scan at a
/// time plus the status and subscription after a reconnect fit many times.
const REQUEST_CHANNEL_CAPACITY: usize = 16;

/// Longest client id accepted. MQTT 3.1.1 only promises 23 characters, but
/// Mosquitto, EMQX and rumqttd take far more; 128 keeps log lines readable.
pub const CLIENT_ID_CHARS_MAX: usize = 128;

/// How long [`Pda::disconnect`] waits for `offline` and DISCONNECT to go out
/// before dropping the connection (the will then says `offline` instead).
pub const DISCONNECT_GRACE: Duration = Duration::from_secs(2);

/// Prompts for other seqs quoted in a timeout error: enough to see what the
/// server was answering instead, short enough to read.
const IGNORED_SHOWN_MAX: usize = 4;

/// How to reach the broker and who this PDA is.
#[derive(Debug, Clone)]
pub struct PdaOptions {
    /// The broker the server listens on.
    pub broker: BrokerAddr,
    /// The site (topic segment) the PDA belongs to.
    pub site: Site,
    /// The PDA's id (topic segment); the server keys de-duplication on it.
    pub device: DeviceId,
    /// MQTT client id; must be unique on the broker, or the broker drops the
    /// older connection. Defaults to `sim-{site}-{device}`.
    pub client_id: String,
    /// How long a scan waits for its prompt, and [`Pda::wait_ready`] for the
    /// connection.
    pub timeout: Duration,
    /// The seq of the first scan. A real PDA keeps counting across restarts;
    /// set this above the last seq the server saw to continue a session, or to
    /// an old value to replay. Never 0: that seq answers malformed payloads.
    pub first_seq: u64,
}

impl PdaOptions {
    /// Options with the defaults: client id `sim-{site}-{device}`,
    /// [`TIMEOUT_DEFAULT`], first seq 1.
    pub fn new(broker: BrokerAddr, site: Site, device: DeviceId) -> PdaOptions {
        PdaOptions {
            client_id: format!("sim-{site}-{device}"),
            broker,
            site,
            device,
            timeout: TIMEOUT_DEFAULT,
            first_seq: 1,
        }
    }

    fn check(&self) -> Result<(), PdaError> {
        let id = &self.client_id;
        if id.is_empty() || id.chars().count() > CLIENT_ID_CHARS_MAX {
            return Err(PdaError::Options(format!(
                "client id must have 1 to {CLIENT_ID_CHARS_MAX} characters, got {}",
                id.chars().count()
            )));
        }
        if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(PdaError::Options(format!(
                "client id {id:?} contains whitespace or a control character"
            )));
        }
        if self.first_seq == 0 {
            return Err(PdaError::Options(
                "first seq must be at least 1 (seq 0 is the server's answer to a malformed payload)".into(),
            ));
        }
        if self.timeout.is_zero() {
            return Err(PdaError::Options("timeout must be above zero".into()));
        }
        Ok(())
    }
}

/// What went wrong, written for the person running the simulation: each
/// message says what was sent, what came back and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum PdaError {
    /// The options cannot work.
    #[error("invalid PDA options: {0}")]
    Options(String),
    /// The code cannot be a scan.
    #[error("cannot send {code:?} as a scan: {error} (expected a barcode of 1 to 128 characters without control characters)")]
    BadBarcode {
        /// The code as given.
        code: String,
        /// What the protocol crate says is wrong.
        error: FieldError,
    },
    /// No connection and subscription within the timeout.
    #[error("sent nothing: not connected to {broker} and subscribed to {topic} after {waited:?} (expected a ConnAck and a SubAck; last error: {last_error})")]
    NotReady {
        /// The broker.
        broker: String,
        /// The prompt topic we subscribe to.
        topic: String,
        /// How long we waited.
        waited: Duration,
        /// The last connection error, or "none".
        last_error: String,
    },
    /// The prompt echoing the scan's seq did not arrive in time.
    #[error(
        "sent {sent}; expected a prompt with seq {seq} on {topic} within {waited:?}; got {got}"
    )]
    Timeout {
        /// What was sent.
        sent: String,
        /// The seq waited for.
        seq: u64,
        /// The prompt topic.
        topic: String,
        /// How long we waited.
        waited: Duration,
        /// What arrived instead ("nothing", or other prompts).
        got: String,
    },
    /// [`Pda::next_prompt`] found nothing in time.
    #[error("sent {sent}; expected a prompt on {topic} within {waited:?}; got nothing")]
    NoPrompt {
        /// What was sent last.
        sent: String,
        /// The prompt topic.
        topic: String,
        /// How long we waited.
        waited: Duration,
    },
    /// A prompt payload that does not decode.
    #[error("sent {sent}; expected a prompt; got a payload that does not decode ({error}): {raw}")]
    BadPrompt {
        /// What was sent last.
        sent: String,
        /// The payload, as lossy text.
        raw: String,
        /// What the protocol crate says is wrong.
        error: PayloadError,
    },
    /// The background tasks are gone (the connection was closed).
    #[error("sent {sent}; expected the MQTT client to run until disconnect; got a stopped client")]
    Closed {
        /// What was sent (or attempted) last.
        sent: String,
    },
}

/// A connected (or connecting) simulated PDA. Dropping it without
/// [`Pda::disconnect`] aborts its tasks as a crash would: the connection
/// closes without DISCONNECT and the broker publishes the `offline` will.
#[derive(Debug)]
pub struct Pda {
    client: AsyncClient,
    site: Site,
    device: DeviceId,
    broker: BrokerAddr,
    scan_topic: String,
    prompt_topic: String,
    status_topic: String,
    timeout: Duration,
    /// The seq [`Pda::scan`] uses next; never one already sent.
    next_seq: u64,
    last_seq: Option<u64>,
    /// What was sent last, for error messages.
    last_sent: String,
    prompts: mpsc::Receiver<Received>,
    link: watch::Receiver<LinkState>,
    session: JoinHandle<()>,
    poll: Option<JoinHandle<()>>,
}

impl Pda {
    /// Starts connecting in the background and returns at once; call
    /// [`Pda::wait_ready`] before timing anything. Must run inside a tokio
    /// runtime. Fails only on options that cannot work.
    pub async fn connect(options: PdaOptions) -> Result<Pda, PdaError> {
        options.check()?;
        let topic = |kind| {
            Topic::new(kind, options.device.as_str())
                .expect("a DeviceId is a valid topic id")
                .render(&options.site)
        };
        let (scan_topic, prompt_topic) = (topic(TopicKind::PdaScan), topic(TopicKind::PdaPrompt));
        let status_topic = topic(TopicKind::DeviceStatus);

        let mut mqtt = MqttOptions::new(
            options.client_id.as_str(),
            options.broker.host(),
            options.broker.port(),
        );
        mqtt.set_keep_alive(KEEP_ALIVE)
            .set_clean_session(true)
            .set_max_packet_size(PACKET_BYTES_MAX, PACKET_BYTES_MAX)
            .set_last_will(LastWill::new(
                &status_topic,
                DeviceStatus::Offline.encode(),
                QoS::AtLeastOnce,
                TopicKind::DeviceStatus.retained(),
            ));
        if let Some((user, password)) = options.broker.credentials() {
            mqtt.set_credentials(user, password);
        }
        let (client, mut eventloop) = AsyncClient::new(mqtt, REQUEST_CHANNEL_CAPACITY);
        // A scan is one small packet someone is waiting on: Nagle's
        // algorithm would hold it back for the broker's delayed ACK.
        let mut network = eventloop.network_options();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let (state_tx, link) = watch::channel(LinkState::default());
        let (prompts_tx, prompts) = mpsc::channel(PROMPT_QUEUE_DEPTH);

        let poller = Poller {
            eventloop,
            broker: options.broker.to_string(),
            prompt_topic: prompt_topic.clone(),
            state: state_tx,
            prompts: prompts_tx,
        };
        let session = Session {
            client: client.clone(),
            prompt_topic: prompt_topic.clone(),
            status_topic: status_topic.clone(),
            state: link.clone(),
        };
        Ok(Pda {
            client,
            site: options.site,
            device: options.device,
            broker: options.broker,
            scan_topic,
            prompt_topic,
            status_topic,
            timeout: options.timeout,
            next_seq: options.first_seq,
            last_seq: None,
            last_sent: "nothing yet".to_owned(),
            prompts,
            link,
            session: tokio::spawn(session.run()),
            poll: Some(tokio::spawn(poller.run())),
        })
    }

    /// Waits until the PDA is connected and subscribed to its prompt topic
    /// (the SubAck arrived), at most the configured timeout.
    pub async fn wait_ready(&self) -> Result<(), PdaError> {
        let mut link = self.link.clone();
        let ready = link.wait_for(|s| s.subscribed);
        if let Ok(Ok(_)) = tokio::time::timeout(self.timeout, ready).await {
            return Ok(());
        }
        let last_error = self.link.borrow().last_error.clone();
        Err(PdaError::NotReady {
            broker: self.broker.to_string(),
            topic: self.prompt_topic.clone(),
            waited: self.timeout,
            last_error: last_error.unwrap_or_else(|| "none".to_owned()),
        })
    }

    /// Scans `code` with the next seq and returns the prompt echoing it.
    /// Prompts for other seqs (late answers, replies to earlier replays) are
    /// skipped. Waits for the connection first, like a PDA that buffers a
    /// scan while its Wi-Fi reconnects.
    pub async fn scan(&mut self, code: &str) -> Result<PromptMsg, PdaError> {
        self.scan_with_seq(self.next_seq, code).await
    }

    /// Scans `code` with the given seq, e.g. an old one to replay a scan on
    /// purpose (the server must answer with its original prompt, no second
    /// effect). [`Pda::scan`] never reuses a seq sent before.
    pub async fn scan_with_seq(&mut self, seq: u64, code: &str) -> Result<PromptMsg, PdaError> {
        let barcode = Barcode::new(code).map_err(|error| PdaError::BadBarcode {
            code: code.to_owned(),
            error,
        })?;
        let scan = ScanMsg {
            seq,
            barcode,
            ts: now_ms(),
        };
        let sent = format!("scan seq {seq} {code:?} on {}", self.scan_topic);
        self.send(sent, scan.encode()).await?;
        self.next_seq = self.next_seq.max(seq.saturating_add(1));
        self.last_seq = Some(seq);
        self.await_seq(seq).await
    }

    /// Publishes `payload` as is on the scan topic (QoS 1, not retained),
    /// for testing how the server treats malformed scans; read the answer
    /// with [`Pda::next_prompt`].
    pub async fn publish_raw(&mut self, payload: impl Into<Vec<u8>>) -> Result<(), PdaError> {
        let payload = payload.into();
        let sent = format!(
            "raw payload {:?} on {}",
            String::from_utf8_lossy(&payload),
            self.scan_topic
        );
        self.send(sent, payload).await
    }

    /// The next prompt to arrive, whatever its seq, within the timeout.
    pub async fn next_prompt(&mut self) -> Result<PromptMsg, PdaError> {
        let received = tokio::time::timeout(self.timeout, self.prompts.recv()).await;
        match received {
            Ok(Some(Received::Prompt(prompt))) => Ok(prompt),
            Ok(Some(Received::Malformed { raw, error })) => Err(PdaError::BadPrompt {
                sent: self.last_sent.clone(),
                raw,
                error,
            }),
            Ok(None) => Err(PdaError::Closed {
                sent: self.last_sent.clone(),
            }),
            Err(_) => Err(PdaError::NoPrompt {
                sent: self.last_sent.clone(),
                topic: self.prompt_topic.clone(),
                waited: self.timeout,
            }),
        }
    }

    /// Changes how long scans wait for their prompt (and
    /// [`Pda::wait_ready`] for the connection) from now on.
    pub fn set_timeout(&mut self, timeout: Duration) {
        assert!(!timeout.is_zero(), "a zero timeout can never be met");
        self.timeout = timeout;
    }

    /// The seq of the most recent scan sent, if any.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// The PDA's id.
    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// The PDA's site.
    pub fn site(&self) -> &Site {
        &self.site
    }

    /// Whether the PDA is connected and subscribed right now.
    pub fn is_ready(&self) -> bool {
        self.link.borrow().subscribed
    }

    /// Leaves cleanly: publishes `offline` (retained; a clean DISCONNECT
    /// discards the will, so the PDA says it itself), disconnects and stops
    /// its tasks. Past [`DISCONNECT_GRACE`] the connection is just dropped
    /// and the broker's will says `offline` instead.
    pub async fn disconnect(mut self) -> Result<(), PdaError> {
        let goodbye = async {
            let offline = DeviceStatus::Offline.encode();
            let retain = TopicKind::DeviceStatus.retained();
            self.client
                .publish(&self.status_topic, QoS::AtLeastOnce, retain, offline)
                .await?;
            self.client.disconnect().await
        };
        let sent = tokio::time::timeout(DISCONNECT_GRACE, goodbye).await;
        if let Some(mut poll) = self.poll.take() {
            if tokio::time::timeout(DISCONNECT_GRACE, &mut poll)
                .await
                .is_err()
            {
                tracing::warn!(device = %self.device, "no clean disconnect; the broker's will reports offline");
                poll.abort();
            }
        }
        match sent {
            Ok(Err(_)) => Err(PdaError::Closed {
                sent: format!("\"offline\" on {}", self.status_topic),
            }),
            _ => Ok(()),
        }
    }

    /// Publishes a scan or raw payload once the link is ready.
    async fn send(&mut self, sent: String, payload: Vec<u8>) -> Result<(), PdaError> {
        self.wait_ready().await?;
        self.discard_stale();
        let retain = TopicKind::PdaScan.retained();
        let published = self
            .client
            .publish(&self.scan_topic, QoS::AtLeastOnce, retain, payload)
            .await;
        tracing::debug!(device = %self.device, "{sent}");
        self.last_sent = sent;
        published.map_err(|_| PdaError::Closed {
            sent: self.last_sent.clone(),
        })
    }

    /// Drops prompts that arrived before this send, so an answer is never
    /// taken from an earlier exchange (e.g. a late reply to a timed-out scan
    /// that happens to share the seq being replayed).
    fn discard_stale(&mut self) {
        while let Ok(stale) = self.prompts.try_recv() {
            tracing::debug!(device = %self.device, ?stale, "discarding a prompt nobody waited for");
        }
    }

    /// Waits for the prompt with `seq`, skipping others.
    async fn await_seq(&mut self, seq: u64) -> Result<PromptMsg, PdaError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut ignored = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.prompts.recv()).await {
                Ok(Some(Received::Prompt(prompt))) if prompt.seq == seq => return Ok(prompt),
                Ok(Some(other)) => {
                    tracing::debug!(device = %self.device, seq, ?other, "skipping a prompt for another scan");
                    ignored.push(other);
                }
                Ok(None) => {
                    return Err(PdaError::Closed {
                        sent: self.last_sent.clone(),
                    })
                }
                Err(_) => {
                    return Err(PdaError::Timeout {
                        sent: self.last_sent.clone(),
                        seq,
                        topic: self.prompt_topic.clone(),
                        waited: self.timeout,
                        got: describe_ignored(&ignored),
                    })
                }
            }
        }
    }
}

impl Drop for Pda {
    fn drop(&mut self) {
        self.session.abort();
        if let Some(poll) = &self.poll {
            poll.abort();
        }
    }
}

/// "nothing", or the prompts that arrived for other seqs.
fn describe_ignored(ignored: &[Received]) -> String {
    if ignored.is_empty() {
        return "nothing".to_owned();
    }
    let mut got = format!("only {} other message(s):", ignored.len());
    for received in ignored.iter().take(IGNORED_SHOWN_MAX) {
        match received {
            Received::Prompt(p) => write!(got, " [seq {} {}]", p.seq, PromptLine(p)),
            Received::Malformed { raw, error } => write!(got, " [undecodable ({error}): {raw}]"),
        }
        .expect("writing to a String cannot fail");
    }
    if ignored.len() > IGNORED_SHOWN_MAX {
        got.push_str(" …");
    }
    got
}

/// Unix milliseconds, the `ts` of a scan (device clock).
fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> PdaOptions {
        PdaOptions::new(
            BrokerAddr::parse("mqtt://127.0.0.1:1").unwrap(),
            Site::new("SH01").unwrap(),
            DeviceId::new("PDA-01").unwrap(),
        )
    }

    #[test]
    fn defaults_name_the_client_after_site_and_device() {
        let o = options();
        assert_eq!(o.client_id, "sim-SH01-PDA-01");
        assert_eq!((o.timeout, o.first_seq), (TIMEOUT_DEFAULT, 1));
        assert!(o.check().is_ok());
    }

    #[test]
    fn refuses_options_that_cannot_work() {
        type Spoil = fn(&mut PdaOptions);
        let cases: [(Spoil, &str); 4] = [
            (|o| o.client_id.clear(), "client id must have"),
            (|o| o.client_id = "a b".into(), "whitespace"),
            (|o| o.first_seq = 0, "first seq must be at least 1"),
            (|o| o.timeout = Duration::ZERO, "timeout"),
        ];
        for (spoil, want) in cases {
            let mut o = options();
            spoil(&mut o);
            let err = o.check().unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
