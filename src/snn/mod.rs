//! The spiking network for inference: LIF neurons and causal dilated temporal
//! convolutions, run frame by frame (the training graph lives in `train`), alone or as an
//! ensemble of independently trained networks voting by their mean scores.

pub mod ensemble;
pub mod fixed;
pub mod lif;
pub mod network;
pub mod quantize;

pub use ensemble::{Ensemble, EnsembleState};
pub use fixed::{
    FixedEnsemble, FixedEnsembleState, FixedError, FixedSpec, FixedStats, Leak, LeakRounding,
};
pub use lif::{leaky_step, lif_step};
pub use network::{Mode, Network, NetworkState, Readout, SpikingLayer, random_network};
