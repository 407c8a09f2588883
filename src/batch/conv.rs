//! The causal dilated convolution of a spiking layer as one fused burn operation with a
//! hand-written backward pass, on the CPU.
//!
//! y[b, o, t] = bias[o] + Σ_k W[o, :, k] · x[b, :, t − (K−1−k)·d], with x = 0 before the
//! clip: one matrix product per tap onto shifted columns, so no padded copy, no im2col
//! buffer and no transposed convolution in the backward pass. Backward:
//!   ∂x[b, :, t − shift_k] += W[:, :, k]ᵀ · ∂y[b, :, t],
//!   ∂W[:, :, k] += ∂y[b, :, t] · x[b, :, t − shift_k]ᵀ   (summed over the batch),
//!   ∂bias = Σ_{b,t} ∂y;
//! the input's gradient is skipped when nothing upstream needs it (the first layer).
//! The batch is split over the cores.

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata};
use burn::backend::{backend_extension, tensor::FloatTensor};
use burn::tensor::Tensor;

use super::host::{dims3, groups, host, tensor};

#[backend_extension(Flex, Cube: cfg(feature = "gpu"), Autodiff)]
pub trait ConvOps: Backend {
    /// `x` `[B, C_in, T]` convolved causally with `weight` `[C_out, C_in, K]` at
    /// `dilation`, plus `bias` `[C_out]`: `[B, C_out, T]`.
    fn causal_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        dilation: usize,
    ) -> FloatTensor<Self> {
        run::<Self>(x, weight, bias, dilation).0
    }
}

/// The forward pass on `B`'s tensors; also returns the input and the weights on the host
/// (what the backward pass keeps) and the shapes.
fn run<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: FloatTensor<B>,
    dilation: usize,
) -> (FloatTensor<B>, Vec<f32>, Vec<f32>, Shape) {
    let device = x.device();
    let shape = Shape::of::<B>(&x, &weight, dilation);
    let (xs, ws) = (host::<B>(x), host::<B>(weight));
    let y = forward(&xs, &ws, &host::<B>(bias), shape);
    let y = tensor::<B, 3>(y, [shape.batch, shape.c_out, shape.t], &device);
    (y, xs, ws, shape)
}

impl ConvOps for Flex {}
#[cfg(feature = "gpu")]
impl ConvOps for burn::backend::Cube {}

impl<B: Backend + ConvOps, C: CheckpointStrategy> ConvOps for Autodiff<B, C> {
    fn causal_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        dilation: usize,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node(), bias.node()];
        let (y, xs, ws, shape) = run::<B>(
            x.into_primitive(),
            weight.into_primitive(),
            bias.into_primitive(),
            dilation,
        );
        match ConvBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((xs, ws, shape), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}

#[derive(Debug)]
struct ConvBackward;

impl<B: Backend> Backward<B, 3> for ConvBackward {
    /// The input and the weights on the host, and the shapes.
    type State = (Vec<f32>, Vec<f32>, Shape);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [n_x, n_w, n_bias] = ops.parents;
        let g_y = grads.consume::<B>(&ops.node);
        let device = g_y.device();
        let g_y = host::<B>(g_y);
        let (x, w, s) = ops.state;
        if let Some(node) = n_x {
            let g_x = input_grad(&g_y, &w, s);
            grads.register::<B>(
                node.id,
                tensor::<B, 3>(g_x, [s.batch, s.c_in, s.t], &device),
            );
        }
        if let Some(node) = n_w {
            let g_w = weight_grad(&g_y, &x, s);
            grads.register::<B>(
                node.id,
                tensor::<B, 3>(g_w, [s.c_out, s.c_in, s.k], &device),
            );
        }
        if let Some(node) = n_bias {
            let mut g_b = vec![0f32; s.c_out];
            for (r, row) in g_y.chunks(s.t).enumerate() {
                g_b[r % s.c_out] += row.iter().sum::<f32>();
            }
            grads.register::<B>(node.id, tensor::<B, 1>(g_b, [s.c_out], &device));
        }
    }
}

/// The causal convolution on burn tensors (see the module's documentation).
pub fn causal_conv(x: Tensor<3>, weight: Tensor<3>, bias: Tensor<1>, dilation: usize) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as ConvOps>::causal_conv(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        dilation,
    ))
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    batch: usize,
    c_in: usize,
    c_out: usize,
    k: usize,
    t: usize,
    dilation: usize,
}

impl Shape {
    fn of<B: Backend>(x: &FloatTensor<B>, w: &FloatTensor<B>, dilation: usize) -> Self {
        let ([batch, c_in, t], [c_out, _, k]) = (dims3::<B>(x), dims3::<B>(w));
        Shape {
            batch,
            c_in,
            c_out,
            k,
            t,
            dilation,
        }
    }

    /// How many frames tap `k` looks back.
    fn shift(&self, k: usize) -> usize {
        (self.k - 1 - k) * self.dilation
    }

    /// The taps that reach into the clip, with their shifts.
    fn taps(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.k)
            .map(|k| (k, self.shift(k)))
            .filter(|&(_, shift)| shift < self.t)
    }

    /// Tap `k` of the weights as a `C_out × C_in` matrix.
    fn tap(&self, k: usize) -> View {
        View::new(k, self.c_in * self.k, self.k)
    }

    /// Frames `from..` of a `channels × T` item, as a matrix.
    fn frames(&self, from: usize) -> View {
        View::new(from, self.t, 1)
    }
}

fn forward(x: &[f32], w: &[f32], bias: &[f32], s: Shape) -> Vec<f32> {
    let mut y = vec![0f32; s.batch * s.c_out * s.t];
    let items = x.chunks(s.c_in * s.t).zip(y.chunks_mut(s.c_out * s.t));
    crate::util::parallel_map_owned(items.collect(), |(x, y)| {
        for (row, b) in y.chunks_mut(s.t).zip(bias) {
            row.fill(*b);
        }
        for (k, shift) in s.taps() {
            let n = s.t - shift;
            matmul_add(
                (y, s.frames(shift)),
                (w, s.tap(k)),
                (x, s.frames(0)),
                [s.c_out, s.c_in, n],
            );
        }
    });
    y
}

fn input_grad(g_y: &[f32], w: &[f32], s: Shape) -> Vec<f32> {
    let mut g_x = vec![0f32; s.batch * s.c_in * s.t];
    let items = g_y.chunks(s.c_out * s.t).zip(g_x.chunks_mut(s.c_in * s.t));
    crate::util::parallel_map_owned(items.collect(), |(g_y, g_x)| {
        for (k, shift) in s.taps() {
            let n = s.t - shift;
            let tap_t = s.tap(k).transposed();
            matmul_add(
                (g_x, s.frames(0)),
                (w, tap_t),
                (g_y, s.frames(shift)),
                [s.c_in, s.c_out, n],
            );
        }
    });
    g_x
}

fn weight_grad(g_y: &[f32], x: &[f32], s: Shape) -> Vec<f32> {
    let partial = |batch: std::ops::Range<usize>| {
        let mut g_w = vec![0f32; s.c_out * s.c_in * s.k];
        for b in batch {
            let g_y = &g_y[b * s.c_out * s.t..(b + 1) * s.c_out * s.t];
            let x = &x[b * s.c_in * s.t..(b + 1) * s.c_in * s.t];
            for (k, shift) in s.taps() {
                let n = s.t - shift;
                let x_t = s.frames(0).transposed();
                matmul_add(
                    (&mut g_w, s.tap(k)),
                    (g_y, s.frames(shift)),
                    (x, x_t),
                    [s.c_out, n, s.c_in],
                );
            }
        }
        g_w
    };
    let parts = crate::util::parallel_map_owned(groups(s.batch), partial);
    let mut parts = parts.into_iter();
    let mut sum = parts
        .next()
        .unwrap_or_else(|| vec![0f32; s.c_out * s.c_in * s.k]);
    for p in parts {
        sum.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
    sum
}

/// A strided matrix in a buffer: element (i, j) at `offset + i·rows + j·cols`.
#[derive(Debug, Clone, Copy)]
struct View {
    offset: usize,
    rows: usize,
    cols: usize,
}

impl View {
    fn new(offset: usize, rows: usize, cols: usize) -> Self {
        View { offset, rows, cols }
    }

    fn transposed(self) -> Self {
        View::new(self.offset, self.cols, self.rows)
    }

    /// Index of the last element of an `m × n` matrix.
    fn last(&self, m: usize, n: usize) -> usize {
        self.offset + (m - 1) * self.rows + (n - 1) * self.cols
    }
}

/// dst (m × n) += lhs (m × inner) · rhs (inner × n), `dims` = [m, inner, n].
fn matmul_add(
    (dst, d): (&mut [f32], View),
    (lhs, l): (&[f32], View),
    (rhs, r): (&[f32], View),
    [m, inner, n]: [usize; 3],
) {
    if m == 0 || inner == 0 || n == 0 {
        return;
    }
    assert!(
        d.last(m, n) < dst.len() && l.last(m, inner) < lhs.len() && r.last(inner, n) < rhs.len(),
        "matrix view outside its buffer"
    );
    let s = |x: usize| x as isize;
    // SAFETY: every element the three views address lies inside its slice (the last one
    // was checked above and strides are non-negative); `dst` is a unique borrow, so it
    // aliases neither operand, and its views never map two elements to one address.
    unsafe {
        gemm::gemm(
            m,
            n,
            inner,
            dst.as_mut_ptr().add(d.offset),
            s(d.cols),
            s(d.rows),
            true,
            lhs.as_ptr().add(l.offset),
            s(l.cols),
            s(l.rows),
            rhs.as_ptr().add(r.offset),
            s(r.cols),
            s(r.rows),
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, term by term.
    fn naive(x: &[f32], w: &[f32], bias: &[f32], s: Shape) -> Vec<f32> {
        let mut y = vec![0f32; s.batch * s.c_out * s.t];
        for b in 0..s.batch {
            for o in 0..s.c_out {
                for t in 0..s.t {
                    let mut acc = bias[o];
                    for (k, shift) in s.taps() {
                        if t >= shift {
                            for i in 0..s.c_in {
                                let xv = x[(b * s.c_in + i) * s.t + t - shift];
                                acc += w[(o * s.c_in + i) * s.k + k] * xv;
                            }
                        }
                    }
                    y[(b * s.c_out + o) * s.t + t] = acc;
                }
            }
        }
        y
    }

    #[test]
    fn matches_the_definition_including_taps_longer_than_the_clip() {
        let mut rng = crate::util::Rng::new(5);
        for (dilation, t) in [(1, 9), (4, 9), (16, 9), (3, 1)] {
            let s = Shape {
                batch: 3,
                c_in: 5,
                c_out: 7,
                k: 4,
                t,
                dilation,
            };
            let mut draw = |n: usize| (0..n).map(|_| rng.normal()).collect::<Vec<f32>>();
            let (x, w, bias) = (draw(3 * 5 * t), draw(7 * 5 * 4), draw(7));
            let (got, want) = (forward(&x, &w, &bias, s), naive(&x, &w, &bias, s));
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4, "{g} vs {w} (d {dilation}, t {t})");
            }
        }
    }
}
