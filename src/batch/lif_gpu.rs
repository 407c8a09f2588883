//! The fused LIF operation on a GPU: cubecl kernels, one thread per (batch, channel) row
//! looping over time, the same scans as the CPU rows in `lif` (forward saves the
//! potentials; backward is the reverse-time scan). Each row's share of the gradients of
//! β and θ is summed over the batch on the device.

use burn::backend::ops::FloatTensorOps;
use burn::backend::{DType, TensorMetadata};
use burn::tensor::Shape;
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::lif::{LifOps, SpikeFn};
use crate::config::{Reset, Surrogate};

/// Threads per cube: rows are independent, any size works.
const CUBE: u32 = 128;

impl LifOps for CubeBackend {
    fn lif_forward(
        drive: CubeTensor,
        beta: CubeTensor,
        theta: CubeTensor,
        reset: u8,
        surrogate: u8,
        slope: f32,
    ) -> (CubeTensor, CubeTensor) {
        let f = SpikeFn::decode(reset, surrogate, slope);
        let [b, c, t] = dims3(&drive);
        let (drive, beta, theta) = f32_rows(drive, beta, theta);
        let spikes = empty_like(&drive, [b, c, t]);
        let v = empty_like(&drive, [b, c, t]);
        let client = drive.client.clone();
        lif_forward_kernel::launch(
            &client,
            cubes(b * c),
            CubeDim::new_1d(CUBE),
            drive.into_tensor_arg(),
            beta.into_tensor_arg(),
            theta.into_tensor_arg(),
            spikes.clone().into_tensor_arg(),
            v.clone().into_tensor_arg(),
            (b * c) as u32,
            c as u32,
            t as u32,
            f.reset == Reset::Zero,
        );
        (spikes, v)
    }

    fn lif_backward(
        g_spikes: CubeTensor,
        v: CubeTensor,
        beta: CubeTensor,
        theta: CubeTensor,
        reset: u8,
        surrogate: u8,
        slope: f32,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        let f = SpikeFn::decode(reset, surrogate, slope);
        let [b, c, t] = dims3(&v);
        let (v, beta, theta) = f32_rows(v, beta, theta);
        let g_spikes = into_contiguous(g_spikes);
        let g_drive = empty_like(&v, [b, c, t]);
        let g_beta = empty_like(&v, [b, c]);
        let g_theta = empty_like(&v, [b, c]);
        let client = v.client.clone();
        lif_backward_kernel::launch(
            &client,
            cubes(b * c),
            CubeDim::new_1d(CUBE),
            g_spikes.into_tensor_arg(),
            v.into_tensor_arg(),
            beta.into_tensor_arg(),
            theta.into_tensor_arg(),
            g_drive.clone().into_tensor_arg(),
            g_beta.clone().into_tensor_arg(),
            g_theta.clone().into_tensor_arg(),
            (b * c) as u32,
            c as u32,
            t as u32,
            f.slope,
            f.reset == Reset::Zero,
            surrogate_code(f.surrogate),
        );
        let per_channel = |rows: CubeTensor| {
            let summed = CubeBackend::float_sum_dim(rows, 0);
            CubeBackend::float_reshape(summed, Shape::new([c]))
        };
        (g_drive, per_channel(g_beta), per_channel(g_theta))
    }
}

fn dims3(t: &CubeTensor) -> [usize; 3] {
    let d = t.shape().dims::<3>();
    [d[0], d[1], d[2]]
}

/// Contiguous f32 inputs: the kernels index rows directly.
fn f32_rows(
    x: CubeTensor,
    beta: CubeTensor,
    theta: CubeTensor,
) -> (CubeTensor, CubeTensor, CubeTensor) {
    assert_eq!(x.dtype, DType::F32, "the LIF kernel trains in f32");
    (
        into_contiguous(x),
        into_contiguous(beta),
        into_contiguous(theta),
    )
}

fn empty_like<const D: usize>(like: &CubeTensor, dims: [usize; D]) -> CubeTensor {
    empty_device_dtype(
        like.client.clone(),
        like.device.clone(),
        Shape::new(dims),
        like.dtype,
    )
}

fn cubes(rows: usize) -> CubeCount {
    CubeCount::Static((rows as u32).div_ceil(CUBE), 1, 1)
}

fn surrogate_code(s: Surrogate) -> u32 {
    match s {
        Surrogate::Sigmoid => 0,
        Surrogate::FastSigmoid => 1,
        Surrogate::Arctan => 2,
    }
}

#[cube(launch)]
fn lif_forward_kernel(
    drive: &Tensor<f32>,
    beta: &Tensor<f32>,
    theta: &Tensor<f32>,
    spikes: &mut Tensor<f32>,
    v: &mut Tensor<f32>,
    rows: u32,
    channels: u32,
    frames: u32,
    #[comptime] zero_reset: bool,
) {
    let row = ABSOLUTE_POS;
    if row >= rows as usize {
        terminate!();
    }
    let c = row % channels as usize;
    let (b, th) = (beta[c], theta[c]);
    let n = frames as usize;
    let base = row * n;
    let mut vt = f32::new(0.0);
    let mut st = f32::new(0.0);
    for t in 0..n {
        let leaky = b * vt + drive[base + t];
        if zero_reset {
            vt = leaky * (f32::new(1.0) - st);
        } else {
            vt = leaky - th * st;
        }
        st = f32::new(0.0);
        if vt - th > f32::new(0.0) {
            st = f32::new(1.0);
        }
        v[base + t] = vt;
        spikes[base + t] = st;
    }
}

/// The surrogate derivative at `u` with slope `k` (as `Surrogate::derivative`).
#[cube]
fn surrogate_derivative(u: f32, k: f32, #[comptime] surrogate: u32) -> f32 {
    let one = f32::new(1.0);
    if surrogate == 0 {
        let s = one / (one + f32::exp(f32::new(0.0) - k * u));
        k * s * (one - s)
    } else if surrogate == 1 {
        let a = one + k * f32::abs(u);
        one / (a * a)
    } else {
        let a = f32::new(std::f32::consts::FRAC_PI_2) * k * u;
        (k * f32::new(0.5)) / (one + a * a)
    }
}

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn lif_backward_kernel(
    g_spikes: &Tensor<f32>,
    v: &Tensor<f32>,
    beta: &Tensor<f32>,
    theta: &Tensor<f32>,
    g_drive: &mut Tensor<f32>,
    g_beta: &mut Tensor<f32>,
    g_theta: &mut Tensor<f32>,
    rows: u32,
    channels: u32,
    frames: u32,
    slope: f32,
    #[comptime] zero_reset: bool,
    #[comptime] surrogate: u32,
) {
    let row = ABSOLUTE_POS;
    if row >= rows as usize {
        terminate!();
    }
    let c = row % channels as usize;
    let (b, th) = (beta[c], theta[c]);
    let n = frames as usize;
    let base = row * n;
    let zero = f32::new(0.0);
    let mut gv = zero;
    let mut gb = zero;
    let mut gt = zero;
    for i in 0..n {
        let t = n - 1 - i;
        let through_spike =
            g_spikes[base + t] * surrogate_derivative(v[base + t] - th, slope, surrogate);
        let g = gv + through_spike;
        gt -= through_spike;
        let mut v_prev = zero;
        let mut s_prev = zero;
        if t > 0 {
            v_prev = v[base + t - 1];
            if v_prev - th > zero {
                s_prev = f32::new(1.0);
            }
        }
        if zero_reset {
            let keep = f32::new(1.0) - s_prev;
            g_drive[base + t] = g * keep;
            gb += g * keep * v_prev;
            gv = g * keep * b;
        } else {
            g_drive[base + t] = g;
            gb += g * v_prev;
            gt -= g * s_prev;
            gv = g * b;
        }
    }
    g_beta[row] = gb;
    g_theta[row] = gt;
}
