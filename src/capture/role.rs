//! Which end of a connection is the MongoDB server.
//!
//! The evidence, strongest first: the port the user named (`--server-port`); a reply seen on
//! this connection (OP_REPLY, OP_COMMANDREPLY, or an OP_MSG with a non-zero responseTo: only a
//! server sends those); the destination of the connection's SYN; MongoDB's default ports
//! (27017 for mongod and mongos, 27018 and 27019 for shard and config servers); and finally
//! the message itself (a message that is no reply comes from the client).

use super::item::Role;
use crate::wire::{Message, OpCode};

/// MongoDB's default listening ports.
pub(crate) const DEFAULT_PORTS: [u16; 3] = [27017, 27018, 27019];

/// Whether only a server sends messages like this one.
pub(crate) fn is_reply(message: &Message) -> bool {
    match message.op_code() {
        OpCode::Reply | OpCode::CommandReply => true,
        OpCode::Msg => message.response_to() != 0,
        _ => false,
    }
}

/// One endpoint of a connection and its port, if it has one.
pub(crate) struct Endpoint<'a, E> {
    pub(crate) id: &'a E,
    pub(crate) port: Option<u16>,
}

/// The evidence about one connection gathered so far.
#[derive(Debug, Clone)]
pub(crate) struct ServerEvidence<E> {
    syn_destination: Option<E>,
    reply_sender: Option<E>,
}

impl<E> Default for ServerEvidence<E> {
    fn default() -> ServerEvidence<E> {
        ServerEvidence {
            syn_destination: None,
            reply_sender: None,
        }
    }
}

impl<E: PartialEq + Clone> ServerEvidence<E> {
    /// A SYN without ACK went to `destination`: that is where the server listens.
    pub(crate) fn saw_syn(&mut self, destination: &E) {
        self.syn_destination = Some(destination.clone());
    }

    /// Who sent `message` from `from` to `to`, learning from it.
    pub(crate) fn sender(
        &mut self,
        from: Endpoint<'_, E>,
        to: Endpoint<'_, E>,
        server_port: Option<u16>,
        message: &Message,
    ) -> Role {
        if is_reply(message) {
            self.reply_sender = Some(from.id.clone());
        }
        let by_port = |ports: &[u16]| match (from.port, to.port) {
            (Some(f), Some(t)) if ports.contains(&f) && !ports.contains(&t) => Some(true),
            (Some(f), Some(t)) if ports.contains(&t) && !ports.contains(&f) => Some(false),
            _ => None,
        };
        let by_endpoint = |server: &Option<E>| match server {
            Some(s) if s == from.id => Some(true),
            Some(s) if s == to.id => Some(false),
            _ => None,
        };
        let from_server = server_port
            .and_then(|port| by_port(&[port]))
            .or_else(|| by_endpoint(&self.reply_sender))
            .or_else(|| by_endpoint(&self.syn_destination))
            .or_else(|| by_port(&DEFAULT_PORTS))
            .unwrap_or_else(|| is_reply(message));
        if from_server { Role::Server } else { Role::Client }
    }
}
