//! How requests are made: the headers, cookies and certificate authorities that every command that fetches
//! (`download`, `resume`, `inspect`) takes, defined once.

use std::path::PathBuf;

use anyhow::{Context, bail};
use stowage_fetch::{ClientConfig, HeaderName, HeaderValue, Request, TlsConfig};

/// Options of every command that fetches.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct RequestArgs {
    /// An HTTP header for every request, as `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// A cookie for every request, as `name=value` (repeatable).
    #[arg(long = "cookie", value_name = "NAME=VALUE")]
    cookies: Vec<String>,
    /// Trust the certificate authorities in this PEM file, besides the web's.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
}

impl RequestArgs {
    /// The headers, each checked to be a valid HTTP header (an invalid one is named).
    pub(crate) fn headers(&self) -> anyhow::Result<Vec<(HeaderName, HeaderValue)>> {
        self.headers
            .iter()
            .map(|header| {
                let Some((name, value)) = header.split_once(':') else {
                    bail!("-H {header}: expected `Name: value`");
                };
                let (name, value) = (name.trim(), value.trim());
                let name = HeaderName::from_bytes(name.as_bytes())
                    .with_context(|| format!("-H {header}: `{name}` is not a valid header name"))?;
                let value = HeaderValue::from_str(value)
                    .with_context(|| format!("-H {header}: the value is not a valid header value"))?;
                Ok((name, value))
            })
            .collect()
    }

    /// The cookies, as `(name, value)`.
    pub(crate) fn cookies(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.cookies
            .iter()
            .map(|cookie| match cookie.split_once('=') {
                Some((name, value)) if !name.trim().is_empty() => {
                    Ok((name.trim().to_owned(), value.trim().to_owned()))
                }
                _ => bail!("--cookie {cookie}: expected `name=value`"),
            })
            .collect()
    }

    /// The HTTP client's settings: the web's certificate authorities, and those of `--ca-file`.
    pub(crate) fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let Some(path) = &self.ca_file else { return Ok(ClientConfig::default()) };
        // Both the reading and the reading of certificates are checked here, so that what goes wrong
        // names the file: missing, unreadable, or holding no certificate that can be used.
        let pem =
            std::fs::read(path).with_context(|| format!("--ca-file {}: cannot read it", path.display()))?;
        let tls = TlsConfig::default()
            .try_add_root_certificates_pem(pem)
            .with_context(|| format!("--ca-file {}", path.display()))?;
        Ok(ClientConfig::default().tls(tls))
    }
}

/// The headers and cookies of [`RequestArgs`], checked once, for each request a command makes itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct Credentials {
    headers: Vec<(HeaderName, HeaderValue)>,
    cookies: Vec<(String, String)>,
}

impl Credentials {
    pub(crate) fn new(args: &RequestArgs) -> anyhow::Result<Self> {
        Ok(Self { headers: args.headers()?, cookies: args.cookies()? })
    }

    /// Adds the headers and cookies to a request.
    pub(crate) fn apply(&self, mut request: Request) -> Request {
        for (name, value) in &self.headers {
            request = request.header(name.clone(), value.clone());
        }
        for (name, value) in &self.cookies {
            request = request.cookie(name.clone(), value.clone());
        }
        request
    }
}
