//! `GET /api/v1/events`: the screens' live feed, as server-sent events.
//!
//! Browsers read it with `fetch` and a stream reader, because `EventSource`
//! cannot send the bearer header (and a token in the URL would end up in
//! logs and history).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, Sse};
use futures_util::stream::{self, Stream};

use super::auth::Auth;
use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::events::{Event, Listener};

/// A comment line this often keeps proxies and the browser from closing an
/// idle stream, and lets the server notice a logged-out token.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

struct Feed {
    listener: Listener,
    state: AppState,
    username: String,
    roles: Vec<crate::domain::Role>,
    token_hash: String,
    heartbeat: tokio::time::Interval,
    opened: bool,
}

/// The live feed: one SSE event per thing that happened, named by its
/// `type` (`gate_decision`, `gate_state`, `device`, `scale`, `pack`,
/// `pick_scan`, `resync`), its `data` the JSON of [`Event`]; only the
/// events the caller's roles may read. A comment line every 15 s; the
/// stream ends when the token is no longer valid or the server stops.
/// After `resync` (events were lost) a screen refetches what it shows.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", security(("bearer" = [])),
    responses((status = 200, description = "text/event-stream of Event", body = Event, content_type = "text/event-stream"),
        (status = 401, body = super::error::Problem), (status = 503, body = super::error::Problem)))]
pub async fn events(
    State(st): State<AppState>,
    auth: Auth,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let listener = st.events.subscribe().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_listeners",
            "too many screens are connected to the live feed; try again shortly",
        )
    })?;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let feed = Feed {
        listener,
        state: st,
        username: auth.0.username,
        roles: auth.0.roles,
        token_hash: auth.1,
        heartbeat,
        opened: false,
    };
    Ok(Sse::new(stream::unfold(feed, next_frame)))
}

async fn next_frame(mut f: Feed) -> Option<(Result<SseEvent, Infallible>, Feed)> {
    if !f.opened {
        // The first tick is immediate: answer it with a comment so the
        // client knows the stream is open before anything happens.
        f.heartbeat.tick().await;
        f.opened = true;
        return Some((Ok(SseEvent::default().comment("open")), f));
    }
    loop {
        tokio::select! {
            e = f.listener.next() => {
                let e = e?;
                if !e.visible_to(&f.username, &f.roles) {
                    continue;
                }
                return Some((Ok(frame(&e)), f));
            }
            _ = f.heartbeat.tick() => {
                // A logged-out or expired token ends the feed.
                match f.state.store.session_actor(&f.token_hash).await {
                    Ok(Some(_)) => return Some((Ok(SseEvent::default().comment("heartbeat")), f)),
                    Ok(None) => return None,
                    // The database is busy or down: keep the stream, say so.
                    Err(e) => {
                        tracing::warn!(error = %e, "live feed: session check failed");
                        return Some((Ok(SseEvent::default().comment("heartbeat")), f));
                    }
                }
            }
        }
    }
}

fn frame(e: &Event) -> SseEvent {
    match serde_json::to_string(e) {
        Ok(json) => SseEvent::default().event(e.name()).data(json),
        // Every event is plain data; this cannot happen, but never kill
        // the stream for it.
        Err(err) => SseEvent::default().comment(format!("unencodable event: {err}")),
    }
}
