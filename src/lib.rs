//! spikeword: keyword spotting with a spiking neural network.
//!
//! Data flows one way: `audio` (decode, resample) → `features` (log-mel) →
//! `encoding` (spikes or currents) → `snn` (LIF temporal convolutions) →
//! `detect` (smoothed word events); `model` is the file that carries weights, config
//! and `replay` (clips for retraining without the data); `eval` measures a model on
//! labelled clips from `data`. With the `train` feature (on by default), `batch` runs
//! the network as a burn graph and `train` fits it with surrogate gradients (`teacher`:
//! distilling pretrained models into it); without it the library is the lean
//! inference part.

pub mod audio;
#[cfg(feature = "train")]
pub mod batch;
pub mod config;
pub mod data;
pub mod detect;
pub mod encoding;
pub mod eval;
pub mod features;
pub mod model;
#[cfg(feature = "plot")]
pub mod plot;
pub mod replay;
pub mod snn;
pub mod stream_bench;
#[cfg(feature = "teacher")]
pub mod teacher;
#[cfg(feature = "train")]
pub mod train;
pub mod util;

pub use audio::{AudioError, AudioSource, FileSource, load_wav};
pub use config::{EncoderConfig, FeatureConfig, ModelConfig, NetworkConfig};
pub use features::{LogMel, StreamingMel, log_mel};
pub use model::{Model, ModelError};
pub use snn::{Ensemble, Mode, Network};
