//! Process plumbing every bridge binary shares: logs, stop signals, the
//! runtime, the clock in Unix milliseconds.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::ConfigError;

/// Logs to stderr, `info` unless `RUST_LOG` says otherwise. Call once, from
/// a binary's `main` (never from `run`: in-process the host owns logging).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Resolves on SIGINT, or SIGTERM (systemd's stop).
pub async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(%error, "no SIGTERM handler; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The wall clock in Unix milliseconds (what payloads carry as `ts`).
pub fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A bridge's `main` after argument parsing: logs on, the configuration
/// checked (exit code 2 when refused), `run(config, stop_signal())` on a
/// single-threaded runtime (an edge box has one job), exit code 1 if it
/// fails.
pub fn main_with<C, F, E>(config: Result<C, ConfigError>, run: impl FnOnce(C) -> F) -> ExitCode
where
    F: Future<Output = Result<(), E>>,
    E: Display,
{
    init_tracing();
    let config = match config {
        Ok(c) => c,
        Err(error) => {
            tracing::error!(%error, "bad configuration");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(error) => {
            tracing::error!(%error, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "stopped");
            ExitCode::FAILURE
        }
    }
}
