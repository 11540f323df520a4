//! A change stream across failovers of the real 3-member replica set: a stepDown, then the
//! primary's mongod killed with SIGKILL and restarted, while a writer inserts numbered documents
//! with `w: majority`. The stream must deliver every number exactly once, in order. One test, in a
//! binary of its own, because it disrupts the set the other tests use; it waits for the set to
//! settle before it ends.
#![allow(clippy::indexing_slicing)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use bson::rawdoc;
use mongowire::driver::Client;
use mongowire::protocol::change_stream::ChangeStreamOptions;
use mongowire::protocol::sdam::ServerType;

const WRITES: i32 = 1500;

async fn wait_for(client: &Client, what: &str, condition: impl Fn(&Client) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !condition(client) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {}",
            client.topology().describe()
        );
        let _ = client.database("admin").run_command(rawdoc! { "ping": 1 }).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Restarts a killed member when dropped, even if the test panics, so the set is whole again.
struct Restart(u16);

impl Drop for Restart {
    fn drop(&mut self) {
        common::mongod_script(&["restart", &self.0.to_string()]);
    }
}

fn all_up(client: &Client) -> bool {
    let topology = client.topology();
    topology.primary().is_some()
        && topology
            .servers()
            .values()
            .filter(|s| s.server_type == ServerType::RsSecondary)
            .count()
            == 2
}

#[tokio::test]
async fn every_event_exactly_once_across_step_down_and_a_killed_primary() {
    let Some(uri) = common::rs3() else { return };
    let options = "heartbeatFrequencyMS=500&serverSelectionTimeoutMS=60000";
    let (client, log) = common::logged_client(&common::with_options(&uri, options)).await;
    wait_for(&client, "a settled set", all_up).await;
    let writer_client = Client::connect(&common::with_options(&uri, &format!("{options}&w=majority")))
        .await
        .unwrap();
    let db_name = common::unique_db("cs_failover");
    let coll = client.database(&db_name).collection("numbers");
    coll.insert_one(rawdoc! { "_id": -1 }).await.unwrap();
    let mut stream = coll.watch([], ChangeStreamOptions::default()).await.unwrap();

    let written = Arc::new(AtomicI32::new(0));
    let writer = {
        let coll = writer_client.database(&db_name).collection("numbers");
        let written = written.clone();
        tokio::spawn(async move {
            for i in 0..WRITES {
                coll.insert_one(rawdoc! { "_id": i })
                    .await
                    .unwrap_or_else(|e| panic!("write {i}: {e}"));
                written.store(i + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let mut seen = Vec::new();
    let mut stepped_down = false;
    let mut killed = None;
    while seen.len() < usize::try_from(WRITES).unwrap() {
        let event = tokio::time::timeout(Duration::from_secs(120), stream.next())
            .await
            .expect("events keep coming")
            .expect("the stream stays open")
            .unwrap_or_else(|e| panic!("the stream failed instead of resuming: {e}"));
        seen.push(event.document_key().unwrap().get_i32("_id").unwrap());
        if seen.len() == 300 && !stepped_down {
            let result = client
                .database("admin")
                .run_command(rawdoc! { "replSetStepDown": 30, "secondaryCatchUpPeriodSecs": 10 })
                .await;
            assert!(
                result.is_ok() || result.as_ref().is_err_and(|e| e.is_network_error()),
                "{result:?}"
            );
            stepped_down = true;
        }
        if seen.len() == 800 && killed.is_none() {
            // Kill the member the stream's cursor lives on (a step-down leaves cursors alone).
            let port = log.addresses("getMore").last().expect("a getMore").port();
            common::mongod_script(&["kill", &port.to_string()]);
            killed = Some(Restart(port));
        }
    }
    writer.await.unwrap();
    assert_eq!(seen, (0..WRITES).collect::<Vec<_>>(), "every write, once, in order");
    let resumes = log.commands("aggregate").len() - 1;
    assert!(
        resumes >= 1,
        "the stream resumed after its server was killed ({resumes} resumes)"
    );
    stream.close().await;

    drop(killed.expect("a member was killed"));
    // 27101 has the highest priority and takes the primary role back once it has caught up:
    // wait for that, so the next tests on this set do not meet an election.
    wait_for(&client, "the set back in its stable configuration", |c| {
        all_up(c) && c.topology().primary().is_some_and(|p| p.address.port() == 27101)
    })
    .await;
    client.database(&db_name).drop().await.unwrap();
    client.shutdown().await;
    writer_client.shutdown().await;
}
