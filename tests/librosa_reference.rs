//! Log-mel frames agree with librosa (fixtures made by scripts/librosa_reference.py).

use std::path::Path;

use spikeword::{FeatureConfig, load_wav, log_mel};

fn check(name: &str) -> f32 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}_logmel.json"))).unwrap(),
    )
    .unwrap();
    let want: Vec<Vec<f32>> = serde_json::from_value(r["logmel"].clone()).unwrap();
    let x = load_wav(&dir.join(format!("{name}.wav")), 16000).unwrap();
    let got = log_mel(&x, &FeatureConfig::default());
    assert_eq!(got.n_frames(), want.len());
    assert_eq!(got.n_mels, want[0].len());
    let mut worst = 0f32;
    for (t, row) in want.iter().enumerate() {
        for (b, &w) in row.iter().enumerate() {
            let g = got.frame(t)[b];
            // 1e-4 relative (absolute below |1|, where log-mel crosses zero).
            let err = (g - w).abs() / w.abs().max(1.0);
            worst = worst.max(err);
            assert!(err < 1e-4, "{name} frame {t} band {b}: {g} vs librosa {w}");
        }
    }
    worst
}

#[test]
fn chirp_matches_librosa() {
    let e = check("chirp");
    eprintln!("chirp: worst relative error {e:.2e}");
}

#[test]
fn real_speech_commands_clip_matches_librosa() {
    let e = check("yes");
    eprintln!("yes: worst relative error {e:.2e}");
}
