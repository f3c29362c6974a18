//! Configuration: defaults, then a TOML file, then environment variables and
//! flags (clap reads both; a flag wins over its variable). Secrets come only
//! from the environment and are never logged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::store::StoreOptions;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "bondgate.toml";

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// TOML configuration file (default: ./bondgate.toml if present).
    #[arg(long, env = "BONDGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, env = "BONDGATE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// sqlite:PATH or postgres://… (default: SQLite file in the data directory).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where the SQLite database and the first admin's password are kept.
    #[arg(long, env = "BONDGATE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, env = "BONDGATE_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// An external MQTT broker, mqtt://host:port, with user:password@ before
    /// the host if it needs a login (Mosquitto, EMQX). Without it the server
    /// runs its own broker on --mqtt-listen.
    #[arg(long, env = "MQTT_URL")]
    pub mqtt_url: Option<String>,
    /// Where the embedded MQTT broker listens (default 127.0.0.1:1884; port 0
    /// picks a free port).
    #[arg(long, env = "BONDGATE_MQTT_LISTEN")]
    pub mqtt_listen: Option<SocketAddr>,
    /// This warehouse's site id: the MQTT topic root is bondgate/{site}/.
    #[arg(long, env = "BONDGATE_SITE")]
    pub site: Option<String>,
}

/// Which MQTT broker the server's devices talk through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttBroker {
    /// The server runs rumqttd itself, listening here.
    Embedded(SocketAddr),
    /// An external broker, `mqtt://…`.
    External(String),
}

#[derive(Debug, Clone)]
pub struct MqttConfig {
    pub broker: MqttBroker,
    /// The site id: topics are `bondgate/{site}/…`.
    pub site: String,
}

#[derive(Debug, Clone)]
pub struct PickingConfig {
    /// Tote labels start with this.
    pub tote_prefix: String,
    /// Automatic waves; None: only managers cut waves.
    pub auto_wave: Option<crate::domain::picking::WavePolicy>,
    /// How often the automatic wave policy is checked.
    pub wave_check: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The file's shape: every field optional, unknown fields refused (a typo in
/// a setting must not silently fall back to a default).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    database_url: Option<String>,
    data_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
    request_timeout_secs: Option<u64>,
    body_limit_bytes: Option<usize>,
    token_ttl_hours: Option<i64>,
    pg_max_connections: Option<u32>,
    sqlite_synchronous: Option<String>,
    adjustments_need_second_approver: Option<bool>,
    mqtt_url: Option<String>,
    mqtt_listen: Option<SocketAddr>,
    site: Option<String>,
    tote_prefix: Option<String>,
    /// 0 turns automatic waves off.
    wave_max_orders: Option<usize>,
    wave_max_wait_secs: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    /// A request still running after this is abandoned with 503.
    pub request_timeout: Duration,
    /// Largest request body. A receipt of 1,000 lines is ~200 KiB of JSON.
    pub body_limit_bytes: usize,
    /// How long a login token stays valid: one shift and some.
    pub token_ttl: chrono::Duration,
    pub store: StoreOptions,
    /// The first admin's password, from `BONDGATE_ADMIN_PASSWORD`; generated if absent.
    pub admin_password: Option<String>,
    /// The key sealing personal data, base64 of 32 bytes, from
    /// `BONDGATE_PII_KEY`; else the key file in the data directory.
    pub pii_key: Option<String>,
    pub mqtt: MqttConfig,
    pub picking: PickingConfig,
}

impl Config {
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:8080";
    /// Not 1883: a machine that also runs Mosquitto (as production and CI
    /// machines do) keeps its port, and the embedded default still starts.
    pub const DEFAULT_MQTT_LISTEN: &'static str = "127.0.0.1:1884";
    pub const DEFAULT_SITE: &'static str = "SH01";
    pub const DEFAULT_DATA_DIR: &'static str = "./data";

    /// Defaults for a server on the given data directory (used by tests and
    /// tools that build a config in code).
    pub fn for_data_dir(data_dir: &Path) -> Config {
        Config {
            listen: Self::DEFAULT_LISTEN
                .parse()
                .expect("constant address parses"),
            database_url: sqlite_url(data_dir),
            data_dir: data_dir.to_path_buf(),
            log_format: LogFormat::Text,
            request_timeout: Duration::from_secs(15),
            body_limit_bytes: 1024 * 1024,
            token_ttl: chrono::Duration::hours(12),
            store: StoreOptions::default(),
            admin_password: None,
            pii_key: None,
            mqtt: MqttConfig {
                broker: MqttBroker::Embedded(
                    Self::DEFAULT_MQTT_LISTEN
                        .parse()
                        .expect("constant address parses"),
                ),
                site: Self::DEFAULT_SITE.into(),
            },
            picking: PickingConfig {
                tote_prefix: "TOTE".into(),
                auto_wave: Some(crate::domain::picking::WavePolicy {
                    max_orders: 50,
                    max_wait_secs: 300,
                }),
                wave_check: Duration::from_secs(10),
            },
        }
    }

    pub fn resolve(args: &Args) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(p) => read_file(p)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                read_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(Self::DEFAULT_DATA_DIR));
        let mut c = Config::for_data_dir(&data_dir);
        if let Some(l) = args.listen.or(file.listen) {
            c.listen = l;
        }
        if let Some(u) = args.database_url.clone().or(file.database_url) {
            c.database_url = u;
        }
        c.log_format = args.log_format.or(file.log_format).unwrap_or_default();
        if let Some(s) = file.request_timeout_secs {
            anyhow::ensure!(s > 0, "request_timeout_secs must be at least 1");
            c.request_timeout = Duration::from_secs(s);
        }
        if let Some(b) = file.body_limit_bytes {
            c.body_limit_bytes = b;
        }
        if let Some(h) = file.token_ttl_hours {
            anyhow::ensure!(
                (1..=24 * 30).contains(&h),
                "token_ttl_hours must be between 1 and 720"
            );
            c.token_ttl = chrono::Duration::hours(h);
        }
        if let Some(n) = file.pg_max_connections {
            anyhow::ensure!(n > 0, "pg_max_connections must be at least 1");
            c.store.pg_max_connections = n;
        }
        match file.sqlite_synchronous.as_deref() {
            None | Some("full") => {}
            Some("normal") => c.store.sqlite_sync_full = false,
            Some(other) => anyhow::bail!("sqlite_synchronous must be full or normal, not {other}"),
        }
        if let Some(b) = file.adjustments_need_second_approver {
            c.store.four_eyes = b;
        }
        if let Some(l) = args.mqtt_listen.or(file.mqtt_listen) {
            c.mqtt.broker = MqttBroker::Embedded(l);
        }
        if let Some(u) = args.mqtt_url.clone().or(file.mqtt_url) {
            crate::mqtt::BrokerAddr::parse(&u).map_err(|e| anyhow::anyhow!("MQTT_URL: {e}"))?;
            c.mqtt.broker = MqttBroker::External(u);
        }
        if let Some(site) = args.site.clone().or(file.site) {
            bondgate_protocol::Site::new(&site).map_err(|e| anyhow::anyhow!("site: {e}"))?;
            c.mqtt.site = site;
        }
        if let Some(p) = file.tote_prefix {
            anyhow::ensure!(
                (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()),
                "tote_prefix must be 1 to 8 letters or digits"
            );
            c.picking.tote_prefix = p.to_ascii_uppercase();
        }
        if let Some(policy) = &mut c.picking.auto_wave {
            if let Some(n) = file.wave_max_orders {
                policy.max_orders = n;
            }
            if let Some(w) = file.wave_max_wait_secs {
                anyhow::ensure!(w >= 0, "wave_max_wait_secs must not be negative");
                policy.max_wait_secs = w;
            }
        }
        if file.wave_max_orders == Some(0) {
            c.picking.auto_wave = None;
        }
        c.admin_password = std::env::var("BONDGATE_ADMIN_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty());
        anyhow::ensure!(
            crate::store::backend_of(&c.database_url).is_some(),
            "database URL must start with sqlite: or postgres://"
        );
        Ok(c)
    }
}

fn read_file(p: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(p)
        .with_context(|| format!("reading configuration {}", p.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing configuration {}", p.display()))
}

pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("bondgate.db").display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_apply_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:9000\"\nrequest_timeout_secs = 3\nsqlite_synchronous = \"normal\"\n").unwrap();
        let args = Args {
            config: Some(f.clone()),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let c = Config::resolve(&args).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.request_timeout, Duration::from_secs(3));
        assert!(!c.store.sqlite_sync_full);
        assert!(c.database_url.starts_with("sqlite://"));
        let args = Args {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..args
        };
        assert_eq!(Config::resolve(&args).unwrap().listen.port(), 9100);
    }

    #[test]
    fn a_misspelt_setting_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let err = Config::resolve(&Args {
            config: Some(f),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
    }
}
