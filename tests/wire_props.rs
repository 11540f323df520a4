//! Property tests of the wire codec: round trips, an independent OP_MSG builder checked against
//! the decoder, stream splitting at random points, and robustness on mutated input.
#![allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap
)]

use bson::{RawArrayBuf, RawBson, RawDocumentBuf, spec::BinarySubtype};
use bytes::{Bytes, BytesMut};
use mongowire::wire::{
    Body, Compressor, DEFAULT_MAX_MESSAGE_SIZE, DocumentSequence, Message, MessageDecoder, MsgFlags, OpCommand,
    OpCommandReply, OpDelete, OpGetMore, OpInsert, OpKillCursors, OpMsg, OpQuery, OpReply, OpUpdate, Section,
};
use proptest::prelude::*;

const MAX: usize = DEFAULT_MAX_MESSAGE_SIZE;

fn key() -> impl Strategy<Value = String> {
    "[a-zA-Z_$.][a-zA-Z0-9_]{0,8}"
}

fn scalar() -> impl Strategy<Value = RawBson> {
    prop_oneof![
        any::<i32>().prop_map(RawBson::Int32),
        any::<i64>().prop_map(RawBson::Int64),
        any::<f64>().prop_map(RawBson::Double),
        any::<bool>().prop_map(RawBson::Boolean),
        "\\PC{0,20}".prop_map(RawBson::String),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|bytes| RawBson::Binary(bson::Binary {
            subtype: BinarySubtype::Generic,
            bytes
        })),
        Just(RawBson::Null),
        any::<[u8; 12]>().prop_map(|bytes| RawBson::ObjectId(bson::oid::ObjectId::from_bytes(bytes))),
        any::<i64>().prop_map(|millis| RawBson::DateTime(bson::DateTime::from_millis(millis))),
        any::<(u32, u32)>().prop_map(|(time, increment)| RawBson::Timestamp(bson::Timestamp { time, increment })),
        any::<[u8; 16]>().prop_map(|bytes| RawBson::Decimal128(bson::Decimal128::from_bytes(bytes))),
        Just(RawBson::MaxKey),
        // Options in alphabetical order, as BSON requires.
        ("[a-z]{0,5}", prop_oneof![Just(""), Just("i"), Just("imx")]).prop_map(|(pattern, options)| {
            RawBson::RegularExpression(bson::Regex {
                pattern: bson::raw::CString::try_from(pattern).unwrap(),
                options: bson::raw::CString::try_from(options.to_owned()).unwrap(),
            })
        }),
    ]
}

fn document() -> impl Strategy<Value = RawDocumentBuf> {
    let leaf = proptest::collection::vec((key(), scalar()), 0..6).prop_map(build_document);
    leaf.prop_recursive(3, 40, 6, |inner| {
        proptest::collection::vec(
            (
                key(),
                prop_oneof![
                    scalar(),
                    inner.clone().prop_map(RawBson::Document),
                    proptest::collection::vec(inner, 0..4)
                        .prop_map(|docs| RawBson::Array(docs.into_iter().collect::<RawArrayBuf>())),
                ],
            ),
            0..6,
        )
        .prop_map(build_document)
    })
}

fn build_document(fields: Vec<(String, RawBson)>) -> RawDocumentBuf {
    let mut doc = RawDocumentBuf::new();
    for (key, value) in fields {
        doc.append(bson::raw::CString::try_from(key).unwrap(), value);
    }
    doc
}

fn documents() -> impl Strategy<Value = Vec<RawDocumentBuf>> {
    proptest::collection::vec(document(), 0..5)
}

fn namespace() -> impl Strategy<Value = String> {
    "[a-z]{1,8}\\.[a-z$]{1,8}"
}

/// Allowed OP_MSG flags: the known low bits and any high bits.
fn flags() -> impl Strategy<Value = MsgFlags> {
    (any::<bool>(), any::<bool>(), any::<u16>()).prop_map(|(checksum, more, high)| {
        let mut bits = u32::from(high) << 16;
        if checksum {
            bits |= 1;
        }
        if more {
            bits |= 2;
        }
        MsgFlags::from_bits_retain(bits)
    })
}

fn op_msg() -> impl Strategy<Value = OpMsg> {
    (
        document(),
        proptest::collection::vec(("[a-z]{1,10}", documents()), 0..3),
        flags(),
    )
        .prop_map(|(body, sequences, flags)| {
            sequences
                .into_iter()
                .fold(OpMsg::new(body).with_flags(flags), |msg, (id, docs)| {
                    msg.with_sequence(DocumentSequence::new(&id, &docs).unwrap())
                })
        })
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        4 => op_msg().prop_map(Body::Msg),
        1 => (any::<u32>(), any::<i64>(), any::<i32>(), documents())
            .prop_map(|(f, c, s, d)| Body::Reply(OpReply::new(f, c, s, &d))),
        1 => (namespace(), document(), any::<u32>(), any::<i32>(), any::<i32>(), proptest::option::of(document())).prop_map(
            |(ns, q, flags, skip, ret, selector)| {
                let mut query = OpQuery::new(&ns, q).unwrap();
                if let Some(selector) = selector {
                    query = query.with_return_fields_selector(selector);
                }
                query.flags = flags;
                query.number_to_skip = skip;
                query.number_to_return = ret;
                Body::Query(query)
            }
        ),
        1 => ("[a-z]{1,8}", "[a-zA-Z]{1,12}", document(), document(), documents())
            .prop_map(|(db, name, args, meta, docs)| Body::Command(OpCommand::new(&db, &name, args, meta, &docs).unwrap())),
        1 => (document(), document(), documents())
            .prop_map(|(reply, meta, docs)| Body::CommandReply(OpCommandReply::new(reply, meta, &docs))),
        1 => (any::<u32>(), namespace(), documents()).prop_map(|(f, ns, d)| Body::Insert(OpInsert::new(f, &ns, &d).unwrap())),
        1 => (namespace(), any::<u32>(), document(), document())
            .prop_map(|(ns, f, s, u)| Body::Update(OpUpdate::new(&ns, f, s, u).unwrap())),
        1 => (namespace(), any::<u32>(), document()).prop_map(|(ns, f, s)| Body::Delete(OpDelete::new(&ns, f, s).unwrap())),
        1 => (namespace(), any::<i32>(), any::<i64>()).prop_map(|(ns, n, c)| Body::GetMore(OpGetMore::new(&ns, n, c).unwrap())),
        1 => proptest::collection::vec(any::<i64>(), 0..8).prop_map(|ids| Body::KillCursors(OpKillCursors::new(&ids))),
    ]
}

fn compressor() -> impl Strategy<Value = Option<Compressor>> {
    prop_oneof![
        Just(None),
        Just(Some(Compressor::Noop)),
        Just(Some(Compressor::Snappy)),
        Just(Some(Compressor::Zlib)),
        Just(Some(Compressor::Zstd)),
    ]
}

fn encode(message: &Message, compressor: Option<Compressor>) -> Vec<u8> {
    let mut out = BytesMut::new();
    match compressor {
        None => message.encode(&mut out).unwrap(),
        Some(c) => message.encode_compressed(c, None, &mut out).unwrap(),
    }
    out.to_vec()
}

/// An OP_MSG written by hand from a list of sections, independently of the codec's encoder.
#[derive(Debug, Clone)]
enum ModelSection {
    Body(RawDocumentBuf),
    Sequence(String, Vec<RawDocumentBuf>),
}

fn model_op_msg() -> impl Strategy<Value = (u32, Vec<ModelSection>)> {
    (
        flags(),
        document(),
        proptest::collection::vec(("[a-z]{1,10}", documents()), 0..4),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(flags, body, sequences, position)| {
            let mut sections: Vec<ModelSection> = sequences
                .into_iter()
                .map(|(id, docs)| ModelSection::Sequence(id, docs))
                .collect();
            let at = position.index(sections.len() + 1);
            sections.insert(at, ModelSection::Body(body));
            (flags.bits(), sections)
        })
}

fn write_model(flags: u32, sections: &[ModelSection]) -> Vec<u8> {
    let mut payload = flags.to_le_bytes().to_vec();
    for section in sections {
        match section {
            ModelSection::Body(doc) => {
                payload.push(0);
                payload.extend_from_slice(doc.as_bytes());
            }
            ModelSection::Sequence(id, docs) => {
                let content: Vec<u8> = [id.as_bytes(), &[0]]
                    .concat()
                    .into_iter()
                    .chain(docs.iter().flat_map(|d| d.as_bytes().to_vec()))
                    .collect();
                payload.push(1);
                payload.extend_from_slice(&(content.len() as i32 + 4).to_le_bytes());
                payload.extend_from_slice(&content);
            }
        }
    }
    let checksum = flags & 1 == 1;
    let len = 16 + payload.len() + if checksum { 4 } else { 0 };
    let mut out = Vec::new();
    for field in [len as i32, 77, 66, 2013] {
        out.extend_from_slice(&field.to_le_bytes());
    }
    out.extend_from_slice(&payload);
    if checksum {
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_body_round_trips(body in body(), request_id in any::<i32>(), response_to in any::<i32>(), compressor in compressor()) {
        let message = Message::new(request_id, response_to, body);
        let wire = encode(&message, compressor);
        let decoded = Message::decode(Bytes::from(wire.clone()), MAX).unwrap();
        prop_assert_eq!(decoded.body(), message.body());
        prop_assert_eq!((decoded.request_id(), decoded.response_to()), (request_id, response_to));
        prop_assert_eq!(decoded.compression().map(|c| c.compressor), compressor);
        let plain = encode(&message, None);
        prop_assert_eq!(decoded.raw().to_vec(), plain.clone());
        prop_assert_eq!(encode(&decoded, None), plain);
        if compressor.is_none() {
            prop_assert_eq!(wire, encode(&decoded, None));
        }
    }

    #[test]
    fn hand_built_op_msg_decodes_to_its_model((flags, sections) in model_op_msg()) {
        let bytes = write_model(flags, &sections);
        let message = Message::decode(Bytes::from(bytes.clone()), MAX).unwrap();
        let Body::Msg(msg) = message.body() else { panic!("not OP_MSG") };
        prop_assert_eq!(msg.flags().bits(), flags);
        let decoded: Vec<ModelSection> = msg.sections().map(|s| match s {
            Section::Body(doc) => ModelSection::Body(doc.to_owned()),
            Section::Sequence(seq) => ModelSection::Sequence(
                seq.identifier().to_owned(),
                seq.documents().map(|d| d.to_owned()).collect(),
            ),
        }).collect();
        prop_assert_eq!(format!("{decoded:?}"), format!("{sections:?}"));
        prop_assert_eq!(encode(&message, None), bytes);
    }

    #[test]
    fn a_stream_split_anywhere_decodes_to_the_same_messages(
        messages in proptest::collection::vec((body(), compressor()), 1..6),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let wires: Vec<Vec<u8>> = messages
            .iter()
            .enumerate()
            .map(|(i, (body, c))| encode(&Message::new(i as i32, 0, body.clone()), *c))
            .collect();
        let stream = wires.concat();
        let mut cut_points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        cut_points.push(stream.len());
        cut_points.sort_unstable();

        let mut decoder = MessageDecoder::default();
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut fed = 0;
        for cut in cut_points {
            buf.extend_from_slice(&stream[fed..cut]);
            fed = cut;
            while let Some(message) = decoder.decode(&mut buf).unwrap() {
                decoded.push(message);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decoded.len(), messages.len());
        for (i, (message, (body, _))) in decoded.iter().zip(&messages).enumerate() {
            prop_assert_eq!(message.request_id(), i as i32);
            prop_assert_eq!(message.body(), body);
        }
        prop_assert_eq!(decoder.position(), stream.len() as u64);
    }

    #[test]
    fn mutated_messages_never_panic_and_what_decodes_re_encodes_exactly(
        body in body(),
        compressor in compressor(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        truncate in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = encode(&Message::new(1, 0, body), compressor);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Some(at) = truncate {
            bytes.truncate(at.index(bytes.len() + 1));
        }
        if let Ok(message) = Message::decode(Bytes::from(bytes.clone()), MAX) {
            if message.compression().is_none() {
                prop_assert_eq!(encode(&message, None), bytes);
            }
            // Reading every document view must not panic either.
            if let Body::Msg(msg) = message.body() {
                for element in msg.body() {
                    let _ = element;
                }
            }
        }
    }

    #[test]
    fn to_document_matches_bsons_own_conversion(raw in document()) {
        let ours = mongowire::wire::to_document(&raw).unwrap();
        let theirs = bson::Document::try_from(raw.as_ref()).unwrap();
        // Compared as bytes, where NaN equals itself.
        let ours = RawDocumentBuf::try_from(&ours).unwrap();
        let theirs = RawDocumentBuf::try_from(&theirs).unwrap();
        prop_assert_eq!(ours.as_bytes(), theirs.as_bytes());
    }

    #[test]
    fn to_document_agrees_with_bson_on_mutated_documents(
        raw in document(),
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = raw.into_bytes();
        // Keep the frame (length prefix and terminator) so that the elements are what varies.
        let len = bytes.len();
        for (index, byte) in mutations {
            if len > 5 {
                bytes[4 + index.index(len - 5)] = byte;
            }
        }
        let raw = bson::RawDocument::from_bytes(&bytes).unwrap();
        let ours = mongowire::wire::to_document(raw);
        let theirs = bson::Document::try_from(raw);
        match (ours, theirs) {
            (Ok(ours), Ok(theirs)) => {
                let ours = RawDocumentBuf::try_from(&ours).unwrap();
                let theirs = RawDocumentBuf::try_from(&theirs).unwrap();
                prop_assert_eq!(ours.as_bytes(), theirs.as_bytes());
            }
            (Err(_), Err(_)) => {}
            (ours, theirs) => prop_assert!(false, "ours {:?}, bson's {:?}", ours.map(|_| ()), theirs.map(|_| ())),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Message::decode(Bytes::from(bytes.clone()), MAX);
        let mut buf = BytesMut::from(&bytes[..]);
        let mut decoder = MessageDecoder::new(1 << 16);
        loop {
            let before = decoder.position();
            match decoder.decode(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                // A bad header consumes nothing and the stream is done; a bad body is skipped.
                Err(_) if decoder.position() == before => break,
                Err(_) => {}
            }
        }
    }
}
