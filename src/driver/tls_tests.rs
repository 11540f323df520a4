//! TLS against a real terminator: mongod's own TLS does not start under Wine, so these tests
//! put Debian's stunnel4 in front of the test server, with a CA and certificates generated
//! here, and check success and each failure: unknown CA, wrong host name, expired certificate,
//! and a client certificate the terminator requires. They skip when the server or stunnel is
//! missing (unless `MONGOWIRE_REQUIRE_SERVER=1`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bson::rawdoc;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, date_time_ymd};

use super::handshake::{ConnectionOptions, open};
use super::server_tests::test_server;
use super::tls::{TlsOptions, client_config};
use crate::error::{Error, TransportErrorKind};
use crate::protocol::ServerAddress;
use crate::protocol::handshake::HandshakeRequest;
use crate::wire::OpMsg;

struct Pki {
    dir: tempfile::TempDir,
}

struct Authority {
    params: CertificateParams,
    key: KeyPair,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Authority {
            params,
            key: KeyPair::generate().unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.params.self_signed(&self.key).unwrap().pem()
    }

    /// A leaf certificate and key (PEM) for `names`, valid in `years`.
    fn issue(&self, names: &[&str], years: Option<(i32, i32)>) -> (String, String) {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("client"));
        if let Some((from, to)) = years {
            params.not_before = date_time_ymd(from, 1, 1);
            params.not_after = date_time_ymd(to, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        (params.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
    }
}

impl Pki {
    fn new() -> Pki {
        Pki {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

/// A stunnel4 process terminating TLS on a free port and forwarding to the test server.
struct Terminator {
    child: Child,
    port: u16,
}

impl Drop for Terminator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stunnel_available() -> bool {
    let found = Command::new("stunnel4")
        .arg("-version")
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("MONGOWIRE_REQUIRE_SERVER").as_deref() != Ok("1"),
            "stunnel4 is required"
        );
        eprintln!("skipped: stunnel4 is not installed (apt-get install stunnel4)");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_terminator(
    pki: &Pki,
    upstream: &ServerAddress,
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Terminator {
    let port = free_port();
    let mut config = format!(
        "foreground = yes\npid =\ndebug = 3\n[mongo]\naccept = 127.0.0.1:{port}\nconnect = {upstream}\ncert = {}\nkey = {}\n",
        cert.display(),
        key.display()
    );
    if let Some(ca) = client_ca {
        config.push_str(&format!("verify = 2\nCAfile = {}\n", ca.display()));
    }
    let config_path = pki.write(&format!("stunnel-{port}.conf"), &config);
    let child = Command::new("stunnel4")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("stunnel4 starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "stunnel did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Terminator { child, port }
}

/// A terminator presenting a certificate `ca` issues for `names` (valid in `years`, if given).
fn terminator_with(
    pki: &Pki,
    ca: &Authority,
    upstream: &ServerAddress,
    names: &[&str],
    years: Option<(i32, i32)>,
) -> Terminator {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (cert, key) = ca.issue(names, years);
    let cert_file = pki.write(&format!("server-{n}.pem"), &cert);
    let key_file = pki.write(&format!("server-{n}.key"), &key);
    start_terminator(pki, upstream, &cert_file, &key_file, None)
}

fn options(tls: TlsOptions) -> Result<ConnectionOptions, Error> {
    Ok(ConnectionOptions {
        tls: Some(client_config(&tls)?),
        connect_timeout: Duration::from_secs(10),
        socket_timeout: Some(Duration::from_secs(10)),
        handshake: HandshakeRequest::default(),
        zlib_level: None,
        credential: None,
        scram_cache: std::sync::Arc::default(),
        resolver: None,
    })
}

async fn ping(host: &str, port: u16, tls: TlsOptions) -> Result<(), Error> {
    let mut connection = open(&ServerAddress::new(host, port), &options(tls)?).await?;
    connection
        .command(&OpMsg::new(rawdoc! { "ping": 1, "$db": "admin" }), None)
        .await
        .map(drop)
}

fn assert_tls_error(result: Result<(), Error>, expected: &str) {
    let error = result.unwrap_err();
    match &error {
        Error::Transport(transport) => {
            assert_eq!(transport.kind, TransportErrorKind::Tls, "{error}")
        }
        other => panic!("expected a TLS error, got {other}"),
    }
    assert!(
        error.to_string().contains(expected),
        "{error} should mention {expected}"
    );
}

#[tokio::test]
async fn tls_through_stunnel_succeeds_and_each_failure_is_clear() {
    let Some(upstream) = test_server() else {
        return;
    };
    if !stunnel_available() {
        return;
    }
    let pki = Pki::new();
    let ca = Authority::new("mongowire test CA");
    let ca_file = pki.write("ca.pem", &ca.pem());
    let good = terminator_with(&pki, &ca, &upstream, &["localhost", "127.0.0.1"], None);
    let other = terminator_with(&pki, &ca, &upstream, &["other.example"], None);
    let old = terminator_with(&pki, &ca, &upstream, &["localhost"], Some((2000, 2001)));
    let trusting = || TlsOptions {
        ca_file: Some(ca_file.clone()),
        ..TlsOptions::default()
    };

    ping("localhost", good.port, trusting()).await.unwrap();
    ping("127.0.0.1", good.port, trusting()).await.unwrap();

    let stranger = Authority::new("another CA");
    let stranger_file = pki.write("stranger.pem", &stranger.pem());
    let unknown_ca = TlsOptions {
        ca_file: Some(stranger_file),
        ..TlsOptions::default()
    };
    assert_tls_error(ping("localhost", good.port, unknown_ca).await, "UnknownIssuer");

    assert_tls_error(
        ping("localhost", other.port, trusting()).await,
        "certificate not valid for name \"localhost\"",
    );
    let any_name = TlsOptions {
        allow_invalid_hostnames: true,
        ..trusting()
    };
    ping("localhost", other.port, any_name).await.unwrap();

    assert_tls_error(ping("localhost", old.port, trusting()).await, "certificate expired");
    let anything = TlsOptions {
        allow_invalid_certificates: true,
        ..TlsOptions::default()
    };
    ping("localhost", old.port, anything).await.unwrap();

    // System roots do not know the test CA.
    assert_tls_error(
        ping("localhost", good.port, TlsOptions::default()).await,
        "UnknownIssuer",
    );
}

#[tokio::test]
async fn client_certificate_is_presented_when_configured() {
    let Some(upstream) = test_server() else {
        return;
    };
    if !stunnel_available() {
        return;
    }
    let pki = Pki::new();
    let ca = Authority::new("mongowire test CA");
    let ca_file = pki.write("ca.pem", &ca.pem());
    let (cert, key) = ca.issue(&["localhost"], None);
    let terminator = start_terminator(
        &pki,
        &upstream,
        &pki.write("s.pem", &cert),
        &pki.write("s.key", &key),
        Some(&ca_file),
    );
    let (client_cert, client_key) = ca.issue(&["client"], None);
    let client_file = pki.write("client.pem", &format!("{client_cert}{client_key}"));

    let without = TlsOptions {
        ca_file: Some(ca_file.clone()),
        ..TlsOptions::default()
    };
    assert!(
        ping("localhost", terminator.port, without).await.is_err(),
        "the terminator requires a certificate"
    );
    let with = TlsOptions {
        ca_file: Some(ca_file),
        certificate_key_file: Some(client_file),
        ..TlsOptions::default()
    };
    ping("localhost", terminator.port, with).await.unwrap();
}

#[test]
fn unreadable_tls_files_are_usage_errors() {
    let missing = TlsOptions {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..TlsOptions::default()
    };
    let error = client_config(&missing).unwrap_err();
    assert!(matches!(error, Error::Usage(_)), "{error}");
    assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    let pki = Pki::new();
    let empty = pki.write("empty.pem", "not a certificate\n");
    let error = client_config(&TlsOptions {
        ca_file: Some(empty),
        ..TlsOptions::default()
    })
    .unwrap_err();
    assert!(error.to_string().contains("no certificate found"), "{error}");
}

#[tokio::test]
async fn tls_options_in_the_connection_string() {
    let Some(upstream) = test_server() else { return };
    if !stunnel_available() {
        return;
    }
    let pki = Pki::new();
    let ca = Authority::new("mongowire test CA");
    let ca_file = pki.write("ca.pem", &ca.pem());
    let good = terminator_with(&pki, &ca, &upstream, &["localhost"], None);
    let old = terminator_with(&pki, &ca, &upstream, &["localhost"], Some((2000, 2001)));
    // The set advertises its plain address, so TLS clients must connect directly.
    let base = |port: u16, extra: &str| {
        format!("mongodb://localhost:{port}/?directConnection=true&serverSelectionTimeoutMS=3000&{extra}")
    };
    let ping = |uri: String| async move {
        let client = crate::driver::Client::connect(&uri).await?;
        client
            .database("admin")
            .run_command(rawdoc! { "ping": 1 })
            .await
            .map(drop)
    };
    let ca_path = ca_file.display().to_string();
    ping(base(good.port, &format!("tls=true&tlsCAFile={ca_path}")))
        .await
        .unwrap();
    let error = ping(base(old.port, &format!("tls=true&tlsCAFile={ca_path}")))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("certificate expired"), "{error}");
    ping(base(old.port, "tls=true&tlsInsecure=true")).await.unwrap();
    let plain = ping(base(good.port, "tls=false")).await.unwrap_err();
    assert!(
        matches!(plain, Error::ServerSelection(_)),
        "plain text to a TLS port never selects: {plain}"
    );
}
