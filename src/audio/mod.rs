//! Audio in: WAV decoding, resampling to the model rate, and the `AudioSource`
//! abstraction shared by files and the microphone.

pub mod live;
#[cfg(feature = "mic")]
pub mod mic;
pub mod resample;
pub mod source;
pub mod vad;
pub mod wav;

use std::path::Path;

pub use resample::{StreamResampler, resample};
pub use source::{AudioSource, FileSource, WavSource};

/// Everything that can go wrong reading audio; each variant prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("empty file")]
    Empty,
    #[error("not a WAV file (no RIFF/WAVE header)")]
    NotWav,
    #[error("truncated {0}")]
    Truncated(String),
    #[error("bad WAV header: {0}")]
    BadHeader(String),
    #[error("unsupported WAV: {0}")]
    Unsupported(String),
    #[error("non-finite (NaN or infinite) sample at frame {0}")]
    NonFinite(u64),
    #[error("float sample {1:e} at frame {0} is far outside [-1, 1]: corrupt data")]
    OutOfRange(u64, f32),
    #[error("resampler: {0}")]
    Resample(String),
    #[error("audio device: {0}")]
    Device(String),
    // Transparent: the I/O error is the message, not also its own cause (said twice).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads a whole WAV file as mono at `rate` Hz (mixing down and resampling as needed).
pub fn load_wav(path: &Path, rate: u32) -> Result<Vec<f32>, AudioError> {
    read_to_end(&mut FileSource::open(path, rate)?)
}

/// Every sample a source has left.
pub fn read_to_end(src: &mut impl AudioSource) -> Result<Vec<f32>, AudioError> {
    let mut out = Vec::new();
    while src.read(&mut out, 1 << 16)? > 0 {}
    Ok(out)
}

/// Centre-crops `x`, or centres it between zeros, to exactly `len` samples (GSC clips
/// are 1 s with the word near the middle, a few are shorter; a short recording of one
/// word is placed where the training clips have theirs).
pub fn fit_length(x: &[f32], len: usize) -> Vec<f32> {
    if x.len() >= len {
        let start = (x.len() - len) / 2;
        x[start..start + len].to_vec()
    } else {
        let mut v = vec![0.0; (len - x.len()) / 2];
        v.extend_from_slice(x);
        v.resize(len, 0.0);
        v
    }
}

/// Resamples by linear interpolation to play `factor` times faster, then fits `len`.
pub fn change_speed(x: &[f32], factor: f32, len: usize) -> Vec<f32> {
    let n = ((x.len() as f32) / factor) as usize;
    let stretched: Vec<f32> = (0..n)
        .map(|i| {
            let p = i as f32 * factor;
            let j = p as usize;
            let f = p - j as f32;
            let a = x.get(j).copied().unwrap_or(0.0);
            let b = x.get(j + 1).copied().unwrap_or(0.0);
            a + (b - a) * f
        })
        .collect();
    fit_length(&stretched, len)
}
