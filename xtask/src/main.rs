//! The workspace's chores behind one entry point: `cargo xtask <command>`.
//!
//! - `ci`: the checks CI applies: fmt, clippy with warnings as errors, tests, docs with warnings as errors.
//!   `.ci/run` installs what they need and runs this, so that the two cannot drift.
//! - `fuzz [--seconds N] [TARGET...]`: builds every fuzz target, then runs each for N seconds (default 30)
//!   seeded from `fuzz/seeds/TARGET/`. Installs cargo-fuzz when it is missing.
//! - `bench [ARGS...]`: `cargo bench` over the workspace, passing ARGS through to criterion.
//! - `assets`: regenerates the HLS fixtures with ffmpeg (see `tests/assets/make.sh`).
//!
//! It depends on nothing but the standard library, so it builds in seconds on a fresh machine.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        usage();
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "ci" => ci(),
        "fuzz" => fuzz(rest),
        "bench" => bench(rest),
        "assets" => assets(),
        "-h" | "--help" | "help" => {
            usage();
            Ok(())
        }
        other => Err(format!("unknown command `{other}`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn usage() {
    eprintln!(
        "usage: cargo xtask <command>\n\n\
         commands:\n  \
         ci                         fmt, clippy -D warnings, tests, doc -D warnings\n  \
         fuzz [--seconds N] [T...]  build every fuzz target and run each for N seconds (default 30)\n  \
         bench [ARGS...]            cargo bench over the workspace\n  \
         assets                     regenerate the HLS test fixtures with ffmpeg"
    );
}

/// The workspace root: the parent of this crate's manifest directory.
fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// A cargo command in the workspace root: the cargo that runs xtask (`$CARGO`), so that every step uses
/// the same toolchain.
fn cargo() -> Command {
    let mut command = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root());
    command
}

/// Runs a command, echoing it first and timing it, and turns a failure into an error naming the step.
fn run(step: &str, command: &mut Command) -> Result<(), String> {
    eprintln!("==> {step}");
    let started = Instant::now();
    let status = command.status().map_err(|e| format!("{step}: could not start: {e}"))?;
    eprintln!("    {step}: {:.1}s", started.elapsed().as_secs_f64());
    if status.success() { Ok(()) } else { Err(format!("{step} failed ({status})")) }
}

fn ci() -> Result<(), String> {
    run("fmt", cargo().args(["fmt", "--all", "--check"]))?;
    run(
        "clippy",
        cargo().args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]),
    )?;
    run("test", cargo().args(["test", "--workspace", "--locked"]))?;
    run(
        "doc",
        cargo().args(["doc", "--workspace", "--no-deps", "--locked"]).env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    Ok(())
}

fn bench(args: &[String]) -> Result<(), String> {
    run("bench", cargo().args(["bench", "--workspace", "--locked"]).args(args))
}

fn assets() -> Result<(), String> {
    let script = root().join("tests/assets/make.sh");
    if !script.exists() {
        return Err(format!("{} does not exist", script.display()));
    }
    run("assets", Command::new("bash").arg(script).current_dir(root()))
}

fn fuzz(args: &[String]) -> Result<(), String> {
    let mut seconds: u64 = 30;
    let mut targets = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--seconds" {
            let value = iter.next().ok_or("--seconds needs a value")?;
            seconds = value.parse().map_err(|_| format!("--seconds: `{value}` is not a number"))?;
        } else {
            targets.push(arg.clone());
        }
    }
    let fuzz_dir = root().join("fuzz");
    // cargo-fuzz builds with sanitizers, a nightly feature: RUSTC_BOOTSTRAP lets the stable toolchain do it.
    let fuzz_cmd = || {
        let mut command = cargo();
        command.current_dir(&fuzz_dir).env("RUSTC_BOOTSTRAP", "1");
        command
    };
    let have_cargo_fuzz = fuzz_cmd().args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success());
    if !have_cargo_fuzz {
        run("install cargo-fuzz", cargo().args(["install", "--locked", "cargo-fuzz"]))?;
    }
    if targets.is_empty() {
        let out = fuzz_cmd().args(["fuzz", "list"]).output().map_err(|e| format!("cargo fuzz list: {e}"))?;
        if !out.status.success() {
            return Err(format!("cargo fuzz list failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        targets = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    }
    run("fuzz build", fuzz_cmd().args(["fuzz", "build", "-O"]))?;
    for target in &targets {
        // A fresh corpus directory per run, seeded from the committed seeds, keeps runs reproducible
        // and keeps the committed seed folders free of the fuzzer's output.
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        let seeds = fuzz_dir.join("seeds").join(target);
        let mut command = fuzz_cmd();
        command.args(["fuzz", "run", "-O", target]).arg(&corpus);
        if seeds.is_dir() {
            command.arg(&seeds);
        }
        command.args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
        ]);
        run(&format!("fuzz {target} ({seconds}s)"), &mut command)?;
    }
    Ok(())
}
