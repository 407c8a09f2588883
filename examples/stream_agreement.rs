//! How often a clip's offline decision survives being inside a stream, and how stable the
//! decision is to perturbations smaller than any context (one frame), on the held-out
//! Speech Commands speakers.
//!
//!     SPIKEWORD_DATA=DIR cargo run --release --example stream_agreement -- [MODEL] [official|salted] [test|validation]
//!
//! The speaker split is the model's own (its training record), or the one given; the
//! clips are its test speakers, or its validation speakers (to choose between models
//! without looking at the test set).
//!
//! Streaming: the engine is fed a context (digital silence; each of four background-noise
//! files; each of four other clips) then the clip; its smoothed decision (over the
//! clip's decision window, its last frames) is compared with `Model::classify` on the clip alone.
//! Stability: the same clip classified offline after one zero-input frame (its membranes
//! start from one frame of bias instead of zero), or as the 1 s window one frame (10 ms)
//! earlier in a noisy stream. These bound what any streaming engine can agree to.
//! Events: what a listener sees — the detector's events over the clip inside background
//! noise against the offline decision where it would be reported (a command word above
//! the detection threshold; otherwise no event).

use std::path::PathBuf;

use spikeword::audio::fit_length;
use spikeword::data::{Clip, Dataset, Split, SplitRule};
use spikeword::detect::{DetectorConfig, Engine};
use spikeword::eval::model_split_rule;
use spikeword::features::MelFrame;
use spikeword::snn::Mode;
use spikeword::util::argmax;
use spikeword::{Model, load_wav};

/// A context and the contexts of its kind a clip is streamed after.
type Contexts = Vec<(&'static str, Vec<Vec<f32>>)>;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(spikeword::model::default_model_path);
    let m = Model::load(&path)?;
    let (ds, split) = held_out_speakers(&m)?;
    let clips: Vec<_> = ds.split(split).collect();
    let contexts = contexts(&ds, split, &clips)?;
    let noise_ctx = contexts[1].1[0].clone();
    let mut mf = MelFrame::new(&m.config.features);
    let mut same = vec![0f64; contexts.len()];
    let (mut one_frame, mut shifted, mut event_same) = (0usize, 0usize, 0usize);
    for c in &clips {
        let x = fit_length(&load_wav(&c.path, 16000)?, 16000);
        let offline = argmax(&m.classify(&mut mf, &x).logits);
        for (k, (_, ctxs)) in contexts.iter().enumerate() {
            same[k] += streamed_agreement(&m, ctxs, &x, offline);
        }
        event_same += event_agrees(&m, &mut mf, &noise_ctx, &x, offline) as usize;
        one_frame += (after_one_zero_frame(&m, &mut mf, &x) == offline) as usize;
        // The 1 s window starting one hop (10 ms) earlier, in background noise.
        let mut s = noise_ctx.clone();
        s.extend(&x);
        let w = &s[8000 - 160..8000 - 160 + 16000];
        shifted += (argmax(&m.classify(&mut mf, w).logits) == offline) as usize;
    }
    let n = clips.len();
    let pct = |k: usize| 100.0 * k as f64 / n as f64;
    println!(
        "{}: {n} held-out clips ({split:?} speakers)",
        path.display()
    );
    for (k, (name, ctxs)) in contexts.iter().enumerate() {
        println!(
            "  streaming = offline after {name:<24} {:.1} %  (mean of {} contexts)",
            100.0 * same[k] / n as f64,
            ctxs.len()
        );
    }
    println!(
        "  detector events in noise = offline word    {:.1} %",
        pct(event_same)
    );
    println!(
        "  offline, after one zero-input frame        {:.1} %",
        pct(one_frame)
    );
    println!(
        "  offline, window 10 ms earlier in noise     {:.1} %",
        pct(shifted)
    );
    Ok(())
}

/// The dataset split by the model's rule (or the one given) and which speakers to use.
fn held_out_speakers(m: &Model) -> anyhow::Result<(Dataset, Split)> {
    let root = std::env::var_os("SPIKEWORD_DATA")
        .map(PathBuf::from)
        .ok_or_else(|| {
            anyhow::anyhow!("set SPIKEWORD_DATA to a Speech Commands folder (official layout)")
        })?;
    let rule = match std::env::args().nth(2).as_deref() {
        Some("salted") => SplitRule::Salted,
        Some("official") => SplitRule::Official,
        Some(other) => anyhow::bail!("split rule {other:?}: use official or salted"),
        None => model_split_rule(m)?,
    };
    let split = match std::env::args().nth(3).as_deref() {
        None | Some("test") => Split::Test,
        Some("validation") => Split::Validation,
        Some(other) => anyhow::bail!("clips {other:?}: use test or validation"),
    };
    Ok((Dataset::scan(&root, &rule)?, split))
}

/// Digital silence; four background-noise files; four other clips. Several of a kind:
/// one context alone decides a few clips by chance, which made single-context figures noisy.
fn contexts(ds: &Dataset, split: Split, clips: &[&Clip]) -> anyhow::Result<Contexts> {
    let noise_ctxs: Vec<Vec<f32>> = ds
        .noise_for(split)
        .iter()
        .take(4)
        .map(|p| load_wav(p, 16000).map(|n| n.iter().cycle().take(8000).map(|v| v * 0.2).collect()))
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(!noise_ctxs.is_empty(), "no background noise for {split:?}");
    let speech_ctxs: Vec<Vec<f32>> = [3, clips.len() / 4, clips.len() / 2, 3 * clips.len() / 4]
        .iter()
        .map(|&i| load_wav(&clips[i].path, 16000).map(|x| fit_length(&x, 16000)))
        .collect::<Result<_, _>>()?;
    Ok(vec![
        ("0.5 s digital silence", vec![vec![0.0; 8000]]),
        ("0.5 s background noise", noise_ctxs),
        ("1 s of another word", speech_ctxs),
    ])
}

/// The share of contexts after which the engine's smoothed decision is the offline one.
fn streamed_agreement(m: &Model, ctxs: &[Vec<f32>], x: &[f32], offline: usize) -> f64 {
    let agree = ctxs
        .iter()
        .filter(|ctx| {
            let mut e = Engine::new(m, DetectorConfig::default());
            e.push(ctx, |_| {});
            e.push(x, |_| {});
            argmax(e.smoothed()) == offline
        })
        .count();
    agree as f64 / ctxs.len() as f64
}

/// What a listener sees: the stream's event over the clip (or none) against the offline
/// decision where it would be reported (a command word above threshold).
fn event_agrees(m: &Model, mf: &mut MelFrame, noise: &[f32], x: &[f32], offline: usize) -> bool {
    let det = DetectorConfig::default();
    let p_off = m.classify(mf, x).probs;
    let reportable = |c: usize| !m.labels()[c].starts_with('_');
    let want = (reportable(offline) && p_off[offline] >= det.threshold)
        .then(|| m.labels()[offline].clone());
    let mut e = Engine::new(m, det);
    let mut events = Vec::new();
    e.push(noise, |ev| events.push(ev));
    e.push(x, |ev| events.push(ev));
    e.push(noise, |ev| events.push(ev));
    events.extend(e.finish());
    let got: Vec<String> = events
        .iter()
        .filter(|ev| ev.end > 0.5 && ev.start < 1.5)
        .map(|ev| ev.word.clone())
        .collect();
    match &want {
        Some(w) => got.len() == 1 && got[0] == *w,
        None => got.is_empty(),
    }
}

/// The offline decision after one zero-input frame, still over the clip's own frames.
fn after_one_zero_frame(m: &Model, mf: &mut MelFrame, x: &[f32]) -> usize {
    let c_in = m.net.first().layers[0].c_in;
    let (input, _) = m.encode(mf, x);
    let t = input.len() / c_in;
    let mut st = m.net.new_state();
    m.net.step(&mut st, &vec![0.0; c_in], Mode::Event);
    let start = m.config.network.decision_start(0, t);
    let mut sum = vec![0f32; m.n_labels()];
    for (i, f) in input.chunks_exact(c_in).enumerate() {
        let o = m.net.step(&mut st, f, Mode::Event);
        if i >= start {
            sum.iter_mut().zip(o).for_each(|(s, v)| *s += v);
        }
    }
    argmax(&sum)
}
