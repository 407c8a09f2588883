//! Which device burn runs on, and how a layer runs there.

use anyhow::Result;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::net::LayerOps;
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
