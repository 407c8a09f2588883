//! The LIF recurrence of a whole layer as one fused burn operation with a hand-written
//! backward pass, instead of a dozen autodiff nodes per frame.
//!
//! Forward, for each (batch, channel) row over frames t (v₋₁ = s₋₁ = 0):
//!   v_t = β·v_{t−1} + d_t − θ·s_{t−1}      (subtractive reset), or
//!   v_t = (β·v_{t−1} + d_t)·(1 − s_{t−1})  (reset to zero),
//!   s_t = H(v_t − θ).
//! It saves the membrane potentials v. With the reset detached (as in the graph version
//! and most SNN training) the backward pass is a linear reverse-time scan: the gradient of
//! v_t is the surrogate term of s_t plus what v_{t+1} passes back, β (times 1 − s_t for the
//! zero reset); from it come the gradients of the drive d, of β and of θ.
//! Rows are independent: on the CPU they run in parallel over the cores.

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata};
use burn::backend::{backend_extension, tensor::FloatTensor};
use burn::tensor::Tensor;

use super::host::{dims3, host, tensor};
use crate::config::{Reset, Surrogate};

/// How a spike is made and differentiated: the reset, the surrogate and its slope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpikeFn {
    pub reset: Reset,
    pub surrogate: Surrogate,
    pub slope: f32,
}

#[backend_extension(
    Flex,
    Cube: cfg(feature = "gpu"),
    Fusion: cfg(feature = "gpu"),
    Autodiff
)]
pub trait LifOps: Backend {
    /// Spikes and membrane potentials `[B, C, T]` of LIF neurons driven by `drive`
    /// `[B, C, T]` with leaks `beta` and thresholds `theta` `[C]`. `reset`: 0 subtract,
    /// 1 zero; `surrogate`: 0 sigmoid, 1 fast sigmoid, 2 arctan (plain numbers cross the
    /// dispatch boundary).
    #[fusion(meta = |d, _b, _t, _r, _s, _k| (d.clone(), d.clone()))]
    fn lif_forward(
        drive: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        theta: FloatTensor<Self>,
        reset: u8,
        surrogate: u8,
        slope: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of the drive `[B, C, T]`, the leaks and the thresholds `[C]` from the
    /// spikes' gradient and the saved potentials.
    #[fusion(meta = |_g, v, b, t, _r, _s, _k| (v.clone(), b.clone(), t.clone()))]
    fn lif_backward(
        g_spikes: FloatTensor<Self>,
        v: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        theta: FloatTensor<Self>,
        reset: u8,
        surrogate: u8,
        slope: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl LifOps for Flex {
    fn lif_forward(
        drive: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        theta: FloatTensor<Self>,
        reset: u8,
        surrogate: u8,
        slope: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        forward::<Self>(drive, beta, theta, SpikeFn::decode(reset, surrogate, slope))
    }

    fn lif_backward(
        g_spikes: FloatTensor<Self>,
        v: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        theta: FloatTensor<Self>,
        reset: u8,
        surrogate: u8,
        slope: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let f = SpikeFn::decode(reset, surrogate, slope);
        backward::<Self>(g_spikes, v, beta, theta, f)
    }
}

impl<B: Backend + LifOps, C: CheckpointStrategy> LifOps for Autodiff<B, C> {
    fn lif_forward(
        drive: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        theta: FloatTensor<Self>,
        reset: u8,
        surrogate: u8,
        slope: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let nodes = [drive.node(), beta.node(), theta.node()];
        let (b, t) = (beta.primitive().clone(), theta.primitive().clone());
        let (s, v) = B::lif_forward(
            drive.into_primitive(),
            b.clone(),
            t.clone(),
            reset,
            surrogate,
            slope,
        );
        // The potentials are an output for the backward pass only: untracked.
        let v_out = outer::<B, C>(v.clone());
        let s = match LifBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((v, b, t, (reset, surrogate, slope)), s),
            OpsKind::UnTracked(prep) => prep.finish(s),
        };
        (s, v_out)
    }

    /// Not differentiated itself: runs on the inner backend.
    fn lif_backward(
        g_spikes: FloatTensor<Self>,
        v: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        theta: FloatTensor<Self>,
        reset: u8,
        surrogate: u8,
        slope: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (g_drive, g_beta, g_theta) = B::lif_backward(
            g_spikes.into_primitive(),
            v.into_primitive(),
            beta.into_primitive(),
            theta.into_primitive(),
            reset,
            surrogate,
            slope,
        );
        (
            outer::<B, C>(g_drive),
            outer::<B, C>(g_beta),
            outer::<B, C>(g_theta),
        )
    }
}

/// An inner backend's tensor as an untracked autodiff tensor.
fn outer<B: Backend, C: CheckpointStrategy>(t: FloatTensor<B>) -> FloatTensor<Autodiff<B, C>> {
    <Autodiff<B, C> as AutodiffBackend>::from_inner(t)
}

#[derive(Debug)]
struct LifBackward;

impl<B: Backend + LifOps> Backward<B, 3> for LifBackward {
    /// Membrane potentials `[B, C, T]`, leaks, thresholds, the spike function's codes.
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        (u8, u8, f32),
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [n_drive, n_beta, n_theta] = ops.parents;
        let g_spikes = grads.consume::<B>(&ops.node);
        let (v, beta, theta, (reset, surrogate, slope)) = ops.state;
        let (g_drive, g_beta, g_theta) =
            B::lif_backward(g_spikes, v, beta, theta, reset, surrogate, slope);
        for (node, g) in [(n_drive, g_drive), (n_beta, g_beta), (n_theta, g_theta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

/// The fused LIF layer on burn tensors: `drive` `[B, C, T]`, `beta` and `theta` `[C]`.
pub fn lif_scan(drive: Tensor<3>, beta: Tensor<1>, theta: Tensor<1>, f: SpikeFn) -> Tensor<3> {
    let (reset, surrogate, slope) = f.encode();
    let (spikes, _) = <Dispatch as LifOps>::lif_forward(
        drive.into_dispatch(),
        beta.into_dispatch(),
        theta.into_dispatch(),
        reset,
        surrogate,
        slope,
    );
    Tensor::from_dispatch(spikes)
}

impl SpikeFn {
    fn encode(self) -> (u8, u8, f32) {
        let reset = match self.reset {
            Reset::Subtract => 0,
            Reset::Zero => 1,
        };
        let surrogate = match self.surrogate {
            Surrogate::Sigmoid => 0,
            Surrogate::FastSigmoid => 1,
            Surrogate::Arctan => 2,
        };
        (reset, surrogate, self.slope)
    }

    pub(super) fn decode(reset: u8, surrogate: u8, slope: f32) -> Self {
        SpikeFn {
            reset: if reset == 0 {
                Reset::Subtract
            } else {
                Reset::Zero
            },
            surrogate: match surrogate {
                0 => Surrogate::Sigmoid,
                1 => Surrogate::FastSigmoid,
                _ => Surrogate::Arctan,
            },
            slope,
        }
    }
}

/// A row of the forward scan: channel, drive, spikes and potentials written.
type ForwardRow<'a> = (usize, &'a [f32], &'a mut [f32], &'a mut [f32]);
/// A row of the backward scan: channel, spike gradients, potentials, drive gradients.
type BackwardRow<'a> = (usize, &'a [f32], &'a [f32], &'a mut [f32]);

/// Spikes and membrane potentials of every row.
fn forward<B: Backend>(
    drive: FloatTensor<B>,
    beta: FloatTensor<B>,
    theta: FloatTensor<B>,
    f: SpikeFn,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let device = drive.device();
    let [nb, nc, nt] = dims3::<B>(&drive);
    let (d, beta, theta) = (host::<B>(drive), host::<B>(beta), host::<B>(theta));
    let (mut s, mut v) = (vec![0f32; d.len()], vec![0f32; d.len()]);
    let rows: Vec<ForwardRow> = d
        .chunks(nt)
        .zip(s.chunks_mut(nt).zip(v.chunks_mut(nt)))
        .enumerate()
        .map(|(r, (d, (s, v)))| (r % nc, d, s, v))
        .collect();
    crate::util::parallel_map_owned(rows, |(c, d, s, v)| {
        forward_row(d, beta[c], theta[c], f.reset, s, v)
    });
    let t = |x: Vec<f32>| tensor::<B, 3>(x, [nb, nc, nt], &device);
    (t(s), t(v))
}

/// One row of the forward scan.
pub fn forward_row(d: &[f32], beta: f32, theta: f32, reset: Reset, s: &mut [f32], v: &mut [f32]) {
    let (mut vt, mut st) = (0f32, 0f32);
    for t in 0..d.len() {
        let leaky = beta * vt + d[t];
        vt = match reset {
            Reset::Subtract => leaky - theta * st,
            Reset::Zero => leaky * (1.0 - st),
        };
        st = if vt - theta > 0.0 { 1.0 } else { 0.0 };
        v[t] = vt;
        s[t] = st;
    }
}

/// Gradients of the drive `[B, C, T]`, the leaks and the thresholds `[C]`.
fn backward<B: Backend>(
    g_spikes: FloatTensor<B>,
    v: FloatTensor<B>,
    beta: FloatTensor<B>,
    theta: FloatTensor<B>,
    f: SpikeFn,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let device = v.device();
    let [nb, nc, nt] = dims3::<B>(&v);
    let (gs, v, beta, theta) = (
        host::<B>(g_spikes),
        host::<B>(v),
        host::<B>(beta),
        host::<B>(theta),
    );
    let mut gd = vec![0f32; gs.len()];
    let rows: Vec<BackwardRow> = gs
        .chunks(nt)
        .zip(v.chunks(nt))
        .zip(gd.chunks_mut(nt))
        .enumerate()
        .map(|(r, ((gs, v), gd))| (r % nc, gs, v, gd))
        .collect();
    let per_row = crate::util::parallel_map_owned(rows, |(c, gs, v, gd)| {
        (c, backward_row(gs, v, beta[c], theta[c], f, gd))
    });
    let (mut g_beta, mut g_theta) = (vec![0f32; nc], vec![0f32; nc]);
    for (c, (gb, gt)) in per_row {
        g_beta[c] += gb;
        g_theta[c] += gt;
    }
    let vec1 = |x: Vec<f32>| tensor::<B, 1>(x, [nc], &device);
    let g_drive = tensor::<B, 3>(gd, [nb, nc, nt], &device);
    (g_drive, vec1(g_beta), vec1(g_theta))
}

/// One row of the reverse-time scan: writes the drive's gradient, returns the row's
/// share of the gradients of β and θ.
pub fn backward_row(
    gs: &[f32],
    v: &[f32],
    beta: f32,
    theta: f32,
    f: SpikeFn,
    gd: &mut [f32],
) -> (f32, f32) {
    let spiked = |t: usize| if v[t] - theta > 0.0 { 1.0 } else { 0.0 };
    let (mut gv, mut g_beta, mut g_theta) = (0f32, 0f32, 0f32);
    for t in (0..v.len()).rev() {
        let through_spike = gs[t] * f.surrogate.derivative(v[t] - theta, f.slope);
        let g = gv + through_spike;
        g_theta -= through_spike;
        let (v_prev, s_prev) = if t == 0 {
            (0.0, 0.0)
        } else {
            (v[t - 1], spiked(t - 1))
        };
        match f.reset {
            Reset::Subtract => {
                gd[t] = g;
                g_beta += g * v_prev;
                g_theta -= g * s_prev;
                gv = g * beta;
            }
            Reset::Zero => {
                let keep = 1.0 - s_prev;
                gd[t] = g * keep;
                g_beta += g * keep * v_prev;
                gv = g * keep * beta;
            }
        }
    }
    (g_beta, g_theta)
}
