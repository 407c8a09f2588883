//! Arbitrary bytes through the WAV decoder, the resampler and the log-mel front end:
//! every input must give samples or an `AudioError`, never a panic, a hang or NaN frames.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spikeword::audio::wav::WavReader;
use spikeword::audio::StreamResampler;
use spikeword::{FeatureConfig, StreamingMel};

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = WavReader::new(data) else { return };
    let spec = r.spec();
    let Ok(mut rs) = StreamResampler::new(spec.sample_rate, 16_000) else { return };
    let mut mel = StreamingMel::new(&FeatureConfig::default());
    let (mut raw, mut out) = (Vec::new(), Vec::new());
    loop {
        raw.clear();
        match r.read_mono(&mut raw, 4096) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        out.clear();
        if rs.push(&raw, &mut out).is_err() {
            return;
        }
        mel.push(&out, |f| assert!(f.iter().all(|v| v.is_finite()), "non-finite log-mel"));
    }
});
