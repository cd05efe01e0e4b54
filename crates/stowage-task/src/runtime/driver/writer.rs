//! The store side of the pipeline: decrypting a job's bytes and writing them into the bundle, on a
//! blocking thread.

use stowage_bundle::{Bundle, SegmentId};
use stowage_fetch::Bytes;
use stowage_fetch::decrypt::{Decryptor, decrypt};
use tokio::sync::mpsc;

use super::errors::store_failure;
use crate::engine::{Failure, Outcome};

/// A message from a fetch to its writer thread.
pub(super) enum Piece {
    /// The next bytes of the body.
    Chunk(Bytes),
    /// The body is complete.
    End,
}

/// Decrypts an initialization section (read whole) and stores it under each of `ids` not stored yet;
/// returns the bytes stored.
pub(super) fn store_init(
    bundle: &Bundle,
    ids: &[SegmentId],
    data: &[u8],
    key: Option<([u8; 16], [u8; 16])>,
) -> Result<u64, Failure> {
    let clear;
    let bytes = match key {
        Some((key, iv)) => {
            clear = decrypt(&key, &iv, data).map_err(|e| Failure::fatal(format!("cannot decrypt: {e}")))?;
            &clear[..]
        }
        None => data,
    };
    let mut stored = 0;
    for id in ids {
        if bundle.is_finished(id) {
            continue;
        }
        let mut writer = bundle.segment_writer(id).map_err(|e| store_failure(&e))?;
        writer.write(bytes).map_err(|e| store_failure(&e))?;
        stored += writer.finish().map_err(|e| store_failure(&e))?.length;
    }
    Ok(stored)
}

/// Decrypts and writes a segment as its chunks arrive. `None` when the fetch was abandoned before its end
/// (the partial write is discarded and nothing is reported: the fetch reports its own failure).
pub(super) fn write_segment(
    bundle: &Bundle,
    id: &SegmentId,
    key: Option<([u8; 16], [u8; 16])>,
    mut rx: mpsc::Receiver<Piece>,
) -> Option<Outcome> {
    let mut writer = match bundle.segment_writer(id) {
        Ok(w) => w,
        // Stored by an earlier start whose report was overtaken by a suspend: it counts as done.
        Err(stowage_bundle::Error::AlreadyFinished { .. }) => return Some(Outcome::success(0)),
        Err(e) => return Some(Outcome::Failure(store_failure(&e))),
    };
    let mut decryptor = match key {
        Some((key, iv)) => match Decryptor::aes128(&key, &iv) {
            Ok(d) => d,
            Err(e) => return Some(Outcome::Failure(Failure::fatal(format!("cannot decrypt: {e}")))),
        },
        None => Decryptor::keep_ciphertext(),
    };
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        match rx.blocking_recv() {
            Some(Piece::Chunk(chunk)) => {
                decryptor.update(&chunk, &mut out);
                if let Err(e) = writer.write(&out) {
                    return Some(Outcome::Failure(store_failure(&e)));
                }
                out.clear();
            }
            Some(Piece::End) => break,
            None => return None,
        }
    }
    if let Err(e) = decryptor.finish(&mut out) {
        return Some(Outcome::Failure(Failure::fatal(format!("cannot decrypt segment: {e}"))));
    }
    if let Err(e) = writer.write(&out) {
        return Some(Outcome::Failure(store_failure(&e)));
    }
    Some(match writer.finish() {
        Ok(f) => Outcome::success(f.length),
        Err(e) => Outcome::Failure(store_failure(&e)),
    })
}
