//! `stowage download` and `stowage resume`: run download tasks with live progress bars, or JSON lines of
//! their events; Ctrl-C suspends cleanly and says how to resume.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use stowage_bundle::{AssetCache, Manifest};
use stowage_task::config::{
    ContentConfiguration, DownloadConfiguration, IntegrityPolicy, KeyPolicy, LiveStart, MediaKind,
    MediaSelection, Priority, RecordingConfiguration, StoragePolicy, VariantQualifier,
};
use stowage_task::events::{
    CompletedRendition, Progress, RecordingOrigin, RecordingProgress, SegmentRef, TaskEvent, TaskSummary,
};
use stowage_task::selection::ResolvedSelection;
use stowage_task::{DownloadSession, DownloadTask, SessionConfig, TaskState, asset_id_for};

use super::output;
use super::request::RequestArgs;
use super::store::StoreArgs;
use super::units::{format_utc, human_bytes, human_duration, parse_expiry, parse_size, parse_span};

/// Options of the commands that run downloads (`download` and `resume`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    request: RequestArgs,
    /// A limit on the download rate, in bytes per second (like 5M or 500K).
    #[arg(long, value_name = "RATE")]
    rate_limit: Option<String>,
    /// Connections at once, in total and per host: a hard limit. Without it, up to 64 in total and 16 per
    /// host, and up to 64 on a host that answers slowly but steadily, without pushback.
    #[arg(long, value_name = "N")]
    connections: Option<usize>,
    /// Most segments one media playlist may list (default 100000); a playlist with more is refused
    /// before it is read.
    #[arg(long, value_name = "N")]
    max_segments: Option<usize>,
    /// When a rendition's media playlist changed since its download began, drop what was stored of it and
    /// download it anew (without this, the download stops and says what changed).
    #[arg(long)]
    restart_changed: bool,
    /// Print the events as JSON lines instead of progress bars.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DownloadArgs {
    /// The master (or media) playlist URL.
    url: String,
    /// Which variant: qualifiers tried in order, then the highest that fits (repeatable). Like
    /// `max-resolution=1280x720,codec=avc1` or `max-bandwidth=3M`.
    #[arg(long = "variant", value_name = "QUALIFIER")]
    variants: Vec<String>,
    /// Audio renditions: languages (`en,fr`) or `all` (default: the default one).
    #[arg(long, value_name = "LANGS|all")]
    audio: Option<String>,
    /// Subtitle renditions: languages or `all` (default: none).
    #[arg(long, value_name = "LANGS|all")]
    subs: Option<String>,
    /// A title, shown by `list` and `info` (downloading an asset again with a new title renames it).
    #[arg(long)]
    title: Option<String>,
    /// The asset's name in the store (default: derived from the URL).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// When the asset expires: a span from now (30d, 12h) or a UTC date (2027-01-31). Downloading an
    /// asset again with it changes it; without it, the asset keeps its expiry.
    #[arg(long, value_name = "WHEN")]
    expires: Option<String>,
    /// Purge priority (default: `default` for a new asset; an asset downloaded again keeps its own).
    #[arg(long, value_parser = ["important", "default"])]
    priority: Option<String>,
    /// Store segments as fetched, with their keys in the bundle, instead of decrypting them.
    #[arg(long)]
    keep_encrypted: bool,
    /// Record segments that cannot be had as gaps and finish an incomplete asset, instead of failing.
    #[arg(long)]
    tolerant: bool,
    /// A live stream: where the recording starts: `edge`, the live edge (three target durations back, as
    /// a player starts); `oldest`, the oldest segment still listed; or an RFC 3339 date and time
    /// (2027-01-31T18:00:00Z), the segment whose program date time (EXT-X-PROGRAM-DATE-TIME) covers it,
    /// which the playlist must still list.
    #[arg(long, value_name = "WHERE", default_value = "edge")]
    live_start: String,
    /// A live stream: the longest span of media to record (like 90m or 2h).
    #[arg(long, value_name = "SPAN")]
    duration: Option<String>,
    /// A live stream: when to stop recording, a span from now (2h) or a UTC date and time
    /// (2027-01-31T18:00:00Z).
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// A live stream: how long the stream may bring nothing new (unreachable, erroring, or its playlist
    /// not changing) before the recording ends (default: keep trying for ever).
    #[arg(long, value_name = "SPAN")]
    max_outage: Option<String>,
    /// A live stream: fail the recording (unless --tolerant) when a segment it listed expired at the
    /// origin during an outage, instead of recording it as a hole that says it expired (the default: no
    /// recorder could have had it, and `stowage info` lists it).
    #[arg(long)]
    fail_on_expiry: bool,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ResumeArgs {
    /// The asset to resume (default: every unfinished asset in the store).
    asset: Option<String>,
    #[command(flatten)]
    run: RunArgs,
}

/// The configuration `download` asks for. An asset downloaded again (`existing`, its bundle's record)
/// keeps the expiry and priority that the command line does not change.
fn configuration(args: &DownloadArgs, existing: Option<&Manifest>) -> anyhow::Result<DownloadConfiguration> {
    let mut content = ContentConfiguration::new();
    for text in &args.variants {
        let qualifier: VariantQualifier = text.parse().with_context(|| format!("--variant {text}"))?;
        content = content.variant_qualifier(qualifier);
    }
    for (kind, value, flag) in
        [(MediaKind::Audio, &args.audio, "--audio"), (MediaKind::Subtitles, &args.subs, "--subs")]
    {
        if let Some(text) = value {
            for selection in
                MediaSelection::parse_list(kind, text).with_context(|| format!("{flag} {text}"))?
            {
                content = content.media_selection(selection);
            }
        }
    }
    let mut storage = StoragePolicy::new();
    let expires = match &args.expires {
        Some(text) => Some(parse_expiry(text, SystemTime::now()).context("--expires")?),
        None => existing.and_then(|m| m.policy.expires),
    };
    if let Some(at) = expires {
        storage = storage.expires(at);
    }
    let important = match args.priority.as_deref() {
        Some(priority) => priority == "important",
        None => existing.is_some_and(|m| m.policy.priority == Priority::Important),
    };
    if important {
        storage = storage.priority(Priority::Important);
    }
    let mut config = DownloadConfiguration::new(content)
        .storage(storage)
        .keys(if args.keep_encrypted { KeyPolicy::KeepEncrypted } else { KeyPolicy::Decrypt })
        .integrity(if args.tolerant { IntegrityPolicy::Tolerant } else { IntegrityPolicy::Strict });
    if let Some(title) = &args.title {
        config = config.title(title.clone());
    }
    let mut recording = RecordingConfiguration::new().start(parse_live_start(&args.live_start)?);
    if let Some(text) = &args.duration {
        recording = recording.duration(parse_span(text).context("--duration")?);
    }
    if let Some(text) = &args.until {
        recording = recording.until(parse_expiry(text, SystemTime::now()).context("--until")?);
    }
    if let Some(text) = &args.max_outage {
        recording = recording.max_outage(parse_span(text).context("--max-outage")?);
    }
    Ok(config.recording(recording.fail_on_expiry(args.fail_on_expiry)))
}

/// Where `--live-start` says a recording starts: `edge`, `oldest`, or an RFC 3339 date and time.
fn parse_live_start(text: &str) -> anyhow::Result<LiveStart> {
    match text {
        "edge" => Ok(LiveStart::Edge),
        "oldest" => Ok(LiveStart::Oldest),
        date => {
            let parsed = stowage_playlist::DateTime::parse(date).with_context(|| {
                format!("--live-start {date}: neither edge, oldest nor an RFC 3339 date and time like 2027-01-31T18:00:00Z")
            })?;
            let at =
                parsed.to_system_time().with_context(|| format!("--live-start {date}: not representable"))?;
            Ok(LiveStart::ProgramDateTime(at))
        }
    }
}

pub(crate) fn session_config(store: &StoreArgs, run: &RunArgs) -> anyhow::Result<SessionConfig> {
    let mut config = SessionConfig::new(store.dir()?).restart_changed_renditions(run.restart_changed);
    for (name, value) in run.request.headers()? {
        // A valid header value is visible ASCII, so it reads back as text.
        config = config.header(name.as_str(), value.to_str().unwrap_or_default());
    }
    for (name, value) in run.request.cookies()? {
        config = config.cookie(name, value);
    }
    if let Some(rate) = &run.rate_limit {
        config = config.rate_limit(Some(parse_size(rate).context("--rate-limit")?));
    }
    if let Some(n) = run.connections {
        if n == 0 {
            bail!("--connections must be at least 1");
        }
        config = config.max_connections(n).max_connections_per_host(n).per_host_ceiling(n);
    }
    if let Some(n) = run.max_segments {
        config = config.max_playlist_segments(n);
    }
    Ok(config.http(run.request.client_config()?))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub(crate) fn download(store: &StoreArgs, args: &DownloadArgs) -> anyhow::Result<()> {
    let asset = args.name.clone().unwrap_or_else(|| asset_id_for(&args.url));
    let existing = existing_record(store, &asset)?;
    let config = configuration(args, existing.as_ref())?;
    let session_config = session_config(store, &args.run)?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let session = DownloadSession::new(session_config)?;
        tell_removed_at_start(&session, args.run.json)?;
        let task = match &args.name {
            Some(name) => session.download_task_named(name, &args.url, config)?,
            None => session.download_task(&args.url, config)?,
        };
        run_tasks(&session, vec![task], args.run.json).await
    })
}

/// Says which expired assets the session removed from the store when it started: a line each, or a JSON
/// line each with `--json`.
fn tell_removed_at_start(session: &DownloadSession, json: bool) -> anyhow::Result<()> {
    let report = session.removed_at_start();
    if json {
        for r in &report.removed {
            let mut line = super::store::removed_json(r);
            line["event"] = json!("asset_removed");
            output::print_json(&line)?;
        }
        Ok(())
    } else {
        output::print(&super::store::removed_lines(report))
    }
}

/// The record of asset `asset` in the store, when it has a bundle there already.
fn existing_record(store: &StoreArgs, asset: &str) -> anyhow::Result<Option<Manifest>> {
    let Ok(path) = store.manager()?.bundle_path(asset) else { return Ok(None) };
    match AssetCache::open(&path) {
        Ok(cache) => Ok(Some(cache.manifest().clone())),
        Err(stowage_bundle::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading the asset {asset} already in the store")),
    }
}

pub(crate) fn resume(store: &StoreArgs, args: &ResumeArgs) -> anyhow::Result<()> {
    let session_config = session_config(store, &args.run)?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let session = DownloadSession::new(session_config)?;
        tell_removed_at_start(&session, args.run.json)?;
        let mut tasks = session.restore()?;
        // What restoring passes over is said, never taken for "nothing to do": bundles that cannot be
        // read, and unfinished ones that another process is writing.
        let store = session.store().dir().display().to_string();
        let listing = session.store().list().with_context(|| format!("listing {store}"))?;
        let mut damaged: Vec<String> =
            listing.damaged.iter().map(|d| format!("{}: damaged: {}", d.id, d.error)).collect();
        let busy: Vec<String> = listing
            .bundles
            .iter()
            .filter(|b| !b.finished && b.in_use)
            .map(|b| format!("{}: being written by another process", b.asset.id))
            .collect();
        if let Some(asset) = &args.asset {
            tasks.retain(|t| t.asset() == asset);
            damaged.retain(|d| d.starts_with(&format!("{asset}: ")));
            if let Some(why) = damaged.first().or(busy.iter().find(|b| b.starts_with(&format!("{asset}: "))))
            {
                bail!("cannot resume {why}");
            }
            if tasks.is_empty() {
                bail!("`{asset}` is not an unfinished asset of the store {store}");
            }
        }
        if tasks.is_empty() && damaged.is_empty() && busy.is_empty() {
            output::print("nothing to resume: every asset in the store is finished\n")?;
            return Ok(());
        }
        for line in &busy {
            output::print(&format!("skipped {line}\n"))?;
        }
        let ran = if tasks.is_empty() { Ok(()) } else { run_tasks(&session, tasks, args.run.json).await };
        if damaged.is_empty() {
            return ran;
        }
        let damaged = format!(
            "{} bundle(s) of the store {store} cannot be resumed:\n  {}\n`stowage list` shows them; \
             `stowage remove ASSET` deletes one",
            damaged.len(),
            damaged.join("\n  ")
        );
        match ran {
            Ok(()) => bail!("{damaged}"),
            Err(e) => bail!("{e:#}\n{damaged}"),
        }
    })
}

/// Ticks a task may be terminal without its ending event before the event counts as missed.
const ENDING_GRACE_TICKS: u32 = 3;

/// Runs tasks to their end, showing progress. Ctrl-C ends recordings of live streams, and otherwise (or
/// again) suspends every task and explains how to resume.
pub(crate) async fn run_tasks(
    session: &DownloadSession,
    tasks: Vec<DownloadTask>,
    json: bool,
) -> anyhow::Result<()> {
    let mut events = session.events();
    let mut ui = if json { Ui::Json } else { Ui::bars(&tasks) };
    for task in &tasks {
        task.resume();
    }
    let mut failures = Vec::new();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut stopping = false;
    // A task's ending is shown when its terminal event arrives. Events can be missed by a listener that
    // falls far behind, so a tick also reads the tasks' own state, and a task that has been terminal for a
    // few ticks without its event counts as ended.
    let mut ended: HashMap<String, u32> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    while tasks.iter().any(|t| ended.get(t.asset()).is_none_or(|ticks| *ticks < ENDING_GRACE_TICKS)) {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                let Some(task) = tasks.iter().find(|t| t.asset() == event.asset) else { continue };
                ui.show(task, &event.event)?;
                if event.event.is_terminal() {
                    ended.insert(task.asset().to_owned(), ENDING_GRACE_TICKS);
                }
            }
            _ = tick.tick() => {
                for task in &tasks {
                    ui.refresh(task);
                    if task.state().is_terminal() {
                        *ended.entry(task.asset().to_owned()).or_insert(0) += 1;
                    }
                }
            }
            _ = &mut interrupted => {
                // A first Ctrl-C ends the recordings of live streams (what is listed is still fetched,
                // and they finish as VOD bundles of what they recorded) and lets downloads go on; without
                // a recording, or at a second Ctrl-C, every task is suspended.
                let recording: Vec<&DownloadTask> =
                    tasks.iter().filter(|t| t.is_recording() && !t.state().is_terminal()).collect();
                if !stopping && !recording.is_empty() {
                    stopping = true;
                    for task in recording {
                        task.stop_recording();
                    }
                    output::eprint(
                        "\nstopping the recording: the segments already listed are being fetched \
                         (Ctrl-C again to suspend instead)\n",
                    );
                    interrupted.set(tokio::signal::ctrl_c());
                    continue;
                }
                for task in &tasks {
                    task.suspend();
                }
                for task in &tasks {
                    task.wait_for_state(|s| !matches!(s, TaskState::Running | TaskState::Waiting)).await;
                }
                ui.finish();
                output::eprint(&format!("
{}
", suspended_hint(session, &tasks)));
                std::process::exit(130);
            }
        }
    }
    ui.finish();
    // Events may have been missed under load; the tasks' own endings are the truth.
    for task in &tasks {
        match task.wait().await {
            Ok(path) => {
                if !json {
                    let complete = matches!(task.state(), TaskState::Finished { complete: true });
                    output::print(&format!(
                        "{} {}\n  play it: ffplay {}\n",
                        if complete { "downloaded" } else { "downloaded, INCOMPLETE (gaps recorded):" },
                        path.display(),
                        path.join("master.m3u8").display()
                    ))?;
                }
            }
            Err(e) => {
                let changed = matches!(e, stowage_task::Error::PlaylistChanged { .. });
                let line = format!("{}: {e}", task.asset());
                if !failures.iter().any(|(l, _, _)| l == &line) {
                    failures.push((line, task.asset().to_owned(), changed));
                }
            }
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    // What to try next names only what exists: a failure before anything was stored leaves nothing to
    // resume.
    let store = session.store().dir().display().to_string();
    let resumable: Vec<String> = session
        .store()
        .list()
        .map(|l| l.bundles.into_iter().filter(|b| !b.finished).map(|b| b.asset.id).collect())
        .unwrap_or_default();
    let mut lines = Vec::new();
    for (line, asset, changed) in failures {
        lines.push(line);
        if changed {
            lines.push(format!(
                "what was stored of the changed rendition(s) is kept until `stowage --store {store} resume \
                 --restart-changed {asset}` downloads them anew"
            ));
        } else if resumable.contains(&asset) {
            lines.push(format!(
                "finished segments are kept; `stowage --store {store} resume {asset}` continues"
            ));
        } else {
            lines.push(format!("nothing of {asset} was stored"));
        }
    }
    bail!("{}", lines.join("\n"))
}

/// What to say once Ctrl-C suspended the tasks: how to resume them. A task stopped before its playlists
/// were read has stored nothing but the record of its download, which `resume` starts again.
fn suspended_hint(session: &DownloadSession, tasks: &[DownloadTask]) -> String {
    let planned = |task: &DownloadTask| {
        AssetCache::open(task.bundle_path()).is_ok_and(|cache| !cache.manifest().renditions.is_empty())
    };
    let dir = session.store().dir().display();
    let stored: Vec<&str> = tasks.iter().filter(|t| planned(t)).map(DownloadTask::asset).collect();
    let recorded: Vec<&str> = tasks.iter().filter(|t| !planned(t)).map(DownloadTask::asset).collect();
    match (&stored[..], &recorded[..]) {
        ([], [one]) => format!(
            "suspended before anything was stored; the download is recorded, and\n  stowage --store {dir} \
             resume {one}\nstarts it again"
        ),
        ([], _) => format!(
            "suspended before anything was stored; the downloads are recorded, and\n  stowage --store {dir} \
             resume\nstarts them again"
        ),
        ([one], []) => format!(
            "suspended; finished segments are kept. Resume with:\n  stowage --store {dir} resume {one}"
        ),
        _ => format!("suspended; finished segments are kept. Resume with:\n  stowage --store {dir} resume"),
    }
}

/// Labels for a task's renditions, in plan order, from the resolved selection.
fn labels(selection: &ResolvedSelection) -> Vec<String> {
    let mut out = Vec::new();
    for reference in selection.media_playlists() {
        let content = &selection.contents[reference.content];
        let label = match reference.kind {
            None => {
                let v = &content.variant;
                match &v.resolution {
                    Some(r) => format!("video {r}"),
                    None => format!("variant {}", v.index),
                }
            }
            Some(kind) => {
                let r = content.renditions.iter().find(|r| r.uri.as_deref() == Some(reference.uri));
                let lang = r.and_then(|r| r.language.clone()).or_else(|| r.map(|r| r.name.clone()));
                format!("{} {}", kind.as_str().to_ascii_lowercase(), lang.unwrap_or_default())
            }
        };
        out.push(label);
    }
    out
}

enum Ui {
    Json,
    Bars { multi: MultiProgress, tasks: HashMap<String, TaskBars> },
}

struct TaskBars {
    total: ProgressBar,
    renditions: Vec<ProgressBar>,
    labels: Vec<String>,
    started: Instant,
    /// The tolerated deviations of playlists already shown: a playlist read again (a refresh) tells them
    /// again, and they are shown once.
    told: HashSet<String>,
}

fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Ui {
    fn bars(tasks: &[DownloadTask]) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        let mut map = HashMap::new();
        for task in tasks {
            let total = multi.add(ProgressBar::new(0));
            total.set_style(bar_style(
                "{prefix:>14} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            ));
            total.set_prefix(output::line(&short(task.asset(), 14)));
            total.set_message("starting");
            map.insert(
                task.asset().to_owned(),
                TaskBars {
                    total,
                    renditions: Vec::new(),
                    labels: Vec::new(),
                    started: Instant::now(),
                    told: HashSet::new(),
                },
            );
        }
        Self::Bars { multi, tasks: map }
    }

    fn show(&mut self, task: &DownloadTask, event: &TaskEvent) -> anyhow::Result<()> {
        match self {
            Self::Json => {
                let mut line = event_json(event);
                if let Value::Object(map) = &mut line {
                    map.insert("asset".into(), json!(task.asset()));
                }
                output::print_json(&line)
            }
            Self::Bars { multi, tasks } => {
                let Some(bars) = tasks.get_mut(task.asset()) else { return Ok(()) };
                match event {
                    TaskEvent::WillDownloadTo { path } => {
                        bars.total.println(output::line(&format!("downloading to {}", path.display())));
                    }
                    TaskEvent::AssetsRemoved { removed } => {
                        for r in removed {
                            let line = super::store::removed_line(r);
                            bars.total.println(output::line(&format!("to make room, {}", line.trim_end())));
                        }
                    }
                    TaskEvent::MediaSelectionResolved(selection) => {
                        bars.labels = labels(selection);
                        for label in &bars.labels {
                            let bar = multi.insert_before(&bars.total, ProgressBar::new(0));
                            bar.set_style(bar_style("{prefix:>14} [{bar:30}] {bytes}/{total_bytes} {msg}"));
                            bar.set_prefix(output::line(&short(label, 14)));
                            bars.renditions.push(bar);
                        }
                    }
                    TaskEvent::Progress(progress) => update(bars, progress),
                    TaskEvent::SegmentRetried {
                        attempt, cause, delay, retry_after, until, segment, ..
                    } => {
                        let what = format!("the {segment} (attempt {attempt})");
                        bars.total.set_message(output::line(&waiting(
                            &what,
                            cause,
                            *delay,
                            *retry_after,
                            *until,
                        )));
                    }
                    TaskEvent::RequestRetried { uri, cause, delay, retry_after, until, .. } => {
                        bars.total.set_message(output::line(&waiting(
                            uri,
                            cause,
                            *delay,
                            *retry_after,
                            *until,
                        )));
                    }
                    TaskEvent::PlaylistTolerated { uri, warnings, more } => {
                        let line = tolerated_line(uri, warnings, *more);
                        if bars.told.insert(line.clone()) {
                            bars.total.println(output::line(&line));
                        }
                    }
                    TaskEvent::Recording(recording) => {
                        bars.total.set_message(output::line(&recording_line(recording)));
                    }
                    TaskEvent::HoleRecorded { rendition, media_sequences: (first, last), cause } => {
                        bars.total.println(output::line(&format!(
                            "hole recorded in {rendition}: media sequence {first} to {last}: {cause}"
                        )));
                    }
                    TaskEvent::SegmentMissing { segment, failure } => {
                        bars.total.println(output::line(&format!(
                            "gap recorded: the {segment}: {} after {} attempt(s); {}",
                            failure.cause, failure.attempts, failure.reason
                        )));
                    }
                    TaskEvent::RenditionCompleted(done) => {
                        if let Some(bar) = bars.renditions.get(done.rendition) {
                            bar.finish();
                        }
                        bars.total.println(output::line(&format!(
                            "{} ({}) {}",
                            done.id,
                            rendition_label(done),
                            if done.complete { "complete" } else { "done, with gaps" }
                        )));
                    }
                    TaskEvent::Summary(summary) => bars.total.println(output::line(&summary_line(summary))),
                    TaskEvent::Cancelled { removed } => {
                        for bar in &bars.renditions {
                            bar.abandon();
                        }
                        bars.total.abandon_with_message(if *removed {
                            "cancelled, partial download removed"
                        } else {
                            "cancelled, partial download kept"
                        });
                    }
                    TaskEvent::Suspended { .. } => {
                        for bar in &bars.renditions {
                            bar.abandon();
                        }
                        bars.total.abandon_with_message("suspended");
                    }
                    TaskEvent::Finished { complete, .. } => {
                        for bar in &bars.renditions {
                            bar.finish();
                        }
                        bars.total.finish_with_message(format!(
                            "{} in {:.1}s",
                            if *complete { "done" } else { "done with gaps" },
                            bars.started.elapsed().as_secs_f64()
                        ));
                    }
                    TaskEvent::Failed(e) => {
                        for bar in &bars.renditions {
                            bar.abandon();
                        }
                        bars.total.abandon_with_message(output::line(&format!("failed: {e}")));
                    }
                    _ => {}
                }
                Ok(())
            }
        }
    }

    /// Brings a task's bars up to date from its own progress, in case events were missed.
    fn refresh(&mut self, task: &DownloadTask) {
        if let Self::Bars { tasks, .. } = self
            && let Some(bars) = tasks.get_mut(task.asset())
            && !bars.total.is_finished()
        {
            update(bars, &task.progress());
        }
    }

    fn finish(&mut self) {
        if let Self::Bars { tasks, .. } = self {
            for bars in tasks.values() {
                if !bars.total.is_finished() {
                    bars.total.abandon();
                }
            }
        }
    }
}

/// What the progress line says while a retry waits: what for, why, and until when, naming the server's
/// `Retry-After` when the wait is the one it asked for.
fn waiting(
    what: &str,
    cause: &impl std::fmt::Display,
    delay: Duration,
    retry_after: Option<Duration>,
    until: SystemTime,
) -> String {
    match retry_after {
        Some(after) => format!(
            "waiting until {} (Retry-After: {} s) to retry {what}: {cause}",
            format_utc(until),
            after.as_secs()
        ),
        None => format!("retrying {what} in {:.1}s: {cause}", delay.as_secs_f64()),
    }
}

fn update(bars: &mut TaskBars, progress: &Progress) {
    bars.total.set_length(progress.bytes_expected.max(progress.bytes_done));
    bars.total.set_position(progress.bytes_done);
    let loaded: Duration = progress.renditions.first().map(|r| r.loaded_duration).unwrap_or_default();
    bars.total.set_message(format!(
        "{}/{} segments, {} loaded{}",
        progress.segments_done,
        progress.segments_total,
        human_duration(loaded.as_secs_f64()),
        if progress.bytes_expected_exact { "" } else { " (size estimated)" }
    ));
    for r in &progress.renditions {
        if let Some(bar) = bars.renditions.get(r.rendition) {
            bar.set_length(r.bytes_expected.max(r.bytes_done));
            bar.set_position(r.bytes_done);
            bar.set_message(format!(
                "{}/{} segments, {} loaded",
                r.segments_done,
                r.segments_total,
                human_duration(r.loaded_duration.as_secs_f64())
            ));
        }
    }
}

/// A completed rendition for people: its kind, and its language or name.
fn rendition_label(done: &CompletedRendition) -> String {
    let kind = done.kind.as_str();
    match done.language.as_deref().or(done.name.as_deref()) {
        Some(what) => format!("{kind}, {what}"),
        None => kind.to_owned(),
    }
}

/// A task's summary on one line.
fn summary_line(summary: &TaskSummary) -> String {
    let variant = summary.variant.as_ref().map_or(String::new(), |v| {
        let mut text = format!(", variant {}", v.id);
        if let Some((w, h)) = v.resolution {
            text.push_str(&format!(" {w}x{h}"));
        }
        if let Some(b) = v.bandwidth {
            text.push_str(&format!(" {} kb/s", b / 1000));
        }
        text
    });
    format!(
        "{} received in {} request(s), {} retried, {:.1}s; {} stored in {} segment(s){}{variant}",
        human_bytes(summary.bytes_received),
        summary.requests,
        summary.retries,
        summary.duration.as_secs_f64(),
        human_bytes(summary.bytes_stored),
        summary.segments_stored,
        if summary.segments_missing > 0 {
            format!(", {} missing", summary.segments_missing)
        } else {
            String::new()
        },
    )
}

fn short(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let tail: String = text.chars().rev().take(width - 1).collect::<Vec<_>>().into_iter().rev().collect();
        format!("…{tail}")
    }
}

/// One event as a JSON object: `{"event": NAME, ...fields}`.
pub(crate) fn event_json(event: &TaskEvent) -> Value {
    match event {
        TaskEvent::WillDownloadTo { path } => json!({"event": "will_download_to", "path": path}),
        TaskEvent::MediaSelectionResolved(selection) => {
            let contents: Vec<Value> = selection
                .contents
                .iter()
                .map(|c| {
                    json!({
                        "variant": {
                            "index": c.variant.index,
                            "uri": c.variant.uri,
                            "bandwidth": c.variant.bandwidth,
                            "average_bandwidth": c.variant.average_bandwidth,
                            "resolution": c.variant.resolution.map(|r| r.to_string()),
                            "codecs": c.variant.codecs,
                        },
                        "renditions": c.renditions.iter().map(|r| json!({
                            "index": r.index,
                            "type": r.kind.as_str(),
                            "group_id": r.group_id,
                            "name": r.name,
                            "language": r.language,
                            "uri": r.uri,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({"event": "media_selection_resolved", "contents": contents})
        }
        TaskEvent::Progress(p) => json!({
            "event": "progress",
            "bytes_done": p.bytes_done,
            "bytes_expected": p.bytes_expected,
            "bytes_expected_exact": p.bytes_expected_exact,
            "segments_done": p.segments_done,
            "segments_total": p.segments_total,
            "segments_missing": p.segments_missing,
            "renditions": p.renditions.iter().map(|r| json!({
                "rendition": r.rendition,
                "bytes_done": r.bytes_done,
                "bytes_expected": r.bytes_expected,
                "segments_done": r.segments_done,
                "segments_total": r.segments_total,
                "segments_missing": r.segments_missing,
                "loaded_duration": r.loaded_duration.as_secs_f64(),
            })).collect::<Vec<_>>(),
        }),
        TaskEvent::LoadedTimeRangeAdded(r) => json!({
            "event": "loaded_time_range_added",
            "rendition": r.rendition,
            "added": [r.added.start.as_secs_f64(), r.added.end.as_secs_f64()],
            "loaded": r.loaded.iter().map(|t| json!([t.start.as_secs_f64(), t.end.as_secs_f64()])).collect::<Vec<_>>(),
            "expected": r.expected.map(|t| json!([t.start.as_secs_f64(), t.end.as_secs_f64()])),
        }),
        TaskEvent::SegmentRetried { attempt, cause, delay, retry_after, until, segment, .. } => json!({
            "event": "segment_retried",
            "segment": segment_json(segment),
            "attempt": attempt,
            "cause": cause.to_string(),
            "delay": delay.as_secs_f64(),
            "retry_after": retry_after.map(|d| d.as_secs_f64()),
            "until": format_utc(*until),
        }),
        TaskEvent::RequestRetried { uri, retry, cause, delay, retry_after, until, .. } => json!({
            "event": "request_retried",
            "uri": uri,
            "retry": retry,
            "cause": cause.to_string(),
            "delay": delay.as_secs_f64(),
            "retry_after": retry_after.map(|d| d.as_secs_f64()),
            "until": format_utc(*until),
        }),
        TaskEvent::PlaylistTolerated { uri, warnings, more } => json!({
            "event": "playlist_tolerated",
            "uri": uri,
            "warnings": warnings
                .iter()
                .map(|w| json!({"line": w.line, "column": w.column, "what": w.kind.to_string()}))
                .collect::<Vec<_>>(),
            "more": more,
        }),
        TaskEvent::SegmentMissing { segment, failure } => json!({
            "event": "segment_missing",
            "segment": segment_json(segment),
            "attempts": failure.attempts,
            "reason": format!("{}; {}", failure.cause, failure.reason),
        }),
        TaskEvent::RenditionCompleted(done) => json!({
            "event": "rendition_completed",
            "rendition": done.rendition,
            "id": done.id,
            "kind": done.kind.as_str(),
            "language": done.language,
            "name": done.name,
            "complete": done.complete,
        }),
        TaskEvent::Summary(summary) => json!({
            "event": "summary",
            "bytes_received": summary.bytes_received,
            "bytes_stored": summary.bytes_stored,
            "requests": summary.requests,
            "retries": summary.retries,
            "duration": summary.duration.as_secs_f64(),
            "segments_stored": summary.segments_stored,
            "segments_missing": summary.segments_missing,
            "variant": summary.variant.as_ref().map(|v| json!({
                "id": v.id,
                "uri": v.uri,
                "bandwidth": v.bandwidth,
                "resolution": v.resolution.map(|(w, h)| format!("{w}x{h}")),
                "codecs": v.codecs,
            })),
        }),
        TaskEvent::Finished { path, complete } => {
            json!({"event": "finished", "path": path, "complete": complete})
        }
        TaskEvent::Failed(e) => json!({
            "event": "failed",
            "error": e.to_string(),
            "uri": e.uri(),
            "status": e.status(),
            "path": e.path(),
        }),
        TaskEvent::Cancelled { removed } => json!({"event": "cancelled", "removed": removed}),
        TaskEvent::Recording(r) => {
            let (origin, seconds, ended) = match &r.origin {
                RecordingOrigin::Unreachable(d) => ("unreachable", Some(d.as_secs_f64()), None),
                RecordingOrigin::NotChanging(d) => ("not_changing", Some(d.as_secs_f64()), None),
                RecordingOrigin::Ended(why) => ("ended", None, Some(why.as_str())),
                // Live, and any state a later version tells.
                _ => ("live", None, None),
            };
            json!({
                "event": "recording",
                "recorded": r.recorded,
                "holes": r.holes,
                "origin": origin,
                "origin_for": seconds,
                "ended": ended,
                "max_outage": r.max_outage.map(|d| d.as_secs_f64()),
                "live_edge_delay": r.live_edge_delay.as_secs_f64(),
                "expired": r.expired,
            })
        }
        TaskEvent::HoleRecorded { rendition, media_sequences, cause } => json!({
            "event": "hole_recorded",
            "rendition": rendition,
            "media_sequences": [media_sequences.0, media_sequences.1],
            "cause": cause,
        }),
        TaskEvent::Suspended { path } => json!({"event": "suspended", "path": path}),
        TaskEvent::AssetsRemoved { removed } => json!({
            "event": "assets_removed",
            "removed": removed.iter().map(super::store::removed_json).collect::<Vec<_>>(),
        }),
        _ => json!({"event": "other"}),
    }
}

/// What a lenient read of the playlist at `uri` tolerated, in one line for people.
fn tolerated_line(uri: &str, warnings: &[stowage_playlist::Warning], more: usize) -> String {
    let listed: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    let more = if more > 0 { format!(" (and {more} more like these)") } else { String::new() };
    format!("note: {uri} read leniently: {}{more}", listed.join("; "))
}

/// The progress line of a recording: what is recorded, the holes, and the origin's state, saying that
/// an outage does not end the recording unless a limit was set.
fn recording_line(r: &RecordingProgress) -> String {
    let mut holes = match r.holes {
        0 => "no holes".to_owned(),
        1 => "1 hole".to_owned(),
        n => format!("{n} holes"),
    };
    if r.expired > 0 {
        holes.push_str(&format!(" ({} expired)", r.expired));
    }
    let behind = format!("{} behind the live edge", human_duration(r.live_edge_delay.as_secs_f64()));
    let keeps = match r.max_outage {
        None => "keeps trying".to_owned(),
        Some(limit) => format!("gives up after {}", human_duration(limit.as_secs_f64())),
    };
    let origin = match &r.origin {
        RecordingOrigin::Unreachable(d) => {
            format!("origin unreachable for {}, {keeps}", human_duration(d.as_secs_f64()))
        }
        RecordingOrigin::NotChanging(d) => {
            format!("playlist unchanged for {}, {keeps}", human_duration(d.as_secs_f64()))
        }
        RecordingOrigin::Ended(why) => format!("ending: {why}"),
        // Live, and any state a later version tells.
        _ => "live".to_owned(),
    };
    format!("recording: {} recorded, {behind}, {holes}, {origin}", human_duration(r.recorded))
}

/// A segment an event names, as a JSON object: its rendition, identity and URI.
fn segment_json(segment: &SegmentRef) -> Value {
    let id = &segment.id;
    json!({
        "rendition": id.rendition.as_str(),
        "kind": if segment.key { "key" } else if id.is_init() { "init" } else { "media" },
        "discontinuity_sequence": id.discontinuity_sequence,
        "media_sequence": id.media_sequence,
        "byte_range": id.byte_range.map(|r| json!({"offset": r.offset, "length": r.length})),
        "uri": segment.uri,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stowage_task::events::{RecordingOrigin, RecordingProgress};

    use super::recording_line;

    #[test]
    fn the_recording_line_says_how_far_behind_the_live_edge_and_how_many_holes_expired() {
        let mut progress = RecordingProgress::new(75.0, 3, RecordingOrigin::Live);
        progress.live_edge_delay = Duration::from_secs(6);
        progress.expired = 1;
        assert_eq!(
            recording_line(&progress),
            "recording: 1:15 recorded, 6.0 s behind the live edge, 3 holes (1 expired), live"
        );
    }
}
