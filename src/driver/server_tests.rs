//! Connection-level tests against the real server started by `scripts/mongod` (its URIs come
//! from `scripts/mongod env`). Each test skips with a notice when the server is not configured,
//! unless `MONGOWIRE_REQUIRE_SERVER=1`, as in CI, where a missing server is a failure.

use std::time::Duration;

use bson::{RawDocument, rawdoc};

use super::connection::Connection;
use super::handshake::{ConnectionOptions, detect_environment, open};
use crate::protocol::ServerAddress;
use crate::protocol::handshake::HandshakeRequest;
use crate::wire::{Compressor, OpMsg};

/// The first host of `$MONGOWIRE_TEST_URI`.
pub(crate) fn test_server() -> Option<ServerAddress> {
    match std::env::var("MONGOWIRE_TEST_URI") {
        Ok(uri) => {
            let hosts = uri
                .trim_start_matches("mongodb://")
                .split(['/', '?'])
                .next()
                .unwrap_or_default();
            ServerAddress::parse(hosts.split(',').next().unwrap_or_default())
        }
        Err(_) if std::env::var("MONGOWIRE_REQUIRE_SERVER").as_deref() == Ok("1") => {
            panic!("MONGOWIRE_REQUIRE_SERVER=1 but MONGOWIRE_TEST_URI is not set")
        }
        Err(_) => {
            eprintln!("skipped: MONGOWIRE_TEST_URI is not set (scripts/mongod start single)");
            None
        }
    }
}

fn options(compressors: Vec<Compressor>) -> ConnectionOptions {
    ConnectionOptions {
        tls: None,
        connect_timeout: Duration::from_secs(10),
        socket_timeout: Some(Duration::from_secs(30)),
        handshake: HandshakeRequest {
            app_name: Some("mongowire-tests".into()),
            compressors,
            environment: detect_environment(),
            ..HandshakeRequest::default()
        },
        zlib_level: None,
        credential: None,
        scram_cache: std::sync::Arc::default(),
        resolver: None,
    }
}

async fn run(connection: &mut Connection, command: bson::RawDocumentBuf) -> bson::RawDocumentBuf {
    connection
        .command(&OpMsg::new(command), None)
        .await
        .unwrap()
        .body()
        .to_owned()
}

fn compression_counter(status: &RawDocument, compressor: Compressor) -> i64 {
    let stats = status
        .get_document("network")
        .and_then(|n| n.get_document("compression"))
        .and_then(|c| c.get_document(compressor.name()))
        .and_then(|c| c.get_document("decompressor"))
        .unwrap();
    crate::protocol::reply::get_number(stats, "bytesIn").unwrap()
}

#[tokio::test]
async fn handshake_reports_the_server_and_ping_succeeds() {
    let Some(address) = test_server() else { return };
    let mut connection = open(&address, &options(vec![])).await.unwrap();
    assert!(connection.max_wire_version() >= 21, "MongoDB 7.0 is wire version 21");
    let hello = connection.hello.clone().unwrap();
    assert_eq!(hello.max_message_size, 48_000_000);
    assert!(hello.hello_ok);
    assert!(hello.connection_id.is_some());
    let reply = run(&mut connection, rawdoc! { "ping": 1, "$db": "admin" }).await;
    assert!(crate::protocol::reply::is_ok(&reply));

    // The server sees our client metadata on this connection.
    let current = run(
        &mut connection,
        rawdoc! { "currentOp": 1, "$ownOps": true, "$all": true, "$db": "admin" },
    )
    .await;
    let ops = current.get_array("inprog").unwrap();
    let ours = ops
        .into_iter()
        .filter_map(|op| op.ok()?.as_document())
        .find(|op| op.get_str("appName").ok() == Some("mongowire-tests"))
        .expect("our connection shows up with its appName");
    let driver = ours
        .get_document("clientMetadata")
        .unwrap()
        .get_document("driver")
        .unwrap();
    assert_eq!(driver.get_str("name").unwrap(), "mongowire");
}

#[tokio::test]
async fn each_compressor_is_negotiated_and_used() {
    let Some(address) = test_server() else { return };
    for compressor in [Compressor::Snappy, Compressor::Zlib, Compressor::Zstd] {
        let mut observer = open(&address, &options(vec![])).await.unwrap();
        let status = run(&mut observer, rawdoc! { "serverStatus": 1, "$db": "admin" }).await;
        let before = compression_counter(&status, compressor);

        let mut connection = open(&address, &options(vec![compressor])).await.unwrap();
        assert_eq!(connection.hello.as_ref().unwrap().compressor, Some(compressor));
        let big = "x".repeat(50_000);
        for _ in 0..3 {
            let find = rawdoc! { "find": "compression", "filter": { "pad": big.as_str() }, "$db": "mongowire_test" };
            let reply = run(&mut connection, find).await;
            assert!(crate::protocol::reply::is_ok(&reply));
        }
        let status = run(&mut observer, rawdoc! { "serverStatus": 1, "$db": "admin" }).await;
        let after = compression_counter(&status, compressor);
        assert!(
            after > before,
            "{compressor}: the server decompressed nothing ({before} -> {after})"
        );
    }
}

#[tokio::test]
async fn a_server_error_names_code_and_server() {
    let Some(address) = test_server() else { return };
    let mut connection = open(&address, &options(vec![])).await.unwrap();
    let error = connection
        .command(&OpMsg::new(rawdoc! { "noSuchCommand": 1, "$db": "admin" }), None)
        .await
        .unwrap_err();
    let server = error.as_server_error().unwrap();
    assert_eq!((server.code, server.code_name.as_str()), (59, "CommandNotFound"));
    assert_eq!(server.address.as_ref(), Some(&address));
    assert!(!connection.is_broken(), "a server error leaves the connection usable");
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error_naming_the_address() {
    // Port 1 on loopback: nothing listens there.
    let address = ServerAddress::new("127.0.0.1", 1);
    let error = open(&address, &options(vec![])).await.unwrap_err();
    assert!(error.is_network_error());
    assert!(error.to_string().starts_with("127.0.0.1:1: connect:"), "{error}");
}

#[tokio::test]
async fn a_dropped_exchange_leaves_the_connection_unusable() {
    let Some(address) = test_server() else { return };
    let mut connection = open(&address, &options(vec![])).await.unwrap();
    // A command that takes a second on the server, abandoned after 50 ms.
    let slow = OpMsg::new(rawdoc! { "sleep": 1, "millis": 1000, "lock": "none", "$db": "admin" });
    let abandoned = tokio::time::timeout(Duration::from_millis(50), connection.round_trip(&slow, None)).await;
    assert!(abandoned.is_err(), "the exchange was cut short");
    assert!(connection.is_broken(), "its reply is still in flight");
}
