//! What the command-line tests share: running `stowage` on a store, and starting `stowage serve`.

// Each test file uses part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{ChildStdout, Command, Output, Stdio};

/// Runs `stowage --store STORE ARGS...` to its end, with nothing on its standard input.
pub(crate) fn stowage(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stowage"))
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("start stowage")
}

/// The standard output of a run that must have succeeded.
pub(crate) fn stdout_ok(output: &Output) -> String {
    assert!(output.status.success(), "stowage failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A running `stowage serve`, killed when the test ends, however it ends. Its standard output stays open
/// for as long as it runs.
pub(crate) struct Server {
    process: std::process::Child,
    _stdout: BufReader<ChildStdout>,
    /// The lines it printed when it started, up to `press Ctrl-C to stop`.
    pub banner: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Starts `stowage --store STORE serve ARGS...` and reads its banner.
pub(crate) fn serve(store: &Path, args: &[&str]) -> Server {
    let mut process = Command::new(env!("CARGO_BIN_EXE_stowage"))
        .arg("--store")
        .arg(store)
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stowage serve");
    let mut stdout = BufReader::new(process.stdout.take().expect("piped"));
    let mut banner = Vec::new();
    let mut server = |banner: &mut Vec<String>| {
        while banner.last().is_none_or(|l: &String| l != "press Ctrl-C to stop") {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                return false;
            }
            banner.push(line.trim_end().to_owned());
        }
        true
    };
    let whole = server(&mut banner);
    let server = Server { process, _stdout: stdout, banner };
    assert!(whole, "the banner ends: {:?}", server.banner);
    server
}
