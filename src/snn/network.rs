//! The trained network as plain Rust for inference, one 10 ms frame at a time.
//!
//! Causal dilated convolutions keep a ring of their last `(K−1)·d + 1` input frames,
//! so a frame costs the same however long the stream has run. Layers fed by spikes
//! run event-driven: only the weight columns of inputs that spiked are added, which
//! at a few Hz is a small fraction of the dense multiply-accumulates.

use crate::config::NetworkConfig;

use super::lif::{leaky_step, lif_layer_step};

/// Weights of one spiking layer, stored tap-major (`[k][in][out]`) so an input event
/// adds one contiguous column.
#[derive(Debug, Clone)]
pub struct SpikingLayer {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub dilation: usize,
    pub w: Vec<f32>,
    pub bias: Vec<f32>,
    pub beta: Vec<f32>,
    pub threshold: Vec<f32>,
}

impl SpikingLayer {
    /// From burn's conv1d layout `[out][in][k]`.
    pub fn from_conv(
        weight_oik: &[f32],
        (c_out, c_in, kernel): (usize, usize, usize),
        dilation: usize,
        bias: Vec<f32>,
        beta: Vec<f32>,
        threshold: Vec<f32>,
    ) -> Self {
        let mut w = vec![0.0; kernel * c_in * c_out];
        for o in 0..c_out {
            for i in 0..c_in {
                for k in 0..kernel {
                    w[(k * c_in + i) * c_out + o] = weight_oik[(o * c_in + i) * kernel + k];
                }
            }
        }
        SpikingLayer {
            c_in,
            c_out,
            kernel,
            dilation,
            w,
            bias,
            beta,
            threshold,
        }
    }

    /// Back to `[out][in][k]` (for saving).
    pub fn conv_weight(&self) -> Vec<f32> {
        self.to_conv_layout(&self.w)
    }

    /// Any per-weight values of this layer (in its tap-major order) in `[out][in][k]`.
    pub fn to_conv_layout<T: Copy + Default>(&self, v: &[T]) -> Vec<T> {
        let mut out = vec![T::default(); v.len()];
        for o in 0..self.c_out {
            for i in 0..self.c_in {
                for k in 0..self.kernel {
                    out[(o * self.c_in + i) * self.kernel + k] =
                        v[(k * self.c_in + i) * self.c_out + o];
                }
            }
        }
        out
    }

    fn history(&self) -> usize {
        (self.kernel - 1) * self.dilation + 1
    }
}

/// Non-spiking leaky readout; weight `[in][out]` as burn's `Linear`.
#[derive(Debug, Clone)]
pub struct Readout {
    pub c_in: usize,
    pub n_classes: usize,
    pub w: Vec<f32>,
    pub bias: Vec<f32>,
    pub beta: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct Network {
    pub config: NetworkConfig,
    pub layers: Vec<SpikingLayer>,
    pub readout: Readout,
}

/// Everything a stream carries from one frame to the next; its size is fixed at creation.
#[derive(Debug, Clone)]
pub struct NetworkState {
    /// Per layer: ring of past inputs `[history][c_in]`, and the write position.
    rings: Vec<Vec<f32>>,
    pos: Vec<usize>,
    v: Vec<Vec<f32>>,
    spikes: Vec<Vec<bool>>,
    /// Per layer: the current frame's spikes as 0/1 (input of the next layer).
    out: Vec<Vec<f32>>,
    acc: Vec<f32>,
    readout_v: Vec<f32>,
    /// Readout potentials times the logit scale: the per-frame class scores.
    scores: Vec<f32>,
    /// Spikes per layer since the last `reset_counts`.
    pub spike_counts: Vec<u64>,
    /// Synaptic operations (weight additions actually performed) since the last reset.
    pub synops: u64,
    pub frames: u64,
}

impl NetworkState {
    /// Bytes the state holds on the heap (allocated capacity, so a buffer that grew
    /// would show): constant over a stream's life.
    pub fn size_bytes(&self) -> usize {
        fn bytes<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        let nested = |v: &Vec<Vec<f32>>| bytes(v) + v.iter().map(bytes).sum::<usize>();
        nested(&self.rings)
            + nested(&self.v)
            + nested(&self.out)
            + bytes(&self.spikes)
            + self.spikes.iter().map(bytes).sum::<usize>()
            + bytes(&self.pos)
            + bytes(&self.acc)
            + bytes(&self.readout_v)
            + bytes(&self.scores)
            + bytes(&self.spike_counts)
    }

    /// Spikes (0/1) of layer `i` at the latest frame.
    pub fn layer_output(&self, i: usize) -> &[f32] {
        &self.out[i]
    }

    pub fn reset_counts(&mut self) {
        self.spike_counts.iter_mut().for_each(|c| *c = 0);
        self.synops = 0;
        self.frames = 0;
    }
}

/// Dense or event-driven synaptic integration (same results; event-driven skips zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Dense,
    Event,
}

impl Network {
    pub fn n_classes(&self) -> usize {
        self.readout.n_classes
    }

    pub fn new_state(&self) -> NetworkState {
        let max_c = self.layers.iter().map(|l| l.c_out).max().unwrap_or(0);
        NetworkState {
            rings: self
                .layers
                .iter()
                .map(|l| vec![0.0; l.history() * l.c_in])
                .collect(),
            pos: vec![0; self.layers.len()],
            v: self.layers.iter().map(|l| vec![0.0; l.c_out]).collect(),
            spikes: self.layers.iter().map(|l| vec![false; l.c_out]).collect(),
            out: self.layers.iter().map(|l| vec![0.0; l.c_out]).collect(),
            acc: vec![0.0; max_c.max(self.readout.n_classes)],
            readout_v: vec![0.0; self.readout.n_classes],
            scores: vec![0.0; self.readout.n_classes],
            spike_counts: vec![0; self.layers.len()],
            synops: 0,
            frames: 0,
        }
    }

    /// Advances one frame; returns the per-frame class scores (scaled readout potentials).
    pub fn step<'s>(&self, st: &'s mut NetworkState, input: &[f32], mode: Mode) -> &'s [f32] {
        let reset = self.config.reset;
        for (li, layer) in self.layers.iter().enumerate() {
            let (c_in, c_out) = (layer.c_in, layer.c_out);
            let hist = layer.history();
            // Write this frame's input into the ring.
            {
                let pos = st.pos[li];
                let src: &[f32] = if li == 0 { input } else { &st.out[li - 1] };
                st.rings[li][pos * c_in..(pos + 1) * c_in].copy_from_slice(src);
            }
            let acc = &mut st.acc[..c_out];
            acc.copy_from_slice(&layer.bias);
            for k in 0..layer.kernel {
                // Tap k looks (K−1−k)·d frames back.
                let back = (layer.kernel - 1 - k) * layer.dilation;
                let slot = (st.pos[li] + hist - back) % hist;
                let frame = &st.rings[li][slot * c_in..(slot + 1) * c_in];
                let wk = &layer.w[k * c_in * c_out..(k + 1) * c_in * c_out];
                st.synops += accumulate(acc, frame, wk, mode == Mode::Event);
            }
            st.pos[li] = (st.pos[li] + 1) % hist;
            st.spike_counts[li] += lif_layer_step(
                &mut st.v[li],
                &mut st.spikes[li],
                &mut st.out[li],
                acc,
                (&layer.beta, &layer.threshold),
                reset,
            );
        }
        let last = &st.out[self.layers.len() - 1];
        st.synops += self.readout_frame(last, mode, &mut st.acc, &mut st.readout_v, &mut st.scores);
        st.frames += 1;
        &st.scores
    }

    /// One frame of the leaky readout on the last layer's spikes: updates its potentials
    /// and the class scores (`acc` is scratch); returns the synaptic operations.
    fn readout_frame(
        &self,
        spikes: &[f32],
        mode: Mode,
        acc: &mut [f32],
        readout_v: &mut [f32],
        scores: &mut [f32],
    ) -> u64 {
        let r = &self.readout;
        let acc = &mut acc[..r.n_classes];
        acc.copy_from_slice(&r.bias);
        let mut ops = 0;
        for (i, &x) in spikes.iter().enumerate() {
            if mode == Mode::Event && x == 0.0 {
                continue;
            }
            ops += r.n_classes as u64;
            for (a, w) in acc
                .iter_mut()
                .zip(&r.w[i * r.n_classes..(i + 1) * r.n_classes])
            {
                *a += x * w;
            }
        }
        let scale = self.config.logit_scale;
        for (c, &y) in acc.iter().enumerate() {
            readout_v[c] = leaky_step(readout_v[c], y, r.beta[c]);
            scores[c] = readout_v[c] * scale;
        }
        ops
    }

    /// Runs a whole clip (frames × input channels) from a fresh state; returns the clip
    /// logits (mean readout potential over the decision frames, see
    /// `NetworkConfig::decision_frames`) and the final state.
    ///
    /// Layer by layer instead of frame by frame (all of a clip's inputs are known), so a
    /// weight column is fetched once for a block of frames; each sum is taken in the same
    /// order as `step`, so the result and the final state are bit for bit a stream's.
    pub fn forward_clip(&self, input: &[f32], mode: Mode) -> (Vec<f32>, NetworkState) {
        let c_in = self.layers[0].c_in;
        let t = input.len() / c_in;
        let mut st = self.new_state();
        let skip = mode == Mode::Event;
        let reset = self.config.reset;
        let mut x = std::borrow::Cow::Borrowed(&input[..t * c_in]);
        for (li, layer) in self.layers.iter().enumerate() {
            let c_out = layer.c_out;
            let mut cur = layer.bias.repeat(t);
            st.synops += clip_currents(layer, &x, &mut cur, skip);
            fill_ring(&mut st.rings[li], &x, layer, t);
            st.pos[li] = t % layer.history();
            let mut spikes = vec![0.0f32; t * c_out];
            for (frame, out) in cur.chunks_exact(c_out).zip(spikes.chunks_exact_mut(c_out)) {
                st.spike_counts[li] += lif_layer_step(
                    &mut st.v[li],
                    &mut st.spikes[li],
                    out,
                    frame,
                    (&layer.beta, &layer.threshold),
                    reset,
                );
            }
            if t > 0 {
                st.out[li].copy_from_slice(&spikes[(t - 1) * c_out..]);
            }
            x = std::borrow::Cow::Owned(spikes);
        }
        let start = self.config.decision_start(0, t);
        let mut sum = vec![0.0f32; self.n_classes()];
        for (i, frame) in x.chunks_exact(self.readout.c_in).enumerate() {
            st.synops +=
                self.readout_frame(frame, mode, &mut st.acc, &mut st.readout_v, &mut st.scores);
            if i >= start {
                sum.iter_mut().zip(&st.scores).for_each(|(s, v)| *s += v);
            }
        }
        st.frames = t as u64;
        sum.iter_mut().for_each(|s| *s /= (t - start).max(1) as f32);
        (sum, st)
    }
}

/// Frames of a clip fetched once per weight column.
const FRAME_BLOCK: usize = 4;

/// Adds every tap of `layer` over a whole clip `x` (`[t][c_in]`) into `cur` (`[t][c_out]`,
/// holding the biases); frames before the clip are zeros, as in a fresh ring. Per output
/// the terms come in `step`'s order (tap, then input). Returns the synaptic operations.
fn clip_currents(layer: &SpikingLayer, x: &[f32], cur: &mut [f32], skip_zeros: bool) -> u64 {
    let (c_in, c_out) = (layer.c_in, layer.c_out);
    let t = cur.len() / c_out;
    let zeros = vec![0.0f32; c_in];
    let mut ops = 0;
    for t0 in (0..t).step_by(FRAME_BLOCK) {
        let nb = FRAME_BLOCK.min(t - t0);
        for k in 0..layer.kernel {
            let back = (layer.kernel - 1 - k) * layer.dilation;
            let frames: [&[f32]; FRAME_BLOCK] =
                std::array::from_fn(|b| match (t0 + b).checked_sub(back) {
                    Some(j) if b < nb => &x[j * c_in..(j + 1) * c_in],
                    _ => &zeros[..],
                });
            let wk = &layer.w[k * c_in * c_out..(k + 1) * c_in * c_out];
            let acc = &mut cur[t0 * c_out..(t0 + nb) * c_out];
            ops += accumulate_frames(acc, &frames[..nb], wk, skip_zeros);
        }
    }
    ops
}

/// Leaves a ring as `step` would after the clip's `t` frames: frame `j` in slot `j % h`.
fn fill_ring(ring: &mut [f32], x: &[f32], layer: &SpikingLayer, t: usize) {
    let (h, c) = (layer.history(), layer.c_in);
    for j in t.saturating_sub(h)..t {
        ring[(j % h) * c..(j % h + 1) * c].copy_from_slice(&x[j * c..(j + 1) * c]);
    }
}

impl Network {
    /// Data-driven initialisation: scales each layer's weights, first to last, until it
    /// fires near `target` spikes per neuron and frame on `inputs` (clips, frames ×
    /// channels). With spikes as input a plain random init leaves deep layers silent.
    pub fn calibrate(&mut self, inputs: &[Vec<f32>], target: f32) {
        for li in 0..self.layers.len() {
            for _ in 0..16 {
                let (mut spikes, mut frames) = (0u64, 0u64);
                for x in inputs {
                    let (_, st) = self.forward_clip(x, Mode::Event);
                    spikes += st.spike_counts[li];
                    frames += st.frames;
                }
                let rate = spikes as f32 / (frames.max(1) as f32 * self.layers[li].c_out as f32);
                if (target * 0.6..target * 1.6).contains(&rate) {
                    break;
                }
                let f = match rate {
                    r if r < target * 0.1 => 2.0,
                    r if r < target => 1.25,
                    _ => 0.8,
                };
                self.layers[li].w.iter_mut().for_each(|w| *w *= f);
            }
        }
    }
}

/// `acc += Σ_i frame[i] · wk[i·c_out..(i+1)·c_out]`: one tap of a synapse layer. With
/// `skip_zeros` (event-driven) silent inputs cost nothing; spikes (1.0) add their weight
/// column without a multiply. Returns the synaptic operations done.
fn accumulate(acc: &mut [f32], frame: &[f32], wk: &[f32], skip_zeros: bool) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { accumulate_avx2(acc, frame, wk, skip_zeros) };
    }
    accumulate_body(acc, frame, wk, skip_zeros)
}

/// The same loop compiled for 8-wide vectors. No FMA: a multiply then an add per element,
/// exactly as the portable build, so results are bit for bit the same on every CPU.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn accumulate_avx2(acc: &mut [f32], frame: &[f32], wk: &[f32], skip_zeros: bool) -> u64 {
    accumulate_body(acc, frame, wk, skip_zeros)
}

#[inline(always)]
fn accumulate_body(acc: &mut [f32], frame: &[f32], wk: &[f32], skip_zeros: bool) -> u64 {
    let c_out = acc.len();
    let mut ops = 0;
    for (&x, col) in frame.iter().zip(wk.chunks_exact(c_out)) {
        if skip_zeros && x == 0.0 {
            continue;
        }
        ops += c_out as u64;
        if x == 1.0 {
            for (a, w) in acc.iter_mut().zip(col) {
                *a += w;
            }
        } else {
            for (a, w) in acc.iter_mut().zip(col) {
                *a += x * w;
            }
        }
    }
    ops
}

/// `accumulate` for several frames at once (`acc` is `[frames][c_out]`): each weight
/// column is read once for all of them. Same terms in the same order per frame.
fn accumulate_frames(acc: &mut [f32], frames: &[&[f32]], wk: &[f32], skip_zeros: bool) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { accumulate_frames_avx2(acc, frames, wk, skip_zeros) };
    }
    accumulate_frames_body(acc, frames, wk, skip_zeros)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn accumulate_frames_avx2(acc: &mut [f32], frames: &[&[f32]], wk: &[f32], skip_zeros: bool) -> u64 {
    accumulate_frames_body(acc, frames, wk, skip_zeros)
}

#[inline(always)]
fn accumulate_frames_body(acc: &mut [f32], frames: &[&[f32]], wk: &[f32], skip_zeros: bool) -> u64 {
    let c_out = acc.len() / frames.len().max(1);
    let mut ops = 0;
    for (i, col) in wk.chunks_exact(c_out).enumerate() {
        for (frame, a) in frames.iter().zip(acc.chunks_exact_mut(c_out)) {
            let x = frame[i];
            if skip_zeros && x == 0.0 {
                continue;
            }
            ops += c_out as u64;
            if x == 1.0 {
                a.iter_mut().zip(col).for_each(|(a, w)| *a += w);
            } else {
                a.iter_mut().zip(col).for_each(|(a, w)| *a += x * w);
            }
        }
    }
    ops
}

/// Initial weights without burn (tests, benchmarks): scaled uniform from a seed.
pub fn random_network(cfg: &NetworkConfig, c_in: usize, n_classes: usize, seed: u64) -> Network {
    let mut rng = crate::util::Rng::new(seed);
    let mut layers = Vec::new();
    let mut prev = c_in;
    for (&c, &d) in cfg.channels.iter().zip(&cfg.dilations) {
        let fan_in = (prev * cfg.kernel) as f32;
        let bound = 3.0 / fan_in.sqrt();
        let w: Vec<f32> = (0..c * prev * cfg.kernel)
            .map(|_| rng.range(-bound, bound))
            .collect();
        layers.push(SpikingLayer::from_conv(
            &w,
            (c, prev, cfg.kernel),
            d,
            vec![0.0; c],
            vec![cfg.init_beta; c],
            vec![cfg.init_threshold; c],
        ));
        prev = c;
    }
    let bound = 1.0 / (prev as f32).sqrt();
    Network {
        config: cfg.clone(),
        layers,
        readout: Readout {
            c_in: prev,
            n_classes,
            w: (0..prev * n_classes)
                .map(|_| rng.range(-bound, bound))
                .collect(),
            bias: vec![0.0; n_classes],
            beta: vec![cfg.init_beta; n_classes],
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn the_vector_path_adds_exactly_as_the_portable_one() {
        let mut rng = crate::util::Rng::new(3);
        let (c_in, c_out) = (40, 64);
        let wk: Vec<f32> = (0..c_in * c_out).map(|_| rng.range(-1.0, 1.0)).collect();
        // Analog input, spikes and silence mixed, as layers see them.
        let frame: Vec<f32> = (0..c_in)
            .map(|i| match i % 3 {
                0 => rng.range(-3.0, 3.0),
                1 => 1.0,
                _ => 0.0,
            })
            .collect();
        for skip in [false, true] {
            let (mut a, mut b) = (vec![0.5f32; c_out], vec![0.5f32; c_out]);
            let ops_a = accumulate(&mut a, &frame, &wk, skip);
            let ops_b = accumulate_body(&mut b, &frame, &wk, skip);
            assert_eq!(a, b, "bit for bit");
            assert_eq!(ops_a, ops_b);
            let active = frame.iter().filter(|x| !skip || **x != 0.0).count();
            assert_eq!(ops_a, (active * c_out) as u64);
        }
    }

    /// A random network calibrated to fire, so the tests exercise spikes.
    pub(crate) fn firing_net(seed: u64) -> Network {
        let mut n = random_network(&NetworkConfig::default(), 40, 12, seed);
        let probe: Vec<Vec<f32>> = (0..4).map(|i| input(98, 100 + i)).collect();
        n.calibrate(&probe, 0.1);
        n
    }

    fn net() -> Network {
        firing_net(3)
    }

    pub(crate) fn input(t: usize, seed: u64) -> Vec<f32> {
        let mut r = crate::util::Rng::new(seed);
        (0..t * 40).map(|_| r.normal() * 1.5).collect()
    }

    #[test]
    fn event_driven_equals_dense() {
        let n = net();
        let x = input(98, 1);
        let (a, sa) = n.forward_clip(&x, Mode::Dense);
        let (b, sb) = n.forward_clip(&x, Mode::Event);
        assert_eq!(sa.spike_counts, sb.spike_counts);
        assert!(
            sa.spike_counts.iter().all(|&c| c > 0),
            "network must spike for the test to mean anything"
        );
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-4);
        }
        assert!(sb.synops < sa.synops);
    }

    #[test]
    fn a_clip_at_once_is_bit_for_bit_a_stream() {
        let n = net();
        for mode in [Mode::Dense, Mode::Event] {
            // Shorter than one frame block, than the deepest ring, a clip, longer.
            for t in [1, 3, 30, 98, 157] {
                let x = input(t, 7 + t as u64);
                let (logits, a) = n.forward_clip(&x, mode);
                let mut b = n.new_state();
                let start = n.config.decision_start(0, t);
                let mut sum = vec![0.0f32; n.n_classes()];
                for (i, f) in x.chunks_exact(40).enumerate() {
                    let o = n.step(&mut b, f, mode);
                    if i >= start {
                        sum.iter_mut().zip(o).for_each(|(s, v)| *s += v);
                    }
                }
                sum.iter_mut().for_each(|s| *s /= (t - start).max(1) as f32);
                assert_eq!(logits, sum, "{mode:?}, {t} frames");
                assert_eq!(a.rings, b.rings);
                assert_eq!(a.pos, b.pos);
                assert_eq!(a.v, b.v);
                assert_eq!(a.spikes, b.spikes);
                assert_eq!(a.out, b.out);
                assert_eq!(a.readout_v, b.readout_v);
                assert_eq!(a.scores, b.scores);
                assert_eq!(a.spike_counts, b.spike_counts);
                assert_eq!((a.synops, a.frames), (b.synops, b.frames));
                if t >= 98 {
                    assert!(a.spike_counts.iter().all(|&c| c > 0), "the net must spike");
                }
            }
        }
    }

    #[test]
    fn causal_output_at_t_ignores_later_inputs() {
        let n = net();
        let x = input(60, 2);
        let mut y = x.clone();
        for v in &mut y[30 * 40..] {
            *v = -*v + 0.7;
        }
        let run = |inp: &[f32]| {
            let mut st = n.new_state();
            inp.chunks(40)
                .map(|f| n.step(&mut st, f, Mode::Dense).to_vec())
                .collect::<Vec<_>>()
        };
        let (a, b) = (run(&x), run(&y));
        assert_eq!(a[..30], b[..30]);
        assert_ne!(a[30..], b[30..]);
    }

    #[test]
    fn state_size_is_the_receptive_field_and_stays_constant() {
        let n = net();
        // What the state must hold, from the configuration alone: each layer's input
        // history over its synaptic delays, its membranes and spikes, and the readout.
        let (f32s, vecs) = (4, std::mem::size_of::<Vec<f32>>());
        let layers = n.layers.len();
        let per_layer: usize = n
            .layers
            .iter()
            .map(|l| ((l.kernel - 1) * l.dilation + 1) * l.c_in * f32s + l.c_out * (2 * f32s + 1))
            .sum();
        let classes = n.readout.n_classes;
        let max_c = n.layers.iter().map(|l| l.c_out).max().unwrap().max(classes);
        let want = per_layer
            + 4 * layers * vecs
            + layers * (std::mem::size_of::<usize>() + 8)
            + (max_c + 2 * classes) * f32s;
        let mut st = n.new_state();
        assert_eq!(st.size_bytes(), want);
        for f in input(2000, 3).chunks(40) {
            n.step(&mut st, f, Mode::Event);
            n.step(&mut st, f, Mode::Dense);
        }
        assert_eq!(st.size_bytes(), want, "the state grew over 4,000 frames");
    }

    #[test]
    fn conv_layout_round_trips() {
        let n = net();
        let l = &n.layers[1];
        let back = SpikingLayer::from_conv(
            &l.conv_weight(),
            (l.c_out, l.c_in, l.kernel),
            l.dilation,
            l.bias.clone(),
            l.beta.clone(),
            l.threshold.clone(),
        );
        assert_eq!(back.w, l.w);
    }
}
