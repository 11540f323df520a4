//! A real DNS server for `mongodb+srv://` tests: dnsmasq (Debian's dnsmasq-base) on a free
//! loopback port, authoritative for `mongowire.internal`.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct DnsServer {
    child: Child,
    pub address: SocketAddr,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts dnsmasq with `records` (dnsmasq options such as `--srv-host=...`); `None` when dnsmasq
/// is not installed (a failure under `MONGOWIRE_REQUIRE_SERVER=1`).
pub fn dnsmasq(records: &[String]) -> Option<DnsServer> {
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
        // A port free for both TCP and UDP; another test may still take it before dnsmasq binds,
        // so dnsmasq must also be alive once the port answers.
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
