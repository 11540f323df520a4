//! Reliability under faults: while a writer inserts numbered documents (at least 10,000 per
//! scenario), a mongowire change stream consumes them and must see every number exactly once, in
//! order, whatever happens in between: connections closed, cut mid-message, delayed, stalled or
//! corrupted by a seeded proxy; fail points on getMore; step-downs, SIGKILLed primaries and
//! secondaries of the 3-member set; a slow consumer; the CLI killed and restarted from its
//! checkpoint under proxy faults; a resume token that fell off the oplog.
//!
//! Each scenario prints one result line and, when `MONGOWIRE_CHAOS_REPORT` names a file, appends
//! it there as JSON for `scripts/chaos` to tabulate. `MONGOWIRE_CHAOS=full` runs the long version
//! (more documents, more faults); the default is the short one CI runs. The scenarios run one at a
//! time: they share the servers, and some of them take members down.
#![allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss
)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bson::{RawArrayBuf, RawDocumentBuf, Timestamp, rawdoc};
use common::cli::{self, Watcher};
use common::secondaries;
use mongowire::driver::{ChangeStream, Client, Collection, Database};
use mongowire::protocol::change_stream::ChangeStreamOptions;
use mongowire::traffic::{Fault, FaultCounts, FaultPlan, FaultProxy};
use rand::SeedableRng;

/// How much each scenario does.
struct Scale {
    /// Documents each writer inserts at least.
    documents: i64,
    /// Faults of each kind a proxy scenario injects at least.
    faults: u64,
    /// Step-downs in the step-down scenario.
    step_downs: u32,
    /// Rounds through the list of fail points.
    fail_point_rounds: u32,
    /// Documents of about 1 KB behind the slow consumer.
    slow_documents: i64,
}

fn scale() -> Scale {
    if std::env::var("MONGOWIRE_CHAOS").as_deref() == Ok("full") {
        Scale {
            documents: 50_000,
            faults: 250,
            step_downs: 10,
            fail_point_rounds: 5,
            slow_documents: 200_000,
        }
    } else {
        Scale {
            documents: 10_000,
            faults: 50,
            step_downs: 3,
            fail_point_rounds: 1,
            slow_documents: 30_000,
        }
    }
}

/// Longest a consumer may go without an event before the scenario counts it as stuck.
const STUCK: Duration = Duration::from_secs(120);

/// One scenario at a time, each on a runtime of its own.
fn scenario(body: impl AsyncFnOnce()) {
    static SERIAL: Mutex<()> = Mutex::new(());
    let _serial: MutexGuard<'_, ()> = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // The peak resident set is measured per scenario: writing 5 resets the process's VmHWM.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(body());
}

/// One row of the summary table.
struct Outcome<'a> {
    scenario: &'a str,
    seed: Option<u64>,
    faults: u64,
    written: i64,
    seen: &'a [i64],
    /// Errors that reached the consumer (each followed by a reopen from the last token).
    surfaced: usize,
    peak_rss_kib: u64,
    started: Instant,
}

impl Outcome<'_> {
    /// Prints and records the row, then checks: every number in `0..written` exactly once, in
    /// order.
    fn check(&self) {
        let mut distinct = self.seen.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let duplicated = self.seen.len() - distinct.len();
        let in_range = distinct.iter().filter(|&&n| (0..self.written).contains(&n)).count();
        let lost = usize::try_from(self.written).unwrap() - in_range;
        let row = serde_json::json!({
            "scenario": self.scenario,
            "seed": self.seed,
            "faults": self.faults,
            "written": self.written,
            "seen": self.seen.len(),
            "lost": lost,
            "duplicated": duplicated,
            "surfaced": self.surfaced,
            "peak_rss_mib": (self.peak_rss_kib as f64 / 1024.0 * 10.0).round() / 10.0,
            "seconds": (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        });
        eprintln!("chaos: {row}");
        if let Ok(path) = std::env::var("MONGOWIRE_CHAOS_REPORT") {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            writeln!(file, "{row}").unwrap();
        }
        let seed = self
            .seed
            .map(|s| format!(" (MONGOWIRE_TEST_SEED={s})"))
            .unwrap_or_default();
        assert_eq!((lost, duplicated), (0, 0), "{}: lost, duplicated{seed}", self.scenario);
        assert!(
            self.seen.iter().copied().eq(0..self.written),
            "{}: every number once, in order{seed}",
            self.scenario
        );
    }
}

/// This process's peak resident set since the scenario began, in KiB.
fn own_peak_rss_kib() -> u64 {
    cli::peak_rss_kib(std::process::id())
}

/// The writer's progress, shared with the consumer and the fault driver.
#[derive(Default)]
struct Progress {
    /// Numbers `0..written` are durably written (w: majority).
    written: AtomicI64,
    /// Set by the fault driver once its faults are done; the writer stops at its minimum after.
    faults_done: AtomicBool,
    /// Set by the writer when it has stopped.
    writer_done: AtomicBool,
}

/// How fast the writer goes.
#[derive(Clone, Copy)]
struct Pace {
    batch: i64,
    pause: Duration,
    /// Bytes of padding per document.
    pad: usize,
}

const STEADY: Pace = Pace {
    batch: 20,
    pause: Duration::from_millis(10),
    pad: 0,
};

/// Upserts `{_id: n, n}` for each n of `numbers`, ordered, with w: majority. Idempotent, so a
/// batch whose outcome is unknown (the connection broke, the primary died) is simply sent again:
/// a number already written matches and changes nothing, so produces no second event.
async fn upsert_numbers(db: &Database, numbers: std::ops::Range<i64>, pad: &str) -> Result<(), String> {
    let mut updates = RawArrayBuf::new();
    for n in numbers {
        updates.push(rawdoc! {
            "q": { "_id": n },
            "u": { "$setOnInsert": { "n": n, "pad": pad } },
            "upsert": true,
        });
    }
    let command = rawdoc! {
        "update": "numbers",
        "updates": updates,
        "ordered": true,
        "writeConcern": { "w": "majority", "wtimeout": 20_000 },
    };
    let reply = db.run_command(command).await.map_err(|e| e.to_string())?;
    match (reply.get("writeErrors"), reply.get("writeConcernError")) {
        (Ok(None), Ok(None)) => Ok(()),
        _ => Err(format!("{reply:?}")),
    }
}

/// Writes numbered documents until at least `minimum` are written and the faults are done.
fn spawn_writer(db: Database, progress: Arc<Progress>, minimum: i64, pace: Pace) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let pad = "x".repeat(pace.pad);
        loop {
            let next = progress.written.load(Ordering::SeqCst);
            if next >= minimum && progress.faults_done.load(Ordering::SeqCst) {
                break;
            }
            let numbers = next..next + pace.batch;
            let deadline = Instant::now() + STUCK;
            while let Err(error) = upsert_numbers(&db, numbers.clone(), &pad).await {
                assert!(Instant::now() < deadline, "the writer is stuck: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            progress.written.store(numbers.end, Ordering::SeqCst);
            tokio::time::sleep(pace.pause).await;
        }
        progress.writer_done.store(true, Ordering::SeqCst);
    })
}

/// What a consumer saw.
#[derive(Default)]
struct Consumed {
    numbers: Vec<i64>,
    /// The errors that reached the consumer, each of which must have closed the stream.
    errors: Vec<mongowire::Error>,
}

/// Consumes `open`'s stream until it has seen the writer's last number. An error that reaches
/// it must close the stream (the specification: an error surfaces once, then the stream is
/// dead); it is recorded, and the consumer reopens from the last resume token, as a user would.
async fn consume(
    coll: &Collection,
    start: Timestamp,
    options: &ChangeStreamOptions,
    progress: &Progress,
    pause: Duration,
) -> Consumed {
    let open = |token: Option<RawDocumentBuf>| {
        let mut options = options.clone();
        match token {
            Some(token) => options.resume_after = Some(token),
            None => options.start_at_operation_time = Some(start),
        }
        coll.watch([], options)
    };
    let mut consumed = Consumed::default();
    let mut stream: ChangeStream = open(None).await.expect("the stream opens");
    let mut last_progress = Instant::now();
    loop {
        let next = consumed.numbers.last().map_or(0, |n| n + 1);
        if progress.writer_done.load(Ordering::SeqCst) && next >= progress.written.load(Ordering::SeqCst) {
            break;
        }
        // Short waits, so the loop sees the writer finish even when no event is left to come.
        let Ok(event) = tokio::time::timeout(Duration::from_secs(1), stream.next()).await else {
            assert!(
                last_progress.elapsed() < STUCK,
                "no event for {STUCK:?} at {next}; written {}; errors: {:?}",
                progress.written.load(Ordering::SeqCst),
                consumed
                    .errors
                    .iter()
                    .rev()
                    .take(5)
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            );
            continue;
        };
        last_progress = Instant::now();
        match event {
            Some(Ok(event)) => {
                let key = event.document_key().expect("an insert has a documentKey");
                consumed.numbers.push(key.get_i64("_id").expect("a numbered document"));
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
            Some(Err(error)) => {
                assert!(!stream.is_alive(), "an error surfaced but the stream lives on: {error}");
                assert!(stream.next().await.is_none(), "after its error the stream is closed");
                consumed.errors.push(error);
                let token = stream.resume_token();
                stream = loop {
                    match open(token.clone()).await {
                        Ok(stream) => break stream,
                        Err(error) => {
                            assert!(
                                last_progress.elapsed() < STUCK,
                                "no stream for {STUCK:?} at {next}; errors: {:?}",
                                consumed
                                    .errors
                                    .iter()
                                    .rev()
                                    .take(5)
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                            );
                            consumed.errors.push(error);
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                };
            }
            None => panic!("the stream ended without an error"),
        }
    }
    stream.close().await;
    consumed
}

/// The cluster time of a majority write made now, where the consumer starts.
async fn cluster_time_now(db: &Database) -> Timestamp {
    let reply = db
        .run_command(rawdoc! { "insert": "clock", "documents": [{}], "writeConcern": { "w": "majority" } })
        .await
        .unwrap();
    reply.get_timestamp("operationTime").unwrap()
}

/// The first host of a connection string.
fn first_host(uri: &str) -> String {
    mongowire::protocol::uri::ConnectionString::parse(uri).unwrap().hosts[0].to_string()
}

/// A change stream through a fault-injecting proxy in front of the single-node set, with faults
/// of `kinds` until each has been injected [`Scale::faults`] times (or, drawn at random, until
/// that many of each kind have been injected in total).
async fn through_proxy(name: &str, kinds: &[Fault], tune: impl FnOnce(&mut FaultPlan)) {
    let Some(uri) = common::single() else { return };
    let scale = scale();
    let seed = cli::seed(name);
    let mut plan = FaultPlan::new(seed, kinds.iter().copied());
    tune(&mut plan);
    let random = plan.probability > 0.0;
    let proxy = FaultProxy::start("127.0.0.1:0", &first_host(&uri), plan).await.unwrap();
    proxy.set_enabled(false);
    // socketTimeoutMS bounds a stalled exchange: a getMore may stay silent for its await time
    // (maxAwaitTimeMS, 1 s by default) plus this; anything longer is a timeout, resumed from.
    let consumer_uri = format!(
        "mongodb://{}/?directConnection=true&socketTimeoutMS=1000&heartbeatFrequencyMS=500&serverSelectionTimeoutMS=30000",
        proxy.address()
    );
    let writer_client = Client::connect(&uri).await.unwrap();
    let db_name = common::unique_db("chaos_proxy");
    let db = writer_client.database(&db_name);
    let start = cluster_time_now(&db).await;
    let consumer_client = Client::connect(&consumer_uri).await.unwrap();
    let coll = consumer_client.database(&db_name).collection("numbers");
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let writer = spawn_writer(db.clone(), progress.clone(), scale.documents, STEADY);
    proxy.set_enabled(true);
    let driver = {
        let progress = progress.clone();
        let kinds = kinds.to_vec();
        let proxy = Arc::new(proxy);
        let handle = proxy.clone();
        let task = tokio::spawn(async move {
            let enough = |injected: FaultCounts| {
                if random {
                    injected.total() >= scale.faults * kinds.len() as u64
                } else {
                    kinds.iter().all(|&k| injected.of(k) >= scale.faults)
                }
            };
            while !enough(handle.injected()) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            handle.set_enabled(false);
            progress.faults_done.store(true, Ordering::SeqCst);
        });
        (proxy, task)
    };
    let consumed = consume(&coll, start, &ChangeStreamOptions::default(), &progress, Duration::ZERO).await;
    let (proxy, task) = driver;
    task.await.unwrap();
    writer.await.unwrap();
    let injected = proxy.injected();
    eprintln!(
        "{name}: {injected:?} over {} connections; errors surfaced: {:?}",
        proxy.connections(),
        consumed.errors.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
    Outcome {
        scenario: name,
        seed: Some(seed),
        faults: injected.total(),
        written: progress.written.load(Ordering::SeqCst),
        seen: &consumed.numbers,
        surfaced: consumed.errors.len(),
        peak_rss_kib: own_peak_rss_kib(),
        started,
    }
    .check();
    db.drop().await.unwrap();
    consumer_client.shutdown().await;
    writer_client.shutdown().await;
}

#[test]
fn proxy_closes_connections() {
    scenario(async || through_proxy("proxy: close", &[Fault::Close], |_| {}).await);
}

#[test]
fn proxy_cuts_messages_in_the_middle() {
    scenario(async || through_proxy("proxy: cut mid-message", &[Fault::Cut], |_| {}).await);
}

#[test]
fn proxy_delays_messages() {
    scenario(async || {
        through_proxy("proxy: delay 5-100 ms", &[Fault::Delay], |plan| {
            plan.every = 2..6;
        })
        .await;
    });
}

#[test]
fn proxy_stalls_reads_past_the_socket_timeout() {
    scenario(async || {
        through_proxy("proxy: stall 0.3-3 s", &[Fault::Stall], |plan| {
            plan.stall = Duration::from_millis(300)..Duration::from_secs(3);
        })
        .await;
    });
}

#[test]
fn proxy_corrupts_replies() {
    scenario(async || through_proxy("proxy: corrupt a reply byte", &[Fault::Corrupt], |_| {}).await);
}

#[test]
fn proxy_random_faults_of_every_kind() {
    scenario(async || {
        through_proxy("proxy: every kind at random (p=0.1 per message)", &Fault::ALL, |plan| {
            plan.every = 0..0;
            plan.probability = 0.1;
            plan.stall = Duration::from_millis(300)..Duration::from_secs(3);
        })
        .await;
    });
}

/// The error codes the Change Streams specification lists as resumable (the server marks them
/// with the ResumableChangeStreamError label since 4.4, and a fail point must attach it itself).
const RESUMABLE_CODES: [i32; 18] = [
    6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 63, 150, 13388, 234, 133, 43,
];

/// Sets `failCommand` with `data` for one command and waits until it has fired.
async fn fail_once(admin: &Database, data: RawDocumentBuf) {
    let spec = rawdoc! { "configureFailPoint": "failCommand", "mode": { "times": 1 }, "data": data };
    let set = admin.run_command(spec).await.unwrap();
    let before = common::number_at(&set, "count");
    let wait = rawdoc! { "waitForFailPoint": "failCommand", "timesEntered": before + 1, "maxTimeMS": 60_000 };
    admin.run_command(wait).await.unwrap();
}

#[test]
fn fail_points_on_get_more() {
    scenario(async || {
        let Some(uri) = common::single() else { return };
        let scale = scale();
        let app = format!("chaos-fail-points-{}", std::process::id());
        let writer_client = Client::connect(&uri).await.unwrap();
        let admin = writer_client.database("admin");
        let db_name = common::unique_db("chaos_fail_points");
        let db = writer_client.database(&db_name);
        let start = cluster_time_now(&db).await;
        let consumer_client = Client::connect(&common::with_options(&uri, &format!("appName={app}")))
            .await
            .unwrap();
        let coll = consumer_client.database(&db_name).collection("numbers");
        let progress = Arc::new(Progress::default());
        let started = Instant::now();
        let writer = spawn_writer(db.clone(), progress.clone(), scale.documents, STEADY);
        let faults = Arc::new(AtomicU64::new(0));
        let driver = {
            let (progress, faults, app) = (progress.clone(), faults.clone(), app.clone());
            tokio::spawn(async move {
                let get_more = |error: RawDocumentBuf| {
                    let mut data = rawdoc! { "failCommands": ["getMore"], "appName": app.as_str() };
                    for (key, value) in error.iter().map(Result::unwrap) {
                        data.append(key, bson::RawBson::from(value));
                    }
                    data
                };
                for _ in 0..scale.fail_point_rounds {
                    for code in RESUMABLE_CODES {
                        let error = rawdoc! { "errorCode": code, "errorLabels": ["ResumableChangeStreamError"] };
                        fail_once(&admin, get_more(error)).await;
                        faults.fetch_add(1, Ordering::SeqCst);
                    }
                    // CursorNotFound is resumable without a label; a closed connection is a
                    // network error.
                    fail_once(&admin, get_more(rawdoc! { "errorCode": 43 })).await;
                    fail_once(&admin, get_more(rawdoc! { "closeConnection": true })).await;
                    faults.fetch_add(2, Ordering::SeqCst);
                }
                // Not resumable: surfaces once and closes the stream.
                fail_once(&admin, get_more(rawdoc! { "errorCode": 2 })).await;
                faults.fetch_add(1, Ordering::SeqCst);
                progress.faults_done.store(true, Ordering::SeqCst);
            })
        };
        let consumed = consume(&coll, start, &ChangeStreamOptions::default(), &progress, Duration::ZERO).await;
        driver.await.unwrap();
        writer.await.unwrap();
        let codes: Vec<Option<i32>> = consumed
            .errors
            .iter()
            .map(|e| e.as_server_error().map(|s| s.code))
            .collect();
        assert_eq!(codes, [Some(2)], "only the non-resumable error reaches the consumer");
        Outcome {
            scenario: "server: failCommand on getMore (every resumable code, label, closeConnection, one non-resumable)",
            seed: None,
            faults: faults.load(Ordering::SeqCst),
            written: progress.written.load(Ordering::SeqCst),
            seen: &consumed.numbers,
            surfaced: consumed.errors.len(),
            peak_rss_kib: own_peak_rss_kib(),
            started,
        }
        .check();
        db.drop().await.unwrap();
        consumer_client.shutdown().await;
        writer_client.shutdown().await;
    });
}

/// Waits (up to 2 minutes) until the client's view of the set satisfies `condition`.
async fn wait_for(client: &Client, what: &str, condition: impl Fn(&Client) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
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

/// A primary and two secondaries.
fn all_up(client: &Client) -> bool {
    client.topology().primary().is_some() && secondaries(client).len() == 2
}

/// All up, with 27101 (priority 2) primary: where the set returns to after a disturbance.
fn settled(client: &Client) -> bool {
    all_up(client) && client.topology().primary().is_some_and(|p| p.address.port() == 27101)
}

/// Kills a member with SIGKILL; the guard starts it again when dropped, even on a panic, so the
/// set is whole for whatever runs next.
struct Killed(u16);

impl Killed {
    async fn kill(port: u16) -> Killed {
        tokio::task::spawn_blocking(move || common::mongod_script(&["kill", &port.to_string()]))
            .await
            .unwrap();
        Killed(port)
    }

    async fn restart(self) {
        let port = self.0;
        std::mem::forget(self);
        tokio::task::spawn_blocking(move || common::mongod_script(&["restart", &port.to_string()]))
            .await
            .unwrap();
    }
}

/// Kills a secondary, leaves it down a few seconds, restarts it and waits until it is back.
async fn bounce_secondary(admin: &Client, port: u16, faults: &AtomicU64) {
    let killed = Killed::kill(port).await;
    faults.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    killed.restart().await;
    wait_for(admin, "the killed member back", all_up).await;
}

impl Drop for Killed {
    fn drop(&mut self) {
        common::mongod_script(&["restart", &self.0.to_string()]);
    }
}

/// A change stream on the 3-member set while `disturb` (given an admin client and a fault
/// counter) steps down, kills and restarts members.
async fn on_the_replica_set(name: &str, consumer_options: &str, disturb: impl AsyncFnOnce(&Client, &AtomicU64)) {
    let Some(uri) = common::rs3() else { return };
    let scale = scale();
    let options = "heartbeatFrequencyMS=500&serverSelectionTimeoutMS=60000";
    let admin = Client::connect(&common::with_options(&uri, options)).await.unwrap();
    wait_for(&admin, "a settled set", settled).await;
    let writer_client = Client::connect(&common::with_options(&uri, &format!("{options}&w=majority")))
        .await
        .unwrap();
    let db_name = common::unique_db("chaos_rs3");
    let db = writer_client.database(&db_name);
    let start = cluster_time_now(&db).await;
    let consumer_client = Client::connect(&common::with_options(&uri, &format!("{options}{consumer_options}")))
        .await
        .unwrap();
    let coll = consumer_client.database(&db_name).collection("numbers");
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let writer = spawn_writer(db.clone(), progress.clone(), scale.documents, STEADY);
    let faults = AtomicU64::new(0);
    let defaults = ChangeStreamOptions::default();
    let (consumed, ()) = tokio::join!(consume(&coll, start, &defaults, &progress, Duration::ZERO), async {
        // Let the stream get going before the first fault.
        while progress.written.load(Ordering::SeqCst) < 500 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        disturb(&admin, &faults).await;
        progress.faults_done.store(true, Ordering::SeqCst);
    });
    writer.await.unwrap();
    Outcome {
        scenario: name,
        seed: None,
        faults: faults.load(Ordering::SeqCst),
        written: progress.written.load(Ordering::SeqCst),
        seen: &consumed.numbers,
        surfaced: consumed.errors.len(),
        peak_rss_kib: own_peak_rss_kib(),
        started,
    }
    .check();
    // 27101 takes the primary role back once it has caught up: wait for that, so whatever runs
    // next does not meet an election.
    wait_for(&admin, "the set back in its stable configuration", settled).await;
    // A priority takeover can still be under way; the drop waits it out.
    let mut attempts = 0;
    while let Err(error) = db.drop().await {
        attempts += 1;
        assert!(attempts < 100, "dropping the scenario's database: {error}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    consumer_client.shutdown().await;
    writer_client.shutdown().await;
    admin.shutdown().await;
}

#[test]
fn replica_set_steps_down_repeatedly() {
    scenario(async || {
        let step_downs = scale().step_downs;
        on_the_replica_set("rs3: replSetStepDown, repeatedly", "", async |admin, faults| {
            for _ in 0..step_downs {
                wait_for(admin, "a primary and two secondaries", all_up).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                // Under a steady writer a secondary may not catch up within the period
                // (ExceededTimeLimit, 262): that step-down did not happen; try again.
                for attempt in 0.. {
                    let result = admin
                        .database("admin")
                        .run_command(rawdoc! { "replSetStepDown": 10, "secondaryCatchUpPeriodSecs": 5 })
                        .await;
                    match result {
                        Err(e) if e.as_server_error().is_some_and(|s| s.code == 262) && attempt < 20 => {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        Ok(_) => break,
                        Err(e) if e.is_network_error() => break,
                        Err(e) => panic!("replSetStepDown: {e}"),
                    }
                }
                faults.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await;
    });
}

#[test]
fn replica_set_primary_killed_and_restarted() {
    scenario(async || {
        on_the_replica_set("rs3: SIGKILL the primary, restart it", "", async |admin, faults| {
            let primary = admin.topology().primary().expect("a primary").address.port();
            let killed = Killed::kill(primary).await;
            faults.fetch_add(1, Ordering::SeqCst);
            wait_for(admin, "a new primary", |c| {
                c.topology().primary().is_some_and(|p| p.address.port() != primary)
            })
            .await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            killed.restart().await;
            wait_for(admin, "the killed member back", all_up).await;
        })
        .await;
    });
}

#[test]
fn replica_set_secondary_killed_and_restarted() {
    scenario(async || {
        on_the_replica_set("rs3: SIGKILL a secondary, restart it", "", async |admin, faults| {
            bounce_secondary(admin, secondaries(admin)[0], faults).await;
        })
        .await;
    });
}

#[test]
fn read_preference_secondary_with_each_secondary_killed() {
    scenario(async || {
        on_the_replica_set(
            "rs3: readPreference=secondary, SIGKILL each secondary in turn",
            "&readPreference=secondary",
            async |admin, faults| {
                // The stream's cursor lives on one of the two; killing each in turn kills it.
                for secondary in secondaries(admin) {
                    bounce_secondary(admin, secondary, faults).await;
                }
            },
        )
        .await;
    });
}

/// The oldest entry's timestamp in the server's oplog.
async fn oldest_oplog_entry(client: &Client) -> (u32, u32) {
    let reply = client
        .database("local")
        .run_command(rawdoc! { "find": "oplog.rs", "sort": { "$natural": 1 }, "limit": 1, "projection": { "ts": 1 } })
        .await
        .unwrap();
    let batch = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    let first = batch.into_iter().next().unwrap().unwrap();
    let ts = first.as_document().unwrap().get_timestamp("ts").unwrap();
    (ts.time, ts.increment)
}

#[test]
fn a_token_that_fell_off_the_oplog_is_history_lost_not_a_loop() {
    scenario(async || {
        // On the auth set, which no other scenario streams from: between checkpoints the oplog
        // grows far past its size, and the next truncation then cuts up to the checkpoint in one
        // step, taking history a consumer only seconds behind still needs (seen here: a stream on
        // the same set got ChangeStreamHistoryLost two seconds after it started).
        let Some(uri) = common::auth() else { return };
        let started = Instant::now();
        let (client, log) = common::logged_client(&uri).await;
        let db = client.database(&common::unique_db("chaos_oplog"));
        let coll = db.collection("numbers");
        let mut stream = coll.watch([], ChangeStreamOptions::default()).await.unwrap();
        coll.insert_one(rawdoc! { "_id": 0_i64 }).await.unwrap();
        let event = stream.next().await.unwrap().unwrap();
        let token = event.resume_token().to_owned();
        let Timestamp { time, increment } = event.cluster_time().unwrap();
        stream.close().await;

        // The test sets have a 16 MB oplog (scripts/mongod): write 1 MB documents until the
        // oldest entry left is newer than the event. The server truncates its oplog only up to
        // its last checkpoint, taken every `syncdelay` seconds (60 by default): checkpoint every
        // second meanwhile, and give truncation a moment after each round.
        let admin = client.database("admin");
        let set_sync_delay = |seconds: f64| admin.run_command(rawdoc! { "setParameter": 1, "syncdelay": seconds });
        let previous = set_sync_delay(1.0).await.unwrap().get_f64("was").unwrap_or(60.0);
        let blob = "x".repeat(1 << 20);
        let filler = db.collection("filler");
        let mut written_mb = 0;
        // Truncation runs when an insert finds the oplog over its size, so writing goes on (more
        // slowly after the first 256 MB) until the checkpoints have caught up.
        let deadline = Instant::now() + Duration::from_secs(300);
        while oldest_oplog_entry(&client).await <= (time, increment) {
            assert!(
                Instant::now() < deadline,
                "the oplog still holds the event after {written_mb} MB and five minutes"
            );
            let documents = if written_mb < 256 { 8 } else { 1 };
            filler
                .insert_many((0..documents).map(|_| rawdoc! { "blob": blob.as_str() }))
                .await
                .unwrap();
            written_mb += documents;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Leave the oplog near its size, not hundreds of MB over it, before checkpoints slow down.
        let oplog_size = async || {
            let stats = client
                .database("local")
                .run_command(rawdoc! { "collStats": "oplog.rs" })
                .await
                .unwrap();
            (common::number_at(&stats, "size"), common::number_at(&stats, "maxSize"))
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while let (size, max) = oplog_size().await
            && size > 2 * max
            && Instant::now() < deadline
        {
            filler.insert_one(rawdoc! { "blob": "x" }).await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        set_sync_delay(previous).await.unwrap();
        filler.drop().await.unwrap();

        let aggregates = log.commands("aggregate").len();
        let options = ChangeStreamOptions {
            resume_after: Some(token.clone()),
            ..ChangeStreamOptions::default()
        };
        let limit = Duration::from_secs(30);
        let error = match tokio::time::timeout(limit, coll.watch([], options)).await.unwrap() {
            Err(error) => error,
            Ok(mut stream) => {
                let error = tokio::time::timeout(limit, stream.next())
                    .await
                    .expect("the error comes in time")
                    .expect("an error, not the end")
                    .expect_err("no event from a lost position");
                assert!(stream.next().await.is_none(), "the stream is closed after its error");
                error
            }
        };
        let code = error.as_server_error().map(|s| (s.code, s.code_name.clone()));
        assert_eq!(code, Some((286, "ChangeStreamHistoryLost".to_owned())), "{error}");
        assert_eq!(
            log.commands("aggregate").len() - aggregates,
            1,
            "one attempt, no resume loop"
        );

        // The CLI says so in one line and exits non-zero.
        let ns = format!("{}.numbers", db.name());
        let token_json = format!(r#"{{"_data":"{}"}}"#, token.get_str("_data").unwrap());
        let output = tokio::time::timeout(
            cli::RUN_LIMIT,
            cli::mongowire(&["watch", "--uri", &uri, "--ns", &ns, "--resume-after", &token_json]).output(),
        )
        .await
        .expect("the CLI gives up in time")
        .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(!output.status.success());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("286"), "{stderr}");
        eprintln!("after {written_mb} MB of writes: {error}\nCLI: {stderr}");
        Outcome {
            scenario: "oplog: resume from a token that fell off a 16 MB oplog (error 286, once)",
            seed: None,
            faults: 1,
            written: 1,
            seen: &[0],
            surfaced: 1,
            peak_rss_kib: own_peak_rss_kib(),
            started,
        }
        .check();
        db.drop().await.unwrap();
        client.shutdown().await;
    });
}

#[test]
fn a_slow_consumer_behind_a_fast_writer_stays_bounded() {
    scenario(async || {
        // The bench set's 2 GB oplog holds the whole backlog; a 16 MB one would drop it.
        let Some(uri) = common::uri("MONGOWIRE_BENCH_URI") else {
            return;
        };
        let documents = scale().slow_documents;
        let writer_client = Client::connect(&uri).await.unwrap();
        let db = writer_client.database(&common::unique_db("chaos_slow"));
        let start = cluster_time_now(&db).await;
        let started = Instant::now();
        let progress = Arc::new(Progress::default());
        progress.faults_done.store(true, Ordering::SeqCst);
        let fast = Pace {
            batch: 500,
            pause: Duration::ZERO,
            pad: 1000,
        };
        let writer = spawn_writer(db.clone(), progress.clone(), documents, fast);
        let ns = format!("{}.numbers", db.name());
        let start_at = format!("{}:{}", start.time, start.increment);
        let args = [
            "watch",
            "--uri",
            &uri,
            "--ns",
            &ns,
            "--start-at-operation-time",
            &start_at,
        ];
        // Once 16 lines wait unread the pipe fills and the watcher blocks on stdout.
        let mut watcher = Watcher::start_unbuffered(&args, 16);
        let mut seen = Vec::new();
        let (mut peak_rss_kib, mut largest_backlog) = (0, 0);
        while seen.len() < usize::try_from(documents).unwrap() {
            let line: serde_json::Value = serde_json::from_str(&watcher.line().await).unwrap();
            seen.push(line["documentKey"]["_id"].as_i64().unwrap());
            if seen.len() % 500 == 0 {
                peak_rss_kib = watcher.peak_rss_kib();
                largest_backlog =
                    largest_backlog.max(progress.written.load(Ordering::SeqCst) - i64::try_from(seen.len()).unwrap());
            }
            // The consumer: 1 ms for each 2 events, slower than the writer.
            if seen.len() % 2 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        peak_rss_kib = peak_rss_kib.max(watcher.peak_rss_kib());
        watcher.signal(15);
        let (status, _, stderr) = watcher.finish().await;
        assert!(status.success(), "{status:?} {stderr}");
        writer.await.unwrap();
        eprintln!(
            "slow consumer: largest backlog {largest_backlog} events (~{} MB) while the watcher peaked at {} MiB",
            largest_backlog * 1_100 / 1_000_000,
            peak_rss_kib / 1024
        );
        assert!(
            largest_backlog > documents / 2,
            "the writer stayed ahead (backlog {largest_backlog})"
        );
        assert!(peak_rss_kib < 96 * 1024, "peak RSS {peak_rss_kib} KiB");
        Outcome {
            scenario: "slow consumer (CLI, blocked on stdout) behind a fast writer of 1 KB documents",
            seed: None,
            faults: 0,
            written: progress.written.load(Ordering::SeqCst),
            seen: &seen,
            surfaced: 0,
            peak_rss_kib,
            started,
        }
        .check();
        db.drop().await.unwrap();
        writer_client.shutdown().await;
    });
}

#[test]
fn cli_killed_and_restarted_from_its_checkpoint_under_proxy_faults() {
    scenario(async || {
        let Some(uri) = common::single() else { return };
        let scale = scale();
        let seed = cli::seed("the kill schedule and the proxy's faults");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut plan = FaultPlan::new(seed, Fault::ALL);
        plan.stall = Duration::from_millis(300)..Duration::from_secs(3);
        let proxy = FaultProxy::start("127.0.0.1:0", &first_host(&uri), plan).await.unwrap();
        let watch_uri = format!(
            "mongodb://{}/?directConnection=true&socketTimeoutMS=1000&heartbeatFrequencyMS=500",
            proxy.address()
        );
        let writer_client = Client::connect(&uri).await.unwrap();
        let db = writer_client.database(&common::unique_db("chaos_cli"));
        let start = cluster_time_now(&db).await;
        let started = Instant::now();
        let progress = Arc::new(Progress::default());
        progress.faults_done.store(true, Ordering::SeqCst);
        let writer = spawn_writer(db.clone(), progress.clone(), scale.documents, STEADY);
        let directory = tempfile::tempdir().unwrap();
        let checkpoint = directory.path().join("checkpoint.json");
        let ns = format!("{}.numbers", db.name());
        let start_at = format!("{}:{}", start.time, start.increment);
        let args = [
            "watch",
            "--uri",
            &watch_uri,
            "--ns",
            &ns,
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--start-at-operation-time",
            &start_at,
            "--max-await-time-ms",
            "100",
        ];
        let writer_done = || progress.writer_done.load(Ordering::SeqCst);
        let run = cli::kill_and_restart(&args, 0, scale.documents - 1, writer_done, &mut rng).await;
        writer.await.unwrap();
        let injected = proxy.injected();
        eprintln!(
            "CLI under faults: {} kills, {} repeats, {} runs failed by themselves, proxy {injected:?}",
            run.kills, run.repeats, run.failed_runs
        );
        assert!(
            run.repeats <= run.kills,
            "{} repeats for {} kills",
            run.repeats,
            run.kills
        );
        assert!(run.kills >= 5, "only {} kills", run.kills);
        Outcome {
            scenario: "CLI: SIGKILL and restart from --checkpoint, through the proxy (every kind)",
            seed: Some(seed),
            faults: injected.total() + u64::from(run.kills),
            written: progress.written.load(Ordering::SeqCst),
            seen: &run.seen,
            surfaced: usize::try_from(run.failed_runs).unwrap(),
            peak_rss_kib: run.peak_rss_kib,
            started,
        }
        .check();
        db.drop().await.unwrap();
        writer_client.shutdown().await;
    });
}
