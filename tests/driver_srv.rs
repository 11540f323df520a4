//! `mongodb+srv://` end to end: a real DNS server (dnsmasq) serves SRV, TXT and address records
//! for `*.mongowire.internal`, and the client reaches the real single-node replica set through
//! them.

mod common;

use bson::rawdoc;
use mongowire::driver::{Client, ClientOptions};
use mongowire::{Error, TransportErrorKind};

fn options(uri: &str, dns: &common::dns::DnsServer) -> ClientOptions {
    let mut options = ClientOptions::parse(uri).unwrap();
    options.dns_server = Some(dns.address);
    options
}

#[tokio::test]
async fn srv_and_txt_records_lead_to_the_replica_set() {
    let Some(_) = common::single() else { return };
    let records = [
        "--srv-host=_mongodb._tcp.cluster.mongowire.internal,db1.cluster.mongowire.internal,27100".to_owned(),
        "--host-record=db1.cluster.mongowire.internal,127.0.0.1".to_owned(),
        "--txt-record=cluster.mongowire.internal,replicaSet=mw1".to_owned(),
    ];
    let Some(dns) = common::dns::dnsmasq(&records) else {
        return;
    };
    let uri = "mongodb+srv://cluster.mongowire.internal/?tls=false&serverSelectionTimeoutMS=10000";
    let client = Client::with_options(options(uri, &dns)).await.unwrap();
    let reply = client
        .database("admin")
        .run_command(rawdoc! { "ping": 1 })
        .await
        .unwrap();
    assert_eq!(reply.get_f64("ok").unwrap(), 1.0);
    let topology = client.topology();
    assert_eq!(topology.set_name(), Some("mw1"), "the TXT record's replicaSet applied");
    // The seed from DNS is replaced by the member's own name for itself.
    assert!(
        topology.servers().keys().any(|a| a.to_string() == "127.0.0.1:27100"),
        "{}",
        topology.describe()
    );
    client.shutdown().await;
}

#[tokio::test]
async fn a_missing_srv_record_is_a_dns_error_naming_the_query() {
    let Some(dns) = common::dns::dnsmasq(&[]) else { return };
    let uri = "mongodb+srv://absent.mongowire.internal/";
    let error = Client::with_options(options(uri, &dns)).await.unwrap_err();
    match &error {
        Error::Transport(transport) => assert_eq!(transport.kind, TransportErrorKind::Dns, "{error}"),
        other => panic!("expected a DNS error, got {other}"),
    }
    assert!(
        error
            .to_string()
            .contains("SRV lookup of _mongodb._tcp.absent.mongowire.internal"),
        "{error}"
    );
}

#[tokio::test]
async fn a_target_outside_the_domain_is_refused() {
    let records = ["--srv-host=_mongodb._tcp.evil.mongowire.internal,db.elsewhere.example,27017".to_owned()];
    let Some(dns) = common::dns::dnsmasq(&records) else {
        return;
    };
    let error = Client::with_options(options("mongodb+srv://evil.mongowire.internal/", &dns))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Usage(_)), "{error}");
    assert!(error.to_string().contains("db.elsewhere.example"), "{error}");
}

#[tokio::test]
async fn txt_records_may_only_set_allowed_options() {
    let records = [
        "--srv-host=_mongodb._tcp.bad.mongowire.internal,db1.bad.mongowire.internal,27100".to_owned(),
        "--txt-record=bad.mongowire.internal,ssl=false".to_owned(),
    ];
    let Some(dns) = common::dns::dnsmasq(&records) else {
        return;
    };
    let error = Client::with_options(options("mongodb+srv://bad.mongowire.internal/", &dns))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Usage(_)), "{error}");
    assert!(error.to_string().contains("ssl"), "{error}");
}
