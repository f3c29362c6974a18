//! What the bridges' tests share (included with `#[path]` by each crate's
//! `tests/`): an embedded rumqttd per test, a watcher client standing in for
//! the server, the bridge binary killed on drop, and the lock that runs one
//! test at a time (the tests share two cores with their bridges, brokers and
//! simulated devices; timing windows must not depend on the neighbours).

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

/// Longest wait for anything that should happen at once.
pub const WAIT: Duration = Duration::from_secs(5);

/// One test at a time (see the module notes): a gate bridge gives its
/// relay board 500 ms to answer, a scale bridge its scale 2 s.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A port nobody listens on (yet).
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|probe| probe.local_addr())
        .expect("a free port")
}

/// The simulators' test broker (one definition of the embedded rumqttd a
/// test runs: listener limits, `dynamic_filters`, the bind check).
#[path = "../../hardware-sim/tests/support/broker.rs"]
mod sim_broker;

/// rumqttd on a free port, once it accepts connections.
pub async fn embedded_broker() -> SocketAddr {
    let addr = sim_broker::embedded().await;
    SocketAddr::from(([127, 0, 0, 1], addr.port()))
}

/// A bridge process; killed on drop.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes `config` to `dir/bridge.toml` and starts `bin` with `--config` on it.
pub fn start_bin(bin: &str, dir: &Path, config: &str) -> Process {
    let path = dir.join("bridge.toml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(bin)
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .spawn()
        .expect("the bridge starts");
    Process(child)
}

/// Sends SIGTERM and waits for the process to leave.
pub async fn terminate(process: &mut Process) {
    let pid = process.0.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let started = Instant::now();
    while process.0.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < WAIT,
            "the bridge did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The server's side: a client subscribed to some topics, every message
/// on them queued in arrival order.
pub struct Watcher {
    pub client: AsyncClient,
    messages: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
}

impl Watcher {
    /// Connects and returns once every filter is subscribed.
    pub async fn connect(broker: SocketAddr, filters: &[String]) -> Watcher {
        let mut mqtt = MqttOptions::new(
            format!("test-watcher-{}", broker.port()),
            broker.ip().to_string(),
            broker.port(),
        );
        mqtt.set_keep_alive(Duration::from_secs(10));
        let (client, mut eventloop) = AsyncClient::new(mqtt, 64);
        let (tx, messages) = mpsc::unbounded_channel();
        let (sub_tx, mut subscribed) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = sub_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        for f in filters {
            client.subscribe(f, QoS::AtLeastOnce).await.unwrap();
        }
        for _ in filters {
            tokio::time::timeout(WAIT, subscribed.recv())
                .await
                .expect("subscribed");
        }
        Watcher { client, messages }
    }

    /// The next message, if one comes within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<(String, Vec<u8>)> {
        tokio::time::timeout(within, self.messages.recv())
            .await
            .ok()
            .flatten()
    }

    /// Reads messages until `found` returns `Some` for one; panics naming
    /// `what` if none does within `within`.
    pub async fn until<T>(
        &mut self,
        within: Duration,
        what: &str,
        mut found: impl FnMut(&str, &[u8]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some((topic, payload)) => {
                    if let Some(t) = found(&topic, &payload) {
                        return t;
                    }
                }
                None => panic!("{what}: nothing within {within:?}"),
            }
        }
    }
}

/// A door between a bridge and its broker: while shut, every connection is
/// accepted and dropped at once (the bridge sees a dead broker and backs
/// off); once opened, connections are piped through to the broker.
pub struct Door {
    pub addr: SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Door {
    /// A shut door in front of `upstream`.
    pub async fn shut(upstream: SocketAddr) -> Door {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let is_open = open.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !is_open.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Door { addr, open }
    }

    /// Lets the next connections through.
    pub fn open(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
