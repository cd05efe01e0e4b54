#![no_main]
//! The WebVTT of subtitle segments: reading never panics, and what is read is written back to a file that
//! reads as the same cues (through the joiner, which must keep every cue of a single segment that lies on
//! the timeline).

use libfuzzer_sys::fuzz_target;
use stowage_playlist::webvtt::{self, Joiner};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(file) = webvtt::parse(text) else { return };
    let mut joiner = Joiner::default();
    joiner.segment(&file.blocks);
    let on_timeline: Vec<_> = file.cues.iter().filter(|c| c.end > 0).cloned().collect();
    for cue in file.cues {
        joiner.push(cue);
    }
    let (blocks, cues) = joiner.finish();
    assert_eq!(cues.len(), on_timeline.len(), "one segment's cues are never joined");
    let written = webvtt::write_vtt(&blocks, &cues);
    let again = webvtt::parse(&written).unwrap_or_else(|e| panic!("{e} in what was written:\n{written}"));
    let texts = |cues: &[webvtt::Cue]| cues.iter().map(|c| (c.start, c.end, c.text.clone())).collect::<Vec<_>>();
    assert_eq!(texts(&again.cues), texts(&cues));
    let _ = webvtt::write_srt(&cues);
});
