//! The bodies of the fuzz targets. They use only the public API of `mongowire`, so the main
//! crate's `tests/fuzz_corpus.rs` includes this file and runs every corpus entry through the
//! same checks as an ordinary test, with no fuzzer installed.

use bytes::{Bytes, BytesMut};
use mongowire::capture::{CaptureItem, CaptureOptions, CaptureReader, captured_json};
use mongowire::wire::{Body, Compressor, DEFAULT_MAX_MESSAGE_SIZE, Message, MessageDecoder, decompress};

/// Reads every element of every document in a message, recursively, so malformed BSON inside a
/// well-framed message is exercised too.
fn touch_documents(message: &Message) {
    fn walk(document: &bson::RawDocument) {
        for element in document {
            let Ok((_, value)) = element else { return };
            match value {
                bson::RawBsonRef::Document(inner) => walk(inner),
                bson::RawBsonRef::Array(array) => {
                    for item in array {
                        if let Ok(bson::RawBsonRef::Document(inner)) = item {
                            walk(inner);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    match message.body() {
        Body::Msg(msg) => {
            walk(msg.body());
            let _ = msg.command_name();
            msg.sequences().iter().flat_map(|s| s.documents()).for_each(walk);
        }
        Body::Reply(reply) => reply.documents().for_each(walk),
        Body::Query(query) => {
            walk(query.query());
            query.return_fields_selector().into_iter().for_each(walk);
        }
        Body::Command(command) => {
            walk(command.command_args());
            walk(command.metadata());
            command.input_docs().for_each(walk);
        }
        Body::CommandReply(reply) => {
            walk(reply.command_reply());
            walk(reply.metadata());
            reply.output_docs().for_each(walk);
        }
        Body::Insert(insert) => insert.documents().for_each(walk),
        Body::Update(update) => {
            walk(update.selector());
            walk(update.update());
        }
        Body::Delete(delete) => walk(delete.selector()),
        Body::GetMore(_) | Body::KillCursors(_) => {}
        _ => {}
    }
}

/// Feeds `data` as a byte stream to the streaming decoder, in two uneven chunks, and reads
/// every decoded message. Must never panic or hang.
pub fn decode(data: &[u8]) {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut decoder = MessageDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    for chunk in [&data[..split], &data[split..]] {
        buf.extend_from_slice(chunk);
        loop {
            let before = decoder.position();
            match decoder.decode(&mut buf) {
                Ok(Some(message)) => touch_documents(&message),
                Ok(None) => break,
                Err(_) if decoder.position() == before => return,
                Err(_) => {}
            }
        }
    }
}

/// Whatever decodes must encode back to the same bytes: the input itself for an uncompressed
/// message, the decompressed message for OP_COMPRESSED (and recompressing it must decode to the
/// same body).
pub fn round_trip(data: &[u8]) {
    let Ok(message) = Message::decode(Bytes::copy_from_slice(data), DEFAULT_MAX_MESSAGE_SIZE) else {
        return;
    };
    touch_documents(&message);
    let mut encoded = BytesMut::new();
    message.encode(&mut encoded).expect("a decoded message encodes");
    match message.compression() {
        None => assert_eq!(&encoded[..], data, "re-encoding changed the bytes"),
        Some(compression) => {
            assert_eq!(
                &encoded[..],
                &message.raw()[..],
                "re-encoding changed the decompressed bytes"
            );
            let mut recompressed = BytesMut::new();
            message
                .encode_compressed(compression.compressor, None, &mut recompressed)
                .expect("recompresses");
            let again = Message::decode(recompressed.freeze(), DEFAULT_MAX_MESSAGE_SIZE).expect("decodes again");
            assert_eq!(again.body(), message.body());
        }
    }
}

/// Input: compressor id (byte 0, mod 4), declared size (bytes 1-4, little endian, masked to
/// 24 bits), payload (the rest). Decompression must either fail or produce exactly the declared
/// size; what it produces must survive a compress/decompress cycle.
pub fn decompress_bounded(data: &[u8]) {
    let Some((&id, rest)) = data.split_first() else {
        return;
    };
    let Some((size, payload)) = rest.split_first_chunk::<4>() else {
        return;
    };
    let Some(compressor) = Compressor::from_id(id % 4) else {
        return;
    };
    let declared = usize::try_from(u32::from_le_bytes(*size) & 0x00ff_ffff).unwrap_or(0);
    let mut out = Vec::new();
    if decompress(compressor, payload, declared, &mut out).is_ok() {
        assert_eq!(out.len(), declared);
        let mut again = Vec::new();
        mongowire::wire::compress(compressor, &out, None, &mut again).expect("compresses");
        let mut back = Vec::new();
        decompress(compressor, &again, declared, &mut back).expect("decompresses its own output");
        assert_eq!(back, out);
    }
}

/// Reads `data` as any file `mongowire decode` accepts (pcap, pcapng, mongoreplay, raw
/// messages: the first bytes decide) and takes every item to the end: each message's documents
/// are walked and it is rendered as JSON, each problem is rendered as text. Must never panic or
/// hang; every item must have cost at least one input byte, so a reader that loops producing
/// items is caught too.
pub fn capture(data: &[u8]) {
    let Ok(mut reader) = CaptureReader::new(data, CaptureOptions::default()) else {
        return;
    };
    let mut items = 0;
    while let Ok(Some(item)) = reader.next_item() {
        items += 1;
        assert!(items <= data.len(), "{items} items from {} bytes", data.len());
        match item {
            CaptureItem::Message(message) => {
                touch_documents(&message.message);
                let _ = captured_json(&message).to_string();
            }
            CaptureItem::Problem(problem) => {
                let _ = problem.to_string();
            }
        }
    }
}
