//! Training on a few real clips: the loss falls, an interrupted run resumes exactly,
//! and the speaker split never shares a speaker between sets.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use spikeword::config::{EncoderConfig, FeatureConfig, NetworkConfig};
use spikeword::train::augment::AugmentConfig;
use spikeword::train::{
    Dataset, DeviceKind, Split, SplitRule, Task, TrainOptions, train, train_for,
};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/speech_commands")
}

/// A small folder in the official layout: `n` clips of three words plus noise.
fn tiny_dataset(dir: &Path, n: usize) -> bool {
    if !shared().is_dir() {
        return false;
    }
    for w in ["yes", "no", "up", "_background_noise_"] {
        let src = shared().join(w);
        let dst = dir.join(w);
        std::fs::create_dir_all(&dst).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.iter().take(n) {
            std::fs::copy(f, dst.join(f.file_name().unwrap())).unwrap();
        }
    }
    true
}

fn options(data: &Path, run: &Path, epochs: usize) -> TrainOptions {
    TrainOptions {
        data: data.to_path_buf(),
        extra: vec![],
        run_dir: run.to_path_buf(),
        out: run.join("model.safetensors"),
        task: Task::Gsc35,
        split_rule: SplitRule::Salted,
        epochs,
        batch: 16,
        lr: 3e-3,
        seed: 7,
        device: DeviceKind::Cpu,
        per_class: 32,
        rate_target: 0.05,
        rate_weight: 1.0,
        features: FeatureConfig::default(),
        encoder: EncoderConfig::Current,
        network: NetworkConfig {
            channels: vec![32, 32],
            dilations: vec![1, 4],
            ..NetworkConfig::default()
        },
        augment: AugmentConfig {
            shift_s: 0.05,
            gain_db: 3.0,
            speed: 0.0,
            noise_prob: 0.3,
            snr_db: (10.0, 30.0),
            freq_mask: 0,
            time_mask: 0,
            context_s: 0.2,
        },
        init: None,
        dropout: 0.0,
        word_head: 0.0,
        word_head_exclude: vec![],
        leak_max: spikeword::train::net::BETA_MAX,
    }
}

fn losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("log.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_short_run_on_real_clips_reduces_the_loss() {
    let d = tempfile::tempdir().unwrap();
    if !tiny_dataset(d.path(), 40) {
        eprintln!("skipped: no shared data");
        return;
    }
    let run = d.path().join("run");
    let model = train(options(d.path(), &run, 5), false).unwrap();
    let l = losses(&run);
    assert_eq!(l.len(), 5);
    assert!(l[4] < l[0] * 0.9, "loss did not fall: {l:?}");
    assert_eq!(model.labels(), ["no", "up", "yes", "_silence_"]);
    assert!(run.join("model.safetensors").exists());
}

#[test]
fn leak_max_caps_every_membrane_leak() {
    let d = tempfile::tempdir().unwrap();
    if !tiny_dataset(d.path(), 20) {
        eprintln!("skipped: no shared data");
        return;
    }
    let run = d.path().join("run");
    let cap = 0.7;
    // The leaks start at 0.9 (`init_beta`), above the cap: the cap must bind.
    let opts = TrainOptions {
        leak_max: cap,
        ..options(d.path(), &run, 2)
    };
    let model = train(opts, false).unwrap();
    let betas: Vec<f32> = model
        .net
        .first()
        .layers
        .iter()
        .flat_map(|l| l.beta.iter().copied())
        .collect();
    let max = betas.iter().copied().fold(f32::MIN, f32::max);
    assert!(max <= cap, "a leak {max} above the cap {cap}");
    assert!(
        max > cap - 0.05,
        "no leak near the cap ({max}): it never bound"
    );
    let recorded = model.training["options"]["leak_max"].as_f64().unwrap();
    assert!((recorded - cap as f64).abs() < 1e-6, "recorded {recorded}");
}

#[test]
fn an_interrupted_run_resumes_exactly() {
    let d = tempfile::tempdir().unwrap();
    if !tiny_dataset(d.path(), 20) {
        eprintln!("skipped: no shared data");
        return;
    }
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    // With spike dropout and the word head: their masks and weights must resume too.
    let opts = |run: &Path| TrainOptions {
        dropout: 0.1,
        word_head: 0.5,
        ..options(d.path(), run, 3)
    };
    train(opts(&a), false).unwrap();
    // Interrupted after 2 epochs, then resumed to the end.
    train_for(opts(&b), false, Some(2)).unwrap();
    assert!(!b.join("model.safetensors").exists());
    train(opts(&b), true).unwrap();
    let wa = std::fs::read(a.join("checkpoint.safetensors")).unwrap();
    let wb = std::fs::read(b.join("checkpoint.safetensors")).unwrap();
    let ma = spikeword::Model::from_bytes(&wa, "a").unwrap();
    let mb = spikeword::Model::from_bytes(&wb, "b").unwrap();
    for (la, lb) in ma.net.first().layers.iter().zip(&mb.net.first().layers) {
        assert!(
            la.w == lb.w && la.beta == lb.beta && la.threshold == lb.threshold,
            "weights differ"
        );
    }
    assert!(
        ma.net.first().readout.w == mb.net.first().readout.w,
        "readout differs"
    );
    assert_eq!(losses(&a), losses(&b));
}

#[test]
fn no_speaker_is_in_two_splits() {
    if !shared().is_dir() {
        eprintln!("skipped: no shared data");
        return;
    }
    for rule in [SplitRule::Official, SplitRule::Salted] {
        let ds = Dataset::scan(&shared(), &rule).unwrap();
        let mut seen: HashMap<&str, Split> = HashMap::new();
        for c in &ds.clips {
            let s = *seen.entry(&c.speaker).or_insert(c.split);
            assert_eq!(
                s, c.split,
                "speaker {} in two splits under {rule:?}",
                c.speaker
            );
        }
        let splits: HashSet<Split> = ds.clips.iter().map(|c| c.split).collect();
        assert_eq!(splits.len(), 3, "{rule:?}");
    }
}
