//! The store of bundles: `list`, `info`, `verify`, `remove`, `purge`, `policy`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use stowage_bundle::{
    AssetCache, Bundle, BundleSummary, Manifest, Priority, PurgeOptions, PurgeReason, PurgeReport, Removed,
    StorageManager, StoragePolicy, StorePolicy,
};

use super::output::{print, print_json};
use super::units::{format_utc, human_bytes, human_duration, parse_expiry, parse_size, parse_span};

/// Where bundles are kept, shared by every command that uses the store.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StoreArgs {
    /// The store directory (default: $STOWAGE_STORE, else $XDG_DATA_HOME/stowage, else
    /// ~/.local/share/stowage).
    #[arg(long, short = 'o', value_name = "DIR", global = true)]
    store: Option<PathBuf>,
}

impl StoreArgs {
    pub(crate) fn dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.store {
            return Ok(dir.clone());
        }
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = env("STOWAGE_STORE") {
            return Ok(dir);
        }
        if let Some(data) = env("XDG_DATA_HOME") {
            return Ok(data.join("stowage"));
        }
        match env("HOME") {
            Some(home) => Ok(home.join(".local/share/stowage")),
            None => bail!("no store directory: give --store DIR or set STOWAGE_STORE"),
        }
    }

    pub(crate) fn manager(&self) -> anyhow::Result<StorageManager> {
        Ok(StorageManager::new(self.dir()?))
    }

    /// A bundle named by the user: a path to a bundle directory, or an asset identifier in the store.
    pub(crate) fn bundle_dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = Path::new(name);
        if path.join("manifest.json").is_file() {
            return Ok(path.to_owned());
        }
        let manager = self.manager()?;
        let in_store = manager.bundle_path(name).with_context(|| format!("`{name}` is not a bundle"))?;
        if in_store.join("manifest.json").is_file() {
            Ok(in_store)
        } else {
            bail!(
                "`{name}` is neither a bundle directory nor an asset in the store {}",
                manager.dir().display()
            )
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct InfoArgs {
    /// The bundle: its directory, or its asset identifier in the store.
    bundle: String,
    /// Print JSON instead of the summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The bundle: its directory, or its asset identifier in the store.
    bundle: String,
    /// Remove damaged segments and withdraw them from the journal, so that `resume` fetches them again.
    #[arg(long)]
    repair: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RemoveArgs {
    /// The asset identifier in the store.
    asset: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PurgeArgs {
    /// Remove assets until the store uses at most this much (like 20G or 500MiB).
    #[arg(long, value_name = "SIZE", required_unless_present = "free")]
    quota: Option<String>,
    /// Remove assets until the disk has at least this much free.
    #[arg(long, value_name = "SIZE")]
    free: Option<String>,
    /// Allow removing assets of important priority when nothing else is left to remove.
    #[arg(long)]
    include_important: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PolicyArgs {
    /// The asset identifier in the store; without it, the command shows or changes the store's policy.
    asset: Option<String>,
    /// When the asset expires: a span from now (30d, 12h) or a UTC date (2027-01-31), or `never`.
    #[arg(long, value_name = "WHEN", requires = "asset")]
    expires: Option<String>,
    /// Purge priority: `important` assets are kept unless a purge says otherwise.
    #[arg(long, value_parser = ["important", "default"], requires = "asset")]
    priority: Option<String>,
    /// The store's quota: downloads that would take the store past it are refused (or make room, with
    /// --purge-to-admit). A size (50G, 500MiB) or `none`.
    #[arg(long, value_name = "SIZE|none", conflicts_with = "asset")]
    store_quota: Option<String>,
    /// Space the disk must keep free: downloads that would leave less are refused (or make room, with
    /// --purge-to-admit). A size or `none`.
    #[arg(long, value_name = "SIZE|none", conflicts_with = "asset")]
    free_space_floor: Option<String>,
    /// The expiry of new downloads that do not give one: a span (30d, 12h) or `none`.
    #[arg(long, value_name = "SPAN|none", conflicts_with = "asset")]
    default_expiry: Option<String>,
    /// Let a download that does not fit remove expired, then least recently used default-priority assets
    /// to make room (never important ones, nor ones being downloaded or played).
    #[arg(long, conflicts_with_all = ["asset", "no_purge_to_admit"])]
    purge_to_admit: bool,
    /// Refuse a download that does not fit once expired assets are gone (the default).
    #[arg(long, conflicts_with = "asset")]
    no_purge_to_admit: bool,
    /// Remove the store's policy: nothing is limited any more.
    #[arg(long, conflicts_with_all = [
        "asset", "store_quota", "free_space_floor", "default_expiry", "purge_to_admit", "no_purge_to_admit",
    ])]
    clear: bool,
    /// Print the policy as JSON.
    #[arg(long)]
    json: bool,
}

fn priority_name(priority: Priority) -> &'static str {
    match priority {
        Priority::Important => "important",
        _ => "default",
    }
}

fn policy_json(policy: &StoragePolicy) -> Value {
    json!({
        "expires": policy.expires.map(format_utc),
        "priority": priority_name(policy.priority),
    })
}

fn summary_json(b: &BundleSummary) -> Value {
    json!({
        "id": b.asset.id,
        "title": b.asset.title,
        "url": b.asset.url,
        "path": b.path,
        "size_on_disk": b.size,
        "finished": b.finished,
        "complete": b.complete,
        "gaps": b.gaps,
        "policy": policy_json(&b.policy),
        "created": format_utc(b.created),
        "accessed": format_utc(b.accessed),
        "in_use": b.in_use,
        "playing_until": b.playing_until.map(format_utc),
    })
}

fn state_of(finished: bool, complete: bool, in_use: bool) -> &'static str {
    match (in_use, finished, complete) {
        (true, _, _) => "downloading",
        (false, true, true) => "complete",
        (false, true, false) => "incomplete (gaps)",
        (false, false, _) => "partial",
    }
}

pub(crate) fn list(store: &StoreArgs, args: &ListArgs) -> anyhow::Result<()> {
    let manager = store.manager()?;
    let listing = manager.list().with_context(|| format!("listing {}", manager.dir().display()))?;
    if args.json {
        let damaged: Vec<Value> = listing
            .damaged
            .iter()
            .map(
                |d| json!({"id": d.id, "path": d.path, "size_on_disk": d.size, "error": d.error.to_string()}),
            )
            .collect();
        let bundles: Vec<Value> = listing.bundles.iter().map(summary_json).collect();
        return print_json(&json!({"bundles": bundles, "damaged": damaged}));
    }
    let mut out = format!("store  {}\n", manager.dir().display());
    if listing.bundles.is_empty() && listing.damaged.is_empty() {
        out.push_str("  (no assets)\n");
        return print(&out);
    }
    let mut rows = vec![
        ["asset", "title", "on disk", "state", "priority", "expires", "last access"]
            .map(str::to_owned)
            .to_vec(),
    ];
    let mut total = 0;
    for b in &listing.bundles {
        total += b.size;
        rows.push(vec![
            b.asset.id.clone(),
            b.asset.title.clone().unwrap_or_else(|| "-".into()),
            human_bytes(b.size),
            state_of(b.finished, b.complete, b.in_use).to_owned(),
            priority_name(b.policy.priority).to_owned(),
            b.policy.expires.map_or_else(|| "never".to_owned(), format_utc),
            format_utc(b.accessed),
        ]);
    }
    for d in &listing.damaged {
        total += d.size;
        let dash = || "-".to_owned();
        rows.push(vec![d.id.clone(), dash(), human_bytes(d.size), "DAMAGED".into(), dash(), dash(), dash()]);
    }
    super::table(&mut out, &rows);
    out.push_str(&format!("  {} asset(s), {} in all\n", listing.bundles.len(), human_bytes(total)));
    if !listing.damaged.is_empty() {
        out.push_str(&format!(
            "\ndamaged ({}): not resumable; `stowage remove ASSET` deletes one\n",
            listing.damaged.len()
        ));
        for d in &listing.damaged {
            out.push_str(&format!("  {}: {}\n", d.id, d.error));
        }
    }
    print(&out)
}

/// Bytes on disk of the bundle at `dir`, every file of its folder, as `list` counts them; `None` when the
/// folder cannot be read.
fn size_on_disk(dir: &Path) -> Option<u64> {
    StorageManager::new(store_of(dir)).size_on_disk(dir).ok()
}

fn manifest_json(dir: &Path, manifest: &Manifest, cache: &AssetCache, on_disk: Option<u64>) -> Value {
    let renditions: Vec<Value> = manifest
        .renditions
        .iter()
        .map(|r| {
            json!({
                "id": r.plan.id.as_str(),
                "kind": r.plan.kind.as_str(),
                "primary": r.plan.primary,
                "name": r.plan.name,
                "language": r.plan.language,
                "bandwidth": r.plan.bandwidth,
                "codecs": r.plan.codecs,
                "resolution": r.plan.resolution.map(|(w, h)| json!({"width": w, "height": h})),
                "duration": r.plan.duration(),
                "complete": r.state.complete,
                "segments_finished": r.state.segments_finished,
                "segments_total": r.state.segments_total,
                "loaded_time_ranges": r.state.loaded_time_ranges.iter()
                    .map(|t| json!([t.start.as_secs_f64(), t.end.as_secs_f64()])).collect::<Vec<_>>(),
                "url": r.plan.url,
            })
        })
        .collect();
    json!({
        "id": manifest.asset.id,
        "title": manifest.asset.title,
        "url": manifest.asset.url,
        "path": dir,
        "master_playlist": cache.master_playlist_path(),
        "format_version": manifest.version,
        "media_bytes": manifest.size,
        "size_on_disk": on_disk,
        "finished": manifest.finished,
        "complete": manifest.complete,
        "playable_offline": cache.is_playable_offline(),
        "policy": policy_json(&manifest.policy),
        "created": format_utc(manifest.created),
        "accessed": format_utc(manifest.accessed),
        "renditions": renditions,
        "gaps": manifest.gaps.iter().map(|g| json!({"segment": g.segment.to_string(), "reason": g.reason}))
            .collect::<Vec<_>>(),
        "recording": manifest.recording.as_ref().map(|r| json!({
            "ended": r.ended,
            "duration_limit": r.duration_limit,
            "until": r.until.map(format_utc),
            "max_outage": r.max_outage,
            "start_at": r.start_at.map(format_utc),
            "fail_on_expiry": r.fail_on_expiry,
            "holes": r.holes.iter().map(|h| json!({
                "rendition": h.rendition.as_str(),
                "media_sequences": [h.media_sequences.0, h.media_sequences.1],
                "segments": h.segments,
                "time": [h.time.start.as_secs_f64(), h.time.end.as_secs_f64()],
                "program_date_times": h.program_date_times.map(|(a, b)| [format_utc(a), format_utc(b)]),
                "cause": h.cause,
            })).collect::<Vec<_>>(),
        })),
        "artwork": cache.artwork().map(|a| json!({
            "path": dir.join(&a.file),
            "media_type": a.media_type,
            "length": a.length,
        })),
    })
}

/// Records that the bundle at `dir` was looked at, so that a purge of the least recently used keeps it.
/// A bundle being written is not marked (its writer set the time when it opened it), and a store that
/// cannot be written (read-only media) is not an error for a command that only reads.
fn mark_accessed(dir: &Path) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name().and_then(|n| n.to_str())) else { return };
    let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
    let _ = StorageManager::new(parent).mark_accessed(name);
}

pub(crate) fn info(store: &StoreArgs, args: &InfoArgs) -> anyhow::Result<()> {
    let dir = store.bundle_dir(&args.bundle)?;
    mark_accessed(&dir);
    let cache = AssetCache::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
    let manifest = cache.manifest();
    let on_disk = size_on_disk(&dir);
    if args.json {
        let mut json = manifest_json(&dir, manifest, &cache, on_disk);
        // The last use is kept beside the manifest; the store tells both together.
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Ok(accessed) = StorageManager::new(store_of(&dir)).last_accessed(name) {
            json["accessed"] = json!(format_utc(accessed));
        }
        return print_json(&json);
    }
    let mut out = format!(
        "{}  {}\n",
        manifest.asset.id,
        manifest.asset.title.as_deref().map(|t| format!("\"{t}\"")).unwrap_or_default()
    );
    let mut rows = vec![vec!["bundle".to_owned(), dir.display().to_string()]];
    if let Some(url) = &manifest.asset.url {
        rows.push(vec!["source".into(), url.clone()]);
    }
    rows.push(vec![
        "state".into(),
        format!(
            "{}{}",
            state_of(manifest.finished, manifest.complete, false),
            if cache.is_playable_offline() { ", playable offline" } else { ", not playable offline yet" }
        ),
    ]);
    rows.push(vec!["media".into(), format!("{} in stored segments", human_bytes(manifest.size))]);
    if let Some(on_disk) = on_disk {
        rows.push(vec!["on disk".into(), human_bytes(on_disk)]);
    }
    rows.push(vec![
        "policy".into(),
        format!(
            "{} priority, expires {}",
            priority_name(manifest.policy.priority),
            manifest.policy.expires.map_or_else(|| "never".to_owned(), format_utc)
        ),
    ]);
    if let Some(artwork) = cache.artwork() {
        rows.push(vec![
            "artwork".into(),
            format!(
                "{} ({}, {})",
                dir.join(&artwork.file).display(),
                artwork.media_type,
                human_bytes(artwork.length)
            ),
        ]);
    }
    rows.push(vec!["play".into(), format!("ffplay {}", cache.master_playlist_path().display())]);
    super::table(&mut out, &rows);
    out.push_str("\nrenditions\n");
    let mut rows = vec![
        ["id", "kind", "language", "name", "segments", "loaded", "duration"].map(str::to_owned).to_vec(),
    ];
    for r in &manifest.renditions {
        let loaded: f64 = r.state.loaded_time_ranges.iter().map(|t| t.duration().as_secs_f64()).sum();
        rows.push(vec![
            format!("{}{}", r.plan.id.as_str(), if r.plan.primary { " *" } else { "" }),
            r.plan.kind.as_str().to_owned(),
            r.plan.language.clone().unwrap_or_else(|| "-".into()),
            r.plan.name.clone().unwrap_or_else(|| "-".into()),
            format!("{}/{}", r.state.segments_finished, r.state.segments_total),
            human_duration(loaded),
            human_duration(r.plan.duration()),
        ]);
    }
    super::table(&mut out, &rows);
    if let Some(recording) = &manifest.recording {
        let ended = recording.ended.as_deref().unwrap_or("not yet: the recording goes on or was interrupted");
        out.push_str(&format!("\nrecording of a live stream, ended: {ended}\n"));
        out.push_str(&format!("holes ({})\n", recording.holes.len()));
        for h in &recording.holes {
            let (first, last) = h.media_sequences;
            let dates = h
                .program_date_times
                .map(|(from, to)| format!(" (program dates {} to {})", format_utc(from), format_utc(to)))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {}: media sequence {first} to {last} ({} segments), {} to {} of the recording{dates}: {}\n",
                h.rendition,
                h.segments,
                human_duration(h.time.start.as_secs_f64()),
                human_duration(h.time.end.as_secs_f64()),
                h.cause
            ));
        }
    }
    if !manifest.gaps.is_empty() {
        out.push_str(&format!("\ngaps ({})\n", manifest.gaps.len()));
        for g in &manifest.gaps {
            out.push_str(&format!("  {}: {}\n", g.segment, g.reason));
        }
    }
    print(&out)
}

pub(crate) fn verify(store: &StoreArgs, args: &VerifyArgs) -> anyhow::Result<()> {
    let dir = store.bundle_dir(&args.bundle)?;
    let bundle = Bundle::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
    let report = bundle.verify(args.repair).with_context(|| format!("verifying {}", dir.display()))?;
    let mut out = format!(
        "{}: {} stored segment(s) re-hashed, {}\n",
        dir.display(),
        report.checked,
        human_bytes(report.bytes_checked)
    );
    if report.journal_missing {
        out.push_str("  journal.log is missing: nothing counts as stored\n");
    }
    for line in &report.corrupt_journal_lines {
        out.push_str(&format!(
            "  journal.log line {line} is damaged: the entry it recorded counts as not stored\n"
        ));
    }
    for (id, problem) in &report.problems {
        out.push_str(&format!("  {id}: {problem}\n"));
    }
    print(&out)?;
    if report.is_ok() {
        return Ok(());
    }
    let manifest = bundle.manifest();
    drop(bundle);
    let resume = format!("stowage --store {} resume {}", store_of(&dir).display(), manifest.asset.id);
    if report.repaired {
        print(&format!(
            "repaired: {} damaged or lost segment(s) are pending again; `{resume}` fetches them\n",
            report.problems.len()
        ))
    } else {
        bail!(
            "{} damaged or lost segment(s) in {}{}; `stowage verify --repair {}` makes them pending again, then \
             `{resume}` fetches them",
            report.problems.len(),
            dir.display(),
            if report.journal_missing { ", and its journal is missing" } else { "" },
            args.bundle
        )
    }
}

/// The store a bundle folder is in: the folder around it.
fn store_of(dir: &Path) -> &Path {
    dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

pub(crate) fn remove(store: &StoreArgs, args: &RemoveArgs) -> anyhow::Result<()> {
    let manager = store.manager()?;
    let freed = manager.remove(&args.asset).with_context(|| format!("removing {}", args.asset))?;
    print(&format!("removed {} ({} freed)\n", args.asset, human_bytes(freed)))
}

pub(crate) fn purge(store: &StoreArgs, args: &PurgeArgs) -> anyhow::Result<()> {
    let manager = store.manager()?;
    let mut options = match (&args.quota, &args.free) {
        (Some(q), _) => {
            let mut o = PurgeOptions::quota(parse_size(q).context("--quota")?);
            if let Some(f) = &args.free {
                o.free_space = Some(parse_size(f).context("--free")?);
            }
            o
        }
        (None, Some(f)) => PurgeOptions::free_space(parse_size(f).context("--free")?),
        (None, None) => bail!("give --quota SIZE or --free SIZE"),
    };
    options = options.include_important(args.include_important);
    let report = manager.purge(options).with_context(|| format!("purging {}", manager.dir().display()))?;
    let mut out = removed_lines(&report);
    for p in &report.skipped_in_use {
        out.push_str(&format!("kept {}: being written\n", p.display()));
    }
    for p in &report.skipped_playing {
        out.push_str(&format!("kept {}: being played\n", p.display()));
    }
    out.push_str(&format!(
        "{} freed; target {}\n",
        human_bytes(report.freed),
        if report.target_met { "met" } else { "NOT met" }
    ));
    print(&out)?;
    if report.target_met {
        Ok(())
    } else {
        bail!(
            "the target could not be met without removing assets that are important, in use or damaged \
             (`stowage list` shows them)"
        )
    }
}

/// One removed asset, for people: `removed ID (SIZE): why`.
pub(crate) fn removed_line(r: &Removed) -> String {
    let why = match r.reason {
        PurgeReason::Expired => "expired",
        PurgeReason::LeastRecentlyAccessed => "least recently used",
        PurgeReason::ImportantAllowed => "important, allowed by --include-important",
        _ => "space needed",
    };
    format!("removed {} ({}): {why}\n", r.asset.id, human_bytes(r.size))
}

/// What a purge removed (a session's or server's when it started, or `stowage purge`'s), for people: a line
/// per asset, none when nothing was removed.
pub(crate) fn removed_lines(report: &PurgeReport) -> String {
    let mut out = String::new();
    for (path, size) in &report.leftovers {
        out.push_str(&format!(
            "removed {} ({}): what was left of a bundle whose creation did not finish\n",
            path.display(),
            human_bytes(*size)
        ));
    }
    for r in &report.removed {
        out.push_str(&removed_line(r));
    }
    out
}

/// One removed asset as JSON.
pub(crate) fn removed_json(r: &Removed) -> Value {
    let reason = match r.reason {
        PurgeReason::Expired => "expired",
        PurgeReason::LeastRecentlyAccessed => "least_recently_used",
        PurgeReason::ImportantAllowed => "important_allowed",
        _ => "space_needed",
    };
    json!({"id": r.asset.id, "path": r.path, "size": r.size, "reason": reason})
}

/// A span for people: whole weeks, days, hours or minutes when it is one, else seconds (`30d`, `90m`).
fn span_text(span: Duration) -> String {
    let secs = span.as_secs();
    for (unit, len) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs > 0 && secs.is_multiple_of(len) {
            return format!("{}{unit}", secs / len);
        }
    }
    format!("{secs}s")
}

/// A size option that may be `none`.
fn size_or_none(text: &str, flag: &str) -> anyhow::Result<Option<u64>> {
    if text == "none" { Ok(None) } else { parse_size(text).with_context(|| flag.to_owned()).map(Some) }
}

/// Shows or changes the store's policy (`stowage policy` without an asset).
fn store_policy(store: &StoreArgs, args: &PolicyArgs) -> anyhow::Result<()> {
    let manager = store.manager()?;
    let dir = manager.dir().display().to_string();
    let mut policy = if args.clear {
        manager.clear_store_policy().with_context(|| format!("clearing the policy of {dir}"))?;
        StorePolicy::default()
    } else {
        manager.store_policy().with_context(|| format!("reading the policy of {dir}"))?
    };
    let changes = args.store_quota.is_some()
        || args.free_space_floor.is_some()
        || args.default_expiry.is_some()
        || args.purge_to_admit
        || args.no_purge_to_admit;
    if changes {
        if let Some(text) = &args.store_quota {
            policy.quota = size_or_none(text, "--store-quota")?;
        }
        if let Some(text) = &args.free_space_floor {
            policy.free_space_floor = size_or_none(text, "--free-space-floor")?;
        }
        if let Some(text) = &args.default_expiry {
            policy.default_expiry =
                if text == "none" { None } else { Some(parse_span(text).context("--default-expiry")?) };
        }
        if args.purge_to_admit || args.no_purge_to_admit {
            policy.purge_to_admit = args.purge_to_admit;
        }
        manager.set_store_policy(&policy).with_context(|| format!("writing the policy of {dir}"))?;
    }
    let used = manager.used().with_context(|| format!("listing {dir}"))?;
    if args.json {
        return print_json(&json!({
            "store": manager.dir(),
            "quota": policy.quota,
            "free_space_floor": policy.free_space_floor,
            "default_expiry_seconds": policy.default_expiry.map(|d| d.as_secs()),
            "purge_to_admit": policy.purge_to_admit,
            "used": used,
        }));
    }
    let none = || "none".to_owned();
    let rows = vec![
        vec![
            "quota".to_owned(),
            policy.quota.map_or_else(none, |q| format!("{} ({} used)", human_bytes(q), human_bytes(used))),
        ],
        vec!["free-space floor".to_owned(), policy.free_space_floor.map_or_else(none, human_bytes)],
        vec![
            "default expiry".to_owned(),
            policy.default_expiry.map_or_else(none, |d| format!("{} after download", span_text(d))),
        ],
        vec![
            "purge to admit".to_owned(),
            if policy.purge_to_admit {
                "yes: expired, then least recently used default-priority assets make room".to_owned()
            } else {
                "no: a download that does not fit is refused".to_owned()
            },
        ],
    ];
    let mut out = format!("store policy of {dir}{}\n", if policy.is_empty() { " (none set)" } else { "" });
    super::table(&mut out, &rows);
    print(&out)
}

pub(crate) fn policy(store: &StoreArgs, args: &PolicyArgs) -> anyhow::Result<()> {
    let Some(asset) = &args.asset else { return store_policy(store, args) };
    asset_policy(store, args, asset)
}

/// Shows or changes an asset's policy (`stowage policy ASSET`).
fn asset_policy(store: &StoreArgs, args: &PolicyArgs, asset: &str) -> anyhow::Result<()> {
    let manager = store.manager()?;
    let dir = manager.bundle_path(asset)?;
    let cache = AssetCache::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
    let mut policy = cache.manifest().policy;
    if let Some(expires) = &args.expires {
        policy.expires = if expires == "never" {
            None
        } else {
            Some(parse_expiry(expires, SystemTime::now()).context("--expires")?)
        };
    }
    if let Some(priority) = &args.priority {
        policy.priority = if priority == "important" { Priority::Important } else { Priority::Default };
    }
    if args.expires.is_some() || args.priority.is_some() {
        manager.set_policy(asset, policy).with_context(|| format!("updating {asset}"))?;
    }
    if args.json {
        return print_json(&json!({"id": asset, "policy": policy_json(&policy)}));
    }
    print(&format!(
        "{}: {} priority, expires {}\n",
        asset,
        priority_name(policy.priority),
        policy.expires.map_or_else(|| "never".to_owned(), format_utc)
    ))
}
