//! Synthetic speech from the Debian TTS engines: real clips in the Speech Commands layout.
//! Needs espeak-ng (CI installs it and sets SPIKEWORD_REQUIRE_TTS=1; elsewhere it skips).

use spikeword::data::synth::{SynthOptions, synthesize};
use spikeword::data::{Dataset, SplitRule};

#[test]
fn espeak_voices_a_word_into_one_second_clips() {
    let have = std::process::Command::new("espeak-ng")
        .arg("--version")
        .output()
        .is_ok();
    if !have {
        assert!(
            std::env::var("SPIKEWORD_REQUIRE_TTS").is_err(),
            "espeak-ng is required here"
        );
        eprintln!("skipped: espeak-ng not installed");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let rep = synthesize(&SynthOptions {
        words: vec!["marvin".into(), "yes".into()],
        out: d.path().to_path_buf(),
        variants: 3,
        seed: 4,
        engines: vec!["espeak".into()],
    })
    .unwrap();
    assert_eq!(rep.clips.get("espeak"), Some(&6), "{rep:?}");
    let ds = Dataset::scan(d.path(), &SplitRule::Official).unwrap();
    assert_eq!(ds.clips.len(), 6);
    for c in &ds.clips {
        let x = spikeword::load_wav(&c.path, 16000).unwrap();
        assert_eq!(x.len(), 16000);
        let peak = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(
            peak > 0.1 && peak < 1.0,
            "{}: peak {peak}",
            c.path.display()
        );
        assert!(c.speaker.starts_with("espeak"));
    }
}
