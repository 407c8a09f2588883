//! The MLPerf Tiny keyword model's front end, as its training pipeline computes it
//! (`get_dataset.py` of github.com/mlcommons/tiny): 1 s at 16 kHz divided by its largest
//! sample, |STFT| with 480-sample frames every 320 (periodic Hann, FFT 512), 40 mel bands
//! 20–4000 Hz (TensorFlow's HTK-scale triangles, no area normalisation, DC excluded),
//! `ln(mel + 1e-6)`, then the first 10 DCT-II coefficients (TensorFlow's orthonormal
//! scaling). The teacher only means anything on exactly this input.

use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

pub const SAMPLES: usize = 16_000;
pub const FRAMES: usize = 49;
pub const COEFFS: usize = 10;
const WINDOW: usize = 480;
const HOP: usize = 320;
const FFT: usize = 512;
const BANDS: usize = 40;
const BINS: usize = FFT / 2 + 1;

fn hz_to_mel(f: f64) -> f64 {
    1127.0 * (f / 700.0).ln_1p()
}

/// `[BINS][BANDS]` weights, row 0 (DC) zero, as `tf.signal.linear_to_mel_weight_matrix`.
fn mel_weights() -> Vec<[f64; BANDS]> {
    let (lo, hi) = (hz_to_mel(20.0), hz_to_mel(4000.0));
    let edge = |i: usize| lo + (hi - lo) * i as f64 / (BANDS + 1) as f64;
    let mut w = vec![[0.0; BANDS]; BINS];
    for (k, row) in w.iter_mut().enumerate().skip(1) {
        let m = hz_to_mel(8000.0 * k as f64 / (BINS - 1) as f64);
        for (b, v) in row.iter_mut().enumerate() {
            let (l, c, u) = (edge(b), edge(b + 1), edge(b + 2));
            *v = ((m - l) / (c - l)).min((u - m) / (u - c)).max(0.0);
        }
    }
    w
}

/// The MFCC front end with its tables and FFT plan built once.
pub struct Mfcc {
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    mel: Vec<[f64; BANDS]>,
    dct: Vec<[f64; COEFFS]>,
}

impl Default for Mfcc {
    fn default() -> Self {
        Self::new()
    }
}

impl Mfcc {
    pub fn new() -> Self {
        let n = BANDS as f64;
        let dct = (0..BANDS)
            .map(|i| {
                std::array::from_fn(|k| {
                    2.0 * (std::f64::consts::PI * k as f64 * (2 * i + 1) as f64 / (2.0 * n)).cos()
                        / (2.0 * n).sqrt()
                })
            })
            .collect();
        let window = (0..WINDOW)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / WINDOW as f64).cos())
            .collect();
        Mfcc {
            fft: RealFftPlanner::new().plan_fft_forward(FFT),
            window,
            mel: mel_weights(),
            dct,
        }
    }

    /// `FRAMES × COEFFS` coefficients (row-major) of the first second of `x` (zero-padded).
    pub fn compute(&self, x: &[f32]) -> Vec<f32> {
        let mut clip: Vec<f64> = x.iter().take(SAMPLES).map(|&v| v as f64).collect();
        clip.resize(SAMPLES, 0.0);
        // The pipeline divides by the maximum (not the absolute maximum); a clip with no
        // positive sample would divide by zero or flip sign, so it is scaled by its peak.
        let max = clip.iter().cloned().fold(f64::MIN, f64::max);
        let peak = clip.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let scale = if max > 1e-9 { max } else { peak.max(1e-9) };
        let mut input = vec![0.0; FFT];
        let mut spec = self.fft.make_output_vec();
        let mut out = Vec::with_capacity(FRAMES * COEFFS);
        for f in 0..FRAMES {
            let frame = &clip[f * HOP..f * HOP + WINDOW];
            for ((d, s), w) in input.iter_mut().zip(frame).zip(&self.window) {
                *d = s / scale * w;
            }
            input[WINDOW..].fill(0.0);
            self.fft
                .process(&mut input, &mut spec)
                .expect("buffers sized by the plan");
            let mut logmel = [0.0f64; BANDS];
            for (bin, w) in spec.iter().zip(&self.mel).skip(1) {
                let mag = bin.norm();
                for (m, wi) in logmel.iter_mut().zip(w) {
                    *m += mag * wi;
                }
            }
            logmel.iter_mut().for_each(|m| *m = (*m + 1e-6).ln());
            for k in 0..COEFFS {
                let c: f64 = logmel.iter().zip(&self.dct).map(|(m, d)| m * d[k]).sum();
                out.push(c as f32);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_triangles_peak_at_one_and_skip_dc() {
        let w = mel_weights();
        assert!(w[0].iter().all(|v| *v == 0.0));
        for b in 0..BANDS {
            let peak = w.iter().map(|r| r[b]).fold(0.0, f64::max);
            assert!(peak > 0.5 && peak <= 1.0, "band {b}: {peak}");
        }
        // Nothing above 4 kHz (bin 128).
        assert!(w[130..].iter().all(|r| r.iter().all(|v| *v == 0.0)));
    }

    #[test]
    fn shape_and_silence_are_finite() {
        let m = Mfcc::new();
        let z = m.compute(&[0.0; 100]);
        assert_eq!(z.len(), FRAMES * COEFFS);
        assert!(z.iter().all(|v| v.is_finite()));
        let neg: Vec<f32> = (0..16000).map(|i| -((i % 7) as f32) * 0.01).collect();
        assert!(m.compute(&neg).iter().all(|v| v.is_finite()));
    }
}
