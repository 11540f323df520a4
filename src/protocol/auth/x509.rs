//! MONGODB-X509: the TLS client certificate's subject is the user, so the conversation is one
//! `authenticate` command (or its speculative form in `hello`).

use bson::raw::cstr;
use bson::{RawDocument, RawDocumentBuf};

use super::{AuthResult, EXTERNAL_SOURCE, Subject, auth_error, reject_mechanism_properties};
use crate::protocol::{AuthMechanism, Credential};

/// A MONGODB-X509 authentication, expecting the reply to its `authenticate` command.
#[derive(Debug)]
#[must_use = "an X.509 authentication does nothing until its command is sent"]
pub struct X509Client {
    subject: Subject,
    /// The certificate subject, sent only when the application gave one (the spec forbids
    /// sending a user name the application did not provide).
    user: Option<String>,
}

impl X509Client {
    /// Checks `credential` for MONGODB-X509: no password (the certificate is the proof), no
    /// mechanism properties, and `$external` as the source if it names one.
    pub fn new(credential: &Credential) -> AuthResult<X509Client> {
        let mechanism = AuthMechanism::MongoDbX509;
        let fail = |reason: &str| Box::new(auth_error(credential, &mechanism, reason, None));
        if credential.password.is_some() {
            return Err(fail(
                "MONGODB-X509 takes no password: the TLS client certificate proves the identity",
            ));
        }
        if credential
            .source
            .as_deref()
            .is_some_and(|source| source != EXTERNAL_SOURCE)
        {
            return Err(fail("MONGODB-X509 users live in the $external database only"));
        }
        reject_mechanism_properties(credential, &mechanism)?;
        Ok(X509Client {
            subject: Subject::new(credential, &mechanism),
            user: credential.username.clone(),
        })
    }

    /// The authentication database, `$external`: the `$db` of [`X509Client::authenticate`].
    pub fn source(&self) -> &str {
        &self.subject.source
    }

    /// `{authenticate: 1, mechanism: "MONGODB-X509", user?}`; the driver adds `$db`.
    pub fn authenticate(&self) -> RawDocumentBuf {
        let mut command = RawDocumentBuf::new();
        command.append(cstr!("authenticate"), 1);
        command.append(cstr!("mechanism"), self.subject.mechanism.name());
        if let Some(user) = &self.user {
            command.append(cstr!("user"), user.as_str());
        }
        command
    }

    /// The `speculativeAuthenticate` document for `hello`: the `authenticate` command plus
    /// `db: "$external"`. A `hello` reply with a `speculativeAuthenticate` document means the
    /// server authenticated the connection; pass that document to
    /// [`X509Client::handle_reply`]. Without one, send [`X509Client::authenticate`].
    pub fn speculative_authenticate(&self) -> RawDocumentBuf {
        let mut document = self.authenticate();
        document.append(cstr!("db"), self.subject.source.as_str());
        document
    }

    /// Handles the reply to `authenticate`, or the `hello` reply's `speculativeAuthenticate`
    /// document (which has no `ok`: the server omits the document when it refuses).
    pub fn handle_reply(self, reply: &RawDocument) -> AuthResult<()> {
        self.subject.check_ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Password;
    use bson::rawdoc;

    const SUBJECT: &str = "C=IS,ST=Reykjavik,L=Reykjavik,O=MongoDB,OU=Drivers,CN=client";

    fn credential(username: Option<&str>) -> Credential {
        Credential {
            username: username.map(str::to_owned),
            mechanism: Some(AuthMechanism::MongoDbX509),
            ..Credential::default()
        }
    }

    #[test]
    fn sends_the_user_only_when_given() {
        let anonymous = X509Client::new(&credential(None)).unwrap();
        assert_eq!(anonymous.source(), "$external");
        assert_eq!(
            anonymous.authenticate(),
            rawdoc! { "authenticate": 1, "mechanism": "MONGODB-X509" }
        );
        let named = X509Client::new(&credential(Some(SUBJECT))).unwrap();
        assert_eq!(
            named.authenticate(),
            rawdoc! { "authenticate": 1, "mechanism": "MONGODB-X509", "user": SUBJECT }
        );
    }

    #[test]
    fn speculative_form_adds_the_database() {
        let client = X509Client::new(&credential(Some(SUBJECT))).unwrap();
        assert_eq!(
            client.speculative_authenticate(),
            rawdoc! {
                "authenticate": 1,
                "mechanism": "MONGODB-X509",
                "user": SUBJECT,
                "db": "$external",
            }
        );
        // What a server puts in hello.speculativeAuthenticate when it accepted.
        let accepted = rawdoc! { "dbname": "$external", "user": SUBJECT };
        assert_eq!(client.handle_reply(&accepted), Ok(()));
    }

    #[test]
    fn replies() {
        let client = X509Client::new(&credential(None)).unwrap();
        let ok = rawdoc! { "dbname": "$external", "user": SUBJECT, "ok": 1.0 };
        assert_eq!(client.handle_reply(&ok), Ok(()));

        let client = X509Client::new(&credential(None)).unwrap();
        let refused = rawdoc! {
            "ok": 0.0,
            "errmsg": "Could not find user \"CN=client\" for db \"$external\"",
            "code": 11,
            "codeName": "UserNotFound",
        };
        let error = client.handle_reply(&refused).unwrap_err();
        assert_eq!(error.mechanism, "MONGODB-X509");
        assert_eq!(error.source_db, "$external");
        assert!(error.reason.contains("Could not find user"), "{error}");
        assert_eq!(error.server_error.map(|e| e.code_name).as_deref(), Some("UserNotFound"));
    }

    #[test]
    fn credentials_that_do_not_apply_are_rejected() {
        let with_password = Credential {
            password: Some(Password::new("s3cr3t-pw")),
            ..credential(None)
        };
        let error = X509Client::new(&with_password).unwrap_err();
        assert!(error.reason.contains("no password"), "{error}");
        assert!(!format!("{error} {error:?}").contains("s3cr3t-pw"));

        let elsewhere = Credential {
            source: Some("admin".into()),
            ..credential(None)
        };
        let error = X509Client::new(&elsewhere).unwrap_err();
        assert!(error.reason.contains("$external"), "{error}");

        let external = Credential {
            source: Some("$external".into()),
            ..credential(None)
        };
        assert!(X509Client::new(&external).is_ok());

        let mut with_properties = credential(None);
        with_properties
            .mechanism_properties
            .insert("SERVICE_NAME".into(), "x".into());
        assert!(X509Client::new(&with_properties).is_err());
    }
}
