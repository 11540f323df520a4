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

/// Bytes to a stream of choices, with zeroes once they run out.
struct Choices<'a> {
    data: &'a [u8],
}

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.data.split_first() else {
            return 0;
        };
        self.data = rest;
        first
    }

    fn done(&self) -> bool {
        self.data.is_empty()
    }
}

/// A reply the fuzzer picks: events (some without `_id`, some invalidate, some split
/// fragments), an optional postBatchResumeToken, an open or closed cursor; or an error of a
/// kind the state machine must tell apart.
fn scripted_reply(
    choices: &mut Choices<'_>,
    first: bool,
) -> (
    Result<mongowire::wire::SharedDocument, mongowire::Error>,
    Option<bson::RawDocumentBuf>,
) {
    use bson::{RawArrayBuf, rawdoc};
    use mongowire::{TransportError, TransportErrorKind};
    let kind = choices.byte();
    if kind % 8 == 7 {
        let error = match choices.byte() % 4 {
            0 => TransportError::new(TransportErrorKind::Closed, None, "closed").into(),
            1 => mongowire::protocol::reply::server_error(&rawdoc! { "ok": 0, "code": 43 }, None)
                .unwrap()
                .into(),
            2 => mongowire::protocol::reply::server_error(
                &rawdoc! { "ok": 0, "code": 280, "errorLabels": ["ResumableChangeStreamError"] },
                None,
            )
            .unwrap()
            .into(),
            _ => mongowire::protocol::reply::server_error(&rawdoc! { "ok": 0, "code": 2 }, None)
                .unwrap()
                .into(),
        };
        return (Err(error), None);
    }
    let mut batch = RawArrayBuf::new();
    for _ in 0..(choices.byte() % 5) {
        let n = i32::from(choices.byte());
        let event = match choices.byte() % 8 {
            0 => rawdoc! { "operationType": "insert" },
            1 => rawdoc! { "_id": { "_data": format!("t{n}") }, "operationType": "invalidate" },
            2 => rawdoc! { "_id": { "_data": format!("t{n}") }, "splitEvent": { "fragment": n % 3, "of": 2 } },
            3 => rawdoc! { "_id": 5 },
            _ => rawdoc! { "_id": { "_data": format!("t{n}") }, "operationType": "insert" },
        };
        batch.push(event);
    }
    let pbrt = (choices.byte().is_multiple_of(2)).then(|| rawdoc! { "_data": format!("p{}", choices.byte()) });
    let id = if choices.byte().is_multiple_of(4) { 0_i64 } else { 42 };
    let mut cursor = rawdoc! { "id": id, "ns": "db.coll" };
    cursor.append(
        if first {
            bson::raw::cstr!("firstBatch")
        } else {
            bson::raw::cstr!("nextBatch")
        },
        batch,
    );
    if let Some(token) = &pbrt {
        cursor.append(bson::raw::cstr!("postBatchResumeToken"), token.clone());
    }
    let body = rawdoc! { "cursor": cursor, "ok": 1 };
    (
        Ok(mongowire::wire::SharedDocument::from_bytes(Bytes::from(body.into_bytes())).expect("valid")),
        pbrt,
    )
}

/// Drives the change-stream state machine with replies the fuzzer scripts and checks its
/// invariants: an event is never yielded without the cached token becoming its `_id` or the
/// batch's postBatchResumeToken; one getMore error leads to at most one resume aggregate; an
/// aggregate error closes the stream; the machine never waits for an outcome it was given, and
/// never panics.
pub fn change_stream(data: &[u8]) {
    use mongowire::protocol::change_stream::{Action, ChangeStreamMachine, ChangeStreamOptions, WatchTarget};
    use mongowire::protocol::cursor::Namespace;
    let mut choices = Choices { data };
    let options = ChangeStreamOptions {
        reassemble_split_events: choices.byte().is_multiple_of(2),
        start_after: (choices.byte().is_multiple_of(3)).then(|| bson::rawdoc! { "_data": "start" }),
        ..ChangeStreamOptions::default()
    };
    let mut machine = ChangeStreamMachine::new(
        WatchTarget::Collection(Namespace::new("db", "coll")),
        Vec::new(),
        options,
    );
    let mut first = true;
    let mut last_pbrt: Option<bson::RawDocumentBuf> = None;
    let mut resumes_for_this_error: Option<u32> = None;
    for _ in 0..200 {
        match machine.poll() {
            Action::Aggregate(_) => {
                if let Some(count) = resumes_for_this_error.as_mut() {
                    *count += 1;
                    assert!(*count <= 1, "two resume aggregates for one getMore error");
                }
                let (reply, pbrt) = scripted_reply(&mut choices, true);
                let failed = reply.is_err();
                last_pbrt = pbrt;
                machine.handle_aggregate(reply, 21);
                if failed {
                    assert!(!machine.is_alive(), "an aggregate error closes the stream");
                } else {
                    resumes_for_this_error = None;
                }
                first = false;
            }
            Action::GetMore(_) => {
                let (reply, pbrt) = scripted_reply(&mut choices, false);
                if reply.is_err() {
                    resumes_for_this_error = Some(0);
                }
                last_pbrt = pbrt;
                machine.handle_get_more(reply);
            }
            Action::KillCursors(_) => machine.handle_killed(),
            Action::Event(event) => {
                let token = machine.resume_token().expect("a token after an event");
                assert!(
                    token == event.resume_token() || last_pbrt.as_deref() == Some(token),
                    "an event without its token cached"
                );
            }
            Action::Closed(_) => {
                assert!(!machine.is_alive());
                assert!(matches!(machine.poll(), Action::Closed(None)), "the error comes once");
                return;
            }
            Action::Waiting => panic!("the machine waits for an outcome it was given"),
        }
        if choices.done() && !first {
            let _ = machine.close();
            assert!(matches!(machine.poll(), Action::Closed(None)));
            return;
        }
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
