//! HTTPS: a certificate authority made at start and a server certificate it signs.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::OriginError;

/// HTTPS settings. `Default` makes a server certificate for `127.0.0.1` and `localhost`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TlsConfig {
    /// The names (DNS names or IP addresses) the server certificate is valid for.
    pub hosts: Vec<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self { hosts: vec!["127.0.0.1".to_owned(), "localhost".to_owned()] }
    }
}

impl TlsConfig {
    /// Makes the server certificate valid for these names only.
    #[must_use]
    pub fn hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// A certificate for another host (`wrong.host.invalid`), signed by the same authority: clients that
    /// trust the authority must still reject it for `127.0.0.1`.
    #[must_use]
    pub fn wrong_host(self) -> Self {
        self.hosts(["wrong.host.invalid"])
    }
}

/// The authority's certificate, for clients.
#[derive(Debug)]
pub(crate) struct CertificateAuthority {
    pub(crate) pem: String,
    pub(crate) der: Vec<u8>,
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> OriginError {
    OriginError::Tls(format!("{what}: {e}"))
}

/// Makes the authority and the server certificate, and the acceptor that presents it.
pub(crate) fn acceptor(
    config: &TlsConfig,
    http1: bool,
    http2: bool,
) -> Result<(tokio_rustls::TlsAcceptor, CertificateAuthority), OriginError> {
    let ca_key = KeyPair::generate().map_err(|e| tls_error("authority key", e))?;
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_error("authority", e))?;
    ca_params.distinguished_name.push(DnType::CommonName, "stowage-origin test authority");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| tls_error("authority", e))?;

    let leaf_key = KeyPair::generate().map_err(|e| tls_error("server key", e))?;
    let mut leaf_params =
        CertificateParams::new(config.hosts.clone()).map_err(|e| tls_error("server certificate", e))?;
    leaf_params.distinguished_name.push(DnType::CommonName, "stowage-origin");
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .map_err(|e| tls_error("server certificate", e))?;

    let chain = vec![leaf_cert.der().clone(), CertificateDer::from(ca_cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("protocol versions", e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| tls_error("server certificate", e))?;
    if http2 {
        server.alpn_protocols.push(b"h2".to_vec());
    }
    if http1 {
        server.alpn_protocols.push(b"http/1.1".to_vec());
    }
    let ca = CertificateAuthority { pem: ca_cert.pem(), der: ca_cert.der().to_vec() };
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(server)), ca))
}
