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
    /// The language of the prompts MQTT handhelds are sent (their `text`
    /// is one language; the browser PDA gets both and shows its own).
    pub pda_chinese: bool,
    /// Automatic waves; None: only managers cut waves.
    pub auto_wave: Option<crate::domain::picking::WavePolicy>,
    /// How often the automatic wave policy is checked.
    pub wave_check: Duration,
}

/// The customs gateway's keys: who may deliver receipts.
#[derive(Clone, Default)]
pub struct CustomsConfig {
    pub keys: Vec<CustomsKey>,
    /// The watched inbox directory (default `{data_dir}/customs-inbox`).
    pub inbox: Option<PathBuf>,
}

/// One key of the customs gateway, from `BONDGATE_CUSTOMS_KEYS`.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomsKey {
    pub id: String,
    /// `ed25519` (the 32-byte public key) or `hmac` (the shared secret).
    pub kind: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for CustomsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CustomsKey({} {}, {} bytes)",
            self.id,
            self.kind,
            self.bytes.len()
        )
    }
}

impl std::fmt::Debug for CustomsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomsConfig")
            .field("keys", &self.keys)
            .field("inbox", &self.inbox)
            .finish()
    }
}

/// Parses `id=ed25519:BASE64,id2=hmac:BASE64`: the gateway's keys, several
/// at once so a key can be rotated without a gap.
pub fn parse_customs_keys(text: &str) -> anyhow::Result<Vec<CustomsKey>> {
    use base64::Engine;
    let mut keys = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, rest) = item
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("customs key {item:.12}…: expected id=kind:base64"))?;
        let (kind, b64) = rest
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("customs key {id}: expected kind:base64 after '='"))?;
        anyhow::ensure!(
            matches!(kind, "ed25519" | "hmac"),
            "customs key {id}: kind must be ed25519 or hmac"
        );
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| anyhow::anyhow!("customs key {id}: the key is not base64"))?;
        keys.push(CustomsKey {
            id: id.to_string(),
            kind: kind.to_string(),
            bytes,
        });
    }
    Ok(keys)
}

/// The pack stations and their rules.
#[derive(Debug, Clone)]
pub struct PackingConfig {
    /// How far a parcel may weigh from Σ unit weights + box tare.
    pub tolerance: crate::domain::packing::Tolerance,
    /// How long a pack waits for a stable reading of the placed parcel.
    pub weigh_timeout: Duration,
    /// Less than this on the plate counts as an empty scale.
    pub scale_min_grams: i64,
    /// Two stable readings this close are the same load (scale noise).
    pub scale_noise_grams: i64,
    /// Where waybill numbers come from and which carrier they belong to.
    pub waybill: crate::store::WaybillRange,
    pub logistics_code: String,
    pub logistics_name: String,
    pub stations: Vec<StationConfig>,
}

impl Default for PackingConfig {
    fn default() -> Self {
        PackingConfig {
            tolerance: crate::domain::packing::Tolerance::default(),
            weigh_timeout: Duration::from_secs(10),
            scale_min_grams: 10,
            scale_noise_grams: 2,
            waybill: crate::store::WaybillRange {
                name: "default".into(),
                prefix: "BG".into(),
                first: 1,
                last: 9_999_999_999,
                width: 10,
            },
            logistics_code: "BONDGATE".into(),
            logistics_name: "bondgate demo carrier".into(),
            stations: Vec::new(),
        }
    }
}

/// One pack station: its id, its scale and its label printer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationConfig {
    pub id: String,
    pub scale: Option<ScaleSource>,
    pub printer: Option<PrinterTarget>,
}

/// Where a station's weights come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleSource {
    /// A scale on a serial port of this server.
    Serial(SerialScale),
    /// A scale bridge publishing on `scale/{station}/weight`.
    Mqtt {
        /// The bridge's device id (its presence and health topics):
        /// `bridge = "…"` in the station's `scale` table, by default
        /// `scale-bridge-{station}`, the scale bridge's own default. A weight
        /// carries no sender, so this is how the server knows whose
        /// `offline` means this station's scale is gone.
        bridge: String,
    },
}

impl ScaleSource {
    /// The device id a station's scale bridge has unless configured
    /// otherwise (the scale bridge's default `device`).
    pub fn default_bridge(station: &str) -> String {
        format!("scale-bridge-{station}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialScale {
    pub path: PathBuf,
    pub baud: u32,
    /// 7 or 8.
    pub data_bits: u8,
    /// `none`, `even` or `odd`.
    pub parity: String,
    /// 1 or 2.
    pub stop_bits: u8,
    pub protocol: bondgate_protocol::scale::ScaleProtocol,
}

/// Where a station's labels are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrinterTarget {
    /// Raw TCP, usually port 9100: `host:port`.
    Tcp(String),
    /// A printer on a serial port of this server.
    Serial { path: PathBuf, baud: u32 },
    /// A printer bridge on `printer/{station}/job`.
    Mqtt,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StationFile {
    id: String,
    scale: Option<ScaleFile>,
    printer: Option<PrinterFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleFile {
    serial: Option<PathBuf>,
    #[serde(default)]
    mqtt: bool,
    protocol: Option<String>,
    baud: Option<u32>,
    data_bits: Option<u8>,
    parity: Option<String>,
    stop_bits: Option<u8>,
    /// The scale bridge's device id (MQTT scales only).
    bridge: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrinterFile {
    tcp: Option<String>,
    serial: Option<PathBuf>,
    baud: Option<u32>,
    #[serde(default)]
    mqtt: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaybillFile {
    name: Option<String>,
    prefix: Option<String>,
    first: Option<i64>,
    last: Option<i64>,
    width: Option<i64>,
    logistics_code: Option<String>,
    logistics_name: Option<String>,
}

impl StationFile {
    fn resolve(self) -> anyhow::Result<StationConfig> {
        bondgate_protocol::StationId::new(&self.id)
            .map_err(|e| anyhow::anyhow!("station id {:?}: {e}", self.id))?;
        let id = self.id;
        let scale = match self.scale {
            None => None,
            Some(s) => match (s.serial, s.mqtt) {
                (Some(_), true) => {
                    anyhow::bail!("station {id}: a scale is on serial or on MQTT, not both")
                }
                (None, false) => {
                    anyhow::bail!("station {id}: scale needs serial = \"/dev/…\" or mqtt = true")
                }
                (None, true) => {
                    let bridge = s.bridge.unwrap_or_else(|| ScaleSource::default_bridge(&id));
                    bondgate_protocol::DeviceId::new(&bridge).map_err(|e| {
                        anyhow::anyhow!("station {id}: scale bridge {bridge:?}: {e}")
                    })?;
                    Some(ScaleSource::Mqtt { bridge })
                }
                (Some(_), false) if s.bridge.is_some() => {
                    anyhow::bail!("station {id}: bridge = \"…\" is for a scale with mqtt = true")
                }
                (Some(path), false) => {
                    let protocol = s.protocol.as_deref().unwrap_or("mt-sics");
                    let protocol = protocol
                        .parse()
                        .map_err(|e| anyhow::anyhow!("station {id}: {e}"))?;
                    let data_bits = s.data_bits.unwrap_or(8);
                    anyhow::ensure!(
                        matches!(data_bits, 7 | 8),
                        "station {id}: data_bits must be 7 or 8"
                    );
                    let stop_bits = s.stop_bits.unwrap_or(1);
                    anyhow::ensure!(
                        matches!(stop_bits, 1 | 2),
                        "station {id}: stop_bits must be 1 or 2"
                    );
                    let parity = s.parity.unwrap_or_else(|| "none".into());
                    anyhow::ensure!(
                        matches!(parity.as_str(), "none" | "even" | "odd"),
                        "station {id}: parity must be none, even or odd"
                    );
                    Some(ScaleSource::Serial(SerialScale {
                        path,
                        baud: s.baud.unwrap_or(9600),
                        data_bits,
                        parity,
                        stop_bits,
                        protocol,
                    }))
                }
            },
        };
        let printer = match self.printer {
            None => None,
            Some(p) => match (p.tcp, p.serial, p.mqtt) {
                (Some(addr), None, false) => Some(PrinterTarget::Tcp(addr)),
                (None, Some(path), false) => Some(PrinterTarget::Serial {
                    path,
                    baud: p.baud.unwrap_or(9600),
                }),
                (None, None, true) => Some(PrinterTarget::Mqtt),
                _ => anyhow::bail!(
                    "station {id}: printer needs exactly one of tcp = \"host:9100\", serial = \"/dev/…\" or mqtt = true"
                ),
            },
        };
        Ok(StationConfig { id, scale, printer })
    }
}

/// One outbound gate: its id, its open pulse and its output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateConfig {
    pub id: String,
    /// How long the relay is energised for one open.
    pub pulse: bondgate_protocol::PulseMs,
    /// How long the output has to confirm a pulse before it counts as a
    /// fault (and the parcel as not exited). Also the command's expiry.
    pub confirm_timeout: Duration,
    pub output: GateOutputConfig,
}

/// Which device pulses a gate's barrier controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateOutputConfig {
    /// A gate bridge on `gate/{gate}/command`, reporting `gate/{gate}/state`.
    Mqtt,
    /// An LCUS serial relay board on this server: `A0 ch op sum` frames.
    Lcus {
        path: PathBuf,
        baud: u32,
        channel: u8,
    },
    /// A Modbus TCP relay board: write single coil, read coils back.
    ModbusTcp { addr: String, modbus: ModbusCoil },
    /// A Modbus RTU relay board on a serial port of this server.
    ModbusRtu {
        path: PathBuf,
        baud: u32,
        modbus: ModbusCoil,
    },
}

/// Which coil of which Modbus unit, and how it is pulsed (the relay
/// drivers' type).
pub use bondgate_relay_io::ModbusCoil;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GateFile {
    id: String,
    pulse_ms: Option<u32>,
    confirm_timeout_ms: Option<u64>,
    output: Option<GateOutputFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GateOutputFile {
    #[serde(default)]
    mqtt: bool,
    lcus: Option<PathBuf>,
    channel: Option<u8>,
    modbus_tcp: Option<String>,
    modbus_rtu: Option<PathBuf>,
    baud: Option<u32>,
    unit: Option<u8>,
    coil: Option<u16>,
    #[serde(default)]
    flash: bool,
}

impl GateFile {
    fn resolve(self) -> anyhow::Result<GateConfig> {
        bondgate_protocol::GateId::new(&self.id)
            .map_err(|e| anyhow::anyhow!("gate id {:?}: {e}", self.id))?;
        let id = self.id;
        let pulse = bondgate_protocol::PulseMs::new(self.pulse_ms.unwrap_or(800))
            .map_err(|e| anyhow::anyhow!("gate {id}: {e}"))?;
        let confirm_ms = self.confirm_timeout_ms.unwrap_or(2_000);
        anyhow::ensure!(
            (100..=30_000).contains(&confirm_ms),
            "gate {id}: confirm_timeout_ms must be between 100 and 30000"
        );
        let Some(o) = self.output else {
            anyhow::bail!("gate {id}: needs an output (mqtt = true, lcus = \"/dev/…\", modbus_tcp = \"host:502\" or modbus_rtu = \"/dev/…\")")
        };
        let modbus = || -> anyhow::Result<ModbusCoil> {
            let unit = o.unit.unwrap_or(1);
            anyhow::ensure!((1..=247).contains(&unit), "gate {id}: unit must be 1..=247");
            Ok(ModbusCoil {
                unit,
                coil: o.coil.unwrap_or(0),
                flash: o.flash,
            })
        };
        let output = match (o.mqtt, &o.lcus, &o.modbus_tcp, &o.modbus_rtu) {
            (true, None, None, None) => GateOutputConfig::Mqtt,
            (false, Some(path), None, None) => {
                let channel = o.channel.unwrap_or(1);
                anyhow::ensure!(channel >= 1, "gate {id}: LCUS channels count from 1");
                GateOutputConfig::Lcus { path: path.clone(), baud: o.baud.unwrap_or(9600), channel }
            }
            (false, None, Some(addr), None) => {
                GateOutputConfig::ModbusTcp { addr: addr.clone(), modbus: modbus()? }
            }
            (false, None, None, Some(path)) => GateOutputConfig::ModbusRtu {
                path: path.clone(),
                baud: o.baud.unwrap_or(9600),
                modbus: modbus()?,
            },
            _ => anyhow::bail!(
                "gate {id}: output needs exactly one of mqtt = true, lcus = \"/dev/…\", modbus_tcp = \"host:502\" or modbus_rtu = \"/dev/…\""
            ),
        };
        Ok(GateConfig {
            id,
            pulse,
            confirm_timeout: Duration::from_millis(confirm_ms),
            output,
        })
    }
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
    /// Order intake and PDA scans share commits (default: on for SQLite,
    /// off for PostgreSQL).
    group_commit: Option<bool>,
    adjustments_need_second_approver: Option<bool>,
    mqtt_url: Option<String>,
    mqtt_listen: Option<SocketAddr>,
    site: Option<String>,
    /// The customs receipts inbox directory.
    customs_inbox: Option<PathBuf>,
    tote_prefix: Option<String>,
    /// `en` or `zh`: the handhelds' prompt language.
    pda_language: Option<String>,
    /// 0 turns automatic waves off.
    wave_max_orders: Option<usize>,
    wave_max_wait_secs: Option<i64>,
    weight_tolerance_grams: Option<i64>,
    /// A decimal string such as "3" or "2.5" (no floats for tolerances).
    weight_tolerance_percent: Option<String>,
    weigh_timeout_secs: Option<u64>,
    scale_min_grams: Option<i64>,
    waybill: Option<WaybillFile>,
    station: Vec<StationFile>,
    gate: Vec<GateFile>,
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
    pub packing: PackingConfig,
    pub customs: CustomsConfig,
    /// The outbound gates and their outputs.
    pub gates: Vec<GateConfig>,
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
                pda_chinese: false,
                auto_wave: Some(crate::domain::picking::WavePolicy {
                    max_orders: 50,
                    max_wait_secs: 300,
                }),
                wave_check: Duration::from_secs(10),
            },
            packing: PackingConfig::default(),
            customs: CustomsConfig {
                keys: Vec::new(),
                inbox: Some(data_dir.join("customs-inbox")),
            },
            gates: Vec::new(),
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
        if let Some(b) = file.group_commit {
            c.store.group_commit = Some(b);
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
        if let Some(lang) = file.pda_language {
            c.picking.pda_chinese = match lang.as_str() {
                "zh" => true,
                "en" => false,
                other => anyhow::bail!("pda_language must be \"en\" or \"zh\", not {other:?}"),
            };
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
        if let Some(g) = file.weight_tolerance_grams {
            anyhow::ensure!(g >= 0, "weight_tolerance_grams must not be negative");
            c.packing.tolerance.grams = g;
        }
        if let Some(p) = &file.weight_tolerance_percent {
            c.packing.tolerance.basis_points =
                crate::domain::packing::Tolerance::percent_to_basis_points(p)
                    .map_err(|e| anyhow::anyhow!(e))?;
        }
        if let Some(s) = file.weigh_timeout_secs {
            anyhow::ensure!(
                (1..=120).contains(&s),
                "weigh_timeout_secs must be 1 to 120"
            );
            c.packing.weigh_timeout = Duration::from_secs(s);
        }
        if let Some(g) = file.scale_min_grams {
            anyhow::ensure!(g >= 1, "scale_min_grams must be at least 1");
            c.packing.scale_min_grams = g;
        }
        if let Some(w) = file.waybill {
            let r = &mut c.packing.waybill;
            if let Some(v) = w.name {
                r.name = v;
            }
            if let Some(v) = w.prefix {
                anyhow::ensure!(
                    v.len() <= 8 && v.bytes().all(|b| b.is_ascii_alphanumeric()),
                    "waybill prefix must be up to 8 letters or digits"
                );
                r.prefix = v;
            }
            if let Some(v) = w.first {
                r.first = v;
            }
            if let Some(v) = w.last {
                r.last = v;
            }
            if let Some(v) = w.width {
                r.width = v;
            }
            if let Some(v) = w.logistics_code {
                c.packing.logistics_code = v;
            }
            if let Some(v) = w.logistics_name {
                c.packing.logistics_name = v;
            }
        }
        for st in file.station {
            let st = st.resolve()?;
            anyhow::ensure!(
                !c.packing.stations.iter().any(|s| s.id == st.id),
                "station {} is configured twice",
                st.id
            );
            c.packing.stations.push(st);
        }
        for g in file.gate {
            let g = g.resolve()?;
            anyhow::ensure!(
                !c.gates.iter().any(|x| x.id == g.id),
                "gate {} is configured twice",
                g.id
            );
            c.gates.push(g);
        }
        if let Some(dir) = file.customs_inbox {
            c.customs.inbox = Some(dir);
        }
        if let Ok(text) = std::env::var("BONDGATE_CUSTOMS_KEYS") {
            c.customs.keys = parse_customs_keys(&text)?;
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
        assert_eq!(c.store.group_commit, None, "the backend's default");
        assert!(c.database_url.starts_with("sqlite://"));
        let args = Args {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..args
        };
        assert_eq!(Config::resolve(&args).unwrap().listen.port(), 9100);
    }

    #[test]
    fn the_handhelds_language_and_group_commit_come_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        let resolve = |text: &str| {
            std::fs::write(&f, text).unwrap();
            Config::resolve(&Args {
                config: Some(f.clone()),
                data_dir: Some(dir.path().into()),
                ..Default::default()
            })
        };
        assert!(!resolve("").unwrap().picking.pda_chinese);
        assert_eq!(
            resolve("group_commit = false\n")
                .unwrap()
                .store
                .group_commit,
            Some(false)
        );
        assert!(
            resolve("pda_language = \"zh\"\n")
                .unwrap()
                .picking
                .pda_chinese
        );
        assert!(
            !resolve("pda_language = \"en\"\n")
                .unwrap()
                .picking
                .pda_chinese
        );
        let err = resolve("pda_language = \"fr\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("pda_language"), "{err}");
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

    fn gates_from(toml: &str) -> anyhow::Result<Vec<GateConfig>> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, toml).unwrap();
        Config::resolve(&Args {
            config: Some(f),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        })
        .map(|c| c.gates)
    }

    fn stations_from(toml: &str) -> anyhow::Result<Vec<StationConfig>> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, toml).unwrap();
        Config::resolve(&Args {
            config: Some(f),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        })
        .map(|c| c.packing.stations)
    }

    #[test]
    fn an_mqtt_scale_names_its_bridge_or_takes_the_bridges_default() {
        let stations = stations_from(
            "[[station]]\nid = \"P1\"\nscale = { mqtt = true }\n\n[[station]]\nid = \"P2\"\nscale = { mqtt = true, bridge = \"box-7\" }\n",
        )
        .unwrap();
        assert_eq!(
            stations.iter().map(|s| s.scale.clone()).collect::<Vec<_>>(),
            vec![
                Some(ScaleSource::Mqtt {
                    bridge: "scale-bridge-P1".into()
                }),
                Some(ScaleSource::Mqtt {
                    bridge: "box-7".into()
                }),
            ]
        );
        for (toml, why) in [
            (
                "[[station]]\nid = \"P1\"\nscale = { serial = \"/dev/x\", bridge = \"b\" }\n",
                "mqtt = true",
            ),
            (
                "[[station]]\nid = \"P1\"\nscale = { mqtt = true, bridge = \"a/b\" }\n",
                "scale bridge",
            ),
        ] {
            let err = format!("{:#}", stations_from(toml).unwrap_err());
            assert!(err.contains(why), "{toml}: {err}");
        }
    }

    #[test]
    fn gates_as_the_readme_writes_them() {
        let gates = gates_from(
            r#"
[[gate]]
id = "G1"
pulse_ms = 800
confirm_timeout_ms = 2000
output = { mqtt = true }

[[gate]]
id = "G2"
output = { lcus = "/dev/ttyUSB1", channel = 1, baud = 9600 }

[[gate]]
id = "G3"
output = { modbus_tcp = "192.168.1.50:502", unit = 1, coil = 0, flash = true }
"#,
        )
        .unwrap();
        assert_eq!(gates.len(), 3);
        assert_eq!(gates[0].output, GateOutputConfig::Mqtt);
        assert_eq!(gates[0].pulse.get(), 800);
        assert_eq!(gates[0].confirm_timeout, Duration::from_secs(2));
        assert_eq!(
            gates[1].output,
            GateOutputConfig::Lcus {
                path: "/dev/ttyUSB1".into(),
                baud: 9600,
                channel: 1
            }
        );
        assert_eq!(
            gates[2].output,
            GateOutputConfig::ModbusTcp {
                addr: "192.168.1.50:502".into(),
                modbus: ModbusCoil {
                    unit: 1,
                    coil: 0,
                    flash: true
                }
            }
        );
    }

    #[test]
    fn a_gate_needs_exactly_one_output_and_sane_numbers() {
        for (toml, want) in [
            ("[[gate]]\nid = \"G1\"\n", "needs an output"),
            (
                "[[gate]]\nid = \"G1\"\noutput = { mqtt = true, lcus = \"/dev/x\" }\n",
                "exactly one",
            ),
            (
                "[[gate]]\nid = \"G1\"\npulse_ms = 0\noutput = { mqtt = true }\n",
                "G1",
            ),
            (
                "[[gate]]\nid = \"G1\"\nconfirm_timeout_ms = 5\noutput = { mqtt = true }\n",
                "confirm_timeout_ms",
            ),
            (
                "[[gate]]\nid = \"G1\"\noutput = { modbus_tcp = \"h:502\", unit = 0 }\n",
                "unit",
            ),
            (
                "[[gate]]\nid = \"G1\"\noutput = { mqtt = true }\n[[gate]]\nid = \"G1\"\noutput = { mqtt = true }\n",
                "twice",
            ),
            ("[[gate]]\nid = \"a/b\"\noutput = { mqtt = true }\n", "gate id"),
        ] {
            let err = gates_from(toml).unwrap_err();
            assert!(format!("{err:#}").contains(want), "{toml}: {err:#}");
        }
    }
}
