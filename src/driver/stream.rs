//! A TCP connection to a server, plain or under TLS.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::{Error, TransportError, TransportErrorKind};
use crate::protocol::ServerAddress;

/// TCP keepalive: the first probe after two minutes idle, as the official drivers do.
const KEEPALIVE: Duration = Duration::from_secs(120);

/// A byte stream to one server.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Connects with TCP_NODELAY and keepalive, then runs the TLS handshake when `tls` is set,
    /// all within `timeout`.
    pub(crate) async fn connect(
        address: &ServerAddress,
        tls: Option<&Arc<rustls::ClientConfig>>,
        resolver: Option<&Arc<TokioResolver>>,
        timeout: Duration,
    ) -> Result<Stream, Error> {
        match tokio::time::timeout(timeout, Stream::connect_inner(address, tls, resolver)).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::new(
                TransportErrorKind::Timeout,
                Some(address.clone()),
                format!("connect timed out after {} ms", timeout.as_millis()),
            )
            .into()),
        }
    }

    async fn connect_inner(
        address: &ServerAddress,
        tls: Option<&Arc<rustls::ClientConfig>>,
        resolver: Option<&Arc<TokioResolver>>,
    ) -> Result<Stream, Error> {
        let tcp = match resolver {
            Some(resolver) if address.host().parse::<IpAddr>().is_err() => connect_resolved(address, resolver).await?,
            _ => TcpStream::connect((address.host(), address.port()))
                .await
                .map_err(|e| TransportError::io(address, "connect", &e))?,
        };
        tcp.set_nodelay(true)
            .map_err(|e| TransportError::io(address, "set TCP_NODELAY", &e))?;
        let keepalive = socket2::TcpKeepalive::new().with_time(KEEPALIVE);
        socket2::SockRef::from(&tcp)
            .set_tcp_keepalive(&keepalive)
            .map_err(|e| TransportError::io(address, "set keepalive", &e))?;
        let Some(config) = tls else {
            return Ok(Stream::Plain(tcp));
        };
        let name = ServerName::try_from(address.host().to_owned()).map_err(|e| {
            Error::usage(format!(
                "{address}: {:?} is not a valid TLS server name: {e}",
                address.host()
            ))
        })?;
        let stream = TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| {
                let detail = e.get_ref().map_or_else(|| e.to_string(), ToString::to_string);
                TransportError::new(
                    TransportErrorKind::Tls,
                    Some(address.clone()),
                    format!("TLS handshake failed: {detail}"),
                )
            })?;
        Ok(Stream::Tls(Box::new(stream)))
    }
}

/// Resolves `address` with the client's own DNS server and tries each address in turn.
async fn connect_resolved(address: &ServerAddress, resolver: &TokioResolver) -> Result<TcpStream, Error> {
    let lookup = resolver.lookup_ip(address.host()).await.map_err(|e| {
        TransportError::new(
            TransportErrorKind::Dns,
            Some(address.clone()),
            format!("resolving the host: {e}"),
        )
    })?;
    let mut last_error = None;
    for ip in lookup.iter() {
        match TcpStream::connect((ip, address.port())).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last_error = Some(e),
        }
    }
    Err(match last_error {
        Some(e) => TransportError::io(address, "connect", &e).into(),
        None => TransportError::new(
            TransportErrorKind::Dns,
            Some(address.clone()),
            "the host has no address",
        )
        .into(),
    })
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
