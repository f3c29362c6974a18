//! `bondgate-sim lcus-relay` and `bondgate-sim modbus-relay`: a relay board
//! that prints each pulse as it ends and takes faults on stdin.

use std::time::Duration;

use anyhow::Context as _;
use bondgate_sim::{LcusRelaySim, ModbusRelaySim, RelayControl, RelayFault, RelayOptions};
use clap::Args;
use tokio::io::AsyncBufReadExt as _;

/// How often new pulses are looked for, to print them.
const PRINT_POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Args)]
pub(crate) struct LcusArgs {
    /// Relays on the board (channels 1..=N, at most 8).
    #[arg(long, default_value_t = 4)]
    relays: u16,
    /// Keep a symlink at this path pointing at the current pty (it survives
    /// unplug/replug, like /dev/serial/by-id/…).
    #[arg(long)]
    link: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ModbusArgs {
    /// Address to listen on (Modbus TCP).
    #[arg(long, default_value = "127.0.0.1:502", conflicts_with = "rtu")]
    listen: std::net::SocketAddr,
    /// Modbus RTU on a pseudo-terminal instead of TCP.
    #[arg(long)]
    rtu: bool,
    /// With --rtu: keep a symlink at this path pointing at the pty.
    #[arg(long, requires = "rtu")]
    link: Option<std::path::PathBuf>,
    /// Coils on the board (0..N).
    #[arg(long, default_value_t = 4)]
    relays: u16,
    /// The unit (slave) id answered to.
    #[arg(long, default_value_t = 1)]
    unit: u8,
}

pub(crate) async fn lcus(args: LcusArgs) -> anyhow::Result<()> {
    let sim = LcusRelaySim::start(RelayOptions {
        relays: args.relays,
        link: args.link,
        ..RelayOptions::default()
    })
    .await?;
    println!(
        "PORT {}",
        sim.path().context("the new pty has no path")?.display()
    );
    run(sim.control()).await?;
    sim.shutdown().await;
    Ok(())
}

pub(crate) async fn modbus(args: ModbusArgs) -> anyhow::Result<()> {
    let options = RelayOptions {
        relays: args.relays,
        unit: args.unit,
        link: args.link,
    };
    let sim = if args.rtu {
        let sim = ModbusRelaySim::start_rtu(options).await?;
        println!(
            "PORT {}",
            sim.path().context("the new pty has no path")?.display()
        );
        sim
    } else {
        let sim = ModbusRelaySim::start_tcp(args.listen, options).await?;
        println!("LISTEN {}", sim.addr().context("no address")?);
        sim
    };
    run(sim.control()).await?;
    sim.shutdown().await;
    Ok(())
}

/// Prints pulses as they end; reads commands until stdin closes.
async fn run(control: RelayControl) -> anyhow::Result<()> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut printed = 0_usize;
    let mut tick = tokio::time::interval(PRINT_POLL);
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line.context("reading stdin")? else { return Ok(()) };
                match command(&control, line.trim()).await {
                    Ok(Some(done)) => println!("{done}"),
                    Ok(None) => {}
                    Err(error) => eprintln!("error: {error:#}"),
                }
            }
            _ = tick.tick() => {
                let pulses = control.pulses();
                while let Some(p) = pulses.get(printed).filter(|p| p.off_at.is_some()) {
                    let ms = p.length().map(|d| d.as_millis()).unwrap_or(0);
                    let flash = if p.flash { " (flash)" } else { "" };
                    println!("PULSE relay {} {ms} ms{flash}", p.relay);
                    printed += 1;
                }
            }
        }
    }
}

async fn command(control: &RelayControl, line: &str) -> anyhow::Result<Option<String>> {
    let done = match line {
        "" => return Ok(None),
        "state" => format!("{:?} ({} requests)", control.relays(), control.requests()),
        "silent" | "garbage" | "ok" => {
            let fault = match line {
                "silent" => RelayFault::Silent,
                "garbage" => RelayFault::Garbage,
                _ => RelayFault::None,
            };
            control.set_fault(fault);
            format!("fault {fault:?}")
        }
        "unplug" => {
            control.unplug().await?;
            "unplugged".to_owned()
        }
        "replug" => {
            control.replug().await?;
            "plugged back in".to_owned()
        }
        _ => anyhow::bail!("unknown command {line:?}: state, silent, garbage, ok, unplug, replug"),
    };
    Ok(Some(done))
}
