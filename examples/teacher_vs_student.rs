//! The keyword teacher and a spiking student side by side on the same held-out clips, each
//! accuracy with its 95 % interval, and the gap.
//!
//!     SPIKEWORD_DATA=DIR cargo run --release --features teacher --example teacher_vs_student -- [MODEL] [test|validation]
//!
//! The split is the student's own (its training record). The teacher (the MLPerf DS-CNN)
//! trained on the official archive's training split, so on a folder whose clips may come
//! from there (the shared subset holds ~500 such) its figure is optimistic.

use std::path::{Path, PathBuf};

use spikeword::Model;
use spikeword::data::{Dataset, Split, load_labeled};
use spikeword::eval::{accuracy_with_interval, evaluate, model_split_rule};
use spikeword::teacher::{KEYWORD_TEACHER, KeywordTeacher};
use spikeword::util::{argmax, parallel_map};

fn line(name: &str, correct: usize, n: usize) -> String {
    format!("{name:<10} {}", accuracy_with_interval(correct, n))
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(spikeword::model::default_model_path);
    let split = match args.next().as_deref() {
        None | Some("test") => Split::Test,
        Some("validation") => Split::Validation,
        Some(s) => anyhow::bail!("split {s:?}: test or validation"),
    };
    let root = std::env::var_os("SPIKEWORD_DATA")
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("set SPIKEWORD_DATA to a Speech Commands folder"))?;
    let student = Model::load(&path)?;
    let labels = student.labels().to_vec();
    let ds = Dataset::scan(&root, &model_split_rule(&student)?)?;
    let (clips, _) = load_labeled(&ds, Some(split), &labels, 16_000);
    let teacher =
        KeywordTeacher::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(KEYWORD_TEACHER))?;
    let map = KeywordTeacher::mapping(&labels)?;
    let t_right: Vec<bool> = parallel_map(&clips, |c| {
        let p = teacher
            .probabilities(&c.samples)
            .expect("teacher runs on a 1 s clip");
        let ours: Vec<f32> = map.iter().map(|&i| p[i]).collect();
        argmax(&ours) == c.label
    });
    let (rep, outs) = evaluate(&student, &clips);
    let s_right: Vec<bool> = outs
        .iter()
        .zip(&clips)
        .map(|(o, c)| argmax(&o.probs) == c.label)
        .collect();
    let n = clips.len();
    let (t, s) = (
        t_right.iter().filter(|r| **r).count(),
        s_right.iter().filter(|r| **r).count(),
    );
    let both = t_right
        .iter()
        .zip(&s_right)
        .filter(|(a, b)| **a && **b)
        .count();
    println!(
        "{} clips of the {:?} speakers of {}",
        n,
        split,
        root.display()
    );
    println!("{}", line("teacher", t, n));
    println!("{}", line("student", s, n));
    println!(
        "gap {:+.2} points; both right {both}, teacher only {}, student only {}; student {:.2} Hz",
        100.0 * (s as f64 - t as f64) / n.max(1) as f64,
        t - both,
        s - both,
        rep.firing_rate_hz
    );
    Ok(())
}
