//! Log-in, bearer tokens and role checks.
//!
//! Passwords are stored as Argon2id hashes; tokens are 256 random bits given
//! to the client once and stored only as their SHA-256.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, Json, Path};
use super::AppState;
use crate::domain::Role;
use crate::store::{Actor, User};

/// Shortest password accepted. NIST SP 800-63B asks for at least 8.
pub const PASSWORD_LEN_MIN: usize = 8;
/// Longest accepted: Argon2 cost grows with input, so an unbounded password is
/// a denial-of-service lever.
pub const PASSWORD_LEN_MAX: usize = 256;

pub const MANAGERS: &[Role] = &[Role::Manager, Role::Admin];
pub const ADMINS: &[Role] = &[Role::Admin];
pub const EVERYONE: &[Role] = &Role::ALL;

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("hashing a password: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash of a random password, verified against when the user is unknown.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&new_token()).unwrap_or_default())
}

pub fn check_password_rules(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(PASSWORD_LEN_MIN..=PASSWORD_LEN_MAX).contains(&n) {
        return Err(ApiError::invalid(format!(
            "a password needs {PASSWORD_LEN_MIN} to {PASSWORD_LEN_MAX} characters"
        )));
    }
    Ok(())
}

/// Hashing is deliberately slow: keep it off the async workers.
pub async fn hash_password_blocking(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::internal(format!("hash task: {e}")))?
}

pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The authenticated caller. Extracting it refuses requests without a valid
/// bearer token.
pub struct Auth(pub Actor, pub String);

impl Auth {
    /// Refuses the request unless the caller holds one of `roles`.
    pub fn require(&self, roles: &[Role]) -> ApiResult<&Actor> {
        if self.0.has_any(roles) {
            Ok(&self.0)
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::forbidden(format!(
                "this needs one of the roles: {}",
                names.join(", ")
            )))
        }
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("log in first: send Authorization: Bearer <token>")
        })?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be: Bearer <token>")
            })?;
        let hash = token_hash(token);
        let actor = state.store.session_actor(&hash).await?.ok_or_else(|| {
            ApiError::unauthorized("the token is unknown or has expired: log in again")
        })?;
        Ok(Auth(actor, hash))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`. Shown once; only its hash is kept.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: User,
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = super::error::Problem)))]
pub async fn login(
    State(st): State<AppState>,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    if req.password.len() > PASSWORD_LEN_MAX * 4 {
        return Err(ApiError::unauthorized("wrong username or password"));
    }
    let found = st.store.login_lookup(&req.username).await?;
    // An unknown user costs the same Argon2 work as a known one, so response
    // times do not tell which usernames exist.
    let hash = found
        .as_ref()
        .map_or_else(|| dummy_hash().to_string(), |(_, h)| h.clone());
    let pw = req.password.clone();
    let verified = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
        .await
        .map_err(|e| ApiError::internal(format!("verify task: {e}")))?;
    let ok = verified && found.is_some();
    let Some((user, _)) = found.filter(|_| ok) else {
        tracing::warn!(username = %req.username, "failed login");
        return Err(ApiError::unauthorized("wrong username or password"));
    };
    let token = new_token();
    let expires_at = Utc::now() + st.config.token_ttl;
    st.store
        .create_session(&user, &token_hash(&token), expires_at)
        .await?;
    Ok(Json(LoginResponse {
        token,
        expires_at,
        user,
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204)))]
pub async fn logout(State(st): State<AppState>, auth: Auth) -> ApiResult<StatusCode> {
    st.store.delete_session(&auth.0, &auth.1).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub username: String,
    #[schema(value_type = Vec<String>)]
    pub roles: Vec<Role>,
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = super::error::Problem)))]
pub async fn me(auth: Auth) -> Json<Me> {
    Json(Me {
        username: auth.0.username,
        roles: auth.0.roles,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    #[schema(value_type = Vec<String>)]
    pub roles: Vec<Role>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    #[schema(value_type = Option<Vec<String>>)]
    pub roles: Option<Vec<Role>>,
    pub active: Option<bool>,
    pub password: Option<String>,
}

pub fn check_username(name: &str) -> ApiResult<()> {
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "a username has 2 to 64 characters: letters, digits, '.', '_' or '-'",
        ))
    }
}

fn check_roles(roles: &[Role]) -> ApiResult<()> {
    if roles.is_empty() {
        return Err(ApiError::invalid("a user needs at least one role"));
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])), request_body = NewUser,
    responses((status = 201, body = User), (status = 409, body = super::error::Problem)))]
pub async fn create_user(
    State(st): State<AppState>,
    auth: Auth,
    Json(u): Json<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let actor = auth.require(ADMINS)?;
    check_username(&u.username)?;
    check_roles(&u.roles)?;
    check_password_rules(&u.password)?;
    let hash = hash_password_blocking(u.password).await?;
    let user = st
        .store
        .create_user(actor, &u.username, &hash, &u.roles)
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Vec<User>)))]
pub async fn list_users(State(st): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<User>>> {
    auth.require(ADMINS)?;
    Ok(Json(st.store.list_users().await?))
}

#[utoipa::path(patch, path = "/api/v1/users/{username}", tag = "users", security(("bearer" = [])),
    request_body = UserChange, params(("username" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = super::error::Problem)))]
pub async fn update_user(
    State(st): State<AppState>,
    auth: Auth,
    Path(username): Path<String>,
    Json(c): Json<UserChange>,
) -> ApiResult<Json<User>> {
    let actor = auth.require(ADMINS)?;
    if let Some(r) = &c.roles {
        check_roles(r)?;
    }
    if username == actor.username
        && (c.active == Some(false) || c.roles.as_ref().is_some_and(|r| !r.contains(&Role::Admin)))
    {
        return Err(ApiError::invalid(
            "an admin cannot deactivate or demote their own account",
        ));
    }
    let hash = match c.password {
        Some(p) => {
            check_password_rules(&p)?;
            Some(hash_password_blocking(p).await?)
        }
        None => None,
    };
    Ok(Json(
        st.store
            .update_user(
                actor,
                &username,
                c.roles.as_deref(),
                c.active,
                hash.as_deref(),
            )
            .await?,
    ))
}
