//! The web screens (`ui/web/`), embedded in the binary so `cargo run`
//! needs no front-end build. Debug builds read the files from disk, so a
//! page edit shows on reload; release builds carry them inside.
//!
//! Pages are plain HTML with ES modules: no inline script or style, so the
//! Content-Security-Policy admits only this server's own files, and the
//! screens work on a warehouse LAN without internet.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

#[derive(rust_embed::RustEmbed)]
#[folder = "ui/web/"]
struct Assets;

/// Only this server's own scripts, styles, images and API; no framing, no
/// plugins, no inline script or style.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The pages, by path. Each one checks the user's roles itself and the API
/// checks them again on every call.
const PAGES: &[(&str, &str)] = &[
    ("/", "index.html"),
    ("/login", "login.html"),
    ("/gate", "gate.html"),
    ("/pda", "pda.html"),
    ("/pack", "pack.html"),
    ("/dashboard", "dashboard.html"),
];

/// The screens' routes: the pages and `/ui/*` for their scripts, styles and
/// message catalogues.
pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for (path, file) in PAGES {
        r = r.route(
            path,
            get(move |h: HeaderMap| async move { serve(file, &h) }),
        );
    }
    r.route(
        "/ui/{*path}",
        get(|Path(path): Path<String>, h: HeaderMap| async move { serve(&path, &h) }),
    )
}

fn serve(path: &str, req: &HeaderMap) -> Response {
    // rust-embed never resolves `..` outside its folder; refuse it anyway so
    // the debug build's disk reads cannot be steered.
    if path.split('/').any(|s| s == ".." || s.is_empty()) {
        return not_found();
    }
    let Some(file) = Assets::get(path) else {
        return not_found();
    };
    let body = if path.ends_with(".html") {
        with_partials(&file.data)
    } else {
        file.data.into_owned()
    };
    let etag = format!(
        "\"{}\"",
        <sha2::Sha256 as sha2::Digest>::digest(&body)
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut headers = security_headers();
    // No bundler, so no content-hashed names: the browser keeps a copy but
    // asks every time (a 304 on the LAN is cheap), so a new server version
    // is never mixed with old scripts.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    (headers, body).into_response()
}

/// A page with its shared parts put in: each line `<!--#include NAME-->`
/// becomes `partials/NAME.html` (the head's common lines, the header bar,
/// the "not for your role" panel), so what every page has is written once. One level only; an
/// unknown name is left as the comment it is.
fn with_partials(page: &[u8]) -> Vec<u8> {
    const OPEN: &str = "<!--#include ";
    let text = String::from_utf8_lossy(page);
    let mut out = String::with_capacity(text.len() + 2048);
    let mut rest: &str = &text;
    while let Some(at) = rest.find(OPEN) {
        let Some(len) = rest[at..].find("-->") else {
            break;
        };
        let name = rest[at + OPEN.len()..at + len].trim();
        out.push_str(&rest[..at]);
        match Assets::get(&format!("partials/{name}.html")) {
            Some(part) if !name.contains('/') => {
                out.push_str(String::from_utf8_lossy(&part.data).trim_end())
            }
            _ => out.push_str(&rest[at..at + len + 3]),
        }
        rest = &rest[at + len + 3..];
    }
    out.push_str(rest);
    out.into_bytes()
}

fn security_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h
}

fn not_found() -> Response {
    let mut h = security_headers();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    (StatusCode::NOT_FOUND, h, "not found\n").into_response()
}

/// The types the screens use; anything else is served as bytes (and
/// `nosniff` keeps the browser from guessing).
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_get_their_shared_parts_once() {
        for (_, file) in PAGES {
            let page = String::from_utf8(with_partials(&Assets::get(file).unwrap().data)).unwrap();
            assert!(!page.contains("<!--#include"), "{file}");
            assert_eq!(page.matches("id=\"lang-switch\"").count(), 1, "{file}");
            assert!(page.contains("<meta charset=\"utf-8\">"), "{file}");
        }
        let denied =
            String::from_utf8(with_partials(&Assets::get("dashboard.html").unwrap().data)).unwrap();
        assert_eq!(denied.matches("id=\"denied\"").count(), 1);
        assert_eq!(
            with_partials(b"a <!--#include nope--> b <!--#include ../x--> c"),
            b"a <!--#include nope--> b <!--#include ../x--> c"
        );
    }

    #[test]
    fn every_page_exists_and_types_are_right() {
        for (_, file) in PAGES {
            assert!(Assets::get(file).is_some(), "{file}");
        }
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("README"), "application/octet-stream");
        assert_eq!(serve("../Cargo.toml", &HeaderMap::new()).status(), 404);
        assert_eq!(serve("js//x.js", &HeaderMap::new()).status(), 404);
    }
}
