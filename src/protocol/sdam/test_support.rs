//! Builders shared by the SDAM unit tests: addresses, hello replies, and topologies driven by
//! them.

use std::time::{Duration, Instant};

use bson::{RawArrayBuf, RawDocumentBuf, rawdoc};

use super::{ServerDescription, TopologyDescription};
use crate::protocol::ServerAddress;

/// `"a"` is `a:27017`; `"a:27018"` keeps its port.
pub(super) fn addr(text: &str) -> ServerAddress {
    ServerAddress::parse(text).expect("test address")
}

/// An ObjectId whose last byte is `last` and every other byte zero: ordered like `last`.
pub(super) fn oid(last: u8) -> bson::oid::ObjectId {
    let mut bytes = [0; 12];
    bytes[11] = last;
    bson::oid::ObjectId::from_bytes(bytes)
}

pub(super) fn addrs(texts: &[&str]) -> Vec<ServerAddress> {
    texts.iter().map(|text| addr(text)).collect()
}

pub(super) fn host_array(hosts: &[&str]) -> RawArrayBuf {
    hosts
        .iter()
        .map(|host| {
            if host.contains(':') {
                (*host).to_owned()
            } else {
                format!("{host}:27017")
            }
        })
        .collect()
}

/// A modern replica set primary of set `set` listing `hosts`.
pub(super) fn primary_reply(set: &str, hosts: &[&str]) -> RawDocumentBuf {
    rawdoc! {
        "ok": 1, "helloOk": true, "isWritablePrimary": true, "setName": set,
        "hosts": host_array(hosts), "minWireVersion": 0, "maxWireVersion": 21,
    }
}

/// A modern replica set secondary of set `set` listing `hosts`.
pub(super) fn secondary_reply(set: &str, hosts: &[&str]) -> RawDocumentBuf {
    rawdoc! {
        "ok": 1, "helloOk": true, "isWritablePrimary": false, "secondary": true, "setName": set,
        "hosts": host_array(hosts), "minWireVersion": 0, "maxWireVersion": 21,
    }
}

pub(super) fn standalone_reply() -> RawDocumentBuf {
    rawdoc! { "ok": 1, "helloOk": true, "isWritablePrimary": true, "minWireVersion": 0, "maxWireVersion": 21 }
}

pub(super) fn mongos_reply() -> RawDocumentBuf {
    rawdoc! {
        "ok": 1, "helloOk": true, "isWritablePrimary": true, "msg": "isdbgrid",
        "minWireVersion": 0, "maxWireVersion": 21,
    }
}

/// `reply` with `key` set to `value`, replacing any value it had.
pub(super) fn with(reply: RawDocumentBuf, key: &str, value: impl Into<bson::RawBson>) -> RawDocumentBuf {
    let mut out = RawDocumentBuf::new();
    for element in &reply {
        let (name, existing) = element.expect("test document");
        if name.as_str() != key {
            out.append(name, bson::RawBson::from(existing));
        }
    }
    out.append(bson::raw::CString::try_from(key).expect("test key"), value.into());
    out
}

/// The description `reply` gives for `address`, with a 10 ms round trip.
pub(super) fn described(address: &str, reply: &RawDocumentBuf) -> ServerDescription {
    ServerDescription::from_hello(addr(address), reply, Some(Duration::from_millis(10)), Instant::now())
}

/// A topology seeded with `seeds` (no options).
pub(super) fn topology(seeds: &[&str]) -> TopologyDescription {
    TopologyDescription::new(addrs(seeds), None, false, false).expect("valid seeds")
}

/// A topology seeded with `seeds` for replica set `set`.
pub(super) fn replica_set(seeds: &[&str], set: &str) -> TopologyDescription {
    TopologyDescription::new(addrs(seeds), Some(set.to_owned()), false, false).expect("valid seeds")
}
