//! Server selection: which servers may take an operation, per the Server Selection and Max
//! Staleness specifications, and what read preference to send along.

use std::fmt;
use std::time::Duration;

use bson::{RawDocumentBuf, rawdoc};

use super::description::{ServerDescription, ServerType};
use super::topology::{TopologyDescription, TopologyType};
use crate::error::Error;
use crate::protocol::{ReadPreference, ReadPreferenceMode, ServerAddress, TagSet};

/// The default latency window (`localThresholdMS`): 15 ms.
pub const DEFAULT_LOCAL_THRESHOLD: Duration = Duration::from_millis(15);

/// How often an idle primary writes a no-op to its oplog (`idleWritePeriodMS`), so that even
/// an idle set's secondaries show recent `lastWriteDate`s. A staleness estimate can be off by
/// this much plus a heartbeat, so `maxStalenessSeconds` must allow for both.
pub const IDLE_WRITE_PERIOD: Duration = Duration::from_secs(10);

/// The smallest `maxStalenessSeconds` allowed (`smallestMaxStalenessSeconds`): 90 seconds,
/// the same for every driver and for mongos, so a URI works unchanged against a replica set
/// and a sharded cluster.
pub const SMALLEST_MAX_STALENESS: Duration = Duration::from_secs(90);

/// What an operation needs from a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectionCriteria {
    /// A read, with this read preference.
    ReadPreference(ReadPreference),
    /// A write: a primary, a mongos, a standalone, or the one server of a direct connection.
    Writable,
}

impl fmt::Display for SelectionCriteria {
    /// What was wanted, for server-selection errors ("a writable server", "a server for
    /// read preference secondary with tags [{dc: east}]").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let preference = match self {
            SelectionCriteria::Writable => return f.write_str("a writable server"),
            SelectionCriteria::ReadPreference(preference) => preference,
        };
        write!(f, "a server for read preference {}", preference.mode.name())?;
        if !preference.tag_sets.is_empty() {
            let sets: Vec<String> = preference.tag_sets.iter().map(tag_set_text).collect();
            write!(f, " with tags [{}]", sets.join(", "))?;
        }
        if let Some(staleness) = preference.max_staleness {
            write!(f, " within {} s of staleness", staleness.as_secs())?;
        }
        Ok(())
    }
}

fn tag_set_text(set: &TagSet) -> String {
    let tags: Vec<String> = set.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", tags.join(", "))
}

/// Checks a read preference against the Server Selection rules: tag sets and a staleness
/// bound make no sense with mode `primary`, and against a replica set a staleness bound must
/// be at least [`SMALLEST_MAX_STALENESS`] and at least `heartbeat_frequency` +
/// [`IDLE_WRITE_PERIOD`], since a smaller one would send every read to the primary however
/// little the secondaries lag. (Mongos checks the bound itself in a sharded cluster.)
pub fn validate_read_preference(
    read_preference: &ReadPreference,
    topology_type: TopologyType,
    heartbeat_frequency: Duration,
) -> Result<(), Error> {
    if read_preference.mode == ReadPreferenceMode::Primary {
        if read_preference.tag_sets.iter().any(|set| !set.is_empty()) {
            return Err(Error::usage(
                "read preference mode primary cannot be combined with tag sets",
            ));
        }
        if read_preference.max_staleness.is_some() {
            return Err(Error::usage(
                "read preference mode primary cannot be combined with maxStalenessSeconds",
            ));
        }
    }
    let Some(max_staleness) = read_preference.max_staleness else {
        return Ok(());
    };
    if !topology_type.is_replica_set() {
        return Ok(());
    }
    let smallest = SMALLEST_MAX_STALENESS.max(heartbeat_frequency.saturating_add(IDLE_WRITE_PERIOD));
    if max_staleness < smallest {
        return Err(Error::usage(format!(
            "maxStalenessSeconds must be at least {} seconds (at least 90, and at least \
             heartbeatFrequencyMS plus the 10-second idle write period), got {}",
            smallest.as_secs_f64().ceil(),
            max_staleness.as_secs_f64()
        )));
    }
    Ok(())
}

/// The servers an operation may go to, within the latency window: those suitable for
/// `criteria`, minus any whose average round-trip time is more than `local_threshold` slower
/// than the fastest suitable one. The driver picks one of them at random, or the less busy of
/// two random ones. Empty means none is suitable yet: request immediate checks and wait for
/// the topology to change, until the selection timeout.
///
/// `deprioritized` lists servers a retried operation already failed on; they are only chosen
/// when nothing else is suitable.
///
/// Fails at once, rather than waiting, when the deployment has an incompatible server or the
/// read preference is invalid (see [`validate_read_preference`]).
pub fn select<'a>(
    topology: &'a TopologyDescription,
    criteria: &SelectionCriteria,
    local_threshold: Duration,
    deprioritized: &[ServerAddress],
) -> Result<Vec<&'a ServerDescription>, Error> {
    topology.check_compatible()?;
    if let SelectionCriteria::ReadPreference(preference) = criteria {
        validate_read_preference(preference, topology.topology_type(), topology.heartbeat_frequency())?;
    }
    let mut suitable = suitable_servers(topology, criteria, |server| !deprioritized.contains(&server.address));
    if suitable.is_empty() && !deprioritized.is_empty() {
        suitable = suitable_servers(topology, criteria, |_| true);
    }
    Ok(within_latency_window(suitable, local_threshold))
}

/// The `$readPreference` to send with a read (over OP_MSG) to a server of `server_type`,
/// per the Server Selection rules for passing read preferences:
///
/// - a standalone never gets one;
/// - a direct connection to anything but a mongos gets `primaryPreferred` when the
///   application asked for `primary`, so that a secondary does not refuse the read: a direct
///   connection means "send everything to this server";
/// - otherwise mode `primary` is left out (it is what servers assume), and any other mode is
///   sent in full: mongos and load balancers route by it, replica set members check it.
///
/// Writes carry no read preference.
pub fn read_preference_document_for(
    server_type: ServerType,
    topology_type: TopologyType,
    read_preference: &ReadPreference,
) -> Option<RawDocumentBuf> {
    if server_type == ServerType::Standalone {
        return None;
    }
    let primary = read_preference.mode == ReadPreferenceMode::Primary;
    if topology_type == TopologyType::Single && server_type != ServerType::Mongos && primary {
        return Some(rawdoc! { "mode": ReadPreferenceMode::PrimaryPreferred.name() });
    }
    if primary {
        return None;
    }
    Some(read_preference.to_document())
}

impl TopologyDescription {
    /// Whether a read with `read_preference` could be served now (the Driver Sessions
    /// specification asks this to decide whether sessions are supported).
    pub fn has_readable_server(&self, read_preference: &ReadPreference) -> bool {
        let criteria = SelectionCriteria::ReadPreference(read_preference.clone());
        select(self, &criteria, Duration::ZERO, &[]).is_ok_and(|servers| !servers.is_empty())
    }

    /// Whether a write could be served now.
    pub fn has_writable_server(&self) -> bool {
        select(self, &SelectionCriteria::Writable, Duration::ZERO, &[]).is_ok_and(|servers| !servers.is_empty())
    }
}

/// Every server suitable for `criteria` among those `allowed`, before the latency window.
fn suitable_servers<'a>(
    topology: &'a TopologyDescription,
    criteria: &SelectionCriteria,
    allowed: impl Fn(&ServerDescription) -> bool,
) -> Vec<&'a ServerDescription> {
    let servers = topology.servers().values().filter(|server| allowed(server));
    match topology.topology_type() {
        TopologyType::Unknown => Vec::new(),
        // A direct connection or a load balancer: the one server, whatever it is, for reads
        // and writes alike; the read preference only travels with the command.
        TopologyType::Single | TopologyType::LoadBalanced => servers.filter(|server| server.is_available()).collect(),
        TopologyType::Sharded => servers
            .filter(|server| server.server_type == ServerType::Mongos)
            .collect(),
        TopologyType::ReplicaSetNoPrimary | TopologyType::ReplicaSetWithPrimary => {
            let members: Vec<&ServerDescription> = servers.collect();
            match criteria {
                SelectionCriteria::Writable => of_type(&members, &[ServerType::RsPrimary]),
                SelectionCriteria::ReadPreference(preference) => replica_set_read(topology, preference, &members),
            }
        }
    }
}

fn of_type<'a>(servers: &[&'a ServerDescription], types: &[ServerType]) -> Vec<&'a ServerDescription> {
    servers
        .iter()
        .copied()
        .filter(|server| types.contains(&server.server_type))
        .collect()
}

/// A replica set read: the primary for `primary`; eligible secondaries (staleness, then tag
/// sets) for `secondary`; one then the other for the two `...Preferred` modes (the primary is
/// never filtered by tags or staleness); every eligible data member for `nearest`.
fn replica_set_read<'a>(
    topology: &TopologyDescription,
    preference: &ReadPreference,
    members: &[&'a ServerDescription],
) -> Vec<&'a ServerDescription> {
    let primary = || of_type(members, &[ServerType::RsPrimary]);
    let secondaries = || eligible(topology, preference, of_type(members, &[ServerType::RsSecondary]));
    match preference.mode {
        ReadPreferenceMode::Primary => primary(),
        ReadPreferenceMode::PrimaryPreferred => {
            let primary = primary();
            if primary.is_empty() { secondaries() } else { primary }
        }
        ReadPreferenceMode::Secondary => secondaries(),
        ReadPreferenceMode::SecondaryPreferred => {
            let secondaries = secondaries();
            if secondaries.is_empty() { primary() } else { secondaries }
        }
        ReadPreferenceMode::Nearest => eligible(
            topology,
            preference,
            of_type(members, &[ServerType::RsPrimary, ServerType::RsSecondary]),
        ),
    }
}

/// Candidates that are fresh enough, then those matching the first tag set that matches any
/// of them. Staleness comes first so that a tag set matching only stale members does not
/// hide a later tag set that matches fresh ones.
fn eligible<'a>(
    topology: &TopologyDescription,
    preference: &ReadPreference,
    candidates: Vec<&'a ServerDescription>,
) -> Vec<&'a ServerDescription> {
    let fresh: Vec<&ServerDescription> = match preference.max_staleness {
        Some(max_staleness) => candidates
            .into_iter()
            .filter(|server| is_fresh(topology, server, max_staleness))
            .collect(),
        None => candidates,
    };
    if preference.tag_sets.is_empty() {
        return fresh;
    }
    for tag_set in &preference.tag_sets {
        let matching: Vec<&ServerDescription> = fresh
            .iter()
            .copied()
            .filter(|server| tag_set.iter().all(|(key, value)| server.tags.get(key) == Some(value)))
            .collect();
        if !matching.is_empty() {
            return matching;
        }
    }
    Vec::new()
}

/// Whether a member's estimated staleness is within `max_staleness`. Only secondaries lag;
/// a secondary whose staleness cannot be estimated (no `lastWriteDate`, or nothing to compare
/// it with) is not eligible, since the bound could not be honoured.
///
/// With a primary P, a secondary S is `(S.lastUpdateTime - S.lastWriteDate) -
/// (P.lastUpdateTime - P.lastWriteDate) + heartbeat` stale: the difference of the two servers'
/// lag behind the client's clock, so clock skew between client and servers cancels out, plus
/// a heartbeat in case S stopped replicating right after it was checked. Without a primary,
/// S is compared with the secondary that has the latest write: `SMax.lastWriteDate -
/// S.lastWriteDate + heartbeat`.
fn is_fresh(topology: &TopologyDescription, server: &ServerDescription, max_staleness: Duration) -> bool {
    if server.server_type != ServerType::RsSecondary {
        return true;
    }
    match staleness_nanos(topology, server) {
        Some(staleness) => staleness <= nanos(max_staleness),
        None => false,
    }
}

fn staleness_nanos(topology: &TopologyDescription, secondary: &ServerDescription) -> Option<i128> {
    let heartbeat = nanos(topology.heartbeat_frequency());
    let write = millis_to_nanos(secondary.last_write_date?.timestamp_millis());
    if let Some(primary) = topology.primary() {
        let primary_write = millis_to_nanos(primary.last_write_date?.timestamp_millis());
        let update_gap = signed_nanos_between(primary.last_update_time?, secondary.last_update_time?);
        return Some(update_gap - (write - primary_write) + heartbeat);
    }
    let latest = topology
        .servers()
        .values()
        .filter(|server| server.server_type == ServerType::RsSecondary)
        .filter_map(|server| server.last_write_date)
        .max()?;
    Some(millis_to_nanos(latest.timestamp_millis()) - write + heartbeat)
}

/// `later - earlier`, negative when `later` is in fact earlier.
fn signed_nanos_between(earlier: std::time::Instant, later: std::time::Instant) -> i128 {
    match later.checked_duration_since(earlier) {
        Some(gap) => nanos(gap),
        None => -nanos(earlier.duration_since(later)),
    }
}

fn nanos(duration: Duration) -> i128 {
    i128::try_from(duration.as_nanos()).unwrap_or(i128::MAX)
}

fn millis_to_nanos(millis: i64) -> i128 {
    i128::from(millis) * 1_000_000
}

/// The suitable servers whose average round-trip time is within `local_threshold` of the
/// fastest one's (the fastest is always included). A server without an average (a load
/// balancer, which is never monitored) counts as instantaneous.
fn within_latency_window(suitable: Vec<&ServerDescription>, local_threshold: Duration) -> Vec<&ServerDescription> {
    let rtt = |server: &ServerDescription| server.round_trip_time.unwrap_or(Duration::ZERO);
    let Some(fastest) = suitable.iter().map(|server| rtt(server)).min() else {
        return suitable;
    };
    let limit = fastest.saturating_add(local_threshold);
    suitable.into_iter().filter(|server| rtt(server) <= limit).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bson::{DateTime, rawdoc};

    use super::*;
    use crate::protocol::sdam::DEFAULT_HEARTBEAT_FREQUENCY;
    use crate::protocol::sdam::test_support::{
        addr, addrs, mongos_reply, primary_reply, replica_set, secondary_reply, standalone_reply, topology, with,
    };

    const MS: Duration = Duration::from_millis(1);

    fn read(mode: ReadPreferenceMode) -> SelectionCriteria {
        SelectionCriteria::ReadPreference(ReadPreference::with_mode(mode))
    }

    fn tagged(mode: ReadPreferenceMode, tag_sets: &[&[(&str, &str)]]) -> SelectionCriteria {
        SelectionCriteria::ReadPreference(ReadPreference {
            mode,
            tag_sets: tag_sets
                .iter()
                .map(|set| set.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
                .collect(),
            max_staleness: None,
        })
    }

    fn stale_within(mode: ReadPreferenceMode, seconds: u64) -> SelectionCriteria {
        SelectionCriteria::ReadPreference(ReadPreference {
            mode,
            tag_sets: Vec::new(),
            max_staleness: Some(Duration::from_secs(seconds)),
        })
    }

    /// Applies `reply` from `address` with an average round trip of `rtt_ms`, received at `at`.
    fn check(t: &mut TopologyDescription, address: &str, reply: &RawDocumentBuf, rtt_ms: u64, at: Instant) {
        let description =
            ServerDescription::from_hello(addr(address), reply, Some(MS * u32::try_from(rtt_ms).unwrap()), at);
        t.apply(description);
    }

    fn dc(reply: RawDocumentBuf, dc: &str) -> RawDocumentBuf {
        with(reply, "tags", rawdoc! { "dc": dc })
    }

    const HOSTS: [&str; 5] = ["a", "b", "c", "d", "e"];

    /// Primary a (5 ms, east), secondaries b (6 ms, east) and c (30 ms, west), arbiter d,
    /// and e not checked yet.
    fn set_with_primary() -> TopologyDescription {
        let mut t = replica_set(&["a"], "rs");
        let now = Instant::now();
        check(&mut t, "a", &dc(primary_reply("rs", &HOSTS), "east"), 5, now);
        check(&mut t, "b", &dc(secondary_reply("rs", &HOSTS), "east"), 6, now);
        check(&mut t, "c", &dc(secondary_reply("rs", &HOSTS), "west"), 30, now);
        let arbiter =
            rawdoc! { "ok": 1, "setName": "rs", "arbiterOnly": true, "hosts": ["a:27017"], "maxWireVersion": 21 };
        check(&mut t, "d", &arbiter, 1, now);
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetWithPrimary);
        t
    }

    /// The same set after the primary went away.
    fn set_without_primary() -> TopologyDescription {
        let mut t = set_with_primary();
        t.apply(ServerDescription::unknown(addr("a"), Some("gone".into())));
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetNoPrimary);
        t
    }

    fn chosen(t: &TopologyDescription, criteria: &SelectionCriteria, threshold: Duration) -> Vec<ServerAddress> {
        select(t, criteria, threshold, &[])
            .unwrap()
            .into_iter()
            .map(|server| server.address.clone())
            .collect()
    }

    /// Every suitable server, whatever its latency.
    fn suitable(t: &TopologyDescription, criteria: &SelectionCriteria) -> Vec<ServerAddress> {
        chosen(t, criteria, Duration::from_secs(3600))
    }

    #[test]
    fn unknown_topology_has_no_suitable_server() {
        let mut t = topology(&["a", "b"]);
        let ghost = rawdoc! { "ok": 1, "isreplicaset": true, "maxWireVersion": 21 };
        check(&mut t, "a", &ghost, 1, Instant::now());
        assert_eq!(t.topology_type(), TopologyType::Unknown);
        assert_eq!(suitable(&t, &read(ReadPreferenceMode::Nearest)), []);
        assert_eq!(suitable(&t, &SelectionCriteria::Writable), []);
    }

    #[test]
    fn single_server_takes_every_read_and_write_once_available() {
        let mut t = TopologyDescription::new(addrs(&["a"]), None, true, false).unwrap();
        assert_eq!(suitable(&t, &SelectionCriteria::Writable), []);
        check(&mut t, "a", &secondary_reply("rs", &["a", "b"]), 50, Instant::now());
        for mode in [
            ReadPreferenceMode::Primary,
            ReadPreferenceMode::Secondary,
            ReadPreferenceMode::Nearest,
        ] {
            assert_eq!(suitable(&t, &read(mode)), addrs(&["a"]));
        }
        // Tags are ignored too: the user asked for this server.
        assert_eq!(
            suitable(&t, &tagged(ReadPreferenceMode::Secondary, &[&[("dc", "mars")]])),
            addrs(&["a"])
        );
        assert_eq!(suitable(&t, &SelectionCriteria::Writable), addrs(&["a"]));
    }

    #[test]
    fn sharded_selects_mongoses_in_the_window_whatever_the_mode() {
        let mut t = topology(&["a", "b", "c"]);
        let now = Instant::now();
        check(&mut t, "a", &mongos_reply(), 5, now);
        check(&mut t, "b", &mongos_reply(), 35, now);
        assert_eq!(t.topology_type(), TopologyType::Sharded);
        for criteria in [
            read(ReadPreferenceMode::Secondary),
            tagged(ReadPreferenceMode::Nearest, &[&[("dc", "mars")]]),
            stale_within(ReadPreferenceMode::Nearest, 1), // mongos checks the bound itself
            SelectionCriteria::Writable,
        ] {
            assert_eq!(suitable(&t, &criteria), addrs(&["a", "b"]), "{criteria}");
            assert_eq!(chosen(&t, &criteria, DEFAULT_LOCAL_THRESHOLD), addrs(&["a"]));
        }
    }

    #[test]
    fn load_balancer_takes_everything() {
        let t = TopologyDescription::new(addrs(&["lb"]), None, false, true).unwrap();
        assert_eq!(suitable(&t, &read(ReadPreferenceMode::Secondary)), addrs(&["lb"]));
        assert_eq!(suitable(&t, &SelectionCriteria::Writable), addrs(&["lb"]));
    }

    #[test]
    fn replica_set_with_primary_each_mode() {
        let t = set_with_primary();
        use ReadPreferenceMode::*;
        let cases: [(ReadPreferenceMode, &[&str]); 5] = [
            (Primary, &["a"]),
            (PrimaryPreferred, &["a"]),
            (Secondary, &["b", "c"]),
            (SecondaryPreferred, &["b", "c"]),
            (Nearest, &["a", "b", "c"]),
        ];
        for (mode, expected) in cases {
            assert_eq!(suitable(&t, &read(mode)), addrs(expected), "{mode:?}");
        }
        assert_eq!(suitable(&t, &SelectionCriteria::Writable), addrs(&["a"]));
    }

    #[test]
    fn replica_set_without_primary_each_mode() {
        let t = set_without_primary();
        use ReadPreferenceMode::*;
        let cases: [(ReadPreferenceMode, &[&str]); 5] = [
            (Primary, &[]),
            (PrimaryPreferred, &["b", "c"]),
            (Secondary, &["b", "c"]),
            (SecondaryPreferred, &["b", "c"]),
            (Nearest, &["b", "c"]),
        ];
        for (mode, expected) in cases {
            assert_eq!(suitable(&t, &read(mode)), addrs(expected), "{mode:?}");
        }
        assert_eq!(suitable(&t, &SelectionCriteria::Writable), []);
    }

    #[test]
    fn arbiters_ghosts_others_and_unknowns_are_never_read_from() {
        let mut t = set_with_primary();
        let now = Instant::now();
        let ghost = rawdoc! { "ok": 1, "isreplicaset": true, "maxWireVersion": 21 };
        check(&mut t, "e", &ghost, 1, now);
        let hidden = with(secondary_reply("rs", &HOSTS), "hidden", true);
        check(&mut t, "c", &hidden, 1, now);
        // d is an arbiter, e a ghost, c hidden: only a and b hold readable data.
        assert_eq!(suitable(&t, &read(ReadPreferenceMode::Nearest)), addrs(&["a", "b"]));
        assert_eq!(suitable(&t, &read(ReadPreferenceMode::Secondary)), addrs(&["b"]));
    }

    #[test]
    fn tag_sets_are_tried_in_order_and_the_first_match_wins() {
        let t = set_with_primary();
        use ReadPreferenceMode::*;
        let north_then_west: &[&[(&str, &str)]] = &[&[("dc", "north")], &[("dc", "west")], &[]];
        assert_eq!(suitable(&t, &tagged(Secondary, north_then_west)), addrs(&["c"]));
        assert_eq!(suitable(&t, &tagged(Nearest, &[&[("dc", "east")]])), addrs(&["a", "b"]));
        // Every tag of a set must match; the empty set matches anyone.
        assert_eq!(
            suitable(&t, &tagged(Secondary, &[&[("dc", "east"), ("rack", "1")]])),
            []
        );
        assert_eq!(suitable(&t, &tagged(Secondary, &[&[]])), addrs(&["b", "c"]));
        assert_eq!(suitable(&t, &tagged(Secondary, &[&[("dc", "north")]])), []);
        // The preferred modes fall back to the primary (or secondaries) without tags.
        assert_eq!(
            suitable(&t, &tagged(SecondaryPreferred, &[&[("dc", "north")]])),
            addrs(&["a"])
        );
        assert_eq!(
            suitable(&t, &tagged(PrimaryPreferred, &[&[("dc", "west")]])),
            addrs(&["a"])
        );
        let t = set_without_primary();
        assert_eq!(
            suitable(&t, &tagged(PrimaryPreferred, &[&[("dc", "west")]])),
            addrs(&["c"])
        );
        assert_eq!(suitable(&t, &tagged(SecondaryPreferred, &[&[("dc", "north")]])), []);
    }

    #[test]
    fn latency_window_is_measured_from_the_fastest_suitable_server() {
        let t = set_with_primary();
        let secondary = read(ReadPreferenceMode::Secondary);
        // b at 6 ms anchors the window; c at 30 ms is 24 ms slower.
        assert_eq!(chosen(&t, &secondary, DEFAULT_LOCAL_THRESHOLD), addrs(&["b"]));
        assert_eq!(chosen(&t, &secondary, MS * 24), addrs(&["b", "c"]));
        assert_eq!(chosen(&t, &secondary, MS * 23), addrs(&["b"]));
        // The arbiter's 1 ms does not count: it is not suitable.
        let nearest = read(ReadPreferenceMode::Nearest);
        assert_eq!(chosen(&t, &nearest, Duration::ZERO), addrs(&["a"]));
        assert_eq!(chosen(&t, &nearest, MS), addrs(&["a", "b"]));
    }

    /// Primary a and secondaries b, c, d checked at the given client times (seconds after a
    /// common start) with the given lastWriteDates (milliseconds, on the primary's clock).
    fn staleness_set(primary: Option<(u64, i64)>, secondaries: [(u64, i64); 3]) -> TopologyDescription {
        let start = Instant::now();
        let at = |seconds| start + Duration::from_secs(seconds);
        let last_write = |millis| rawdoc! { "lastWriteDate": DateTime::from_millis(millis) };
        let hosts = ["a", "b", "c", "d"];
        let mut t = replica_set(&hosts, "rs");
        for (name, (updated, written)) in ["b", "c", "d"].into_iter().zip(secondaries) {
            let reply = with(secondary_reply("rs", &hosts), "lastWrite", last_write(written));
            check(&mut t, name, &reply, 1, at(updated));
        }
        if let Some((updated, written)) = primary {
            let reply = with(primary_reply("rs", &hosts), "lastWrite", last_write(written));
            check(&mut t, "a", &reply, 1, at(updated));
        }
        t
    }

    #[test]
    fn staleness_with_a_primary_compares_each_lag_behind_the_client() {
        // The primary's clock runs 1000 s ahead of the client's: skew cancels out. With a
        // 10 s heartbeat, b is 50 + 10 = 60 s stale, c exactly 90, d 90.001.
        let t = staleness_set(
            Some((200, 1_200_000)),
            [(200, 1_150_000), (200, 1_120_000), (200, 1_119_999)],
        );
        let secondary = stale_within(ReadPreferenceMode::Secondary, 90);
        assert_eq!(suitable(&t, &secondary), addrs(&["b", "c"]));
        // The primary is never stale.
        let nearest = stale_within(ReadPreferenceMode::Nearest, 90);
        assert_eq!(suitable(&t, &nearest), addrs(&["a", "b", "c"]));

        // A secondary checked later has lagged the client's clock for longer: b checked at
        // 230 s with the same write is (230 - 1150) - (200 - 1200) + 10 = 90 s stale; at 231
        // s, 91.
        let t = staleness_set(Some((200, 1_200_000)), [(230, 1_150_000), (231, 1_150_000), (0, 0)]);
        assert_eq!(suitable(&t, &secondary), addrs(&["b"]));
    }

    #[test]
    fn staleness_without_a_primary_compares_with_the_most_recent_secondary() {
        // b has the latest write (10 s stale: the heartbeat), c is 80 + 10 = 90, d 91.
        let t = staleness_set(None, [(5, 200_000), (300, 120_000), (1, 119_000)]);
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetNoPrimary);
        let secondary = stale_within(ReadPreferenceMode::Secondary, 90);
        assert_eq!(suitable(&t, &secondary), addrs(&["b", "c"]));
        assert_eq!(
            suitable(&t, &stale_within(ReadPreferenceMode::Secondary, 91)),
            addrs(&["b", "c", "d"])
        );
    }

    #[test]
    fn staleness_that_cannot_be_estimated_is_not_eligible() {
        let mut t = staleness_set(
            Some((200, 1_200_000)),
            [(200, 1_190_000), (200, 1_190_000), (200, 1_190_000)],
        );
        // d stops reporting lastWrite.
        check(
            &mut t,
            "d",
            &secondary_reply("rs", &["a", "b", "c", "d"]),
            1,
            Instant::now(),
        );
        let secondary = stale_within(ReadPreferenceMode::Secondary, 90);
        assert_eq!(suitable(&t, &secondary), addrs(&["b", "c"]));
        // Without a staleness bound, d is fine.
        assert_eq!(
            suitable(&t, &read(ReadPreferenceMode::Secondary)),
            addrs(&["b", "c", "d"])
        );
        // secondaryPreferred falls back to the primary when no secondary is fresh enough.
        let t = staleness_set(Some((200, 1_200_000)), [(200, 0), (200, 0), (200, 0)]);
        assert_eq!(
            suitable(&t, &stale_within(ReadPreferenceMode::SecondaryPreferred, 90)),
            addrs(&["a"])
        );
    }

    #[test]
    fn max_staleness_is_validated_against_the_replica_set_minimums() {
        let rs = TopologyType::ReplicaSetWithPrimary;
        let heartbeat = DEFAULT_HEARTBEAT_FREQUENCY;
        let preference = |mode, seconds| ReadPreference {
            mode,
            tag_sets: Vec::new(),
            max_staleness: Some(Duration::from_secs(seconds)),
        };
        let secondary = ReadPreferenceMode::Secondary;
        assert!(validate_read_preference(&preference(secondary, 90), rs, heartbeat).is_ok());
        let error = validate_read_preference(&preference(secondary, 89), rs, heartbeat).unwrap_err();
        assert!(matches!(error, Error::Usage(_)));
        assert!(error.to_string().contains("at least 90 seconds"), "{error}");
        assert!(validate_read_preference(&preference(secondary, 0), rs, heartbeat).is_err());
        // A 100 s heartbeat raises the floor to 110 s.
        let slow = Duration::from_secs(100);
        assert!(validate_read_preference(&preference(secondary, 109), rs, slow).is_err());
        assert!(validate_read_preference(&preference(secondary, 110), rs, slow).is_ok());
        // Outside a replica set, mongos judges the bound.
        assert!(validate_read_preference(&preference(secondary, 1), TopologyType::Sharded, heartbeat).is_ok());
        // Mode primary takes neither a bound nor tags, anywhere.
        let primary = ReadPreferenceMode::Primary;
        assert!(validate_read_preference(&preference(primary, 120), TopologyType::Sharded, heartbeat).is_err());
        let mut tags = ReadPreference::primary();
        tags.tag_sets = vec![TagSet::from([("dc".to_owned(), "east".to_owned())])];
        assert!(validate_read_preference(&tags, TopologyType::Single, heartbeat).is_err());
        tags.tag_sets = vec![TagSet::new()];
        assert!(validate_read_preference(&tags, TopologyType::Single, heartbeat).is_ok());
        // select refuses too, rather than waiting.
        let t = set_with_primary();
        assert!(select(&t, &stale_within(secondary, 60), DEFAULT_LOCAL_THRESHOLD, &[]).is_err());
    }

    #[test]
    fn deprioritized_servers_are_a_last_resort() {
        let t = set_with_primary();
        let threshold = Duration::from_secs(3600);
        let pick = |criteria: &SelectionCriteria, deprioritized: &[&str]| -> Vec<ServerAddress> {
            select(&t, criteria, threshold, &addrs(deprioritized))
                .unwrap()
                .into_iter()
                .map(|server| server.address.clone())
                .collect()
        };
        use ReadPreferenceMode::*;
        assert_eq!(pick(&read(Nearest), &["b"]), addrs(&["a", "c"]));
        // Every secondary deprioritized: secondaryPreferred goes to the primary...
        assert_eq!(pick(&read(SecondaryPreferred), &["b", "c"]), addrs(&["a"]));
        // ...primaryPreferred with the primary deprioritized goes to a secondary...
        assert_eq!(pick(&read(PrimaryPreferred), &["a"]), addrs(&["b", "c"]));
        // ...and when nothing else is suitable, deprioritized servers are used after all.
        assert_eq!(pick(&read(Primary), &["a"]), addrs(&["a"]));
        assert_eq!(pick(&SelectionCriteria::Writable, &["a"]), addrs(&["a"]));

        let mut sharded = topology(&["m1", "m2"]);
        check(&mut sharded, "m1", &mongos_reply(), 5, Instant::now());
        check(&mut sharded, "m2", &mongos_reply(), 5, Instant::now());
        let chosen: Vec<_> = select(&sharded, &SelectionCriteria::Writable, threshold, &addrs(&["m1"]))
            .unwrap()
            .into_iter()
            .map(|s| s.address.clone())
            .collect();
        assert_eq!(chosen, addrs(&["m2"]));
    }

    #[test]
    fn incompatible_topology_fails_selection_at_once() {
        let mut t = topology(&["a"]);
        check(
            &mut t,
            "a",
            &with(standalone_reply(), "maxWireVersion", 6),
            1,
            Instant::now(),
        );
        let error = select(&t, &SelectionCriteria::Writable, DEFAULT_LOCAL_THRESHOLD, &[]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("reports wire version 6, but this version of mongowire requires at least 8"),
            "{error}"
        );
        assert!(!t.has_writable_server());
    }

    #[test]
    fn readable_and_writable_servers_for_sessions() {
        let t = set_without_primary();
        assert!(t.has_readable_server(&ReadPreference::with_mode(ReadPreferenceMode::Secondary)));
        assert!(!t.has_readable_server(&ReadPreference::primary()));
        assert!(!t.has_writable_server());
        let t = set_with_primary();
        assert!(t.has_readable_server(&ReadPreference::primary()));
        assert!(t.has_writable_server());
    }

    #[test]
    fn read_preference_sent_depends_on_server_and_topology() {
        use ReadPreferenceMode::*;
        let primary = ReadPreference::primary();
        let secondary = ReadPreference {
            mode: Secondary,
            tag_sets: vec![TagSet::from([("dc".to_owned(), "east".to_owned())])],
            max_staleness: Some(Duration::from_secs(120)),
        };
        let full = rawdoc! { "mode": "secondary", "tags": [{ "dc": "east" }], "maxStalenessSeconds": 120_i64 };
        let preferred = rawdoc! { "mode": "primaryPreferred" };
        let cases = [
            // A standalone never gets one.
            (ServerType::Standalone, TopologyType::Single, &secondary, None),
            // Direct to a replica set member: primary becomes primaryPreferred.
            (
                ServerType::RsSecondary,
                TopologyType::Single,
                &primary,
                Some(preferred.clone()),
            ),
            (ServerType::RsPrimary, TopologyType::Single, &primary, Some(preferred)),
            (
                ServerType::RsSecondary,
                TopologyType::Single,
                &secondary,
                Some(full.clone()),
            ),
            // Mongos and load balancers: primary is implied, anything else is passed on.
            (ServerType::Mongos, TopologyType::Single, &primary, None),
            (ServerType::Mongos, TopologyType::Sharded, &primary, None),
            (
                ServerType::Mongos,
                TopologyType::Sharded,
                &secondary,
                Some(full.clone()),
            ),
            (ServerType::LoadBalancer, TopologyType::LoadBalanced, &primary, None),
            (
                ServerType::LoadBalancer,
                TopologyType::LoadBalanced,
                &secondary,
                Some(full.clone()),
            ),
            // Replica sets: the members check it.
            (
                ServerType::RsPrimary,
                TopologyType::ReplicaSetWithPrimary,
                &primary,
                None,
            ),
            (
                ServerType::RsSecondary,
                TopologyType::ReplicaSetNoPrimary,
                &secondary,
                Some(full),
            ),
        ];
        for (server, topology, preference, expected) in cases {
            assert_eq!(
                read_preference_document_for(server, topology, preference),
                expected,
                "{server} in {topology}"
            );
        }
        let nearest = ReadPreference::with_mode(Nearest);
        assert_eq!(
            read_preference_document_for(ServerType::RsPrimary, TopologyType::ReplicaSetWithPrimary, &nearest),
            Some(rawdoc! { "mode": "nearest" })
        );
    }

    #[test]
    fn criteria_describe_what_was_wanted() {
        assert_eq!(SelectionCriteria::Writable.to_string(), "a writable server");
        let criteria = tagged(ReadPreferenceMode::Secondary, &[&[("dc", "east"), ("rack", "1")], &[]]);
        assert_eq!(
            criteria.to_string(),
            "a server for read preference secondary with tags [{dc: east, rack: 1}, {}]"
        );
        assert_eq!(
            stale_within(ReadPreferenceMode::Nearest, 120).to_string(),
            "a server for read preference nearest within 120 s of staleness"
        );
    }
}
