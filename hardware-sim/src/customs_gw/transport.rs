//! Delivering signed receipts the two ways a single-window client hands them
//! over: HTTP POST, or files dropped into a directory the server watches.
//!
//! - HTTP: `POST {base}/api/v1/customs/receipts` with the bearer token of an
//!   `integration` user, the body as is, and the key id and signature in
//!   `x-bondgate-key-id` / `x-bondgate-signature`. The answer is the status
//!   and body the server sent.
//! - Inbox: `NAME.xml`, then `NAME.xml.sig` holding `KEY_ID SIGNATURE` on
//!   one line. Each is written under a temporary name that does not end in
//!   `.xml` and renamed into place, so the server never sees a half-written
//!   file; the `.sig` comes last because the server takes a message only
//!   once its `.sig` is there. The answer is where the server moved it:
//!   `done/` or `failed/` (with `NAME.xml.reason`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Delivery;

/// The server's receipt endpoint, below its base URL.
pub const RECEIPTS_PATH: &str = "/api/v1/customs/receipts";
/// Header naming the signing key (the server's `KEY_ID_HEADER`).
pub const KEY_ID_HEADER: &str = "x-bondgate-key-id";
/// Header carrying the Base64 signature (the server's `SIGNATURE_HEADER`).
pub const SIGNATURE_HEADER: &str = "x-bondgate-signature";
/// Longest an HTTP delivery may take, connection included. A receipt is a
/// few KiB and one transaction on the server; ten seconds is far beyond a
/// healthy answer and short enough for a test to fail rather than hang.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the server to take a dropped file by default. The
/// server looks every 500 ms; 15 s leaves room for a loaded CI machine.
pub const INBOX_WAIT_DEFAULT: Duration = Duration::from_secs(15);
/// How often to look whether the server has taken a dropped file.
const INBOX_LOOK: Duration = Duration::from_millis(50);

/// Why a delivery did not reach the server (not: why the server refused it;
/// a refusal is an [`Answer`]).
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(reqwest::Error),
    /// The HTTP request failed (connection refused, timeout, …).
    #[error("HTTP delivery to {url} failed: {source}")]
    Http {
        /// The URL posted to.
        url: String,
        /// What went wrong.
        source: reqwest::Error,
    },
    /// The inbox directory could not be written or read.
    #[error("customs inbox {}: {source}", dir.display())]
    Inbox {
        /// The inbox.
        dir: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The server neither stored nor refused a dropped file in time.
    #[error("customs inbox: {file} was not taken by the server within {waited:?}")]
    InboxTimeout {
        /// The file's name.
        file: String,
        /// How long we waited.
        waited: Duration,
    },
}

/// What the server made of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The HTTP status and body the server answered.
    Http {
        /// Status code: 201 stored, 409 replayed, 401 not authenticated,
        /// 400 malformed, 403 wrong role.
        status: u16,
        /// The body (JSON: the stored receipts, or a problem).
        body: String,
    },
    /// Where the server moved a dropped file.
    Inbox {
        /// The file's name in the inbox.
        file: String,
        /// The outcome.
        outcome: InboxOutcome,
    },
}

/// Where a dropped file went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxOutcome {
    /// Moved to `done/`: stored, or stored before (a replay).
    Done,
    /// Moved to `failed/`, with the server's reason.
    Failed {
        /// The text of `NAME.xml.reason`.
        reason: String,
    },
    /// Dropped without waiting for the server.
    NotWaited,
}

impl Answer {
    /// Whether the server took the delivery (HTTP 201, or moved to `done/`).
    pub fn stored(&self) -> bool {
        match self {
            Answer::Http { status, .. } => *status == 201,
            Answer::Inbox { outcome, .. } => *outcome == InboxOutcome::Done,
        }
    }

    /// The HTTP status, when delivered over HTTP.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Answer::Http { status, .. } => Some(*status),
            Answer::Inbox { .. } => None,
        }
    }

    /// The problem `code` of an HTTP refusal (`receipt_replayed`, …).
    pub fn problem_code(&self) -> Option<String> {
        let Answer::Http { body, .. } = self else {
            return None;
        };
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        v.get("code")?.as_str().map(str::to_owned)
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Http { status, body } => write!(f, "HTTP {status} {body}"),
            Answer::Inbox { file, outcome } => match outcome {
                InboxOutcome::Done => write!(f, "{file} → done/"),
                InboxOutcome::Failed { reason } => write!(f, "{file} → failed/: {reason}"),
                InboxOutcome::NotWaited => write!(f, "{file} dropped"),
            },
        }
    }
}

/// The server's receipt endpoint.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    url: String,
    token: String,
    client: reqwest::Client,
}

impl HttpTarget {
    /// Posts to `{base_url}/api/v1/customs/receipts` with `token`, the
    /// bearer token of a user with role `integration`.
    pub fn new(base_url: &str, token: &str) -> Result<HttpTarget, GatewayError> {
        let client = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(GatewayError::Client)?;
        Ok(HttpTarget {
            url: format!("{}{RECEIPTS_PATH}", base_url.trim_end_matches('/')),
            token: token.to_owned(),
            client,
        })
    }

    /// Posts one delivery; a refusal is an answer, not an error.
    pub async fn deliver(&self, d: &Delivery) -> Result<Answer, GatewayError> {
        let mut req = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("content-type", "application/xml")
            .body(d.body.clone());
        if let Some(id) = &d.key_id {
            req = req.header(KEY_ID_HEADER, id);
        }
        if let Some(sig) = &d.signature {
            req = req.header(SIGNATURE_HEADER, sig);
        }
        let http = |source| GatewayError::Http {
            url: self.url.clone(),
            source,
        };
        let res = req.send().await.map_err(http)?;
        let status = res.status().as_u16();
        let body = res.text().await.map_err(http)?;
        Ok(Answer::Http { status, body })
    }
}

/// The watched inbox directory.
#[derive(Debug)]
pub struct Inbox {
    dir: PathBuf,
    /// How long [`Inbox::deliver`] waits for the server to move the file;
    /// `None`: drop and return at once.
    pub wait: Option<Duration>,
    /// Per-inbox counter in file names, so files sort in delivery order.
    seq: AtomicU64,
}

impl Inbox {
    /// The inbox at `dir`, waiting [`INBOX_WAIT_DEFAULT`] for each file.
    pub fn new(dir: impl Into<PathBuf>) -> Inbox {
        Inbox {
            dir: dir.into(),
            wait: Some(INBOX_WAIT_DEFAULT),
            seq: AtomicU64::new(0),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Drops the delivery (`.xml`, then `.sig`) and, unless [`Inbox::wait`]
    /// is `None`, waits for the server to move it.
    pub async fn deliver(&self, d: &Delivery) -> Result<Answer, GatewayError> {
        let file = self.drop_files(d).await?;
        let outcome = match self.wait {
            None => InboxOutcome::NotWaited,
            Some(wait) => self.wait_for(&file, wait).await?,
        };
        Ok(Answer::Inbox { file, outcome })
    }

    /// Writes `NAME.xml` then `NAME.xml.sig`, each atomically; returns NAME.xml.
    ///
    /// Names are `gw-{unix ms}-{seq}-{label}.xml`: the server sweeps in name
    /// order, so files dropped together are read in the order dropped. The
    /// `.sig` line is `KEY_ID SIGNATURE`, or whatever part the delivery has
    /// (an unsigned delivery gets an empty `.sig`: a file without any
    /// `.sig` is never looked at, which would not test the refusal).
    pub async fn drop_files(&self, d: &Delivery) -> Result<String, GatewayError> {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|t| t.as_millis())
            .unwrap_or(0);
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let label: String = d
            .label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let name = format!("gw-{ms:013}-{n:06}-{label}.xml");
        let sig_line = match (&d.key_id, &d.signature) {
            (Some(k), Some(s)) => format!("{k} {s}\n"),
            (Some(k), None) => format!("{k}\n"),
            (None, Some(s)) => format!("{s}\n"),
            (None, None) => String::new(),
        };
        let (dir, body, xml_name) = (self.dir.clone(), d.body.clone(), name.clone());
        tokio::task::spawn_blocking(move || {
            write_atomic(&dir, &xml_name, &body)?;
            write_atomic(&dir, &format!("{xml_name}.sig"), sig_line.as_bytes())
        })
        .await
        .map_err(|e| self.io(std::io::Error::other(e)))?
        .map_err(|e| self.io(e))?;
        Ok(name)
    }

    /// Waits until the server moved `file` (its `.sig` goes last).
    pub async fn wait_for(&self, file: &str, wait: Duration) -> Result<InboxOutcome, GatewayError> {
        let deadline = Instant::now() + wait;
        let sig = format!("{file}.sig");
        loop {
            if self.dir.join("done").join(&sig).exists() {
                return Ok(InboxOutcome::Done);
            }
            if self.dir.join("failed").join(&sig).exists() {
                let reason_path = self.dir.join("failed").join(format!("{file}.reason"));
                let reason = tokio::task::spawn_blocking(move || {
                    std::fs::read_to_string(reason_path).unwrap_or_default()
                })
                .await
                .unwrap_or_default();
                return Ok(InboxOutcome::Failed {
                    reason: reason.trim().to_owned(),
                });
            }
            if Instant::now() >= deadline {
                return Err(GatewayError::InboxTimeout {
                    file: file.to_owned(),
                    waited: wait,
                });
            }
            tokio::time::sleep(INBOX_LOOK).await;
        }
    }

    fn io(&self, source: std::io::Error) -> GatewayError {
        GatewayError::Inbox {
            dir: self.dir.clone(),
            source,
        }
    }
}

/// Writes `bytes` to `dir/.NAME.part` (a name the server never reads),
/// flushes it to disk, then renames it to `dir/NAME`: a reader sees no
/// file or the whole file, never a part.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.part"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))
}

/// Where deliveries go.
#[derive(Debug)]
pub enum Target {
    /// Over HTTP.
    Http(HttpTarget),
    /// Into the watched directory.
    Inbox(Inbox),
}

impl Target {
    /// Delivers one message; see [`HttpTarget::deliver`], [`Inbox::deliver`].
    pub async fn deliver(&self, d: &Delivery) -> Result<Answer, GatewayError> {
        match self {
            Target::Http(h) => h.deliver(d).await,
            Target::Inbox(i) => i.deliver(d).await,
        }
    }
}
