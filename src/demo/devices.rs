//! The demo floor's hardware: every device a simulator on its real
//! transport — scales on pseudo-terminals, printers on TCP 9100-style
//! sockets and serial ptys, relay boards on Modbus TCP, the gate bridge and
//! scanners on MQTT — and the server configured to reach them exactly as it
//! would reach the real ones.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use bondgate::config::{
    Config, GateConfig, GateOutputConfig, ModbusCoil, PrinterTarget, ScaleSource, SerialScale,
    StationConfig,
};
use bondgate_protocol::scale::ScaleProtocol;
use bondgate_protocol::PulseMs;
use bondgate_sim::{
    GateBridgeOptions, GateBridgeSim, ModbusRelaySim, PrinterSim, RelayOptions, ScaleControl,
    ScaleOptions, ScaleSim, SerialPrinterOptions,
};

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
    /// Gate G1's bridge (MQTT output), started once the broker is up.
    pub gate_bridge: Option<GateBridgeSim>,
    /// Gate G2's Modbus TCP relay board.
    pub modbus_relay: ModbusRelaySim,
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
        Ok(Devices {
            stations,
            gate_bridge: None,
            modbus_relay,
        })
    }

    /// The server's view of these devices.
    pub fn configure(&self, config: &mut Config) -> anyhow::Result<()> {
        config.packing.stations = self
            .stations
            .iter()
            .map(|s| {
                let c = s.scale();
                let scale = ScaleSource::Serial(SerialScale {
                    path: c.path().context("the scale has a link")?,
                    baud: 9600,
                    data_bits: 8,
                    parity: "none".into(),
                    stop_bits: 1,
                    protocol: c.protocol(),
                });
                let printer = match s.printer.path() {
                    Some(path) => PrinterTarget::Serial { path, baud: 9600 },
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

    /// Starts what talks MQTT, once the server's broker is up.
    pub async fn connect(
        &mut self,
        broker: &bondgate_protocol::BrokerAddr,
        site: &bondgate_protocol::Site,
    ) -> anyhow::Result<()> {
        let gate = bondgate_protocol::GateId::new(GATES[0])?;
        let bridge =
            GateBridgeSim::start(GateBridgeOptions::new(broker.clone(), site.clone(), gate)).await;
        bridge
            .wait_ready(Duration::from_secs(10))
            .await
            .map_err(|e| anyhow::anyhow!("gate bridge G1: {e}"))?;
        self.gate_bridge = Some(bridge);
        Ok(())
    }

    /// Unplugs everything.
    pub async fn shutdown(self) {
        if let Some(b) = self.gate_bridge {
            b.shutdown().await;
        }
        self.modbus_relay.shutdown().await;
        for s in self.stations {
            s.scale.shutdown().await;
        }
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
