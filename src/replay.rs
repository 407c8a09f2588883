//! Replay carried inside a model file: a few clips of every class the model knows (its
//! training and validation speakers) and background noise, so that `retrain` can protect
//! the old words on a machine with nothing but the model file. The audio is kept at the
//! lowest rate that holds the model's mel bands (8 kHz for bands up to 4 kHz), µ-law
//! coded in one byte a sample: about 8 KB a clip.

use serde::{Deserialize, Serialize};

use crate::audio::resample;

/// Which use a stored clip is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Fitted on (training speakers).
    Train,
    /// Measured on (validation speakers): what the new words may not take.
    Validation,
    /// Background noise for augmentation and `_silence_` (training noise).
    Noise,
    /// Noise held apart from `Noise`, for the report.
    NoiseValidation,
}

/// One stored recording, decoded, at the store's rate.
#[derive(Debug, Clone)]
pub struct StoredClip {
    /// The word said (its folder in Speech Commands; `retrain` maps it to a class of the
    /// new labels, as it does a replay folder's); empty for noise.
    pub word: String,
    pub part: Part,
    pub samples: Vec<f32>,
}

/// Replay clips at `rate`.
#[derive(Debug, Clone, Default)]
pub struct ReplayStore {
    pub rate: u32,
    pub clips: Vec<StoredClip>,
}

/// How a clip lies in the file's byte tensor.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    word: String,
    part: Part,
    len: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Index {
    rate: u32,
    clips: Vec<Entry>,
}

/// Name of the byte tensor in the model file.
pub const TENSOR: &str = "replay.mulaw";

/// Most bytes a file's replay may hold (a bound on what a model file may ask to decode).
const MAX_BYTES: usize = 64 << 20;

const MU: f32 = 255.0;

fn mulaw_encode(x: f32) -> u8 {
    let x = x.clamp(-1.0, 1.0);
    let y = x.signum() * (1.0 + MU * x.abs()).ln() / (1.0 + MU).ln();
    ((y + 1.0) * 127.5).round() as u8
}

fn mulaw_decode(b: u8) -> f32 {
    let y = b as f32 / 127.5 - 1.0;
    y.signum() * ((1.0 + MU).powf(y.abs()) - 1.0) / MU
}

/// The storage rate for a model whose mel bands reach `f_max` Hz: the lowest multiple
/// of 4 kHz at or above twice it, at most the model's `rate`.
pub fn storage_rate(f_max: f32, rate: u32) -> u32 {
    let need = (2.0 * f_max / 4000.0).ceil().max(1.0) as u32 * 4000;
    need.min(rate)
}

impl ReplayStore {
    /// A store at `rate` of (word, part, samples) given at `from` Hz (resampled when the
    /// rates differ); µ-law coding happens when it is written (`coded`: as read back).
    pub fn from_clips(
        rate: u32,
        from: u32,
        clips: Vec<(String, Part, Vec<f32>)>,
    ) -> Result<ReplayStore, String> {
        let clips = clips
            .into_iter()
            .map(|(word, part, x)| {
                let samples = if from == rate {
                    x
                } else {
                    resample(&x, from, rate).map_err(|e| e.to_string())?
                };
                Ok(StoredClip {
                    word,
                    part,
                    samples,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ReplayStore { rate, clips })
    }

    /// The store as its file holds it (µ-law coded).
    pub fn coded(&self) -> ReplayStore {
        let (index, bytes) = self.encode();
        ReplayStore::decode(&index, &bytes).expect("its own encoding")
    }

    /// The clips of `part`, at `rate` Hz.
    pub fn part_at(&self, part: Part, rate: u32) -> Vec<(&str, Vec<f32>)> {
        self.clips
            .iter()
            .filter(|c| c.part == part)
            .filter_map(|c| {
                let x = if rate == self.rate {
                    c.samples.clone()
                } else {
                    resample(&c.samples, self.rate, rate).ok()?
                };
                Some((c.word.as_str(), x))
            })
            .collect()
    }

    /// The index (metadata JSON) and the bytes of the file's tensor.
    pub fn encode(&self) -> (String, Vec<u8>) {
        let index = Index {
            rate: self.rate,
            clips: self
                .clips
                .iter()
                .map(|c| Entry {
                    word: c.word.clone(),
                    part: c.part,
                    len: c.samples.len(),
                })
                .collect(),
        };
        let bytes = self
            .clips
            .iter()
            .flat_map(|c| c.samples.iter().map(|v| mulaw_encode(*v)))
            .collect();
        (
            serde_json::to_string(&index).expect("index serialises"),
            bytes,
        )
    }

    /// Reads what `encode` wrote; refuses an index that does not match the bytes.
    pub fn decode(index: &str, bytes: &[u8]) -> Result<ReplayStore, String> {
        let index: Index = serde_json::from_str(index).map_err(|e| format!("replay index: {e}"))?;
        if !(1000..=192_000).contains(&index.rate) {
            return Err(format!("replay rate {} Hz", index.rate));
        }
        let total = index
            .clips
            .iter()
            .try_fold(0usize, |n, c| n.checked_add(c.len))
            .filter(|n| *n <= MAX_BYTES);
        if total != Some(bytes.len()) {
            return Err(format!(
                "replay: the index holds {:?} samples, the tensor {} bytes",
                total,
                bytes.len()
            ));
        }
        let mut at = 0;
        let clips = index
            .clips
            .into_iter()
            .map(|e| {
                let samples = bytes[at..at + e.len]
                    .iter()
                    .map(|b| mulaw_decode(*b))
                    .collect();
                at += e.len;
                StoredClip {
                    word: e.word,
                    part: e.part,
                    samples,
                }
            })
            .collect();
        Ok(ReplayStore {
            rate: index.rate,
            clips,
        })
    }

    /// Clips per part, for `info` and reports.
    pub fn count(&self, part: Part) -> usize {
        self.clips.iter().filter(|c| c.part == part).count()
    }

    pub fn bytes(&self) -> usize {
        self.clips.iter().map(|c| c.samples.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulaw_keeps_quiet_and_loud_samples_close() {
        for x in [-1.0f32, -0.3, -0.01, -1e-4, 0.0, 2e-4, 0.02, 0.5, 1.0] {
            let y = mulaw_decode(mulaw_encode(x));
            assert!((x - y).abs() <= 0.03 * x.abs() + 2e-4, "{x} -> {y}");
        }
    }

    #[test]
    fn a_store_survives_its_bytes_and_bad_indexes_are_refused() {
        let x: Vec<f32> = (0..1600).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
        let s = ReplayStore::from_clips(
            8000,
            16000,
            vec![
                ("yes".into(), Part::Train, x.clone()),
                (String::new(), Part::Noise, x[..800].to_vec()),
            ],
        )
        .unwrap();
        assert_eq!(s.clips[0].samples.len(), 800);
        let (index, bytes) = s.encode();
        let back = ReplayStore::decode(&index, &bytes).unwrap();
        assert_eq!(back.clips.len(), 2);
        assert_eq!(back.clips[0].samples, s.coded().clips[0].samples);
        let err = s.clips[0].samples.iter().zip(&back.clips[0].samples);
        assert!(err.map(|(a, b)| (a - b).abs()).fold(0.0, f32::max) < 0.01);
        assert_eq!(back.count(Part::Noise), 1);
        assert_eq!(back.part_at(Part::Train, 16000)[0].1.len(), 1600);
        assert!(ReplayStore::decode(&index, &bytes[1..]).is_err());
        assert!(ReplayStore::decode("{\"rate\": 0, \"clips\": []}", &[]).is_err());
        assert!(ReplayStore::decode("[", &bytes).is_err());
    }

    #[test]
    fn the_storage_rate_holds_the_bands() {
        assert_eq!(storage_rate(4000.0, 16000), 8000);
        assert_eq!(storage_rate(7600.0, 16000), 16000);
        assert_eq!(storage_rate(4000.0, 8000), 8000);
        assert_eq!(storage_rate(3000.0, 16000), 8000);
    }
}
