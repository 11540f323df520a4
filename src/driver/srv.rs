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

#[cfg(test)]
mod tests {
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    /// dnsmasq answering for `test.mongowire.internal` on a free loopback port.
    struct DnsServer {
        child: Child,
        address: SocketAddr,
    }

    impl Drop for DnsServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn dnsmasq(records: &[String]) -> Option<DnsServer> {
        if Command::new("dnsmasq")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            assert!(
                std::env::var("MONGOWIRE_REQUIRE_SERVER").as_deref() != Ok("1"),
                "dnsmasq is required"
            );
            eprintln!("skipped: dnsmasq is not installed (apt-get install dnsmasq-base)");
            return None;
        }
        for _ in 0..5 {
            // A port free for both TCP and UDP; another test may still take it before dnsmasq
            // binds, so dnsmasq must also be alive once the port answers.
            let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = tcp.local_addr().unwrap().port();
            if std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            drop(tcp);
            let mut child = Command::new("dnsmasq")
                .args([
                    "--keep-in-foreground",
                    "--no-resolv",
                    "--no-hosts",
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                ])
                // Authoritative for the test domain: unknown names are NXDOMAIN, not REFUSED.
                .arg("--local=/mongowire.internal/")
                .arg(format!("--port={port}"))
                .args(records)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::net::TcpStream::connect(address).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if child.try_wait().unwrap().is_none() {
                return Some(DnsServer { child, address });
            }
        }
        panic!("dnsmasq did not start on a free port in five attempts");
    }

    #[tokio::test]
    async fn srv_and_txt_records_from_a_real_dns_server() {
        let records = [
            "--srv-host=_mongodb._tcp.test.mongowire.internal,a.test.mongowire.internal,27101".to_owned(),
            "--srv-host=_mongodb._tcp.test.mongowire.internal,b.test.mongowire.internal,27102".to_owned(),
            "--txt-record=test.mongowire.internal,replicaSet=mw3&authSource=admin".to_owned(),
        ];
        let Some(dns) = dnsmasq(&records) else { return };
        let resolver = resolver(Some(dns.address)).unwrap();
        let found = lookup(
            &resolver,
            "_mongodb._tcp.test.mongowire.internal",
            "test.mongowire.internal",
        )
        .await
        .unwrap();
        let mut targets = found.targets.clone();
        targets.sort();
        assert_eq!(
            targets,
            [
                ("a.test.mongowire.internal".to_owned(), 27101),
                ("b.test.mongowire.internal".to_owned(), 27102)
            ]
        );
        assert_eq!(found.txt, ["replicaSet=mw3&authSource=admin"]);
    }

    #[tokio::test]
    async fn missing_srv_is_a_dns_error_and_missing_txt_is_not() {
        let records = ["--srv-host=_mongodb._tcp.notxt.mongowire.internal,a.notxt.mongowire.internal,27017".to_owned()];
        let Some(dns) = dnsmasq(&records) else { return };
        let resolver = resolver(Some(dns.address)).unwrap();
        let found = lookup(
            &resolver,
            "_mongodb._tcp.notxt.mongowire.internal",
            "notxt.mongowire.internal",
        )
        .await
        .unwrap();
        assert!(found.txt.is_empty());
        let error = lookup(
            &resolver,
            "_mongodb._tcp.absent.mongowire.internal",
            "absent.mongowire.internal",
        )
        .await
        .unwrap_err();
        match &error {
            Error::Transport(t) => assert_eq!(t.kind, TransportErrorKind::Dns),
            other => panic!("{other}"),
        }
        assert!(
            error
                .to_string()
                .contains("SRV lookup of _mongodb._tcp.absent.mongowire.internal"),
            "{error}"
        );
    }
}
