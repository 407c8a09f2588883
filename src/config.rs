//! Every knob of the pipeline, in serialisable structs stored inside each model file,
//! so a model always runs with the features, encoder and network it was trained with.

use serde::{Deserialize, Serialize};

/// Log-mel front end. Defaults are the seed paper's (Pellegrini et al. 2021, s2net).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureConfig {
    pub sample_rate: u32,
    pub n_mels: usize,
    pub fmin: f32,
    pub fmax: f32,
    /// Window (and FFT) length in samples: 30 ms.
    pub win_length: usize,
    /// Hop in samples: 10 ms.
    pub hop_length: usize,
    /// log(eps + mel power).
    pub log_eps: f32,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            sample_rate: 16_000,
            n_mels: 40,
            fmin: 20.0,
            fmax: 4000.0,
            win_length: 480,
            hop_length: 160,
            log_eps: 1e-6,
        }
    }
}

impl FeatureConfig {
    /// Frames per second of audio.
    pub fn frame_rate(&self) -> f32 {
        self.sample_rate as f32 / self.hop_length as f32
    }
    /// Frames for `n` samples without centre padding (librosa `center=False`).
    pub fn n_frames(&self, n: usize) -> usize {
        if n < self.win_length {
            0
        } else {
            1 + (n - self.win_length) / self.hop_length
        }
    }
    /// Checks every field: a model file is user input, and a front end of absurd sizes
    /// would make the pipeline panic, or run for hours, on the first clip.
    pub fn validate(&self) -> Result<(), String> {
        if !(1000..=192_000).contains(&self.sample_rate) {
            return Err(format!(
                "sample rate {} Hz (1000 to 192000)",
                self.sample_rate
            ));
        }
        let sr = self.sample_rate as usize;
        if !(16..=sr).contains(&self.win_length) {
            return Err(format!(
                "window of {} samples (16 up to one second, {sr})",
                self.win_length
            ));
        }
        if !(1..=self.win_length).contains(&self.hop_length) {
            return Err(format!(
                "hop of {} samples (1 up to the window, {})",
                self.hop_length, self.win_length
            ));
        }
        let bins = self.win_length / 2 + 1;
        if !(1..=bins.min(512)).contains(&self.n_mels) {
            return Err(format!(
                "{} mel bands (1 up to {}, the FFT bins of the window)",
                self.n_mels,
                bins.min(512)
            ));
        }
        if !(self.fmin >= 0.0
            && self.fmin < self.fmax
            && self.fmax <= self.sample_rate as f32 / 2.0)
        {
            return Err(format!("mel range {}..{} Hz", self.fmin, self.fmax));
        }
        if !(self.log_eps.is_finite() && self.log_eps > 0.0) {
            return Err(format!("log epsilon {}", self.log_eps));
        }
        Ok(())
    }

    /// Feature frames of a 1 s clip (at least one once `validate` passed).
    pub fn clip_frames(&self) -> usize {
        self.n_frames(self.sample_rate as usize)
    }
}

/// How normalised log-mel frames become the network's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EncoderConfig {
    /// Analog values injected as current into the first LIF layer.
    Current,
    /// Send-on-delta: ON/OFF spike per band when the value moved by `threshold`.
    Delta { threshold: f32 },
    /// Bernoulli spikes with probability rising with the value.
    Rate { max_prob: f32, seed: u64 },
}

impl EncoderConfig {
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            EncoderConfig::Current => Ok(()),
            EncoderConfig::Delta { threshold } if threshold.is_finite() && threshold > 0.0 => {
                Ok(())
            }
            EncoderConfig::Delta { threshold } => Err(format!("delta threshold {threshold}")),
            EncoderConfig::Rate { max_prob, .. } if max_prob > 0.0 && max_prob <= 1.0 => Ok(()),
            EncoderConfig::Rate { max_prob, .. } => {
                Err(format!("rate encoder max_prob {max_prob}"))
            }
        }
    }

    pub fn out_channels(&self, n_mels: usize) -> usize {
        match self {
            EncoderConfig::Delta { .. } => 2 * n_mels,
            _ => n_mels,
        }
    }
}

/// Surrogate derivative used in the backward pass of the spike function (forward: the
/// Heaviside step of u = v − θ). `derivative` is the one definition; the training graph
/// differentiates a primitive of it and the tests check the two agree.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Surrogate {
    /// k·σ(ku)·(1 − σ(ku)), the seed paper's; peak k/4 at u = 0.
    Sigmoid,
    /// 1 / (1 + k|u|)² (SuperSpike's fast sigmoid); peak 1 at u = 0.
    FastSigmoid,
    /// (k/2) / (1 + (πku/2)²), the derivative of atan(πku/2)/π; peak k/2 at u = 0.
    Arctan,
}

impl Surrogate {
    /// The surrogate derivative at `u` with slope `k`.
    pub fn derivative(self, u: f32, k: f32) -> f32 {
        match self {
            Surrogate::Sigmoid => {
                let s = 1.0 / (1.0 + (-k * u).exp());
                k * s * (1.0 - s)
            }
            Surrogate::FastSigmoid => 1.0 / (1.0 + k * u.abs()).powi(2),
            Surrogate::Arctan => (k / 2.0) / (1.0 + (std::f32::consts::PI * k * u / 2.0).powi(2)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Reset {
    /// v -= threshold after a spike (keeps the overshoot).
    Subtract,
    /// v = 0 after a spike.
    Zero,
}

/// The spiking temporal-convolutional network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Channels of each spiking layer.
    pub channels: Vec<usize>,
    /// Kernel size in time (frames).
    pub kernel: usize,
    /// Dilation in time of each layer (conduction delays).
    pub dilations: Vec<usize>,
    pub reset: Reset,
    pub surrogate: Surrogate,
    pub surrogate_slope: f32,
    pub init_beta: f32,
    pub init_threshold: f32,
    /// Fixed gain on the readout potential (an inverse softmax temperature): spike rates
    /// of a few per cent give tiny potentials, and Adam would need thousands of steps
    /// to grow the readout weights to logit scale.
    #[serde(default = "one")]
    pub logit_scale: f32,
    /// The clip decision averages the readout over the last `decision_frames` frames of a
    /// clip only (0: all of them). With `decision_frames ≤ frames − receptive field`, no
    /// decision frame sees past the clip's start through the convolutions; the membranes
    /// and the readout leak still carry some of it (measured: model card, run G).
    #[serde(default)]
    pub decision_frames: usize,
}

fn one() -> f32 {
    1.0
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            channels: vec![64, 64, 64],
            kernel: 4,
            dilations: vec![1, 4, 16],
            reset: Reset::Subtract,
            surrogate: Surrogate::Sigmoid,
            surrogate_slope: 5.0,
            init_beta: 0.9,
            init_threshold: 1.0,
            logit_scale: 10.0,
            decision_frames: 0,
        }
    }
}

/// Largest sizes a network may have: far above any useful model, low enough that a
/// corrupt file cannot ask for gigabytes of state.
pub const MAX_LAYERS: usize = 16;
pub const MAX_CHANNELS: usize = 4096;
pub const MAX_KERNEL: usize = 64;
pub const MAX_DILATION: usize = 1024;

impl NetworkConfig {
    /// Checks every field, so that no network built from it can underflow, divide by
    /// zero or allocate without bound.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.channels.len();
        if !(1..=MAX_LAYERS).contains(&n) {
            return Err(format!("{n} spiking layers (1 to {MAX_LAYERS})"));
        }
        if self.dilations.len() != n {
            return Err(format!(
                "{} dilations for {n} layers (one per layer)",
                self.dilations.len()
            ));
        }
        if let Some(c) = self
            .channels
            .iter()
            .find(|c| !(1..=MAX_CHANNELS).contains(*c))
        {
            return Err(format!("a layer of {c} channels (1 to {MAX_CHANNELS})"));
        }
        if !(1..=MAX_KERNEL).contains(&self.kernel) {
            return Err(format!(
                "kernel of {} frames (1 to {MAX_KERNEL})",
                self.kernel
            ));
        }
        if let Some(d) = self
            .dilations
            .iter()
            .find(|d| !(1..=MAX_DILATION).contains(*d))
        {
            return Err(format!("dilation {d} (1 to {MAX_DILATION})"));
        }
        let finite_pos = |v: f32| v.is_finite() && v > 0.0;
        if !finite_pos(self.surrogate_slope) {
            return Err(format!("surrogate slope {}", self.surrogate_slope));
        }
        if !(0.0..=1.0).contains(&self.init_beta) {
            return Err(format!("initial leak {} (0 to 1)", self.init_beta));
        }
        if !finite_pos(self.init_threshold) || !finite_pos(self.logit_scale) {
            return Err(format!(
                "initial threshold {} / logit scale {}",
                self.init_threshold, self.logit_scale
            ));
        }
        Ok(())
    }

    /// First frame of the clip decision for an input of `frames` frames whose first
    /// `context` frames are context (not scored).
    pub fn decision_start(&self, context: usize, frames: usize) -> usize {
        if self.decision_frames > 0 && context + self.decision_frames < frames {
            frames - self.decision_frames
        } else {
            context
        }
    }

    /// Frames of past input one output frame depends on.
    pub fn receptive_field(&self) -> usize {
        1 + self
            .dilations
            .iter()
            .map(|d| d * (self.kernel - 1))
            .sum::<usize>()
    }
}

/// Everything a model file needs besides its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub features: FeatureConfig,
    pub encoder: EncoderConfig,
    pub network: NetworkConfig,
    /// Class names; `_silence_` and `_unknown_` are never reported as detections.
    pub labels: Vec<String>,
    /// Per-band mean and standard deviation of log-mel over the training set.
    pub norm_mean: Vec<f32>,
    pub norm_std: Vec<f32>,
    /// Detection thresholds calibrated on validation streams, one set per false-alarm
    /// rate (`spikeword calibrate`); empty for an uncalibrated model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operating_points: Vec<OperatingPoint>,
}

/// Detection thresholds chosen for a false-alarm rate in running speech.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    /// The rate asked for (false alarms per hour of speech without a command word).
    pub false_alarms_per_hour: f32,
    /// Threshold of every word, by word.
    pub thresholds: std::collections::BTreeMap<String, f32>,
    /// What the validation streams measured at these thresholds.
    pub measured_hit_rate: f32,
    pub measured_false_alarms_per_hour: f32,
    /// Frames a word must stay above its threshold to fire, as calibrated (the
    /// detector's `sustain`; 0 in files from before it existed: the first frame above).
    #[serde(default)]
    pub sustain_frames: usize,
}

/// The longest sustain a model file may ask for (10 s at a 10 ms hop): no word lasts it.
pub const MAX_SUSTAIN_FRAMES: usize = 1000;

/// The operating point `detect` and `listen` use unless told otherwise.
pub const DEFAULT_FALSE_ALARMS_PER_HOUR: f32 = 5.0;

/// Seconds a word must stay above its threshold at the points `calibrate` makes: chosen
/// on the validation streams (docs/detection.md).
pub const DEFAULT_SUSTAIN_S: f32 = 0.35;

impl ModelConfig {
    /// Detector frames of a sustain of `seconds` (one score per frame), at most
    /// `MAX_SUSTAIN_FRAMES` so that a model calibrated with it stays valid.
    pub fn sustain_frames(&self, seconds: f32) -> usize {
        ((seconds * self.features.frame_rate()).round() as usize).min(MAX_SUSTAIN_FRAMES)
    }

    /// The calibrated point for `per_hour` false alarms: the one with the highest rate not
    /// above it (else the strictest); `None` for an uncalibrated model.
    pub fn operating_point(&self, per_hour: f32) -> Option<&OperatingPoint> {
        let by_rate = |a: &&OperatingPoint, b: &&OperatingPoint| {
            a.false_alarms_per_hour.total_cmp(&b.false_alarms_per_hour)
        };
        let pts = self.operating_points.iter();
        pts.clone()
            .filter(|p| p.false_alarms_per_hour <= per_hour)
            .max_by(by_rate)
            .or_else(|| pts.min_by(by_rate))
    }

    fn validate_operating_points(&self) -> Result<(), String> {
        for p in &self.operating_points {
            if !(p.false_alarms_per_hour.is_finite() && p.false_alarms_per_hour >= 0.0) {
                return Err(format!(
                    "operating point for {} false alarms/h",
                    p.false_alarms_per_hour
                ));
            }
            if p.sustain_frames > MAX_SUSTAIN_FRAMES {
                return Err(format!(
                    "operating point: sustain of {} frames (at most {MAX_SUSTAIN_FRAMES})",
                    p.sustain_frames
                ));
            }
            for (w, t) in &p.thresholds {
                if !self.labels.contains(w) || w == SILENCE || w == UNKNOWN {
                    return Err(format!("operating point: no reportable word {w:?}"));
                }
                if !(0.0..=1.0).contains(t) {
                    return Err(format!("operating point: threshold {t} for {w:?}"));
                }
            }
        }
        Ok(())
    }

    /// Checks the whole configuration and its parts against each other.
    pub fn validate(&self) -> Result<(), String> {
        self.features
            .validate()
            .map_err(|e| format!("features: {e}"))?;
        self.encoder
            .validate()
            .map_err(|e| format!("encoder: {e}"))?;
        self.network
            .validate()
            .map_err(|e| format!("network: {e}"))?;
        let clip = self.features.clip_frames();
        if self.network.decision_frames > clip {
            return Err(format!(
                "decision window of {} frames, longer than a 1 s clip ({clip})",
                self.network.decision_frames
            ));
        }
        let n = self.labels.len();
        if !(2..=10_000).contains(&n) {
            return Err(format!("{n} labels (2 to 10000)"));
        }
        let mut seen = std::collections::HashSet::new();
        for l in &self.labels {
            if l.trim().is_empty() || l.chars().any(char::is_control) {
                return Err(format!("label {l:?}"));
            }
            if !seen.insert(l) {
                return Err(format!("label {l:?} twice"));
            }
        }
        let bands = self.features.n_mels;
        if self.norm_mean.len() != bands || self.norm_std.len() != bands {
            return Err(format!(
                "normalisation for {} / {} bands, features have {bands}",
                self.norm_mean.len(),
                self.norm_std.len()
            ));
        }
        if self.norm_mean.iter().any(|m| !m.is_finite())
            || self.norm_std.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err("normalisation: non-finite mean or non-positive deviation".into());
        }
        self.validate_operating_points()
    }
}

pub const SILENCE: &str = "_silence_";
pub const UNKNOWN: &str = "_unknown_";

/// The ten command words of the 12-class Speech Commands task.
pub const GSC_COMMANDS: [&str; 10] = [
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(points: &[(f32, &str, f32)]) -> ModelConfig {
        ModelConfig {
            features: FeatureConfig::default(),
            encoder: EncoderConfig::Current,
            network: NetworkConfig::default(),
            labels: ["yes", "no", SILENCE, UNKNOWN].map(String::from).to_vec(),
            norm_mean: vec![0.0; 40],
            norm_std: vec![1.0; 40],
            operating_points: points
                .iter()
                .map(|&(rate, word, t)| OperatingPoint {
                    false_alarms_per_hour: rate,
                    thresholds: [(word.to_string(), t)].into_iter().collect(),
                    measured_hit_rate: 0.5,
                    measured_false_alarms_per_hour: rate,
                    sustain_frames: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn the_operating_point_is_the_loosest_within_the_rate() {
        let c = config_with(&[(1.0, "yes", 0.9), (5.0, "yes", 0.7), (20.0, "yes", 0.5)]);
        let pick = |r: f32| c.operating_point(r).unwrap().false_alarms_per_hour;
        assert_eq!(pick(2.0), 1.0);
        assert_eq!(pick(5.0), 5.0);
        assert_eq!(pick(1000.0), 20.0);
        // Stricter than any calibrated point: the strictest.
        assert_eq!(pick(0.1), 1.0);
        assert!(config_with(&[]).operating_point(2.0).is_none());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn operating_points_must_name_reportable_words_and_probabilities() {
        for bad in [
            config_with(&[(2.0, "maybe", 0.5)]),
            config_with(&[(2.0, SILENCE, 0.5)]),
            config_with(&[(2.0, "yes", 1.5)]),
            config_with(&[(f32::NAN, "yes", 0.5)]),
        ] {
            assert!(bad.validate().is_err(), "{:?}", bad.operating_points);
        }
    }
}
