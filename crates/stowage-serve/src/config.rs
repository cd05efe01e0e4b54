//! Settings of a server: TLS, CORS, who may connect, and the bounds every connection lives within.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::api::Downloads;
use crate::error::{Error, Result};

/// How a [`Server`](crate::Server) runs. `Default` serves plain HTTP to loopback clients within the
/// documented bounds; setters change one thing each.
///
/// ```
/// use std::time::Duration;
/// use stowage_serve::ServeConfig;
///
/// let config = ServeConfig::default()
///     .cors_origin("https://player.example")
///     .max_connections(64)
///     .idle_timeout(Duration::from_secs(30));
/// assert_eq!(config.max_connections, 64);
/// assert!(!config.allow_remote);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// HTTPS with a given certificate; `None` (the default) serves plain HTTP.
    pub tls: Option<TlsConfig>,
    /// An origin (`https://player.example`, or `*` for any) whose pages may load the media with CORS, for
    /// a player on another page than the server's own. `None` (the default): same-origin only.
    pub cors_origin: Option<String>,
    /// Whether the server may bind an address other than loopback, serving the store to other machines.
    /// Off by default: [`Server::bind`](crate::Server::bind) refuses with
    /// [`Error::NotLoopback`](crate::Error::NotLoopback). While it is off, requests must also name a
    /// loopback host (`localhost`, `127.0.0.1`, `[::1]`) in their `Host`, so that a web page cannot reach
    /// the server through a domain name that resolves to loopback (DNS rebinding).
    pub allow_remote: bool,
    /// Connections served at once (default 256). More wait in the listen queue until one closes.
    pub max_connections: usize,
    /// How long a client has to send a request's header, and a TLS client to finish its handshake
    /// (default 10 s). Over it, the connection is closed. For HTTP/1.1 the time runs from the end of the
    /// previous response, so this is also how long an idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// How long a connection may make no progress at all, in either direction, before it is closed
    /// (default 60 s): an idle keep-alive connection, or a client that stopped reading its response.
    pub idle_timeout: Duration,
    /// The largest request header accepted, in bytes (default 16 KiB, at least 8 KiB). HTTP/1.1 requests
    /// over it are answered 431; HTTP/2 header lists over it are refused.
    pub max_header_size: usize,
    /// Requests served at once on one HTTP/2 connection (default 64).
    pub max_concurrent_streams: u32,
    /// How long a graceful shutdown lets requests in flight finish before closing their connections
    /// (default 5 s).
    pub shutdown_timeout: Duration,
    /// Downloads for the download API to drive (start, suspend, resume, remove, and their events); `None`
    /// (the default): the server only reads the store.
    pub downloads: Option<Arc<dyn Downloads>>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            tls: None,
            cors_origin: None,
            allow_remote: false,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_header_size: 16 * 1024,
            max_concurrent_streams: 64,
            shutdown_timeout: Duration::from_secs(5),
            downloads: None,
        }
    }
}

impl fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeConfig")
            .field("tls", &self.tls.is_some())
            .field("cors_origin", &self.cors_origin)
            .field("allow_remote", &self.allow_remote)
            .field("max_connections", &self.max_connections)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_header_size", &self.max_header_size)
            .field("max_concurrent_streams", &self.max_concurrent_streams)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("downloads", &self.downloads.is_some())
            .finish()
    }
}

impl ServeConfig {
    /// The default of [`ServeConfig::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

    /// The smallest [`ServeConfig::max_header_size`] accepted (HTTP/1.1 needs a buffer at least this big).
    pub const MIN_HEADER_SIZE: usize = 8 * 1024;

    /// Serves HTTPS with this certificate.
    #[must_use]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Lets pages of `origin` (`https://player.example`, or `*`) load the media with CORS.
    #[must_use]
    pub fn cors_origin(mut self, origin: impl Into<String>) -> Self {
        self.cors_origin = Some(origin.into());
        self
    }

    /// Allows binding a non-loopback address, which serves the store to other machines.
    #[must_use]
    pub fn allow_remote(mut self, yes: bool) -> Self {
        self.allow_remote = yes;
        self
    }

    /// Sets how many connections are served at once.
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets how long a client has to send a request header (or finish a TLS handshake).
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Sets how long a connection may make no progress before it is closed.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets the largest request header accepted, in bytes.
    #[must_use]
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.max_header_size = bytes;
        self
    }

    /// Sets how many requests one HTTP/2 connection may have in flight.
    #[must_use]
    pub fn max_concurrent_streams(mut self, n: u32) -> Self {
        self.max_concurrent_streams = n;
        self
    }

    /// Sets how long a graceful shutdown waits for requests in flight.
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Serves the download API over `downloads`: the page (and scripts holding the server's
    /// [`api_token`](crate::Server::api_token)) may start, suspend, resume and remove downloads and follow
    /// their events.
    #[must_use]
    pub fn downloads(mut self, downloads: Arc<dyn Downloads>) -> Self {
        self.downloads = Some(downloads);
        self
    }

    /// Checks the settings' ranges.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |name, reason: &str| Err(Error::Config { name, reason: reason.to_owned() });
        if self.max_connections == 0 {
            return bad("max_connections", "must be at least 1");
        }
        if self.max_header_size < Self::MIN_HEADER_SIZE {
            return bad("max_header_size", "must be at least 8192 bytes");
        }
        if self.max_concurrent_streams == 0 {
            return bad("max_concurrent_streams", "must be at least 1");
        }
        if self.header_read_timeout.is_zero() || self.idle_timeout.is_zero() {
            return bad("timeouts", "must be longer than zero");
        }
        if let Some(origin) = &self.cors_origin
            && (origin.is_empty() || origin.contains(|c: char| c.is_ascii_control() || c == ' ' || c == ','))
        {
            return bad("cors_origin", "must be one origin such as https://player.example, or *");
        }
        Ok(())
    }
}

/// HTTPS: a certificate chain and its private key, in PEM. HTTP/2 and HTTP/1.1 are offered by ALPN.
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) server: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// A certificate chain (leaf first) and a private key (PKCS #8, PKCS #1 or SEC1), both PEM.
    pub fn from_pem(certificates: &[u8], key: &[u8]) -> Result<Self> {
        Self::build(certificates, key, "the certificate PEM", "the key PEM")
    }

    /// Reads the certificate chain and the private key from PEM files.
    pub fn from_pem_files(certificates: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })
        };
        let (certificates, key) = (certificates.as_ref(), key.as_ref());
        Self::build(
            &read(certificates)?,
            &read(key)?,
            &certificates.display().to_string(),
            &key.display().to_string(),
        )
    }

    fn build(certificates: &[u8], key: &[u8], cert_name: &str, key_name: &str) -> Result<Self> {
        let tls = |reason: String| Error::Tls { reason };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(certificates)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| tls(format!("{cert_name}: {e}")))?;
        if chain.is_empty() {
            return Err(tls(format!("{cert_name} holds no CERTIFICATE section")));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| tls(format!("{key_name}: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| tls(format!("{cert_name} and {key_name}: {e}")))?;
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self { server: Arc::new(server) })
    }
}
