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
    pub fn validate(&self) -> Result<(), String> {
        if self.sample_rate < 1000
            || self.n_mels == 0
            || self.win_length < 16
            || self.hop_length == 0
        {
            return Err(format!("unusable feature config {self:?}"));
        }
        if !(self.fmin >= 0.0
            && self.fmin < self.fmax
            && self.fmax <= self.sample_rate as f32 / 2.0)
        {
            return Err(format!("mel range {}..{} Hz", self.fmin, self.fmax));
        }
        Ok(())
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
    pub fn out_channels(&self, n_mels: usize) -> usize {
        match self {
            EncoderConfig::Delta { .. } => 2 * n_mels,
            _ => n_mels,
        }
    }
}

/// Surrogate derivative used in the backward pass of the spike function.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Surrogate {
    /// k·σ(ku)(1−σ(ku)), the seed paper's.
    Sigmoid,
    /// k / (1 + k|u|)^2 (SuperSpike).
    FastSigmoid,
    /// k / (1 + (π k u / 2)^2) ... scaled arctan derivative.
    Arctan,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, clap::ValueEnum)]
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

impl NetworkConfig {
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
}

pub const SILENCE: &str = "_silence_";
pub const UNKNOWN: &str = "_unknown_";

/// The ten command words of the 12-class Speech Commands task.
pub const GSC_COMMANDS: [&str; 10] = [
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
];
