//! Where a playlist comes from: a file, standard input, or an http(s) URL fetched with stowage-fetch.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use stowage_fetch::{Client, ClientConfig, Request};
use stowage_playlist::resolve_uri;

use super::request::{Credentials, RequestArgs};

/// Playlists larger than this are refused before parsing, whatever their source: the parser's own input
/// limit says the same, but reading stops here first.
const MAX_PLAYLIST_BYTES: u64 = 64 << 20;

/// Where a playlist was read from; child playlists resolve against it.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    Stdin,
    File(PathBuf),
    /// The final URL, after redirects.
    Url(String),
}

impl Location {
    /// The base URL that URIs in the playlist resolve against, when there is one.
    pub(crate) fn base_url(&self) -> Option<&str> {
        match self {
            Self::Url(url) => Some(url),
            _ => None,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Stdin => "standard input".into(),
            Self::File(path) => path.display().to_string(),
            Self::Url(url) => url.clone(),
        }
    }
}

pub(crate) struct Loaded {
    pub(crate) bytes: Vec<u8>,
    pub(crate) location: Location,
}

/// Loads playlists; the HTTP client and its runtime are made on first use, so local inspection never
/// starts one.
#[derive(Default)]
pub(crate) struct Loader {
    http: Option<(tokio::runtime::Runtime, Client)>,
    /// The client's settings (certificate authorities).
    config: ClientConfig,
    /// Headers and cookies sent with every request.
    credentials: Credentials,
}

fn is_http(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

impl Loader {
    /// A loader that makes its requests with `request`'s headers, cookies and certificate authorities.
    pub(crate) fn new(request: &RequestArgs) -> anyhow::Result<Self> {
        Ok(Self { http: None, config: request.client_config()?, credentials: Credentials::new(request)? })
    }

    /// Loads what the user named: `-` for standard input, an http(s) URL, or a file path.
    pub(crate) fn load(&mut self, source: &str) -> anyhow::Result<Loaded> {
        if source == "-" {
            let bytes = read_limited(std::io::stdin()).context("standard input")?;
            return Ok(Loaded { bytes, location: Location::Stdin });
        }
        if is_http(source) {
            return self.fetch_all(vec![source.to_owned()]).pop().context("no response")?;
        }
        read_file(Path::new(source))
    }

    /// Loads the playlists a parent refers to (variants, renditions), all at once for URLs. Each result
    /// stands alone: one missing child does not hide the others.
    pub(crate) fn load_children(
        &mut self,
        parent: &Location,
        references: &[&str],
    ) -> Vec<anyhow::Result<Loaded>> {
        match parent {
            Location::Url(base) => {
                let mut results: Vec<Option<anyhow::Result<Loaded>>> = Vec::new();
                let mut wanted = Vec::new();
                for reference in references {
                    match resolve_uri(base, reference) {
                        Ok(url) if is_http(&url) => {
                            wanted.push((results.len(), url));
                            results.push(None);
                        }
                        Ok(url) => results.push(Some(Err(anyhow::anyhow!("{url}: only http(s) is fetched")))),
                        Err(e) => {
                            results.push(Some(Err(anyhow::Error::new(e).context(reference.to_string()))));
                        }
                    }
                }
                let (slots, urls): (Vec<usize>, Vec<String>) = wanted.into_iter().unzip();
                for (slot, result) in slots.into_iter().zip(self.fetch_all(urls)) {
                    results[slot] = Some(result);
                }
                results
                    .into_iter()
                    .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("no response"))))
                    .collect()
            }
            Location::File(path) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                references
                    .iter()
                    .map(|reference| {
                        if is_http(reference) {
                            self.fetch_all(vec![(*reference).to_owned()]).pop().context("no response")?
                        } else if reference.contains("://") {
                            bail!("{reference}: only http(s) URIs and relative paths are loaded")
                        } else {
                            // A query or fragment has no meaning for a local file.
                            let end = reference.find(['?', '#']).unwrap_or(reference.len());
                            read_file(&dir.join(&reference[..end]))
                        }
                    })
                    .collect()
            }
            Location::Stdin => references
                .iter()
                .map(|r| Err(anyhow::anyhow!("{r}: relative to standard input; give --base to resolve it")))
                .collect(),
        }
    }

    fn fetch_all(&mut self, urls: Vec<String>) -> Vec<anyhow::Result<Loaded>> {
        if self.http.is_none() {
            let made = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")
                .and_then(|rt| Ok((rt, Client::new(self.config.clone())?)));
            match made {
                Ok(pair) => self.http = Some(pair),
                Err(e) => {
                    let message = format!("{e:#}");
                    return urls.iter().map(|_| Err(anyhow::anyhow!("{message}"))).collect();
                }
            }
        }
        let Some((runtime, client)) = &self.http else { unreachable!("made above") };
        runtime.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for (i, url) in urls.into_iter().enumerate() {
                let (client, credentials) = (client.clone(), self.credentials.clone());
                set.spawn(async move { (i, fetch(&client, &credentials, &url).await) });
            }
            let mut results: Vec<Option<anyhow::Result<Loaded>>> = Vec::new();
            results.resize_with(set.len(), || None);
            while let Some(joined) = set.join_next().await {
                // A fetch task only fails to join if it panicked; its slot then reports "no response".
                if let Ok((i, result)) = joined {
                    results[i] = Some(result);
                }
            }
            results.into_iter().map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("no response")))).collect()
        })
    }
}

async fn fetch(client: &Client, credentials: &Credentials, url: &str) -> anyhow::Result<Loaded> {
    let request = credentials.apply(Request::get(url)?).decode_content(true).max_size(MAX_PLAYLIST_BYTES);
    let response = client.get(request).await?;
    let location = Location::Url(response.uri().to_owned());
    let bytes = response.bytes().await?.to_vec();
    Ok(Loaded { bytes, location })
}

/// Reads a playlist file, never more than the limit: the limit is applied while reading, since a device
/// (`/dev/zero`), a pipe or a file still growing says nothing true of its length beforehand.
fn read_file(path: &Path) -> anyhow::Result<Loaded> {
    let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let bytes = read_limited(file).with_context(|| format!("{}", path.display()))?;
    Ok(Loaded { bytes, location: Location::File(path.to_owned()) })
}

/// Reads everything `input` holds, failing once it holds more than [`MAX_PLAYLIST_BYTES`].
fn read_limited(input: impl Read) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    input.take(MAX_PLAYLIST_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_PLAYLIST_BYTES {
        bail!("larger than {MAX_PLAYLIST_BYTES} bytes, not a playlist");
    }
    Ok(bytes)
}
