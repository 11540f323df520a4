//! Server addresses.

use std::fmt;

/// The port MongoDB listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 27017;

/// A server's host and port. Host names are kept in lower case, as the Server Discovery and
/// Monitoring specification requires for comparing addresses; IPv6 literals are kept without
/// brackets and shown with them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerAddress {
    host: String,
    port: u16,
}

impl ServerAddress {
    /// An address; `host` is lower-cased and stripped of IPv6 brackets.
    pub fn new(host: &str, port: u16) -> ServerAddress {
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        ServerAddress {
            host: host.to_ascii_lowercase(),
            port,
        }
    }

    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port` (as servers report members in
    /// `hello.hosts`). `None` for an empty host, a bad port, or an unbracketed IPv6 literal.
    pub fn parse(text: &str) -> Option<ServerAddress> {
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']')?;
            let port = match after {
                "" => DEFAULT_PORT,
                _ => after.strip_prefix(':')?.parse().ok()?,
            };
            (host, port)
        } else {
            match text.split_once(':') {
                Some((_, port)) if port.contains(':') => return None,
                Some((host, port)) => (host, port.parse().ok()?),
                None => (text, DEFAULT_PORT),
            }
        };
        if host.is_empty() || port == 0 {
            return None;
        }
        Some(ServerAddress::new(host, port))
    }

    /// The host name or IP literal, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_servers_report() {
        assert_eq!(
            ServerAddress::parse("Example.COM:27018"),
            Some(ServerAddress::new("example.com", 27018))
        );
        assert_eq!(
            ServerAddress::parse("localhost"),
            Some(ServerAddress::new("localhost", 27017))
        );
        assert_eq!(ServerAddress::parse("[::1]:27019").unwrap().to_string(), "[::1]:27019");
        assert_eq!(ServerAddress::parse("[fe80::1]").unwrap().host(), "fe80::1");
        for bad in [
            "",
            ":27017",
            "host:",
            "host:x",
            "host:70000",
            "host:0",
            "::1",
            "[::1",
            "[::1]x",
            "[]:1",
        ] {
            assert_eq!(ServerAddress::parse(bad), None, "{bad:?}");
        }
    }
}
