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
//!
//! [`apply`]: TopologyDescription::apply
//! [`handle_check_network_error`]: TopologyDescription::handle_check_network_error
//! [`handle_application_error`]: TopologyDescription::handle_application_error

mod description;
mod errors;
mod topology;

#[cfg(test)]
mod test_support;

pub use description::{
    DEFAULT_MAX_BSON_OBJECT_SIZE, DEFAULT_MAX_MESSAGE_SIZE_BYTES, DEFAULT_MAX_WRITE_BATCH_SIZE,
    ServerDescription, ServerType, TopologyVersion, update_rtt,
};
pub use errors::{ApplicationError, ApplicationErrorKind, SYSTEM_OVERLOADED_LABEL};
pub use topology::{
    DEFAULT_HEARTBEAT_FREQUENCY, MAX_WIRE_VERSION, MIN_HEARTBEAT_FREQUENCY, MIN_WIRE_VERSION,
    PoolClear, TopologyChange, TopologyDescription, TopologyType,
};
