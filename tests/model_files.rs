//! A model file is user input: files whose config was edited into nonsense
//! (tests/fixtures/edited_models, made by `scripts/make_fuzz_seeds.py`; also the seeds of
//! the model-file fuzz target) are refused on load with a
//! message naming what is wrong, by the library and by every command that reads a model.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use spikeword::Model;

fn seed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus/model_file")
        .join(name)
}

fn load(name: &str) -> Result<Model, String> {
    let bytes = std::fs::read(seed(name)).unwrap();
    Model::from_bytes(&bytes, name).map_err(|e| e.to_string())
}

#[test]
fn the_valid_seed_loads_and_runs() {
    let m = load("valid").unwrap();
    assert_eq!(m.n_labels(), 3);
    let mut mf = spikeword::features::MelFrame::new(&m.config.features);
    let out = m.classify(&mut mf, &vec![0.01; 16000]);
    assert_eq!(out.probs.len(), 3);
}

#[test]
fn edited_configs_are_refused_with_the_reason() {
    for (name, why) in [
        ("hop-above-window", "hop of 960 samples"),
        ("huge-hop", "hop of 1000000000"),
        ("huge-rate", "sample rate 1000000000"),
        ("huge-window", "window of 1000000000"),
        ("zero-kernel", "kernel of 0 frames"),
        ("zero-dilation", "dilation 0"),
        ("long-decision", "decision window of 500 frames"),
        ("duplicate-labels", "twice"),
        ("short-norm", "normalisation for 8 / 3 bands"),
        ("two-members", "missing tensor members.1."),
    ] {
        let e = load(name).expect_err(name);
        assert!(e.contains(why), "{name}: {e}");
        assert!(e.contains("inconsistent"), "{name}: {e}");
    }
}

#[test]
fn every_command_refuses_such_a_model_at_once() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let clip = root.join("assets/clips/yes_0.wav");
    for name in ["huge-rate", "huge-window", "hop-above-window"] {
        let m = seed(name);
        for args in [
            vec!["classify".as_ref(), clip.as_os_str()],
            vec!["detect".as_ref(), clip.as_os_str()],
            vec![
                "inspect".as_ref(),
                clip.as_os_str(),
                "--png".as_ref(),
                "/dev/null".as_ref(),
            ],
            vec!["info".as_ref()],
        ] {
            let t0 = Instant::now();
            let o = Command::new(env!("CARGO_BIN_EXE_spikeword"))
                .args(&args)
                .arg("--model")
                .arg(&m)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{name} {args:?}: {err}");
            assert!(err.starts_with("error: model"), "{name} {args:?}: {err}");
            assert!(!err.contains("panicked"), "{err}");
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{name} {args:?} took long"
            );
        }
    }
}

/// The bytes of `m` saved, with its metadata entry `key` replaced by `value`.
fn with_metadata(m: &Model, key: &str, value: &str) -> Vec<u8> {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("m.safetensors");
    m.save(&p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header["__metadata__"][key] = value.into();
    // Same data offsets: only the header changes (padded to 8 bytes as safetensors wants).
    let mut h = serde_json::to_vec(&header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

#[test]
fn the_stored_replay_survives_a_file_and_a_broken_one_is_refused() {
    use spikeword::replay::{Part, ReplayStore};
    let mut m = load("valid").unwrap();
    let x: Vec<f32> = (0..16000).map(|i| (i as f32 * 0.01).sin() * 0.2).collect();
    let store = ReplayStore::from_clips(8000, 16000, vec![("yes".into(), Part::Train, x)]).unwrap();
    m.replay = Some(std::sync::Arc::new(store));
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("m.safetensors");
    m.save(&p).unwrap();
    let back = Model::load(&p).unwrap();
    let r = back.replay.as_ref().unwrap();
    assert_eq!((r.rate, r.count(Part::Train), r.bytes()), (8000, 1, 8000));
    // An index that promises more samples than the tensor holds.
    let bad = with_metadata(
        &m,
        "replay",
        r#"{"rate":8000,"clips":[{"word":"yes","part":"train","len":9000}]}"#,
    );
    let e = Model::from_bytes(&bad, "bad").unwrap_err().to_string();
    assert!(e.contains("replay"), "{e}");
    let bad = with_metadata(&m, "replay", "not json");
    let e = Model::from_bytes(&bad, "bad").unwrap_err().to_string();
    assert!(e.contains("replay index"), "{e}");
}
