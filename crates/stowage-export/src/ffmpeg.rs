//! Exports that need a muxer this crate does not have (Matroska; MPEG-TS renditions into MP4; several
//! renditions into one MPEG-TS), made by ffmpeg.
//!
//! ffmpeg only remuxes: it is fed each rendition as one continuous stream through a named pipe, made by
//! this crate's own writers, so the hard parts are done before ffmpeg sees anything. MPEG-TS renditions
//! arrive with timestamps already carried across discontinuities (on the first part's clock, shifted to
//! presentation time 0 by `-itsoffset`, the same for all of them, with `-copyts` so that ffmpeg keeps them
//! as given); fMP4 renditions arrive as single-track fragmented MP4 already on the presentation timeline;
//! subtitles arrive as one WebVTT file on the presentation timeline. Languages (ISO 639-2), names and
//! default flags are set on every output stream.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stowage_bundle::MediaFormat;

use crate::error::{Error, Result};
use crate::export::{Job, Ticker, subtitle_file, write_fmp4, write_ts};
use crate::lang;
use crate::options::{Container, ExportOptions, TrackKind};
use crate::output::Output;

/// At most this much of ffmpeg's error output is kept for the error message.
const MAX_STDERR: usize = 16 * 1024;

/// What ffmpeg is needed for, and what can be exported without it.
fn why(job: &Job<'_>) -> (String, String) {
    let needed = match job.container {
        Container::Mkv => "to write Matroska".to_owned(),
        Container::Ts => "to mux several renditions, or fMP4, into one MPEG-TS file".to_owned(),
        _ if !job.subtitles.is_empty() => "to mux subtitle tracks into MP4".to_owned(),
        _ => "to remux MPEG-TS renditions into MP4".to_owned(),
    };
    let alternative =
        "one MPEG-TS rendition to .ts, fMP4 renditions to .mp4 or .m4a, subtitles to .vtt or .srt".to_owned();
    (needed, alternative)
}

/// Checks that `program` runs.
fn check(program: &Path, job: &Job<'_>) -> Result<()> {
    let missing = || {
        let (needed, alternative) = why(job);
        Error::FfmpegMissing { program: program.to_path_buf(), needed, alternative }
    };
    match Command::new(program)
        .arg("-version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        _ => Err(missing()),
    }
}

/// One stream fed to ffmpeg.
enum Feed {
    Ts(usize),
    Fmp4(usize),
    Subtitles(usize),
}

/// A private folder for the named pipes, removed with them.
struct PipeDir(PathBuf);

impl Drop for PipeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn run(
    job: &Job<'_>,
    options: &ExportOptions,
    output: &mut Output,
    ticker: &mut Ticker<'_>,
) -> Result<()> {
    check(&options.ffmpeg, job)?;
    run_piped(job, options, output, ticker)
}

#[cfg(not(unix))]
fn run_piped(job: &Job<'_>, _: &ExportOptions, _: &mut Output, _: &mut Ticker<'_>) -> Result<()> {
    Err(Error::Unsupported {
        container: job.container.extension(),
        reason: "exports through ffmpeg feed it through named pipes, which this platform lacks".into(),
    })
}

#[cfg(unix)]
fn run_piped(
    job: &Job<'_>,
    options: &ExportOptions,
    output: &mut Output,
    ticker: &mut Ticker<'_>,
) -> Result<()> {
    let source = job.source;
    let mut feeds = Vec::new();
    for s in &job.media {
        feeds.push(match source.rendition(s.index).plan.format {
            MediaFormat::Fmp4 => Feed::Fmp4(s.index),
            _ => Feed::Ts(s.index),
        });
    }
    feeds.extend(job.subtitles.iter().map(|s| Feed::Subtitles(s.index)));

    let stamp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir = PipeDir(std::env::temp_dir().join(format!("stowage-export-{}-{stamp}", std::process::id())));
    std::fs::create_dir(&dir.0).map_err(|source| Error::Output { path: dir.0.clone(), source })?;
    let mut pipes = Vec::new();
    for n in 0..feeds.len() {
        let path = dir.0.join(format!("input-{n}"));
        rustix::fs::mkfifoat(rustix::fs::CWD, &path, rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR)
            .map_err(|e| Error::Output { path: path.clone(), source: e.into() })?;
        pipes.push(path);
    }

    let args = arguments(job, &feeds, &pipes, output.handed_over());
    let mut child = Command::new(&options.ffmpeg)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|_| {
            let (needed, alternative) = why(job);
            Error::FfmpegMissing { program: options.ffmpeg.clone(), needed, alternative }
        })?;
    let stderr = child.stderr.take();

    let stop = AtomicBool::new(false);
    let ffmpeg_done = AtomicBool::new(false);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let meter = ticker.meter;
    let mut cancelled = None;
    let mut status = None;
    let mut errors = Vec::new();
    std::thread::scope(|scope| {
        let stderr_thread = scope.spawn(move || {
            let mut text = Vec::new();
            if let Some(mut err) = stderr {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = err.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    if text.len() < MAX_STDERR {
                        text.extend_from_slice(&chunk[..n]);
                    }
                }
            }
            String::from_utf8_lossy(&text).trim().to_owned()
        });
        for (feed, pipe) in feeds.iter().zip(&pipes) {
            let (stop, ffmpeg_done, failure) = (&stop, &ffmpeg_done, &failure);
            scope.spawn(move || {
                let result = feed_one(job, feed, pipe, stop, ffmpeg_done, &|bytes, segments| {
                    meter.add(bytes, segments);
                    if stop.load(Ordering::Relaxed) {
                        return Err(Error::Cancelled { path: PathBuf::new() });
                    }
                    Ok(())
                });
                if let Err(e) = result
                    && !e.is_cancelled()
                {
                    stop.store(true, Ordering::Relaxed);
                    let mut slot = failure.lock().unwrap_or_else(|p| p.into_inner());
                    slot.get_or_insert(e);
                }
            });
        }
        loop {
            match child.try_wait() {
                Ok(Some(s)) => {
                    status = Some(s);
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    errors.push(Error::Ffmpeg { status: "unknown".into(), stderr: e.to_string() });
                    kill(&mut child);
                    break;
                }
            }
            if cancelled.is_none()
                && let Err(e) = ticker.report()
            {
                cancelled = Some(e);
                stop.store(true, Ordering::Relaxed);
            }
            if stop.load(Ordering::Relaxed) {
                kill(&mut child);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        ffmpeg_done.store(true, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        let stderr_text = stderr_thread.join().unwrap_or_default();
        if let Some(s) = status
            && !s.success()
        {
            errors.push(Error::Ffmpeg { status: s.to_string(), stderr: stderr_text });
        }
    });
    if let Some(e) = cancelled {
        return Err(e);
    }
    // A feeder's own error (a bad segment) says more than ffmpeg's complaint about the stream it cut short.
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    if matches!(job.container, Container::Mp4 | Container::M4a) {
        // ffmpeg enables the first subtitle track when none is default; the source's flags are put back.
        let enabled: Vec<bool> = job.media.iter().chain(&job.subtitles).map(|s| s.default).collect();
        let temp = output.temp().to_path_buf();
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&temp)
            .and_then(|mut file| crate::fmp4::set_enabled(&mut file, &enabled))
            .map_err(|source| Error::Output { path: temp, source })?;
    }
    Ok(())
}

#[cfg(unix)]
fn kill(child: &mut Child) {
    // The child is ours; killing it by its handle cannot reach another process.
    let _ = child.kill();
}

/// Opens a named pipe for writing once ffmpeg has opened it for reading (without blocking, so that an
/// ffmpeg that exits first does not leave this thread waiting forever), then writes the stream.
#[cfg(unix)]
fn feed_one(
    job: &Job<'_>,
    feed: &Feed,
    pipe: &Path,
    stop: &AtomicBool,
    ffmpeg_done: &AtomicBool,
    tick: &(dyn Fn(u64, u64) -> Result<()> + Sync),
) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let pipe_error = |source: io::Error| Error::Output { path: pipe.to_path_buf(), source };
    let nonblock = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    let file = loop {
        match std::fs::OpenOptions::new().write(true).custom_flags(nonblock).open(pipe) {
            Ok(file) => break file,
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {
                if stop.load(Ordering::Relaxed) || ffmpeg_done.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled { path: PathBuf::new() });
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(pipe_error(e)),
        }
    };
    rustix::fs::fcntl_setfl(&file, rustix::fs::OFlags::empty()).map_err(|e| pipe_error(e.into()))?;
    let mut out = io::BufWriter::with_capacity(256 * 1024, file);
    let mut tick = |b: u64, s: u64| tick(b, s);
    match *feed {
        Feed::Ts(r) => write_ts(job, r, true, &mut out, &mut tick)?,
        Feed::Fmp4(r) => {
            let muxer = write_fmp4(job, &[r], &mut out, &mut tick)?;
            drop(muxer);
        }
        Feed::Subtitles(r) => {
            let text = subtitle_file(job, r, Container::WebVtt, &mut tick)?;
            out.write_all(text.as_bytes()).map_err(pipe_error)?;
        }
    }
    out.flush().map_err(pipe_error)?;
    Ok(())
}

/// The command line: inputs (with the offset that puts MPEG-TS clocks at presentation time 0), maps, codecs,
/// and each output stream's language, name and disposition.
fn arguments(job: &Job<'_>, feeds: &[Feed], pipes: &[PathBuf], output: &Path) -> Vec<String> {
    let source = job.source;
    let mut args: Vec<String> = ["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-copyts"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let origin = job.timeline.origin();
    for (feed, pipe) in feeds.iter().zip(pipes) {
        match feed {
            Feed::Ts(_) => {
                args.extend(["-itsoffset".into(), format!("{:.6}", -origin), "-f".into(), "mpegts".into()]);
            }
            Feed::Fmp4(_) => args.extend(["-f".into(), "mp4".into()]),
            Feed::Subtitles(_) => args.extend(["-f".into(), "webvtt".into()]),
        }
        args.extend(["-i".into(), pipe.to_string_lossy().into_owned()]);
    }
    let selected: Vec<_> = job.media.iter().chain(&job.subtitles).collect();
    for (n, s) in selected.iter().enumerate() {
        let map = match s.kind {
            TrackKind::Video => format!("{n}:v:0"),
            TrackKind::Audio => format!("{n}:a:0"),
            TrackKind::Subtitles => format!("{n}:s:0"),
        };
        args.extend(["-map".into(), map]);
    }
    // Audio carried in the video rendition itself, when no audio rendition is exported, comes last so that
    // the streams above keep their numbers.
    let has_audio = job.media.iter().any(|s| s.kind == TrackKind::Audio);
    if !has_audio
        && job.container != Container::M4a
        && job.media.first().is_some_and(|s| s.kind == TrackKind::Video)
    {
        args.extend(["-map".into(), "0:a?".into()]);
    }
    args.extend(["-c".into(), "copy".into()]);
    if !job.subtitles.is_empty() {
        let codec = if job.container == Container::Mkv { "srt" } else { "mov_text" };
        args.extend(["-c:s".into(), codec.into()]);
    }
    for (n, s) in selected.iter().enumerate() {
        let plan = &source.rendition(s.index).plan;
        let language = match job.container {
            Container::Mp4 | Container::M4a => lang::iso639_2t(plan.language.as_deref()),
            _ => lang::iso639_2b(plan.language.as_deref()),
        };
        args.extend([format!("-metadata:s:{n}"), format!("language={language}")]);
        if let Some(name) = &plan.name {
            args.extend([format!("-metadata:s:{n}"), format!("title={name}")]);
            if matches!(job.container, Container::Mp4 | Container::M4a) {
                args.extend([format!("-metadata:s:{n}"), format!("handler_name={name}")]);
            }
        }
        let mut disposition = if s.default { "default".to_owned() } else { "0".to_owned() };
        if s.forced {
            disposition.push_str("+forced");
        }
        args.extend([format!("-disposition:{n}"), disposition]);
    }
    args.extend(["-max_muxing_queue_size".into(), "4096".into(), "-f".into()]);
    args.push(
        match job.container {
            Container::Mkv => "matroska",
            Container::Ts => "mpegts",
            Container::M4a => "ipod",
            _ => "mp4",
        }
        .into(),
    );
    args.push(output.to_string_lossy().into_owned());
    args
}
