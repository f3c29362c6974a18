//! The MQTT adapter against real brokers: the embedded rumqttd, the shared
//! Mosquitto (`BONDGATE_TEST_MQTT_URL`, default `mqtt://127.0.0.1:1883`) and a
//! `mosquitto` process killed and restarted. The "PDA" is a real rumqttc
//! client; only the handler is a double (it echoes). Each test has its own
//! site and client ids, so parallel tests on one Mosquitto never meet.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bondgate::mqtt::{
    BoxFuture, Broker, BrokerAddr, BrokerError, DeviceHandler, LinkOptions, MqttLink,
};
use bondgate_protocol::{
    Barcode, DeviceId, DeviceStatus, Next, PromptMsg, PromptText, ScanMsg, Site, Tone, Topic,
    TopicKind,
};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Longest wait for anything over the network; generous for a loaded CI box.
const WAIT: Duration = Duration::from_secs(15);
pub(crate) const MOSQUITTO: &str = "/usr/sbin/mosquitto";

pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Declares one test per broker from one body taking the broker URL.
macro_rules! on_both_brokers {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                let broker = Broker::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
                ($body)(broker.url()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mosquitto() {
                if let Some(url) = shared_mosquitto().await {
                    ($body)(url).await
                }
            }
        }
    };
}

/// The shared Mosquitto's URL; `None` (with a notice) if unreachable outside
/// CI, a panic if unreachable with `CI=true` — as `TestDb` does for PostgreSQL.
pub(crate) async fn shared_mosquitto() -> Option<String> {
    let url =
        std::env::var("BONDGATE_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into());
    let addr = BrokerAddr::parse(&url).expect("BONDGATE_TEST_MQTT_URL is mqtt://host:port");
    let connect = tokio::net::TcpStream::connect((addr.host(), addr.port()));
    match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(_)) => Some(url),
        _ if !in_ci() => {
            eprintln!("MQTT broker at {url} unreachable; skipping this Mosquitto test outside CI");
            None
        }
        _ => panic!("MQTT broker at {url} unreachable while CI=true"),
    }
}

/// The handler double: answers every scan with an echo, records calls.
struct Echo {
    scans: Mutex<Vec<(DeviceId, u64)>>,
    statuses: mpsc::UnboundedSender<(DeviceId, DeviceStatus)>,
}

impl DeviceHandler for Echo {
    fn on_scan(&self, _site: &Site, device: &DeviceId, scan: ScanMsg) -> BoxFuture<'_, PromptMsg> {
        let device = device.clone();
        Box::pin(async move {
            // Uneven work, so answers would overtake each other if one
            // device's scans ran concurrently.
            tokio::time::sleep(Duration::from_millis(scan.seq % 4)).await;
            self.scans.lock().unwrap().push((device.clone(), scan.seq));
            PromptMsg {
                seq: scan.seq,
                ok: true,
                tone: Tone::Ok,
                text: PromptText::clamp(&format!("{device} {}", scan.barcode.as_str())),
                next: Next::Item,
            }
        })
    }

    fn on_status(&self, _: &Site, device: &DeviceId, status: DeviceStatus) -> BoxFuture<'_, ()> {
        let _ = self.statuses.send((device.clone(), status));
        Box::pin(async {})
    }
}

struct Server {
    link: MqttLink,
    echo: Arc<Echo>,
    statuses: mpsc::UnboundedReceiver<(DeviceId, DeviceStatus)>,
    id: DeviceId,
}

/// Starts a link with the echo handler; does not wait for it to connect.
fn start_link(url: &str, site: &Site) -> Server {
    let (tx, statuses) = mpsc::unbounded_channel();
    let echo = Arc::new(Echo {
        scans: Mutex::default(),
        statuses: tx,
    });
    let id = DeviceId::new(&unique("srv")).unwrap();
    let options = LinkOptions::new(site.clone(), id.clone(), BrokerAddr::parse(url).unwrap());
    let link = MqttLink::start(options, echo.clone());
    Server {
        link,
        echo,
        statuses,
        id,
    }
}

impl Server {
    /// Shuts the link down cleanly and deletes its retained presence, so the
    /// shared broker does not collect one retained message per test run.
    async fn finish(self, url: &str, site: &Site) {
        self.link.shutdown().await;
        clear_retained(url, site, &status_topic(&self.id)).await;
    }

    async fn next_status(&mut self) -> (DeviceId, DeviceStatus) {
        match tokio::time::timeout(WAIT, self.statuses.recv()).await {
            Ok(Some(seen)) => seen,
            other => panic!("no status reached the handler: {other:?}"),
        }
    }
}

/// Deletes a retained message (an empty retained publish), waiting until the
/// broker has processed it (its SUBACK comes after the publish).
async fn clear_retained(url: &str, site: &Site, topic: &Topic) {
    let mut cleaner = Pda::connect(url, site, &unique("clean"), false).await;
    cleaner.publish(topic.render(site), Vec::new(), true).await;
    cleaner.subscribe(topic).await;
}

async fn connected_link(url: &str, site: &Site) -> Server {
    let server = start_link(url, site);
    assert!(server.link.wait_connected(WAIT).await, "connects to {url}");
    server
}

/// A real MQTT client standing in for a PDA (or any observer).
struct Pda {
    site: Site,
    id: DeviceId,
    client: AsyncClient,
    messages: mpsc::UnboundedReceiver<(String, Vec<u8>, bool)>,
    subacks: mpsc::UnboundedReceiver<()>,
    task: JoinHandle<()>,
}

impl Pda {
    /// Connects; with `will`, registers `offline` retained on its status topic.
    async fn connect(url: &str, site: &Site, name: &str, will: bool) -> Pda {
        let id = DeviceId::new(name).unwrap();
        let addr = BrokerAddr::parse(url).unwrap();
        let mut options = MqttOptions::new(format!("{site}-{name}"), addr.host(), addr.port());
        if will {
            let topic = status_topic(&id).render(site);
            options.set_last_will(LastWill::new(topic, "offline", QoS::AtLeastOnce, true));
        }
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let (messages_tx, messages) = mpsc::unbounded_channel();
        let (subacks_tx, subacks) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = messages_tx.send((p.topic, p.payload.to_vec(), p.retain));
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subacks_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Pda {
            site: site.clone(),
            id,
            client,
            messages,
            subacks,
            task,
        }
    }

    async fn subscribe(&mut self, topic: &Topic) {
        let filter = topic.render(&self.site);
        let subscribed = self.client.subscribe(filter, QoS::AtLeastOnce);
        subscribed.await.unwrap();
        let acked = tokio::time::timeout(WAIT, self.subacks.recv()).await;
        assert!(matches!(acked, Ok(Some(()))), "subscribed");
    }

    fn prompt_topic(&self) -> Topic {
        topic(TopicKind::PdaPrompt, &self.id)
    }

    async fn publish(&self, topic: String, payload: Vec<u8>, retain: bool) {
        let queued = self
            .client
            .publish(topic, QoS::AtLeastOnce, retain, payload);
        queued.await.unwrap();
    }

    async fn scan(&self, seq: u64, barcode: &str) {
        let scan = ScanMsg {
            seq,
            barcode: Barcode::new(barcode).unwrap(),
            ts: 1_700_000_000_000,
        };
        let scan_topic = topic(TopicKind::PdaScan, &self.id).render(&self.site);
        self.publish(scan_topic, scan.encode(), false).await;
    }

    /// The next message: (topic, payload, retain flag).
    async fn next(&mut self) -> (String, Vec<u8>, bool) {
        match tokio::time::timeout(WAIT, self.messages.recv()).await {
            Ok(Some(message)) => message,
            other => panic!("{}: no message within {WAIT:?}: {other:?}", self.id),
        }
    }

    async fn next_prompt(&mut self) -> PromptMsg {
        let (topic, payload, retain) = self.next().await;
        assert_eq!(topic, self.prompt_topic().render(&self.site));
        assert!(!retain, "prompts are never retained");
        PromptMsg::decode(&payload).unwrap()
    }

    async fn next_status(&mut self) -> (DeviceStatus, bool) {
        let (_, payload, retain) = self.next().await;
        (DeviceStatus::decode(&payload).unwrap(), retain)
    }
}

impl Drop for Pda {
    /// Ends the client like a crash (no DISCONNECT), so its will fires.
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn topic(kind: TopicKind, id: &DeviceId) -> Topic {
    Topic::new(kind, id.as_str()).unwrap()
}

fn status_topic(id: &DeviceId) -> Topic {
    topic(TopicKind::DeviceStatus, id)
}

on_both_brokers!(
    scan_is_answered_on_the_prompt_topic,
    |url: String| async move {
        let site = Site::new(&unique("t")).unwrap();
        let server = connected_link(&url, &site).await;
        let mut pda = Pda::connect(&url, &site, "pda-1", false).await;
        pda.subscribe(&pda.prompt_topic()).await;
        pda.scan(1, "6901234567892").await;
        let prompt = pda.next_prompt().await;
        assert_eq!((prompt.seq, prompt.ok, prompt.tone), (1, true, Tone::Ok));
        assert_eq!(prompt.text.as_str(), "pda-1 6901234567892");
        assert_eq!(*server.echo.scans.lock().unwrap(), [(pda.id.clone(), 1)]);
        server.finish(&url, &site).await;
    }
);

on_both_brokers!(
    malformed_scan_gets_an_error_prompt_and_skips_the_handler,
    |url: String| async move {
        let site = Site::new(&unique("t")).unwrap();
        let server = connected_link(&url, &site).await;
        let mut pda = Pda::connect(&url, &site, "pda-1", false).await;
        pda.subscribe(&pda.prompt_topic()).await;
        let scan_topic = topic(TopicKind::PdaScan, &pda.id).render(&site);
        let empty = br#"{"v":1,"seq":5,"barcode":"","ts":0}"#.to_vec();
        pda.publish(scan_topic.clone(), empty, false).await;
        let no = pda.next_prompt().await;
        assert_eq!((no.seq, no.ok, no.tone), (0, false, Tone::Error));
        assert_eq!((no.text.as_str(), no.next), ("barcode is empty", Next::Bin));
        pda.publish(scan_topic, b"SKU-1\r\n".to_vec(), false).await;
        let no = pda.next_prompt().await.text;
        assert!(
            no.as_str().starts_with("message is not valid JSON"),
            "{no:?}"
        );
        // A topic matching the subscription but not the tree (a space in the
        // device id) is dropped without an answer.
        let bad_topic = format!("bondgate/{site}/pda/pda 1/scan");
        pda.publish(bad_topic, b"{}".to_vec(), false).await;
        pda.scan(6, "SKU-1").await;
        assert_eq!(pda.next_prompt().await.seq, 6);
        assert_eq!(*server.echo.scans.lock().unwrap(), [(pda.id.clone(), 6)]);
        server.finish(&url, &site).await;
    }
);

on_both_brokers!(
    a_burst_is_answered_in_order_per_device,
    |url: String| async move {
        const BURST: u64 = 50;
        let site = Site::new(&unique("t")).unwrap();
        let server = connected_link(&url, &site).await;
        let mut pdas = Vec::new();
        for name in ["pda-a", "pda-b"] {
            let mut pda = Pda::connect(&url, &site, name, false).await;
            pda.subscribe(&pda.prompt_topic()).await;
            pdas.push(pda);
        }
        // Both PDAs fire their whole burst before reading a single prompt.
        for seq in 1..=BURST {
            for pda in &pdas {
                pda.scan(seq, &format!("CODE-{seq}")).await;
            }
        }
        for pda in &mut pdas {
            let mut seqs = Vec::new();
            for _ in 1..=BURST {
                seqs.push(pda.next_prompt().await.seq);
            }
            assert_eq!(seqs, (1..=BURST).collect::<Vec<_>>(), "{}", pda.id);
            let handled: Vec<u64> = (server.echo.scans.lock().unwrap().iter())
                .filter(|(device, _)| *device == pda.id)
                .map(|&(_, seq)| seq)
                .collect();
            assert_eq!(handled, seqs, "handler saw {}'s scans in order", pda.id);
        }
        server.finish(&url, &site).await;
    }
);

on_both_brokers!(
    link_presence_is_online_then_offline_by_will_or_shutdown,
    |url: String| async move {
        let site = Site::new(&unique("t")).unwrap();
        for crash in [true, false] {
            let server = start_link(&url, &site);
            let mut observer = Pda::connect(&url, &site, &unique("obs"), false).await;
            observer.subscribe(&status_topic(&server.id)).await;
            assert!(server.link.wait_connected(WAIT).await);
            assert_eq!(observer.next_status().await.0, DeviceStatus::Online);
            if crash {
                drop(server.link); // no DISCONNECT: the broker publishes the will
            } else {
                server.link.shutdown().await; // says `offline` itself
            }
            // `online` may reach the observer twice (the retained copy on
            // subscribing and the live one, when both race the connect):
            // what matters is that `offline` follows.
            let status = loop {
                let (status, _) = observer.next_status().await;
                if status != DeviceStatus::Online {
                    break status;
                }
            };
            assert_eq!(status, DeviceStatus::Offline, "crash={crash}");
            let mut late = Pda::connect(&url, &site, &unique("late"), false).await;
            late.subscribe(&status_topic(&server.id)).await;
            let retained = late.next_status().await;
            assert_eq!(retained, (DeviceStatus::Offline, true), "crash={crash}");
            clear_retained(&url, &site, &status_topic(&server.id)).await;
        }
    }
);

on_both_brokers!(
    device_status_reaches_the_handler_but_the_links_own_does_not,
    |url: String| async move {
        let site = Site::new(&unique("t")).unwrap();
        let mut server = connected_link(&url, &site).await;
        let pda = Pda::connect(&url, &site, "pda-1", true).await;
        let topic = status_topic(&pda.id).render(&site);
        pda.publish(topic.clone(), b"bogus".to_vec(), false).await;
        pda.publish(topic, b"online".to_vec(), true).await;
        let pda_id = pda.id.clone();
        let seen = server.next_status().await;
        assert_eq!(seen, (pda_id.clone(), DeviceStatus::Online));
        drop(pda); // crash: the broker publishes the PDA's will
        let seen = server.next_status().await;
        assert_eq!(seen, (pda_id.clone(), DeviceStatus::Offline));
        // A late `offline` about the link itself (e.g. the will of a stale
        // connection of ours) is not reported, and is corrected.
        let mut observer = Pda::connect(&url, &site, "obs", false).await;
        let own = status_topic(&server.id);
        observer.subscribe(&own).await;
        assert_eq!(observer.next_status().await.0, DeviceStatus::Online);
        observer
            .publish(own.render(&site), b"offline".to_vec(), true)
            .await;
        assert_eq!(observer.next_status().await.0, DeviceStatus::Offline);
        assert_eq!(observer.next_status().await.0, DeviceStatus::Online);
        while let Ok((device, _)) = server.statuses.try_recv() {
            assert_ne!(device, server.id);
        }
        clear_retained(&url, &site, &status_topic(&pda_id)).await;
        server.finish(&url, &site).await;
    }
);

/// A `mosquitto` of our own, on a port of our own, that we can kill.
pub(crate) struct Mosquitto(Child);

impl Mosquitto {
    pub(crate) async fn spawn(port: u16) -> Mosquitto {
        let child = Command::new(MOSQUITTO)
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        let mosquitto = Mosquitto(child);
        let deadline = Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "mosquitto listens on {port}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        mosquitto
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_waits_for_the_broker_and_comes_back_after_a_restart() {
    if !std::path::Path::new(MOSQUITTO).exists() {
        assert!(!in_ci(), "{MOSQUITTO} missing while CI=true");
        eprintln!("{MOSQUITTO} not installed; skipping the broker restart test outside CI");
        return;
    }
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let url = format!("mqtt://127.0.0.1:{port}");
    let site = Site::new(&unique("t")).unwrap();
    // Started before the broker exists: it must keep trying, with backoff.
    let server = start_link(&url, &site);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!server.link.is_connected());
    let broker = Mosquitto::spawn(port).await;
    assert!(server.link.wait_connected(WAIT).await, "connects when up");
    let mut pda = Pda::connect(&url, &site, "pda-1", false).await;
    pda.subscribe(&pda.prompt_topic()).await;
    pda.scan(1, "A").await;
    assert_eq!(pda.next_prompt().await.seq, 1);

    drop(broker); // SIGKILL: no goodbye to anyone
    drop(pda);
    let deadline = Instant::now() + WAIT;
    while server.link.is_connected() {
        assert!(
            Instant::now() < deadline,
            "the link notices the broker is gone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _broker = Mosquitto::spawn(port).await;
    assert!(server.link.wait_connected(WAIT).await, "reconnects");

    // The restarted broker kept nothing: answering proves the link subscribed
    // again, and its `online` proves it announced itself again.
    let mut pda = Pda::connect(&url, &site, "pda-1", false).await;
    pda.subscribe(&status_topic(&server.id)).await;
    assert_eq!(pda.next_status().await.0, DeviceStatus::Online);
    pda.subscribe(&pda.prompt_topic()).await;
    pda.scan(2, "B").await;
    assert_eq!(pda.next_prompt().await.seq, 2);
    server.link.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_brokers_get_their_own_ports_and_refuse_taken_ones() {
    let a = Broker::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let b = Broker::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    assert_ne!(a.addr(), b.addr());
    assert!(a.is_running() && b.is_running());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = Broker::start(addr).await.unwrap_err();
    assert!(matches!(err, BrokerError::AddressInUse { .. }), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    // A taken port is refused even when the other listener is a broker.
    let err = Broker::start(a.addr()).await.unwrap_err();
    assert!(matches!(err, BrokerError::AddressInUse { .. }), "{err}");
}
