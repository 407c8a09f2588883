//! A model file: one safetensors file holding the weights and, in its metadata, the
//! format version and the whole `ModelConfig` (features, encoder, network, labels,
//! normalisation) plus the training record, so the file alone reproduces predictions.
//! An ensemble file holds several networks (`members.K.` before member K's tensor names,
//! none for member 0) that share features, encoder, normalisation and labels; networks of
//! other widths carry their own configurations (`member_networks` in the metadata).

use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::config::{EncoderConfig, ModelConfig, NetworkConfig};
use crate::encoding;
use crate::features::{self, MelFrame, Normalizer};
use crate::replay::{self, ReplayStore};
use crate::snn::quantize::{self, QuantStats, quantize_network};
use crate::snn::{
    Ensemble, FixedEnsemble, FixedError, FixedSpec, FixedStats, Mode, Network, Readout,
    SpikingLayer,
};

/// Bumped whenever the file layout or the meaning of a weight changes. Version 2 added
/// ensembles, version 3 integer weights (quantized models); a file is written with the
/// oldest version that reads it, so that older builds read what they can and refuse the
/// rest with a clear message.
pub const FORMAT_VERSION: u32 = 3;
const FORMAT_NAME: &str = "spikeword-model";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {0} not found")]
    NotFound(String),
    #[error("{0} is not a spikeword model: {1}")]
    NotAModel(String, String),
    #[error(
        "{path} is a spikeword model of format version {found}; this build reads versions 1 to {FORMAT_VERSION}"
    )]
    Version { path: String, found: String },
    #[error("model {0} is inconsistent: {1}")]
    Invalid(String, String),
    /// `FILE@N` naming a network the file does not have, or not a number.
    #[error("{0}: {1}")]
    Networks(String, String),
    /// The file could not be read or written; the path is said, the cause once.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
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
    /// One network, or several averaged (see `snn::ensemble`).
    pub net: Ensemble,
    /// Free-form training record (JSON), shown by `spikeword info`.
    pub training: serde_json::Value,
    /// Clips of the model's classes for `retrain` to replay (see `replay`), if stored.
    pub replay: Option<std::sync::Arc<ReplayStore>>,
}

/// Re-expresses a first layer trained on input normalised with `own` (mean, std) for
/// input normalised with `common`: with x_own = (s_c/s_o)·x_c + (m_c − m_o)/s_o per band,
/// the weights scale by s_c/s_o and the bias takes the constant part. Exact except while
/// the conv history still holds the zeros of the start of a stream (a few frames).
fn fold_normalisation(l: &mut SpikingLayer, own: (&[f32], &[f32]), common: (&[f32], &[f32])) {
    let (c_in, c_out) = (l.c_in, l.c_out);
    for k in 0..l.kernel {
        for i in 0..c_in {
            let gain = common.1[i] / own.1[i];
            let offset = (common.0[i] - own.0[i]) / own.1[i];
            let col = &mut l.w[(k * c_in + i) * c_out..(k * c_in + i + 1) * c_out];
            for (o, w) in col.iter_mut().enumerate() {
                l.bias[o] += *w * offset;
                *w *= gain;
            }
        }
    }
}

/// The file of a [`Model::load_spec`] argument and what follows its `@`, if anything.
pub fn split_spec(spec: &str) -> (&Path, Option<&str>) {
    match spec.rsplit_once('@') {
        Some((file, range)) if !Path::new(spec).exists() => (Path::new(file), Some(range)),
        _ => (Path::new(spec), None),
    }
}

/// `N` or `A-B` (A ≤ B) as an inclusive range of network numbers.
fn parse_network_range(s: &str) -> Option<(usize, usize)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

/// Tensor-name prefix of ensemble member `k` (none for the first, as in one-network files).
fn member_prefix(k: usize) -> String {
    if k == 0 {
        String::new()
    } else {
        format!("members.{k}.")
    }
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A tensor of a model file: name, type, shape, little-endian bytes.
type FileTensor = (String, Dtype, Vec<usize>, Vec<u8>);

/// One network's tensors under `pre`. With `bits`, each weight matrix on that grid is
/// stored as integers (I8 up to 8 bits, else I16) beside its per-neuron scales
/// (`NAME_scale`); one off the grid stays F32.
fn network_tensors(net: &Network, pre: &str, bits: Option<u32>) -> Vec<FileTensor> {
    let float = |name: &str, shape: Vec<usize>, v: &[f32]| -> FileTensor {
        (format!("{pre}{name}"), Dtype::F32, shape, f32s(v))
    };
    let ints = |w: &[f32], n_out: usize| {
        let b = bits?;
        quantize::to_integers(w, n_out, b).map(|(q, scale)| (b, q, scale))
    };
    let mut out = Vec::new();
    for (i, l) in net.layers.iter().enumerate() {
        let (name, shape) = (
            format!("layers.{i}.weight"),
            vec![l.c_out, l.c_in, l.kernel],
        );
        match ints(&l.w, l.c_out) {
            Some((b, q, scale)) => {
                let q = l.to_conv_layout(&q);
                out.extend(integer_tensors(
                    &format!("{pre}{name}"),
                    shape,
                    &q,
                    &scale,
                    b,
                ));
            }
            None => out.push(float(&name, shape, &l.conv_weight())),
        }
        out.push(float(&format!("layers.{i}.bias"), vec![l.c_out], &l.bias));
        out.push(float(&format!("layers.{i}.beta"), vec![l.c_out], &l.beta));
        out.push(float(
            &format!("layers.{i}.threshold"),
            vec![l.c_out],
            &l.threshold,
        ));
    }
    let r = &net.readout;
    let shape = vec![r.c_in, r.n_classes];
    match ints(&r.w, r.n_classes) {
        Some((b, q, scale)) => out.extend(integer_tensors(
            &format!("{pre}readout.weight"),
            shape,
            &q,
            &scale,
            b,
        )),
        None => out.push(float("readout.weight", shape, &r.w)),
    }
    out.push(float("readout.bias", vec![r.n_classes], &r.bias));
    out.push(float("readout.beta", vec![r.n_classes], &r.beta));
    out
}

/// A weight matrix as integers and its per-neuron scales.
fn integer_tensors(
    name: &str,
    shape: Vec<usize>,
    q: &[i16],
    scale: &[f32],
    bits: u32,
) -> [FileTensor; 2] {
    let (dtype, bytes) = if bits <= 8 {
        (Dtype::I8, q.iter().map(|&v| v as i8 as u8).collect())
    } else {
        (Dtype::I16, q.iter().flat_map(|v| v.to_le_bytes()).collect())
    };
    [
        (name.to_string(), dtype, shape, bytes),
        (
            format!("{name}_scale"),
            Dtype::F32,
            vec![scale.len()],
            f32s(scale),
        ),
    ]
}

impl Model {
    pub fn labels(&self) -> &[String] {
        &self.config.labels
    }

    pub fn n_labels(&self) -> usize {
        self.config.labels.len()
    }

    /// Every synaptic weight of every network on a signed grid of `bits` (one scale per
    /// neuron, `snn::quantize`); the training record says so, and `save` then stores the
    /// weights as integers with their scales.
    pub fn quantize(&mut self, bits: u32) -> QuantStats {
        let mut stats = QuantStats::default();
        for net in &mut self.net.members {
            stats.add(quantize_network(net, bits));
        }
        if !self.training.is_object() {
            self.training = serde_json::json!({});
        }
        self.training["quantized"] = serde_json::json!({
            "weight_bits": bits,
            "scale": "one per neuron: max |w| / (2^(bits-1) - 1)",
            "relative_rms_change": stats.relative_rms_error(),
        });
        stats
    }

    /// The bits of the weights' grid, if `quantize` put them on one.
    pub fn weight_bits(&self) -> Option<u32> {
        let b = self
            .training
            .get("quantized")?
            .get("weight_bits")?
            .as_u64()?;
        u32::try_from(b).ok().filter(|b| quantize::BITS.contains(b))
    }

    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let bits = self.weight_bits();
        let mut tensors = Vec::new();
        for (k, net) in self.net.members.iter().enumerate() {
            tensors.extend(network_tensors(net, &member_prefix(k), bits));
        }
        let integers = tensors.iter().any(|t| t.1 != Dtype::F32);
        let mut views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(n, dtype, s, b)| {
                (
                    n.clone(),
                    TensorView::new(*dtype, s.clone(), b).expect("sizes match"),
                )
            })
            .collect();
        let mut meta = HashMap::new();
        let replay = self.replay.as_ref().map(|r| r.encode());
        if let Some((index, bytes)) = &replay {
            let view = TensorView::new(Dtype::U8, vec![bytes.len()], bytes).expect("sizes match");
            views.push((replay::TENSOR.to_string(), view));
            meta.insert("replay".to_string(), index.clone());
        }
        meta.insert("format".into(), FORMAT_NAME.into());
        // The oldest version that reads the file: 1 one network, 2 an ensemble, 3 integers.
        let version = if integers {
            3
        } else if self.net.len() > 1 {
            2
        } else {
            1
        };
        meta.insert("format_version".into(), version.to_string());
        meta.insert("members".into(), self.net.len().to_string());
        if let Some(nets) = self.member_networks() {
            meta.insert(
                "member_networks".into(),
                serde_json::to_string(&nets).expect("config serialises"),
            );
        }
        meta.insert(
            "config".into(),
            serde_json::to_string(&self.config).expect("config serialises"),
        );
        meta.insert("training".into(), self.training.to_string());
        let bytes = safetensors::serialize(views, Some(meta))
            .map_err(|e| ModelError::Invalid(path.display().to_string(), e.to_string()))?;
        crate::util::atomic_write(path, &bytes)
            .map_err(|e| ModelError::Io(path.display().to_string(), e))
    }

    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::NotFound(p.clone()),
            _ => ModelError::Io(p.clone(), e),
        })?;
        Self::from_bytes(&bytes, &p)
    }

    /// A model file, or some networks of an ensemble file: `FILE@N` (network N, 0-based)
    /// or `FILE@A-B` (networks A to B, in order). A file whose own name holds the `@` is
    /// read as it is.
    pub fn load_spec(spec: &str) -> Result<Model, ModelError> {
        let (file, Some(range)) = split_spec(spec) else {
            return Self::load(Path::new(spec));
        };
        let bad = |why: String| ModelError::Networks(spec.to_string(), why);
        let (first, last) = parse_network_range(range).ok_or_else(|| {
            bad(format!(
                "`{range}` after @ is not a network number N or range A-B"
            ))
        })?;
        let model = Self::load(file)?;
        let n = model.net.len();
        if last >= n {
            return Err(bad(format!("it has networks 0 to {}", n - 1)));
        }
        if first == last {
            return model
                .member(first)
                .ok_or_else(|| bad("no such network".into()));
        }
        // Each member carries the file's decision window, which the ensemble keeps.
        Self::ensemble((first..=last).filter_map(|k| model.member(k)).collect())
    }

    /// Reads a model from the bytes of a file named `p` (for messages): the header, the
    /// whole configuration (validated), then every member's tensors against it.
    pub fn from_bytes(bytes: &[u8], p: &str) -> Result<Model, ModelError> {
        let (config, training, shapes) = read_header(bytes, p)?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| ModelError::NotAModel(p.to_string(), e.to_string()))?;
        let tensors = Tensors { st, path: p };
        let nets = shapes
            .iter()
            .enumerate()
            .map(|(k, net)| tensors.member(&config, net, k))
            .collect::<Result<Vec<_>, _>>()?;
        let replay = tensors.replay(read_replay_index(bytes))?;
        Ok(Model {
            net: Ensemble { members: nets },
            config,
            training,
            replay,
        })
    }

    /// One model whose networks are all the members' (in order), voting by their mean
    /// class scores. The members must share features, encoder, normalisation (or have it
    /// folded in), labels, depth and readout logit scale; their widths may differ.
    pub fn ensemble(members: Vec<Model>) -> Result<Model, ModelError> {
        let mut it = members.into_iter();
        let mut out = it
            .next()
            .ok_or_else(|| ModelError::Invalid("ensemble".into(), "no members".into()))?;
        let mut records = vec![out.training.clone()];
        // The ensemble's scores are new: thresholds calibrated for one member do not hold.
        out.config.operating_points.clear();
        for (k, m) in it.enumerate() {
            let differs = |what: &str| {
                ModelError::Invalid(
                    format!("ensemble member {}", k + 2),
                    format!("its {what} differs from the first member's"),
                )
            };
            let (a, b) = (&out.config, &m.config);
            if a.labels != b.labels {
                return Err(differs("label list"));
            }
            if serde_json::to_value(&a.features).ok() != serde_json::to_value(&b.features).ok()
                || serde_json::to_value(&a.encoder).ok() != serde_json::to_value(&b.encoder).ok()
            {
                return Err(differs("front end (features or encoder)"));
            }
            if let Some(what) = cannot_vote_with(&a.network, &b.network) {
                return Err(differs(what));
            }
            let mut nets = m.net.members;
            for net in &mut nets {
                net.config.decision_frames = a.network.decision_frames;
            }
            if a.norm_mean != b.norm_mean || a.norm_std != b.norm_std {
                // Analog input: the member's normalisation folds exactly into its first
                // layer. Spike encoders threshold the normalised values: no such folding.
                if a.encoder != EncoderConfig::Current {
                    return Err(differs("normalisation (trained on other data)"));
                }
                for net in &mut nets {
                    fold_normalisation(
                        &mut net.layers[0],
                        (&b.norm_mean, &b.norm_std),
                        (&a.norm_mean, &a.norm_std),
                    );
                }
            }
            records.push(m.training.clone());
            out.net.members.extend(nets);
        }
        if out.net.len() > 64 {
            return Err(ModelError::Invalid(
                "ensemble".into(),
                "more than 64 networks".into(),
            ));
        }
        out.training = serde_json::json!({
            "split_rule": records[0].get("split_rule").cloned().unwrap_or_default(),
            "members": records,
        });
        Ok(out)
    }

    /// Sets the frames of a 1 s clip its decision averages over (the last `frames`; 0: all)
    /// for every member: an inference choice, also the detector's smoothing window.
    pub fn set_decision_frames(&mut self, frames: usize) -> Result<(), ModelError> {
        let clip = self.clip_frames();
        if frames > clip {
            return Err(ModelError::Invalid(
                "decision window".into(),
                format!("{frames} frames is longer than a 1 s clip ({clip} frames)"),
            ));
        }
        self.config.network.decision_frames = frames;
        for m in &mut self.net.members {
            m.config.decision_frames = frames;
        }
        Ok(())
    }

    /// Every member's network configuration when members differ in shape (an ensemble of
    /// narrow and wide networks); `None` when the model's one configuration holds for all.
    fn member_networks(&self) -> Option<Vec<NetworkConfig>> {
        let own = |n: &Network| NetworkConfig {
            decision_frames: self.config.network.decision_frames,
            ..n.config.clone()
        };
        let same = |n: &Network| {
            serde_json::to_value(own(n)).ok() == serde_json::to_value(&self.config.network).ok()
        };
        if self.net.members.iter().all(same) {
            return None;
        }
        Some(self.net.members.iter().map(own).collect())
    }

    /// Member `k` of an ensemble as a one-network model (with its own training record).
    pub fn member(&self, k: usize) -> Option<Model> {
        let net = self.net.members.get(k)?.clone();
        let training = match self.training.get("members") {
            Some(records) => records.get(k).cloned().unwrap_or_default(),
            None => self.training.clone(),
        };
        let config = ModelConfig {
            network: net.config.clone(),
            ..self.config.clone()
        };
        Some(Model {
            config,
            net: Ensemble::single(net),
            training,
            replay: self.replay.clone(),
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
        let clip = self.clip_frames();
        clip - self.config.network.decision_start(0, clip)
    }

    /// Feature frames of a 1 s clip.
    fn clip_frames(&self) -> usize {
        self.config.features.clip_frames()
    }

    pub fn classify(&self, mf: &mut MelFrame, samples: &[f32]) -> ClipOutput {
        let (input, input_spikes) = self.encode(mf, samples);
        let (logits, st) = self.net.forward_clip(&input, Mode::Event);
        ClipOutput {
            probs: softmax(&logits),
            logits,
            spike_counts: st.spike_counts(),
            input_spikes: input_spikes as u64,
            synops: st.synops(),
            frames: st.frames() as usize,
        }
    }

    /// Every network of the model in integer arithmetic (`snn::fixed`); its weights must
    /// lie on a grid (`quantize`).
    pub fn integer_engine(&self, spec: &FixedSpec) -> Result<FixedEnsemble, FixedError> {
        let current = self.config.encoder == EncoderConfig::Current;
        FixedEnsemble::new(&self.net, current, spec)
    }

    /// `classify` on the integer engine made by `integer_engine`, with its registers' use.
    pub fn classify_fixed(
        &self,
        engine: &FixedEnsemble,
        mf: &mut MelFrame,
        samples: &[f32],
    ) -> (ClipOutput, FixedStats) {
        let (input, input_spikes) = self.encode(mf, samples);
        let (logits, stats) = engine.forward_clip(&input);
        let out = ClipOutput {
            probs: softmax(&logits),
            logits,
            spike_counts: stats.spike_counts.clone(),
            input_spikes: input_spikes as u64,
            synops: stats.synops,
            frames: stats.frames as usize,
        };
        (out, stats)
    }
}

/// The metadata of a model file: its validated configuration, training record and the
/// network configuration of each of its networks.
fn read_header(
    bytes: &[u8],
    p: &str,
) -> Result<(ModelConfig, serde_json::Value, Vec<NetworkConfig>), ModelError> {
    let not = |why: String| ModelError::NotAModel(p.to_string(), why);
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| not(e.to_string()))?;
    let md = meta.metadata().clone().unwrap_or_default();
    if md.get("format").map(String::as_str) != Some(FORMAT_NAME) {
        return Err(not("no spikeword format tag".into()));
    }
    let version = md.get("format_version").cloned().unwrap_or_default();
    if !(1..=FORMAT_VERSION).any(|v| v.to_string() == version) {
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
    config.validate().map_err(invalid)?;
    let training = match md.get("training") {
        None => serde_json::Value::Null,
        Some(t) => serde_json::from_str(t).map_err(|e| invalid(format!("training record: {e}")))?,
    };
    let members = match md.get("members") {
        None => 1,
        Some(k) => k
            .parse()
            .ok()
            .filter(|k| (1..=64).contains(k))
            .ok_or_else(|| invalid(format!("members: {k}")))?,
    };
    let shapes = match md.get("member_networks") {
        None => vec![config.network.clone(); members],
        Some(s) => member_shapes(s, &config, members).map_err(invalid)?,
    };
    Ok((config, training, shapes))
}

/// What keeps a network of configuration `b` from voting with one of `a` (`None`: it
/// may). Each network runs with its own widths, but the votes are averaged as logits, so
/// all must read out on one scale, and the per-layer rates need one depth.
fn cannot_vote_with(a: &NetworkConfig, b: &NetworkConfig) -> Option<&'static str> {
    if a.logit_scale != b.logit_scale {
        Some("readout logit scale")
    } else if a.channels.len() != b.channels.len() {
        Some("number of spiking layers")
    } else {
        None
    }
}

/// The per-member network configurations of an ensemble of several shapes, checked as
/// the model's own (a corrupt entry must not size a network) and against it.
fn member_shapes(
    json: &str,
    config: &ModelConfig,
    members: usize,
) -> Result<Vec<NetworkConfig>, String> {
    let shapes: Vec<NetworkConfig> =
        serde_json::from_str(json).map_err(|e| format!("member networks: {e}"))?;
    if shapes.len() != members {
        return Err(format!(
            "{} member network configurations for {members} networks",
            shapes.len()
        ));
    }
    for (k, n) in shapes.iter().enumerate() {
        n.validate().map_err(|e| format!("member {}: {e}", k + 1))?;
        let what = cannot_vote_with(&config.network, n)
            .or((n.decision_frames != config.network.decision_frames).then_some("decision window"));
        if let Some(what) = what {
            return Err(format!("member {}: its {what} is not the model's", k + 1));
        }
    }
    Ok(shapes)
}

/// The replay index of a model file's metadata, if it has one.
fn read_replay_index(bytes: &[u8]) -> Option<String> {
    let (_, meta) = SafeTensors::read_metadata(bytes).ok()?;
    meta.metadata().as_ref()?.get("replay").cloned()
}

/// The tensors of a model file, read by name and checked against the shape the
/// configuration implies.
struct Tensors<'a> {
    st: SafeTensors<'a>,
    path: &'a str,
}

impl Tensors<'_> {
    fn invalid(&self, why: String) -> ModelError {
        ModelError::Invalid(self.path.to_string(), why)
    }

    /// A finite F32 tensor of exactly `shape`.
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let t = self
            .st
            .tensor(name)
            .map_err(|_| self.invalid(format!("missing tensor {name}")))?;
        if t.dtype() != Dtype::F32 || t.shape() != shape {
            return Err(self.invalid(format!(
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
            return Err(self.invalid(format!("tensor {name} holds non-finite values")));
        }
        Ok(v)
    }

    /// A weight matrix of exactly `shape`: F32, or integers (I8, I16) times the
    /// per-neuron scales of `NAME_scale`, the neurons along axis `out_axis`.
    fn weights(
        &self,
        name: &str,
        shape: &[usize],
        out_axis: usize,
    ) -> Result<Vec<f32>, ModelError> {
        let t = self
            .st
            .tensor(name)
            .map_err(|_| self.invalid(format!("missing tensor {name}")))?;
        let q: Vec<i16> = match t.dtype() {
            Dtype::I8 => t.data().iter().map(|&b| i16::from(b as i8)).collect(),
            Dtype::I16 => t
                .data()
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect(),
            _ => return self.get(name, shape),
        };
        if t.shape() != shape {
            return Err(self.invalid(format!(
                "tensor {name}: {:?} {:?}, expected {shape:?}",
                t.dtype(),
                t.shape()
            )));
        }
        let scale = self.get(&format!("{name}_scale"), &[shape[out_axis]])?;
        if let Some(x) = scale.iter().find(|x| **x < 0.0) {
            return Err(self.invalid(format!("tensor {name}_scale holds {x}, below 0")));
        }
        let stride = shape[out_axis + 1..].iter().product();
        let w = quantize::from_integers(&q, &scale, stride);
        if w.iter().any(|x| !x.is_finite()) {
            return Err(self.invalid(format!("tensor {name} times its scales overflows")));
        }
        Ok(w)
    }

    /// Leaks: within [0, 1] (outside they diverge or oscillate).
    fn leaks(&self, name: &str, n: usize) -> Result<Vec<f32>, ModelError> {
        let v = self.get(name, &[n])?;
        match v.iter().find(|x| !(0.0..=1.0).contains(*x)) {
            Some(x) => Err(self.invalid(format!("tensor {name} holds {x}, outside 0..1"))),
            None => Ok(v),
        }
    }

    /// Thresholds: above 0 (at or below it a neuron fires every frame).
    fn thresholds(&self, name: &str, n: usize) -> Result<Vec<f32>, ModelError> {
        let v = self.get(name, &[n])?;
        match v.iter().find(|x| **x <= 0.0) {
            Some(x) => Err(self.invalid(format!("tensor {name} holds {x}, not above 0"))),
            None => Ok(v),
        }
    }

    /// The stored replay, checked against its index.
    fn replay(
        &self,
        index: Option<String>,
    ) -> Result<Option<std::sync::Arc<ReplayStore>>, ModelError> {
        let Some(index) = index else {
            return Ok(None);
        };
        let t = self
            .st
            .tensor(replay::TENSOR)
            .map_err(|_| self.invalid(format!("missing tensor {}", replay::TENSOR)))?;
        if t.dtype() != Dtype::U8 {
            return Err(self.invalid(format!(
                "tensor {}: {:?}, expected U8",
                replay::TENSOR,
                t.dtype()
            )));
        }
        let store = ReplayStore::decode(&index, t.data()).map_err(|e| self.invalid(e))?;
        Ok(Some(std::sync::Arc::new(store)))
    }

    /// Network `k` of the file.
    fn member(
        &self,
        config: &ModelConfig,
        net: &NetworkConfig,
        k: usize,
    ) -> Result<Network, ModelError> {
        let pre = member_prefix(k);
        let n = config.labels.len();
        let mut prev = config.encoder.out_channels(config.features.n_mels);
        let mut layers = Vec::new();
        for (i, (&c, &d)) in net.channels.iter().zip(&net.dilations).enumerate() {
            let name = |what: &str| format!("{pre}layers.{i}.{what}");
            let w = self.weights(&name("weight"), &[c, prev, net.kernel], 0)?;
            layers.push(SpikingLayer::from_conv(
                &w,
                (c, prev, net.kernel),
                d,
                self.get(&name("bias"), &[c])?,
                self.leaks(&name("beta"), c)?,
                self.thresholds(&name("threshold"), c)?,
            ));
            prev = c;
        }
        let readout = Readout {
            c_in: prev,
            n_classes: n,
            w: self.weights(&format!("{pre}readout.weight"), &[prev, n], 1)?,
            bias: self.get(&format!("{pre}readout.bias"), &[n])?,
            beta: self.leaks(&format!("{pre}readout.beta"), n)?,
        };
        Ok(Network {
            config: net.clone(),
            layers,
            readout,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetworkConfig;
    use crate::snn::random_network;
    use crate::util::Rng;

    /// First-layer input current of one frame with a full history (`x[k]`: the raw frame
    /// tap `k` reads), normalised with (`mean`, `std`).
    fn current(l: &SpikingLayer, x: &[Vec<f32>], mean: &[f32], std: &[f32]) -> Vec<f32> {
        let mut acc = l.bias.clone();
        for (k, frame) in x.iter().enumerate() {
            for (i, v) in frame.iter().enumerate() {
                let xn = (v - mean[i]) / std[i];
                for (o, a) in acc.iter_mut().enumerate() {
                    *a += l.w[(k * l.c_in + i) * l.c_out + o] * xn;
                }
            }
        }
        acc
    }

    #[test]
    fn a_folded_normalisation_gives_the_same_input_current() {
        let net = random_network(&NetworkConfig::default(), 6, 3, 4);
        let mut rng = Rng::new(9);
        let own: (Vec<f32>, Vec<f32>) = (
            (0..6).map(|_| rng.range(-9.0, -6.0)).collect(),
            (0..6).map(|_| rng.range(3.0, 5.0)).collect(),
        );
        let common: (Vec<f32>, Vec<f32>) = (
            own.0.iter().map(|m| m + rng.range(-0.5, 0.5)).collect(),
            own.1.iter().map(|s| s * rng.range(0.8, 1.2)).collect(),
        );
        let mut folded = net.layers[0].clone();
        fold_normalisation(&mut folded, (&own.0, &own.1), (&common.0, &common.1));
        for _ in 0..5 {
            let x: Vec<Vec<f32>> = (0..folded.kernel)
                .map(|_| (0..6).map(|_| rng.range(-14.0, 0.0)).collect())
                .collect();
            let want = current(&net.layers[0], &x, &own.0, &own.1);
            let got = current(&folded, &x, &common.0, &common.1);
            for (w, g) in want.iter().zip(&got) {
                assert!((w - g).abs() < 1e-3 * (1.0 + w.abs()), "{w} vs {g}");
            }
        }
    }
}
