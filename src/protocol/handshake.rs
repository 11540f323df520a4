//! The connection handshake (MongoDB Handshake specification): the first command on every
//! connection, with client metadata, compression negotiation and the start of authentication.

use bson::{RawArrayBuf, RawBsonRef, RawDocument, RawDocumentBuf, raw::cstr, rawdoc};

use crate::error::{Error, ProtocolErrorKind};
use crate::protocol::reply;
use crate::protocol::sdam::MIN_WIRE_VERSION;
use crate::wire::{Compressor, DEFAULT_MAX_MESSAGE_SIZE};

/// The server limits the client metadata document to 512 bytes.
const METADATA_LIMIT: usize = 512;

/// Where the client runs, for `client.os`, `client.platform` and `client.env`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientEnvironment {
    /// `uname -s`-style name: Linux, Darwin, Windows.
    pub os_type: String,
    /// The machine architecture (x86_64).
    pub architecture: String,
    /// A FaaS platform name (aws.lambda, azure.func, gcp.func, vercel) when detected.
    pub faas_name: Option<String>,
    /// The FaaS region, when known.
    pub region: Option<String>,
    /// The FaaS memory limit in MB, when known.
    pub memory_mb: Option<i32>,
    /// The FaaS timeout in seconds, when known.
    pub timeout_sec: Option<i32>,
    /// `docker` when running in a Docker container.
    pub container_runtime: Option<String>,
    /// `kubernetes` when running under Kubernetes.
    pub orchestrator: Option<String>,
}

/// What the handshake command carries.
#[derive(Debug, Clone, Default)]
pub struct HandshakeRequest {
    /// `appName` from the connection string.
    pub app_name: Option<String>,
    /// The compressors to offer, in order of preference.
    pub compressors: Vec<Compressor>,
    /// `saslSupportedMechs: "<source>.<user>"`, to negotiate a mechanism.
    pub sasl_supported_mechs: Option<String>,
    /// The first authentication command, sent along to save a round trip.
    pub speculative_authenticate: Option<RawDocumentBuf>,
    /// Set when connecting through a load balancer.
    pub load_balanced: bool,
    /// The environment the metadata describes.
    pub environment: ClientEnvironment,
}

/// The `client` metadata document, shrunk to the server's 512-byte limit in the order the
/// specification gives: drop `env` fields but `name`, then `os` fields but `type`, then `env`,
/// then shorten `platform`.
pub fn client_metadata(app_name: Option<&str>, environment: &ClientEnvironment) -> RawDocumentBuf {
    let platform = format!("Rust, tokio, {}", std::env::consts::FAMILY);
    let build = |env_full: bool, os_full: bool, with_env: bool, platform: &str| {
        let mut doc = RawDocumentBuf::new();
        if let Some(name) = app_name {
            doc.append(cstr!("application"), rawdoc! { "name": name });
        }
        doc.append(
            cstr!("driver"),
            rawdoc! { "name": "mongowire", "version": env!("CARGO_PKG_VERSION") },
        );
        let mut os = rawdoc! { "type": environment.os_type.as_str() };
        if os_full && !environment.architecture.is_empty() {
            os.append(cstr!("architecture"), environment.architecture.as_str());
        }
        doc.append(cstr!("os"), os);
        doc.append(cstr!("platform"), platform);
        if with_env && let Some(env) = env_document(environment, env_full) {
            doc.append(cstr!("env"), env);
        }
        doc
    };
    for (env_full, os_full, with_env) in [
        (true, true, true),
        (false, true, true),
        (false, false, true),
        (false, false, false),
    ] {
        let doc = build(env_full, os_full, with_env, &platform);
        if doc.as_bytes().len() <= METADATA_LIMIT {
            return doc;
        }
    }
    // Only an enormous appName gets here; the connection string parser limits it to 128 bytes.
    build(false, false, false, "")
}

fn env_document(environment: &ClientEnvironment, full: bool) -> Option<RawDocumentBuf> {
    let mut env = RawDocumentBuf::new();
    if let Some(name) = &environment.faas_name {
        env.append(cstr!("name"), name.as_str());
        if full {
            if let Some(timeout) = environment.timeout_sec {
                env.append(cstr!("timeout_sec"), timeout);
            }
            if let Some(memory) = environment.memory_mb {
                env.append(cstr!("memory_mb"), memory);
            }
            if let Some(region) = &environment.region {
                env.append(cstr!("region"), region.as_str());
            }
        }
    }
    if full && (environment.container_runtime.is_some() || environment.orchestrator.is_some()) {
        let mut container = RawDocumentBuf::new();
        if let Some(runtime) = &environment.container_runtime {
            container.append(cstr!("runtime"), runtime.as_str());
        }
        if let Some(orchestrator) = &environment.orchestrator {
            container.append(cstr!("orchestrator"), orchestrator.as_str());
        }
        env.append(cstr!("container"), container);
    }
    (!env.is_empty()).then_some(env)
}

/// The handshake command: legacy hello with `helloOk: true` (no Stable API is requested), or
/// `hello` for load-balanced connections, with `$db: "admin"`.
pub fn handshake_command(request: &HandshakeRequest) -> RawDocumentBuf {
    let mut command = if request.load_balanced {
        rawdoc! { "hello": 1 }
    } else {
        rawdoc! { "isMaster": 1, "helloOk": true }
    };
    command.append(cstr!("backpressure"), "2");
    command.append(
        cstr!("client"),
        client_metadata(request.app_name.as_deref(), &request.environment),
    );
    if !request.compressors.is_empty() {
        let names: RawArrayBuf = request.compressors.iter().map(|c| c.name()).collect();
        command.append(cstr!("compression"), names);
    }
    if request.load_balanced {
        command.append(cstr!("loadBalanced"), true);
    }
    if let Some(user) = &request.sasl_supported_mechs {
        command.append(cstr!("saslSupportedMechs"), user.as_str());
    }
    if let Some(speculative) = &request.speculative_authenticate {
        command.append(cstr!("speculativeAuthenticate"), speculative.clone());
    }
    command.append(cstr!("$db"), "admin");
    command
}

/// What a connection keeps from the handshake reply.
#[derive(Debug, Clone, PartialEq)]
pub struct HandshakeReply {
    /// `maxWireVersion`.
    pub max_wire_version: i32,
    /// The compressor the server picked from the offered list (the first it supports).
    pub compressor: Option<Compressor>,
    /// `maxMessageSizeBytes`.
    pub max_message_size: usize,
    /// `maxBsonObjectSize`.
    pub max_bson_object_size: usize,
    /// `maxWriteBatchSize`.
    pub max_write_batch_size: usize,
    /// `saslSupportedMechs`, when the request asked for it.
    pub sasl_supported_mechs: Option<Vec<String>>,
    /// The reply to a speculative authentication, when the server started one.
    pub speculative_authenticate: Option<RawDocumentBuf>,
    /// `helloOk`: monitoring may use `hello`.
    pub hello_ok: bool,
    /// The server's id for this connection (`connectionId`), for logs and `killOp`.
    pub connection_id: Option<i64>,
    /// The whole reply, for the monitor that turns it into a server description.
    pub document: RawDocumentBuf,
}

fn size_field(body: &RawDocument, key: &str, default: usize) -> usize {
    reply::get_number(body, key)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// Reads a handshake reply: a server error if `ok` is not 1, a protocol error if the server is
/// older than [`MIN_WIRE_VERSION`] (MongoDB 4.2).
pub fn parse_handshake_reply(body: &RawDocument, offered: &[Compressor]) -> Result<HandshakeReply, Error> {
    reply::check(body, None)?;
    let max_wire_version = reply::get_number(body, "maxWireVersion")
        .and_then(|v| i32::try_from(v).ok())
        .unwrap_or(0);
    if max_wire_version < MIN_WIRE_VERSION {
        return Err(Error::protocol(
            "hello reply",
            ProtocolErrorKind::UnsupportedWireVersion {
                required: MIN_WIRE_VERSION,
                server: max_wire_version,
            },
        ));
    }
    let compressor = match body.get("compression") {
        Ok(Some(RawBsonRef::Array(names))) => names
            .into_iter()
            .filter_map(|n| Compressor::from_name(n.ok()?.as_str()?))
            .find(|c| offered.contains(c)),
        _ => None,
    };
    let sasl_supported_mechs = match body.get("saslSupportedMechs") {
        Ok(Some(RawBsonRef::Array(names))) => Some(
            names
                .into_iter()
                .filter_map(|n| Some(n.ok()?.as_str()?.to_owned()))
                .collect(),
        ),
        _ => None,
    };
    let speculative_authenticate = match body.get("speculativeAuthenticate") {
        Ok(Some(RawBsonRef::Document(doc))) => Some(doc.to_owned()),
        _ => None,
    };
    Ok(HandshakeReply {
        max_wire_version,
        compressor,
        max_message_size: size_field(body, "maxMessageSizeBytes", DEFAULT_MAX_MESSAGE_SIZE),
        max_bson_object_size: size_field(body, "maxBsonObjectSize", 16 * 1024 * 1024),
        max_write_batch_size: size_field(body, "maxWriteBatchSize", 100_000),
        sasl_supported_mechs,
        speculative_authenticate,
        hello_ok: body.get_bool("helloOk").unwrap_or(false),
        connection_id: reply::get_number(body, "connectionId"),
        document: body.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux() -> ClientEnvironment {
        ClientEnvironment {
            os_type: "Linux".into(),
            architecture: "x86_64".into(),
            ..ClientEnvironment::default()
        }
    }

    #[test]
    fn first_command_is_legacy_hello_with_hello_ok_on_admin() {
        let request = HandshakeRequest {
            app_name: Some("tailer".into()),
            compressors: vec![Compressor::Zstd, Compressor::Snappy],
            environment: linux(),
            ..HandshakeRequest::default()
        };
        let command = handshake_command(&request);
        let keys: Vec<&str> = command.iter().map(|e| e.unwrap().0.as_str()).collect();
        assert_eq!(
            keys,
            ["isMaster", "helloOk", "backpressure", "client", "compression", "$db"]
        );
        assert_eq!(command.get_str("backpressure").unwrap(), "2");
        assert_eq!(command.get_str("$db").unwrap(), "admin");
        let client = command.get_document("client").unwrap();
        assert_eq!(
            client.get_document("application").unwrap().get_str("name").unwrap(),
            "tailer"
        );
        assert_eq!(
            client.get_document("driver").unwrap().get_str("name").unwrap(),
            "mongowire"
        );
        assert_eq!(client.get_document("os").unwrap().get_str("type").unwrap(), "Linux");
        let compression: Vec<&str> = command
            .get_array("compression")
            .unwrap()
            .into_iter()
            .map(|c| c.unwrap().as_str().unwrap())
            .collect();
        assert_eq!(compression, ["zstd", "snappy"]);
    }

    #[test]
    fn load_balanced_uses_hello() {
        let command = handshake_command(&HandshakeRequest {
            load_balanced: true,
            ..HandshakeRequest::default()
        });
        assert_eq!(command.iter().next().unwrap().unwrap().0.as_str(), "hello");
        assert!(command.get_bool("loadBalanced").unwrap());
    }

    #[test]
    fn auth_fields_ride_along() {
        let request = HandshakeRequest {
            sasl_supported_mechs: Some("admin.alice".into()),
            speculative_authenticate: Some(rawdoc! { "saslStart": 1, "db": "admin" }),
            ..HandshakeRequest::default()
        };
        let command = handshake_command(&request);
        assert_eq!(command.get_str("saslSupportedMechs").unwrap(), "admin.alice");
        assert_eq!(
            command
                .get_document("speculativeAuthenticate")
                .unwrap()
                .get_i32("saslStart")
                .unwrap(),
            1
        );
    }

    #[test]
    fn metadata_sheds_env_then_os_fields_to_fit_512_bytes() {
        let mut environment = linux();
        environment.faas_name = Some("aws.lambda".into());
        environment.region = Some("r".repeat(300));
        environment.memory_mb = Some(1024);
        let doc = client_metadata(Some("app"), &environment);
        assert!(doc.as_bytes().len() <= METADATA_LIMIT);
        let env = doc.get_document("env").unwrap();
        assert_eq!(env.get_str("name").unwrap(), "aws.lambda");
        assert!(
            env.get("region").unwrap().is_none(),
            "env fields other than name go first"
        );

        environment.faas_name = Some("x".repeat(480));
        let doc = client_metadata(Some("app"), &environment);
        assert!(doc.as_bytes().len() <= METADATA_LIMIT);
        assert!(doc.get("env").unwrap().is_none());
        assert!(doc.get_document("os").unwrap().get("architecture").unwrap().is_none());
        assert_eq!(doc.get_document("os").unwrap().get_str("type").unwrap(), "Linux");
    }

    #[test]
    fn container_and_orchestrator_are_reported() {
        let mut environment = linux();
        environment.container_runtime = Some("docker".into());
        environment.orchestrator = Some("kubernetes".into());
        let doc = client_metadata(None, &environment);
        let container = doc.get_document("env").unwrap().get_document("container").unwrap();
        assert_eq!(container.get_str("runtime").unwrap(), "docker");
        assert_eq!(container.get_str("orchestrator").unwrap(), "kubernetes");
        assert!(doc.get("application").unwrap().is_none());
    }

    #[test]
    fn reply_picks_the_first_offered_compressor_the_server_supports() {
        let body = rawdoc! {
            "ok": 1.0, "maxWireVersion": 21, "helloOk": true, "compression": ["zlib", "snappy"],
            "maxMessageSizeBytes": 48_000_000, "maxBsonObjectSize": 16_777_216, "maxWriteBatchSize": 100_000,
            "connectionId": 17, "saslSupportedMechs": ["SCRAM-SHA-1", "SCRAM-SHA-256"],
        };
        let reply = parse_handshake_reply(&body, &[Compressor::Snappy, Compressor::Zlib]).unwrap();
        assert_eq!(reply.compressor, Some(Compressor::Zlib), "the server's order decides");
        assert_eq!(reply.max_wire_version, 21);
        assert!(reply.hello_ok);
        assert_eq!(reply.connection_id, Some(17));
        assert_eq!(reply.sasl_supported_mechs.unwrap(), ["SCRAM-SHA-1", "SCRAM-SHA-256"]);
        let none = parse_handshake_reply(&body, &[Compressor::Zstd]).unwrap();
        assert_eq!(none.compressor, None);
    }

    #[test]
    fn old_servers_and_error_replies_are_refused() {
        let old = rawdoc! { "ok": 1.0, "maxWireVersion": 7 };
        let error = parse_handshake_reply(&old, &[]).unwrap_err();
        assert!(error.to_string().contains("wire version 8"), "{error}");
        let refused = rawdoc! { "ok": 0.0, "code": 18, "codeName": "AuthenticationFailed", "errmsg": "no" };
        assert_eq!(
            parse_handshake_reply(&refused, &[])
                .unwrap_err()
                .as_server_error()
                .unwrap()
                .code,
            18
        );
    }
}
