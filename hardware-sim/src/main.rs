//! `bondgate-sim`: device simulators on the command line. A thin layer over
//! the library: parse flags, build options, print what comes back. Each
//! device is a subcommand (`pda`, `scale`, `printer`, `lcus-relay`, `modbus-relay`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use bondgate_protocol::scale::ScaleProtocol;
use bondgate_protocol::{DeviceId, Site};
use bondgate_sim::customs_gw::{HttpTarget, Inbox, ScriptName, Target};
use bondgate_sim::walker::STEP_LIMIT_DEFAULT;
use bondgate_sim::{
    BrokerAddr, Declaration, Fault, Gateway, GatewayKey, Pda, PdaOptions, PrinterSim, ScaleControl,
    ScaleOptions, ScaleSim, SerialPrinterOptions, Step, Walker,
};
use clap::{Args, Parser, Subcommand};
use tokio::io::AsyncBufReadExt as _;

mod relay_cli;

#[derive(Debug, Parser)]
#[command(
    name = "bondgate-sim",
    version,
    about = "Simulators of the devices bondgate drives"
)]
struct Cli {
    #[command(subcommand)]
    device: Device,
}

#[derive(Debug, Subcommand)]
enum Device {
    /// A picker's handheld on MQTT: scans in, prompts out. Reads codes from
    /// stdin, one per line, or walks the pick path on its own with --walk.
    Pda(PdaArgs),
    /// A serial scale on a pseudo-terminal. Prints the path to open
    /// (`PTY /dev/pts/N`), then reads commands on stdin: `w GRAMS`,
    /// `motion on|off`, `over`, `under`, `unplug`, `replug`, `garbage HEX`,
    /// `stats`.
    Scale(ScaleArgs),
    /// A label printer speaking ESC/POS, on raw TCP (--listen) or on a
    /// pseudo-terminal (--serial, printing `PTY /dev/pts/N` first): prints
    /// each label's text rendering to stdout as it is cut.
    Printer(PrinterArgs),
    /// An LCUS serial relay board on a pseudo-terminal. Prints the path to
    /// open (`PORT …`), then `PULSE relay N MS ms` as each pulse ends;
    /// stdin: `state`, `silent`, `garbage`, `ok`, `unplug`, `replug`.
    LcusRelay(relay_cli::LcusArgs),
    /// A Modbus relay board on TCP (`LISTEN addr`) or RTU on a
    /// pseudo-terminal (--rtu, `PORT …`); prints pulses and takes the same
    /// stdin commands as lcus-relay.
    ModbusRelay(relay_cli::ModbusArgs),
    /// The customs gateway: runs a scripted receipt sequence for one 清单,
    /// signed, over HTTP (--url) or into the server's inbox (--inbox), and
    /// prints what the server answered to each delivery.
    Customs(CustomsArgs),
}

#[derive(Debug, Args)]
struct CustomsArgs {
    /// normal, inspection, rejection, detention, cancellation, out-of-order,
    /// duplicates, format-error or bad.
    #[arg(long, default_value = "normal")]
    script: ScriptName,
    /// copNo of the 清单 (the server's order has `cop_no`; orders made
    /// through the API default to `COP-{order_no}`).
    #[arg(long)]
    cop_no: String,
    /// Serial in preNo / invtNo.
    #[arg(long, default_value_t = 1)]
    serial: u32,
    /// returnTime of the first receipt (yyyyMMddHHmmssSSS, China time); the
    /// rest follow a minute apart.
    #[arg(long, default_value = "20261123100000000")]
    start: String,
    /// Server base URL, e.g. http://127.0.0.1:8080 (token from --token or
    /// BONDGATE_TOKEN, a user with role integration).
    #[arg(long, conflicts_with = "inbox", required_unless_present = "inbox")]
    url: Option<String>,
    /// Bearer token for --url.
    #[arg(long, requires = "url")]
    token: Option<String>,
    /// The server's watched inbox directory instead of HTTP.
    #[arg(long)]
    inbox: Option<std::path::PathBuf>,
    /// With --inbox: drop the files and do not wait for the server.
    #[arg(long, requires = "inbox")]
    no_wait: bool,
    /// Key id sent with each signature.
    #[arg(long, default_value = "gw-1")]
    key_id: String,
    /// ed25519 or hmac.
    #[arg(long, default_value = "ed25519")]
    key_kind: String,
    /// The signing secret, Base64 (Ed25519: 32 bytes; HMAC: at least 32).
    /// Default: the test gateway's Ed25519 secret (32 bytes of 7), never
    /// for production.
    #[arg(long)]
    secret_b64: Option<String>,
    /// Wrap each message in a DXP envelope.
    #[arg(long)]
    envelope: bool,
    /// Seed for message ids and the out-of-order shuffle.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Args)]
struct PrinterArgs {
    /// Address to listen on.
    #[arg(long, default_value_t = std::net::SocketAddr::from(([127, 0, 0, 1], bondgate_sim::printer::PORT_DEFAULT)), conflicts_with = "serial")]
    listen: std::net::SocketAddr,
    /// A serial printer on a pseudo-terminal instead of TCP.
    #[arg(long)]
    serial: bool,
    /// With --serial: keep a symlink at this path pointing at the pty.
    #[arg(long, requires = "serial")]
    link: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
struct ScaleArgs {
    /// Wire format: mt-sics, ascii, toledo-continuous, yaohua-a9, yaohua-a9-eq.
    #[arg(long)]
    protocol: ScaleProtocol,
    /// Gross weight on the pan at start, grams.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    grams: i64,
    /// Streamed protocols: milliseconds between frames.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// Milliseconds a new weight stays in motion before it is stable.
    #[arg(long, default_value_t = 400)]
    settle_ms: u64,
    /// Keep a symlink at this path pointing at the current pty (it survives
    /// unplug/replug, like /dev/serial/by-id/…).
    #[arg(long)]
    link: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
struct PdaArgs {
    /// The broker the server listens on.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    broker: BrokerAddr,
    /// Site id (topic segment).
    #[arg(long)]
    site: Site,
    /// PDA id (topic segment).
    #[arg(long)]
    device: DeviceId,
    /// Badge to log in with: scanned first, and whenever the server asks.
    #[arg(long)]
    badge: Option<String>,
    /// Walk the pick path on its own until the server says done.
    #[arg(long, requires = "badge")]
    walk: bool,
    /// Scripted mistake for --walk (repeatable): wrong-bin-once,
    /// wrong-item-once, duplicate-every-scan, short-at=TASK:FOUND:REASON
    /// (REASON: empty, damaged or wrong), logout-after=TASKS.
    #[arg(long = "fault", value_name = "FAULT", requires = "walk")]
    faults: Vec<Fault>,
    /// Most scans in a walk before it counts as looping.
    #[arg(long, default_value_t = STEP_LIMIT_DEFAULT, requires = "walk")]
    step_limit: usize,
    /// Seq of the first scan (continue above the last one the server saw).
    #[arg(long, default_value_t = 1)]
    first_seq: u64,
    /// How long to wait for each prompt and for the connection, in ms.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// MQTT client id [default: sim-SITE-DEVICE].
    #[arg(long)]
    client_id: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let result = match Cli::parse().device {
        Device::Pda(args) => pda(args).await,
        Device::Scale(args) => scale(args).await,
        Device::Printer(args) => printer(args).await,
        Device::LcusRelay(args) => relay_cli::lcus(args).await,
        Device::ModbusRelay(args) => relay_cli::modbus(args).await,
        Device::Customs(args) => customs(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn pda(args: PdaArgs) -> anyhow::Result<()> {
    let mut options = PdaOptions::new(args.broker, args.site, args.device);
    options.first_seq = args.first_seq;
    options.timeout = Duration::from_millis(args.timeout_ms);
    if let Some(id) = args.client_id {
        options.client_id = id;
    }
    let mut pda = Pda::connect(options).await?;
    pda.wait_ready().await?;
    let outcome = match (args.walk, args.badge) {
        (true, Some(badge)) => {
            let walker = Walker::new(badge)
                .faults(args.faults)
                .step_limit(args.step_limit);
            let printed = |step: &Step| println!("{step}");
            walker
                .walk_with(&mut pda, printed)
                .await
                .map(|transcript| println!("{}", transcript.summary()))
                .context("walk failed")
        }
        (_, badge) => interactive(&mut pda, badge).await,
    };
    pda.disconnect().await?;
    outcome
}

/// Runs one script and prints each answer; prints the line to configure the
/// server with first (`BONDGATE_CUSTOMS_KEYS`).
async fn customs(args: CustomsArgs) -> anyhow::Result<()> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let secret = match &args.secret_b64 {
        Some(text) => b64
            .decode(text.trim())
            .context("--secret-b64 is not Base64")?,
        None => vec![7; 32],
    };
    let key = match args.key_kind.as_str() {
        "ed25519" => {
            let bytes: [u8; 32] = secret
                .as_slice()
                .try_into()
                .map_err(|_| anyhow::anyhow!("an Ed25519 secret is 32 bytes"))?;
            GatewayKey::ed25519(&args.key_id, &bytes)
        }
        "hmac" => GatewayKey::hmac(&args.key_id, &secret)?,
        other => anyhow::bail!("--key-kind {other:?}: ed25519 or hmac"),
    };
    eprintln!(
        "server key: BONDGATE_CUSTOMS_KEYS={}={}:{}",
        key.id(),
        key.kind(),
        if key.kind() == "hmac" {
            "<the secret>".to_owned()
        } else {
            b64.encode(key.server_bytes())
        }
    );
    let start = bondgate_customs::ReturnTime::parse(&args.start).context("--start")?;
    let decl = Declaration::new(&args.cop_no, start, args.serial);
    let mut gateway = Gateway::new(key, args.seed);
    gateway.envelope = args.envelope;
    let target = match (args.url, args.inbox) {
        (Some(url), _) => {
            let token = match args.token {
                Some(t) => t,
                None => std::env::var("BONDGATE_TOKEN")
                    .context("--url needs --token or BONDGATE_TOKEN")?,
            };
            Target::Http(HttpTarget::new(&url, &token)?)
        }
        (None, Some(dir)) => {
            let mut inbox = Inbox::new(dir);
            if args.no_wait {
                inbox.wait = None;
            }
            Target::Inbox(inbox)
        }
        (None, None) => anyhow::bail!("--url or --inbox"),
    };
    let script = args.script.script(start, args.seed);
    let run = script.run(&mut gateway, &decl, &target).await?;
    print!("{run}");
    println!("expected customs state: {}", script.expect);
    Ok(())
}

/// Listens (or waits on its pty) until killed, printing each label as it
/// is cut.
async fn printer(args: PrinterArgs) -> anyhow::Result<()> {
    let sim = if args.serial {
        let options = SerialPrinterOptions { link: args.link };
        let sim = PrinterSim::start_serial(options).await?;
        let pty = sim.pty_path().context("the new pty has no path")?;
        println!("PTY {}", pty.display());
        if let Some(link) = sim.path().filter(|p| *p != pty) {
            println!("LINK {}", link.display());
        }
        sim
    } else {
        let sim = PrinterSim::start(args.listen).await?;
        eprintln!("printer listening on {}", sim.local_addr());
        sim
    };
    let mut shown = 0;
    loop {
        let Ok(labels) = sim
            .wait_for_labels(shown + 1, Duration::from_secs(3600))
            .await
        else {
            continue;
        };
        for label in &labels[shown..] {
            shown += 1;
            println!("── label {shown} ──\n{}", label.render());
            for error in &label.errors {
                println!("!! {error}");
            }
        }
    }
}

/// Scans the badge (if any), then each line of stdin; prints every prompt.
/// Keeps going after a failed scan, as a picker would, and reports failure
/// at the end.
async fn interactive(pda: &mut Pda, badge: Option<String>) -> anyhow::Result<()> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut failed = 0_usize;
    let mut code = badge;
    loop {
        if let Some(code) = code.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            match pda.scan(code).await {
                Ok(prompt) => {
                    let step = Step {
                        seq: prompt.seq,
                        asked: None,
                        sent: code.to_owned(),
                        prompt,
                        replay: false,
                    };
                    println!("{step}");
                }
                Err(error) => {
                    failed += 1;
                    eprintln!("error: {error}");
                }
            }
        }
        code = lines.next_line().await.context("reading stdin")?;
        if code.is_none() {
            break;
        }
    }
    anyhow::ensure!(failed == 0, "{failed} scan(s) failed");
    Ok(())
}

async fn scale(args: ScaleArgs) -> anyhow::Result<()> {
    let mut options = ScaleOptions::new(args.protocol);
    options.grams = args.grams;
    options.interval = Duration::from_millis(args.interval_ms);
    options.settle = Duration::from_millis(args.settle_ms);
    options.link = args.link;
    let sim = ScaleSim::start(options).await?;
    let control = sim.control();
    let pty = control.pty_path().context("the new pty has no path")?;
    println!("PTY {}", pty.display());
    if let Some(link) = control.path().filter(|p| *p != pty) {
        println!("LINK {}", link.display());
    }
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await.context("reading stdin")? {
        match scale_command(&control, line.trim()).await {
            Ok(Some(done)) => println!("{done}"),
            Ok(None) => {}
            Err(error) => eprintln!("error: {error:#}"),
        }
    }
    sim.shutdown().await;
    Ok(())
}

/// One stdin command; returns what was done, to print.
async fn scale_command(control: &ScaleControl, line: &str) -> anyhow::Result<Option<String>> {
    let mut words = line.split_whitespace();
    let done = match (words.next(), words.next(), words.next()) {
        (None, ..) => return Ok(None),
        (Some("w"), Some(grams), None) => {
            let grams: i64 = grams.parse().context("w takes whole grams, e.g. w 1234")?;
            control.set_weight(grams);
            format!("weight {grams} g (settling)")
        }
        (Some("motion"), Some(on @ ("on" | "off")), None) => {
            control.set_motion(on == "on");
            format!("motion {on}")
        }
        (Some("over"), None, _) => {
            control.overload();
            "overload (until the next w)".to_owned()
        }
        (Some("under"), None, _) => {
            control.underload();
            "underload (until the next w)".to_owned()
        }
        (Some("unplug"), None, _) => {
            control.unplug().await?;
            "unplugged: the reader sees end of file; the pty is gone".to_owned()
        }
        (Some("replug"), None, _) => {
            let pty = control.replug().await?;
            format!("PTY {}", pty.display())
        }
        (Some("garbage"), Some(hex), None) => {
            let bytes = parse_hex(hex)?;
            let sent = control.garbage(&bytes).await?;
            let what = if sent { "sent" } else { "dropped (nobody has the port open)" };
            format!("garbage {} byte(s) {what}", bytes.len())
        }
        (Some("stats"), None, _) => format!("{:?}", control.stats()),
        _ => anyhow::bail!(
            "unknown command {line:?}: w GRAMS, motion on|off, over, under, unplug, replug, garbage HEX, stats"
        ),
    };
    Ok(Some(done))
}

/// `55aa0d` → bytes.
fn parse_hex(hex: &str) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        hex.len() % 2 == 0 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "garbage takes hex digits in pairs, e.g. garbage 55aa0d"
    );
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).context("bad hex"))
        .collect()
}
