//! AES-128-CBC segment decryption: pure functions on byte slices, no IO.
//!
//! HLS `METHOD=AES-128` encrypts each whole media segment (and initialisation section) with AES-128 in
//! CBC mode and PKCS#7 padding (RFC 8216, section 5.2). The IV is the `IV` attribute of `EXT-X-KEY` when
//! present ([`parse_iv`]), otherwise the segment's media sequence number as a 128-bit big-endian integer
//! ([`sequence_iv`]); [`segment_iv`] picks between the two.
//!
//! [`Decryptor`] works on a segment as it arrives: [`Decryptor::update`] takes chunks of any size and
//! returns the plaintext that is safe to release, holding back only the last block, which may carry the
//! padding, until [`Decryptor::finish`] checks and strips it. [`Decryptor::keep_ciphertext`] makes one
//! that passes bytes through unchanged, for content that is stored encrypted. [`decrypt`] and
//! [`decrypt_in_place`] do a whole segment at once.
//!
//! Speed: blocks are decrypted in runs of as many as a chunk holds, through the `cbc` crate's block-slice
//! interface, so the `aes` crate can use its AES-NI code path (detected at run time) on eight blocks at a
//! time: CBC decryption, unlike encryption, does not chain from one block's output to the next block's
//! input. Each byte is copied once, from the input chunk into the output buffer, and decrypted there in
//! place; a [`Decryptor`] itself never allocates.
//!
//! ```
//! use stowage_fetch::decrypt::{Decryptor, decrypt, sequence_iv};
//!
//! # fn main() -> Result<(), stowage_fetch::decrypt::DecryptError> {
//! let key = [0x2bu8; 16];
//! let iv = sequence_iv(7);
//! // Ciphertext of "hello" (made with `openssl enc -aes-128-cbc -K 2b2b... -iv 0000...07`).
//! let ciphertext = [
//!     0x3a, 0xc1, 0x43, 0x0a, 0x5b, 0xfb, 0x46, 0xb5, 0x86, 0x72, 0xe3, 0x6a, 0x90, 0xcd, 0x41, 0x79,
//! ];
//! assert_eq!(decrypt(&key, &iv, &ciphertext)?, b"hello");
//!
//! // The same, as the bytes arrive in chunks of any size.
//! let mut decryptor = Decryptor::aes128(&key, &iv)?;
//! let mut plaintext = Vec::new();
//! for chunk in ciphertext.chunks(3) {
//!     decryptor.update(chunk, &mut plaintext);
//! }
//! decryptor.finish(&mut plaintext)?;
//! assert_eq!(plaintext, b"hello");
//! # Ok(())
//! # }
//! ```

use std::fmt;

use aes::Aes128;
use aes::cipher::consts::U16;
use aes::cipher::inout::InOutBuf;
use aes::cipher::{BlockDecryptMut, KeyIvInit};

/// The AES block size, in bytes: ciphertext lengths are multiples of it.
pub const BLOCK_LEN: usize = 16;

/// The AES-128 key size, in bytes.
pub const KEY_LEN: usize = 16;

type CbcDecryptor = cbc::Decryptor<Aes128>;

/// What can be wrong with a key, an IV or a ciphertext.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The key is not 16 bytes long.
    #[error("an AES-128 key is 16 bytes long, this one is {len} bytes")]
    KeyLength {
        /// The length of the key given.
        len: usize,
    },
    /// The ciphertext's length is not a multiple of the 16-byte block (a truncated or corrupted segment).
    #[error(
        "ciphertext of {len} bytes is not a multiple of the 16-byte AES block: truncated or not AES-128-CBC"
    )]
    NotBlockAligned {
        /// The ciphertext's length.
        len: u64,
    },
    /// The ciphertext is empty: PKCS#7 padding makes every ciphertext at least one block long.
    #[error("ciphertext is empty: AES-128-CBC with PKCS#7 padding is at least one 16-byte block")]
    Empty,
    /// The last block does not end in valid PKCS#7 padding: the key or IV is wrong, or the data is corrupt.
    #[error("bad PKCS#7 padding (last byte {last_byte:#04x}): wrong key or IV, or corrupted segment")]
    BadPadding {
        /// The last byte of the decrypted data, which should give the padding length (1 to 16).
        last_byte: u8,
    },
    /// An `IV` attribute that is not `0x` followed by 1 to 32 hexadecimal digits.
    #[error("IV {value:?} is not 0x followed by 1 to 32 hexadecimal digits")]
    InvalidIv {
        /// The attribute value as given.
        value: String,
    },
}

/// The IV of a segment without an explicit `IV` attribute: its media sequence number as a 128-bit
/// big-endian integer.
pub fn sequence_iv(media_sequence: u64) -> [u8; 16] {
    u128::from(media_sequence).to_be_bytes()
}

/// Parses the `IV` attribute of `EXT-X-KEY`: `0x` (or `0X`) and up to 32 hexadecimal digits, read as a
/// 128-bit big-endian integer (so shorter values are padded with leading zeros, as players do).
pub fn parse_iv(value: &str) -> Result<[u8; 16], DecryptError> {
    let invalid = || DecryptError::InvalidIv { value: value.to_owned() };
    let digits = value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")).ok_or_else(invalid)?;
    if digits.is_empty() || digits.len() > 32 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    u128::from_str_radix(digits, 16).map(u128::to_be_bytes).map_err(|_| invalid())
}

/// The IV for a segment: the explicit `IV` attribute when there is one, else [`sequence_iv`].
pub fn segment_iv(iv_attribute: Option<&str>, media_sequence: u64) -> Result<[u8; 16], DecryptError> {
    iv_attribute.map_or_else(|| Ok(sequence_iv(media_sequence)), parse_iv)
}

/// Decrypts a whole segment into a new buffer, checking and removing the padding.
pub fn decrypt(key: &[u8], iv: &[u8; 16], ciphertext: &[u8]) -> Result<Vec<u8>, DecryptError> {
    let mut cipher = new_cipher(key, iv)?;
    check_whole_length(ciphertext.len())?;
    let mut plaintext = ciphertext.to_vec();
    decrypt_blocks(&mut cipher, &mut plaintext);
    let len = unpadded_len(&plaintext)?;
    plaintext.truncate(len);
    Ok(plaintext)
}

/// Decrypts a whole segment in place and returns the plaintext's length: the plaintext is
/// `buf[..len]`, and what follows it is padding. No copy and no allocation.
pub fn decrypt_in_place(key: &[u8], iv: &[u8; 16], buf: &mut [u8]) -> Result<usize, DecryptError> {
    let mut cipher = new_cipher(key, iv)?;
    check_whole_length(buf.len())?;
    decrypt_blocks(&mut cipher, buf);
    unpadded_len(buf)
}

/// A streaming segment decryptor (or a pass-through for content kept encrypted).
///
/// Feed it the segment's bytes as they arrive with [`Decryptor::update`], then call
/// [`Decryptor::finish`]. Output is appended to a caller's buffer, which can be cleared and reused
/// across chunks and segments.
pub struct Decryptor {
    inner: Inner,
    /// Bytes seen so far.
    total: u64,
}

// The key schedule stays inline rather than boxed: a decryptor per segment then costs no allocation, and
// the pass-through variant is the rare case.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Aes128 {
        cipher: CbcDecryptor,
        /// Ciphertext not yet decrypted: a partial block, or the last complete block held back until it is
        /// known whether it is the final (padded) one. Between calls, 1 to 16 bytes once any input came.
        tail: [u8; BLOCK_LEN],
        tail_len: usize,
    },
    Keep,
}

impl fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key schedule is deliberately left out: keys do not belong in logs.
        let mode = match self.inner {
            Inner::Aes128 { .. } => "aes-128-cbc",
            Inner::Keep => "keep-ciphertext",
        };
        f.debug_struct("Decryptor").field("mode", &mode).field("bytes_in", &self.total).finish()
    }
}

impl Decryptor {
    /// A decryptor for AES-128-CBC with PKCS#7 padding. The key must be 16 bytes.
    pub fn aes128(key: &[u8], iv: &[u8; 16]) -> Result<Self, DecryptError> {
        Ok(Self {
            inner: Inner::Aes128 { cipher: new_cipher(key, iv)?, tail: [0; BLOCK_LEN], tail_len: 0 },
            total: 0,
        })
    }

    /// A pass-through that returns the input unchanged, for segments stored as they are (encrypted).
    pub fn keep_ciphertext() -> Self {
        Self { inner: Inner::Keep, total: 0 }
    }

    /// Whether this decryptor decrypts (as opposed to passing bytes through).
    pub fn is_decrypting(&self) -> bool {
        matches!(self.inner, Inner::Aes128 { .. })
    }

    /// How many input bytes it has been given.
    pub fn bytes_in(&self) -> u64 {
        self.total
    }

    /// Takes the next chunk of ciphertext (any size, empty included) and appends to `out` the plaintext
    /// that can be released: everything up to the last complete block, which is held back (with any
    /// partial block) until more input or [`Decryptor::finish`].
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.total += input.len() as u64;
        let Inner::Aes128 { cipher, tail, tail_len } = &mut self.inner else {
            out.extend_from_slice(input);
            return;
        };
        let available = *tail_len + input.len();
        if available <= BLOCK_LEN {
            tail[*tail_len..available].copy_from_slice(input);
            *tail_len = available;
            return;
        }
        // Hold back the partial block, or the last whole block when there is no partial one.
        let hold = match available % BLOCK_LEN {
            0 => BLOCK_LEN,
            partial => partial,
        };
        let release = available - hold;
        // `release` is a positive multiple of the block size and the tail holds at most one block, so the
        // tail is always released whole.
        let from_input = release - *tail_len;
        let start = out.len();
        out.reserve(release);
        out.extend_from_slice(&tail[..*tail_len]);
        out.extend_from_slice(&input[..from_input]);
        decrypt_blocks(cipher, &mut out[start..]);
        let kept = &input[from_input..];
        tail[..kept.len()].copy_from_slice(kept);
        *tail_len = kept.len();
    }

    /// Ends the segment: decrypts the held-back block, checks and strips the padding, and appends the
    /// rest of the plaintext to `out`. For a pass-through, does nothing.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), DecryptError> {
        let Inner::Aes128 { mut cipher, mut tail, tail_len } = self.inner else {
            return Ok(());
        };
        check_whole_length_u64(self.total)?;
        // With a block-aligned, non-empty total, the held-back tail is exactly one block.
        debug_assert_eq!(tail_len, BLOCK_LEN);
        decrypt_blocks(&mut cipher, &mut tail);
        let len = unpadded_len(&tail)?;
        out.extend_from_slice(&tail[..len]);
        Ok(())
    }
}

fn new_cipher(key: &[u8], iv: &[u8; 16]) -> Result<CbcDecryptor, DecryptError> {
    CbcDecryptor::new_from_slices(key, iv).map_err(|_| DecryptError::KeyLength { len: key.len() })
}

fn check_whole_length(len: usize) -> Result<(), DecryptError> {
    check_whole_length_u64(len as u64)
}

fn check_whole_length_u64(len: u64) -> Result<(), DecryptError> {
    if len == 0 {
        Err(DecryptError::Empty)
    } else if !len.is_multiple_of(BLOCK_LEN as u64) {
        Err(DecryptError::NotBlockAligned { len })
    } else {
        Ok(())
    }
}

/// Decrypts `buf` in place; its length must be a multiple of the block size.
fn decrypt_blocks(cipher: &mut CbcDecryptor, buf: &mut [u8]) {
    let (blocks, rest) = InOutBuf::from(buf).into_chunks::<U16>();
    debug_assert!(rest.is_empty(), "callers pass whole blocks");
    cipher.decrypt_blocks_inout_mut(blocks);
}

/// The length of `plaintext` without its PKCS#7 padding, after checking every padding byte.
fn unpadded_len(plaintext: &[u8]) -> Result<usize, DecryptError> {
    let last_byte = *plaintext.last().ok_or(DecryptError::Empty)?;
    let pad = usize::from(last_byte);
    let bad = DecryptError::BadPadding { last_byte };
    if pad == 0 || pad > BLOCK_LEN || pad > plaintext.len() {
        return Err(bad);
    }
    let (text, padding) = plaintext.split_at(plaintext.len() - pad);
    if padding.iter().any(|&b| b != last_byte) {
        return Err(bad);
    }
    Ok(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ivs_parse_and_derive() {
        assert_eq!(sequence_iv(1), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(sequence_iv(u64::MAX)[8..], [0xff; 8]);
        assert_eq!(sequence_iv(u64::MAX)[..8], [0; 8]);
        let full = parse_iv("0x000102030405060708090A0b0c0d0e0f").unwrap();
        assert_eq!(full, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        assert_eq!(parse_iv("0X1f").unwrap(), sequence_iv(0x1f));
        for bad in ["", "0x", "1234", "0x0001020304050607080910111213141516", "0xzz", "0x+1", " 0x1"] {
            assert_eq!(parse_iv(bad), Err(DecryptError::InvalidIv { value: bad.to_owned() }), "{bad:?}");
        }
        assert_eq!(segment_iv(None, 9).unwrap(), sequence_iv(9));
        assert_eq!(segment_iv(Some("0x10"), 9).unwrap(), sequence_iv(16));
    }

    #[test]
    fn padding_checks() {
        let mut block = [7u8; 16];
        block[15] = 1;
        assert_eq!(unpadded_len(&block), Ok(15));
        assert_eq!(unpadded_len(&[16u8; 16]), Ok(0));
        assert_eq!(unpadded_len(&[0u8; 16]), Err(DecryptError::BadPadding { last_byte: 0 }));
        assert_eq!(unpadded_len(&[17u8; 16]), Err(DecryptError::BadPadding { last_byte: 17 }));
        let mut uneven = [3u8; 16];
        uneven[13] = 2;
        assert_eq!(unpadded_len(&uneven), Err(DecryptError::BadPadding { last_byte: 3 }));
    }

    #[test]
    fn wrong_key_lengths_and_shapes_are_errors() {
        let iv = [0u8; 16];
        assert_eq!(Decryptor::aes128(&[0u8; 15], &iv).unwrap_err(), DecryptError::KeyLength { len: 15 });
        assert_eq!(decrypt(&[0u8; 32], &iv, &[0u8; 16]).unwrap_err(), DecryptError::KeyLength { len: 32 });
        assert_eq!(decrypt(&[0u8; 16], &iv, &[]).unwrap_err(), DecryptError::Empty);
        assert_eq!(
            decrypt(&[0u8; 16], &iv, &[0u8; 17]).unwrap_err(),
            DecryptError::NotBlockAligned { len: 17 }
        );
        let mut d = Decryptor::aes128(&[0u8; 16], &iv).unwrap();
        d.update(&[0u8; 40], &mut Vec::new());
        assert_eq!(d.finish(&mut Vec::new()).unwrap_err(), DecryptError::NotBlockAligned { len: 40 });
        let d = Decryptor::aes128(&[0u8; 16], &iv).unwrap();
        assert_eq!(d.finish(&mut Vec::new()).unwrap_err(), DecryptError::Empty);
    }

    #[test]
    fn keep_ciphertext_passes_bytes_through() {
        let mut d = Decryptor::keep_ciphertext();
        let mut out = Vec::new();
        d.update(b"abc", &mut out);
        d.update(b"de", &mut out);
        assert!(!d.is_decrypting());
        assert_eq!(d.bytes_in(), 5);
        d.finish(&mut out).unwrap();
        assert_eq!(out, b"abcde");
    }
}
