//! `bondgate demo`: the whole floor on one machine. The server on SQLite
//! with its embedded broker, every device a simulator on its real transport,
//! a seeded warehouse, and robots that keep orders flowing through picking,
//! packing, customs and the gate, so a newcomer who opens the API (and the
//! screens) sees the floor live. Ctrl-C stops it cleanly.
//!
//! The robots and simulators never reach into the server: they speak HTTP,
//! MQTT, serial and TCP to it like the real floor does. This module is part
//! of the binary only, so the server library never depends on simulators.

mod api;
mod devices;
mod floor;
mod seed;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bondgate::app::Server;
use bondgate::config::{Config, CustomsKey, MqttBroker};
use bondgate_protocol::{BrokerAddr, Site};
use tokio::sync::{mpsc, watch};

use api::Api;
use devices::Devices;
use floor::Stats;

/// Marks a directory the demo made, so it only ever wipes its own.
const MARKER: &str = ".bondgate-demo";
const ADMIN_PASSWORD: &str = "demo-admin";
/// Every pulse the simulated relays saw, `{gate} {unix ms}` a line.
const RELAY_PULSES: &str = "relay-pulses";

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Where the web screens and the API listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the embedded MQTT broker listens.
    #[arg(long, default_value = "127.0.0.1:1884")]
    pub mqtt_listen: SocketAddr,
    /// The demo's data directory, emptied at every start (only if the demo
    /// made it) unless --keep-data.
    #[arg(long, default_value = "./data/demo")]
    pub data_dir: PathBuf,
    /// Carry on with the data of the last run (after a crash, say) instead
    /// of starting afresh: nothing is seeded again and the customs
    /// gateway keeps its key.
    #[arg(long)]
    pub keep_data: bool,
    /// sqlite:PATH or postgres://… (default: SQLite in the data directory).
    /// A PostgreSQL database must be empty at the first start.
    #[arg(long)]
    pub database_url: Option<String>,
    /// An external MQTT broker (e.g. mqtt://127.0.0.1:1883 for Mosquitto)
    /// instead of the server's embedded one.
    #[arg(long)]
    pub mqtt_url: Option<String>,
    /// Fault drill: kill gate G1's bridge this often (and P2's printer
    /// bridge, out of step) and start them again.
    #[arg(long)]
    pub chaos_bridge_secs: Option<u64>,
    /// Seconds between two new orders from the platform.
    #[arg(long, default_value_t = 4)]
    pub order_every_secs: u64,
    /// Stop by itself once this many parcels went out through the gate (for
    /// tests and recordings); by default run until Ctrl-C.
    #[arg(long)]
    pub stop_after_shipped: Option<u64>,
    /// `text` for a person, `json` for a log collector (and the browser
    /// tests, which read the address the server listens on from it).
    #[arg(long, env = "BONDGATE_LOG_FORMAT", value_enum, default_value_t = bondgate::config::LogFormat::Text)]
    pub log_format: bondgate::config::LogFormat,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let dir = if args.keep_data && args.data_dir.join(MARKER).exists() {
        args.data_dir.clone()
    } else {
        fresh_dir(&args.data_dir)?
    };
    let mut devices = Devices::plug(&dir).await?;
    devices.log_relay_pulses(&dir.join(RELAY_PULSES))?;
    let key = floor::gateway_key(&dir)?;

    let mut config = Config::for_data_dir(&dir);
    config.listen = args.listen;
    config.mqtt.broker = match &args.mqtt_url {
        Some(url) => MqttBroker::External(url.clone()),
        None => MqttBroker::Embedded(args.mqtt_listen),
    };
    if let Some(url) = &args.database_url {
        config.database_url = url.clone();
    }
    config.admin_password = Some(ADMIN_PASSWORD.into());
    config.picking.auto_wave = Some(bondgate::domain::picking::WavePolicy {
        max_orders: 4,
        max_wait_secs: 15,
    });
    config.picking.wave_check = Duration::from_secs(2);
    config.customs.keys = vec![CustomsKey {
        id: key.id().to_string(),
        kind: key.kind().to_string(),
        bytes: key.server_bytes(),
    }];
    devices.configure(&mut config)?;
    let site = Site::new(&config.mqtt.site)?;

    let server = Server::start(config).await?;
    let base = format!("http://{}", server.addr);
    let broker = BrokerAddr::parse(&server.mqtt_url)?;
    devices.start_bridges(
        &broker,
        &site,
        args.chaos_bridge_secs
            .map(|s| Duration::from_secs(s.max(1))),
    )?;

    let admin = Api::login(&base, "admin", ADMIN_PASSWORD).await?;
    let seeded = dir.join(".seeded");
    if !seeded.exists() {
        seed::seed(&admin)
            .await
            .context("seeding the demo warehouse")?;
        std::fs::write(&seeded, "")?;
    }
    let login = |user: &'static str| {
        let base = base.clone();
        async move {
            let (_, password, _, _) = seed::USERS
                .iter()
                .find(|u| u.0 == user)
                .expect("a seeded user");
            Api::login(&base, user, password).await
        }
    };

    let stats = Arc::new(Stats::default());
    let (stop_tx, stop) = watch::channel(false);
    let (customs_tx, customs_rx) = mpsc::unbounded_channel();
    let (gate_tx, gate_rx) = mpsc::unbounded_channel();
    let claims = Arc::new(floor::Claims::default());
    let mut robots = vec![
        tokio::spawn(floor::platform(
            login("platform").await?,
            floor::AckLog::open(&dir.join(floor::ACKED_ORDERS))?,
            Duration::from_secs(args.order_every_secs.max(1)),
            stats.clone(),
            customs_tx,
            stop.clone(),
        )),
        tokio::spawn(floor::customs_gateway(
            base.clone(),
            login("gateway").await?,
            key,
            stats.clone(),
            customs_rx,
            stop.clone(),
        )),
        tokio::spawn(floor::gate_lane(
            broker.clone(),
            site.clone(),
            devices.scanner.take().context("the gate scanner's pty")?,
            login("guard").await?,
            stats.clone(),
            gate_rx,
            stop.clone(),
        )),
        tokio::spawn(floor::restocker(admin.clone(), stats.clone(), stop.clone())),
    ];
    for (device, badge) in [("PDA-01", "BADGE-PICKER1"), ("PDA-02", "BADGE-PICKER2")] {
        robots.push(tokio::spawn(floor::picker(
            broker.clone(),
            site.clone(),
            device,
            badge,
            stats.clone(),
            stop.clone(),
        )));
    }
    for s in &devices.stations {
        robots.push(tokio::spawn(floor::packer(
            login("manager").await?,
            login("packer").await?,
            s.id,
            s.scale(),
            claims.clone(),
            stats.clone(),
            gate_tx.clone(),
            stop.clone(),
        )));
    }
    drop(gate_tx);

    banner(&base, &server.mqtt_url, &dir);
    let reason = watch_until_done(&stats, args.stop_after_shipped).await;
    eprintln!("\nstopping the demo ({reason}): {}", stats.line());
    let _ = stop_tx.send(true);
    for r in robots {
        let _ = tokio::time::timeout(Duration::from_secs(20), r).await;
    }
    server.shutdown().await?;
    devices.shutdown().await;
    eprintln!(
        "stopped. The demo's data stays in {} until the next start.",
        dir.display()
    );
    Ok(())
}

/// Waits for Ctrl-C (or SIGTERM), or until enough parcels went out; prints
/// what the floor did every 30 s meanwhile.
async fn watch_until_done(stats: &Stats, stop_after: Option<u64>) -> &'static str {
    let signal = crate::shutdown_signal();
    tokio::pin!(signal);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut seconds = 0u64;
    loop {
        tokio::select! {
            _ = &mut signal => return "interrupted",
            _ = tick.tick() => {
                seconds += 1;
                if seconds % 30 == 0 {
                    tracing::info!("floor: {}", stats.line());
                }
                if let Some(n) = stop_after {
                    if stats.gate_open.load(std::sync::atomic::Ordering::Relaxed) >= n {
                        return "enough parcels shipped";
                    }
                }
            }
        }
    }
}

/// Empties the demo's directory — only one the demo made itself.
fn fresh_dir(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    if dir.exists() {
        let is_empty = std::fs::read_dir(dir)?.next().is_none();
        anyhow::ensure!(
            is_empty || dir.join(MARKER).exists(),
            "{} exists and was not made by `bondgate demo`: choose another --data-dir",
            dir.display()
        );
        std::fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "made by `bondgate demo`; emptied at its next start\n",
    )?;
    Ok(dir.to_path_buf())
}

fn banner(base: &str, mqtt: &str, dir: &std::path::Path) {
    let users: Vec<String> = seed::USERS
        .iter()
        .map(|(u, p, roles, _)| format!("    {u:<9} {p:<14} {}", roles.join(", ")))
        .collect();
    eprintln!(
        "\n  bondgate demo — the whole floor, simulated\n\n  \
         screens       {base}/   (manager {base}/dashboard, gate guard {base}/gate, PDA picker {base}/pda,\n                pack station {base}/pack)\n  \
         API           {base}/api/v1   (described at {base}/api/v1/openapi.json)\n  \
         MQTT broker   {mqtt}\n  \
         data          {}\n\n  \
         log in as (user, password, role):\n    admin     {ADMIN_PASSWORD:<14} admin\n{}\n\n  \
         On the floor: 2 pickers on PDAs (MQTT); pack station P1 (MT-SICS scale on a pty, \
         TCP label printer) and P2 (Yaohua scale on a pty behind scale-bridge, serial \
         printer behind printer-bridge); gate G1 (LCUS relay on a pty behind gate-bridge, serial scanner behind \
         scanner-bridge) and G2 (Modbus TCP relay, MQTT scanner); the customs gateway \
         signing receipts. The bridges' configuration files are in {}/edge.\n  \
         Ctrl-C stops it.\n",
        dir.display(),
        users.join("\n"),
        dir.display()
    );
}
