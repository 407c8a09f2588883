//! Synthetic speech from the TTS engines: real clips in the Speech Commands layout.
//! Needs espeak-ng, and node with `npm ci` run in scripts/gnuspeech (CI installs both and
//! sets SPIKEWORD_REQUIRE_TTS=1; elsewhere a missing engine skips).

use spikeword::data::synth::{SynthOptions, synthesize};
use spikeword::data::{Dataset, SplitRule};

/// Whether `program args` runs; when it does not, a skip (or a failure under CI).
fn engine_runs(program: &str, args: &[&str]) -> bool {
    let ok = std::process::Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("SPIKEWORD_REQUIRE_TTS").is_err(),
            "`{program} {}` is required here",
            args.join(" ")
        );
        eprintln!("skipped: `{program} {}` does not run", args.join(" "));
    }
    ok
}

/// Synthesizes `words` with one engine; checks every clip is 1 s, loud and the engine's.
fn voice_words(engine: &str, words: &[&str], variants: usize) -> Dataset {
    let d = tempfile::tempdir().unwrap();
    let rep = synthesize(&SynthOptions {
        words: words.iter().map(|w| w.to_string()).collect(),
        out: d.path().to_path_buf(),
        variants,
        seed: 4,
        engines: vec![engine.into()],
    })
    .unwrap();
    let n = words.len() * variants;
    assert_eq!(rep.clips.get(engine), Some(&n), "{rep:?}");
    let ds = Dataset::scan(d.path(), &SplitRule::Official).unwrap();
    assert_eq!(ds.clips.len(), n);
    for c in &ds.clips {
        let x = spikeword::load_wav(&c.path, 16000).unwrap();
        assert_eq!(x.len(), 16000);
        let peak = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(
            peak > 0.1 && peak < 1.0,
            "{}: peak {peak}",
            c.path.display()
        );
        assert!(c.speaker.starts_with(engine), "{}", c.speaker);
    }
    ds
}

#[test]
fn espeak_voices_a_word_into_one_second_clips() {
    if engine_runs("espeak-ng", &["--version"]) {
        voice_words("espeak", &["marvin", "yes"], 3);
    }
}

#[test]
fn gnuspeech_voices_words_with_vocal_tracts_of_several_lengths() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gnuspeech/speak.mjs");
    if !engine_runs("node", &[script, "--list-presets"]) {
        return;
    }
    let ds = voice_words("gnuspeech", &["left", "stop"], 6);
    let mut speakers: Vec<&str> = ds.clips.iter().map(|c| c.speaker.as_str()).collect();
    speakers.sort();
    speakers.dedup();
    assert!(speakers.len() >= 4, "too few voices: {speakers:?}");
}

#[test]
fn espeak_ng_piped_into_detect_is_heard_to_its_end() {
    // espeak-ng writing to a pipe cannot know its size: its header says 0x7FFFF000.
    if !engine_runs("espeak-ng", &["--version"]) {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_spikeword");
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "espeak-ng --stdout 'yes' | '{bin}' detect --json --threshold 0.5 -"
        ))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}");
    assert!(out.contains(r#""word":"yes""#), "{out}");
    // All of it: espeak-ng's "yes" lasts about half a second.
    let secs: f32 = err
        .split(" s of audio")
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs > 0.3, "{err}");
}
