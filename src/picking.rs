//! The picking service around the store: PDA traffic from the MQTT link, and
//! the timer that cuts waves by policy.

use std::sync::Arc;
use std::time::Duration;

use bondgate_protocol::{
    DeviceHealth, DeviceId, DeviceStatus, GateId, GateResultMsg, GateState, Next, PayloadError,
    PrinterReport, PromptMsg, PromptText, ScanMsg, Site, StationId, Tone, WeightMsg,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::domain::picking::WavePolicy;
use crate::mqtt::{BoxFuture, DeviceHandler};
use crate::store::{ScanAnswer, ScanContext, ScanInput, Store, StoreError};

/// Answers PDA scans arriving over MQTT and records device status.
///
/// It is the server's one MQTT handler, so it also hands scale bridges'
/// readings, presence and health to the pack stations' scales, and keeps
/// every bridge's latest health report for the device list.
pub struct PdaHandler {
    store: Store,
    tote_prefix: String,
    /// Handhelds are prompted in Chinese (`pda_language = "zh"`).
    chinese: bool,
    scales: Option<crate::packing::ScaleHub>,
    gates: Option<Arc<crate::gate::GateLink>>,
    health: Option<crate::device_health::DeviceHealthBook>,
    events: Option<crate::events::EventHub>,
    /// Set once the printers are started (they need the link's publisher).
    printers: Option<Arc<std::sync::OnceLock<crate::packing::PrinterHub>>>,
}

impl PdaHandler {
    pub fn new(store: Store, tote_prefix: String) -> PdaHandler {
        PdaHandler {
            store,
            tote_prefix,
            chinese: false,
            scales: None,
            gates: None,
            health: None,
            events: None,
            printers: None,
        }
    }

    /// Handhelds get their prompts in Chinese.
    pub fn in_chinese(self, chinese: bool) -> PdaHandler {
        PdaHandler { chinese, ..self }
    }

    /// Bridges' health reports (`devices/{id}/health`) are kept here.
    pub fn with_health(self, health: crate::device_health::DeviceHealthBook) -> PdaHandler {
        PdaHandler {
            health: Some(health),
            ..self
        }
    }

    /// Scans answered, devices' presence and gate bridges' reports go to
    /// the screens' live feed.
    pub fn with_events(self, events: crate::events::EventHub) -> PdaHandler {
        PdaHandler {
            events: Some(events),
            ..self
        }
    }

    /// Printer bridges' reports go to these printers.
    pub fn with_printers(
        self,
        printers: Arc<std::sync::OnceLock<crate::packing::PrinterHub>>,
    ) -> PdaHandler {
        PdaHandler {
            printers: Some(printers),
            ..self
        }
    }

    fn publish(&self, event: crate::events::Event) {
        if let Some(e) = &self.events {
            e.publish(event);
        }
    }

    /// Readings on `scale/{station}/weight` go to these scales.
    pub fn with_scales(self, scales: crate::packing::ScaleHub) -> PdaHandler {
        PdaHandler {
            scales: Some(scales),
            ..self
        }
    }

    /// Gate bridges' reports and gate scanners' scans go to these gates.
    pub fn with_gates(self, gates: Arc<crate::gate::GateLink>) -> PdaHandler {
        PdaHandler {
            gates: Some(gates),
            ..self
        }
    }

    async fn scan(&self, device: &DeviceId, scan: ScanMsg) -> PromptMsg {
        let input = ScanInput {
            device: device.as_str().to_string(),
            seq: scan.seq,
            barcode: scan.barcode.as_str().to_string(),
        };
        let ctx = ScanContext {
            tote_prefix: &self.tote_prefix,
            user: None,
        };
        match self.store.pda_scan(&input, &ctx).await {
            Ok(a) => {
                self.publish(crate::events::Event::PickScan {
                    device: input.device.clone(),
                    user: None,
                    answer: a.clone(),
                });
                prompt_msg(a, self.chinese)
            }
            Err(StoreError::IdempotencyConflict { .. }) => PromptMsg {
                seq: scan.seq,
                ok: false,
                tone: Tone::Error,
                text: PromptText::clamp(&if self.chinese {
                    format!(
                        "扫描序号 {} 已用于另一个条码。请重置手持终端的扫描计数",
                        scan.seq
                    )
                } else {
                    format!(
                        "Scan number {} was already used for another code. Restart the PDA's scan counter",
                        scan.seq
                    )
                }),
                next: Next::Bin,
            },
            Err(e) => {
                // Nothing was stored: the same scan again is a fresh try.
                tracing::error!(device = %device.as_str(), seq = scan.seq, error = %e, "PDA scan failed");
                PromptMsg {
                    seq: scan.seq,
                    ok: false,
                    tone: Tone::Error,
                    text: PromptText::clamp(if self.chinese {
                        "服务器故障：未记录任何内容。请重新扫描"
                    } else {
                        "Server problem: nothing was recorded. Scan again"
                    }),
                    next: Next::Bin,
                }
            }
        }
    }
}

/// The store's answer on the wire. The store words prompts for the PDA, so
/// an over-long text is a bug; it is shown clamped rather than dropped.
fn prompt_msg(a: ScanAnswer, chinese: bool) -> PromptMsg {
    let text = match (&a.text_zh, chinese) {
        (Some(zh), true) => zh,
        _ => &a.text,
    };
    PromptMsg {
        seq: a.seq,
        ok: a.ok,
        tone: a.tone,
        text: PromptText::clamp(text),
        next: a.next,
    }
}

impl DeviceHandler for PdaHandler {
    fn on_scan(&self, _site: &Site, device: &DeviceId, scan: ScanMsg) -> BoxFuture<'_, PromptMsg> {
        let device = device.clone();
        Box::pin(async move { self.scan(&device, scan).await })
    }

    fn on_weight(&self, _site: &Site, station: &StationId, weight: WeightMsg) {
        if let Some(scales) = &self.scales {
            scales.bridge_reading(station.as_str(), weight.grams, weight.stable);
        }
    }

    fn on_health(&self, site: &Site, device: &DeviceId, health: DeviceHealth) {
        if let Some(scales) = &self.scales {
            scales.bridge_health(
                device.as_str(),
                health.ok,
                health.last_error.as_ref().map(|t| t.as_str()),
            );
        }
        if let Some(book) = &self.health {
            book.record(site.as_str(), device.as_str(), health);
        }
    }

    fn on_health_refused(&self, site: &Site, device: &DeviceId, error: &PayloadError) {
        if let Some(book) = &self.health {
            book.refuse(site.as_str(), device.as_str(), &error.to_string());
        }
    }

    fn on_printer_report(&self, _site: &Site, station: &StationId, report: PrinterReport) {
        if let Some(hub) = self.printers.as_ref().and_then(|p| p.get()) {
            hub.bridge_report(station.as_str(), report);
        }
    }

    fn on_gate_state(&self, _site: &Site, gate: &GateId, state: GateState) {
        if let Some(g) = &self.gates {
            g.states.report(gate, state);
        }
        let (label, fault) = match state.state {
            bondgate_protocol::GateStateKind::Open => ("open", None),
            bondgate_protocol::GateStateKind::Closed => ("closed", None),
            bondgate_protocol::GateStateKind::Fault => (
                "fault",
                Some("the gate bridge reported a fault".to_string()),
            ),
        };
        self.publish(crate::events::Event::GateState {
            gate: gate.as_str().to_string(),
            state: label.into(),
            fault,
            source: "bridge".into(),
            at: chrono::Utc::now(),
        });
    }

    fn on_gate_scan(
        &self,
        _site: &Site,
        gate: &GateId,
        scan: ScanMsg,
    ) -> BoxFuture<'_, Option<GateResultMsg>> {
        let gate = gate.clone();
        Box::pin(async move {
            let service = self.gates.as_ref()?.service.get()?.clone();
            Some(
                service
                    .mqtt_scan(&gate, scan.seq, scan.barcode.as_str())
                    .await,
            )
        })
    }

    fn on_status(&self, site: &Site, device: &DeviceId, status: DeviceStatus) -> BoxFuture<'_, ()> {
        let (site, device) = (site.as_str().to_string(), device.as_str().to_string());
        Box::pin(async move {
            let online = status == DeviceStatus::Online;
            // Before the store write: a scale whose bridge left is offline
            // now, not after the write (or its failure).
            if let Some(scales) = &self.scales {
                scales.bridge_status(&device, online);
            }
            if let Some(g) = &self.gates {
                g.states.bridge_presence(&device, online);
            }
            if let Some(hub) = self.printers.as_ref().and_then(|p| p.get()) {
                hub.bridge_presence(&device, online);
            }
            if let Err(e) = self.store.device_status(&site, &device, online).await {
                tracing::warn!(%device, error = %e, "could not record device status");
            }
            self.publish(crate::events::Event::Device {
                site,
                device,
                online,
                at: chrono::Utc::now(),
            });
        })
    }
}

/// Checks the wave policy every `every` until `stop` turns true.
pub fn spawn_auto_waves(
    store: Store,
    policy: WavePolicy,
    every: Duration,
    events: crate::events::EventHub,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            match store.auto_wave(policy).await {
                Ok(Some(w)) => {
                    tracing::info!(wave = %w.wave_no, orders = w.order_nos.len(), tasks = w.tasks.len(), "wave cut by policy");
                    events.publish(crate::events::Event::Changed {
                        what: "waves".into(),
                        at: chrono::Utc::now(),
                    });
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "automatic wave failed; will retry"),
            }
        }
    })
}
