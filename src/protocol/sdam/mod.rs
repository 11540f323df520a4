//! Server discovery and monitoring (SDAM) and server selection, with no I/O.
//!
//! The async driver runs a monitor per server; this module decides what the monitors' results
//! mean, as the Server Discovery and Monitoring, Server Selection and Max Staleness
//! specifications say, in the style of `quinn-proto`: values in, decisions out, and no
//! sockets, tasks or clock reads (time is passed in as a [`std::time::Instant`]).
//!
//! - [`ServerDescription::from_hello`] reads a hello reply into a description of one server.
//! - [`TopologyDescription`] holds every server's description. [`apply`] runs the update
//!   table for a check's outcome; [`handle_check_network_error`] and
//!   [`handle_application_error`] take failures of monitors and of operations. Each returns a
//!   [`TopologyChange`]: monitors to start and stop, a pool to clear or mark ready, checks to
//!   request or cancel.
//! - [`select`] answers which servers may take an operation, and
//!   [`read_preference_document_for`] what `$readPreference` goes with it.
//!
//! A driver holds the topology behind one lock, applies each change while holding it, and
//! wakes operations waiting in server selection after every update:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bson::rawdoc;
//! use mongowire::protocol::ServerAddress;
//! use mongowire::protocol::sdam::{
//!     DEFAULT_LOCAL_THRESHOLD, SelectionCriteria, ServerDescription, TopologyDescription,
//!     TopologyType, select,
//! };
//!
//! let seed = ServerAddress::new("db1.example", 27017);
//! let mut topology =
//!     TopologyDescription::new(vec![seed.clone()], Some("rs".into()), false, false)?;
//!
//! // The seed's monitor got a reply: it is the primary, and names a second member.
//! let reply = rawdoc! {
//!     "ok": 1, "isWritablePrimary": true, "setName": "rs",
//!     "hosts": ["db1.example:27017", "db2.example:27017"],
//!     "minWireVersion": 0, "maxWireVersion": 21,
//! };
//! let now = Instant::now();
//! let description =
//!     ServerDescription::from_hello(seed.clone(), &reply, Some(Duration::from_millis(3)), now);
//! let change = topology.apply(description);
//! assert_eq!(change.added, [ServerAddress::new("db2.example", 27017)]); // start its monitor
//! assert_eq!(topology.topology_type(), TopologyType::ReplicaSetWithPrimary);
//!
//! let servers = select(&topology, &SelectionCriteria::Writable, DEFAULT_LOCAL_THRESHOLD, &[])?;
//! assert_eq!(servers.len(), 1);
//! assert_eq!(servers[0].address, seed);
//! # Ok::<(), mongowire::Error>(())
//! ```
//!
//! [`apply`]: TopologyDescription::apply
//! [`handle_check_network_error`]: TopologyDescription::handle_check_network_error
//! [`handle_application_error`]: TopologyDescription::handle_application_error

mod description;
mod errors;
mod selection;
mod topology;

#[cfg(test)]
mod test_support;

pub use description::{
    DEFAULT_MAX_BSON_OBJECT_SIZE, DEFAULT_MAX_MESSAGE_SIZE_BYTES, DEFAULT_MAX_WRITE_BATCH_SIZE, ServerDescription,
    ServerType, TopologyVersion, update_rtt,
};
pub use errors::{ApplicationError, ApplicationErrorKind, SYSTEM_OVERLOADED_LABEL};
pub use selection::{
    DEFAULT_LOCAL_THRESHOLD, IDLE_WRITE_PERIOD, SMALLEST_MAX_STALENESS, SelectionCriteria,
    read_preference_document_for, select, validate_read_preference,
};
pub use topology::{
    DEFAULT_HEARTBEAT_FREQUENCY, MAX_WIRE_VERSION, MIN_HEARTBEAT_FREQUENCY, MIN_WIRE_VERSION, PoolClear,
    TopologyChange, TopologyDescription, TopologyType,
};
