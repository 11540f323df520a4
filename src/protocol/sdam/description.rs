//! Server descriptions: what one hello reply says about one server.
//!
//! A description is a value built from a reply the monitor received; it never changes after
//! [`TopologyDescription::apply`](super::TopologyDescription::apply) stores it, except that
//! the topology folds each new round-trip sample into the running average it keeps for the
//! server.

use std::cmp::Ordering;
use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bson::oid::ObjectId;
use bson::{DateTime, RawBsonRef, RawDocument};

use crate::protocol::{ServerAddress, TagSet};

/// The server's `maxBsonObjectSize` when it reports none: 16 MiB.
pub const DEFAULT_MAX_BSON_OBJECT_SIZE: i32 = 16 * 1024 * 1024;
/// The server's `maxMessageSizeBytes` when it reports none.
pub const DEFAULT_MAX_MESSAGE_SIZE_BYTES: i32 = 48_000_000;
/// The server's `maxWriteBatchSize` when it reports none.
pub const DEFAULT_MAX_WRITE_BATCH_SIZE: i32 = 100_000;

/// How many recent round-trip samples the minimum round-trip time is taken over (Server
/// Monitoring specification: "the minimum RTT out of the (at most) last 10 samples").
const MIN_RTT_SAMPLES: usize = 10;

/// What a server is, as far as its last hello reply tells.
///
/// The specification's `PossiblePrimary` is left out: only single-threaded drivers use it to
/// order their scans, and for a driver that monitors every server concurrently it means the
/// same as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServerType {
    /// A mongod that is not in a replica set.
    Standalone,
    /// A mongos router (`msg: "isdbgrid"`).
    Mongos,
    /// The replica set's primary.
    RsPrimary,
    /// A replica set secondary.
    RsSecondary,
    /// A replica set arbiter: votes, holds no data.
    RsArbiter,
    /// A replica set member that is hidden, starting up, or recovering: not queryable, but its
    /// host list still helps discovery.
    RsOther,
    /// A member of an uninitialized or shunned replica set (`isreplicaset: true`): no host list
    /// and no set name, kept in case it recovers.
    RsGhost,
    /// The load balancer in front of a `loadBalanced=true` deployment; never monitored.
    LoadBalancer,
    /// Not checked yet, or the last check failed.
    #[default]
    Unknown,
}

impl ServerType {
    /// The name the specifications use (`RSPrimary`, `Mongos`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ServerType::Standalone => "Standalone",
            ServerType::Mongos => "Mongos",
            ServerType::RsPrimary => "RSPrimary",
            ServerType::RsSecondary => "RSSecondary",
            ServerType::RsArbiter => "RSArbiter",
            ServerType::RsOther => "RSOther",
            ServerType::RsGhost => "RSGhost",
            ServerType::LoadBalancer => "LoadBalancer",
            ServerType::Unknown => "Unknown",
        }
    }

    /// Whether application data can be read from a server of this type: standalones, mongoses,
    /// primaries, secondaries and load balancers. Only these count towards the deployment's
    /// `logicalSessionTimeoutMinutes`, and only their pools are made ready after a check.
    pub fn is_data_bearing(self) -> bool {
        matches!(
            self,
            ServerType::Standalone
                | ServerType::Mongos
                | ServerType::RsPrimary
                | ServerType::RsSecondary
                | ServerType::LoadBalancer
        )
    }

    /// Whether the server is believed reachable: every type but `Unknown`.
    pub fn is_available(self) -> bool {
        self != ServerType::Unknown
    }
}

impl fmt::Display for ServerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A server's `topologyVersion`: the process it is (which changes on restart) and a counter
/// the server increments on every state change. It orders replies and errors from one
/// process, so an old "not writable primary" error cannot undo a newer hello reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopologyVersion {
    /// `processId`: changes when the server restarts.
    pub process_id: ObjectId,
    /// `counter`: grows with each state change of this process.
    pub counter: i64,
}

impl TopologyVersion {
    /// Reads a `topologyVersion` subdocument.
    pub fn from_document(doc: &RawDocument) -> Result<TopologyVersion, String> {
        let process_id = match field(doc, "processId")? {
            Some(RawBsonRef::ObjectId(id)) => id,
            Some(other) => {
                return Err(wrong_type("topologyVersion.processId", "an ObjectId", &other));
            }
            None => return Err("field topologyVersion.processId is missing".to_owned()),
        };
        let counter =
            int_field(doc, "counter")?.ok_or_else(|| "field topologyVersion.counter is missing".to_owned())?;
        Ok(TopologyVersion { process_id, counter })
    }
}

/// Compares the topology version the client holds (`current`) with one that just arrived.
///
/// `None` means the newcomer must be assumed more recent: one of the two is missing, or they
/// come from different processes (the server restarted). Otherwise the counters decide.
pub(crate) fn compare_topology_versions(
    current: Option<&TopologyVersion>,
    incoming: Option<&TopologyVersion>,
) -> Option<Ordering> {
    match (current, incoming) {
        (Some(current), Some(incoming)) if current.process_id == incoming.process_id => {
            Some(current.counter.cmp(&incoming.counter))
        }
        _ => None,
    }
}

/// The client's view of one server, from its most recent check.
///
/// Build one with [`ServerDescription::from_hello`] (a reply arrived) or
/// [`ServerDescription::unknown`] (no reply, or the check failed) and hand it to
/// [`TopologyDescription::apply`](super::TopologyDescription::apply).
///
/// The size limits are here for diagnostics; the Server Discovery and Monitoring
/// specification warns against formatting messages from a monitor's view of them, because a
/// monitor's reply can be older or newer than the connection in use. Use the limits from the
/// handshake of the connection that sends the message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerDescription {
    /// The address the client connects to (not necessarily what the server calls itself).
    pub address: ServerAddress,
    /// What the server is.
    pub server_type: ServerType,
    /// Why the server is `Unknown`, when a check or an operation failed.
    pub error: Option<String>,
    /// The average round-trip time of hello calls: an exponentially weighted moving average
    /// (alpha 0.2) kept by the topology; `None` while the server is `Unknown`.
    pub round_trip_time: Option<Duration>,
    /// `minWireVersion` (0 when absent).
    pub min_wire_version: i32,
    /// `maxWireVersion` (0 when absent).
    pub max_wire_version: i32,
    /// `me`: the address the replica set configuration knows this member by.
    pub me: Option<ServerAddress>,
    /// `hosts`: this member's view of the set's electable and secondary members.
    pub hosts: BTreeSet<ServerAddress>,
    /// `passives`: priority-zero members; treated exactly like hosts.
    pub passives: BTreeSet<ServerAddress>,
    /// `arbiters`: monitored too, as a last way to find a moved replica set.
    pub arbiters: BTreeSet<ServerAddress>,
    /// `tags`: matched against read preference tag sets.
    pub tags: TagSet,
    /// `setName`: the replica set's name.
    pub set_name: Option<String>,
    /// `setVersion`: the configuration version; trusted from primaries only.
    pub set_version: Option<i64>,
    /// `electionId`: set by a member that believes it is primary.
    pub election_id: Option<ObjectId>,
    /// `primary`: who this member thinks the primary is.
    pub primary: Option<ServerAddress>,
    /// `lastWrite.lastWriteDate`: the primary's wall clock at the last write this member has;
    /// the basis of staleness estimates.
    pub last_write_date: Option<DateTime>,
    /// When the reply arrived, on the caller's monotonic clock; `None` for a server never
    /// checked.
    pub last_update_time: Option<Instant>,
    /// `logicalSessionTimeoutMinutes`; `None` when sessions are not supported.
    pub logical_session_timeout_minutes: Option<u32>,
    /// `topologyVersion` (MongoDB 4.4+), or the one from the state-change error that made the
    /// server `Unknown`.
    pub topology_version: Option<TopologyVersion>,
    /// `helloOk`: the server accepts `hello`, so monitoring need not fall back to the legacy
    /// command.
    pub hello_ok: bool,
    /// `maxMessageSizeBytes`, or its default.
    pub max_message_size_bytes: i32,
    /// `maxBsonObjectSize`, or its default.
    pub max_bson_object_size: i32,
    /// `maxWriteBatchSize`, or its default.
    pub max_write_batch_size: i32,
    /// The latest round-trip samples, newest last, at most [`MIN_RTT_SAMPLES`].
    recent_round_trip_times: VecDeque<Duration>,
}

impl ServerDescription {
    /// A description of type `Unknown`, as for a server not checked yet (`error: None`) or
    /// whose check failed (`error: Some`). Handing the latter to
    /// [`TopologyDescription::apply`](super::TopologyDescription::apply) clears the server's
    /// connection pool, as the Server Monitoring specification requires after a failed check.
    pub fn unknown(address: ServerAddress, error: Option<String>) -> ServerDescription {
        ServerDescription {
            address,
            server_type: ServerType::Unknown,
            error,
            round_trip_time: None,
            min_wire_version: 0,
            max_wire_version: 0,
            me: None,
            hosts: BTreeSet::new(),
            passives: BTreeSet::new(),
            arbiters: BTreeSet::new(),
            tags: TagSet::new(),
            set_name: None,
            set_version: None,
            election_id: None,
            primary: None,
            last_write_date: None,
            last_update_time: None,
            logical_session_timeout_minutes: None,
            topology_version: None,
            hello_ok: false,
            max_message_size_bytes: DEFAULT_MAX_MESSAGE_SIZE_BYTES,
            max_bson_object_size: DEFAULT_MAX_BSON_OBJECT_SIZE,
            max_write_batch_size: DEFAULT_MAX_WRITE_BATCH_SIZE,
            recent_round_trip_times: VecDeque::new(),
        }
    }

    /// The description of a load balancer: the only server of a `loadBalanced=true`
    /// topology, never monitored, every other field unset.
    pub(crate) fn load_balancer(address: ServerAddress) -> ServerDescription {
        ServerDescription {
            server_type: ServerType::LoadBalancer,
            ..ServerDescription::unknown(address, None)
        }
    }

    /// The description a hello (or legacy `isMaster`) reply gives, received at `now`.
    ///
    /// `round_trip_time` is this check's duration; pass `None` for a reply of the streaming
    /// protocol, whose duration is not a round trip (the Server Monitoring specification
    /// measures those on a separate connection: see
    /// [`TopologyDescription::record_round_trip_time`](super::TopologyDescription::record_round_trip_time)).
    /// The topology folds the sample into the server's average when the description is
    /// applied.
    ///
    /// A reply without `ok: 1`, or with a field of the wrong type or an address that does not
    /// parse, gives an `Unknown` description whose error says what was wrong: a server that
    /// cannot be understood must not be selected.
    pub fn from_hello(
        address: ServerAddress,
        reply: &RawDocument,
        round_trip_time: Option<Duration>,
        now: Instant,
    ) -> ServerDescription {
        match parse_hello(address.clone(), reply) {
            Ok(mut description) => {
                description.last_update_time = Some(now);
                description.round_trip_time = round_trip_time;
                description.recent_round_trip_times.extend(round_trip_time);
                description
            }
            Err(message) => ServerDescription::unknown(address, Some(message)),
        }
    }

    /// Whether application data can be read from this server (see
    /// [`ServerType::is_data_bearing`]).
    pub fn is_data_bearing(&self) -> bool {
        self.server_type.is_data_bearing()
    }

    /// Whether the server is believed reachable (its type is not `Unknown`).
    pub fn is_available(&self) -> bool {
        self.server_type.is_available()
    }

    /// The smallest of the last ten round-trip samples, used by client-side operation
    /// timeouts to tell whether an operation can still finish in time. Zero until two samples
    /// have been taken, as the Server Monitoring specification requires, so a single slow
    /// first connection does not make every operation look hopeless.
    pub fn min_round_trip_time(&self) -> Duration {
        if self.recent_round_trip_times.len() < 2 {
            return Duration::ZERO;
        }
        self.recent_round_trip_times
            .iter()
            .copied()
            .min()
            .unwrap_or(Duration::ZERO)
    }

    /// Every member this server lists: hosts, passives and arbiters.
    pub fn members(&self) -> impl Iterator<Item = &ServerAddress> {
        self.hosts.iter().chain(&self.passives).chain(&self.arbiters)
    }

    /// Carries the round-trip history of `previous` (the description this one replaces) into
    /// this one: the average continues from the previous one, and the sample window grows.
    /// A description of type `Unknown` keeps neither, as the specification requires.
    pub(crate) fn continue_round_trip_times(&mut self, previous: &ServerDescription) {
        if self.server_type == ServerType::Unknown {
            self.round_trip_time = None;
            self.recent_round_trip_times.clear();
            return;
        }
        let sample = self.round_trip_time;
        self.round_trip_time = match sample {
            Some(sample) => Some(update_rtt(previous.round_trip_time, sample)),
            None => previous.round_trip_time,
        };
        let mut window = previous.recent_round_trip_times.clone();
        window.extend(sample);
        while window.len() > MIN_RTT_SAMPLES {
            window.pop_front();
        }
        self.recent_round_trip_times = window;
    }

    /// Adds one round-trip sample, measured outside the hello that built this description.
    pub(crate) fn add_round_trip_sample(&mut self, sample: Duration) {
        self.round_trip_time = Some(update_rtt(self.round_trip_time, sample));
        self.recent_round_trip_times.push_back(sample);
        while self.recent_round_trip_times.len() > MIN_RTT_SAMPLES {
            self.recent_round_trip_times.pop_front();
        }
    }
}

/// The new average round-trip time after `sample`: the sample itself when there is no
/// average yet, else the exponentially weighted moving average with alpha 0.2 the Server
/// Selection specification prescribes (`0.2 * sample + 0.8 * previous`), which puts about 85%
/// of the weight on the last nine samples so one slow reply does not swing selection.
pub fn update_rtt(previous: Option<Duration>, sample: Duration) -> Duration {
    let Some(previous) = previous else {
        return sample;
    };
    // Integer nanoseconds: exact, and no float casts.
    let nanos = (sample.as_nanos() * 2 + previous.as_nanos() * 8) / 10;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Reads a reply of `ok: 1`, or says why it cannot be used.
fn parse_hello(address: ServerAddress, reply: &RawDocument) -> Result<ServerDescription, String> {
    check_ok(reply)?;
    let mut description = ServerDescription::unknown(address, None);

    // `isWritablePrimary` first; servers that only know the legacy command say `ismaster`.
    let writable_primary = match field(reply, "isWritablePrimary")? {
        Some(_) => bool_field(reply, "isWritablePrimary")?,
        None => bool_field(reply, "ismaster")?,
    };
    let set_name = str_field(reply, "setName")?.map(str::to_owned);
    // Every flag is read (and type-checked) before deciding, so a malformed one is caught
    // whichever type the others point to.
    let ghost = bool_field(reply, "isreplicaset")?;
    let mongos = str_field(reply, "msg")? == Some("isdbgrid");
    let hidden = bool_field(reply, "hidden")?;
    let secondary = bool_field(reply, "secondary")?;
    let arbiter = bool_field(reply, "arbiterOnly")?;
    description.server_type = if ghost {
        ServerType::RsGhost
    } else if mongos {
        ServerType::Mongos
    } else if set_name.is_some() {
        if writable_primary {
            ServerType::RsPrimary
        } else if hidden {
            ServerType::RsOther
        } else if secondary {
            ServerType::RsSecondary
        } else if arbiter {
            ServerType::RsArbiter
        } else {
            ServerType::RsOther
        }
    } else {
        ServerType::Standalone
    };
    description.set_name = set_name;

    description.min_wire_version = i32_field(reply, "minWireVersion")?.unwrap_or(0);
    description.max_wire_version = i32_field(reply, "maxWireVersion")?.unwrap_or(0);
    description.me = address_field(reply, "me")?;
    description.hosts = address_list(reply, "hosts")?;
    description.passives = address_list(reply, "passives")?;
    description.arbiters = address_list(reply, "arbiters")?;
    description.tags = tags(reply)?;
    description.set_version = int_field(reply, "setVersion")?;
    description.election_id = match field(reply, "electionId")? {
        Some(RawBsonRef::ObjectId(id)) => Some(id),
        Some(other) => return Err(wrong_type("electionId", "an ObjectId", &other)),
        None => None,
    };
    description.primary = address_field(reply, "primary")?;
    description.last_write_date = match field(reply, "lastWrite")? {
        Some(RawBsonRef::Document(last_write)) => match field(last_write, "lastWriteDate")? {
            Some(RawBsonRef::DateTime(date)) => Some(date),
            Some(other) => {
                return Err(wrong_type("lastWrite.lastWriteDate", "a date", &other));
            }
            None => None,
        },
        Some(other) => return Err(wrong_type("lastWrite", "a document", &other)),
        None => None,
    };
    description.logical_session_timeout_minutes = match int_field(reply, "logicalSessionTimeoutMinutes")? {
        Some(minutes) => Some(
            u32::try_from(minutes)
                .map_err(|_| format!("field logicalSessionTimeoutMinutes: {minutes} is out of range"))?,
        ),
        None => None,
    };
    description.topology_version = match field(reply, "topologyVersion")? {
        Some(RawBsonRef::Document(doc)) => Some(TopologyVersion::from_document(doc)?),
        Some(other) => return Err(wrong_type("topologyVersion", "a document", &other)),
        None => None,
    };
    description.hello_ok = bool_field(reply, "helloOk")?;
    description.max_message_size_bytes = positive_i32(reply, "maxMessageSizeBytes", DEFAULT_MAX_MESSAGE_SIZE_BYTES)?;
    description.max_bson_object_size = positive_i32(reply, "maxBsonObjectSize", DEFAULT_MAX_BSON_OBJECT_SIZE)?;
    description.max_write_batch_size = positive_i32(reply, "maxWriteBatchSize", DEFAULT_MAX_WRITE_BATCH_SIZE)?;
    Ok(description)
}

/// `Ok` for a reply of `ok: 1`; otherwise the server's error, for the description's `error`.
fn check_ok(reply: &RawDocument) -> Result<(), String> {
    let ok = match field(reply, "ok")? {
        Some(RawBsonRef::Double(value)) => value == 1.0,
        Some(RawBsonRef::Int32(value)) => value == 1,
        Some(RawBsonRef::Int64(value)) => value == 1,
        Some(RawBsonRef::Boolean(value)) => value,
        Some(other) => return Err(wrong_type("ok", "a number", &other)),
        None => return Err("hello reply has no ok field".to_owned()),
    };
    if ok {
        return Ok(());
    }
    let message = str_field(reply, "errmsg").ok().flatten().unwrap_or("");
    let code = int_field(reply, "code").ok().flatten();
    let code_name = str_field(reply, "codeName").ok().flatten();
    let mut error = format!("hello failed: {message}");
    match (code, code_name) {
        (Some(code), Some(name)) => error.push_str(&format!(" (code {code}, {name})")),
        (Some(code), None) => error.push_str(&format!(" (code {code})")),
        _ => {}
    }
    Err(error)
}

/// The field's value; `Null` counts as absent. An error when the document is malformed.
pub(crate) fn field<'a>(doc: &'a RawDocument, key: &str) -> Result<Option<RawBsonRef<'a>>, String> {
    match doc.get(key) {
        Ok(Some(RawBsonRef::Null)) | Ok(None) => Ok(None),
        Ok(Some(value)) => Ok(Some(value)),
        Err(error) => Err(format!("malformed reply reading {key}: {error}")),
    }
}

pub(crate) fn wrong_type(key: &str, expected: &str, found: &RawBsonRef<'_>) -> String {
    format!("field {key}: expected {expected}, found {:?}", found.element_type())
}

/// A flag: absent means `false`.
fn bool_field(doc: &RawDocument, key: &str) -> Result<bool, String> {
    match field(doc, key)? {
        Some(RawBsonRef::Boolean(value)) => Ok(value),
        Some(other) => Err(wrong_type(key, "a boolean", &other)),
        None => Ok(false),
    }
}

pub(crate) fn str_field<'a>(doc: &'a RawDocument, key: &str) -> Result<Option<&'a str>, String> {
    match field(doc, key)? {
        Some(RawBsonRef::String(value)) => Ok(Some(value)),
        Some(other) => Err(wrong_type(key, "a string", &other)),
        None => Ok(None),
    }
}

/// An integer sent as int32, int64, or a double without a fractional part (some
/// MongoDB-compatible servers send doubles).
pub(crate) fn int_field(doc: &RawDocument, key: &str) -> Result<Option<i64>, String> {
    match field(doc, key)? {
        Some(RawBsonRef::Int32(value)) => Ok(Some(i64::from(value))),
        Some(RawBsonRef::Int64(value)) => Ok(Some(value)),
        Some(RawBsonRef::Double(value)) => integral_double(value)
            .map(Some)
            .ok_or_else(|| format!("field {key}: {value} is not an integer")),
        Some(other) => Err(wrong_type(key, "an integer", &other)),
        None => Ok(None),
    }
}

/// The double as an integer, if it is one that an `f64` holds exactly (|x| <= 2^53).
fn integral_double(value: f64) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if value.fract() != 0.0 || !(-EXACT..=EXACT).contains(&value) {
        return None;
    }
    // In range and integral (checked above), so the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    Some(value as i64)
}

fn i32_field(doc: &RawDocument, key: &str) -> Result<Option<i32>, String> {
    match int_field(doc, key)? {
        Some(value) => i32::try_from(value)
            .map(Some)
            .map_err(|_| format!("field {key}: {value} is out of range")),
        None => Ok(None),
    }
}

/// A size limit: must be positive when present.
fn positive_i32(doc: &RawDocument, key: &str, default: i32) -> Result<i32, String> {
    match i32_field(doc, key)? {
        Some(value) if value > 0 => Ok(value),
        Some(value) => Err(format!("field {key}: {value} is not positive")),
        None => Ok(default),
    }
}

fn parse_address(key: &str, text: &str) -> Result<ServerAddress, String> {
    ServerAddress::parse(text).ok_or_else(|| format!("field {key}: {text:?} is not a host:port"))
}

fn address_field(doc: &RawDocument, key: &str) -> Result<Option<ServerAddress>, String> {
    str_field(doc, key)?.map(|text| parse_address(key, text)).transpose()
}

fn address_list(doc: &RawDocument, key: &str) -> Result<BTreeSet<ServerAddress>, String> {
    let array = match field(doc, key)? {
        Some(RawBsonRef::Array(array)) => array,
        Some(other) => return Err(wrong_type(key, "an array", &other)),
        None => return Ok(BTreeSet::new()),
    };
    let mut addresses = BTreeSet::new();
    for element in array {
        match element.map_err(|error| format!("malformed reply reading {key}: {error}"))? {
            RawBsonRef::String(text) => {
                addresses.insert(parse_address(key, text)?);
            }
            other => return Err(wrong_type(key, "an array of strings", &other)),
        }
    }
    Ok(addresses)
}

fn tags(reply: &RawDocument) -> Result<TagSet, String> {
    let doc = match field(reply, "tags")? {
        Some(RawBsonRef::Document(doc)) => doc,
        Some(other) => return Err(wrong_type("tags", "a document", &other)),
        None => return Ok(TagSet::new()),
    };
    let mut tags = TagSet::new();
    for element in doc {
        let (key, value) = element.map_err(|error| format!("malformed reply reading tags: {error}"))?;
        match value {
            RawBsonRef::String(value) => {
                tags.insert(key.as_str().to_owned(), value.to_owned());
            }
            other => return Err(wrong_type("tags", "string values", &other)),
        }
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;
    use crate::protocol::sdam::test_support::{addr, described, host_array, oid, with};

    #[test]
    fn standalone_reply_gives_a_standalone_with_its_limits() {
        let reply = rawdoc! {
            "ok": 1.0, "isWritablePrimary": true, "helloOk": true, "minWireVersion": 0,
            "maxWireVersion": 21, "logicalSessionTimeoutMinutes": 30,
            "maxBsonObjectSize": 16_777_216, "maxMessageSizeBytes": 48_000_000,
            "maxWriteBatchSize": 100_000_i64,
        };
        let now = Instant::now();
        let description = ServerDescription::from_hello(addr("a"), &reply, Some(Duration::from_millis(4)), now);
        assert_eq!(description.server_type, ServerType::Standalone);
        assert_eq!(description.error, None);
        assert_eq!((description.min_wire_version, description.max_wire_version), (0, 21));
        assert_eq!(description.logical_session_timeout_minutes, Some(30));
        assert!(description.hello_ok);
        assert_eq!(description.max_write_batch_size, 100_000);
        assert_eq!(description.round_trip_time, Some(Duration::from_millis(4)));
        assert_eq!(description.last_update_time, Some(now));
        assert!(description.is_data_bearing() && description.is_available());
    }

    #[test]
    fn mongos_is_recognised_by_isdbgrid() {
        let reply = rawdoc! { "ok": 1, "ismaster": true, "msg": "isdbgrid", "maxWireVersion": 21 };
        assert_eq!(described("a", &reply).server_type, ServerType::Mongos);
    }

    #[test]
    fn primary_reply_carries_every_replica_set_field() {
        let reply = rawdoc! {
            "ok": 1, "isWritablePrimary": true, "setName": "rs", "setVersion": 3,
            "electionId": oid(7), "me": "A.Example:27017", "primary": "a.example:27017",
            "hosts": ["A.Example:27017", "b.example:27018"], "passives": ["C.example"],
            "arbiters": ["[::1]:27019"], "tags": { "dc": "east", "rack": "2" },
            "lastWrite": { "lastWriteDate": DateTime::from_millis(1_000) },
            "topologyVersion": { "processId": oid(1), "counter": 4_i64 },
            "minWireVersion": 0, "maxWireVersion": 25,
        };
        let d = described("a.example", &reply);
        assert_eq!(d.server_type, ServerType::RsPrimary);
        assert_eq!(d.set_name.as_deref(), Some("rs"));
        assert_eq!(d.set_version, Some(3));
        assert_eq!(d.election_id, Some(oid(7)));
        // Host names are lower-cased so "A" and "a" are one server.
        assert_eq!(d.me, Some(addr("a.example")));
        assert_eq!(d.primary, Some(addr("a.example")));
        assert_eq!(
            d.members().cloned().collect::<Vec<_>>(),
            vec![
                addr("a.example"),
                addr("b.example:27018"),
                addr("c.example"),
                addr("[::1]:27019")
            ]
        );
        assert_eq!(d.tags.get("dc").map(String::as_str), Some("east"));
        assert_eq!(d.last_write_date, Some(DateTime::from_millis(1_000)));
        assert_eq!(
            d.topology_version,
            Some(TopologyVersion {
                process_id: oid(1),
                counter: 4
            })
        );
    }

    #[test]
    fn legacy_ismaster_is_read_only_without_is_writable_primary() {
        let legacy = rawdoc! { "ok": 1, "ismaster": true, "setName": "rs", "maxWireVersion": 8 };
        assert_eq!(described("a", &legacy).server_type, ServerType::RsPrimary);
        // isWritablePrimary wins when both are present.
        let both = rawdoc! {
            "ok": 1, "isWritablePrimary": false, "ismaster": true, "secondary": true,
            "setName": "rs", "maxWireVersion": 21,
        };
        assert_eq!(described("a", &both).server_type, ServerType::RsSecondary);
    }

    #[test]
    fn replica_set_member_types() {
        let base = rawdoc! { "ok": 1, "isWritablePrimary": false, "setName": "rs", "hosts": host_array(&["a"]) };
        let cases = [
            (with(base.clone(), "secondary", true), ServerType::RsSecondary),
            (with(base.clone(), "arbiterOnly", true), ServerType::RsArbiter),
            // A hidden secondary is not queryable: RSOther, though its host list still counts.
            (
                with(with(base.clone(), "secondary", true), "hidden", true),
                ServerType::RsOther,
            ),
            // Starting up or recovering: neither primary, secondary nor arbiter.
            (base.clone(), ServerType::RsOther),
        ];
        for (reply, expected) in cases {
            let d = described("a", &reply);
            assert_eq!(d.server_type, expected, "{reply:?}");
            assert_eq!(d.hosts.len(), 1);
        }
        assert!(!ServerType::RsArbiter.is_data_bearing());
        assert!(!ServerType::RsOther.is_data_bearing());
        assert!(ServerType::RsSecondary.is_data_bearing());
    }

    #[test]
    fn isreplicaset_makes_a_ghost_whatever_else_it_says() {
        let reply = rawdoc! { "ok": 1, "isWritablePrimary": false, "isreplicaset": true, "maxWireVersion": 21 };
        let d = described("a", &reply);
        assert_eq!(d.server_type, ServerType::RsGhost);
        assert!(d.is_available() && !d.is_data_bearing());
    }

    #[test]
    fn ok_zero_or_missing_gives_unknown_with_the_servers_error() {
        let reply = rawdoc! { "ok": 0, "errmsg": "not authorized", "code": 13, "codeName": "Unauthorized" };
        let d = described("a", &reply);
        assert_eq!(d.server_type, ServerType::Unknown);
        assert_eq!(
            d.error.as_deref(),
            Some("hello failed: not authorized (code 13, Unauthorized)")
        );
        assert_eq!(d.round_trip_time, None);
        let d = described("a", &rawdoc! { "isWritablePrimary": true });
        assert_eq!(d.server_type, ServerType::Unknown);
        assert_eq!(d.error.as_deref(), Some("hello reply has no ok field"));
    }

    #[test]
    fn malformed_fields_give_unknown_naming_the_field() {
        let ok = rawdoc! { "ok": 1, "setName": "rs", "isWritablePrimary": true };
        let cases: Vec<(bson::RawDocumentBuf, &str)> = vec![
            (with(ok.clone(), "hosts", "a:27017"), "field hosts: expected an array"),
            (
                with(ok.clone(), "hosts", bson::rawbson!([1])),
                "field hosts: expected an array of strings",
            ),
            (
                with(ok.clone(), "hosts", bson::rawbson!(["a:notaport"])),
                "field hosts: \"a:notaport\" is not a host:port",
            ),
            (
                with(ok.clone(), "electionId", "7"),
                "field electionId: expected an ObjectId",
            ),
            (with(ok.clone(), "me", 5), "field me: expected a string"),
            (
                with(ok.clone(), "logicalSessionTimeoutMinutes", -1),
                "field logicalSessionTimeoutMinutes: -1 is out of range",
            ),
            (
                with(ok.clone(), "maxWireVersion", 1.5),
                "field maxWireVersion: 1.5 is not an integer",
            ),
            (
                with(ok.clone(), "maxWireVersion", 1_i64 << 40),
                "field maxWireVersion: 1099511627776 is out of range",
            ),
            (
                with(ok.clone(), "maxBsonObjectSize", 0),
                "field maxBsonObjectSize: 0 is not positive",
            ),
            (
                with(ok.clone(), "tags", bson::rawbson!({ "dc": 1 })),
                "field tags: expected string values",
            ),
            (
                with(ok.clone(), "lastWrite", bson::rawbson!({ "lastWriteDate": 5 })),
                "field lastWrite.lastWriteDate: expected a date",
            ),
            (
                with(ok.clone(), "topologyVersion", bson::rawbson!({ "counter": 1 })),
                "field topologyVersion.processId is missing",
            ),
            (
                with(ok.clone(), "secondary", "yes"),
                "field secondary: expected a boolean",
            ),
            (rawdoc! { "ok": "1" }, "field ok: expected a number"),
        ];
        for (reply, expected) in cases {
            let d = described("a", &reply);
            assert_eq!(d.server_type, ServerType::Unknown, "{reply:?}");
            let error = d.error.unwrap_or_default();
            assert!(error.starts_with(expected), "{error:?} should start with {expected:?}");
        }
    }

    #[test]
    fn numbers_may_come_as_any_integer_type_and_nulls_as_absent() {
        let reply = rawdoc! {
            "ok": 1_i64, "isWritablePrimary": true, "setName": "rs", "setVersion": 2.0,
            "maxWireVersion": 21_i64, "electionId": bson::RawBson::Null, "primary": bson::RawBson::Null,
        };
        let d = described("a", &reply);
        assert_eq!(d.server_type, ServerType::RsPrimary);
        assert_eq!(d.set_version, Some(2));
        assert_eq!(d.max_wire_version, 21);
        assert_eq!((d.election_id, d.primary), (None, None));
        let boolean_ok = rawdoc! { "ok": true, "isWritablePrimary": true };
        assert_eq!(described("a", &boolean_ok).server_type, ServerType::Standalone);
    }

    #[test]
    fn a_truncated_reply_never_panics() {
        let reply = rawdoc! { "ok": 1, "setName": "rs", "hosts": ["a:27017", "b:27017"], "isWritablePrimary": true };
        let bytes = reply.as_bytes();
        for cut in 5..bytes.len() {
            let mut truncated = bytes[..cut].to_vec();
            // Keep the declared length consistent so the document opens, then runs out.
            let length = i32::try_from(truncated.len()).unwrap().to_le_bytes();
            truncated[..4].copy_from_slice(&length);
            if let Ok(doc) = RawDocument::from_bytes(&truncated) {
                let d = ServerDescription::from_hello(addr("a"), doc, None, Instant::now());
                assert!(d.server_type == ServerType::Unknown || d.error.is_none());
            }
        }
    }

    #[test]
    fn rtt_average_is_the_first_sample_then_an_ewma_with_alpha_one_fifth() {
        let ms = Duration::from_millis;
        assert_eq!(update_rtt(None, ms(5)), ms(5));
        assert_eq!(update_rtt(None, Duration::ZERO), Duration::ZERO);
        assert_eq!(update_rtt(Some(Duration::ZERO), ms(5)), ms(1));
        assert_eq!(update_rtt(Some(ms(10)), ms(10)), ms(10));
        // 0.2 * 36 + 0.8 * 3.1 = 9.68 ms, exactly.
        assert_eq!(
            update_rtt(Some(Duration::from_micros(3_100)), ms(36)),
            Duration::from_micros(9_680)
        );
        assert_eq!(update_rtt(Some(ms(100)), ms(0)), ms(80));
    }

    #[test]
    fn min_rtt_is_zero_until_two_samples_then_the_least_of_the_last_ten() {
        let ms = Duration::from_millis;
        let mut d = ServerDescription::from_hello(addr("a"), &rawdoc! { "ok": 1 }, Some(ms(3)), Instant::now());
        assert_eq!(d.min_round_trip_time(), Duration::ZERO);
        d.add_round_trip_sample(ms(7));
        assert_eq!(d.min_round_trip_time(), ms(3));
        for _ in 0..9 {
            d.add_round_trip_sample(ms(9));
        }
        // The 3 ms sample fell out of the ten-sample window.
        assert_eq!(d.min_round_trip_time(), ms(7));
        d.add_round_trip_sample(ms(8));
        assert_eq!(d.min_round_trip_time(), ms(8));
    }

    #[test]
    fn topology_versions_compare_only_within_one_process() {
        let v = |process: u8, counter| TopologyVersion {
            process_id: oid(process),
            counter,
        };
        assert_eq!(
            compare_topology_versions(Some(&v(1, 2)), Some(&v(1, 1))),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare_topology_versions(Some(&v(1, 2)), Some(&v(1, 2))),
            Some(Ordering::Equal)
        );
        // A restarted server (new process id) or a missing version: assume the newcomer is newer.
        assert_eq!(compare_topology_versions(Some(&v(1, 9)), Some(&v(2, 0))), None);
        assert_eq!(compare_topology_versions(None, Some(&v(1, 0))), None);
        assert_eq!(compare_topology_versions(Some(&v(1, 0)), None), None);
        let parsed = TopologyVersion::from_document(&rawdoc! { "processId": oid(3), "counter": 5 });
        assert_eq!(parsed, Ok(v(3, 5)));
    }
}
