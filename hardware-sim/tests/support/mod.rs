//! Test rig: a real MQTT broker (an embedded rumqttd per test, or the shared
//! Mosquitto CI starts), a scripted responder standing in for the server, and
//! small MQTT helpers. Nothing here mocks MQTT; only the server's answers are
//! scripted, to test the simulator client itself.

pub mod broker;
pub mod responder;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bondgate_protocol::{DeviceId, DeviceStatus, Site, Topic, TopicKind};
use bondgate_sim::{BrokerAddr, Pda, PdaOptions};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use responder::{Responder, Script};

/// Longest wait for anything that should happen at once over the network;
/// generous for a loaded CI machine, and only reached when a test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// An id unique across tests, test processes and runs, so tests sharing a
/// broker (Mosquitto keeps retained messages between runs) never meet.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos}-{n}", std::process::id())
}

/// A broker, a site and device of the test's own, and the responder.
pub struct Rig {
    pub broker: BrokerAddr,
    pub site: Site,
    pub device: DeviceId,
    pub responder: Responder,
}

impl Rig {
    /// Starts a responder playing `script` on `broker`.
    pub async fn start(broker: BrokerAddr, script: Script) -> Rig {
        let site = Site::new(&unique("sim")).unwrap();
        let device = DeviceId::new("PDA-01").unwrap();
        let responder = Responder::spawn(&broker, &site, script).await;
        Rig {
            broker,
            site,
            device,
            responder,
        }
    }

    pub fn options(&self) -> PdaOptions {
        let mut options =
            PdaOptions::new(self.broker.clone(), self.site.clone(), self.device.clone());
        options.client_id = unique("pda");
        options
    }

    /// A connected, subscribed PDA.
    pub async fn pda(&self) -> Pda {
        let pda = Pda::connect(self.options()).await.unwrap();
        pda.wait_ready().await.unwrap();
        pda
    }
}

/// A plain MQTT client with its poll task; incoming publishes go to `rx`.
pub struct Client {
    pub client: AsyncClient,
    pub rx: mpsc::Receiver<rumqttc::Publish>,
    poll: JoinHandle<()>,
}

impl Client {
    /// Connects and subscribes to `filter`, returning after the SubAck.
    pub async fn subscribed(broker: &BrokerAddr, filter: &str) -> Client {
        let mut options = MqttOptions::new(unique("watch"), broker.host(), broker.port());
        options.set_keep_alive(Duration::from_secs(10));
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        let (tx, rx) = mpsc::channel(64);
        let (acked_tx, mut acked) = mpsc::channel(1);
        let poll = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(p).await;
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = acked_tx.try_send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        tokio::time::timeout(WAIT, acked.recv())
            .await
            .expect("SubAck in time");
        Client { client, rx, poll }
    }

    /// The next publish, within [`WAIT`].
    pub async fn next(&mut self) -> rumqttc::Publish {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("a message in time")
            .expect("client running")
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.poll.abort();
    }
}

/// Watches one device's presence topic.
pub struct StatusWatch {
    client: Client,
    topic: String,
}

impl StatusWatch {
    pub async fn start(broker: &BrokerAddr, site: &Site, device: &DeviceId) -> StatusWatch {
        let topic = Topic::new(TopicKind::DeviceStatus, device.as_str())
            .unwrap()
            .render(site);
        StatusWatch {
            client: Client::subscribed(broker, &topic).await,
            topic,
        }
    }

    /// The next status published (or retained) and whether it was retained.
    pub async fn next(&mut self) -> (DeviceStatus, bool) {
        let p = self.client.next().await;
        assert_eq!(p.topic, self.topic);
        (DeviceStatus::decode(&p.payload).unwrap(), p.retain)
    }

    /// Clears the retained status, so a shared broker does not keep it.
    pub async fn clear(self) {
        let c = &self.client.client;
        c.publish(&self.topic, QoS::AtLeastOnce, true, Vec::new())
            .await
            .unwrap();
        // Let the poll task send it before the client is dropped.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
