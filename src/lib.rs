//! spikeword: keyword spotting with a spiking neural network.
//!
//! Data flows one way: `audio` (decode, resample) → `features` (log-mel) →
//! `encoding` (spikes or currents) → `snn` (LIF temporal convolutions) →
//! `detect` (smoothed word events). `train` fits the network with surrogate
//! gradients in burn; `model` is the file that carries weights and config.

pub mod audio;
pub mod config;
pub mod detect;
pub mod encoding;
pub mod eval;
pub mod features;
pub mod model;
pub mod plot;
pub mod snn;
pub mod train;
pub mod util;

pub use audio::{AudioError, AudioSource, FileSource, load_wav};
pub use config::{EncoderConfig, FeatureConfig, ModelConfig, NetworkConfig};
pub use features::{LogMel, StreamingMel, log_mel};
pub use model::{Model, ModelError};
pub use snn::{Ensemble, Mode, Network};
