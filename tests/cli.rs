//! The command line on real clips and on bad input: clear one-line errors, exit codes,
//! never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use spikeword::data::gsc::split_of;
use spikeword::data::{Split, SplitRule};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spikeword"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model() -> PathBuf {
    root().join("models/gsc12.safetensors")
}

fn run(args: &[&str]) -> Output {
    no_panic(args, bin().args(args).current_dir(root()).output().unwrap())
}

fn no_panic(args: &[&str], o: Output) -> Output {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "panic in {args:?}: {err}");
    o
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn clip(word: &str) -> String {
    root()
        .join(format!("assets/clips/{word}_0.wav"))
        .display()
        .to_string()
}

fn corrupt(dir: &Path) -> String {
    let p = dir.join("corrupt.wav");
    std::fs::write(&p, b"RIFF\x10\x00\x00\x00WAVEfmt ").unwrap();
    p.display().to_string()
}

#[test]
fn classify_labels_real_clips_and_reports_bad_files() {
    let d = tempfile::tempdir().unwrap();
    let bad = corrupt(d.path());
    let o = run(&["classify", "--json", &clip("yes"), &clip("stop"), &bad]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "some files failed: {}",
        stderr(&o)
    );
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0]["label"].is_string() && lines[0]["score"].as_f64().unwrap() > 0.0);
    assert!(lines[2]["error"].as_str().unwrap().contains("truncated"));
    assert_eq!(lines[2]["file"], bad);
}

#[test]
fn classify_a_folder_as_csv_and_from_stdin() {
    let o = run(&["classify", "--format", "csv", "--top", "3", "assets/clips"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert_eq!(s.lines().count(), 1 + 3 * 10);
    // A name with a comma is one CSV field; the table's labels stand in one column.
    let d = tempfile::tempdir().unwrap();
    let odd = d.path().join("a, \"b\".wav");
    std::fs::copy(clip("go"), &odd).unwrap();
    let o = run(&["classify", "--format", "csv", odd.to_str().unwrap()]);
    let quoted = format!(
        "\"{}\",1,go,",
        odd.display().to_string().replace('"', "\"\"")
    );
    assert!(
        stdout(&o).lines().nth(1).unwrap().starts_with(&quoted),
        "{}",
        stdout(&o)
    );
    let o = run(&["classify", &clip("go"), &clip("down")]);
    let at: Vec<usize> = stdout(&o)
        .lines()
        .map(|l| l.find(" go ").or(l.find(" down ")).unwrap())
        .collect();
    assert_eq!(at[0], at[1], "{}", stdout(&o));
    assert!(stderr(&o).contains("clips/s"));
    let paths = format!("{}\n{}\n", clip("no"), clip("go"));
    let o = run_with_stdin(&["classify", "-"], paths.into_bytes());
    assert!(o.status.success());
    assert_eq!(stdout(&o).lines().count(), 2);
}

#[test]
fn classify_refuses_a_folder_without_recordings() {
    // As `detect` does: an empty folder is most often a wrong path, not an empty result.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("notes.txt"), "not audio").unwrap();
    let o = run(&["classify", d.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no WAV files in"), "{}", stderr(&o));
    // An empty list on stdin is still an empty result.
    let o = run_with_stdin(&["classify", "-"], Vec::new());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("0 files"));
}

#[test]
fn a_missing_model_or_one_of_another_version_is_a_clear_error() {
    let o = run(&[
        "classify",
        "--model",
        "/nonexistent/m.safetensors",
        &clip("yes"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1);

    // A path that cannot be read as a file: named once, its cause said once.
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_str().unwrap();
    let o = run(&["classify", "--model", dir, &clip("yes")]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(dir), "{err}");
    assert_eq!(err.matches("os error").count(), 1, "{err}");

    let p = d.path().join("old.safetensors");
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "spikeword-model".to_string());
    meta.insert("format_version".to_string(), "0".to_string());
    let data = vec![0u8; 4];
    let t = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &data).unwrap();
    std::fs::write(
        &p,
        safetensors::serialize(vec![("x", t)], Some(meta)).unwrap(),
    )
    .unwrap();
    let o = run(&["detect", "--model", p.to_str().unwrap(), &clip("yes")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("format version 0"), "{}", stderr(&o));

    std::fs::write(&p, b"not a model").unwrap();
    let o = run(&["eval", "--model", p.to_str().unwrap(), "--data", "assets"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not a spikeword model"),
        "{}",
        stderr(&o)
    );
}

/// `spikeword info | head -1`: the reader is gone before the program prints.
#[cfg(unix)]
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let mut child = bin()
        .args(["info", "--model", model().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.signal(),
        Some(13),
        "ended by SIGPIPE: {:?}",
        o.status
    );
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
}

#[test]
fn detect_finds_the_words_of_the_demo_recording_in_order() {
    // At one threshold for every word (the calibrated default trades words for fewer
    // false alarms in running speech: tests/detection_bench.rs).
    let o = run(&[
        "detect",
        "--json",
        "--threshold",
        "0.5",
        "assets/demo_words.wav",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ev: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let words: Vec<&str> = ev.iter().map(|e| e["word"].as_str().unwrap()).collect();
    // yes, no, up, stop, go at 1-2, 3-4, 5-6, 7-8, 9-10 s.
    let truth = ["yes", "no", "up", "stop", "go"];
    let hits = truth.iter().enumerate().filter(|(i, w)| {
        ev.iter().any(|e| {
            e["word"] == **w
                && e["start"].as_f64().unwrap() < 2.0 * *i as f64 + 2.2
                && e["end"].as_f64().unwrap() > 2.0 * *i as f64 + 0.8
        })
    });
    assert!(hits.count() >= 4, "found {words:?}");
    assert!(ev.len() <= 6, "one event per word: {words:?}");
    for e in &ev {
        assert!(e["end"].as_f64() > e["start"].as_f64());
    }
}

#[test]
fn detect_on_a_corrupt_file_fails_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let o = run(&["detect", &corrupt(d.path())]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("error:"));
    // A folder without recordings is refused by name.
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(&["detect", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no WAV files"), "{}", stderr(&o));
}

#[test]
fn detect_searches_several_recordings_and_names_each_event() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("recordings");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy("assets/demo_words.wav", dir.join("a.wav")).unwrap();
    std::fs::copy("assets/clips/stop_0.wav", dir.join("b.wav")).unwrap();
    let (a, b) = (dir.join("a.wav"), dir.join("b.wav"));
    let one = |f: &Path| stdout(&run(&["detect", "--json", f.to_str().unwrap()]));
    let alone = [one(&a), one(&b)];
    assert!(
        alone
            .iter()
            .all(|s| !s.is_empty() && !s.contains("\"file\""))
    );
    // A folder: every event as its recording alone gives it, with the file's name.
    let o = run(&["detect", "--json", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (f, alone) in [&a, &b].iter().zip(&alone) {
        let own: Vec<serde_json::Value> = lines
            .iter()
            .filter(|e| e["file"] == f.to_str().unwrap())
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut().unwrap().remove("file");
                e
            })
            .collect();
        let expected: Vec<serde_json::Value> = alone
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(own, expected, "{}", f.display());
    }
    assert!(stderr(&o).contains("in 2 recordings"), "{}", stderr(&o));
    // CSV and the table name the file first.
    let csv = stdout(&run(&[
        "detect",
        "--format",
        "csv",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]));
    assert!(csv.starts_with("file,start,end,word,score\n"), "{csv}");
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| l.starts_with(a.to_str().unwrap()) || l.starts_with(b.to_str().unwrap()))
    );
    a_broken_recording_is_named_and_the_rest_searched(d.path(), &b);
    // The picture is of one recording.
    let png = d.path().join("x.png");
    let o = run(&[
        "detect",
        dir.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--png draws one recording"));
    assert!(!png.exists());
}

/// `detect` over a broken recording and a good one: the error names the file, the good
/// one is still searched, the exit code is 2 (as classify).
fn a_broken_recording_is_named_and_the_rest_searched(tmp: &Path, good: &Path) {
    let bad = corrupt(tmp);
    let o = run(&["detect", &bad, good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.starts_with(good.to_str().unwrap()) && l.contains("stop")),
        "{}",
        stdout(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains(&format!("error: {bad}"))
            && err.contains("1 of 2 recordings could not be read"),
        "{err}"
    );
    let o = run(&["detect", "--json", &bad, good.to_str().unwrap()]);
    let first: serde_json::Value =
        serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(first["file"], bad.as_str());
    assert!(first["error"].as_str().is_some());
}

#[test]
fn listen_from_a_file_prints_the_same_events_as_json_lines() {
    let o = run(&["listen", "--input", "assets/demo_words.wav", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = run(&["detect", "--json", "assets/demo_words.wav"]);
    assert_eq!(stdout(&o), stdout(&d));
    assert!(stderr(&o).contains("summary:"));
}

/// Runs a command with `input` on its standard input.
fn run_with_stdin(args: &[&str], input: Vec<u8>) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = bin()
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // From a thread, so that a command writing while it reads cannot block on us; a
    // command that stops reading early closes the pipe, which is not an error here.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    no_panic(args, o)
}

/// `wav` with the `data` size a streaming writer leaves in its header (and the RIFF
/// size too, as ffmpeg leaves both).
fn as_streamed(wav: &[u8], placeholder: u32) -> Vec<u8> {
    let mut b = wav.to_vec();
    let at = b.windows(4).position(|w| w == b"data").unwrap() + 4;
    b[at..at + 4].copy_from_slice(&placeholder.to_le_bytes());
    b[4..8].copy_from_slice(&placeholder.to_le_bytes());
    b
}

#[test]
fn a_wav_stream_on_standard_input_is_heard_like_the_file() {
    let demo = std::fs::read(root().join("assets/demo_words.wav")).unwrap();
    let from_file = stdout(&run(&["detect", "--json", "assets/demo_words.wav"]));
    assert!(from_file.lines().count() >= 4, "{from_file}");
    let d = tempfile::tempdir().unwrap();
    // The sizes sox and espeak-ng, arecord and ffmpeg write when their output is a pipe.
    for placeholder in [0x7FFF_F000u32, 0x8000_0000, 0xFFFF_FFFF] {
        let streamed = as_streamed(&demo, placeholder);
        let o = run_with_stdin(&["detect", "--json", "-"], streamed.clone());
        assert!(o.status.success(), "{placeholder:#x}: {}", stderr(&o));
        assert_eq!(stdout(&o), from_file, "{placeholder:#x}");
        // Saved to a file (`espeak-ng --stdout > f.wav`), the same.
        let saved = d.path().join(format!("{placeholder:x}.wav"));
        std::fs::write(&saved, &streamed).unwrap();
        let o = run(&["detect", "--json", saved.to_str().unwrap()]);
        assert!(o.status.success(), "{placeholder:#x}: {}", stderr(&o));
        assert_eq!(stdout(&o), from_file, "{placeholder:#x} saved");
    }
    let o = run_with_stdin(&["listen", "--input", "-", "--json"], demo.clone());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), from_file);
    // `classify -` takes a WAV there as one recording (paths otherwise, as tested above).
    let yes = std::fs::read(clip("yes")).unwrap();
    let o = run_with_stdin(&["classify", "--json", "-"], yes);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(
        (v["file"].as_str(), v["label"].as_str()),
        (Some("-"), Some("yes"))
    );
    // A stream shorter than its real size, nothing, or not a WAV: one line, exit 1.
    let cut = demo[..demo.len() / 2].to_vec();
    for (input, want) in [
        (cut, "truncated"),
        (Vec::new(), "empty"),
        (b"not audio".to_vec(), "not a WAV"),
    ] {
        let o = run_with_stdin(&["detect", "-"], input);
        assert_eq!(o.status.code(), Some(1), "{want}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.starts_with("error: standard input: "), "{err}");
        assert!(err.contains(want) && err.lines().count() == 1, "{err}");
    }
}

/// Runs a command that prints one JSON object per line (it must succeed); `field` of each.
fn json_lines(args: &[&str], field: &str) -> Vec<String> {
    let o = run(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()[field].to_string())
        .collect()
}

/// The ten asset clips in the Speech Commands layout under `dir`, each as `file`.
fn ten_words(dir: &Path, file: &str) {
    for w in [
        "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    ] {
        std::fs::create_dir_all(dir.join(w)).unwrap();
        std::fs::copy(clip(w), dir.join(w).join(file)).unwrap();
    }
}

#[test]
fn eval_on_the_bundled_clips() {
    let d = tempfile::tempdir().unwrap();
    let o = run(&["eval", "--data", d.path().to_str().unwrap(), "--json"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "an empty folder has nothing to evaluate"
    );
    ten_words(d.path(), "a_nohash_0.wav");
    let o = run(&["eval", "--data", d.path().to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(r["n"], 10);
    let acc = r["accuracy"].as_f64().unwrap();
    // The model card's held-out accuracy is ~80 %: most of these ten must be right.
    assert!(acc >= 0.6, "accuracy {acc}");
    let hz = r["firing_rate_hz"].as_f64().unwrap();
    assert!(hz > 0.1 && hz < 20.0, "{hz} Hz");
    assert!(r["per_class"].is_array() && r["confusion"].is_array());
}

#[test]
fn inspect_and_features_write_real_files() {
    let d = tempfile::tempdir().unwrap();
    let png = d.path().join("x.png");
    let o = run(&["inspect", &clip("yes"), "--png", png.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    // Written whole through a temporary file: nothing else is left in the folder.
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    // A picture that cannot be written: its path and the cause, once, on one line.
    let nowhere = d.path().join("no/such/folder/x.png");
    let o = run(&["inspect", &clip("yes"), "--png", nowhere.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(nowhere.to_str().unwrap()), "{err}");
    assert_eq!(err.matches("os error").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let npy = d.path().join("x.npy");
    let o = run(&["features", &clip("yes"), "--out", npy.to_str().unwrap()]);
    assert!(o.status.success());
    let b = std::fs::read(&npy).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert!(String::from_utf8_lossy(&b[10..10 + header_len]).contains("(98, 40)"));
    assert_eq!(b.len(), 10 + header_len + 98 * 40 * 4);
    let csv = d.path().join("x.csv");
    assert!(
        run(&["features", &clip("yes"), "--out", csv.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 98);
}

#[test]
fn bad_wavs_on_the_command_line() {
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    for args in [
        vec!["inspect", empty.to_str().unwrap()],
        vec![
            "features",
            empty.to_str().unwrap(),
            "--out",
            "/tmp/never.npy",
        ],
        vec!["detect", empty.to_str().unwrap()],
        vec!["listen", "--input", empty.to_str().unwrap()],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&o).contains("empty file"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let o = run(&["inspect", "/nonexistent.wav"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn the_model_file_reproduces_its_predictions() {
    let m = spikeword::Model::load(&model()).unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("copy.safetensors");
    m.save(&p).unwrap();
    let m2 = spikeword::Model::load(&p).unwrap();
    let x = spikeword::load_wav(Path::new(&clip("left")), 16000).unwrap();
    let mut mf = spikeword::features::MelFrame::new(&m.config.features);
    assert_eq!(
        m.classify(&mut mf, &x).logits,
        m2.classify(&mut mf, &x).logits
    );
    assert_eq!(m.config, m2.config);
}

#[test]
fn impossible_training_options_are_refused_before_any_work() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().to_str().unwrap().to_string();
    // Out-of-range values: refused by the argument parser (exit 2, usage errors).
    for (args, msg) in [
        (vec!["--dropout", "1"], "--dropout"),
        (vec!["--word-head=-1"], "--word-head"),
        (vec!["--batch", "0"], "--batch"),
        (vec!["--kernel", "0"], "--kernel"),
        (vec!["--dilations", "0,1,2"], "--dilations"),
        (vec!["--channels", "64,0,64"], "--channels"),
        (vec!["--epochs", "0"], "--epochs"),
        (vec!["--lr", "nan"], "--lr"),
        (vec!["--surrogate-slope=-1"], "--surrogate-slope"),
        (vec!["--rate-target", "1.5"], "--rate-target"),
        (vec!["--vtlp", "0.5"], "--vtlp"),
        (vec!["--mixup", "2"], "--mixup"),
    ] {
        let mut full = vec!["train", "--data", &data];
        full.extend(&args);
        let o = run(&full);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
    }
    // Values each fine alone but not together, or beyond what a network may be: exit 1.
    for (args, msg) in [
        (vec!["--leak-max", "1"], "--leak-max"),
        (vec!["--leak-max", "0"], "--leak-max"),
        (
            vec!["--channels", "64,64", "--dilations", "1,2,4"],
            "dilations for 2 layers",
        ),
        (vec!["--kernel", "65"], "kernel of 65 frames"),
        (vec!["--dilations", "1,4,5000"], "dilation 5000"),
        (vec!["--decision-frames", "99"], "--decision-frames"),
        (
            vec!["--init", "models/gsc12.safetensors"],
            "--init-member K",
        ),
        (
            vec!["--init", "models/gsc12.safetensors", "--init-member", "99"],
            "--init-member 99",
        ),
        (
            vec![
                "--teacher",
                "models/gsc12.safetensors",
                "--teacher",
                "/none.safetensors",
            ],
            "teacher /none.safetensors: no such file",
        ),
    ] {
        let mut full = vec!["train", "--data", &data];
        full.extend(&args);
        let o = run(&full);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
    }
    // No data folder at all: a pointer to the flag and the variable.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_spikeword"))
        .args(["train"])
        .env_remove("SPIKEWORD_DATA")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--data"), "{}", stderr(&o));
}

#[test]
fn detector_options_are_checked_against_the_model() {
    let demo = root().join("assets/demo_words.wav");
    let demo = demo.to_str().unwrap();
    let o = run(&["detect", demo, "--word-threshold", "yse=0.8"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("no word 'yse'"), "{}", stderr(&o));
    let o = run(&["detect", demo, "--word-threshold", "_silence_=0.8"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    for args in [
        vec!["detect", demo, "--threshold", "2"],
        vec!["detect", demo, "--window", "0"],
        vec!["detect", demo, "--window", "1e9"],
        vec!["detect", demo, "--refractory=-1"],
        vec!["listen", "--input", demo, "--refractory", "1e30"],
        vec![
            "retrain",
            "--data",
            ".",
            "--out",
            "x",
            "--copies",
            "1000000000",
        ],
        vec!["classify", demo, "--top", "0"],
        vec!["listen", "--input", demo, "--seconds", "nan"],
        vec!["detect", demo, "--false-alarms-per-hour=-1"],
        vec!["bench-detect", "--data", ".", "--minutes", "1e9"],
        vec!["bench-detect", "--data", ".", "--thresholds", "0.5,1.5"],
        vec!["calibrate", "--data", ".", "--out", "x", "--rates", "nan"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).starts_with("error: invalid value"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let o = run(&["detect", demo, "--word-threshold", "yes=0.8"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn audio_shorter_than_one_analysis_window_is_an_error_not_zero_frames() {
    let d = tempfile::tempdir().unwrap();
    let short = d.path().join("short.wav");
    spikeword::audio::wav::write_pcm16(&short, &[0.1; 100], 16000).unwrap();
    let s = short.to_str().unwrap();
    let npy = d.path().join("x.npy");
    for args in [
        vec!["features", s, "--out", npy.to_str().unwrap()],
        vec!["detect", s],
        vec![
            "inspect",
            s,
            "--png",
            d.path().join("x.png").to_str().unwrap(),
        ],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("shorter than one 30 ms analysis window"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    assert!(!npy.exists());
    // `classify` pads short clips, but an empty take is no `_silence_`: one failed file.
    let empty = d.path().join("empty.wav");
    spikeword::audio::wav::write_pcm16(&empty, &[], 16000).unwrap();
    let o = run(&["classify", empty.to_str().unwrap(), &clip("yes")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("empty.wav: 0.0 ms of audio is shorter than one 30 ms"));
    assert!(stdout(&o).contains("yes"), "{}", stdout(&o));
}

#[test]
fn every_subcommand_parses_its_options_with_their_defaults() {
    // Past the argument parser, each fails on the missing input with exit 1: a parser
    // whose type does not match its option would panic here instead.
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let out = out.to_str().unwrap();
    for args in [
        vec!["classify", "/nonexistent.wav"],
        vec!["detect", "/nonexistent.wav"],
        vec!["listen", "--input", "/nonexistent.wav"],
        vec!["inspect", "/nonexistent.wav"],
        vec![
            "features",
            "/nonexistent.wav",
            "--out",
            "/nonexistent/x.npy",
        ],
        vec!["eval", "--data", "/nonexistent"],
        vec!["train", "--data", "/nonexistent", "--run-dir", out],
        vec!["retrain", "--data", "/nonexistent", "--out", out],
        vec!["ensemble", "/nonexistent.a", "/nonexistent.b", "--out", out],
        vec!["info", "--model", "/nonexistent"],
        vec!["quantize", "--model", "/nonexistent", "--out", out],
        vec!["bench-detect", "--data", "/nonexistent"],
        vec!["calibrate", "--data", "/nonexistent", "--out", out],
        vec!["record", "w", "--input", "/nonexistent.wav", "--dir", out],
    ] {
        let o = run(&args);
        // classify goes on past unreadable files and says so with exit 2.
        let want = if args[0] == "classify" { 2 } else { 1 };
        assert_eq!(o.status.code(), Some(want), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).starts_with("error: "),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn quantize_puts_every_weight_on_the_grid_and_keeps_the_words() {
    let d = tempfile::tempdir().unwrap();
    let q = d.path().join("q8.safetensors");
    let q = q.to_str().unwrap();
    let o = run(&["quantize", "--out", q]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("to 8 bits"), "{}", stdout(&o));
    let m = spikeword::Model::load(Path::new(q)).unwrap();
    for net in &m.net.members {
        for l in &net.layers {
            let bits = spikeword::snn::quantize::bits_of_columns(&l.w, l.c_out);
            assert!(bits.is_some_and(|b| b <= 8), "{bits:?}");
        }
        let r = &net.readout;
        let bits = spikeword::snn::quantize::bits_of_columns(&r.w, r.n_classes);
        assert!(bits.is_some_and(|b| b <= 8), "{bits:?}");
    }
    // The float model's weights are not on an 8-bit grid: the check above can fail.
    let float = spikeword::Model::load(&model()).unwrap();
    let l = &float.net.members[0].layers[1];
    assert!(spikeword::snn::quantize::bits_of_columns(&l.w, l.c_out).is_none_or(|b| b > 8));
    assert!(stdout(&run(&["info", "--model", q])).contains("quantized:  8-bit"));
    let words = |model: &str| -> Vec<String> {
        let mut args = vec!["classify", "--json", "--model", model];
        let clips: Vec<String> = [
            "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
        ]
        .iter()
        .map(|w| clip(w))
        .collect();
        args.extend(clips.iter().map(|c| c.as_str()));
        json_lines(&args, "label")
    };
    let (a, b) = (words(model().to_str().unwrap()), words(q));
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    assert!(same >= 9, "float {a:?}, 8 bits {b:?}");
    // Bad values: a clear error, no file.
    let bad = d.path().join("bad.safetensors");
    let o = run(&["quantize", "--bits", "1", "--out", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("from 2 to 16"), "{}", stderr(&o));
    let o = run(&["quantize", "--out", model().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("base model"), "{}", stderr(&o));
    let o = run(&[
        "quantize",
        "--out",
        bad.to_str().unwrap(),
        "--data",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!bad.exists());
}

#[test]
fn eval_runs_a_quantized_model_in_integer_arithmetic_beside_the_float_engine() {
    let d = tempfile::tempdir().unwrap();
    let q = d.path().join("q8.safetensors");
    let q = q.to_str().unwrap();
    // A speaker of the bundled model's validation split, where `quantize` measures.
    let file = (0..)
        .map(|i| format!("{i:08x}_nohash_0.wav"))
        .find(|f| split_of(f, &SplitRule::Salted) == Split::Validation)
        .unwrap();
    let data = d.path().join("clips");
    ten_words(&data, &file);
    let data = data.to_str().unwrap();
    let o = run(&["quantize", "--out", q, "--data", data]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("clips, in integers:"), "{}", stdout(&o));
    let o = run(&["eval", "--model", q, "--data", data, "--integer", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    integer_report_is_complete(&stdout(&o));
    // The float engine's report has no integer part; the text says what ran.
    let o = run(&["eval", "--model", q, "--data", data, "--json"]);
    assert!(serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["integer"].is_null());
    let integer = |extra: &[&str]| {
        let mut args = vec!["eval", "--model", q, "--data", data, "--integer"];
        args.extend(extra);
        run(&args)
    };
    let o = integer(&["--leak-bits", "6"]);
    assert!(
        stdout(&o).contains("8-bit weights, 8-bit inputs"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("6-bit leaks rounded"), "{}", stdout(&o));
    let o = integer(&["--leak-rounding", "toward-zero", "--json"]);
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(r["integer"]["leak_rounding"], "toward-zero", "{r}");
    assert!(
        r["integer"]["same_decisions"].as_f64().unwrap() >= 0.9,
        "{r}"
    );
    integer_paths_agree_with_float(q, data);
    integer_options_are_checked(q, data, integer);
}

/// `eval --integer --json` of the quantized model: formats, agreement, membrane widths.
fn integer_report_is_complete(json: &str) {
    let r: serde_json::Value = serde_json::from_str(json).unwrap();
    let i = &r["integer"];
    assert_eq!(i["weight_bits"], 8);
    assert_eq!(
        (i["input_bits"].as_u64(), i["leak_bits"].as_u64()),
        (Some(8), Some(12))
    );
    let same = i["same_decisions"].as_f64().unwrap();
    assert!(same >= 0.9, "{same}");
    assert!(r["accuracy"].as_f64().unwrap() >= 0.6, "{r}");
    let bits = i["membrane_bits"].as_u64().unwrap();
    assert!((12..=32).contains(&bits), "{bits}");
    // Per spiking layer, then the readout; the widest is the one above.
    let per_layer: Vec<u64> = i["membrane_bits_per_layer"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap())
        .collect();
    assert_eq!(per_layer.len(), 4);
    assert_eq!(per_layer.iter().max(), Some(&bits));
    let hz = r["firing_rate_hz"].as_f64().unwrap();
    assert!(hz > 0.1 && hz < 20.0, "{hz} Hz");
}

/// `detect` and `classify` with `--integer` decide as the float engine does.
fn integer_paths_agree_with_float(q: &str, data: &str) {
    // The streaming path in integers finds the demo recording's words as in float.
    let words = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["detect", "--json", "--model", q, "assets/demo_words.wav"];
        args.extend(extra);
        json_lines(&args, "word")
    };
    let float = words(&[]);
    assert!(float.len() >= 4, "{float:?}");
    assert_eq!(words(&["--integer"]), float);
    // So does classify, on the ten clips.
    let labels = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["classify", "--json", "--model", q, data];
        args.extend(extra);
        json_lines(&args, "label")
    };
    let (float, integer_labels) = (labels(&[]), labels(&["--integer"]));
    assert_eq!(float.len(), 10);
    let same = float
        .iter()
        .zip(&integer_labels)
        .filter(|(a, b)| a == b)
        .count();
    assert!(same >= 9, "{float:?} {integer_labels:?}");
    let o = run(&[
        "classify",
        "--model",
        q,
        data,
        "--integer",
        "--device",
        "gpu",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("runs on the CPU"), "{}", stderr(&o));
}

fn integer_options_are_checked(q: &str, data: &str, integer: impl Fn(&[&str]) -> Output) {
    // A float model, formats out of range, a format without --integer: clear errors.
    for args in [
        vec!["eval", "--data", data, "--integer"],
        vec!["detect", "assets/demo_words.wav", "--integer"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("spikeword quantize"), "{}", stderr(&o));
    }
    let o = integer(&["--leak-bits", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("from 1 to 16"), "{}", stderr(&o));
    let o = run(&["eval", "--model", q, "--data", data, "--input-bits", "6"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
