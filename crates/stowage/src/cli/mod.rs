//! Command-line parsing and dispatch.

mod inspect;
mod source;

use clap::{Parser, Subcommand};

/// Download HLS assets for offline playback.
#[derive(Debug, Parser)]
#[command(name = "stowage", version, about, max_term_width = 110)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what a playlist holds: variants and renditions with estimated sizes, or a media playlist's
    /// segments, keys and byte ranges.
    Inspect(inspect::InspectArgs),
}

pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Inspect(args) => inspect::run(&args),
    }
}
