//! New words from few examples, the speech embedding (teacher) and a spiking model
//! (student) side by side on the same clips: the ten FSDD digits taught from the first `k`
//! recordings per digit of one speaker, the recordings of every other speaker classified
//! among the ten digits by the nearest class mean (cosine, centred on the examples' mean).
//! The teacher's features are its 96-d vectors averaged over a clip's windows; the
//! student's are what `retrain` fits its readout on (the last layer's time-weighted spike
//! counts of every network). Each accuracy with its 95 % interval, and the gap.
//!
//!     SPIKEWORD_FSDD=DIR cargo run --release --features teacher --example fsdd_teacher_vs_student -- [MODEL[@N]] [SPEAKER] [K,K,...]
//!
//! `MODEL@N` takes network N of an ensemble alone. Defaults: the bundled model, speaker
//! jackson, k = 1 and 10. FSDD never enters training,
//! so both see these voices and words for the first time.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use spikeword::audio::fit_length;
use spikeword::eval::accuracy_with_interval;
use spikeword::features::with_mel_frame;
use spikeword::teacher::{SPEECH_EMBEDDING, SpeechEmbedding};
use spikeword::train::readout_fit::{FeatureSets, features};
use spikeword::util::parallel_map;
use spikeword::{Model, load_wav};

const DIGITS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

/// One FSDD recording: digit, speaker, take.
struct Rec {
    path: PathBuf,
    digit: usize,
    speaker: String,
    take: usize,
}

fn recordings(root: &Path) -> Result<Vec<Rec>> {
    let mut out = Vec::new();
    for (digit, w) in DIGITS.iter().enumerate() {
        let dir = root.join(w);
        let entries = std::fs::read_dir(&dir).with_context(|| dir.display().to_string())?;
        for e in entries {
            let path = e?.path();
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            // <digit>_<speaker>_<take>.wav
            let parts: Vec<&str> = stem.split('_').collect();
            if let [_, speaker, take] = parts.as_slice()
                && let Ok(take) = take.parse()
            {
                let speaker = speaker.to_string();
                out.push(Rec {
                    path,
                    digit,
                    speaker,
                    take,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Nearest class mean (cosine) of `test` against the class means of `train`, all centred
/// on the training features' mean: the share of right answers.
fn nearest_mean(feats: &[Vec<f32>], recs: &[Rec], train: &[usize], test: &[usize]) -> usize {
    let d = feats[0].len();
    let mut centre = vec![0.0f32; d];
    for &i in train {
        centre.iter_mut().zip(&feats[i]).for_each(|(c, x)| *c += x);
    }
    centre.iter_mut().for_each(|c| *c /= train.len() as f32);
    let unit = |i: usize| -> Vec<f32> {
        let v: Vec<f32> = feats[i].iter().zip(&centre).map(|(x, c)| x - c).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
        v.into_iter().map(|x| x / n).collect()
    };
    let mut means = vec![vec![0.0f32; d]; DIGITS.len()];
    for &i in train {
        means[recs[i].digit]
            .iter_mut()
            .zip(unit(i))
            .for_each(|(m, x)| *m += x);
    }
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    test.iter()
        .filter(|&&i| {
            let u = unit(i);
            let best = (0..DIGITS.len())
                .max_by(|&a, &b| dot(&u, &means[a]).total_cmp(&dot(&u, &means[b])))
                .unwrap_or(0);
            best == recs[i].digit
        })
        .count()
}

fn line(name: &str, correct: usize, n: usize) -> String {
    format!("  {name:<28} {}", accuracy_with_interval(correct, n))
}

/// `MODEL`, `MODEL@N` or `MODEL@A-B` (networks of an ensemble), default the bundled model.
fn load_student(arg: Option<&str>) -> Result<Model> {
    Ok(match arg {
        None => Model::load(&spikeword::model::default_model_path())?,
        Some(spec) => Model::load_spec(spec)?,
    })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let student = load_student(args.first().map(String::as_str))?;
    let speaker = args.get(1).cloned().unwrap_or_else(|| "jackson".into());
    let ks: Vec<usize> = match args.get(2) {
        Some(s) => s
            .split(',')
            .map(|k| k.parse().with_context(|| format!("k {k:?}")))
            .collect::<Result<_>>()?,
        None => vec![1, 10],
    };
    let root = std::env::var_os("SPIKEWORD_FSDD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data/fsdd"));
    let rate = student.config.features.sample_rate;
    let recs = recordings(&root)?;
    if !recs.iter().any(|r| r.speaker == speaker) {
        bail!("no recordings of speaker {speaker:?} in {}", root.display());
    }
    let clips: Vec<Vec<f32>> = parallel_map(&recs, |r| {
        load_wav(&r.path, rate).map(|x| fit_length(&x, rate as usize))
    })
    .into_iter()
    .collect::<Result<_, _>>()?;
    let teacher =
        SpeechEmbedding::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(SPEECH_EMBEDDING))?;
    let t_feats: Vec<Vec<f32>> = parallel_map(&clips, |x| {
        let windows = teacher.embed(x).expect("a 1 s clip has windows");
        let n = windows.len() as f32;
        (0..windows[0].len())
            .map(|d| windows.iter().map(|w| w[d]).sum::<f32>() / n)
            .collect()
    });
    let sets = FeatureSets::of(&student);
    let s_feats: Vec<Vec<f32>> = parallel_map(&clips, |x| {
        with_mel_frame(&student.config.features, |mf| {
            features(&student, mf, x, &sets)
        })
        .into_iter()
        .flatten()
        .flatten()
        .collect()
    });
    let test: Vec<usize> = (0..recs.len())
        .filter(|&i| recs[i].speaker != speaker)
        .collect();
    println!(
        "FSDD: the ten digits taught from {speaker}'s first k recordings, {} recordings of the other speakers classified (nearest class mean)",
        test.len()
    );
    for k in ks {
        let train: Vec<usize> = (0..recs.len())
            .filter(|&i| recs[i].speaker == speaker && recs[i].take < k)
            .collect();
        let t = nearest_mean(&t_feats, &recs, &train, &test);
        let s = nearest_mean(&s_feats, &recs, &train, &test);
        println!("k = {k} ({} examples):", train.len());
        println!("{}", line("teacher (speech_embedding)", t, test.len()));
        println!("{}", line("student (spike counts)", s, test.len()));
        println!(
            "  gap {:.1} points",
            100.0 * (t as f64 - s as f64) / test.len() as f64
        );
    }
    Ok(())
}
