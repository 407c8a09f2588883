//! `bench-detect` and `calibrate` on real held-out speakers: reproducible streams, a
//! sweep that trades hits for false alarms, calibrated thresholds that `detect` uses.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

fn run(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_spikeword"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "panic in {args:?}: {err}");
    o
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `command` on short streams of the validation speakers, sentences from one espeak voice.
fn on_streams<'a>(command: &'a str, data: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        command,
        "--data",
        data.to_str().unwrap(),
        "--split",
        "validation",
    ];
    args.extend(["--minutes", "1.5", "--engines", "espeak", "--voices", "1"]);
    args.extend_from_slice(extra);
    args
}

fn bench(data: &Path, model: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = on_streams("bench-detect", data, &["--model", model, "--json"]);
    args.extend_from_slice(extra);
    json(&run(&args))
}

#[test]
fn the_sweep_trades_hits_for_false_alarms_and_is_reproducible() {
    let Some(data) = common::speech_commands() else {
        return;
    };
    let model = "models/gsc12.safetensors";
    let args = [
        "--thresholds",
        "0.3,0.6,0.95",
        "--false-alarms-per-hour",
        "50",
    ];
    let a = bench(&data, model, &args);
    assert_eq!(a, bench(&data, model, &args));
    let summary = a["summary"].as_str().unwrap();
    if std::env::var("SPIKEWORD_REQUIRE_TTS").as_deref() == Ok("1") {
        assert!(!summary.contains("no espeak"), "{summary}");
        assert!(!summary.contains(" 0 synthetic"), "{summary}");
    }
    for k in ["keyword_minutes", "no_command_minutes"] {
        let m = a[k].as_f64().unwrap();
        assert!((1.4..1.7).contains(&m), "{k} {m}");
    }
    let p = a["points"].as_array().unwrap();
    assert_eq!(p.len(), 3);
    let hits = |i: usize| p[i]["hits"].as_u64().unwrap();
    let fa = |i: usize| p[i]["false_alarms"].as_u64().unwrap();
    assert!(hits(0) > hits(2), "{p:?}");
    assert!(
        fa(0) > fa(2),
        "a 0.3 threshold raises more alarms than 0.95: {p:?}"
    );
    assert!(p[0]["keywords"].as_u64().unwrap() >= 20);
    // The 50/h point's false alarms, each with what was said under it.
    let listed = a["false_alarms"]["events"].as_array().unwrap();
    let point = a["operating_points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["calibrated_for_per_hour"].as_f64() == Some(50.0))
        .expect("the bundled model has a 50/h point");
    assert_eq!(
        listed.len() as u64,
        point["measured"]["false_alarms"].as_u64().unwrap()
    );
    for e in listed {
        assert!(e["start"].as_f64().unwrap() >= 0.0, "{e}");
        assert!(e["said"].is_null() || e["said"].is_string(), "{e}");
    }
    // The same point's hits word by word add up to its measured hits.
    let per_word = a["hits_per_word"]["words"].as_array().unwrap();
    let sum = |k: &str| per_word.iter().map(|w| w[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("found"), point["measured"]["hits"].as_u64().unwrap());
    assert_eq!(sum("said"), point["measured"]["keywords"].as_u64().unwrap());
    // Another seed, other streams; two seeds, both streams end to end (`a` is seed 1,
    // its first point at 0.3 too).
    let b = bench(&data, model, &["--thresholds", "0.3", "--seed", "2"]);
    assert_ne!(a["points"][0], b["points"][0]);
    let ab = bench(&data, model, &["--thresholds", "0.3", "--seed", "1,2"]);
    let n = |v: &serde_json::Value, k: &str| v["points"][0][k].as_u64().unwrap();
    for k in ["keywords", "false_alarms"] {
        let pair = n(&a, k) + n(&b, k);
        assert!(
            n(&ab, k).abs_diff(pair) <= 1,
            "{k}: {} against {pair}",
            n(&ab, k)
        );
    }
    let minutes = ab["keyword_minutes"].as_f64().unwrap();
    assert!((2.8..3.4).contains(&minutes), "{minutes}");
}

#[test]
fn calibrated_thresholds_go_into_the_model_and_detect_uses_them() {
    let Some(data) = common::speech_commands() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let out: PathBuf = d.path().join("calibrated.safetensors");
    let o = run(&on_streams(
        "calibrate",
        &data,
        &["--rates", "1,1000", "--out", out.to_str().unwrap()],
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = spikeword::Model::load(&out).unwrap();
    let pts = &m.config.operating_points;
    assert_eq!(pts.len(), 2);
    assert_eq!(pts[0].thresholds.len(), 10);
    // The strict point is at least as strict for every word, and meets its rate.
    for (w, t) in &pts[0].thresholds {
        assert!(*t >= pts[1].thresholds[w], "{w}");
    }
    assert!(pts[0].measured_false_alarms_per_hour <= 1.0);
    assert!(pts[1].measured_hit_rate >= pts[0].measured_hit_rate);
    // Calibrated with the default sustain (0.35 s: 35 frames), which detect then uses.
    assert!(pts.iter().all(|p| p.sustain_frames == 35), "{pts:?}");
    // On the streams of three seeds (1.5 minutes each), joined.
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("(seeds 1, 2, 3)"), "{said}");
    // detect: the default point (5/h, i.e. the 1/h set) against the loose one.
    let events = |extra: &[&str]| {
        let mut args = vec![
            "detect",
            "assets/demo_words.wav",
            "--model",
            out.to_str().unwrap(),
            "--json",
        ];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).lines().count()
    };
    assert!(events(&[]) <= events(&["--false-alarms-per-hour", "1000"]));
    // Holding a word longer can only remove events.
    assert!(events(&["--sustain", "1"]) <= events(&["--sustain", "0"]));
    assert_eq!(events(&["--sustain", "5"]), 0);
    assert!(events(&["--threshold", "0.3"]) >= events(&[]));
    // An uncalibrated model has no operating points to pick from.
    let mut plain = m.clone();
    plain.config.operating_points.clear();
    let plain_path = d.path().join("plain.safetensors");
    plain.save(&plain_path).unwrap();
    let o = run(&[
        "detect",
        "assets/demo_words.wav",
        "--model",
        plain_path.to_str().unwrap(),
        "--false-alarms-per-hour",
        "5",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("calibrate"));
    let o = run(&[
        "detect",
        "assets/demo_words.wav",
        "--threshold",
        "0.5",
        "--false-alarms-per-hour",
        "5",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

/// The highest probability of a reportable word for `x` (its last frames decide).
fn top_word(model: &spikeword::Model, x: &[f32]) -> f32 {
    let mut mf = spikeword::features::MelFrame::new(&model.config.features);
    let p = model.classify(&mut mf, x).probs;
    let labels = model.labels();
    p.iter()
        .zip(labels)
        .filter(|(_, l)| !l.starts_with('_'))
        .fold(0f32, |m, (p, _)| m.max(*p))
}

#[test]
fn running_speech_negatives_are_cut_where_the_model_comes_close_to_firing() {
    use spikeword::train::negatives::{MiningOptions, mine};
    let Some(data) = common::speech_commands() else {
        return;
    };
    let model = spikeword::Model::load(Path::new("models/gsc12.safetensors")).unwrap();
    let rule = spikeword::eval::model_split_rule(&model).unwrap();
    let ds = spikeword::data::Dataset::scan(&data, &rule).unwrap();
    let opts = MiningOptions {
        minutes: 1.0,
        engines: vec!["espeak".into()],
        voices: 1,
        seed: 3,
        level: 0.2,
        random_per_minute: 8,
    };
    let (neg, rep) = mine(&model, &ds, &opts).unwrap();
    assert_eq!(neg.len(), rep.hard + rep.random, "{rep:?}");
    assert_eq!(rep.random, 8);
    assert!(rep.hard >= 3, "{rep:?}");
    assert!(rep.other_word_clips > 100, "{rep:?}");
    for n in &neg {
        assert_eq!(n.window.len(), 16000);
        assert!(n.context.len() <= 16000 && n.context.len() % 160 == 0);
    }
    // The windows are the ones the stream scored: heard after their second of context,
    // the model gives them about the score the stream gave (the state before that second
    // differs a little), and the hard ones score above the level.
    let in_context = |n: &spikeword::train::negatives::Negative| {
        let mut x = n.context.clone();
        x.extend_from_slice(&n.window);
        top_word(&model, &x)
    };
    let hard = &neg[..rep.hard];
    let gap: f32 = hard
        .iter()
        .map(|n| (in_context(n) - n.score).abs())
        .sum::<f32>()
        / hard.len() as f32;
    assert!(gap < 0.1, "mean |offline − stream| {gap}");
    assert!(hard.iter().all(|n| n.score >= 0.2));
    // Reproducible from the seed.
    let (again, _) = mine(&model, &ds, &opts).unwrap();
    assert!(neg.iter().zip(&again).all(|(a, b)| a.window == b.window));
}

#[test]
fn data_negatives_writes_training_clips() {
    let Some(data) = common::speech_commands() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let o = run(&[
        "data",
        "negatives",
        "--data",
        data.to_str().unwrap(),
        "--out",
        d.path().to_str().unwrap(),
        "--minutes",
        "0.5",
        "--random",
        "6",
        "--engines",
        "espeak",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let files: Vec<_> = std::fs::read_dir(d.path().join("running_speech"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(out.starts_with(&format!("{} clips", files.len())), "{out}");
    assert!(files.len() >= 3, "{out}");
    for f in &files {
        assert_eq!(spikeword::load_wav(f, 16000).unwrap().len(), 16000);
    }
    // A stream of no length is a usage error.
    let o = run(&[
        "data",
        "negatives",
        "--data",
        data.to_str().unwrap(),
        "--out",
        "x",
        "--minutes",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2));
}
