//! Authenticating a new connection: runs the conversations of [`crate::protocol::auth`] over
//! it, starting speculatively inside the handshake when the server allows.

use std::sync::Arc;
use std::time::Duration;

use bson::{RawDocument, RawDocumentBuf};
use rand::RngCore;

use crate::driver::connection::Connection;
use crate::error::Error;
use crate::protocol::auth::{
    CLIENT_NONCE_LEN, ScramCache, ScramClient, ScramFinal, X509Client, negotiate_mechanism, speculative_mechanism,
};
use crate::protocol::crud::Command;
use crate::protocol::{AuthMechanism, Credential};

/// The first step of authentication, prepared before the handshake so that it can ride along
/// in `hello.speculativeAuthenticate`.
pub(crate) enum Speculative {
    Scram(ScramClient),
    X509(X509Client),
}

impl Speculative {
    /// The conversation to start speculatively for `credential`, if its mechanism allows.
    pub(crate) fn prepare(credential: &Credential) -> Result<Option<Speculative>, Error> {
        Ok(match speculative_mechanism(credential) {
            Some(AuthMechanism::MongoDbX509) => Some(Speculative::X509(X509Client::new(credential)?)),
            Some(mechanism) => Some(Speculative::Scram(ScramClient::new(&mechanism, credential, &nonce())?)),
            None => None,
        })
    }

    /// The document for `hello.speculativeAuthenticate`.
    pub(crate) fn document(&self) -> RawDocumentBuf {
        match self {
            Speculative::Scram(client) => client.speculative_authenticate(),
            Speculative::X509(client) => client.speculative_authenticate(),
        }
    }

    fn mechanism(&self) -> AuthMechanism {
        match self {
            Speculative::Scram(client) => client.mechanism().clone(),
            Speculative::X509(_) => AuthMechanism::MongoDbX509,
        }
    }
}

fn nonce() -> [u8; CLIENT_NONCE_LEN] {
    let mut bytes = [0; CLIENT_NONCE_LEN];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

async fn send(
    connection: &mut Connection,
    db: &str,
    body: RawDocumentBuf,
    timeout: Duration,
) -> Result<RawDocumentBuf, Error> {
    let reply = connection
        .round_trip(&Command::new(db, body).into_op_msg(), Some(timeout))
        .await?;
    Ok(reply.body().to_owned())
}

/// Authenticates `connection` after its handshake. `offered` is the reply's
/// `saslSupportedMechs`; `speculative_reply` its `speculativeAuthenticate`, which continues the
/// conversation `speculative` started.
pub(crate) async fn authenticate(
    connection: &mut Connection,
    credential: &Credential,
    offered: Option<&[String]>,
    speculative: Option<Speculative>,
    speculative_reply: Option<&RawDocument>,
    cache: &Arc<ScramCache>,
    timeout: Duration,
) -> Result<(), Error> {
    let mechanism = negotiate_mechanism(credential, offered)?;
    let resumed = match (speculative, speculative_reply) {
        (Some(speculative), Some(reply)) if speculative.mechanism() == mechanism => {
            Some((speculative, reply.to_owned()))
        }
        _ => None,
    };
    match mechanism {
        AuthMechanism::MongoDbX509 => {
            let (client, reply) = match resumed {
                Some((Speculative::X509(client), reply)) => (client, reply),
                _ => {
                    let client = X509Client::new(credential)?;
                    let reply = send(connection, client.source(), client.authenticate(), timeout).await?;
                    (client, reply)
                }
            };
            client.handle_reply(&reply)?;
        }
        _ => {
            let (client, first_reply) = match resumed {
                Some((Speculative::Scram(client), reply)) => (client, reply),
                _ => {
                    let client = ScramClient::new(&mechanism, credential, &nonce())?;
                    let reply = send(connection, client.source(), client.sasl_start(), timeout).await?;
                    (client, reply)
                }
            };
            let source = client.source().to_owned();
            // Deriving keys runs thousands of HMAC iterations (on a cache miss): keep it off
            // the async worker threads.
            let cache = cache.clone();
            let step = tokio::task::spawn_blocking(move || client.handle_server_first(&first_reply, &cache))
                .await
                .map_err(|e| Error::usage(format!("authentication task failed: {e}")))?;
            let (expect_final, continue_command) = step?;
            let final_reply = send(connection, &source, continue_command, timeout).await?;
            match expect_final.handle_server_final(&final_reply)? {
                ScramFinal::Done(_) => {}
                ScramFinal::EmptyExchange(expect_done, empty) => {
                    let done_reply = send(connection, &source, empty, timeout).await?;
                    expect_done.handle_done(&done_reply)?;
                }
            }
        }
    }
    Ok(())
}
