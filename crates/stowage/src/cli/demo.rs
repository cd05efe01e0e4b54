//! `stowage demo`: the embedded default. A small real HLS asset (H.264 + AAC made with ffmpeg: two
//! variants, English and French audio, English and French WebVTT subtitles) carried in the binary, served
//! AES-128 encrypted from an in-process origin on 127.0.0.1.

use std::io::Write as _;

use anyhow::Context;
use stowage_origin::hls::{EncryptOptions, encrypt_rendition};
use stowage_origin::{Files, Origin, OriginConfig};

include!(concat!(env!("OUT_DIR"), "/demo_files.rs"));

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

pub(crate) fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let demo = DemoOrigin::start(args.port)?;
    if args.serve {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", demo.master_url()).context("writing to standard output")?;
        out.flush().context("writing to standard output")?;
        eprintln!("serving the demo asset, AES-128 encrypted, until interrupted (Ctrl-C)");
        loop {
            std::thread::park();
        }
    }
    anyhow::bail!(
        "downloading the demo needs the download engine; serve it with `stowage demo --serve` meanwhile"
    )
}
