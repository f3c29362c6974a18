//! The embedded MQTT broker (rumqttd), for the one-command default setup.
//!
//! rumqttd's `Broker::start()` blocks for ever and has no shutdown, so it runs
//! on a thread of its own and lives until the process exits; a [`Broker`]
//! value is only a handle to it. Production deployments use an external
//! broker (Mosquitto, EMQX) and do not start this at all.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};

use super::PACKET_BYTES_MAX;

/// Most simultaneous client connections. A large bonded warehouse runs a few
/// hundred PDAs, scale/printer/gate bridges and screens; 1,000 leaves room for
/// that and for reconnect overlap, while bounding the file descriptors and the
/// per-connection buffers rumqttd allocates up front (its default is 10,010).
pub const CONNECTIONS_MAX: usize = 1_000;

/// Most unacknowledged QoS 1 messages the broker keeps in flight towards one
/// client. PDAs and bridges read a handful of messages at a time; 100 (also
/// rumqttc's client-side default) absorbs a burst without letting one stuck
/// client pin unbounded memory.
pub const INFLIGHT_MAX: usize = 100;

/// How long a new TCP connection may take to send its MQTT CONNECT. Devices
/// send it at once; a socket that stays silent is a port scan or a stuck
/// client, and holding it open would eat into [`CONNECTIONS_MAX`].
pub const CONNECT_TIMEOUT_MS: u16 = 5_000;

/// Pause after accepting each connection. It turns a reconnect storm (every
/// device of the site after a Wi-Fi outage) into a queue the router can keep
/// up with; at 1 ms, all [`CONNECTIONS_MAX`] devices are back within a second.
pub const ACCEPT_DELAY_MS: u64 = 1;

/// Size of one segment of rumqttd's in-memory log, which it keeps per
/// subscription filter. It must hold at least one largest packet
/// ([`PACKET_BYTES_MAX`]); 1 MiB holds four label jobs or thousands of prompts.
pub const SEGMENT_BYTES_MAX: usize = 1024 * 1024;

/// Segments kept per filter before the oldest is dropped. With
/// [`SEGMENT_BYTES_MAX`] this caps the backlog at 2 MiB per filter: enough for a
/// client that is briefly slow, while a few hundred filters stay within the
/// server's memory budget (DESIGN.md §7).
pub const SEGMENT_COUNT_MAX: usize = 2;

// A segment smaller than one packet could never store that packet.
const _: () = assert!(SEGMENT_BYTES_MAX >= PACKET_BYTES_MAX);

/// Packets the router hands a QoS 0 subscriber in one go; rumqttd's default.
pub const OUTGOING_BATCH_MAX: u64 = 200;

/// How long [`Broker::start`] waits for the listener to accept connections.
/// rumqttd binds within milliseconds; 5 s tolerates a loaded CI machine.
pub const START_DEADLINE: Duration = Duration::from_secs(5);

/// Pause between connection attempts while waiting for the listener.
const START_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Something else already listens on the address.
    #[error("cannot start the embedded MQTT broker on {addr}: the address is already in use (another broker running? set a different MQTT listen address, or point bondgate at that broker)")]
    AddressInUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address cannot be bound for another reason (not local, no permission).
    #[error("cannot start the embedded MQTT broker on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The broker thread could not be created.
    #[error("cannot start the embedded MQTT broker thread: {0}")]
    Thread(std::io::Error),
    /// The broker's listener stopped, or never accepted, within the deadline.
    #[error("the embedded MQTT broker on {addr} did not accept connections within {waited:?} (see the rumqttd log lines above)")]
    NotListening {
        /// The address it should listen on.
        addr: SocketAddr,
        /// How long we waited.
        waited: Duration,
    },
}

/// Handle to the embedded broker. Dropping it does not stop the broker.
#[derive(Debug)]
pub struct Broker {
    addr: SocketAddr,
    thread: JoinHandle<()>,
}

impl Broker {
    /// Starts rumqttd with an MQTT 3.1.1 listener on `listen` and returns once
    /// that address accepts TCP connections.
    ///
    /// Port 0 picks a free port (see [`Broker::addr`]): the port is found by
    /// binding it here first, because rumqttd cannot report the port it chose.
    /// Fails with [`BrokerError::AddressInUse`] if the address is taken.
    pub async fn start(listen: SocketAddr) -> Result<Broker, BrokerError> {
        let addr = reserve(listen)?;
        let mut broker = rumqttd::Broker::new(config(addr));
        let thread = std::thread::Builder::new()
            .name(format!("mqtt-broker-{}", addr.port()))
            .spawn(move || {
                // Returns only if every listener failed (e.g. it lost the race
                // for the port); the failure is logged by rumqttd.
                if let Err(error) = broker.start() {
                    tracing::error!(%error, "embedded MQTT broker stopped");
                }
            })
            .map_err(BrokerError::Thread)?;
        let broker = Broker { addr, thread };
        broker.wait_listening().await?;
        match disable_nagle(addr) {
            Ok(0) => {
                tracing::warn!(%addr, "embedded MQTT broker: its listening socket was not found; prompts may wait up to 40 ms for delayed ACKs")
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%addr, %error, "embedded MQTT broker: could not turn Nagle's algorithm off; prompts may wait up to 40 ms for delayed ACKs")
            }
        }
        tracing::info!(%addr, "embedded MQTT broker listening");
        Ok(broker)
    }

    /// The address the broker listens on (with the real port if 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The broker as a URL for [`super::BrokerAddr::parse`], e.g. `mqtt://127.0.0.1:1883`.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// Whether the broker's thread is still running (for readiness checks).
    pub fn is_running(&self) -> bool {
        !self.thread.is_finished()
    }

    /// Polls the port until it accepts a connection. A finished thread means
    /// rumqttd failed to bind, so there is no point waiting out the deadline.
    async fn wait_listening(&self) -> Result<(), BrokerError> {
        let started = Instant::now();
        let not_listening = || BrokerError::NotListening {
            addr: self.addr,
            waited: started.elapsed(),
        };
        loop {
            if !self.is_running() {
                return Err(not_listening());
            }
            let attempt = tokio::net::TcpStream::connect(connect_addr(self.addr));
            if let Ok(Ok(_stream)) = tokio::time::timeout(START_POLL_INTERVAL * 10, attempt).await {
                return Ok(());
            }
            if started.elapsed() >= START_DEADLINE {
                return Err(not_listening());
            }
            tokio::time::sleep(START_POLL_INTERVAL).await;
        }
    }
}

/// Turns Nagle's algorithm off for the broker's connections; returns how
/// many of this process's sockets bound to `addr` it set (the listener, and
/// any connection already accepted on it).
///
/// rumqttd 0.20 has no option for `TCP_NODELAY` and leaves it off, so the
/// prompt it writes right after the PUBACK of the scan it answers waits for
/// the handheld's delayed ACK: 40 ms on Linux, for every scan. Linux copies
/// `TCP_NODELAY` from a listening socket to the connections it accepts, so
/// setting it on rumqttd's listener (found among this process's file
/// descriptors by its address) covers every later connection.
fn disable_nagle(addr: SocketAddr) -> std::io::Result<usize> {
    each_socket_on(addr, |socket| socket.set_tcp_nodelay(true))
}

/// Calls `f` on each of this process's sockets bound to `addr`; returns how
/// many there were.
#[cfg(target_os = "linux")]
fn each_socket_on(
    addr: SocketAddr,
    mut f: impl FnMut(socket2::SockRef<'_>) -> std::io::Result<()>,
) -> std::io::Result<usize> {
    use std::os::fd::{BorrowedFd, RawFd};
    let mut found = 0;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let path = entry?.path();
        let Some(fd) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        let is_socket = std::fs::read_link(&path)
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor was an open socket when listed and is used
        // for socket calls only, without closing it. Had another thread
        // closed it meanwhile, they fail (EBADF) or reach whatever reused the
        // number, which `f` sees only if it too is bound to the broker's
        // address: one of the broker's own sockets.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        if socket.local_addr().ok().and_then(|a| a.as_socket()) == Some(addr) {
            f(socket)?;
            found += 1;
        }
    }
    Ok(found)
}

#[cfg(not(target_os = "linux"))]
fn each_socket_on<F>(_addr: SocketAddr, _f: F) -> std::io::Result<usize> {
    Ok(0)
}

/// Checks that `listen` is free (and resolves port 0) by binding it, then
/// releases it for rumqttd. rumqttd itself would only log a failed bind on its
/// own thread, and a poll-connect would then happily find the *other* listener.
fn reserve(listen: SocketAddr) -> Result<SocketAddr, BrokerError> {
    let probe = TcpListener::bind(listen).map_err(|source| match source.kind() {
        std::io::ErrorKind::AddrInUse => BrokerError::AddressInUse { addr: listen },
        _ => BrokerError::Bind {
            addr: listen,
            source,
        },
    })?;
    probe.local_addr().map_err(|source| BrokerError::Bind {
        addr: listen,
        source,
    })
}

/// Where to connect to reach a listener: a wildcard address (`0.0.0.0`, `::`)
/// is not a destination, so use loopback of the same family.
fn connect_addr(addr: SocketAddr) -> SocketAddr {
    let mut to = addr;
    if addr.ip().is_unspecified() {
        to.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    to
}

/// rumqttd's configuration: one v4 listener, the limits above, no TLS,
/// websockets, console, metrics endpoint or cluster.
fn config(addr: SocketAddr) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: CONNECT_TIMEOUT_MS,
        max_payload_size: PACKET_BYTES_MAX,
        max_inflight_count: INFLIGHT_MAX,
        auth: None,
        external_auth: None,
        // Must be on: without it rumqttd disconnects a client that publishes
        // to a topic nobody has subscribed to yet — e.g. every PDA scanning
        // while the server is restarting.
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: format!("v4-{}", addr.port()),
        listen: addr,
        tls: None,
        next_connection_delay_ms: ACCEPT_DELAY_MS,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: CONNECTIONS_MAX,
            max_outgoing_packet_count: OUTGOING_BATCH_MAX,
            max_segment_size: SEGMENT_BYTES_MAX,
            max_segment_count: SEGMENT_COUNT_MAX,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Config::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without it, every prompt through the embedded broker waited 40 ms
    /// (benches/pda.rs: p50 43 ms against 1 ms through a Mosquitto with
    /// `set_tcp_nodelay`).
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_broker_sends_without_waiting_for_acks() {
        let broker = Broker::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let device = tokio::net::TcpStream::connect(broker.addr()).await.unwrap();
        let device = Some(device.local_addr().unwrap());
        let started = Instant::now();
        loop {
            // Each socket bound to the broker's address, by its peer: none for
            // the listener, the device for the connection accepted from it.
            // (`start`'s own probe may be there too, without the flag if its
            // handshake beat the listener's change; it carries no MQTT.)
            let mut seen = Vec::new();
            each_socket_on(broker.addr(), |s| {
                let peer = s.peer_addr().ok().and_then(|a| a.as_socket());
                seen.push((peer, s.tcp_nodelay()?));
                Ok(())
            })
            .unwrap();
            let nodelay = |peer| seen.iter().find(|(p, _)| *p == peer).map(|(_, on)| *on);
            if let Some(accepted) = nodelay(device) {
                assert_eq!(nodelay(None), Some(true), "the listener: {seen:?}");
                assert!(accepted, "the device's connection: {seen:?}");
                break;
            }
            assert!(started.elapsed() < START_DEADLINE, "not accepted: {seen:?}");
            tokio::time::sleep(START_POLL_INTERVAL).await;
        }
    }

    #[test]
    fn wildcard_listeners_are_reached_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:1883".parse().unwrap();
        assert_eq!(connect_addr(v4), "127.0.0.1:1883".parse().unwrap());
        let v6: SocketAddr = "[::]:1883".parse().unwrap();
        assert_eq!(connect_addr(v6), "[::1]:1883".parse().unwrap());
        let fixed: SocketAddr = "10.0.0.5:1883".parse().unwrap();
        assert_eq!(connect_addr(fixed), fixed);
    }

    #[test]
    fn reserve_resolves_port_zero_and_refuses_taken_ports() {
        let free = reserve("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(free.port(), 0);
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        assert!(matches!(
            reserve(addr),
            Err(BrokerError::AddressInUse { .. })
        ));
    }
}
