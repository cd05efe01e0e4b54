//! The page that shows the store and plays it, and the JSON it polls. The HTML is made here, on the
//! server, so the page works and is searchable without its script; the script (`assets/page.js`) adds
//! the players and keeps downloading assets' progress up to date.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use stowage_bundle::{BundleStatus, Error as BundleError, Manifest, Priority, RenditionKind};
use stowage_playlist::DateTime;

use crate::assets::{Assets, Listed};

/// The page's style sheet.
pub(crate) const STYLE: &str = include_str!("../assets/page.css");

/// The page's script.
pub(crate) const SCRIPT: &str = include_str!("../assets/page.js");

/// An asset's state, as a person reads it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Every planned segment is stored.
    Complete,
    /// A download is writing it now.
    Downloading,
    /// The download stopped before the end and nothing writes it (resume continues).
    Suspended,
    /// The download is over with gaps (segments that could not be had).
    Incomplete,
}

impl State {
    fn of(status: &BundleStatus) -> Self {
        match (status.in_use, status.finished, status.complete) {
            (true, _, _) => Self::Downloading,
            (false, true, true) => Self::Complete,
            (false, true, false) => Self::Incomplete,
            (false, false, _) => Self::Suspended,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Downloading => "downloading",
            Self::Suspended => "suspended",
            Self::Incomplete => "incomplete",
        }
    }
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Bytes with a decimal unit, three significant digits (`1.23 GB`).
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    value /= 1000.0;
    while value >= 999.5 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value >= 99.95 {
        0
    } else if value >= 9.995 {
        1
    } else {
        2
    };
    format!("{value:.digits$} {}", UNITS[unit])
}

/// A duration as `h:mm:ss` or `m:ss`.
fn human_duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 { format!("{h}:{m:02}:{s:02}") } else { format!("{m}:{s:02}") }
}

/// A time as `2026-11-24 08:30 UTC`.
fn human_time(time: SystemTime) -> String {
    let text = DateTime::from_system_time(time.max(UNIX_EPOCH)).with_fraction_digits(0).to_string();
    // `YYYY-MM-DDTHH:MM:SSZ`: the seconds are more than a person needs.
    match (text.get(..10), text.get(11..16)) {
        (Some(date), Some(clock)) => format!("{date} {clock} UTC"),
        _ => text,
    }
}

fn rfc3339(time: SystemTime) -> String {
    DateTime::from_system_time(time.max(UNIX_EPOCH)).with_fraction_digits(0).to_string()
}

/// The asset's length: that of its primary video rendition, else its longest rendition.
fn duration(manifest: &Manifest) -> f64 {
    let primary = manifest.renditions.iter().find(|r| r.plan.primary && r.plan.kind == RenditionKind::Video);
    match primary {
        Some(r) => r.plan.duration(),
        None => manifest.renditions.iter().map(|r| r.plan.duration()).fold(0.0, f64::max),
    }
}

/// A rendition choice of the page: its identifier, a label and its language.
struct Choice {
    id: String,
    label: String,
    language: Option<String>,
}

fn choices(manifest: &Manifest, kind: RenditionKind) -> Vec<Choice> {
    let mut list: Vec<(bool, Choice)> = manifest
        .renditions
        .iter()
        .filter(|r| r.plan.kind == kind)
        .map(|r| {
            let name = r.plan.name.clone().unwrap_or_else(|| r.plan.id.to_string());
            let label = match &r.plan.language {
                Some(lang) if !name.contains(lang.as_str()) => format!("{name} ({lang})"),
                _ => name,
            };
            (r.plan.primary, Choice { id: r.plan.id.to_string(), label, language: r.plan.language.clone() })
        })
        .collect();
    // The primary selection's audio first: it is what plays when nothing is chosen.
    list.sort_by_key(|(primary, _)| !primary);
    list.into_iter().map(|(_, c)| c).collect()
}

fn artwork_file(manifest: &Manifest) -> Option<&str> {
    manifest.artwork.as_ref().filter(|a| a.is_image()).map(|a| a.file.as_str())
}

/// The progress text of an asset that is not complete.
fn progress_detail(status: &BundleStatus) -> String {
    format!(
        "{} of {} segments, {}",
        status.segments_finished,
        status.segments_total,
        human_bytes(status.bytes_finished)
    )
}

/// The page for the whole store. `show_store` names the store's folder at the foot of the page (not for
/// clients on other machines).
pub(crate) fn render(assets: &Assets, show_store: bool, read_only: bool) -> Result<String, BundleError> {
    let (listed, unreadable) = assets.list()?;
    let total: u64 = listed.iter().map(|l| l.status.size_on_disk).sum();
    let mut out = String::with_capacity(2048 + listed.len() * 1800);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>stowage: {count} asset{s}</title>\n<link rel=\"stylesheet\" href=\"/static/page.css\">\n\
         <script src=\"/static/page.js\" defer></script>\n</head>\n<body>\n<header>\n<h1>stowage</h1>\n\
         <p class=\"summary\">{summary}</p>\n\
         <p id=\"notice\" role=\"status\" hidden></p>\n</header>\n<main id=\"assets\">\n",
        count = listed.len(),
        s = if listed.len() == 1 { "" } else { "s" },
        summary = summary(listed.len(), total),
    );
    if listed.is_empty() {
        out.push_str("<p class=\"empty\">The store is empty. Download an asset with <code>stowage download URL</code>.</p>\n");
    }
    for item in &listed {
        card(&mut out, item);
    }
    out.push_str("</main>\n");
    if !unreadable.is_empty() {
        out.push_str("<section class=\"unreadable\">\n<h2>Folders that cannot be read</h2>\n<ul>\n");
        for (id, error) in &unreadable {
            let _ = writeln!(out, "<li><strong>{}</strong>: {}</li>", escape(id), escape(&error.to_string()));
        }
        out.push_str("</ul>\n</section>\n");
    }
    // With the download API, the page may change the store (given the token): it does not say read-only.
    let served = if read_only { "Served read-only" } else { "Served" };
    if show_store {
        let _ = writeln!(
            out,
            "<footer>{served} from <code>{}</code></footer>",
            escape(&assets.store().dir().display().to_string())
        );
    } else {
        let _ = writeln!(out, "<footer>{served}</footer>");
    }
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

fn card(out: &mut String, item: &Listed) {
    let manifest = item.reader.manifest();
    let status = &item.status;
    let state = State::of(status);
    let id = escape(&item.id);
    let title = escape(manifest.asset.title.as_deref().unwrap_or(&item.id));
    let _ = write!(
        out,
        "<article class=\"asset\" id=\"asset-{id}\" data-id=\"{id}\" data-state=\"{}\">\n<div class=\"art\">",
        state.name()
    );
    match artwork_file(manifest) {
        Some(file) => {
            let _ = write!(out, "<img src=\"/asset/{id}/{}\" alt=\"\" loading=\"lazy\">", escape(file));
        }
        None => {
            let initial = manifest.asset.title.as_deref().unwrap_or(&item.id).chars().next().unwrap_or('?');
            let _ = write!(
                out,
                "<span class=\"initial\" aria-hidden=\"true\">{}</span>",
                escape(&initial.to_string())
            );
        }
    }
    let _ = write!(
        out,
        "</div>\n<div class=\"about\">\n<h2>{title}</h2>\n<p class=\"asset-id\">{id}</p>\n<dl>\n\
         <dt>Duration</dt><dd>{}</dd>\n<dt>On disk</dt><dd class=\"size\">{}</dd>\n\
         <dt>State</dt><dd class=\"state\"><span class=\"badge {state}\">{state}</span>",
        human_duration(duration(manifest)),
        human_bytes(status.size_on_disk),
        state = state.name(),
    );
    let done = status.segments_finished.min(status.segments_total);
    let hidden = if state == State::Complete { " hidden" } else { "" };
    let _ = writeln!(
        out,
        " <progress max=\"{}\" value=\"{done}\"{hidden}></progress> <span class=\"detail\"{hidden}>{}</span></dd>",
        status.segments_total.max(1),
        escape(&progress_detail(status)),
    );
    let expires = manifest.policy.expires.map_or_else(|| "never".to_owned(), human_time);
    let priority = if manifest.policy.priority == Priority::Important { "important" } else { "default" };
    let _ = write!(
        out,
        "<dt>Expires</dt><dd>{}</dd>\n<dt>Priority</dt><dd>{priority}</dd>\n</dl>\n",
        escape(&expires)
    );
    if !status.gaps.is_empty() {
        let _ = write!(
            out,
            "<details class=\"gaps\"><summary>{} gap{} (segments that could not be had)</summary><ul>",
            status.gaps.len(),
            if status.gaps.len() == 1 { "" } else { "s" }
        );
        for gap in status.gaps.iter().take(20) {
            let _ = write!(out, "<li>{}: {}</li>", escape(&gap.segment.to_string()), escape(&gap.reason));
        }
        if status.gaps.len() > 20 {
            let _ = write!(out, "<li>and {} more</li>", status.gaps.len() - 20);
        }
        out.push_str("</ul></details>\n");
    }
    out.push_str("<div class=\"controls\">\n<button type=\"button\" class=\"play\">Play</button>\n");
    let audio = choices(manifest, RenditionKind::Audio);
    if !audio.is_empty() {
        out.push_str("<label>Audio <select class=\"audio\">");
        for c in &audio {
            let _ = write!(
                out,
                "<option value=\"{}\" data-language=\"{}\">{}</option>",
                escape(&c.id),
                escape(c.language.as_deref().unwrap_or("")),
                escape(&c.label)
            );
        }
        out.push_str("</select></label>\n");
    }
    let subtitles = choices(manifest, RenditionKind::Subtitles);
    if !subtitles.is_empty() {
        out.push_str("<label>Subtitles <select class=\"subtitles\"><option value=\"\">Off</option>");
        for c in &subtitles {
            let _ = write!(
                out,
                "<option value=\"{}\" data-language=\"{}\">{}</option>",
                escape(&c.id),
                escape(c.language.as_deref().unwrap_or("")),
                escape(&c.label)
            );
        }
        out.push_str("</select></label>\n");
    }
    let _ = write!(
        out,
        "<a class=\"playlist\" href=\"/asset/{id}/master.m3u8\">master.m3u8</a>\n</div>\n\
         <div class=\"player\"></div>\n</div>\n</article>\n"
    );
}

/// The line under the page's title: how many assets, and their size on disk.
fn summary(count: usize, size_on_disk: u64) -> String {
    format!("{count} asset{}, {} on disk", if count == 1 { "" } else { "s" }, human_bytes(size_on_disk))
}

/// The store as JSON: one object per asset with what the page shows, and the page's summary line.
pub(crate) fn json(assets: &Assets) -> Result<String, BundleError> {
    let (listed, unreadable) = assets.list()?;
    let total: u64 = listed.iter().map(|l| l.status.size_on_disk).sum();
    let items: Vec<Value> = listed
        .iter()
        .map(|item| {
            let manifest = item.reader.manifest();
            let status = &item.status;
            let rendition = |kind| {
                choices(manifest, kind)
                    .into_iter()
                    .map(|c| json!({"id": c.id, "label": c.label, "language": c.language}))
                    .collect::<Vec<_>>()
            };
            json!({
                "id": item.id,
                "title": manifest.asset.title,
                "artwork": artwork_file(manifest).map(|f| format!("/asset/{}/{f}", item.id)),
                "duration": duration(manifest),
                "size_on_disk": status.size_on_disk,
                "size_on_disk_text": human_bytes(status.size_on_disk),
                "state": State::of(status).name(),
                "finished": status.finished,
                "complete": status.complete,
                "segments_finished": status.segments_finished,
                "segments_total": status.segments_total,
                "bytes_finished": status.bytes_finished,
                "progress_text": progress_detail(status),
                "gaps": status.gaps.iter().map(|g| json!({"segment": g.segment.to_string(), "reason": g.reason}))
                    .collect::<Vec<_>>(),
                "expires": manifest.policy.expires.map(rfc3339),
                "priority": if manifest.policy.priority == Priority::Important { "important" } else { "default" },
                "audio": rendition(RenditionKind::Audio),
                "subtitles": rendition(RenditionKind::Subtitles),
                "master": format!("/asset/{}/master.m3u8", item.id),
            })
        })
        .collect();
    let unreadable: Vec<Value> =
        unreadable.iter().map(|(id, e)| json!({"id": id, "error": e.to_string()})).collect();
    Ok(json!({"summary": summary(items.len(), total), "assets": items, "unreadable": unreadable}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_read_sizes_durations_and_times() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_234), "1.23 kB");
        assert_eq!(human_bytes(12_345_678), "12.3 MB");
        assert_eq!(human_bytes(999_600), "1.00 MB");
        assert_eq!(human_duration(12.0), "0:12");
        assert_eq!(human_duration(3725.4), "1:02:05");
        assert_eq!(
            human_time(UNIX_EPOCH + std::time::Duration::from_secs(86_400 + 3_600)),
            "1970-01-02 01:00 UTC"
        );
        assert_eq!(escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
