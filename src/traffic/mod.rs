//! Recorded traffic over real sockets (tokio): the recording proxy behind `mongowire record`
//! and the replay server behind `mongowire replay`. The fixture format itself is
//! [`crate::capture`]'s, with no I/O.

mod record;
mod replay;

pub use record::{RecordSummary, bind, record};
pub use replay::{Mismatch, ReplayReport, replay};
