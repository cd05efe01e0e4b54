//! Serves an HLS asset as a live stream on 127.0.0.1 until interrupted, printing its URL on the first line
//! of standard output, to try players, recorders and other tools against it by hand.
//!
//! ```text
//! cargo run -p stowage-origin --example live -- --speed 1 --window 6 --black-hole 60+120 --end 300
//! ```
//!
//! Options (times in seconds of stream time, `AT+LENGTH` for spans):
//!
//! ```text
//! --source DIR            the asset's folder (default: the committed fixtures, tests/assets/hls/clear)
//! --playlist NAME         its master or media playlist (default: master.m3u8)
//! --port N                the port (default: any free one)
//! --speed X               stream seconds per wall second (default 1)
//! --window N              segments in the window (default 6)
//! --segment-duration S    the EXTINF of every segment (default: the source's)
//! --event                 an EVENT playlist instead of a sliding window
//! --first-msn N           the first media sequence number (default 0)
//! --keys N                AES-128, a new key every N segments
//! --part-target S         low-latency HLS with parts of at most S seconds
//! --black-hole AT+LEN     requests read and never answered
//! --refuse AT+LEN         connections refused
//! --status AT+LEN:CODE    every request answered CODE
//! --stall AT+LEN          the playlists stop changing
//! --stale AT+LEN:LAG/N    one playlist request in N answered LAG seconds out of date
//! --discontinuity AT      a content switch back to the source's first segment
//! --jump AT:BY            the media sequence jumps ahead by BY
//! --stop AT               no segment made after AT
//! --end AT                EXT-X-ENDLIST from AT
//! ```
//!
//! The options may be repeated and combined; each line the origin prints after the URL on standard error
//! tells when an event of the script starts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use stowage_origin::OriginConfig;
use stowage_origin::live::{
    KeyRotation, LiveConfig, LiveOrigin, LiveSource, LowLatency, PlaylistKind, Script,
};

fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(value).map_err(|_| format!("{text:?} is not a duration"))
}

/// `AT+LEN`.
fn span(text: &str) -> Result<(Duration, Duration), String> {
    let (at, length) = text.split_once('+').ok_or_else(|| format!("{text:?} is not AT+LENGTH"))?;
    Ok((seconds(at)?, seconds(length)?))
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/assets/hls/clear");
    let mut playlist = "master.m3u8".to_owned();
    let mut port = 0u16;
    let mut config = LiveConfig::default();
    let mut script = Script::new();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--source" => source = PathBuf::from(value()?),
            "--playlist" => playlist = value()?,
            "--port" => port = value()?.parse().map_err(|_| "--port needs a number".to_owned())?,
            "--speed" => config = config.speed(value()?.parse().map_err(|_| "--speed needs a number")?),
            "--window" => config = config.window(value()?.parse().map_err(|_| "--window needs a number")?),
            "--segment-duration" => config = config.segment_duration(seconds(&value()?)?),
            "--event" => config = config.kind(PlaylistKind::Event),
            "--first-msn" => {
                config =
                    config.first_media_sequence(value()?.parse().map_err(|_| "--first-msn needs a number")?);
            }
            "--keys" => {
                config =
                    config.keys(KeyRotation::every(value()?.parse().map_err(|_| "--keys needs a number")?));
            }
            "--part-target" => config = config.low_latency(LowLatency::part_target(seconds(&value()?)?)),
            "--black-hole" => {
                let (at, length) = span(&value()?)?;
                script = script.black_hole(at, length);
            }
            "--refuse" => {
                let (at, length) = span(&value()?)?;
                script = script.refuse(at, length);
            }
            "--status" => {
                let text = value()?;
                let (when, code) = text.split_once(':').ok_or("--status needs AT+LEN:CODE")?;
                let (at, length) = span(when)?;
                script = script.status(at, length, code.parse().map_err(|_| "--status needs a status code")?);
            }
            "--stall" => {
                let (at, length) = span(&value()?)?;
                script = script.stall(at, length);
            }
            "--stale" => {
                let text = value()?;
                let (when, how) = text.split_once(':').ok_or("--stale needs AT+LEN:LAG/N")?;
                let (lag, every) = how.split_once('/').ok_or("--stale needs AT+LEN:LAG/N")?;
                let (at, length) = span(when)?;
                let every = every.parse().map_err(|_| "--stale needs a count after /")?;
                script = script.stale(at, length, seconds(lag)?, every);
            }
            "--discontinuity" => script = script.discontinuity(seconds(&value()?)?),
            "--jump" => {
                let text = value()?;
                let (at, by) = text.split_once(':').ok_or("--jump needs AT:BY")?;
                script = script.jump(seconds(at)?, by.parse().map_err(|_| "--jump needs a number after :")?);
            }
            "--stop" => script = script.stop(seconds(&value()?)?),
            "--end" => script = script.end_list(seconds(&value()?)?),
            "-h" | "--help" => {
                println!("see the top of crates/stowage-origin/examples/live.rs for the options");
                return Ok(());
            }
            other => return Err(format!("unknown option {other:?} (try --help)")),
        }
    }
    let source = LiveSource::from_dir(&source, &playlist).map_err(|e| e.to_string())?;
    let live =
        LiveOrigin::start_with(source, config.script(script.clone()), OriginConfig::default().port(port))
            .map_err(|e| e.to_string())?;
    println!("{}", live.url());
    for rendition in live.renditions() {
        eprintln!("{:?} {}", rendition.kind, live.origin().url(&rendition.path));
    }
    let mut events: Vec<(Duration, String)> = script
        .events()
        .iter()
        .map(|e| {
            let at = match e.at {
                stowage_origin::live::At::Stream(at) => at,
                _ => Duration::ZERO,
            };
            (at, format!("{:?} for {:?}", e.action, e.length))
        })
        .collect();
    events.sort_by_key(|(at, _)| *at);
    for (at, what) in events {
        live.clock().sleep_until(at);
        eprintln!("{:>8.1} s: {what}", at.as_secs_f64());
    }
    loop {
        std::thread::park();
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("live: {message}");
            ExitCode::FAILURE
        }
    }
}
