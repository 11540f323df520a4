//! Authentication conversations (SCRAM-SHA-1, SCRAM-SHA-256, MONGODB-X509), with no I/O.
//!
//! Each conversation is a chain of states named after the reply they expect next; handling a
//! reply consumes the state and returns the next one with the command to send, so a stale
//! state cannot be fed a second reply. The driver sends the commands (adding `$db` from the
//! state's `source()`), feeds the replies back, and supplies what this module cannot get
//! itself: the client nonce's random bytes and the [`ScramCache`] shared by its connections.
//!
//! The handshake (per the Authentication and Handshake specifications):
//!
//! 1. `hello` carries `saslSupportedMechs` ([`sasl_supported_mechs_request`]) when the mechanism
//!    must be negotiated, and `speculativeAuthenticate` (the first command of the mechanism
//!    [`speculative_mechanism`] names: [`ScramClient::speculative_authenticate`] or
//!    [`X509Client::speculative_authenticate`]).
//! 2. If the `hello` reply has a `speculativeAuthenticate` document, it is the first reply of that
//!    conversation: hand it to [`ScramClient::handle_server_first`] (or
//!    [`X509Client::handle_reply`]) and carry on from there.
//! 3. Otherwise pick the mechanism with [`negotiate_mechanism`] from the reply's
//!    `saslSupportedMechs`, and run the whole conversation from its first command
//!    ([`ScramClient::sasl_start`], [`X509Client::authenticate`]). The speculative state can be
//!    reused when the negotiated mechanism is the same.
//!
//! A SCRAM conversation, sans I/O (the "server" here is scripted):
//!
//! ```
//! use bson::{rawdoc, spec::BinarySubtype, Binary};
//! use mongowire::protocol::auth::{negotiate_mechanism, ScramCache, ScramClient};
//! use mongowire::protocol::{AuthMechanism, Credential, Password};
//!
//! let credential = Credential {
//!     username: Some("user".into()),
//!     password: Some(Password::new("pencil")),
//!     ..Credential::default()
//! };
//! let offered = vec!["SCRAM-SHA-1".to_owned(), "SCRAM-SHA-256".to_owned()];
//! let mechanism = negotiate_mechanism(&credential, Some(offered.as_slice()))?;
//! assert_eq!(mechanism, AuthMechanism::ScramSha256);
//!
//! let cache = ScramCache::default(); // one per client, shared by its connections
//! let client = ScramClient::new(&mechanism, &credential, &[7; 24])?; // 24 random bytes
//! let sasl_start = client.sasl_start(); // send with `$db: client.source()`
//! assert_eq!(sasl_start.get_str("mechanism")?, "SCRAM-SHA-256");
//!
//! // The server answers with its nonce, the user's salt and iteration count ...
//! let client_nonce = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH"; // base64 of the 24 bytes
//! let server_first = format!("r={client_nonce}srv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
//! let reply = rawdoc! {
//!     "conversationId": 1,
//!     "done": false,
//!     "payload": Binary { subtype: BinarySubtype::Generic, bytes: server_first.into_bytes() },
//!     "ok": 1,
//! };
//! // ... and the client answers with its proof.
//! let (expect_final, sasl_continue) = client.handle_server_first(&reply, &cache)?;
//! assert_eq!(sasl_continue.get_i32("conversationId")?, 1);
//!
//! // A server that does not know the password cannot produce the right signature.
//! let forged = rawdoc! {
//!     "conversationId": 1,
//!     "done": true,
//!     "payload": Binary {
//!         subtype: BinarySubtype::Generic,
//!         bytes: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
//!     },
//!     "ok": 1,
//! };
//! let error = expect_final.handle_server_final(&forged).unwrap_err();
//! assert!(error.reason.contains("server signature"), "{error}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cache;
mod saslprep;
mod scram;
mod x509;

pub use cache::ScramCache;
pub use scram::{
    CLIENT_NONCE_LEN, MIN_ITERATION_COUNT, ScramClient, ScramDone, ScramFinal, ScramServerDone, ScramServerFinal,
};
pub use x509::X509Client;

use bson::RawDocument;
use bson::raw::RawBsonRef;

use crate::error::{AuthError, ServerError};
use crate::protocol::{AuthMechanism, Credential};

/// What the conversations return. [`AuthError`] is large (it can hold the server's whole
/// reply), so it travels boxed, as it does inside [`crate::Error::Authentication`].
pub type AuthResult<T> = Result<T, Box<AuthError>>;

/// The database SCRAM credentials live in when the credential names none (the URI layer fills
/// `source` from `authSource`, else from the connection string's database).
const SCRAM_DEFAULT_SOURCE: &str = "admin";
/// The only database X.509 users can live in.
const EXTERNAL_SOURCE: &str = "$external";

/// Picks the mechanism to authenticate with: the credential's own, whatever the server offers
/// (the spec says a mechanism the user asked for is always honored), else SCRAM-SHA-256 if the
/// `hello` reply's `saslSupportedMechs` lists it, else SCRAM-SHA-1 (also when the reply had no
/// `saslSupportedMechs`). Unknown names in the list are ignored, as the spec requires.
///
/// Fails only for a mechanism mongowire does not implement (PLAIN, GSSAPI, MONGODB-AWS,
/// MONGODB-OIDC).
pub fn negotiate_mechanism(
    credential: &Credential,
    sasl_supported_mechs: Option<&[String]>,
) -> AuthResult<AuthMechanism> {
    match &credential.mechanism {
        Some(unsupported @ AuthMechanism::Unsupported(name)) => Err(Box::new(auth_error(
            credential,
            unsupported,
            format!("mongowire does not implement {name}"),
            None,
        ))),
        Some(mechanism) => Ok(mechanism.clone()),
        None => {
            let offers_sha256 =
                sasl_supported_mechs.is_some_and(|mechs| mechs.iter().any(|m| m == AuthMechanism::ScramSha256.name()));
            Ok(if offers_sha256 {
                AuthMechanism::ScramSha256
            } else {
                AuthMechanism::ScramSha1
            })
        }
    }
}

/// The `saslSupportedMechs` value for the handshake's `hello`, `"<source>.<username>"`, when
/// the mechanism has to be negotiated (a user name but no mechanism); `None` otherwise. The
/// user name is sent exactly as given, without SASLprep: the server looks it up in that form.
pub fn sasl_supported_mechs_request(credential: &Credential) -> Option<String> {
    match (&credential.mechanism, &credential.username) {
        (None, Some(username)) => {
            let source = credential.source.as_deref().unwrap_or(SCRAM_DEFAULT_SOURCE);
            Some(format!("{source}.{username}"))
        }
        _ => None,
    }
}

/// The mechanism to attempt speculatively in `hello`: the credential's, or SCRAM-SHA-256 when it
/// names none (the Handshake spec requires that default, even though negotiation may then pick
/// SCRAM-SHA-1). `None` for mechanisms mongowire does not implement.
pub fn speculative_mechanism(credential: &Credential) -> Option<AuthMechanism> {
    match &credential.mechanism {
        None => Some(AuthMechanism::ScramSha256),
        Some(AuthMechanism::Unsupported(_)) => None,
        Some(mechanism) => Some(mechanism.clone()),
    }
}

/// An authentication error for `credential` with `mechanism`: names the user, the mechanism and
/// the authentication database (defaulted as the conversation would default it), never the
/// password.
pub fn auth_error(
    credential: &Credential,
    mechanism: &AuthMechanism,
    reason: impl Into<String>,
    server_error: Option<ServerError>,
) -> AuthError {
    AuthError {
        user: credential.username.clone().unwrap_or_default(),
        mechanism: mechanism.name().to_owned(),
        source_db: default_source(credential, mechanism).to_owned(),
        reason: reason.into(),
        server_error,
    }
}

/// The authentication database: the credential's, else `$external` for X.509 and `admin` for
/// everything else.
fn default_source<'a>(credential: &'a Credential, mechanism: &AuthMechanism) -> &'a str {
    let default = match mechanism {
        AuthMechanism::MongoDbX509 => EXTERNAL_SOURCE,
        _ => SCRAM_DEFAULT_SOURCE,
    };
    credential.source.as_deref().unwrap_or(default)
}

/// Rejects credential fields that do not apply to SCRAM or X.509 (the spec asks drivers to
/// raise such errors early rather than let the server fail obscurely).
fn reject_mechanism_properties(credential: &Credential, mechanism: &AuthMechanism) -> AuthResult<()> {
    if credential.mechanism_properties.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = credential.mechanism_properties.keys().map(String::as_str).collect();
    Err(Box::new(auth_error(
        credential,
        mechanism,
        format!(
            "{} takes no mechanism properties, but {} given",
            mechanism.name(),
            names.join(", ")
        ),
        None,
    )))
}

/// The server's error when `reply` says `ok: 0`; `None` when it says `ok: 1` or has no `ok` at
/// all (the `speculativeAuthenticate` document inside a `hello` reply has none: the server
/// leaves it out when speculation failed).
fn server_error(reply: &RawDocument) -> Result<Option<ServerError>, bson::error::Error> {
    let ok = match reply.get("ok")? {
        None => return Ok(None),
        Some(RawBsonRef::Double(ok)) => ok == 1.0,
        Some(RawBsonRef::Int32(ok)) => ok == 1,
        Some(RawBsonRef::Int64(ok)) => ok == 1,
        Some(RawBsonRef::Boolean(ok)) => ok,
        Some(_) => false,
    };
    if ok {
        return Ok(None);
    }
    let code = match reply.get("code") {
        Ok(Some(RawBsonRef::Int32(code))) => code,
        Ok(Some(RawBsonRef::Int64(code))) => i32::try_from(code).unwrap_or_default(),
        _ => 0,
    };
    let text = |key: &str| match reply.get(key) {
        Ok(Some(RawBsonRef::String(text))) => text.to_owned(),
        _ => String::new(),
    };
    let labels = match reply.get("errorLabels") {
        Ok(Some(RawBsonRef::Array(labels))) => labels
            .into_iter()
            .filter_map(|label| match label {
                Ok(RawBsonRef::String(label)) => Some(label.to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Some(ServerError {
        code,
        code_name: text("codeName"),
        message: text("errmsg"),
        labels,
        address: None,
        reply: reply.to_owned(),
    }))
}

fn invalid_bson(error: &bson::error::Error) -> String {
    format!("the reply is not valid BSON: {error}")
}

/// Who an error is about: what [`AuthError`] names, kept by each state so errors from later
/// steps need not hold on to the credential (and its password).
#[derive(Debug, Clone)]
struct Subject {
    user: String,
    mechanism: AuthMechanism,
    source: String,
}

impl Subject {
    fn new(credential: &Credential, mechanism: &AuthMechanism) -> Subject {
        Subject {
            user: credential.username.clone().unwrap_or_default(),
            mechanism: mechanism.clone(),
            source: default_source(credential, mechanism).to_owned(),
        }
    }

    fn error(&self, reason: impl Into<String>) -> Box<AuthError> {
        Box::new(AuthError {
            user: self.user.clone(),
            mechanism: self.mechanism.name().to_owned(),
            source_db: self.source.clone(),
            reason: reason.into(),
            server_error: None,
        })
    }

    /// `Err` with the server's own error when `reply` is `ok: 0`.
    fn check_ok(&self, reply: &RawDocument) -> AuthResult<()> {
        match server_error(reply) {
            Ok(None) => Ok(()),
            Err(error) => Err(self.error(invalid_bson(&error))),
            Ok(Some(server_error)) => {
                let reason = if server_error.message.is_empty() {
                    format!("the server refused (code {})", server_error.code)
                } else {
                    format!("the server refused: {}", server_error.message)
                };
                let mut error = self.error(reason);
                error.server_error = Some(server_error);
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Password;
    use bson::rawdoc;

    fn user(mechanism: Option<AuthMechanism>) -> Credential {
        Credential {
            username: Some("alice".into()),
            password: Some(Password::new("s3cr3t-pw")),
            mechanism,
            ..Credential::default()
        }
    }

    fn mechs(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    #[test]
    fn negotiation_prefers_sha256_then_falls_back_to_sha1() {
        let credential = user(None);
        let both = mechs(&["SCRAM-SHA-1", "SCRAM-SHA-256"]);
        let sha1_only = mechs(&["SCRAM-SHA-1"]);
        let unknown = mechs(&["PLAIN", "SCRAM-SHA-512", "X-NEW"]);
        let cases: [(Option<&[String]>, AuthMechanism); 5] = [
            (Some(&both), AuthMechanism::ScramSha256),
            (Some(&sha1_only), AuthMechanism::ScramSha1),
            // SCRAM-SHA-1 even when the list does not name it, and never PLAIN.
            (Some(&unknown), AuthMechanism::ScramSha1),
            (Some(&[]), AuthMechanism::ScramSha1),
            (None, AuthMechanism::ScramSha1),
        ];
        for (offered, expected) in cases {
            assert_eq!(negotiate_mechanism(&credential, offered), Ok(expected));
        }
    }

    #[test]
    fn negotiation_honors_the_credentials_mechanism() {
        let sha256_only = mechs(&["SCRAM-SHA-256"]);
        for mechanism in [
            AuthMechanism::ScramSha1,
            AuthMechanism::ScramSha256,
            AuthMechanism::MongoDbX509,
        ] {
            let credential = user(Some(mechanism.clone()));
            assert_eq!(
                negotiate_mechanism(&credential, Some(&sha256_only)),
                Ok(mechanism.clone())
            );
            assert_eq!(negotiate_mechanism(&credential, None), Ok(mechanism));
        }
        let plain = user(Some(AuthMechanism::Unsupported("PLAIN".into())));
        let error = negotiate_mechanism(&plain, Some(&sha256_only)).unwrap_err();
        assert_eq!(error.mechanism, "PLAIN");
        assert!(error.reason.contains("does not implement PLAIN"), "{error}");
    }

    #[test]
    fn sasl_supported_mechs_names_source_and_raw_user() {
        assert_eq!(
            sasl_supported_mechs_request(&user(None)).as_deref(),
            Some("admin.alice")
        );
        let credential = Credential {
            username: Some("\u{2168}".into()), // not SASLprepped
            source: Some("app".into()),
            ..Credential::default()
        };
        assert_eq!(
            sasl_supported_mechs_request(&credential).as_deref(),
            Some("app.\u{2168}")
        );
        assert_eq!(
            sasl_supported_mechs_request(&user(Some(AuthMechanism::ScramSha1))),
            None
        );
        assert_eq!(sasl_supported_mechs_request(&Credential::default()), None);
    }

    #[test]
    fn speculation_defaults_to_sha256() {
        assert_eq!(speculative_mechanism(&user(None)), Some(AuthMechanism::ScramSha256));
        assert_eq!(
            speculative_mechanism(&user(Some(AuthMechanism::ScramSha1))),
            Some(AuthMechanism::ScramSha1)
        );
        assert_eq!(
            speculative_mechanism(&user(Some(AuthMechanism::MongoDbX509))),
            Some(AuthMechanism::MongoDbX509)
        );
        let aws = user(Some(AuthMechanism::Unsupported("MONGODB-AWS".into())));
        assert_eq!(speculative_mechanism(&aws), None);
    }

    #[test]
    fn auth_error_names_user_mechanism_and_source_but_not_the_password() {
        let credential = user(None);
        let error = auth_error(&credential, &AuthMechanism::ScramSha256, "bad luck", None);
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert_eq!(
            error.to_string(),
            "authentication of user \"alice\" (mechanism SCRAM-SHA-256, source \"admin\") \
             failed: bad luck"
        );
        let x509 = auth_error(&credential, &AuthMechanism::MongoDbX509, "no", None);
        assert_eq!(x509.source_db, "$external");
        let custom = Credential {
            source: Some("app".into()),
            ..credential
        };
        let error = auth_error(&custom, &AuthMechanism::ScramSha1, "no", None);
        assert_eq!(error.source_db, "app");
    }

    #[test]
    fn ok_values_and_server_errors() {
        for ok in [
            rawdoc! { "ok": 1 },
            rawdoc! { "ok": 1.0 },
            rawdoc! { "ok": 1_i64 },
            rawdoc! { "ok": true },
            rawdoc! {},
        ] {
            assert_eq!(server_error(&ok).ok(), Some(None), "{ok:?}");
        }
        let refused = rawdoc! {
            "ok": 0.0,
            "errmsg": "Authentication failed.",
            "code": 18,
            "codeName": "AuthenticationFailed",
            "errorLabels": ["SystemOverloadedError", 5],
        };
        let error = server_error(&refused).unwrap().unwrap();
        assert_eq!(error.code, 18);
        assert_eq!(error.code_name, "AuthenticationFailed");
        assert_eq!(error.message, "Authentication failed.");
        assert_eq!(error.labels, vec!["SystemOverloadedError".to_owned()]);
        assert_eq!(error.reply, refused);
        assert!(server_error(&rawdoc! { "ok": "yes" }).unwrap().is_some());

        let subject = Subject::new(&user(None), &AuthMechanism::ScramSha256);
        let error = subject.check_ok(&refused).unwrap_err();
        assert_eq!(error.reason, "the server refused: Authentication failed.");
        assert_eq!(error.server_error.map(|e| e.code), Some(18));
        let error = subject.check_ok(&rawdoc! { "ok": 0 }).unwrap_err();
        assert_eq!(error.reason, "the server refused (code 0)");
        // {ok: <a string whose length runs past the document>}
        let corrupt = RawDocument::from_bytes(b"\x0d\x00\x00\x00\x02ok\x00\xff\x00\x00\x00\x00").unwrap();
        let error = subject.check_ok(corrupt).unwrap_err();
        assert!(error.reason.starts_with("the reply is not valid BSON"), "{error}");
        assert_eq!(error.server_error, None);
    }

    #[test]
    fn mechanism_properties_do_not_apply() {
        let mut credential = user(Some(AuthMechanism::ScramSha256));
        assert!(reject_mechanism_properties(&credential, &AuthMechanism::ScramSha256).is_ok());
        credential
            .mechanism_properties
            .insert("SERVICE_NAME".into(), "mongodb".into());
        let error = reject_mechanism_properties(&credential, &AuthMechanism::ScramSha256).unwrap_err();
        assert!(error.reason.contains("SERVICE_NAME"), "{error}");
    }
}
