//! Streaming sample-rate conversion to the model rate, on rubato's FFT resampler.
//!
//! Fed any number of samples at a time; output is the same whatever the chunking,
//! with the resampler's start-up delay trimmed so that output sample 0 lines up
//! with input sample 0.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::AudioError;

const CHUNK: usize = 1024;

pub struct StreamResampler {
    inner: Option<Fft<f32>>,
    pending: Vec<f32>,
    out_buf: Vec<f32>,
    /// Output frames still to drop (the resampler's delay).
    skip: usize,
    ratio: f64,
    consumed: u64,
    produced: u64,
}

impl StreamResampler {
    /// A converter from `from` Hz to `to` Hz (a pass-through when they are equal).
    pub fn new(from: u32, to: u32) -> Result<Self, AudioError> {
        let inner = if from == to {
            None
        } else {
            Some(
                Fft::<f32>::new(from as usize, to as usize, CHUNK, 1, FixedSync::Input)
                    .map_err(|e| AudioError::Resample(e.to_string()))?,
            )
        };
        let (skip, out_max) = inner
            .as_ref()
            .map(|r| (r.output_delay(), r.output_frames_max()))
            .unwrap_or((0, 0));
        Ok(StreamResampler {
            inner,
            pending: Vec::with_capacity(CHUNK),
            out_buf: vec![0.0; out_max],
            skip,
            ratio: to as f64 / from as f64,
            consumed: 0,
            produced: 0,
        })
    }

    /// Converts `input`, appending what is ready to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), AudioError> {
        let Some(_) = self.inner else {
            out.extend_from_slice(input);
            return Ok(());
        };
        self.consumed += input.len() as u64;
        let mut rest = input;
        while !rest.is_empty() {
            let take = (CHUNK - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == CHUNK {
                self.run_chunk(None, out)?;
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// Flushes the tail: after this, the output holds `round(n_in * ratio)` samples in all.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), AudioError> {
        if self.inner.is_none() {
            return Ok(());
        }
        let target = (self.consumed as f64 * self.ratio).round() as u64;
        let mut guard = 0;
        while self.produced < target && guard < 64 {
            let n = self.pending.len();
            self.pending.resize(CHUNK, 0.0);
            let idx = Indexing {
                partial_len: Some(n),
                ..Default::default()
            };
            self.run_chunk(Some(&idx), out)?;
            self.pending.clear();
            guard += 1;
        }
        if self.produced > target {
            let extra = (self.produced - target) as usize;
            out.truncate(out.len().saturating_sub(extra));
            self.produced = target;
        }
        Ok(())
    }

    fn run_chunk(&mut self, idx: Option<&Indexing>, out: &mut Vec<f32>) -> Result<(), AudioError> {
        let r = self.inner.as_mut().expect("resampler present");
        let input = InterleavedSlice::new(&self.pending[..], 1, CHUNK)
            .map_err(|e| AudioError::Resample(e.to_string()))?;
        let frames = self.out_buf.len();
        let mut output = InterleavedSlice::new_mut(&mut self.out_buf[..], 1, frames)
            .map_err(|e| AudioError::Resample(e.to_string()))?;
        let (_, n_out) = r
            .process_into_buffer(&input, &mut output, idx)
            .map_err(|e| AudioError::Resample(e.to_string()))?;
        let drop = self.skip.min(n_out);
        self.skip -= drop;
        out.extend_from_slice(&self.out_buf[drop..n_out]);
        self.produced += (n_out - drop) as u64;
        Ok(())
    }
}

/// Resamples a whole buffer (convenience over the streaming converter).
pub fn resample(input: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    let mut r = StreamResampler::new(from, to)?;
    let mut out = Vec::with_capacity((input.len() as f64 * to as f64 / from as f64) as usize + 8);
    r.push(input, &mut out)?;
    r.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn upsampling_8k_keeps_a_tone_and_the_length() {
        let x = sine(440.0, 8000, 8000);
        let y = resample(&x, 8000, 16000).unwrap();
        assert_eq!(y.len(), 16000);
        // Compare with the ideal 16 kHz tone away from the edges.
        let ideal = sine(440.0, 16000, 16000);
        let err: f32 = (2000..14000)
            .map(|i| (y[i] - ideal[i]).abs())
            .fold(0.0, f32::max);
        assert!(err < 0.02, "max error {err}");
    }

    #[test]
    fn chunking_does_not_change_the_output() {
        let x = sine(1000.0, 44100, 20000);
        let whole = resample(&x, 44100, 16000).unwrap();
        let mut r = StreamResampler::new(44100, 16000).unwrap();
        let mut out = Vec::new();
        for c in x.chunks(333) {
            r.push(c, &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        assert_eq!(whole.len(), out.len());
        for (a, b) in whole.iter().zip(&out) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}
