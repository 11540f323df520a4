//! The entity map: the clients, databases, collections and change streams a test names, each
//! created fresh for every test. Names are unique and every lookup checks the entity's type.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bson::{Bson, Document};
use mongowire::driver::{ChangeStream, Client, ClientOptions, Collection, CommandEvent, CommandListener, Database};

use super::{Failure, show};

/// How long closing a change stream or shutting a client down may take at the end of a test.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A command started event as a client observed it.
#[derive(Debug, Clone)]
pub(crate) struct StartedEvent {
    pub(crate) command: Document,
    pub(crate) command_name: String,
    pub(crate) database_name: String,
}

/// The command started events of one client, filtered as the format says: the names in
/// `ignoreCommandMonitoringEvents`, `configureFailPoint`, and commands with credentials (unless
/// `observeSensitiveCommands`) are never recorded, nor is anything after [`EventLog::stop`].
#[derive(Debug)]
pub(crate) struct EventLog {
    ignored: Vec<String>,
    observe_sensitive: bool,
    recording: AtomicBool,
    started: Mutex<Vec<StartedEvent>>,
}

/// Commands the Command Logging and Monitoring specification calls sensitive.
const SENSITIVE_COMMANDS: [&str; 9] = [
    "authenticate",
    "saslstart",
    "saslcontinue",
    "getnonce",
    "createuser",
    "updateuser",
    "copydbgetnonce",
    "copydbsaslstart",
    "copydb",
];

impl EventLog {
    fn is_ignored(&self, name: &str, command: &bson::RawDocument) -> bool {
        if name == "configureFailPoint" || self.ignored.iter().any(|i| i == name) {
            return true;
        }
        if self.observe_sensitive {
            return false;
        }
        let lower = name.to_ascii_lowercase();
        // hello and legacy hello are sensitive only when they carry speculative authentication.
        SENSITIVE_COMMANDS.contains(&lower.as_str())
            || (matches!(lower.as_str(), "hello" | "ismaster")
                && command.get("speculativeAuthenticate").ok().flatten().is_some())
    }

    /// Stops recording: the format disables listeners once the operations are done.
    pub(crate) fn stop(&self) {
        self.recording.store(false, Ordering::SeqCst);
    }

    /// The events recorded so far.
    pub(crate) fn started(&self) -> Vec<StartedEvent> {
        self.started.lock().unwrap().clone()
    }
}

impl CommandListener for EventLog {
    fn on_command(&self, event: &CommandEvent) {
        let CommandEvent::Started {
            command,
            command_name,
            database_name,
            ..
        } = event
        else {
            return;
        };
        if !self.recording.load(Ordering::SeqCst) || self.is_ignored(command_name, command) {
            return;
        }
        let command = Document::try_from(command.as_ref()).expect("a monitored command is valid BSON");
        self.started.lock().unwrap().push(StartedEvent {
            command,
            command_name: command_name.clone(),
            database_name: database_name.clone(),
        });
    }
}

/// A client entity and, when it observes events, its log.
#[derive(Debug)]
pub(crate) struct TestClient {
    pub(crate) client: Client,
    pub(crate) events: Option<Arc<EventLog>>,
}

/// One entity of the map.
#[derive(Debug)]
pub(crate) enum Entity {
    Client(TestClient),
    /// A database, with the client it came from (for commands on `admin`).
    Database {
        client: Client,
        database: Database,
    },
    /// A collection, with its client and database (for commands on them).
    Collection {
        client: Client,
        database: Database,
        collection: Collection,
    },
    /// A change stream saved with `saveResultAsEntity` (boxed: it is large).
    ChangeStream(Box<ChangeStream>),
}

impl Entity {
    /// The entity's type, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Entity::Client(_) => "client",
            Entity::Database { .. } => "database",
            Entity::Collection { .. } => "collection",
            Entity::ChangeStream(_) => "change stream",
        }
    }
}

/// The entities of one test.
#[derive(Debug, Default)]
pub(crate) struct EntityMap {
    entities: HashMap<String, Entity>,
}

impl EntityMap {
    /// Adds an entity; a name already in use is an error.
    pub(crate) fn insert(&mut self, id: &str, entity: Entity) -> Result<(), Failure> {
        if self.entities.contains_key(id) {
            return Err(Failure::failed(format!("entity {id:?} already exists")));
        }
        self.entities.insert(id.to_owned(), entity);
        Ok(())
    }

    /// The entity `id`; a missing one is an error.
    pub(crate) fn get(&self, id: &str) -> Result<&Entity, Failure> {
        self.entities
            .get(id)
            .ok_or_else(|| Failure::failed(format!("no entity {id:?}")))
    }

    /// The client entity `id`.
    pub(crate) fn client(&self, id: &str) -> Result<&TestClient, Failure> {
        match self.get(id)? {
            Entity::Client(client) => Ok(client),
            other => Err(wrong_kind(id, "client", other)),
        }
    }

    /// The change stream entity `id`, to iterate.
    pub(crate) fn change_stream(&mut self, id: &str) -> Result<&mut ChangeStream, Failure> {
        match self.entities.get_mut(id) {
            Some(Entity::ChangeStream(stream)) => Ok(stream),
            Some(other) => Err(wrong_kind(id, "change stream", other)),
            None => Err(Failure::failed(format!("no entity {id:?}"))),
        }
    }

    /// Stops every client's event log.
    pub(crate) fn stop_event_logs(&self) {
        for entity in self.entities.values() {
            if let Entity::Client(TestClient { events: Some(log), .. }) = entity {
                log.stop();
            }
        }
    }

    /// Clears the map: closes change streams (killing their cursors), then shuts the clients
    /// down (ending their sessions, closing their connections).
    pub(crate) async fn clear(self) {
        let mut clients = Vec::new();
        for entity in self.entities.into_values() {
            match entity {
                Entity::ChangeStream(stream) => {
                    let _ = tokio::time::timeout(CLEANUP_TIMEOUT, stream.close()).await;
                }
                Entity::Client(client) => clients.push(client.client),
                _ => {}
            }
        }
        for client in clients {
            let _ = tokio::time::timeout(CLEANUP_TIMEOUT, client.shutdown()).await;
        }
    }
}

pub(crate) fn wrong_kind(id: &str, wanted: &str, found: &Entity) -> Failure {
    Failure::failed(format!("entity {id:?} is a {}, not a {wanted}", found.kind()))
}

/// Creates the entities of `createEntities`, in order, for the deployment at `uri`.
pub(crate) async fn create_entities(uri: &str, list: &[Bson], map: &mut EntityMap) -> Result<(), Failure> {
    for entity in list {
        let Some((kind, Bson::Document(spec))) = entity.as_document().and_then(|d| d.iter().next()) else {
            return Err(Failure::failed(format!(
                "entity {} is not {{ kind: {{...}} }}",
                show(entity)
            )));
        };
        let mut spec = spec.clone();
        let id = take_str(&mut spec, "id")?;
        let created = match kind.as_str() {
            "client" => Entity::Client(create_client(uri, &mut spec).await?),
            "database" => {
                let client = map.client(&take_str(&mut spec, "client")?)?.client.clone();
                let database = client.database(&take_str(&mut spec, "databaseName")?);
                Entity::Database { client, database }
            }
            "collection" => {
                let parent = take_str(&mut spec, "database")?;
                let (client, database) = match map.get(&parent)? {
                    Entity::Database { client, database } => (client.clone(), database.clone()),
                    other => return Err(wrong_kind(&parent, "database", other)),
                };
                let collection = database.collection(&take_str(&mut spec, "collectionName")?);
                Entity::Collection {
                    client,
                    database,
                    collection,
                }
            }
            other => return Err(Failure::unsupported(format!("{other} entities"))),
        };
        // A failure, not a skip: the option may be one mongowire lacks.
        if let Some(key) = spec.keys().next() {
            return Err(Failure::failed(format!("unsupported {kind} entity option {key}")));
        }
        map.insert(&id, created)?;
    }
    Ok(())
}

async fn create_client(uri: &str, spec: &mut Document) -> Result<TestClient, Failure> {
    // Only meaningful on sharded or load-balanced deployments, which the requirements skip.
    spec.remove("useMultipleMongoses");
    let observe = match spec.remove("observeEvents") {
        None => Vec::new(),
        Some(Bson::Array(names)) => names,
        Some(other) => return Err(Failure::failed(format!("observeEvents: {}", show(&other)))),
    };
    let ignored = match spec.remove("ignoreCommandMonitoringEvents") {
        None => Vec::new(),
        Some(Bson::Array(names)) => names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
        Some(other) => {
            return Err(Failure::failed(format!(
                "ignoreCommandMonitoringEvents: {}",
                show(&other)
            )));
        }
    };
    let observe_sensitive = match spec.remove("observeSensitiveCommands") {
        None => false,
        Some(Bson::Boolean(b)) => b,
        Some(other) => return Err(Failure::failed(format!("observeSensitiveCommands: {}", show(&other)))),
    };
    for name in &observe {
        if name.as_str() != Some("commandStartedEvent") {
            return Err(Failure::unsupported(format!("observing {}", show(name))));
        }
    }
    let mut options = ClientOptions::parse(uri).map_err(|e| Failure::failed(format!("client URI: {e}")))?;
    let events = (!observe.is_empty()).then(|| {
        Arc::new(EventLog {
            ignored,
            observe_sensitive,
            recording: AtomicBool::new(true),
            started: Mutex::new(Vec::new()),
        })
    });
    if let Some(log) = &events {
        options.command_listener = Some(log.clone());
    }
    let client = Client::with_options(options)
        .await
        .map_err(|e| Failure::failed(format!("creating a client: {e}")))?;
    Ok(TestClient { client, events })
}

/// Removes and returns the string `key` of `doc`.
pub(crate) fn take_str(doc: &mut Document, key: &str) -> Result<String, Failure> {
    match doc.remove(key) {
        Some(Bson::String(s)) => Ok(s),
        Some(other) => Err(Failure::failed(format!("{key} must be a string, not {}", show(&other)))),
        None => Err(Failure::failed(format!("{key} is required"))),
    }
}
