//! Waveform and spectrogram augmentation for training: time shift, gain, speed,
//! background noise at a random SNR, and SpecAugment-style masks.

use crate::audio::change_speed;
use crate::util::Rng;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AugmentConfig {
    /// Max shift in seconds, either way.
    pub shift_s: f32,
    /// Gain range in dB (±).
    pub gain_db: f32,
    /// Speed factor range (1 ± this); also shifts pitch, as tape speed does.
    pub speed: f32,
    /// Probability of mixing background noise, and the SNR range in dB.
    pub noise_prob: f32,
    pub snr_db: (f32, f32),
    /// SpecAugment: max bands and frames masked.
    pub freq_mask: usize,
    pub time_mask: usize,
    /// Seconds of left context (noise, other speech, silence or zero state) put before
    /// each clip; the loss only sees the clip's frames. Teaches the network to classify a
    /// word whatever came before it, so a stream and an isolated clip agree.
    #[serde(default)]
    pub context_s: f32,
    /// Probability of mixing a second training clip into an example, at a random ratio
    /// (its label stays the first clip's; a teacher labels the mixture as heard).
    #[serde(default)]
    pub mixup: f32,
    /// Vocal-tract-length perturbation: each clip's spectrum warped by a factor drawn
    /// from 1 ± this (0: off), as a longer or shorter vocal tract would.
    #[serde(default)]
    pub vtlp: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            shift_s: 0.1,
            gain_db: 6.0,
            speed: 0.08,
            noise_prob: 0.6,
            snr_db: (5.0, 30.0),
            freq_mask: 4,
            time_mask: 8,
            context_s: 0.64,
            mixup: 0.0,
            vtlp: 0.0,
        }
    }
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// A random `len`-sample crop of a noise recording.
pub fn noise_crop(noise: &[f32], len: usize, rng: &mut Rng) -> Vec<f32> {
    if noise.len() <= len {
        return crate::audio::fit_length(noise, len);
    }
    let s = rng.below(noise.len() - len);
    noise[s..s + len].to_vec()
}

/// Augments a clip (length kept).
pub fn augment_wave(
    x: &[f32],
    noises: &[Vec<f32>],
    cfg: &AugmentConfig,
    sr: u32,
    rng: &mut Rng,
) -> Vec<f32> {
    let len = x.len();
    let mut y = if cfg.speed > 0.0 {
        change_speed(x, rng.range(1.0 - cfg.speed, 1.0 + cfg.speed), len)
    } else {
        x.to_vec()
    };
    // Drawn only when on, so that runs without it repeat their random sequence.
    if cfg.vtlp > 0.0 {
        let alpha = rng.range(1.0 - cfg.vtlp, 1.0 + cfg.vtlp);
        y = super::vtlp::warp(&y, alpha, sr);
    }
    let max_shift = (cfg.shift_s * sr as f32) as i64;
    if max_shift > 0 {
        let shift = rng.below(2 * max_shift as usize + 1) as i64 - max_shift;
        let mut z = vec![0.0; len];
        for (i, v) in y.iter().enumerate() {
            let j = i as i64 + shift;
            if (0..len as i64).contains(&j) {
                z[j as usize] = *v;
            }
        }
        y = z;
    }
    let gain = 10f32.powf(rng.range(-cfg.gain_db, cfg.gain_db) / 20.0);
    y.iter_mut().for_each(|v| *v *= gain);
    if !noises.is_empty() && rng.uniform() < cfg.noise_prob {
        let n = noise_crop(&noises[rng.below(noises.len())], len, rng);
        let (ps, pn) = (rms(&y), rms(&n));
        if pn > 1e-6 {
            let snr = rng.range(cfg.snr_db.0, cfg.snr_db.1);
            let scale = if ps > 1e-6 {
                ps / (pn * 10f32.powf(snr / 20.0))
            } else {
                rng.range(0.0, 1.0)
            };
            for (a, b) in y.iter_mut().zip(&n) {
                *a += b * scale;
            }
        }
    }
    y.iter_mut().for_each(|v| *v = v.clamp(-1.0, 1.0));
    y
}

/// Adds `other` to `y` at a level between 0.1 and 0.5 of `y`'s own (by RMS): a second
/// voice or word behind the first.
pub fn mix_in(y: &mut [f32], other: &[f32], rng: &mut Rng) {
    let (py, po) = (rms(y), rms(other));
    if po < 1e-6 {
        return;
    }
    let scale = rng.range(0.1, 0.5) * py.max(1e-3) / po;
    for (a, b) in y.iter_mut().zip(other) {
        *a = (*a + b * scale).clamp(-1.0, 1.0);
    }
}

/// A silence example: a noise crop at a random level (sometimes digital silence).
pub fn silence_clip(noises: &[Vec<f32>], len: usize, rng: &mut Rng) -> Vec<f32> {
    if noises.is_empty() || rng.uniform() < 0.1 {
        return (0..len).map(|_| rng.normal() * 1e-4).collect();
    }
    let n = noise_crop(&noises[rng.below(noises.len())], len, rng);
    let g = rng.range(0.0, 1.0).powi(2) * 2.0;
    n.iter().map(|v| (v * g).clamp(-1.0, 1.0)).collect()
}

/// Zeroes (= the training mean after normalisation) random bands and frames of
/// `frames × bands` normalised features.
pub fn spec_augment(x: &mut [f32], n_mels: usize, cfg: &AugmentConfig, rng: &mut Rng) {
    let t = x.len() / n_mels;
    if cfg.freq_mask > 0 {
        let w = rng.below(cfg.freq_mask + 1);
        let f0 = rng.below(n_mels - w.min(n_mels) + 1);
        for f in x.chunks_exact_mut(n_mels) {
            f[f0..(f0 + w).min(n_mels)].fill(0.0);
        }
    }
    if cfg.time_mask > 0 && t > 0 {
        let w = rng.below(cfg.time_mask + 1).min(t);
        let t0 = rng.below(t - w + 1);
        x[t0 * n_mels..(t0 + w) * n_mels].fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn augmentation_keeps_length_and_is_seeded() {
        let x: Vec<f32> = (0..16000).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
        let noise = vec![
            (0..40000)
                .map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.5)
                .collect::<Vec<f32>>(),
        ];
        let cfg = AugmentConfig::default();
        let a = augment_wave(&x, &noise, &cfg, 16000, &mut Rng::new(1));
        let b = augment_wave(&x, &noise, &cfg, 16000, &mut Rng::new(1));
        let c = augment_wave(&x, &noise, &cfg, 16000, &mut Rng::new(2));
        assert_eq!(a.len(), 16000);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn speed_change_shortens_the_content() {
        let x: Vec<f32> = vec![1.0; 1000];
        let y = change_speed(&x, 2.0, 1000);
        let nonzero = y.iter().filter(|v| **v != 0.0).count();
        assert!((490..=510).contains(&nonzero), "{nonzero}");
    }
}
