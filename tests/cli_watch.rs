//! `mongowire watch` and `mongowire ping` as a user runs them, against the real replica sets:
//! every flag (checked in the output and, for what only the server sees, in the traffic recorded
//! on the way), checkpoints surviving SIGKILL at random moments, signals, a closed pipe, and the
//! one-line failure messages.
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod common;

use common::cli::{self, RUN_LIMIT, Watcher, mongowire, now};

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use bson::{RawDocument, RawDocumentBuf, rawdoc};
use mongowire::capture::{Direction, Fixture, FixtureEvent};
use mongowire::driver::{Client, Database};
use mongowire::wire::{Body, DEFAULT_MAX_MESSAGE_SIZE, Message};
use rand::SeedableRng;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

struct Run {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8(self.stdout.clone())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

/// Runs `mongowire args...` to the end, within [`RUN_LIMIT`].
async fn run(args: &[&str]) -> Run {
    let output = tokio::time::timeout(RUN_LIMIT, mongowire(args).output())
        .await
        .unwrap_or_else(|_| panic!("mongowire {args:?} did not finish within {RUN_LIMIT:?}"))
        .unwrap();
    Run {
        status: output.status,
        stdout: output.stdout,
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// `mongowire watch --uri URI --ns NS --start-at-operation-time START` and `extra`, to the end.
async fn watch_from(uri: &str, ns: &str, start: &str, extra: &[&str]) -> Run {
    let mut args = vec!["watch", "--uri", uri, "--ns", ns, "--start-at-operation-time", start];
    args.extend_from_slice(extra);
    run(&args).await
}

async fn insert_numbers(db: &Database, collection: &str, numbers: std::ops::RangeInclusive<i32>) {
    db.collection(collection)
        .insert_many(numbers.map(|n| rawdoc! { "_id": n, "n": n }))
        .await
        .unwrap();
}

/// The `_id` of each event's document, from `documentKey`.
fn ids(lines: &[Value]) -> Vec<i64> {
    lines
        .iter()
        .map(|line| line["documentKey"]["_id"].as_i64().unwrap())
        .collect()
}

/// The commands named `name` that the client sent in a recorded session.
fn recorded_commands(fixture: &Fixture, name: &str) -> Vec<RawDocumentBuf> {
    fixture
        .entries
        .iter()
        .filter(|entry| entry.dir == Direction::ClientToServer)
        .filter_map(|entry| match &entry.event {
            FixtureEvent::Message(bytes) => Message::decode(bytes.clone(), DEFAULT_MAX_MESSAGE_SIZE).ok(),
            _ => None,
        })
        .filter_map(|message| match message.body() {
            Body::Msg(msg) => Some(msg.body().to_owned()),
            _ => None,
        })
        .filter(|command| {
            command
                .iter()
                .next()
                .and_then(Result::ok)
                .is_some_and(|(key, _)| key == name)
        })
        .collect()
}

#[tokio::test]
async fn prints_each_event_as_relaxed_json_and_stops_at_the_limit() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cli_relaxed"));
    let start = now(&client).await;
    insert_numbers(&db, "c", 1..=5).await;
    let ns = format!("{}.c", db.name());

    let run = watch_from(&uri, &ns, &start, &["--limit", "3"]).await;
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(run.stderr, "", "quiet when stderr is not a terminal");
    let lines = run.lines();
    assert_eq!(ids(&lines), [1, 2, 3]);
    assert_eq!(lines[0]["operationType"], "insert");
    assert_eq!(lines[0]["fullDocument"], serde_json::json!({ "_id": 1, "n": 1 }));
    assert!(lines[0]["_id"]["_data"].is_string(), "the resume token is printed");
    assert!(lines[0]["clusterTime"]["$timestamp"].is_object());
}

#[tokio::test]
async fn canonical_and_raw_formats() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cli_formats"));
    let start = now(&client).await;
    insert_numbers(&db, "c", 1..=2).await;
    let ns = format!("{}.c", db.name());
    let base = [
        "watch",
        "--uri",
        &uri,
        "--ns",
        &ns,
        "--start-at-operation-time",
        &start,
        "--limit",
        "2",
    ];

    let canonical = run(&[&base[..], &["--format", "canonical"]].concat()).await;
    assert!(canonical.status.success(), "{}", canonical.stderr);
    let lines = canonical.lines();
    assert_eq!(lines[1]["fullDocument"]["n"], serde_json::json!({ "$numberInt": "2" }));

    let raw = run(&[&base[..], &["--format", "raw"]].concat()).await;
    assert!(raw.status.success(), "{}", raw.stderr);
    let mut rest = raw.stdout.as_slice();
    let mut numbers = Vec::new();
    while !rest.is_empty() {
        let length = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        let event = RawDocument::from_bytes(&rest[..length]).unwrap();
        numbers.push(event.get_document("fullDocument").unwrap().get_i32("n").unwrap());
        rest = &rest[length..];
    }
    assert_eq!(numbers, [1, 2], "BSON documents back to back");
}

#[tokio::test]
async fn database_and_cluster_streams() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cli_scopes"));
    let start = now(&client).await;
    insert_numbers(&db, "a", 1..=1).await;
    insert_numbers(&db, "b", 2..=2).await;

    let whole_db = run(&[
        "watch",
        "--uri",
        &uri,
        "--ns",
        db.name(),
        "--start-at-operation-time",
        &start,
        "--limit",
        "2",
    ])
    .await;
    assert!(whole_db.status.success(), "{}", whole_db.stderr);
    let colls: Vec<Value> = whole_db.lines().iter().map(|l| l["ns"]["coll"].clone()).collect();
    assert_eq!(colls, ["a", "b"]);

    // No --ns: the whole deployment; the pipeline keeps this test's database.
    let only_this_db = format!(r#"[{{"$match": {{"ns.db": "{}"}}}}]"#, db.name());
    let cluster = run(&[
        "watch",
        "--uri",
        &uri,
        "--start-at-operation-time",
        &start,
        "--pipeline",
        &only_this_db,
        "--limit",
        "2",
    ])
    .await;
    assert!(cluster.status.success(), "{}", cluster.stderr);
    assert_eq!(ids(&cluster.lines()), [1, 2]);
}

#[tokio::test]
async fn pipeline_full_document_and_pre_images() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cli_images"));
    db.create_collection(
        "c",
        Some(&rawdoc! { "changeStreamPreAndPostImages": { "enabled": true } }),
    )
    .await
    .unwrap();
    let start = now(&client).await;
    insert_numbers(&db, "c", 1..=1).await;
    db.collection("c")
        .update_one(
            rawdoc! { "_id": 1 },
            mongowire::protocol::crud::UpdateModifications::Document(rawdoc! { "$set": { "n": 10 } }),
        )
        .await
        .unwrap();
    let ns = format!("{}.c", db.name());

    let updates = watch_from(
        &uri,
        &ns,
        &start,
        &[
            "--pipeline",
            r#"[{"$match": {"operationType": "update"}}]"#,
            "--full-document",
            "updateLookup",
            "--full-document-before-change",
            "required",
            "--limit",
            "1",
        ],
    )
    .await;
    assert!(updates.status.success(), "{}", updates.stderr);
    let update = &updates.lines()[0];
    assert_eq!(update["operationType"], "update");
    assert_eq!(update["updateDescription"]["updatedFields"]["n"], 10);
    assert_eq!(update["fullDocument"]["n"], 10);
    assert_eq!(update["fullDocumentBeforeChange"]["n"], 1);
}

#[tokio::test]
async fn resume_after_and_start_after_a_printed_token() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cli_tokens"));
    let start = now(&client).await;
    insert_numbers(&db, "c", 1..=4).await;
    let ns = format!("{}.c", db.name());
    let first = watch_from(&uri, &ns, &start, &["--limit", "2"]).await;
    let token = first.lines()[1]["_id"].to_string();

    for flag in ["--resume-after", "--start-after"] {
        let resumed = run(&["watch", "--uri", &uri, "--ns", &ns, flag, &token, "--limit", "2"]).await;
        assert!(resumed.status.success(), "{flag}: {}", resumed.stderr);
        assert_eq!(ids(&resumed.lines()), [3, 4], "{flag}");
    }
}

#[tokio::test]
async fn show_expanded_events() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cli_ddl"));
    let start = now(&client).await;
    db.run_command(rawdoc! { "createIndexes": "c", "indexes": [{ "key": { "n": 1 }, "name": "n_1" }] })
        .await
        .unwrap();
    let ns = format!("{}.c", db.name());
    let run = watch_from(&uri, &ns, &start, &["--show-expanded-events", "--limit", "2"]).await;
    assert!(run.status.success(), "{}", run.stderr);
    let kinds: Vec<Value> = run.lines().iter().map(|l| l["operationType"].clone()).collect();
    assert_eq!(kinds, ["create", "createIndexes"]);
}

/// What only the server sees (batchSize on aggregate and getMore, maxTimeMS on getMore only) is
/// checked in what the watcher sent, recorded by `mongowire::traffic::record` on its way.
#[tokio::test]
async fn batch_size_and_max_await_time_reach_the_server() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cli_wire"));
    let start = now(&client).await;
    insert_numbers(&db, "c", 1..=5).await;
    let ns = format!("{}.c", db.name());

    let (listener, proxy) = mongowire::traffic::bind("127.0.0.1:0").await.unwrap();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("session.jsonl");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let recorder = tokio::spawn(mongowire::traffic::record(
        listener,
        "127.0.0.1:27100".into(),
        std::fs::File::create(&path).unwrap(),
        "watch --batch-size 2 --max-await-time-ms 250".into(),
        async {
            let _ = stopped.await;
        },
    ));
    let through_proxy = format!("mongodb://{proxy}/?directConnection=true");
    let run = run(&[
        "watch",
        "--uri",
        &through_proxy,
        "--ns",
        &ns,
        "--start-at-operation-time",
        &start,
        "--batch-size",
        "2",
        "--max-await-time-ms",
        "250",
        "--limit",
        "5",
    ])
    .await;
    stop.send(()).unwrap();
    recorder.await.unwrap().unwrap();
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(ids(&run.lines()), [1, 2, 3, 4, 5]);

    let fixture = Fixture::read(std::io::BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
    let aggregates = recorded_commands(&fixture, "aggregate");
    assert_eq!(aggregates.len(), 1);
    let aggregate = &aggregates[0];
    assert_eq!(
        aggregate.get_document("cursor").unwrap().get_i64("batchSize").unwrap(),
        2
    );
    assert!(
        aggregate.get("maxTimeMS").unwrap().is_none(),
        "maxAwaitTimeMS goes on getMore only"
    );
    let get_mores = recorded_commands(&fixture, "getMore");
    assert!(get_mores.len() >= 2, "batches of 2 need getMores: {}", get_mores.len());
    for command in get_mores {
        assert_eq!(command.get_i64("batchSize").unwrap(), 2, "{command:?}");
        assert_eq!(command.get_i64("maxTimeMS").unwrap(), 250, "{command:?}");
    }
    assert_eq!(
        recorded_commands(&fixture, "killCursors").len(),
        1,
        "the cursor is killed at the end"
    );
}

#[tokio::test]
async fn split_large_events_prints_an_event_over_16_mb_whole() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cli_split"));
    db.create_collection(
        "big",
        Some(&rawdoc! { "changeStreamPreAndPostImages": { "enabled": true } }),
    )
    .await
    .unwrap();
    let nine_mb = |c: char| c.to_string().repeat(9 * 1024 * 1024);
    db.collection("big")
        .insert_one(rawdoc! { "_id": 1, "blob": nine_mb('a') })
        .await
        .unwrap();
    let start = now(&client).await;
    db.collection("big")
        .replace_one(rawdoc! { "_id": 1 }, rawdoc! { "blob": nine_mb('b') }, false)
        .await
        .unwrap();
    let ns = format!("{}.big", db.name());
    let run = watch_from(
        &uri,
        &ns,
        &start,
        &[
            "--full-document",
            "required",
            "--full-document-before-change",
            "required",
            "--split-large-events",
            "--format",
            "raw",
            "--limit",
            "1",
        ],
    )
    .await;
    assert!(run.status.success(), "{}", run.stderr);
    let event = RawDocument::from_bytes(&run.stdout).expect("exactly one whole event");
    assert!(run.stdout.len() > 18 * 1024 * 1024, "{} bytes", run.stdout.len());
    assert!(event.get("splitEvent").unwrap().is_none(), "reassembled");
    assert_eq!(event.get_str("operationType").unwrap(), "replace");
    assert!(
        event
            .get_document("fullDocumentBeforeChange")
            .unwrap()
            .get_str("blob")
            .unwrap()
            .starts_with('a')
    );
    assert!(
        event
            .get_document("fullDocument")
            .unwrap()
            .get_str("blob")
            .unwrap()
            .starts_with('b')
    );
}

/// The server's cursors opened by clients named `app`, idle or in a getMore.
async fn cursors_of(client: &Client, app: &str) -> usize {
    let reply = client
        .database("admin")
        .run_command(rawdoc! {
            "aggregate": 1,
            "pipeline": [
                { "$currentOp": { "idleCursors": true, "allUsers": true } },
                { "$match": { "appName": app, "cursor": { "$exists": true } } },
            ],
            "cursor": {},
        })
        .await
        .unwrap();
    reply
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()
        .into_iter()
        .count()
}

#[tokio::test]
async fn sigterm_and_ctrl_c_kill_the_cursor_and_exit_0() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    for (signal, name) in [(15, "term"), (2, "int")] {
        let db = client.database(&common::unique_db("cli_signal"));
        let app = format!("cli-signal-{name}-{}", std::process::id());
        let watcher_uri = common::with_options(&uri, &format!("appName={app}"));
        let ns = format!("{}.c", db.name());
        let mut watcher = Watcher::start(&["watch", "--uri", &watcher_uri, "--ns", &ns]);
        let open = common::eventually(Duration::from_secs(20), || async {
            cursors_of(&client, &app).await == 1
        })
        .await;
        assert!(open, "the watcher's cursor shows up on the server");
        insert_numbers(&db, "c", 1..=1).await;
        assert!(watcher.line().await.contains("\"n\":1"));
        watcher.signal(signal);
        let (status, _, stderr) = watcher.finish().await;
        assert!(status.success(), "SIG{name}: {status:?} {stderr}");
        assert_eq!(cursors_of(&client, &app).await, 0, "SIG{name}: killCursors was sent");
    }
}

#[tokio::test]
async fn a_closed_stdout_ends_the_watch_quietly() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cli_pipe"));
    let start = now(&client).await;
    insert_numbers(&db, "c", 1..=1).await;
    let ns = format!("{}.c", db.name());
    let mut child = mongowire(&["watch", "--uri", &uri, "--ns", &ns, "--start-at-operation-time", &start])
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).await.unwrap();
    assert!(first.contains("\"n\":1"), "{first}");
    drop(stdout);
    // The next event's write fails with EPIPE: like `mongowire watch ... | head -1`.
    insert_numbers(&db, "c", 2..=2).await;
    let status = tokio::time::timeout(RUN_LIMIT, child.wait())
        .await
        .expect("exit in time")
        .unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(stderr, "");
}

/// Kills `mongowire watch --checkpoint` with SIGKILL at random moments while 10,000 numbered
/// documents are inserted, restarting it each time; the outputs, put together, must hold every
/// number in order, with at most one repeat per kill.
#[tokio::test]
async fn sigkill_at_random_moments_loses_nothing_and_repeats_at_most_one_per_kill() {
    const DOCUMENTS: i64 = 10_000;
    let Some(uri) = common::single() else { return };
    let seed = cli::seed("the kill schedule");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cli_kill"));
    let ns = format!("{}.c", db.name());
    let directory = tempfile::tempdir().unwrap();
    let checkpoint = directory.path().join("checkpoint.json");
    let checkpoint = checkpoint.to_str().unwrap();
    let start = now(&client).await;

    let writer = {
        let collection = db.collection("c");
        tokio::spawn(async move {
            for n in 1..=DOCUMENTS {
                collection.insert_one(rawdoc! { "_id": n, "n": n }).await.unwrap();
            }
        })
    };
    let args = [
        "watch",
        "--uri",
        &uri,
        "--ns",
        &ns,
        "--checkpoint",
        checkpoint,
        "--start-at-operation-time",
        &start,
        "--max-await-time-ms",
        "100",
    ];
    let run = cli::kill_and_restart(&args, 1, DOCUMENTS, || writer.is_finished(), &mut rng).await;
    let (seen, kills, repeats) = (run.seen, run.kills, run.repeats);
    assert_eq!(run.failed_runs, 0, "no run failed by itself");
    writer.await.unwrap();
    assert_eq!(seen, (1..=DOCUMENTS).collect::<Vec<_>>(), "seed {seed}");
    assert!(repeats <= kills, "{repeats} repeats for {kills} kills");
    assert!(
        kills >= 5,
        "only {kills} kills: the writer finished too fast to test anything"
    );
    eprintln!("{kills} kills, {repeats} repeated events");
}

#[tokio::test]
async fn failures_say_what_failed_in_one_line() {
    let Some(uri) = common::single() else { return };
    let expect = |run: &Run, status: i32, words: &[&str]| {
        assert_eq!(run.status.code(), Some(status), "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        for word in words {
            assert!(run.stderr.contains(word), "{:?} should say {word:?}", run.stderr);
        }
    };
    let bad_uri = run(&[
        "watch",
        "--uri",
        "mongodb://127.0.0.1:27100/?replicaSet=mw1&maxPoolSize=lots",
    ])
    .await;
    expect(&bad_uri, 2, &["mongowire watch:", "maxPoolSize"]);
    let bad_scheme = run(&["watch", "--uri", "http://127.0.0.1"]).await;
    expect(&bad_scheme, 2, &["scheme"]);

    let unreachable = run(&["watch", "--uri", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500"]).await;
    expect(&unreachable, 1, &["127.0.0.1:1", "refused"]);

    if let Some(auth) = common::auth() {
        let wrong = auth.replace("mwadmin-pw", "not-the-password");
        let refused = run(&["watch", "--uri", &wrong]).await;
        expect(&refused, 1, &["authentication failed", "\"mwadmin\"", "SCRAM-SHA-256"]);
        assert!(!refused.stderr.contains("not-the-password"), "{}", refused.stderr);
    }

    let bad_stage = run(&[
        "watch",
        "--uri",
        &uri,
        "--ns",
        "db.c",
        "--pipeline",
        r#"[{"$bogus": 1}]"#,
    ])
    .await;
    expect(&bad_stage, 1, &["server error 40324", "127.0.0.1:27100"]);

    let before_the_oplog = run(&[
        "watch",
        "--uri",
        &uri,
        "--ns",
        "db.c",
        "--start-at-operation-time",
        "1:1",
    ])
    .await;
    expect(
        &before_the_oplog,
        1,
        &["server error 286 (ChangeStreamHistoryLost)", "remove the checkpoint"],
    );

    for (flag, value, says) in [
        ("--pipeline", "{\"$match\": {}}", "array"),
        ("--pipeline", "[", "not JSON"),
        ("--start-at-operation-time", "yesterday", "T:I"),
        ("--resume-after", "\"token\"", "object"),
    ] {
        let run = run(&["watch", "--uri", &uri, flag, value]).await;
        expect(&run, 2, &[flag, says]);
    }

    let directory = tempfile::tempdir().unwrap();
    let checkpoint = directory.path().join("c.json");
    std::fs::write(&checkpoint, "garbage").unwrap();
    let broken = run(&["watch", "--uri", &uri, "--checkpoint", checkpoint.to_str().unwrap()]).await;
    expect(&broken, 2, &["not JSON", "remove it"]);
}

#[tokio::test]
async fn a_non_resumable_get_more_error_ends_the_watch_with_its_code() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cli_fatal"));
    let app = format!("cli-fatal-{}", std::process::id());
    let failing = common::fail_point(
        &client,
        rawdoc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": { "failCommands": ["getMore"], "errorCode": 2, "appName": app.as_str() },
        },
    )
    .await;
    let watcher_uri = common::with_options(&uri, &format!("appName={app}"));
    let ns = format!("{}.c", db.name());
    let run = run(&[
        "watch",
        "--uri",
        &watcher_uri,
        "--ns",
        &ns,
        "--max-await-time-ms",
        "100",
    ])
    .await;
    failing.disable().await;
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.starts_with("mongowire watch: server error 2 (BadValue)"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn verbose_logs_go_to_stderr() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cli_verbose"));
    let start = now(&client).await;
    insert_numbers(&db, "c", 1..=1).await;
    let ns = format!("{}.c", db.name());
    let run = watch_from(&uri, &ns, &start, &["--limit", "1", "-vv"]).await;
    assert!(run.status.success(), "{}", run.stderr);
    assert!(run.stderr.contains("connection established"), "{}", run.stderr);
    assert_eq!(ids(&run.lines()), [1], "logs never reach stdout");
}

#[tokio::test]
async fn ping_reports_members_primary_wire_versions_and_round_trips() {
    let Some(uri) = common::rs3() else { return };
    let run = run(&["ping", "--uri", &uri]).await;
    assert!(run.status.success(), "{}", run.stderr);
    let text = String::from_utf8(run.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("topology ReplicaSetWithPrimary \"mw3\", ping "),
        "{text}"
    );
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines.iter().filter(|l| l.contains("(primary)")).count(), 1, "{text}");
    for port in [27101, 27102, 27103] {
        let member = lines
            .iter()
            .find(|l| l.contains(&format!("127.0.0.1:{port}")))
            .expect("every member");
        assert!(member.contains("wire 0..21") && member.contains(" ms"), "{member}");
    }
    let unreachable = self::run(&["ping", "--uri", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"]).await;
    assert_eq!(unreachable.status.code(), Some(1), "{}", unreachable.stderr);
    assert!(unreachable.stderr.contains("127.0.0.1:1"), "{}", unreachable.stderr);
}

/// Progress and lag appear when stderr is a terminal (a pseudo-terminal from util-linux
/// `script`, which every Debian has), and `--quiet` silences them.
#[tokio::test]
async fn progress_and_lag_on_a_terminal() {
    let Some(uri) = common::single() else { return };
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` to give the watcher a terminal");
        return;
    }
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cli_progress"));
    let ns = format!("{}.c", db.name());
    for quiet in [false, true] {
        let start = now(&client).await;
        let watch = format!(
            "{} watch --uri '{uri}' --ns {ns} --start-at-operation-time {start} --limit 4 --max-await-time-ms 100{}",
            env!("CARGO_BIN_EXE_mongowire"),
            if quiet { " --quiet" } else { "" }
        );
        let mut terminal = Command::new("script");
        terminal
            .args(["--quiet", "--return", "--command", &watch, "/dev/null"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let output = terminal.output();
        let first = if quiet { 10 } else { 0 };
        let writes = async {
            for n in first..first + 4 {
                insert_numbers(&db, "c", n..=n).await;
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
        };
        let (output, ()) = tokio::join!(tokio::time::timeout(RUN_LIMIT, output), writes);
        let output = output.expect("finished in time").unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{text}");
        let progress = text.contains(" events, ") && text.contains("/s, lag ");
        assert_eq!(progress, !quiet, "quiet={quiet}: {text}");
    }
}

/// A dropped collection ends the watch with its invalidate event (exit 0); started again on the
/// same checkpoint, the watcher carries on with the collection created anew.
#[tokio::test]
async fn after_an_invalidate_the_checkpoint_carries_on_with_the_new_collection() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cli_invalidate"));
    let ns = format!("{}.c", db.name());
    let directory = tempfile::tempdir().unwrap();
    let checkpoint = directory.path().join("checkpoint.json");
    let start = now(&client).await;
    insert_numbers(&db, "c", 1..=1).await;
    db.collection("c").drop().await.unwrap();

    let first = watch_from(&uri, &ns, &start, &["--checkpoint", checkpoint.to_str().unwrap()]).await;
    assert!(first.status.success(), "{}", first.stderr);
    let kinds: Vec<Value> = first.lines().iter().map(|l| l["operationType"].clone()).collect();
    assert_eq!(kinds, ["insert", "drop", "invalidate"]);

    insert_numbers(&db, "c", 2..=2).await;
    let again = watch_from(
        &uri,
        &ns,
        &start,
        &["--checkpoint", checkpoint.to_str().unwrap(), "--limit", "1"],
    )
    .await;
    assert!(again.status.success(), "{}", again.stderr);
    assert_eq!(ids(&again.lines()), [2]);
}
