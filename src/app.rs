//! Start-up and shutdown: open the store, make sure an admin exists, serve
//! HTTP until told to stop, then drain and close.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rand::Rng;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use bondgate_protocol::{DeviceId, Site};
use tokio::sync::watch;

use crate::config::{Config, MqttBroker};
use crate::domain::Role;
use crate::http::{self, auth, AppState};
use crate::mqtt::{Broker, BrokerAddr, LinkOptions, MqttLink};
use crate::store::{Actor, Store};

/// Name of the file that receives a generated first-admin password.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub store: Store,
    /// The broker PDAs and bridges connect to: the embedded one's address, or
    /// the external broker's URL.
    pub mqtt_url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    link: MqttLink,
    /// Kept for the life of the server: rumqttd has no stop, it ends with
    /// the process.
    _broker: Option<Broker>,
    background_stop: watch::Sender<bool>,
    background: Vec<JoinHandle<()>>,
}

impl Server {
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        let store = Store::connect(&config.database_url, &config.store)
            .await
            .with_context(|| {
                format!(
                    "opening the {} database",
                    crate::store::backend_of(&config.database_url).unwrap_or("?")
                )
            })?;
        bootstrap_admin(&store, &config).await?;
        let pii =
            crate::crypto::PiiCipher::load_or_create(&config.data_dir, config.pii_key.as_deref())?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        http::ops::metrics_handle();

        let (broker, broker_addr) = match &config.mqtt.broker {
            MqttBroker::Embedded(listen) => {
                let b = Broker::start(*listen)
                    .await
                    .with_context(|| format!("starting the embedded MQTT broker on {listen}"))?;
                let a = BrokerAddr::from(b.addr());
                (Some(b), a)
            }
            MqttBroker::External(url) => (None, BrokerAddr::parse(url)?),
        };
        let site = Site::new(&config.mqtt.site)?;
        let client_id = DeviceId::new(&format!(
            "bondgate-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ))?;
        let mqtt_url = broker_addr.to_string();
        let (background_stop, background_rx) = watch::channel(false);
        let mut background = Vec::new();
        store
            .ensure_waybill_range(&config.packing.waybill)
            .await
            .context("configuring the waybill range")?;
        let events = crate::events::EventHub::new(background_rx.clone());
        let (scales, scale_tasks) = crate::packing::ScaleHub::start(
            &config.packing.stations,
            config.packing.scale_noise_grams,
            events.clone(),
            background_rx.clone(),
        );
        background.extend(scale_tasks);
        let (gate_states, gate_state_task) =
            crate::gate::MqttGateStates::start(store.clone(), background_rx.clone());
        background.push(gate_state_task);
        let gate_link = Arc::new(crate::gate::GateLink {
            states: gate_states.clone(),
            service: std::sync::OnceLock::new(),
        });
        let device_health = crate::device_health::DeviceHealthBook::new();
        let printer_slot = Arc::new(std::sync::OnceLock::new());
        let link = MqttLink::start(
            LinkOptions::new(site, client_id, broker_addr),
            Arc::new(
                crate::picking::PdaHandler::new(store.clone(), config.picking.tote_prefix.clone())
                    .in_chinese(config.picking.pda_chinese)
                    .with_scales(scales.clone())
                    .with_gates(gate_link.clone())
                    .with_health(device_health.clone())
                    .with_events(events.clone())
                    .with_printers(printer_slot.clone()),
            ),
        );
        let publisher = link.publisher();
        let mut outputs = Vec::new();
        for g in &config.gates {
            outputs.push((
                g.clone(),
                crate::gate::build_output(g, &publisher, &gate_states)?,
            ));
        }
        let gates = crate::gate::Gates::new(store.clone(), outputs, events.clone());
        let _ = gate_link.service.set(gates.clone());
        background.push(gates.spawn_sweeper(background_rx.clone()));
        let mqtt_gates = crate::gate::Gates::mqtt_gates(&config.gates);
        if !mqtt_gates.is_empty() {
            background.push(crate::gate::mqtt::spawn_heartbeat(
                mqtt_gates,
                publisher.clone(),
                background_rx.clone(),
            ));
        }
        let (printers, print_tasks) = crate::packing::PrinterHub::start(
            &config.packing.stations,
            store.clone(),
            Some(link.publisher()),
            background_rx.clone(),
        );
        background.extend(print_tasks);
        let _ = printer_slot.set(printers.clone());
        let packing =
            crate::packing::Packing::new(store.clone(), config.packing.clone(), scales, printers)
                .with_events(events.clone());
        if let Some(policy) = config.picking.auto_wave {
            background.push(crate::picking::spawn_auto_waves(
                store.clone(),
                policy,
                config.picking.wave_check,
                events.clone(),
                background_rx.clone(),
            ));
        }

        let customs = crate::customs::Customs::new(store.clone(), &config.customs)?
            .with_events(events.clone());
        if let Some(dir) = &config.customs.inbox {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the customs inbox {}", dir.display()))?;
            background.push(crate::customs::spawn_inbox(
                customs.clone(),
                dir.clone(),
                background_rx.clone(),
            ));
        }
        let state = AppState {
            store: store.clone(),
            config: Arc::new(config),
            pii,
            mqtt_ready: Some(link.ready_signal()),
            packing,
            customs,
            gates,
            device_health,
            events,
        };
        let app = http::router(state);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!(%addr, backend = store.backend(), mqtt = %mqtt_url, "bondgate listening");
        Ok(Server {
            addr,
            store,
            mqtt_url,
            stop,
            task,
            link,
            _broker: broker,
            background_stop,
            background,
        })
    }

    /// Stops accepting, lets requests and scans in flight finish (their
    /// answers go out), then closes the database.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let _ = self.background_stop.send(true);
        self.task.await.context("server task")??;
        self.link.shutdown().await;
        for t in self.background {
            let _ = t.await;
        }
        self.store.close().await;
        Ok(())
    }
}

/// On the first start there are no users: create `admin`, with the password
/// from `BONDGATE_ADMIN_PASSWORD` or a generated one written (mode 0600) to
/// the data directory, so a newcomer can log in without reading the database.
async fn bootstrap_admin(store: &Store, config: &Config) -> anyhow::Result<()> {
    if store.user_count().await? > 0 {
        return Ok(());
    }
    let (password, generated) = match &config.admin_password {
        Some(p) => (p.clone(), false),
        None => (generate_password(), true),
    };
    auth::check_password_rules(&password)
        .map_err(|e| anyhow::anyhow!("BONDGATE_ADMIN_PASSWORD: {}", e.detail))?;
    let hash = auth::hash_password_blocking(password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("hashing the admin password: {}", e.detail))?;
    store
        .create_user(&Actor::system(), "admin", &hash, &[Role::Admin])
        .await?;
    if generated {
        let path = config.data_dir.join(INITIAL_PASSWORD_FILE);
        write_secret(&path, &password)?;
        tracing::warn!(file = %path.display(), "first start: created user 'admin'; its password is in this file. Log in and change it.");
    } else {
        tracing::info!(
            "first start: created user 'admin' with the password from BONDGATE_ADMIN_PASSWORD"
        );
    }
    Ok(())
}

fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{secret}")?;
    Ok(())
}
