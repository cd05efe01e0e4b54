//! `stowage demo`: the embedded default. A small real HLS asset (H.264 + AAC made with ffmpeg: two
//! variants, English and French audio, English and French WebVTT subtitles) carried in the binary, served
//! AES-128 encrypted from an in-process origin on 127.0.0.1.

use anyhow::Context;
use stowage_bundle::{AssetCache, Bundle};
use stowage_origin::hls::{EncryptOptions, encrypt_rendition};
use stowage_origin::{Files, Origin, OriginConfig};
use stowage_task::config::{ContentConfiguration, DownloadConfiguration, MediaSelection};
use stowage_task::{DownloadSession, SessionConfig};

use super::download::run_tasks;
use super::output;
use super::store::StoreArgs;
use super::units::human_bytes;

include!(concat!(env!("OUT_DIR"), "/demo_files.rs"));

/// The demo's asset name in the store.
const DEMO_ASSET: &str = "stowage-demo";

/// The renditions served encrypted; subtitles stay clear, as services usually serve them.
const ENCRYPTED: [&str; 4] = ["video0", "video1", "audio-en", "audio-fr"];

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Only serve the demo asset and print its URL, until interrupted (to try other players or tools).
    #[arg(long)]
    serve: bool,
    /// The loopback port to serve on (default: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Print the download's events as JSON lines instead of progress bars.
    #[arg(long)]
    json: bool,
}

/// The demo origin, serving while it lives.
pub(crate) struct DemoOrigin {
    origin: Origin,
}

impl DemoOrigin {
    /// Loads the embedded asset, encrypts its audio and video (a new key every two segments, an explicit
    /// IV on every segment) and starts serving it.
    pub(crate) fn start(port: u16) -> anyhow::Result<Self> {
        let files = Files::new();
        for (path, bytes) in DEMO_FILES {
            files.insert_bytes(&format!("/demo/{path}"), *bytes);
        }
        for (i, rendition) in ENCRYPTED.iter().enumerate() {
            let options =
                EncryptOptions::default().rotate_every(2).explicit_ivs().seed(0x5709_a6e0 + i as u64);
            encrypt_rendition(&files, &format!("/demo/{rendition}/index.m3u8"), &options)
                .with_context(|| format!("encrypting the demo's {rendition}"))?;
        }
        let origin =
            Origin::start(files, OriginConfig::default().port(port)).context("starting the demo origin")?;
        Ok(Self { origin })
    }

    /// The master playlist's URL.
    pub(crate) fn master_url(&self) -> String {
        self.origin.url("/demo/master.m3u8")
    }
}

pub(crate) fn run(store: &StoreArgs, args: &DemoArgs) -> anyhow::Result<()> {
    let demo = DemoOrigin::start(args.port)?;
    let url = demo.master_url();
    if args.serve {
        output::print(&format!("{url}\n"))?;
        output::eprint("serving the demo asset, AES-128 encrypted, until interrupted (Ctrl-C)\n");
        loop {
            std::thread::park();
        }
    }
    let session_config = SessionConfig::new(store.dir()?);
    // Every rendition of the demo: the best variant, both audio languages, both subtitle languages.
    let config = DownloadConfiguration::new(
        ContentConfiguration::new()
            .media_selection(MediaSelection::audio_all())
            .media_selection(MediaSelection::subtitles_all()),
    )
    .title("stowage demo");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    output::eprint(&format!("serving the built-in sample (H.264 + AAC, AES-128 encrypted) at {url}\n"));
    let path = runtime.block_on(async {
        let session = DownloadSession::new(session_config)?;
        // The demo always downloads afresh, so that it shows a whole download.
        let existing = session.store().bundle_path(DEMO_ASSET)?;
        if existing.exists() {
            session
                .store()
                .remove(DEMO_ASSET)
                .with_context(|| format!("removing the previous {}", existing.display()))?;
        }
        let task = session.download_task_named(DEMO_ASSET, &url, config)?;
        run_tasks(&session, vec![task.clone()], args.json).await?;
        anyhow::Ok(task.bundle_path())
    })?;
    let bundle = Bundle::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let report = bundle.verify(false).with_context(|| format!("verifying {}", path.display()))?;
    if !report.is_ok() {
        anyhow::bail!("the downloaded demo bundle has {} damaged segment(s)", report.problems.len());
    }
    let cache = AssetCache::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let languages: Vec<String> = cache
        .available_media_selections()
        .iter()
        .filter_map(|o| o.language.clone().map(|l| format!("{l} ({:?})", o.kind).to_lowercase()))
        .collect();
    output::eprint(&format!(
        "verified: {} segment(s), {} re-hashed; playable offline: {}; selections: {}\n",
        report.checked,
        human_bytes(report.bytes_checked),
        if cache.is_playable_offline() { "yes" } else { "no" },
        languages.join(", ")
    ));
    if args.json {
        let line = serde_json::json!({
            "event": "verified",
            "path": path,
            "segments": report.checked,
            "bytes": report.bytes_checked,
            "playable_offline": cache.is_playable_offline(),
        });
        return output::print_json(&line);
    }
    output::print(&format!("{}\n", path.display()))?;
    output::eprint(&format!("inspect:  stowage --store {} info {DEMO_ASSET}\n", store.dir()?.display()));
    Ok(())
}
