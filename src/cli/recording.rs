//! The recording a command reads: a WAV file, or a WAV stream on standard input for `-`
//! (`sox in.flac -t wav - | spikeword detect -`, `arecord -f S16_LE -r 16000 | spikeword
//! listen --input -`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use spikeword::audio::{AudioError, AudioSource, FileSource, WavSource, read_to_end};
use spikeword::config::FeatureConfig;

pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// How the recording is named in messages.
pub fn name(path: &Path) -> String {
    match is_stdin(path) {
        true => "standard input".into(),
        false => path.display().to_string(),
    }
}

/// The recording, streamed in chunks at `rate` Hz (constant memory for any length).
pub fn open(path: &Path, rate: u32) -> Result<Box<dyn AudioSource + Send>> {
    // Waiting for a WAV header from the keyboard would look like a hang.
    if is_stdin(path) && std::io::stdin().is_terminal() {
        anyhow::bail!(
            "standard input is a terminal: pipe a WAV stream into `-` (e.g. `arecord -f S16_LE -r 16000 | spikeword detect -`)"
        );
    }
    source(path, rate).with_context(|| name(path))
}

/// The whole recording at `rate` Hz.
pub fn load(path: &Path, rate: u32) -> Result<Vec<f32>> {
    read_to_end(&mut open(path, rate)?).with_context(|| name(path))
}

/// The whole recording at `rate` Hz, its errors not yet named (for callers that report
/// many recordings their own way).
pub fn read(path: &Path, rate: u32) -> Result<Vec<f32>, AudioError> {
    read_to_end(&mut source(path, rate)?)
}

fn source(path: &Path, rate: u32) -> Result<Box<dyn AudioSource + Send>, AudioError> {
    Ok(match is_stdin(path) {
        // `Stdin` buffers its reads already.
        true => Box::new(WavSource::from_stream(std::io::stdin(), rate)?),
        false => Box::new(FileSource::open(path, rate)?),
    })
}

/// The recordings `paths` name: files and `-` as given, folders searched recursively for
/// WAV files (sorted).
pub fn expand_folders(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if !is_stdin(p) && p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found).with_context(|| p.display().to_string())?;
            // A folder named on purpose but holding nothing to read is a mistake (a wrong
            // path, files not yet copied), not an empty result.
            if found.is_empty() {
                anyhow::bail!("no WAV files in {}", p.display());
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")) {
            out.push(p);
        }
    }
    Ok(())
}

/// Refuses audio shorter than one analysis window: it has no feature frame at all, and
/// "0 frames" would read like a result.
pub fn check_long_enough(path: &Path, samples: usize, f: &FeatureConfig) -> Result<()> {
    match too_short(samples, f) {
        Some(why) => anyhow::bail!("{}: {why}", name(path)),
        None => Ok(()),
    }
}

/// Why `samples` of audio are too few to hear anything in, if they are.
pub fn too_short(samples: usize, f: &FeatureConfig) -> Option<String> {
    let ms = |n: usize| 1000.0 * n as f64 / f.sample_rate as f64;
    (samples < f.win_length).then(|| {
        format!(
            "{:.1} ms of audio is shorter than one {:.0} ms analysis window",
            ms(samples),
            ms(f.win_length)
        )
    })
}
