//! Nothing leaks: after 1,000 change streams opened and closed, or dropped without a close, the
//! server's open cursors (`metrics.cursor.open.total`) and connections (`connections.current`)
//! and this process's open file descriptors and tokio tasks return to where they were. One test
//! in a binary of its own, so no other test opens descriptors or connections meanwhile.

mod common;

use std::time::{Duration, Instant};

use mongowire::driver::Client;
use mongowire::protocol::change_stream::ChangeStreamOptions;

const STREAMS: usize = 1_000;
/// Streams open at once.
const CONCURRENT: usize = 50;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

struct Counts {
    cursors: i64,
    connections: i64,
    fds: usize,
    tasks: usize,
}

async fn counts(observer: &Client) -> Counts {
    let status = common::server_status(observer).await;
    Counts {
        cursors: common::number_at(&status, "metrics.cursor.open.total"),
        connections: common::number_at(&status, "connections.current"),
        fds: open_fds(),
        tasks: tokio::runtime::Handle::current().metrics().num_alive_tasks(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_streams_closed_or_dropped_leave_nothing_behind() {
    let Some(uri) = common::single() else { return };
    let observer = Client::connect(&uri).await.unwrap();
    let before = counts(&observer).await;
    let started = Instant::now();

    let client = Client::connect(&uri).await.unwrap();
    let coll = client.database(&common::unique_db("leaks")).collection("c");
    let mut peak_cursors = 0;
    for round in 0..STREAMS / CONCURRENT {
        let mut streams = Vec::new();
        for _ in 0..CONCURRENT {
            streams.push(coll.watch([], ChangeStreamOptions::default()).await.unwrap());
        }
        let open = counts(&observer).await;
        peak_cursors = peak_cursors.max(open.cursors - before.cursors);
        // Half the rounds close their streams; the other half drop them, which kills the
        // cursors in the background.
        if round % 2 == 0 {
            for stream in streams {
                stream.close().await;
            }
        } else {
            drop(streams);
        }
    }
    assert!(
        peak_cursors >= i64::try_from(CONCURRENT).unwrap(),
        "the streams' cursors were open on the server ({peak_cursors})"
    );
    let cursors_back = common::eventually(Duration::from_secs(30), || async {
        counts(&observer).await.cursors == before.cursors
    })
    .await;
    let after_streams = counts(&observer).await;
    assert!(
        cursors_back,
        "open cursors: {} before, {} after",
        before.cursors, after_streams.cursors
    );

    client.shutdown().await;
    let back = common::eventually(Duration::from_secs(30), || async {
        let now = counts(&observer).await;
        now.connections == before.connections && now.fds == before.fds && now.tasks == before.tasks
    })
    .await;
    let after = counts(&observer).await;
    eprintln!(
        "{STREAMS} streams in {:?}: cursors {} -> peak +{peak_cursors} -> {}, connections {} -> {}, fds {} -> {}, tasks {} -> {}",
        started.elapsed(),
        before.cursors,
        after.cursors,
        before.connections,
        after.connections,
        before.fds,
        after.fds,
        before.tasks,
        after.tasks
    );
    assert!(back, "connections, descriptors and tasks return to where they were");
    observer.shutdown().await;
}
