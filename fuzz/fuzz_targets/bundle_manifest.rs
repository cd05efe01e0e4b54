//! The bundle manifest reader on hostile bytes: never panics; whatever it accepts, it writes back in a
//! form it accepts again.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use stowage_bundle::Manifest;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("manifest.json");
    if let Ok(manifest) = Manifest::parse(path, data) {
        let written = manifest.to_json();
        let again = Manifest::parse(path, &written).expect("a written manifest reads back");
        assert_eq!(again.renditions.len(), manifest.renditions.len());
        assert_eq!(again.asset, manifest.asset);
        assert_eq!(again.gaps, manifest.gaps);
    }
});
