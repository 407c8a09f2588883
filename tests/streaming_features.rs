//! Streaming log-mel equals offline log-mel, whatever the chunking.

use proptest::prelude::*;
use spikeword::{FeatureConfig, StreamingMel, load_wav, log_mel};

fn streamed(x: &[f32], chunks: &[usize]) -> Vec<f32> {
    let mut s = StreamingMel::new(&FeatureConfig::default());
    let mut out = Vec::new();
    let mut pos = 0;
    let mut k = 0;
    while pos < x.len() {
        let n = chunks[k % chunks.len()].min(x.len() - pos);
        s.push(&x[pos..pos + n], |f| out.extend_from_slice(f));
        pos += n;
        k += 1;
    }
    out
}

fn clip() -> Vec<f32> {
    load_wav(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/yes.wav"),
        16000,
    )
    .unwrap()
}

#[test]
fn fixed_chunk_sizes_give_the_offline_frames_exactly() {
    let x = clip();
    let offline = log_mel(&x, &FeatureConfig::default()).data;
    for size in [1usize, 7, 160, 479, 480, 481, 4096, 16000] {
        assert_eq!(streamed(&x, &[size]), offline, "chunk size {size}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_chunking_gives_the_offline_frames(chunks in proptest::collection::vec(1usize..5000, 1..20), len in 0usize..20000) {
        let x: Vec<f32> = clip().into_iter().cycle().take(len).collect();
        let offline = log_mel(&x, &FeatureConfig::default()).data;
        prop_assert_eq!(streamed(&x, &chunks), offline);
    }
}
