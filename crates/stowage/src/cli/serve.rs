//! `stowage serve`: the store over HTTP, with a page that plays it.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use stowage_serve::{ServeConfig, Server, TlsConfig};

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
        let server = Server::bind_with(args.listen, manager, config).await?;
        let removed = match server.removed_at_start() {
            Ok(report) => super::store::removed_at_start_lines(report),
            Err(e) => format!("expired assets could not be removed: {e}\n"),
        };
        // One write, so that a reader that takes the first line and closes the pipe cannot make the
        // second fail.
        // The address comes first: scripts read it from the first line.
        let banner =
            format!("serving {} at {}\n{removed}press Ctrl-C to stop\n", dir.display(), server.url());
        let mut out = std::io::stdout().lock();
        out.write_all(banner.as_bytes()).and_then(|()| out.flush()).context("writing to standard output")?;
        drop(out);
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        server.shutdown().await;
        Ok(())
    })
}
