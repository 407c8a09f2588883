//! The spiking network as a burn graph: batched and differentiable, on the CPU (flex)
//! or a GPU (wgpu). Training backpropagates through it; `classify --device gpu` runs it
//! forward. It computes what the frame-by-frame engine in `snn` computes.

pub mod classify;
pub mod conv;
mod device;
mod host;
pub mod lif;
#[cfg(feature = "gpu")]
mod lif_gpu;
pub mod net;

pub use classify::classify_clips;
pub use device::{DeviceKind, burn_device, ops_for};
pub use net::{LayerOps, TrainNet};
