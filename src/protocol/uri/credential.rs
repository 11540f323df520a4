//! User info (`user:password@`) and the credential rules of the Authentication spec.
//!
//! Messages here never quote the user info: a password that is not percent-encoded is exactly
//! what they report, so they say which rule broke and leave the text out.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::Result;
use crate::protocol::{AuthMechanism, Credential, Password};

use super::text::{DecodeProblem, Source, invalid, percent_decode};

/// The user info of a connection string, decoded.
#[derive(Debug)]
pub(super) struct UserInfo {
    pub(super) username: String,
    pub(super) password: Option<Password>,
    /// Where the password is in the connection string, for the redacted form.
    pub(super) password_range: Option<Range<usize>>,
}

/// Characters RFC 3986 allows unencoded in user info besides letters and digits: the
/// unreserved marks and the sub-delimiters. Anything else ASCII must be percent-encoded;
/// non-ASCII text is accepted as written.
fn allowed_in_userinfo(c: char) -> bool {
    !c.is_ascii() || c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=%".contains(c)
}

/// Splits and decodes the user info at `range` (everything before the `@`).
pub(super) fn parse_userinfo(source: &Source<'_>, range: Range<usize>) -> Result<UserInfo> {
    let text = source.get(range.clone());
    if text.contains('@') {
        return Err(invalid(
            "the user name or password contains an '@'; percent-encode it as %40",
        ));
    }
    let (user, password) = match text.split_once(':') {
        Some((_, password)) if password.contains(':') => {
            return Err(invalid(
                "the user info has more than one ':'; percent-encode ':' in a user name or \
                 password as %3A",
            ));
        }
        Some((user, password)) => (user, Some(password)),
        None => (text, None),
    };
    if let Some(c) = user.chars().find(|c| !allowed_in_userinfo(*c)) {
        return Err(invalid(format!(
            "the user name contains {c:?}, which must be percent-encoded"
        )));
    }
    if password.is_some_and(|p| !p.chars().all(allowed_in_userinfo)) {
        return Err(invalid(
            "the password contains a character that must be percent-encoded (only letters, \
             digits and -._~!$&'()*+,;= may appear as they are)",
        ));
    }
    let username = percent_decode(user).map_err(|problem| match problem {
        DecodeProblem::BadEscape(at) => invalid(format!(
            "the user name has a '%' at byte {} that does not start a %XX escape; \
             percent-encode '%' as %25",
            range.start + at
        )),
        DecodeProblem::NotUtf8 => invalid("the user name is not UTF-8 once decoded"),
    })?;
    let password_start = range.start + user.len() + 1;
    let password = password
        .map(|raw| {
            percent_decode(raw).map_err(|problem| match problem {
                DecodeProblem::BadEscape(_) => invalid(
                    "the password has a '%' that does not start a %XX escape; percent-encode \
                     '%' as %25",
                ),
                DecodeProblem::NotUtf8 => invalid("the password is not UTF-8 once decoded"),
            })
        })
        .transpose()?;
    Ok(UserInfo {
        username: username.into_owned(),
        password_range: password.is_some().then_some(password_start..range.end),
        password: password.map(Password::new),
    })
}

/// What the connection string asked for: user info and the credential options.
#[derive(Debug, Default)]
pub(super) struct Requested {
    pub(super) username: Option<String>,
    pub(super) password: Option<Password>,
    pub(super) mechanism: Option<AuthMechanism>,
    pub(super) properties: BTreeMap<String, String>,
}

impl Requested {
    /// What an already resolved credential asked for, to resolve it again with another
    /// `authSource` (one from a TXT record).
    pub(super) fn from_credential(credential: Credential) -> Requested {
        Requested {
            username: credential.username,
            password: credential.password,
            mechanism: credential.mechanism,
            properties: credential.mechanism_properties,
        }
    }
}

/// How a mechanism treats each part of a credential.
struct Rules {
    /// The user name must be given (and not be empty).
    needs_username: bool,
    /// A password must not be given (the mechanism proves identity another way).
    forbids_password: bool,
    /// The source when neither `authSource` nor a database is given; `$external` mechanisms
    /// also ignore the database and accept no other `authSource`.
    default_source: &'static str,
    external_only: bool,
    /// Mechanism properties are allowed.
    takes_properties: bool,
}

fn rules(mechanism: Option<&AuthMechanism>) -> Rules {
    const EXTERNAL: &str = "$external";
    let scram = Rules {
        needs_username: true,
        forbids_password: false,
        default_source: "admin",
        external_only: false,
        takes_properties: false,
    };
    match mechanism.map(AuthMechanism::name) {
        None | Some("SCRAM-SHA-1" | "SCRAM-SHA-256") => scram,
        Some("MONGODB-X509") => Rules {
            needs_username: false,
            forbids_password: true,
            default_source: EXTERNAL,
            external_only: true,
            takes_properties: false,
        },
        Some("PLAIN") => Rules {
            default_source: EXTERNAL,
            ..scram
        },
        Some("GSSAPI") => Rules {
            default_source: EXTERNAL,
            external_only: true,
            takes_properties: true,
            ..scram
        },
        Some("MONGODB-OIDC") => Rules {
            needs_username: false,
            forbids_password: true,
            default_source: EXTERNAL,
            external_only: true,
            takes_properties: true,
        },
        // MONGODB-AWS, and any mechanism a later version adds.
        Some(_) => Rules {
            needs_username: false,
            forbids_password: false,
            default_source: EXTERNAL,
            external_only: true,
            takes_properties: true,
        },
    }
}

/// The credential, or `None` when the connection string asks for no authentication: no user
/// info and no `authMechanism` (a database or `authSource` alone does not ask for it).
///
/// The source is `authSource`, else the database for mechanisms that keep users in a
/// database (SCRAM, PLAIN), else the mechanism's default (`admin`, or `$external`). A user
/// name without a password is accepted for the password mechanisms: the caller may ask for the
/// password (as shells do) before authenticating.
pub(super) fn resolve(
    requested: Option<Requested>,
    auth_source: Option<&str>,
    database: Option<&str>,
) -> Result<Option<Credential>> {
    let Some(requested) = requested else {
        return Ok(None);
    };
    let rules = rules(requested.mechanism.as_ref());
    let mechanism = requested
        .mechanism
        .as_ref()
        .map_or("the default mechanism (SCRAM)", AuthMechanism::name);
    if !rules.takes_properties && !requested.properties.is_empty() {
        return Err(invalid(format!("authMechanismProperties do not apply to {mechanism}")));
    }
    match requested.username.as_deref() {
        Some("") => {
            return Err(invalid(format!(
                "the user name before '@' is empty; {mechanism} needs one"
            )));
        }
        None if rules.needs_username => {
            return Err(invalid(format!(
                "{mechanism} needs a user name: write mongodb://user:password@host"
            )));
        }
        _ => {}
    }
    if rules.forbids_password && requested.password.is_some() {
        return Err(invalid(format!("{mechanism} takes no password")));
    }
    if requested.mechanism.as_ref().map(AuthMechanism::name) == Some("MONGODB-AWS")
        && requested.username.is_some() != requested.password.is_some()
    {
        return Err(invalid(
            "MONGODB-AWS needs both an access key id (user name) and a secret key (password), \
             or neither",
        ));
    }
    let source = match auth_source {
        Some(source) if rules.external_only && source != "$external" => {
            return Err(invalid(format!(
                "{mechanism} authenticates against $external; authSource cannot name another \
                 database"
            )));
        }
        Some(source) => source,
        None if rules.external_only => rules.default_source,
        None => database.unwrap_or(rules.default_source),
    };
    Ok(Some(Credential {
        username: requested.username,
        password: requested.password,
        source: Some(source.to_owned()),
        mechanism: requested.mechanism,
        mechanism_properties: requested.properties,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_err, ok};
    use super::*;

    fn credential(uri: &str) -> Credential {
        ok(uri).credential.unwrap_or_else(|| panic!("{uri}: no credential"))
    }

    #[test]
    fn source_defaults_to_the_database_then_admin() {
        let plain = credential("mongodb://user:password@localhost");
        assert_eq!(plain.source.as_deref(), Some("admin"));
        assert_eq!(plain.mechanism, None);
        assert!(plain.mechanism_properties.is_empty());
        assert_eq!(
            credential("mongodb://user:password@localhost/foo").source.as_deref(),
            Some("foo")
        );
        assert_eq!(
            credential("mongodb://user:password@localhost/foo?authSource=bar")
                .source
                .as_deref(),
            Some("bar")
        );
        for mechanism in ["SCRAM-SHA-1", "SCRAM-SHA-256"] {
            let c = credential(&format!(
                "mongodb://user:password@localhost/foo?authMechanism={mechanism}"
            ));
            assert_eq!(c.mechanism.as_ref().map(AuthMechanism::name), Some(mechanism));
            assert_eq!(c.source.as_deref(), Some("foo"));
            assert_err(
                &format!("mongodb://localhost/?authMechanism={mechanism}"),
                &format!("{mechanism} needs a user name: write mongodb://user:password@host"),
            );
        }
    }

    #[test]
    fn no_credential_without_user_info_or_mechanism() {
        assert_eq!(ok("mongodb://localhost/").credential, None);
        assert_eq!(ok("mongodb://localhost/foo").credential, None);
        let source_only = ok("mongodb://localhost/?authSource=foo");
        assert_eq!(source_only.credential, None);
        assert_eq!(source_only.options.auth_source.as_deref(), Some("foo"));
        assert_err(
            "mongodb://localhost/admin?authSource=",
            "option authSource needs a value",
        );
        assert_err(
            "mongodb://user:password@localhost/foo?authSource=",
            "option authSource needs a value",
        );
        assert_err(
            "mongodb://@localhost.com/",
            "the user name before '@' is empty; the default mechanism (SCRAM) needs one",
        );
        assert_err("mongodb://:@localhost.com/", "the user name before '@' is empty");
        assert_err(
            "mongodb://localhost/?authMechanismProperties=SERVICE_NAME:x",
            "authMechanismProperties do not apply to the default mechanism (SCRAM)",
        );
        assert_err(
            "mongodb://u:p@localhost/?authMechanism=SCRAM-SHA-256&authMechanismProperties=A:b",
            "authMechanismProperties do not apply to SCRAM-SHA-256",
        );
    }

    #[test]
    fn x509_authenticates_against_external_without_a_password() {
        let subject = "CN%3DmyName%2COU%3DmyOrgUnit%2CO%3DmyOrg%2CL%3DmyLocality%2CST%3DmyState%2CC%3DmyCountry";
        let c = credential(&format!("mongodb://{subject}@localhost/foo?authMechanism=MONGODB-X509"));
        assert_eq!(
            c.username.as_deref(),
            Some("CN=myName,OU=myOrgUnit,O=myOrg,L=myLocality,ST=myState,C=myCountry")
        );
        assert_eq!(c.source.as_deref(), Some("$external"), "the database is ignored");
        assert_eq!(c.mechanism, Some(AuthMechanism::MongoDbX509));
        let anonymous = credential("mongodb://localhost/?authMechanism=MONGODB-X509&authSource=$external");
        assert_eq!(anonymous.username, None);
        assert_eq!(anonymous.source.as_deref(), Some("$external"));
        assert_err(
            "mongodb://user:password@localhost/?authMechanism=MONGODB-X509",
            "MONGODB-X509 takes no password",
        );
        assert_err(
            "mongodb://user:@localhost/?authMechanism=MONGODB-X509",
            "takes no password",
        );
        assert_err(
            &format!("mongodb://{subject}@localhost/foo?authMechanism=MONGODB-X509&authSource=bar"),
            "MONGODB-X509 authenticates against $external; authSource cannot name another database",
        );
        assert_err(
            "mongodb://localhost/?authMechanism=MONGODB-X509&authMechanismProperties=A:b",
            "authMechanismProperties do not apply to MONGODB-X509",
        );
    }

    #[test]
    fn plain_and_gssapi() {
        let plain = credential("mongodb://user:password@localhost/?authMechanism=PLAIN");
        assert_eq!(plain.source.as_deref(), Some("$external"));
        assert_eq!(plain.mechanism, AuthMechanism::from_name("PLAIN"));
        assert_eq!(
            credential("mongodb://user:password@localhost/foo?authMechanism=PLAIN")
                .source
                .as_deref(),
            Some("foo")
        );
        assert_err("mongodb://localhost/?authMechanism=PLAIN", "PLAIN needs a user name");

        let gssapi = credential(
            "mongodb://user%40DOMAIN.COM@localhost/foo?authMechanism=GSSAPI\
             &authMechanismProperties=SERVICE_NAME:other,CANONICALIZE_HOST_NAME:forward",
        );
        assert_eq!(gssapi.username.as_deref(), Some("user@DOMAIN.COM"));
        assert_eq!(gssapi.source.as_deref(), Some("$external"));
        assert_eq!(gssapi.mechanism_properties["SERVICE_NAME"], "other");
        assert_eq!(gssapi.mechanism_properties["CANONICALIZE_HOST_NAME"], "forward");
        let with_password =
            credential("mongodb://user%40DOMAIN.COM:password@localhost/?authMechanism=GSSAPI&authSource=$external");
        assert_eq!(with_password.password.unwrap().expose(), "password");
        assert_err(
            "mongodb://user%40DOMAIN.COM@localhost/?authMechanism=GSSAPI&authSource=foo",
            "GSSAPI authenticates against $external",
        );
        assert_err("mongodb://localhost/?authMechanism=GSSAPI", "GSSAPI needs a user name");
    }

    #[test]
    fn aws_and_oidc() {
        let aws = credential("mongodb://localhost/?authMechanism=MONGODB-AWS");
        assert_eq!((aws.username, aws.source.as_deref()), (None, Some("$external")));
        let keys = credential(
            "mongodb://user%21%40%23%24%25%5E%26%2A%28%29_%2B:pass%21%40%23%24%25%5E%26%2A%28%29_%2B@localhost/?authMechanism=MONGODB-AWS",
        );
        assert_eq!(keys.username.as_deref(), Some("user!@#$%^&*()_+"));
        assert_eq!(keys.password.unwrap().expose(), "pass!@#$%^&*()_+");
        assert_err(
            "mongodb://user@localhost/?authMechanism=MONGODB-AWS",
            "MONGODB-AWS needs both an access key id",
        );

        let uri = "mongodb://user:password@localhost/?authMechanism=MONGODB-AWS\
                   &authMechanismProperties=AWS_SESSION_TOKEN:token%21Tok3n";
        let parsed = ok(uri);
        let token = &parsed.credential.as_ref().unwrap().mechanism_properties["AWS_SESSION_TOKEN"];
        assert_eq!(token, "token!Tok3n");
        let shown = format!("{parsed:?} {parsed}");
        assert!(!shown.contains("Tok3n") && !shown.contains("password@"), "{shown}");
        assert!(
            parsed.redacted().ends_with("&authMechanismProperties=<redacted>"),
            "{}",
            parsed.redacted()
        );

        let oidc =
            credential("mongodb://localhost/?authMechanism=MONGODB-OIDC&authMechanismProperties=ENVIRONMENT:test");
        assert_eq!(oidc.source.as_deref(), Some("$external"));
        assert_eq!(oidc.mechanism_properties["ENVIRONMENT"], "test");
        let named = credential(
            "mongodb://user@localhost/?authMechanism=MONGODB-OIDC&authMechanismProperties=ENVIRONMENT:azure,TOKEN_RESOURCE:foo",
        );
        assert_eq!(named.username.as_deref(), Some("user"));
        assert_err(
            "mongodb://user:pass@localhost/?authMechanism=MONGODB-OIDC&authMechanismProperties=ENVIRONMENT:test",
            "MONGODB-OIDC takes no password",
        );
    }

    #[test]
    fn mechanism_names_are_exact() {
        assert_err(
            "mongodb://u:p@h/?authMechanism=SCRAM-SHA-512",
            "\"authMechanism=SCRAM-SHA-512\" is not an authentication mechanism",
        );
        assert_err("mongodb://u:p@h/?authMechanism=scram-sha-1", "(in capitals)");
        // The option name itself is case-insensitive.
        assert_eq!(
            credential("mongodb://u:p@h/?AUTHMECHANISM=PLAIN").mechanism,
            AuthMechanism::from_name("PLAIN")
        );
    }
}
