//! The JSON view of a decoded message.

use bson::{Bson, Document, RawDocument};
use serde_json::{Map, Value, json};

use super::item::CapturedMessage;
use crate::wire::{Body, Documents, Message};

/// A document as relaxed Extended JSON. BSON that cannot be converted (malformed inside a
/// well-framed message) becomes `{"$invalid": "<reason>"}` rather than failing the whole line.
fn document_json(document: &RawDocument) -> Value {
    match Document::try_from(document) {
        Ok(document) => Bson::Document(document).into_relaxed_extjson(),
        Err(error) => json!({ "$invalid": error.to_string() }),
    }
}

fn documents_json(documents: Documents<'_>) -> Value {
    Value::Array(documents.map(document_json).collect())
}

/// The JSON object for one message: `opcode` (after unwrapping OP_COMPRESSED), `compressor`
/// (null or the compressor's name), `request_id`, `response_to`, `length` (as it travelled) and
/// `doc`, the command or reply document as relaxed Extended JSON. For OP_MSG, kind-1 sequences
/// go under `doc.sequences.<identifier>`; legacy opcodes add their own fields (`ns`, `flags`,
/// `documents`, `cursor_id`, ...).
pub fn message_json(message: &Message) -> Value {
    json_with(message, Vec::new())
}

/// [`message_json`] plus what the capture recorded, after `length` and before the body's
/// fields: `ts` (when the packet that completed the message was captured, or when mongoreplay
/// saw it, as an RFC 3339 UTC string with the source's precision), `from` and `to` ("ip:port",
/// IPv6 in brackets; mongoreplay's endpoints as recorded), `sender` ("client" or "server"),
/// `packet` (the number of the packet that completed it) and `conn` (a fixture's connection
/// number). Keys the source has no value for are
/// left out, so a raw message file prints exactly what [`message_json`] does.
pub fn captured_json(captured: &CapturedMessage) -> Value {
    let mut envelope = Vec::new();
    if let Some(timestamp) = captured.timestamp {
        envelope.push(("ts", json!(timestamp.to_string())));
    }
    if let Some(from) = &captured.from {
        envelope.push(("from", json!(from)));
    }
    if let Some(to) = &captured.to {
        envelope.push(("to", json!(to)));
    }
    if let Some(sender) = captured.sender {
        envelope.push(("sender", json!(sender.name())));
    }
    if let Some(packet) = captured.packet {
        envelope.push(("packet", json!(packet)));
    }
    if let Some(connection) = captured.connection {
        envelope.push(("conn", json!(connection)));
    }
    json_with(&captured.message, envelope)
}

fn json_with(message: &Message, envelope: Vec<(&str, Value)>) -> Value {
    let mut out = Map::new();
    out.insert("opcode".into(), json!(message.op_code().code()));
    out.insert("op".into(), json!(message.op_code().name()));
    out.insert(
        "compressor".into(),
        json!(message.compression().map(|c| c.compressor.name())),
    );
    out.insert("request_id".into(), json!(message.request_id()));
    out.insert("response_to".into(), json!(message.response_to()));
    let length = message.compression().map_or(message.raw().len(), |c| c.wire_length);
    out.insert("length".into(), json!(length));
    for (key, value) in envelope {
        out.insert(key.into(), value);
    }
    let mut extra = |key: &str, value: Value| {
        out.insert(key.into(), value);
    };
    let doc = match message.body() {
        Body::Msg(msg) => {
            extra("flags", json!(msg.flags().bits()));
            let mut doc = document_json(msg.body());
            if !msg.sequences().is_empty() {
                let sequences: Map<String, Value> = msg
                    .sequences()
                    .iter()
                    .map(|s| (s.identifier().to_owned(), documents_json(s.documents())))
                    .collect();
                if let Value::Object(body) = &mut doc {
                    body.insert("sequences".into(), Value::Object(sequences));
                }
            }
            doc
        }
        Body::Query(query) => {
            extra("ns", json!(query.full_collection_name()));
            extra("flags", json!(query.flags));
            extra("number_to_skip", json!(query.number_to_skip));
            extra("number_to_return", json!(query.number_to_return));
            if let Some(selector) = query.return_fields_selector() {
                extra("return_fields_selector", document_json(selector));
            }
            document_json(query.query())
        }
        Body::Reply(reply) => {
            extra("flags", json!(reply.response_flags));
            extra("cursor_id", json!(reply.cursor_id));
            extra("starting_from", json!(reply.starting_from));
            extra("number_returned", json!(reply.number_returned()));
            if reply.number_returned() != 1 {
                extra("documents", documents_json(reply.documents()));
            }
            reply.documents().next().map_or(Value::Null, document_json)
        }
        Body::Command(command) => {
            extra("db", json!(command.database()));
            extra("command_name", json!(command.command_name()));
            extra("metadata", document_json(command.metadata()));
            if command.input_count() > 0 {
                extra("input_docs", documents_json(command.input_docs()));
            }
            document_json(command.command_args())
        }
        Body::CommandReply(reply) => {
            extra("metadata", document_json(reply.metadata()));
            if reply.output_count() > 0 {
                extra("output_docs", documents_json(reply.output_docs()));
            }
            document_json(reply.command_reply())
        }
        Body::Insert(insert) => {
            extra("ns", json!(insert.full_collection_name()));
            extra("flags", json!(insert.flags));
            json!({ "documents": documents_json(insert.documents()) })
        }
        Body::Update(update) => {
            extra("ns", json!(update.full_collection_name()));
            extra("flags", json!(update.flags));
            json!({ "selector": document_json(update.selector()), "update": document_json(update.update()) })
        }
        Body::Delete(delete) => {
            extra("ns", json!(delete.full_collection_name()));
            extra("flags", json!(delete.flags));
            json!({ "selector": document_json(delete.selector()) })
        }
        Body::GetMore(get_more) => {
            extra("ns", json!(get_more.full_collection_name()));
            json!({ "cursor_id": get_more.cursor_id, "number_to_return": get_more.number_to_return })
        }
        Body::KillCursors(kill) => json!({ "cursor_ids": kill.cursor_ids().collect::<Vec<_>>() }),
    };
    out.insert("doc".into(), doc);
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;
    use bytes::BytesMut;

    use super::*;
    use crate::wire::{Compressor, DEFAULT_MAX_MESSAGE_SIZE, DocumentSequence, OpMsg, OpReply};

    fn round_trip(message: &Message, compressor: Option<Compressor>) -> Message {
        let mut buf = BytesMut::new();
        match compressor {
            Some(c) => message.encode_compressed(c, None, &mut buf).unwrap(),
            None => message.encode(&mut buf).unwrap(),
        }
        Message::decode(buf.freeze(), DEFAULT_MAX_MESSAGE_SIZE).unwrap()
    }

    #[test]
    fn op_msg_body_and_sequences_as_relaxed_extended_json() {
        let body = OpMsg::new(rawdoc! { "insert": "c", "$db": "d", "ts": bson::Timestamp { time: 5, increment: 1 } })
            .with_sequence(DocumentSequence::new("documents", [rawdoc! { "_id": 1_i64 }]).unwrap());
        let message = round_trip(&Message::new(3, 0, Body::Msg(body)), Some(Compressor::Zlib));
        let value = message_json(&message);
        assert_eq!(value["opcode"], 2013);
        assert_eq!(value["op"], "OP_MSG");
        assert_eq!(value["compressor"], "zlib");
        assert_eq!(value["request_id"], 3);
        assert_eq!(value["doc"]["insert"], "c");
        assert_eq!(value["doc"]["ts"], json!({ "$timestamp": { "t": 5, "i": 1 } }));
        assert_eq!(value["doc"]["sequences"]["documents"], json!([{ "_id": 1 }]));
    }

    #[test]
    fn op_reply_shows_its_first_document_and_cursor() {
        let reply = OpReply::new(8, 0, 0, [rawdoc! { "ismaster": true }]);
        let value = message_json(&round_trip(&Message::new(1, 9, Body::Reply(reply)), None));
        assert_eq!(value["compressor"], Value::Null);
        assert_eq!(value["response_to"], 9);
        assert_eq!(value["doc"], json!({ "ismaster": true }));
        assert_eq!(value["cursor_id"], 0);
        assert!(value.get("documents").is_none());
    }

    #[test]
    fn malformed_bson_inside_a_valid_frame_is_marked_not_fatal() {
        // A well-framed body whose only element claims a string longer than the document.
        let bad = [14u8, 0, 0, 0, 2, b'a', 0, 100, 0, 0, 0, b'x', 0, 0];
        let mut payload = vec![0u8; 4];
        payload.push(0);
        payload.extend_from_slice(&bad);
        let frame = crate::wire::test_support::frame(2013, &payload);
        let message = Message::decode(frame, DEFAULT_MAX_MESSAGE_SIZE).unwrap();
        let value = message_json(&message);
        assert!(value["doc"]["$invalid"].is_string(), "{value}");
    }

    #[test]
    fn capture_keys_follow_length_and_are_left_out_when_unknown() {
        let message = round_trip(&Message::new(3, 0, Body::Msg(OpMsg::new(rawdoc! { "ping": 1 }))), None);
        let captured = CapturedMessage {
            message: message.clone(),
            offset: 0,
            from: Some("[::1]:50000".into()),
            to: Some("[::1]:27017".into()),
            sender: Some(crate::capture::Role::Client),
            timestamp: crate::capture::Timestamp::new(1_470_939_129, 422_603_000, 6),
            packet: Some(4),
            connection: Some(2),
        };
        let line = captured_json(&captured).to_string();
        assert!(
            line.starts_with(
                r#"{"opcode":2013,"op":"OP_MSG","compressor":null,"request_id":3,"response_to":0,"length":36,"ts":"2016-08-11T18:12:09.422603Z","from":"[::1]:50000","to":"[::1]:27017","sender":"client","packet":4,"conn":2,"flags":0,"doc":"#
            ),
            "{line}"
        );
        let bare = CapturedMessage {
            from: None,
            to: None,
            sender: None,
            timestamp: None,
            packet: None,
            connection: None,
            ..captured
        };
        assert_eq!(captured_json(&bare), message_json(&message));
    }
}
