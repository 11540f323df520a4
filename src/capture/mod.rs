//! Reading recorded MongoDB traffic and showing it to people.
//!
//! [`message_json`] turns a decoded message into the JSON object that `mongowire decode`
//! prints, one per line; [`RawStreamReader`] reads a file of back-to-back wire messages (what a
//! `tcpflow`-style dump of one direction of a connection holds) and reports undecodable
//! messages with their offsets without stopping at the first one.

mod fixture;
mod json;
mod raw_stream;

pub use fixture::{
    Direction, FORMAT_VERSION, Fixture, FixtureEntry, FixtureError, FixtureEvent, FixtureHeader, write_entry,
    write_header,
};
pub use json::message_json;
pub use raw_stream::{RawStreamReader, StreamItem};
