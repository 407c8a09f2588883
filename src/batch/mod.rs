//! The spiking network as a burn graph: batched and differentiable, on the CPU (flex)
//! or a GPU (wgpu). Training backpropagates through it; `classify --device gpu` runs it
//! forward. It computes what the frame-by-frame engine in `snn` computes.

pub mod classify;
pub mod conv;
mod host;
pub mod lif;
#[cfg(feature = "gpu")]
mod lif_gpu;
pub mod net;

use anyhow::Result;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

pub use classify::classify_clips;
pub use net::{LayerOps, TrainNet};

/// Where burn runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum DeviceKind {
    Cpu,
    Gpu,
}

pub fn burn_device(kind: DeviceKind) -> Result<Device> {
    match kind {
        DeviceKind::Cpu => Ok(Device::flex()),
        #[cfg(feature = "gpu")]
        DeviceKind::Gpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(not(feature = "gpu"))]
        DeviceKind::Gpu => {
            anyhow::bail!("this build has no GPU support: rebuild with `--features gpu`")
        }
    }
}

/// The fastest way each device runs a layer: the fused host operations on the CPU;
/// on a GPU, burn's convolution kernels and the LIF kernel.
pub fn ops_for(device: DeviceKind) -> LayerOps {
    match device {
        DeviceKind::Cpu => LayerOps::Fused,
        DeviceKind::Gpu => LayerOps::FusedLif,
    }
}
