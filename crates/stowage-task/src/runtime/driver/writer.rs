//! The store side of the pipeline: decrypting a job's bytes and writing them into the bundle, on a
//! blocking thread.

use stowage_bundle::{Bundle, SegmentId};
use stowage_fetch::Bytes;
use stowage_fetch::decrypt::{Decryptor, decrypt};
use tokio::sync::mpsc;

use super::errors::Failed;
use crate::planning::{Content, Sniffer};

/// A message from a fetch to its writer thread.
pub(super) enum Piece {
    /// The next bytes of the body.
    Chunk(Bytes),
    /// The body is complete.
    End,
}

/// What a writer thread needs: the bundle, the URI of the bytes (for errors), their key and IV, and what
/// they are expected to be once decrypted (checked before they are stored).
pub(super) struct Writer {
    pub(super) bundle: Bundle,
    pub(super) uri: String,
    pub(super) key: Option<([u8; 16], [u8; 16])>,
    pub(super) content: Content,
}

impl Writer {
    /// Decrypts an initialization section (read whole) and stores it under each of `ids` not stored yet;
    /// returns the bytes stored.
    pub(super) fn store_init(&self, ids: &[SegmentId], data: &[u8]) -> Result<u64, Failed> {
        let clear;
        let bytes = match self.key {
            Some((key, iv)) => {
                clear = decrypt(&key, &iv, data).map_err(|e| Failed::decrypt(&self.uri, e))?;
                &clear[..]
            }
            None => data,
        };
        let mut sniffer = Sniffer::new(self.content);
        sniffer.feed(bytes);
        sniffer.finish().map_err(|reason| Failed::unexpected_body(&self.uri, reason))?;
        let mut stored = 0;
        for id in ids {
            if self.bundle.is_finished(id) {
                continue;
            }
            let mut writer = self.bundle.segment_writer(id).map_err(|e| self.failed(e))?;
            writer.write(bytes).map_err(|e| self.failed(e))?;
            stored += writer.finish().map_err(|e| self.failed(e))?.length;
        }
        Ok(stored)
    }

    /// Decrypts and writes a segment as its chunks arrive; returns the bytes stored. `None` when the fetch
    /// was abandoned before its end (the partial write is discarded and nothing is reported: the fetch
    /// reports its own failure).
    pub(super) fn write_segment(
        &self,
        id: &SegmentId,
        mut rx: mpsc::Receiver<Piece>,
    ) -> Result<Option<u64>, Failed> {
        let mut writer = match self.bundle.segment_writer(id) {
            Ok(w) => w,
            // Stored by an earlier start whose report was overtaken by a suspend: it counts as done.
            Err(stowage_bundle::Error::AlreadyFinished { .. }) => return Ok(Some(0)),
            Err(e) => return Err(self.failed(e)),
        };
        let mut decryptor = match self.key {
            Some((key, iv)) => Decryptor::aes128(&key, &iv).map_err(|e| Failed::decrypt(&self.uri, e))?,
            None => Decryptor::keep_ciphertext(),
        };
        let mut sniffer = Sniffer::new(self.content);
        let mut out = Vec::with_capacity(64 * 1024);
        loop {
            match rx.blocking_recv() {
                Some(Piece::Chunk(chunk)) => {
                    decryptor.update(&chunk, &mut out);
                    sniffer.feed(&out);
                    writer.write(&out).map_err(|e| self.failed(e))?;
                    out.clear();
                }
                Some(Piece::End) => break,
                None => return Ok(None),
            }
        }
        decryptor.finish(&mut out).map_err(|e| Failed::decrypt(&self.uri, e))?;
        sniffer.feed(&out);
        // A body that is not what the playlist says is never stored: the writer, dropped unfinished,
        // removes what it wrote.
        sniffer.finish().map_err(|reason| Failed::unexpected_body(&self.uri, reason))?;
        writer.write(&out).map_err(|e| self.failed(e))?;
        Ok(Some(writer.finish().map_err(|e| self.failed(e))?.length))
    }

    /// The failure of a call into the bundle, naming the bundle (or the file the error names).
    fn failed(&self, e: stowage_bundle::Error) -> Failed {
        Failed::store(self.bundle.dir(), e)
    }
}
