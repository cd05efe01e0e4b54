//! The listening socket, the connections, and their bounds.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use stowage_bundle::{PurgeReport, StorageManager};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::api::{Api, new_token};
use crate::assets::Assets;
use crate::config::ServeConfig;
use crate::error::{Error, Result};
use crate::service::{Shared, handle};

/// A running server: its address, and the way to stop it. Dropping it stops the server too (gracefully,
/// without waiting).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), stowage_serve::Error> {
/// use stowage_serve::Server;
///
/// let store = stowage_bundle::StorageManager::new("downloads");
/// let server = Server::bind("127.0.0.1:0".parse().unwrap(), store).await?;
/// println!("the store is at {}", server.url());
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    tls: bool,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    removed_at_start: Result<PurgeReport, stowage_bundle::Error>,
    api_token: Option<String>,
}

impl Server {
    /// Serves `store` on `addr` (a loopback address; port 0 picks a free one) with the default
    /// [`ServeConfig`]. Must be called within a Tokio runtime, on which the server then runs.
    pub async fn bind(addr: SocketAddr, store: StorageManager) -> Result<Self> {
        Self::bind_with(addr, store, ServeConfig::default()).await
    }

    /// Serves `store` on `addr` with `config`. Fails with [`Error::NotLoopback`] for an address other
    /// than loopback unless [`ServeConfig::allow_remote`] is set.
    ///
    /// Before it listens, the store's expired assets that no writer and no player holds are removed
    /// ([`StorageManager::remove_expired`]); [`removed_at_start`](Self::removed_at_start) says which. A
    /// store that cannot be changed (read-only media) is still served: the removal's error is kept there
    /// too.
    pub async fn bind_with(addr: SocketAddr, store: StorageManager, config: ServeConfig) -> Result<Self> {
        config.validate()?;
        if !config.allow_remote && !addr.ip().is_loopback() {
            return Err(Error::NotLoopback { addr });
        }
        let listener = TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })?;
        let sweeping = store.clone();
        let removed_at_start = match tokio::task::spawn_blocking(move || sweeping.remove_expired()).await {
            Ok(report) => report,
            Err(e) => Err(stowage_bundle::Error::Io {
                path: store.dir().to_path_buf(),
                source: io::Error::other(format!("removing expired assets stopped: {e}")),
            }),
        };
        let local = listener.local_addr().map_err(|source| Error::Bind { addr, source })?;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size(config.max_header_size)
            .max_headers(100);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(config.max_concurrent_streams)
            .max_header_list_size(u32::try_from(config.max_header_size).unwrap_or(u32::MAX));
        let tls = config.tls.as_ref().map(|t| tokio_rustls::TlsAcceptor::from(Arc::clone(&t.server)));
        let (stop, stopped) = watch::channel(false);
        let limits = Limits {
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
            shutdown_timeout: config.shutdown_timeout,
        };
        let connections = Arc::new(Semaphore::new(config.max_connections));
        let api = config.downloads.clone().map(|downloads| Api { downloads, token: new_token() });
        let api_token = api.as_ref().map(|a| a.token.clone());
        let shared = Arc::new(Shared { assets: Assets::new(store), config, api });
        let task =
            tokio::spawn(accept_loop(listener, shared, builder, tls.clone(), connections, limits, stopped));
        Ok(Self { addr: local, tls: tls.is_some(), stop, task: Some(task), removed_at_start, api_token })
    }

    /// The token the download API asks of requests that change the store
    /// (`Authorization: Bearer <token>`), made when the server started; `None` when the server was given no
    /// downloads to drive ([`ServeConfig::downloads`]). Show it only to whoever started the server.
    pub fn api_token(&self) -> Option<&str> {
        self.api_token.as_deref()
    }

    /// What the server removed from the store before it listened: expired assets (and what was left of
    /// bundles whose creation did not finish), or why it could not.
    pub fn removed_at_start(&self) -> Result<&PurgeReport, &stowage_bundle::Error> {
        self.removed_at_start.as_ref()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of the page (`http://127.0.0.1:8080/`, `https://` with TLS).
    pub fn url(&self) -> String {
        format!("{}://{}/", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Stops accepting connections, lets requests in flight finish (within
    /// [`ServeConfig::shutdown_timeout`]), closes every connection, and returns when all are closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The time bounds of connections.
#[derive(Clone, Copy)]
struct Limits {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    shutdown_timeout: Duration,
}

/// Resolves once the server is told to stop (or its handle is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Waits for a connection slot, then for a connection. At the cap, connections wait in the listen queue.
async fn accept(listener: &TcpListener, slots: &Arc<Semaphore>) -> Option<(TcpStream, OwnedSemaphorePermit)> {
    let permit = Arc::clone(slots).acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, permit)),
        Err(_) => {
            // Accept errors (too many open files, a connection reset in the queue) pass; back off briefly.
            tokio::time::sleep(Duration::from_millis(5)).await;
            None
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    builder: auto::Builder<TokioExecutor>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    slots: Arc<Semaphore>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stopping(&mut stop) => break,
            // Finished connections are reaped so that the set does not grow with every connection ever made.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = accept(&listener, &slots) => {
                let Some((stream, permit)) = accepted else { continue };
                // Playlists and small segments: latency matters more than packet count.
                let _ = stream.set_nodelay(true);
                let (shared, builder, tls, stop) = (Arc::clone(&shared), builder.clone(), tls.clone(), stop.clone());
                connections.spawn(async move {
                    let _permit = permit;
                    serve(stream, shared, builder, tls, limits, stop).await;
                });
            }
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(limits.shutdown_timeout, drain).await;
    connections.shutdown().await;
}

/// Serves one connection until it ends, stays idle too long, or the server stops.
async fn serve(
    stream: TcpStream,
    shared: Arc<Shared>,
    builder: auto::Builder<TokioExecutor>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
    stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = Watched { inner: stream, activity: Arc::clone(&activity) };
    match tls {
        Some(acceptor) => {
            let Ok(Ok(stream)) = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(io)).await
            else {
                return;
            };
            drive(stream, shared, builder, activity, limits, stop).await;
        }
        None => drive(io, shared, builder, activity, limits, stop).await,
    }
}

async fn drive<S>(
    io: S,
    shared: Arc<Shared>,
    builder: auto::Builder<TokioExecutor>,
    activity: Arc<Activity>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| handle(Arc::clone(&shared), req));
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        // Dropping the connection closes the socket.
        () = activity.idle_for(limits.idle_timeout) => {}
        () = stopping(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn.as_mut() => {}
                () = activity.idle_for(limits.idle_timeout) => {}
            }
        }
    }
}

/// When a connection last moved bytes, in milliseconds since it was made.
struct Activity {
    start: Instant,
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self { start: Instant::now(), last: AtomicU64::new(0) }
    }

    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    /// Resolves once no byte has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
            let deadline = self.start + last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// The connection's socket, noting each read or write that moves bytes.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        poll
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
