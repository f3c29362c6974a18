//! Where a simulator connects: `mqtt://[user:password@]host[:port]`.
//!
//! Parsed by hand rather than with rumqttc's `url` feature: the grammar is
//! tiny, and refusing what we cannot honour (TLS, websockets, paths) with a
//! clear message beats a connection that ignores half the URL. The server
//! accepts the same grammar, so one URL works for both.

use std::fmt;
use std::str::FromStr;

/// An MQTT broker's address and optional credentials. `Display` shows
/// `mqtt://host:port` and `Debug` hides the password, so it can be logged.
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
    #[error("broker URL must start with mqtt:// (e.g. mqtt://127.0.0.1:1883)")]
    MissingScheme,
    /// A scheme this build cannot speak.
    #[error(
        "broker URL scheme is not supported: only plain mqtt:// (or tcp://), no TLS or websockets"
    )]
    UnsupportedScheme,
    /// Something after the authority.
    #[error("broker URL must not have a path, query or fragment (expected mqtt://host:port)")]
    Path,
    /// No host, or one with characters no host has.
    #[error("broker URL has no valid host (expected mqtt://host:port)")]
    BadHost,
    /// A port outside 1..=65535.
    #[error("broker URL has an invalid port (expected 1 to 65535)")]
    BadPort,
    /// `user@` without `:password`, or an empty user.
    #[error("broker URL credentials must be user:password@")]
    BadCredentials,
}

impl BrokerAddr {
    /// The IANA port for unencrypted MQTT, used when the URL names none.
    pub const DEFAULT_PORT: u16 = 1883;

    /// Parses `mqtt://[user:password@]host[:port]` (or `tcp://`); an IPv6
    /// host is bracketed (`mqtt://[::1]:1883`).
    pub fn parse(url: &str) -> Result<BrokerAddr, BrokerAddrError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or(BrokerAddrError::MissingScheme)?;
        if !matches!(scheme.to_ascii_lowercase().as_str(), "mqtt" | "tcp") {
            return Err(BrokerAddrError::UnsupportedScheme);
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

    /// The host name or address, without IPv6 brackets.
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

fn split_host_port(s: &str) -> Result<(&str, u16), BrokerAddrError> {
    let (host, port) = match s.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or(BrokerAddrError::BadHost)?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
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
    let host_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
    if host.is_empty() || !host.chars().all(host_char) {
        return Err(BrokerAddrError::BadHost);
    }
    let port = match port {
        None => BrokerAddr::DEFAULT_PORT,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
            Ok(n) if n != 0 => n,
            _ => return Err(BrokerAddrError::BadPort),
        },
        Some(_) => return Err(BrokerAddrError::BadPort),
    };
    Ok((host, port))
}

impl From<std::net::SocketAddr> for BrokerAddr {
    /// A known socket address (e.g. a test broker on a free port).
    fn from(addr: std::net::SocketAddr) -> BrokerAddr {
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

    #[test]
    fn parses_host_port_and_defaults() {
        let a = BrokerAddr::parse("mqtt://127.0.0.1:1883").unwrap();
        assert_eq!(
            (a.host(), a.port(), a.credentials()),
            ("127.0.0.1", 1883, None)
        );
        assert_eq!(BrokerAddr::parse("tcp://broker").unwrap().port(), 1883);
        assert_eq!(BrokerAddr::parse("MQTT://b:1884/").unwrap().port(), 1884);
        let v6 = BrokerAddr::parse("mqtt://[::1]:1885").unwrap();
        assert_eq!(
            (v6.host(), v6.to_string().as_str()),
            ("::1", "mqtt://[::1]:1885")
        );
        let user = BrokerAddr::parse("mqtt://sim:pa:ss@b:1").unwrap();
        assert_eq!(user.credentials(), Some(("sim", "pa:ss")));
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        use BrokerAddrError::*;
        for (url, want) in [
            ("127.0.0.1:1883", MissingScheme),
            ("mqtts://b:8883", UnsupportedScheme),
            ("ws://b", UnsupportedScheme),
            ("mqtt://b/x", Path),
            ("mqtt://", BadHost),
            ("mqtt://b c", BadHost),
            ("mqtt://[nope]", BadHost),
            ("mqtt://b:0", BadPort),
            ("mqtt://b:65536", BadPort),
            ("mqtt://b:+1", BadPort),
            ("mqtt://user@b", BadCredentials),
        ] {
            assert_eq!(BrokerAddr::parse(url), Err(want), "{url}");
        }
    }

    #[test]
    fn never_shows_the_password() {
        let a = BrokerAddr::parse("mqtt://u:hunter2@b:1").unwrap();
        assert_eq!(a.to_string(), "mqtt://b:1");
        assert!(!format!("{a:?}").contains("hunter2"));
    }
}
