//! Command-line parsing and dispatch.

mod demo;
mod download;
mod export;
mod inspect;
mod output;
mod request;
mod serve;
mod source;
mod store;
mod units;

use clap::{Parser, Subcommand};

/// Download HLS assets for offline playback.
#[derive(Debug, Parser)]
#[command(name = "stowage", version, about, max_term_width = 110)]
pub(crate) struct Cli {
    #[command(flatten)]
    store: store::StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Download an asset into the store: a variant, audio and subtitle renditions, decrypted; or record a
    /// live stream.
    // Boxed: its many options make it much larger than the other commands.
    Download(Box<download::DownloadArgs>),
    /// Continue unfinished downloads (all of them, or one asset), fetching only what is missing.
    Resume(download::ResumeArgs),
    /// Show what a playlist holds: variants and renditions with estimated sizes, or a media playlist's
    /// segments, keys and byte ranges.
    Inspect(inspect::InspectArgs),
    /// Download the built-in sample asset from an in-process origin on 127.0.0.1, verify it, and say how
    /// to play it.
    Demo(demo::DemoArgs),
    /// List the assets in the store: size on disk, state, priority, expiry, last access.
    List(store::ListArgs),
    /// Show one stored asset: its renditions, what is loaded, its policy, and how to play it.
    Info(store::InfoArgs),
    /// Re-hash every stored segment against the journal and report (or repair) what is damaged.
    Verify(store::VerifyArgs),
    /// Remove an asset from the store.
    Remove(store::RemoveArgs),
    /// Remove assets until the store fits a quota or the disk has enough free space: expired assets
    /// first, then default-priority ones by least recent access; never important or in-use ones unless
    /// told.
    Purge(store::PurgeArgs),
    /// Change an asset's expiry or priority.
    Policy(store::PolicyArgs),
    /// Serve the store over HTTP on 127.0.0.1 (read-only), with a page that lists and plays it.
    Serve(serve::ServeArgs),
    /// Write a stored asset as one file (.ts, .mp4, .m4a, .mkv, .vtt, .srt), every track tagged with its
    /// language, name and default flag.
    Export(export::ExportArgs),
}

pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Download(args) => download::download(&cli.store, &args),
        Command::Resume(args) => download::resume(&cli.store, &args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Demo(args) => demo::run(&cli.store, &args),
        Command::List(args) => store::list(&cli.store, &args),
        Command::Info(args) => store::info(&cli.store, &args),
        Command::Verify(args) => store::verify(&cli.store, &args),
        Command::Remove(args) => store::remove(&cli.store, &args),
        Command::Purge(args) => store::purge(&cli.store, &args),
        Command::Policy(args) => store::policy(&cli.store, &args),
        Command::Serve(args) => serve::run(&cli.store, &args),
        Command::Export(args) => export::run(&cli.store, &args),
    }
}

/// Writes the error that ended the command to standard error.
pub(crate) fn report_error(e: &anyhow::Error) {
    // `{:#}` prints the whole chain of context on one line: what failed, then why.
    output::eprint(&format!("stowage: {e:#}\n"));
}

/// Lays out rows as columns separated by two spaces, each as wide as its widest cell. Cells are made
/// inert first, so that the columns line up with what is shown.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> =
        rows.iter().map(|row| row.iter().map(|cell| output::inert(cell).into_owned()).collect()).collect();
    let rows = &rows;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', widths[c] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}
