//! The user-facing client: `Client`, `Database`, `Collection`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bson::{RawBson, RawDocument, RawDocumentBuf};

use crate::driver::change_stream::ChangeStream;
use crate::driver::cursor::Cursor;
use crate::driver::handshake::{ConnectionOptions, detect_environment};
use crate::driver::monitoring::CommandListener;
use crate::driver::operation::{Executor, Retry};
use crate::driver::pool::PoolOptions;
use crate::driver::session::ClientSession;
use crate::driver::srv;
use crate::driver::tls::{TlsOptions, TrustRoots, client_config};
use crate::driver::topology::{Topology, TopologyOptions};
use crate::error::Error;
use crate::protocol::change_stream::{ChangeStreamMachine, ChangeStreamOptions, WatchTarget};
use crate::protocol::crud::{self, Command, DeleteResult, FindOptions, UpdateModifications, UpdateResult, WriteLimits};
use crate::protocol::cursor::Namespace;
use crate::protocol::handshake::HandshakeRequest;
use crate::protocol::sdam::{
    DEFAULT_HEARTBEAT_FREQUENCY, DEFAULT_LOCAL_THRESHOLD, SelectionCriteria, TopologyDescription,
};
use crate::protocol::session::ServerSession;
use crate::protocol::uri::{ConnectionString, Scheme};
use crate::protocol::{ReadConcern, ReadPreference, WriteConcern};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_POOL_SIZE: usize = 100;

/// Everything a client is configured with: a parsed connection string, plus settings that have
/// no connection-string form.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The parsed connection string.
    pub connection_string: ConnectionString,
    /// Ask this DNS server, instead of the system's resolvers, for `mongodb+srv://` records and
    /// for the addresses of every host (split-horizon setups, tests).
    pub dns_server: Option<SocketAddr>,
    /// Trust anchors for TLS when `tlsCAFile` is not given.
    pub trust_roots: TrustRoots,
    /// Receives an event for every command operations send.
    pub command_listener: Option<Arc<dyn CommandListener>>,
}

impl ClientOptions {
    /// Options from a connection string.
    pub fn parse(uri: &str) -> Result<ClientOptions, Error> {
        Ok(ClientOptions {
            connection_string: ConnectionString::parse(uri)?,
            dns_server: None,
            trust_roots: TrustRoots::System,
            command_listener: None,
        })
    }
}

/// A MongoDB client: a topology of monitored servers with a connection pool each. Cheap to
/// clone; clones share everything. Call [`Client::shutdown`] to end server sessions and close
/// connections promptly; dropping the last clone closes them too.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

#[derive(Debug)]
pub(crate) struct ClientInner {
    pub(crate) executor: Executor,
    pub(crate) read_preference: ReadPreference,
    pub(crate) read_concern: Option<ReadConcern>,
    pub(crate) write_concern: Option<WriteConcern>,
    pub(crate) limits: WriteLimits,
    /// `socketTimeoutMS`, when set: also how long a getMore may stay silent past its await time.
    pub(crate) socket_timeout: Option<Duration>,
}

impl ClientInner {
    /// Opens a change stream on `target` with the client's read preference and read concern
    /// unless `options` sets its own.
    pub(crate) async fn watch(
        self: &Arc<ClientInner>,
        target: WatchTarget,
        pipeline: Vec<RawDocumentBuf>,
        mut options: ChangeStreamOptions,
        session: Option<ClientSession>,
    ) -> Result<ChangeStream, Error> {
        let read_preference = options
            .read_preference
            .clone()
            .unwrap_or_else(|| self.read_preference.clone());
        if options.read_concern.is_none() {
            options.read_concern = self.read_concern.clone();
        }
        let machine = ChangeStreamMachine::new(target, pipeline, options);
        ChangeStream::open(
            self.clone(),
            machine,
            SelectionCriteria::ReadPreference(read_preference),
            session,
        )
        .await
    }
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        self.executor.topology.shutdown();
    }
}

impl Client {
    /// Connects to the deployment a connection string names. Returns once monitoring has
    /// started; the first operation waits (up to `serverSelectionTimeoutMS`) for a suitable
    /// server. `mongodb+srv://` names are resolved first.
    pub async fn connect(uri: &str) -> Result<Client, Error> {
        Client::with_options(ClientOptions::parse(uri)?).await
    }

    /// Connects with explicit options.
    pub async fn with_options(options: ClientOptions) -> Result<Client, Error> {
        let mut cs = options.connection_string;
        let resolver = match options.dns_server {
            Some(server) => Some(Arc::new(srv::resolver(Some(server))?)),
            None => None,
        };
        if cs.scheme == Scheme::Srv {
            let system;
            let resolver = match &resolver {
                Some(own) => own.as_ref(),
                None => {
                    system = srv::resolver(None)?;
                    &system
                }
            };
            let host = cs.srv_host().unwrap_or_default().to_owned();
            let query = cs.srv_query_name().unwrap_or_default();
            let records = srv::lookup(resolver, &query, &host).await?;
            cs.apply_srv_records(&records.targets, &records.txt)?;
        }
        let o = &cs.options;
        let tls = if o.tls.unwrap_or(false) {
            let insecure = o.tls_insecure.unwrap_or(false);
            Some(client_config(&TlsOptions {
                ca_file: o.tls_ca_file.clone(),
                certificate_key_file: o.tls_certificate_key_file.clone(),
                allow_invalid_certificates: insecure || o.tls_allow_invalid_certificates.unwrap_or(false),
                allow_invalid_hostnames: insecure || o.tls_allow_invalid_hostnames.unwrap_or(false),
                roots: options.trust_roots,
            })?)
        } else {
            None
        };
        if o.tls_certificate_key_file_password.is_some() {
            return Err(Error::usage(
                "tlsCertificateKeyFilePassword: encrypted private keys are not supported; decrypt the key file",
            ));
        }
        let connect_timeout = o.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let server_selection_timeout = o.server_selection_timeout.unwrap_or(DEFAULT_SERVER_SELECTION_TIMEOUT);
        let handshake = HandshakeRequest {
            app_name: o.app_name.clone(),
            compressors: o.compressors.clone().unwrap_or_default(),
            load_balanced: o.load_balanced.unwrap_or(false),
            environment: detect_environment(),
            ..HandshakeRequest::default()
        };
        let connection = ConnectionOptions {
            tls,
            connect_timeout,
            socket_timeout: o.socket_timeout.filter(|t| !t.is_zero()),
            handshake,
            zlib_level: o.zlib_compression_level,
            credential: cs.credential.clone(),
            scram_cache: Arc::default(),
            resolver,
        };
        let monitor_connection = ConnectionOptions {
            socket_timeout: Some(connect_timeout),
            handshake: HandshakeRequest {
                compressors: Vec::new(),
                ..connection.handshake.clone()
            },
            credential: None,
            ..connection.clone()
        };
        let pool = PoolOptions {
            max_size: o
                .max_pool_size
                .map_or(DEFAULT_MAX_POOL_SIZE, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            max_idle_time: o.max_idle_time.filter(|t| !t.is_zero()),
        };
        let description = TopologyDescription::new(
            cs.hosts.clone(),
            o.replica_set.clone(),
            o.direct_connection.unwrap_or(false),
            o.load_balanced.unwrap_or(false),
        )?
        .with_heartbeat_frequency(o.heartbeat_frequency.unwrap_or(DEFAULT_HEARTBEAT_FREQUENCY))?;
        let topology = Topology::start(
            description,
            TopologyOptions {
                heartbeat_frequency: o.heartbeat_frequency.unwrap_or(DEFAULT_HEARTBEAT_FREQUENCY),
                server_selection_timeout,
                local_threshold: o.local_threshold.unwrap_or(DEFAULT_LOCAL_THRESHOLD),
                connection: Arc::new(connection),
                monitor_connection: Arc::new(monitor_connection),
                pool,
            },
        );
        let checkout_timeout = o.wait_queue_timeout.unwrap_or(server_selection_timeout);
        let executor = Executor::new(
            topology,
            o.retry_reads.unwrap_or(true),
            o.retry_writes.unwrap_or(true),
            checkout_timeout,
            options.command_listener.clone(),
        );
        Ok(Client {
            inner: Arc::new(ClientInner {
                executor,
                read_preference: o.read_preference().unwrap_or_default(),
                read_concern: o.read_concern(),
                write_concern: o.write_concern(),
                limits: WriteLimits::default(),
                socket_timeout: o.socket_timeout.filter(|t| !t.is_zero()),
            }),
        })
    }

    /// A handle on a database; no I/O.
    pub fn database(&self, name: &str) -> Database {
        Database {
            client: self.clone(),
            name: name.to_owned(),
        }
    }

    /// A change stream on every database of the deployment (`allChangesForCluster`).
    pub async fn watch(
        &self,
        pipeline: impl IntoIterator<Item = RawDocumentBuf>,
        options: ChangeStreamOptions,
    ) -> Result<ChangeStream, Error> {
        self.inner
            .watch(WatchTarget::Cluster, pipeline.into_iter().collect(), options, None)
            .await
    }

    /// [`Client::watch`] in an explicit session, which the stream keeps until it is dropped.
    pub async fn watch_in(
        &self,
        session: ClientSession,
        pipeline: impl IntoIterator<Item = RawDocumentBuf>,
        options: ChangeStreamOptions,
    ) -> Result<ChangeStream, Error> {
        self.inner
            .watch(
                WatchTarget::Cluster,
                pipeline.into_iter().collect(),
                options,
                Some(session),
            )
            .await
    }

    /// Starts an explicit session. Waits for server selection when the client does not yet know
    /// whether the deployment supports sessions.
    pub async fn start_session(&self) -> Result<ClientSession, Error> {
        let executor = &self.inner.executor;
        let mut timeout = executor.topology.snapshot().logical_session_timeout_minutes();
        if timeout.is_none() {
            let any = SelectionCriteria::ReadPreference(ReadPreference::with_mode(
                crate::protocol::ReadPreferenceMode::PrimaryPreferred,
            ));
            executor.topology.select_server(&any, &[]).await?;
            timeout = executor.topology.snapshot().logical_session_timeout_minutes();
        }
        let timeout = timeout.ok_or_else(|| Error::usage("this deployment does not support sessions"))?;
        let session = executor
            .implicit_session(Some(Duration::from_secs(u64::from(timeout) * 60)))
            .ok_or_else(|| Error::usage("this deployment does not support sessions"))?;
        Ok(ClientSession::new(self.clone(), session))
    }

    /// What the client knows of the deployment now: servers, types, round-trip times.
    pub fn topology(&self) -> TopologyDescription {
        self.inner.executor.topology.snapshot().as_ref().clone()
    }

    /// Ends pooled server sessions on the server (`endSessions`), stops monitoring and closes
    /// every connection. Errors are ignored: the server forgets sessions after a timeout anyway.
    pub async fn shutdown(self) {
        let criteria = SelectionCriteria::ReadPreference(ReadPreference::with_mode(
            crate::protocol::ReadPreferenceMode::PrimaryPreferred,
        ));
        for body in self.inner.executor.drain_sessions() {
            let _ = self
                .inner
                .executor
                .execute(Command::new("admin", body), &criteria, Retry::No, None)
                .await;
        }
        self.inner.executor.topology.shutdown();
    }

    pub(crate) fn inner(&self) -> &Arc<ClientInner> {
        &self.inner
    }
}

/// A database handle.
#[derive(Debug, Clone)]
pub struct Database {
    client: Client,
    name: String,
}

impl Database {
    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A collection handle; no I/O.
    pub fn collection(&self, name: &str) -> Collection {
        Collection {
            client: self.client.clone(),
            ns: Namespace::new(self.name.clone(), name),
        }
    }

    /// Runs a command on the primary and returns its reply (`ok: 0` is an error). The command
    /// is sent as given (plus `$db`, session and cluster time) and never retried, as the
    /// specification for runCommand requires.
    pub async fn run_command(&self, command: RawDocumentBuf) -> Result<RawDocumentBuf, Error> {
        self.run_command_with(command, ReadPreference::primary()).await
    }

    /// Runs a command on the primary in an explicit session.
    pub async fn run_command_in(
        &self,
        session: &mut ClientSession,
        command: RawDocumentBuf,
    ) -> Result<RawDocumentBuf, Error> {
        let criteria = SelectionCriteria::ReadPreference(ReadPreference::primary());
        let command = Command::new(self.name.clone(), command);
        let server_session = Some(session.server_session()?);
        let (reply, _) = self
            .client
            .inner
            .executor
            .execute(command, &criteria, Retry::No, server_session)
            .await?;
        Ok(reply.body().to_owned())
    }

    /// Runs a command on a server chosen by `read_preference`.
    pub async fn run_command_with(
        &self,
        command: RawDocumentBuf,
        read_preference: ReadPreference,
    ) -> Result<RawDocumentBuf, Error> {
        let criteria = SelectionCriteria::ReadPreference(read_preference);
        let (reply, _) = self
            .client
            .inner
            .executor
            .execute(Command::new(self.name.clone(), command), &criteria, Retry::No, None)
            .await?;
        Ok(reply.body().to_owned())
    }

    /// A change stream on every collection of this database.
    pub async fn watch(
        &self,
        pipeline: impl IntoIterator<Item = RawDocumentBuf>,
        options: ChangeStreamOptions,
    ) -> Result<ChangeStream, Error> {
        let target = WatchTarget::Database(self.name.clone());
        self.client
            .inner
            .watch(target, pipeline.into_iter().collect(), options, None)
            .await
    }

    /// [`Database::watch`] in an explicit session, which the stream keeps until it is dropped.
    pub async fn watch_in(
        &self,
        session: ClientSession,
        pipeline: impl IntoIterator<Item = RawDocumentBuf>,
        options: ChangeStreamOptions,
    ) -> Result<ChangeStream, Error> {
        let target = WatchTarget::Database(self.name.clone());
        self.client
            .inner
            .watch(target, pipeline.into_iter().collect(), options, Some(session))
            .await
    }

    /// Creates a collection; `options` go into the create command as they are.
    pub async fn create_collection(&self, name: &str, options: Option<&RawDocument>) -> Result<(), Error> {
        let ns = Namespace::new(self.name.clone(), name);
        let command = crud::create_command(&ns, options, self.client.inner.write_concern.as_ref());
        self.client
            .inner
            .executor
            .execute(command, &SelectionCriteria::Writable, Retry::No, None)
            .await
            .map(drop)
    }

    /// Drops the database.
    pub async fn drop(&self) -> Result<(), Error> {
        let command = Command::new(self.name.clone(), bson::rawdoc! { "dropDatabase": 1 });
        self.client
            .inner
            .executor
            .execute(command, &SelectionCriteria::Writable, Retry::No, None)
            .await
            .map(drop)
    }
}

/// A collection handle.
#[derive(Debug, Clone)]
pub struct Collection {
    client: Client,
    ns: Namespace,
}

/// What an insert_one did.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertOneResult {
    /// The document's `_id` (generated when it had none).
    pub inserted_id: RawBson,
}

/// What an insert_many did.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertManyResult {
    /// `_id` of every inserted document, by its index in the call.
    pub inserted_ids: Vec<(usize, RawBson)>,
}

impl Collection {
    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// The collection name.
    pub fn name(&self) -> &str {
        &self.ns.coll
    }

    fn inner(&self) -> &ClientInner {
        &self.client.inner
    }

    /// A change stream on this collection: `pipeline` stages follow `$changeStream`. The first
    /// aggregate runs here, so a bad pipeline is an error of `watch` itself.
    pub async fn watch(
        &self,
        pipeline: impl IntoIterator<Item = RawDocumentBuf>,
        options: ChangeStreamOptions,
    ) -> Result<ChangeStream, Error> {
        let target = WatchTarget::Collection(self.ns.clone());
        self.client
            .inner
            .watch(target, pipeline.into_iter().collect(), options, None)
            .await
    }

    /// [`Collection::watch`] in an explicit session, which the stream keeps until it is dropped.
    pub async fn watch_in(
        &self,
        session: ClientSession,
        pipeline: impl IntoIterator<Item = RawDocumentBuf>,
        options: ChangeStreamOptions,
    ) -> Result<ChangeStream, Error> {
        let target = WatchTarget::Collection(self.ns.clone());
        self.client
            .inner
            .watch(target, pipeline.into_iter().collect(), options, Some(session))
            .await
    }

    /// Inserts one document (an `_id` is added if missing). Retried once on a retryable error.
    pub async fn insert_one(&self, document: impl AsRef<RawDocument>) -> Result<InsertOneResult, Error> {
        let mut result = self.insert(std::iter::once(document)).await?;
        let inserted_id = result.inserted_ids.pop().map(|(_, id)| id).unwrap_or(RawBson::Null);
        Ok(InsertOneResult { inserted_id })
    }

    /// Inserts documents in order, sent as kind-1 sequences split to the server's limits. Each
    /// batch is retried once on a retryable error; the first failing batch stops the insert.
    pub async fn insert_many(
        &self,
        documents: impl IntoIterator<Item = impl AsRef<RawDocument>>,
    ) -> Result<InsertManyResult, Error> {
        self.insert(documents).await
    }

    /// [`Collection::insert_one`] in an explicit session.
    pub async fn insert_one_in(
        &self,
        session: &mut ClientSession,
        document: impl AsRef<RawDocument>,
    ) -> Result<InsertOneResult, Error> {
        let mut result = self.insert_many_in(session, std::iter::once(document)).await?;
        let inserted_id = result.inserted_ids.pop().map(|(_, id)| id).unwrap_or(RawBson::Null);
        Ok(InsertOneResult { inserted_id })
    }

    /// [`Collection::insert_many`] in an explicit session.
    pub async fn insert_many_in(
        &self,
        session: &mut ClientSession,
        documents: impl IntoIterator<Item = impl AsRef<RawDocument>>,
    ) -> Result<InsertManyResult, Error> {
        self.insert_into(documents, Some(session.server_session()?)).await
    }

    async fn insert(
        &self,
        documents: impl IntoIterator<Item = impl AsRef<RawDocument>>,
    ) -> Result<InsertManyResult, Error> {
        self.insert_into(documents, None).await
    }

    async fn insert_into(
        &self,
        documents: impl IntoIterator<Item = impl AsRef<RawDocument>>,
        mut session: Option<&mut ServerSession>,
    ) -> Result<InsertManyResult, Error> {
        let limits = self.inner().limits;
        let batches = crud::insert_batches(&self.ns, documents, true, self.inner().write_concern.as_ref(), limits)?;
        let mut inserted_ids = Vec::new();
        for batch in batches {
            let session = session.as_deref_mut();
            self.inner()
                .executor
                .execute(batch.command, &SelectionCriteria::Writable, Retry::Write, session)
                .await?;
            inserted_ids.extend(batch.ids);
        }
        Ok(InsertManyResult { inserted_ids })
    }

    /// Finds documents; iterate the returned cursor.
    pub async fn find(&self, filter: RawDocumentBuf, mut options: FindOptions) -> Result<Cursor, Error> {
        if options.read_concern.is_none() {
            options.read_concern = self.inner().read_concern.clone();
        }
        let command = crud::find_command(&self.ns, filter, &options);
        let criteria = SelectionCriteria::ReadPreference(self.inner().read_preference.clone());
        Cursor::open(self.client.inner().clone(), command, criteria, options.batch_size).await
    }

    /// The first document matching `filter`, if any.
    pub async fn find_one(&self, filter: RawDocumentBuf) -> Result<Option<RawDocumentBuf>, Error> {
        let options = FindOptions {
            limit: Some(1),
            single_batch: true,
            ..FindOptions::default()
        };
        let mut cursor = self.find(filter, options).await?;
        Ok(cursor.try_next().await?.map(|d| d.to_raw_document_buf()))
    }

    /// Updates the first document matching `filter`. Retried once on a retryable error.
    pub async fn update_one(&self, filter: RawDocumentBuf, update: UpdateModifications) -> Result<UpdateResult, Error> {
        self.update(filter, update, false).await
    }

    /// Updates every document matching `filter` (not retryable: it changes several documents).
    pub async fn update_many(
        &self,
        filter: RawDocumentBuf,
        update: UpdateModifications,
    ) -> Result<UpdateResult, Error> {
        self.update(filter, update, true).await
    }

    async fn update(
        &self,
        filter: RawDocumentBuf,
        update: UpdateModifications,
        multi: bool,
    ) -> Result<UpdateResult, Error> {
        let write_concern = self.inner().write_concern.as_ref();
        let command = crud::update_command(&self.ns, filter, update, multi, false, write_concern)?;
        let retry = if multi { Retry::No } else { Retry::Write };
        self.write(command, retry)
            .await
            .and_then(|r| crud::parse_update_reply(&r))
    }

    /// Replaces the first document matching `filter`; `upsert` inserts it when none matches.
    pub async fn replace_one(
        &self,
        filter: RawDocumentBuf,
        replacement: RawDocumentBuf,
        upsert: bool,
    ) -> Result<UpdateResult, Error> {
        let command = crud::replace_command(
            &self.ns,
            filter,
            replacement,
            upsert,
            self.inner().write_concern.as_ref(),
        )?;
        self.write(command, Retry::Write)
            .await
            .and_then(|r| crud::parse_update_reply(&r))
    }

    /// Deletes the first document matching `filter`. Retried once on a retryable error.
    pub async fn delete_one(&self, filter: RawDocumentBuf) -> Result<DeleteResult, Error> {
        let command = crud::delete_command(&self.ns, filter, false, self.inner().write_concern.as_ref())?;
        self.write(command, Retry::Write)
            .await
            .and_then(|r| crud::parse_delete_reply(&r))
    }

    /// Deletes every document matching `filter`.
    pub async fn delete_many(&self, filter: RawDocumentBuf) -> Result<DeleteResult, Error> {
        let command = crud::delete_command(&self.ns, filter, true, self.inner().write_concern.as_ref())?;
        self.write(command, Retry::No)
            .await
            .and_then(|r| crud::parse_delete_reply(&r))
    }

    /// Drops the collection; a collection that does not exist is not an error.
    pub async fn drop(&self) -> Result<(), Error> {
        let command = crud::drop_command(&self.ns, self.inner().write_concern.as_ref());
        match self.write(command, Retry::No).await {
            Err(Error::Server(e)) if e.code == NAMESPACE_NOT_FOUND => Ok(()),
            other => other.map(drop),
        }
    }

    async fn write(&self, command: Command, retry: Retry) -> Result<RawDocumentBuf, Error> {
        let (reply, _) = self
            .inner()
            .executor
            .execute(command, &SelectionCriteria::Writable, retry, None)
            .await?;
        Ok(reply.body().to_owned())
    }
}

/// NamespaceNotFound: what dropping a missing collection answers.
const NAMESPACE_NOT_FOUND: i32 = 26;
