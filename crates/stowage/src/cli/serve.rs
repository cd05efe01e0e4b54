//! `stowage serve`: the store over HTTP, with a page that plays it.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use stowage_serve::{Downloads, DownloadsError, ServeConfig, Server, TlsConfig};
use stowage_task::{
    CancelMode, ContentConfiguration, DownloadConfiguration, DownloadSession, DownloadTask, SessionConfig,
    asset_id_for,
};
use tokio::sync::broadcast;

use super::store::StoreArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on. Only loopback addresses unless --allow-remote is given.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Serve the store to other machines: allows an address other than loopback (and requests for any
    /// host name).
    #[arg(long)]
    allow_remote: bool,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Let pages of this origin (https://player.example, or *) load the media with CORS.
    #[arg(long, value_name = "ORIGIN")]
    cors_origin: Option<String>,
    /// Connections served at once; more wait their turn.
    #[arg(long, value_name = "N", default_value_t = ServeConfig::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Serve the store only: no download API (without it, the page and scripts holding the token printed
    /// at start may start, suspend, resume and remove downloads).
    #[arg(long)]
    read_only: bool,
}

/// The download API's downloads: a session of the store being served.
#[derive(Debug)]
struct SessionDownloads {
    session: DownloadSession,
    events: broadcast::Sender<String>,
}

impl SessionDownloads {
    /// A session of `store`, its events turned into JSON lines for the event stream. Must be called within
    /// the runtime.
    fn new(config: SessionConfig) -> anyhow::Result<Self> {
        let session = DownloadSession::new(config).context("starting the download session")?;
        let (events, _) = broadcast::channel(1024);
        let mut source = session.events();
        let sender = events.clone();
        tokio::spawn(async move {
            while let Some(event) = source.recv().await {
                let mut line = super::download::event_json(&event.event);
                line["asset"] = json!(event.asset);
                let _ = sender.send(line.to_string());
            }
        });
        Ok(Self { session, events })
    }

    /// The running or suspended task of `asset`.
    fn task(&self, asset: &str) -> Option<DownloadTask> {
        self.session.tasks().into_iter().rev().find(|t| t.asset() == asset && !t.state().is_terminal())
    }
}

/// The API's error for an error of the session.
fn session_error(e: &stowage_task::Error) -> DownloadsError {
    let invalid = matches!(e, stowage_task::Error::AssetBusy { .. })
        || e.bundle_error().is_some_and(|b| {
            matches!(b, stowage_bundle::Error::InvalidName { .. } | stowage_bundle::Error::Locked { .. })
        });
    if invalid {
        DownloadsError::Invalid { reason: e.to_string() }
    } else {
        DownloadsError::Failed { reason: e.to_string() }
    }
}

impl Downloads for SessionDownloads {
    fn start(&self, url: &str, name: Option<&str>) -> Result<String, DownloadsError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(DownloadsError::Invalid { reason: format!("{url:?} is not an http or https URL") });
        }
        let asset = name.map_or_else(|| asset_id_for(url), str::to_owned);
        let config = DownloadConfiguration::new(ContentConfiguration::new());
        let task = self.session.download_task_named(&asset, url, config).map_err(|e| session_error(&e))?;
        task.resume();
        Ok(asset)
    }

    fn suspend(&self, asset: &str) -> Result<(), DownloadsError> {
        let task = self.task(asset).ok_or_else(|| DownloadsError::NotFound { asset: asset.to_owned() })?;
        task.suspend();
        Ok(())
    }

    fn resume(&self, asset: &str) -> Result<(), DownloadsError> {
        if self.task(asset).is_none() {
            // An unfinished asset of the store that no task of this session holds: found again.
            self.session.restore().map_err(|e| session_error(&e))?;
        }
        let task = self.task(asset).ok_or_else(|| DownloadsError::NotFound { asset: asset.to_owned() })?;
        task.resume();
        Ok(())
    }

    fn remove(&self, asset: &str) -> Result<(), DownloadsError> {
        if let Some(task) = self.task(asset) {
            task.cancel(CancelMode::RemovePartial);
            // The removal is over when the task is: the server's threads may wait for it (the runtime has
            // others for the rest).
            let handle = tokio::runtime::Handle::current();
            tokio::task::block_in_place(|| handle.block_on(task.wait_for_state(|s| s.is_terminal())));
            return Ok(());
        }
        match self.session.store().remove(asset) {
            Ok(_) => Ok(()),
            Err(stowage_bundle::Error::NoSuchBundle { .. }) => {
                Err(DownloadsError::NotFound { asset: asset.to_owned() })
            }
            Err(e @ (stowage_bundle::Error::Locked { .. } | stowage_bundle::Error::InvalidName { .. })) => {
                Err(DownloadsError::Invalid { reason: e.to_string() })
            }
            Err(e) => Err(DownloadsError::Failed { reason: e.to_string() }),
        }
    }

    fn events(&self) -> broadcast::Receiver<String> {
        self.events.subscribe()
    }
}

pub(crate) fn run(store: &StoreArgs, args: &ServeArgs) -> anyhow::Result<()> {
    let manager = store.manager()?;
    let dir = manager.dir().to_path_buf();
    let mut config =
        ServeConfig::default().allow_remote(args.allow_remote).max_connections(args.max_connections);
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config = config.tls(TlsConfig::from_pem_files(cert, key)?);
    }
    if let Some(origin) = &args.cors_origin {
        config = config.cors_origin(origin.clone());
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async {
        // The session removes the store's expired assets when it starts, before the server would.
        let mut removed = String::new();
        if !args.read_only {
            let downloads = SessionDownloads::new(SessionConfig::new(&dir))?;
            removed = super::store::removed_lines(downloads.session.removed_at_start());
            config = config.downloads(Arc::new(downloads));
        }
        let server = Server::bind_with(args.listen, manager, config).await?;
        match server.removed_at_start() {
            Ok(report) => removed.push_str(&super::store::removed_lines(report)),
            Err(e) => removed.push_str(&format!("expired assets could not be removed: {e}\n")),
        }
        // One write, so that a reader that takes the first line and closes the pipe cannot make the
        // second fail.
        // The address comes first: scripts read it from the first line.
        let api = server.api_token().map_or_else(String::new, |token| {
            format!(
                "download API token: {token}\nmanage downloads from the page: {}#token={token}\n",
                server.url()
            )
        });
        let banner =
            format!("serving {} at {}\n{api}{removed}press Ctrl-C to stop\n", dir.display(), server.url());
        let mut out = std::io::stdout().lock();
        out.write_all(banner.as_bytes()).and_then(|()| out.flush()).context("writing to standard output")?;
        drop(out);
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        server.shutdown().await;
        Ok(())
    })
}
