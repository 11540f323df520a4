//! The opcodes that came before OP_MSG. Current servers no longer accept them (except OP_QUERY
//! for the first `hello` of old drivers), but recorded traffic from older clients is full of
//! them, and replaying captures is part of the product, so all of them decode and re-encode.
//!
//! Strings are cstrings; flag words are int32 bit vectors (held here as `u32`); "ZERO" fields are
//! reserved and kept as read, so that a message re-encodes byte for byte.

use bson::{RawDocument, RawDocumentBuf};
use bytes::{BufMut, Bytes, BytesMut};

use super::DecodeError;
use super::documents::{Documents, concat_documents, cstring_bytes, cstring_str, document_view};
use super::error::{DecodeErrorKind, EncodeError};
use super::header::{HEADER_LEN, OpCode};
use super::message::write_message;
use super::reader::Reader;

fn put_cstring(dst: &mut BytesMut, value: &Bytes) {
    dst.put_slice(value);
    dst.put_u8(0);
}

fn doc_bytes(document: RawDocumentBuf) -> Bytes {
    Bytes::from(document.into_bytes())
}

fn count_field(count: usize) -> i32 {
    // Counts come from documents inside one message, so they fit whenever the message does;
    // write_message rejects messages over i32::MAX before this value is used.
    i32::try_from(count).unwrap_or(i32::MAX)
}

fn check_count(declared: i32, actual: usize, field: &'static str, offset: usize) -> Result<(), DecodeError> {
    if usize::try_from(declared).ok() == Some(actual) {
        Ok(())
    } else {
        Err(DecodeError {
            field,
            offset,
            kind: DecodeErrorKind::CountMismatch {
                declared: declared.into(),
                actual,
            },
        })
    }
}

/// OP_REPLY (1): the reply to OP_QUERY and OP_GET_MORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpReply {
    /// responseFlags: bit 0 CursorNotFound, bit 1 QueryFailure, bit 3 AwaitCapable.
    pub response_flags: u32,
    /// The cursor id, 0 when the cursor is exhausted.
    pub cursor_id: i64,
    /// Position of the first returned document in the cursor.
    pub starting_from: i32,
    documents: Bytes,
    count: usize,
}

impl OpReply {
    /// A reply carrying these documents.
    pub fn new<D: AsRef<RawDocument>>(
        response_flags: u32,
        cursor_id: i64,
        starting_from: i32,
        documents: impl IntoIterator<Item = D>,
    ) -> OpReply {
        let (documents, count) = concat_documents(documents);
        OpReply {
            response_flags,
            cursor_id,
            starting_from,
            documents,
            count,
        }
    }

    /// The returned documents.
    pub fn documents(&self) -> Documents<'_> {
        Documents::new(&self.documents)
    }

    /// numberReturned: how many documents the reply holds.
    pub fn number_returned(&self) -> usize {
        self.count
    }

    pub(crate) fn decode(buf: &Bytes, len: usize) -> Result<OpReply, DecodeError> {
        let mut r = Reader::new(buf, HEADER_LEN, len);
        let response_flags = r.u32("OP_REPLY.responseFlags")?;
        let cursor_id = r.i64("OP_REPLY.cursorID")?;
        let starting_from = r.i32("OP_REPLY.startingFrom")?;
        let count_offset = r.position();
        let number_returned = r.i32("OP_REPLY.numberReturned")?;
        let (documents, count) = r.documents("OP_REPLY.documents")?;
        check_count(number_returned, count, "OP_REPLY.numberReturned", count_offset)?;
        Ok(OpReply {
            response_flags,
            cursor_id,
            starting_from,
            documents: r.bytes(documents),
            count,
        })
    }

    pub(crate) fn encode(&self, request_id: i32, response_to: i32, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let len = 4 + 8 + 4 + 4 + self.documents.len();
        write_message(dst, OpCode::Reply, request_id, response_to, len, |dst| {
            dst.put_u32_le(self.response_flags);
            dst.put_i64_le(self.cursor_id);
            dst.put_i32_le(self.starting_from);
            dst.put_i32_le(count_field(self.count));
            dst.put_slice(&self.documents);
        })
        .map(drop)
    }
}

/// OP_QUERY (2004): a query, or (on `db.$cmd`) a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpQuery {
    /// Query flags: bit 1 TailableCursor, bit 2 SecondaryOk, bit 4 NoCursorTimeout, ...
    pub flags: u32,
    full_collection_name: Bytes,
    /// Documents to skip.
    pub number_to_skip: i32,
    /// Batch size; -1 asks for a single batch and a closed cursor (how commands are sent).
    pub number_to_return: i32,
    query: Bytes,
    return_fields_selector: Option<Bytes>,
}

impl OpQuery {
    /// A query on `full_collection_name` (`db.collection`, or `db.$cmd` for a command).
    pub fn new(full_collection_name: &str, query: RawDocumentBuf) -> Result<OpQuery, EncodeError> {
        Ok(OpQuery {
            flags: 0,
            full_collection_name: cstring_bytes(full_collection_name)?,
            number_to_skip: 0,
            number_to_return: -1,
            query: doc_bytes(query),
            return_fields_selector: None,
        })
    }

    /// Adds a projection after the query.
    #[must_use]
    pub fn with_return_fields_selector(mut self, selector: RawDocumentBuf) -> OpQuery {
        self.return_fields_selector = Some(doc_bytes(selector));
        self
    }

    /// The namespace, `db.collection`.
    pub fn full_collection_name(&self) -> &str {
        cstring_str(&self.full_collection_name)
    }

    /// The query (or command) document.
    pub fn query(&self) -> &RawDocument {
        document_view(&self.query)
    }

    /// The optional projection.
    pub fn return_fields_selector(&self) -> Option<&RawDocument> {
        self.return_fields_selector.as_deref().map(document_view)
    }

    pub(crate) fn decode(buf: &Bytes, len: usize) -> Result<OpQuery, DecodeError> {
        let mut r = Reader::new(buf, HEADER_LEN, len);
        let flags = r.u32("OP_QUERY.flags")?;
        let name = r.cstring("OP_QUERY.fullCollectionName")?;
        let number_to_skip = r.i32("OP_QUERY.numberToSkip")?;
        let number_to_return = r.i32("OP_QUERY.numberToReturn")?;
        let query = r.document("OP_QUERY.query")?;
        let selector = r.optional_document("OP_QUERY.returnFieldsSelector")?;
        r.finish("OP_QUERY")?;
        Ok(OpQuery {
            flags,
            full_collection_name: r.bytes(name),
            number_to_skip,
            number_to_return,
            query: r.bytes(query),
            return_fields_selector: selector.map(|s| r.bytes(s)),
        })
    }

    pub(crate) fn encode(&self, request_id: i32, response_to: i32, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let selector_len = self.return_fields_selector.as_ref().map_or(0, Bytes::len);
        let len = 4 + self.full_collection_name.len() + 1 + 8 + self.query.len() + selector_len;
        write_message(dst, OpCode::Query, request_id, response_to, len, |dst| {
            dst.put_u32_le(self.flags);
            put_cstring(dst, &self.full_collection_name);
            dst.put_i32_le(self.number_to_skip);
            dst.put_i32_le(self.number_to_return);
            dst.put_slice(&self.query);
            if let Some(selector) = &self.return_fields_selector {
                dst.put_slice(selector);
            }
        })
        .map(drop)
    }
}

/// OP_COMMAND (2010): the 3.2-era command request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpCommand {
    database: Bytes,
    command_name: Bytes,
    command_args: Bytes,
    metadata: Bytes,
    input_docs: Bytes,
    input_count: usize,
}

impl OpCommand {
    /// A command request; `input_docs` follow the metadata.
    pub fn new<D: AsRef<RawDocument>>(
        database: &str,
        command_name: &str,
        command_args: RawDocumentBuf,
        metadata: RawDocumentBuf,
        input_docs: impl IntoIterator<Item = D>,
    ) -> Result<OpCommand, EncodeError> {
        let (input_docs, input_count) = concat_documents(input_docs);
        Ok(OpCommand {
            database: cstring_bytes(database)?,
            command_name: cstring_bytes(command_name)?,
            command_args: doc_bytes(command_args),
            metadata: doc_bytes(metadata),
            input_docs,
            input_count,
        })
    }

    /// The database the command runs on.
    pub fn database(&self) -> &str {
        cstring_str(&self.database)
    }

    /// The command name, such as `insert`.
    pub fn command_name(&self) -> &str {
        cstring_str(&self.command_name)
    }

    /// The command document.
    pub fn command_args(&self) -> &RawDocument {
        document_view(&self.command_args)
    }

    /// The metadata document (read preference, audit data).
    pub fn metadata(&self) -> &RawDocument {
        document_view(&self.metadata)
    }

    /// The input documents that follow (for example the documents of an insert).
    pub fn input_docs(&self) -> Documents<'_> {
        Documents::new(&self.input_docs)
    }

    /// How many input documents follow.
    pub fn input_count(&self) -> usize {
        self.input_count
    }

    pub(crate) fn decode(buf: &Bytes, len: usize) -> Result<OpCommand, DecodeError> {
        let mut r = Reader::new(buf, HEADER_LEN, len);
        let database = r.cstring("OP_COMMAND.database")?;
        let command_name = r.cstring("OP_COMMAND.commandName")?;
        let command_args = r.document("OP_COMMAND.commandArgs")?;
        let metadata = r.document("OP_COMMAND.metadata")?;
        let (input_docs, input_count) = r.documents("OP_COMMAND.inputDocs")?;
        Ok(OpCommand {
            database: r.bytes(database),
            command_name: r.bytes(command_name),
            command_args: r.bytes(command_args),
            metadata: r.bytes(metadata),
            input_docs: r.bytes(input_docs),
            input_count,
        })
    }

    pub(crate) fn encode(&self, request_id: i32, response_to: i32, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let len = self.database.len()
            + 1
            + self.command_name.len()
            + 1
            + self.command_args.len()
            + self.metadata.len()
            + self.input_docs.len();
        write_message(dst, OpCode::Command, request_id, response_to, len, |dst| {
            put_cstring(dst, &self.database);
            put_cstring(dst, &self.command_name);
            dst.put_slice(&self.command_args);
            dst.put_slice(&self.metadata);
            dst.put_slice(&self.input_docs);
        })
        .map(drop)
    }
}

/// OP_COMMANDREPLY (2011): the reply to OP_COMMAND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpCommandReply {
    command_reply: Bytes,
    metadata: Bytes,
    output_docs: Bytes,
    output_count: usize,
}

impl OpCommandReply {
    /// A command reply; `output_docs` follow the metadata.
    pub fn new<D: AsRef<RawDocument>>(
        command_reply: RawDocumentBuf,
        metadata: RawDocumentBuf,
        output_docs: impl IntoIterator<Item = D>,
    ) -> OpCommandReply {
        let (output_docs, output_count) = concat_documents(output_docs);
        OpCommandReply {
            command_reply: doc_bytes(command_reply),
            metadata: doc_bytes(metadata),
            output_docs,
            output_count,
        }
    }

    /// The reply document.
    pub fn command_reply(&self) -> &RawDocument {
        document_view(&self.command_reply)
    }

    /// The metadata document.
    pub fn metadata(&self) -> &RawDocument {
        document_view(&self.metadata)
    }

    /// Output documents that follow the reply.
    pub fn output_docs(&self) -> Documents<'_> {
        Documents::new(&self.output_docs)
    }

    /// How many output documents follow.
    pub fn output_count(&self) -> usize {
        self.output_count
    }

    pub(crate) fn decode(buf: &Bytes, len: usize) -> Result<OpCommandReply, DecodeError> {
        let mut r = Reader::new(buf, HEADER_LEN, len);
        let command_reply = r.document("OP_COMMANDREPLY.commandReply")?;
        let metadata = r.document("OP_COMMANDREPLY.metadata")?;
        let (output_docs, output_count) = r.documents("OP_COMMANDREPLY.outputDocs")?;
        Ok(OpCommandReply {
            command_reply: r.bytes(command_reply),
            metadata: r.bytes(metadata),
            output_docs: r.bytes(output_docs),
            output_count,
        })
    }

    pub(crate) fn encode(&self, request_id: i32, response_to: i32, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let len = self.command_reply.len() + self.metadata.len() + self.output_docs.len();
        write_message(dst, OpCode::CommandReply, request_id, response_to, len, |dst| {
            dst.put_slice(&self.command_reply);
            dst.put_slice(&self.metadata);
            dst.put_slice(&self.output_docs);
        })
        .map(drop)
    }
}

/// OP_INSERT (2002), legacy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpInsert {
    /// Bit 0 ContinueOnError.
    pub flags: u32,
    full_collection_name: Bytes,
    documents: Bytes,
    count: usize,
}

impl OpInsert {
    /// An insert of `documents` into `full_collection_name`.
    pub fn new<D: AsRef<RawDocument>>(
        flags: u32,
        full_collection_name: &str,
        documents: impl IntoIterator<Item = D>,
    ) -> Result<OpInsert, EncodeError> {
        let (documents, count) = concat_documents(documents);
        Ok(OpInsert {
            flags,
            full_collection_name: cstring_bytes(full_collection_name)?,
            documents,
            count,
        })
    }

    /// The namespace, `db.collection`.
    pub fn full_collection_name(&self) -> &str {
        cstring_str(&self.full_collection_name)
    }

    /// The documents to insert.
    pub fn documents(&self) -> Documents<'_> {
        Documents::new(&self.documents)
    }

    /// How many documents the message holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the message holds no documents.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub(crate) fn decode(buf: &Bytes, len: usize) -> Result<OpInsert, DecodeError> {
        let mut r = Reader::new(buf, HEADER_LEN, len);
        let flags = r.u32("OP_INSERT.flags")?;
        let name = r.cstring("OP_INSERT.fullCollectionName")?;
        let (documents, count) = r.documents("OP_INSERT.documents")?;
        Ok(OpInsert {
            flags,
            full_collection_name: r.bytes(name),
            documents: r.bytes(documents),
            count,
        })
    }

    pub(crate) fn encode(&self, request_id: i32, response_to: i32, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let len = 4 + self.full_collection_name.len() + 1 + self.documents.len();
        write_message(dst, OpCode::Insert, request_id, response_to, len, |dst| {
            dst.put_u32_le(self.flags);
            put_cstring(dst, &self.full_collection_name);
            dst.put_slice(&self.documents);
        })
        .map(drop)
    }
}

/// OP_UPDATE (2001), legacy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpUpdate {
    /// The reserved ZERO field, as read.
    pub reserved: i32,
    full_collection_name: Bytes,
    /// Bit 0 Upsert, bit 1 MultiUpdate.
    pub flags: u32,
    selector: Bytes,
    update: Bytes,
}

impl OpUpdate {
    /// An update of the documents matching `selector`.
    pub fn new(
        full_collection_name: &str,
        flags: u32,
        selector: RawDocumentBuf,
        update: RawDocumentBuf,
    ) -> Result<OpUpdate, EncodeError> {
        Ok(OpUpdate {
            reserved: 0,
            full_collection_name: cstring_bytes(full_collection_name)?,
            flags,
            selector: doc_bytes(selector),
            update: doc_bytes(update),
        })
    }

    /// The namespace, `db.collection`.
    pub fn full_collection_name(&self) -> &str {
        cstring_str(&self.full_collection_name)
    }

    /// Which documents to update.
    pub fn selector(&self) -> &RawDocument {
        document_view(&self.selector)
    }

    /// The update or replacement.
    pub fn update(&self) -> &RawDocument {
        document_view(&self.update)
    }

    pub(crate) fn decode(buf: &Bytes, len: usize) -> Result<OpUpdate, DecodeError> {
        let mut r = Reader::new(buf, HEADER_LEN, len);
        let reserved = r.i32("OP_UPDATE.ZERO")?;
        let name = r.cstring("OP_UPDATE.fullCollectionName")?;
        let flags = r.u32("OP_UPDATE.flags")?;
        let selector = r.document("OP_UPDATE.selector")?;
        let update = r.document("OP_UPDATE.update")?;
        r.finish("OP_UPDATE")?;
        Ok(OpUpdate {
            reserved,
            full_collection_name: r.bytes(name),
            flags,
            selector: r.bytes(selector),
            update: r.bytes(update),
        })
    }

    pub(crate) fn encode(&self, request_id: i32, response_to: i32, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let len = 4 + self.full_collection_name.len() + 1 + 4 + self.selector.len() + self.update.len();
        write_message(dst, OpCode::Update, request_id, response_to, len, |dst| {
            dst.put_i32_le(self.reserved);
            put_cstring(dst, &self.full_collection_name);
            dst.put_u32_le(self.flags);
            dst.put_slice(&self.selector);
            dst.put_slice(&self.update);
        })
        .map(drop)
    }
}

/// OP_DELETE (2006), legacy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpDelete {
    /// The reserved ZERO field, as read.
    pub reserved: i32,
    full_collection_name: Bytes,
    /// Bit 0 SingleRemove.
    pub flags: u32,
    selector: Bytes,
}

impl OpDelete {
    /// A delete of the documents matching `selector`.
    pub fn new(full_collection_name: &str, flags: u32, selector: RawDocumentBuf) -> Result<OpDelete, EncodeError> {
        Ok(OpDelete {
            reserved: 0,
            full_collection_name: cstring_bytes(full_collection_name)?,
            flags,
            selector: doc_bytes(selector),
        })
    }

    /// The namespace, `db.collection`.
    pub fn full_collection_name(&self) -> &str {
        cstring_str(&self.full_collection_name)
    }

    /// Which documents to delete.
    pub fn selector(&self) -> &RawDocument {
        document_view(&self.selector)
    }

    pub(crate) fn decode(buf: &Bytes, len: usize) -> Result<OpDelete, DecodeError> {
        let mut r = Reader::new(buf, HEADER_LEN, len);
        let reserved = r.i32("OP_DELETE.ZERO")?;
        let name = r.cstring("OP_DELETE.fullCollectionName")?;
        let flags = r.u32("OP_DELETE.flags")?;
        let selector = r.document("OP_DELETE.selector")?;
        r.finish("OP_DELETE")?;
        Ok(OpDelete {
            reserved,
            full_collection_name: r.bytes(name),
            flags,
            selector: r.bytes(selector),
        })
    }

    pub(crate) fn encode(&self, request_id: i32, response_to: i32, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let len = 4 + self.full_collection_name.len() + 1 + 4 + self.selector.len();
        write_message(dst, OpCode::Delete, request_id, response_to, len, |dst| {
            dst.put_i32_le(self.reserved);
            put_cstring(dst, &self.full_collection_name);
            dst.put_u32_le(self.flags);
            dst.put_slice(&self.selector);
        })
        .map(drop)
    }
}

/// OP_GET_MORE (2005), legacy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpGetMore {
    /// The reserved ZERO field, as read.
    pub reserved: i32,
    full_collection_name: Bytes,
    /// Batch size.
    pub number_to_return: i32,
    /// The cursor to continue.
    pub cursor_id: i64,
}

impl OpGetMore {
    /// A request for the next batch of `cursor_id`.
    pub fn new(full_collection_name: &str, number_to_return: i32, cursor_id: i64) -> Result<OpGetMore, EncodeError> {
        Ok(OpGetMore {
            reserved: 0,
            full_collection_name: cstring_bytes(full_collection_name)?,
            number_to_return,
            cursor_id,
        })
    }

    /// The namespace, `db.collection`.
    pub fn full_collection_name(&self) -> &str {
        cstring_str(&self.full_collection_name)
    }

    pub(crate) fn decode(buf: &Bytes, len: usize) -> Result<OpGetMore, DecodeError> {
        let mut r = Reader::new(buf, HEADER_LEN, len);
        let reserved = r.i32("OP_GET_MORE.ZERO")?;
        let name = r.cstring("OP_GET_MORE.fullCollectionName")?;
        let number_to_return = r.i32("OP_GET_MORE.numberToReturn")?;
        let cursor_id = r.i64("OP_GET_MORE.cursorID")?;
        r.finish("OP_GET_MORE")?;
        Ok(OpGetMore {
            reserved,
            full_collection_name: r.bytes(name),
            number_to_return,
            cursor_id,
        })
    }

    pub(crate) fn encode(&self, request_id: i32, response_to: i32, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let len = 4 + self.full_collection_name.len() + 1 + 4 + 8;
        write_message(dst, OpCode::GetMore, request_id, response_to, len, |dst| {
            dst.put_i32_le(self.reserved);
            put_cstring(dst, &self.full_collection_name);
            dst.put_i32_le(self.number_to_return);
            dst.put_i64_le(self.cursor_id);
        })
        .map(drop)
    }
}

/// OP_KILL_CURSORS (2007), legacy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpKillCursors {
    /// The reserved ZERO field, as read.
    pub reserved: i32,
    cursor_ids: Bytes,
}

impl OpKillCursors {
    /// A request to close these cursors.
    pub fn new(cursor_ids: &[i64]) -> OpKillCursors {
        let ids: Vec<u8> = cursor_ids.iter().flat_map(|id| id.to_le_bytes()).collect();
        OpKillCursors {
            reserved: 0,
            cursor_ids: Bytes::from(ids),
        }
    }

    /// The cursors to close.
    pub fn cursor_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.cursor_ids
            .chunks_exact(8)
            .map(|id| i64::from_le_bytes(id.try_into().unwrap_or_default()))
    }

    pub(crate) fn decode(buf: &Bytes, len: usize) -> Result<OpKillCursors, DecodeError> {
        let mut r = Reader::new(buf, HEADER_LEN, len);
        let reserved = r.i32("OP_KILL_CURSORS.ZERO")?;
        let count_offset = r.position();
        let count = r.i32("OP_KILL_CURSORS.numberOfCursorIDs")?;
        let ids = r.take_rest();
        if !ids.len().is_multiple_of(8) {
            return Err(DecodeError {
                field: "OP_KILL_CURSORS.cursorIDs",
                offset: ids.start,
                kind: DecodeErrorKind::TrailingBytes { count: ids.len() % 8 },
            });
        }
        check_count(count, ids.len() / 8, "OP_KILL_CURSORS.numberOfCursorIDs", count_offset)?;
        Ok(OpKillCursors {
            reserved,
            cursor_ids: r.bytes(ids),
        })
    }

    pub(crate) fn encode(&self, request_id: i32, response_to: i32, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let len = 4 + 4 + self.cursor_ids.len();
        write_message(dst, OpCode::KillCursors, request_id, response_to, len, |dst| {
            dst.put_i32_le(self.reserved);
            dst.put_i32_le(count_field(self.cursor_ids.len() / 8));
            dst.put_slice(&self.cursor_ids);
        })
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;
    use crate::wire::test_support::{cat, frame};
    use crate::wire::{Body, DEFAULT_MAX_MESSAGE_SIZE, Message};

    fn decode(bytes: Bytes) -> Result<Body, DecodeError> {
        Message::decode(bytes, DEFAULT_MAX_MESSAGE_SIZE).map(Message::into_body)
    }

    fn reencode(body: &Body) -> Vec<u8> {
        let mut out = BytesMut::new();
        body.encode(1, 0, &mut out).unwrap();
        out.to_vec()
    }

    fn err(field: &'static str, offset: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError { field, offset, kind }
    }

    #[test]
    fn legacy_hello_is_an_op_query_on_admin_cmd() {
        let query = OpQuery::new("admin.$cmd", rawdoc! { "hello": 1 }).unwrap();
        let mut out = BytesMut::new();
        query.encode(9, 0, &mut out).unwrap();
        let doc = rawdoc! { "hello": 1 }.into_bytes();
        let expected = cat(&[
            &(16 + 4 + 11 + 8 + doc.len() as i32).to_le_bytes(),
            &9i32.to_le_bytes(),
            &0i32.to_le_bytes(),
            &2004i32.to_le_bytes(),
            &0u32.to_le_bytes(),
            b"admin.$cmd\0",
            &0i32.to_le_bytes(),
            &(-1i32).to_le_bytes(),
            &doc,
        ]);
        assert_eq!(out.to_vec(), expected);
        let Body::Query(decoded) = decode(Bytes::from(expected)).unwrap() else {
            panic!()
        };
        assert_eq!(decoded.full_collection_name(), "admin.$cmd");
        assert_eq!(decoded.number_to_return, -1);
        assert_eq!(decoded.query().get_i32("hello").unwrap(), 1);
        assert!(decoded.return_fields_selector().is_none());
    }

    #[test]
    fn op_query_with_selector_and_trailing_garbage() {
        let query = rawdoc! { "a": 1 }.into_bytes();
        let selector = rawdoc! { "b": 1 }.into_bytes();
        let payload = cat(&[
            &4u32.to_le_bytes(),
            b"db.c\0",
            &5i32.to_le_bytes(),
            &10i32.to_le_bytes(),
            &query,
            &selector,
        ]);
        let body = decode(frame(2004, &payload)).unwrap();
        let Body::Query(q) = &body else { panic!() };
        assert_eq!((q.flags, q.number_to_skip, q.number_to_return), (4, 5, 10));
        assert_eq!(q.return_fields_selector().unwrap().get_i32("b").unwrap(), 1);
        assert_eq!(reencode(&body), frame(2004, &payload).to_vec());

        let with_garbage = cat(&[&payload, &[1, 2]]);
        assert_eq!(
            decode(frame(2004, &with_garbage)).unwrap_err(),
            err(
                "OP_QUERY",
                16 + payload.len(),
                DecodeErrorKind::TrailingBytes { count: 2 }
            )
        );
    }

    #[test]
    fn op_reply_counts_must_match() {
        let doc = rawdoc! { "ok": 1 }.into_bytes();
        let payload = |n: i32| {
            cat(&[
                &8u32.to_le_bytes(),
                &42i64.to_le_bytes(),
                &0i32.to_le_bytes(),
                &n.to_le_bytes(),
                &doc,
                &doc,
            ])
        };
        let body = decode(frame(1, &payload(2))).unwrap();
        let Body::Reply(reply) = &body else { panic!() };
        assert_eq!(
            (reply.response_flags, reply.cursor_id, reply.number_returned()),
            (8, 42, 2)
        );
        assert_eq!(reply.documents().count(), 2);
        assert_eq!(reencode(&body), frame(1, &payload(2)).to_vec());
        assert_eq!(
            decode(frame(1, &payload(3))).unwrap_err(),
            err(
                "OP_REPLY.numberReturned",
                32,
                DecodeErrorKind::CountMismatch { declared: 3, actual: 2 }
            )
        );
        assert_eq!(
            decode(frame(1, &payload(-1))).unwrap_err(),
            err(
                "OP_REPLY.numberReturned",
                32,
                DecodeErrorKind::CountMismatch {
                    declared: -1,
                    actual: 2
                }
            )
        );
    }

    #[test]
    fn op_command_and_reply_keep_args_before_metadata() {
        let args = rawdoc! { "insert": "test", "ordered": true };
        let metadata = rawdoc! {};
        let input = rawdoc! { "_id": 1 };
        let command = OpCommand::new("mongotape", "insert", args.clone(), metadata, [&input]).unwrap();
        let body = Body::Command(command);
        let bytes = reencode(&body);
        // database, commandName, commandArgs, metadata, inputDocs: as 3.2 servers sent them.
        assert_eq!(&bytes[16..37], b"mongotape\0insert\0\x20\0\0\0");
        let Body::Command(decoded) = decode(Bytes::from(bytes)).unwrap() else {
            panic!()
        };
        assert_eq!(decoded.database(), "mongotape");
        assert_eq!(decoded.command_name(), "insert");
        assert_eq!(decoded.command_args(), args.as_ref());
        assert!(decoded.metadata().is_empty());
        assert_eq!(decoded.input_count(), 1);

        let reply = OpCommandReply::new(rawdoc! { "ok": 1, "n": 1 }, rawdoc! {}, [rawdoc! { "x": 1 }]);
        let body = Body::CommandReply(reply.clone());
        let Body::CommandReply(decoded) = decode(Bytes::from(reencode(&body))).unwrap() else {
            panic!()
        };
        assert_eq!(decoded, reply);
        assert_eq!(decoded.command_reply().get_i32("n").unwrap(), 1);
        assert_eq!(decoded.output_docs().count(), 1);
    }

    #[test]
    fn old_crud_opcodes_round_trip() {
        let bodies = [
            Body::Insert(OpInsert::new(1, "db.c", [rawdoc! { "a": 1 }, rawdoc! { "a": 2 }]).unwrap()),
            Body::Update(OpUpdate::new("db.c", 3, rawdoc! { "a": 1 }, rawdoc! { "$set": { "b": 2 } }).unwrap()),
            Body::Delete(OpDelete::new("db.c", 1, rawdoc! { "a": 1 }).unwrap()),
            Body::GetMore(OpGetMore::new("db.c", 100, 0x0102_0304_0506_0708).unwrap()),
            Body::KillCursors(OpKillCursors::new(&[7, -8])),
        ];
        for body in bodies {
            let bytes = reencode(&body);
            let decoded = decode(Bytes::from(bytes.clone())).unwrap();
            assert_eq!(decoded, body);
            assert_eq!(reencode(&decoded), bytes);
        }
        let Body::KillCursors(kill) =
            decode(Bytes::from(reencode(&Body::KillCursors(OpKillCursors::new(&[7, -8]))))).unwrap()
        else {
            panic!()
        };
        assert_eq!(kill.cursor_ids().collect::<Vec<_>>(), [7, -8]);
    }

    #[test]
    fn kill_cursors_ids_must_be_whole_and_counted() {
        let payload =
            |count: i32, extra: &[u8]| cat(&[&0i32.to_le_bytes(), &count.to_le_bytes(), &7i64.to_le_bytes(), extra]);
        assert_eq!(
            decode(frame(2007, &payload(2, &[]))).unwrap_err(),
            err(
                "OP_KILL_CURSORS.numberOfCursorIDs",
                20,
                DecodeErrorKind::CountMismatch { declared: 2, actual: 1 }
            )
        );
        assert_eq!(
            decode(frame(2007, &payload(1, &[1, 2, 3]))).unwrap_err(),
            err(
                "OP_KILL_CURSORS.cursorIDs",
                24,
                DecodeErrorKind::TrailingBytes { count: 3 }
            )
        );
    }

    #[test]
    fn names_must_be_terminated_utf8() {
        let unterminated = cat(&[&0u32.to_le_bytes(), b"db.c"]);
        assert_eq!(
            decode(frame(2002, &unterminated)).unwrap_err(),
            err("OP_INSERT.fullCollectionName", 20, DecodeErrorKind::UnterminatedString)
        );
        let bad_utf8 = cat(&[
            &0i32.to_le_bytes(),
            b"\xc3\x28\0",
            &0i32.to_le_bytes(),
            &0i64.to_le_bytes(),
        ]);
        assert_eq!(
            decode(frame(2005, &bad_utf8)).unwrap_err(),
            err("OP_GET_MORE.fullCollectionName", 20, DecodeErrorKind::InvalidUtf8)
        );
        assert_eq!(
            OpInsert::new(0, "a\0b", [rawdoc! {}]).unwrap_err(),
            EncodeError::InteriorNul("a\0b".to_owned())
        );
    }

    #[test]
    fn fixed_size_messages_reject_trailing_bytes() {
        let get_more = cat(&[
            &0i32.to_le_bytes(),
            b"db.c\0",
            &0i32.to_le_bytes(),
            &0i64.to_le_bytes(),
            &[9],
        ]);
        assert_eq!(
            decode(frame(2005, &get_more)).unwrap_err(),
            err(
                "OP_GET_MORE",
                16 + get_more.len() - 1,
                DecodeErrorKind::TrailingBytes { count: 1 }
            )
        );
    }
}
