//! Response bodies: bytes in memory, or a range of a bundle file read in chunks on the blocking threads,
//! the next chunk read while the previous one is being sent.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use stowage_bundle::OpenFile;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bytes read from a file per chunk: large enough that the per-chunk cost (a blocking-pool hop) is small
/// beside the copy, small enough that a connection holds little memory (two chunks at most).
const CHUNK: u64 = 256 * 1024;

/// A response body.
pub(crate) enum Body {
    /// No bytes (HEAD, 304, 416).
    Empty,
    /// Bytes in memory, sent at once.
    Full(Option<Bytes>),
    /// A range of a file.
    File(FileBody),
    /// Chunks as they come, until their sender goes (an event stream).
    Stream(mpsc::Receiver<Bytes>),
}

impl Body {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        Self::Full(Some(bytes.into()))
    }
}

/// `[offset, end)` of an open file.
pub(crate) struct FileBody {
    file: Arc<OpenFile>,
    offset: u64,
    end: u64,
    next: Option<JoinHandle<io::Result<Bytes>>>,
}

impl FileBody {
    pub(crate) fn new(file: Arc<OpenFile>, offset: u64, end: u64) -> Self {
        Self { file, offset, end, next: None }
    }

    /// Starts reading the chunk at `offset`, if any is left.
    fn read_ahead(&mut self) {
        if self.next.is_none() && self.offset < self.end {
            let (file, offset) = (Arc::clone(&self.file), self.offset);
            let len = (self.end - offset).min(CHUNK);
            self.next = Some(tokio::task::spawn_blocking(move || read_chunk(&file, offset, len)));
        }
    }
}

/// Reads exactly `len` bytes at `offset`. A file shorter than it was when opened (it cannot be: bundle
/// files are replaced, never truncated in place) ends the response with an error rather than a short body.
fn read_chunk(file: &OpenFile, offset: u64, len: u64) -> io::Result<Bytes> {
    let len = usize::try_from(len).map_err(io::Error::other)?;
    let mut buf = vec![0; len];
    let mut filled = 0;
    while filled < len {
        let n = file.read_at(&mut buf[filled..], offset + filled as u64).map_err(io::Error::other)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} ended at {} bytes", file.path().display(), offset + filled as u64),
            ));
        }
        filled += n;
    }
    Ok(Bytes::from(buf))
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.get_mut() {
            Self::Empty => Poll::Ready(None),
            Self::Full(bytes) => {
                Poll::Ready(bytes.take().filter(|b| !b.is_empty()).map(|b| Ok(Frame::data(b))))
            }
            Self::File(body) => {
                body.read_ahead();
                let Some(next) = body.next.as_mut() else { return Poll::Ready(None) };
                let read = ready!(Pin::new(next).poll(cx));
                body.next = None;
                let chunk = read.map_err(io::Error::other).and_then(|r| r)?;
                body.offset += chunk.len() as u64;
                body.read_ahead();
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Self::Stream(rx) => rx.poll_recv(cx).map(|chunk| chunk.map(|c| Ok(Frame::data(c)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            Self::File(body) => body.offset >= body.end && body.next.is_none(),
            Self::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Empty => SizeHint::with_exact(0),
            Self::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            // `offset` advances only when a chunk is handed over, so a read in flight is still counted.
            Self::File(body) => SizeHint::with_exact(body.end - body.offset),
            Self::Stream(_) => SizeHint::default(),
        }
    }
}

impl Drop for FileBody {
    fn drop(&mut self) {
        // A client that went away may leave a read in flight: a blocking read cannot be interrupted, so it
        // finishes on its own and its chunk is dropped unused.
        if let Some(next) = self.next.take() {
            next.abort();
        }
    }
}
