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
    let a = bench(&data, model, &["--thresholds", "0.3,0.6,0.95"]);
    assert_eq!(a, bench(&data, model, &["--thresholds", "0.3,0.6,0.95"]));
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
    // Another seed, other streams.
    let b = bench(&data, model, &["--thresholds", "0.3", "--seed", "2"]);
    assert_ne!(a["points"][0], b["points"][0]);
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
