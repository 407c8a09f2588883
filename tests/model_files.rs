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

/// The header of a saved file and where its tensors' data begin.
fn header(bytes: &[u8]) -> (serde_json::Value, usize) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[8..8 + n]).unwrap(), 8 + n)
}

#[test]
fn a_quantized_model_is_stored_as_integers_and_reads_back() {
    let d = tempfile::tempdir().unwrap();
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gsc12.safetensors");
    let mut m = Model::load(&bundled).unwrap();
    m.quantize(8);
    let p = d.path().join("q8.safetensors");
    m.save(&p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    // 875,008 weights of one byte instead of four: the file shrinks by 2.6 MB.
    let float = std::fs::metadata(&bundled).unwrap().len() as usize;
    assert!(
        bytes.len() + 2_500_000 < float,
        "{} against {float}",
        bytes.len()
    );
    let (h, _) = header(&bytes);
    assert_eq!(h["layers.1.weight"]["dtype"], "I8");
    assert_eq!(h["members.9.readout.weight"]["dtype"], "I8");
    assert_eq!(h["layers.1.bias"]["dtype"], "F32");
    assert_eq!(h["__metadata__"]["format_version"], "3");
    let back = Model::load(&p).unwrap();
    assert_eq!(back.weight_bits(), Some(8));
    for (a, b) in back.net.members.iter().zip(&m.net.members) {
        for (la, lb) in a.layers.iter().zip(&b.layers) {
            for (x, y) in la.w.iter().zip(&lb.w) {
                assert!((x - y).abs() <= 1e-6 * y.abs().max(1e-3), "{x} {y}");
            }
        }
    }
    let clip = spikeword::load_wav(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/clips/left_0.wav"),
        16000,
    )
    .unwrap();
    let mut mf = spikeword::features::MelFrame::new(&m.config.features);
    let (x, y) = (m.classify(&mut mf, &clip), back.classify(&mut mf, &clip));
    for (a, b) in x.logits.iter().zip(&y.logits) {
        assert!((a - b).abs() < 1e-3, "{:?} {:?}", x.logits, y.logits);
    }
    // 12 bits: two bytes a weight.
    let mut m12 = load("valid").unwrap();
    m12.quantize(12);
    let p12 = d.path().join("q12.safetensors");
    m12.save(&p12).unwrap();
    let (h, _) = header(&std::fs::read(&p12).unwrap());
    assert_eq!(h["readout.weight"]["dtype"], "I16");
    assert_eq!(Model::load(&p12).unwrap().weight_bits(), Some(12));
}

#[test]
fn integer_weights_without_their_scales_or_with_negative_ones_are_refused() {
    let mut m = load("valid").unwrap();
    m.quantize(8);
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("q.safetensors");
    m.save(&p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let (h, start) = header(&bytes);
    // The scale's first value made negative, in place.
    let at = start
        + h["layers.0.weight_scale"]["data_offsets"][0]
            .as_u64()
            .unwrap() as usize;
    let mut bad = bytes.clone();
    bad[at..at + 4].copy_from_slice(&(-1.0f32).to_le_bytes());
    let e = Model::from_bytes(&bad, "bad").unwrap_err().to_string();
    assert!(e.contains("layers.0.weight_scale holds -1"), "{e}");
    bad[at..at + 4].copy_from_slice(&f32::MAX.to_le_bytes());
    let e = Model::from_bytes(&bad, "bad").unwrap_err().to_string();
    assert!(
        e.contains("layers.0.weight times its scales overflows"),
        "{e}"
    );
    // The scale renamed away: the integers alone mean nothing.
    let text = String::from_utf8_lossy(&bytes[8..start])
        .replace("layers.0.weight_scale", "layers.0.weight_scalX");
    let mut bad = bytes[..8].to_vec();
    bad.extend(text.as_bytes());
    bad.extend_from_slice(&bytes[start..]);
    let e = Model::from_bytes(&bad, "bad").unwrap_err().to_string();
    assert!(e.contains("missing tensor layers.0.weight_scale"), "{e}");
}
