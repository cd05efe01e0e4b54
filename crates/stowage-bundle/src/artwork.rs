//! Artwork kept with an asset: one image file in the bundle folder, recorded in the manifest.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ledger;
use crate::storage::Storage;

/// Artwork larger than this is refused when a bundle is created: a poster is tens or hundreds of kilobytes.
pub const MAX_ARTWORK_LEN: u64 = 16 * 1024 * 1024;

/// The media type recorded when artwork comes without one and its bytes are not a known image format.
const UNKNOWN_MEDIA_TYPE: &str = "application/octet-stream";

/// Image formats the bundle names by extension: (media type, extension).
const IMAGE_FORMATS: &[(&str, &str)] = &[
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
    ("image/avif", "avif"),
];

/// The extension of artwork whose media type is none of [`IMAGE_FORMATS`].
const OTHER_EXTENSION: &str = "bin";

/// Artwork for an asset (a poster or a thumbnail), given when the bundle is created.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Artwork {
    /// The image bytes.
    pub data: Vec<u8>,
    /// Its media type (`image/jpeg`); when `None`, it is recognised from the bytes (JPEG, PNG, GIF, WebP,
    /// AVIF).
    pub media_type: Option<String>,
}

impl Artwork {
    /// Artwork from image bytes, its type recognised from them.
    pub fn new(data: impl Into<Vec<u8>>) -> Self {
        Self { data: data.into(), media_type: None }
    }

    /// Sets the media type.
    #[must_use]
    pub fn media_type(mut self, media_type: impl Into<String>) -> Self {
        self.media_type = Some(media_type.into());
        self
    }

    /// The media type the artwork is recorded with: the one given (lowercase, without parameters), else the
    /// one its bytes show, else `application/octet-stream`.
    pub fn resolved_media_type(&self) -> String {
        match &self.media_type {
            Some(given) => {
                let essence = given.split(';').next().unwrap_or(given).trim().to_ascii_lowercase();
                if essence.is_empty() { UNKNOWN_MEDIA_TYPE.to_owned() } else { essence }
            }
            None => sniff_image(&self.data).unwrap_or(UNKNOWN_MEDIA_TYPE).to_owned(),
        }
    }
}

/// The artwork stored in a bundle, as the manifest records it (field `artwork`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ArtworkFile {
    /// The file name in the bundle folder: `artwork.<ext>`, the extension given by the media type
    /// (`jpg`, `png`, `gif`, `webp`, `avif`, or `bin` for anything else).
    pub file: String,
    /// The media type.
    pub media_type: String,
    /// Its length in bytes.
    pub length: u64,
    /// The CRC-32 of its bytes.
    pub crc32: u32,
}

impl ArtworkFile {
    /// Whether the media type is one of the raster image formats a browser shows (JPEG, PNG, GIF, WebP,
    /// AVIF), as opposed to bytes of an unknown or active type that must not be handed to one as an image.
    pub fn is_image(&self) -> bool {
        IMAGE_FORMATS.iter().any(|(media_type, _)| *media_type == self.media_type)
    }

    /// Checks a file name read from a manifest: only the names this crate writes are accepted, so that an
    /// edited manifest cannot point a reader at another file.
    pub(crate) fn check(&self, manifest: &Path) -> Result<()> {
        let extension = self.file.strip_prefix("artwork.").unwrap_or_default();
        if extension == OTHER_EXTENSION || IMAGE_FORMATS.iter().any(|(_, ext)| *ext == extension) {
            Ok(())
        } else {
            Err(Error::InvalidManifest {
                path: manifest.to_path_buf(),
                reason: format!("artwork file {:?} is not an artwork file name", self.file),
            })
        }
    }
}

/// The media type of JPEG, PNG, GIF, WebP and AVIF images, recognised from their first bytes; `None` for
/// anything else.
pub fn sniff_image(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some("image/webp")
    } else if data.len() >= 12 && &data[4..8] == b"ftyp" && matches!(&data[8..12], b"avif" | b"avis") {
        Some("image/avif")
    } else {
        None
    }
}

/// The file name of artwork of this media type.
fn file_name(media_type: &str) -> String {
    let ext = IMAGE_FORMATS.iter().find(|(t, _)| *t == media_type).map_or(OTHER_EXTENSION, |(_, ext)| ext);
    format!("artwork.{ext}")
}

/// Checks artwork given in a plan.
pub(crate) fn validate(artwork: &Artwork) -> Result<()> {
    let invalid = |reason: String| Err(Error::InvalidPlan { reason });
    if artwork.data.is_empty() {
        return invalid("the artwork is empty".into());
    }
    if artwork.data.len() as u64 > MAX_ARTWORK_LEN {
        return invalid(format!(
            "the artwork is {} bytes, more than the {MAX_ARTWORK_LEN} allowed",
            artwork.data.len()
        ));
    }
    let media_type = artwork.resolved_media_type();
    if media_type.chars().any(|c| c.is_ascii_control() || c == '"' || c == ' ') {
        return invalid(format!("the artwork's media type {media_type:?} is not a media type"));
    }
    Ok(())
}

/// Stores the artwork in the bundle folder `dir` (atomically) and says what the manifest records.
pub(crate) fn write(storage: &dyn Storage, dir: &Path, artwork: &Artwork) -> Result<ArtworkFile> {
    validate(artwork)?;
    let media_type = artwork.resolved_media_type();
    let file = file_name(&media_type);
    ledger::write_atomic(storage, &dir.join(&file), &artwork.data)?;
    Ok(ArtworkFile {
        file,
        media_type,
        length: artwork.data.len() as u64,
        crc32: crc32fast::hash(&artwork.data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_come_from_the_caller_or_the_bytes() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        assert_eq!(Artwork::new(png.clone()).resolved_media_type(), "image/png");
        assert_eq!(Artwork::new(png).media_type("Image/JPEG; q=1").resolved_media_type(), "image/jpeg");
        assert_eq!(Artwork::new(vec![1, 2, 3]).resolved_media_type(), "application/octet-stream");
        assert_eq!(file_name("image/webp"), "artwork.webp");
        assert_eq!(file_name("text/html"), "artwork.bin");
    }

    #[test]
    fn only_written_names_pass_the_manifest_check() {
        let file = |name: &str| ArtworkFile {
            file: name.into(),
            media_type: "image/png".into(),
            length: 1,
            crc32: 0,
        };
        assert!(file("artwork.png").check(Path::new("m")).is_ok());
        assert!(file("artwork.bin").check(Path::new("m")).is_ok());
        for bad in ["../manifest.json", "journal.log", "artwork.png/..", "artwork.html", ""] {
            assert!(file(bad).check(Path::new("m")).is_err(), "{bad:?} accepted");
        }
    }
}
