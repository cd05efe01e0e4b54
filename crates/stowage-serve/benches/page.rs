//! The page of a store of 1,000 assets: `GET /` over HTTP/1.1 on loopback, timed from the request to the
//! last byte of the page.
//!
//! - `cold`: a new server for each request, so every bundle's manifest is read and parsed, and every
//!   bundle folder is walked for its size (what the first visit after a start costs);
//! - `warm`: the same server again, whose readers and statuses are kept while the bundles' manifests and
//!   journals are unchanged (what every later visit, and the page's polling, costs).
//!
//! Each asset is a 1-minute asset in 2-second segments: a video, two audio and one subtitle rendition, 30
//! segments each (a 50 kB manifest, 120 files). One in twenty is a download stopped half way, whose
//! progress is read from its journal. The store is made once, on a RAM-backed folder when there is one
//! (`/dev/shm`), because making 120,000 durable segments on a disk takes minutes; reading them back comes
//! from the page cache in both cases.
// criterion's macros make undocumented public functions.
#![allow(missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use stowage_bundle::{AssetInfo, BundlePlan, RenditionId, RenditionKind, RenditionPlan, StorageManager};
use stowage_serve::{ServeConfig, Server};

const ASSETS: usize = 1000;
const SEGMENTS: usize = 30;

fn playlist(ext: &str) -> String {
    let mut text =
        String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    for i in 0..SEGMENTS {
        text.push_str(&format!("#EXTINF:2.000,\nseg{i}.{ext}\n"));
    }
    text.push_str("#EXT-X-ENDLIST\n");
    text
}

fn rendition(id: &str, kind: RenditionKind, ext: &str) -> RenditionPlan {
    let url = format!("https://cdn.example/{id}/index.m3u8");
    RenditionPlan::from_playlist(RenditionId::new(id).unwrap(), kind, url, playlist(ext)).unwrap()
}

fn make_store(dir: &Path) -> StorageManager {
    let store = StorageManager::new(dir);
    for n in 0..ASSETS {
        let plan =
            BundlePlan::new(AssetInfo::new(format!("asset-{n:04}")).title(format!("Asset number {n}")))
                .rendition(rendition("video", RenditionKind::Video, "ts").primary(true))
                .rendition(rendition("audio-en", RenditionKind::Audio, "ts").language("en").primary(true))
                .rendition(rendition("audio-fr", RenditionKind::Audio, "ts").language("fr"))
                .rendition(rendition("subs-en", RenditionKind::Subtitles, "vtt").language("en"));
        let bundle = store.create_bundle(plan).unwrap();
        let pending = bundle.pending_segments();
        let stopped = n % 20 == 7;
        let keep = if stopped { pending.len() / 2 } else { pending.len() };
        for id in pending.into_iter().take(keep) {
            let mut writer = bundle.segment_writer(&id).unwrap();
            writer.write(&[0x47; 1024]).unwrap();
            writer.finish().unwrap();
        }
        if stopped {
            bundle.write_playlists().unwrap();
        } else {
            bundle.mark_finished().unwrap();
        }
    }
    store
}

fn get_page(addr: SocketAddr) -> usize {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = Vec::with_capacity(4 << 20);
    stream.read_to_end(&mut reply).unwrap();
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply[..200.min(reply.len())])
    );
    reply.len()
}

fn base_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() }
}

fn page(c: &mut Criterion) {
    let tmp = tempfile::tempdir_in(base_dir()).unwrap();
    let store = make_store(&tmp.path().join("store"));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let bind = || {
        runtime
            .block_on(Server::bind_with(
                "127.0.0.1:0".parse().unwrap(),
                store.clone(),
                ServeConfig::default(),
            ))
            .unwrap()
    };
    let mut group = c.benchmark_group("page_1000_assets");
    group.sample_size(20).measurement_time(Duration::from_secs(20));
    group.bench_function("cold", |b| {
        b.iter_batched(
            bind,
            |server| {
                let len = get_page(server.local_addr());
                runtime.block_on(server.shutdown());
                len
            },
            criterion::BatchSize::PerIteration,
        );
    });
    // What a cold page costs in processor time, whatever else the machine runs: the process's user and
    // system time over ten cold pages (the client's reading of the page is in it too).
    let cpu = || {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let fields: Vec<&str> =
            stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        // utime and stime, fields 14 and 15 of the line, in clock ticks of 10 ms on Linux.
        (ticks(11) + ticks(12)) as f64 / 100.0
    };
    let (before, started) = (cpu(), std::time::Instant::now());
    for _ in 0..10 {
        let server = bind();
        get_page(server.local_addr());
        runtime.block_on(server.shutdown());
    }
    println!(
        "cold page: {:.0} ms of processor time each, {:.0} ms of wall time each",
        (cpu() - before) * 100.0,
        started.elapsed().as_secs_f64() * 100.0
    );
    let server = bind();
    let bytes = get_page(server.local_addr());
    println!("the page of {ASSETS} assets is {bytes} bytes");
    group.bench_function("warm", |b| b.iter(|| get_page(server.local_addr())));
    group.finish();
    runtime.block_on(server.shutdown());
}

criterion_group!(benches, page);
criterion_main!(benches);
