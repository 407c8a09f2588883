//! Moving burn tensors to plain host vectors and back, for the fused operations that
//! run their loops on the CPU.

use burn::backend::{Backend, TensorData, TensorMetadata, read_sync, tensor::FloatTensor};

pub fn host<B: Backend>(t: FloatTensor<B>) -> Vec<f32> {
    read_sync(B::float_into_data(t))
        .expect("reading a tensor back from the device")
        .try_into_vec_as::<f32>()
        .expect("f32 tensor")
}

pub fn tensor<B: Backend, const D: usize>(
    x: Vec<f32>,
    dims: [usize; D],
    device: &B::Device,
) -> FloatTensor<B> {
    B::float_from_data(TensorData::new(x, dims), device)
}

pub fn dims3<B: Backend>(t: &FloatTensor<B>) -> [usize; 3] {
    let d = t.shape().dims::<3>();
    [d[0], d[1], d[2]]
}

/// Contiguous groups of `n` items, one per core, for work that reduces over its group.
pub fn groups(n: usize) -> Vec<std::ops::Range<usize>> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let size = n.div_ceil(threads.min(n.max(1))).max(1);
    (0..n).step_by(size).map(|s| s..(s + size).min(n)).collect()
}
