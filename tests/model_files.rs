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
