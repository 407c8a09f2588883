//! The network in integer arithmetic, as a neuromorphic chip runs it.
//!
//! `quantize` puts the synapses on an integer grid but the float engine still multiplies
//! them back out. Here nothing between the input and the readout potentials is a float:
//! inputs are rounded to a few bits, each spike adds integer weights into an integer
//! current, a membrane is an integer that a leak of `leak_bits` fraction bits decays, and
//! a neuron fires when it passes its integer threshold. Each neuron counts in its own
//! unit, `scale · input unit / 2^frac_bits` (its synapses' grid step), so its threshold
//! and bias are rounded once, when the chip is programmed. Only the host's reading of
//! the readout potentials (one multiply per class and frame) and the ensemble's mean are
//! in float. What it tells: whether the decisions survive a chip's arithmetic, and how
//! many bits a membrane needs.

use crate::config::{NetworkConfig, Reset};

use super::ensemble::Ensemble;
use super::network::Network;
use super::quantize::{bits_of_columns, to_integers};

/// The number formats of the integer engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedSpec {
    /// Bits of an input value when the encoder injects currents (spikes are 0 or 1).
    pub input_bits: u32,
    /// Normalised inputs (z-scores) are clipped to ±`input_range` before rounding.
    pub input_range: f32,
    /// Fraction bits of a leak factor: β is held as `round(β · 2^leak_bits)`.
    pub leak_bits: u32,
    /// Fraction bits a membrane keeps below one step of its synapses' grid, so that the
    /// small share `(1 − β)` of a current it takes each frame is not rounded away.
    pub frac_bits: u32,
    /// How a decayed membrane is brought back to whole units.
    pub leak_rounding: LeakRounding,
}

/// How a membrane's decay `β·v + (1 − β)·current` is brought back to whole units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum LeakRounding {
    /// To the nearest unit (halves up): unbiased, but a small membrane with no input stops
    /// decaying where `β·v` rounds back to `v` (below `0.5 / (1 − β)` units).
    #[default]
    Nearest,
    /// Toward zero, as Loihi truncates its decay (`sign · (|x| >> 12)`): a membrane with
    /// no input decays to 0, at a bias of under one unit a frame toward it.
    TowardZero,
}

impl LeakRounding {
    /// What is added to a decay held in `2^-bits` units before the arithmetic shift
    /// right (which floors) takes it to whole units; `one` is `2^bits`.
    #[inline(always)]
    fn offset(self, negative: bool, one: i64) -> i64 {
        match self {
            LeakRounding::Nearest => one >> 1,
            LeakRounding::TowardZero if negative => one - 1,
            LeakRounding::TowardZero => 0,
        }
    }
}

impl std::fmt::Display for LeakRounding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LeakRounding::Nearest => "rounded to nearest",
            LeakRounding::TowardZero => "truncated toward zero",
        })
    }
}

/// A neuron's leak as the chip holds it: `β = factor / 2^bits`, and its rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leak {
    pub factor: i64,
    pub bits: u32,
    pub rounding: LeakRounding,
}

impl Default for FixedSpec {
    /// 8-bit inputs over ±4 standard deviations, 12-bit leaks (Loihi's decay width) and
    /// 4 fraction bits: the bundled model's membranes then fit 24-bit registers, and its
    /// decisions did not change with more of any (validation clips, model card).
    fn default() -> Self {
        FixedSpec {
            input_bits: 8,
            input_range: 4.0,
            leak_bits: 12,
            frac_bits: 4,
            leak_rounding: LeakRounding::Nearest,
        }
    }
}

/// The formats' accepted ranges (so every product fits 64 bits with room to spare).
pub const INPUT_BITS: std::ops::RangeInclusive<u32> = 2..=16;
pub const LEAK_BITS: std::ops::RangeInclusive<u32> = 1..=16;
pub const FRAC_BITS: std::ops::RangeInclusive<u32> = 0..=16;

impl FixedSpec {
    pub fn check(&self) -> Result<(), String> {
        let within = |name: &str, v: u32, r: &std::ops::RangeInclusive<u32>| {
            if r.contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "{name} {v} is outside {} to {}",
                    r.start(),
                    r.end()
                ))
            }
        };
        within("input bits", self.input_bits, &INPUT_BITS)?;
        within("leak bits", self.leak_bits, &LEAK_BITS)?;
        within("fraction bits", self.frac_bits, &FRAC_BITS)?;
        if !(self.input_range.is_finite() && self.input_range > 0.0) {
            return Err(format!("input range {} is not above 0", self.input_range));
        }
        Ok(())
    }

    /// A neuron's leak factor in these formats.
    #[inline(always)]
    fn leak(&self, factor: i64) -> Leak {
        Leak {
            factor,
            bits: self.leak_bits,
            rounding: self.leak_rounding,
        }
    }

    /// Largest input integer.
    fn input_max(&self) -> i32 {
        (1 << (self.input_bits - 1)) - 1
    }
}

/// One frame of one integer neuron, the float `lif_step` term for term: the membrane
/// moves `(1 − β)` of the way to its current (`leak.factor = round(β · 2^leak.bits)`),
/// the spike of the frame before resets it, and it fires above its threshold. Returns
/// the new membrane and whether it fired.
#[inline(always)]
pub fn fixed_lif_step(
    v: i64,
    spiked: bool,
    current: i64,
    leak: Leak,
    threshold: i64,
    reset: Reset,
) -> (i64, bool) {
    let leaky = fixed_leak(v, current, leak);
    let v = match (reset, spiked) {
        (_, false) => leaky,
        (Reset::Subtract, true) => leaky.saturating_sub(threshold),
        (Reset::Zero, true) => 0,
    };
    (v, v > threshold)
}

/// `β·v + (1 − β)·current` with β as `leak.factor / 2^leak.bits`, back in whole units
/// as `leak.rounding` says. Where a product would pass 64 bits (only absurd biases or
/// thresholds get there) it is taken in 128 and the result saturates, as a chip's
/// register does: never a wrapped sign.
#[inline(always)]
fn fixed_leak(v: i64, current: i64, leak: Leak) -> i64 {
    let one = 1i64 << leak.bits;
    let sum = leak
        .factor
        .checked_mul(v)
        .zip((one - leak.factor).checked_mul(current))
        .and_then(|(a, b)| a.checked_add(b))
        .and_then(|x| x.checked_add(leak.rounding.offset(x < 0, one)));
    match sum {
        Some(x) => x >> leak.bits,
        None => fixed_leak_wide(v, current, leak),
    }
}

#[cold]
fn fixed_leak_wide(v: i64, current: i64, leak: Leak) -> i64 {
    let one = 1i64 << leak.bits;
    let factor = i128::from(leak.factor);
    let x = factor * i128::from(v) + i128::from(one - leak.factor) * i128::from(current);
    let x = (x + i128::from(leak.rounding.offset(x < 0, one))) >> leak.bits;
    x.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// A neuron's current in membrane units: its synaptic sum (in grid steps) with the
/// fraction bits, plus its bias; saturating like `fixed_leak`.
#[inline(always)]
fn membrane_current(sum: i64, frac_bits: u32, bias: i64) -> i64 {
    sum.saturating_mul(1 << frac_bits).saturating_add(bias)
}

/// Per-neuron constants in the neuron's own unit.
#[derive(Debug, Clone)]
struct Neurons {
    bias: Vec<i64>,
    leak: Vec<i64>,
    threshold: Vec<i64>,
    /// Value of one membrane unit (for reading potentials out).
    unit: Vec<f64>,
}

impl Neurons {
    /// Rounds biases, leaks and thresholds into units of `scale[o] · input_unit / 2^frac`.
    fn new(
        (bias, beta, threshold): (&[f32], &[f32], Option<&[f32]>),
        scale: &[f32],
        input_unit: f64,
        spec: &FixedSpec,
    ) -> Self {
        // A neuron without synapses (scale 0) still needs a unit for its bias.
        let unit: Vec<f64> = scale
            .iter()
            .map(|&s| if s > 0.0 { f64::from(s) } else { 1.0 } * input_unit)
            .map(|u| u / f64::from(1u32 << spec.frac_bits))
            .collect();
        let to_units = |x: &[f32]| -> Vec<i64> {
            x.iter()
                .zip(&unit)
                .map(|(&x, u)| (f64::from(x) / u).round() as i64)
                .collect()
        };
        let one = f64::from(1u32 << spec.leak_bits);
        Neurons {
            bias: to_units(bias),
            leak: beta
                .iter()
                .map(|&b| (f64::from(b) * one).round() as i64)
                .collect(),
            threshold: threshold.map(to_units).unwrap_or_default(),
            unit,
        }
    }
}

/// A spiking layer with integer synapses, stored tap-major (`[k][in][out]`) as the float one.
#[derive(Debug, Clone)]
struct FixedLayer {
    c_in: usize,
    c_out: usize,
    kernel: usize,
    dilation: usize,
    w: Vec<i32>,
    /// Every sum of this layer fits 32 bits (8-bit formats always do): faster.
    narrow: bool,
    neurons: Neurons,
}

impl FixedLayer {
    fn history(&self) -> usize {
        (self.kernel - 1) * self.dilation + 1
    }
}

/// The leaky readout with integer synapses (`[in][out]`).
#[derive(Debug, Clone)]
struct FixedReadout {
    n_classes: usize,
    w: Vec<i32>,
    narrow: bool,
    neurons: Neurons,
}

/// Why a network cannot run in integers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FixedError {
    #[error("{0}")]
    Spec(String),
    #[error(
        "the weights of {0} are not on an integer grid of at most 16 bits: quantize the model first (spikeword quantize)"
    )]
    OffGrid(String),
}

/// One network in integer arithmetic.
#[derive(Debug, Clone)]
pub struct FixedNetwork {
    config: NetworkConfig,
    spec: FixedSpec,
    /// Value of one input integer; `None` for spike inputs (0 or 1 as they are).
    input_scale: Option<f32>,
    layers: Vec<FixedLayer>,
    readout: FixedReadout,
    /// Each class's score per readout unit (the unit times the logit scale).
    score_scale: Vec<f32>,
}

/// Integers of a weight matrix (output index fastest) on its own grid, or why not.
fn grid(w: &[f32], n_out: usize, what: String) -> Result<(Vec<i32>, Vec<f32>), FixedError> {
    let bits = bits_of_columns(w, n_out).ok_or_else(|| FixedError::OffGrid(what.clone()))?;
    let (q, scale) = to_integers(w, n_out, bits).ok_or(FixedError::OffGrid(what))?;
    Ok((q.into_iter().map(i32::from).collect(), scale))
}

impl FixedNetwork {
    /// The network with its weights as integers (they must lie on a grid, as `quantize`
    /// leaves them); `current_input`: the encoder injects real values, rounded per `spec`.
    pub fn new(net: &Network, current_input: bool, spec: &FixedSpec) -> Result<Self, FixedError> {
        spec.check().map_err(FixedError::Spec)?;
        let input_scale = current_input.then(|| spec.input_range / spec.input_max() as f32);
        let mut input_unit = f64::from(input_scale.unwrap_or(1.0));
        let mut layers = Vec::with_capacity(net.layers.len());
        for (i, l) in net.layers.iter().enumerate() {
            let (w, scale) = grid(&l.w, l.c_out, format!("layer {}", i + 1))?;
            let neurons = Neurons::new(
                (&l.bias, &l.beta, Some(&l.threshold)),
                &scale,
                input_unit,
                spec,
            );
            let x_max = if i == 0 && current_input {
                spec.input_max()
            } else {
                1
            };
            layers.push(FixedLayer {
                c_in: l.c_in,
                c_out: l.c_out,
                kernel: l.kernel,
                dilation: l.dilation,
                narrow: sums_fit_i32(l.c_in * l.kernel, x_max, &w),
                w,
                neurons,
            });
            // Spikes are 0 or 1: the next layer's input unit is one.
            input_unit = 1.0;
        }
        let r = &net.readout;
        let (w, scale) = grid(&r.w, r.n_classes, "the readout".into())?;
        let neurons = Neurons::new((&r.bias, &r.beta, None), &scale, 1.0, spec);
        let score_scale = neurons
            .unit
            .iter()
            .map(|u| (u * f64::from(net.config.logit_scale)) as f32)
            .collect();
        Ok(FixedNetwork {
            config: net.config.clone(),
            spec: *spec,
            input_scale,
            layers,
            readout: FixedReadout {
                n_classes: r.n_classes,
                narrow: sums_fit_i32(r.c_in, 1, &w),
                w,
                neurons,
            },
            score_scale,
        })
    }

    pub fn new_state(&self) -> FixedState {
        FixedState {
            rings: self
                .layers
                .iter()
                .map(|l| vec![0; l.history() * l.c_in])
                .collect(),
            pos: vec![0; self.layers.len()],
            v: self.layers.iter().map(|l| vec![0; l.c_out]).collect(),
            spiked: self.layers.iter().map(|l| vec![false; l.c_out]).collect(),
            out: self.layers.iter().map(|l| vec![0; l.c_out]).collect(),
            input: vec![0; self.layers[0].c_in],
            readout_v: vec![0; self.readout.n_classes],
            scores: vec![0.0; self.readout.n_classes],
            sums: Sums::default(),
            stats: FixedStats {
                spike_counts: vec![0; self.layers.len()],
                peak_membrane: vec![0; self.layers.len() + 1],
                ..FixedStats::default()
            },
        }
    }

    /// Rounds one input frame to integers (clipping counted).
    fn read_input(&self, frame: &[f32], st: &mut FixedState) {
        let Some(scale) = self.input_scale else {
            st.input
                .iter_mut()
                .zip(frame)
                .for_each(|(q, &x)| *q = x as i32);
            return;
        };
        let max = self.spec.input_max();
        for (q, &x) in st.input.iter_mut().zip(frame) {
            let r = (x / scale).round();
            st.stats.clipped_inputs += (r.abs() > max as f32) as u64;
            *q = (r as i32).clamp(-max, max);
        }
        st.stats.inputs += frame.len() as u64;
    }

    /// Advances one frame; returns the class scores the host reads off the readout.
    pub fn step<'s>(&self, st: &'s mut FixedState, frame: &[f32]) -> &'s [f32] {
        self.read_input(frame, st);
        let spec = self.spec;
        let reset = self.config.reset;
        for (li, layer) in self.layers.iter().enumerate() {
            let (c_in, hist) = (layer.c_in, layer.history());
            let pos = st.pos[li];
            let src = if li == 0 { &st.input } else { &st.out[li - 1] };
            st.rings[li][pos * c_in..(pos + 1) * c_in].copy_from_slice(src);
            let taps = (0..layer.kernel).map(|k| {
                // Tap k looks (K−1−k)·d frames back.
                let back = (layer.kernel - 1 - k) * layer.dilation;
                let slot = (pos + hist - back) % hist;
                let wk = &layer.w[k * c_in * layer.c_out..(k + 1) * c_in * layer.c_out];
                (&st.rings[li][slot * c_in..(slot + 1) * c_in], wk)
            });
            st.stats.synops += st.sums.add(taps, layer.c_out, layer.narrow);
            st.pos[li] = (pos + 1) % hist;
            let n = &layer.neurons;
            let (v, spiked, out) = (&mut st.v[li], &mut st.spiked[li], &mut st.out[li]);
            for (o, &sum) in st.sums.wide.iter().enumerate() {
                let current = membrane_current(sum, spec.frac_bits, n.bias[o]);
                let (nv, s) = fixed_lif_step(
                    v[o],
                    spiked[o],
                    current,
                    spec.leak(n.leak[o]),
                    n.threshold[o],
                    reset,
                );
                let peak = &mut st.stats.peak_membrane[li];
                *peak = (*peak).max(nv.unsigned_abs());
                (v[o], spiked[o], out[o]) = (nv, s, s as i32);
                st.stats.spike_counts[li] += s as u64;
            }
        }
        self.readout_frame(st);
        st.stats.frames += 1;
        &st.scores
    }

    /// The leaky readout on the last layer's spikes; its potentials read as scores.
    fn readout_frame(&self, st: &mut FixedState) {
        let r = &self.readout;
        let last = &st.out[self.layers.len() - 1];
        let taps = std::iter::once((&last[..], &r.w[..]));
        st.stats.synops += st.sums.add(taps, r.n_classes, r.narrow);
        let n = &r.neurons;
        for (c, &sum) in st.sums.wide.iter().enumerate() {
            let current = membrane_current(sum, self.spec.frac_bits, n.bias[c]);
            let v = fixed_leak(st.readout_v[c], current, self.spec.leak(n.leak[c]));
            let peak = &mut st.stats.peak_membrane[self.layers.len()];
            *peak = (*peak).max(v.unsigned_abs());
            st.readout_v[c] = v;
            st.scores[c] = v as f32 * self.score_scale[c];
        }
    }

    /// A whole clip (frames × input channels) from a fresh state: the mean scores over
    /// the decision frames, as the float engine's clip logits, and the final state.
    pub fn forward_clip(&self, input: &[f32]) -> (Vec<f32>, FixedState) {
        let c_in = self.layers[0].c_in;
        let t = input.len() / c_in;
        let start = self.config.decision_start(0, t);
        let mut st = self.new_state();
        let mut sum = vec![0f32; self.readout.n_classes];
        for (i, frame) in input.chunks_exact(c_in).enumerate() {
            let scores = self.step(&mut st, frame);
            if i >= start {
                sum.iter_mut().zip(scores).for_each(|(s, v)| *s += v);
            }
        }
        sum.iter_mut().for_each(|s| *s /= (t - start).max(1) as f32);
        (sum, st)
    }
}

/// Whether `terms` products of an input up to `x_max` and a weight of `w` always sum
/// within 32 bits.
fn sums_fit_i32(terms: usize, x_max: i32, w: &[i32]) -> bool {
    let w_max = w
        .iter()
        .map(|w| i64::from(w.unsigned_abs()))
        .max()
        .unwrap_or(0);
    (terms as i64).saturating_mul(i64::from(x_max) * w_max) < i64::from(i32::MAX)
}

/// Scratch for one layer's synaptic sums: added in 32 bits where they fit (twice the
/// vector lanes), read out in 64.
#[derive(Debug, Clone, Default)]
struct Sums {
    narrow: Vec<i32>,
    wide: Vec<i64>,
}

impl Sums {
    /// Sums every tap's `(inputs, weights)` into `n_out` outputs (left in `wide`);
    /// returns the synaptic operations done.
    fn add<'a>(
        &mut self,
        taps: impl Iterator<Item = (&'a [i32], &'a [i32])>,
        n_out: usize,
        narrow: bool,
    ) -> u64 {
        let mut ops = 0;
        self.wide.clear();
        if narrow {
            self.narrow.clear();
            self.narrow.resize(n_out, 0);
            for (x, w) in taps {
                ops += add_events(&mut self.narrow, x, w);
            }
            self.wide.extend(self.narrow.iter().map(|&a| i64::from(a)));
        } else {
            self.wide.resize(n_out, 0);
            for (x, w) in taps {
                ops += add_events(&mut self.wide, x, w);
            }
        }
        ops
    }
}

/// `acc += Σ_i x[i] · w[i·c_out..]` over the inputs that are not zero (spikes add their
/// column; rounded currents multiply it; a product of two 16-bit values fits 32 bits).
/// Returns the synaptic operations done.
fn add_events<A: Copy + From<i32> + std::ops::AddAssign>(
    acc: &mut [A],
    x: &[i32],
    w: &[i32],
) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { add_events_avx2(acc, x, w) };
    }
    add_events_body(acc, x, w)
}

/// The same loop compiled for AVX2 (8 lanes of 32 bits); integers: the same result.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_events_avx2<A: Copy + From<i32> + std::ops::AddAssign>(
    acc: &mut [A],
    x: &[i32],
    w: &[i32],
) -> u64 {
    add_events_body(acc, x, w)
}

#[inline(always)]
fn add_events_body<A: Copy + From<i32> + std::ops::AddAssign>(
    acc: &mut [A],
    x: &[i32],
    w: &[i32],
) -> u64 {
    let c_out = acc.len();
    let mut ops = 0;
    for (&x, col) in x.iter().zip(w.chunks_exact(c_out)) {
        if x == 0 {
            continue;
        }
        ops += c_out as u64;
        for (a, &w) in acc.iter_mut().zip(col) {
            *a += A::from(x * w);
        }
    }
    ops
}

/// What a stream did in integers: activity as the float engine counts it, and the range
/// a chip's registers must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FixedStats {
    pub spike_counts: Vec<u64>,
    pub synops: u64,
    pub frames: u64,
    /// Largest |membrane| per spiking layer and, last, of the readout, in its units.
    pub peak_membrane: Vec<u64>,
    /// Input values rounded, and how many of them fell outside the input range.
    pub inputs: u64,
    pub clipped_inputs: u64,
}

impl FixedStats {
    /// Bits of a signed register that holds every membrane seen, per spiking layer and,
    /// last, of the readout.
    pub fn membrane_bits(&self) -> Vec<u32> {
        self.peak_membrane
            .iter()
            .map(|p| 65 - p.leading_zeros())
            .collect()
    }

    /// Adds another stream's (or member's) counts; the peak is the larger.
    pub fn merge(&mut self, o: &FixedStats) {
        if self.spike_counts.len() < o.spike_counts.len() {
            self.spike_counts.resize(o.spike_counts.len(), 0);
        }
        self.spike_counts
            .iter_mut()
            .zip(&o.spike_counts)
            .for_each(|(a, b)| *a += b);
        self.synops += o.synops;
        self.frames = self.frames.max(o.frames);
        if self.peak_membrane.len() < o.peak_membrane.len() {
            self.peak_membrane.resize(o.peak_membrane.len(), 0);
        }
        self.peak_membrane
            .iter_mut()
            .zip(&o.peak_membrane)
            .for_each(|(a, &b)| *a = (*a).max(b));
        self.inputs += o.inputs;
        self.clipped_inputs += o.clipped_inputs;
    }
}

/// Everything a stream carries from one frame to the next, in integers.
#[derive(Debug, Clone)]
pub struct FixedState {
    rings: Vec<Vec<i32>>,
    pos: Vec<usize>,
    v: Vec<Vec<i64>>,
    spiked: Vec<Vec<bool>>,
    out: Vec<Vec<i32>>,
    input: Vec<i32>,
    readout_v: Vec<i64>,
    scores: Vec<f32>,
    sums: Sums,
    pub stats: FixedStats,
}

/// The stream state of every member of a `FixedEnsemble`.
#[derive(Debug, Clone)]
pub struct FixedEnsembleState {
    pub members: Vec<FixedState>,
    scores: Vec<f32>,
}

impl FixedEnsembleState {
    /// Frames seen.
    pub fn frames(&self) -> u64 {
        self.members[0].stats.frames
    }
}

/// Every member of an ensemble in integers; the host averages their scores.
#[derive(Debug, Clone)]
pub struct FixedEnsemble {
    pub members: Vec<FixedNetwork>,
}

impl FixedEnsemble {
    pub fn new(net: &Ensemble, current_input: bool, spec: &FixedSpec) -> Result<Self, FixedError> {
        let members = net
            .members
            .iter()
            .enumerate()
            .map(|(k, m)| {
                FixedNetwork::new(m, current_input, spec).map_err(|e| match e {
                    FixedError::OffGrid(what) if net.members.len() > 1 => {
                        FixedError::OffGrid(format!("{what} of network {}", k + 1))
                    }
                    e => e,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(FixedEnsemble { members })
    }

    /// The number formats (the same for every member).
    pub fn spec(&self) -> FixedSpec {
        self.members[0].spec
    }

    pub fn new_state(&self) -> FixedEnsembleState {
        FixedEnsembleState {
            members: self.members.iter().map(|m| m.new_state()).collect(),
            scores: vec![0.0; self.members[0].readout.n_classes],
        }
    }

    /// Advances every member one frame; returns the mean of their scores.
    pub fn step<'s>(&self, st: &'s mut FixedEnsembleState, frame: &[f32]) -> &'s [f32] {
        let k = self.members.len() as f32;
        st.scores.iter_mut().for_each(|s| *s = 0.0);
        for (m, ms) in self.members.iter().zip(st.members.iter_mut()) {
            let o = m.step(ms, frame);
            st.scores.iter_mut().zip(o).for_each(|(s, v)| *s += v / k);
        }
        &st.scores
    }

    /// The mean of the members' clip scores, and their activity together (input
    /// rounding counted once: every member reads the same inputs).
    pub fn forward_clip(&self, input: &[f32]) -> (Vec<f32>, FixedStats) {
        let k = self.members.len() as f32;
        let mut sum: Vec<f32> = Vec::new();
        let mut stats = FixedStats::default();
        for (i, m) in self.members.iter().enumerate() {
            let (logits, st) = m.forward_clip(input);
            sum.resize(logits.len(), 0.0);
            sum.iter_mut().zip(&logits).for_each(|(s, v)| *s += v / k);
            let mut s = st.stats;
            if i > 0 {
                (s.inputs, s.clipped_inputs) = (0, 0);
            }
            stats.merge(&s);
        }
        (sum, stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetworkConfig;
    use crate::snn::lif::lif_step;
    use crate::snn::network::Mode;
    use crate::snn::quantize::quantize_network;
    use crate::snn::random_network;
    use crate::util::Rng;

    /// A 12-bit leak rounded to the nearest unit.
    fn nearest(factor: i64) -> Leak {
        Leak {
            factor,
            bits: 12,
            rounding: LeakRounding::Nearest,
        }
    }

    #[test]
    fn an_integer_neuron_follows_the_float_one() {
        // Unit 1/256 of a current; β = 0.75 exactly in 12 bits; θ = 1.0.
        let mut rng = Rng::new(3);
        for reset in [Reset::Subtract, Reset::Zero] {
            let (mut v, mut s) = (0f32, false);
            let (mut vi, mut si) = (0i64, false);
            let mut fired = 0;
            for _ in 0..200 {
                let x = rng.range(-1.0, 3.0);
                let xi = (x * 256.0).round() as i64;
                (v, s) = lif_step(v, s, xi as f32 / 256.0, 0.75, 1.0, reset);
                (vi, si) = fixed_lif_step(vi, si, xi, nearest(3072), 256, reset);
                // Each step rounds by at most half a unit and β < 1 damps the errors.
                assert!((vi as f32 / 256.0 - v).abs() <= 2.0 / 256.0, "{vi} {v}");
                if (v - 1.0).abs() > 4.0 / 256.0 {
                    assert_eq!(s, si, "{v}");
                }
                fired += si as u32;
            }
            assert!(
                fired > 10,
                "the neuron must fire for the test to mean anything"
            );
        }
    }

    #[test]
    fn toward_zero_decays_to_nothing_where_nearest_leaves_a_residue() {
        // β = 3686 / 4096 ≈ 0.9: to the nearest unit a membrane stops below 0.5 / 0.1.
        let leak = |rounding| Leak {
            factor: 3686,
            bits: 12,
            rounding,
        };
        for start in [1000i64, -1000] {
            let run = |r| (0..200).fold(start, |v, _| fixed_leak(v, 0, leak(r)));
            assert_eq!(run(LeakRounding::TowardZero), 0, "{start}");
            let residue = run(LeakRounding::Nearest);
            assert!(residue != 0 && residue.abs() <= 5, "{start}: {residue}");
        }
        // Toward zero is integer division as Rust does it, on the 64- and 128-bit paths.
        let mut rng = Rng::new(9);
        let l = leak(LeakRounding::TowardZero);
        for _ in 0..1000 {
            let (v, c) = (rng.range(-1e6, 1e6) as i64, rng.range(-1e6, 1e6) as i64);
            let exact = (l.factor * v + (4096 - l.factor) * c) / 4096;
            assert_eq!(fixed_leak(v, c, l), exact, "{v} {c}");
            assert_eq!(fixed_leak_wide(v, c, l), exact, "{v} {c}");
        }
    }

    #[test]
    fn a_leak_of_one_holds_and_of_zero_follows() {
        assert_eq!(
            fixed_lif_step(500, false, -7, nearest(4096), 1000, Reset::Subtract),
            (500, false)
        );
        assert_eq!(
            fixed_lif_step(500, false, 1234, nearest(0), 1000, Reset::Subtract),
            (1234, true)
        );
        assert_eq!(
            fixed_lif_step(500, true, 1234, nearest(0), 1000, Reset::Subtract),
            (234, false)
        );
        assert_eq!(
            fixed_lif_step(500, true, 1234, nearest(0), 1000, Reset::Zero),
            (0, false)
        );
    }

    #[test]
    fn absurd_biases_and_thresholds_saturate_instead_of_wrapping() {
        let mut net = quantized(16, 8);
        // Layer 1: a bias far past any register, and neurons that can never fire.
        net.layers[0].bias.iter_mut().for_each(|b| *b = 1e30);
        net.layers[1].threshold.iter_mut().for_each(|t| *t = 1e30);
        let fixed = FixedNetwork::new(&net, true, &FixedSpec::default()).unwrap();
        let (logits, st) = fixed.forward_clip(&inputs(11, 50, 20));
        assert!(logits.iter().all(|l| l.is_finite()));
        // Saturated high, the first layer fires every frame (a reset leaves its membrane
        // far above threshold); the second never does.
        assert_eq!(st.stats.spike_counts[0], 24 * 50);
        assert_eq!(st.stats.spike_counts[1], 0);
    }

    fn quantized(seed: u64, bits: u32) -> Network {
        let cfg = NetworkConfig {
            channels: vec![24, 16],
            dilations: vec![1, 2],
            ..NetworkConfig::default()
        };
        let mut net = random_network(&cfg, 20, 5, seed);
        // Lively enough that rounding has spikes to flip.
        net.calibrate(&[inputs(seed + 100, 100, 20)], 0.1);
        quantize_network(&mut net, bits);
        net
    }

    fn inputs(seed: u64, frames: usize, c: usize) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..frames * c).map(|_| rng.range(-2.0, 3.0)).collect()
    }

    #[test]
    fn the_integer_engine_scores_as_the_float_engine_within_rounding() {
        let net = quantized(11, 8);
        let fixed = FixedNetwork::new(&net, true, &FixedSpec::default()).unwrap();
        let x = inputs(4, 100, 20);
        // The float engine on the inputs the integer engine sees.
        let step = 4.0 / 127.0;
        let xq: Vec<f32> = x.iter().map(|v| (v / step).round() * step).collect();
        let (want, fst) = net.forward_clip(&xq, Mode::Event);
        let (got, ist) = fixed.forward_clip(&x);
        let spikes_f: u64 = fst.spike_counts.iter().sum();
        let spikes_i: u64 = ist.stats.spike_counts.iter().sum();
        assert!(spikes_f > 50, "the network must fire: {spikes_f}");
        // Rounding a threshold or leak flips a spike now and then, no more.
        assert!(
            spikes_i.abs_diff(spikes_f) * 20 < spikes_f,
            "{spikes_i} {spikes_f}"
        );
        let spread = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 0.1 * spread, "{got:?} {want:?}");
        }
        assert_eq!(ist.stats.frames, 100);
        assert_eq!(ist.stats.inputs, 2000);
        let bits = ist.stats.membrane_bits();
        assert_eq!(bits.len(), 3);
        assert!(bits.iter().all(|b| (4..40).contains(b)), "{bits:?}");
    }

    #[test]
    fn with_16_bits_everywhere_it_is_the_float_engine() {
        let net = quantized(15, 16);
        let spec = FixedSpec {
            input_bits: 16,
            input_range: 8.0,
            leak_bits: 16,
            frac_bits: 8,
            ..FixedSpec::default()
        };
        let fixed = FixedNetwork::new(&net, true, &spec).unwrap();
        let x = inputs(9, 100, 20);
        let step = 8.0 / 32767.0;
        let xq: Vec<f32> = x.iter().map(|v| (v / step).round() * step).collect();
        let (want, fst) = net.forward_clip(&xq, Mode::Event);
        let (got, ist) = fixed.forward_clip(&x);
        assert!(fst.spike_counts.iter().sum::<u64>() > 50);
        assert_eq!(ist.stats.spike_counts, fst.spike_counts);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-3 * w.abs().max(1.0), "{got:?} {want:?}");
        }
    }

    #[test]
    fn spike_inputs_are_taken_as_they_are() {
        let mut rng = Rng::new(10);
        let x: Vec<f32> = (0..100 * 20)
            .map(|_| (rng.uniform() < 0.3) as u8 as f32)
            .collect();
        let cfg = NetworkConfig {
            channels: vec![24, 16],
            dilations: vec![1, 2],
            ..NetworkConfig::default()
        };
        let mut net = random_network(&cfg, 20, 5, 10);
        net.calibrate(std::slice::from_ref(&x), 0.1);
        quantize_network(&mut net, 16);
        let spec = FixedSpec {
            leak_bits: 16,
            frac_bits: 8,
            ..FixedSpec::default()
        };
        let fixed = FixedNetwork::new(&net, false, &spec).unwrap();
        let (want, fst) = net.forward_clip(&x, Mode::Event);
        let (got, ist) = fixed.forward_clip(&x);
        assert!(fst.spike_counts.iter().sum::<u64>() > 50);
        assert_eq!(ist.stats.spike_counts, fst.spike_counts);
        assert_eq!(ist.stats.synops, fst.synops);
        // Nothing was rounded on the way in.
        assert_eq!((ist.stats.inputs, ist.stats.clipped_inputs), (0, 0));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-3 * w.abs().max(1.0), "{got:?} {want:?}");
        }
    }

    #[test]
    fn fewer_leak_and_fraction_bits_move_the_scores_further() {
        let net = quantized(12, 8);
        let x = inputs(5, 100, 20);
        let (exact, _) = FixedNetwork::new(&net, true, &FixedSpec::default())
            .unwrap()
            .forward_clip(&x);
        let coarse = FixedSpec {
            leak_bits: 3,
            frac_bits: 0,
            ..FixedSpec::default()
        };
        let (rough, _) = FixedNetwork::new(&net, true, &coarse)
            .unwrap()
            .forward_clip(&x);
        assert_ne!(exact, rough);
    }

    #[test]
    fn inputs_outside_the_range_are_clipped_and_counted() {
        let net = quantized(13, 8);
        let spec = FixedSpec {
            input_range: 1.0,
            ..FixedSpec::default()
        };
        let fixed = FixedNetwork::new(&net, true, &spec).unwrap();
        let x = inputs(6, 10, 20);
        let outside = x.iter().filter(|v| v.abs() > 1.0 + 0.5 / 127.0).count() as u64;
        let (_, st) = fixed.forward_clip(&x);
        assert_eq!(st.stats.clipped_inputs, outside);
        assert!(outside > 0);
    }

    #[test]
    fn weights_off_the_grid_and_bad_formats_are_refused() {
        let cfg = NetworkConfig {
            channels: vec![8],
            dilations: vec![1],
            ..NetworkConfig::default()
        };
        let net = random_network(&cfg, 6, 3, 1);
        let err = FixedNetwork::new(&net, true, &FixedSpec::default()).unwrap_err();
        assert_eq!(err, FixedError::OffGrid("layer 1".into()));
        assert!(err.to_string().contains("spikeword quantize"));
        let two = Ensemble {
            members: vec![quantized(1, 8), net],
        };
        let err = FixedEnsemble::new(&two, true, &FixedSpec::default()).unwrap_err();
        assert_eq!(err, FixedError::OffGrid("layer 1 of network 2".into()));
        for spec in [
            FixedSpec {
                input_bits: 1,
                ..FixedSpec::default()
            },
            FixedSpec {
                leak_bits: 0,
                ..FixedSpec::default()
            },
            FixedSpec {
                frac_bits: 17,
                ..FixedSpec::default()
            },
            FixedSpec {
                input_range: f32::NAN,
                ..FixedSpec::default()
            },
        ] {
            assert!(matches!(
                FixedNetwork::new(&quantized(1, 8), true, &spec),
                Err(FixedError::Spec(_))
            ));
        }
    }

    #[test]
    fn sums_in_32_and_64_bits_are_the_same() {
        let net = quantized(14, 8);
        let narrow = FixedNetwork::new(&net, true, &FixedSpec::default()).unwrap();
        assert!(narrow.layers.iter().all(|l| l.narrow) && narrow.readout.narrow);
        let mut wide = narrow.clone();
        wide.layers.iter_mut().for_each(|l| l.narrow = false);
        wide.readout.narrow = false;
        let x = inputs(8, 80, 20);
        let ((a, sa), (b, sb)) = (narrow.forward_clip(&x), wide.forward_clip(&x));
        assert_eq!((a, sa.stats), (b, sb.stats));
        // 16-bit weights and inputs over 20 × 4 terms may pass 32 bits: summed in 64.
        let mut net16 = random_network(&net.config, 20, 5, 14);
        quantize_network(&mut net16, 16);
        let spec = FixedSpec {
            input_bits: 16,
            ..FixedSpec::default()
        };
        let f = FixedNetwork::new(&net16, true, &spec).unwrap();
        assert!(!f.layers[0].narrow && f.layers[1].narrow);
    }

    #[test]
    fn an_ensemble_scores_the_mean_of_its_members() {
        let (a, b) = (quantized(21, 6), quantized(22, 6));
        let spec = FixedSpec::default();
        let x = inputs(7, 60, 20);
        let (la, sa) = FixedNetwork::new(&a, true, &spec).unwrap().forward_clip(&x);
        let (lb, sb) = FixedNetwork::new(&b, true, &spec).unwrap().forward_clip(&x);
        let both = FixedEnsemble::new(
            &Ensemble {
                members: vec![a, b],
            },
            true,
            &spec,
        )
        .unwrap();
        let (l, s) = both.forward_clip(&x);
        for ((m, p), q) in l.iter().zip(&la).zip(&lb) {
            assert!((m - (p / 2.0 + q / 2.0)).abs() < 1e-5);
        }
        assert_eq!(s.synops, sa.stats.synops + sb.stats.synops);
        assert_eq!(s.inputs, sa.stats.inputs);
        let peaks = sa.stats.peak_membrane.iter().zip(&sb.stats.peak_membrane);
        assert!(
            s.peak_membrane
                .iter()
                .zip(peaks)
                .all(|(m, (a, b))| m == a.max(b))
        );
    }
}
