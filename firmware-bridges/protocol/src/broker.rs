//! Where an MQTT client connects: `mqtt://[user:password@]host[:port]`.
//!
//! One parser for every program that connects to the broker — the server's
//! link, the edge bridges and the simulators — so one URL works for all of
//! them and a URL that one refuses, all refuse with the same message.
//!
//! Parsed by hand rather than with rumqttc's `url` feature: the grammar we
//! accept is tiny, and refusing what we cannot honour (TLS, websockets,
//! paths) with a clear message beats a connection that silently ignores half
//! the URL. Only parsing happens here; nothing resolves the host or connects.

use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An MQTT broker's address, and optional credentials.
///
/// `Display` shows `mqtt://host:port` and `Debug` hides the password, so the
/// value can be logged as is.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

/// Why a broker URL was refused. Never quotes the credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerAddrError {
    /// No `scheme://`.
    #[error("MQTT broker URL must start with mqtt:// (e.g. mqtt://127.0.0.1:1883)")]
    MissingScheme,
    /// A scheme this build cannot speak; the scheme as written, or `?` if it
    /// does not look like one (see [`BrokerAddr::parse`]).
    #[error("MQTT broker URL scheme {0:?} is not supported: only plain mqtt:// (or tcp://) is built in, TLS and websockets are not")]
    UnsupportedScheme(String),
    /// Something after the authority (path, query, fragment).
    #[error("MQTT broker URL must not have a path, query or fragment (expected mqtt://host:port)")]
    Path,
    /// No host.
    #[error("MQTT broker URL has no host (expected mqtt://host:port)")]
    EmptyHost,
    /// A host with characters no host name or address has, or a bracketed
    /// host that is not an IPv6 address.
    #[error("MQTT broker URL has an invalid host")]
    BadHost,
    /// A port that is not a number in 1..=65535.
    #[error("MQTT broker URL has an invalid port (expected 1 to 65535)")]
    BadPort,
    /// `user:password@` with an empty user or without the `:password` part.
    #[error("MQTT broker URL credentials must be user:password@")]
    BadCredentials,
}

impl BrokerAddr {
    /// The IANA port for unencrypted MQTT, used when the URL names none.
    pub const DEFAULT_PORT: u16 = 1883;

    /// Parses `mqtt://[user:password@]host[:port]` (also `tcp://`, and the
    /// scheme in any case). The host is a name, an IPv4 address or a
    /// bracketed IPv6 address (`mqtt://[::1]:1883`). One trailing `/` is
    /// allowed. Credentials are taken literally (no percent-decoding); the
    /// password may contain `:`.
    ///
    /// An unsupported scheme is quoted in the error only if it looks like a
    /// scheme, so a mangled URL (`user:pw@mqtt://…`) cannot smuggle its
    /// credentials into a log line.
    pub fn parse(url: &str) -> Result<BrokerAddr, BrokerAddrError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or(BrokerAddrError::MissingScheme)?;
        if !matches!(scheme.to_ascii_lowercase().as_str(), "mqtt" | "tcp") {
            return Err(BrokerAddrError::UnsupportedScheme(quote_scheme(scheme)));
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(BrokerAddrError::Path);
        }
        let (credentials, host_port) = match authority.rsplit_once('@') {
            None => (None, authority),
            Some((userinfo, host_port)) => match userinfo.split_once(':') {
                Some((user, password)) if !user.is_empty() => {
                    (Some((user.to_owned(), password.to_owned())), host_port)
                }
                _ => return Err(BrokerAddrError::BadCredentials),
            },
        };
        let (host, port) = split_host_port(host_port)?;
        Ok(BrokerAddr {
            host: host.to_owned(),
            port,
            credentials,
        })
    }

    /// The host name or address, without IPv6 brackets (as sockets want it).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `(user, password)`, if the URL had them.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }
}

/// The scheme, for an error message: as written only if it looks like one.
fn quote_scheme(scheme: &str) -> String {
    /// Longer than any real scheme (`mqtt`, `mqtts`, `wss`, `ssl`), short
    /// enough that a password mistaken for a scheme is cut off.
    const SCHEME_CHARS_MAX: usize = 10;
    let plain = scheme.len() <= SCHEME_CHARS_MAX
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if plain {
        scheme.to_owned()
    } else {
        "?".to_owned()
    }
}

/// Splits `host[:port]` or `[v6][:port]`, checking both halves.
fn split_host_port(s: &str) -> Result<(&str, u16), BrokerAddrError> {
    let (host, port) = match s.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or(BrokerAddrError::BadHost)?;
            if host.parse::<Ipv6Addr>().is_err() {
                return Err(BrokerAddrError::BadHost);
            }
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(after.strip_prefix(':').ok_or(BrokerAddrError::BadHost)?),
                ),
            }
        }
        None => match s.split_once(':') {
            None => (s, None),
            Some((host, port)) => (host, Some(port)),
        },
    };
    if host.is_empty() {
        return Err(BrokerAddrError::EmptyHost);
    }
    let host_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
    if !host.chars().all(host_char) {
        return Err(BrokerAddrError::BadHost);
    }
    let port = match port {
        None => BrokerAddr::DEFAULT_PORT,
        // Digits only: `u16::from_str` alone would take `+1`.
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(BrokerAddrError::BadPort),
        },
    };
    Ok((host, port))
}

impl From<SocketAddr> for BrokerAddr {
    /// A known socket address (the embedded broker, a test broker on a free
    /// port), without credentials.
    fn from(addr: SocketAddr) -> BrokerAddr {
        BrokerAddr {
            host: addr.ip().to_string(),
            port: addr.port(),
            credentials: None,
        }
    }
}

impl FromStr for BrokerAddr {
    type Err = BrokerAddrError;
    fn from_str(s: &str) -> Result<BrokerAddr, BrokerAddrError> {
        BrokerAddr::parse(s)
    }
}

impl fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "mqtt://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "mqtt://{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for BrokerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerAddr")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> (String, u16, Option<(String, String)>) {
        let a = BrokerAddr::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        let creds = a.credentials().map(|(u, p)| (u.to_owned(), p.to_owned()));
        (a.host().to_owned(), a.port(), creds)
    }

    #[test]
    fn parses_hosts_ports_and_defaults() {
        assert_eq!(
            ok("mqtt://127.0.0.1:1883"),
            ("127.0.0.1".into(), 1883, None)
        );
        assert_eq!(
            ok("tcp://broker.local"),
            ("broker.local".into(), 1883, None)
        );
        assert_eq!(ok("tcp://broker"), ("broker".into(), 1883, None));
        assert_eq!(ok("MQTT://b:1884/"), ("b".into(), 1884, None));
        assert_eq!(ok("mqtt://[::1]:1885"), ("::1".into(), 1885, None));
        assert_eq!(ok("mqtt://[::1]"), ("::1".into(), 1883, None));
        let with_user = ok("mqtt://bondgate:s3cr:et@emqx:1883");
        assert_eq!(with_user.2, Some(("bondgate".into(), "s3cr:et".into())));
        let sim = ok("mqtt://sim:pa:ss@b:1");
        assert_eq!(sim, ("b".into(), 1, Some(("sim".into(), "pa:ss".into()))));
    }

    #[test]
    fn shows_ipv6_hosts_in_brackets() {
        let v6 = BrokerAddr::parse("mqtt://[::1]:1885").unwrap();
        assert_eq!(v6.host(), "::1");
        assert_eq!(v6.to_string(), "mqtt://[::1]:1885");
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        use BrokerAddrError::*;
        for (url, want) in [
            ("127.0.0.1:1883", MissingScheme),
            ("mqtts://b:8883", UnsupportedScheme("mqtts".into())),
            ("ws://b/mqtt", UnsupportedScheme("ws".into())),
            ("ws://b", UnsupportedScheme("ws".into())),
            ("u:pw@mqtt://b", UnsupportedScheme("?".into())),
            ("mqtt://b:1883/x", Path),
            ("mqtt://b/x", Path),
            ("mqtt://b?client_id=1", Path),
            ("mqtt://", EmptyHost),
            ("mqtt://:1883", EmptyHost),
            ("mqtt://b:0", BadPort),
            ("mqtt://b:65536", BadPort),
            ("mqtt://b:+1", BadPort),
            ("mqtt://b:", BadPort),
            ("mqtt://b c", BadHost),
            ("mqtt://[::1", BadHost),
            ("mqtt://[nope]", BadHost),
            ("mqtt://[nope]:1", BadHost),
            ("mqtt://[::1]x", BadHost),
            ("mqtt://user@b", BadCredentials),
            ("mqtt://:pw@b", BadCredentials),
        ] {
            assert_eq!(BrokerAddr::parse(url), Err(want), "{url}");
        }
    }

    #[test]
    fn never_shows_the_password() {
        let a = BrokerAddr::parse("mqtt://u:hunter2@b:1").unwrap();
        assert_eq!(a.to_string(), "mqtt://b:1");
        assert!(!format!("{a:?}").contains("hunter2"), "{a:?}");
        let err = BrokerAddr::parse("mqtt://u:hunter2@b:x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        let err = BrokerAddr::parse("u:hunter2@mqtt://b").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn round_trips_socket_addresses() {
        for s in ["127.0.0.1:40000", "[::1]:40001"] {
            let sa: SocketAddr = s.parse().unwrap();
            let a = BrokerAddr::from(sa);
            assert_eq!(BrokerAddr::parse(&a.to_string()), Ok(a));
        }
    }
}
