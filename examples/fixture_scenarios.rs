//! The sessions `scripts/record-fixtures` records into `protocol-fixtures/`: each scenario runs
//! its watcher (or client) through a `mongowire record` proxy and its writers straight to the
//! server, so a fixture holds only the traffic under test.
//!
//! ```sh
//! cargo run --example fixture_scenarios -- SCENARIO --proxy URI --direct URI
//! ```

use std::time::Duration;

use bson::{RawDocumentBuf, rawdoc};
use mongowire::Error;
use mongowire::driver::{ChangeStream, Client, Collection, Database};
use mongowire::protocol::change_stream::ChangeStreamOptions;
use mongowire::protocol::crud::UpdateModifications;

fn arg(name: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| panic!("{name} URI"))
}

async fn next(stream: &mut ChangeStream) -> Result<(), Error> {
    match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
        Ok(Some(event)) => event.map(drop),
        Ok(None) => Err(Error::usage("the stream closed early")),
        Err(_) => Err(Error::usage("no event within 30 s")),
    }
}

async fn events(stream: &mut ChangeStream, n: usize) -> Result<(), Error> {
    for _ in 0..n {
        next(stream).await?;
    }
    Ok(())
}

/// The scenario's database, dropped first so every recording starts the same way.
async fn fresh(direct: &Client, name: &str) -> Result<Database, Error> {
    let db = direct.database(&format!("fixtures_{}", name.replace('-', "_")));
    db.drop().await?;
    Ok(db)
}

async fn seeded(db: &Database, coll: &str) -> Result<Collection, Error> {
    let coll = db.collection(coll);
    coll.insert_one(rawdoc! { "_id": "seed" }).await?;
    Ok(coll)
}

fn watcher_collection(watcher: &Client, db: &Database, coll: &str) -> Collection {
    watcher.database(db.name()).collection(coll)
}

async fn fail_point(direct: &Client, app: &str, data: RawDocumentBuf) -> Result<(), Error> {
    let mut data = data;
    data.append(bson::raw::cstr!("appName"), app);
    let command = rawdoc! { "configureFailPoint": "failCommand", "mode": { "times": 1 }, "data": data };
    direct.database("admin").run_command(command).await.map(drop)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let scenario = std::env::args().nth(1).expect("a scenario name");
    let proxy = arg("--proxy");
    let direct = Client::connect(&arg("--direct")).await?;
    let app = format!("fixture-{scenario}");
    let with = |extra: &str| format!("{proxy}&appName={app}{extra}");
    let watcher = match scenario.as_str() {
        "cs-snappy" | "cs-zlib" | "cs-zstd" => {
            Client::connect(&with(&format!("&compressors={}", &scenario[3..]))).await?
        }
        "cs-large-batch" => Client::connect(&with("&compressors=zstd")).await?,
        _ => Client::connect(&with("")).await?,
    };
    let db = fresh(&direct, &scenario).await?;
    let quick = || ChangeStreamOptions {
        max_await_time: Some(Duration::from_millis(200)),
        ..ChangeStreamOptions::default()
    };

    match scenario.as_str() {
        "cs-collection" | "cs-snappy" | "cs-zlib" | "cs-zstd" => {
            let coll = seeded(&db, "c").await?;
            let mut stream = watcher_collection(&watcher, &db, "c").watch([], quick()).await?;
            coll.insert_many((0..3).map(|i| rawdoc! { "_id": i, "n": i })).await?;
            coll.update_one(
                rawdoc! { "_id": 0 },
                UpdateModifications::Document(rawdoc! { "$set": { "n": 10 } }),
            )
            .await?;
            coll.replace_one(rawdoc! { "_id": 1 }, rawdoc! { "n": 11 }, false)
                .await?;
            coll.delete_one(rawdoc! { "_id": 2 }).await?;
            events(&mut stream, 6).await?;
            stream.close().await;
        }
        "cs-database" => {
            seeded(&db, "a").await?;
            let mut stream = watcher.database(db.name()).watch([], quick()).await?;
            db.collection("a").insert_one(rawdoc! { "_id": 1 }).await?;
            db.collection("b").insert_one(rawdoc! { "_id": 2 }).await?;
            events(&mut stream, 2).await?;
            stream.close().await;
        }
        "cs-cluster" => {
            seeded(&db, "a").await?;
            let other = fresh(&direct, "cs-cluster-other").await?;
            let ours = rawdoc! { "$match": { "ns.db": { "$in": [db.name(), other.name()] } } };
            let mut stream = watcher.watch([ours], quick()).await?;
            db.collection("a").insert_one(rawdoc! { "_id": 1 }).await?;
            other.collection("x").insert_one(rawdoc! { "_id": 2 }).await?;
            events(&mut stream, 2).await?;
            stream.close().await;
            other.drop().await?;
        }
        "cs-operation-types" => {
            seeded(&db, "seed").await?;
            let options = ChangeStreamOptions {
                show_expanded_events: Some(true),
                ..quick()
            };
            let mut stream = watcher_collection(&watcher, &db, "ops").watch([], options).await?;
            db.create_collection("ops", None).await?;
            let ops = db.collection("ops");
            ops.insert_one(rawdoc! { "_id": 1, "a": [1, 2, 3] }).await?;
            ops.update_one(
                rawdoc! { "_id": 1 },
                UpdateModifications::Document(rawdoc! { "$set": { "a": [1] }, "$unset": { "b": 1 } }),
            )
            .await?;
            ops.replace_one(rawdoc! { "_id": 1 }, rawdoc! { "r": true }, false)
                .await?;
            ops.delete_one(rawdoc! { "_id": 1 }).await?;
            db.run_command(rawdoc! { "createIndexes": "ops", "indexes": [{ "key": { "r": 1 }, "name": "r_1" }] })
                .await?;
            db.run_command(rawdoc! { "dropIndexes": "ops", "index": "r_1" }).await?;
            db.run_command(rawdoc! { "collMod": "ops", "validator": { "r": { "$exists": true } } })
                .await?;
            let to = format!("{}.renamed", db.name());
            let from = format!("{}.ops", db.name());
            direct
                .database("admin")
                .run_command(rawdoc! { "renameCollection": from, "to": to })
                .await?;
            // create, insert, update, replace, delete, createIndexes, dropIndexes, modify, rename, invalidate
            events(&mut stream, 10).await?;
        }
        "cs-drop-database" => {
            seeded(&db, "a").await?;
            let mut stream = watcher.database(db.name()).watch([], quick()).await?;
            db.drop().await?;
            // drop, dropDatabase, invalidate
            events(&mut stream, 3).await?;
        }
        "cs-resume-cursor-not-found" => {
            let coll = seeded(&db, "c").await?;
            let mut stream = watcher_collection(&watcher, &db, "c").watch([], quick()).await?;
            coll.insert_many([rawdoc! { "_id": 1 }, rawdoc! { "_id": 2 }]).await?;
            events(&mut stream, 2).await?;
            // Kill every cursor on the collection from outside: the next getMore meets CursorNotFound.
            let cursors = direct
                .database("admin")
                .run_command(rawdoc! {
                    "aggregate": 1, "cursor": {},
                    "pipeline": [{ "$currentOp": { "idleCursors": true } }, { "$match": { "type": "idleCursor", "ns": format!("{}.c", db.name()) } }],
                })
                .await?;
            for op in cursors
                .get_document("cursor")
                .and_then(|c| c.get_array("firstBatch"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Some(id) = op
                    .as_document()
                    .and_then(|o| o.get_document("cursor").ok())
                    .and_then(|c| c.get_i64("cursorId").ok())
                {
                    db.run_command(rawdoc! { "killCursors": "c", "cursors": [id] }).await?;
                }
            }
            coll.insert_many([rawdoc! { "_id": 3 }, rawdoc! { "_id": 4 }]).await?;
            events(&mut stream, 2).await?;
            stream.close().await;
        }
        "cs-start-at-operation-time" => {
            let coll = seeded(&db, "c").await?;
            let at = db
                .run_command(rawdoc! { "ping": 1 })
                .await?
                .get_timestamp("operationTime")
                .map_err(|e| Error::usage(e.to_string()))?;
            coll.insert_many((1..=3).map(|i| rawdoc! { "_id": i })).await?;
            let options = ChangeStreamOptions {
                start_at_operation_time: Some(at),
                ..quick()
            };
            let ours = rawdoc! { "$match": { "documentKey._id": { "$type": "number" } } };
            let mut stream = watcher_collection(&watcher, &db, "c").watch([ours], options).await?;
            events(&mut stream, 3).await?;
            stream.close().await;
        }
        "cs-empty-batches" => {
            let coll = seeded(&db, "c").await?;
            let options = ChangeStreamOptions {
                max_await_time: Some(Duration::from_millis(100)),
                ..ChangeStreamOptions::default()
            };
            let mut stream = watcher_collection(&watcher, &db, "c").watch([], options).await?;
            for _ in 0..3 {
                if stream.try_next().await?.is_some() {
                    return Err(Error::usage("an event where an empty batch was expected"));
                }
            }
            coll.insert_one(rawdoc! { "_id": 1 }).await?;
            events(&mut stream, 1).await?;
            stream.close().await;
        }
        "cs-error-labels" | "cs-close-connection" => {
            let coll = seeded(&db, "c").await?;
            let mut stream = watcher_collection(&watcher, &db, "c").watch([], quick()).await?;
            coll.insert_one(rawdoc! { "_id": 1 }).await?;
            events(&mut stream, 1).await?;
            let failure = if scenario == "cs-error-labels" {
                rawdoc! { "failCommands": ["getMore"], "errorCode": 91, "errorLabels": ["ResumableChangeStreamError"] }
            } else {
                rawdoc! { "failCommands": ["getMore"], "closeConnection": true }
            };
            fail_point(&direct, &app, failure).await?;
            coll.insert_one(rawdoc! { "_id": 2 }).await?;
            events(&mut stream, 1).await?;
            stream.close().await;
        }
        "cs-large-batch" => {
            let coll = seeded(&db, "c").await?;
            let mut stream = watcher_collection(&watcher, &db, "c").watch([], quick()).await?;
            // Fifteen 1 MB documents: one getMore batch close to the 16 MB reply limit.
            let megabyte = "m".repeat(1024 * 1024);
            coll.insert_many((0..15).map(|i| rawdoc! { "_id": i, "pad": megabyte.as_str() }))
                .await?;
            events(&mut stream, 15).await?;
            stream.close().await;
        }
        "scram-sha-256" => {
            watcher.database("admin").run_command(rawdoc! { "ping": 1 }).await?;
        }
        other => return Err(Error::usage(format!("unknown scenario {other}"))),
    }
    watcher.shutdown().await;
    if scenario != "cs-drop-database" && scenario != "scram-sha-256" {
        db.drop().await?;
    }
    Ok(())
}
