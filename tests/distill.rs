//! Distillation from the keyword teacher and the speech embedding on a few real clips: the
//! run trains, logs its embedding loss, resumes exactly (the teachers label the same
//! augmented clips again), and it is refused where the teacher cannot label the task.
#![cfg(feature = "teacher")]

use std::path::Path;

use spikeword::config::NetworkConfig;
use spikeword::data::Task;
use spikeword::teacher::{KEYWORD_TEACHER, SPEECH_EMBEDDING};
use spikeword::train::augment::AugmentConfig;
use spikeword::train::distill::{DistillConfig, EmbedConfig};
use spikeword::train::{TrainOptions, train, train_for};

mod common;

const WORDS: [&str; 12] = [
    "yes",
    "no",
    "up",
    "down",
    "left",
    "right",
    "on",
    "off",
    "stop",
    "go",
    "marvin",
    "_background_noise_",
];

/// `n` clips of every command, one other word and the noise files (false without data).
fn twelve_class_folder(dir: &Path, n: usize) -> bool {
    common::copy_words(dir, &WORDS, n)
}

fn options(data: &Path, run: &Path, epochs: usize) -> TrainOptions {
    TrainOptions {
        task: Task::Gsc12,
        seed: 3,
        per_class: 8,
        network: NetworkConfig {
            channels: vec![16, 16],
            dilations: vec![1, 4],
            ..NetworkConfig::default()
        },
        augment: AugmentConfig {
            mixup: 0.5,
            vtlp: 0.1,
            ..AugmentConfig::default()
        },
        distill: Some(DistillConfig {
            teachers: vec![Path::new(env!("CARGO_MANIFEST_DIR")).join(KEYWORD_TEACHER)],
            weight: 0.7,
            temperature: 3.0,
        }),
        embed: Some(EmbedConfig {
            teacher: Path::new(env!("CARGO_MANIFEST_DIR")).join(SPEECH_EMBEDDING),
            weight: 1.0,
        }),
        ..common::small_training(data, run, epochs)
    }
}

fn log(run: &Path) -> String {
    std::fs::read_to_string(run.join("log.csv")).unwrap()
}

#[test]
fn a_distilled_run_resumes_exactly() {
    let d = tempfile::tempdir().unwrap();
    if !twelve_class_folder(d.path(), 25) {
        return;
    }
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let model = train(options(d.path(), &a, 3), false).unwrap();
    assert_eq!(model.labels().len(), 12);
    assert_eq!(
        model.training["options"]["distill"]["temperature"].as_f64(),
        Some(3.0)
    );
    train_for(options(d.path(), &b, 3), false, Some(2)).unwrap();
    train(options(d.path(), &b, 3), true).unwrap();
    let last = |run: &Path| {
        let p = run.join("checkpoints/epoch-0003/model.safetensors");
        spikeword::Model::from_bytes(&std::fs::read(&p).unwrap(), "checkpoint").unwrap()
    };
    let (ma, mb) = (last(&a), last(&b));
    for (la, lb) in ma.net.first().layers.iter().zip(&mb.net.first().layers) {
        assert!(la.w == lb.w && la.beta == lb.beta, "weights differ");
    }
    assert!(ma.net.first().readout.w == mb.net.first().readout.w);
    assert_eq!(log(&a).lines().count(), 4);
    // The embedding loss is logged every epoch (last column), and is a cosine distance.
    for l in log(&a).lines().skip(1) {
        let e: f64 = l.rsplit(',').next().unwrap().parse().unwrap();
        assert!((0.0..=2.0).contains(&e), "embedding loss {e}");
    }
    // Same losses; the timing columns differ.
    let cols = |s: String| -> Vec<String> {
        s.lines()
            .map(|l| l.split(',').take(7).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(cols(log(&a)), cols(log(&b)));
}

#[test]
fn the_teacher_only_labels_its_own_classes() {
    let d = tempfile::tempdir().unwrap();
    if !twelve_class_folder(d.path(), 3) {
        return;
    }
    let opts = TrainOptions {
        task: Task::Gsc35,
        ..options(d.path(), &d.path().join("run"), 1)
    };
    let err = train(opts, false).unwrap_err().to_string();
    assert!(err.contains("keyword teacher knows"), "{err}");
    let mut bad = options(d.path(), &d.path().join("run2"), 1);
    let junk = d.path().join("junk.tflite");
    std::fs::write(&junk, b"no model").unwrap();
    bad.distill.as_mut().unwrap().teachers = vec![junk];
    assert!(train(bad, false).is_err());
}
