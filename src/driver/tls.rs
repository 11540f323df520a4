//! TLS client configuration (rustls, ring provider).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::Error;

/// Where trust anchors come from when no CA file is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrustRoots {
    /// The operating system's store (`/etc/ssl/certs` and friends).
    #[default]
    System,
    /// Mozilla's roots bundled into the binary (webpki-roots), for minimal containers.
    Bundled,
}

/// TLS settings, from the connection string's tls* options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `tlsCAFile`: trust only the CAs in this PEM file.
    pub ca_file: Option<PathBuf>,
    /// `tlsCertificateKeyFile`: the client certificate chain and its private key, in one PEM file.
    pub certificate_key_file: Option<PathBuf>,
    /// `tlsAllowInvalidCertificates`: accept any certificate (tests only).
    pub allow_invalid_certificates: bool,
    /// `tlsAllowInvalidHostnames`: accept a valid certificate issued for another name.
    pub allow_invalid_hostnames: bool,
    /// Trust anchors when `ca_file` is not set.
    pub roots: TrustRoots,
}

fn tls_usage(message: String) -> Error {
    Error::usage(message)
}

fn read_pem_certificates(path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certificates: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_usage(format!("cannot read certificates from {}: {e}", path.display())))?
        .collect();
    let certificates =
        certificates.map_err(|e| tls_usage(format!("bad certificate PEM in {}: {e}", path.display())))?;
    if certificates.is_empty() {
        return Err(tls_usage(format!("no certificate found in {}", path.display())));
    }
    Ok(certificates)
}

fn root_store(options: &TlsOptions) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    if let Some(path) = &options.ca_file {
        for certificate in read_pem_certificates(path)? {
            roots
                .add(certificate)
                .map_err(|e| tls_usage(format!("unusable CA certificate in {}: {e}", path.display())))?;
        }
        return Ok(roots);
    }
    match options.roots {
        TrustRoots::Bundled => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        TrustRoots::System => {
            // Unreadable individual certificates are skipped, as every TLS client does.
            let found = rustls_native_certs::load_native_certs();
            for certificate in found.certs {
                let _ = roots.add(certificate);
            }
        }
    }
    Ok(roots)
}

/// Builds the rustls configuration once per client; connections share it.
pub(crate) fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_usage(format!("TLS configuration: {e}")))?;
    let builder = if options.allow_invalid_certificates {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
    } else {
        let roots = Arc::new(root_store(options)?);
        if options.allow_invalid_hostnames {
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| tls_usage(format!("TLS configuration: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(IgnoreHostname { inner }))
        } else {
            builder.with_root_certificates(roots)
        }
    };
    let config = match &options.certificate_key_file {
        Some(path) => {
            let chain = read_pem_certificates(path)?;
            let key = PrivateKeyDer::from_pem_file(path)
                .map_err(|e| tls_usage(format!("no usable private key in {}: {e}", path.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_usage(format!("client certificate in {}: {e}", path.display())))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// `tlsAllowInvalidHostnames`: full chain validation, but a name mismatch is accepted.
#[derive(Debug)]
struct IgnoreHostname {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl ServerCertVerifier for IgnoreHostname {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `tlsAllowInvalidCertificates`: any certificate is accepted (handshake signatures are still
/// checked, so the session is encrypted to whoever holds the key). For tests only.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
