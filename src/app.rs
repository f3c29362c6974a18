//! Start-up and shutdown: open the store, make sure an admin exists, serve
//! HTTP until told to stop, then drain and close.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rand::Rng;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::domain::Role;
use crate::http::{self, auth, AppState};
use crate::store::{Actor, Store};

/// Name of the file that receives a generated first-admin password.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub store: Store,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
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
        let state = AppState {
            store: store.clone(),
            config: Arc::new(config),
            pii,
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
        tracing::info!(%addr, backend = store.backend(), "bondgate listening");
        Ok(Server {
            addr,
            store,
            stop,
            task,
        })
    }

    /// Stops accepting, lets requests in flight finish, closes the database.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("server task")??;
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
