//! Executing a test file and its tests, in the order "Test Runner Implementation" gives:
//! requirements, `initialData` through the internal client, fresh entities, the operations,
//! then listeners off, fail points off, `expectEvents`, and the entity map cleared (change
//! streams closed, clients shut down) whatever happened before.

use std::path::Path;
use std::time::Instant;

use bson::{Bson, Document, rawdoc};
use mongowire::driver::Client;
use mongowire::protocol::sdam::TopologyType;

use super::entities::{EntityMap, StartedEvent, create_entities, take_str};
use super::matching::match_root;
use super::operations::{self, EnabledFailPoint, SUPPORTED_OPERATIONS, raw};
use super::requirements::{Deployment, SUPPORTED_SCHEMA, Version, schema_supported, unmet};
use super::{Failure, show};

/// What became of one test.
#[derive(Debug, Clone)]
pub(crate) enum Verdict {
    Passed,
    Failed(String),
    /// Why it was not run: a requirement, or a part of the format the runner lacks.
    Skipped(String),
}

/// One test's description and verdict.
#[derive(Debug)]
pub(crate) struct TestReport {
    pub(crate) description: String,
    pub(crate) verdict: Verdict,
}

/// The deployment the tests run against and the internal client that sets up their data.
#[derive(Debug)]
pub(crate) struct Environment {
    uri: String,
    internal: Client,
    deployment: Deployment,
}

impl Environment {
    /// Connects the internal client (majority writes, as setup requires) and reads the server
    /// version and topology the requirements are checked against.
    pub(crate) async fn connect(uri: &str) -> Result<Environment, String> {
        let internal = Client::connect(&crate::common::with_options(uri, "w=majority"))
            .await
            .map_err(|e| e.to_string())?;
        let info = internal
            .database("admin")
            .run_command(rawdoc! { "buildInfo": 1 })
            .await
            .map_err(|e| format!("buildInfo: {e}"))?;
        let numbers: Vec<u32> = info
            .get_array("versionArray")
            .map_err(|e| format!("buildInfo.versionArray: {e}"))?
            .into_iter()
            .filter_map(|n| n.ok()?.as_i32().and_then(|n| u32::try_from(n).ok()))
            .collect();
        let [major, minor, patch, ..] = numbers[..] else {
            return Err(format!("buildInfo.versionArray has {} numbers", numbers.len()));
        };
        let topology = match internal.topology().topology_type() {
            TopologyType::Single => "single",
            TopologyType::ReplicaSetNoPrimary | TopologyType::ReplicaSetWithPrimary => "replicaset",
            TopologyType::Sharded => "sharded",
            TopologyType::LoadBalanced => "load-balanced",
            TopologyType::Unknown => return Err("the topology is still unknown after buildInfo".into()),
        };
        let auth = mongowire::driver::ClientOptions::parse(uri)
            .map_err(|e| e.to_string())?
            .connection_string
            .credential
            .is_some();
        Ok(Environment {
            uri: uri.to_owned(),
            internal,
            deployment: Deployment {
                version: Version(major, minor, patch),
                topology,
                auth,
            },
        })
    }

    /// "7.0.15 replicaset", for the report.
    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.deployment.version, self.deployment.topology)
    }

    /// Shuts the internal client down.
    pub(crate) async fn shutdown(self) {
        self.internal.shutdown().await;
    }
}

const FILE_KEYS: [&str; 7] = [
    "description",
    "schemaVersion",
    "runOnRequirements",
    "createEntities",
    "initialData",
    "tests",
    "_yamlAnchors",
];

const TEST_KEYS: [&str; 5] = [
    "description",
    "runOnRequirements",
    "skipReason",
    "operations",
    "expectEvents",
];

/// Runs every test of the file at `path`, printing each verdict as it comes.
pub(crate) async fn run_file(env: &Environment, path: &Path) -> Vec<TestReport> {
    let file = match load(path) {
        Ok(file) => file,
        Err(message) => {
            return vec![TestReport {
                description: "(the whole file)".into(),
                verdict: Verdict::Failed(message),
            }];
        }
    };
    let tests: Vec<Document> = file
        .get_array("tests")
        .map(|tests| tests.iter().filter_map(|t| t.as_document().cloned()).collect())
        .unwrap_or_default();
    let whole_file = file_verdict(&file, &env.deployment);
    let mut reports = Vec::new();
    for test in &tests {
        let description = test.get_str("description").unwrap_or("(no description)").to_owned();
        let started = Instant::now();
        let verdict = match &whole_file {
            Some(verdict) => verdict.clone(),
            None => run_test(env, &file, test).await,
        };
        let seconds = started.elapsed().as_secs_f64();
        match &verdict {
            Verdict::Passed => println!("  passed   {description} ({seconds:.1} s)"),
            Verdict::Failed(why) => println!("  FAILED   {description} ({seconds:.1} s): {why}"),
            Verdict::Skipped(why) => println!("  skipped  {description}: {why}"),
        }
        reports.push(TestReport { description, verdict });
    }
    reports
}

fn load(path: &Path) -> Result<Document, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    // Extended JSON, canonical or relaxed, with key order kept (serde_json's preserve_order).
    match Bson::try_from(json) {
        Ok(Bson::Document(file)) => Ok(file),
        Ok(other) => Err(format!("the file is a {:?}, not a document", other.element_type())),
        Err(e) => Err(format!("not Extended JSON: {e}")),
    }
}

/// A verdict for every test of the file, when the file itself decides it.
fn file_verdict(file: &Document, deployment: &Deployment) -> Option<Verdict> {
    let schema = file.get_str("schemaVersion").unwrap_or("");
    match schema_supported(schema) {
        Ok(true) => {}
        Ok(false) => {
            return Some(Verdict::Failed(format!(
                "schema version {schema} is newer than this runner's {SUPPORTED_SCHEMA}"
            )));
        }
        Err(failure) => return Some(verdict_of(Err(failure))),
    }
    if let Some(key) = file.keys().find(|key| !FILE_KEYS.contains(&key.as_str())) {
        return Some(verdict_of(Err(Failure::unsupported(format!("the file field {key}")))));
    }
    match file.get_array("runOnRequirements").map(|list| unmet(list, deployment)) {
        Ok(Ok(Some(reason))) => Some(Verdict::Skipped(reason)),
        Ok(Err(failure)) => Some(verdict_of(Err(failure))),
        _ => None,
    }
}

fn verdict_of(result: Result<(), Failure>) -> Verdict {
    match result {
        Ok(()) => Verdict::Passed,
        Err(Failure::Failed(message)) => Verdict::Failed(message),
        Err(Failure::Unsupported(what)) => Verdict::Skipped(format!("runner limitation: unsupported {what}")),
    }
}

async fn run_test(env: &Environment, file: &Document, test: &Document) -> Verdict {
    if let Ok(reason) = test.get_str("skipReason") {
        return Verdict::Skipped(format!("skipReason: {reason}"));
    }
    if let Ok(list) = test.get_array("runOnRequirements") {
        match unmet(list, &env.deployment) {
            Ok(None) => {}
            Ok(Some(reason)) => return Verdict::Skipped(reason),
            Err(failure) => return verdict_of(Err(failure)),
        }
    }
    if let Some(key) = test.keys().find(|key| !TEST_KEYS.contains(&key.as_str())) {
        return verdict_of(Err(Failure::unsupported(format!("the test field {key}"))));
    }
    let operations: Vec<&Bson> = test
        .get_array("operations")
        .map(|ops| ops.iter().collect())
        .unwrap_or_default();
    let unsupported = operations
        .iter()
        .filter_map(|op| op.as_document()?.get_str("name").ok())
        .find(|name| !SUPPORTED_OPERATIONS.contains(name));
    if let Some(name) = unsupported {
        return verdict_of(Err(Failure::unsupported(format!("operation {name}"))));
    }
    verdict_of(execute(env, file, test, &operations).await)
}

async fn execute(env: &Environment, file: &Document, test: &Document, operations: &[&Bson]) -> Result<(), Failure> {
    if let Ok(data) = file.get_array("initialData") {
        set_up(&env.internal, data).await?;
    }
    let mut entities = EntityMap::default();
    let mut fail_points = Vec::new();
    let no_entities = Vec::new();
    let to_create = file.get_array("createEntities").unwrap_or(&no_entities);
    let mut result = create_entities(&env.uri, to_create, &mut entities).await;
    for (index, operation) in operations.iter().enumerate() {
        if result.is_err() {
            break;
        }
        let Bson::Document(operation) = operation else {
            result = Err(Failure::failed(format!("operation {index} is not a document")));
            break;
        };
        result = operations::run(operation, &mut entities, &mut fail_points)
            .await
            .map_err(|failure| context(failure, &format!("operation {index} ({})", summary(operation))));
    }
    entities.stop_event_logs();
    let disabled = disable_fail_points(fail_points).await;
    let mut result = result.and(disabled);
    if result.is_ok()
        && let Ok(expected) = test.get_array("expectEvents")
    {
        result = check_events(expected, &entities);
    }
    entities.clear().await;
    result
}

fn summary(operation: &Document) -> String {
    format!(
        "{} on {}",
        operation.get_str("name").unwrap_or("?"),
        operation.get_str("object").unwrap_or("?")
    )
}

fn context(failure: Failure, context: &str) -> Failure {
    match failure {
        Failure::Failed(message) => Failure::Failed(format!("{context}: {message}")),
        unsupported => unsupported,
    }
}

/// `initialData`: each collection dropped (with its queryable-encryption companions), created,
/// and filled, all with majority writes through the internal client.
async fn set_up(internal: &Client, data: &[Bson]) -> Result<(), Failure> {
    for collection_data in data {
        let Bson::Document(collection_data) = collection_data else {
            return Err(Failure::failed("initialData entries must be documents"));
        };
        let mut spec = collection_data.clone();
        let collection_name = take_str(&mut spec, "collectionName")?;
        let database = internal.database(&take_str(&mut spec, "databaseName")?);
        let documents = match spec.remove("documents") {
            Some(Bson::Array(documents)) => documents,
            _ => return Err(Failure::failed("initialData: documents must be an array")),
        };
        let create_options = match spec.remove("createOptions") {
            None => None,
            Some(Bson::Document(options)) => Some(raw(&options)?),
            Some(other) => return Err(Failure::failed(format!("createOptions {}", show(&other)))),
        };
        if let Some(key) = spec.keys().next() {
            return Err(Failure::unsupported(format!("initialData field {key}")));
        }
        let setup_error = |e: mongowire::Error| Failure::failed(format!("initialData: {e}"));
        for name in [
            collection_name.clone(),
            format!("enxcol_.{collection_name}.esc"),
            format!("enxcol_.{collection_name}.ecoc"),
        ] {
            database.collection(&name).drop().await.map_err(setup_error)?;
        }
        if create_options.is_some() || documents.is_empty() {
            database
                .create_collection(&collection_name, create_options.as_deref())
                .await
                .map_err(setup_error)?;
        }
        if !documents.is_empty() {
            let documents = documents
                .iter()
                .map(|d| match d {
                    Bson::Document(d) => raw(d),
                    other => Err(Failure::failed(format!("initialData document {}", show(other)))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            database
                .collection(&collection_name)
                .insert_many(documents)
                .await
                .map_err(setup_error)?;
        }
    }
    Ok(())
}

/// Turns off every fail point the test enabled, through the client that enabled it.
async fn disable_fail_points(fail_points: Vec<EnabledFailPoint>) -> Result<(), Failure> {
    let mut result = Ok(());
    for EnabledFailPoint { client, name } in fail_points {
        let off = rawdoc! { "configureFailPoint": name.as_str(), "mode": "off" };
        if let Err(e) = client.database("admin").run_command(off).await {
            result = Err(Failure::failed(format!("turning fail point {name} off: {e}")));
        }
    }
    result
}

/// `expectEvents`: per client, the observed command started events against the expected ones,
/// in order, with extra events allowed only after the last expected one and only with
/// `ignoreExtraEvents`.
fn check_events(expected: &[Bson], entities: &EntityMap) -> Result<(), Failure> {
    for entry in expected {
        let Bson::Document(entry) = entry else {
            return Err(Failure::failed("expectEvents entries must be documents"));
        };
        let mut entry = entry.clone();
        let client = take_str(&mut entry, "client")?;
        match entry.remove("eventType") {
            None => {}
            Some(Bson::String(kind)) if kind == "command" => {}
            Some(other) => return Err(Failure::unsupported(format!("eventType {}", show(&other)))),
        }
        let events = match entry.remove("events") {
            Some(Bson::Array(events)) => events,
            _ => return Err(Failure::failed("expectEvents: events must be an array")),
        };
        let ignore_extra = match entry.remove("ignoreExtraEvents") {
            None => false,
            Some(Bson::Boolean(ignore)) => ignore,
            Some(other) => return Err(Failure::failed(format!("ignoreExtraEvents {}", show(&other)))),
        };
        if let Some(key) = entry.keys().next() {
            return Err(Failure::unsupported(format!("expectEvents field {key}")));
        }
        let log = entities
            .client(&client)?
            .events
            .as_ref()
            .ok_or_else(|| Failure::failed(format!("client {client} does not observe events")))?;
        let observed = log.started();
        let names: Vec<String> = observed
            .iter()
            .map(|e| format!("{}@{}", e.command_name, e.database_name))
            .collect();
        let count_ok = if ignore_extra {
            observed.len() >= events.len()
        } else {
            observed.len() == events.len()
        };
        if !count_ok {
            return Err(Failure::failed(format!(
                "client {client}: expected {} events{}, observed {}: [{}]",
                events.len(),
                if ignore_extra { " or more" } else { "" },
                observed.len(),
                names.join(", ")
            )));
        }
        for (index, (expected, actual)) in events.iter().zip(&observed).enumerate() {
            check_event(expected, actual)
                .map_err(|failure| context(failure, &format!("client {client} event {index}")))?;
        }
    }
    Ok(())
}

fn check_event(expected: &Bson, actual: &StartedEvent) -> Result<(), Failure> {
    let mut fields = expected.as_document().into_iter().flat_map(Document::iter);
    let (Some((kind, Bson::Document(assertions))), None) = (fields.next(), fields.next()) else {
        return Err(Failure::failed(format!(
            "expected event {} is not {{ kind: {{...}} }}",
            show(expected)
        )));
    };
    if kind != "commandStartedEvent" {
        return Err(Failure::unsupported(format!("expected event {kind}")));
    }
    for (key, value) in assertions {
        match (key.as_str(), value) {
            ("command", command) => {
                let actual_command = Bson::Document(actual.command.clone());
                match_root(command, Some(&actual_command))
                    .map_err(|failure| context(failure, &format!("command {}", show(&actual_command))))?;
            }
            ("commandName", Bson::String(name)) if *name != actual.command_name => {
                return Err(Failure::failed(format!(
                    "expected command {name}, observed {}",
                    actual.command_name
                )));
            }
            ("databaseName", Bson::String(name)) if *name != actual.database_name => {
                return Err(Failure::failed(format!(
                    "expected database {name}, observed {} (command {})",
                    actual.database_name, actual.command_name
                )));
            }
            ("commandName" | "databaseName", Bson::String(_)) => {}
            (other, _) => return Err(Failure::unsupported(format!("commandStartedEvent assertion {other}"))),
        }
    }
    Ok(())
}
