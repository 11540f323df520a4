//! One connection to one server: send a command, read its reply.
//!
//! The read loop is the mini-redis pattern: bytes accumulate in a `BytesMut`, the codec's
//! [`MessageDecoder`] cuts out whole messages, and each reply keeps the buffer it arrived in, so
//! a batch is never copied. A command is encoded into one buffer and written with one call.
//! Any I/O error, timeout or protocol violation leaves the connection `broken`: its reply
//! stream can no longer be trusted, and the pool drops it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use bson::RawDocument;
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::driver::stream::Stream;
use crate::error::{Error, ProtocolErrorKind, TransportError, TransportErrorKind};
use crate::protocol::handshake::HandshakeReply;
use crate::protocol::{ServerAddress, reply};
use crate::wire::{Body, Compressor, Message, MessageDecoder, OpMsg, SharedDocument, compress_message};

/// Request ids are unique across the process, which makes captures and logs easy to follow.
static NEXT_REQUEST_ID: AtomicI32 = AtomicI32::new(1);

/// Reads ask for at least this much room, so small replies and what follows them arrive in one
/// read.
const MIN_READ: usize = 64 * 1024;

/// Commands the OP_COMPRESSED specification says must never be compressed.
const UNCOMPRESSIBLE: [&str; 10] = [
    "hello",
    "isMaster",
    "ismaster",
    "saslStart",
    "saslContinue",
    "getnonce",
    "authenticate",
    "createUser",
    "updateUser",
    "copydbSaslStart",
];

pub(crate) fn next_request_id() -> i32 {
    // Wraps around after 2^31 requests; ids only need to be unique among requests in flight.
    NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed) & i32::MAX
}

/// A command reply: the OP_MSG body, still in the buffer it arrived in.
#[derive(Debug, Clone)]
pub struct Reply {
    msg: OpMsg,
    address: ServerAddress,
}

impl Reply {
    /// The reply document.
    pub fn body(&self) -> &RawDocument {
        self.msg.body()
    }

    /// The reply document, sharing the received buffer.
    pub fn body_shared(&self) -> SharedDocument {
        self.msg.body_shared()
    }

    /// The server that sent it.
    pub fn address(&self) -> &ServerAddress {
        &self.address
    }
}

/// What a connection needs to know about the server after the handshake.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSettings {
    pub(crate) compressor: Option<Compressor>,
    pub(crate) zlib_level: Option<i32>,
    pub(crate) socket_timeout: Option<Duration>,
}

/// An established connection.
#[derive(Debug)]
pub(crate) struct Connection {
    address: ServerAddress,
    stream: Stream,
    read_buf: BytesMut,
    write_buf: BytesMut,
    decoder: MessageDecoder,
    settings: ConnectionSettings,
    pub(crate) hello: Option<Arc<HandshakeReply>>,
    /// The pool generation this connection belongs to; a cleared pool drops older ones.
    pub(crate) generation: u32,
    broken: bool,
    pub(crate) last_used: Instant,
}

impl Connection {
    /// Wraps a connected stream; the handshake is run by the caller.
    pub(crate) fn new(address: ServerAddress, stream: Stream, socket_timeout: Option<Duration>) -> Connection {
        Connection {
            address,
            stream,
            read_buf: BytesMut::with_capacity(MIN_READ),
            write_buf: BytesMut::new(),
            decoder: MessageDecoder::default(),
            settings: ConnectionSettings {
                compressor: None,
                zlib_level: None,
                socket_timeout,
            },
            hello: None,
            generation: 0,
            broken: false,
            last_used: Instant::now(),
        }
    }

    /// The server this connection talks to.
    pub(crate) fn address(&self) -> &ServerAddress {
        &self.address
    }

    /// Whether the connection failed and must not be reused.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// Marks the connection as not to be reused: its peer sent something well framed but
    /// impossible, and a peer that broke the protocol once is not trusted with the next command.
    pub(crate) fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Records the handshake's outcome: message size limit and compressor.
    pub(crate) fn complete_handshake(&mut self, hello: HandshakeReply, zlib_level: Option<i32>) {
        self.decoder.set_max_message_size(hello.max_message_size);
        self.settings.compressor = hello.compressor;
        self.settings.zlib_level = zlib_level;
        self.hello = Some(Arc::new(hello));
    }

    /// The wire version the server reported, 0 before the handshake.
    #[cfg(test)]
    pub(crate) fn max_wire_version(&self) -> i32 {
        self.hello.as_ref().map_or(0, |h| h.max_wire_version)
    }

    /// Sends `msg` and reads its reply. `timeout` bounds the whole exchange; without one the
    /// socket timeout (if any) bounds each read and write.
    pub(crate) async fn round_trip(&mut self, msg: &OpMsg, timeout: Option<Duration>) -> Result<Reply, Error> {
        self.round_trip_as(next_request_id(), msg, timeout).await
    }

    /// [`Connection::round_trip`] with a request id chosen by the caller (for command monitoring).
    pub(crate) async fn round_trip_as(
        &mut self,
        request_id: i32,
        msg: &OpMsg,
        timeout: Option<Duration>,
    ) -> Result<Reply, Error> {
        if self.broken {
            return Err(self.transport(TransportErrorKind::Closed, "connection is broken".into()));
        }
        let limit = timeout.or(self.settings.socket_timeout);
        // Broken until the reply is read: if the caller drops this future mid-exchange, the
        // pool must not hand out a connection with a reply still in flight.
        self.broken = true;
        let exchange = self.exchange(request_id, msg);
        let result = match limit {
            Some(limit) => match tokio::time::timeout(limit, exchange).await {
                Ok(result) => result,
                Err(_) => Err(self.transport(
                    TransportErrorKind::Timeout,
                    format!("no reply within {} ms", limit.as_millis()),
                )),
            },
            None => exchange.await,
        };
        self.broken = result.is_err();
        self.last_used = Instant::now();
        result
    }

    /// Runs a command (a body that already carries `$db`) and turns `ok: 0` into a server error.
    #[cfg(test)]
    pub(crate) async fn command(&mut self, msg: &OpMsg, timeout: Option<Duration>) -> Result<Reply, Error> {
        self.command_as(next_request_id(), msg, timeout).await
    }

    /// [`Connection::command`] with a request id chosen by the caller.
    pub(crate) async fn command_as(
        &mut self,
        request_id: i32,
        msg: &OpMsg,
        timeout: Option<Duration>,
    ) -> Result<Reply, Error> {
        let reply = self.round_trip_as(request_id, msg, timeout).await?;
        reply::check(reply.body(), Some(&self.address))?;
        Ok(reply)
    }

    async fn exchange(&mut self, request_id: i32, msg: &OpMsg) -> Result<Reply, Error> {
        self.encode(request_id, msg)?;
        if let Err(e) = self.stream.write_all(&self.write_buf).await {
            return Err(TransportError::io(&self.address, "write", &e).into());
        }
        self.write_buf.clear();
        let message = self.read_message().await?;
        if message.response_to() != request_id {
            return Err(Error::protocol(
                "reply",
                ProtocolErrorKind::ResponseTo {
                    expected: request_id,
                    got: message.response_to(),
                },
            ));
        }
        match message.into_body() {
            Body::Msg(msg) => Ok(Reply {
                msg,
                address: self.address.clone(),
            }),
            other => Err(Error::protocol(
                "reply",
                ProtocolErrorKind::UnexpectedOpCode(other.op_code().name()),
            )),
        }
    }

    fn encode(&mut self, request_id: i32, msg: &OpMsg) -> Result<(), Error> {
        let encode_error = |e: crate::wire::EncodeError| Error::usage(format!("cannot encode command: {e}"));
        self.write_buf.clear();
        let compressor = self
            .settings
            .compressor
            .filter(|_| msg.command_name().is_some_and(|name| !UNCOMPRESSIBLE.contains(&name)));
        match compressor {
            None => Message::new(request_id, 0, Body::Msg(msg.clone()))
                .encode(&mut self.write_buf)
                .map_err(encode_error),
            Some(compressor) => {
                let mut plain = BytesMut::new();
                Message::new(request_id, 0, Body::Msg(msg.clone()))
                    .encode(&mut plain)
                    .map_err(encode_error)?;
                let level = self.settings.zlib_level.filter(|_| compressor == Compressor::Zlib);
                compress_message(&plain, compressor, level, &mut self.write_buf).map_err(encode_error)
            }
        }
    }

    async fn read_message(&mut self) -> Result<Message, Error> {
        loop {
            match self.decoder.decode(&mut self.read_buf) {
                Ok(Some(message)) => return Ok(message),
                Ok(None) => {}
                Err(e) => return Err(Error::protocol("reply", ProtocolErrorKind::Decode(e))),
            }
            // Once a header has arrived, room for the whole message at once: one allocation and
            // no copies as a 16 MB batch arrives. When the previous reply has been dropped (a
            // change stream keeps no slice of a consumed batch), `reserve` takes its buffer back
            // instead of allocating, so memory the kernel has already mapped is written again.
            // The declared length was checked against the maximum message size, and untouched
            // reserved pages are address space, not memory: a server that announces 48 MB and
            // sends 20 bytes still costs about 20 bytes of RSS.
            let missing = self.decoder.missing_bytes(&self.read_buf).unwrap_or(0);
            self.read_buf.reserve(MIN_READ.max(missing));
            match self.stream.read_buf(&mut self.read_buf).await {
                Ok(0) => {
                    return Err(self.transport(TransportErrorKind::Closed, "the server closed the connection".into()));
                }
                Ok(_) => {}
                Err(e) => return Err(TransportError::io(&self.address, "read", &e).into()),
            }
        }
    }

    fn transport(&self, kind: TransportErrorKind, message: String) -> Error {
        TransportError::new(kind, Some(self.address.clone()), message).into()
    }
}
