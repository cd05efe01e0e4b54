//! Parse, resolve and write throughput on the generated inputs, with m3u8-rs and a bare memchr line split
//! measured side by side.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use stowage_playlist::{MasterPlaylist, MediaPlaylist};

mod common;

fn memchr_lines(input: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', input).count()
}

fn media(c: &mut Criterion, name: &str, input: &str) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.sample_size(20);
    g.bench_function("stowage parse", |b| b.iter(|| MediaPlaylist::parse(black_box(input)).unwrap()));
    g.bench_function("memchr line split (bound)", |b| b.iter(|| memchr_lines(black_box(input.as_bytes()))));
    g.bench_function("m3u8-rs parse", |b| {
        b.iter(|| m3u8_rs::parse_media_playlist_res(black_box(input.as_bytes())).unwrap());
    });
    let playlist = MediaPlaylist::parse(input).unwrap();
    g.bench_function("stowage resolve", |b| {
        b.iter(|| black_box(&playlist).resolve(Some("https://cdn.example.com/video/index.m3u8")).unwrap());
    });
    g.bench_function("stowage write", |b| {
        b.iter(|| {
            let mut out = String::new();
            black_box(&playlist).write_to(&mut out);
            out
        });
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    media(c, "media 100k segments", &common::media(false));
    media(c, "media 100k segments with byte ranges", &common::media(true));
    let master = common::master();
    let mut g = c.benchmark_group("master 64 variants 20 renditions");
    g.throughput(Throughput::Bytes(master.len() as u64));
    g.bench_function("stowage parse", |b| b.iter(|| MasterPlaylist::parse(black_box(&master)).unwrap()));
    g.bench_function("memchr line split (bound)", |b| b.iter(|| memchr_lines(black_box(master.as_bytes()))));
    g.bench_function("m3u8-rs parse", |b| {
        b.iter(|| m3u8_rs::parse_master_playlist_res(black_box(master.as_bytes())).unwrap());
    });
    let playlist = MasterPlaylist::parse(&master).unwrap();
    g.bench_function("stowage write", |b| b.iter(|| black_box(&playlist).to_string()));
    g.finish();
}

criterion_group!(parse, benches);
criterion_main!(parse);
