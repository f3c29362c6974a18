//! Brokers for the tests: an embedded rumqttd of the test's own, or the
//! shared Mosquitto on 127.0.0.1:1883 that CI starts.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use bondgate_sim::BrokerAddr;
use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};

/// Starts rumqttd on a free port and returns once it accepts connections.
///
/// The port is found by binding it here first, because rumqttd cannot report
/// the port it chose, and it only *logs* a failed bind on its own thread (so
/// a poll-connect could find another listener): hence the check that its
/// thread is still running.
pub async fn embedded() -> BrokerAddr {
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|probe| probe.local_addr())
        .expect("a free port");
    let mut broker = rumqttd::Broker::new(config(addr));
    let thread = std::thread::Builder::new()
        .name(format!("test-broker-{}", addr.port()))
        .spawn(move || {
            let _ = broker.start();
        })
        .expect("broker thread");
    let started = Instant::now();
    loop {
        assert!(
            !thread.is_finished(),
            "rumqttd on {addr} stopped (bind failed?)"
        );
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return BrokerAddr::from(addr);
        }
        assert!(
            started.elapsed() < super::WAIT,
            "rumqttd on {addr} not listening"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The shared Mosquitto (`BONDGATE_TEST_MQTT_URL`, default
/// `mqtt://127.0.0.1:1883`); `None` with a notice if unreachable outside CI,
/// a panic if unreachable with `CI=true`.
pub async fn mosquitto() -> Option<BrokerAddr> {
    let url =
        std::env::var("BONDGATE_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into());
    let addr = BrokerAddr::parse(&url).expect("BONDGATE_TEST_MQTT_URL is mqtt://host:port");
    let connect = tokio::net::TcpStream::connect((addr.host(), addr.port()));
    match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(_)) => Some(addr),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("MQTT broker at {url} unreachable while CI=true")
        }
        _ => {
            eprintln!("MQTT broker at {url} unreachable; skipping this Mosquitto test outside CI");
            None
        }
    }
}

/// One v4 listener with small limits; `dynamic_filters` on, or rumqttd drops
/// a client publishing to a topic nobody has subscribed to yet.
fn config(addr: SocketAddr) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: 5_000,
        max_payload_size: 64 * 1024,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: format!("v4-{}", addr.port()),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 200,
            max_segment_size: 1024 * 1024,
            max_segment_count: 2,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Config::default()
    }
}
