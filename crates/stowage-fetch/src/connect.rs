//! Opening connections: DNS, TCP, proxy tunnels, TLS with ALPN, and the connection limits.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ClientConfig;
use crate::counters::CounterSet;
use crate::error::Error;
use crate::proxy::{Proxy, ProxyRules};

/// Any byte stream a connection can run on: plain TCP, TLS, or TLS inside a proxy tunnel.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Why a connection could not be opened. It travels through hyper-util's error as the source, and is
/// turned back into the crate's [`Error`] by the client.
#[derive(Debug)]
pub(crate) enum ConnectFailure {
    Timeout,
    TlsTimeout,
    Tls(String),
    Other(String),
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout => f.write_str("connect timeout"),
            Self::TlsTimeout => f.write_str("TLS handshake timeout"),
            Self::Tls(m) | Self::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ConnectFailure {}

/// Shared by all requests on one connection, so that the client can tell a reused connection from a
/// fresh one.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConnInfo {
    pub(crate) uses: Arc<AtomicU64>,
}

/// An open connection. Its permit is released when hyper drops it, so the per-host limit counts open
/// connections, idle pooled ones included (they are reused first by requests to the same host).
pub(crate) struct Conn {
    io: TokioIo<Box<dyn Io>>,
    h2: bool,
    info: ConnInfo,
    _host_permit: OwnedSemaphorePermit,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        let c = Connected::new().extra(self.info.clone());
        if self.h2 { c.negotiated_h2() } else { c }
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

/// The connector given to hyper-util's pooled client.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: Arc<ConnectorInner>,
}

struct ConnectorInner {
    tls: tokio_rustls::TlsConnector,
    proxy_tls: tokio_rustls::TlsConnector,
    proxies: ProxyRules,
    connect_timeout: Option<Duration>,
    tls_timeout: Option<Duration>,
    per_host: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_host_max: usize,
    counters: Arc<CounterSet>,
}

impl Connector {
    pub(crate) fn new(cfg: &ClientConfig, counters: Arc<CounterSet>) -> Result<Self, Error> {
        let mut tls = tls_config(cfg)?;
        let mut proxy_tls = tls.clone();
        // A proxy tunnel is always opened with HTTP/1.1 CONNECT, whatever the origin speaks.
        proxy_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        tls.alpn_protocols = if cfg.http2_prior_knowledge {
            vec![b"h2".to_vec()]
        } else if cfg.http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(Self {
            inner: Arc::new(ConnectorInner {
                tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
                proxy_tls: tokio_rustls::TlsConnector::from(Arc::new(proxy_tls)),
                proxies: ProxyRules::from_config(&cfg.proxy)?,
                connect_timeout: cfg.timeouts.connect,
                tls_timeout: cfg.timeouts.tls_handshake,
                per_host: Mutex::new(HashMap::new()),
                per_host_max: cfg.max_connections_per_host,
                counters,
            }),
        })
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = ConnectFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, ConnectFailure>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { inner.connect(uri).await })
    }
}

impl ConnectorInner {
    async fn connect(self: Arc<Self>, uri: Uri) -> Result<Conn, ConnectFailure> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(ConnectFailure::Other(format!("unsupported scheme in {uri}"))),
        };
        let host = uri.host().ok_or_else(|| ConnectFailure::Other(format!("no host in {uri}")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let key = format!("{}://{host}:{port}", if https { "https" } else { "http" });

        let host_sem = {
            let mut map = self.per_host.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(key).or_insert_with(|| Arc::new(Semaphore::new(self.per_host_max))).clone()
        };
        let host_permit = host_sem
            .acquire_owned()
            .await
            .map_err(|_| ConnectFailure::Other("connection limiter closed".to_owned()))?;

        let (io, h2) = self.open(https, &host, port).await?;
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
        Ok(Conn { io: TokioIo::new(io), h2, info: ConnInfo::default(), _host_permit: host_permit })
    }

    /// Opens the connection: the connect deadline covers DNS, TCP and the proxy tunnel, the TLS
    /// handshake deadline the handshake with the origin.
    async fn open(&self, https: bool, host: &str, port: u16) -> Result<(Box<dyn Io>, bool), ConnectFailure> {
        let connecting = async {
            Ok::<Box<dyn Io>, ConnectFailure>(match self.proxies.for_target(https, host) {
                Some(proxy) => self.tunnel(proxy, host, port).await?,
                None => Box::new(tcp_connect(host, port).await?),
            })
        };
        let stream = within(self.connect_timeout, ConnectFailure::Timeout, connecting).await??;
        if !https {
            return Ok((stream, false));
        }
        let name = server_name(host)?;
        let handshake = self.tls.connect(name, stream);
        let tls =
            within(self.tls_timeout, ConnectFailure::TlsTimeout, handshake).await?.map_err(tls_failure)?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        Ok((Box::new(tls), h2))
    }

    /// Opens a `CONNECT` tunnel to `host:port` through the proxy.
    async fn tunnel(&self, proxy: &Proxy, host: &str, port: u16) -> Result<Box<dyn Io>, ConnectFailure> {
        let tcp = tcp_connect(&proxy.host, proxy.port).await?;
        let mut stream: Box<dyn Io> = if proxy.tls {
            let name = server_name(&proxy.host)?;
            let handshake = self.proxy_tls.connect(name, tcp);
            Box::new(
                within(self.tls_timeout, ConnectFailure::TlsTimeout, handshake)
                    .await?
                    .map_err(tls_failure)?,
            )
        } else {
            Box::new(tcp)
        };
        let authority =
            if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(auth) = &proxy.authorization {
            req.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
        }
        req.push_str("\r\n");
        let fail = |m: String| ConnectFailure::Other(format!("proxy {}:{}: {m}", proxy.host, proxy.port));
        stream.write_all(req.as_bytes()).await.map_err(|e| fail(e.to_string()))?;
        stream.flush().await.map_err(|e| fail(e.to_string()))?;
        // The answer is read a byte at a time so that nothing after its blank line is consumed: those
        // bytes belong to the tunnelled connection. It is a few dozen bytes, once per connection.
        let mut head = Vec::with_capacity(256);
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() >= 16 * 1024 {
                return Err(fail("answer to CONNECT is too long".to_owned()));
            }
            let b = stream.read_u8().await.map_err(|e| fail(format!("reading answer to CONNECT: {e}")))?;
            head.push(b);
        }
        let status_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
        let status_line = String::from_utf8_lossy(status_line).trim().to_owned();
        let mut parts = status_line.split_whitespace();
        let version_ok = parts.next().is_some_and(|v| v.starts_with("HTTP/1."));
        match parts.next() {
            Some(code) if version_ok && code.len() == 3 && code.starts_with('2') => Ok(stream),
            _ => Err(fail(format!("CONNECT refused: {status_line}"))),
        }
    }
}

async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, ConnectFailure> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ConnectFailure::Other(format!("cannot resolve {host}: {e}")))?;
    let mut last = None;
    // Addresses are tried in the order the resolver gives them; each failure moves on to the next.
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                // Requests are small and latency-bound: Nagle's algorithm only delays them.
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(format!("{addr}: {e}")),
        }
    }
    Err(ConnectFailure::Other(match last {
        Some(m) => format!("cannot connect to {host}:{port}: {m}"),
        None => format!("{host} resolved to no address"),
    }))
}

fn server_name(host: &str) -> Result<ServerName<'static>, ConnectFailure> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| ConnectFailure::Tls(format!("invalid server name {host}: {e}")))
}

/// Runs `fut` under an optional deadline; `failure` when it runs out.
async fn within<F: Future>(
    deadline: Option<Duration>,
    failure: ConnectFailure,
    fut: F,
) -> Result<F::Output, ConnectFailure> {
    match deadline {
        Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| failure),
        None => Ok(fut.await),
    }
}

fn tls_failure(e: io::Error) -> ConnectFailure {
    // tokio-rustls reports handshake failures as io errors wrapping the rustls error; connection-level
    // failures during the handshake are not TLS problems and stay retryable.
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        // The first byte of a TLS record is its content type; a plain-HTTP server answers a
        // ClientHello with text ("HTTP/1.1 400"), whose first byte is no content type at all.
        Some(tls @ rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
            ConnectFailure::Tls(format!(
                "{tls}: the server did not answer in TLS (is this a plain-HTTP port?)"
            ))
        }
        Some(tls) => ConnectFailure::Tls(tls.to_string()),
        None => ConnectFailure::Other(format!("TLS handshake: {e}")),
    }
}

/// Adds the CA certificates of a PEM text to `roots`; fails, saying why, on a text that holds no
/// certificate or one that cannot be read.
pub(crate) fn add_roots_pem(roots: &mut rustls::RootCertStore, pem: &[u8]) -> Result<(), String> {
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("CA certificate PEM: {e}"))?;
        roots.add(cert).map_err(|e| format!("CA certificate: {e}"))?;
        n += 1;
    }
    if n == 0 {
        return Err("the CA certificate PEM text holds no certificate".to_owned());
    }
    Ok(())
}

/// Builds the rustls configuration: roots, client identity and the `danger` switch.
fn tls_config(cfg: &ClientConfig) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?;
    let builder = if cfg.danger_accept_invalid_certs {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        if !cfg.tls.no_webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for pem in &cfg.tls.extra_roots_pem {
            add_roots_pem(&mut roots, pem).map_err(Error::Config)?;
        }
        for der in &cfg.tls.extra_roots_der {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| Error::Config(format!("CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(Error::Config("no trusted root certificate".to_owned()));
        }
        builder.with_root_certificates(roots)
    };
    match &cfg.tls.client_identity_pem {
        None => Ok(builder.with_no_client_auth()),
        Some((chain, key)) => {
            let chain = CertificateDer::pem_slice_iter(chain)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Config(format!("client certificate PEM: {e}")))?;
            if chain.is_empty() {
                return Err(Error::Config("client certificate PEM holds no certificate".to_owned()));
            }
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| Error::Config(format!("client private key PEM: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Config(format!("client identity: {e}")))
        }
    }
}

/// The verifier behind `danger_accept_invalid_certs`: any certificate for any name. Handshake signatures
/// are still checked, so the peer must at least hold the key of the certificate it shows.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
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
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
