//! The teachers, run by tract from `models/teachers/`, reproduce the outputs that
//! onnxruntime and the TensorFlow Lite runtime gave on the same Speech Commands clips
//! (`tests/fixtures/teacher_reference_outputs.json`).
#![cfg(feature = "teacher")]

use std::path::Path;

use spikeword::load_wav;
use spikeword::teacher::keyword::LABELS;
use spikeword::teacher::{KEYWORD_TEACHER, KeywordTeacher, SPEECH_EMBEDDING, SpeechEmbedding};

mod common;

fn reference() -> serde_json::Map<String, serde_json::Value> {
    let text = std::fs::read_to_string("tests/fixtures/teacher_reference_outputs.json").unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A clip of the reference file, from the Speech Commands data (`None` without it).
fn clip(name: &str) -> Option<Vec<f32>> {
    Some(load_wav(&common::speech_commands()?.join(name), 16000).unwrap())
}

#[test]
fn keyword_teacher_reproduces_the_tflite_runtime() {
    let t = KeywordTeacher::load(Path::new(KEYWORD_TEACHER)).unwrap();
    let refs = reference();
    assert_eq!(refs.len(), 3);
    for (name, r) in &refs {
        let Some(x) = clip(name) else {
            return;
        };
        let mfcc = t.mfcc(&x);
        for (got, want) in mfcc[..10].iter().zip(floats(&r["mlperf_mfcc_frame0"])) {
            // The reference is printed to 4-5 significant digits.
            assert!(
                (got - want).abs() <= 1e-3 * want.abs().max(1.0),
                "{name}: mfcc {got} vs {want}"
            );
        }
        let p = t.probabilities(&x).unwrap();
        for (i, label) in LABELS.iter().enumerate() {
            let want = r["mlperf_probs"][*label].as_f64().unwrap() as f32;
            assert!(
                (p[i] - want).abs() < 2e-3,
                "{name} {label}: {} vs {want}",
                p[i]
            );
        }
    }
}

#[test]
fn speech_embedding_reproduces_onnxruntime() {
    let e = SpeechEmbedding::load(Path::new(SPEECH_EMBEDDING)).unwrap();
    for (name, r) in &reference() {
        let Some(x) = clip(name) else {
            return;
        };
        let v = e.embed(&x).unwrap();
        let shape = floats(&r["speech_embedding_shape"]);
        assert_eq!(v.len(), shape[1] as usize, "{name}");
        for (got, want) in v[0][..8]
            .iter()
            .zip(floats(&r["speech_embedding_first8_of_window0"]))
        {
            assert!(
                (got - want).abs() <= 1e-3 * want.abs().max(1.0),
                "{name}: {got} vs {want}"
            );
        }
    }
    // Another length gets its own plan and the documented window count.
    let long = vec![0.01f32; 32_000];
    assert_eq!(e.embed(&long).unwrap().len(), 16);
    assert!(e.embed(&[0.0; 1000]).is_err());
}

#[test]
fn a_file_that_is_not_a_teacher_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("junk.tflite");
    std::fs::write(&p, b"not a flatbuffer at all").unwrap();
    assert!(KeywordTeacher::load(&p).is_err());
    let q = dir.path().join("junk.onnx");
    std::fs::write(&q, b"\x08\x07garbage").unwrap();
    assert!(SpeechEmbedding::load(&q).is_err());
    assert!(KeywordTeacher::load(&dir.path().join("missing.tflite")).is_err());
}
