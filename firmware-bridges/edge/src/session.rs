//! The bridge's MQTT session (PROTOCOLS.md §5).
//!
//! One poll task only polls the event loop (requests from the polling task
//! can deadlock) and sleeps a [`Backoff`] delay after each failure, since
//! rumqttc would otherwise reconnect at once, for ever. What it receives
//! goes to the bridge through [`Session::next`], which on every ConnAck
//! first renews the bridge's subscriptions and publishes the retained
//! `online` — in that order, so whoever sees `online` knows the bridge is
//! listening. `offline` is registered as the retained last will, and the
//! client id is the device id, so a restarted bridge takes over its old
//! session at the broker and the old session's will cannot land after the
//! new `online`.
//!
//! The session is clean: whatever was queued for a connection that died is
//! dropped by rumqttc at the next ConnAck rather than sent late, and
//! [`Session::is_connected`] lets a bridge not queue on a dead link at all.
//! Dropping the session stops the poll task without a DISCONNECT, so the
//! broker publishes the will.

use std::hash::{BuildHasher as _, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bondgate_protocol::{Backoff, DeviceStatus, Topic, TopicKind};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS, SubscribeFilter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::EdgeConfig;

/// Requests queued for the MQTT client: a bridge publishes a few messages
/// a second at most.
const REQUEST_CAPACITY: usize = 64;

/// Messages queued from the poll task to the bridge; past this, incoming
/// messages are dropped (and logged) rather than stalling the poll task,
/// which would miss keep-alives.
const INCOMING_CAPACITY: usize = 256;

/// Largest MQTT packet sent or received: a printer bridge's label jobs
/// (`bondgate_protocol::JOB_BYTES_MAX`, 128 KiB, plus header and topic)
/// must fit, as in the server's link; rumqttc's default of 10 KiB would
/// drop the connection on the first label with a QR code.
pub const PACKET_BYTES_MAX: usize = 256 * 1024;

/// MQTT keep-alive: a dead link is noticed within about one and a half of
/// these.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// What the session hands the bridge.
#[derive(Debug)]
pub enum SessionEvent {
    /// Connected (again): subscriptions renewed and `online` published.
    Connected,
    /// A message on one of the bridge's subscriptions.
    Publish(rumqttc::Publish),
    /// The connection failed; the poll task is backing off.
    Lost,
}

/// A bridge's connection to the broker.
#[derive(Debug)]
pub struct Session {
    client: AsyncClient,
    incoming: mpsc::Receiver<SessionEvent>,
    connected: Arc<AtomicBool>,
    status_topic: String,
    subscriptions: Vec<String>,
    site: bondgate_protocol::Site,
    poll: JoinHandle<()>,
}

impl Session {
    /// Starts connecting as `config.device`, subscribing (QoS 1) to
    /// `subscriptions` on every connect. Returns at once; the first
    /// [`SessionEvent::Connected`] says when the broker answered.
    pub fn start(config: &EdgeConfig, subscriptions: Vec<String>) -> Session {
        let status_topic = Topic::new(TopicKind::DeviceStatus, config.device.as_str())
            .expect("a DeviceId is a valid topic id")
            .render(&config.site);
        let mut mqtt = MqttOptions::new(
            config.device.as_str(),
            config.broker.host(),
            config.broker.port(),
        );
        mqtt.set_keep_alive(KEEP_ALIVE)
            .set_max_packet_size(PACKET_BYTES_MAX, PACKET_BYTES_MAX)
            .set_clean_session(true)
            .set_last_will(LastWill::new(
                &status_topic,
                DeviceStatus::Offline.encode(),
                QoS::AtLeastOnce,
                TopicKind::DeviceStatus.retained(),
            ));
        if let Some((user, password)) = config.broker.credentials() {
            mqtt.set_credentials(user, password);
        }
        let (client, mut eventloop) = AsyncClient::new(mqtt, REQUEST_CAPACITY);
        // Small packets someone waits on: no Nagle delay.
        let mut network = eventloop.network_options();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);

        let (tx, incoming) = mpsc::channel(INCOMING_CAPACITY);
        let connected = Arc::new(AtomicBool::new(false));
        let flag = connected.clone();
        let broker = config.broker.to_string();
        let poll = tokio::spawn(async move {
            let mut backoff = Backoff::new();
            let mut since: Option<Instant> = None;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        since = Some(Instant::now());
                        flag.store(true, Ordering::SeqCst);
                        tracing::info!(%broker, "connected");
                        if tx.send(SessionEvent::Connected).await.is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.try_send(SessionEvent::Publish(p)).is_err() {
                            tracing::warn!("incoming queue full; message dropped");
                        }
                    }
                    Ok(_) => {}
                    Err(rumqttc::ConnectionError::RequestsDone) => return,
                    Err(error) => {
                        flag.store(false, Ordering::SeqCst);
                        let _ = tx.try_send(SessionEvent::Lost);
                        // A connection that lasted is a new incident; one
                        // dropped at once (a duplicate client id, an ACL
                        // refusal) keeps backing off.
                        if since
                            .take()
                            .is_some_and(|t| t.elapsed() >= Backoff::RESET_AFTER)
                        {
                            backoff.reset();
                        }
                        let delay = backoff.next_delay_with(RandomState::new().hash_one(0_u8));
                        tracing::warn!(%broker, %error, ?delay, "connection failed; retrying");
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        });
        Session {
            client,
            incoming,
            connected,
            status_topic,
            subscriptions,
            site: config.site.clone(),
            poll,
        }
    }

    /// The next event. On a ConnAck, renews the subscriptions and publishes
    /// `online` (retained) before returning [`SessionEvent::Connected`].
    /// `None` once the poll task has ended.
    pub async fn next(&mut self) -> Option<SessionEvent> {
        let event = self.incoming.recv().await?;
        if let SessionEvent::Connected = event {
            if !self.subscriptions.is_empty() {
                let filters = self
                    .subscriptions
                    .iter()
                    .map(|t| SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
                if let Err(error) = self.client.subscribe_many(filters).await {
                    tracing::warn!(%error, "subscriptions not queued");
                }
            }
            self.publish_retained(&self.status_topic, DeviceStatus::Online.encode())
                .await;
        }
        Some(event)
    }

    /// Whether the broker has answered and the link has not failed since.
    /// A message that must not arrive late is not queued while this is
    /// false.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// The MQTT client, for publishing.
    pub fn client(&self) -> &AsyncClient {
        &self.client
    }

    /// The full name of `topic` on this site.
    pub fn render(&self, topic: &Topic) -> String {
        topic.render(&self.site)
    }

    /// Publishes on `topic` with QoS 1, retained exactly when its kind is;
    /// `false` if the request could not be queued.
    pub async fn publish(&self, topic: &Topic, payload: Vec<u8>) -> bool {
        let retain = topic.kind().retained();
        match self
            .client
            .publish(self.render(topic), QoS::AtLeastOnce, retain, payload)
            .await
        {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, kind = ?topic.kind(), "publish not queued");
                false
            }
        }
    }

    /// As [`Session::publish`], but never waits for room in the request
    /// queue: `false`, and nothing queued, when it is full (a link dying
    /// unnoticed). For readings that are stale by the time there is room,
    /// and whose producer must not stall.
    pub fn try_publish(&self, topic: &Topic, payload: Vec<u8>) -> bool {
        let retain = topic.kind().retained();
        self.client
            .try_publish(self.render(topic), QoS::AtLeastOnce, retain, payload)
            .is_ok()
    }

    /// Publishes a retained message on a topic given by name (the device's
    /// own status, a health report).
    pub async fn publish_retained(&self, topic: &str, payload: Vec<u8>) {
        if let Err(error) = self
            .client
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .await
        {
            tracing::warn!(%error, topic, "retained publish not queued");
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // No DISCONNECT: the broker sees the link drop and publishes the
        // `offline` will.
        self.poll.abort();
    }
}
