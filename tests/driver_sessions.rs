//! Explicit and implicit sessions against the real server: the lsid reaches the server's session
//! cache, operationTime advances, and shutdown ends pooled sessions with endSessions.

mod common;

use bson::{RawDocument, rawdoc};
use mongowire::driver::Client;

/// Flushes the server's session cache to `config.system.sessions` and counts this session there.
async fn persisted(observer: &Client, lsid: &RawDocument) -> i32 {
    observer
        .database("admin")
        .run_command(rawdoc! { "refreshLogicalSessionCacheNow": 1 })
        .await
        .unwrap();
    let id = bson::Binary {
        subtype: bson::spec::BinarySubtype::Uuid,
        bytes: lsid.get_binary("id").unwrap().bytes.to_vec(),
    };
    let count = rawdoc! { "count": "system.sessions", "query": { "_id.id": id } };
    observer
        .database("config")
        .run_command(count)
        .await
        .unwrap()
        .get_i32("n")
        .unwrap()
}

#[tokio::test]
async fn explicit_session_is_used_advances_operation_time_and_ends_on_shutdown() {
    let Some(uri) = common::single() else { return };
    let observer = Client::connect(&uri).await.unwrap();
    let client = Client::connect(&uri).await.unwrap();
    let db_name = common::unique_db("sessions");
    let coll = client.database(&db_name).collection("c");

    let mut session = client.start_session().await.unwrap();
    let lsid = session.id().unwrap().to_owned();
    assert_eq!(session.operation_time(), None);
    coll.insert_one_in(&mut session, rawdoc! { "_id": 1 }).await.unwrap();
    let first = session.operation_time().expect("a reply's operationTime");
    coll.insert_many_in(&mut session, [rawdoc! { "_id": 2 }, rawdoc! { "_id": 3 }])
        .await
        .unwrap();
    let second = session.operation_time().unwrap();
    assert!(second > first, "{second:?} > {first:?}");
    let count = client
        .database(&db_name)
        .run_command_in(&mut session, rawdoc! { "count": "c" })
        .await
        .unwrap();
    assert_eq!(count.get_i32("n").unwrap(), 3);

    // The server's own periodic refresh moves sessions out of its local cache at any moment (CI
    // once caught it between our last command and `$listLocalSessions`), so the deterministic
    // witness that the server saw our lsid is the persisted record after a forced refresh.
    assert_eq!(persisted(&observer, &lsid).await, 1, "the server saw our lsid");

    session.end();
    client.database(&db_name).drop().await.unwrap();
    client.shutdown().await;
    assert_eq!(
        persisted(&observer, &lsid).await,
        0,
        "endSessions removed it on the server"
    );
    observer.shutdown().await;
}

#[tokio::test]
async fn an_ended_sessions_server_session_is_reused() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let session = client.start_session().await.unwrap();
    let first = session.id().unwrap().to_owned();
    session.end();
    // The ended session's server session is pooled and handed to the next session.
    let mut again = client.start_session().await.unwrap();
    assert_eq!(again.id().unwrap(), first.as_ref(), "server sessions are reused");
    client
        .database("admin")
        .run_command_in(&mut again, rawdoc! { "ping": 1 })
        .await
        .unwrap();
    client.shutdown().await;
}
