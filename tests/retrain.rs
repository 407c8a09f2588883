//! `record` and `retrain` on real recordings, and every bad input they must refuse.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the program with the Speech Commands folder (when there is one) as the replay.
fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spikeword"));
    match common::speech_commands() {
        Some(dir) => cmd.env("SPIKEWORD_DATA", dir),
        None => cmd.env_remove("SPIKEWORD_DATA"),
    };
    let o = cmd.args(args).current_dir(root()).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("panicked"),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn copy_word(src: &Path, dst: &Path, word: &str, n: usize) {
    std::fs::create_dir_all(dst.join(word)).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(src.join(word))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files.iter().take(n) {
        std::fs::copy(f, dst.join(word).join(f.file_name().unwrap())).unwrap();
    }
}

/// Four recordings of each FSDD digit by speaker "jackson" (`<digit>_jackson_0..3.wav`), one
/// folder per word under `dir/jackson4` (`None` without the FSDD data).
fn jackson4(dir: &Path) -> Option<PathBuf> {
    let fsdd = common::fsdd()?;
    let out = dir.join("jackson4");
    let digits = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    for (d, word) in digits.iter().enumerate() {
        std::fs::create_dir_all(out.join(word)).unwrap();
        for k in 0..4 {
            let name = format!("{d}_jackson_{k}.wav");
            std::fs::copy(fsdd.join(word).join(&name), out.join(word).join(&name)).unwrap();
        }
    }
    Some(out)
}

/// Teaches the ten digits of `data` (see `jackson4`); returns the JSON report.
fn retrain_digits(data: &Path, out: &Path, copies: usize) -> serde_json::Value {
    let copies = copies.to_string();
    let o = run(&[
        "retrain",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--copies",
        &copies,
        "--json",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn digits_from_four_recordings_each_become_new_words() {
    let d = tempfile::tempdir().unwrap();
    let Some(fsdd4) = jackson4(d.path()) else {
        return;
    };
    let out = d.path().join("digits.safetensors");
    let rep = retrain_digits(&fsdd4, &out, 10);
    assert_eq!(rep["new_words"].as_array().unwrap().len(), 10);
    assert_eq!(rep["labels"].as_array().unwrap().len(), 22);
    assert!(out.exists() && out.with_extension("md").exists());
    // One of each word's four held out for the measurement, all forty in the model.
    assert_eq!(rep["validation_n"], 10);
    assert_eq!(rep["fitted_examples"], 40);
    // The new model classifies with no other change; a held-out recording of the same
    // speaker (index 40, not among the four) should mostly come out right.
    if let Some(fsdd) = common::fsdd() {
        let files: Vec<String> = ["zero", "three", "seven", "nine"]
            .iter()
            .enumerate()
            .map(|(i, w)| {
                fsdd.join(w)
                    .join(format!("{}_jackson_40.wav", [0, 3, 7, 9][i]))
                    .display()
                    .to_string()
            })
            .collect();
        let mut args = vec!["classify", "--json", "--model", out.to_str().unwrap()];
        args.extend(files.iter().map(String::as_str));
        let o = run(&args);
        assert!(o.status.success(), "{}", err(&o));
        let right = String::from_utf8_lossy(&o.stdout)
            .lines()
            .zip(["zero", "three", "seven", "nine"])
            .filter(|(l, w)| serde_json::from_str::<serde_json::Value>(l).unwrap()["label"] == *w)
            .count();
        assert!(right >= 2, "{right}/4 held-out recordings right");
    }
}

#[test]
fn bad_example_folders_get_clear_messages() {
    let d = tempfile::tempdir().unwrap();
    let Some(fsdd4) = jackson4(d.path()) else {
        return;
    };
    let out = d.path().join("m.safetensors");
    let o_ = out.to_str().unwrap();
    // Empty folder.
    let empty = d.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = run(&["retrain", "--data", empty.to_str().unwrap(), "--out", o_]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("no examples"), "{}", err(&o));
    // A word that is already a label.
    let clash = d.path().join("clash");
    copy_word(&fsdd4, &clash, "one", 2);
    std::fs::rename(clash.join("one"), clash.join("yes")).unwrap();
    let o = run(&["retrain", "--data", clash.to_str().unwrap(), "--out", o_]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("already a label"), "{}", err(&o));
    assert!(!out.exists());
    // One example, an unreadable file and a silent clip: warnings, and a model anyway.
    let mixed = d.path().join("mixed");
    copy_word(&fsdd4, &mixed, "two", 1);
    copy_word(&fsdd4, &mixed, "six", 3);
    std::fs::write(mixed.join("six/broken.wav"), b"RIFF....WAVE").unwrap();
    spikeword::audio::wav::write_pcm16(&mixed.join("six/quiet.wav"), &vec![0.0; 16000], 16000)
        .unwrap();
    let o = run(&[
        "retrain",
        "--data",
        mixed.to_str().unwrap(),
        "--out",
        o_,
        "--copies",
        "4",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let e = err(&o);
    assert!(e.contains("single example"), "{e}");
    assert!(e.contains("broken.wav"), "{e}");
    assert!(e.contains("silent"), "{e}");
    assert!(out.exists());
}

/// `retrain` of the examples in `data` from the model `base` into `out`.
fn retrain_from(data: &Path, base: &Path, out: &Path) -> Output {
    let (base, out) = (base.to_str().unwrap(), out.to_str().unwrap());
    run(&[
        "retrain",
        "--data",
        data.to_str().unwrap(),
        "--model",
        base,
        "--out",
        out,
    ])
}

#[test]
fn the_base_model_is_never_overwritten() {
    let d = tempfile::tempdir().unwrap();
    let Some(fsdd4) = jackson4(d.path()) else {
        return;
    };
    let base = d.path().join("base.safetensors");
    std::fs::copy(root().join("models/gsc12.safetensors"), &base).unwrap();
    let before = std::fs::read(&base).unwrap();
    let o = retrain_from(&fsdd4, &base, &base);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("is the base model"), "{}", err(&o));
    assert_eq!(std::fs::read(&base).unwrap(), before);
    // A base model of another format version.
    std::fs::write(&base, b"garbage").unwrap();
    let o = retrain_from(&fsdd4, &base, &d.path().join("n.safetensors"));
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("not a spikeword model"));
    // No temporary files left behind by atomic writes.
    let leftovers: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp")
        })
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn record_cuts_utterances_out_of_a_long_recording() {
    let d = tempfile::tempdir().unwrap();
    // Quiet noise with two real words in it.
    let mut x: Vec<f32> = vec![0.0; 16000];
    let mut r = spikeword::util::Rng::new(3);
    x.iter_mut().for_each(|v| *v = r.normal() * 0.002);
    let mut long = x.clone();
    for w in ["yes", "stop"] {
        let c =
            spikeword::load_wav(&root().join(format!("assets/clips/{w}_0.wav")), 16000).unwrap();
        long.extend(c);
        long.extend(x.iter());
    }
    let wav = d.path().join("long.wav");
    spikeword::audio::wav::write_pcm16(&wav, &long, 16000).unwrap();
    let dir = d.path().join("ex");
    let o = run(&[
        "record",
        "hello",
        "--input",
        wav.to_str().unwrap(),
        "--dir",
        dir.to_str().unwrap(),
        "--count",
        "5",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let n = std::fs::read_dir(dir.join("hello")).unwrap().count();
    assert_eq!(n, 2, "{}", String::from_utf8_lossy(&o.stdout));
    let clip = spikeword::load_wav(&dir.join("hello/0.wav"), 16000).unwrap();
    assert_eq!(clip.len(), 16000);
    // Nothing in a silent file.
    let silent = d.path().join("silent.wav");
    spikeword::audio::wav::write_pcm16(&silent, &vec![0.0; 48000], 16000).unwrap();
    let o = run(&[
        "record",
        "hello",
        "--input",
        silent.to_str().unwrap(),
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("no utterance"));
}

#[test]
fn retraining_is_reproducible_and_leaves_the_old_rows_alone() {
    let d = tempfile::tempdir().unwrap();
    let Some(fsdd4) = jackson4(d.path()) else {
        return;
    };
    let outs: Vec<PathBuf> = (0..2)
        .map(|i| d.path().join(format!("r{i}.safetensors")))
        .collect();
    for out in &outs {
        let rep = retrain_digits(&fsdd4, out, 5);
        assert!(rep["new_word_bias_shift"].as_f64().unwrap() >= 0.0);
    }
    let base = spikeword::Model::load(&root().join("models/gsc12.safetensors")).unwrap();
    let a = spikeword::Model::load(&outs[0]).unwrap();
    let b = spikeword::Model::load(&outs[1]).unwrap();
    // Same seed, same model (the replay draw once depended on hash-map order).
    assert_eq!(a.net.first().readout.w, b.net.first().readout.w);
    assert_eq!(a.net.first().readout.bias, b.net.first().readout.bias);
    // The old words' readout rows are the base model's, weight for weight.
    let (ra, rb) = (&a.net.first().readout, &base.net.first().readout);
    for c in 0..rb.n_classes {
        assert_eq!(ra.bias[c], rb.bias[c]);
        for i in 0..rb.c_in {
            assert_eq!(ra.w[i * ra.n_classes + c], rb.w[i * rb.n_classes + c]);
        }
    }
}

/// `retrain` of the words under `dir/words` with the bundled base, run in `dir` with no
/// Speech Commands variable set.
fn retrain_in(dir: &Path, model: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spikeword"))
        .args(["retrain", "--data", "words", "--copies", "4", "--model"])
        .arg(model)
        .args(args)
        .env_remove("SPIKEWORD_DATA")
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn without_the_data_folder_the_model_files_own_replay_protects_the_old_words() {
    // A user's machine: no Speech Commands folder anywhere, no variable pointing at one.
    let d = tempfile::tempdir().unwrap();
    let Some(fsdd4) = jackson4(d.path()) else {
        return;
    };
    let data = d.path().join("words");
    copy_word(&fsdd4, &data, "one", 4);
    copy_word(&fsdd4, &data, "two", 4);
    let bundled = root().join("models/gsc12.safetensors");
    let o = retrain_in(d.path(), &bundled, &["--out", "new.safetensors"]);
    let (out, e) = (String::from_utf8_lossy(&o.stdout), err(&o));
    assert!(o.status.success(), "{e}");
    assert!(out.contains("stored in the model file"), "{out}");
    assert!(!out.contains("old words: n/a"), "{out}");
    assert!(!e.contains("no replay data"), "{e}");
    // The retrained model keeps the store for the next retraining.
    let new = spikeword::Model::load(&d.path().join("new.safetensors")).unwrap();
    assert!(new.replay.is_some());
    // Other speakers' formants: the new rows change, the old ones stay the base's.
    let o = retrain_in(
        d.path(),
        &bundled,
        &["--out", "vt.safetensors", "--vtlp", "0.15"],
    );
    assert!(o.status.success(), "{}", err(&o));
    let vt = spikeword::Model::load(&d.path().join("vt.safetensors")).unwrap();
    let (r, rv) = (&new.net.first().readout, &vt.net.first().readout);
    let column = |w: &[f32], c: usize| -> Vec<f32> {
        w.iter().skip(c).step_by(r.n_classes).copied().collect()
    };
    let n_old = r.n_classes - 2;
    assert_eq!(column(&r.w, 0), column(&rv.w, 0));
    assert_ne!(column(&r.w, n_old), column(&rv.w, n_old));
    let o = retrain_in(
        d.path(),
        &bundled,
        &["--out", "x.safetensors", "--vtlp", "0.5"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    // A model file without a store: retraining still runs, and says what it could not do.
    let mut bare = spikeword::Model::load(&bundled).unwrap();
    bare.replay = None;
    let bare_path = d.path().join("bare.safetensors");
    bare.save(&bare_path).unwrap();
    let o = retrain_in(d.path(), &bare_path, &["--out", "new2.safetensors"]);
    let (out, e) = (String::from_utf8_lossy(&o.stdout), err(&o));
    assert!(o.status.success(), "{e}");
    assert!(out.contains("old words: n/a"), "{out}");
    assert!(e.contains("no replay data"), "{e}");
    // A replay folder that is not there is an error, not a quiet fallback.
    let o = retrain_in(
        d.path(),
        &bundled,
        &["--out", "n3.safetensors", "--replay", "nowhere"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("nowhere"), "{}", err(&o));
}
