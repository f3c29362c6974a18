//! The demo floor's hardware: every device a simulator on its real
//! transport — scales on pseudo-terminals, printers on TCP 9100-style
//! sockets and serial ptys, relay boards on a pty (LCUS) and Modbus TCP, a
//! barcode scanner on a pty — and the edge bridges of `firmware-bridges/`
//! between some of them and the broker, run from the same configuration
//! files a station's edge box reads (written to `{data}/edge/`). The server
//! is configured to reach them exactly as it would reach the real ones:
//!
//! | station / gate | device | how the server reaches it |
//! |---|---|---|
//! | P1 | MT-SICS scale on a pty; network label printer | serial port; raw TCP |
//! | P2 | Yaohua A9 scale on a pty; serial label printer | `scale-bridge` → MQTT; `printer-bridge` ← MQTT |
//! | G1 | LCUS relay on a pty; serial barcode scanner on a pty | `gate-bridge` ← MQTT; `scanner-bridge` → MQTT |
//! | G2 | Modbus TCP relay board; MQTT scanner | Modbus TCP; MQTT |

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bondgate::config::{
    Config, GateConfig, GateOutputConfig, ModbusCoil, PrinterTarget, ScaleSource, SerialScale,
    StationConfig,
};
use bondgate_protocol::scale::ScaleProtocol;
use bondgate_protocol::{BrokerAddr, PulseMs, Site};
use bondgate_sim::{
    LcusRelaySim, ModbusRelaySim, PrinterSim, RelayOptions, ScaleControl, ScaleOptions, ScaleSim,
    SerialPrinterOptions,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_serial::{SerialPort, SerialStream};

/// One pack station's simulated scale and printer.
pub struct StationDevices {
    pub id: &'static str,
    pub scale: ScaleSim,
    pub printer: PrinterSim,
}

impl StationDevices {
    pub fn scale(&self) -> ScaleControl {
        self.scale.control()
    }
}

/// Everything plugged in on the demo floor.
pub struct Devices {
    pub stations: Vec<StationDevices>,
    /// Gate G1's LCUS relay board, driven by `gate-bridge`.
    pub lcus_relay: LcusRelaySim,
    /// Gate G2's Modbus TCP relay board, driven by the server.
    pub modbus_relay: ModbusRelaySim,
    /// Gate G1's barcode scanner: what it "reads" is written here, and
    /// `scanner-bridge` reads it from the other end of the pty.
    pub scanner: Option<SerialStream>,
    scanner_path: std::path::PathBuf,
    edge_dir: std::path::PathBuf,
    dev_dir: std::path::PathBuf,
    bridges: Vec<JoinHandle<()>>,
    bridges_stop: watch::Sender<bool>,
}

/// The gates: G1 behind an MQTT gate bridge, G2 on a Modbus TCP relay board
/// the server drives itself.
pub const GATES: [&str; 2] = ["G1", "G2"];

impl Devices {
    /// Plugs in the scales, printers and relay board (before the server
    /// starts, as on a real floor), with stable `by-id`-style links under
    /// `{dir}/dev/`.
    pub async fn plug(dir: &Path) -> anyhow::Result<Devices> {
        let dev = dir.join("dev");
        std::fs::create_dir_all(&dev)?;
        // P1: an MT-SICS bench scale polled over RS-232, a network label
        // printer on raw TCP. P2: a Yaohua A9 indicator streaming, a
        // serial label printer.
        let mut stations = Vec::new();
        for (id, protocol) in [
            ("P1", ScaleProtocol::MtSics),
            ("P2", ScaleProtocol::YaohuaA9),
        ] {
            let mut options = ScaleOptions::new(protocol);
            options.link = Some(dev.join(format!("scale-{id}")));
            options.settle = Duration::from_millis(600);
            let scale = ScaleSim::start(options)
                .await
                .with_context(|| format!("starting station {id}'s scale simulator"))?;
            let printer = if id == "P1" {
                PrinterSim::start(loopback()).await?
            } else {
                PrinterSim::start_serial(SerialPrinterOptions {
                    link: Some(dev.join(format!("printer-{id}"))),
                })
                .await?
            };
            stations.push(StationDevices { id, scale, printer });
        }
        let modbus_relay = ModbusRelaySim::start_tcp(loopback(), RelayOptions::default()).await?;
        let lcus_relay = LcusRelaySim::start(RelayOptions {
            link: Some(dev.join("relay-G1")),
            ..RelayOptions::default()
        })
        .await?;
        let (scanner, scanner_end) = SerialStream::pair().context("a pty for the gate scanner")?;
        let scanner_path = PathBuf::from(scanner_end.name().context("the scanner pty's name")?);
        // Closed here: the bridge opens it by path.
        drop(scanner_end);
        let edge_dir = dir.join("edge");
        std::fs::create_dir_all(&edge_dir)?;
        let (bridges_stop, _) = watch::channel(false);
        Ok(Devices {
            stations,
            lcus_relay,
            modbus_relay,
            scanner: Some(scanner),
            scanner_path,
            edge_dir,
            dev_dir: dev,
            bridges: Vec::new(),
            bridges_stop,
        })
    }

    /// The server's view of these devices.
    pub fn configure(&self, config: &mut Config) -> anyhow::Result<()> {
        config.packing.stations = self
            .stations
            .iter()
            .map(|s| {
                let c = s.scale();
                let scale = if s.id == BRIDGED_SCALE {
                    // The scale bridge's default device id.
                    ScaleSource::Mqtt {
                        bridge: format!("scale-bridge-{BRIDGED_SCALE}"),
                    }
                } else {
                    ScaleSource::Serial(SerialScale {
                        path: c.path().context("the scale has a link")?,
                        baud: 9600,
                        data_bits: 8,
                        parity: "none".into(),
                        stop_bits: 1,
                        protocol: c.protocol(),
                    })
                };
                let printer = match s.printer.path() {
                    // P2's serial printer is behind printer-bridge.
                    Some(_) => PrinterTarget::Mqtt,
                    None => PrinterTarget::Tcp(s.printer.local_addr().to_string()),
                };
                Ok(StationConfig {
                    id: s.id.to_string(),
                    scale: Some(scale),
                    printer: Some(printer),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let pulse = PulseMs::new(600).map_err(|e| anyhow::anyhow!("{e}"))?;
        config.gates = vec![
            GateConfig {
                id: GATES[0].into(),
                pulse,
                confirm_timeout: Duration::from_secs(2),
                output: GateOutputConfig::Mqtt,
            },
            GateConfig {
                id: GATES[1].into(),
                pulse,
                confirm_timeout: Duration::from_secs(2),
                output: GateOutputConfig::ModbusTcp {
                    addr: self
                        .modbus_relay
                        .addr()
                        .context("the relay board listens on TCP")?
                        .to_string(),
                    modbus: ModbusCoil {
                        unit: 1,
                        coil: 0,
                        flash: false,
                    },
                },
            },
        ];
        Ok(())
    }

    /// Starts the edge bridges once the server's broker is up, each from
    /// the configuration file an edge box would read.
    /// With `chaos`, gate-bridge G1 is killed that often (its task dropped
    /// mid-whatever, like a power cut of the edge box) and started again two
    /// seconds later.
    pub fn start_bridges(
        &mut self,
        broker: &BrokerAddr,
        site: &Site,
        chaos: Option<Duration>,
    ) -> anyhow::Result<()> {
        let head = format!("broker = \"{broker}\"\nsite = \"{site}\"\n");
        let dev = |name: &str| self.dev_dir.join(name).display().to_string();
        let gate = format!(
            "{head}gate = \"G1\"\n\n[relay]\nkind = \"lcus\"\npath = \"{}\"\nchannel = 1\n",
            dev("relay-G1")
        );
        let scale = format!(
            "{head}station = \"{BRIDGED_SCALE}\"\nprotocol = \"yaohua-a9\"\n\n[serial]\npath = \"{}\"\nbaud = 9600\n",
            dev(&format!("scale-{BRIDGED_SCALE}"))
        );
        let scanner = format!(
            "{head}gate = \"G1\"\nseq_file = \"{}\"\n\n[serial]\npath = \"{}\"\n",
            self.edge_dir.join("scanner-bridge-G1.seq").display(),
            self.scanner_path.display()
        );
        let printer = format!(
            "{head}station = \"{BRIDGED_SCALE}\"\nprinted_file = \"{}\"\n\n[serial]\npath = \"{}\"\nbaud = 9600\n",
            self.edge_dir
                .join(format!("printer-bridge-{BRIDGED_SCALE}.printed"))
                .display(),
            dev(&format!("printer-{BRIDGED_SCALE}"))
        );
        let write = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
            let path = self.edge_dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        };
        let gate = bondgate_gate_bridge::Config::load(&write("gate-bridge-G1.toml", &gate)?)?;
        let scale = bondgate_scale_bridge::Config::load(&write(
            &format!("scale-bridge-{BRIDGED_SCALE}.toml"),
            &scale,
        )?)?;
        let scanner =
            bondgate_scanner_bridge::Config::load(&write("scanner-bridge-G1.toml", &scanner)?)?;
        let stop = |rx: watch::Receiver<bool>| async move {
            let mut rx = rx;
            let _ = rx.wait_for(|s| *s).await;
        };
        let rx = || self.bridges_stop.subscribe();
        let printer = bondgate_printer_bridge::Config::load(&write(
            &format!("printer-bridge-{BRIDGED_SCALE}.toml"),
            &printer,
        )?)?;
        let (b, c) = (stop(rx()), stop(rx()));
        self.bridges.push(tokio::spawn(run_with_chaos(
            "gate-bridge G1",
            move |rx| bondgate_gate_bridge::run(gate.clone(), until_stopped(rx)),
            chaos,
            rx(),
        )));
        // Killed out of step with the gate bridge.
        self.bridges.push(tokio::spawn(run_with_chaos(
            "printer-bridge P2",
            move |rx| bondgate_printer_bridge::run(printer.clone(), until_stopped(rx)),
            chaos.map(|c| c + c / 2),
            rx(),
        )));
        self.bridges.push(tokio::spawn(async move {
            if let Err(e) = bondgate_scale_bridge::run(scale, b).await {
                tracing::error!(error = %e, "scale-bridge P2 stopped");
            }
        }));
        self.bridges.push(tokio::spawn(async move {
            if let Err(e) = bondgate_scanner_bridge::run(scanner, c).await {
                tracing::error!(error = %e, "scanner-bridge G1 stopped");
            }
        }));
        Ok(())
    }

    /// Appends every pulse the simulated relay boards see to `path`, one
    /// line `{gate} {unix ms}` each, synced (within 100 ms of the pulse): the
    /// fault suite matches them with the gates' grants after a SIGKILL —
    /// the relays' own word that no gate opened without one.
    pub fn log_relay_pulses(&mut self, path: &Path) -> anyhow::Result<()> {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let boards = [
            (GATES[0], self.lcus_relay.control()),
            (GATES[1], self.modbus_relay.control()),
        ];
        let mut stop = self.bridges_stop.subscribe();
        self.bridges.push(tokio::spawn(async move {
            let mut seen: [Option<std::time::Instant>; 2] = [None; 2];
            loop {
                for (i, (gate, control)) in boards.iter().enumerate() {
                    for pulse in control.pulses() {
                        if seen[i].is_none_or(|t| pulse.on_at > t) {
                            seen[i] = Some(pulse.on_at);
                            let ms = chrono::Utc::now().timestamp_millis();
                            let written =
                                writeln!(file, "{gate} {ms}").and_then(|()| file.sync_data());
                            if let Err(e) = written {
                                tracing::error!(error = %e, "relay pulse not logged");
                            }
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }));
        Ok(())
    }

    /// Stops the bridges (each drives its device safe and leaves its
    /// `offline` will) and unplugs everything.
    pub async fn shutdown(self) {
        let _ = self.bridges_stop.send(true);
        for b in self.bridges {
            let _ = tokio::time::timeout(Duration::from_secs(5), b).await;
        }
        self.lcus_relay.shutdown().await;
        self.modbus_relay.shutdown().await;
        for s in self.stations {
            s.scale.shutdown().await;
        }
    }
}

/// Resolves once the demo stops.
async fn until_stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs a bridge until the demo stops; with `chaos`, kills it that often
/// and starts it again two seconds later, as a fault drill. The kill is
/// dropping its future: no clean disconnect, no relay off, no last report
/// — as a power cut of the edge box. A gate bridge drives its relay off
/// when it starts and a scan meanwhile is refused as an output fault; a
/// printer bridge answers a re-sent job from its printed-ids file.
async fn run_with_chaos<Fut, E>(
    name: &'static str,
    make: impl Fn(watch::Receiver<bool>) -> Fut,
    chaos: Option<Duration>,
    mut stop: watch::Receiver<bool>,
) where
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    loop {
        let mut run = Box::pin(make(stop.clone()));
        let lifetime = tokio::time::sleep(chaos.unwrap_or(Duration::from_secs(60 * 60 * 24 * 365)));
        tokio::select! {
            r = &mut run => {
                if let Err(e) = r {
                    tracing::error!(error = %e, "{name} stopped");
                }
                return;
            }
            _ = lifetime => {
                tracing::warn!("chaos: {name} killed; back in 2 s");
            }
        }
        drop(run);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// The station whose scale and printer reach the server through
/// `scale-bridge` and `printer-bridge`.
const BRIDGED_SCALE: &str = "P2";

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
