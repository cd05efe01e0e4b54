//! The output file: written under a temporary name beside its final path, renamed into place only when
//! complete, and removed when the export fails or is cancelled.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The output's write buffer. Writers hand over media in chunks at least this large, which go straight to
/// the file without being copied into the buffer; only small pieces (box headers) are gathered.
const OUTPUT_BUFFER: usize = 256 * 1024;

/// The temporary name of an output: `<name>.part` beside it.
pub(crate) fn temp_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    output.with_file_name(name)
}

/// An output being written.
pub(crate) struct Output {
    path: PathBuf,
    temp: PathBuf,
    file: Option<BufWriter<File>>,
    committed: bool,
}

impl Output {
    /// Creates the temporary file (replacing a leftover one).
    pub(crate) fn create(path: &Path) -> Result<Self> {
        let temp = temp_path(path);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(|source| Error::Output { path: temp.clone(), source })?;
        Ok(Self {
            path: path.to_path_buf(),
            temp,
            file: Some(BufWriter::with_capacity(OUTPUT_BUFFER, file)),
            committed: false,
        })
    }

    /// The temporary path, for a program (ffmpeg) that writes it itself. The file is closed first.
    pub(crate) fn handed_over(&mut self) -> &Path {
        self.file = None;
        &self.temp
    }

    /// The temporary path.
    pub(crate) fn temp(&self) -> &Path {
        &self.temp
    }

    pub(crate) fn error(&self, source: io::Error) -> Error {
        Error::Output { path: self.temp.clone(), source }
    }

    /// Writes at `offset` (for a length or duration known only at the end), then goes back to the end.
    pub(crate) fn patch(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        let result = (|| {
            let file = self.file.as_mut().ok_or_else(|| io::Error::other("the output is closed"))?;
            file.flush()?;
            let inner = file.get_mut();
            let end = inner.seek(SeekFrom::End(0))?;
            inner.seek(SeekFrom::Start(offset))?;
            inner.write_all(bytes)?;
            inner.seek(SeekFrom::Start(end))?;
            Ok(())
        })();
        result.map_err(|e| self.error(e))
    }

    /// Makes the file durable and gives it its final name; returns its size.
    pub(crate) fn commit(mut self) -> Result<u64> {
        let result = (|| {
            if let Some(mut file) = self.file.take() {
                file.flush()?;
                file.get_ref().sync_all()?;
            } else {
                File::open(&self.temp)?.sync_all()?;
            }
            let len = std::fs::metadata(&self.temp)?.len();
            std::fs::rename(&self.temp, &self.path)?;
            Ok(len)
        })();
        let len = result.map_err(|source| Error::Output { path: self.path.clone(), source })?;
        self.committed = true;
        Ok(len)
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().ok_or_else(|| io::Error::other("the output is closed"))?.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.as_mut().ok_or_else(|| io::Error::other("the output is closed"))?.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.committed {
            self.file = None;
            // A failed or cancelled export leaves nothing behind; the temporary name never looks finished
            // either way.
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}
