//! Damaged and hostile input: the fixtures' segments, initialization sections and subtitle files with bits
//! flipped, bytes cut off and garbage spliced in, through every reader of this crate. Each must give an
//! error or a result, never a panic or a hang.

use std::path::Path;

use stowage_playlist::webvtt;

use crate::{fmp4, ts};

/// A small deterministic generator (xorshift), so that a failure names a seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/assets/hls").join(path)).unwrap()
}

/// `bytes` damaged one of several ways.
fn damage(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match rng.below(4) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(out.len());
                out[at] ^= 1 << rng.below(8);
            }
        }
        1 => out.truncate(rng.below(out.len())),
        2 => {
            let at = rng.below(out.len());
            let garbage: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
            out.splice(at..at, garbage);
        }
        _ => {
            // A size or count field made huge: four bytes overwritten with 0xff.
            let at = rng.below(out.len().saturating_sub(4));
            out[at..at + 4].fill(0xff);
        }
    }
    out
}

const ROUNDS: u64 = 400;

#[test]
fn damaged_transport_streams_never_panic() {
    let segment = fixture("disc/video0/b000.ts");
    for seed in 1..=ROUNDS {
        let mut rng = Rng(seed);
        let mut bytes = damage(&segment, &mut rng);
        let _ = ts::probe(&bytes);
        let mut retimer = ts::Retimer::new();
        retimer.begin_segment(rng.next(), true);
        let whole = bytes.len() / ts::PACKET * ts::PACKET;
        let _ = retimer.process(&mut bytes[..whole]);
    }
}

#[test]
fn damaged_fmp4_never_panics() {
    let init = fixture("cmaf/video0/init.mp4");
    let segment = fixture("cmaf/video0/seg001.m4s");
    let good = fmp4::Init::parse(&init).unwrap();
    for seed in 1..=ROUNDS {
        let mut rng = Rng(seed);
        let bad_init = damage(&init, &mut rng);
        let parsed = fmp4::Init::parse(&bad_init);
        let bad_segment = damage(&segment, &mut rng);
        let _ = fmp4::probe(&good, &bad_segment);
        let init = parsed.unwrap_or_else(|_| good.clone());
        let spec = fmp4::TrackSpec {
            inits: vec![init],
            language: "und".into(),
            name: None,
            default: true,
            alternate_group: 0,
        };
        if let Ok(mut muxer) = fmp4::Muxer::new(Vec::new(), vec![spec], 2.0) {
            let _ = muxer.write_segment(0, 0, -128_000, bad_segment.as_slice(), bad_segment.len() as u64);
            // A length that disagrees with the bytes is an error too, not a short read taken as whole.
            let _ = muxer.write_segment(0, 0, 0, segment.as_slice(), segment.len() as u64 + 1);
        }
    }
}

#[test]
fn damaged_webvtt_never_panics() {
    let text = fixture("cmaf/subs-fr/seg001.vtt");
    for seed in 1..=ROUNDS {
        let mut rng = Rng(seed);
        let bytes = damage(&text, &mut rng);
        let _ = webvtt::parse(&String::from_utf8_lossy(&bytes));
    }
}
