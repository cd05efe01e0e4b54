//! Decryption throughput on 2 MB segments (a typical 4 s segment at 4 Mb/s): one-shot into a new
//! buffer, in place, and streaming in network-sized chunks through a reused buffer.

use std::hint::black_box;

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use stowage_fetch::decrypt::{Decryptor, decrypt, decrypt_in_place, sequence_iv};

const SEGMENT: usize = 2 * 1024 * 1024;
const KEY: [u8; 16] = *b"stowage-bench-k!";

fn segment() -> (Vec<u8>, [u8; 16]) {
    let clear: Vec<u8> = (0..SEGMENT).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let iv = sequence_iv(1234);
    let encrypted =
        cbc::Encryptor::<aes::Aes128>::new(&KEY.into(), &iv.into()).encrypt_padded_vec_mut::<Pkcs7>(&clear);
    (encrypted, iv)
}

/// Decrypts as a download does: each chunk's plaintext is handed on (here, dropped) before the next chunk,
/// so the output buffer is reused and stays small.
fn streamed(encrypted: &[u8], iv: &[u8; 16], chunk: usize, out: &mut Vec<u8>) -> usize {
    let mut decryptor = Decryptor::aes128(&KEY, iv).unwrap();
    let mut written = 0;
    for piece in encrypted.chunks(chunk) {
        out.clear();
        decryptor.update(piece, out);
        written += black_box(&out[..]).len();
    }
    out.clear();
    decryptor.finish(out).unwrap();
    written + out.len()
}

fn bench(c: &mut Criterion) {
    let (encrypted, iv) = segment();
    let mut group = c.benchmark_group("decrypt_2MB");
    group.throughput(Throughput::Bytes(encrypted.len() as u64));
    group.sample_size(50);

    group.bench_function("one_shot", |b| b.iter(|| decrypt(&KEY, &iv, black_box(&encrypted)).unwrap()));
    group.bench_function("in_place", |b| {
        b.iter_batched_ref(
            || encrypted.clone(),
            |buf| decrypt_in_place(&KEY, &iv, black_box(buf)).unwrap(),
            BatchSize::LargeInput,
        );
    });
    let mut out = Vec::with_capacity(64 * 1024);
    // 16 KiB: the usual size of a TLS record and of hyper's body chunks.
    group.bench_function("stream_16KiB_chunks", |b| {
        b.iter(|| streamed(black_box(&encrypted), &iv, 16 * 1024, &mut out));
    });
    // Chunks that never line up with blocks, so every call carries a partial block over.
    group.bench_function("stream_10007B_chunks", |b| {
        b.iter(|| streamed(black_box(&encrypted), &iv, 10_007, &mut out));
    });
    group.finish();
}

// The macro generates an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
