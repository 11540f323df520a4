//! Helpers shared by the tests that need a real server (`scripts/mongod start all` and
//! `eval "$(scripts/mongod env)"`). Without the server they print a notice and skip, unless
//! `MONGOWIRE_REQUIRE_SERVER=1` (as in CI), where a missing server fails the test.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

pub mod cli;
pub mod dns;
pub mod fixtures;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bson::{RawDocumentBuf, rawdoc};
use mongowire::driver::Client;

/// The URI in `var`, or `None` (with a notice) when the server is not configured.
pub fn uri(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(uri) if !uri.is_empty() => Some(uri),
        _ if std::env::var("MONGOWIRE_REQUIRE_SERVER").as_deref() == Ok("1") => {
            panic!("MONGOWIRE_REQUIRE_SERVER=1 but {var} is not set (scripts/mongod env)")
        }
        _ => {
            eprintln!("skipped: {var} is not set (scripts/mongod start all; eval \"$(scripts/mongod env)\")");
            None
        }
    }
}

/// The single-node replica set.
pub fn single() -> Option<String> {
    uri("MONGOWIRE_TEST_URI")
}

/// The 3-member replica set.
pub fn rs3() -> Option<String> {
    uri("MONGOWIRE_TEST_RS3_URI")
}

/// The replica set with authentication (URI carries the admin user).
pub fn auth() -> Option<String> {
    uri("MONGOWIRE_TEST_AUTH_URI")
}

/// `uri` with `extra` options appended.
pub fn with_options(uri: &str, extra: &str) -> String {
    if uri.contains('?') {
        format!("{uri}&{extra}")
    } else {
        format!("{uri}/?{extra}")
    }
}

/// A database name unique to this test run and call, so tests never see each other's data.
pub fn unique_db(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "mwt_{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `serverStatus` of the server `client` selects as primary.
pub async fn server_status(client: &Client) -> RawDocumentBuf {
    client
        .database("admin")
        .run_command(rawdoc! { "serverStatus": 1 })
        .await
        .unwrap()
}

/// A number at `path` (dotted) in a document.
pub fn number_at(doc: &bson::RawDocument, path: &str) -> i64 {
    let mut current = doc;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        current = current.get_document(part).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let last = parts[parts.len() - 1];
    match current.get(last).unwrap() {
        Some(bson::RawBsonRef::Int32(n)) => i64::from(n),
        Some(bson::RawBsonRef::Int64(n)) => n,
        Some(bson::RawBsonRef::Double(n)) => n as i64,
        other => panic!("{path}: {other:?}"),
    }
}

/// Runs `scripts/mongod ARGS` (kill or restart a member).
pub fn mongod_script(args: &[&str]) {
    let script = std::env::var("MONGOWIRE_MONGOD_SCRIPT").expect("MONGOWIRE_MONGOD_SCRIPT (scripts/mongod env)");
    let status = std::process::Command::new(script).args(args).status().unwrap();
    assert!(status.success(), "scripts/mongod {args:?} failed");
}

/// The ports of the members `client` sees as secondaries, in order.
pub fn secondaries(client: &Client) -> Vec<u16> {
    let mut ports: Vec<u16> = client
        .topology()
        .servers()
        .values()
        .filter(|s| s.server_type == mongowire::protocol::sdam::ServerType::RsSecondary)
        .map(|s| s.address.port())
        .collect();
    ports.sort_unstable();
    ports
}

/// Polls `condition` every 100 ms until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Enables a fail point on the server `client` reaches as primary; disable it with the guard.
pub async fn fail_point(client: &Client, spec: RawDocumentBuf) -> FailPoint {
    let name = spec.get_str("configureFailPoint").unwrap().to_owned();
    client.database("admin").run_command(spec).await.unwrap();
    FailPoint {
        client: client.clone(),
        name,
    }
}

pub struct FailPoint {
    client: Client,
    name: String,
}

impl FailPoint {
    pub async fn disable(self) {
        let off = rawdoc! { "configureFailPoint": self.name.as_str(), "mode": "off" };
        self.client.database("admin").run_command(off).await.unwrap();
    }
}

/// Records the commands a client sends, for tests that check what went on the wire.
#[derive(Debug, Default)]
pub struct CommandLog {
    started: std::sync::Mutex<Vec<(String, RawDocumentBuf, mongowire::protocol::ServerAddress)>>,
}

impl mongowire::driver::CommandListener for CommandLog {
    fn on_command(&self, event: &mongowire::driver::CommandEvent) {
        if let mongowire::driver::CommandEvent::Started {
            command_name,
            command,
            address,
            ..
        } = event
        {
            self.started
                .lock()
                .unwrap()
                .push((command_name.clone(), command.clone(), address.clone()));
        }
    }
}

impl CommandLog {
    /// Every command named `name` sent so far.
    pub fn commands(&self, name: &str) -> Vec<RawDocumentBuf> {
        self.started
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, ..)| n == name)
            .map(|(_, c, _)| c.clone())
            .collect()
    }

    /// The servers the commands named `name` went to.
    pub fn addresses(&self, name: &str) -> Vec<mongowire::protocol::ServerAddress> {
        self.started
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, ..)| n == name)
            .map(|(.., a)| a.clone())
            .collect()
    }

    /// The names of every command sent so far, in order.
    pub fn names(&self) -> Vec<String> {
        self.started.lock().unwrap().iter().map(|(n, ..)| n.clone()).collect()
    }
}

/// A client on `uri` whose commands are recorded in the returned log.
pub async fn logged_client(uri: &str) -> (Client, std::sync::Arc<CommandLog>) {
    let log = std::sync::Arc::new(CommandLog::default());
    let mut options = mongowire::driver::ClientOptions::parse(uri).unwrap();
    options.command_listener = Some(log.clone());
    (Client::with_options(options).await.unwrap(), log)
}
