//! Ensembles: members vote by their mean class scores, files round-trip, mismatched
//! members and misuse are refused with clear errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use spikeword::Model;
use spikeword::detect::{DetectorConfig, Engine};
use spikeword::features::MelFrame;

mod common;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> Model {
    Model::load(&root().join("models/gsc12.safetensors")).unwrap()
}

fn clip(word: &str) -> Vec<f32> {
    spikeword::load_wav(&root().join(format!("assets/clips/{word}_0.wav")), 16000).unwrap()
}

fn version(p: &Path) -> String {
    let bytes = std::fs::read(p).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    meta.metadata().as_ref().unwrap()["format_version"].clone()
}

/// Two different one-network models: the shipped model's members, or (if it has one
/// network) it and a copy with a changed readout.
fn two_members() -> (Model, Model) {
    let m = shipped();
    let a = m.member(0).unwrap();
    let b = match m.member(1) {
        Some(b) => b,
        None => {
            let mut b = a.clone();
            b.net.members[0]
                .readout
                .bias
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v += 0.05 * i as f32);
            b
        }
    };
    (a, b)
}

/// Paths of `a` and `b` saved in `d`, and of an ensemble file to write there.
fn saved(d: &tempfile::TempDir, a: &Model, b: &Model) -> [PathBuf; 3] {
    let p = ["a", "b", "e"].map(|n| d.path().join(format!("{n}.safetensors")));
    a.save(&p[0]).unwrap();
    b.save(&p[1]).unwrap();
    p
}

#[test]
fn an_ensemble_decides_by_the_mean_of_its_members_and_survives_a_file() {
    let (a, b) = two_members();
    let e = Model::ensemble(vec![a.clone(), b.clone()]).unwrap();
    assert_eq!(e.net.len(), 2);
    let d = tempfile::tempdir().unwrap();
    let (pa, pe) = (
        d.path().join("a.safetensors"),
        d.path().join("e.safetensors"),
    );
    a.save(&pa).unwrap();
    e.save(&pe).unwrap();
    // One network keeps the old layout (older builds read it); an ensemble is version 2.
    assert_eq!(version(&pa), "1");
    assert_eq!(version(&pe), "2");
    let e2 = Model::load(&pe).unwrap();
    let mut mf = MelFrame::new(&a.config.features);
    for w in ["yes", "left", "stop"] {
        let x = clip(w);
        let (la, lb) = (
            a.classify(&mut mf, &x).logits,
            b.classify(&mut mf, &x).logits,
        );
        let out = e2.classify(&mut mf, &x);
        for ((m, x), y) in out.logits.iter().zip(&la).zip(&lb) {
            assert!((m - (x + y) / 2.0).abs() < 1e-4, "{w}: {m} vs {x} {y}");
        }
        assert_eq!(out.logits, e.classify(&mut mf, &x).logits);
        // Spikes of both members are counted.
        let sa: u64 = a.classify(&mut mf, &x).spike_counts.iter().sum();
        let sb: u64 = b.classify(&mut mf, &x).spike_counts.iter().sum();
        assert_eq!(out.spike_counts.iter().sum::<u64>(), sa + sb);
    }
    assert_eq!(
        e2.member(1).unwrap().net.first().readout.w,
        b.net.first().readout.w
    );
}

#[test]
fn members_that_do_not_fit_together_are_refused() {
    let (a, b) = two_members();
    let mut other = b.clone();
    other.config.labels.swap(0, 1);
    let err = Model::ensemble(vec![a.clone(), other])
        .unwrap_err()
        .to_string();
    assert!(err.contains("label list"), "{err}");
    // Spike encoders threshold the normalised input: another normalisation cannot be
    // folded into the weights.
    let delta = spikeword::EncoderConfig::Delta { threshold: 0.5 };
    let (mut a, mut other) = (a, b);
    a.config.encoder = delta.clone();
    other.config.encoder = delta;
    other.config.norm_mean[3] += 0.5;
    let err = Model::ensemble(vec![a, other]).unwrap_err().to_string();
    assert!(err.contains("normalisation"), "{err}");
}

#[test]
fn members_with_other_decision_windows_join_under_the_first_ones() {
    let (a, b) = two_members();
    let mut late = b.clone();
    late.set_decision_frames(30).unwrap();
    let e = Model::ensemble(vec![a.clone(), late.clone()]).unwrap();
    let w = a.config.network.decision_frames;
    assert!(e.net.members.iter().all(|n| n.config.decision_frames == w));
    // The second member now decides as `b` with the first member's window did.
    let mut mf = MelFrame::new(&a.config.features);
    let x = spikeword::audio::fit_length(&clip("left"), 16000);
    let lb = b.classify(&mut mf, &x).logits;
    let alone = e.member(1).unwrap().classify(&mut mf, &x).logits;
    assert_eq!(alone, lb);
    assert_ne!(
        late.classify(&mut mf, &x).logits,
        lb,
        "the window must matter"
    );
    // The votes are averaged as logits: one readout scale for all.
    let mut other = b;
    other.config.network.logit_scale *= 2.0;
    let err = Model::ensemble(vec![a, other]).unwrap_err().to_string();
    assert!(err.contains("logit scale"), "{err}");
}

/// A network of another shape (a wider last layer, another kernel) with the shipped
/// model's front end and labels.
fn wider(a: &Model) -> Model {
    let mut cfg = a.config.network.clone();
    cfg.channels = vec![48, 64, 96];
    cfg.kernel = 3;
    let c_in = a.config.encoder.out_channels(a.config.features.n_mels);
    let mut net = spikeword::snn::random_network(&cfg, c_in, a.n_labels(), 5);
    // Firing thresholds low enough that the random network's spikes reach its readout.
    for l in &mut net.layers {
        l.threshold.iter_mut().for_each(|t| *t = 0.05);
    }
    let mut m = a.clone();
    m.config.network = cfg;
    m.net = spikeword::Ensemble::single(net);
    m
}

#[test]
fn members_of_different_shapes_vote_together_and_survive_a_file() {
    let (a, _) = two_members();
    let w = wider(&a);
    let e = Model::ensemble(vec![a.clone(), w.clone()]).unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("e.safetensors");
    e.save(&p).unwrap();
    let e2 = Model::load(&p).unwrap();
    assert_eq!(e2.net.members[1].config.channels, vec![48, 64, 96]);
    assert_eq!(e2.net.members[1].layers[2].c_out, 96);
    assert_eq!(e2.member(1).unwrap().config.network.kernel, 3);
    let mut mf = MelFrame::new(&a.config.features);
    let x = clip("right");
    let (la, lw) = (
        a.classify(&mut mf, &x).logits,
        w.classify(&mut mf, &x).logits,
    );
    assert_ne!(la, lw);
    let out = e2.classify(&mut mf, &x).logits;
    for ((m, x), y) in out.iter().zip(&la).zip(&lw) {
        assert!((m - (x + y) / 2.0).abs() < 1e-4, "{m} vs {x} {y}");
    }
    // A member's saved shape that contradicts its tensors is refused, not misread.
    let mut bytes = std::fs::read(&p).unwrap();
    let at = bytes.windows(10).position(|w| w == b"[48,64,96]").unwrap();
    bytes[at + 4] = b'5'; // [48,54,96]: the same length, so the header stays valid
    let err = Model::from_bytes(&bytes, "e").unwrap_err().to_string();
    assert!(err.contains("members.1.layers.1"), "{err}");
}

#[test]
fn the_ensemble_command_writes_a_file_the_other_commands_use() {
    let (a, b) = two_members();
    let d = tempfile::tempdir().unwrap();
    let [pa, pb, pe] = saved(&d, &a, &b);
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_spikeword"))
            .args(args)
            .env_remove("SPIKEWORD_DATA")
            .current_dir(root())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string(),
            err,
        )
    };
    let s = |p: &PathBuf| p.display().to_string();
    let (code, _, err) = run(&["ensemble", &s(&pa), &s(&pb), "--out", &s(&pe)]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = run(&["info", "--model", &s(&pe)]);
    assert_eq!(code, Some(0));
    assert!(out.contains("ensemble:   2 networks"), "{out}");
    let (code, _, err) = run(&[
        "ensemble",
        &s(&pa),
        &s(&pb),
        "--out",
        &s(&d.path().join("long.safetensors")),
        "--decision-frames",
        "200",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("longer than a 1 s clip"), "{err}");
    let yes = s(&root().join("assets/clips/yes_0.wav"));
    let (code, out, err) = run(&["classify", "--model", &s(&pe), "--json", &yes]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"label\":\"yes\""), "{out}");
    // Writing over a member, or training from an ensemble, is refused.
    let (code, _, err) = run(&["ensemble", &s(&pa), &s(&pb), "--out", &s(&pa)]);
    assert_eq!(code, Some(1));
    assert!(err.contains("one of the members"), "{err}");
    let (code, _, err) = run(&["ensemble", &format!("{}@1", s(&pe)), "--out", &s(&pe)]);
    assert_eq!(code, Some(1));
    assert!(err.contains("one of the members"), "{err}");
    // Networks of an ensemble file are members; one it does not have is refused.
    let two = s(&d.path().join("two.safetensors"));
    let one_of = |n: &str| format!("{}@{n}", s(&pe));
    let (code, _, err) = run(&["ensemble", &one_of("1"), &s(&pa), "--out", &two]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&["ensemble", &one_of("2"), &s(&pa), "--out", &two]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("member 1") && err.contains("networks 0 to 1"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "train",
        "--data",
        &s(&d.path().to_path_buf()),
        "--init",
        &s(&pe),
        "--split-rule",
        "salted",
        "--epochs",
        "1",
        "--run-dir",
        &s(&d.path().join("run")),
        "--out",
        &s(&d.path().join("t.safetensors")),
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("ensemble of 2 networks"), "{err}");
}

#[test]
fn the_decision_window_is_the_clip_decision_and_the_detectors_window() {
    let mut m = shipped();
    assert!(m.set_decision_frames(99).is_err(), "longer than a 1 s clip");
    m.set_decision_frames(60).unwrap();
    assert_eq!(m.decision_window(), 60);
    let mut mf = MelFrame::new(&m.config.features);
    for word in ["yes", "no", "left", "stop"] {
        let x = spikeword::audio::fit_length(&clip(word), 16000);
        let offline = m.classify(&mut mf, &x).probs;
        // From rest, the detector's mean over its window of the last frames is the
        // offline decision over the same frames.
        let mut e = Engine::new(&m, DetectorConfig::default());
        e.push(&x, |_| {});
        for (a, b) in e.smoothed().iter().zip(&offline) {
            assert!((a - b).abs() < 1e-4, "{word}: {a} vs {b}");
        }
    }
    // A different window changes the decision, so the window above was the one used.
    let mut all = shipped();
    all.set_decision_frames(0).unwrap();
    let x = spikeword::audio::fit_length(&clip("no"), 16000);
    let (p60, p98) = (
        m.classify(&mut mf, &x).probs,
        all.classify(&mut mf, &x).probs,
    );
    assert!(p60.iter().zip(&p98).any(|(a, b)| (a - b).abs() > 1e-3));
}

#[test]
fn a_joint_readout_is_fitted_on_the_training_speakers_and_recorded() {
    let Some(data) = common::speech_commands() else {
        return;
    };
    let (a, b) = two_members();
    let d = tempfile::tempdir().unwrap();
    let [pa, pb, pe] = saved(&d, &a, &b);
    let o = Command::new(env!("CARGO_BIN_EXE_spikeword"))
        .args([
            "ensemble",
            pa.to_str().unwrap(),
            pb.to_str().unwrap(),
            "--out",
        ])
        .arg(&pe)
        .args([
            "--joint-readout",
            "--joint-epochs",
            "2",
            "--joint-shifted",
            "1",
        ])
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("joint readout ("), "{err}");
    let e = Model::load(&pe).unwrap();
    let rep = &e.training["joint_readout"];
    let (before, after) = (
        rep["validation_before"].as_f64().unwrap(),
        rep["validation_after"].as_f64().unwrap(),
    );
    assert!(rep["samples"].as_u64().unwrap() > 1000, "{rep}");
    // Each clip alone, in three contexts, and one window moved off it.
    assert_eq!(rep["shifted"].as_u64(), Some(1), "{rep}");
    assert_eq!(rep["samples"].as_u64().unwrap() % 5, 0, "{rep}");
    // Kept only when not worse; then the readouts are new, otherwise the members' own.
    let same = e.net.members[0].readout.w == a.net.members[0].readout.w;
    assert_eq!(rep["kept"].as_bool().unwrap(), after >= before, "{rep}");
    assert_eq!(same, !rep["kept"].as_bool().unwrap(), "{rep}");
    // The spiking layers are untouched.
    assert_eq!(e.net.members[1].layers[2].w, b.net.members[0].layers[2].w);
}

#[test]
fn the_joint_readout_learns_running_speech_as_unknown() {
    let Some(data) = common::speech_commands() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let pe = d.path().join("e.safetensors");
    let ensemble = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_spikeword"))
            .arg("ensemble")
            .arg(root().join("models/gsc12.safetensors"))
            .arg("--out")
            .arg(&pe)
            .arg("--data")
            .arg(&data)
            .args(["--negatives-minutes", "1", "--negatives-random", "300"])
            .args(["--engines", "espeak"])
            .args(extra)
            .output()
            .unwrap()
    };
    // Without the joint fit there is nothing to learn them with.
    let o = ensemble(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--joint-readout"));
    // Two rounds of mining: the second on new talk, with what the first fit still fires on.
    let o = ensemble(&[
        "--joint-readout",
        "--joint-epochs",
        "2",
        "--joint-tolerance",
        "100",
        "--negatives-rounds",
        "2",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("running speech rejected").count(), 2, "{err}");
    let e = Model::load(&pe).unwrap();
    let rep = &e.training["joint_readout"];
    let n = rep["negatives"].as_u64().unwrap();
    let rounds = e.training["negatives"].as_array().unwrap();
    assert_eq!(rounds.len(), 2);
    let hard: u64 = rounds.iter().map(|r| r["hard"].as_u64().unwrap()).sum();
    assert_eq!(n, hard + 2 * 300, "{rep}");
    assert_eq!(rep["kept"].as_bool(), Some(true), "{rep}");
    // Learnt as `_unknown_`, more of them are called so than before the fit.
    let (before, after) = (
        rep["negatives_rejected_before"].as_f64().unwrap(),
        rep["negatives_rejected_after"].as_f64().unwrap(),
    );
    assert!(after > before, "{rep}");
}

#[test]
fn networks_of_an_ensemble_file_are_chosen_by_number_or_range() {
    let (a, b) = two_members();
    let d = tempfile::tempdir().unwrap();
    let [_, _, pe] = saved(&d, &a, &b);
    Model::ensemble(vec![a.clone(), b.clone(), a.clone()])
        .unwrap()
        .save(&pe)
        .unwrap();
    let spec = |s: &str| format!("{}@{s}", pe.display());
    let one = Model::load_spec(&spec("1")).unwrap();
    assert_eq!(one.net.len(), 1);
    assert_eq!(one.net.first().readout.w, b.net.first().readout.w);
    let two = Model::load_spec(&spec("0-1")).unwrap();
    assert_eq!(
        two.config.network.decision_frames,
        a.config.network.decision_frames
    );
    let mut mf = MelFrame::new(&a.config.features);
    let x = clip("left");
    let both = Model::ensemble(vec![a.clone(), b.clone()]).unwrap();
    assert_eq!(
        two.classify(&mut mf, &x).logits,
        both.classify(&mut mf, &x).logits
    );
    for (s, says) in [
        ("3", "networks 0 to 2"),
        ("1-5", "networks 0 to 2"),
        ("2-1", "not a network number"),
        ("x", "not a network number"),
    ] {
        let err = Model::load_spec(&spec(s)).unwrap_err().to_string();
        assert!(err.contains(says), "{s}: {err}");
    }
    // A file whose name holds an @ is read as it is.
    let odd = d.path().join("odd@2.safetensors");
    a.save(&odd).unwrap();
    assert_eq!(
        Model::load_spec(odd.to_str().unwrap()).unwrap().net.len(),
        1
    );
}
