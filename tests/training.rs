//! Training on a few real clips: the loss falls, an interrupted run resumes exactly,
//! and the speaker split never shares a speaker between sets.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use spikeword::data::{Dataset, Split, SplitRule};
use spikeword::train::{TrainOptions, train, train_for};

mod common;

/// A small folder in the official layout: `n` clips of three words plus noise (false
/// without the data).
fn tiny_dataset(dir: &Path, n: usize) -> bool {
    common::copy_words(dir, &["yes", "no", "up", "_background_noise_"], n)
}

fn options(data: &Path, run: &Path, epochs: usize) -> TrainOptions {
    common::small_training(data, run, epochs)
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
    let last = |run: &Path| run.join("checkpoints/epoch-0003/model.safetensors");
    let wa = std::fs::read(last(&a)).unwrap();
    let wb = std::fs::read(last(&b)).unwrap();
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
    let Some(shared) = common::speech_commands() else {
        return;
    };
    for rule in [SplitRule::Official, SplitRule::Salted] {
        let ds = Dataset::scan(&shared, &rule).unwrap();
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

/// `spikeword train` on the tiny folder into `run` (a small network, six epochs).
fn train_command(data: &Path, run: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_spikeword"));
    cmd.args(["train", "--task", "gsc35", "--split-rule", "salted"])
        .args([
            "--epochs",
            "6",
            "--batch",
            "16",
            "--per-class",
            "48",
            "--seed",
            "7",
        ])
        .args(["--channels", "16,16", "--dilations", "1,4"])
        .arg("--data")
        .arg(data)
        .arg("--run-dir")
        .arg(run)
        .arg("--out")
        .arg(run.join("model.safetensors"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// The columns of log.csv that do not depend on the clock.
fn log_without_times(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("log.csv"))
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(7).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn a_run_killed_at_random_moments_resumes_from_its_last_complete_epoch() {
    let d = tempfile::tempdir().unwrap();
    if !tiny_dataset(d.path(), 20) {
        return;
    }
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let t0 = std::time::Instant::now();
    assert!(train_command(d.path(), &a).status().unwrap().success());
    let whole = t0.elapsed();
    eprintln!("an uninterrupted run: {whole:?}");
    // SIGKILL at random moments of the run (start-up, mid-epoch, mid-checkpoint), each
    // time resuming what the last attempt left; then one attempt runs to the end. Each
    // attempt lives at most 0.3 of an uninterrupted run, and does less than that share of
    // the work (it starts up again), so the first three are killed unless the machine gets
    // far faster than it was while `whole` was measured.
    let mut rng = spikeword::util::Rng::new(11);
    let mut kills = 0;
    for attempt in 0.. {
        let mut child = train_command(d.path(), &b).arg("--resume").spawn().unwrap();
        let deadline = std::time::Instant::now() + whole.mul_f32(rng.range(0.05, 0.3));
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if attempt < 6 && std::time::Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        match finished {
            Some(status) => {
                assert!(status.success(), "attempt {attempt} failed");
                break;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    assert!(kills >= 3, "only {kills} attempts were killed");
    let ma = spikeword::Model::load(&a.join("model.safetensors")).unwrap();
    let mb = spikeword::Model::load(&b.join("model.safetensors")).unwrap();
    for (la, lb) in ma.net.first().layers.iter().zip(&mb.net.first().layers) {
        assert!(la.w == lb.w && la.beta == lb.beta && la.threshold == lb.threshold);
    }
    assert!(ma.net.first().readout.w == mb.net.first().readout.w);
    assert_eq!(ma.training["best_epoch"], mb.training["best_epoch"]);
    assert_eq!(log_without_times(&a), log_without_times(&b));
    // One checkpoint directory is left, and no partial one.
    let left: Vec<String> = std::fs::read_dir(b.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left, ["epoch-0006"], "{left:?}");
}
