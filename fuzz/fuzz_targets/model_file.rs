//! Arbitrary bytes as a model file: the loader must return a model or a `ModelError`,
//! never panic, hang or allocate without bound, and a model it accepts must run a clip
//! through the engine and the detector (its whole config was validated on load).
#![no_main]

use libfuzzer_sys::fuzz_target;
use spikeword::Model;
use spikeword::detect::{DetectorConfig, Engine};

fuzz_target!(|data: &[u8]| {
    let Ok(model) = Model::from_bytes(data, "fuzz") else { return };
    let rate = model.config.features.sample_rate as usize;
    let clip: Vec<f32> = (0..rate / 4).map(|i| ((i % 97) as f32 / 97.0 - 0.5) * 0.1).collect();
    let mut engine = Engine::new(&model, DetectorConfig::default());
    engine.push(&clip, |_| {});
    let _ = engine.finish();
    let _ = model.decision_window();
});
