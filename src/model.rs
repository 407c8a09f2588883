//! A model file: one safetensors file holding the weights and, in its metadata, the
//! format version and the whole `ModelConfig` (features, encoder, network, labels,
//! normalisation) plus the training record, so the file alone reproduces predictions.

use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::config::ModelConfig;
use crate::encoding;
use crate::features::{self, MelFrame, Normalizer};
use crate::snn::{Mode, Network, Readout, SpikingLayer};

/// Bumped whenever the file layout or the meaning of a weight changes.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT_NAME: &str = "spikeword-model";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {0} not found")]
    NotFound(String),
    #[error("{0} is not a spikeword model: {1}")]
    NotAModel(String, String),
    #[error(
        "{path} is a spikeword model of format version {found}; this build reads version {FORMAT_VERSION}"
    )]
    Version { path: String, found: String },
    #[error("model {0} is inconsistent: {1}")]
    Invalid(String, String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Result of classifying one clip.
#[derive(Debug, Clone)]
pub struct ClipOutput {
    pub logits: Vec<f32>,
    pub probs: Vec<f32>,
    /// Spikes per spiking layer over the clip.
    pub spike_counts: Vec<u64>,
    pub input_spikes: u64,
    pub synops: u64,
    pub frames: usize,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub config: ModelConfig,
    pub net: Network,
    /// Free-form training record (JSON), shown by `spikeword info`.
    pub training: serde_json::Value,
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl Model {
    pub fn labels(&self) -> &[String] {
        &self.config.labels
    }

    pub fn n_labels(&self) -> usize {
        self.config.labels.len()
    }

    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (i, l) in self.net.layers.iter().enumerate() {
            tensors.push((
                format!("layers.{i}.weight"),
                vec![l.c_out, l.c_in, l.kernel],
                f32s(&l.conv_weight()),
            ));
            tensors.push((format!("layers.{i}.bias"), vec![l.c_out], f32s(&l.bias)));
            tensors.push((format!("layers.{i}.beta"), vec![l.c_out], f32s(&l.beta)));
            tensors.push((
                format!("layers.{i}.threshold"),
                vec![l.c_out],
                f32s(&l.threshold),
            ));
        }
        let r = &self.net.readout;
        tensors.push((
            "readout.weight".into(),
            vec![r.c_in, r.n_classes],
            f32s(&r.w),
        ));
        tensors.push(("readout.bias".into(), vec![r.n_classes], f32s(&r.bias)));
        tensors.push(("readout.beta".into(), vec![r.n_classes], f32s(&r.beta)));
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(n, s, b)| {
                (
                    n.clone(),
                    TensorView::new(Dtype::F32, s.clone(), b).expect("sizes match"),
                )
            })
            .collect();
        let mut meta = HashMap::new();
        meta.insert("format".into(), FORMAT_NAME.into());
        meta.insert("format_version".into(), FORMAT_VERSION.to_string());
        meta.insert(
            "config".into(),
            serde_json::to_string(&self.config).expect("config serialises"),
        );
        meta.insert("training".into(), self.training.to_string());
        let bytes = safetensors::serialize(views, Some(meta))
            .map_err(|e| ModelError::Invalid(path.display().to_string(), e.to_string()))?;
        crate::util::atomic_write(path, &bytes)?;
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::NotFound(p.clone()),
            _ => ModelError::Io(e),
        })?;
        Self::from_bytes(&bytes, &p)
    }

    pub fn from_bytes(bytes: &[u8], p: &str) -> Result<Model, ModelError> {
        let not = |why: String| ModelError::NotAModel(p.to_string(), why);
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| not(e.to_string()))?;
        let md = meta.metadata().clone().unwrap_or_default();
        if md.get("format").map(String::as_str) != Some(FORMAT_NAME) {
            return Err(not("no spikeword format tag".into()));
        }
        let version = md.get("format_version").cloned().unwrap_or_default();
        if version != FORMAT_VERSION.to_string() {
            return Err(ModelError::Version {
                path: p.to_string(),
                found: version,
            });
        }
        let invalid = |why: String| ModelError::Invalid(p.to_string(), why);
        let config: ModelConfig = serde_json::from_str(
            md.get("config")
                .ok_or_else(|| invalid("no config".into()))?,
        )
        .map_err(|e| invalid(format!("config: {e}")))?;
        config.features.validate().map_err(invalid)?;
        let training = md
            .get("training")
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(serde_json::Value::Null);
        let st = SafeTensors::deserialize(bytes).map_err(|e| not(e.to_string()))?;
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>, ModelError> {
            let t = st
                .tensor(name)
                .map_err(|_| invalid(format!("missing tensor {name}")))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                return Err(invalid(format!(
                    "tensor {name}: {:?} {:?}, expected F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                )));
            }
            let v: Vec<f32> = t
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if v.iter().any(|x| !x.is_finite()) {
                return Err(invalid(format!("tensor {name} holds non-finite values")));
            }
            Ok(v)
        };
        let net_cfg = &config.network;
        if net_cfg.channels.is_empty()
            || net_cfg.channels.len() != net_cfg.dilations.len()
            || net_cfg.kernel == 0
        {
            return Err(invalid("network shape".into()));
        }
        let n_mels = config.features.n_mels;
        if config.norm_mean.len() != n_mels || config.norm_std.len() != n_mels {
            return Err(invalid("normalisation statistics".into()));
        }
        let mut prev = config.encoder.out_channels(n_mels);
        let mut layers = Vec::new();
        for (i, (&c, &d)) in net_cfg.channels.iter().zip(&net_cfg.dilations).enumerate() {
            let k = net_cfg.kernel;
            let w = get(&format!("layers.{i}.weight"), &[c, prev, k])?;
            layers.push(SpikingLayer::from_conv(
                &w,
                (c, prev, k),
                d,
                get(&format!("layers.{i}.bias"), &[c])?,
                get(&format!("layers.{i}.beta"), &[c])?,
                get(&format!("layers.{i}.threshold"), &[c])?,
            ));
            prev = c;
        }
        let n = config.labels.len();
        if n < 2 {
            return Err(invalid("fewer than two labels".into()));
        }
        let readout = Readout {
            c_in: prev,
            n_classes: n,
            w: get("readout.weight", &[prev, n])?,
            bias: get("readout.bias", &[n])?,
            beta: get("readout.beta", &[n])?,
        };
        Ok(Model {
            net: Network {
                config: net_cfg.clone(),
                layers,
                readout,
            },
            config,
            training,
        })
    }

    pub fn normalizer(&self) -> Normalizer {
        Normalizer::new(&self.config.norm_mean, &self.config.norm_std)
    }

    /// Normalised, encoded network input for a clip (frames × channels) and its input spikes.
    pub fn encode(&self, mf: &mut MelFrame, samples: &[f32]) -> (Vec<f32>, usize) {
        let mut mel = features::log_mel_with(mf, samples);
        let norm = self.normalizer();
        for f in mel.data.chunks_exact_mut(mel.n_mels) {
            norm.apply(f);
        }
        encoding::encode_clip(&self.config.encoder, &mel.data, mel.n_mels)
    }

    /// Classifies one clip of samples at the model rate.
    /// Frames of a 1 s clip the clip decision averages over: the detector's default
    /// smoothing window, so that a stream's smoothed score equals the clip decision.
    pub fn decision_window(&self) -> usize {
        let f = &self.config.features;
        let clip = (f.sample_rate as usize - f.win_length) / f.hop_length + 1;
        clip - self.config.network.decision_start(0, clip)
    }

    pub fn classify(&self, mf: &mut MelFrame, samples: &[f32]) -> ClipOutput {
        let (input, input_spikes) = self.encode(mf, samples);
        let (logits, st) = self.net.forward_clip(&input, Mode::Event);
        ClipOutput {
            probs: softmax(&logits),
            logits,
            spike_counts: st.spike_counts.clone(),
            input_spikes: input_spikes as u64,
            synops: st.synops,
            frames: st.frames as usize,
        }
    }
}

pub fn softmax(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    softmax_into(x, &mut out);
    out
}

/// Softmax of `x` written into `out` (same length), without allocating.
pub fn softmax_into(x: &[f32], out: &mut [f32]) {
    let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    for (o, v) in out.iter_mut().zip(x) {
        *o = (v - m).exp();
    }
    let s: f32 = out.iter().sum();
    out.iter_mut().for_each(|o| *o /= s);
}

/// Where the default model lives: `$SPIKEWORD_MODEL`, else `models/gsc12.safetensors`
/// next to the crate (when run from a checkout) or in the working directory.
pub fn default_model_path() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("SPIKEWORD_MODEL") {
        return p.into();
    }
    let rel = Path::new("models/gsc12.safetensors");
    if rel.exists() {
        return rel.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}
