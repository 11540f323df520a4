//! Runs the fuzz targets' bodies over their committed corpora as ordinary tests, so every CI
//! run checks the invariants on every seed and past finding without a fuzzer installed.
#![allow(clippy::indexing_slicing, unreachable_pub, missing_docs)]

#[path = "../fuzz/src/lib.rs"]
mod bodies;

use std::path::Path;

fn run_corpus(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        body(&data);
        // Every prefix too: truncation is the commonest corruption on a socket.
        for len in (0..data.len()).step_by(7) {
            body(&data[..len]);
        }
        count += 1;
    }
    assert!(count > 0, "{} is empty", dir.display());
}

#[test]
fn decode_corpus() {
    run_corpus("decode", bodies::decode);
}

#[test]
fn round_trip_corpus() {
    run_corpus("round_trip", bodies::round_trip);
}

#[test]
fn decompress_corpus() {
    run_corpus("decompress", bodies::decompress_bounded);
}

#[test]
fn change_stream_corpus() {
    run_corpus("change_stream", bodies::change_stream);
}

#[test]
fn pcap_corpus() {
    run_corpus("pcap", bodies::capture);
}
