//! What the corpus tests share: where the peer corpus is, and its playlist files.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

/// The peer corpus (`shared/peer-fixtures` beside the repository). Without it the test fails, unless
/// `STOWAGE_ALLOW_MISSING_PEERS` is set, so that a missing corpus is never a silent pass.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peer-fixtures");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("STOWAGE_ALLOW_MISSING_PEERS").is_some() {
        eprintln!("peer corpus not found at {}; skipped (STOWAGE_ALLOW_MISSING_PEERS is set)", dir.display());
        return None;
    }
    panic!(
        "peer corpus not found at {}; put shared/peer-fixtures beside the repository, or set \
         STOWAGE_ALLOW_MISSING_PEERS to skip this test",
        dir.display()
    );
}

/// Every playlist file of the corpus below `dir`, sorted: all files but notes, licences and the expected
/// parses (`expected/` folders and JSON files).
pub fn playlists(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "expected") {
                    stack.push(path);
                }
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy();
            let skip = name.ends_with(".md") || name.ends_with(".json") || name.starts_with("LICENSE");
            if !skip {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
