//! Writing a master playlist: LF line ends, no blank lines, each tag in its canonical form, unknown lines
//! verbatim.

use std::fmt;

use super::model::MasterPlaylist;

impl MasterPlaylist<'_> {
    /// Writes the playlist (LF line ends) to `out`.
    pub fn write_to(&self, out: &mut String) {
        out.push_str("#EXTM3U\n");
        for t in &self.tags {
            t.write(out);
        }
    }
}

impl fmt::Display for MasterPlaylist<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_to(&mut s);
        f.write_str(&s)
    }
}
