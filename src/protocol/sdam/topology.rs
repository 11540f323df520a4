//! The topology: every server's description, and the Server Discovery and Monitoring rules
//! that update them when a check completes or an operation fails.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use bson::oid::ObjectId;

use super::description::{ServerDescription, ServerType, compare_topology_versions};
use super::errors::{ApplicationError, ApplicationErrorKind};
use crate::error::{Error, ProtocolErrorKind};
use crate::protocol::ServerAddress;

/// The oldest wire version mongowire speaks: 8, MongoDB 4.2 (the same floor the connection
/// handshake enforces). A deployment with an older server is incompatible.
pub const MIN_WIRE_VERSION: i32 = 8;

/// The newest wire version mongowire knows: 25, MongoDB 8.0. Servers keep accepting older
/// clients (they report `minWireVersion: 0`), so this only rejects a future server that
/// refuses clients this old.
pub const MAX_WIRE_VERSION: i32 = 25;

/// How often monitors check each server unless configured otherwise (10 seconds, the Server
/// Discovery and Monitoring default for drivers that monitor concurrently).
pub const DEFAULT_HEARTBEAT_FREQUENCY: Duration = Duration::from_secs(10);

/// The shortest heartbeat frequency allowed (the specification's `minHeartbeatFrequencyMS`),
/// also the pause between immediate checks while a selection waits.
pub const MIN_HEARTBEAT_FREQUENCY: Duration = Duration::from_millis(500);

/// The electionId/setVersion ordering changed in MongoDB 6.0 (wire version 17): from then on
/// electionId is compared first, as the server itself orders them.
const ELECTION_ID_FIRST_WIRE_VERSION: i32 = 17;

/// What kind of deployment the client believes it is talking to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopologyType {
    /// Not known yet: the starting state without `replicaSet` or `directConnection`.
    Unknown,
    /// One server, used whatever its type (`directConnection=true`, or a single seed that
    /// turned out to be a standalone).
    Single,
    /// A replica set whose primary is not known.
    ReplicaSetNoPrimary,
    /// A replica set with a known primary.
    ReplicaSetWithPrimary,
    /// One or more mongos routers.
    Sharded,
    /// A load balancer in front of mongos routers (`loadBalanced=true`); never monitored.
    LoadBalanced,
}

impl TopologyType {
    /// The name the specifications use (`ReplicaSetNoPrimary`, ...).
    pub fn name(self) -> &'static str {
        match self {
            TopologyType::Unknown => "Unknown",
            TopologyType::Single => "Single",
            TopologyType::ReplicaSetNoPrimary => "ReplicaSetNoPrimary",
            TopologyType::ReplicaSetWithPrimary => "ReplicaSetWithPrimary",
            TopologyType::Sharded => "Sharded",
            TopologyType::LoadBalanced => "LoadBalanced",
        }
    }

    /// Whether this is one of the two replica set types.
    pub fn is_replica_set(self) -> bool {
        matches!(
            self,
            TopologyType::ReplicaSetNoPrimary | TopologyType::ReplicaSetWithPrimary
        )
    }
}

impl fmt::Display for TopologyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A connection pool the driver must clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolClear {
    /// The server whose pool it is.
    pub address: ServerAddress,
    /// Behind a load balancer, the service (mongos) whose connections to drop; `None`
    /// everywhere else.
    pub service_id: Option<ObjectId>,
    /// The pool's generation after clearing. Connections of older generations are closed,
    /// and errors they report later are ignored as stale (see
    /// [`TopologyDescription::handle_application_error`]).
    pub generation: u32,
    /// Close connections in use too, not only idle ones: set when a monitor's check timed out,
    /// as operations on the other connections are likely stuck as well.
    pub interrupt_in_use_connections: bool,
}

/// What the driver must do after the topology changed. Apply it while still holding the lock
/// that serialises topology updates: the specifications require clearing a pool to be atomic
/// with marking its server `Unknown`, or a concurrent check could mark the server usable
/// between the two.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopologyChange {
    /// Servers that joined the topology: start a monitor for each (and create its pool).
    pub added: Vec<ServerAddress>,
    /// Servers that left: stop their monitors and close their pools. Check results still in
    /// flight for them are ignored by [`TopologyDescription::apply`].
    pub removed: Vec<ServerAddress>,
    /// A pool to clear.
    pub clear_pool: Option<PoolClear>,
    /// A pool to mark ready: the check just applied succeeded on a server that can serve
    /// operations (connection pools start paused until then).
    pub ready_pool: Option<ServerAddress>,
    /// Monitors to wake for a check now, without waiting for the heartbeat.
    pub request_immediate_check: Vec<ServerAddress>,
    /// A monitor whose check in progress must be cancelled (its connection is presumed dead,
    /// like the application connection that just failed).
    pub cancel_check: Option<ServerAddress>,
}

/// A server whose wire version range does not overlap mongowire's.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Incompatibility {
    /// The server requires a newer client.
    TooNew {
        address: ServerAddress,
        min_wire_version: i32,
    },
    /// The server is older than mongowire supports.
    TooOld {
        address: ServerAddress,
        max_wire_version: i32,
    },
}

impl Incompatibility {
    /// The message the Server Discovery and Monitoring specification words.
    fn message(&self) -> String {
        match self {
            Incompatibility::TooNew {
                address,
                min_wire_version,
            } => format!(
                "Server at {address} requires wire version {min_wire_version}, but this version \
                 of mongowire only supports up to {MAX_WIRE_VERSION}."
            ),
            Incompatibility::TooOld {
                address,
                max_wire_version,
            } => format!(
                "Server at {address} reports wire version {max_wire_version}, but this version \
                 of mongowire requires at least {MIN_WIRE_VERSION} (MongoDB 4.2)."
            ),
        }
    }

    fn field(&self) -> &'static str {
        match self {
            Incompatibility::TooNew { .. } => "minWireVersion",
            Incompatibility::TooOld { .. } => "maxWireVersion",
        }
    }
}

/// Everything the client knows about the deployment, and the rules that keep it current.
///
/// No I/O and no clock: monitors hand in what they saw ([`apply`](Self::apply),
/// [`handle_check_network_error`](Self::handle_check_network_error)), operations hand in
/// how they failed ([`handle_application_error`](Self::handle_application_error)), and each
/// call answers with the [`TopologyChange`] the driver must carry out. Server selection reads
/// it through [`select`](super::select).
#[derive(Debug, Clone)]
pub struct TopologyDescription {
    topology_type: TopologyType,
    set_name: Option<String>,
    max_set_version: Option<i64>,
    max_election_id: Option<ObjectId>,
    servers: BTreeMap<ServerAddress, ServerDescription>,
    incompatibility: Option<Incompatibility>,
    logical_session_timeout_minutes: Option<u32>,
    heartbeat_frequency: Duration,
    /// Whether the seed list had one address: a standalone found from a single seed makes
    /// the topology `Single`, one among several seeds is dropped.
    single_seed: bool,
    /// Pool generations by server (and, behind a load balancer, by service); absent means 0.
    pool_generations: BTreeMap<(ServerAddress, Option<ObjectId>), u32>,
}

impl TopologyDescription {
    /// The topology before any check: every seed `Unknown`, and the type the Server
    /// Discovery and Monitoring specification starts from: `LoadBalanced` with
    /// `load_balanced` (its one server is the load balancer, never monitored), `Single` with
    /// `direct_connection`, `ReplicaSetNoPrimary` with a `replica_set` name, `Unknown`
    /// otherwise. The driver starts a monitor for each server in
    /// [`servers`](Self::servers) (none when load balanced).
    ///
    /// Fails on the combinations the specification forbids: no seeds, a direct connection to
    /// several seeds, and a load balancer with several seeds, a direct connection or a
    /// replica set name.
    pub fn new(
        seeds: Vec<ServerAddress>,
        replica_set: Option<String>,
        direct_connection: bool,
        load_balanced: bool,
    ) -> Result<TopologyDescription, Error> {
        let seeds: BTreeSet<ServerAddress> = seeds.into_iter().collect();
        if seeds.is_empty() {
            return Err(Error::usage("at least one host is required"));
        }
        if direct_connection && seeds.len() > 1 {
            return Err(Error::usage(
                "directConnection=true cannot be used with more than one host",
            ));
        }
        if load_balanced {
            if seeds.len() > 1 {
                return Err(Error::usage("loadBalanced=true cannot be used with more than one host"));
            }
            if direct_connection {
                return Err(Error::usage(
                    "loadBalanced=true cannot be used with directConnection=true",
                ));
            }
            if replica_set.is_some() {
                return Err(Error::usage("loadBalanced=true cannot be used with replicaSet"));
            }
        }
        let topology_type = if load_balanced {
            TopologyType::LoadBalanced
        } else if direct_connection {
            TopologyType::Single
        } else if replica_set.is_some() {
            TopologyType::ReplicaSetNoPrimary
        } else {
            TopologyType::Unknown
        };
        let single_seed = seeds.len() == 1;
        let servers = seeds
            .into_iter()
            .map(|address| {
                let description = if load_balanced {
                    ServerDescription::load_balancer(address.clone())
                } else {
                    ServerDescription::unknown(address.clone(), None)
                };
                (address, description)
            })
            .collect();
        Ok(TopologyDescription {
            topology_type,
            set_name: replica_set,
            max_set_version: None,
            max_election_id: None,
            servers,
            incompatibility: None,
            logical_session_timeout_minutes: None,
            heartbeat_frequency: DEFAULT_HEARTBEAT_FREQUENCY,
            single_seed,
            pool_generations: BTreeMap::new(),
        })
    }

    /// Sets how often monitors check servers (`heartbeatFrequencyMS`), which staleness
    /// estimates add as the worst case since the last check. Fails below
    /// [`MIN_HEARTBEAT_FREQUENCY`].
    pub fn with_heartbeat_frequency(mut self, heartbeat_frequency: Duration) -> Result<TopologyDescription, Error> {
        if heartbeat_frequency < MIN_HEARTBEAT_FREQUENCY {
            return Err(Error::usage(format!(
                "heartbeatFrequencyMS must be at least {} ms",
                MIN_HEARTBEAT_FREQUENCY.as_millis()
            )));
        }
        self.heartbeat_frequency = heartbeat_frequency;
        Ok(self)
    }

    /// The topology type.
    pub fn topology_type(&self) -> TopologyType {
        self.topology_type
    }

    /// The replica set name, given or discovered.
    pub fn set_name(&self) -> Option<&str> {
        self.set_name.as_deref()
    }

    /// The largest `setVersion` a trusted primary reported (paired with
    /// [`max_election_id`](Self::max_election_id), so it can go down when the election id
    /// goes up).
    pub fn max_set_version(&self) -> Option<i64> {
        self.max_set_version
    }

    /// The largest `electionId` a trusted primary reported.
    pub fn max_election_id(&self) -> Option<ObjectId> {
        self.max_election_id
    }

    /// Every server, by address.
    pub fn servers(&self) -> &BTreeMap<ServerAddress, ServerDescription> {
        &self.servers
    }

    /// One server's description.
    pub fn server(&self, address: &ServerAddress) -> Option<&ServerDescription> {
        self.servers.get(address)
    }

    /// The heartbeat frequency.
    pub fn heartbeat_frequency(&self) -> Duration {
        self.heartbeat_frequency
    }

    /// The smallest `logicalSessionTimeoutMinutes` among data-bearing servers; `None` if any
    /// of them (or none at all) reports one, meaning sessions cannot be used.
    pub fn logical_session_timeout_minutes(&self) -> Option<u32> {
        self.logical_session_timeout_minutes
    }

    /// Why the deployment cannot be used, when a server's wire version range does not
    /// overlap mongowire's; worded as the specification asks.
    pub fn compatibility_error(&self) -> Option<String> {
        self.incompatibility.as_ref().map(Incompatibility::message)
    }

    /// `Err` when the deployment is incompatible: server selection fails at once rather than
    /// waiting for a server that would be refused anyway.
    pub(crate) fn check_compatible(&self) -> Result<(), Error> {
        match &self.incompatibility {
            None => Ok(()),
            Some(incompatibility) => Err(Error::protocol(
                "server selection",
                ProtocolErrorKind::InvalidField {
                    field: incompatibility.field(),
                    problem: incompatibility.message(),
                },
            )),
        }
    }

    /// The generation of a server's pool (of one service's connections, behind a load
    /// balancer). Starts at 0 and grows each time a [`TopologyChange`] clears the pool;
    /// connections remember the generation they were created in.
    pub fn pool_generation(&self, address: &ServerAddress, service_id: Option<ObjectId>) -> u32 {
        self.pool_generations
            .get(&(address.clone(), service_id))
            .copied()
            .unwrap_or(0)
    }

    /// The primary, if one is known.
    pub fn primary(&self) -> Option<&ServerDescription> {
        self.servers
            .values()
            .find(|server| server.server_type == ServerType::RsPrimary)
    }

    /// Applies the outcome of a check (a hello reply, or `Unknown` when the check failed):
    /// the Server Discovery and Monitoring update table.
    ///
    /// Ignored when the server is no longer in the topology (another member's reply removed
    /// it while this check ran), when the reply's `topologyVersion` is older than the one
    /// held, and in a load-balanced topology, which is never monitored. Otherwise the
    /// description replaces the server's previous one (even if equal, to keep its round-trip
    /// time and update time current), then the topology type, set name, members and stale
    /// primaries are updated as the specification's table says for this server type and
    /// topology type. An `Unknown` description carrying an error is a failed check: the
    /// server's pool is cleared.
    pub fn apply(&mut self, description: ServerDescription) -> TopologyChange {
        let mut change = TopologyChange::default();
        if self.topology_type == TopologyType::LoadBalanced {
            return change;
        }
        let address = description.address.clone();
        let failed_check = description.server_type == ServerType::Unknown && description.error.is_some();
        if !self.update(description, &mut change) {
            return change;
        }
        let Some(server) = self.servers.get(&address) else {
            return change;
        };
        let usable = server.is_data_bearing() || (self.topology_type == TopologyType::Single && server.is_available());
        if failed_check {
            self.clear_pool(&address, None, false, &mut change);
        } else if usable {
            change.ready_pool = Some(address);
        }
        change
    }

    /// A monitor's check failed with a network error (`timeout`: a network timeout). The
    /// server becomes `Unknown` and its pool is cleared, closing connections in use too after
    /// a timeout. If the server was known before, its monitor is asked to check again at
    /// once: a single network glitch or a restart should not leave a healthy server
    /// unselectable for a whole heartbeat.
    pub fn handle_check_network_error(
        &mut self,
        address: &ServerAddress,
        message: impl Into<String>,
        timeout: bool,
    ) -> TopologyChange {
        let was_known = self.servers.get(address).is_some_and(ServerDescription::is_available);
        let mut change = self.apply(ServerDescription::unknown(address.clone(), Some(message.into())));
        if let Some(clear) = &mut change.clear_pool {
            clear.interrupt_in_use_connections = timeout;
            if was_known {
                change.request_immediate_check.push(address.clone());
            }
        }
        change
    }

    /// Records a round-trip sample measured on a monitor's separate RTT connection (the
    /// streaming protocol, where hello replies do not time a round trip). Ignored for a
    /// server that is unknown or not in the topology. Returns whether it was recorded.
    pub fn record_round_trip_time(&mut self, address: &ServerAddress, sample: Duration) -> bool {
        match self.servers.get_mut(address) {
            Some(server) if server.is_available() => {
                server.add_round_trip_sample(sample);
                true
            }
            _ => false,
        }
    }

    /// An operation failed on a connection to `address`: the specification's application
    /// error handling.
    ///
    /// Errors from a connection older than the pool's current generation are ignored (the
    /// pool was already cleared for the failure they report), as are state-change errors whose
    /// `topologyVersion` is not newer than the server's. Then:
    ///
    /// - "not writable primary" and "node is recovering" errors (by code, or by message when
    ///   the reply has no code) mark the server `Unknown` and request an immediate check;
    ///   the pool is cleared only when the node is shutting down (codes 11600 and 91), since
    ///   a stepped-down primary's connections still serve secondary reads;
    /// - a network error after the handshake, or any error before it completed (connecting,
    ///   hello, authentication), marks the server `Unknown`, clears its pool and cancels the
    ///   monitor's check; a network timeout after the handshake changes nothing (the
    ///   operation may just be slow), nor does an error carrying the `SystemOverloadedError`
    ///   label (the server is shedding load, not gone);
    /// - other command errors change nothing.
    ///
    /// Behind a load balancer no server is ever marked `Unknown`; the affected service's
    /// connections are cleared instead.
    pub fn handle_application_error(&mut self, address: &ServerAddress, error: ApplicationError) -> TopologyChange {
        let mut change = TopologyChange::default();
        let Some(current) = self.servers.get(address) else {
            return change;
        };
        let load_balanced = self.topology_type == TopologyType::LoadBalanced;
        let service_id = if load_balanced { error.service_id } else { None };
        if error.connection_generation < self.pool_generation(address, service_id) {
            return change;
        }
        if error.kind.is_state_change() {
            let topology_version = match &error.kind {
                ApplicationErrorKind::Command { topology_version, .. } => *topology_version,
                _ => None,
            };
            let known = compare_topology_versions(current.topology_version.as_ref(), topology_version.as_ref());
            if matches!(known, Some(Ordering::Greater | Ordering::Equal)) {
                return change;
            }
            if !load_balanced {
                let mut unknown = ServerDescription::unknown(address.clone(), Some(error.kind.to_string()));
                unknown.topology_version = topology_version;
                self.update(unknown, &mut change);
            }
            if error.kind.is_shutdown() {
                self.clear_pool(address, service_id, false, &mut change);
            }
            if !load_balanced && self.servers.contains_key(address) {
                change.request_immediate_check.push(address.clone());
            }
            return change;
        }
        // Past the handshake, only a network error other than a timeout says the server is
        // gone (a timeout may be a slow operation); before it, any failure does.
        let server_gone = match error.kind {
            ApplicationErrorKind::Network { timeout: false, .. } => true,
            _ => !error.completed_handshake,
        };
        if !server_gone || error.overloaded {
            return change;
        }
        if load_balanced {
            if service_id.is_some() {
                self.clear_pool(address, service_id, false, &mut change);
            }
            return change;
        }
        let unknown = ServerDescription::unknown(address.clone(), Some(error.kind.to_string()));
        self.update(unknown, &mut change);
        self.clear_pool(address, None, false, &mut change);
        change.cancel_check = Some(address.clone());
        change
    }

    /// One line for the topology, then one per server: address, type, average round-trip
    /// time and last error. Server-selection timeout errors include it, so a user can see
    /// what the client saw.
    pub fn describe(&self) -> String {
        let mut out = format!("type {}", self.topology_type);
        if let Some(set_name) = &self.set_name {
            out.push_str(&format!(", set {set_name:?}"));
        }
        if let Some(incompatibility) = &self.incompatibility {
            out.push_str(&format!(", incompatible: {}", incompatibility.message()));
        }
        for server in self.servers.values() {
            out.push_str(&format!("\n{} {}", server.address, server.server_type));
            if let Some(rtt) = server.round_trip_time {
                out.push_str(&format!(", rtt {:.1} ms", rtt.as_secs_f64() * 1000.0));
            }
            if let Some(error) = &server.error {
                out.push_str(&format!(", error: {error}"));
            }
        }
        out
    }

    /// Replaces a server's description and runs the update table. Returns `false` when the
    /// description was ignored.
    fn update(&mut self, mut description: ServerDescription, change: &mut TopologyChange) -> bool {
        let Some(current) = self.servers.get(&description.address) else {
            return false;
        };
        let stale = compare_topology_versions(current.topology_version.as_ref(), description.topology_version.as_ref())
            == Some(Ordering::Greater);
        if stale {
            return false;
        }
        description.continue_round_trip_times(current);
        self.servers.insert(description.address.clone(), description.clone());
        let address = &description.address;
        match (self.topology_type, description.server_type) {
            (TopologyType::LoadBalanced, _) => {}
            (TopologyType::Single, _) => self.verify_single_set_name(&description),

            (TopologyType::Unknown, ServerType::Unknown | ServerType::RsGhost) => {}
            (TopologyType::Unknown, ServerType::Standalone) => {
                if self.single_seed {
                    self.topology_type = TopologyType::Single;
                } else {
                    self.remove(address, change);
                }
            }
            (TopologyType::Unknown, ServerType::Mongos) => self.topology_type = TopologyType::Sharded,
            (TopologyType::Unknown, ServerType::LoadBalancer) => self.remove(address, change),

            (TopologyType::Sharded, ServerType::Unknown | ServerType::Mongos) => {}
            (TopologyType::Sharded, _) => self.remove(address, change),

            (TopologyType::ReplicaSetNoPrimary, ServerType::Unknown | ServerType::RsGhost) => {}
            (TopologyType::ReplicaSetWithPrimary, ServerType::Unknown | ServerType::RsGhost) => {
                self.check_if_has_primary();
            }
            (
                TopologyType::ReplicaSetNoPrimary | TopologyType::ReplicaSetWithPrimary,
                ServerType::Standalone | ServerType::Mongos | ServerType::LoadBalancer,
            ) => {
                self.remove(address, change);
                self.check_if_has_primary();
            }

            (_, ServerType::RsPrimary) => self.update_rs_from_primary(&description, change),
            (TopologyType::ReplicaSetWithPrimary, _) => {
                self.update_rs_with_primary_from_member(&description, change);
            }
            (_, _) => {
                // Unknown or ReplicaSetNoPrimary, and a secondary, arbiter or other member.
                self.topology_type = TopologyType::ReplicaSetNoPrimary;
                self.update_rs_without_primary(&description, change);
            }
        }
        self.update_compatibility();
        self.update_logical_session_timeout();
        true
    }

    /// A direct connection given a replica set name only accepts a member of that set.
    fn verify_single_set_name(&mut self, description: &ServerDescription) {
        let Some(expected) = &self.set_name else {
            return;
        };
        if !description.is_available() || description.set_name.as_ref() == Some(expected) {
            return;
        }
        let found = match &description.set_name {
            Some(name) => format!("replica set {name:?}"),
            None => format!("a {} with no replica set name", description.server_type),
        };
        let error = format!("expected a member of replica set {expected:?}, found {found}");
        self.servers.insert(
            description.address.clone(),
            ServerDescription::unknown(description.address.clone(), Some(error)),
        );
    }

    /// A secondary, arbiter or other member, while no primary is known: adopt its set name,
    /// add the members it lists (never remove any: only a primary's list is authoritative),
    /// and drop it if it is known by another name (`me`), so an operation cannot be sent to
    /// an alias that will vanish once the primary answers.
    fn update_rs_without_primary(&mut self, description: &ServerDescription, change: &mut TopologyChange) {
        let address = &description.address;
        match &self.set_name {
            None => self.set_name.clone_from(&description.set_name),
            Some(name) if description.set_name.as_ref() != Some(name) => {
                self.remove(address, change);
                return;
            }
            Some(_) => {}
        }
        for member in description.members() {
            self.add(member, change);
        }
        if description.me.as_ref().is_some_and(|me| me != address) {
            self.remove(address, change);
        }
    }

    /// A secondary, arbiter or other member while a primary is known: the primary's member
    /// list stands, so only this server itself can be removed (wrong set, or another name).
    fn update_rs_with_primary_from_member(&mut self, description: &ServerDescription, change: &mut TopologyChange) {
        let address = &description.address;
        let wrong_set = self.set_name != description.set_name;
        let wrong_name = description.me.as_ref().is_some_and(|me| me != address);
        if wrong_set || wrong_name {
            self.remove(address, change);
        }
        // The member may have been the primary a moment ago.
        self.check_if_has_primary();
    }

    /// A primary: unless its set name is wrong or its (electionId, setVersion) is older
    /// than one already seen (a stale primary about to step down), it is trusted: any other
    /// primary becomes `Unknown` and is re-checked, and the member list becomes exactly the
    /// primary's.
    fn update_rs_from_primary(&mut self, description: &ServerDescription, change: &mut TopologyChange) {
        let address = &description.address;
        match &self.set_name {
            None => self.set_name.clone_from(&description.set_name),
            Some(name) if description.set_name.as_ref() != Some(name) => {
                self.remove(address, change);
                self.check_if_has_primary();
                return;
            }
            Some(_) => {}
        }
        if let Err(error) = self.admit_primary(description) {
            self.servers.insert(
                address.clone(),
                ServerDescription::unknown(address.clone(), Some(error)),
            );
            self.check_if_has_primary();
            return;
        }
        let old_primaries: Vec<ServerAddress> = self
            .servers
            .values()
            .filter(|server| server.server_type == ServerType::RsPrimary && &server.address != address)
            .map(|server| server.address.clone())
            .collect();
        for old in old_primaries {
            // Its pool is kept: the old primary is now most likely a secondary.
            let error = "primary marked stale due to discovery of newer primary".to_owned();
            self.servers
                .insert(old.clone(), ServerDescription::unknown(old.clone(), Some(error)));
            change.request_immediate_check.push(old);
        }
        for member in description.members() {
            self.add(member, change);
        }
        let members: BTreeSet<&ServerAddress> = description.members().collect();
        let gone: Vec<ServerAddress> = self
            .servers
            .keys()
            .filter(|server| !members.contains(server))
            .cloned()
            .collect();
        for server in gone {
            self.remove(&server, change);
        }
        self.check_if_has_primary();
    }

    /// Whether the primary's (electionId, setVersion) is at least the largest seen, and if
    /// so records it. MongoDB 6.0+ orders electionId first, as the server does; older
    /// servers keep the historical setVersion-first order, which only applies when the
    /// primary reports both.
    fn admit_primary(&mut self, primary: &ServerDescription) -> Result<(), String> {
        let stale = || {
            format!(
                "primary marked stale due to electionId/setVersion mismatch, {} is stale \
                 compared to {}",
                election_tuple(primary.election_id, primary.set_version),
                election_tuple(self.max_election_id, self.max_set_version)
            )
        };
        if primary.max_wire_version >= ELECTION_ID_FIRST_WIRE_VERSION {
            // `None` orders below any value, as the specification wants for missing ids.
            let newer = primary.election_id > self.max_election_id
                || (primary.election_id == self.max_election_id && primary.set_version >= self.max_set_version);
            if !newer {
                return Err(stale());
            }
            self.max_election_id = primary.election_id;
            self.max_set_version = primary.set_version;
            return Ok(());
        }
        if let (Some(set_version), Some(election_id)) = (primary.set_version, primary.election_id) {
            if let (Some(max_set_version), Some(max_election_id)) = (self.max_set_version, self.max_election_id)
                && (max_set_version > set_version || (max_set_version == set_version && max_election_id > election_id))
            {
                return Err(stale());
            }
            self.max_election_id = Some(election_id);
        }
        if let Some(set_version) = primary.set_version
            && self.max_set_version.is_none_or(|max| set_version > max)
        {
            self.max_set_version = Some(set_version);
        }
        Ok(())
    }

    fn check_if_has_primary(&mut self) {
        self.topology_type = if self.primary().is_some() {
            TopologyType::ReplicaSetWithPrimary
        } else {
            TopologyType::ReplicaSetNoPrimary
        };
    }

    fn add(&mut self, address: &ServerAddress, change: &mut TopologyChange) {
        if !self.servers.contains_key(address) {
            self.servers
                .insert(address.clone(), ServerDescription::unknown(address.clone(), None));
            change.added.push(address.clone());
        }
    }

    fn remove(&mut self, address: &ServerAddress, change: &mut TopologyChange) {
        if self.servers.remove(address).is_some() {
            self.pool_generations.retain(|(server, _), _| server != address);
            change.request_immediate_check.retain(|a| a != address);
            change.removed.push(address.clone());
        }
    }

    fn clear_pool(
        &mut self,
        address: &ServerAddress,
        service_id: Option<ObjectId>,
        interrupt_in_use_connections: bool,
        change: &mut TopologyChange,
    ) {
        let generation = self.pool_generations.entry((address.clone(), service_id)).or_insert(0);
        *generation = generation.saturating_add(1);
        change.clear_pool = Some(PoolClear {
            address: address.clone(),
            service_id,
            generation: *generation,
            interrupt_in_use_connections,
        });
    }

    fn update_compatibility(&mut self) {
        self.incompatibility = self
            .servers
            .values()
            .filter(|server| server.is_available())
            .find_map(|server| {
                if server.min_wire_version > MAX_WIRE_VERSION {
                    Some(Incompatibility::TooNew {
                        address: server.address.clone(),
                        min_wire_version: server.min_wire_version,
                    })
                } else if server.max_wire_version < MIN_WIRE_VERSION {
                    Some(Incompatibility::TooOld {
                        address: server.address.clone(),
                        max_wire_version: server.max_wire_version,
                    })
                } else {
                    None
                }
            });
    }

    fn update_logical_session_timeout(&mut self) {
        let mut data_bearing = self
            .servers
            .values()
            .filter(|server| server.is_data_bearing())
            .map(|server| server.logical_session_timeout_minutes)
            .peekable();
        self.logical_session_timeout_minutes = if data_bearing.peek().is_none() {
            None
        } else {
            data_bearing.try_fold(u32::MAX, |min, minutes| Some(min.min(minutes?)))
        };
    }
}

fn election_tuple(election_id: Option<ObjectId>, set_version: Option<i64>) -> String {
    let election_id = election_id.map_or("null".to_owned(), |id| id.to_hex());
    let set_version = set_version.map_or("null".to_owned(), |v| v.to_string());
    format!("(electionId: {election_id}, setVersion: {set_version})")
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bson::rawdoc;

    use super::*;
    use crate::protocol::sdam::test_support::{
        addr, addrs, described, mongos_reply, oid, primary_reply, replica_set, secondary_reply, standalone_reply,
        topology, with,
    };

    fn server_type(topology: &TopologyDescription, address: &str) -> Option<ServerType> {
        topology.server(&addr(address)).map(|s| s.server_type)
    }

    fn addresses(topology: &TopologyDescription) -> Vec<ServerAddress> {
        topology.servers().keys().cloned().collect()
    }

    /// A primary of set "rs" at wire version `wire` with this election id and set version.
    fn elected(hosts: &[&str], election: Option<u8>, set_version: Option<i32>, wire: i32) -> bson::RawDocumentBuf {
        let mut reply = with(primary_reply("rs", hosts), "maxWireVersion", wire);
        if let Some(election) = election {
            reply = with(reply, "electionId", oid(election));
        }
        if let Some(set_version) = set_version {
            reply = with(reply, "setVersion", set_version);
        }
        reply
    }

    #[test]
    fn initial_type_follows_the_options() {
        let cases = [
            (vec!["a"], None, true, false, TopologyType::Single),
            (vec!["a"], Some("rs"), true, false, TopologyType::Single),
            (vec!["a", "b"], None, false, false, TopologyType::Unknown),
            (vec!["a"], Some("rs"), false, false, TopologyType::ReplicaSetNoPrimary),
            (vec!["a"], None, false, true, TopologyType::LoadBalanced),
        ];
        for (seeds, set, direct, load_balanced, expected) in cases {
            let topology =
                TopologyDescription::new(addrs(&seeds), set.map(str::to_owned), direct, load_balanced).unwrap();
            assert_eq!(topology.topology_type(), expected);
            assert_eq!(topology.set_name(), set);
            assert_eq!(topology.servers().len(), seeds.len());
        }
        let lb = TopologyDescription::new(addrs(&["lb"]), None, false, true).unwrap();
        assert_eq!(server_type(&lb, "lb"), Some(ServerType::LoadBalancer));
        // Seeds are deduplicated after lower-casing.
        assert_eq!(topology(&["A", "a"]).servers().len(), 1);
        assert_eq!(topology(&["a"]).heartbeat_frequency(), DEFAULT_HEARTBEAT_FREQUENCY);
    }

    #[test]
    fn forbidden_option_combinations_are_usage_errors() {
        let new = |seeds: &[&str], set: Option<&str>, direct, lb| {
            TopologyDescription::new(addrs(seeds), set.map(str::to_owned), direct, lb)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(new(&[], None, false, false), "at least one host is required");
        assert!(new(&["a", "b"], None, true, false).contains("directConnection=true"));
        assert!(new(&["a", "b"], None, false, true).contains("more than one host"));
        assert!(new(&["a"], None, true, true).contains("directConnection"));
        assert!(new(&["a"], Some("rs"), false, true).contains("replicaSet"));
        let too_fast = topology(&["a"]).with_heartbeat_frequency(Duration::from_millis(499));
        assert!(matches!(too_fast, Err(Error::Usage(_))));
        let ok = topology(&["a"])
            .with_heartbeat_frequency(Duration::from_secs(30))
            .unwrap();
        assert_eq!(ok.heartbeat_frequency(), Duration::from_secs(30));
    }

    #[test]
    fn primary_reveals_the_members_and_the_set_name() {
        let mut t = topology(&["a"]);
        let change = t.apply(described("a", &primary_reply("rs", &["a", "b", "c"])));
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetWithPrimary);
        assert_eq!(t.set_name(), Some("rs"));
        assert_eq!(change.added, addrs(&["b", "c"]));
        assert_eq!(change.removed, []);
        assert_eq!(change.ready_pool, Some(addr("a")));
        assert_eq!(change.clear_pool, None);
        assert_eq!(server_type(&t, "b"), Some(ServerType::Unknown));
        assert_eq!(t.primary().map(|p| p.address.clone()), Some(addr("a")));
    }

    #[test]
    fn passives_and_arbiters_are_members_too() {
        let mut t = replica_set(&["a"], "rs");
        let reply = with(
            with(primary_reply("rs", &["a"]), "passives", bson::rawbson!(["p:27017"])),
            "arbiters",
            bson::rawbson!(["x:27017"]),
        );
        let change = t.apply(described("a", &reply));
        assert_eq!(change.added, addrs(&["p", "x"]));
        assert_eq!(addresses(&t), addrs(&["a", "p", "x"]));
    }

    #[test]
    fn primary_removes_members_it_no_longer_lists() {
        let mut t = replica_set(&["a", "b", "c"], "rs");
        t.apply(described("b", &secondary_reply("rs", &["a", "b", "c"])));
        let change = t.apply(described("a", &primary_reply("rs", &["a", "b"])));
        assert_eq!(change.removed, addrs(&["c"]));
        assert_eq!(addresses(&t), addrs(&["a", "b"]));
        // The removed server's check, finishing late, is ignored.
        let late = t.apply(described("c", &secondary_reply("rs", &["a", "b", "c"])));
        assert_eq!(late, TopologyChange::default());
        assert_eq!(addresses(&t), addrs(&["a", "b"]));
    }

    #[test]
    fn seed_alias_is_replaced_by_the_names_the_primary_uses() {
        // The seed is a DNS alias; the primary's host list names the real hosts only.
        let mut t = replica_set(&["alias"], "rs");
        let change = t.apply(described("alias", &primary_reply("rs", &["a", "b"])));
        assert_eq!(change.added, addrs(&["a", "b"]));
        assert_eq!(change.removed, addrs(&["alias"]));
        // No primary is known until "a" itself answers.
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetNoPrimary);
        assert_eq!(change.ready_pool, None);
    }

    #[test]
    fn without_a_primary_members_are_added_but_never_removed() {
        let mut t = topology(&["a", "b"]);
        let change = t.apply(described("a", &secondary_reply("rs", &["a", "c"])));
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetNoPrimary);
        assert_eq!(t.set_name(), Some("rs"));
        assert_eq!(change.added, addrs(&["c"]));
        assert_eq!(change.removed, []);
        // "b" is not in a's list, but only a primary's list is authoritative.
        assert_eq!(addresses(&t), addrs(&["a", "b", "c"]));
        assert_eq!(change.ready_pool, Some(addr("a")));
    }

    #[test]
    fn arbiter_and_other_start_a_replica_set_too() {
        for extra in ["arbiterOnly", "hidden"] {
            let mut t = topology(&["a"]);
            let reply = with(
                rawdoc! { "ok": 1, "setName": "rs", "hosts": ["a:27017", "b:27017"], "maxWireVersion": 21 },
                extra,
                true,
            );
            let change = t.apply(described("a", &reply));
            assert_eq!(t.topology_type(), TopologyType::ReplicaSetNoPrimary, "{extra}");
            assert_eq!(change.added, addrs(&["b"]));
            // Neither holds data: no pool to make ready.
            assert_eq!(change.ready_pool, None);
        }
    }

    #[test]
    fn primary_with_the_wrong_set_name_is_removed() {
        let mut t = replica_set(&["a", "b"], "rs");
        let change = t.apply(described("a", &primary_reply("other", &["a", "b"])));
        assert_eq!(change.removed, addrs(&["a"]));
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetNoPrimary);
        assert_eq!(t.set_name(), Some("rs"));
        assert_eq!(addresses(&t), addrs(&["b"]));
    }

    #[test]
    fn member_with_the_wrong_set_name_is_removed_with_or_without_primary() {
        let mut t = replica_set(&["a", "b", "c"], "rs");
        let change = t.apply(described("b", &secondary_reply("other", &["b", "d"])));
        assert_eq!(change.removed, addrs(&["b"]));
        assert_eq!(change.added, []); // its host list is not trusted either
        t.apply(described("a", &primary_reply("rs", &["a", "c"])));
        let change = t.apply(described("c", &secondary_reply("wrong", &["a", "c"])));
        assert_eq!(change.removed, addrs(&["c"]));
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetWithPrimary);
    }

    #[test]
    fn member_known_by_another_name_is_removed_after_its_hosts_are_added() {
        let mut t = replica_set(&["a"], "rs");
        let reply = with(secondary_reply("rs", &["b", "c"]), "me", "b:27017");
        let change = t.apply(described("a", &reply));
        assert_eq!(change.added, addrs(&["b", "c"]));
        assert_eq!(change.removed, addrs(&["a"]));
        assert_eq!(addresses(&t), addrs(&["b", "c"]));

        // With a primary known, a mismatched member is removed and nothing is added.
        let mut t = replica_set(&["a"], "rs");
        t.apply(described("a", &primary_reply("rs", &["a", "b"])));
        let reply = with(secondary_reply("rs", &["a", "b", "z"]), "me", "z:27017");
        let change = t.apply(described("b", &reply));
        assert_eq!(change.removed, addrs(&["b"]));
        assert_eq!(change.added, []);
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetWithPrimary);
    }

    #[test]
    fn primary_whose_me_differs_stays_if_it_lists_itself() {
        let mut t = replica_set(&["localhost:27017", "localhost:27018"], "rs");
        let reply = with(
            primary_reply("rs", &["localhost:27017", "localhost:27018"]),
            "me",
            "a:27017",
        );
        t.apply(described("localhost:27017", &reply));
        assert_eq!(server_type(&t, "localhost:27017"), Some(ServerType::RsPrimary));
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetWithPrimary);
    }

    #[test]
    fn newer_primary_invalidates_the_old_one_without_clearing_its_pool() {
        let mut t = replica_set(&["a", "b"], "rs");
        t.apply(described("a", &elected(&["a", "b"], Some(1), Some(1), 21)));
        let change = t.apply(described("b", &elected(&["a", "b"], Some(2), Some(1), 21)));
        assert_eq!(server_type(&t, "a"), Some(ServerType::Unknown));
        assert_eq!(server_type(&t, "b"), Some(ServerType::RsPrimary));
        let old = t.server(&addr("a")).unwrap();
        assert!(
            old.error
                .as_deref()
                .unwrap()
                .contains("primary marked stale due to discovery of newer primary")
        );
        assert_eq!(change.request_immediate_check, addrs(&["a"]));
        assert_eq!(change.clear_pool, None);
        assert_eq!(t.max_election_id(), Some(oid(2)));
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetWithPrimary);
    }

    #[test]
    fn stale_primary_by_election_id_is_marked_unknown() {
        let mut t = replica_set(&["a", "b"], "rs");
        t.apply(described("b", &elected(&["a", "b"], Some(2), Some(1), 21)));
        let change = t.apply(described("a", &elected(&["a", "b"], Some(1), Some(1), 21)));
        let a = t.server(&addr("a")).unwrap();
        assert_eq!(a.server_type, ServerType::Unknown);
        let error = a.error.as_deref().unwrap();
        assert!(
            error.starts_with("primary marked stale due to electionId/setVersion mismatch"),
            "{error}"
        );
        assert!(error.contains(
            "(electionId: 000000000000000000000001, setVersion: 1) is stale compared to \
             (electionId: 000000000000000000000002, setVersion: 1)"
        ));
        assert_eq!(server_type(&t, "b"), Some(ServerType::RsPrimary));
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetWithPrimary);
        assert_eq!((t.max_election_id(), t.max_set_version()), (Some(oid(2)), Some(1)));
        assert_eq!(change.request_immediate_check, []);
        assert_eq!(change.ready_pool, None);
    }

    #[test]
    fn from_6_0_election_id_outranks_set_version() {
        let mut t = replica_set(&["a", "b"], "rs");
        t.apply(described("a", &elected(&["a", "b"], Some(1), Some(50), 17)));
        // A newer election with a lower configuration version is the real primary...
        t.apply(described("b", &elected(&["a", "b"], Some(2), Some(1), 17)));
        assert_eq!(server_type(&t, "b"), Some(ServerType::RsPrimary));
        // ...and the tuple moves together, so maxSetVersion goes down.
        assert_eq!((t.max_election_id(), t.max_set_version()), (Some(oid(2)), Some(1)));
        // Same election, lower set version: stale.
        t.apply(described("b", &elected(&["a", "b"], Some(2), Some(0), 17)));
        assert_eq!(server_type(&t, "b"), Some(ServerType::Unknown));
        // Same election and set version: the same primary checked again.
        t.apply(described("a", &elected(&["a", "b"], Some(2), Some(1), 17)));
        assert_eq!(server_type(&t, "a"), Some(ServerType::RsPrimary));
        // No election id at all orders below any id.
        t.apply(described("b", &elected(&["a", "b"], None, Some(9), 17)));
        assert_eq!(server_type(&t, "b"), Some(ServerType::Unknown));
        assert_eq!(server_type(&t, "a"), Some(ServerType::RsPrimary));
    }

    #[test]
    fn before_6_0_set_version_outranks_election_id() {
        let mut t = replica_set(&["a", "b"], "rs");
        t.apply(described("a", &elected(&["a", "b"], Some(2), Some(1), 16)));
        // Higher setVersion wins despite an older electionId.
        t.apply(described("b", &elected(&["a", "b"], Some(1), Some(2), 16)));
        assert_eq!(server_type(&t, "b"), Some(ServerType::RsPrimary));
        assert_eq!(server_type(&t, "a"), Some(ServerType::Unknown));
        assert_eq!((t.max_election_id(), t.max_set_version()), (Some(oid(1)), Some(2)));
        // Lower setVersion loses despite a newer electionId.
        t.apply(described("a", &elected(&["a", "b"], Some(3), Some(1), 16)));
        assert_eq!(server_type(&t, "a"), Some(ServerType::Unknown));
        assert_eq!(server_type(&t, "b"), Some(ServerType::RsPrimary));
        // A primary without electionId is not judged, but its setVersion is recorded.
        t.apply(described("a", &elected(&["a", "b"], None, Some(5), 16)));
        assert_eq!(server_type(&t, "a"), Some(ServerType::RsPrimary));
        assert_eq!((t.max_election_id(), t.max_set_version()), (Some(oid(1)), Some(5)));
    }

    #[test]
    fn primary_that_disconnects_leaves_no_primary_and_its_pool_cleared() {
        let mut t = replica_set(&["a", "b"], "rs");
        t.apply(described("a", &primary_reply("rs", &["a", "b"])));
        let change = t.apply(ServerDescription::unknown(addr("a"), Some("connection refused".into())));
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetNoPrimary);
        assert_eq!(
            change.clear_pool,
            Some(PoolClear {
                address: addr("a"),
                service_id: None,
                generation: 1,
                interrupt_in_use_connections: false,
            })
        );
        assert_eq!(t.pool_generation(&addr("a"), None), 1);
        assert_eq!(change.ready_pool, None);
        // A never-checked placeholder is not a failure: nothing to clear.
        let change = t.apply(ServerDescription::unknown(addr("b"), None));
        assert_eq!(change.clear_pool, None);
    }

    #[test]
    fn ok_zero_hello_is_a_failed_check() {
        let mut t = replica_set(&["a", "b"], "rs");
        t.apply(described("a", &primary_reply("rs", &["a", "b"])));
        t.apply(described("b", &secondary_reply("rs", &["a", "b"])));
        let change = t.apply(described(
            "b",
            &rawdoc! { "ok": 0, "errmsg": "boom", "maxWireVersion": 21 },
        ));
        assert_eq!(server_type(&t, "b"), Some(ServerType::Unknown));
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetWithPrimary);
        assert_eq!(change.clear_pool.map(|c| c.address), Some(addr("b")));
    }

    #[test]
    fn ghosts_are_kept_and_do_not_decide_the_type() {
        let ghost = rawdoc! { "ok": 1, "isWritablePrimary": false, "isreplicaset": true, "maxWireVersion": 21 };
        let mut t = topology(&["a"]);
        let change = t.apply(described("a", &ghost));
        assert_eq!(t.topology_type(), TopologyType::Unknown);
        assert_eq!(server_type(&t, "a"), Some(ServerType::RsGhost));
        assert_eq!(change.removed, []);

        // A primary that turns into a ghost leaves the set without a primary, but stays.
        let mut t = replica_set(&["a", "b"], "rs");
        t.apply(described("a", &primary_reply("rs", &["a", "b"])));
        t.apply(described("a", &ghost));
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetNoPrimary);
        assert_eq!(server_type(&t, "a"), Some(ServerType::RsGhost));
    }

    #[test]
    fn standalone_from_one_seed_makes_single_from_several_is_dropped() {
        let mut t = topology(&["a"]);
        let change = t.apply(described("a", &standalone_reply()));
        assert_eq!(t.topology_type(), TopologyType::Single);
        assert_eq!(change.ready_pool, Some(addr("a")));

        let mut t = topology(&["a", "b"]);
        let change = t.apply(described("a", &standalone_reply()));
        assert_eq!(t.topology_type(), TopologyType::Unknown);
        assert_eq!(change.removed, addrs(&["a"]));
        t.apply(described("b", &primary_reply("rs", &["b"])));
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetWithPrimary);
    }

    #[test]
    fn standalone_or_mongos_in_a_replica_set_is_removed() {
        for reply in [standalone_reply(), mongos_reply()] {
            let mut t = replica_set(&["a", "b"], "rs");
            t.apply(described("a", &primary_reply("rs", &["a", "b"])));
            let change = t.apply(described("a", &reply));
            assert_eq!(change.removed, addrs(&["a"]));
            assert_eq!(t.topology_type(), TopologyType::ReplicaSetNoPrimary);
        }
    }

    #[test]
    fn mongos_makes_sharded_and_non_mongos_are_removed_from_it() {
        let mut t = topology(&["a", "b", "c"]);
        t.apply(described("a", &mongos_reply()));
        assert_eq!(t.topology_type(), TopologyType::Sharded);
        let change = t.apply(described("b", &primary_reply("rs", &["b"])));
        assert_eq!(change.removed, addrs(&["b"]));
        let change = t.apply(described("c", &standalone_reply()));
        assert_eq!(change.removed, addrs(&["c"]));
        // An unreachable mongos stays.
        let change = t.apply(ServerDescription::unknown(addr("a"), Some("reset".into())));
        assert_eq!(change.removed, []);
        assert_eq!(t.topology_type(), TopologyType::Sharded);
        assert_eq!(addresses(&t), addrs(&["a"]));
    }

    #[test]
    fn direct_connection_stays_single_whatever_the_server_says() {
        for reply in [
            primary_reply("rs", &["a", "b", "c"]),
            secondary_reply("rs", &["a", "b"]),
            mongos_reply(),
        ] {
            let mut t = TopologyDescription::new(addrs(&["a"]), None, true, false).unwrap();
            let change = t.apply(described("a", &reply));
            assert_eq!(t.topology_type(), TopologyType::Single);
            assert_eq!(change.added, []);
            assert_eq!(addresses(&t), addrs(&["a"]));
            assert_eq!(change.ready_pool, Some(addr("a")));
        }
        // Even an arbiter's pool is made ready on a direct connection.
        let mut t = TopologyDescription::new(addrs(&["a"]), None, true, false).unwrap();
        let arbiter = rawdoc! { "ok": 1, "setName": "rs", "arbiterOnly": true, "maxWireVersion": 21 };
        assert_eq!(t.apply(described("a", &arbiter)).ready_pool, Some(addr("a")));
    }

    #[test]
    fn direct_connection_with_a_set_name_rejects_other_sets() {
        let mut t = TopologyDescription::new(addrs(&["a"]), Some("rs".into()), true, false).unwrap();
        t.apply(described("a", &secondary_reply("other", &["a"])));
        let a = t.server(&addr("a")).unwrap();
        assert_eq!(a.server_type, ServerType::Unknown);
        assert_eq!(
            a.error.as_deref(),
            Some("expected a member of replica set \"rs\", found replica set \"other\"")
        );
        t.apply(described("a", &standalone_reply()));
        assert_eq!(server_type(&t, "a"), Some(ServerType::Unknown));
        t.apply(described("a", &secondary_reply("rs", &["a"])));
        assert_eq!(server_type(&t, "a"), Some(ServerType::RsSecondary));
        assert_eq!(t.topology_type(), TopologyType::Single);
    }

    #[test]
    fn wire_versions_outside_mongowires_range_make_the_topology_incompatible() {
        let mut t = replica_set(&["a", "b"], "rs");
        t.apply(described("a", &primary_reply("rs", &["a", "b"])));
        assert_eq!(t.compatibility_error(), None);
        // An unchecked server does not count.
        assert!(t.check_compatible().is_ok());
        let too_new = with(
            with(secondary_reply("rs", &["a", "b"]), "minWireVersion", 999),
            "maxWireVersion",
            1000,
        );
        t.apply(described("b", &too_new));
        assert_eq!(
            t.compatibility_error().as_deref(),
            Some("Server at b:27017 requires wire version 999, but this version of mongowire only supports up to 25.")
        );
        let error = t.check_compatible().unwrap_err().to_string();
        assert!(error.contains("field minWireVersion"), "{error}");

        let old = with(secondary_reply("rs", &["a", "b"]), "maxWireVersion", 7);
        t.apply(described("b", &old));
        assert_eq!(
            t.compatibility_error().as_deref(),
            Some(
                "Server at b:27017 reports wire version 7, but this version of mongowire requires at least 8 (MongoDB 4.2)."
            )
        );
        t.apply(described("b", &secondary_reply("rs", &["a", "b"])));
        assert_eq!(t.compatibility_error(), None);
    }

    #[test]
    fn standalone_without_wire_versions_is_incompatible_until_upgraded() {
        let mut t = topology(&["a"]);
        t.apply(described("a", &rawdoc! { "ok": 1, "isWritablePrimary": true }));
        assert!(t.compatibility_error().is_some());
        t.apply(described("a", &standalone_reply()));
        assert_eq!(t.compatibility_error(), None);
    }

    #[test]
    fn session_timeout_is_the_smallest_among_data_bearing_servers() {
        let mut t = replica_set(&["a"], "rs");
        let hosts = ["a", "b", "c", "d"];
        t.apply(described(
            "a",
            &with(primary_reply("rs", &hosts), "logicalSessionTimeoutMinutes", 3),
        ));
        assert_eq!(t.logical_session_timeout_minutes(), Some(3));
        // Arbiters and ghosts hold no data and do not count, with or without a value.
        let arbiter =
            rawdoc! { "ok": 1, "setName": "rs", "arbiterOnly": true, "hosts": ["a:27017"], "maxWireVersion": 21 };
        t.apply(described("c", &arbiter));
        assert_eq!(t.logical_session_timeout_minutes(), Some(3));
        t.apply(described(
            "b",
            &with(secondary_reply("rs", &hosts), "logicalSessionTimeoutMinutes", 2),
        ));
        assert_eq!(t.logical_session_timeout_minutes(), Some(2));
        // A data-bearing member without the field disables sessions.
        t.apply(described("d", &secondary_reply("rs", &hosts)));
        assert_eq!(t.logical_session_timeout_minutes(), None);
        t.apply(ServerDescription::unknown(addr("d"), Some("gone".into())));
        assert_eq!(t.logical_session_timeout_minutes(), Some(2));
    }

    #[test]
    fn replies_with_an_older_topology_version_are_ignored() {
        let version = |process: u8, counter: i64| rawdoc! { "processId": oid(process), "counter": counter };
        let mut t = replica_set(&["a", "b"], "rs");
        t.apply(described(
            "a",
            &with(primary_reply("rs", &["a", "b"]), "topologyVersion", version(1, 2)),
        ));
        let older = with(secondary_reply("rs", &["a", "b"]), "topologyVersion", version(1, 1));
        assert_eq!(t.apply(described("a", &older)), TopologyChange::default());
        assert_eq!(server_type(&t, "a"), Some(ServerType::RsPrimary));
        // Equal replaces (to refresh round-trip and update times), as does a restart.
        let equal = with(primary_reply("rs", &["a", "b"]), "topologyVersion", version(1, 2));
        assert_eq!(t.apply(described("a", &equal)).ready_pool, Some(addr("a")));
        let restarted = with(secondary_reply("rs", &["a", "b"]), "topologyVersion", version(2, 0));
        t.apply(described("a", &restarted));
        assert_eq!(server_type(&t, "a"), Some(ServerType::RsSecondary));
        // A failed check carries no version, so it always applies.
        t.apply(ServerDescription::unknown(addr("a"), Some("reset".into())));
        assert_eq!(server_type(&t, "a"), Some(ServerType::Unknown));
    }

    #[test]
    fn round_trip_time_averages_across_checks_and_resets_when_unknown() {
        let ms = Duration::from_millis;
        let mut t = replica_set(&["a"], "rs");
        let reply = primary_reply("rs", &["a"]);
        let check = |rtt| ServerDescription::from_hello(addr("a"), &reply, rtt, Instant::now());
        t.apply(check(Some(ms(10))));
        assert_eq!(t.server(&addr("a")).unwrap().round_trip_time, Some(ms(10)));
        t.apply(check(Some(ms(20))));
        assert_eq!(t.server(&addr("a")).unwrap().round_trip_time, Some(ms(12)));
        assert_eq!(t.server(&addr("a")).unwrap().min_round_trip_time(), ms(10));
        // A streaming reply is not a round trip: the average stays.
        t.apply(check(None));
        assert_eq!(t.server(&addr("a")).unwrap().round_trip_time, Some(ms(12)));
        assert!(t.record_round_trip_time(&addr("a"), ms(2)));
        assert_eq!(
            t.server(&addr("a")).unwrap().round_trip_time,
            Some(Duration::from_micros(10_000))
        );
        t.apply(ServerDescription::unknown(addr("a"), Some("reset".into())));
        assert_eq!(t.server(&addr("a")).unwrap().round_trip_time, None);
        assert!(!t.record_round_trip_time(&addr("a"), ms(2)));
        // Back from Unknown, the average starts over.
        t.apply(check(Some(ms(30))));
        assert_eq!(t.server(&addr("a")).unwrap().round_trip_time, Some(ms(30)));
        assert_eq!(t.server(&addr("a")).unwrap().min_round_trip_time(), Duration::ZERO);
    }

    #[test]
    fn monitor_network_error_on_a_known_server_retries_at_once() {
        let mut t = replica_set(&["a", "b"], "rs");
        t.apply(described("a", &primary_reply("rs", &["a", "b"])));
        let change = t.handle_check_network_error(&addr("a"), "connection reset", false);
        assert_eq!(change.request_immediate_check, addrs(&["a"]));
        let clear = change.clear_pool.unwrap();
        assert!(!clear.interrupt_in_use_connections);
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetNoPrimary);
        assert_eq!(t.server(&addr("a")).unwrap().error.as_deref(), Some("connection reset"));
        // Already Unknown: wait for the next heartbeat. A timeout interrupts connections in use.
        let change = t.handle_check_network_error(&addr("a"), "timed out", true);
        assert_eq!(change.request_immediate_check, []);
        let clear = change.clear_pool.unwrap();
        assert!(clear.interrupt_in_use_connections);
        assert_eq!(clear.generation, 2);
        // A server not in the topology: nothing.
        assert_eq!(
            t.handle_check_network_error(&addr("zz"), "x", false),
            TopologyChange::default()
        );
    }

    #[test]
    fn load_balanced_topology_is_never_updated_by_checks() {
        let mut t = TopologyDescription::new(addrs(&["lb"]), None, false, true).unwrap();
        assert_eq!(t.apply(described("lb", &mongos_reply())), TopologyChange::default());
        assert_eq!(server_type(&t, "lb"), Some(ServerType::LoadBalancer));
        assert_eq!(t.compatibility_error(), None);
    }

    #[test]
    fn describe_lists_each_server_with_type_rtt_and_error() {
        let mut t = replica_set(&["a", "b"], "rs");
        t.apply(described("a", &primary_reply("rs", &["a", "b"])));
        t.apply(ServerDescription::unknown(addr("b"), Some("connection refused".into())));
        assert_eq!(
            t.describe(),
            "type ReplicaSetWithPrimary, set \"rs\"\n\
             a:27017 RSPrimary, rtt 10.0 ms\n\
             b:27017 Unknown, error: connection refused"
        );
    }
}
