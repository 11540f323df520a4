//! DNS lookups for `mongodb+srv://` (Initial DNS Seedlist Discovery): the SRV records give the
//! seed list, a TXT record may add options. Deciding what the records mean (which targets are
//! allowed, which options a TXT record may set) is the connection string's job; this file only
//! asks DNS.

use std::net::SocketAddr;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use crate::error::{Error, TransportError, TransportErrorKind};

/// What DNS said about an SRV name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SrvRecords {
    /// `(target host without the trailing dot, port)`, in the order DNS returned them.
    pub(crate) targets: Vec<(String, u16)>,
    /// Each TXT record, its character-strings concatenated.
    pub(crate) txt: Vec<String>,
}

fn dns_error(what: &str, error: impl std::fmt::Display) -> Error {
    TransportError::new(TransportErrorKind::Dns, None, format!("{what}: {error}")).into()
}

/// A resolver: the system's configuration, or one name server (for tests and split-horizon
/// setups).
pub(crate) fn resolver(server: Option<SocketAddr>) -> Result<TokioResolver, Error> {
    let builder = match server {
        None => TokioResolver::builder_tokio().map_err(|e| dns_error("reading the system DNS configuration", e))?,
        Some(address) => {
            let mut name_server = NameServerConfig::udp_and_tcp(address.ip());
            for connection in &mut name_server.connections {
                connection.port = address.port();
            }
            let mut config = ResolverConfig::default();
            config.add_name_server(name_server);
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        }
    };
    builder.build().map_err(|e| dns_error("creating the DNS resolver", e))
}

/// Looks up the SRV records of `srv_name` and the TXT records of `host`. No SRV record is an
/// error; no TXT record is not.
pub(crate) async fn lookup(resolver: &TokioResolver, srv_name: &str, host: &str) -> Result<SrvRecords, Error> {
    let srv = resolver
        .srv_lookup(srv_name)
        .await
        .map_err(|e| dns_error(&format!("SRV lookup of {srv_name}"), e))?;
    let targets: Vec<(String, u16)> = srv
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            RData::SRV(srv) => {
                let target = srv.target.to_ascii();
                Some((target.trim_end_matches('.').to_owned(), srv.port))
            }
            _ => None,
        })
        .collect();
    if targets.is_empty() {
        return Err(dns_error(&format!("SRV lookup of {srv_name}"), "no SRV records"));
    }
    let txt = match resolver.txt_lookup(host).await {
        Ok(lookup) => lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part))
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect(),
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Vec::new(),
        Err(e) => return Err(dns_error(&format!("TXT lookup of {host}"), e)),
    };
    Ok(SrvRecords { targets, txt })
}
