//! The PDA's two background tasks (PROTOCOLS.md §5):
//!
//! - the **poll task** owns rumqttc's `EventLoop` and only polls it: it never
//!   publishes or subscribes (a request from the polling task deadlocks once
//!   the request channel is full), sleeps with [`Backoff`] between failed
//!   connections (rumqttc alone retries in a busy loop), and hands each
//!   prompt to the [`super::Pda`] through a bounded queue, shedding on
//!   overflow rather than blocking (blocking would stop the keep-alive);
//! - the **session task** announces `online` and subscribes to the prompt
//!   topic after every ConnAck: with a clean session the broker forgets
//!   subscriptions on every disconnect. `online` goes first, so by the time
//!   the SubAck makes the PDA ready, the announcement is on the wire.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

use bondgate_protocol::{Backoff, DeviceStatus, PayloadError, PromptMsg, TopicKind};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Outgoing, Packet, Publish, QoS,
    SubscribeReasonCode,
};
use tokio::sync::{mpsc, watch};

/// What the poll task reports about the connection.
#[derive(Debug, Clone, Default)]
pub(super) struct LinkState {
    /// Subscribed to the prompt topic on the current connection.
    pub subscribed: bool,
    /// ConnAcks so far; the session task acts on each new one.
    pub connects: u64,
    /// The last connection error, for [`super::PdaError::NotReady`].
    pub last_error: Option<String>,
}

/// One message from the prompt topic.
#[derive(Debug)]
pub(super) enum Received {
    Prompt(PromptMsg),
    Malformed { raw: String, error: PayloadError },
}

pub(super) struct Poller {
    pub eventloop: EventLoop,
    pub broker: String,
    pub prompt_topic: String,
    pub state: watch::Sender<LinkState>,
    pub prompts: mpsc::Sender<Received>,
}

impl Poller {
    pub async fn run(mut self) {
        let mut backoff = Backoff::new();
        let mut connected_at: Option<Instant> = None;
        loop {
            match self.eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!(broker = %self.broker, "PDA connected");
                    connected_at = Some(Instant::now());
                    self.state.send_modify(|s| {
                        s.connects += 1;
                        s.last_error = None;
                    });
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    let refused = ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, SubscribeReasonCode::Failure));
                    self.state.send_modify(|s| {
                        s.subscribed = !refused;
                        if refused {
                            s.last_error = Some(format!(
                                "the broker refused the subscription to {} (ACL?)",
                                self.prompt_topic
                            ));
                        }
                    });
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => self.deliver(publish),
                Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                Ok(_) => {}
                // Every `AsyncClient` is gone: nobody can use the PDA any more.
                Err(ConnectionError::RequestsDone) => break,
                Err(error) => {
                    tracing::warn!(broker = %self.broker, %error, "PDA connection failed; retrying");
                    self.state.send_modify(|s| {
                        s.subscribed = false;
                        s.last_error = Some(error.to_string());
                    });
                    if connected_at
                        .take()
                        .is_some_and(|since| since.elapsed() >= Backoff::RESET_AFTER)
                    {
                        backoff.reset();
                    }
                    tokio::time::sleep(backoff.next_delay_with(jitter())).await;
                }
            }
        }
        self.state.send_modify(|s| s.subscribed = false);
    }

    /// Queues a prompt for the PDA; never waits.
    fn deliver(&mut self, publish: Publish) {
        if publish.topic != self.prompt_topic {
            tracing::debug!(topic = %publish.topic, "ignoring a message on another topic");
            return;
        }
        let received = match PromptMsg::decode(&publish.payload) {
            Ok(prompt) => Received::Prompt(prompt),
            Err(error) => Received::Malformed {
                raw: String::from_utf8_lossy(&publish.payload).into_owned(),
                error,
            },
        };
        if let Err(mpsc::error::TrySendError::Full(dropped)) = self.prompts.try_send(received) {
            tracing::warn!(?dropped, "prompt queue full; dropping a prompt nobody read");
        }
    }
}

pub(super) struct Session {
    pub client: AsyncClient,
    pub prompt_topic: String,
    pub status_topic: String,
    pub state: watch::Receiver<LinkState>,
}

impl Session {
    pub async fn run(mut self) {
        let mut seen = 0;
        loop {
            let connects = self.state.borrow_and_update().connects;
            if connects != seen {
                seen = connects;
                if self.announce().await.is_err() {
                    return; // the client is gone
                }
            }
            if self.state.changed().await.is_err() {
                return; // the poll task is gone
            }
        }
    }

    async fn announce(&self) -> Result<(), rumqttc::ClientError> {
        let online = DeviceStatus::Online.encode();
        let retain = TopicKind::DeviceStatus.retained();
        self.client
            .publish(&self.status_topic, QoS::AtLeastOnce, retain, online)
            .await?;
        self.client
            .subscribe(&self.prompt_topic, QoS::AtLeastOnce)
            .await
    }
}

/// Random bits for [`Backoff::next_delay_with`], from the standard library's
/// hasher keys (random per process, and different on every call): enough to
/// spread a fleet of simulated PDAs apart, without a `rand` dependency.
fn jitter() -> u64 {
    RandomState::new().build_hasher().finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spreads_delays() {
        let delays: std::collections::HashSet<_> = (0..20)
            .map(|_| Backoff::new().next_delay_with(jitter()))
            .collect();
        assert!(delays.len() > 10, "{delays:?}");
    }
}
