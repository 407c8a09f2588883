//! Normalised log-mel frames → network input (spikes or currents), one frame at a
//! time with state carried over, so the same encoder serves files and live audio.

use crate::config::EncoderConfig;
use crate::util::Rng;

/// A frame-by-frame encoder.
pub trait Encoder: Send {
    /// Channels per output frame.
    fn out_channels(&self) -> usize;
    /// Encodes one normalised frame into `out`; returns the number of spikes emitted
    /// (0 for analog pass-through).
    fn encode(&mut self, frame: &[f32], out: &mut [f32]) -> usize;
    /// Forgets the past (start of a new clip).
    fn reset(&mut self);
}

/// Analog values passed through: the first LIF layer encodes them by current injection.
pub struct CurrentEncoder {
    n: usize,
}

impl Encoder for CurrentEncoder {
    fn out_channels(&self) -> usize {
        self.n
    }
    fn encode(&mut self, frame: &[f32], out: &mut [f32]) -> usize {
        out.copy_from_slice(frame);
        0
    }
    fn reset(&mut self) {}
}

/// Send-on-delta, as a silicon cochlea: band `i` emits an ON spike (channel `2i`) when its
/// value rose by `threshold` since its last spike, an OFF spike (channel `2i+1`) when it fell
/// by as much; the reference then moves to the current value.
pub struct DeltaEncoder {
    threshold: f32,
    reference: Vec<f32>,
    primed: bool,
}

impl DeltaEncoder {
    pub fn new(n_mels: usize, threshold: f32) -> Self {
        DeltaEncoder {
            threshold,
            reference: vec![0.0; n_mels],
            primed: false,
        }
    }
}

impl Encoder for DeltaEncoder {
    fn out_channels(&self) -> usize {
        2 * self.reference.len()
    }
    fn encode(&mut self, frame: &[f32], out: &mut [f32]) -> usize {
        out.fill(0.0);
        if !self.primed {
            // The first frame sets the reference: no change has been seen yet.
            self.reference.copy_from_slice(frame);
            self.primed = true;
            return 0;
        }
        let mut count = 0;
        for (i, (&x, r)) in frame.iter().zip(self.reference.iter_mut()).enumerate() {
            let d = x - *r;
            if d >= self.threshold {
                out[2 * i] = 1.0;
                *r = x;
                count += 1;
            } else if d <= -self.threshold {
                out[2 * i + 1] = 1.0;
                *r = x;
                count += 1;
            }
        }
        count
    }
    fn reset(&mut self) {
        self.primed = false;
    }
}

/// Bernoulli rate code: spike probability `max_prob · sigmoid(x)` per frame, from a seeded
/// generator so a model's outputs are reproducible.
pub struct RateEncoder {
    n: usize,
    max_prob: f32,
    seed: u64,
    rng: Rng,
}

impl RateEncoder {
    pub fn new(n_mels: usize, max_prob: f32, seed: u64) -> Self {
        RateEncoder {
            n: n_mels,
            max_prob,
            seed,
            rng: Rng::new(seed),
        }
    }
}

impl Encoder for RateEncoder {
    fn out_channels(&self) -> usize {
        self.n
    }
    fn encode(&mut self, frame: &[f32], out: &mut [f32]) -> usize {
        let mut count = 0;
        for (o, &x) in out.iter_mut().zip(frame) {
            let p = self.max_prob / (1.0 + (-x).exp());
            let s = self.rng.uniform() < p;
            *o = s as u8 as f32;
            count += s as usize;
        }
        count
    }
    fn reset(&mut self) {
        self.rng = Rng::new(self.seed);
    }
}

/// Builds the encoder a config describes.
pub fn build(cfg: &EncoderConfig, n_mels: usize) -> Box<dyn Encoder> {
    match *cfg {
        EncoderConfig::Current => Box::new(CurrentEncoder { n: n_mels }),
        EncoderConfig::Delta { threshold } => Box::new(DeltaEncoder::new(n_mels, threshold)),
        EncoderConfig::Rate { max_prob, seed } => {
            Box::new(RateEncoder::new(n_mels, max_prob, seed))
        }
    }
}

/// Encodes a whole clip (frames × bands, already normalised) into frames × channels;
/// returns the data and the spike count.
pub fn encode_clip(cfg: &EncoderConfig, frames: &[f32], n_mels: usize) -> (Vec<f32>, usize) {
    let mut enc = build(cfg, n_mels);
    let c = enc.out_channels();
    let t = frames.len() / n_mels;
    let mut out = vec![0.0; t * c];
    let mut count = 0;
    for (f, o) in frames.chunks_exact(n_mels).zip(out.chunks_exact_mut(c)) {
        count += enc.encode(f, o);
    }
    (out, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_fires_on_and_off_and_tracks_the_reference() {
        let mut e = DeltaEncoder::new(1, 0.5);
        let mut out = [0.0; 2];
        let xs = [0.0, 0.2, 0.6, 0.7, 1.2, 0.5, 0.4];
        let mut got = Vec::new();
        for x in xs {
            let n = e.encode(&[x], &mut out);
            got.push((n, out));
        }
        // 0.0 primes; 0.6 >= 0+0.5 → ON; 1.2 >= 0.6+0.5 → ON; 0.5 <= 1.2-0.5 → OFF.
        let expect = [
            [0.0, 0.0],
            [0.0, 0.0],
            [1.0, 0.0],
            [0.0, 0.0],
            [1.0, 0.0],
            [0.0, 1.0],
            [0.0, 0.0],
        ];
        for (i, (n, o)) in got.iter().enumerate() {
            assert_eq!(*o, expect[i], "frame {i}");
            assert_eq!(*n, o.iter().sum::<f32>() as usize);
        }
    }

    #[test]
    fn delta_is_the_same_streamed_or_whole() {
        let frames: Vec<f32> = (0..200)
            .map(|i| ((i * 37 % 11) as f32 * 0.3).sin())
            .collect();
        let (whole, n) = encode_clip(&EncoderConfig::Delta { threshold: 0.3 }, &frames, 4);
        let mut e = DeltaEncoder::new(4, 0.3);
        let mut streamed = vec![0.0; whole.len()];
        let mut m = 0;
        for (f, o) in frames.chunks(4).zip(streamed.chunks_mut(8)) {
            m += e.encode(f, o);
        }
        assert_eq!(whole, streamed);
        assert_eq!(n, m);
        assert!(n > 0);
    }

    #[test]
    fn rate_follows_the_value() {
        let mut e = RateEncoder::new(2, 1.0, 7);
        let mut out = [0.0; 2];
        let (mut lo, mut hi) = (0, 0);
        for _ in 0..2000 {
            e.encode(&[-3.0, 3.0], &mut out);
            lo += out[0] as usize;
            hi += out[1] as usize;
        }
        // sigmoid(-3) ≈ 0.047, sigmoid(3) ≈ 0.953.
        assert!((50..150).contains(&lo), "{lo}");
        assert!((1850..1960).contains(&hi), "{hi}");
    }
}
