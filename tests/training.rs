//! Training on a few real clips: the loss falls, an interrupted run resumes exactly,
//! the speaker split never shares a speaker between sets, and a spikeword model teaches.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use spikeword::audio::fit_length;
use spikeword::data::{Dataset, Split, SplitRule};
use spikeword::features::with_mel_frame;
use spikeword::train::distill::{DistillConfig, Distiller};
use spikeword::train::{TrainOptions, train, train_for};
use spikeword::{Model, load_wav};

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

/// A spikeword model file teaches in any build: the bundled model's posteriors in the
/// student's label order (renormalised over the labels the student has), several teachers'
/// mean, a refusal where the teacher lacks a label, and a run that learns from it.
#[test]
fn a_spikeword_model_teaches_in_the_students_label_order() {
    let d = tempfile::tempdir().unwrap();
    if !tiny_dataset(d.path(), 40) {
        return;
    }
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gsc12.safetensors");
    let teacher = Model::load(&bundled).unwrap();
    let member = d.path().join("member0.safetensors");
    teacher.member(0).unwrap().save(&member).unwrap();
    let rate = teacher.config.features.sample_rate;
    let labels: Vec<String> = ["no", "up", "yes", "_silence_"].map(String::from).to_vec();
    let cfg = |teachers: Vec<&Path>| DistillConfig {
        teachers: teachers.into_iter().map(Path::to_path_buf).collect(),
        weight: 1.0,
        temperature: 1.0,
    };
    let targets = |teachers: Vec<&Path>, clip: &[f32]| {
        let dist = Distiller::load(&cfg(teachers), &labels, rate).unwrap();
        dist.targets(clip).unwrap()
    };
    let mut yes: Vec<_> = std::fs::read_dir(d.path().join("yes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    yes.sort();
    let clip = fit_length(&load_wav(&yes[0], rate).unwrap(), rate as usize);
    let p = with_mel_frame(&teacher.config.features, |mf| teacher.classify(mf, &clip)).probs;
    let at = |l: &String| p[teacher.labels().iter().position(|m| m == l).unwrap()];
    let kept: f32 = labels.iter().map(at).sum();
    let q = targets(vec![&bundled], &clip);
    for (l, qi) in labels.iter().zip(&q) {
        assert!(
            (qi - at(l) / kept).abs() < 1e-5,
            "{l}: {qi} against {}",
            at(l) / kept
        );
    }
    assert!(q[2] > 0.5, "the bundled model hears 'yes': {q:?}");
    let one = targets(vec![&member], &clip);
    let both = targets(vec![&bundled, &member], &clip);
    for ((b, a), m) in both.iter().zip(&q).zip(&one) {
        assert!((b - (a + m) / 2.0).abs() < 1e-5, "{both:?} is not the mean");
    }
    let marvin = ["yes".to_string(), "marvin".to_string()];
    let err = Distiller::load(&cfg(vec![&bundled]), &marvin, rate)
        .err()
        .unwrap();
    assert!(err.to_string().contains("not \"marvin\""), "{err}");
    let run = d.path().join("run");
    let opts = TrainOptions {
        distill: Some(cfg(vec![&bundled])),
        ..options(d.path(), &run, 4)
    };
    let model = train(opts, false).unwrap();
    let recorded = &model.training["options"]["distill"]["teachers"][0];
    assert_eq!(recorded.as_str(), bundled.to_str());
    let l = losses(&run);
    assert!(l[3] < l[0], "loss did not fall: {l:?}");
}
