//! Where the tests find real data, and what they do without it: a test that needs data
//! it cannot find is skipped (with a line saying so), unless `SPIKEWORD_REQUIRE_DATA=1`
//! (set by CI), which turns every such skip into a failure.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use spikeword::batch::DeviceKind;
use spikeword::config::{EncoderConfig, FeatureConfig, NetworkConfig};
use spikeword::data::{SplitRule, Task};
use spikeword::train::TrainOptions;
use spikeword::train::augment::AugmentConfig;

/// The Speech Commands folder: `$SPIKEWORD_DATA`, else a partial copy next to the checkout.
pub fn speech_commands() -> Option<PathBuf> {
    find(
        "SPIKEWORD_DATA",
        "../shared/data/speech_commands",
        "Speech Commands",
    )
}

/// The Free Spoken Digit Dataset: `$SPIKEWORD_FSDD`, else next to the checkout.
pub fn fsdd() -> Option<PathBuf> {
    find("SPIKEWORD_FSDD", "../shared/data/fsdd", "FSDD")
}

fn find(var: &str, beside: &str, what: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(beside));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("SPIKEWORD_REQUIRE_DATA").as_deref() == Ok("1") {
        panic!(
            "{what} data not found at {} (set {var}); SPIKEWORD_REQUIRE_DATA=1 forbids skipping",
            dir.display()
        );
    }
    eprintln!("skipped: no {what} data at {} (set {var})", dir.display());
    None
}

/// A small folder in the official layout under `dir`: the first `n` clips (by name) of each
/// of `words` from the Speech Commands data (false without the data).
pub fn copy_words(dir: &Path, words: &[&str], n: usize) -> bool {
    let Some(shared) = speech_commands() else {
        return false;
    };
    for w in words {
        let dst = dir.join(w);
        std::fs::create_dir_all(&dst).unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(shared.join(w))
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

/// A small, quick training run (two 32-channel layers, 32 examples per class and epoch,
/// light augmentation) of `data` into `run`.
pub fn small_training(data: &Path, run: &Path, epochs: usize) -> TrainOptions {
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
            mixup: 0.0,
            vtlp: 0.0,
        },
        init: None,
        init_member: None,
        dropout: 0.0,
        word_head: 0.0,
        word_head_exclude: vec![],
        leak_max: spikeword::batch::net::BETA_MAX,
        ops: None,
        distill: None,
        embed: None,
    }
}
