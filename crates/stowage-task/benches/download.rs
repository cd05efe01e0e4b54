//! The driver end to end against the in-process origin on loopback.
//!
//! * `download_aes_32x1MB`: one AES-128 rendition of 32 MPEG-TS segments of 1 MiB (whole 188-byte packets:
//!   1,048,476 bytes; `Throughput::Bytes`), measured side by side with `fetch_only`, the same 32 requests
//!   through the same fetch client at the same concurrency with the bodies thrown away. The ratio is what the driver adds: decryption, the durable
//!   segment writer (sync, rename, journal), playlists, the manifest and events.
//! * `latency_bound_120x20ms_4conn`: 120 small segments with 20 ms injected before each response, four
//!   in flight: the bound is `120 × 20 ms / 4 = 600 ms`.
//!
//! Each task is run with the bundle's default durability (batched: every segment's file synced, the
//! folders and the journal synced for many segments at once) and with `Durability::Full` (three syncs per
//! segment), to show how much of the time is the disk's.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stowage_bundle::{BundleOptions, Durability};
use stowage_fetch::{Client, ClientConfig, Request};
use stowage_origin::hls::{EncryptOptions, encrypt_rendition};
use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig};
use stowage_task::{ContentConfiguration, DownloadConfiguration, DownloadSession, SessionConfig};

/// The length of an MPEG-TS segment of `size` bytes at most: whole 188-byte packets.
fn ts_len(size: usize) -> usize {
    size / 188 * 188
}

fn asset(files: &Files, dir: &str, segments: usize, size: usize) {
    let mut playlist =
        String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    for i in 0..segments {
        // Bytes that do not compress or repeat, like media, in MPEG-TS packets (a sync byte every 188
        // bytes), which is what the task checks a stored `.ts` segment holds.
        let body: Vec<u8> =
            (0..ts_len(size))
                .map(|j| {
                    if j % 188 == 0 { 0x47 } else { ((j as u64 * 2_654_435_761 + i as u64 * 97) >> 13) as u8 }
                })
                .collect();
        files.insert_bytes(&format!("{dir}/s{i}.ts"), body);
        playlist.push_str(&format!("#EXTINF:2.0,\ns{i}.ts\n"));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    files.insert_bytes(&format!("{dir}/index.m3u8"), playlist);
}

fn download(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    connections: usize,
    durability: Option<Durability>,
) {
    let store = tempfile::tempdir().unwrap();
    let mut config = SessionConfig::new(store.path()).max_connections(connections).adaptive(false);
    if let Some(durability) = durability {
        config = config.bundle_options(BundleOptions::default().durability(durability));
    }
    runtime.block_on(async {
        let session = DownloadSession::new(config).unwrap();
        let task =
            session.download_task(url, DownloadConfiguration::new(ContentConfiguration::new())).unwrap();
        task.resume();
        task.wait().await.unwrap();
    });
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let files = Files::new();
    asset(&files, "/big", 32, 1 << 20);
    encrypt_rendition(&files, "/big/index.m3u8", &EncryptOptions::default().rotate_every(8)).unwrap();
    asset(&files, "/small", 120, 20_000);
    let origin = Origin::start(files, OriginConfig::default()).unwrap();
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(20))).prefix("/small/s"));

    let mut group = c.benchmark_group("download_aes_32x1MB");
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Bytes(32 * ts_len(1 << 20) as u64));
    let big = origin.url("/big/index.m3u8");
    group.bench_function("task_decrypt_store", |b| b.iter(|| download(&runtime, &big, 4, None)));
    let full = Some(Durability::Full);
    group.bench_function("task_decrypt_store_full", |b| b.iter(|| download(&runtime, &big, 4, full)));
    let client = Arc::new(Client::new(ClientConfig::default()).unwrap());
    group.bench_function("fetch_only", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                let sem = Arc::new(tokio::sync::Semaphore::new(4));
                for i in 0..32 {
                    let (client, sem, url) =
                        (Arc::clone(&client), Arc::clone(&sem), origin.url(&format!("/big/s{i}.ts")));
                    set.spawn(async move {
                        let _permit = sem.acquire().await.unwrap();
                        let mut body = client.get(Request::get(&url).unwrap()).await.unwrap().into_body();
                        while body.chunk().await.unwrap().is_some() {}
                    });
                }
                while set.join_next().await.is_some() {}
            });
        });
    });
    // The floor on this disk: the same fetches, each body written to its own file and synced.
    group.bench_function("fetch_write_fsync", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().unwrap();
            runtime.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                let sem = Arc::new(tokio::sync::Semaphore::new(4));
                for i in 0..32 {
                    let (client, sem) = (Arc::clone(&client), Arc::clone(&sem));
                    let url = origin.url(&format!("/big/s{i}.ts"));
                    let path = dir.path().join(format!("s{i}.ts"));
                    set.spawn(async move {
                        let _permit = sem.acquire().await.unwrap();
                        let body =
                            client.get(Request::get(&url).unwrap()).await.unwrap().bytes().await.unwrap();
                        tokio::task::spawn_blocking(move || {
                            use std::io::Write;
                            let mut f = std::fs::File::create(path).unwrap();
                            f.write_all(&body).unwrap();
                            f.sync_all().unwrap();
                        })
                        .await
                        .unwrap();
                    });
                }
                while set.join_next().await.is_some() {}
            });
        });
    });
    group.finish();

    let mut group = c.benchmark_group("latency_bound_120x20ms_4conn");
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    let small = origin.url("/small/index.m3u8");
    group.bench_function("task", |b| b.iter(|| download(&runtime, &small, 4, None)));
    group.bench_function("task_full", |b| b.iter(|| download(&runtime, &small, 4, Some(Durability::Full))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
