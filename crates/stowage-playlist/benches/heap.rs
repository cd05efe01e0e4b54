//! Peak heap while parsing the generated inputs, measured with dhat's counting allocator (no unsafe
//! code of our own), for stowage and m3u8-rs side by side. Prints a table; run with `cargo bench --bench
//! heap`.

use stowage_playlist::{MasterPlaylist, MediaPlaylist};

mod common;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Peak bytes allocated while `f` runs (the input, allocated before, is not counted).
fn peak<T>(f: impl FnOnce() -> T) -> usize {
    let profiler = dhat::Profiler::builder().testing().trim_backtraces(Some(4)).build();
    let value = f();
    let max = dhat::HeapStats::get().max_bytes;
    drop(value);
    drop(profiler);
    max
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("| input | bytes | stowage peak heap | ratio | m3u8-rs peak heap | ratio |");
    println!("|---|---|---|---|---|---|");
    let inputs = [
        ("media 100k segments", common::media(false)),
        ("media 100k segments with byte ranges", common::media(true)),
        ("master 64 variants 20 renditions", common::master()),
    ];
    for (name, input) in &inputs {
        let master = name.starts_with("master");
        let ours = peak(|| {
            if master {
                MasterPlaylist::parse(input).map(|_| ()).unwrap();
            } else {
                MediaPlaylist::parse(input).map(|p| p.segments().len()).unwrap();
            }
        });
        let theirs = peak(|| {
            if master {
                m3u8_rs::parse_master_playlist_res(input.as_bytes()).map(|_| ()).unwrap();
            } else {
                m3u8_rs::parse_media_playlist_res(input.as_bytes()).map(|_| ()).unwrap();
            }
        });
        let n = input.len();
        println!(
            "| {name} | {n} | {ours} | {:.2}x | {theirs} | {:.2}x |",
            ours as f64 / n as f64,
            theirs as f64 / n as f64
        );
    }
}
