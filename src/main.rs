use std::io::BufRead;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use bondgate::app::Server;
use bondgate::config::{Args, Config, LogFormat};
use bondgate::domain::Role;
use bondgate::http::auth;
use bondgate::store::{Actor, Store};

mod demo;

#[derive(Parser)]
#[command(
    name = "bondgate",
    version,
    about = "Warehouse management for bonded warehouses"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Args),
    /// The whole floor on this machine: the server on SQLite and its own
    /// broker, every device simulated on its real transport, a seeded
    /// warehouse and orders flowing through picking, packing, customs and
    /// the gate. Ctrl-C stops it.
    Demo(demo::DemoArgs),
    /// Manage users from the command line (e.g. when the admin password is lost).
    User {
        #[command(subcommand)]
        action: UserAction,
        #[command(flatten)]
        args: Args,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user; the password is read from the first line of standard input.
    Add {
        username: String,
        /// One or more of: picker, packer, guard, manager, admin, integration.
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<Role>,
    },
    /// Set a user's password (read from standard input) and reactivate them.
    Reset { username: String },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("unknown role {s}"))
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,rumqttd=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    auth::check_password_rules(&pw).map_err(|e| anyhow::anyhow!(e.detail))?;
    Ok(pw)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = Config::resolve(&args)?;
            init_logging(config.log_format);
            let server = Server::start(config).await?;
            shutdown_signal().await;
            tracing::info!("shutting down: finishing requests in flight");
            server.shutdown().await?;
            tracing::info!("stopped");
        }
        Command::Demo(args) => {
            init_logging(args.log_format);
            demo::run(args).await?;
        }
        Command::User { action, args } => {
            let config = Config::resolve(&args)?;
            init_logging(config.log_format);
            std::fs::create_dir_all(&config.data_dir)?;
            let store = Store::connect(&config.database_url, &config.store).await?;
            let pw = read_password()?;
            let hash = auth::hash_password_blocking(pw)
                .await
                .map_err(|e| anyhow::anyhow!(e.detail))?;
            let actor = Actor {
                user_id: 0,
                username: "cli".into(),
                roles: vec![Role::Admin],
            };
            match action {
                UserAction::Add { username, roles } => {
                    auth::check_username(&username).map_err(|e| anyhow::anyhow!(e.detail))?;
                    let u = store.create_user(&actor, &username, &hash, &roles).await?;
                    println!("created user {} ({:?})", u.username, u.roles);
                }
                UserAction::Reset { username } => {
                    let u = store
                        .update_user(&actor, &username, None, Some(true), Some(&hash))
                        .await?;
                    println!("password of {} reset", u.username);
                }
            }
            store.close().await;
        }
    }
    Ok(())
}
