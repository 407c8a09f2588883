//! The spiking network as a burn graph: batched and differentiable, on the CPU (flex)
//! or a GPU (wgpu). Training backpropagates through it; `classify --device gpu` runs it
//! forward. It computes what the frame-by-frame engine in `snn` computes.

pub mod classify;
pub mod conv;
mod host;
pub mod lif;
pub mod net;

use anyhow::Result;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

pub use classify::classify_clips;
pub use net::{LifImpl, TrainNet};

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

/// The fused LIF operation runs its scans on the host: on the CPU that is the fast path;
/// on a GPU (no LIF kernel written yet) the per-frame graph keeps the data on the device.
pub fn lif_for(device: DeviceKind) -> LifImpl {
    match device {
        DeviceKind::Cpu => LifImpl::Fused,
        DeviceKind::Gpu => LifImpl::Graph,
    }
}
