//! The spiking network as a burn module, for backpropagation through time.
//!
//! It computes exactly what `snn::Network` computes frame by frame: causal dilated
//! conv1d (left zero padding of `(K−1)·d` frames), the LIF step of `snn::lif`, and the
//! leaky readout averaged over time. Spikes use the straight-through surrogate
//! `sg − sg.detach() + H(u).detach()`: Heaviside forward, `sg'` backward.
//!
//! Parameter ids are fixed (not random) so that a checkpoint's optimizer state maps
//! back onto a rebuilt module when training resumes.

use burn::module::{Module, Param, ParamId};
use burn::tensor::activation::{log_softmax, sigmoid};
use burn::tensor::module::conv1d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use super::conv::causal_conv;
use super::lif::{SpikeFn, lif_scan};
use crate::config::{NetworkConfig, Reset, Surrogate};
use crate::snn::{Network, Readout, SpikingLayer};

pub const BETA_MIN: f32 = 0.01;
/// Longest membrane memory allowed by default: τ = 1/(1−β) = 20 frames (200 ms). Longer
/// leaks let neurons integrate from the start of a clip, which a stream never has.
/// `TrainOptions::leak_max` lowers it.
pub const BETA_MAX: f32 = 0.95;
pub const THRESHOLD_MIN: f32 = 0.05;
/// Readout leak cap with a decision window (`NetworkConfig::decision_frames`): a leaky
/// readout would carry frames from before the window, whose receptive field reaches
/// before the clip, into the decision; at 0.5 their weight halves every frame.
pub const READOUT_BETA_MAX_WINDOWED: f32 = 0.5;

#[derive(Module, Debug)]
pub struct SpikingConv {
    pub weight: Param<Tensor<3>>,
    pub bias: Param<Tensor<1>>,
    pub beta: Param<Tensor<1>>,
    pub threshold: Param<Tensor<1>>,
    pub dilation: usize,
}

#[derive(Module, Debug)]
pub struct TrainNet {
    pub layers: Vec<SpikingConv>,
    pub readout_w: Param<Tensor<2>>,
    pub readout_b: Param<Tensor<1>>,
    pub readout_beta: Param<Tensor<1>>,
    /// Optional word head for training only: a linear classifier of every vocabulary word
    /// on the last layer's mean spike rates (`[C, words]`, `[words]`). Its loss asks the
    /// spiking layers to tell apart the words the 12-class task lumps into `_unknown_`,
    /// for features that carry over to new words. Not part of the shipped network.
    pub word_w: Option<Param<Tensor<2>>>,
    pub word_b: Option<Param<Tensor<1>>>,
    /// Optional embedding head for training only: a linear map of the last layer's mean
    /// spike rates over each window of `emb_windows` to a teacher's embedding space
    /// (`[C, dim]`, `[dim]`). Its loss asks the spiking layers for features a general
    /// speech model has, beyond the task's words. Not part of the shipped network.
    pub emb_w: Option<Param<Tensor<2>>>,
    pub emb_b: Option<Param<Tensor<1>>>,
    /// Frame ranges `(first, len)` of the embedding windows of an input.
    #[module(skip)]
    pub emb_windows: Vec<(usize, usize)>,
    #[module(skip)]
    pub cfg: NetworkConfig,
    /// How a layer's convolution and LIF recurrence run (see `LayerOps`).
    #[module(skip)]
    pub ops: LayerOps,
}

/// How a spiking layer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerOps {
    /// The fused CPU operations `conv::causal_conv` and `lif::lif_scan` (CPU default).
    Fused,
    /// burn's convolution and the fused LIF operation, which on a GPU is a kernel, one
    /// thread per neuron looping over time (GPU default).
    FusedLif,
    /// burn's padded conv1d and the LIF recurrence as a per-frame graph of tensor
    /// operations: the reference the fused operations are tested against.
    Graph,
}

/// Forward results: clip logits `[B, classes]` and the mean spike probability per layer.
pub struct Forward {
    pub logits: Tensor<2>,
    pub rates: Vec<Tensor<1>>,
    /// Word-head logits `[B, words]` when the module has a word head.
    pub word_logits: Option<Tensor<2>>,
    /// Embedding-head vectors `[B, windows, dim]` when the module has one.
    pub embeddings: Option<Tensor<3>>,
}

/// Serialises seeding burn's device random generator and drawing from it: the generator
/// is one state per process, shared by every thread that trains.
static DEVICE_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A spike dropout mask drawn on the device: 0 with probability `p`, else 1/(1−p); the
/// same `seed` gives the same mask.
fn dropout_mask(dims: [usize; 3], p: f32, seed: u64, device: &Device) -> Tensor<3> {
    let kept = Distribution::Bernoulli(1.0 - f64::from(p));
    let _only_us = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let mask: Tensor<3> = Tensor::random(dims, kept, device);
    mask.mul_scalar(1.0 / (1.0 - p))
}

/// Ids of the word head's parameters (apart from the network's `2..`).
const WORD_W_ID: u64 = 1_000_001;
const WORD_B_ID: u64 = 1_000_002;
const EMB_W_ID: u64 = 1_000_003;
const EMB_B_ID: u64 = 1_000_004;

fn head_weights(
    w: &Option<Param<Tensor<2>>>,
    b: &Option<Param<Tensor<1>>>,
) -> Option<(Vec<f32>, Vec<f32>)> {
    let v = |d: TensorData| d.try_to_vec::<f32>().expect("f32 tensor");
    match (w, b) {
        (Some(w), Some(b)) => Some((v(w.val().into_data()), v(b.val().into_data()))),
        _ => None,
    }
}

/// Mean cross-entropy of `logits` `[B, N]` against class indices.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    log_softmax(logits, 1)
        .gather(1, labels.unsqueeze_dim(1))
        .mean()
        .neg()
}

fn param<const D: usize>(id: u64, data: TensorData, device: &Device) -> Param<Tensor<D>> {
    let t = Tensor::from_data(data, device);
    Param::initialized(
        ParamId::from(id),
        if device.is_autodiff() {
            t.require_grad()
        } else {
            t
        },
    )
}

/// Cross-entropy of the clip logits plus the firing-rate penalty: each layer's mean spike
/// probability above `rate_target` costs `rate_weight` per unit.
pub fn loss(
    fwd: &Forward,
    labels: Tensor<1, Int>,
    rate_target: f32,
    rate_weight: f32,
) -> Tensor<1> {
    cross_entropy(fwd.logits.clone(), labels) + rate_penalty(fwd, rate_target, rate_weight)
}

/// The firing-rate penalty alone (see `loss`).
pub fn rate_penalty(fwd: &Forward, rate_target: f32, rate_weight: f32) -> Tensor<1> {
    let device = fwd.logits.device();
    fwd.rates
        .iter()
        .fold(Tensor::zeros([1], &device), |l: Tensor<1>, r| {
            l + r
                .clone()
                .sub_scalar(rate_target)
                .clamp_min(0.0)
                .mul_scalar(rate_weight)
        })
}

/// Frames × channels (the engine's layout) → channels × frames (burn's conv layout).
pub fn channels_first(x: &[f32], channels: usize) -> Vec<f32> {
    let t = x.len() / channels.max(1);
    let mut out = vec![0.0; x.len()];
    for ti in 0..t {
        for ci in 0..channels {
            out[ci * t + ti] = x[ti * channels + ci];
        }
    }
    out
}

/// The spike function: Heaviside forward, `Surrogate::derivative` backward (the graph
/// holds a primitive of the derivative, straight-through).
pub fn spike(u: Tensor<2>, surrogate: Surrogate, k: f32) -> Tensor<2> {
    let sg = match surrogate {
        Surrogate::Sigmoid => sigmoid(u.clone().mul_scalar(k)),
        // d/du [u / (1 + k|u|)] = 1 / (1 + k|u|)^2
        Surrogate::FastSigmoid => u.clone().div(u.clone().abs().mul_scalar(k).add_scalar(1.0)),
        // d/du [atan(πku/2)/π] = (k/2) / (1 + (πku/2)^2)
        Surrogate::Arctan => u
            .clone()
            .mul_scalar(std::f32::consts::PI * k / 2.0)
            .atan()
            .div_scalar(std::f32::consts::PI),
    };
    let heaviside = u.greater_elem(0.0).float();
    sg.clone() - sg.detach() + heaviside.detach()
}

impl TrainNet {
    /// Builds the module from inference weights (fresh init or a checkpoint).
    pub fn from_network(net: &Network, device: &Device) -> Self {
        let mut id = 1u64;
        let mut next = || {
            id += 1;
            id
        };
        let layers = net
            .layers
            .iter()
            .map(|l| SpikingConv {
                weight: param(
                    next(),
                    TensorData::new(l.conv_weight(), [l.c_out, l.c_in, l.kernel]),
                    device,
                ),
                bias: param(next(), TensorData::new(l.bias.clone(), [l.c_out]), device),
                beta: param(next(), TensorData::new(l.beta.clone(), [l.c_out]), device),
                threshold: param(
                    next(),
                    TensorData::new(l.threshold.clone(), [l.c_out]),
                    device,
                ),
                dilation: l.dilation,
            })
            .collect();
        let r = &net.readout;
        TrainNet {
            layers,
            readout_w: param(
                next(),
                TensorData::new(r.w.clone(), [r.c_in, r.n_classes]),
                device,
            ),
            readout_b: param(
                next(),
                TensorData::new(r.bias.clone(), [r.n_classes]),
                device,
            ),
            readout_beta: param(
                next(),
                TensorData::new(r.beta.clone(), [r.n_classes]),
                device,
            ),
            word_w: None,
            word_b: None,
            emb_w: None,
            emb_b: None,
            emb_windows: Vec::new(),
            cfg: net.config.clone(),
            ops: LayerOps::Fused,
        }
    }

    /// The same module with its layers run by `ops`.
    pub fn with_ops(mut self, ops: LayerOps) -> Self {
        self.ops = ops;
        self
    }

    /// Adds the word head with weights `w` (`[C, words]`, row-major) and biases `b`.
    pub fn with_word_head(mut self, w: Vec<f32>, b: Vec<f32>, device: &Device) -> Self {
        let words = b.len();
        let c = w.len() / words.max(1);
        self.word_w = Some(param(WORD_W_ID, TensorData::new(w, [c, words]), device));
        self.word_b = Some(param(WORD_B_ID, TensorData::new(b, [words]), device));
        self
    }

    /// The word head's weights and biases (for checkpoints).
    pub fn word_head(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        head_weights(&self.word_w, &self.word_b)
    }

    /// Adds the embedding head with weights `w` (`[C, dim]`, row-major), biases `b`, over
    /// the frame ranges `windows` of an input.
    pub fn with_embedding_head(
        mut self,
        w: Vec<f32>,
        b: Vec<f32>,
        windows: Vec<(usize, usize)>,
        device: &Device,
    ) -> Self {
        let dim = b.len();
        let c = w.len() / dim.max(1);
        self.emb_w = Some(param(EMB_W_ID, TensorData::new(w, [c, dim]), device));
        self.emb_b = Some(param(EMB_B_ID, TensorData::new(b, [dim]), device));
        self.emb_windows = windows;
        self
    }

    /// The embedding head's weights and biases (for checkpoints).
    pub fn embedding_head(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        head_weights(&self.emb_w, &self.emb_b)
    }

    /// Back to inference weights.
    pub fn to_network(&self) -> Network {
        let v = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().expect("f32 tensor");
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let [c_out, c_in, k] = l.weight.val().dims();
                let w = l
                    .weight
                    .val()
                    .into_data()
                    .try_to_vec::<f32>()
                    .expect("f32 tensor");
                SpikingLayer::from_conv(
                    &w,
                    (c_out, c_in, k),
                    l.dilation,
                    v(l.bias.val()),
                    v(l.beta.val()),
                    v(l.threshold.val()),
                )
            })
            .collect();
        let [c_in, n] = self.readout_w.val().dims();
        Network {
            config: self.cfg.clone(),
            layers,
            readout: Readout {
                c_in,
                n_classes: n,
                w: self
                    .readout_w
                    .val()
                    .into_data()
                    .try_to_vec::<f32>()
                    .expect("f32 tensor"),
                bias: v(self.readout_b.val()),
                beta: v(self.readout_beta.val()),
            },
        }
    }

    /// `x`: `[B, C_in, T]` network input (encoded frames).
    pub fn forward(&self, x: Tensor<3>) -> Forward {
        let t = x.dims()[2];
        self.forward_from(x, self.cfg.decision_start(0, t))
    }

    /// As `forward`, but the clip decision averages the readout over frames `start..T`
    /// only (the frames before are context). Firing rates still cover all frames.
    pub fn forward_from(&self, x: Tensor<3>, start: usize) -> Forward {
        self.forward_train(x, start, None)
    }

    /// As `forward_from`, with spike dropout during training: `Some((p, seed))` drops each
    /// spike with probability `p` (survivors scaled by 1/(1−p)) before it reaches the next
    /// layer or the readout, so that decisions rest on many spikes rather than a few exact
    /// ones (a single flipped spike otherwise cascades through the layers). The masks are
    /// drawn on the device from `seed`, so a resumed run repeats them.
    pub fn forward_train(
        &self,
        x: Tensor<3>,
        start: usize,
        dropout: Option<(f32, u64)>,
    ) -> Forward {
        let (h, rates) = self.spiking_layers(x, dropout);
        let word_logits = self.word_logits(&h, start);
        let embeddings = self.embeddings(&h);
        let logits = self.readout_logits(h, start);
        Forward {
            logits,
            rates,
            word_logits,
            embeddings,
        }
    }

    /// The layers of LIF neurons: the last layer's spikes `[B, C, T]` and each layer's mean
    /// firing (the rate penalty's input).
    fn spiking_layers(
        &self,
        x: Tensor<3>,
        dropout: Option<(f32, u64)>,
    ) -> (Tensor<3>, Vec<Tensor<1>>) {
        let device = x.device();
        let mut h = x;
        let mut rates = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let current = match self.ops {
                LayerOps::Fused => {
                    causal_conv(h, layer.weight.val(), layer.bias.val(), layer.dilation)
                }
                LayerOps::FusedLif | LayerOps::Graph => self.conv_graph(h, layer),
            };
            // (1 − β)·I for all frames at once; the recurrence only carries the state.
            let beta = layer.beta.val();
            let drive = current
                * beta
                    .clone()
                    .neg()
                    .add_scalar(1.0)
                    .unsqueeze_dim::<2>(1)
                    .unsqueeze::<3>();
            h = match self.ops {
                LayerOps::Fused | LayerOps::FusedLif => {
                    lif_scan(drive, beta, layer.threshold.val(), self.spike_fn())
                }
                LayerOps::Graph => self.lif_graph(drive, beta, layer.threshold.val()),
            };
            rates.push(h.clone().mean());
            if let Some((p, seed)) = dropout {
                let mask = dropout_mask(h.dims(), p, seed ^ ((rates.len() as u64) << 56), &device);
                h = h * mask;
            }
        }
        (h, rates)
    }

    /// The word head (the keyword teacher's classes) on the mean spike counts from `start`.
    fn word_logits(&self, h: &Tensor<3>, start: usize) -> Option<Tensor<2>> {
        let (w, b) = (self.word_w.as_ref()?, self.word_b.as_ref()?);
        let [bb, c, t] = h.dims();
        let t0 = start.min(t.saturating_sub(1));
        let rates: Tensor<2> = h
            .clone()
            .narrow(2, t0, t - t0)
            .mean_dim(2)
            .reshape([bb, c])
            .mul_scalar(self.cfg.logit_scale);
        Some(rates.matmul(w.val()) + b.val().unsqueeze())
    }

    /// The leaky readout's mean from `start` on: `[B, classes]` logits.
    fn readout_logits(&self, h: Tensor<3>, start: usize) -> Tensor<2> {
        // Readout y_t = W s_t + b, then the leaky integrator o_t = β o_{t−1} + (1−β) y_t.
        // The mean of o_t over frames t0..T has a closed form:
        //   Σ_u y_u (β^max(t0−u, 0) − β^(T−u)) / (T − t0).
        let device = h.device();
        let [b, c, t] = h.dims();
        let n = self.readout_b.val().dims()[0];
        let y = h
            .swap_dims(1, 2)
            .reshape([b * t, c])
            .matmul(self.readout_w.val())
            + self.readout_b.val().unsqueeze();
        let y: Tensor<3> = y.reshape([b, t, n]).swap_dims(1, 2); // [B, N, T]
        let t0 = start.min(t.saturating_sub(1));
        let row = |f: &dyn Fn(usize) -> f32| -> Tensor<2> {
            Tensor::from_data(
                TensorData::new((0..t).map(f).collect::<Vec<_>>(), [1, t]),
                &device,
            )
        };
        let (e_start, e_end) = (
            row(&|u| t0.saturating_sub(u) as f32),
            row(&|u| (t - u) as f32),
        );
        let ln_beta: Tensor<2> = self.readout_beta.val().log().unsqueeze_dim(1); // [N, 1]
        let weights = ((ln_beta.clone() * e_start).exp() - (ln_beta * e_end).exp())
            .div_scalar((t - t0) as f32); // [N, T]
        (y * weights.unsqueeze::<3>())
            .sum_dim(2)
            .reshape([b, n])
            .mul_scalar(self.cfg.logit_scale)
    }

    /// The embedding head on the last layer's spikes `h` `[B, C, T]`: `[B, windows, dim]`.
    fn embeddings(&self, h: &Tensor<3>) -> Option<Tensor<3>> {
        let (w, b) = (self.emb_w.as_ref()?, self.emb_b.as_ref()?);
        let [bb, c, t] = h.dims();
        let pooled: Vec<Tensor<2>> = self
            .emb_windows
            .iter()
            .map(|&(first, len)| {
                let first = first.min(t - 1);
                let len = len.min(t - first).max(1);
                h.clone().narrow(2, first, len).mean_dim(2).reshape([bb, c])
            })
            .collect();
        let k = pooled.len();
        let x: Tensor<3> = Tensor::stack(pooled, 1); // [B, K, C]
        let dim = b.val().dims()[0];
        let e = x
            .reshape([bb * k, c])
            .mul_scalar(self.cfg.logit_scale)
            .matmul(w.val())
            + b.val().unsqueeze();
        Some(e.reshape([bb, k, dim]))
    }

    fn spike_fn(&self) -> SpikeFn {
        SpikeFn {
            reset: self.cfg.reset,
            surrogate: self.cfg.surrogate,
            slope: self.cfg.surrogate_slope,
        }
    }

    /// The causal convolution as burn's padded conv1d (the reference for
    /// `conv::causal_conv`).
    fn conv_graph(&self, h: Tensor<3>, layer: &SpikingConv) -> Tensor<3> {
        let [b, c_in, _] = h.dims();
        let pad = (self.cfg.kernel - 1) * layer.dilation;
        let padded = Tensor::cat(vec![Tensor::zeros([b, c_in, pad], &h.device()), h], 2);
        conv1d(
            padded,
            layer.weight.val(),
            Some(layer.bias.val()),
            ConvOptions::new([1], [0], [layer.dilation], 1),
        )
    }

    /// The LIF recurrence as a graph of tensor operations, frame by frame (the reference
    /// for `lif::lif_scan`).
    fn lif_graph(&self, drive: Tensor<3>, beta: Tensor<1>, threshold: Tensor<1>) -> Tensor<3> {
        let [b, c_out, t] = drive.dims();
        let device = drive.device();
        let beta2: Tensor<2> = beta.unsqueeze();
        let thr2: Tensor<2> = threshold.unsqueeze();
        let mut v: Tensor<2> = Tensor::zeros([b, c_out], &device);
        let mut s: Tensor<2> = Tensor::zeros([b, c_out], &device);
        let mut spikes = Vec::with_capacity(t);
        for d in drive.chunk(t, 2) {
            let d: Tensor<2> = d.reshape([b, c_out]);
            let leaky = v * beta2.clone() + d;
            // The reset is not differentiated through (as in most SNN training).
            v = match self.cfg.reset {
                Reset::Subtract => leaky - s.detach() * thr2.clone(),
                Reset::Zero => leaky * s.detach().neg().add_scalar(1.0),
            };
            s = spike(
                v.clone() - thr2.clone(),
                self.cfg.surrogate,
                self.cfg.surrogate_slope,
            );
            spikes.push(s.clone());
        }
        Tensor::stack(spikes, 2)
    }

    /// Keeps leaks in `[BETA_MIN, beta_max]` and thresholds positive after an optimiser
    /// step.
    pub fn clamp(mut self, beta_max: f32) -> Self {
        let fix = |p: Param<Tensor<1>>, lo: f32, hi: f32| {
            p.map(|t| {
                let t = t.clamp(lo, hi).detach();
                if t.is_autodiff() { t.require_grad() } else { t }
            })
        };
        self.layers = self
            .layers
            .into_iter()
            .map(|mut l| {
                l.beta = fix(l.beta, BETA_MIN, beta_max);
                l.threshold = fix(l.threshold, THRESHOLD_MIN, 1e6);
                l
            })
            .collect();
        let readout_max = if self.cfg.decision_frames > 0 {
            READOUT_BETA_MAX_WINDOWED.min(beta_max)
        } else {
            beta_max
        };
        self.readout_beta = fix(self.readout_beta, BETA_MIN, readout_max);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snn::Mode;

    fn device() -> Device {
        Device::flex().autodiff()
    }

    #[test]
    fn every_surrogate_gradient_is_its_stated_derivative() {
        let dev = device();
        let xs = [-1.0f32, -0.5, -0.1, 0.0, 0.2, 0.3, 1.0, 2.0];
        for sur in [
            Surrogate::Sigmoid,
            Surrogate::FastSigmoid,
            Surrogate::Arctan,
        ] {
            for k in [2.0f32, 5.0] {
                let u: Tensor<2> =
                    Tensor::from_data(TensorData::new(xs.to_vec(), [1, 8]), &dev).require_grad();
                let s = spike(u.clone(), sur, k);
                let fwd = s.clone().into_data().try_to_vec::<f32>().unwrap();
                let want_fwd: Vec<f32> = xs.iter().map(|x| (*x > 0.0) as u8 as f32).collect();
                assert_eq!(fwd, want_fwd, "{sur:?}: forward is the Heaviside step");
                let grads = s.sum().backward();
                let g = u
                    .grad(&grads)
                    .unwrap()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap();
                for (x, gx) in xs.iter().zip(g) {
                    let want = sur.derivative(*x, k);
                    assert!(
                        (gx - want).abs() < 1e-5,
                        "{sur:?} k={k} u={x}: {gx} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn surrogate_peaks_are_the_documented_ones() {
        let k = 5.0;
        assert!((Surrogate::Sigmoid.derivative(0.0, k) - k / 4.0).abs() < 1e-6);
        assert!((Surrogate::FastSigmoid.derivative(0.0, k) - 1.0).abs() < 1e-6);
        assert!((Surrogate::Arctan.derivative(0.0, k) - k / 2.0).abs() < 1e-6);
        for sur in [
            Surrogate::Sigmoid,
            Surrogate::FastSigmoid,
            Surrogate::Arctan,
        ] {
            assert!(
                sur.derivative(0.3, k) < sur.derivative(0.0, k),
                "{sur:?} peaks at 0"
            );
            assert!((sur.derivative(0.3, k) - sur.derivative(-0.3, k)).abs() < 1e-6);
        }
    }

    /// Engine input (frames × 40 channels) as burn's `[1, C, T]`.
    fn batch_of_one(x: &[f32], t: usize, dev: &Device) -> Tensor<3> {
        Tensor::<2>::from_data(TensorData::new(x.to_vec(), [t, 40]), dev)
            .swap_dims(0, 1)
            .unsqueeze()
    }

    fn logits_of(f: Forward) -> Vec<f32> {
        f.logits.into_data().try_to_vec::<f32>().unwrap()
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-3, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn burn_graph_matches_the_frame_by_frame_engine() {
        let net = crate::snn::network::tests::firing_net(11);
        let t = 98;
        let x = crate::snn::network::tests::input(t, 5);
        let (want, st) = net.forward_clip(&x, Mode::Dense);
        assert!(st.spike_counts.iter().all(|&c| c > 0));
        let dev = Device::flex();
        let tn = TrainNet::from_network(&net, &dev);
        let f = tn.forward(batch_of_one(&x, t, &dev));
        let rate0 = f.rates[0].clone().into_scalar::<f32>();
        assert_close(&logits_of(f), &want);
        let engine_rate0 = st.spike_counts[0] as f32 / (t * 64) as f32;
        assert!((rate0 - engine_rate0).abs() < 1e-3);
        // With context: the mean of the engine's per-frame scores over the last frames.
        let start = 40;
        let mut st = net.new_state();
        let mut sum = vec![0f32; 12];
        let x2 = crate::snn::network::tests::input(t, 5);
        for (i, f) in x2.chunks(40).enumerate() {
            let o = net.step(&mut st, f, Mode::Dense);
            if i >= start {
                sum.iter_mut()
                    .zip(o)
                    .for_each(|(s, v)| *s += v / (t - start) as f32);
            }
        }
        assert_close(
            &logits_of(tn.forward_from(batch_of_one(&x2, t, &dev), start)),
            &sum,
        );
        // A decision over the last frames only: the same in both executions.
        let mut late = net.clone();
        late.config.decision_frames = 30;
        let (want, _) = late.forward_clip(&x2, Mode::Dense);
        let late_tn = TrainNet::from_network(&late, &dev);
        assert_close(
            &logits_of(late_tn.forward(batch_of_one(&x2, t, &dev))),
            &want,
        );
        // And the round trip through burn keeps every weight.
        let back = tn.to_network();
        assert_eq!(back.layers[2].w, net.layers[2].w);
        assert_eq!(back.readout.w, net.readout.w);
    }

    /// Ten-class labels, input `[B, 40, T]` and a firing network set to `reset`/`surrogate`.
    fn case(
        reset: Reset,
        surrogate: Surrogate,
        b: usize,
        t: usize,
    ) -> (Network, Vec<f32>, Vec<i64>) {
        let mut net = crate::snn::network::tests::firing_net(21);
        net.config.reset = reset;
        net.config.surrogate = surrogate;
        let mut r = crate::util::Rng::new(4);
        let x = (0..b * 40 * t).map(|_| r.normal() * 1.5).collect();
        let y = (0..b as i64).map(|i| (i * 5) % 12).collect();
        (net, x, y)
    }

    /// Loss and the gradient of every parameter after one forward and backward pass.
    fn loss_and_grads(
        tn: &TrainNet,
        x: &[f32],
        y: &[i64],
        drop: Option<(f32, u64)>,
    ) -> (f32, Vec<Vec<f32>>) {
        let dev = device();
        let (b, t) = (y.len(), x.len() / (40 * y.len()));
        let xt: Tensor<3> = Tensor::from_data(TensorData::new(x.to_vec(), [b, 40, t]), &dev);
        let yt: Tensor<1, Int> = Tensor::from_data(TensorData::new(y.to_vec(), [b]), &dev);
        let l = loss(&tn.forward_train(xt, 10, drop), yt, 0.03, 4.0);
        let lv = l.clone().into_scalar::<f32>();
        let grads = l.backward();
        let v = |d: TensorData| d.try_to_vec::<f32>().unwrap();
        let mut out = Vec::new();
        for layer in &tn.layers {
            out.push(v(layer.weight.val().grad(&grads).unwrap().into_data()));
            for p in [&layer.bias, &layer.beta, &layer.threshold] {
                out.push(v(p.val().grad(&grads).unwrap().into_data()));
            }
        }
        out.push(v(tn.readout_w.val().grad(&grads).unwrap().into_data()));
        out.push(v(tn.readout_beta.val().grad(&grads).unwrap().into_data()));
        (lv, out)
    }

    #[test]
    fn the_fused_operations_give_the_graphs_gradients() {
        let dev = device();
        for reset in [Reset::Subtract, Reset::Zero] {
            for surrogate in [
                Surrogate::Sigmoid,
                Surrogate::FastSigmoid,
                Surrogate::Arctan,
            ] {
                for drop in [None, Some((0.2, 9))] {
                    let (net, x, y) = case(reset, surrogate, 3, 60);
                    let fused = TrainNet::from_network(&net, &dev);
                    let graph = TrainNet::from_network(&net, &dev).with_ops(LayerOps::Graph);
                    let (lf, gf) = loss_and_grads(&fused, &x, &y, drop);
                    let (lg, gg) = loss_and_grads(&graph, &x, &y, drop);
                    let what = format!("{reset:?} {surrogate:?} dropout {drop:?}");
                    assert_eq!(lf, lg, "{what}: the forward passes differ");
                    for (k, (a, b)) in gf.iter().zip(&gg).enumerate() {
                        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                        assert!(scale > 0.0, "{what}: parameter {k} gets no gradient");
                        let worst = a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
                        assert!(
                            worst <= 1e-5 * scale,
                            "{what}: parameter {k}: {worst} of {scale}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn twenty_training_steps_follow_the_graphs_loss_trajectory() {
        use burn::optim::{AdamConfig, GradientsParams};
        let dev = device();
        let run = |ops: LayerOps| -> Vec<f32> {
            let (net, _, _) = case(Reset::Subtract, Surrogate::Sigmoid, 4, 50);
            let mut tn = TrainNet::from_network(&net, &dev).with_ops(ops);
            let mut optim = AdamConfig::new().init();
            let mut r = crate::util::Rng::new(8);
            (0..20)
                .map(|step| {
                    let x: Vec<f32> = (0..4 * 40 * 50).map(|_| r.normal() * 1.5).collect();
                    let y: Vec<i64> = (0..4).map(|i| (i + step) % 12).collect();
                    let xt: Tensor<3> = Tensor::from_data(TensorData::new(x, [4, 40, 50]), &dev);
                    let yt: Tensor<1, Int> = Tensor::from_data(TensorData::new(y, [4]), &dev);
                    let drop = Some((0.1, step as u64));
                    let l = loss(&tn.forward_train(xt, 5, drop), yt, 0.03, 4.0);
                    let lv = l.clone().into_scalar::<f32>();
                    let grads = GradientsParams::from_grads(l.backward(), &tn);
                    tn = optim.step(3e-3, tn.clone(), grads).clamp(BETA_MAX);
                    lv
                })
                .collect()
        };
        let (fused, graph) = (run(LayerOps::Fused), run(LayerOps::Graph));
        for (a, b) in fused.iter().zip(&graph) {
            assert!((a - b).abs() <= 1e-4 * b.abs(), "{fused:?} vs {graph:?}");
        }
        assert!(fused[19] < fused[0], "the loss did not fall: {fused:?}");
    }
}
