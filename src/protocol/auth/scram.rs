//! SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) as MongoDB runs them over `saslStart`
//! and `saslContinue`.
//!
//! ```text
//!  ScramClient ──sasl_start() / speculative_authenticate()──► server
//!      │ handle_server_first(reply)   checks nonce, salt, iterations; sends the proof
//!      ▼
//!  ScramServerFinal
//!      │ handle_server_final(reply)   verifies the server's signature (or reports its e=)
//!      ├── done: true ─────────────────────────────────────────────► ScramDone
//!      ▼ done: false (server without skipEmptyExchange): send an empty saslContinue
//!  ScramServerDone
//!      │ handle_done(reply)           the server must now say done
//!      ▼
//!  ScramDone
//! ```
//!
//! MongoDB's variations on the RFCs, all from the Authentication spec: user names are never
//! SASLprepped; SCRAM-SHA-1 hashes `hex(MD5("<user>:mongo:<password>"))` instead of the
//! password, without SASLprep; SCRAM-SHA-256 SASLpreps the password; no channel binding (the
//! client-first-message starts with `n,,`); at least 4096 iterations.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bson::raw::{RawBinaryRef, RawBsonRef, cstr};
use bson::spec::BinarySubtype;
use bson::{RawDocument, RawDocumentBuf, rawdoc};
use hmac::{EagerHash, Hmac, KeyInit, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::Sha256;

use super::cache::{CacheKey, ScramCache, ScramKeys};
use super::saslprep::saslprep;
use super::{AuthResult, Subject, auth_error, invalid_bson, reject_mechanism_properties};
use crate::protocol::{AuthMechanism, Credential, Password};

/// How many random bytes [`ScramClient::new`] takes for the client nonce (32 base64 characters
/// on the wire, as other MongoDB drivers send).
pub const CLIENT_NONCE_LEN: usize = 24;

/// The fewest iterations a server may ask for; fewer is refused, as the spec requires, so a
/// man in the middle cannot make the salted password cheap to brute-force.
pub const MIN_ITERATION_COUNT: u32 = 4096;

/// The hash a SCRAM mechanism runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScramHash {
    Sha1,
    Sha256,
}

impl ScramHash {
    /// `ClientKey` and `ServerKey` from `SaltedPassword := Hi(password, salt, i)`.
    fn derive_keys(self, password: &[u8], salt: &[u8], iterations: u32) -> ScramKeys {
        match self {
            ScramHash::Sha1 => derive_keys::<Sha1>(password, salt, iterations),
            ScramHash::Sha256 => derive_keys::<Sha256>(password, salt, iterations),
        }
    }

    /// `ClientProof := ClientKey XOR HMAC(H(ClientKey), AuthMessage)`.
    fn client_proof(self, client_key: &[u8], auth_message: &str) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => client_proof::<Sha1>(client_key, auth_message),
            ScramHash::Sha256 => client_proof::<Sha256>(client_key, auth_message),
        }
    }

    /// Whether `signature` is `HMAC(ServerKey, AuthMessage)`, compared in constant time.
    fn server_signature_matches(self, server_key: &[u8], auth_message: &str, signature: &[u8]) -> bool {
        match self {
            ScramHash::Sha1 => signature_matches::<Sha1>(server_key, auth_message, signature),
            ScramHash::Sha256 => signature_matches::<Sha256>(server_key, auth_message, signature),
        }
    }
}

/// HMAC keyed with `key`. RFC 2104 HMAC takes keys of any length (longer ones are hashed,
/// shorter ones padded), so the `hmac` crate's length check cannot fail.
fn mac<D: EagerHash>(key: &[u8]) -> Hmac<D> {
    Hmac::<D>::new_from_slice(key).expect("HMAC accepts keys of every length")
}

fn hmac<D: EagerHash>(key: &[u8], data: &[u8]) -> Vec<u8> {
    mac::<D>(key).chain_update(data).finalize().into_bytes().to_vec()
}

fn derive_keys<D: EagerHash>(password: &[u8], salt: &[u8], iterations: u32) -> ScramKeys {
    // Hi() is PBKDF2 with HMAC as the PRF and one block of output (RFC 5802 section 2.2).
    let mut salted_password = vec![0; <D as hmac::digest::Digest>::output_size()];
    pbkdf2::pbkdf2_hmac::<D>(password, salt, iterations, &mut salted_password);
    ScramKeys {
        client_key: hmac::<D>(&salted_password, b"Client Key"),
        server_key: hmac::<D>(&salted_password, b"Server Key"),
    }
}

fn client_proof<D: EagerHash>(client_key: &[u8], auth_message: &str) -> Vec<u8> {
    let stored_key = D::digest(client_key);
    let client_signature = hmac::<D>(&stored_key, auth_message.as_bytes());
    client_key
        .iter()
        .zip(client_signature)
        .map(|(key, signature)| key ^ signature)
        .collect()
}

fn signature_matches<D: EagerHash>(server_key: &[u8], auth_message: &str, signature: &[u8]) -> bool {
    mac::<D>(server_key)
        .chain_update(auth_message.as_bytes())
        .verify_slice(signature)
        .is_ok()
}

/// The first state of a SCRAM conversation: builds the `saslStart` (or its speculative form in
/// `hello`) and expects the server-first-message.
///
/// The builders borrow, so one state can serve the speculative attempt and then, if the server
/// ignored it, the plain `saslStart`; the handlers consume.
#[must_use = "a SCRAM conversation does nothing until its commands are sent"]
pub struct ScramClient {
    hash: ScramHash,
    subject: Subject,
    /// The prepared password: SASLprepped (SHA-256) or MongoDB's MD5 digest (SHA-1).
    password: Password,
    client_nonce: String,
    /// `n=<user>,r=<client nonce>`, part of the AuthMessage.
    client_first_bare: String,
}

impl ScramClient {
    /// Starts a conversation for `credential` with `mechanism` (SCRAM-SHA-1 or SCRAM-SHA-256).
    /// `nonce` must come from a cryptographically secure random generator; it is sent in
    /// base64. The password is prepared here, so a password SASLprep refuses fails now.
    ///
    /// The source database is the credential's, else `admin`.
    pub fn new(
        mechanism: &AuthMechanism,
        credential: &Credential,
        nonce: &[u8; CLIENT_NONCE_LEN],
    ) -> AuthResult<ScramClient> {
        let fail = |reason: &str| Box::new(auth_error(credential, mechanism, reason, None));
        let hash = match mechanism {
            AuthMechanism::ScramSha1 => ScramHash::Sha1,
            AuthMechanism::ScramSha256 => ScramHash::Sha256,
            _ => return Err(fail("not a SCRAM mechanism")),
        };
        reject_mechanism_properties(credential, mechanism)?;
        let username = match credential.username.as_deref() {
            Some(username) if !username.is_empty() => username,
            _ => return Err(fail("SCRAM needs a user name")),
        };
        let Some(password) = &credential.password else {
            return Err(fail("SCRAM needs a password"));
        };
        let prepared = match hash {
            ScramHash::Sha1 => mongodb_password_digest(username, password.expose()),
            ScramHash::Sha256 => match saslprep(password.expose()) {
                Ok(prepared) => prepared.into_owned(),
                Err(error) => {
                    return Err(fail(&format!(
                        "the password cannot be prepared with SASLprep (RFC 4013): {error}"
                    )));
                }
            },
        };
        Ok(ScramClient::from_parts(
            hash,
            Subject::new(credential, mechanism),
            Password::new(prepared),
            BASE64.encode(nonce),
        ))
    }

    /// The state for an already prepared password and a printable client nonce (also how the
    /// tests replay the RFC examples, whose nonces are not base64 of 24 bytes).
    fn from_parts(hash: ScramHash, subject: Subject, password: Password, client_nonce: String) -> ScramClient {
        let client_first_bare = format!("n={},r={client_nonce}", sasl_name(&subject.user));
        ScramClient {
            hash,
            subject,
            password,
            client_nonce,
            client_first_bare,
        }
    }

    /// The mechanism, SCRAM-SHA-1 or SCRAM-SHA-256.
    pub fn mechanism(&self) -> &AuthMechanism {
        &self.subject.mechanism
    }

    /// The authentication database, the `$db` of every command of the conversation.
    pub fn source(&self) -> &str {
        &self.subject.source
    }

    /// `{saslStart: 1, mechanism, payload, autoAuthorize: 1, options: {skipEmptyExchange: true}}`;
    /// the driver adds `$db` ([`ScramClient::source`]).
    pub fn sasl_start(&self) -> RawDocumentBuf {
        let client_first = format!("n,,{}", self.client_first_bare);
        let mut command = RawDocumentBuf::new();
        command.append(cstr!("saslStart"), 1);
        command.append(cstr!("mechanism"), self.subject.mechanism.name());
        command.append(cstr!("payload"), binary(client_first.as_bytes()));
        command.append(cstr!("autoAuthorize"), 1);
        command.append(cstr!("options"), rawdoc! { "skipEmptyExchange": true });
        command
    }

    /// The `speculativeAuthenticate` document for `hello`: the `saslStart` command plus `db`.
    /// If the `hello` reply carries a `speculativeAuthenticate` document, pass it to
    /// [`ScramClient::handle_server_first`] as the reply.
    pub fn speculative_authenticate(&self) -> RawDocumentBuf {
        let mut document = self.sasl_start();
        document.append(cstr!("db"), self.subject.source.as_str());
        document
    }

    /// Handles the reply to `saslStart` (or the `hello` reply's `speculativeAuthenticate`
    /// document): checks the server's nonce, salt and iteration count, derives the keys (or
    /// finds them in `cache`) and returns the next state with the `saslContinue` to send.
    ///
    /// Deriving the keys takes thousands of HMAC iterations on a cache miss; an async driver
    /// may want to call this off its reactor threads.
    pub fn handle_server_first(
        self,
        reply: &RawDocument,
        cache: &ScramCache,
    ) -> AuthResult<(ScramServerFinal, RawDocumentBuf)> {
        let subject = &self.subject;
        subject.check_ok(reply)?;
        let conversation_id = ConversationId::read(subject, reply)?;
        if read_done(subject, reply)? {
            return Err(subject.error("the server ended the conversation before proving it knows the password"));
        }
        let server_first = read_text_payload(subject, reply, "server-first-message")?;
        let ServerFirst {
            nonce,
            salt,
            iterations,
        } = parse_server_first(server_first, &self.client_nonce).map_err(|reason| subject.error(reason))?;

        let password = self.password.expose().as_bytes();
        let key = CacheKey::new(self.hash, password, &salt, iterations);
        let keys = cache.get_or_derive(key, || self.hash.derive_keys(password, &salt, iterations));

        // c=biws is base64("n,,"): no channel binding, no authorization identity.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let proof = self.hash.client_proof(&keys.client_key, &auth_message);
        let client_final = format!("{without_proof},p={}", BASE64.encode(proof));

        let mut command = RawDocumentBuf::new();
        command.append(cstr!("saslContinue"), 1);
        conversation_id.append_to(&mut command);
        command.append(cstr!("payload"), binary(client_final.as_bytes()));
        let next = ScramServerFinal {
            hash: self.hash,
            subject: self.subject,
            conversation_id,
            server_key: keys.server_key,
            auth_message,
        };
        Ok((next, command))
    }
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("subject", &self.subject)
            .field("password", &self.password)
            .finish_non_exhaustive()
    }
}

/// Expects the server-final-message: the server's signature, which proves it knows the
/// password (or an `e=` error).
#[must_use = "the server has not proved itself until its final message is handled"]
pub struct ScramServerFinal {
    hash: ScramHash,
    subject: Subject,
    conversation_id: ConversationId,
    server_key: Vec<u8>,
    auth_message: String,
}

impl ScramServerFinal {
    /// Handles the reply to the `saslContinue` that carried the proof. Succeeds only once the
    /// server's signature is verified; if the server is not `done` yet (servers that ignore
    /// `skipEmptyExchange`), says so with the empty `saslContinue` to send next.
    pub fn handle_server_final(self, reply: &RawDocument) -> AuthResult<ScramFinal> {
        let subject = &self.subject;
        subject.check_ok(reply)?;
        self.conversation_id.check(subject, reply)?;
        let server_final = read_text_payload(subject, reply, "server-final-message")?;
        let first = server_final.split(',').next().unwrap_or_default();
        if let Some(error) = first.strip_prefix("e=") {
            return Err(subject.error(format!("the server reported a SCRAM error: {error}")));
        }
        let Some(signature) = first.strip_prefix("v=") else {
            return Err(subject.error("server-final-message has neither the server's signature (v=) nor an error (e=)"));
        };
        let Ok(signature) = BASE64.decode(signature) else {
            return Err(subject.error("the server's signature (v=) is not valid base64"));
        };
        if !self
            .hash
            .server_signature_matches(&self.server_key, &self.auth_message, &signature)
        {
            return Err(subject.error(
                "the server signature does not match: the server did not prove it knows the \
                 password",
            ));
        }
        if read_done(subject, reply)? {
            return Ok(ScramFinal::Done(ScramDone {
                mechanism: self.subject.mechanism,
            }));
        }
        let mut command = RawDocumentBuf::new();
        command.append(cstr!("saslContinue"), 1);
        self.conversation_id.append_to(&mut command);
        command.append(cstr!("payload"), binary(&[]));
        let next = ScramServerDone {
            subject: self.subject,
            conversation_id: self.conversation_id,
        };
        Ok(ScramFinal::EmptyExchange(next, command))
    }
}

impl fmt::Debug for ScramServerFinal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServerFinal")
            .field("subject", &self.subject)
            .field("conversation_id", &self.conversation_id)
            .finish_non_exhaustive()
    }
}

/// What follows a verified server signature.
#[derive(Debug)]
#[must_use]
pub enum ScramFinal {
    /// Authenticated; the server proved itself too.
    Done(ScramDone),
    /// The server proved itself but is not done: servers that ignore `skipEmptyExchange` (the
    /// spec's backwards-compatibility conversation) need one more `saslContinue` with an empty
    /// payload. Send the command and pass its reply to [`ScramServerDone::handle_done`].
    EmptyExchange(ScramServerDone, RawDocumentBuf),
}

/// Expects the reply to the empty `saslContinue`: the server must now say `done`.
#[derive(Debug)]
#[must_use = "the conversation is not over until the server says done"]
pub struct ScramServerDone {
    subject: Subject,
    conversation_id: ConversationId,
}

impl ScramServerDone {
    /// Handles the reply to the empty `saslContinue`.
    pub fn handle_done(self, reply: &RawDocument) -> AuthResult<ScramDone> {
        let subject = &self.subject;
        subject.check_ok(reply)?;
        self.conversation_id.check(subject, reply)?;
        if !read_done(subject, reply)? {
            return Err(subject.error(
                "the server is still not done after the empty exchange that should end the \
                 conversation",
            ));
        }
        match reply.get("payload") {
            Ok(None) => {}
            Ok(Some(RawBsonRef::Binary(payload))) if payload.bytes.is_empty() => {}
            Ok(Some(RawBsonRef::Binary(_))) => {
                return Err(subject.error("the server sent more data after its final message (payload not empty)"));
            }
            Ok(Some(other)) => return Err(subject.error(not_binary(other))),
            Err(error) => return Err(subject.error(invalid_bson(&error))),
        }
        Ok(ScramDone {
            mechanism: self.subject.mechanism,
        })
    }
}

/// A finished SCRAM conversation: the server accepted the client's proof and proved that it
/// knows the password too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramDone {
    mechanism: AuthMechanism,
}

impl ScramDone {
    /// The mechanism that authenticated.
    pub fn mechanism(&self) -> &AuthMechanism {
        &self.mechanism
    }
}

/// The server's `conversationId`, echoed back as the type it came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConversationId {
    Int32(i32),
    Int64(i64),
}

impl ConversationId {
    fn read(subject: &Subject, reply: &RawDocument) -> AuthResult<ConversationId> {
        match reply.get("conversationId") {
            Ok(Some(RawBsonRef::Int32(id))) => Ok(ConversationId::Int32(id)),
            Ok(Some(RawBsonRef::Int64(id))) => Ok(ConversationId::Int64(id)),
            Ok(Some(other)) => Err(subject.error(format!(
                "the reply's conversationId is {:?}, not an integer",
                other.element_type()
            ))),
            Ok(None) => Err(subject.error("the reply has no conversationId")),
            Err(error) => Err(subject.error(invalid_bson(&error))),
        }
    }

    fn value(self) -> i64 {
        match self {
            ConversationId::Int32(id) => i64::from(id),
            ConversationId::Int64(id) => id,
        }
    }

    /// Every reply of a conversation must name the conversation it continues.
    fn check(self, subject: &Subject, reply: &RawDocument) -> AuthResult<()> {
        let got = ConversationId::read(subject, reply)?;
        if got.value() == self.value() {
            Ok(())
        } else {
            Err(subject.error(format!(
                "the reply is for conversation {}, not {}",
                got.value(),
                self.value()
            )))
        }
    }

    fn append_to(self, command: &mut RawDocumentBuf) {
        match self {
            ConversationId::Int32(id) => command.append(cstr!("conversationId"), id),
            ConversationId::Int64(id) => command.append(cstr!("conversationId"), id),
        }
    }
}

fn read_done(subject: &Subject, reply: &RawDocument) -> AuthResult<bool> {
    match reply.get("done") {
        Ok(Some(RawBsonRef::Boolean(done))) => Ok(done),
        Ok(Some(other)) => Err(subject.error(format!("the reply's done is {:?}, not a boolean", other.element_type()))),
        Ok(None) => Err(subject.error("the reply has no done field")),
        Err(error) => Err(subject.error(invalid_bson(&error))),
    }
}

/// The reply's binary `payload` as the text of a SCRAM message.
fn read_text_payload<'a>(subject: &Subject, reply: &'a RawDocument, what: &str) -> AuthResult<&'a str> {
    let payload = match reply.get("payload") {
        Ok(Some(RawBsonRef::Binary(payload))) => payload.bytes,
        Ok(Some(other)) => return Err(subject.error(not_binary(other))),
        Ok(None) => return Err(subject.error("the reply has no payload")),
        Err(error) => return Err(subject.error(invalid_bson(&error))),
    };
    std::str::from_utf8(payload).map_err(|_| subject.error(format!("the {what} is not UTF-8")))
}

fn not_binary(payload: RawBsonRef<'_>) -> String {
    format!("the reply's payload is {:?}, not binary data", payload.element_type())
}

fn binary(bytes: &[u8]) -> RawBinaryRef<'_> {
    RawBinaryRef {
        subtype: BinarySubtype::Generic,
        bytes,
    }
}

/// What the client takes from a server-first-message.
#[derive(Debug, PartialEq, Eq)]
struct ServerFirst<'a> {
    /// The client nonce followed by the server's.
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: u32,
}

/// Parses and checks `r=<nonce>,s=<salt>,i=<iterations>[,<extensions>]` (RFC 5802 section 7).
fn parse_server_first<'a>(message: &'a str, client_nonce: &str) -> Result<ServerFirst<'a>, String> {
    let mut attributes = message.split(',');
    let first = attributes.next().unwrap_or_default();
    if let Some(error) = first.strip_prefix("e=") {
        return Err(format!("the server reported a SCRAM error: {error}"));
    }
    if first.starts_with("m=") {
        return Err("the server requires a SCRAM extension (m=) that mongowire does not support".into());
    }
    let nonce = attribute(Some(first), 'r', "the nonce")?;
    let salt = attribute(attributes.next(), 's', "the salt")?;
    let iterations = attribute(attributes.next(), 'i', "the iteration count")?;
    // Any further attributes are extensions, which RFC 5802 tells clients to ignore.

    if !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("the server's nonce has characters SCRAM does not allow".into());
    }
    match nonce.strip_prefix(client_nonce) {
        Some(server_part) if !server_part.is_empty() => {}
        Some(_) => return Err("the server's nonce adds nothing to the client nonce".into()),
        None => return Err("the server's nonce does not start with the client nonce".into()),
    }
    let Ok(salt) = BASE64.decode(salt) else {
        return Err("the salt is not valid base64".into());
    };
    if salt.is_empty() {
        return Err("the salt is empty".into());
    }
    let iterations = match iterations.parse::<u32>() {
        Ok(count) if iterations.bytes().all(|b| b.is_ascii_digit()) => count,
        _ => {
            return Err(format!("the iteration count {iterations:?} is not a number"));
        }
    };
    if iterations < MIN_ITERATION_COUNT {
        return Err(format!(
            "the server asked for {iterations} iterations, fewer than the minimum of \
             {MIN_ITERATION_COUNT}"
        ));
    }
    Ok(ServerFirst {
        nonce,
        salt,
        iterations,
    })
}

/// The value of `<name>=<value>`, or why `part` is not that attribute.
fn attribute<'a>(part: Option<&'a str>, name: char, what: &str) -> Result<&'a str, String> {
    part.and_then(|part| part.strip_prefix(name))
        .and_then(|rest| rest.strip_prefix('='))
        .ok_or_else(|| format!("the server-first-message lacks {what} ({name}=) where expected"))
}

/// The user name as a SCRAM `saslname`: `=` and `,` escaped as `=3D` and `=2C`.
fn sasl_name(username: &str) -> String {
    username.replace('=', "=3D").replace(',', "=2C")
}

/// What MongoDB's SCRAM-SHA-1 uses as the password: `hex(MD5("<user>:mongo:<password>"))`,
/// lowercase, with neither part SASLprepped.
fn mongodb_password_digest(username: &str, password: &str) -> String {
    use md5::Digest;
    let digest = Md5::new()
        .chain_update(username)
        .chain_update(":mongo:")
        .chain_update(password)
        .finalize();
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use bson::{Binary, rawdoc};
    use hmac::digest::Digest;

    use super::*;

    /// Shared by the tests that are about something other than caching, so each derivation
    /// (thousands of HMAC iterations in an unoptimized build) happens once.
    static CACHE: LazyLock<ScramCache> = LazyLock::new(ScramCache::default);

    const SALT: &[u8] = b"mongowire-test-salt";

    // ----- an independent server: the RFC 5802 formulas, written out again -----

    fn t_hmac(hash: ScramHash, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<D: EagerHash>(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).unwrap();
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        match hash {
            ScramHash::Sha1 => run::<Sha1>(key, data),
            ScramHash::Sha256 => run::<Sha256>(key, data),
        }
    }

    fn t_hash(hash: ScramHash, data: &[u8]) -> Vec<u8> {
        match hash {
            ScramHash::Sha1 => Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    /// Hi(str, salt, i) as RFC 5802 section 2.2 defines it, one HMAC at a time.
    fn t_hi(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut u = t_hmac(hash, password, &[salt, &1_u32.to_be_bytes()].concat());
        let mut result = u.clone();
        for _ in 1..iterations {
            u = t_hmac(hash, password, &u);
            result.iter_mut().zip(&u).for_each(|(r, u)| *r ^= u);
        }
        result
    }

    /// What a server stores for a user (RFC 5802 section 3): StoredKey and ServerKey.
    struct StoredUser {
        hash: ScramHash,
        name: String,
        iterations: u32,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
    }

    impl StoredUser {
        /// `server_password` is what the server derives from: the SASLprepped password for
        /// SHA-256, MongoDB's MD5 digest for SHA-1.
        fn new(hash: ScramHash, name: &str, server_password: &str, iterations: u32) -> StoredUser {
            let salted = t_hi(hash, server_password.as_bytes(), SALT, iterations);
            let client_key = t_hmac(hash, &salted, b"Client Key");
            StoredUser {
                hash,
                name: name.to_owned(),
                iterations,
                stored_key: t_hash(hash, &client_key),
                server_key: t_hmac(hash, &salted, b"Server Key"),
            }
        }

        fn sha1(name: &str, password: &str) -> StoredUser {
            let digest = Md5::digest(format!("{name}:mongo:{password}"));
            StoredUser::new(ScramHash::Sha1, name, &hex::encode(digest), 4096)
        }

        fn sha256(name: &str, prepared_password: &str) -> StoredUser {
            StoredUser::new(ScramHash::Sha256, name, prepared_password, 4096)
        }
    }

    /// A scripted server for one conversation: checks what the client sends the way mongod
    /// would, and answers.
    struct Server<'a> {
        user: &'a StoredUser,
        skip_empty_exchange: bool,
        client_first_bare: String,
        server_first: String,
    }

    impl Server<'_> {
        fn new(user: &StoredUser) -> Server<'_> {
            Server {
                user,
                skip_empty_exchange: true,
                client_first_bare: String::new(),
                server_first: String::new(),
            }
        }

        fn sasl_start(&mut self, command: &RawDocument) -> RawDocumentBuf {
            let mechanism = match self.user.hash {
                ScramHash::Sha1 => "SCRAM-SHA-1",
                ScramHash::Sha256 => "SCRAM-SHA-256",
            };
            assert_eq!(command.get_i32("saslStart").unwrap(), 1);
            assert_eq!(command.get_str("mechanism").unwrap(), mechanism);
            assert_eq!(command.get_i32("autoAuthorize").unwrap(), 1);
            let options = command.get_document("options").unwrap();
            assert!(options.get_bool("skipEmptyExchange").unwrap());
            let payload = payload_text(command);
            let bare = payload.strip_prefix("n,,").expect("no channel binding");
            let client_nonce = bare
                .strip_prefix(&format!("n={},r=", sasl_name(&self.user.name)))
                .expect("the raw user name");
            self.client_first_bare = bare.to_owned();
            self.server_first = format!(
                "r={client_nonce}+srv/nonce,s={},i={}",
                BASE64.encode(SALT),
                self.user.iterations
            );
            reply(1, false, self.server_first.as_bytes())
        }

        fn sasl_continue(&mut self, command: &RawDocument) -> RawDocumentBuf {
            assert_eq!(command.get_i32("saslContinue").unwrap(), 1);
            assert_eq!(command.get_i32("conversationId").unwrap(), 1);
            let payload = payload_text(command);
            let (without_proof, proof) = payload.split_once(",p=").unwrap();
            let nonce = self.server_first.split(',').next().unwrap();
            assert_eq!(without_proof, format!("c=biws,{nonce}"));
            let auth_message = format!("{},{},{without_proof}", self.client_first_bare, self.server_first);
            // The server's check: recover ClientKey from the proof, compare its hash.
            let hash = self.user.hash;
            let signature = t_hmac(hash, &self.user.stored_key, auth_message.as_bytes());
            let client_key: Vec<u8> = BASE64
                .decode(proof)
                .unwrap()
                .iter()
                .zip(signature)
                .map(|(p, s)| p ^ s)
                .collect();
            if t_hash(hash, &client_key) != self.user.stored_key {
                return rawdoc! {
                    "ok": 0.0,
                    "errmsg": "Authentication failed.",
                    "code": 18,
                    "codeName": "AuthenticationFailed",
                };
            }
            let verifier = t_hmac(hash, &self.user.server_key, auth_message.as_bytes());
            let server_final = format!("v={}", BASE64.encode(verifier));
            reply(1, self.skip_empty_exchange, server_final.as_bytes())
        }
    }

    fn payload_text(command: &RawDocument) -> String {
        let payload = command.get_binary("payload").unwrap();
        assert_eq!(payload.subtype, BinarySubtype::Generic);
        String::from_utf8(payload.bytes.to_vec()).unwrap()
    }

    fn reply(conversation_id: i32, done: bool, payload: &[u8]) -> RawDocumentBuf {
        rawdoc! {
            "conversationId": conversation_id,
            "done": done,
            "payload": Binary { subtype: BinarySubtype::Generic, bytes: payload.to_vec() },
            "ok": 1.0,
        }
    }

    fn credential(name: &str, password: &str) -> Credential {
        Credential {
            username: Some(name.to_owned()),
            password: Some(Password::new(password)),
            ..Credential::default()
        }
    }

    /// Runs a whole conversation of `client` against `server`.
    fn converse(client: ScramClient, server: &mut Server<'_>, cache: &ScramCache) -> AuthResult<ScramDone> {
        let first = server.sasl_start(&client.sasl_start());
        let (expect_final, sasl_continue) = client.handle_server_first(&first, cache)?;
        let last = server.sasl_continue(&sasl_continue);
        match expect_final.handle_server_final(&last)? {
            ScramFinal::Done(done) => Ok(done),
            ScramFinal::EmptyExchange(expect_done, command) => {
                let empty = Binary {
                    subtype: BinarySubtype::Generic,
                    bytes: Vec::new(),
                };
                assert_eq!(
                    command,
                    rawdoc! { "saslContinue": 1, "conversationId": 1, "payload": empty }
                );
                expect_done.handle_done(&reply(1, true, b""))
            }
        }
    }

    fn client(mechanism: AuthMechanism, name: &str, password: &str, nonce: u8) -> ScramClient {
        ScramClient::new(&mechanism, &credential(name, password), &[nonce; 24]).unwrap()
    }

    // ----- whole conversations -----

    #[test]
    fn sha1_conversation() {
        let user = StoredUser::sha1("user", "pencil");
        let client = client(AuthMechanism::ScramSha1, "user", "pencil", 1);
        assert_eq!(client.source(), "admin");
        let done = converse(client, &mut Server::new(&user), &CACHE).unwrap();
        assert_eq!(done.mechanism(), &AuthMechanism::ScramSha1);
    }

    #[test]
    fn sha256_conversation_with_the_extra_empty_exchange() {
        let user = StoredUser::sha256("user", "pencil");
        let mut server = Server::new(&user);
        server.skip_empty_exchange = false;
        let client = client(AuthMechanism::ScramSha256, "user", "pencil", 2);
        let done = converse(client, &mut server, &CACHE).unwrap();
        assert_eq!(done.mechanism(), &AuthMechanism::ScramSha256);
    }

    #[test]
    fn wrong_password_is_refused_by_the_server() {
        let user = StoredUser::sha256("user", "pencil");
        let client = client(AuthMechanism::ScramSha256, "user", "pen", 3);
        let error = converse(client, &mut Server::new(&user), &CACHE).unwrap_err();
        assert_eq!(error.reason, "the server refused: Authentication failed.");
        assert_eq!(error.server_error.map(|e| e.code), Some(18));
    }

    /// RFC 5802 section 5, byte for byte (SHA-1 over the plain password, as the RFC has it).
    #[test]
    fn rfc5802_example() {
        let subject = Subject::new(&credential("user", ""), &AuthMechanism::ScramSha1);
        let client = ScramClient::from_parts(
            ScramHash::Sha1,
            subject,
            Password::new("pencil"),
            "fyko+d2lbbFgONRv9qkxdawL".into(),
        );
        assert_eq!(
            payload_text(&client.sasl_start()),
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
        );
        let server_first = b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
        let (expect_final, command) = client
            .handle_server_first(&reply(1, false, server_first), &ScramCache::default())
            .unwrap();
        assert_eq!(
            payload_text(&command),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        let server_final = reply(1, true, b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
        assert!(matches!(
            expect_final.handle_server_final(&server_final),
            Ok(ScramFinal::Done(_))
        ));
    }

    /// RFC 7677 section 3, byte for byte.
    #[test]
    fn rfc7677_example() {
        let subject = Subject::new(&credential("user", ""), &AuthMechanism::ScramSha256);
        let client = ScramClient::from_parts(
            ScramHash::Sha256,
            subject,
            Password::new("pencil"),
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(payload_text(&client.sasl_start()), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let (expect_final, command) = client
            .handle_server_first(&reply(1, false, server_first), &ScramCache::default())
            .unwrap();
        assert_eq!(
            payload_text(&command),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let server_final = reply(1, true, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        assert!(matches!(
            expect_final.handle_server_final(&server_final),
            Ok(ScramFinal::Done(_))
        ));
    }

    /// The `hello` reply's `speculativeAuthenticate` document has no `ok` and goes where the
    /// `saslStart` reply would.
    #[test]
    fn speculative_authentication() {
        let user = StoredUser::sha256("user", "pencil");
        let mut server = Server::new(&user);
        let credential = Credential {
            source: Some("app".into()),
            ..credential("user", "pencil")
        };
        let client = ScramClient::new(&AuthMechanism::ScramSha256, &credential, &[4; 24]).unwrap();
        let speculative = client.speculative_authenticate();
        assert_eq!(speculative.get_str("db").unwrap(), "app");
        let mut as_sasl_start = client.sasl_start();
        as_sasl_start.append(cstr!("db"), "app");
        assert_eq!(speculative, as_sasl_start);

        let mut in_hello = server.sasl_start(&speculative);
        in_hello = in_hello
            .iter()
            .filter_map(Result::ok)
            .filter(|(k, _)| *k != "ok")
            .collect();
        assert_eq!(in_hello.get("ok").unwrap(), None);
        let (expect_final, command) = client.handle_server_first(&in_hello, &CACHE).unwrap();
        let last = server.sasl_continue(&command);
        assert!(matches!(
            expect_final.handle_server_final(&last),
            Ok(ScramFinal::Done(_))
        ));
    }

    #[test]
    fn sasl_start_command() {
        let client = client(AuthMechanism::ScramSha256, "a,b=c", "pencil", 0xff);
        let client_first = format!("n,,n=a=2Cb=3Dc,r={}", "/".repeat(32));
        let expected = rawdoc! {
            "saslStart": 1,
            "mechanism": "SCRAM-SHA-256",
            "payload": Binary { subtype: BinarySubtype::Generic, bytes: client_first.into_bytes() },
            "autoAuthorize": 1,
            "options": { "skipEmptyExchange": true },
        };
        assert_eq!(client.sasl_start(), expected);
        assert_eq!(client.mechanism(), &AuthMechanism::ScramSha256);
    }

    #[test]
    fn states_can_move_between_threads() {
        fn send<T: Send + Sync>() {}
        send::<ScramClient>();
        send::<ScramServerFinal>();
        send::<ScramFinal>();
        send::<ScramServerDone>();
        send::<ScramCache>();
    }

    // ----- the cache -----

    /// A conversation takes its keys from the cache when they are there: seed the cache with
    /// the keys of the right password under the entry of a wrong one, and the wrong password
    /// authenticates. Nothing was derived.
    #[test]
    fn cache_hit_skips_the_derivation() {
        let user = StoredUser::sha256("user", "pencil");
        let cache = ScramCache::default();
        let salted = t_hi(ScramHash::Sha256, b"pencil", SALT, 4096);
        let right_keys = ScramKeys {
            client_key: t_hmac(ScramHash::Sha256, &salted, b"Client Key"),
            server_key: t_hmac(ScramHash::Sha256, &salted, b"Server Key"),
        };
        let wrong = CacheKey::new(ScramHash::Sha256, b"not the password", SALT, 4096);
        cache.get_or_derive(wrong, || right_keys);

        let client = client(AuthMechanism::ScramSha256, "user", "not the password", 5);
        assert!(converse(client, &mut Server::new(&user), &cache).is_ok());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_second_connection_reuses_the_entry() {
        let user = StoredUser::sha1("user", "pencil");
        let cache = ScramCache::default();
        for nonce in [6, 7] {
            let client = client(AuthMechanism::ScramSha1, "user", "pencil", nonce);
            assert!(converse(client, &mut Server::new(&user), &cache).is_ok());
            assert_eq!(cache.len(), 1);
        }
    }

    // ----- SASLprep -----

    /// The Authentication spec's SASLprep prose cases: SCRAM-SHA-256 users created with "IX"
    /// and with U+2163 (ROMAN NUMERAL FOUR, which the server prepares to "IV") accept every
    /// form of their password; the user name U+2168 goes out unprepared.
    #[test]
    fn sha256_passwords_are_saslprepped() {
        let ix = StoredUser::sha256("IX", "IX");
        for password in ["IX", "I\u{00AD}X"] {
            let client = client(AuthMechanism::ScramSha256, "IX", password, 8);
            assert!(converse(client, &mut Server::new(&ix), &CACHE).is_ok(), "{password:?}");
        }
        let nine = StoredUser::sha256("\u{2168}", "IV");
        for password in ["IV", "I\u{00AD}V", "\u{2163}"] {
            let client = client(AuthMechanism::ScramSha256, "\u{2168}", password, 9);
            assert!(
                converse(client, &mut Server::new(&nine), &CACHE).is_ok(),
                "{password:?}"
            );
        }
    }

    /// SCRAM-SHA-1 digests the password as given: a soft hyphen is part of it.
    #[test]
    fn sha1_passwords_are_not_saslprepped() {
        let user = StoredUser::sha1("IX", "IX");
        let client = client(AuthMechanism::ScramSha1, "IX", "I\u{00AD}X", 10);
        let error = converse(client, &mut Server::new(&user), &CACHE).unwrap_err();
        assert_eq!(error.server_error.map(|e| e.code), Some(18));
        assert_eq!(
            mongodb_password_digest("user", "pencil"),
            hex::encode(Md5::digest("user:mongo:pencil"))
        );
    }

    #[test]
    fn a_password_saslprep_refuses_fails_early_without_showing_it() {
        for password in ["s3cr3t\u{0007}pw", "s3cr3t\u{E000}pw", "\u{0627}s3cr3t-pw"] {
            let credential = credential("user", password);
            let error = ScramClient::new(&AuthMechanism::ScramSha256, &credential, &[0; 24]).unwrap_err();
            assert!(error.reason.contains("SASLprep"), "{error}");
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("s3cr3t"), "{shown}");
            // SCRAM-SHA-1 does not SASLprep, so the same password is fine there.
            assert!(ScramClient::new(&AuthMechanism::ScramSha1, &credential, &[0; 24]).is_ok());
        }
    }

    // ----- credentials -----

    #[test]
    fn credentials_scram_cannot_use() {
        let nonce = [0; 24];
        let cases = [
            (
                AuthMechanism::MongoDbX509,
                credential("user", "pw"),
                "not a SCRAM mechanism",
            ),
            (
                AuthMechanism::ScramSha256,
                Credential {
                    username: None,
                    ..credential("", "pw")
                },
                "needs a user name",
            ),
            (AuthMechanism::ScramSha256, credential("", "pw"), "needs a user name"),
            (
                AuthMechanism::ScramSha1,
                Credential {
                    password: None,
                    ..credential("user", "")
                },
                "needs a password",
            ),
        ];
        for (mechanism, credential, reason) in cases {
            let error = ScramClient::new(&mechanism, &credential, &nonce).unwrap_err();
            assert!(error.reason.contains(reason), "{error}");
        }
        let mut with_properties = credential("user", "pw");
        with_properties
            .mechanism_properties
            .insert("CANONICALIZE_HOST_NAME".into(), "true".into());
        assert!(ScramClient::new(&AuthMechanism::ScramSha1, &with_properties, &nonce).is_err());
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let user = StoredUser::sha256("user", "s3cr3t-pw");
        let mut server = Server::new(&user);
        server.skip_empty_exchange = false;
        let client = client(AuthMechanism::ScramSha256, "user", "s3cr3t-pw", 11);
        let mut shown = format!("{client:?}");
        let first = server.sasl_start(&client.sasl_start());
        let (expect_final, command) = client.handle_server_first(&first, &CACHE).unwrap();
        shown += &format!("{expect_final:?}");
        let outcome = expect_final
            .handle_server_final(&server.sasl_continue(&command))
            .unwrap();
        shown += &format!("{outcome:?}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(shown.contains("user") && shown.contains("<redacted>"), "{shown}");
    }

    // ----- what the server sends, checked -----

    const NONCE: &str = "fixedClientNonce";

    fn fixed_client() -> ScramClient {
        let subject = Subject::new(&credential("user", ""), &AuthMechanism::ScramSha256);
        ScramClient::from_parts(ScramHash::Sha256, subject, Password::new("pencil"), NONCE.into())
    }

    fn server_first_error(reply: &RawDocument) -> String {
        fixed_client()
            .handle_server_first(reply, &CACHE)
            .map(|_| ())
            .unwrap_err()
            .reason
    }

    fn first_message(message: &str) -> String {
        server_first_error(&reply(1, false, message.as_bytes()))
    }

    fn salted(nonce: &str, salt: &str, iterations: &str) -> String {
        first_message(&format!("r={nonce},s={salt},i={iterations}"))
    }

    #[test]
    fn the_server_nonce_must_extend_the_client_nonce() {
        let salt = BASE64.encode(SALT);
        assert!(salted("fixedClientNoncf+srv", &salt, "4096").contains("does not start with"));
        assert!(salted("someoneElse+srv", &salt, "4096").contains("does not start with"));
        assert!(salted(NONCE, &salt, "4096").contains("adds nothing"));
        assert!(salted("fixedClientNonce\u{7f}", &salt, "4096").contains("does not allow"));
        assert!(salted("fixedClientNonce\u{e9}", &salt, "4096").contains("does not allow"));
    }

    #[test]
    fn iteration_counts_below_4096_or_not_numbers_are_refused() {
        let nonce = format!("{NONCE}srv");
        let salt = BASE64.encode(SALT);
        let low = salted(&nonce, &salt, "4095");
        assert_eq!(
            low,
            "the server asked for 4095 iterations, fewer than the minimum of 4096"
        );
        for count in ["", "-4096", "+4096", "4096.0", "0x1000", "99999999999", " 4096"] {
            assert!(salted(&nonce, &salt, count).contains("is not a number"), "{count:?}");
        }
    }

    #[test]
    fn salts_must_be_base64() {
        let nonce = format!("{NONCE}srv");
        assert_eq!(salted(&nonce, "not*base64", "4096"), "the salt is not valid base64");
        assert_eq!(salted(&nonce, "c2FsdA", "4096"), "the salt is not valid base64"); // unpadded
        assert_eq!(salted(&nonce, "", "4096"), "the salt is empty");
    }

    #[test]
    fn attributes_must_come_as_rfc5802_orders_them() {
        let nonce = format!("{NONCE}srv");
        let salt = BASE64.encode(SALT);
        let cases = [
            (format!("s={salt},r={nonce},i=4096"), "lacks the nonce (r=)"),
            (format!("r={nonce},i=4096"), "lacks the salt (s=)"),
            (format!("r={nonce},s={salt}"), "lacks the iteration count (i=)"),
            (format!("r={nonce},s={salt},i4096"), "lacks the iteration count (i=)"),
            (String::new(), "lacks the nonce (r=)"),
            (format!("m=ext,r={nonce},s={salt},i=4096"), "SCRAM extension (m=)"),
            ("e=unknown-user".to_owned(), "reported a SCRAM error: unknown-user"),
        ];
        for (message, reason) in cases {
            let error = first_message(&message);
            assert!(error.contains(reason), "{message:?}: {error}");
        }
        // Extensions after the iteration count are ignored.
        let extended = format!("r={nonce},s={salt},i=4096,x=future");
        assert!(
            fixed_client()
                .handle_server_first(&reply(1, false, extended.as_bytes()), &CACHE)
                .is_ok()
        );
    }

    #[test]
    fn the_first_reply_must_be_well_formed() {
        let message = format!("r={NONCE}srv,s={},i=4096", BASE64.encode(SALT));
        let payload = Binary {
            subtype: BinarySubtype::Generic,
            bytes: message.clone().into_bytes(),
        };
        let cases = [
            (
                rawdoc! { "done": false, "payload": payload.clone(), "ok": 1 },
                "no conversationId",
            ),
            (
                rawdoc! { "conversationId": "1", "done": false, "payload": payload.clone() },
                "conversationId is String, not an integer",
            ),
            (
                rawdoc! { "conversationId": 1, "payload": payload.clone(), "ok": 1 },
                "no done field",
            ),
            (
                rawdoc! { "conversationId": 1, "done": 0, "payload": payload.clone() },
                "done is Int32, not a boolean",
            ),
            (
                rawdoc! { "conversationId": 1, "done": true, "payload": payload.clone() },
                "ended the conversation before proving",
            ),
            (rawdoc! { "conversationId": 1, "done": false, "ok": 1 }, "no payload"),
            (
                rawdoc! { "conversationId": 1, "done": false, "payload": message.as_str() },
                "payload is String, not binary data",
            ),
            (
                rawdoc! {
                    "conversationId": 1,
                    "done": false,
                    "payload": Binary { subtype: BinarySubtype::Generic, bytes: vec![0xff, b'r'] },
                },
                "server-first-message is not UTF-8",
            ),
            (
                rawdoc! {
                    "ok": 0,
                    "errmsg": "Authentication failed.",
                    "code": 18,
                    "codeName": "AuthenticationFailed",
                },
                "the server refused: Authentication failed.",
            ),
        ];
        for (reply, reason) in cases {
            let error = server_first_error(&reply);
            assert!(error.contains(reason), "{reply:?}: {error}");
        }
        // A 64-bit conversationId, another binary subtype: accepted, and echoed as sent.
        let reply = rawdoc! {
            "conversationId": 7_i64,
            "done": false,
            "payload": Binary { subtype: BinarySubtype::UserDefined(0x80), bytes: message.into_bytes() },
        };
        let (_, command) = fixed_client().handle_server_first(&reply, &CACHE).unwrap();
        assert_eq!(command.get_i64("conversationId").unwrap(), 7);
    }

    /// A client state after a valid server-first-message, and the reply a server that knows
    /// the password would send next.
    fn at_server_final() -> (ScramServerFinal, String) {
        let user = StoredUser::sha256("user", "pencil");
        let mut server = Server::new(&user);
        let client = client(AuthMechanism::ScramSha256, "user", "pencil", 12);
        let first = server.sasl_start(&client.sasl_start());
        let (expect_final, command) = client.handle_server_first(&first, &CACHE).unwrap();
        let good = server.sasl_continue(&command);
        (expect_final, payload_text(&good))
    }

    fn final_error(reply: &RawDocument) -> String {
        let (expect_final, _) = at_server_final();
        expect_final.handle_server_final(reply).unwrap_err().reason
    }

    #[test]
    fn a_wrong_server_signature_is_rejected() {
        let (_, good) = at_server_final();
        let signature = BASE64.decode(good.strip_prefix("v=").unwrap()).unwrap();
        let mut flipped = signature.clone();
        if let Some(last) = flipped.last_mut() {
            *last ^= 1;
        }
        let forgeries = [
            format!("v={}", BASE64.encode(&flipped)),
            format!("v={}", BASE64.encode(signature.get(..31).unwrap())),
            format!("v={}", BASE64.encode([signature.as_slice(), &[0]].concat())),
            "v=".to_owned(),
        ];
        for forged in forgeries {
            for done in [true, false] {
                let error = final_error(&reply(1, done, forged.as_bytes()));
                assert!(error.contains("server signature does not match"), "{forged}: {error}");
            }
        }
        assert_eq!(
            final_error(&reply(1, true, b"v=***")),
            "the server's signature (v=) is not valid base64"
        );
        // Never done without the signature.
        for unsigned in [&b""[..], b"x=1", b"r=abc"] {
            let error = final_error(&reply(1, true, unsigned));
            assert!(error.contains("neither the server's signature"), "{error}");
        }
    }

    #[test]
    fn the_servers_error_attribute_is_reported() {
        assert_eq!(
            final_error(&reply(1, true, b"e=invalid-proof")),
            "the server reported a SCRAM error: invalid-proof"
        );
        assert_eq!(
            final_error(&reply(1, false, b"e=other-error,x=1")),
            "the server reported a SCRAM error: other-error"
        );
    }

    #[test]
    fn later_replies_must_continue_the_same_conversation() {
        let (_, good) = at_server_final();
        let error = final_error(&reply(2, true, good.as_bytes()));
        assert_eq!(error, "the reply is for conversation 2, not 1");
        let mut anonymous = reply(1, true, good.as_bytes());
        anonymous = anonymous
            .iter()
            .filter_map(Result::ok)
            .filter(|(k, _)| *k != "conversationId")
            .collect();
        assert_eq!(final_error(&anonymous), "the reply has no conversationId");
        // The same number as a 64-bit integer is the same conversation.
        let (expect_final, good) = at_server_final();
        let wide = rawdoc! {
            "conversationId": 1_i64,
            "done": true,
            "payload": Binary { subtype: BinarySubtype::Generic, bytes: good.into_bytes() },
        };
        assert!(expect_final.handle_server_final(&wide).is_ok());
    }

    #[test]
    fn the_empty_exchange_must_end_the_conversation() {
        let empty_exchange = || {
            let (expect_final, good) = at_server_final();
            match expect_final.handle_server_final(&reply(1, false, good.as_bytes())) {
                Ok(ScramFinal::EmptyExchange(expect_done, _)) => expect_done,
                other => panic!("{other:?}"),
            }
        };
        let no_payload = rawdoc! { "conversationId": 1, "done": true, "ok": 1 };
        assert!(empty_exchange().handle_done(&no_payload).is_ok());
        assert!(empty_exchange().handle_done(&reply(1, true, b"")).is_ok());

        let cases = [
            (reply(1, false, b""), "still not done"),
            (reply(1, true, b"v=more"), "payload not empty"),
            (reply(3, true, b""), "conversation 3, not 1"),
            (
                rawdoc! { "conversationId": 1, "done": true, "payload": "" },
                "payload is String",
            ),
            (
                rawdoc! { "ok": 0, "errmsg": "gone", "code": 17 },
                "the server refused: gone",
            ),
        ];
        for (reply, reason) in cases {
            let error = empty_exchange().handle_done(&reply).unwrap_err();
            assert!(error.reason.contains(reason), "{reply:?}: {error}");
        }
    }

    #[test]
    fn errors_name_the_user_mechanism_and_source() {
        let (expect_final, _) = at_server_final();
        let error = expect_final
            .handle_server_final(&reply(1, true, b"e=invalid-proof"))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "authentication of user \"user\" (mechanism SCRAM-SHA-256, source \"admin\") \
             failed: the server reported a SCRAM error: invalid-proof"
        );
    }
}
