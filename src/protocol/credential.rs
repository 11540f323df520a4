//! Credentials. The password never appears in `Debug` or `Display` output.

use std::collections::BTreeMap;
use std::fmt;

/// A password, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Password {
        Password(password.into())
    }

    /// The password itself, for the authentication code that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// An authentication mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMechanism {
    /// SCRAM-SHA-1 (RFC 5802).
    ScramSha1,
    /// SCRAM-SHA-256 (RFC 7677), the default on servers that offer it.
    ScramSha256,
    /// MONGODB-X509: the TLS client certificate's subject is the user.
    MongoDbX509,
    /// A mechanism mongowire parses but does not implement (PLAIN, GSSAPI, MONGODB-AWS,
    /// MONGODB-OIDC); using it is a usage error.
    Unsupported(String),
}

impl AuthMechanism {
    /// The name in connection strings and `saslStart`.
    pub fn name(&self) -> &str {
        match self {
            AuthMechanism::ScramSha1 => "SCRAM-SHA-1",
            AuthMechanism::ScramSha256 => "SCRAM-SHA-256",
            AuthMechanism::MongoDbX509 => "MONGODB-X509",
            AuthMechanism::Unsupported(name) => name,
        }
    }

    /// The mechanism with this name (case-sensitive, as the specification requires); `None`
    /// for names that are not MongoDB mechanisms at all.
    pub fn from_name(name: &str) -> Option<AuthMechanism> {
        match name {
            "SCRAM-SHA-1" => Some(AuthMechanism::ScramSha1),
            "SCRAM-SHA-256" => Some(AuthMechanism::ScramSha256),
            "MONGODB-X509" => Some(AuthMechanism::MongoDbX509),
            "PLAIN" | "GSSAPI" | "MONGODB-AWS" | "MONGODB-OIDC" => Some(AuthMechanism::Unsupported(name.to_owned())),
            _ => None,
        }
    }
}

/// Who to authenticate as, and how.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credential {
    /// The user name (absent for MONGODB-X509, which takes it from the certificate).
    pub username: Option<String>,
    /// The password.
    pub password: Option<Password>,
    /// The authentication database (`authSource`); defaults per mechanism.
    pub source: Option<String>,
    /// The mechanism; `None` negotiates one with `saslSupportedMechs`.
    pub mechanism: Option<AuthMechanism>,
    /// `authMechanismProperties`.
    pub mechanism_properties: BTreeMap<String, String>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("source", &self.source)
            .field("mechanism", &self.mechanism)
            // Property values can be secrets (AWS_SESSION_TOKEN): only their names are shown.
            .field(
                "mechanism_properties",
                &self.mechanism_properties.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let credential = Credential {
            username: Some("alice".into()),
            password: Some(Password::new("s3cr3t-pw")),
            ..Credential::default()
        };
        let mut credential = credential;
        credential
            .mechanism_properties
            .insert("AWS_SESSION_TOKEN".into(), "token-value-xyz".into());
        let shown = format!("{credential:?} {:?}", credential.password);
        assert!(
            !shown.contains("s3cr3t-pw") && !shown.contains("token-value-xyz"),
            "{shown}"
        );
        assert!(shown.contains("AWS_SESSION_TOKEN"));
        assert!(shown.contains("alice") && shown.contains("<redacted>"));
    }

    #[test]
    fn mechanism_names() {
        for name in ["SCRAM-SHA-1", "SCRAM-SHA-256", "MONGODB-X509", "PLAIN"] {
            assert_eq!(AuthMechanism::from_name(name).unwrap().name(), name);
        }
        assert_eq!(AuthMechanism::from_name("scram-sha-1"), None);
    }
}
