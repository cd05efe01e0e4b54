//! The `stowage` command-line tool.
fn main() {}
