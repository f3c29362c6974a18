//! Test harness: each test gets its own server on port 0 and its own
//! database — a SQLite file in a temporary directory, or a fresh PostgreSQL
//! database created for it (and dropped when it ends).

use std::sync::atomic::{AtomicU64, Ordering};

use bondgate::app::Server;
use bondgate::config::{Config, MqttBroker};
use bondgate::store::{Store, StoreOptions};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;

pub const ADMIN_PASSWORD: &str = "test-admin-password";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the suite runs against.
pub fn pg_admin_url() -> String {
    std::env::var("BONDGATE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A database for one test.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    /// `None` only when PostgreSQL is unreachable outside CI; in CI
    /// (`CI=true`) an unreachable PostgreSQL fails the test instead.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => Some(TestDb {
                url: bondgate::config::sqlite_url(dir.path()),
                dir,
                pg_name: None,
            }),
            Backend::Postgres => {
                let admin = pg_admin_url();
                let mut conn = match sqlx::PgConnection::connect(&admin).await {
                    Ok(c) => c,
                    Err(e) if !in_ci() => {
                        eprintln!("PostgreSQL at {admin} unreachable ({e}); skipping this PostgreSQL test outside CI");
                        return None;
                    }
                    Err(e) => panic!("PostgreSQL at {admin} unreachable while CI=true: {e}"),
                };
                static N: AtomicU64 = AtomicU64::new(0);
                let name = format!(
                    "bg_test_{}_{}_{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed),
                    uuid::Uuid::new_v4()
                        .simple()
                        .to_string()
                        .get(..8)
                        .unwrap_or("x")
                );
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let url = match admin.rsplit_once('/') {
                    Some((base, _)) => format!("{base}/{name}"),
                    None => panic!("BONDGATE_TEST_PG_URL needs a database path"),
                };
                Some(TestDb {
                    url,
                    dir,
                    pg_name: Some(name),
                })
            }
        }
    }

    /// Runs one statement straight on the database, bypassing bondgate: what
    /// a buggy tool or a person at the SQL prompt could do.
    pub async fn raw_execute(&self, sql: &str) -> Result<(), sqlx::Error> {
        if self.pg_name.is_some() {
            let mut c = sqlx::PgConnection::connect(&self.url).await?;
            sqlx::query(sql).execute(&mut c).await.map(|_| ())
        } else {
            let mut c = sqlx::SqliteConnection::connect(&self.url).await?;
            sqlx::query(sql).execute(&mut c).await.map(|_| ())
        }
    }

    /// The first column of every row of a query, as text, read straight from
    /// the database.
    pub async fn raw_strings(&self, sql: &str) -> Vec<String> {
        if self.pg_name.is_some() {
            let mut c = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::query_scalar(sql)
                .fetch_all(&mut c)
                .await
                .expect("raw query")
        } else {
            let mut c = sqlx::SqliteConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::query_scalar(sql)
                .fetch_all(&mut c)
                .await
                .expect("raw query")
        }
    }

    pub async fn drop_db(&self) {
        if let Some(name) = &self.pg_name {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        }
    }
}

/// A store on a fresh database, for tests below the HTTP layer.
pub struct TestStore {
    pub store: Store,
    pub db: TestDb,
}

impl TestStore {
    pub async fn new(backend: Backend) -> Option<TestStore> {
        let db = TestDb::new(backend).await?;
        let store = Store::connect(&db.url, &StoreOptions::default())
            .await
            .expect("connect store");
        Some(TestStore { store, db })
    }
    pub async fn finish(self) {
        self.store.close().await;
        self.db.drop_db().await;
    }
}

/// A running server with an admin logged in.
pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub token: String,
    pub server: Server,
    pub db: TestDb,
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// A server with its own embedded broker on a free port and no automatic
/// waves (tests cut them), after `adjust` has changed what the test needs.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let db = TestDb::new(backend).await?;
    let mut config = Config::for_data_dir(db.dir.path());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.database_url = db.url.clone();
    config.admin_password = Some(ADMIN_PASSWORD.into());
    config.mqtt.broker = MqttBroker::Embedded("127.0.0.1:0".parse().unwrap());
    config.picking.auto_wave = None;
    adjust(&mut config);
    let server = Server::start(config).await.expect("server starts");
    let base = format!("http://{}", server.addr);
    let client = Client::new();
    let mut app = TestApp {
        base,
        client,
        token: String::new(),
        server,
        db,
    };
    app.token = app.login("admin", ADMIN_PASSWORD).await;
    // Ready means the MQTT link is up too: PDAs can be answered.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (s, r) = app.call_as(None, Method::GET, "/readyz", None).await;
        if s == StatusCode::OK {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server never ready: {r}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Some(app)
}

impl TestApp {
    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .call_as(
                None,
                Method::POST,
                "/api/v1/auth/login",
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login of {username}: {body}");
        body["token"].as_str().unwrap().to_string()
    }

    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call_as(Some(&self.token), Method::GET, path, None)
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call_as(Some(&self.token), Method::POST, path, Some(body))
            .await
    }

    /// Creates a user with the given role and returns a token for them.
    pub async fn user(&self, name: &str, role: &str) -> String {
        let (s, b) = self
            .post(
                "/api/v1/users",
                json!({"username": name, "password": "password-of-test", "roles": [role]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        self.login(name, "password-of-test").await
    }

    /// One SKU, two storage bins and a quarantine bin.
    pub async fn seed(&self) {
        let (s, b) = self.post("/api/v1/skus", json!({"code": "SKU-1", "name": "Face serum 30 ml", "unit_weight_grams": 95, "barcodes": ["6901234567892"], "ledger_item_no": "12"})).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        for (code, seq, kind) in [
            ("A-01", 1, "storage"),
            ("A-02", 2, "storage"),
            ("Q-01", 90, "quarantine"),
        ] {
            let (s, b) = self
                .post(
                    "/api/v1/locations",
                    json!({"code": code, "zone": &code[..1], "walk_seq": seq, "kind": kind}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{b}");
        }
    }

    pub async fn receive(&self, no: &str, bin: &str, qty: i64) -> (StatusCode, Value) {
        self.post(
            "/api/v1/receipts",
            json!({"receipt_no": no, "customs_doc_no": "QD29242026I000000001", "lines": [
                {"sku": "SKU-1", "bin": bin, "batch": "B1", "expiry": "2027-12-31", "qty": qty}
            ]}),
        )
        .await
    }

    pub async fn integrity_clean(&self) {
        let (s, b) = self.get("/api/v1/inventory/integrity").await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["ledger_mismatches"], json!([]), "{b}");
        assert_eq!(b["lock_mismatches"], json!([]), "{b}");
    }

    pub async fn finish(self) {
        self.server.shutdown().await.expect("clean shutdown");
        self.db.drop_db().await;
    }
}

/// Declares one async test per backend from one body:
/// `both_backends!(name, |backend| async move { ... });`
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)($crate::helpers::Backend::Postgres).await
            }
        }
    };
}
