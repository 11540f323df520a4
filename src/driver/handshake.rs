//! Opening a connection: TCP, TLS, the handshake command, then authentication.

use std::sync::Arc;
use std::time::Duration;

use crate::driver::auth::{Speculative, authenticate};
use crate::driver::connection::Connection;
use crate::driver::stream::Stream;
use crate::error::Error;
use crate::protocol::auth::{ScramCache, sasl_supported_mechs_request};
use crate::protocol::handshake::{ClientEnvironment, HandshakeRequest, handshake_command, parse_handshake_reply};
use crate::protocol::{Credential, ServerAddress};
use crate::wire::OpMsg;

/// Everything needed to open a connection to any server of a client.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionOptions {
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) connect_timeout: Duration,
    pub(crate) socket_timeout: Option<Duration>,
    pub(crate) handshake: HandshakeRequest,
    pub(crate) zlib_level: Option<i32>,
    /// Who to authenticate as; `None` for monitoring connections, which never authenticate.
    pub(crate) credential: Option<Credential>,
    /// Salted-password keys, shared by every connection of a client.
    pub(crate) scram_cache: Arc<ScramCache>,
    /// The client's own DNS resolver, when it was given a DNS server; else the system resolver.
    pub(crate) resolver: Option<Arc<hickory_resolver::TokioResolver>>,
}

/// Opens a connection, runs the handshake and authenticates, each step within the connect
/// timeout.
pub(crate) async fn open(address: &ServerAddress, options: &ConnectionOptions) -> Result<Connection, Error> {
    let stream = Stream::connect(
        address,
        options.tls.as_ref(),
        options.resolver.as_ref(),
        options.connect_timeout,
    )
    .await?;
    let mut connection = Connection::new(address.clone(), stream, options.socket_timeout);
    let mut request = options.handshake.clone();
    let speculative = match &options.credential {
        Some(credential) => {
            request.sasl_supported_mechs = credential
                .mechanism
                .is_none()
                .then(|| sasl_supported_mechs_request(credential))
                .flatten();
            let speculative = Speculative::prepare(credential)?;
            request.speculative_authenticate = speculative.as_ref().map(Speculative::document);
            speculative
        }
        None => None,
    };
    let command = OpMsg::new(handshake_command(&request));
    let reply = connection.round_trip(&command, Some(options.connect_timeout)).await?;
    let hello = parse_handshake_reply(reply.body(), &options.handshake.compressors).map_err(|e| match e {
        Error::Server(mut server) => {
            server.address = Some(address.clone());
            Error::Server(server)
        }
        other => other,
    })?;
    if let Some(credential) = &options.credential {
        authenticate(
            &mut connection,
            credential,
            hello.sasl_supported_mechs.as_deref(),
            speculative,
            hello.speculative_authenticate.as_deref(),
            &options.scram_cache,
            options.connect_timeout,
        )
        .await?;
    }
    tracing::debug!(
        %address,
        wire_version = hello.max_wire_version,
        compressor = ?hello.compressor.map(|c| c.name()),
        authenticated = options.credential.is_some(),
        "connection established"
    );
    connection.complete_handshake(hello, options.zlib_level);
    Ok(connection)
}

/// The environment this process runs in, for the handshake's client metadata.
pub(crate) fn detect_environment() -> ClientEnvironment {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let os_type = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        "windows" => "Windows",
        "freebsd" | "openbsd" | "netbsd" => "BSD",
        other => other,
    };
    let mut environment = ClientEnvironment {
        os_type: os_type.to_owned(),
        architecture: std::env::consts::ARCH.to_owned(),
        ..ClientEnvironment::default()
    };
    let aws = var("AWS_EXECUTION_ENV").is_some_and(|v| v.starts_with("AWS_Lambda_"))
        || var("AWS_LAMBDA_RUNTIME_API").is_some();
    let azure = var("FUNCTIONS_WORKER_RUNTIME").is_some();
    let gcp = var("K_SERVICE").is_some() || var("FUNCTION_NAME").is_some();
    let vercel = var("VERCEL").is_some();
    let int = |name: &str| var(name).and_then(|v| v.parse::<i32>().ok());
    // Vercel wins over AWS (it runs on Lambda); any other combination is ambiguous and omitted.
    match (vercel, aws, azure, gcp) {
        (true, _, false, false) => {
            environment.faas_name = Some("vercel".into());
            environment.region = var("VERCEL_REGION");
        }
        (false, true, false, false) => {
            environment.faas_name = Some("aws.lambda".into());
            environment.region = var("AWS_REGION");
            environment.memory_mb = int("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
        }
        (false, false, true, false) => environment.faas_name = Some("azure.func".into()),
        (false, false, false, true) => {
            environment.faas_name = Some("gcp.func".into());
            environment.region = var("FUNCTION_REGION");
            environment.memory_mb = int("FUNCTION_MEMORY_MB");
            environment.timeout_sec = int("FUNCTION_TIMEOUT_SEC");
        }
        _ => {}
    }
    if std::path::Path::new("/.dockerenv").exists() {
        environment.container_runtime = Some("docker".into());
    }
    if var("KUBERNETES_SERVICE_HOST").is_some() {
        environment.orchestrator = Some("kubernetes".into());
    }
    environment
}
