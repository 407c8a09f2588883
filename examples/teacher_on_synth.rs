//! How often the keyword teacher hears a synthetic command word as that word, per voice
//! family (the text before the first '-' of a clip's speaker name): which engines' clips
//! teach the student a word, and which only `_unknown_` (the teacher labels every clip).
//!
//!     cargo run --release --features teacher --example teacher_on_synth -- DIR...
//!
//! DIR holds `WORD/VOICE_nohash_N.wav` (`spikeword data synth`, `scripts/neural_tts.py`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use spikeword::audio::load_wav;
use spikeword::teacher::{KEYWORD_TEACHER, KeywordTeacher};
use spikeword::util::{argmax, parallel_map};

/// (word, voice family, path) of every clip of the teacher's ten command words.
fn command_clips(dir: &Path, words: &[&str]) -> anyhow::Result<Vec<(String, String, PathBuf)>> {
    let mut out = Vec::new();
    for word in words {
        let Ok(entries) = std::fs::read_dir(dir.join(word)) else {
            continue;
        };
        for e in entries {
            let path = e?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let family = name
                .split(['-', '_'])
                .next()
                .unwrap_or_default()
                .to_string();
            out.push((word.to_string(), family, path));
        }
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let teacher =
        KeywordTeacher::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(KEYWORD_TEACHER))?;
    let labels = spikeword::teacher::keyword::LABELS;
    let words: Vec<&str> = labels
        .iter()
        .copied()
        .filter(|l| !l.starts_with('_'))
        .collect();
    for dir in std::env::args().skip(1) {
        let clips = command_clips(Path::new(&dir), &words)?;
        anyhow::ensure!(
            !clips.is_empty(),
            "{dir}: no clips of the ten command words (DIR/WORD/*.wav)"
        );
        let heard: Vec<Option<bool>> = parallel_map(&clips, |(word, _, path)| {
            let samples = load_wav(path, 16_000).ok()?;
            let p = teacher.probabilities(&samples).ok()?;
            Some(labels[argmax(&p)] == word)
        });
        let mut by_family: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for ((_, family, _), h) in clips.iter().zip(&heard) {
            let e = by_family.entry(family).or_default();
            e.0 += usize::from(*h == Some(true));
            e.1 += usize::from(h.is_some());
        }
        let unreadable = heard.iter().filter(|h| h.is_none()).count();
        println!(
            "{dir}: the keyword teacher's top label is the word spoken ({unreadable} unreadable files left out)"
        );
        for (family, (right, n)) in by_family {
            println!(
                "  {family:<10} {:5.1} %  ({right}/{n})",
                100.0 * right as f64 / n.max(1) as f64
            );
        }
    }
    Ok(())
}
