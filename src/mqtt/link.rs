//! The server's MQTT client: one connection to the broker, kept alive.
//!
//! Three tasks, wired by bounded channels (PROTOCOLS.md §5):
//!
//! - the **poll task** owns rumqttc's `EventLoop` and does nothing but poll it:
//!   it never publishes (a publish from the polling task deadlocks once the
//!   request channel is full), sleeps with [`Backoff`] between failed
//!   connections (rumqttc alone would retry in a busy loop), and hands each
//!   incoming publish to the dispatcher;
//! - the **session task** subscribes and announces `online` after every
//!   ConnAck, because with a clean session the broker forgets subscriptions on
//!   every disconnect;
//! - the **dispatcher** ([`super::dispatch`]) runs the [`DeviceHandler`] and
//!   publishes the answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bondgate_protocol::{Backoff, BrokerAddr, DeviceId, DeviceStatus, Site, Topic, TopicKind};
use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, Publish, QoS,
    SubscribeFilter, SubscribeReasonCode,
};
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::task::JoinHandle;

use super::dispatch::{Dispatcher, HANDLERS_IN_FLIGHT_MAX};
use super::{DeviceHandler, PACKET_BYTES_MAX};

/// How often the link pings an idle broker. The broker declares us gone (and
/// publishes our `offline` will) after 1.5 × this without a packet, and we
/// notice a dead broker about as fast: 10 s keeps both well under the time a
/// picker waits for a prompt before calling for help, at a negligible cost.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Depth of rumqttc's request channel (publishes and subscribes waiting for
/// the poll task). Four times [`HANDLERS_IN_FLIGHT_MAX`], so the answers of
/// every handler in flight fit several times over while the poll task is busy
/// reading; bounded, so a broker that stops reading cannot grow memory.
pub const REQUEST_CHANNEL_CAPACITY: usize = 4 * HANDLERS_IN_FLIGHT_MAX;

/// Unacknowledged QoS 1 publishes in flight to the broker; rumqttc's default,
/// named so it matches the broker side (`broker::INFLIGHT_MAX`).
pub const OUTGOING_INFLIGHT_MAX: u16 = 100;

/// Incoming publishes queued between the poll task and the dispatcher: a burst
/// of scans from a whole shift of PDAs (a few hundred at once) without making
/// the poll task wait.
pub const INCOMING_QUEUE_DEPTH: usize = 256;

/// How long the poll task waits for room in the incoming queue.
///
/// Overflow policy: **backpressure by awaiting**, so a burst is never thrown
/// away while the handlers are merely slow — unread messages wait in the
/// socket and at the broker, and PDAs are waiting for their prompts anyway.
/// But the wait is bounded: while it waits the poll task neither pings the
/// broker (which drops us after 1.5 × [`KEEP_ALIVE`]) nor drains the request
/// channel, and handlers blocked on a full request channel can only be freed
/// by the poll task. After this long the message is dropped and counted
/// (`bondgate_mqtt_dropped_total`); the PDA's rescan is answered by de-duplication.
pub const BACKPRESSURE_WAIT_MAX: Duration = Duration::from_secs(2);

/// How long [`MqttLink::shutdown`] lets handlers in flight finish, and then
/// the goodbye (`offline`, DISCONNECT) go out, before it gives up. Longer than
/// [`BACKPRESSURE_WAIT_MAX`] so a poll task that is waiting on the queue can
/// still finish cleanly.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Why a publish through the link failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The link has been shut down (its event loop is gone).
    #[error("the MQTT link is shut down")]
    Closed,
}

/// What the link needs to know.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// The site whose devices this server serves: `bondgate/{site}/…`.
    pub site: Site,
    /// The server's MQTT client id, also the device id of its own presence
    /// topic `devices/{client_id}/status`. Must be unique per server instance
    /// on the broker: a second client with the same id kicks the first off.
    pub client_id: DeviceId,
    /// The broker to connect to.
    pub broker: BrokerAddr,
    /// Keep-alive interval; [`KEEP_ALIVE`] unless a test needs otherwise.
    pub keep_alive: Duration,
}

impl LinkOptions {
    /// Options with the default keep-alive.
    pub fn new(site: Site, client_id: DeviceId, broker: BrokerAddr) -> LinkOptions {
        LinkOptions {
            site,
            client_id,
            broker,
            keep_alive: KEEP_ALIVE,
        }
    }
}

/// The filters the link subscribes to, written in this one place.
///
/// Scans could later become a shared subscription (`$share/bondgate/` +
/// filter) so several server instances split the PDAs between them
/// (DESIGN.md §5); the prefix would go here, and on the scan filter only —
/// every instance wants to see every device's status.
fn subscriptions(site: &Site) -> Vec<SubscribeFilter> {
    [
        TopicKind::PdaScan,
        TopicKind::DeviceStatus,
        TopicKind::DeviceHealth,
        TopicKind::ScaleWeight,
        TopicKind::PrinterStatus,
        TopicKind::GateState,
        TopicKind::GateScan,
    ]
    .into_iter()
    .map(|kind| SubscribeFilter::new(kind.filter(site), QoS::AtLeastOnce))
    .collect()
}

/// Publishes `payload` on `topic`: QoS 1, retained exactly when the topic kind
/// says so (only presence; a retained command or prompt would be replayed to
/// every reconnecting device).
pub(super) async fn publish(
    client: &AsyncClient,
    site: &Site,
    topic: &Topic,
    payload: Vec<u8>,
) -> Result<(), LinkError> {
    let retain = topic.kind().retained();
    client
        .publish(topic.render(site), QoS::AtLeastOnce, retain, payload)
        .await
        .map_err(|_| LinkError::Closed)?;
    metrics::counter!("bondgate_mqtt_messages_out_total", "kind" => kind_label(topic.kind()))
        .increment(1);
    Ok(())
}

/// A short metrics label for a topic kind.
pub(super) fn kind_label(kind: TopicKind) -> &'static str {
    let (group, leaf) = kind.levels();
    match (group, leaf) {
        ("pda", "scan") => "scan",
        ("pda", "prompt") => "prompt",
        ("devices", "status") => "status",
        ("devices", "health") => "health",
        _ => group,
    }
}

/// Publishes on this site's topics through a running [`MqttLink`].
#[derive(Debug, Clone)]
pub struct Publisher {
    client: AsyncClient,
    site: Site,
    ready: watch::Receiver<bool>,
}

impl Publisher {
    /// As [`MqttLink::publish`]: `Ok` means queued for the broker.
    pub async fn publish(&self, topic: &Topic, payload: Vec<u8>) -> Result<(), LinkError> {
        publish(&self.client, &self.site, topic, payload).await
    }

    /// Whether the link is connected and subscribed right now. A command
    /// that must not run late (a gate's open) is not queued on a link that
    /// is down: rumqttc would send it after the reconnect.
    pub fn is_connected(&self) -> bool {
        *self.ready.borrow()
    }
}

/// The running link. Dropping it without [`MqttLink::shutdown`] aborts its
/// tasks as a crash would: the connection closes without DISCONNECT, so the
/// broker publishes the `offline` will.
#[derive(Debug)]
pub struct MqttLink {
    client: AsyncClient,
    site: Site,
    status: Topic,
    ready: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    permits: Arc<Semaphore>,
    tasks: Vec<JoinHandle<()>>,
    poll: Option<JoinHandle<()>>,
}

impl MqttLink {
    /// Connects (in the background) and starts serving `handler`. Returns at
    /// once; see [`MqttLink::is_connected`]. Must be called inside a tokio
    /// runtime.
    pub fn start(options: LinkOptions, handler: Arc<dyn DeviceHandler>) -> MqttLink {
        let status = Topic::DeviceStatus {
            device: options.client_id.clone(),
        };
        let status_name = status.render(&options.site);
        let mut mqtt = MqttOptions::new(
            options.client_id.as_str(),
            options.broker.host(),
            options.broker.port(),
        );
        mqtt.set_keep_alive(options.keep_alive)
            .set_clean_session(true)
            .set_max_packet_size(PACKET_BYTES_MAX, PACKET_BYTES_MAX)
            .set_inflight(OUTGOING_INFLIGHT_MAX)
            .set_last_will(LastWill::new(
                &status_name,
                DeviceStatus::Offline.encode(),
                QoS::AtLeastOnce,
                TopicKind::DeviceStatus.retained(),
            ));
        if let Some((user, password)) = options.broker.credentials() {
            mqtt.set_credentials(user, password);
        }
        let (client, mut eventloop) = AsyncClient::new(mqtt, REQUEST_CHANNEL_CAPACITY);
        // Prompts are small and a picker waits on each one: send them at
        // once instead of letting Nagle hold them for the peer's delayed ACK.
        let mut network = eventloop.network_options();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);

        let (ready_tx, ready) = watch::channel(false);
        let (stop, stop_rx) = watch::channel(false);
        let (sessions_tx, sessions_rx) = watch::channel(0_u64);
        let (incoming_tx, incoming_rx) = mpsc::channel(INCOMING_QUEUE_DEPTH);
        let permits = Arc::new(Semaphore::new(HANDLERS_IN_FLIGHT_MAX));
        let reassert_online = Arc::new(Notify::new());

        let poller = Poller {
            eventloop,
            broker: options.broker.to_string(),
            ready: ready_tx,
            sessions: sessions_tx,
            incoming: incoming_tx,
            stop: stop_rx.clone(),
        };
        let session = Session {
            client: client.clone(),
            filters: subscriptions(&options.site),
            status: status_name,
            sessions: sessions_rx,
            stop: stop_rx.clone(),
            reassert_online: reassert_online.clone(),
        };
        let dispatcher = Dispatcher::new(
            options.site.clone(),
            options.client_id,
            client.clone(),
            handler,
            permits.clone(),
            reassert_online,
        );
        let tasks = vec![
            tokio::spawn(session.run()),
            tokio::spawn(dispatcher.run(incoming_rx, stop_rx)),
        ];
        MqttLink {
            client,
            site: options.site,
            status,
            ready,
            stop,
            permits,
            tasks,
            poll: Some(tokio::spawn(poller.run())),
        }
    }

    /// Whether the link is connected *and* subscribed, i.e. scans reach the
    /// handler. For `/readyz`.
    pub fn is_connected(&self) -> bool {
        *self.ready.borrow()
    }

    /// A handle on [`MqttLink::is_connected`] that outlives borrows of the
    /// link, for `/readyz`.
    pub fn ready_signal(&self) -> watch::Receiver<bool> {
        self.ready.clone()
    }

    /// Waits until [`MqttLink::is_connected`], at most `timeout`; returns
    /// whether it is.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut ready = self.ready.clone();
        let connected = async { ready.wait_for(|&up| up).await.is_ok() };
        tokio::time::timeout(timeout, connected)
            .await
            .unwrap_or(false)
    }

    /// Publishes on one of this site's topics (QoS 1, retained only for
    /// presence). `Ok` means queued for the broker, not delivered: while the
    /// link is reconnecting the message waits in the request channel (and
    /// this waits while that channel is full). Never call it from a task the
    /// poll task waits on.
    pub async fn publish(&self, topic: &Topic, payload: Vec<u8>) -> Result<(), LinkError> {
        publish(&self.client, &self.site, topic, payload).await
    }

    /// A handle other tasks keep to publish through this link (label jobs to
    /// printer bridges). It stops working once the link is shut down.
    pub fn publisher(&self) -> Publisher {
        Publisher {
            client: self.client.clone(),
            site: self.site.clone(),
            ready: self.ready.clone(),
        }
    }

    /// Stops cleanly: no new messages are taken, handlers in flight finish and
    /// their prompts go out, then `offline` is published (a clean DISCONNECT
    /// discards the will, so we say it ourselves) and the connection closes.
    /// Each step is bounded by [`SHUTDOWN_GRACE`]; past it the link is simply
    /// dropped, and the broker's will says `offline` instead.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let all = u32::try_from(HANDLERS_IN_FLIGHT_MAX).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, self.permits.acquire_many(all));
        if drained.await.is_err() {
            tracing::warn!("MQTT link shutdown: handlers still busy; their prompts are lost");
        }
        let goodbye = async {
            let offline = DeviceStatus::Offline.encode();
            publish(&self.client, &self.site, &self.status, offline).await?;
            self.client
                .disconnect()
                .await
                .map_err(|_| LinkError::Closed)
        };
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, goodbye).await;
        if let Some(mut poll) = self.poll.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut poll)
                .await
                .is_err()
            {
                tracing::warn!(
                    "MQTT link shutdown: no clean disconnect; the broker's will reports offline"
                );
                poll.abort();
            }
        }
        // Dropping `self` aborts the session task and the dispatcher.
    }
}

impl Drop for MqttLink {
    fn drop(&mut self) {
        for task in self.tasks.iter().chain(self.poll.iter()) {
            task.abort();
        }
    }
}

/// Resolves once a stop is requested (or the link is gone).
pub(super) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&s| s).await;
}

/// The poll task: owns the event loop, never publishes.
struct Poller {
    eventloop: EventLoop,
    broker: String,
    ready: watch::Sender<bool>,
    /// Bumped on every ConnAck; the session task subscribes on each change.
    sessions: watch::Sender<u64>,
    incoming: mpsc::Sender<Publish>,
    stop: watch::Receiver<bool>,
}

impl Poller {
    async fn run(mut self) {
        let mut backoff = Backoff::new();
        let mut connected_at: Option<Instant> = None;
        loop {
            let event = if connected_at.is_some() {
                // Connected: a stop arrives as our own DISCONNECT (below).
                // Never cancel a poll mid-write: it would corrupt the stream.
                self.eventloop.poll().await
            } else {
                if *self.stop.borrow() {
                    break;
                }
                // Connecting holds no stream state, so it may be abandoned.
                tokio::select! {
                    _ = stopped(&mut self.stop) => break,
                    event = self.eventloop.poll() => event,
                }
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!(broker = %self.broker, "MQTT link connected");
                    if *self.sessions.borrow() > 0 {
                        metrics::counter!("bondgate_mqtt_reconnects_total").increment(1);
                    }
                    self.sessions.send_modify(|n| *n += 1);
                    connected_at = Some(Instant::now());
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    let refused = ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, SubscribeReasonCode::Failure));
                    if refused {
                        tracing::error!(broker = %self.broker, "MQTT broker refused the link's subscriptions (ACL?); scans will not arrive");
                    }
                    self.ready.send_replace(!refused);
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => self.hand_over(publish).await,
                Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(error) => {
                    self.ready.send_replace(false);
                    metrics::counter!("bondgate_mqtt_connection_errors_total").increment(1);
                    match connected_at.take() {
                        Some(since) => {
                            tracing::warn!(broker = %self.broker, %error, "MQTT link lost its connection; reconnecting");
                            if since.elapsed() >= Backoff::RESET_AFTER {
                                backoff.reset();
                            }
                        }
                        None => {
                            tracing::warn!(broker = %self.broker, %error, "MQTT link cannot connect; retrying")
                        }
                    }
                    let delay = backoff.next_delay_with(rand::random());
                    tokio::select! {
                        _ = stopped(&mut self.stop) => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        self.ready.send_replace(false);
    }

    /// Queues an incoming publish for the dispatcher; see
    /// [`BACKPRESSURE_WAIT_MAX`] for why this waits, and for how long.
    async fn hand_over(&mut self, publish: Publish) {
        metrics::counter!("bondgate_mqtt_messages_in_total").increment(1);
        let queued = tokio::time::timeout(BACKPRESSURE_WAIT_MAX, self.incoming.send(publish));
        match queued.await {
            Ok(Ok(())) => {}
            // The dispatcher has stopped: we are shutting down.
            Ok(Err(_)) => {}
            Err(_) => {
                metrics::counter!("bondgate_mqtt_dropped_total", "reason" => "overload")
                    .increment(1);
                tracing::warn!(
                    "MQTT link dropped a message: handlers did not keep up for {BACKPRESSURE_WAIT_MAX:?}"
                );
            }
        }
    }
}

/// The session task: subscribe and say `online` after every ConnAck.
struct Session {
    client: AsyncClient,
    filters: Vec<SubscribeFilter>,
    status: String,
    sessions: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
    /// Set by the dispatcher when the broker says we are offline while we are
    /// connected (a stale connection's will, published late).
    reassert_online: Arc<Notify>,
}

impl Session {
    async fn run(mut self) {
        loop {
            let resubscribe = tokio::select! {
                biased;
                _ = stopped(&mut self.stop) => return,
                changed = self.sessions.changed() => match changed {
                    Ok(()) => true,
                    Err(_) => return,
                },
                _ = self.reassert_online.notified() => false,
            };
            if resubscribe {
                let filters = self.filters.clone();
                if self.client.subscribe_many(filters).await.is_err() {
                    return;
                }
            }
            if *self.stop.borrow() {
                return;
            }
            let online = DeviceStatus::Online.encode();
            let retain = TopicKind::DeviceStatus.retained();
            let sent = self
                .client
                .publish(&self.status, QoS::AtLeastOnce, retain, online)
                .await;
            if sent.is_err() {
                return;
            }
            metrics::counter!("bondgate_mqtt_messages_out_total", "kind" => "status").increment(1);
        }
    }
}
