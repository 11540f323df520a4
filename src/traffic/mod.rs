//! Traffic over real sockets (tokio): the recording proxy behind `mongowire record`, the replay
//! server behind `mongowire replay`, and the fault-injecting proxy the reliability tests put
//! between a client and a real server. The fixture format itself is [`crate::capture`]'s, with
//! no I/O.

mod faults;
mod record;
mod replay;

pub use faults::{Fault, FaultCounts, FaultPlan, FaultProxy};
pub use record::{RecordSummary, bind, record};
pub use replay::{Mismatch, ReplayReport, replay};
