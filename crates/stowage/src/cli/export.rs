//! `stowage export`: a stored asset to one file.

use std::io::Write as _;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use stowage_export::{ExportOptions, Method, Selection};

use super::store::StoreArgs;
use super::units::{human_bytes, human_duration};

#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// The bundle: its directory, or its asset identifier in the store.
    asset: String,
    /// The output file; its extension chooses the format: .ts (one rendition without ffmpeg), .mp4 or .m4a
    /// (fMP4 renditions without ffmpeg), .mkv, .vtt or .srt (one subtitle rendition).
    output: PathBuf,
    /// Audio renditions: languages, names or rendition identifiers, comma-separated (`en,fr`), or `all` or
    /// `none`.
    #[arg(long, value_name = "LANGS", default_value = "all")]
    audio: String,
    /// Subtitle renditions, likewise; `all` means those the format carries (none in .ts and .m4a).
    #[arg(long, value_name = "LANGS", default_value = "all")]
    subs: String,
    /// The video rendition, by its identifier (`stowage info` lists them); by default the primary one.
    #[arg(long, value_name = "RENDITION")]
    video: Option<String>,
    /// Export an asset with missing segments, or a live recording with holes: each gap or hole stays a
    /// jump in the timeline (nothing after it moves).
    #[arg(long)]
    allow_gaps: bool,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
    /// The ffmpeg program, for the exports that need it (.mkv; MPEG-TS into .mp4).
    #[arg(long, value_name = "PROGRAM", default_value = "ffmpeg")]
    ffmpeg: PathBuf,
    /// Print the report as one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(store: &StoreArgs, args: &ExportArgs) -> anyhow::Result<()> {
    let bundle = store.bundle_dir(&args.asset)?;
    if args.output.exists() && !args.force {
        bail!("{} exists; give --force to replace it", args.output.display());
    }
    let mut options = ExportOptions::new(&args.output)
        .audio(Selection::parse(&args.audio))
        .subtitles(Selection::parse(&args.subs))
        .allow_gaps(args.allow_gaps)
        .ffmpeg(&args.ffmpeg);
    if let Some(video) = &args.video {
        options = options.video(video);
    }

    // Ctrl-C cancels the export, which removes what it wrote, instead of killing the process.
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting")?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
            }
        });
    });

    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(8));
    bar.set_style(
        ProgressStyle::with_template(
            "exporting [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let result = stowage_export::export(&bundle, &options, |p| {
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_done);
        if interrupted.load(Ordering::SeqCst) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    });
    bar.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(e) if e.is_cancelled() => {
            eprintln!("interrupted; nothing was written to {}", args.output.display());
            std::process::exit(130);
        }
        Err(e) => {
            return Err(e).with_context(|| format!("exporting {} to {}", args.asset, args.output.display()));
        }
    };

    let method = match report.method {
        Method::TsConcat => "segments joined",
        Method::Fmp4 => "fragments muxed",
        Method::Subtitles => "cues joined",
        Method::Ffmpeg => "remuxed by ffmpeg",
        _ => "exported",
    };
    let mut out = String::new();
    if args.json {
        let tracks: Vec<_> = report
            .tracks
            .iter()
            .map(|t| {
                json!({
                    "kind": t.kind.as_str(), "rendition": t.rendition, "language": t.language,
                    "language_code": t.language_code, "name": t.name, "default": t.default,
                })
            })
            .collect();
        let gaps: Vec<_> = report
            .gaps
            .iter()
            .map(|g| json!({"rendition": g.rendition, "start": g.start, "duration": g.duration}))
            .collect();
        let value = json!({
            "output": report.output, "format": report.container.extension(), "method": method,
            "bytes": report.bytes, "duration": report.duration, "tracks": tracks, "gaps": gaps,
            "notes": report.notes,
        });
        out.push_str(&value.to_string());
        out.push('\n');
    } else {
        out.push_str(&format!(
            "exported {} ({}, {}; {method})\n",
            report.output.display(),
            human_bytes(report.bytes),
            human_duration(report.duration)
        ));
        for t in &report.tracks {
            out.push_str(&format!(
                "  {:<9} {:<4} {}{}  ({})\n",
                t.kind.as_str(),
                t.language_code,
                t.name.as_deref().unwrap_or(""),
                if t.default { " [default]" } else { "" },
                t.rendition
            ));
        }
        for g in &report.gaps {
            out.push_str(&format!(
                "  gap in {} at {:.3}s for {:.3}s: left as a jump\n",
                g.rendition, g.start, g.duration
            ));
        }
        for note in &report.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
    }
    std::io::stdout().lock().write_all(out.as_bytes()).context("writing to standard output")
}
