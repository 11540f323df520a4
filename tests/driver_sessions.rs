//! Explicit and implicit sessions against the real server: the lsid reaches the server's session
//! cache, operationTime advances, and shutdown ends pooled sessions with endSessions.

mod common;

use bson::{RawDocument, rawdoc};
use mongowire::driver::Client;

/// Whether the server holds this session in its local cache.
async fn in_local_cache(observer: &Client, lsid: &RawDocument) -> bool {
    let id = lsid.get_binary("id").unwrap().bytes.to_vec();
    let pipeline =
        rawdoc! { "aggregate": 1, "pipeline": [{ "$listLocalSessions": { "allUsers": true } }], "cursor": {} };
    let reply = observer.database("admin").run_command(pipeline).await.unwrap();
    let batch = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    batch.into_iter().filter_map(|s| s.ok()?.as_document()).any(|session| {
        session
            .get_document("_id")
            .and_then(|key| key.get_binary("id"))
            .is_ok_and(|b| b.bytes == id.as_slice())
    })
}

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

    assert!(in_local_cache(&observer, &lsid).await, "the server saw our lsid");
    assert_eq!(persisted(&observer, &lsid).await, 1);

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
