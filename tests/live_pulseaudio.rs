//! The live microphone path end to end, against a real PulseAudio server.
//!
//! Setup (needs pulseaudio, pulseaudio-utils, libasound2-plugins):
//!
//!     scripts/pulse.sh start        # null sink "vmic"; its monitor is the default source
//!     cargo test --release --features mic --test live_pulseaudio -- --nocapture
//!
//! Clips are played into the sink with `paplay --device=vmic`, so the default input
//! (ALSA `default` -> PulseAudio -> vmic.monitor) hears them as a microphone would.
//!
//! Without the `mic` feature, a server, `paplay` or the model these tests print why
//! and pass; with `SPIKEWORD_REQUIRE_PULSE=1` (CI) they fail instead.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_spikeword");
const SINK: &str = "vmic";
/// Silence between clips, and before the first one (the listener starting up).
const GAP: Duration = Duration::from_millis(1000);
const LEAD_IN: Duration = Duration::from_millis(1500);
/// The rate audio is read and captured at.
const RATE: usize = 16000;
/// Loudness is compared over windows of 40 ms.
#[cfg(feature = "mic")]
const WIN: usize = RATE / 25;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn required() -> bool {
    std::env::var("SPIKEWORD_REQUIRE_PULSE").is_ok_and(|v| v.trim() == "1")
}

/// Returns early from a test (saying why) when `$problem` is `Some`, or fails it when
/// CI requires the live path.
macro_rules! run_or_skip {
    ($problem:expr) => {
        if let Some(why) = $problem {
            if required() {
                panic!("SPIKEWORD_REQUIRE_PULSE=1, but {why}");
            }
            eprintln!("skipping: {why}");
            return;
        }
    };
}

/// Tests that play into the sink must not overlap.
fn sink_lock() -> MutexGuard<'static, ()> {
    static SINK_LOCK: Mutex<()> = Mutex::new(());
    SINK_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why the live path cannot be exercised here, if it cannot.
fn pulse_problem() -> Option<String> {
    if !cfg!(feature = "mic") {
        return Some(
            "built without the `mic` feature (use `cargo test --release --features mic`)".into(),
        );
    }
    match Command::new("pactl")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Err(e) => {
            return Some(format!(
                "`pactl` cannot run ({e}); install pulseaudio-utils"
            ));
        }
        Ok(s) if !s.success() => {
            return Some(
                "no PulseAudio server answers `pactl info` (run `scripts/pulse.sh start`)".into(),
            );
        }
        Ok(_) => {}
    }
    let sinks = Command::new("pactl")
        .args(["list", "short", "sinks"])
        .output()
        .ok()?;
    let sinks = String::from_utf8_lossy(&sinks.stdout);
    if !sinks
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(SINK))
    {
        return Some(format!(
            "the PulseAudio server has no sink named {SINK:?} (run `scripts/pulse.sh start`)"
        ));
    }
    if Command::new("paplay")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        return Some("`paplay` cannot run; install pulseaudio-utils".into());
    }
    None
}

/// `cargo test --features mic` builds the binary with the feature, but any later
/// `cargo build --release` (without it) in the same target directory replaces it.
fn assert_binary_has_mic() {
    let out = Command::new(BIN)
        .args(["listen", "--list-devices"])
        .stdin(Stdio::null())
        .output()
        .expect("run spikeword listen --list-devices");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("no microphone support"),
        "{BIN} has no microphone support although this test was built with `mic`: \
         another build without the feature replaced it; rebuild with --features mic"
    );
}

fn model_problem() -> Option<String> {
    let p = spikeword::model::default_model_path();
    (!p.exists()).then(|| {
        format!(
            "no model at {} (train one, or set SPIKEWORD_MODEL)",
            p.display()
        )
    })
}

/// `assets/clips/<word>_<n>.wav`, or the `yes` fixture when there are none.
fn clips() -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(root().join("assets/clips"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?;
            let (word, n) = stem.rsplit_once('_')?;
            n.parse::<u32>().ok()?;
            Some((word.to_string(), p.clone()))
        })
        .collect();
    v.sort();
    if v.is_empty() {
        v.push(("yes".into(), root().join("tests/fixtures/yes.wav")));
    }
    v
}

fn duration_of(p: &Path) -> Duration {
    let x = spikeword::audio::load_wav(p, RATE as u32)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    Duration::from_secs_f64(x.len() as f64 / RATE as f64)
}

/// Plays `p` into the virtual microphone; returns when it has been played.
fn play(p: &Path) {
    let out = Command::new("paplay")
        .arg(format!("--device={SINK}"))
        .arg(p)
        .output()
        .unwrap_or_else(|e| panic!("paplay: {e}"));
    assert!(
        out.status.success(),
        "paplay {} failed: {}",
        p.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// RMS of consecutive 40 ms windows.
#[cfg(feature = "mic")]
fn window_rms(x: &[f32], rate: usize) -> Vec<f32> {
    x.chunks(rate / 25)
        .map(|c| (c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32).sqrt())
        .collect()
}

/// The clips of words `model` knows: only those can be spotted.
fn clips_the_model_knows() -> Vec<(String, PathBuf)> {
    let mut clips = clips();
    let model = spikeword::model::Model::load(&spikeword::model::default_model_path())
        .expect("model loads");
    clips.retain(|(w, _)| model.labels().iter().any(|l| l == w));
    assert!(
        !clips.is_empty(),
        "no clip is of a word the model knows ({:?})",
        model.labels()
    );
    clips
}

/// A running `spikeword listen --json`, its output collected by two threads.
struct Listener {
    child: std::process::Child,
    started: Instant,
    seconds: f64,
    /// Lines of stdout with the moment each was printed.
    lines: std::thread::JoinHandle<Vec<(Instant, String)>>,
    errors: std::thread::JoinHandle<String>,
}

impl Listener {
    fn spawn(seconds: f64) -> Self {
        let mut child = Command::new(BIN)
            // One threshold for every word: the live path is under test here, not the
            // model's calibrated operating point (tests/detection_bench.rs).
            .args(["listen", "--json", "--threshold", "0.5"])
            .args(["--seconds", &seconds.to_string()])
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spikeword listen");
        let started = Instant::now();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let lines = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .map(|l| (Instant::now(), l))
                .collect::<Vec<_>>()
        });
        let errors = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Self {
            child,
            started,
            seconds,
            lines,
            errors,
        }
    }

    /// Fails the test if listen has already exited.
    fn assert_running(mut self) -> Self {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "listen exited before any clip was played ({status}): {}",
                self.errors.join().unwrap()
            );
        }
        self
    }

    /// Waits for listen to end by itself (killing it past a deadline); returns its stdout
    /// lines after checking it exited cleanly.
    fn finish(mut self) -> Vec<(Instant, String)> {
        let deadline =
            self.started + Duration::from_secs_f64(self.seconds) + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "listen --seconds {} still running {:.0} s after it started",
                    self.seconds,
                    self.started.elapsed().as_secs_f64()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let lines = self.lines.join().unwrap();
        let errors = self.errors.join().unwrap();
        eprintln!("listen stderr:\n{errors}");
        assert!(!errors.contains("panicked"), "listen panicked:\n{errors}");
        assert!(status.success(), "listen exited with {status}:\n{errors}");
        lines
    }
}

/// (printed at, word, stream time of its start) of each JSON event line.
fn parse_events(lines: &[(Instant, String)]) -> Vec<(Instant, String, f64)> {
    lines
        .iter()
        .map(|(t, l)| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON event ({e}): {l}"));
            for key in ["word", "start", "end", "score"] {
                assert!(v.get(key).is_some(), "event without {key:?}: {l}");
            }
            let word = v["word"].as_str().expect("word is a string").to_string();
            (*t, word, v["start"].as_f64().unwrap())
        })
        .collect()
}

/// Matches each played (word, start, end) with the first unused later detection of that
/// word; returns how many matched and the words of the detections left over.
fn match_played(
    played: &[(String, Instant, Instant)],
    events: &[(Instant, String, f64)],
) -> (usize, Vec<String>) {
    let mut used = vec![false; events.len()];
    let mut matched = 0;
    for (word, t_start, t_end) in played {
        let hit = events
            .iter()
            .enumerate()
            .position(|(i, (t, w, _))| !used[i] && w == word && *t >= *t_start);
        match hit {
            Some(i) => {
                used[i] = true;
                matched += 1;
                let late = events[i].0.saturating_duration_since(*t_end);
                eprintln!(
                    "played {word:<6} -> printed {:.2} s after the clip ended (stream time {:.2} s)",
                    late.as_secs_f64(),
                    events[i].2
                );
            }
            None => eprintln!("played {word:<6} -> not detected"),
        }
    }
    let extra = events
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(e, _)| e.1.clone())
        .collect();
    (matched, extra)
}

#[test]
fn listen_spots_words_played_into_the_virtual_microphone() {
    run_or_skip!(pulse_problem());
    run_or_skip!(model_problem());
    let _sink = sink_lock();
    assert_binary_has_mic();

    let clips = clips_the_model_knows();
    let durations: Vec<Duration> = clips.iter().map(|(_, p)| duration_of(p)).collect();
    let needed = LEAD_IN
        + durations.iter().map(|d| *d + GAP).sum::<Duration>()
        + Duration::from_millis(1500);
    let seconds = needed.as_secs_f64().max(12.0).ceil();

    let listener = Listener::spawn(seconds);
    std::thread::sleep(LEAD_IN);
    let listener = listener.assert_running();
    // (word, when its playback started, when it ended)
    let mut played: Vec<(String, Instant, Instant)> = Vec::new();
    for (i, (word, path)) in clips.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(GAP);
        }
        let t = Instant::now();
        play(path);
        played.push((word.clone(), t, Instant::now()));
    }
    let events = parse_events(&listener.finish());

    let (matched, extra) = match_played(&played, &events);
    eprintln!(
        "{matched}/{} played words detected; other detections: {extra:?}",
        played.len()
    );
    assert!(
        matched * 2 > played.len(),
        "only {matched} of {} played words were detected; printed: {:?}",
        played.len(),
        events.iter().map(|e| &e.1).collect::<Vec<_>>()
    );
}

#[test]
fn unknown_device_is_a_one_line_error() {
    // No server needed: the device is looked up by name before anything is opened.
    let out = Command::new(BIN)
        .args(["listen", "--device", "no-such-device-xyz", "--seconds", "1"])
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .expect("run spikeword listen");
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("stderr: {err}");
    assert!(
        !out.status.success(),
        "listen with an unknown device succeeded"
    );
    assert!(!err.contains("panicked"), "listen panicked:\n{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    if cfg!(feature = "mic") && model_problem().is_none() {
        assert!(
            !err.contains("no microphone support"),
            "{BIN} lacks the mic feature: another build replaced it"
        );
        assert!(
            lines[0].contains("no-such-device-xyz"),
            "the error should name the device: {err}"
        );
    }
}

/// Blocks until the input delivers its first samples (at most 5 s after `t_open`).
#[cfg(feature = "mic")]
fn wait_for_samples(src: &mut spikeword::audio::live::LiveSource, t_open: Instant) {
    use spikeword::audio::live::Recv;
    let mut buf = Vec::new();
    loop {
        match src
            .recv(&mut buf, Duration::from_millis(100))
            .expect("capture starts")
        {
            Recv::Data(_) => return,
            Recv::Timeout => assert!(
                t_open.elapsed() < Duration::from_secs(5),
                "no audio within 5 s of opening the input"
            ),
            Recv::End => panic!("the microphone stream ended"),
        }
    }
}

/// Captures for `span`: (arrival, rms) of each 40 ms window, the samples received and the
/// seconds it took.
#[cfg(feature = "mic")]
fn capture_rms(
    src: &mut spikeword::audio::live::LiveSource,
    span: Duration,
) -> (Vec<(Instant, f32)>, usize, f64) {
    use spikeword::audio::live::Recv;
    let (mut got, mut pending, mut buf) = (Vec::new(), Vec::new(), Vec::new());
    let mut total = 0usize;
    let t0 = Instant::now();
    while t0.elapsed() < span {
        buf.clear();
        match src
            .recv(&mut buf, Duration::from_millis(100))
            .expect("capture keeps running")
        {
            Recv::Data(_) => {}
            Recv::Timeout => continue,
            Recv::End => panic!("the microphone stream ended"),
        }
        let now = Instant::now();
        total += buf.len();
        pending.extend_from_slice(&buf);
        let whole = pending.len() / WIN * WIN;
        got.extend(
            window_rms(&pending[..whole], RATE)
                .into_iter()
                .map(|r| (now, r)),
        );
        pending.drain(..whole);
    }
    (got, total, t0.elapsed().as_secs_f64())
}

/// The capture itself, without the model: what is played comes back, at the right
/// rate, with little delay.
#[cfg(feature = "mic")]
#[test]
fn microphone_hears_what_is_played() {
    run_or_skip!(pulse_problem());
    let _sink = sink_lock();
    let clip = clips().into_iter().next().unwrap().1;
    let reference = spikeword::audio::load_wav(&clip, RATE as u32).unwrap();
    let ref_rms = window_rms(&reference, RATE);
    let ref_peak = ref_rms.iter().cloned().fold(0.0f32, f32::max);
    assert!(ref_peak > 0.01, "{} is silent", clip.display());
    let threshold = 0.25 * ref_peak;
    // Where the word starts inside the file, so that it is not counted as latency.
    let ref_onset =
        ref_rms.iter().position(|&r| r > threshold).unwrap() as f64 * WIN as f64 / RATE as f64;

    let t_open = Instant::now();
    let mut src = spikeword::audio::mic::open(None, RATE as u32).expect("open the default input");
    let open_ms = t_open.elapsed().as_secs_f64() * 1000.0;
    // The first samples can take a while (an idle null sink renders 2 s blocks;
    // scripts/pulse.sh keeps it awake): wait for them before timing anything.
    wait_for_samples(&mut src, t_open);
    let first_ms = t_open.elapsed().as_secs_f64() * 1000.0;

    let player = {
        let clip = clip.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            let t = Instant::now();
            play(&clip);
            t
        })
    };
    let (got, total, elapsed) = capture_rms(&mut src, Duration::from_millis(2500));
    let play_start = player.join().unwrap();
    let overruns = src.overruns();
    drop(src);

    let peak = got.iter().map(|g| g.1).fold(0.0f32, f32::max);
    let floor = got
        .iter()
        .filter(|g| g.0 < play_start)
        .map(|g| g.1)
        .fold(0.0f32, f32::max);
    let onset = got
        .iter()
        .find(|g| g.0 >= play_start && g.1 > threshold)
        .map(|g| g.0);
    let latency = onset.map(|t| t.duration_since(play_start).as_secs_f64() - ref_onset);
    let ratio = total as f64 / (elapsed * RATE as f64);
    eprintln!(
        "input opened in {open_ms:.0} ms, first samples after {first_ms:.0} ms; then {total} samples in {elapsed:.2} s ({:.0} Hz); \
         clip peak rms {ref_peak:.3}, captured peak {peak:.3}, floor before playing {floor:.4}; {overruns} overruns; \
         play-to-capture latency {} (includes paplay start-up)",
        total as f64 / elapsed,
        latency.map_or("n/a".to_string(), |l| format!("{:.0} ms", l * 1000.0))
    );
    assert!(
        peak > 0.5 * ref_peak,
        "the played clip was not heard (peak rms {peak}, clip {ref_peak})"
    );
    assert!(
        floor < 0.1 * ref_peak,
        "not silent before playing (rms {floor})"
    );
    assert!(
        (0.9..1.1).contains(&ratio),
        "got {total} samples in {elapsed:.2} s: not 16 kHz real time"
    );
    let latency = latency.expect("onset found");
    assert!(
        latency < 0.5,
        "play-to-capture latency {latency:.2} s: is the small buffer applied?"
    );
    assert_eq!(
        overruns, 0,
        "chunks were dropped between the audio callback and the reader"
    );
}
