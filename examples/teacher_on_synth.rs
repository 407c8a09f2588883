//! How often the keyword teacher hears a synthetic command word as that word, per voice
//! family (the text before the first '-' of a clip's speaker name): which engines' clips
//! teach the student a word, and which only `_unknown_` (the teacher labels every clip).
//!
//!     cargo run --release --features teacher --example teacher_on_synth -- DIR...
//!
//! DIR holds `WORD/VOICE_nohash_N.wav` (`spikeword data synth`, `scripts/neural_tts.py`),
//! read as `retrain` reads examples.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use spikeword::teacher::keyword::LABELS;
use spikeword::teacher::{KEYWORD_TEACHER, KeywordTeacher};
use spikeword::train::retrain::load_examples;
use spikeword::util::{argmax, parallel_map};

fn main() -> anyhow::Result<()> {
    let teacher =
        KeywordTeacher::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(KEYWORD_TEACHER))?;
    for dir in std::env::args().skip(1) {
        let mut warnings = Vec::new();
        let clips: Vec<_> = load_examples(&[PathBuf::from(&dir)], 16_000, &mut warnings)?
            .into_iter()
            .filter(|e| LABELS.contains(&e.word.as_str()))
            .collect();
        anyhow::ensure!(
            !clips.is_empty(),
            "{dir}: no clips of the ten command words"
        );
        let heard = parallel_map(&clips, |e| {
            let p = teacher.probabilities(&e.samples)?;
            anyhow::Ok(LABELS[argmax(&p)] == e.word)
        });
        let mut by_family: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (e, h) in clips.iter().zip(heard) {
            let family = e.speaker.split('-').next().unwrap_or_default();
            let entry = by_family.entry(family).or_default();
            entry.0 += usize::from(h?);
            entry.1 += 1;
        }
        println!("{dir}: the keyword teacher's top label is the word spoken");
        for (family, (right, n)) in by_family {
            println!(
                "  {family:<10} {:5.1} %  ({right}/{n})",
                100.0 * right as f64 / n as f64
            );
        }
        for w in warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(())
}
