//! Streaming Content-Encoding decoders (gzip, deflate, br), fed chunk by chunk.

use std::io::Write;

use bytes::Bytes;

/// A decoder that takes encoded chunks as they arrive and gives back whatever plain bytes they complete.
pub(crate) struct Decoder {
    kind: Kind,
    /// For `deflate`: bytes seen before the first two, which tell zlib framing from raw deflate.
    pending: Vec<u8>,
}

enum Kind {
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
    RawDeflate(flate2::write::DeflateDecoder<Vec<u8>>),
    /// `deflate` before its framing is known.
    Deflate,
    Brotli(Box<brotli_decompressor::DecompressorWriter<Vec<u8>>>),
}

impl Decoder {
    /// A decoder for this `Content-Encoding`, `Ok(None)` for identity, or `Err` naming an unsupported one.
    pub(crate) fn for_encoding(encoding: &str) -> Result<Option<Self>, String> {
        let enc = encoding.trim().to_ascii_lowercase();
        let kind = match enc.as_str() {
            "" | "identity" => return Ok(None),
            "gzip" | "x-gzip" => Kind::Gzip(flate2::write::MultiGzDecoder::new(Vec::new())),
            "deflate" => Kind::Deflate,
            "br" => Kind::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(Vec::new(), 4096))),
            other => return Err(format!("unsupported Content-Encoding {other:?}")),
        };
        Ok(Some(Self { kind, pending: Vec::new() }))
    }

    /// Feeds encoded bytes; returns the plain bytes decoded so far.
    pub(crate) fn push(&mut self, input: &[u8]) -> std::io::Result<Bytes> {
        if let Kind::Deflate = self.kind {
            self.pending.extend_from_slice(input);
            if self.pending.len() < 2 {
                return Ok(Bytes::new());
            }
            // HTTP's "deflate" is meant to be zlib-framed, but some servers send raw deflate: a zlib
            // header has compression method 8 and a checksum that makes the first two bytes divisible by 31.
            let (a, b) = (self.pending[0], self.pending[1]);
            let zlib = a & 0x0f == 8 && (u16::from(a) << 8 | u16::from(b)) % 31 == 0;
            self.kind = if zlib {
                Kind::Zlib(flate2::write::ZlibDecoder::new(Vec::new()))
            } else {
                Kind::RawDeflate(flate2::write::DeflateDecoder::new(Vec::new()))
            };
            let pending = std::mem::take(&mut self.pending);
            return self.push(&pending);
        }
        let out = match &mut self.kind {
            Kind::Gzip(d) => {
                d.write_all(input)?;
                d.get_mut()
            }
            Kind::Zlib(d) => {
                d.write_all(input)?;
                d.get_mut()
            }
            Kind::RawDeflate(d) => {
                d.write_all(input)?;
                d.get_mut()
            }
            Kind::Brotli(d) => {
                d.write_all(input)?;
                d.get_mut()
            }
            // Resolved above, once two bytes are in; nothing to emit before that.
            Kind::Deflate => return Ok(Bytes::new()),
        };
        Ok(Bytes::from(std::mem::take(out)))
    }

    /// Ends the stream: returns the last plain bytes, or an error if the encoded stream is truncated.
    pub(crate) fn finish(&mut self) -> std::io::Result<Bytes> {
        let truncated =
            || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "compressed stream is truncated");
        let out = match &mut self.kind {
            Kind::Gzip(d) => {
                d.try_finish()?;
                d.get_mut()
            }
            Kind::Zlib(d) => {
                d.try_finish()?;
                d.get_mut()
            }
            Kind::RawDeflate(d) => {
                d.try_finish()?;
                d.get_mut()
            }
            Kind::Brotli(d) => {
                d.close().map_err(|_| truncated())?;
                d.get_mut()
            }
            Kind::Deflate if self.pending.is_empty() => return Ok(Bytes::new()),
            Kind::Deflate => return Err(truncated()),
        };
        Ok(Bytes::from(std::mem::take(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(enc: &str, data: &[u8], piece: usize) -> Vec<u8> {
        let mut d = Decoder::for_encoding(enc).unwrap().unwrap();
        let mut out = Vec::new();
        for c in data.chunks(piece) {
            out.extend_from_slice(&d.push(c).unwrap());
        }
        out.extend_from_slice(&d.finish().unwrap());
        out
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_in_any_pieces() {
        let plain: Vec<u8> = b"#EXTM3U\n#EXT-X-VERSION:3\n".iter().copied().cycle().take(10_000).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zl.write_all(&plain).unwrap();
        let zl = zl.finish().unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&plain).unwrap();
        let raw = raw.finish().unwrap();
        for piece in [1, 7, 4096] {
            assert_eq!(decode_in_pieces("gzip", &gz, piece), plain);
            assert_eq!(decode_in_pieces("deflate", &zl, piece), plain);
            assert_eq!(decode_in_pieces("deflate", &raw, piece), plain);
        }
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&[7u8; 5000]).unwrap();
        let gz = gz.finish().unwrap();
        let mut d = Decoder::for_encoding("gzip").unwrap().unwrap();
        let _ = d.push(&gz[..gz.len() / 2]);
        assert!(d.finish().is_err());
    }

    #[test]
    fn encodings() {
        assert!(Decoder::for_encoding("identity").unwrap().is_none());
        assert!(Decoder::for_encoding("zstd").is_err());
        assert!(Decoder::for_encoding(" GZIP ").unwrap().is_some());
    }
}
