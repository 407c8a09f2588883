//! The streaming engine: constant state, streaming = offline on real clips, one event
//! per spoken word.

use std::path::Path;

use spikeword::audio::fit_length;
use spikeword::data::{Dataset, Split, SplitRule};
use spikeword::detect::{DetectorConfig, Engine};
use spikeword::features::MelFrame;
use spikeword::snn::{FixedEnsemble, FixedSpec};
use spikeword::util::argmax;
use spikeword::{Model, load_wav};

fn model() -> Model {
    Model::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gsc12.safetensors")).unwrap()
}

mod common;

/// Seeded white noise at a low level (needs no data).
fn noise(len: usize) -> Vec<f32> {
    let mut r = spikeword::util::Rng::new(len as u64);
    (0..len).map(|_| r.normal() * 0.005).collect()
}

/// The first background-noise recording of the data, looped to `len` samples.
fn recorded_noise(shared: &Path, len: usize) -> Vec<f32> {
    let p = shared.join("_background_noise_");
    // The first file by name (directory order differs between file systems).
    let f = std::fs::read_dir(&p).ok().and_then(|d| {
        d.map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "wav"))
            .min()
    });
    match f {
        Some(f) => load_wav(&f, 16000)
            .unwrap()
            .into_iter()
            .cycle()
            .take(len)
            .map(|v| v * 0.2)
            .collect(),
        None => panic!("no background noise in {}", p.display()),
    }
}

/// The share of the held-out word clips whose offline decision `m` keeps inside a stream
/// after 0.5 s of digital silence, 0.5 s of background noise and another word (`None`
/// without the shared data).
fn stream_agreement(m: &Model, integer: Option<&FixedEnsemble>) -> Option<[f64; 3]> {
    let shared = common::speech_commands()?;
    let ds = Dataset::scan(&shared, &SplitRule::Salted).unwrap();
    let clips: Vec<_> = ds.split(Split::Test).collect();
    let mut mf = MelFrame::new(&m.config.features);
    let speech = fit_length(&load_wav(&clips[3].path, 16000).unwrap(), 16000);
    let contexts = [
        ("silence", vec![0.0; 8000]),
        ("noise", recorded_noise(&shared, 8000)),
        ("another word", speech),
    ];
    let mut out = [0.0; 3];
    for ((name, ctx), out) in contexts.iter().zip(&mut out) {
        let mut same = 0;
        for c in &clips {
            let x = fit_length(&load_wav(&c.path, 16000).unwrap(), 16000);
            let (offline, mut e) = match integer {
                Some(fixed) => (
                    m.classify_fixed(fixed, &mut mf, &x).0,
                    Engine::new(m, DetectorConfig::default()).in_integers(fixed),
                ),
                None => (
                    m.classify(&mut mf, &x),
                    Engine::new(m, DetectorConfig::default()),
                ),
            };
            let offline = argmax(&offline.logits);
            e.push(ctx, |_| {});
            e.push(&x, |_| {});
            // The smoothing window is the clip's decision window (its last frames), so the
            // smoothed decision is the clip's.
            same += (argmax(e.smoothed()) == offline) as usize;
        }
        *out = same as f64 / clips.len() as f64;
        eprintln!(
            "streaming = offline after {name}: {same}/{} clips ({:.1} %)",
            clips.len(),
            100.0 * *out
        );
    }
    Some(out)
}

#[test]
fn a_clip_inside_a_stream_gets_its_offline_label() {
    let Some(agreement) = stream_agreement(&model(), None) else {
        return;
    };
    // One network's decision flips on a few per cent of clips under any perturbation
    // (even one zero-input frame before the clip offline). The ensemble averages that
    // out; its six short-delay networks (220 ms) forget what came before a word within
    // its first frames (`cargo run --release --example stream_agreement`).
    for a in agreement {
        assert!(a >= 0.98, "{agreement:?}");
    }
}

#[test]
fn a_clip_inside_a_stream_gets_its_offline_label_in_integer_arithmetic() {
    let mut m = model();
    m.quantize(8);
    let fixed = m.integer_engine(&FixedSpec::default()).unwrap();
    let Some(agreement) = stream_agreement(&m, Some(&fixed)) else {
        return;
    };
    for a in agreement {
        assert!(a >= 0.98, "{agreement:?}");
    }
}

#[test]
fn state_size_stays_constant_over_a_long_stream() {
    let m = model();
    let mut e = Engine::new(&m, DetectorConfig::default());
    e.push(&noise(16000), |_| {});
    let size = e.state().unwrap().size_bytes();
    for _ in 0..30 {
        e.push(&noise(16000), |_| {});
    }
    assert_eq!(e.state().unwrap().size_bytes(), size);
    assert_eq!(e.frames_seen(), (31 * 16000 - 480) / 160 + 1);
}

#[test]
fn one_word_gives_one_event() {
    let m = model();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/clips");
    let mut total_events = 0;
    let mut right = 0;
    for w in [
        "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    ] {
        let x = load_wav(&root.join(format!("{w}_0.wav")), 16000).unwrap();
        let mut e = Engine::new(
            &m,
            DetectorConfig {
                threshold: 0.5,
                ..DetectorConfig::default()
            },
        );
        let mut events = Vec::new();
        let mut stream = noise(16000);
        stream.extend(&x);
        stream.extend(noise(24000));
        e.push(&stream, |ev| events.push(ev));
        events.extend(e.finish());
        assert!(events.len() <= 1, "{w}: {events:?}");
        total_events += events.len();
        right += events
            .iter()
            .filter(|ev| ev.word == w && ev.start < 2.1 && ev.end > 0.9)
            .count();
    }
    assert!(total_events >= 7, "{total_events} events for 10 words");
    assert!(right >= 6, "{right} right");
}
