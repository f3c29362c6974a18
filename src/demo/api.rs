//! The demo's HTTP client: the floor robots act through the same JSON API as
//! people and the e-commerce platform do, as a logged-in user each.

use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// One logged-in user of the API.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// A refusal from the API: its status and `code` (problem+json).
#[derive(Debug)]
pub struct Refused {
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for Refused {}

impl Api {
    /// Logs in as `username`.
    pub async fn login(base: &str, username: &str, password: &str) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let res = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .with_context(|| format!("logging in as {username}"))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(
            status.is_success(),
            "logging in as {username}: {status} {body}"
        );
        let token = body["token"]
            .as_str()
            .context("the login answer has no token")?
            .to_string();
        Ok(Api {
            http,
            base: base.to_string(),
            token,
        })
    }

    /// Sends a request; a 2xx answer's body, or the refusal.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Result<Value, Refused>> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            Ok(Ok(value))
        } else {
            Ok(Err(Refused {
                status,
                code: value["code"].as_str().unwrap_or("-").to_string(),
                detail: value["detail"]
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_string),
            }))
        }
    }

    /// GET that must succeed.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.call(Method::GET, path, None).await??)
    }

    /// POST that must succeed.
    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        Ok(self.call(Method::POST, path, Some(body)).await??)
    }

    /// PUT that must succeed.
    pub async fn put(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        Ok(self.call(Method::PUT, path, Some(body)).await??)
    }

    /// The bearer token (for the customs gateway's HTTP deliveries).
    pub fn token(&self) -> &str {
        &self.token
    }
}
