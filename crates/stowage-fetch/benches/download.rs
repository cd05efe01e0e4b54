//! Loopback downloads against the in-process origin: one 256 MB file over HTTP/1.1 and HTTPS, side by side
//! with curl on the same server and file, and 1,000 small segments with injected latency.
//!
//! With decryption on, the file is AES-128-CBC ciphertext and every chunk goes through the streaming
//! decryptor as it arrives, as a segment download does.
//!
//! Run with `cargo bench -p stowage-fetch --bench download`; results are discussed in `benches/README.md`.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stowage_fetch::decrypt::Decryptor;
use stowage_fetch::{Client, ClientConfig, ProxyConfig, Request, TlsConfig};
use stowage_origin::{Fault, FaultRule, Files, HttpVersions, Origin, OriginConfig, TlsConfig as OriginTls};

const BIG: usize = 256 << 20;
const SMALL: usize = 200_000;
const SEGMENTS: usize = 1000;
const IN_FLIGHT: usize = 8;
const LATENCY: Duration = Duration::from_millis(20);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Streams a body to nowhere, as curl's `-o /dev/null` does, and checks its length.
async fn download(client: &Client, url: &str, expected: usize) {
    let mut body = client.get(Request::get(url).expect("url")).await.expect("response").into_body();
    let mut n = 0;
    while let Some(chunk) = body.chunk().await.expect("chunk") {
        n += chunk.len();
    }
    assert_eq!(n, expected);
}

const KEY: [u8; 16] = *b"stowage-bench-k!";
const IV: [u8; 16] = [7; 16];

/// Streams an encrypted body through the decryptor, handing each plaintext piece on (here, dropping it).
async fn download_decrypting(client: &Client, url: &str, expected_plain: usize) {
    let mut body = client.get(Request::get(url).expect("url")).await.expect("response").into_body();
    let mut decryptor = Decryptor::aes128(&KEY, &IV).expect("key");
    let mut out = Vec::with_capacity(1 << 20);
    let mut n = 0;
    while let Some(chunk) = body.chunk().await.expect("chunk") {
        out.clear();
        decryptor.update(&chunk, &mut out);
        n += std::hint::black_box(&out[..]).len();
    }
    out.clear();
    decryptor.finish(&mut out).expect("padding");
    n += out.len();
    assert_eq!(n, expected_plain);
}

fn curl(url: &str, cacert: Option<&std::path::Path>) {
    curl_with(url, cacert, &[]);
}

fn curl_with(url: &str, cacert: Option<&std::path::Path>, extra: &[&str]) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "--fail", url]).args(extra);
    if let Some(ca) = cacert {
        cmd.arg("--cacert").arg(ca);
    }
    let status = cmd.status().expect("curl runs");
    assert!(status.success(), "curl failed: {status}");
}

fn big_file(c: &mut Criterion) {
    let body = Bytes::from(vec![0x47u8; BIG]);
    // One block short of 256 MB of plaintext, so that the padded ciphertext is exactly 256 MB.
    let encrypted = Bytes::from(
        cbc::Encryptor::<aes::Aes128>::new(&KEY.into(), &IV.into())
            .encrypt_padded_vec_mut::<Pkcs7>(&body[..BIG - 16]),
    );
    assert_eq!(encrypted.len(), BIG);
    let plain = Origin::start(
        Files::new().with_bytes("/big.ts", body.clone()).with_bytes("/big.enc", encrypted.clone()),
        OriginConfig::default().versions(HttpVersions::Http1Only),
    )
    .expect("origin");
    let secure = Origin::start(
        Files::new().with_bytes("/big.ts", body).with_bytes("/big.enc", encrypted),
        OriginConfig::default().tls(OriginTls::default()),
    )
    .expect("tls origin");
    let ca_path = std::env::temp_dir().join(format!("stowage-bench-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_path, secure.ca_pem().expect("ca")).expect("write ca");
    let rt = runtime();
    let tls = TlsConfig::default().add_root_certificates_pem(secure.ca_pem().expect("ca"));
    let client = Client::new(ClientConfig::default().proxy(ProxyConfig::None).tls(tls)).expect("client");

    let mut g = c.benchmark_group("loopback_256MB");
    g.throughput(Throughput::Bytes(BIG as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(12));
    let url = plain.url("/big.ts");
    g.bench_function("http1/stowage", |b| b.iter(|| rt.block_on(download(&client, &url, BIG))));
    g.bench_function("http1/curl", |b| b.iter(|| curl(&url, None)));
    let eurl = plain.url("/big.enc");
    g.bench_function("http1/stowage+decrypt", |b| {
        b.iter(|| rt.block_on(download_decrypting(&client, &eurl, BIG - 16)));
    });
    let surl = secure.url("/big.ts");
    g.bench_function("https/stowage", |b| b.iter(|| rt.block_on(download(&client, &surl, BIG))));
    g.bench_function("https/curl", |b| b.iter(|| curl(&surl, Some(&ca_path))));
    // The same over HTTP/1.1, for both clients, to tell TLS costs from HTTP/2 costs.
    let h1_client = Client::new(
        ClientConfig::default()
            .proxy(ProxyConfig::None)
            .http2(false)
            .tls(TlsConfig::default().add_root_certificates_pem(secure.ca_pem().expect("ca"))),
    )
    .expect("client");
    g.bench_function("https_http1/stowage", |b| b.iter(|| rt.block_on(download(&h1_client, &surl, BIG))));
    g.bench_function("https_http1/curl", |b| b.iter(|| curl_with(&surl, Some(&ca_path), &["--http1.1"])));
    let seurl = secure.url("/big.enc");
    g.bench_function("https/stowage+decrypt", |b| {
        b.iter(|| rt.block_on(download_decrypting(&client, &seurl, BIG - 16)));
    });
    g.finish();
    let _ = std::fs::remove_file(&ca_path);
}

fn many_small(c: &mut Criterion) {
    let segment = Bytes::from(vec![0x47u8; SMALL]);
    let files = Files::new();
    for i in 0..SEGMENTS {
        files.insert_bytes(&format!("/seg{i}.ts"), segment.clone());
    }
    let origin =
        Origin::start(files, OriginConfig::default().versions(HttpVersions::Http1Only)).expect("origin");
    origin.faults().add(FaultRule::new(Fault::Latency(LATENCY)));
    let rt = runtime();
    let client =
        Client::new(ClientConfig::default().proxy(ProxyConfig::None).max_connections_per_host(IN_FLIGHT))
            .expect("client");
    let urls: Arc<Vec<String>> =
        Arc::new((0..SEGMENTS).map(|i| origin.url(&format!("/seg{i}.ts"))).collect());

    let mut g = c.benchmark_group("segments_1000x200kB_8_in_flight_20ms");
    g.throughput(Throughput::Bytes((SEGMENTS * SMALL) as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(30));
    g.bench_function("stowage", |b| {
        b.iter(|| {
            rt.block_on(async {
                let next = Arc::new(AtomicUsize::new(0));
                let workers: Vec<_> = (0..IN_FLIGHT)
                    .map(|_| {
                        let (client, urls, next) = (client.clone(), urls.clone(), next.clone());
                        tokio::spawn(async move {
                            loop {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                let Some(url) = urls.get(i) else { break };
                                download(&client, url, SMALL).await;
                            }
                        })
                    })
                    .collect();
                for w in workers {
                    w.await.expect("worker");
                }
            });
        });
    });
    g.finish();
}

criterion_group!(benches, big_file, many_small);
criterion_main!(benches);
