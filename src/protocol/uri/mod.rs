//! The `mongodb://` and `mongodb+srv://` connection string: a strict parser with no I/O.
//!
//! [`ConnectionString::parse`] follows the Connection String and URI Options specifications
//! and the credential rules of the Authentication specification. For `mongodb+srv://` it also
//! does the half of the Initial DNS Seedlist Discovery specification that needs no network:
//! [`ConnectionString::srv_query_name`] names the SRV query, the driver performs the SRV and
//! TXT lookups, and [`ConnectionString::apply_srv_records`] checks the answers and turns them
//! into the seed list and options.
//!
//! ```
//! use mongowire::protocol::uri::ConnectionString;
//!
//! let uri = "mongodb://alice:s3cr%40t@db1.example.com,db2.example.com:27018/shop\
//!            ?replicaSet=rs0&w=majority&readPreference=secondaryPreferred";
//! let parsed = ConnectionString::parse(uri)?;
//! assert_eq!(parsed.hosts[1].to_string(), "db2.example.com:27018");
//! let credential = parsed.credential.as_ref().unwrap();
//! assert_eq!(credential.password.as_ref().unwrap().expose(), "s3cr@t");
//! assert_eq!(credential.source.as_deref(), Some("shop"));
//! assert_eq!(parsed.options.replica_set.as_deref(), Some("rs0"));
//! assert!(!parsed.redacted().contains("s3cr"));
//! # Ok::<(), mongowire::Error>(())
//! ```
//!
//! Every error is [`Error::Usage`] and says what is wrong and where: the
//! offending text, quoted, or its byte offset when it may be part of a password (see
//! `text.rs`). Passwords, `tlsCertificateKeyFilePassword` and AWS session tokens never appear
//! in errors, warnings, `Debug`, `Display` or [`ConnectionString::redacted`].
//!
//! Where this parser is stricter than, or departs from, the specifications:
//! - An invalid value for a known option is an error; the spec says to warn and ignore it.
//!   Unknown options and empty number or boolean values are still warnings, as specified.
//! - UNIX domain socket hosts are refused (the spec makes them optional): mongowire connects
//!   over TCP only.
//! - `tls=false` together with another `tls…` option is an error; without `tls`, any `tls…`
//!   option turns TLS on (the spec leaves this to drivers).
//! - `+` is not decoded to a space, and `;` separates options only when no `&` does.
//! - SOCKS5 proxy options are recognised but ignored with a warning.

mod credential;
mod options;
mod srv;
mod text;

use std::collections::HashSet;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::str::FromStr;

use crate::protocol::{Credential, DEFAULT_PORT, ServerAddress};
use crate::{Error, Result};

use credential::Requested;
use options::{Collected, Origin};
use text::{DecodeProblem, Source, invalid, percent_decode};

pub use options::{ServerMonitoringMode, UriOptions};
pub use srv::validate_srv_target;

/// The scheme of a connection string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `mongodb://`: the hosts are listed in the string.
    Standard,
    /// `mongodb+srv://`: one host name whose SRV records list the hosts.
    Srv,
}

impl Scheme {
    /// The scheme with its `://`.
    pub fn prefix(self) -> &'static str {
        match self {
            Scheme::Standard => "mongodb://",
            Scheme::Srv => "mongodb+srv://",
        }
    }
}

/// A parsed connection string.
///
/// `Debug` and `Display` never show a password: `Display` is [`ConnectionString::redacted`].
#[derive(Clone, PartialEq)]
pub struct ConnectionString {
    /// The scheme.
    pub scheme: Scheme,
    /// The seed list, in order, without duplicates. For `mongodb+srv://`, the SRV host name
    /// (with the default port, as that scheme allows none) until
    /// [`ConnectionString::apply_srv_records`] replaces it with the SRV targets.
    pub hosts: Vec<ServerAddress>,
    /// Who to authenticate as: the user info with `authSource`, `authMechanism` and
    /// `authMechanismProperties`, the source resolved per mechanism. `None` when the string asks
    /// for no authentication.
    pub credential: Option<Credential>,
    /// The database after the hosts (`/shop`), percent-decoded.
    pub default_database: Option<String>,
    /// The options after `?`.
    pub options: UriOptions,
    /// What the parser ignored or found deprecated (unknown options, repeated keys, legacy
    /// booleans), for the caller to log. Never holds a secret.
    pub warnings: Vec<String>,
    srv: Option<SrvHost>,
    redacted: String,
}

/// The host name of a `mongodb+srv://` string and whether its DNS records were applied.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SrvHost {
    name: String,
    resolved: bool,
}

impl ConnectionString {
    /// Parses and validates a connection string. Errors are [`Error::Usage`].
    pub fn parse(uri: &str) -> Result<ConnectionString> {
        // A trailing newline from a file or an environment variable would otherwise end up in
        // the last option's value, where `w` would take it as a tag name.
        if let Some((at, c)) = uri.char_indices().find(|(_, c)| c.is_control()) {
            return Err(invalid(format!(
                "control character {c:?} at byte {at}; a connection string is one line with no \
                 tabs or control characters"
            )));
        }
        let (scheme, start) = parse_scheme(uri)?;
        let source = Source::connection_string(uri, start);
        let end = uri.len();
        let authority_end = source.get(start..end).find(['/', '?']).map_or(end, |at| start + at);
        let after = source.get(authority_end..end);
        let (path, query) = match after.strip_prefix('/') {
            Some(path_and_query) => {
                let path_start = authority_end + 1;
                match path_and_query.find('?') {
                    Some(at) => (Some(path_start..path_start + at), Some(path_start + at + 1..end)),
                    None => (Some(path_start..end), None),
                }
            }
            None if after.starts_with('?') => (None, Some(authority_end + 1..end)),
            None => (None, None),
        };
        if let Some(path) = &path {
            // The user info ends at the last '@' before the first '/', so an '@' after it
            // means a '/' in the user name or password was not encoded.
            if source.get(path.clone()).contains('@') {
                return Err(invalid(
                    "an '@' follows the first '/': percent-encode '/' in a user name or \
                     password as %2F (or '@' in a database name as %40)",
                ));
            }
        }

        let authority = source.get(start..authority_end);
        let (userinfo, hosts_range) = match authority.rfind('@') {
            Some(at) => (
                Some(credential::parse_userinfo(&source, start..start + at)?),
                start + at + 1..authority_end,
            ),
            None => (None, start..authority_end),
        };
        let hosts = parse_hosts(&source, hosts_range, scheme)?;
        let default_database = path.map(|path| parse_database(&source, path)).transpose()?.flatten();

        let mut collected = Collected::default();
        if let Some(query) = query {
            for pair in options::split_query(&source, query, &mut collected.warnings)? {
                collected.apply(&source, &pair, Origin::ConnectionString)?;
            }
        }
        options::validate(&collected.options).map_err(invalid)?;
        check_hosts_and_scheme(scheme, hosts.len(), &collected.options)?;

        let mut secret_ranges = collected.secret_ranges;
        let requested =
            if userinfo.is_some() || collected.mechanism.is_some() || !collected.mechanism_properties.is_empty() {
                let (username, password) = match userinfo {
                    Some(userinfo) => {
                        secret_ranges.extend(userinfo.password_range);
                        (Some(userinfo.username), userinfo.password)
                    }
                    None => (None, None),
                };
                Some(Requested {
                    username,
                    password,
                    mechanism: collected.mechanism,
                    properties: collected.mechanism_properties,
                })
            } else {
                None
            };
        let credential = credential::resolve(
            requested,
            collected.options.auth_source.as_deref(),
            default_database.as_deref(),
        )?;

        let srv = (scheme == Scheme::Srv).then(|| SrvHost {
            name: hosts
                .first()
                .map(|host| host.name.to_ascii_lowercase())
                .unwrap_or_default(),
            resolved: false,
        });
        let addresses = unique(
            hosts
                .iter()
                .map(|host| ServerAddress::new(&host.name, host.port.unwrap_or(DEFAULT_PORT))),
        );
        Ok(ConnectionString {
            scheme,
            hosts: addresses,
            credential,
            default_database,
            options: collected.options,
            warnings: collected.warnings,
            srv,
            redacted: redact(uri, secret_ranges),
        })
    }

    /// The connection string as given, with the password and other secrets replaced by
    /// `<redacted>`: for logs and error messages. The other secrets are the values of
    /// `tlsCertificateKeyFilePassword`, of `authMechanismProperties` when it holds an AWS
    /// session token, and of any option whose name contains "password" (`proxyPassword`, or
    /// another driver's `sslPEMKeyPassword`).
    pub fn redacted(&self) -> String {
        self.redacted.clone()
    }

    /// Whether connections use TLS: `tls` (or `ssl`) when given; otherwise on for
    /// `mongodb+srv://` (the seedlist spec requires it) and when any other `tls…` option is
    /// given (a CA file or certificate means TLS was meant), off otherwise.
    pub fn tls_enabled(&self) -> bool {
        self.options
            .tls
            .unwrap_or(self.scheme == Scheme::Srv || self.options.has_tls_settings())
    }
}

impl FromStr for ConnectionString {
    type Err = Error;

    fn from_str(uri: &str) -> Result<ConnectionString> {
        ConnectionString::parse(uri)
    }
}

impl fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Credential`'s own `Debug` hides the password but shows mechanism properties, and an
        // AWS session token is one of them.
        let credential = self.credential.clone().map(|mut credential| {
            for (name, value) in credential.mechanism_properties.iter_mut() {
                if options::is_secret_property(name) {
                    *value = "<redacted>".into();
                }
            }
            credential
        });
        f.debug_struct("ConnectionString")
            .field("scheme", &self.scheme)
            .field("hosts", &self.hosts)
            .field("credential", &credential)
            .field("default_database", &self.default_database)
            .field("options", &self.options)
            .field("warnings", &self.warnings)
            .field("srv", &self.srv)
            .finish_non_exhaustive()
    }
}

/// The scheme, and the byte offset just after its `://`. Schemes match case-insensitively, as
/// RFC 3986 has them.
fn parse_scheme(uri: &str) -> Result<(Scheme, usize)> {
    const EXPECTED: &str = "expected mongodb:// or mongodb+srv://";
    if uri.is_empty() {
        return Err(invalid(format!("the string is empty; {EXPECTED}")));
    }
    let Some(at) = uri.find("://") else {
        return Err(invalid(format!("no scheme; {EXPECTED}")));
    };
    let name = uri.get(..at).unwrap_or_default();
    let scheme = if name.eq_ignore_ascii_case("mongodb") {
        Scheme::Standard
    } else if name.eq_ignore_ascii_case("mongodb+srv") {
        Scheme::Srv
    } else if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err(invalid(format!("unknown scheme {name:?}; {EXPECTED}")));
    } else {
        // Not a scheme at all, maybe a password pasted before a "://" in an option: unquoted.
        return Err(invalid(format!("no scheme; {EXPECTED}")));
    };
    Ok((scheme, at + "://".len()))
}

/// One host as written: the decoded name (an IPv6 literal without brackets) and the port.
struct Host {
    name: String,
    port: Option<u16>,
    ip_literal: bool,
    range: Range<usize>,
}

fn parse_hosts(source: &Source<'_>, range: Range<usize>, scheme: Scheme) -> Result<Vec<Host>> {
    let text = source.get(range.clone());
    if text.is_empty() {
        let hint = if source.get(range.end..range.end + 1) == "/" {
            " (a UNIX domain socket path would have to be percent-encoded, and mongowire does \
             not support them)"
        } else {
            ""
        };
        return Err(invalid(format!(
            "no host at byte {}; a connection string names at least one host{hint}",
            range.start
        )));
    }
    let mut hosts = Vec::new();
    let mut start = range.start;
    for piece in text.split(',') {
        let piece_range = start..start + piece.len();
        start = piece_range.end + 1;
        hosts.push(parse_host(source, piece_range)?);
    }
    if scheme == Scheme::Srv {
        check_srv_host(source, &hosts)?;
    }
    Ok(hosts)
}

fn parse_host(source: &Source<'_>, range: Range<usize>) -> Result<Host> {
    let raw = source.get(range.clone());
    let quoted = || source.quote(range.clone());
    if raw.is_empty() {
        return Err(invalid(format!(
            "empty host at byte {} (two ',' in a row, or a ',' ending the host list)",
            range.start
        )));
    }
    let (name, port_range, ip_literal) = if let Some(inner) = raw.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            return Err(invalid(format!("host {} has a '[' but no ']'", quoted())));
        };
        let address = inner.get(..close).unwrap_or_default();
        if address.parse::<Ipv6Addr>().is_err() {
            return Err(invalid(format!("host {} is not an IPv6 address in brackets", quoted())));
        }
        let after = range.start + "[".len() + close + "]".len();
        let port_range = match source.get(after..range.end) {
            "" => None,
            rest if rest.starts_with(':') => Some(after + 1..range.end),
            _ => {
                return Err(invalid(format!(
                    "host {} has text after ']' that is not ':' and a port",
                    quoted()
                )));
            }
        };
        (address.to_owned(), port_range, true)
    } else {
        if raw.matches(':').count() > 1 {
            return Err(invalid(format!(
                "host {} has more than one ':'; write an IPv6 address in brackets, as in \
                 [::1]:27017",
                quoted()
            )));
        }
        let (name, port_range) = match raw.find(':') {
            Some(colon) => (
                raw.get(..colon).unwrap_or_default(),
                Some(range.start + colon + 1..range.end),
            ),
            None => (raw, None),
        };
        if name.is_empty() {
            return Err(invalid(format!("host {} has a port but no name", quoted())));
        }
        let name = percent_decode(name).map_err(|problem| match problem {
            DecodeProblem::BadEscape(_) => {
                invalid(format!("host {} has a '%' that does not start a %XX escape", quoted()))
            }
            DecodeProblem::NotUtf8 => invalid(format!("host {} is not UTF-8 once decoded", quoted())),
        })?;
        if name.contains('/') {
            return Err(invalid(format!(
                "host {} is a UNIX domain socket path; mongowire connects over TCP only",
                quoted()
            )));
        }
        if let Some(c) = name
            .chars()
            .find(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
        {
            let shown = if source.may_hold_password(&range) {
                "a character".to_owned()
            } else {
                format!("{c:?}")
            };
            return Err(invalid(format!(
                "host {} contains {shown}, which host names cannot contain",
                quoted()
            )));
        }
        (name.into_owned(), port_range, false)
    };
    let port = port_range.map(|port| parse_port(source, port, &range)).transpose()?;
    Ok(Host {
        name,
        port,
        ip_literal,
        range,
    })
}

fn parse_port(source: &Source<'_>, port: Range<usize>, host: &Range<usize>) -> Result<u16> {
    let text = source.get(port.clone());
    let quoted_host = source.quote(host.clone());
    if text.is_empty() {
        return Err(invalid(format!("host {quoted_host} ends with ':' but has no port")));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!(
            "port {} in host {quoted_host} is not a number",
            source.show(port)
        )));
    }
    text.parse::<u16>().ok().filter(|port| *port != 0).ok_or_else(|| {
        invalid(format!(
            "port {} out of range in host {quoted_host} (ports are 1 to 65535)",
            source.show(port)
        ))
    })
}

/// `mongodb+srv://` takes exactly one DNS name and no port (the SRV records give the ports).
fn check_srv_host(source: &Source<'_>, hosts: &[Host]) -> Result<()> {
    let [host] = hosts else {
        return Err(invalid(format!(
            "mongodb+srv:// takes exactly one host name, found {}",
            hosts.len()
        )));
    };
    let quoted = source.quote(host.range.clone());
    if host.port.is_some() {
        return Err(invalid(format!(
            "mongodb+srv:// host {quoted} cannot have a port; the SRV records give the ports"
        )));
    }
    if host.ip_literal || host.name.parse::<Ipv4Addr>().is_ok() {
        return Err(invalid(format!(
            "mongodb+srv:// needs a DNS name with SRV records, not the IP address {quoted}"
        )));
    }
    if host.name.split('.').any(str::is_empty) {
        return Err(invalid(format!(
            "mongodb+srv:// host {quoted} has an empty label (a '.' at either end or two in a row)"
        )));
    }
    Ok(())
}

/// The database after the hosts; `None` when the path is empty (`mongodb://host/`).
fn parse_database(source: &Source<'_>, range: Range<usize>) -> Result<Option<String>> {
    let raw = source.get(range.clone());
    if raw.is_empty() {
        return Ok(None);
    }
    let quoted = source.quote(range.clone());
    let name = percent_decode(raw).map_err(|problem| match problem {
        DecodeProblem::BadEscape(at) => invalid(format!(
            "database name {quoted} has a '%' at byte {} that does not start a %XX escape",
            range.start + at
        )),
        DecodeProblem::NotUtf8 => invalid(format!("database name {quoted} is not UTF-8 once decoded")),
    })?;
    // The Connection String spec's list; '.' stays allowed so that "db.collection" works.
    if let Some(c) = name.chars().find(|c| matches!(c, '/' | '\\' | ' ' | '"' | '$' | '\0')) {
        let shown = if source.may_hold_password(&range) {
            "a character".to_owned()
        } else {
            format!("{c:?}")
        };
        return Err(invalid(format!(
            "database name {quoted} contains {shown}, which database names cannot contain"
        )));
    }
    Ok(Some(name.into_owned()))
}

/// The rules that need the scheme or the number of hosts.
fn check_hosts_and_scheme(scheme: Scheme, hosts: usize, options: &UriOptions) -> Result<()> {
    if scheme == Scheme::Standard {
        if options.srv_service_name.is_some() {
            return Err(invalid("srvServiceName is only for mongodb+srv:// strings"));
        }
        if options.srv_max_hosts.is_some() {
            return Err(invalid("srvMaxHosts is only for mongodb+srv:// strings"));
        }
    }
    if options.direct_connection == Some(true) {
        if scheme == Scheme::Srv {
            return Err(invalid(
                "directConnection=true cannot be used with mongodb+srv://, whose SRV records may \
                 name several hosts",
            ));
        }
        if hosts > 1 {
            return Err(invalid(format!(
                "directConnection=true needs exactly one host, found {hosts}"
            )));
        }
    }
    if options.load_balanced == Some(true) && hosts > 1 {
        return Err(invalid(format!(
            "loadBalanced=true needs exactly one host (the load balancer), found {hosts}"
        )));
    }
    Ok(())
}

/// The addresses in order, each once (a set keeps this linear on long host lists).
fn unique(addresses: impl Iterator<Item = ServerAddress>) -> Vec<ServerAddress> {
    let mut seen = HashSet::new();
    addresses.filter(|address| seen.insert(address.clone())).collect()
}

/// `text` with each range replaced by `<redacted>`.
fn redact(text: &str, mut ranges: Vec<Range<usize>>) -> String {
    ranges.sort_by_key(|range| range.start);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for range in ranges {
        if range.start < copied {
            continue;
        }
        out.push_str(text.get(copied..range.start).unwrap_or_default());
        out.push_str("<redacted>");
        copied = range.end;
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `uri`, failing the test with the error if it does not parse.
    pub(super) fn ok(uri: &str) -> ConnectionString {
        ConnectionString::parse(uri).unwrap_or_else(|error| panic!("{uri}: {error}"))
    }

    /// The error message for `uri`, failing the test if it parses.
    pub(super) fn err(uri: &str) -> String {
        match ConnectionString::parse(uri) {
            Ok(parsed) => panic!("{uri} parsed: {parsed:?}"),
            Err(Error::Usage(error)) => error.message,
            Err(other) => panic!("{uri}: not a usage error: {other:?}"),
        }
    }

    /// Asserts that parsing `uri` fails with a message containing `fragment`.
    #[track_caller]
    pub(super) fn assert_err(uri: &str, fragment: &str) {
        let message = err(uri);
        assert!(message.contains(fragment), "{uri}: {message:?} lacks {fragment:?}");
        assert!(message.starts_with("invalid connection string: "), "{message}");
    }

    fn addresses(parsed: &ConnectionString) -> Vec<String> {
        parsed.hosts.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn scheme_errors_name_the_scheme_found() {
        assert_eq!(
            err("mongo://localhost:27017"),
            "invalid connection string: unknown scheme \"mongo\"; expected mongodb:// or mongodb+srv://"
        );
        assert_err("", "the string is empty");
        assert_err("localhost:27017", "no scheme; expected mongodb://");
        assert_err("http://example.com", "unknown scheme \"http\"");
        assert_eq!(ok("MongoDB://example.com").scheme, Scheme::Standard);
        assert_eq!(ok("mongodb+SRV://example.com").scheme, Scheme::Srv);
        let parsed: ConnectionString = "mongodb://example.com".parse().unwrap();
        assert_eq!(addresses(&parsed), ["example.com:27017"]);
    }

    #[test]
    fn host_forms_and_default_port() {
        assert_eq!(addresses(&ok("mongodb://127.0.0.1")), ["127.0.0.1:27017"]);
        assert_eq!(addresses(&ok("mongodb://127.0.0.1:27018")), ["127.0.0.1:27018"]);
        let v6 = ok("mongodb://[::1]");
        assert_eq!(v6.hosts[0].host(), "::1");
        assert_eq!(v6.hosts[0].port(), 27017);
        assert_eq!(addresses(&ok("mongodb://[::1]:27019")), ["[::1]:27019"]);
        assert_eq!(addresses(&ok("mongodb://[FE80::1]:1/")), ["[fe80::1]:1"]);
        assert_eq!(addresses(&ok("mongodb://example.com:65535")), ["example.com:65535"]);
        // Not an IPv4 address, so a host name, which is fine.
        assert_eq!(addresses(&ok("mongodb://256.0.0.1")), ["256.0.0.1:27017"]);
        assert_eq!(
            addresses(&ok("mongodb://127.0.0.1,[::1]:27018,Example.COM:27019")),
            ["127.0.0.1:27017", "[::1]:27018", "example.com:27019"]
        );
        assert_eq!(
            addresses(&ok("mongodb://bücher.example.com,umläut.example.com/")),
            ["bücher.example.com:27017", "umläut.example.com:27017"]
        );
        assert_eq!(
            addresses(&ok("mongodb://b%C3%BCcher.example.com")),
            ["bücher.example.com:27017"]
        );
        assert_eq!(
            addresses(&ok("mongodb://a.example,A.EXAMPLE:27017,a.example:1")),
            ["a.example:27017", "a.example:1"],
            "duplicates go, in order"
        );
    }

    #[test]
    fn port_errors_quote_the_host() {
        assert_eq!(
            err("mongodb://db:70000"),
            "invalid connection string: port 70000 out of range in host \"db:70000\" (ports are 1 to 65535)"
        );
        assert_err("mongodb://localhost:0/", "port 0 out of range in host \"localhost:0\"");
        assert_err("mongodb://localhost:65536", "port 65536 out of range");
        assert_err("mongodb://localhost:99999999999999999999", "out of range");
        assert_err(
            "mongodb://localhost:-1",
            "port -1 in host \"localhost:-1\" is not a number",
        );
        assert_err(
            "mongodb://localhost:foo",
            "port foo in host \"localhost:foo\" is not a number",
        );
        assert_err("mongodb://localhost:+1", "is not a number");
        assert_err("mongodb://[::1]:-1", "port -1 in host \"[::1]:-1\" is not a number");
        assert_err("mongodb://[::1]:0/", "port 0 out of range in host \"[::1]:0\"");
        assert_err("mongodb://[::1]:65536", "port 65536 out of range");
        assert_err("mongodb://[::1]:65536/", "port 65536 out of range");
        assert_err("mongodb://[::1]:foo", "port foo in host \"[::1]:foo\" is not a number");
        assert_err(
            "mongodb://example.com:",
            "host \"example.com:\" ends with ':' but has no port",
        );
        assert_err("mongodb://[::1]:", "ends with ':' but has no port");
    }

    #[test]
    fn malformed_hosts_say_what_and_where() {
        assert_err("mongodb://", "no host at byte 10");
        assert_err("mongodb://user@/db", "no host at byte 15");
        assert_err(
            "mongodb:///tmp/mongodb-27017.sock/",
            "UNIX domain socket path would have to be percent-encoded",
        );
        for uri in [
            "mongodb://localhost::27017",
            "mongodb://localhost::27017/",
            "mongodb://::",
            "mongodb://localhost,localhost::",
            "mongodb://localhost::27017,abc",
            "mongodb://::1",
        ] {
            assert_err(uri, "more than one ':'; write an IPv6 address in brackets");
        }
        assert_err("mongodb://a,,b", "empty host at byte 12");
        assert_err("mongodb://a,", "empty host at byte 12");
        assert_err("mongodb://:27017", "host \":27017\" has a port but no name");
        assert_err("mongodb://[::1", "host \"[::1\" has a '[' but no ']'");
        assert_err("mongodb://[not:v6]:1", "host \"[not:v6]:1\" is not an IPv6 address");
        assert_err("mongodb://[]", "is not an IPv6 address");
        assert_err("mongodb://[::1]x", "text after ']' that is not ':' and a port");
        assert_err("mongodb://exa mple.com", "host \"exa mple.com\" contains ' '");
        assert_err("mongodb://exa\"mple", "contains '\"'");
        assert_err(
            "mongodb://exa%zzmple",
            "host \"exa%zzmple\" has a '%' that does not start a %XX escape",
        );
        assert_err("mongodb://exa%25mple", "contains '%'");
        assert_err(
            "mongodb://%2Ftmp%2Fmongodb-27017.sock",
            "host \"%2Ftmp%2Fmongodb-27017.sock\" is a UNIX domain socket path; mongowire connects over TCP only",
        );
        assert_err("mongodb://h/?w=1\n", "control character '\\n' at byte 16");
        assert_err("mongodb://h\t", "control character '\\t' at byte 11");
    }

    #[test]
    fn user_info_is_split_and_decoded() {
        let parsed = ok("mongodb://alice:foo@127.0.0.1/test");
        let credential = parsed.credential.as_ref().unwrap();
        assert_eq!(credential.username.as_deref(), Some("alice"));
        assert_eq!(credential.password.as_ref().unwrap().expose(), "foo");
        assert_eq!(parsed.default_database.as_deref(), Some("test"));

        let no_password = ok("mongodb://alice@127.0.0.1").credential.unwrap();
        assert_eq!(no_password.username.as_deref(), Some("alice"));
        assert!(no_password.password.is_none());
        let empty_password = ok("mongodb://alice:@127.0.0.1").credential.unwrap();
        assert_eq!(empty_password.password.unwrap().expose(), "");

        let escaped = ok("mongodb://%40l%3Ace%2F%3D@example.com/my%3Ddb");
        assert_eq!(escaped.credential.unwrap().username.as_deref(), Some("@l:ce/="));
        assert_eq!(escaped.default_database.as_deref(), Some("my=db"));

        let sub_delims = ok("mongodb://!$&'()*+,;=:!$&'()*+,;=@127.0.0.1/admin?authMechanism=PLAIN")
            .credential
            .unwrap();
        assert_eq!(sub_delims.username.as_deref(), Some("!$&'()*+,;="));
        assert_eq!(sub_delims.password.unwrap().expose(), "!$&'()*+,;=");

        let plus = ok("mongodb://a+b:c+d%2B@h").credential.unwrap();
        assert_eq!(plus.username.as_deref(), Some("a+b"), "'+' is not a space");
        assert_eq!(plus.password.unwrap().expose(), "c+d+");

        let options_at = ok("mongodb://alice:secret@example.com/admin?replicaset=my@replicaset");
        assert_eq!(options_at.options.replica_set.as_deref(), Some("my@replicaset"));
        assert_eq!(options_at.credential.unwrap().username.as_deref(), Some("alice"));
    }

    #[test]
    fn malformed_user_info_is_refused() {
        assert_err(
            "mongodb://alice:foo:bar@127.0.0.1",
            "more than one ':'; percent-encode ':'",
        );
        assert_err(
            "mongodb://alice@@127.0.0.1",
            "contains an '@'; percent-encode it as %40",
        );
        assert_err("mongodb://alice@foo:bar@127.0.0.1", "contains an '@'");
        for uri in [
            "mongodb://alice/@localhost/db",
            "mongodb://alice/bob:foo@localhost/db",
            "mongodb://alice:foo/bar@localhost/db",
        ] {
            assert_err(uri, "an '@' follows the first '/': percent-encode '/'");
        }
        assert_err(
            "mongodb://alice%foo:bar@127.0.0.1",
            "the user name has a '%' at byte 15",
        );
        assert_err(
            "mongodb://user%20%:password@localhost",
            "the user name has a '%' at byte 17",
        );
        assert_err("mongodb://user%w:password@localhost", "the user name has a '%'");
        assert_err("mongodb://al[ce:pw@h", "the user name contains '['");
        assert_err("mongodb://alice:p%zz@h", "the password has a '%' that does not start");
        assert_err(
            "mongodb://alice:p#w@h",
            "the password contains a character that must be percent-encoded",
        );
        assert_err("mongodb://alice:%FF@h", "the password is not UTF-8");
    }

    #[test]
    fn database_is_decoded_and_checked() {
        assert_eq!(
            ok("mongodb://localhost/admin%3F?w=1").default_database.as_deref(),
            Some("admin?")
        );
        assert_eq!(
            ok("mongodb://localhost/some,db").default_database.as_deref(),
            Some("some,db")
        );
        assert_eq!(
            ok("mongodb://localhost/some%2Cdb").default_database.as_deref(),
            Some("some,db")
        );
        assert_eq!(
            ok("mongodb://localhost/db.coll").default_database.as_deref(),
            Some("db.coll")
        );
        assert_eq!(ok("mongodb://localhost/").default_database, None);
        assert_eq!(ok("mongodb://localhost/?w=1").default_database, None);
        assert_err("mongodb://localhost/my db", "database name \"my db\" contains ' '");
        assert_err("mongodb://localhost/a%24b", "database name \"a%24b\" contains '$'");
        assert_err("mongodb://localhost/a%2Fb", "contains '/'");
        assert_err("mongodb://localhost/a%5Cb", "contains '\\\\'");
        assert_err("mongodb://localhost/a%22b", "contains '\"'");
        assert_err("mongodb://localhost/a%00b", "contains '\\0'");
        assert_err("mongodb://localhost/a/b", "contains '/'");
        assert_err("mongodb://localhost/a%2", "database name \"a%2\" has a '%' at byte 21");
    }

    #[test]
    fn query_forms() {
        let no_slash = ok("mongodb://example.com?tls=true");
        assert_eq!(addresses(&no_slash), ["example.com:27017"]);
        assert_eq!(no_slash.options.tls, Some(true));
        let empty_pieces = ok("mongodb://h/?&w=1&&journal=true&");
        assert_eq!(empty_pieces.options.journal, Some(true));
        assert!(empty_pieces.warnings.is_empty(), "{:?}", empty_pieces.warnings);
        assert!(ok("mongodb://h/?").warnings.is_empty());
        let legacy = ok("mongodb://h/?w=2;journal=true");
        assert_eq!(legacy.options.journal, Some(true));
        assert_eq!(
            legacy.warnings,
            ["options are separated by ';', a legacy form; use '&' instead"]
        );
        // With '&' present, ';' is part of a value.
        assert_eq!(
            ok("mongodb://h/?appName=a;b&w=1").options.app_name.as_deref(),
            Some("a;b")
        );
        assert_eq!(
            err("mongodb://example.com/?w"),
            "invalid connection string: option \"w\" has no value; options are written key=value"
        );
        assert_err("mongodb://h/?=1", "option \"=1\" has no name before '='");
        let equals = ok("mongodb://h/?appName=a=b");
        assert_eq!(equals.options.app_name.as_deref(), Some("a=b"));
    }

    #[test]
    fn topology_rules_that_need_the_hosts() {
        assert_eq!(
            ok("mongodb://example.com/?directConnection=true")
                .options
                .direct_connection,
            Some(true)
        );
        assert_err(
            "mongodb://example1.com,example2.com/?directConnection=true",
            "directConnection=true needs exactly one host, found 2",
        );
        assert_eq!(
            ok("mongodb://example1.com,example2.com/?directConnection=false")
                .options
                .direct_connection,
            Some(false)
        );
        assert_err(
            "mongodb://example1,example2/?loadBalanced=true",
            "loadBalanced=true needs exactly one host",
        );
        assert_err(
            "mongodb://example.com/?srvServiceName=customname",
            "srvServiceName is only for mongodb+srv://",
        );
        assert_err(
            "mongodb://example.com/?srvMaxHosts=2",
            "srvMaxHosts is only for mongodb+srv://",
        );
    }

    #[test]
    fn tls_is_on_when_asked_for_or_implied() {
        assert!(!ok("mongodb://h").tls_enabled());
        assert!(ok("mongodb://h/?tls=true").tls_enabled());
        assert!(ok("mongodb://h/?ssl=true").tls_enabled());
        assert!(ok("mongodb://h/?tlsCAFile=ca.pem").tls_enabled());
        assert!(ok("mongodb://h/?tlsAllowInvalidHostnames=false").tls_enabled());
        assert!(ok("mongodb+srv://cluster0.example.com").tls_enabled());
        assert!(!ok("mongodb+srv://cluster0.example.com/?tls=false").tls_enabled());
        assert!(!ok("mongodb+srv://cluster0.example.com/?ssl=false").tls_enabled());
    }

    #[test]
    fn redacted_display_and_debug_hide_secrets() {
        let uri = "mongodb://alice:Hunter2Pw@h/db?tlsCertificateKeyFilePassword=KeyPw9&w=1&proxyPassword=Proxy8&sslPEMKeyPassword=Legacy7";
        let parsed = ok(uri);
        assert_eq!(
            parsed.redacted(),
            "mongodb://alice:<redacted>@h/db?tlsCertificateKeyFilePassword=<redacted>&w=1&proxyPassword=<redacted>&sslPEMKeyPassword=<redacted>"
        );
        assert_eq!(parsed.to_string(), parsed.redacted());
        let shown = format!("{parsed:?} {parsed:#?} {:?}", parsed.warnings);
        for secret in ["Hunter2Pw", "KeyPw9", "Proxy8", "Legacy7"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("alice"));
        assert_eq!(
            parsed
                .options
                .tls_certificate_key_file_password
                .as_ref()
                .unwrap()
                .expose(),
            "KeyPw9"
        );
        assert_eq!(ok("mongodb://alice:@h").redacted(), "mongodb://alice:<redacted>@h");
        assert_eq!(ok("mongodb://alice@h/?w=1").redacted(), "mongodb://alice@h/?w=1");
    }

    #[test]
    fn a_password_never_appears_in_errors_or_warnings() {
        // Malformed strings that hold the password "Hunter2Pw", some with the password
        // shifting the grammar's boundaries because it was not percent-encoded.
        for uri in [
            "mongodb://alice:Hunter2Pw:x@h",
            "mongodb://alice:Hunter2Pw@@h",
            "mongodb://alice:Hunter#2Pw@h",
            "mongodb://alice:Hunter%2Pw@h",
            "mongodb://alice:Hunter2Pw/x@h/db",
            "mongodb://alice:Hun?ter2Pw@h",
            "mongodb://alice:Hun?w=ter2Pw@h",
            "mongodb://alice:Hun?ter2Pw=1@h",
            "mongodb://alice:Hunter2Pw@h:99999",
            "mongodb://alice:Hunter2Pw@h/?authMechanism=MONGODB-X509",
            "mongodb://alice:Hunter2Pw@h/?authMechanism=MONGODB-OIDC",
            "mongodb://alice:Hunter2Pw@h/?w=-1",
            "mongodb://alice:Hunter2Pw@h:1x/?appName=a@b",
            "mongodb://alice:12345@h:0/?appName=a@b",
        ] {
            let message = err(uri);
            for fragment in ["Hunter", "ter2Pw", "Hun", "12345"] {
                assert!(!message.contains(fragment), "{uri}: {message}");
            }
        }
        let parsed = ok("mongodb://alice:Hunter2Pw@h/?foo=1&appName=a@b&bar=2");
        assert_eq!(parsed.warnings.len(), 2);
        assert_eq!(parsed.warnings[0], "unknown option <bytes 29..32> ignored");
        assert_eq!(parsed.warnings[1], "unknown option \"bar\" ignored");
    }

    #[test]
    fn long_inputs_parse_in_linear_time() {
        let hosts: Vec<String> = (0..20_000).map(|n| format!("h{n}:{}", n % 60_000 + 1)).collect();
        let tags: Vec<String> = (0..20_000).map(|n| format!("t{n}:v")).collect();
        let uri = format!(
            "mongodb://{}/?readPreference=nearest&readPreferenceTags={}&{}",
            hosts.join(","),
            tags.join(","),
            "x=1&".repeat(5_000)
        );
        let parsed = ok(&uri);
        assert_eq!(parsed.hosts.len(), 20_000);
        assert_eq!(parsed.options.read_preference_tags[0].len(), 20_000);
        assert_eq!(parsed.warnings.len(), 5_000);
        let long_key = ok(&format!("mongodb://h/?{}=1", "k".repeat(100_000)));
        assert_eq!(
            long_key.warnings,
            [format!("unknown option \"{}\"… (100000 bytes) ignored", "k".repeat(64))]
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(rest in "[a-zA-Z0-9:/?@#%&=,;.\\[\\] +$!'()*~_-]{0,40}", srv in proptest::bool::ANY) {
            let scheme = if srv { "mongodb+srv://" } else { "mongodb://" };
            let _ = ConnectionString::parse(&format!("{scheme}{rest}"));
            let _ = ConnectionString::parse(&rest);
        }

        #[test]
        fn a_password_never_leaks(
            password in "[a-zA-Z0-9:/?@#%&=,;.+$!'()*~_-]{0,12}",
            host in "[a-z:0-9,\\[\\]]{1,8}",
            tail in "(/[a-z@%]{0,4})?(\\?[a-zA-Z=&@;%0-9]{0,16})?",
        ) {
            // "Zq9" appears nowhere else, so finding it anywhere means the password leaked.
            let uri = format!("mongodb://user:Zq9{password}@{host}{tail}");
            match ConnectionString::parse(&uri) {
                Ok(parsed) => {
                    let shown = format!("{parsed:?} {parsed} {:?}", parsed.warnings);
                    proptest::prop_assert!(!shown.contains("Zq9"), "{uri}: {shown}");
                }
                Err(error) => {
                    let message = error.to_string();
                    proptest::prop_assert!(!message.contains("Zq9"), "{uri}: {message}");
                }
            }
        }
    }
}
