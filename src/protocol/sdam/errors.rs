//! How an operation's failure is described to the topology, and which failures say a server's
//! state changed (the Server Discovery and Monitoring "not writable primary" and "node is
//! recovering" errors).

use std::fmt;

use bson::oid::ObjectId;
use bson::{RawBsonRef, RawDocument};

use super::description::{TopologyVersion, field, int_field, str_field};
use crate::error::Error;

/// "Node is recovering" codes: InterruptedAtShutdown, InterruptedDueToReplStateChange,
/// NotPrimaryOrSecondary, PrimarySteppedDown, ShutdownInProgress.
const RECOVERING_CODES: [i32; 5] = [11600, 11602, 13436, 189, 91];
/// "Not writable primary" codes: NotWritablePrimary, NotPrimaryNoSecondaryOk,
/// LegacyNotPrimary.
const NOT_WRITABLE_PRIMARY_CODES: [i32; 3] = [10107, 13435, 10058];
/// The node is shutting down: InterruptedAtShutdown, ShutdownInProgress. Only these clear the
/// pool, because every connection to the node is about to be closed anyway.
const SHUTDOWN_CODES: [i32; 2] = [11600, 91];

/// The error label a pool puts on connection failures it attributes to an overloaded server.
pub const SYSTEM_OVERLOADED_LABEL: &str = "SystemOverloadedError";

/// What went wrong, in the terms the topology needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplicationErrorKind {
    /// The connection failed: I/O error, closed, or timed out (`timeout`).
    Network {
        /// A network timeout rather than another network error.
        timeout: bool,
        /// What happened.
        message: String,
    },
    /// The server answered `ok: 0`, or `ok: 1` with a `writeConcernError` (whose code and
    /// message are then the ones given here). Errors inside `writeErrors` never count.
    Command {
        /// The error code, when the reply has one.
        code: Option<i32>,
        /// `errmsg`.
        message: String,
        /// The reply's `topologyVersion`, which tells a stale error from a fresh one.
        topology_version: Option<TopologyVersion>,
    },
    /// Any other failure, such as a reply that breaks the protocol or a client-side
    /// authentication failure; it only matters before the handshake completed.
    Other {
        /// What happened.
        message: String,
    },
}

impl ApplicationErrorKind {
    /// The error in a command reply, if it reports one the topology should look at: `ok: 0`,
    /// or a `writeConcernError`. `None` for a successful reply (including one with only
    /// `writeErrors`, which say nothing about the server's state) or one without `ok`.
    pub fn from_reply(reply: &RawDocument) -> Option<ApplicationErrorKind> {
        let ok = match field(reply, "ok").ok()?? {
            RawBsonRef::Double(value) => value != 0.0,
            RawBsonRef::Int32(value) => value != 0,
            RawBsonRef::Int64(value) => value != 0,
            RawBsonRef::Boolean(value) => value,
            _ => return None,
        };
        let topology_version = match field(reply, "topologyVersion") {
            Ok(Some(RawBsonRef::Document(doc))) => TopologyVersion::from_document(doc).ok(),
            _ => None,
        };
        let error = if ok {
            match field(reply, "writeConcernError") {
                Ok(Some(RawBsonRef::Document(error))) => error,
                _ => return None,
            }
        } else {
            reply
        };
        Some(ApplicationErrorKind::Command {
            code: int_field(error, "code")
                .ok()
                .flatten()
                .and_then(|code| i32::try_from(code).ok()),
            message: str_field(error, "errmsg").ok().flatten().unwrap_or_default().to_owned(),
            topology_version,
        })
    }

    /// The kind of a mongowire error, if it is one the topology should hear about: network
    /// errors, server errors (read from the reply, so write errors are left out), and
    /// authentication and protocol failures. Selection and usage errors are not about a
    /// server's state.
    pub fn from_error(error: &Error) -> Option<ApplicationErrorKind> {
        match error {
            Error::Transport(transport) => Some(ApplicationErrorKind::Network {
                timeout: transport.is_timeout(),
                message: transport.to_string(),
            }),
            Error::Server(server) => ApplicationErrorKind::from_reply(&server.reply),
            Error::Authentication(auth) => {
                let from_server = auth
                    .server_error
                    .as_ref()
                    .and_then(|server| ApplicationErrorKind::from_reply(&server.reply));
                Some(from_server.unwrap_or_else(|| ApplicationErrorKind::Other {
                    message: auth.to_string(),
                }))
            }
            Error::Protocol(protocol) => Some(ApplicationErrorKind::Other {
                message: protocol.to_string(),
            }),
            _ => None,
        }
    }

    /// A "node is recovering" error: by code when the reply has one (codes are stable across
    /// server versions, code names and messages are not), else by message.
    pub fn is_recovering(&self) -> bool {
        match self {
            ApplicationErrorKind::Command { code: Some(code), .. } => RECOVERING_CODES.contains(code),
            ApplicationErrorKind::Command {
                code: None, message, ..
            } => recovering_message(message),
            _ => false,
        }
    }

    /// A "not writable primary" error: by code when the reply has one, else by message (a
    /// "not master" message that is not a recovering one).
    pub fn is_not_writable_primary(&self) -> bool {
        match self {
            ApplicationErrorKind::Command { code: Some(code), .. } => NOT_WRITABLE_PRIMARY_CODES.contains(code),
            ApplicationErrorKind::Command {
                code: None, message, ..
            } => !recovering_message(message) && message.contains("not master"),
            _ => false,
        }
    }

    /// A state-change error: the server is not what the client thinks it is.
    pub fn is_state_change(&self) -> bool {
        self.is_recovering() || self.is_not_writable_primary()
    }

    /// A "node is shutting down" error (by code only).
    pub fn is_shutdown(&self) -> bool {
        matches!(
            self,
            ApplicationErrorKind::Command { code: Some(code), .. } if SHUTDOWN_CODES.contains(code)
        )
    }
}

fn recovering_message(message: &str) -> bool {
    message.contains("not master or secondary") || message.contains("node is recovering")
}

impl fmt::Display for ApplicationErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplicationErrorKind::Network { message, .. } | ApplicationErrorKind::Other { message } => {
                f.write_str(message)
            }
            ApplicationErrorKind::Command {
                code: Some(code),
                message,
                ..
            } => write!(f, "{message} (code {code})"),
            ApplicationErrorKind::Command {
                code: None, message, ..
            } => f.write_str(message),
        }
    }
}

/// An operation's failure on a connection, for
/// [`TopologyDescription::handle_application_error`](super::TopologyDescription::handle_application_error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationError {
    /// What went wrong.
    pub kind: ApplicationErrorKind,
    /// The pool generation the connection was created in; for a failure while connecting,
    /// the pool's generation when the attempt began. Errors from older generations are stale.
    pub connection_generation: u32,
    /// Whether the connection had completed its handshake (hello and authentication).
    pub completed_handshake: bool,
    /// Behind a load balancer, the connection's `serviceId` from its handshake.
    pub service_id: Option<ObjectId>,
    /// The error carries the `SystemOverloadedError` label ([`SYSTEM_OVERLOADED_LABEL`]): the
    /// server is shedding load, so it is neither marked `Unknown` nor its pool cleared.
    pub overloaded: bool,
}

impl ApplicationError {
    /// An error on a connection that completed its handshake, of generation
    /// `connection_generation`, not behind a load balancer, without the overload label.
    pub fn after_handshake(kind: ApplicationErrorKind, connection_generation: u32) -> Self {
        ApplicationError {
            kind,
            connection_generation,
            completed_handshake: true,
            service_id: None,
            overloaded: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;
    use crate::error::{AuthError, ProtocolErrorKind, ServerError, TransportError, TransportErrorKind};
    use crate::protocol::sdam::test_support::{addr, described, oid, primary_reply, replica_set, with};
    use crate::protocol::sdam::{PoolClear, ServerType, TopologyChange, TopologyDescription, TopologyType};

    fn version(counter: i64) -> TopologyVersion {
        TopologyVersion {
            process_id: oid(1),
            counter,
        }
    }

    /// A replica set whose primary "a" reported topologyVersion (process 1, counter 1).
    fn with_primary() -> TopologyDescription {
        let mut t = replica_set(&["a"], "rs");
        let reply = with(
            primary_reply("rs", &["a"]),
            "topologyVersion",
            rawdoc! { "processId": oid(1), "counter": 1_i64 },
        );
        t.apply(described("a", &reply));
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetWithPrimary);
        t
    }

    fn command(code: Option<i32>, message: &str, topology_version: Option<TopologyVersion>) -> ApplicationErrorKind {
        ApplicationErrorKind::Command {
            code,
            message: message.to_owned(),
            topology_version,
        }
    }

    fn network(timeout: bool) -> ApplicationErrorKind {
        ApplicationErrorKind::Network {
            timeout,
            message: "connection reset".to_owned(),
        }
    }

    fn a_type(t: &TopologyDescription) -> ServerType {
        t.server(&addr("a")).unwrap().server_type
    }

    #[test]
    fn state_change_codes_and_legacy_messages() {
        for code in [11600, 11602, 13436, 189, 91] {
            let kind = command(Some(code), "", None);
            assert!(kind.is_recovering() && kind.is_state_change(), "{code}");
        }
        for code in [10107, 13435, 10058] {
            let kind = command(Some(code), "", None);
            assert!(kind.is_not_writable_primary() && !kind.is_recovering(), "{code}");
        }
        assert!(command(Some(91), "", None).is_shutdown());
        assert!(command(Some(11600), "", None).is_shutdown());
        assert!(!command(Some(189), "", None).is_shutdown());
        // Without a code, the message decides; "not master or secondary" is recovering.
        assert!(command(None, "not master", None).is_not_writable_primary());
        assert!(command(None, "node is recovering", None).is_recovering());
        let both = command(None, "not master or secondary; cannot read", None);
        assert!(both.is_recovering() && !both.is_not_writable_primary());
        // A code, when present, is all that counts.
        assert!(!command(Some(1), "not master", None).is_state_change());
        assert!(!command(Some(1), "node is recovering", None).is_state_change());
        assert!(!network(false).is_state_change());
    }

    #[test]
    fn from_reply_reads_ok_zero_and_write_concern_errors_but_not_write_errors() {
        let reply = rawdoc! {
            "ok": 0.0, "errmsg": "not primary", "code": 10107,
            "topologyVersion": { "processId": oid(1), "counter": 3_i64 },
        };
        assert_eq!(
            ApplicationErrorKind::from_reply(&reply),
            Some(command(Some(10107), "not primary", Some(version(3))))
        );
        let wce = rawdoc! {
            "ok": 1, "n": 1,
            "writeConcernError": { "code": 91, "errmsg": "shutting down" },
        };
        let kind = ApplicationErrorKind::from_reply(&wce).unwrap();
        assert!(kind.is_shutdown());
        let write_errors = rawdoc! {
            "ok": 1, "writeErrors": [{ "index": 0, "code": 13435, "errmsg": "NotPrimaryNoSecondaryOk" }],
        };
        assert_eq!(ApplicationErrorKind::from_reply(&write_errors), None);
        assert_eq!(ApplicationErrorKind::from_reply(&rawdoc! { "ok": 1 }), None);
        assert_eq!(ApplicationErrorKind::from_reply(&rawdoc! { "n": 1 }), None);
        assert_eq!(
            ApplicationErrorKind::from_reply(&rawdoc! { "ok": 0, "errmsg": "not master" }),
            Some(command(None, "not master", None))
        );
    }

    #[test]
    fn from_error_maps_each_kind_of_failure() {
        let timeout = TransportError::new(TransportErrorKind::Timeout, Some(addr("a")), "read timed out");
        assert_eq!(
            ApplicationErrorKind::from_error(&Error::from(timeout)),
            Some(ApplicationErrorKind::Network {
                timeout: true,
                message: "a:27017: read timed out".into()
            })
        );
        let server = ServerError {
            code: 13435,
            code_name: String::new(),
            message: "write error".into(),
            labels: vec![],
            address: None,
            reply: rawdoc! { "ok": 1, "writeErrors": [{ "code": 13435 }] },
        };
        // The code of a write error must not be taken for the server's state.
        assert_eq!(ApplicationErrorKind::from_error(&Error::from(server)), None);
        let auth = AuthError {
            user: "u".into(),
            mechanism: "SCRAM-SHA-256".into(),
            source_db: "admin".into(),
            reason: "server signature mismatch".into(),
            server_error: None,
        };
        assert!(matches!(
            ApplicationErrorKind::from_error(&Error::from(auth)),
            Some(ApplicationErrorKind::Other { .. })
        ));
        let protocol = Error::protocol("hello reply", ProtocolErrorKind::MissingField("ok"));
        assert!(matches!(
            ApplicationErrorKind::from_error(&protocol),
            Some(ApplicationErrorKind::Other { .. })
        ));
        assert_eq!(ApplicationErrorKind::from_error(&Error::usage("bad option")), None);
    }

    #[test]
    fn network_error_after_handshake_marks_unknown_and_clears_the_pool() {
        let mut t = with_primary();
        let change = t.handle_application_error(&addr("a"), ApplicationError::after_handshake(network(false), 0));
        assert_eq!(a_type(&t), ServerType::Unknown);
        assert_eq!(t.server(&addr("a")).unwrap().error.as_deref(), Some("connection reset"));
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetNoPrimary);
        assert_eq!(
            change.clear_pool,
            Some(PoolClear {
                address: addr("a"),
                service_id: None,
                generation: 1,
                interrupt_in_use_connections: false
            })
        );
        assert_eq!(change.cancel_check, Some(addr("a")));
        // An immediate check would likely fail the same way: none is requested.
        assert_eq!(change.request_immediate_check, []);
    }

    #[test]
    fn network_timeout_after_handshake_changes_nothing() {
        let mut t = with_primary();
        let change = t.handle_application_error(&addr("a"), ApplicationError::after_handshake(network(true), 0));
        assert_eq!(change, TopologyChange::default());
        assert_eq!(a_type(&t), ServerType::RsPrimary);
    }

    #[test]
    fn failures_before_the_handshake_completes_mark_unknown_unless_overloaded() {
        for kind in [
            network(true),
            network(false),
            command(Some(18), "Authentication failed.", None),
            ApplicationErrorKind::Other {
                message: "bad reply".into(),
            },
        ] {
            let mut overloaded = ApplicationError {
                kind: kind.clone(),
                connection_generation: 0,
                completed_handshake: false,
                service_id: None,
                overloaded: true,
            };
            let mut t = with_primary();
            assert_eq!(
                t.handle_application_error(&addr("a"), overloaded.clone()),
                TopologyChange::default()
            );
            assert_eq!(a_type(&t), ServerType::RsPrimary);
            overloaded.overloaded = false;
            let change = t.handle_application_error(&addr("a"), overloaded);
            assert_eq!(a_type(&t), ServerType::Unknown, "{kind:?}");
            assert_eq!(change.clear_pool.map(|c| c.generation), Some(1));
        }
    }

    #[test]
    fn errors_from_an_older_pool_generation_are_ignored() {
        let mut t = with_primary();
        t.handle_application_error(&addr("a"), ApplicationError::after_handshake(network(false), 0));
        assert_eq!(t.pool_generation(&addr("a"), None), 1);
        t.apply(described("a", &primary_reply("rs", &["a"])));
        assert_eq!(a_type(&t), ServerType::RsPrimary);
        // A second connection of generation 0 fails late: the pool was already cleared.
        for kind in [network(false), command(Some(91), "shutting down", None)] {
            let change = t.handle_application_error(&addr("a"), ApplicationError::after_handshake(kind, 0));
            assert_eq!(change, TopologyChange::default());
            assert_eq!(a_type(&t), ServerType::RsPrimary);
        }
        let change = t.handle_application_error(&addr("a"), ApplicationError::after_handshake(network(false), 1));
        assert_eq!(change.clear_pool.map(|c| c.generation), Some(2));
    }

    #[test]
    fn not_writable_primary_marks_unknown_and_rechecks_without_clearing() {
        let mut t = with_primary();
        let kind = command(Some(10107), "not primary", Some(version(2)));
        let change = t.handle_application_error(&addr("a"), ApplicationError::after_handshake(kind, 0));
        let a = t.server(&addr("a")).unwrap();
        assert_eq!(a.server_type, ServerType::Unknown);
        assert_eq!(a.error.as_deref(), Some("not primary (code 10107)"));
        // The error's version is kept, so an equally old error arriving later is ignored.
        assert_eq!(a.topology_version, Some(version(2)));
        assert_eq!(change.request_immediate_check, [addr("a")]);
        assert_eq!(change.clear_pool, None);
        assert_eq!(t.topology_type(), TopologyType::ReplicaSetNoPrimary);
    }

    #[test]
    fn shutdown_errors_also_clear_the_pool() {
        for code in [91, 11600] {
            let mut t = with_primary();
            let kind = command(Some(code), "shutting down", None);
            let change = t.handle_application_error(&addr("a"), ApplicationError::after_handshake(kind, 0));
            assert_eq!(a_type(&t), ServerType::Unknown);
            assert_eq!(change.clear_pool.map(|c| c.generation), Some(1));
            assert_eq!(change.request_immediate_check, [addr("a")]);
        }
    }

    #[test]
    fn state_change_errors_not_newer_than_the_server_are_stale() {
        for counter in [0, 1] {
            let mut t = with_primary();
            let kind = command(Some(10107), "not primary", Some(version(counter)));
            let change = t.handle_application_error(&addr("a"), ApplicationError::after_handshake(kind, 0));
            assert_eq!(change, TopologyChange::default(), "counter {counter}");
            assert_eq!(a_type(&t), ServerType::RsPrimary);
        }
        // A newer counter, another process, or no version at all: believed.
        let restarted = TopologyVersion {
            process_id: oid(2),
            counter: 0,
        };
        for tv in [Some(version(2)), Some(restarted), None] {
            let mut t = with_primary();
            let kind = command(Some(11602), "interrupted", tv);
            t.handle_application_error(&addr("a"), ApplicationError::after_handshake(kind, 0));
            assert_eq!(a_type(&t), ServerType::Unknown, "{tv:?}");
        }
    }

    #[test]
    fn other_command_errors_and_unknown_servers_change_nothing() {
        let mut t = with_primary();
        let kind = command(Some(11000), "duplicate key", None);
        assert_eq!(
            t.handle_application_error(&addr("a"), ApplicationError::after_handshake(kind, 0)),
            TopologyChange::default()
        );
        // Routing errors from a mongos are about a shard, not the mongos.
        let kind = command(Some(6), "HostUnreachable", None);
        assert_eq!(
            t.handle_application_error(&addr("a"), ApplicationError::after_handshake(kind, 0)),
            TopologyChange::default()
        );
        assert_eq!(
            t.handle_application_error(&addr("zz"), ApplicationError::after_handshake(network(false), 0)),
            TopologyChange::default()
        );
    }

    #[test]
    fn behind_a_load_balancer_only_the_services_pool_is_cleared() {
        let mut t = TopologyDescription::new(vec![addr("lb")], None, false, true).unwrap();
        let service = Some(oid(9));
        let error = |kind, connection_generation| ApplicationError {
            kind,
            connection_generation,
            completed_handshake: true,
            service_id: service,
            overloaded: false,
        };
        let change = t.handle_application_error(&addr("lb"), error(command(Some(91), "shutting down", None), 0));
        assert_eq!(
            change.clear_pool,
            Some(PoolClear {
                address: addr("lb"),
                service_id: service,
                generation: 1,
                interrupt_in_use_connections: false
            })
        );
        assert_eq!(change.request_immediate_check, []);
        assert_eq!(t.server(&addr("lb")).unwrap().server_type, ServerType::LoadBalancer);
        assert_eq!(t.pool_generation(&addr("lb"), service), 1);
        assert_eq!(t.pool_generation(&addr("lb"), None), 0);
        let change = t.handle_application_error(&addr("lb"), error(network(false), 1));
        assert_eq!(change.clear_pool.map(|c| c.generation), Some(2));
        assert_eq!(change.cancel_check, None);
        // A connection of generation 1 failing late is stale now that the service is at 2.
        assert_eq!(
            t.handle_application_error(&addr("lb"), error(network(false), 1)),
            TopologyChange::default()
        );
        assert_eq!(t.server(&addr("lb")).unwrap().server_type, ServerType::LoadBalancer);
    }
}
